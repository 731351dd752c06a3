//! Admission: which runnable host runs of a plan may start now. A pure
//! function over a snapshot the store takes inside its atomic claim, so the
//! memory and PostgreSQL stores make exactly the same decision.

use crate::model::{
    ClusterKey, FailureBudget, HostId, MaintenanceWindow, PlanId, PlanStatus, RunId, RunState,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The plan facts admission needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanView {
    /// Plan.
    pub id: PlanId,
    /// Status; only `running` plans admit.
    pub status: PlanStatus,
    /// `maxConcurrent`.
    pub max_concurrent: u32,
    /// `minHostsOnline` per cluster.
    pub min_hosts_online: u32,
    /// Failure budget.
    pub failure_budget: Option<FailureBudget>,
    /// Window.
    pub window: Option<MaintenanceWindow>,
    /// Expected duration of one run (window fit).
    pub expected_run_duration: Duration,
    /// Resume cap.
    pub max_resumes: u32,
}

/// Counts of the plan's runs by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    /// pending.
    pub pending: u32,
    /// running (including expired leases: their hosts may still be busy).
    pub running: u32,
    /// retrying.
    pub retrying: u32,
    /// completed.
    pub completed: u32,
    /// failed.
    pub failed: u32,
    /// cancelled.
    pub cancelled: u32,
    /// needs_attention (final: stopped on ambiguous evidence).
    pub needs_attention: u32,
    /// Of the pending/retrying runs, those marked for cleanup (cancel or
    /// budget halt asked while their ctx holds maintenance mode or jobs):
    /// a worker must still claim them whatever the plan's status.
    pub cleanup: u32,
}

impl RunCounts {
    /// All runs.
    pub fn total(&self) -> u32 {
        self.pending
            + self.running
            + self.retrying
            + self.completed
            + self.failed
            + self.cancelled
            + self.needs_attention
    }
    /// Adds one run in `state`.
    pub fn add(&mut self, state: RunState) {
        match state {
            RunState::Pending => self.pending += 1,
            RunState::Running => self.running += 1,
            RunState::Retrying => self.retrying += 1,
            RunState::Completed => self.completed += 1,
            RunState::Failed => self.failed += 1,
            RunState::Cancelled => self.cancelled += 1,
            RunState::NeedsAttention => self.needs_attention += 1,
        }
    }
    /// Runs not final.
    pub fn unfinished(&self) -> u32 {
        self.pending + self.running + self.retrying
    }
}

/// A run that could be claimed: due (`pending`/`retrying` with `run_at <=
/// now`) or `running` with an expired lease, and whose host has no running
/// run in another plan. The store lists them in claim order: priority
/// descending, then `run_at`, then id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Run.
    pub run_id: RunId,
    /// Host.
    pub host_id: HostId,
    /// Host's cluster.
    pub cluster: Option<ClusterKey>,
    /// The host's key inside its cluster (host moid, else host id).
    pub member_key: String,
    /// Priority.
    pub priority: i32,
    /// Not before.
    pub run_at: DateTime<Utc>,
    /// Current state.
    pub state: RunState,
    /// Resumes so far.
    pub resumes: u32,
    /// Marked for cleanup: an operator (or the failure budget) cancelled it
    /// while its ctx holds maintenance mode or jobs of ours.
    #[serde(default)]
    pub cleanup: bool,
    /// Its ctx holds maintenance mode or jobs of ours
    /// ([`Checkpoint::needs_cleanup`](crate::model::Checkpoint::needs_cleanup)).
    #[serde(default)]
    pub dirty: bool,
}

impl Candidate {
    /// Whether this is a takeover of an expired lease.
    pub fn is_reclaim(&self) -> bool {
        self.state == RunState::Running
    }
}

/// Takeovers past the resume cap that a worker may still claim, only to
/// clean up (leave maintenance mode, settle jobs) and end the run failed.
/// Past this many more, the run is parked `needs_attention`.
pub const CLEANUP_RESUMES: u32 = 3;

/// One cluster as admission sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterView {
    /// Member keys of the hosts firmflow knows in this cluster.
    pub members: BTreeSet<String>,
    /// Member keys of hosts with a running run in any plan.
    pub in_flight: BTreeSet<String>,
    /// Member keys the cluster manager reports online now (connected, on,
    /// not in maintenance), when it was asked; this includes hosts firmflow
    /// does not manage.
    pub live_online: Option<BTreeSet<String>>,
}

impl ClusterView {
    /// Hosts serving now and not about to be taken down by a running run.
    pub fn online(&self) -> BTreeSet<String> {
        let base = self.live_online.as_ref().unwrap_or(&self.members);
        base.difference(&self.in_flight).cloned().collect()
    }
}

