//! Discovery: which vCenter host is which firmflow host, so a host record
//! gets its `vcenter_url`, `cluster_moid` and `host_moid`.
//!
//! The service tag is the reliable key (Dell puts it in the SMBIOS serial
//! number, which ESXi reports as `hardware.systemInfo.serialNumber` and in
//! `otherIdentifyingInfo`); names are the fallback, since vCenter host names
//! are whatever an admin typed when adding the host (FQDN, short name or IP).

use crate::client::VimClient;
use crate::error::VimError;
use crate::soap::{MoRef, ObjectContent};
use firmflow_core::model::{Host, HostId};
use std::collections::BTreeMap;

/// A host as vCenter knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcenterHost {
    /// Host managed object id.
    pub host_moid: String,
    /// Name in vCenter.
    pub name: String,
    /// The cluster it belongs to; `None` for a standalone host.
    pub cluster_moid: Option<String>,
    /// `hardware.systemInfo.vendor`.
    pub vendor: Option<String>,
    /// `hardware.systemInfo.model`.
    pub model: Option<String>,
    /// `hardware.systemInfo.serialNumber` (vSphere 6.7+).
    pub serial_number: Option<String>,
    /// `otherIdentifyingInfo` entry `ServiceTag`.
    pub service_tag: Option<String>,
    /// Other serial-like identifiers (`EnclosureSerialNumberTag`, `SerialNumberTag`).
    pub other_serials: Vec<String>,
}

/// SMBIOS placeholders some vendors leave in serial fields.
fn meaningful(s: &str) -> Option<String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let placeholder = t.is_empty()
        || lower == "not specified"
        || lower == "none"
        || lower.contains("to be filled")
        || lower.chars().all(|c| c == '0' || c == ' ');
    (!placeholder).then(|| t.to_string())
}

impl VcenterHost {
    fn from_object(o: &ObjectContent) -> Self {
        let parent = o.prop("parent").and_then(MoRef::from_element);
        let info = o.prop("hardware.systemInfo");
        let mut service_tag = None;
        let mut other_serials = Vec::new();
        if let Some(info) = info {
            for id in info.children_named("otherIdentifyingInfo") {
                let key = id.text_at(&["identifierType", "key"]).unwrap_or("");
                let Some(value) = id.text_at(&["identifierValue"]).and_then(meaningful) else {
                    continue;
                };
                match key {
                    "ServiceTag" => service_tag = Some(value),
                    "EnclosureSerialNumberTag" | "SerialNumberTag" => other_serials.push(value),
                    _ => {}
                }
            }
        }
        let field = |name: &str| info.and_then(|i| i.text_at(&[name])).and_then(meaningful);
        Self {
            host_moid: o.obj.value.clone(),
            name: o.text("name").unwrap_or(&o.obj.value).to_string(),
            cluster_moid: parent
                .filter(|p| p.kind == "ClusterComputeResource")
                .map(|p| p.value),
            vendor: field("vendor"),
            model: field("model"),
            serial_number: field("serialNumber"),
            service_tag,
            other_serials,
        }
    }

    /// Whether this host carries `tag` in any serial field (case-insensitive).
    pub fn has_tag(&self, tag: &str) -> bool {
        let tag = tag.trim();
        !tag.is_empty()
            && self
                .serial_number
                .iter()
                .chain(self.service_tag.iter())
                .chain(self.other_serials.iter())
                .any(|s| s.eq_ignore_ascii_case(tag))
    }

    fn name_matches(&self, fqdn: &str) -> bool {
        let norm = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
        let (name, fqdn) = (norm(&self.name), norm(fqdn));
        if name.is_empty() || fqdn.is_empty() {
            return false;
        }
        // A short name in vCenter matches the FQDN's first label.
        name == fqdn || (!name.contains('.') && fqdn.split('.').next() == Some(name.as_str()))
    }
}

/// How a mapping was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    /// Service tag / serial number.
    ServiceTag,
    /// Host name.
    Fqdn,
}

