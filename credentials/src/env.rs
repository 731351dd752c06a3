//! `env:NAME` references: the credential comes from two environment
//! variables. Lookup is injectable so tests never mutate the process
//! environment (`set_var` is `unsafe` in edition 2024 and the workspace
//! forbids `unsafe`).

use crate::reference::Reference;
use crate::{Credential, CredentialProvider, Error, err};
use async_trait::async_trait;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::sync::Arc;

type Lookup = dyn Fn(&str) -> Option<OsString> + Send + Sync;

/// Resolves `env:NAME` to `NAME_USERNAME` / `NAME_PASSWORD` (suffixes
/// configurable with [`EnvProvider::with_suffixes`]).
#[derive(Clone)]
pub struct EnvProvider {
    lookup: Arc<Lookup>,
    username_suffix: String,
    secret_suffix: String,
}

impl EnvProvider {
    /// Reads the process environment.
    pub fn from_process() -> Self {
        Self::with_lookup(|name| std::env::var_os(name))
    }

    /// Reads variables through `lookup` (tests, or a sandboxed environment).
    pub fn with_lookup(lookup: impl Fn(&str) -> Option<OsString> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Arc::new(lookup),
            username_suffix: "_USERNAME".into(),
            secret_suffix: "_PASSWORD".into(),
        }
    }

    /// Reads variables from a fixed map.
    pub fn from_map<K: Into<String>, V: Into<OsString>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars: HashMap<String, OsString> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::with_lookup(move |name| vars.get(name).cloned())
    }

    /// Uses `NAME<username_suffix>` and `NAME<secret_suffix>` instead of
    /// `NAME_USERNAME` / `NAME_PASSWORD` (e.g. `_USER` / `_PASS`).
    pub fn with_suffixes(
        mut self,
        username_suffix: impl Into<String>,
        secret_suffix: impl Into<String>,
    ) -> Self {
        self.username_suffix = username_suffix.into();
        self.secret_suffix = secret_suffix.into();
        self
    }

    /// The (username, secret) variable names for the stem `name`.
    pub fn variable_names(&self, name: &str) -> (String, String) {
        (
            format!("{name}{}", self.username_suffix),
            format!("{name}{}", self.secret_suffix),
        )
    }

    fn read(&self, reference: &str, var: &str) -> Result<String, Error> {
        let value = (self.lookup)(var).ok_or_else(|| {
            err::not_found(reference, format!("environment variable {var} is not set"))
        })?;
        let value = value.into_string().map_err(|_| {
            err::not_found(
                reference,
                format!("environment variable {var} is not valid UTF-8"),
            )
        })?;
        if value.is_empty() {
            return Err(err::not_found(
                reference,
                format!("environment variable {var} is empty"),
            ));
        }
        Ok(value)
    }
}

impl fmt::Debug for EnvProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvProvider")
            .field("username_suffix", &self.username_suffix)
            .field("secret_suffix", &self.secret_suffix)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CredentialProvider for EnvProvider {
    async fn resolve(&self, reference: &str) -> Result<Credential, Error> {
        let Reference::Env(env) = Reference::parse(reference)? else {
            return Err(err::invalid(
                reference,
                "EnvProvider resolves only env: references",
            ));
        };
        let (user_var, secret_var) = self.variable_names(&env.name);
        let username = self.read(reference, &user_var)?;
        let secret = self.read(reference, &secret_var)?;
        Ok(Credential::new(username, secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t-env-value";

    fn provider() -> EnvProvider {
        EnvProvider::from_map([
            ("IDRAC_USERNAME", "root"),
            ("IDRAC_PASSWORD", SECRET),
            ("VC_USER", "administrator@vsphere.local"),
            ("VC_PASS", SECRET),
            ("HALF_USERNAME", "root"),
            ("EMPTY_USERNAME", "root"),
            ("EMPTY_PASSWORD", ""),
        ])
    }

    #[tokio::test]
    async fn resolves_default_names() {
        let c = provider().resolve("env:IDRAC").await.unwrap();
        assert_eq!((c.username.as_str(), c.expose()), ("root", SECRET));
    }

    #[tokio::test]
    async fn resolves_configured_suffixes() {
        let p = provider().with_suffixes("_USER", "_PASS");
        assert_eq!(p.variable_names("VC"), ("VC_USER".into(), "VC_PASS".into()));
        let c = p.resolve("env:VC").await.unwrap();
        assert_eq!(c.username, "administrator@vsphere.local");
        assert_eq!(c.expose(), SECRET);
    }

    #[tokio::test]
    async fn missing_or_empty_variables_are_not_found() {
        let p = provider();
        for (reference, expected) in [
            ("env:NOPE", "NOPE_USERNAME is not set"),
            ("env:HALF", "HALF_PASSWORD is not set"),
            ("env:EMPTY", "EMPTY_PASSWORD is empty"),
        ] {
            match p.resolve(reference).await {
                Err(Error::NotFound { message, .. }) => {
                    assert!(message.contains(expected), "{message}")
                }
                other => panic!("{reference}: {other:?}"),
            }
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn non_utf8_value_is_reported_by_name() {
        use std::os::unix::ffi::OsStringExt;
        let p = EnvProvider::with_lookup(|name| match name {
            "BIN_USERNAME" => Some(OsString::from_vec(vec![0xff, 0xfe])),
            _ => Some("x".into()),
        });
        let e = p.resolve("env:BIN").await.unwrap_err();
        assert!(
            e.to_string().contains("BIN_USERNAME is not valid UTF-8"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn refuses_other_schemes_and_never_shows_secret() {
        let p = provider();
        let e = p.resolve("vault:secret/x").await.unwrap_err();
        assert!(matches!(e, Error::InvalidReference { .. }), "{e:?}");
        assert!(!format!("{p:?}").contains(SECRET));
        let c = p.resolve("env:IDRAC").await.unwrap();
        assert!(!format!("{c:?}").contains(SECRET));
    }

    #[tokio::test]
    async fn process_environment_is_read() {
        // PATH is set in every test environment; PATH_USERNAME is not, so this
        // exercises std::env without mutating it.
        let e = EnvProvider::from_process()
            .resolve("env:PATH")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("PATH_USERNAME is not set"), "{e}");
        let p = EnvProvider::from_process().with_suffixes("", "");
        let c = p.resolve("env:PATH").await.unwrap();
        assert_eq!(Some(c.username), std::env::var("PATH").ok());
    }
}
