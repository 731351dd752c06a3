//! The `CredentialProvider` port and the redacting secret type. Providers
//! (environment, file, HashiCorp Vault) live in `firmflow-credentials`.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// A username and a secret. `Debug` never shows the secret.
#[derive(Clone)]
pub struct Credential {
    /// Login name.
    pub username: String,
    /// Password or token.
    pub secret: SecretString,
}

impl Credential {
    /// Builds a credential.
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            secret: SecretString::from(secret.into()),
        }
    }
    /// The secret, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

/// Why a credential could not be resolved. Never contains the secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No such credential.
    #[error("credential {reference} not found: {message}")]
    NotFound {
        /// The reference asked for.
        reference: String,
        /// Details.
        message: String,
    },
    /// The reference is malformed or names an unknown provider.
    #[error("invalid credential reference {reference}: {message}")]
    InvalidReference {
        /// The reference.
        reference: String,
        /// Details.
        message: String,
    },
    /// The store refused to hand it out (permissions, unsafe file mode, auth).
    #[error("credential {reference} refused: {message}")]
    Refused {
        /// The reference.
        reference: String,
        /// Details.
        message: String,
    },
    /// The provider could not be reached; may be transient.
    #[error("credential provider unavailable for {reference}: {message}")]
    Unavailable {
        /// The reference.
        reference: String,
        /// Details.
        message: String,
    },
}

/// Resolves a credential reference (`credentials.vault_path`) to a secret.
#[async_trait]
pub trait CredentialProvider: Send + Sync {
    /// The credential behind `reference`.
    async fn resolve(&self, reference: &str) -> Result<Credential, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;
    fn _object_safe(_: &dyn CredentialProvider) {}

    #[test]
    fn debug_redacts() {
        let c = Credential::new("root", "calvin");
        let s = format!("{c:?}");
        assert!(!s.contains("calvin"), "{s}");
        assert!(s.contains("root"));
        assert_eq!(c.expose(), "calvin");
    }
}