/// The cluster fields to fill on one firmflow host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostMapping {
    /// The firmflow host.
    pub host_id: HostId,
    /// The vCenter URL (as configured for the client).
    pub vcenter_url: String,
    /// Cluster moid; `None` for a standalone host.
    pub cluster_moid: Option<String>,
    /// Host moid.
    pub host_moid: String,
    /// The host's name in vCenter.
    pub vcenter_name: String,
    /// Evidence.
    pub matched_by: MatchedBy,
}

impl HostMapping {
    /// Whether applying would change the host.
    pub fn changes(&self, host: &Host) -> bool {
        host.vcenter_url.as_deref() != Some(self.vcenter_url.as_str())
            || host.cluster_moid != self.cluster_moid
            || host.host_moid.as_deref() != Some(self.host_moid.as_str())
    }

    /// Writes the fields into a host record.
    pub fn apply_to(&self, host: &mut Host) {
        host.vcenter_url = Some(self.vcenter_url.clone());
        host.cluster_moid = self.cluster_moid.clone();
        host.host_moid = Some(self.host_moid.clone());
    }
}

/// A firmflow host that several vCenter hosts (or another firmflow host) claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ambiguity {
    /// The firmflow host.
    pub host_id: HostId,
    /// The candidate vCenter host moids.
    pub candidates: Vec<String>,
}

/// The result of matching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Unambiguous matches.
    pub mapped: Vec<HostMapping>,
    /// Hosts vCenter does not know.
    pub unmatched: Vec<HostId>,
    /// Hosts left alone because the evidence points more than one way.
    pub ambiguous: Vec<Ambiguity>,
}

/// Matches firmflow hosts to vCenter hosts: by service tag first, then by
/// name. Nothing ambiguous is mapped: two candidates for one host, or one
/// vCenter host claimed by two firmflow hosts, are reported instead.
pub fn match_hosts(vcenter_url: &str, hosts: &[Host], found: &[VcenterHost]) -> Discovery {
    let mut d = Discovery::default();
    let mut picks: Vec<(HostId, &VcenterHost, MatchedBy)> = Vec::new();
    for h in hosts {
        let by_tag: Vec<&VcenterHost> = h
            .service_tag
            .as_deref()
            .map(|t| found.iter().filter(|v| v.has_tag(t)).collect())
            .unwrap_or_default();
        let (cands, how) = if by_tag.is_empty() {
            let by_name: Vec<&VcenterHost> =
                found.iter().filter(|v| v.name_matches(&h.fqdn)).collect();
            (by_name, MatchedBy::Fqdn)
        } else {
            (by_tag, MatchedBy::ServiceTag)
        };
        match cands.as_slice() {
            [] => d.unmatched.push(h.id),
            [one] => picks.push((h.id, one, how)),
            many => d.ambiguous.push(Ambiguity {
                host_id: h.id,
                candidates: many.iter().map(|v| v.host_moid.clone()).collect(),
            }),
        }
    }
    let mut claims: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, v, _) in &picks {
        *claims.entry(v.host_moid.as_str()).or_default() += 1;
    }
    for (host_id, v, how) in picks {
        if claims.get(v.host_moid.as_str()).copied().unwrap_or(0) > 1 {
            d.ambiguous.push(Ambiguity {
                host_id,
                candidates: vec![v.host_moid.clone()],
            });
        } else {
            d.mapped.push(HostMapping {
                host_id,
                vcenter_url: vcenter_url.to_string(),
                cluster_moid: v.cluster_moid.clone(),
                host_moid: v.host_moid.clone(),
                vcenter_name: v.name.clone(),
                matched_by: how,
            });
        }
    }
    d
}

impl VimClient {
    /// Every host in the vCenter's inventory with its identity.
    pub async fn list_hosts(&self) -> Result<Vec<VcenterHost>, VimError> {
        let objs = self
            .all_hosts(vec!["name", "parent", "hardware.systemInfo"])
            .await?;
        let mut hosts: Vec<VcenterHost> = objs.iter().map(VcenterHost::from_object).collect();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(hosts)
    }
}

