//! Dispatch of a reference to the provider registered for its scheme, so the
//! executor holds one `CredentialProvider` whatever stores a fleet uses.

use crate::reference::split_scheme;
use crate::{Credential, CredentialProvider, EnvProvider, Error, FileProvider, err};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Routes `scheme:...` to the provider registered for `scheme`; the provider
/// receives the whole reference.
#[derive(Clone, Default)]
pub struct CompositeProvider {
    providers: BTreeMap<String, Arc<dyn CredentialProvider>>,
}

impl CompositeProvider {
    /// No providers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `env:` from the process environment and `file:`; add `vault:` with
    /// [`CompositeProvider::with`] when Vault is configured.
    pub fn standard() -> Self {
        Self::new()
            .with("env", EnvProvider::from_process())
            .with("file", FileProvider::new())
    }

    /// Registers `provider` for `scheme`, replacing any earlier one.
    pub fn with(
        self,
        scheme: impl Into<String>,
        provider: impl CredentialProvider + 'static,
    ) -> Self {
        self.with_shared(scheme, Arc::new(provider))
    }

    /// Registers a shared provider for `scheme`.
    pub fn with_shared(
        mut self,
        scheme: impl Into<String>,
        provider: Arc<dyn CredentialProvider>,
    ) -> Self {
        self.providers.insert(scheme.into(), provider);
        self
    }

    /// The registered schemes, sorted.
    pub fn schemes(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }
}

impl fmt::Debug for CompositeProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompositeProvider")
            .field("schemes", &self.schemes().collect::<Vec<_>>())
            .finish()
    }
}

#[async_trait]
impl CredentialProvider for CompositeProvider {
    async fn resolve(&self, reference: &str) -> Result<Credential, Error> {
        let (scheme, _) = split_scheme(reference)?;
        let Some(provider) = self.providers.get(scheme) else {
            let known = self.schemes().collect::<Vec<_>>().join(", ");
            return Err(err::invalid(
                reference,
                format!("no credential provider for scheme `{scheme}` (configured: {known})"),
            ));
        };
        provider.resolve(reference).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dispatches_by_scheme() {
        let env = EnvProvider::from_map([("A_USERNAME", "env-user"), ("A_PASSWORD", "pw")]);
        let other = EnvProvider::from_map([("A_USERNAME", "other-user"), ("A_PASSWORD", "pw")]);
        let p = CompositeProvider::new()
            .with("env", env)
            .with("file", FileProvider::new());
        assert_eq!(p.resolve("env:A").await.unwrap().username, "env-user");
        // Re-registering replaces the provider.
        let p = p.with("env", other);
        assert_eq!(p.resolve("env:A").await.unwrap().username, "other-user");
        assert_eq!(
            format!("{p:?}"),
            r#"CompositeProvider { schemes: ["env", "file"] }"#
        );
    }

    #[tokio::test]
    async fn unknown_or_missing_scheme_is_invalid() {
        let p = CompositeProvider::standard();
        let e = p.resolve("vault:secret/x").await.unwrap_err();
        assert!(matches!(e, Error::InvalidReference { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("scheme `vault` (configured: env, file)"),
            "{e}"
        );
        let e = p.resolve("IDRAC").await.unwrap_err();
        assert!(e.to_string().contains("no scheme"), "{e}");
        let e = CompositeProvider::new().resolve("env:X").await.unwrap_err();
        assert!(e.to_string().contains("configured: )"), "{e}");
    }
}
