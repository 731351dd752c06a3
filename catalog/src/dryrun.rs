//! Whole-campaign dry run: what a plan will do, computed from inventories
//! already read, without touching any server.
//!
//! For every target host it works out the packages (catalog compliance, or
//! the plan's artifacts matched to the inventory), the host reboots and BMC
//! restarts, whether the host enters maintenance mode, and how long its run
//! takes under a [`DurationModel`]. Then it replays admission with core's
//! own [`StandardAdmission`] (the rules the stores apply: `maxConcurrent`,
//! `minHostsOnline` per cluster, priority order, the maintenance window)
//! in a discrete-event simulation: every instant at which hosts are
//! admitted is a **wave**. Hosts admission would never start (a cluster too
//! small for `minHostsOnline`, a window too short) are listed as blocked.
//!
//! The simulation assumes every run succeeds and takes its estimated time;
//! it follows the design's host run (one reboot per reboot-requiring
//! package, maintenance mode around the disruptive part).

use crate::compliance::{Summary, assess_host};
use crate::index::CatalogIndex;
use crate::locator::PackageLocator;
use crate::order::sort_install_order;
use crate::version::{VersionOrdering, compare_for_kind};
use chrono::{DateTime, Utc};
use firmflow_core::bmc::{Inventory, SystemInfo};
use firmflow_core::model::{
    Artifact, ClusterKey, ComponentKind, Host, HostId, Package, PackageSource, Plan, PlanStatus,
    PlanTarget, RunId, RunState, UpdateMode,
};
use firmflow_core::policy::{
    AdmissionPolicy, AdmissionSnapshot, Candidate, ClusterView, Deferral, PlanView, RunCounts,
    StandardAdmission,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

/// What the dry run knows about one host (read earlier from its BMC).
#[derive(Clone, Debug)]
pub struct HostFacts {
    /// The host.
    pub host: Host,
    /// System facts.
    pub system: SystemInfo,
    /// Firmware inventory.
    pub inventory: Inventory,
}

/// How long things take, for the estimate. Defaults follow Dell's
/// published figures (an update 10–15 minutes, a reboot with POST and the
/// Lifecycle Controller several more) and core's phase timeouts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DurationModel {
    /// Preflight checks.
    pub preflight: Duration,
    /// Entering maintenance mode (VM evacuation).
    pub enter_maintenance: Duration,
    /// Leaving maintenance mode.
    pub exit_maintenance: Duration,
    /// A BMC (iDRAC) update including its restart.
    pub bmc_update: Duration,
    /// Download and staging of one host package.
    pub package_install: Duration,
    /// One host reboot until the host and its Lifecycle Controller are ready.
    pub host_reboot: Duration,
    /// Post-update validation.
    pub validation: Duration,
}

impl Default for DurationModel {
    fn default() -> Self {
        Self {
            preflight: Duration::from_secs(120),
            enter_maintenance: Duration::from_secs(600),
            exit_maintenance: Duration::from_secs(120),
            bmc_update: Duration::from_secs(900),
            package_install: Duration::from_secs(300),
            host_reboot: Duration::from_secs(600),
            validation: Duration::from_secs(180),
        }
    }
}

/// Inputs of a dry run.
#[derive(Clone, Debug)]
pub struct DryRunInput<'a> {
    /// The plan (policy, window, artifacts are passed separately).
    pub plan: &'a Plan,
    /// Its targets (priorities).
    pub targets: &'a [PlanTarget],
    /// Facts of the target hosts.
    pub hosts: &'a [HostFacts],
    /// The plan's artifacts (`SPECIFIC_PACKAGE` / `MULTIPART_FILE`).
    pub artifacts: &'a [Artifact],
    /// The catalog index (`LATEST_FROM_CATALOG`).
    pub catalog: Option<&'a CatalogIndex>,
    /// Where packages are fetched from (catalog mode).
    pub locator: Option<&'a PackageLocator>,
    /// Cluster members outside the plan, by cluster (they count as online).
    pub other_cluster_members: BTreeMap<ClusterKey, BTreeSet<String>>,
    /// When the campaign would start.
    pub start: DateTime<Utc>,
    /// Time estimates.
    pub durations: DurationModel,
}