/// Lists the vCenter's hosts and matches them to `hosts`.
pub async fn discover(client: &VimClient, hosts: &[Host]) -> Result<Discovery, VimError> {
    let found = client.list_hosts().await?;
    Ok(match_hosts(&client.config().url, hosts, &found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::host;

    fn vc(moid: &str, name: &str, cluster: Option<&str>, tag: Option<&str>) -> VcenterHost {
        VcenterHost {
            host_moid: moid.into(),
            name: name.into(),
            cluster_moid: cluster.map(Into::into),
            vendor: Some("Dell Inc.".into()),
            model: None,
            serial_number: tag.map(Into::into),
            service_tag: None,
            other_serials: vec![],
        }
    }

    #[test]
    fn reads_system_info_and_parent() {
        let e = crate::xml::parse(
            r#"<objects xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><obj type="HostSystem">host-9</obj>
              <propSet><name>name</name><val>esx9.lab</val></propSet>
              <propSet><name>parent</name><val xsi:type="ManagedObjectReference" type="ClusterComputeResource">domain-c7</val></propSet>
              <propSet><name>hardware.systemInfo</name><val xsi:type="HostSystemInfo">
                <vendor>Dell Inc.</vendor><model>PowerEdge R640</model><uuid>u</uuid>
                <otherIdentifyingInfo><identifierValue> Not Specified</identifierValue>
                  <identifierType><label>Asset Tag</label><summary>x</summary><key>AssetTag</key></identifierType></otherIdentifyingInfo>
                <otherIdentifyingInfo><identifierValue>7XK9F33</identifierValue>
                  <identifierType><label>Service tag</label><summary>x</summary><key>ServiceTag</key></identifierType></otherIdentifyingInfo>
                <serialNumber>To Be Filled By O.E.M.</serialNumber>
              </val></propSet></objects>"#,
        )
        .expect("xml");
        let v = VcenterHost::from_object(&ObjectContent::from_element(&e).expect("obj"));
        assert_eq!(v.cluster_moid.as_deref(), Some("domain-c7"));
        assert_eq!(v.service_tag.as_deref(), Some("7XK9F33"));
        assert_eq!(v.serial_number, None);
        assert!(v.has_tag("7xk9f33"));
        assert!(!v.has_tag(""));
    }

    #[test]
    fn tag_beats_name_and_short_names_match() {
        let mut a = host("esx1.lab.example");
        a.service_tag = Some("TAG0001".into());
        let b = host("esx2.lab.example");
        let c = host("esx3.lab.example");
        let found = vec![
            vc("host-1", "10.0.0.1", Some("c1"), Some("TAG0001")),
            vc("host-2", "ESX2", Some("c1"), None),
            vc("host-3", "esx1.lab.example", None, None),
        ];
        let d = match_hosts("https://vc", &[a.clone(), b.clone(), c.clone()], &found);
        assert_eq!(d.mapped.len(), 2, "{d:?}");
        assert_eq!(d.mapped[0].host_moid, "host-1");
        assert_eq!(d.mapped[0].matched_by, MatchedBy::ServiceTag);
        assert_eq!(d.mapped[1].host_moid, "host-2");
        assert_eq!(d.mapped[1].matched_by, MatchedBy::Fqdn);
        assert_eq!(d.unmatched, vec![c.id]);
        let mut a2 = a.clone();
        assert!(d.mapped[0].changes(&a2));
        d.mapped[0].apply_to(&mut a2);
        assert_eq!(a2.cluster_moid.as_deref(), Some("c1"));
        assert_eq!(a2.vcenter_url.as_deref(), Some("https://vc"));
        assert!(!d.mapped[0].changes(&a2));
    }

    #[test]
    fn ambiguity_is_reported_not_guessed() {
        let mut a = host("esx1.lab.example");
        a.service_tag = Some("DUP".into());
        let b = host("esx2.lab.example");
        let b2 = host("ESX2.lab.example.");
        let found = vec![
            vc("host-1", "x", None, Some("DUP")),
            vc("host-2", "y", None, Some("dup")),
            vc("host-3", "esx2.lab.example", None, None),
        ];
        let d = match_hosts("https://vc", &[a.clone(), b.clone(), b2.clone()], &found);
        assert!(d.mapped.is_empty(), "{d:?}");
        assert_eq!(d.ambiguous.len(), 3);
        assert_eq!(d.ambiguous[0].candidates, vec!["host-1", "host-2"]);
    }
}
