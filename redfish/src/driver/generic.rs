//! The generic-Redfish side of [`RedfishDriver`]: what a DMTF service that
//! is not an iDRAC needs and an iDRAC never does.
//!
//! - `SimpleUpdate` with `Targets`: sent when the action's
//!   `@Redfish.ActionInfo` marks the parameter required, or once more after
//!   a 400 that names `Targets` (services that only say so when refusing);
//! - an inventory without `UpdateService.FirmwareInventory`: the BIOS
//!   version of each system (`BiosVersion`) and the firmware of each
//!   manager (`FirmwareVersion`); verification reads the same fields, as it
//!   goes through [`RedfishDriver::inventory`] too;
//! - the system's `Manufacturer`, so a caller can tell a Dell catalog does
//!   not apply before matching system ids.

use super::{RedfishDriver, Services, members, set_field};
use crate::client::Reply;
use firmflow_core::bmc::{self, ErrorKind, FirmwareComponent};
use firmflow_core::model::{ComponentKind, Package};
use serde_json::{Value, json};

/// The SimpleUpdate parameters advertised by an ActionInfo document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimpleUpdateInfo {
    /// `Targets` is a required parameter.
    pub targets_required: bool,
    /// `AllowableValues` of `Targets`, when listed.
    pub allowable_targets: Vec<String>,
}