/// One package as planned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedPackage {
    /// Component id.
    pub component_id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ComponentKind,
    /// Installed version.
    pub installed: Option<String>,
    /// Target version.
    pub target: String,
    /// Whether it reboots the host.
    pub host_reboot: bool,
    /// Dell criticality.
    pub criticality: Option<String>,
}

/// One host's part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostDryRun {
    /// Host id.
    pub host_id: HostId,
    /// Host name.
    pub host: String,
    /// Cluster, if any.
    pub cluster: Option<String>,
    /// Target priority.
    pub priority: i32,
    /// Packages in install order.
    pub packages: Vec<PlannedPackage>,
    /// Catalog compliance counts (catalog mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compliance: Option<Summary>,
    /// Host reboots.
    pub host_reboots: u32,
    /// BMC restarts (iDRAC updates).
    pub bmc_restarts: u32,
    /// Whether the host enters maintenance mode.
    pub maintenance_mode: bool,
    /// Estimated run time, seconds.
    pub duration_secs: u64,
    /// Time in maintenance mode, seconds.
    pub maintenance_secs: u64,
    /// Wave it starts in (`None` when blocked).
    pub wave: Option<usize>,
    /// Start, seconds after the campaign start.
    pub start_offset_secs: Option<u64>,
    /// Why its run would fail at once (no catalog entry, refused package, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Policy conflicts and remarks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A set of hosts admitted at the same instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    /// 1-based number.
    pub index: usize,
    /// Start, seconds after the campaign start.
    pub start_offset_secs: u64,
    /// When.
    pub starts_at: DateTime<Utc>,
    /// Hosts.
    pub hosts: Vec<String>,
}

/// One cluster's view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterDryRun {
    /// Cluster.
    pub cluster: String,
    /// Plan hosts in it.
    pub hosts: usize,
    /// Members in all (plan hosts and others).
    pub members: usize,
    /// Total host-time in maintenance mode, seconds.
    pub maintenance_secs_total: u64,
    /// Most hosts in maintenance at once.
    pub peak_in_maintenance: usize,
    /// From the first host entering to the last leaving, seconds.
    pub span_secs: u64,
}

/// A host admission would never start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockedHost {
    /// Host.
    pub host: String,
    /// Why.
    pub reason: String,
}

/// The result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DryRun {
    /// Update mode.
    pub mode: String,
    /// `maxConcurrent`.
    pub max_concurrent: u32,
    /// `minHostsOnline`.
    pub min_hosts_online: u32,
    /// Waves in order.
    pub waves: Vec<Wave>,
    /// Hosts.
    pub hosts: Vec<HostDryRun>,
    /// Clusters.
    pub clusters: Vec<ClusterDryRun>,
    /// Hosts that would never start.
    pub blocked: Vec<BlockedHost>,
    /// Packages in all.
    pub packages: usize,
    /// Host reboots in all.
    pub host_reboots: u32,
    /// BMC restarts in all.
    pub bmc_restarts: u32,
    /// Hosts whose run would fail at once.
    pub failing_hosts: usize,
    /// Campaign start.
    pub starts_at: DateTime<Utc>,
    /// Estimated end.
    pub ends_at: DateTime<Utc>,
    /// Estimated duration, seconds.
    pub estimated_duration_secs: u64,
}

