//! A TTL cache in front of another provider, so a thousand-host plan does not
//! ask Vault a thousand times for one shared credential.

use crate::{Credential, CredentialProvider, Error};
use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Keeps successful resolutions for `ttl`; failures are never cached, so a
/// transient Vault outage is retried on the next call.
///
/// Call [`CachingProvider::invalidate`] when a BMC rejects a cached
/// credential (it may have been rotated). Concurrent misses for one
/// reference may each reach the inner provider.
pub struct CachingProvider<P> {
    inner: P,
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Credential)>>,
}

impl<P: CredentialProvider> CachingProvider<P> {
    /// Caches `inner`'s answers for `ttl`.
    pub fn new(inner: P, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets `reference`.
    pub fn invalidate(&self, reference: &str) {
        self.entries().remove(reference);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.entries().clear();
    }

    /// Number of entries held, expired ones included until the next insert.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, (Instant, Credential)>> {
        // The map stays consistent even if a holder panicked: every
        // operation on it is a single insert/remove/get.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<P> fmt::Debug for CachingProvider<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.entries.lock().map_or(0, |m| m.len());
        f.debug_struct("CachingProvider")
            .field("ttl", &self.ttl)
            .field("entries", &held)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<P: CredentialProvider> CredentialProvider for CachingProvider<P> {
    async fn resolve(&self, reference: &str) -> Result<Credential, Error> {
        let now = Instant::now();
        if let Some((expires, credential)) = self.entries().get(reference)
            && *expires > now
        {
            return Ok(credential.clone());
        }
        let credential = self.inner.resolve(reference).await?;
        let now = Instant::now();
        let mut entries = self.entries();
        entries.retain(|_, (expires, _)| *expires > now);
        entries.insert(reference.to_owned(), (now + self.ttl, credential.clone()));
        Ok(credential)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::err;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers `user-<n>` where n counts calls; fails for `env:FAIL`.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl CredentialProvider for Counting {
        async fn resolve(&self, reference: &str) -> Result<Credential, Error> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            if reference == "env:FAIL" {
                return Err(err::unavailable(reference, "down"));
            }
            Ok(Credential::new(format!("user-{n}"), "top-secret-cached"))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn hits_until_ttl_then_refreshes() {
        let p = CachingProvider::new(Counting::default(), Duration::from_secs(60));
        assert_eq!(p.resolve("env:A").await.unwrap().username, "user-0");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(p.resolve("env:A").await.unwrap().username, "user-0");
        assert_eq!(p.resolve("env:B").await.unwrap().username, "user-1");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(p.resolve("env:A").await.unwrap().username, "user-2");
        assert_eq!(p.len(), 2);
        // Expired entries are pruned on the next insert.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(p.resolve("env:C").await.unwrap().username, "user-3");
        assert_eq!(p.len(), 1);
        assert!(!format!("{p:?}").contains("top-secret-cached"));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_not_cached_and_invalidate_forgets() {
        let p = CachingProvider::new(Counting::default(), Duration::from_secs(60));
        assert!(p.resolve("env:FAIL").await.is_err());
        assert!(p.resolve("env:FAIL").await.is_err());
        assert_eq!(p.inner.0.load(Ordering::SeqCst), 2);
        assert!(p.is_empty());
        assert_eq!(p.resolve("env:A").await.unwrap().username, "user-2");
        p.invalidate("env:A");
        assert_eq!(p.resolve("env:A").await.unwrap().username, "user-3");
        p.clear();
        assert!(p.is_empty());
    }
}
