//! The `ArtifactResolver` port: for one host and its inventory, the ordered
//! list of packages to install. Implementations: Dell catalog, specific
//! packages, uploaded files (`firmflow-redfish::catalog`).

use crate::bmc::{Inventory, SystemInfo};
use crate::model::{Artifact, Host, Package, Plan};
use async_trait::async_trait;

/// Why packages could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The source (catalog, file, URL) could not be read; may be transient.
    #[error("cannot read {source_name}: {message}")]
    Source {
        /// File or URL.
        source_name: String,
        /// What went wrong.
        message: String,
        /// Whether retrying may help (network) or not (corrupt file).
        transient: bool,
    },
    /// A package failed verification (checksum, size, format).
    #[error("package {package} failed verification: {message}")]
    Verification {
        /// Package name or URI.
        package: String,
        /// What did not match.
        message: String,
    },
    /// The host's model has no entry in the catalog, or no artifact fits it.
    #[error("no package fits host {host}: {message}")]
    NoMatch {
        /// Host.
        host: String,
        /// Details.
        message: String,
    },
    /// A package would downgrade a component and the policy forbids it.
    #[error("{component}: {message}")]
    Refused {
        /// Component.
        component: String,
        /// Why.
        message: String,
    },
}

impl Error {
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Source {
                transient: true,
                ..
            }
        )
    }
}

/// What a resolver is given.
#[derive(Clone, Copy, Debug)]
pub struct ResolveRequest<'a> {
    /// The host.
    pub host: &'a Host,
    /// System facts read from its BMC.
    pub system: &'a SystemInfo,
    /// Its firmware inventory.
    pub inventory: &'a Inventory,
    /// The plan (policy: mode, catalog, force, downgrade).
    pub plan: &'a Plan,
    /// The plan's artifacts.
    pub artifacts: &'a [Artifact],
}

/// Chooses packages for a host.
#[async_trait]
pub trait ArtifactResolver: Send + Sync {
    /// Packages to install, in install order (BMC first). Components already
    /// at their target are left out unless the policy forces reinstall.
    async fn resolve(&self, request: ResolveRequest<'_>) -> Result<Vec<Package>, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;
    fn _object_safe(_: &dyn ArtifactResolver) {}
}
