//! What a live view of a plan needs beyond the stored rows: one row per
//! host run (phase, the component at work, attempt, last error, timing,
//! maintenance), the plan's progress with an ETA, and a strip per vSphere
//! cluster (members online / in maintenance / updating against
//! `minHostsOnline`). `GET /api/v1/plans/{id}` and the plans list serve
//! them; the web view (`daemon/web/`) renders them and, on each event of
//! the live stream, asks only for the rows changed since its last read
//! (`?since=`), so a plan of 1,000 hosts is not read whole per event.

use crate::auth::Caller;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use firmflow_core::model::{Host, HostId, HostRun, PackageStatus, Plan, PlanStatus, RunState};
use firmflow_core::policy::RunCounts;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// How far back `next_since` reaches before the read with PostgreSQL: a
/// transaction stamps `updated_at` when it starts and may commit after a
/// read that began later; rows sent twice are harmless, rows missed are not.
pub const SINCE_OVERLAP_PG_SECS: i64 = 5;
/// The same for the memory store, whose writes stamp and commit under one
/// lock: only a step of the wall clock could reorder them.
pub const SINCE_OVERLAP_MEMORY_SECS: i64 = 1;

/// The component a run is working on: the one in flight, else the one
/// that failed (what the operator must look at), else the first still to
/// do, else the last one that finished.
fn current_component(r: &HostRun) -> Option<String> {
    let pkgs = &r.ctx.checkpoint.packages;
    pkgs.iter()
        .find(|p| p.status.in_flight())
        .or_else(|| {
            pkgs.iter().find(|p| {
                matches!(
                    p.status,
                    PackageStatus::Failed { .. } | PackageStatus::RollbackFailed { .. }
                )
            })
        })
        .or_else(|| {
            pkgs.iter()
                .find(|p| matches!(p.status, PackageStatus::Pending))
        })
        .or_else(|| pkgs.last())
        .map(|p| p.package.name.clone())
}

fn package_done(s: &PackageStatus) -> bool {
    !matches!(s, PackageStatus::Pending) && !s.in_flight()
}

/// One host run as the plan page shows it.
pub fn host_row(r: &HostRun, h: Option<&Host>) -> Value {
    let pkgs = &r.ctx.checkpoint.packages;
    // The run's own last error, else the last one it recorded on the way.
    let last_error = r.last_error.clone().or_else(|| {
        r.ctx
            .results
            .errors
            .last()
            .map(|e| format!("{}: {}", e.phase.as_str(), e.message))
    });
    json!({
        "run_id": r.id,
        "host_id": r.host_id,
        "host": h.map(|h| h.fqdn.clone()),
        "cluster": h.and_then(|h| h.cluster_moid.clone()),
        "state": r.state,
        "phase": r.ctx.progress.phase,
        "percentage": r.ctx.progress.percentage,
        "message": r.ctx.progress.message,
        "component": current_component(r),
        "packages_total": pkgs.len(),
        "packages_done": pkgs.iter().filter(|p| package_done(&p.status)).count(),
        "maintenance": r.ctx.checkpoint.holds_maintenance(),
        "attempts": r.attempts,
        "max_attempts": r.max_attempts,
        "resumes": r.resumes,
        "last_error": last_error,
        "started_at": r.started_at,
        "completed_at": r.completed_at,
        "updated_at": r.updated_at,
    })
}

fn finished(c: &RunCounts) -> u32 {
    c.completed + c.failed + c.cancelled + c.needs_attention
}