/// Everything admission looks at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdmissionSnapshot {
    /// Now (store time).
    pub now: DateTime<Utc>,
    /// Plan.
    pub plan: PlanView,
    /// Plan's run counts.
    pub counts: RunCounts,
    /// Candidates in claim order.
    pub candidates: Vec<Candidate>,
    /// Clusters of the candidates.
    pub clusters: BTreeMap<ClusterKey, ClusterView>,
    /// How many runs the claiming worker can take.
    pub slots: usize,
}

/// Why a candidate was not admitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deferral {
    /// The plan is not running.
    PlanNotRunning,
    /// Outside the maintenance window, or the run would not fit before it closes.
    OutsideWindow,
    /// The failure budget is exhausted.
    FailureBudgetExhausted,
    /// `maxConcurrent` reached.
    MaxConcurrent,
    /// Taking the host down would leave its cluster below `minHostsOnline`.
    ClusterCapacity {
        /// The cluster.
        cluster: String,
        /// Hosts online now.
        online: usize,
    },
    /// The worker has no free slot.
    NoSlot,
}

/// Admission's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdmissionDecision {
    /// Runs to claim, in order.
    pub admit: Vec<RunId>,
    /// Reclaims past the resume cap with nothing to clean up: fail them
    /// instead of running them again.
    pub exhausted: Vec<RunId>,
    /// Reclaims past the resume cap whose cleanup kept failing too: park
    /// them `needs_attention` (the host may be in maintenance mode).
    pub stranded: Vec<RunId>,
    /// Candidates left waiting, and why.
    pub deferred: Vec<(RunId, Deferral)>,
}

/// Chooses runs to start from a snapshot. Pure.
pub trait AdmissionPolicy: Send + Sync {
    /// The decision.
    fn select(&self, snapshot: &AdmissionSnapshot) -> AdmissionDecision;
}

/// firmflow's admission rules:
/// - takeovers of expired leases first (their hosts are already counted in
///   flight), failing those past the resume cap; one past the cap whose ctx
///   holds maintenance mode or jobs is still claimed, to clean up and end
///   failed, and parked `needs_attention` after [`CLEANUP_RESUMES`] more;
/// - runs marked for cleanup next, whatever the plan's status, window,
///   budget or limits (they only give hosts back);
/// - nothing new unless the plan is running, inside its window with time
///   for a whole run, and within its failure budget;
/// - at most `maxConcurrent` runs of the plan in flight;
/// - a cluster keeps at least `minHostsOnline` hosts online, counting every
///   plan's running runs and the cluster manager's live state;
/// - candidates in priority order; a candidate blocked by its cluster does
///   not block candidates of other clusters.
#[derive(Clone, Copy, Debug, Default)]
pub struct StandardAdmission;

