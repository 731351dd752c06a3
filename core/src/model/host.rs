//! Hosts (servers with a BMC) and the credentials that reach them: the seed's
//! `hosts` and `credentials` tables.

use super::ids::{ClusterKey, CredentialId, DatacenterId, HostId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a host's BMC is managed (`mgmt_kind` in the seed).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MgmtKind {
    /// Dell iDRAC over Redfish with Dell OEM extensions.
    Idrac,
    /// A generic DMTF Redfish BMC (no vendor extensions assumed).
    Redfish,
    /// Dell remote racadm.
    Racadm,
    /// IPMI (inventory and power only; firmware updates are refused).
    Ipmi,
    /// Any other value, kept verbatim so nothing read from a store is lost.
    Other(String),
}

impl MgmtKind {
    /// The stored text form.
    pub fn as_str(&self) -> &str {
        match self {
            MgmtKind::Idrac => "idrac",
            MgmtKind::Redfish => "redfish",
            MgmtKind::Racadm => "racadm",
            MgmtKind::Ipmi => "ipmi",
            MgmtKind::Other(s) => s,
        }
    }
}

impl From<&str> for MgmtKind {
    fn from(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "idrac" => MgmtKind::Idrac,
            "redfish" => MgmtKind::Redfish,
            "racadm" => MgmtKind::Racadm,
            "ipmi" => MgmtKind::Ipmi,
            _ => MgmtKind::Other(s.to_string()),
        }
    }
}

impl fmt::Display for MgmtKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for MgmtKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MgmtKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(MgmtKind::from(s.as_str()))
    }
}

/// A server registered with firmflow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// Identity.
    pub id: HostId,
    /// Fully qualified domain name of the server (the OS side).
    pub fqdn: String,
    /// Management (BMC) address: IP or name, optionally with `:port`.
    pub mgmt_ip: String,
    /// Server model as last read from the BMC, e.g. `PowerEdge R640`.
    pub model: Option<String>,
    /// Dell service tag.
    pub service_tag: Option<String>,
    /// How the BMC is driven.
    pub mgmt_kind: MgmtKind,
    /// vCenter that manages the host's hypervisor, if any.
    pub vcenter_url: Option<String>,
    /// vSphere cluster managed object id.
    pub cluster_moid: Option<String>,
    /// vSphere host managed object id.
    pub host_moid: Option<String>,
    /// Free-form tags for grouping.
    pub tags: Vec<String>,
    /// Datacenter for access control (row-level security in Postgres).
    pub datacenter_id: Option<DatacenterId>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Host {
    /// The cluster this host belongs to, when it is cluster-managed.
    pub fn cluster_key(&self) -> Option<ClusterKey> {
        self.cluster_moid.as_ref().map(|moid| ClusterKey {
            vcenter_url: self.vcenter_url.clone().unwrap_or_default(),
            cluster_moid: moid.clone(),
        })
    }
}

/// What a caller supplies to register a host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewHost {
    /// Fully qualified domain name.
    pub fqdn: String,
    /// Management (BMC) address.
    pub mgmt_ip: String,
    /// Model, if known.
    #[serde(default)]
    pub model: Option<String>,
    /// Service tag, if known.
    #[serde(default)]
    pub service_tag: Option<String>,
    /// Management kind.
    pub mgmt_kind: MgmtKind,
    /// vCenter URL.
    #[serde(default)]
    pub vcenter_url: Option<String>,
    /// Cluster moid.
    #[serde(default)]
    pub cluster_moid: Option<String>,
    /// Host moid.
    #[serde(default)]
    pub host_moid: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Datacenter.
    #[serde(default)]
    pub datacenter_id: Option<DatacenterId>,
}

impl NewHost {
    /// A minimal iDRAC host.
    pub fn idrac(fqdn: impl Into<String>, mgmt_ip: impl Into<String>) -> Self {
        Self {
            fqdn: fqdn.into(),
            mgmt_ip: mgmt_ip.into(),
            model: None,
            service_tag: None,
            mgmt_kind: MgmtKind::Idrac,
            vcenter_url: None,
            cluster_moid: None,
            host_moid: None,
            tags: Vec::new(),
            datacenter_id: None,
        }
    }

    /// Places the host in a vSphere cluster.
    pub fn in_cluster(
        mut self,
        vcenter_url: impl Into<String>,
        cluster_moid: impl Into<String>,
        host_moid: impl Into<String>,
    ) -> Self {
        self.vcenter_url = Some(vcenter_url.into());
        self.cluster_moid = Some(cluster_moid.into());
        self.host_moid = Some(host_moid.into());
        self
    }

    /// Builds the stored host with a fresh id.
    pub fn into_host(self, now: DateTime<Utc>) -> Host {
        Host {
            id: HostId::new(),
            fqdn: self.fqdn,
            mgmt_ip: self.mgmt_ip,
            model: self.model,
            service_tag: self.service_tag,
            mgmt_kind: self.mgmt_kind,
            vcenter_url: self.vcenter_url,
            cluster_moid: self.cluster_moid,
            host_moid: self.host_moid,
            tags: self.tags,
            datacenter_id: self.datacenter_id,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Kind of a credential (`kind` in the seed's `credentials`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// iDRAC / BMC login.
    Idrac,
    /// vCenter login.
    Vcenter,
    /// IPMI login.
    Ipmi,
    /// SSH login.
    Ssh,
}

/// A stored credential reference. The secret itself lives behind a
/// [`crate::credentials::CredentialProvider`]; only the path is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// Identity.
    pub id: CredentialId,
    /// The host it belongs to; `None` for a fleet-wide credential.
    pub host_id: Option<HostId>,
    /// What it logs in to.
    pub kind: CredentialKind,
    /// Where the provider finds it (`env:NAME`, `file:/path#key`, `vault:kv/path`).
    pub vault_path: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}
