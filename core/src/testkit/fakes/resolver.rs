//! A resolver over the plan's artifact list, for scenario tests.

use crate::artifacts::{self, ArtifactResolver, ResolveRequest};
use crate::model::{ComponentKind, Package, PackageSource};
use async_trait::async_trait;

/// Resolves every plan artifact whose component the host has and whose
/// version differs from the installed one; artifact metadata
/// `{"rebootRequired": bool}` decides reboots (default: true except BMC).
#[derive(Clone, Copy, Debug, Default)]
pub struct ArtifactListResolver;

#[async_trait]
impl ArtifactResolver for ArtifactListResolver {
    async fn resolve(&self, r: ResolveRequest<'_>) -> Result<Vec<Package>, artifacts::Error> {
        let mut out = Vec::new();
        for a in r.artifacts {
            let Some(installed) = r.inventory.installed_for(&a.component) else {
                continue;
            };
            let target = a.version.clone().unwrap_or_default();
            if installed.version == target && !r.plan.policy.force() {
                continue;
            }
            let kind = installed.kind;
            let reboot = a
                .metadata
                .get("rebootRequired")
                .and_then(|v| v.as_bool())
                .unwrap_or(kind != ComponentKind::Bmc);
            out.push(Package {
                component_id: a.component.clone(),
                name: installed.name.clone(),
                kind,
                target_version: target,
                installed_version: Some(installed.version.clone()),
                source: PackageSource::ImageUri {
                    uri: a.image_uri.clone(),
                },
                checksum: a.checksum.clone(),
                size_bytes: a.size_bytes.map(|s| s.max(0) as u64),
                reboot_required: reboot,
                criticality: None,
            });
        }
        // BMC first, then BIOS, then the rest.
        out.sort_by_key(|p| p.kind);
        Ok(out)
    }
}
