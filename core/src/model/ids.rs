//! Typed identifiers. Each entity gets its own newtype so a `HostId` can never
//! be passed where a `RunId` is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered (v7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies a host (a server and its BMC).
    HostId
);
uuid_id!(
    /// Identifies an update plan (a campaign).
    PlanId
);
uuid_id!(
    /// Identifies one host run: the execution of a plan on one host.
    RunId
);
uuid_id!(
    /// Identifies a stored credential reference.
    CredentialId
);
uuid_id!(
    /// Identifies an artifact (firmware package) attached to a plan.
    ArtifactId
);
uuid_id!(
    /// Identifies an audit event.
    EventId
);
uuid_id!(
    /// Identifies a background job.
    JobId
);
uuid_id!(
    /// Identifies a datacenter (the unit of row-level access control).
    DatacenterId
);
uuid_id!(
    /// Identifies a user (who created a plan, who caused an event).
    UserId
);

/// Identifies one executor process (worker). Fresh per process start, so a
/// restarted daemon never mistakes a predecessor's lease for its own.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkerId(pub String);

impl WorkerId {
    /// A new worker id: `<prefix>/<uuid v7>`.
    pub fn generate(prefix: &str) -> Self {
        Self(format!("{prefix}/{}", Uuid::now_v7()))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerId({})", self.0)
    }
}

/// Identifies a vSphere cluster across vCenters: the cluster's managed object
/// id is only unique inside one vCenter, so the key carries the vCenter URL.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Debug)]
pub struct ClusterKey {
    /// The vCenter's URL as stored on the host (may be empty when unknown).
    pub vcenter_url: String,
    /// The cluster's managed object id (e.g. `domain-c7`).
    pub cluster_moid: String,
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.vcenter_url.is_empty() {
            f.write_str(&self.cluster_moid)
        } else {
            write!(f, "{}#{}", self.vcenter_url, self.cluster_moid)
        }
    }
}