/// Runs the dry run. Pure: reads only its input.
pub fn dry_run(input: &DryRunInput<'_>) -> DryRun {
    let policy = &input.plan.policy;
    let d = &input.durations;
    let priorities: HashMap<HostId, i32> = input
        .targets
        .iter()
        .map(|t| (t.host_id, t.priority))
        .collect();
    let mut hosts: Vec<HostDryRun> = input
        .hosts
        .iter()
        .map(|f| plan_host(input, f, priorities.get(&f.host.id).copied().unwrap_or(0)))
        .collect();

    // ---- admission replay
    let run_ids: Vec<RunId> = hosts.iter().map(|_| RunId::new()).collect();
    let by_run: HashMap<RunId, usize> = run_ids.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    let member_key = |f: &HostFacts| {
        f.host
            .host_moid
            .clone()
            .unwrap_or_else(|| f.host.id.to_string())
    };
    let mut members: BTreeMap<ClusterKey, BTreeSet<String>> = input.other_cluster_members.clone();
    for f in input.hosts {
        if let Some(k) = f.host.cluster_key() {
            members.entry(k).or_default().insert(member_key(f));
        }
    }
    // Highest priority first, then by name; ties keep input order.
    let mut order: Vec<(std::cmp::Reverse<i32>, &str, usize)> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| (std::cmp::Reverse(h.priority), h.host.as_str(), i))
        .collect();
    order.sort_unstable();
    let mut pending: Vec<usize> = order.into_iter().map(|(_, _, i)| i).collect();
    let mut running: Vec<(DateTime<Utc>, usize)> = Vec::new();
    let mut now = input.start;
    let mut waves: Vec<Wave> = Vec::new();
    let mut blocked = Vec::new();
    let mut completed = 0u32;
    let view = PlanView {
        id: input.plan.id,
        status: PlanStatus::Running,
        max_concurrent: policy.max_concurrent,
        min_hosts_online: policy.min_hosts_online,
        failure_budget: None,
        window: input.plan.maintenance_window.clone(),
        expected_run_duration: policy.expected_host_duration(),
        max_resumes: policy.max_resumes(),
    };
    // Bounded: each iteration admits a host or retires one.
    for _ in 0..(hosts.len() * 4 + 8) {
        if pending.is_empty() && running.is_empty() {
            break;
        }
        let mut clusters: BTreeMap<ClusterKey, ClusterView> = BTreeMap::new();
        for (k, m) in &members {
            clusters.insert(
                k.clone(),
                ClusterView {
                    members: m.clone(),
                    in_flight: BTreeSet::new(),
                    live_online: None,
                },
            );
        }
        for (_, i) in &running {
            if let Some(f) = input.hosts.get(*i)
                && let Some(k) = f.host.cluster_key()
                && let Some(v) = clusters.get_mut(&k)
            {
                v.in_flight.insert(member_key(f));
            }
        }
        let candidates: Vec<Candidate> = pending
            .iter()
            .filter_map(|&i| {
                let (f, run_id, planned) = (input.hosts.get(i)?, run_ids.get(i)?, hosts.get(i)?);
                Some(Candidate {
                    run_id: *run_id,
                    host_id: f.host.id,
                    cluster: f.host.cluster_key(),
                    member_key: member_key(f),
                    priority: planned.priority,
                    run_at: input.start,
                    state: RunState::Pending,
                    resumes: 0,
                    cleanup: false,
                    dirty: false,
                })
            })
            .collect();
        let snapshot = AdmissionSnapshot {
            now,
            plan: view.clone(),
            counts: RunCounts {
                pending: pending.len() as u32,
                running: running.len() as u32,
                completed,
                ..Default::default()
            },
            candidates,
            clusters,
            slots: usize::MAX,
        };
        let decision = StandardAdmission.select(&snapshot);
        if !decision.admit.is_empty() {
            let offset = secs_between(input.start, now);
            let mut names = Vec::new();
            for r in &decision.admit {
                let Some(&i) = by_run.get(r) else { continue };
                let Some(h) = hosts.get_mut(i) else { continue };
                let dur = Duration::from_secs(h.duration_secs);
                h.wave = Some(waves.len() + 1);
                h.start_offset_secs = Some(offset);
                running.push((add(now, dur), i));
                names.push(h.host.clone());
                pending.retain(|&p| p != i);
            }
            waves.push(Wave {
                index: waves.len() + 1,
                start_offset_secs: offset,
                starts_at: now,
                hosts: names,
            });
            continue;
        }
        if running.is_empty() {
            // Nothing runs and nothing may start: wait for the window to
            // open, or give up with admission's reasons.
            let outside = decision
                .deferred
                .iter()
                .any(|(_, why)| *why == Deferral::OutsideWindow);
            if outside
                && let Some(w) = &input.plan.maintenance_window
                && now < w.start
            {
                now = w.start;
                continue;
            }
            for (r, why) in &decision.deferred {
                if let Some(h) = by_run.get(r).and_then(|&i| hosts.get(i)) {
                    blocked.push(BlockedHost {
                        host: h.host.clone(),
                        reason: deferral_text(why, policy.min_hosts_online),
                    });
                }
            }
            pending.clear();
            break;
        }
        // Advance to the next completion.
        let next = running.iter().map(|(t, _)| *t).min().unwrap_or(now);
        now = next;
        let before = running.len();
        running.retain(|(t, _)| *t > now);
        completed += (before - running.len()) as u32;
    }

    // ---- clusters
    let mut clusters_out = Vec::new();
    for (k, m) in &members {
        let in_cluster: Vec<&HostDryRun> = hosts
            .iter()
            .filter(|h| h.cluster.as_deref() == Some(&k.to_string()) && h.wave.is_some())
            .collect();
        let mut intervals: Vec<(u64, u64)> = in_cluster
            .iter()
            .filter(|h| h.maintenance_mode)
            .filter_map(|h| {
                let s = h.start_offset_secs? + maintenance_start(d);
                Some((s, s + h.maintenance_secs))
            })
            .collect();
        intervals.sort_unstable();
        let total = intervals.iter().map(|(a, b)| b - a).sum();
        let span = match (intervals.first(), intervals.iter().map(|i| i.1).max()) {
            (Some(first), Some(last)) => last - first.0,
            _ => 0,
        };
        clusters_out.push(ClusterDryRun {
            cluster: k.to_string(),
            hosts: hosts
                .iter()
                .filter(|h| h.cluster.as_deref() == Some(&k.to_string()))
                .count(),
            members: m.len(),
            maintenance_secs_total: total,
            peak_in_maintenance: peak(&intervals),
            span_secs: span,
        });
    }

    let end = hosts
        .iter()
        .filter_map(|h| h.start_offset_secs.map(|s| s + h.duration_secs))
        .max()
        .unwrap_or(0);
    DryRun {
        mode: policy.update_mode.to_string(),
        max_concurrent: policy.max_concurrent,
        min_hosts_online: policy.min_hosts_online,
        packages: hosts.iter().map(|h| h.packages.len()).sum(),
        host_reboots: hosts.iter().map(|h| h.host_reboots).sum(),
        bmc_restarts: hosts.iter().map(|h| h.bmc_restarts).sum(),
        failing_hosts: hosts.iter().filter(|h| h.error.is_some()).count(),
        waves,
        hosts,
        clusters: clusters_out,
        blocked,
        starts_at: input.start,
        ends_at: add(input.start, Duration::from_secs(end)),
        estimated_duration_secs: end,
    }
}

