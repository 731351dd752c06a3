//! The `Check` port: one preflight check or post-update validation, named by
//! the policy; and the seed's six built-in checks.

use crate::bmc::{BmcDriver, Health, PowerState};
use crate::cluster::ClusterManager;
use crate::model::{Host, PackageProgress, PackageStatus, Plan, check_names};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a check sees.
#[derive(Clone, Copy)]
pub struct CheckContext<'a> {
    /// The host.
    pub host: &'a Host,
    /// The plan.
    pub plan: &'a Plan,
    /// Its BMC.
    pub bmc: &'a dyn BmcDriver,
    /// The cluster manager, when one is configured.
    pub cluster: Option<&'a dyn ClusterManager>,
    /// Packages and their progress (empty before resolve).
    pub packages: &'a [PackageProgress],
    /// Whether the run will put the host in maintenance mode.
    pub needs_maintenance: bool,
}

/// A check's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Passed.
    Pass,
    /// Failed; `transient` when trying again later may pass.
    Fail {
        /// Why, for people.
        reason: String,
        /// Whether a retry may help.
        transient: bool,
    },
}

impl CheckOutcome {
    fn fail(reason: impl Into<String>, transient: bool) -> Self {
        CheckOutcome::Fail {
            reason: reason.into(),
            transient,
        }
    }
}

/// One named check.
#[async_trait]
pub trait Check: Send + Sync {
    /// The name policies use.
    fn name(&self) -> &str;
    /// Runs it.
    async fn run(&self, cx: CheckContext<'_>) -> CheckOutcome;
}

/// Checks by name: the built-ins plus any registered.
#[derive(Clone)]
pub struct CheckRegistry {
    checks: BTreeMap<String, Arc<dyn Check>>,
}

impl Default for CheckRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl CheckRegistry {
    /// The seed's six checks.
    pub fn builtin() -> Self {
        let mut r = Self {
            checks: BTreeMap::new(),
        };
        r.register(Arc::new(Connectivity));
        r.register(Arc::new(Compatibility));
        r.register(Arc::new(ClusterHealthCheck));
        r.register(Arc::new(FirmwareVersion));
        r.register(Arc::new(SystemHealth));
        r.register(Arc::new(NetworkConnectivity));
        r
    }
    /// Adds (or replaces) a check.
    pub fn register(&mut self, check: Arc<dyn Check>) {
        self.checks.insert(check.name().to_string(), check);
    }
    /// A check by name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Check>> {
        self.checks.get(name).cloned()
    }
    /// Names of non-built-in checks (for plan validation).
    pub fn extra_names(&self) -> Vec<String> {
        self.checks
            .keys()
            .filter(|k| {
                !check_names::PREFLIGHT.contains(&k.as_str())
                    && !check_names::VALIDATION.contains(&k.as_str())
            })
            .cloned()
            .collect()
    }
}

/// `connectivity`: the BMC answers and accepts our login.
struct Connectivity;

#[async_trait]
impl Check for Connectivity {
    fn name(&self) -> &str {
        check_names::CONNECTIVITY
    }
    async fn run(&self, cx: CheckContext<'_>) -> CheckOutcome {
        match cx.bmc.system().await {
            Ok(_) => CheckOutcome::Pass,
            Err(e) => CheckOutcome::fail(e.to_string(), e.is_transient()),
        }
    }
}

/// `compatibility`: the BMC can take updates now (Lifecycle Controller
/// ready, power state known). Package-to-system matching is the resolver's
/// job: it refuses packages for another system or component.
struct Compatibility;

#[async_trait]
impl Check for Compatibility {
    fn name(&self) -> &str {
        check_names::COMPATIBILITY
    }
    async fn run(&self, cx: CheckContext<'_>) -> CheckOutcome {
        match cx.bmc.readiness().await {
            Ok(r) if r.ready => CheckOutcome::Pass,
            Ok(r) => CheckOutcome::fail(
                format!(
                    "update service not ready{}",
                    r.detail.map(|d| format!(": {d}")).unwrap_or_default()
                ),
                true,
            ),
            Err(e) => CheckOutcome::fail(e.to_string(), e.is_transient()),
        }
    }
}

