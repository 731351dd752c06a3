//! Plan validation at creation: every problem is listed at once, so a bad
//! plan is refused before a campaign starts, never halfway through it.

use crate::model::{ClusterKey, NewPlan, UpdateMode, check_names};
use std::collections::BTreeMap;
use std::fmt;

/// One problem with a plan, naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// JSON path of the field (`policy.maxConcurrent`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Every problem found in a plan.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid plan: {}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct InvalidPlan(pub Vec<Problem>);

/// What validation knows of the world.
#[derive(Clone, Debug, Default)]
pub struct ValidationContext {
    /// Size of each cluster the plan's hosts belong to (hosts in the cluster
    /// manager, or registered hosts when no manager is configured).
    pub cluster_sizes: BTreeMap<ClusterKey, usize>,
    /// Target host ids that do not exist.
    pub unknown_hosts: Vec<String>,
    /// Names of custom checks registered besides the seed's.
    pub extra_checks: Vec<String>,
}

/// Validates a plan.
pub fn validate_plan(plan: &NewPlan, cx: &ValidationContext) -> Result<(), InvalidPlan> {
    let mut p = Vec::new();
    let mut add = |field: &str, message: String| {
        p.push(Problem {
            field: field.to_string(),
            message,
        })
    };
    let pol = &plan.policy;
    if plan.name.trim().is_empty() {
        add("name", "must not be empty".into());
    }
    match &pol.update_mode {
        UpdateMode::Unknown(m) => add(
            "policy.updateMode",
            format!(
                "unknown mode {m:?}; expected LATEST_FROM_CATALOG, SPECIFIC_PACKAGE or MULTIPART_FILE"
            ),
        ),
        UpdateMode::LatestFromCatalog => {
            if pol
                .catalog_url
                .as_deref()
                .is_none_or(|u| u.trim().is_empty())
            {
                add(
                    "policy.catalogUrl",
                    "LATEST_FROM_CATALOG needs a catalogUrl".into(),
                );
            } else if let Some(u) = &pol.catalog_url
                && u.to_ascii_lowercase().ends_with(".cab")
            {
                add(
                    "policy.catalogUrl",
                    "a .cab catalog is not supported; use Catalog.xml or Catalog.xml.gz".into(),
                );
            }
        }
        UpdateMode::SpecificPackage | UpdateMode::MultipartFile => {
            if plan.artifacts.is_empty() {
                add(
                    "artifacts",
                    format!("{} needs at least one artifact", pol.update_mode),
                );
            }
        }
    }
    for (i, a) in plan.artifacts.iter().enumerate() {
        if a.image_uri.trim().is_empty() {
            add(
                &format!("artifacts[{i}].imageUri"),
                "must not be empty".into(),
            );
        }
        if a.component.trim().is_empty() {
            add(
                &format!("artifacts[{i}].component"),
                "must not be empty".into(),
            );
        }
        if pol.update_mode == UpdateMode::SpecificPackage
            && !a.image_uri.is_empty()
            && ![
                "http://", "https://", "nfs://", "cifs://", "ftp://", "tftp://",
            ]
            .iter()
            .any(|s| a.image_uri.to_ascii_lowercase().starts_with(s))
        {
            add(
                &format!("artifacts[{i}].imageUri"),
                format!("{:?} is not a URI a BMC can fetch", a.image_uri),
            );
        }
        if let Some(c) = &a.checksum
            && !checksum_well_formed(c)
        {
            add(
                &format!("artifacts[{i}].checksum"),
                format!("{c:?} is not sha256:<64 hex> or md5:<32 hex>"),
            );
        }
        if a.size_bytes.is_some_and(|s| s <= 0) {
            add(
                &format!("artifacts[{i}].sizeBytes"),
                "must be positive".into(),
            );
        }
    }
    if pol.max_concurrent == 0 {
        add("policy.maxConcurrent", "must be at least 1".into());
    }
    for (k, size) in &cx.cluster_sizes {
        if pol.min_hosts_online as usize >= *size {
            add(
                "policy.minHostsOnline",
                format!(
                    "{} but cluster {k} has {size} host(s): no host could ever be updated",
                    pol.min_hosts_online
                ),
            );
        }
    }
    let known = |n: &str| {
        check_names::PREFLIGHT.contains(&n)
            || check_names::VALIDATION.contains(&n)
            || cx.extra_checks.iter().any(|e| e == n)
    };
    for (i, c) in pol.preflight_checks.iter().enumerate() {
        if !known(c) {
            add(
                &format!("policy.preflightChecks[{i}]"),
                format!("unknown check {c:?}"),
            );
        }
    }
    for (i, c) in pol.post_update_validation.iter().enumerate() {
        if !known(c) {
            add(
                &format!("policy.postUpdateValidation[{i}]"),
                format!("unknown check {c:?}"),
            );
        }
    }
    for k in pol.unknown.keys() {
        add(&format!("policy.{k}"), "unknown policy key".into());
    }
    if let Some(b) = &pol.failure_budget
        && let Some(pct) = b.max_failure_percent
        && !(0.0..=100.0).contains(&pct)
    {
        add(
            "policy.failureBudget.maxFailurePercent",
            "must be between 0 and 100".into(),
        );
    }
    if let Some(r) = &pol.retry {
        if r.max_attempts == 0 {
            add("policy.retry.maxAttempts", "must be at least 1".into());
        }
        if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
            add("policy.retry.multiplier", "must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&r.jitter) {
            add("policy.retry.jitter", "must be between 0 and 1".into());
        }
    }
    if let Some(w) = &plan.maintenance_window
        && w.end <= w.start
    {
        add(
            "maintenanceWindow",
            format!("ends ({}) before it starts ({})", w.end, w.start),
        );
    }
    if plan.targets.is_empty() {
        add("targets", "a plan needs at least one host".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in &plan.targets {
        if !seen.insert(t.host_id) {
            add("targets", format!("host {} listed twice", t.host_id));
        }
    }
    for h in &cx.unknown_hosts {
        add("targets", format!("unknown host {h}"));
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(InvalidPlan(p))
    }
}

fn checksum_well_formed(c: &str) -> bool {
    let (algo, hex) = match c.split_once(':') {
        Some((a, h)) => (a.to_ascii_lowercase(), h),
        None => ("sha256".to_string(), c),
    };
    let want = match algo.as_str() {
        "sha256" => 64,
        "md5" => 32,
        _ => return false,
    };
    hex.len() == want && hex.chars().all(|ch| ch.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use chrono::Utc;

    fn base() -> NewPlan {
        let mut policy = Policy::new(UpdateMode::LatestFromCatalog);
        policy.catalog_url = Some("https://dl.dell.com/catalog/Catalog.xml.gz".into());
        NewPlan {
            name: "p".into(),
            policy,
            maintenance_window: None,
            approval_required: false,
            targets: vec![PlanTarget {
                host_id: HostId::new(),
                priority: 0,
                conditions: serde_json::json!({}),
            }],
            artifacts: vec![],
            created_by: None,
            idempotency_key: None,
        }
    }

    #[test]
    fn valid_plan_passes() {
        assert_eq!(
            validate_plan(&base(), &ValidationContext::default()),
            Ok(())
        );
    }

    #[test]
    fn every_problem_is_listed() {
        let mut p = base();
        p.policy = serde_json::from_value(serde_json::json!({
            "updateMode": "LATEST_EVERYTHING",
            "maxConcurrent": 0,
            "minHostsOnline": 3,
            "preflightChecks": ["connectivity", "vibes"],
            "maxConcurent": 2
        }))
        .unwrap_or_else(|_| Policy::new(UpdateMode::Unknown("x".into())));
        let now = Utc::now();
        p.maintenance_window = Some(MaintenanceWindow {
            start: now,
            end: now - chrono::Duration::hours(1),
        });
        let mut cx = ValidationContext::default();
        cx.cluster_sizes.insert(
            ClusterKey {
                vcenter_url: "vc".into(),
                cluster_moid: "c1".into(),
            },
            3,
        );
        let err = validate_plan(&p, &cx).expect_err("must refuse");
        let fields: Vec<_> = err.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "policy.updateMode",
                "policy.maxConcurrent",
                "policy.minHostsOnline",
                "policy.preflightChecks[1]",
                "policy.maxConcurent",
                "maintenanceWindow"
            ],
            "{err}"
        );
    }

    #[test]
    fn specific_package_needs_artifacts_with_good_checksums() {
        let mut p = base();
        p.policy.update_mode = UpdateMode::SpecificPackage;
        let err = validate_plan(&p, &ValidationContext::default()).expect_err("refuse");
        assert_eq!(err.0[0].field, "artifacts");
        p.artifacts.push(Artifact {
            id: ArtifactId::new(),
            component: "BIOS".into(),
            image_uri: "/tmp/bios.exe".into(),
            version: Some("2.1".into()),
            checksum: Some("sha256:abc".into()),
            size_bytes: Some(0),
            metadata: serde_json::json!({}),
        });
        let err = validate_plan(&p, &ValidationContext::default()).expect_err("refuse");
        assert_eq!(err.0.len(), 3, "{err}");
    }
}
