//! firmflow-credentials: the providers behind core's
//! [`CredentialProvider`] port. `firmflow-core` does no I/O, so every way of
//! fetching a BMC or vCenter secret lives here.
//!
//! # Reference syntax
//!
//! A credential reference (the seed's `credentials.vault_path`) is
//! `<scheme>:<location>`:
//!
//! | reference | resolved by | meaning |
//! | --- | --- | --- |
//! | `env:IDRAC` | [`EnvProvider`] | `IDRAC_USERNAME` and `IDRAC_PASSWORD` (suffixes configurable) |
//! | `file:/etc/firmflow/creds.toml#idrac-prod` | [`FileProvider`] | entry `idrac-prod` of a TOML file |
//! | `file:/etc/firmflow/idrac.json` | [`FileProvider`] | a JSON (or TOML) file holding one credential at its top level |
//! | `vault:secret/firmflow/idrac-r640-01` | [`VaultProvider`] | KV v2 mount `secret`, path `firmflow/idrac-r640-01` |
//! | `vault:secret/data/firmflow/idrac-r640-01` | [`VaultProvider`] | the same secret, written in API form |
//! | `vault:kv/firmflow/idrac#pw` | [`VaultProvider`] | the password is read from field `pw` |
//!
//! Rules, checked by [`Reference::parse`]:
//! - `env:` names are `[A-Za-z_][A-Za-z0-9_]*`, used as written.
//! - `file:` paths end in `.toml` or `.json`; `#entry` names a top-level
//!   table/object holding `username` and `password`; without it the file's
//!   top level is the credential. Paths containing `#` are not supported.
//!   The file must not be accessible by group or others (`chmod 600`), and
//!   neither its directory nor the directory of its symlink target may be
//!   world-writable.
//! - `vault:` the first segment is the mount (single-segment mounts only);
//!   a `data` segment right after it is the KV v2 API form and is skipped,
//!   so a secret whose own path starts with `data/` must be written as
//!   `vault:<mount>/data/data/...`. Segments are non-empty and never `.`
//!   or `..`. `#field` overrides the password field; the username field is
//!   [`VaultConfig::username_field`].
//!
//! [`CompositeProvider`] dispatches a reference to the provider registered
//! for its scheme; [`CachingProvider`] keeps resolved credentials for a TTL.
//!
//! # Secrets
//!
//! Secrets only travel inside [`secrecy::SecretString`] (the credential and
//! the Vault token). Errors name references, files, fields, line numbers and
//! HTTP statuses, never a value read from a store, and no `Debug` output
//! shows a secret.

// Nothing read from outside (files, the environment, Vault's answers) may
// panic: library code returns errors (tests may unwrap).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod cache;
mod composite;
mod env;
mod fields;
mod file;
mod reference;
mod vault;

pub use cache::CachingProvider;
pub use composite::CompositeProvider;
pub use env::EnvProvider;
pub use file::FileProvider;
pub use firmflow_core::credentials::{Credential, CredentialProvider, Error};
pub use reference::{EnvRef, FileFormat, FileRef, Reference, VaultRef};
pub use vault::{ConfigError, VaultConfig, VaultProvider};

/// Builders for the port's error variants, so every module words them alike.
pub(crate) mod err {
    use super::Error;

    pub(crate) fn not_found(reference: &str, message: impl Into<String>) -> Error {
        Error::NotFound {
            reference: reference.to_owned(),
            message: message.into(),
        }
    }
    pub(crate) fn invalid(reference: &str, message: impl Into<String>) -> Error {
        Error::InvalidReference {
            reference: reference.to_owned(),
            message: message.into(),
        }
    }
    pub(crate) fn refused(reference: &str, message: impl Into<String>) -> Error {
        Error::Refused {
            reference: reference.to_owned(),
            message: message.into(),
        }
    }
    pub(crate) fn unavailable(reference: &str, message: impl Into<String>) -> Error {
        Error::Unavailable {
            reference: reference.to_owned(),
            message: message.into(),
        }
    }
}