/// Reads `Parameters[Name=Targets]` of an ActionInfo document.
pub(super) fn simple_update_info(doc: &Value) -> SimpleUpdateInfo {
    let targets = doc
        .get("Parameters")
        .and_then(Value::as_array)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("Name").and_then(Value::as_str) == Some("Targets"))
        });
    SimpleUpdateInfo {
        targets_required: targets
            .and_then(|t| t.get("Required"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        allowable_targets: super::strings(targets.and_then(|t| t.get("AllowableValues"))),
    }
}

/// Whether a refused SimpleUpdate asks for `Targets`: a 400 whose message
/// (or message arguments, kept in the text) names the parameter.
fn asks_for_targets(e: &bmc::Error) -> bool {
    e.message.contains("(HTTP 400)") && e.message.to_ascii_lowercase().contains("targets")
}

impl RedfishDriver {
    /// POSTs a generic SimpleUpdate, adding `Targets` when the service
    /// requires them (ActionInfo) or refuses the request for want of them.
    pub(super) async fn generic_simple_update(
        &self,
        s: &Services,
        target: &str,
        mut body: Value,
        package: Option<&Package>,
    ) -> Result<Reply, bmc::Error> {
        if s.simple_update_info.targets_required {
            let targets = self.update_targets(s, package).await?;
            set_field(&mut body, "Targets", json!(targets));
            return self.client.action(target, &body).await;
        }
        match self.client.action(target, &body).await {
            Err(e) if asks_for_targets(&e) => {
                tracing::info!(host = %self.host(), error = %e, "SimpleUpdate refused without Targets; retrying once with Targets");
                let targets = self.update_targets(s, package).await.map_err(|t| {
                    self.err(
                        t.kind.clone(),
                        format!(
                            "{}; and no Targets could be chosen: {}",
                            e.message, t.message
                        ),
                    )
                })?;
                set_field(&mut body, "Targets", json!(targets));
                self.client.action(target, &body).await
            }
            other => other,
        }
    }

    /// The `Targets` of an update: the inventory member of the package's
    /// component, else the ActionInfo's only allowable value, else the only
    /// updateable member.
    async fn update_targets(
        &self,
        s: &Services,
        package: Option<&Package>,
    ) -> Result<Vec<String>, bmc::Error> {
        let allowable = &s.simple_update_info.allowable_targets;
        let inventory = self.inventory_members(s).await?;
        if let Some(p) = package {
            let named = inventory.iter().find(|(_, c)| {
                c.installed
                    && (c.component_id.as_deref() == Some(p.component_id.as_str())
                        || c.id == p.component_id)
            });
            let by_kind = || {
                let mut of_kind = inventory
                    .iter()
                    .filter(|(_, c)| c.installed && c.updateable && c.kind == p.kind);
                match (of_kind.next(), of_kind.next()) {
                    (Some(only), None) if p.kind != ComponentKind::Other => Some(only),
                    _ => None,
                }
            };
            if let Some((uri, _)) = named.or_else(by_kind) {
                return Ok(vec![uri.clone()]);
            }
        }
        if let [only] = allowable.as_slice() {
            return Ok(vec![only.clone()]);
        }
        let mut updateable = inventory.iter().filter(|(_, c)| c.updateable);
        if let (Some((uri, _)), None) = (updateable.next(), updateable.next()) {
            return Ok(vec![uri.clone()]);
        }
        Err(self.err(
            ErrorKind::NotSupported,
            format!(
                "SimpleUpdate requires Targets, and none of the {} firmware inventory entries (allowable: {}) matches component {}",
                inventory.len(),
                if allowable.is_empty() {
                    "not listed".to_string()
                } else {
                    allowable.join(", ")
                },
                package.map_or("(unknown)", |p| p.component_id.as_str())
            ),
        ))
    }

    /// The firmware inventory with each member's URI (the value `Targets`
    /// takes): the FirmwareInventory collection when there is one, else
    /// the system and manager resources.
    pub(super) async fn inventory_members(
        &self,
        s: &Services,
    ) -> Result<Vec<(String, FirmwareComponent)>, bmc::Error> {
        let Some(fi) = &s.firmware_inventory else {
            return self.versions_without_inventory(s).await;
        };
        let coll = if s.expand {
            self.client.get_expanded(fi).await?
        } else {
            self.client.get(fi).await?
        };
        let mut out = Vec::new();
        for m in members(&coll) {
            let Some(link) = m.get("@odata.id").and_then(Value::as_str) else {
                continue;
            };
            // Expanded members carry their Id; otherwise read each one.
            let doc = if m.get("Id").is_some() {
                m.clone()
            } else {
                self.client.get(link).await?
            };
            if let Some(c) = self.component_from(doc, Some(link)) {
                out.push((link.to_string(), c));
            }
        }
        Ok(out)
    }

    /// Versions of a service without FirmwareInventory: `BiosVersion` of
    /// each system, `FirmwareVersion` of each manager. Each component's id
    /// is the resource it was read from (so it is also its update target).
    async fn versions_without_inventory(
        &self,
        s: &Services,
    ) -> Result<Vec<(String, FirmwareComponent)>, bmc::Error> {
        let mut out = Vec::new();
        let updateable = s.simple_update.is_some() || s.multipart.is_some();
        let mut read = |uri: &str, doc: &Value, field: &str, kind: ComponentKind, what: &str| {
            if let Some(v) = doc.get(field).and_then(Value::as_str) {
                let name = doc
                    .get("Name")
                    .and_then(Value::as_str)
                    .map_or_else(|| what.to_string(), |n| format!("{what} ({n})"));
                out.push((
                    uri.to_string(),
                    FirmwareComponent {
                        id: uri.to_string(),
                        name,
                        version: v.to_string(),
                        component_id: None,
                        kind,
                        updateable,
                        installed: true,
                        pci: None,
                        release_date: None,
                    },
                ));
            }
        };
        let sys = self.client.get(&s.system).await?;
        read(&s.system, &sys, "BiosVersion", ComponentKind::Bios, "BIOS");
        if let Some(m) = &s.manager {
            let mgr = self.client.get(m).await?;
            read(
                m,
                &mgr,
                "FirmwareVersion",
                ComponentKind::Bmc,
                "BMC firmware",
            );
        }
        if out.is_empty() {
            return Err(self.err(
                ErrorKind::NotSupported,
                format!(
                    "the service has no UpdateService.FirmwareInventory, and neither {} (BiosVersion) nor {} (FirmwareVersion) reports a version",
                    s.system,
                    s.manager.as_deref().unwrap_or("a manager")
                ),
            ));
        }
        Ok(out)
    }

    /// The computer system's `Manufacturer` (e.g. `Dell Inc.`, `HPE`,
    /// `Supermicro`), when it reports one.
    pub async fn manufacturer(&self) -> Result<Option<String>, bmc::Error> {
        let s = self.services().await?;
        let sys = self.client.get(&s.system).await?;
        Ok(sys
            .get("Manufacturer")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .filter(|m| !m.trim().is_empty()))
    }

    /// Reads the SimpleUpdate ActionInfo, when the action links one.
    pub(super) async fn read_simple_update_info(&self, action: &Value) -> SimpleUpdateInfo {
        let Some(uri) = action.get("@Redfish.ActionInfo").and_then(Value::as_str) else {
            return SimpleUpdateInfo {
                allowable_targets: super::strings(action.get("Targets@Redfish.AllowableValues")),
                ..SimpleUpdateInfo::default()
            };
        };
        match self.client.get(uri).await {
            Ok(doc) => simple_update_info(&doc),
            Err(e) => {
                // Without it the 400-and-retry path still finds Targets.
                tracing::warn!(host = %self.host(), %uri, error = %e, "SimpleUpdate ActionInfo unreadable");
                SimpleUpdateInfo::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_info_targets() {
        let doc = json!({"Parameters": [
            {"Name": "ImageURI", "Required": true},
            {"Name": "Targets", "Required": true, "AllowableValues": ["/redfish/v1/UpdateService/FirmwareInventory/BMC"]}
        ]});
        let info = simple_update_info(&doc);
        assert!(info.targets_required);
        assert_eq!(
            info.allowable_targets,
            vec!["/redfish/v1/UpdateService/FirmwareInventory/BMC".to_string()]
        );
        assert!(
            !simple_update_info(&json!({"Parameters": [{"Name": "Targets"}]})).targets_required
        );
        assert_eq!(simple_update_info(&json!({})), SimpleUpdateInfo::default());
    }

    #[test]
    fn only_a_400_naming_targets_asks_for_them() {
        let e = |m: &str| bmc::Error::new("h", ErrorKind::Other, m);
        assert!(asks_for_targets(&e(
            "The property Targets is a required property (HTTP 400)"
        )));
        assert!(!asks_for_targets(&e("Targets missing (HTTP 500)")));
        assert!(!asks_for_targets(&e("bad ImageURI (HTTP 400)")));
    }
}