fn deferral_text(d: &Deferral, min_online: u32) -> String {
    match d {
        Deferral::ClusterCapacity { cluster, online } => format!(
            "cluster {cluster} has {online} host(s) online and minHostsOnline is {min_online}: taking this host down is never allowed"
        ),
        Deferral::OutsideWindow => {
            "the maintenance window closes before a whole run (expectedHostDurationSecs) fits"
                .into()
        }
        Deferral::MaxConcurrent => "maxConcurrent is 0".into(),
        other => format!("{other:?}"),
    }
}

fn maintenance_start(d: &DurationModel) -> u64 {
    d.preflight.as_secs()
}

fn peak(intervals: &[(u64, u64)]) -> usize {
    let mut edges: Vec<(u64, i32)> = intervals
        .iter()
        .flat_map(|(a, b)| [(*a, 1), (*b, -1)])
        .collect();
    // Ends before starts at the same instant: back-to-back is not overlap.
    edges.sort_by_key(|&(t, delta)| (t, delta));
    let (mut cur, mut best) = (0i32, 0i32);
    for (_, delta) in edges {
        cur += delta;
        best = best.max(cur);
    }
    best as usize
}

fn secs_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u64 {
    (b - a).num_seconds().max(0) as u64
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(t)
}

fn plan_host(input: &DryRunInput<'_>, f: &HostFacts, priority: i32) -> HostDryRun {
    let policy = &input.plan.policy;
    let d = &input.durations;
    let mut h = HostDryRun {
        host_id: f.host.id,
        host: f.host.fqdn.clone(),
        cluster: f.host.cluster_key().map(|k| k.to_string()),
        priority,
        packages: Vec::new(),
        compliance: None,
        host_reboots: 0,
        bmc_restarts: 0,
        maintenance_mode: false,
        duration_secs: d.preflight.as_secs(),
        maintenance_secs: 0,
        wave: None,
        start_offset_secs: None,
        error: None,
        warnings: Vec::new(),
    };
    let packages = match &policy.update_mode {
        UpdateMode::LatestFromCatalog => match input.catalog {
            None => Err("no catalog given to the dry run".to_string()),
            Some(index) => {
                match assess_host(index, &f.host.fqdn, &f.system, &f.inventory, policy) {
                    Ok(report) => {
                        h.compliance = Some(report.summary);
                        let default_locator = PackageLocator::new(index.catalog().source.clone());
                        let loc = input.locator.unwrap_or(&default_locator);
                        Ok(report.packages(index, loc))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
        },
        UpdateMode::SpecificPackage | UpdateMode::MultipartFile => {
            artifact_packages(input.artifacts, &f.inventory, policy)
        }
        UpdateMode::Unknown(m) => Err(format!("unknown update mode {m:?}")),
    };
    let packages = match packages {
        Ok(p) => p,
        Err(e) => {
            h.error = Some(e);
            return h;
        }
    };
    let disruptive = packages.iter().any(Package::is_disruptive);
    h.maintenance_mode = disruptive && policy.require_maintenance_mode && h.cluster.is_some();
    if disruptive && !policy.require_maintenance_mode && !policy.allow_downtime {
        h.warnings.push(
            "packages reboot the host, but requireMaintenanceMode is off and allowDowntime is false"
                .into(),
        );
    }
    let mut secs = d.preflight.as_secs();
    let mut maint = 0u64;
    if h.maintenance_mode {
        secs += d.enter_maintenance.as_secs();
        maint += d.enter_maintenance.as_secs();
    }
    for p in &packages {
        let step = if p.kind == ComponentKind::Bmc {
            h.bmc_restarts += 1;
            d.bmc_update.as_secs()
        } else if p.is_disruptive() {
            h.host_reboots += 1;
            d.package_install.as_secs() + d.host_reboot.as_secs()
        } else {
            d.package_install.as_secs()
        };
        secs += step;
        if h.maintenance_mode {
            maint += step;
        }
    }
    secs += d.validation.as_secs();
    if h.maintenance_mode {
        maint += d.validation.as_secs() + d.exit_maintenance.as_secs();
        secs += d.exit_maintenance.as_secs();
    }
    h.duration_secs = secs;
    h.maintenance_secs = maint;
    h.packages = packages
        .iter()
        .map(|p| PlannedPackage {
            component_id: p.component_id.clone(),
            name: p.name.clone(),
            kind: p.kind,
            installed: p.installed_version.clone(),
            target: p.target_version.clone(),
            host_reboot: p.is_disruptive(),
            criticality: p.criticality.clone(),
        })
        .collect();
    h
}

/// The plan's artifacts that apply to an inventory, by the same version
/// rules as the resolvers, without fetching anything.
fn artifact_packages(
    artifacts: &[Artifact],
    inventory: &Inventory,
    policy: &firmflow_core::model::Policy,
) -> Result<Vec<Package>, String> {
    let mut out = Vec::new();
    for a in artifacts {
        let Some(m) = inventory.installed_for(a.component.trim()) else {
            continue;
        };
        let target = a.version.clone().unwrap_or_default();
        let v = if target.trim().is_empty() {
            VersionOrdering::Incomparable
        } else {
            compare_for_kind(m.kind, &m.version, &target)
        };
        let take = match v {
            VersionOrdering::Newer => true,
            VersionOrdering::Older if policy.allow_downgrade() => true,
            VersionOrdering::Older => {
                return Err(format!(
                    "{}: {target} would downgrade {}; policy.allowDowngrade is off",
                    m.name, m.version
                ));
            }
            VersionOrdering::Same => policy.force(),
            VersionOrdering::Incomparable if policy.force() => true,
            VersionOrdering::Incomparable => {
                return Err(format!(
                    "{}: versions {:?} and {target:?} cannot be compared; set policy.force",
                    m.name, m.version
                ));
            }
        };
        if !take {
            continue;
        }
        let reboot = a
            .metadata
            .get("rebootRequired")
            .and_then(|v| v.as_bool())
            .unwrap_or(m.kind != ComponentKind::Bmc);
        out.push(Package {
            component_id: m
                .component_id
                .clone()
                .unwrap_or_else(|| a.component.clone()),
            name: m.name.clone(),
            kind: m.kind,
            target_version: target,
            installed_version: Some(m.version.clone()),
            source: PackageSource::ImageUri {
                uri: a.image_uri.clone(),
            },
            checksum: a.checksum.clone(),
            size_bytes: a.size_bytes.and_then(|s| u64::try_from(s).ok()),
            reboot_required: reboot,
            criticality: None,
        });
    }
    if out.is_empty()
        && !artifacts.is_empty()
        && artifacts
            .iter()
            .all(|a| inventory.installed_for(a.component.trim()).is_none())
    {
        return Err("no artifact matches a component of this host".into());
    }
    sort_install_order(&mut out);
    Ok(out)
}

impl DryRun {
    /// A text summary for the CLI.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "{} dry run: {} host(s), {} package(s), {} host reboot(s), {} BMC restart(s); maxConcurrent {}, minHostsOnline {}",
            self.mode,
            self.hosts.len(),
            self.packages,
            self.host_reboots,
            self.bmc_restarts,
            self.max_concurrent,
            self.min_hosts_online
        );
        for w in &self.waves {
            let _ = writeln!(
                o,
                "wave {} at +{}: {}",
                w.index,
                hms(w.start_offset_secs),
                w.hosts.join(", ")
            );
        }
        for c in &self.clusters {
            let _ = writeln!(
                o,
                "cluster {}: {} plan host(s) of {}, {} in maintenance in all, at most {} at once, over {}",
                c.cluster,
                c.hosts,
                c.members,
                hms(c.maintenance_secs_total),
                c.peak_in_maintenance,
                hms(c.span_secs)
            );
        }
        for h in self.hosts.iter().filter(|h| h.error.is_some()) {
            let _ = writeln!(
                o,
                "would fail: {}: {}",
                h.host,
                h.error.as_deref().unwrap_or("")
            );
        }
        for b in &self.blocked {
            let _ = writeln!(o, "blocked: {}: {}", b.host, b.reason);
        }
        let _ = writeln!(
            o,
            "estimated duration {} (until {})",
            hms(self.estimated_duration_secs),
            self.ends_at.to_rfc3339()
        );
        o
    }
}

fn hms(s: u64) -> String {
    format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
}

#[cfg(test)]
mod tests;