/// Progress of a plan: hosts done of all, percent, when its first run
/// started, and an ETA while it runs: the observed pace (finished hosts
/// per elapsed time, which already reflects `maxConcurrent` and the
/// cluster gates) once a host finished, else the policy's expected host
/// duration per batch of `maxConcurrent`.
pub fn plan_progress(p: &Plan, c: &RunCounts, runs: &[HostRun], now: DateTime<Utc>) -> Value {
    let total = c.total();
    let done = finished(c);
    let started = runs.iter().filter_map(|r| r.started_at).min();
    let active = matches!(p.status, PlanStatus::Running | PlanStatus::Paused);
    let remaining = total.saturating_sub(done);
    let (eta, basis) = match (active && remaining > 0, started) {
        (false, _) => (None, None),
        (true, Some(t0)) if done > 0 => {
            let elapsed = (now - t0).num_milliseconds().max(0);
            let per_host = elapsed / i64::from(done);
            let left = per_host.saturating_mul(i64::from(remaining));
            (
                Some(now + ChronoDuration::milliseconds(left)),
                Some("observed"),
            )
        }
        (true, _) => {
            let batch = p.policy.max_concurrent.max(1);
            let batches = i64::from(remaining.div_ceil(batch));
            let secs = i64::try_from(p.policy.expected_host_duration().as_secs()).unwrap_or(0);
            (
                Some(now + ChronoDuration::seconds(secs.saturating_mul(batches))),
                Some("expected"),
            )
        }
    };
    let percent = done.saturating_mul(100).checked_div(total).unwrap_or(0);
    json!({
        "total": total,
        "done": done,
        "percent": percent,
        "started_at": started,
        "eta": eta,
        "eta_basis": basis,
    })
}

/// One strip per vSphere cluster of the plan's hosts: its registered
/// members (every host the caller sees with that cluster, in the plan or
/// not), those this plan holds in maintenance mode, those updating, and the
/// rest online, against the policy's `minHostsOnline`. firmflowd reads no
/// vCenter for this: a member that is down for other reasons still counts
/// as online here (the run's admission asks vCenter itself).
pub fn clusters(
    p: &Plan,
    runs: &[HostRun],
    hosts: &HashMap<HostId, Host>,
    caller: &Caller,
) -> Vec<Value> {
    #[derive(Default)]
    struct Strip {
        vcenter: Option<String>,
        members: u32,
        in_plan: u32,
        maintenance: u32,
        updating: u32,
        done: u32,
    }
    let mut by: BTreeMap<String, Strip> = BTreeMap::new();
    let mut plan_clusters = Vec::new();
    for r in runs {
        if let Some(k) = hosts.get(&r.host_id).and_then(|h| h.cluster_moid.clone()) {
            plan_clusters.push(k);
        }
    }
    for h in hosts.values().filter(|h| caller.sees(h.datacenter_id)) {
        let Some(k) = &h.cluster_moid else { continue };
        if !plan_clusters.contains(k) {
            continue;
        }
        let s = by.entry(k.clone()).or_default();
        s.vcenter = h.vcenter_url.clone();
        s.members += 1;
    }
    for r in runs {
        let Some(k) = hosts.get(&r.host_id).and_then(|h| h.cluster_moid.as_ref()) else {
            continue;
        };
        let Some(s) = by.get_mut(k) else { continue };
        s.in_plan += 1;
        if r.ctx.checkpoint.holds_maintenance() {
            s.maintenance += 1;
        }
        if matches!(r.state, RunState::Running) {
            s.updating += 1;
        }
        if r.state.is_final() {
            s.done += 1;
        }
    }
    by.into_iter()
        .map(|(k, s)| {
            let online = s.members.saturating_sub(s.maintenance);
            json!({
                "cluster": k,
                "vcenter": s.vcenter,
                "members": s.members,
                "in_plan": s.in_plan,
                "online": online,
                "in_maintenance": s.maintenance,
                "updating": s.updating,
                "done": s.done,
                "min_hosts_online": p.policy.min_hosts_online,
            })
        })
        .collect()
}

/// The cut-off to pass as `?since=` next time: `now` read before the rows,
/// less the store's overlap.
pub fn next_since(now: DateTime<Utc>, postgres: bool) -> DateTime<Utc> {
    let overlap = if postgres {
        SINCE_OVERLAP_PG_SECS
    } else {
        SINCE_OVERLAP_MEMORY_SECS
    };
    now - ChronoDuration::seconds(overlap)
}