impl AdmissionPolicy for StandardAdmission {
    fn select(&self, s: &AdmissionSnapshot) -> AdmissionDecision {
        let mut d = AdmissionDecision::default();
        let mut slots = s.slots;
        // Reclaims: already in flight, so no capacity rule applies, but they
        // still need a worker slot.
        for c in s.candidates.iter().filter(|c| c.is_reclaim()) {
            if c.resumes >= s.plan.max_resumes && !c.dirty {
                d.exhausted.push(c.run_id);
            } else if c.resumes >= s.plan.max_resumes.saturating_add(CLEANUP_RESUMES) {
                d.stranded.push(c.run_id);
            } else if slots > 0 {
                d.admit.push(c.run_id);
                slots -= 1;
            } else {
                d.deferred.push((c.run_id, Deferral::NoSlot));
            }
        }
        for c in s.candidates.iter().filter(|c| !c.is_reclaim() && c.cleanup) {
            if slots > 0 {
                d.admit.push(c.run_id);
                slots -= 1;
            } else {
                d.deferred.push((c.run_id, Deferral::NoSlot));
            }
        }
        let fresh: Vec<&Candidate> = s
            .candidates
            .iter()
            .filter(|c| !c.is_reclaim() && !c.cleanup)
            .collect();
        let gate = if s.plan.status != PlanStatus::Running {
            Some(Deferral::PlanNotRunning)
        } else if s
            .plan
            .window
            .as_ref()
            .is_some_and(|w| !w.admits(s.now, s.plan.expected_run_duration))
        {
            Some(Deferral::OutsideWindow)
        } else if s
            .plan
            .failure_budget
            .as_ref()
            .is_some_and(|b| b.exhausted(s.counts.failed, s.counts.total()))
        {
            Some(Deferral::FailureBudgetExhausted)
        } else {
            None
        };
        if let Some(g) = gate {
            d.deferred
                .extend(fresh.iter().map(|c| (c.run_id, g.clone())));
            return d;
        }
        let mut in_flight = s.counts.running as usize;
        let mut clusters = s.clusters.clone();
        for c in fresh {
            if in_flight >= s.plan.max_concurrent as usize {
                d.deferred.push((c.run_id, Deferral::MaxConcurrent));
                continue;
            }
            if slots == 0 {
                d.deferred.push((c.run_id, Deferral::NoSlot));
                continue;
            }
            if let Some(key) = &c.cluster {
                let view = clusters.entry(key.clone()).or_default();
                let online = view.online();
                let counts_online = online.contains(&c.member_key);
                let after = online.len() - usize::from(counts_online);
                if counts_online && after < s.plan.min_hosts_online as usize {
                    d.deferred.push((
                        c.run_id,
                        Deferral::ClusterCapacity {
                            cluster: key.to_string(),
                            online: online.len(),
                        },
                    ));
                    continue;
                }
                view.in_flight.insert(c.member_key.clone());
            }
            d.admit.push(c.run_id);
            in_flight += 1;
            slots -= 1;
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PlanId;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn plan(max: u32, min_online: u32) -> PlanView {
        PlanView {
            id: PlanId::new(),
            status: PlanStatus::Running,
            max_concurrent: max,
            min_hosts_online: min_online,
            failure_budget: None,
            window: None,
            expected_run_duration: Duration::from_secs(1800),
            max_resumes: 3,
        }
    }

    fn cand(member: &str, cluster: Option<&str>, prio: i32) -> Candidate {
        Candidate {
            run_id: RunId::new(),
            host_id: HostId::new(),
            cluster: cluster.map(|c| ClusterKey {
                vcenter_url: "vc".into(),
                cluster_moid: c.into(),
            }),
            member_key: member.into(),
            priority: prio,
            run_at: t0(),
            state: RunState::Pending,
            resumes: 0,
            cleanup: false,
            dirty: false,
        }
    }

    fn snap(plan: PlanView, candidates: Vec<Candidate>) -> AdmissionSnapshot {
        let mut clusters: BTreeMap<ClusterKey, ClusterView> = BTreeMap::new();
        for c in &candidates {
            if let Some(k) = &c.cluster {
                clusters
                    .entry(k.clone())
                    .or_default()
                    .members
                    .insert(c.member_key.clone());
            }
        }
        AdmissionSnapshot {
            now: t0(),
            plan,
            counts: RunCounts {
                pending: candidates.len() as u32,
                ..Default::default()
            },
            candidates,
            clusters,
            slots: 100,
        }
    }

    #[test]
    fn max_concurrent_caps_admission_in_order() {
        let cs = vec![cand("a", None, 5), cand("b", None, 3), cand("c", None, 1)];
        let ids: Vec<_> = cs.iter().map(|c| c.run_id).collect();
        let d = StandardAdmission.select(&snap(plan(2, 1), cs));
        assert_eq!(d.admit, ids[..2].to_vec());
        assert_eq!(d.deferred, vec![(ids[2], Deferral::MaxConcurrent)]);
    }

    #[test]
    fn min_hosts_online_keeps_cluster_capacity() {
        // 3 hosts in a cluster, keep 2 online: only one at a time.
        let cs = vec![
            cand("h1", Some("c1"), 0),
            cand("h2", Some("c1"), 0),
            cand("h3", Some("c1"), 0),
            cand("x1", Some("c2"), 0),
        ];
        let ids: Vec<_> = cs.iter().map(|c| c.run_id).collect();
        let mut s = snap(plan(10, 2), cs);
        // c2 has two more members not in the plan.
        if let Some(v) = s.clusters.get_mut(&ClusterKey {
            vcenter_url: "vc".into(),
            cluster_moid: "c2".into(),
        }) {
            v.members.insert("x2".into());
            v.members.insert("x3".into());
        }
        let d = StandardAdmission.select(&s);
        assert_eq!(d.admit, vec![ids[0], ids[3]]);
        assert!(matches!(
            d.deferred[0].1,
            Deferral::ClusterCapacity { online: 2, .. }
        ));
    }

    #[test]
    fn live_state_counts_hosts_already_in_maintenance() {
        let cs = vec![cand("h1", Some("c1"), 0), cand("h2", Some("c1"), 0)];
        let mut s = snap(plan(10, 1), cs);
        // vCenter says only h1 and h2 are online, h3 is in maintenance by someone else.
        for v in s.clusters.values_mut() {
            v.members.insert("h3".into());
            v.live_online = Some(["h1".to_string(), "h2".to_string()].into());
        }
        let d = StandardAdmission.select(&s);
        assert_eq!(d.admit.len(), 1);
    }

    #[test]
    fn gates_stop_fresh_runs_but_not_reclaims() {
        let mut reclaim = cand("r", None, 0);
        reclaim.state = RunState::Running;
        let mut exhausted = cand("e", None, 0);
        exhausted.state = RunState::Running;
        exhausted.resumes = 3;
        let fresh = cand("f", None, 0);
        let ids = (reclaim.run_id, exhausted.run_id, fresh.run_id);
        let mut p = plan(1, 0);
        p.window = Some(MaintenanceWindow {
            start: t0() + chrono::Duration::hours(1),
            end: t0() + chrono::Duration::hours(5),
        });
        let d = StandardAdmission.select(&snap(p, vec![reclaim, exhausted, fresh]));
        assert_eq!(d.admit, vec![ids.0]);
        assert_eq!(d.exhausted, vec![ids.1]);
        assert_eq!(d.deferred, vec![(ids.2, Deferral::OutsideWindow)]);
    }

    #[test]
    fn window_must_fit_a_whole_run() {
        let mut p = plan(1, 0);
        p.window = Some(MaintenanceWindow {
            start: t0() - chrono::Duration::hours(1),
            end: t0() + chrono::Duration::minutes(20),
        });
        let d = StandardAdmission.select(&snap(p.clone(), vec![cand("a", None, 0)]));
        assert_eq!(d.admit.len(), 0);
        p.expected_run_duration = Duration::from_secs(600);
        let d = StandardAdmission.select(&snap(p, vec![cand("a", None, 0)]));
        assert_eq!(d.admit.len(), 1);
    }

    #[test]
    fn failure_budget_halts_admission() {
        let mut p = plan(5, 0);
        p.failure_budget = Some(FailureBudget {
            max_failures: Some(2),
            max_failure_percent: None,
        });
        let mut s = snap(p, vec![cand("a", None, 0)]);
        s.counts.failed = 2;
        let d = StandardAdmission.select(&s);
        assert!(d.admit.is_empty());
        assert_eq!(d.deferred[0].1, Deferral::FailureBudgetExhausted);
    }

    #[test]
    fn slots_limit_the_claim() {
        let mut s = snap(plan(10, 0), vec![cand("a", None, 0), cand("b", None, 0)]);
        s.slots = 1;
        let d = StandardAdmission.select(&s);
        assert_eq!(d.admit.len(), 1);
        assert_eq!(d.deferred[0].1, Deferral::NoSlot);
    }

    #[test]
    fn a_takeover_past_the_cap_with_maintenance_mode_is_claimed_to_clean_up() {
        let mut clean = cand("c", None, 0);
        clean.state = RunState::Running;
        clean.resumes = 3;
        let mut dirty = cand("d", None, 0);
        dirty.state = RunState::Running;
        dirty.resumes = 3;
        dirty.dirty = true;
        let mut stuck = cand("s", None, 0);
        stuck.state = RunState::Running;
        stuck.resumes = 3 + CLEANUP_RESUMES;
        stuck.dirty = true;
        let ids = (clean.run_id, dirty.run_id, stuck.run_id);
        let d = StandardAdmission.select(&snap(plan(1, 0), vec![clean, dirty, stuck]));
        assert_eq!(
            d.exhausted,
            vec![ids.0],
            "nothing to clean: failed by the store"
        );
        assert_eq!(d.admit, vec![ids.1], "dirty: a worker cleans up");
        assert_eq!(d.stranded, vec![ids.2], "cleanup keeps failing: parked");
    }

    #[test]
    fn cleanup_runs_pass_every_gate_but_slots() {
        let mut c = cand("c", Some("cl"), 0);
        c.cleanup = true;
        c.dirty = true;
        let fresh = cand("f", Some("cl"), 0);
        let ids = (c.run_id, fresh.run_id);
        let mut p = plan(0, 5);
        p.status = PlanStatus::Cancelled;
        let d = StandardAdmission.select(&snap(p.clone(), vec![c.clone(), fresh]));
        assert_eq!(d.admit, vec![ids.0]);
        assert_eq!(d.deferred, vec![(ids.1, Deferral::PlanNotRunning)]);
        let mut s = snap(p, vec![c]);
        s.slots = 0;
        assert_eq!(StandardAdmission.select(&s).deferred[0].1, Deferral::NoSlot);
    }
}
