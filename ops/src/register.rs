//! Registering hosts read from a hosts file in a store: new fqdns are
//! added, known ones updated, credential references recorded. The CLI's
//! `hosts import` and the daemon's `POST /hosts/import` both use it.

use crate::HostEntry;
use firmflow_core::model::{CredentialKind, Host, NewHost};
use firmflow_core::store::{self, Store};

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Hosts registered.
    pub added: Vec<String>,
    /// Hosts already registered (same fqdn), fields updated.
    pub updated: Vec<String>,
    /// Hosts already registered and unchanged.
    pub unchanged: Vec<String>,
}

/// Registers the hosts of `entries`: new fqdns are added, known ones
/// updated; credential references are recorded (kind idrac).
pub async fn import_entries(
    store: &dyn Store,
    entries: &[HostEntry],
) -> Result<(ImportReport, Vec<Host>), store::Error> {
    let existing = store.list_hosts().await?;
    let mut report = ImportReport::default();
    let mut hosts = Vec::new();
    for e in entries {
        let known = existing
            .iter()
            .find(|h| h.fqdn.eq_ignore_ascii_case(&e.host.fqdn));
        let host = match known {
            None => {
                let h = store.add_host(e.host.clone()).await?;
                report.added.push(h.fqdn.clone());
                h
            }
            Some(h) => {
                let updated = apply(h, &e.host);
                if &updated == h {
                    report.unchanged.push(h.fqdn.clone());
                } else {
                    store.update_host(&updated).await?;
                    report.updated.push(h.fqdn.clone());
                }
                updated
            }
        };
        if let Some(reference) = &e.credential {
            let have = store
                .credentials_for(host.id, CredentialKind::Idrac)
                .await?
                .into_iter()
                .any(|c| c.host_id == Some(host.id) && &c.vault_path == reference);
            if !have {
                store
                    .add_credential(Some(host.id), CredentialKind::Idrac, reference)
                    .await?;
            }
        }
        hosts.push(host);
    }
    Ok((report, hosts))
}

/// `h` with the fields of `n` (id and creation time kept).
pub fn apply(h: &Host, n: &NewHost) -> Host {
    let mut u = h.clone();
    u.mgmt_ip = n.mgmt_ip.clone();
    u.model = n.model.clone().or(u.model);
    u.service_tag = n.service_tag.clone().or(u.service_tag);
    u.mgmt_kind = n.mgmt_kind.clone();
    u.vcenter_url = n.vcenter_url.clone();
    u.cluster_moid = n.cluster_moid.clone();
    u.host_moid = n.host_moid.clone();
    u.tags = n.tags.clone();
    u.datacenter_id = n.datacenter_id;
    u
}