/// `cluster_health`: the host's cluster can lose a host now.
struct ClusterHealthCheck;

#[async_trait]
impl Check for ClusterHealthCheck {
    fn name(&self) -> &str {
        check_names::CLUSTER_HEALTH
    }
    async fn run(&self, cx: CheckContext<'_>) -> CheckOutcome {
        let (Some(cm), Some(key)) = (cx.cluster, cx.host.cluster_key()) else {
            // Not a cluster member, or no cluster manager: nothing to protect.
            return CheckOutcome::Pass;
        };
        match cm.cluster_health(&key).await {
            Ok(h) => {
                let problems = h.problems(cx.needs_maintenance);
                if problems.is_empty() {
                    CheckOutcome::Pass
                } else {
                    CheckOutcome::fail(format!("cluster {key}: {}", problems.join("; ")), true)
                }
            }
            Err(e) => CheckOutcome::fail(e.to_string(), e.is_transient()),
        }
    }
}

/// `firmware_version`: every installed package reads back at its target.
struct FirmwareVersion;

#[async_trait]
impl Check for FirmwareVersion {
    fn name(&self) -> &str {
        check_names::FIRMWARE_VERSION
    }
    async fn run(&self, cx: CheckContext<'_>) -> CheckOutcome {
        let inv = match cx.bmc.inventory().await {
            Ok(i) => i,
            Err(e) => return CheckOutcome::fail(e.to_string(), e.is_transient()),
        };
        let mut wrong = Vec::new();
        for p in cx.packages {
            if let PackageStatus::Installed { .. } = p.status {
                let have = inv
                    .installed_for_package(&p.package)
                    .map(|c| c.version.clone());
                if have.as_deref().map(str::trim) != Some(p.package.target_version.trim()) {
                    wrong.push(format!(
                        "{}: expected {}, found {}",
                        p.package.name,
                        p.package.target_version,
                        have.unwrap_or_else(|| "nothing".into())
                    ));
                }
            }
        }
        if wrong.is_empty() {
            CheckOutcome::Pass
        } else {
            CheckOutcome::fail(wrong.join("; "), false)
        }
    }
}

/// `system_health`: the system does not report critical health.
struct SystemHealth;

#[async_trait]
impl Check for SystemHealth {
    fn name(&self) -> &str {
        check_names::SYSTEM_HEALTH
    }
    async fn run(&self, cx: CheckContext<'_>) -> CheckOutcome {
        match cx.bmc.system().await {
            Ok(s) if s.health == Health::Critical => {
                CheckOutcome::fail("system health is critical", false)
            }
            Ok(_) => CheckOutcome::Pass,
            Err(e) => CheckOutcome::fail(e.to_string(), e.is_transient()),
        }
    }
}

/// `network_connectivity`: the host is powered on and its BMC is ready.
struct NetworkConnectivity;

#[async_trait]
impl Check for NetworkConnectivity {
    fn name(&self) -> &str {
        check_names::NETWORK_CONNECTIVITY
    }
    async fn run(&self, cx: CheckContext<'_>) -> CheckOutcome {
        match cx.bmc.readiness().await {
            Ok(r) if r.power == PowerState::On && r.ready => CheckOutcome::Pass,
            Ok(r) => CheckOutcome::fail(
                format!("host not back: power {:?}, ready {}", r.power, r.ready),
                true,
            ),
            Err(e) => CheckOutcome::fail(e.to_string(), e.is_transient()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn _object_safe(_: &dyn Check) {}

    #[test]
    fn builtins_are_registered() {
        let r = CheckRegistry::builtin();
        for n in check_names::PREFLIGHT
            .iter()
            .chain(check_names::VALIDATION.iter())
        {
            assert!(r.get(n).is_some(), "{n}");
        }
        assert!(r.extra_names().is_empty());
    }
}
