//! Plan operations: create (validated), approve, start, pause, resume,
//! cancel; and the scheduler's plan bookkeeping (completion, failure budget).

use super::{Executor, Shared};
use crate::model::{NewPlan, Plan, PlanId, PlanStatus, RunState, UserId};
use crate::policy::{InvalidPlan, RunCounts, ValidationContext, validate_plan};
use crate::store;
use std::collections::BTreeMap;
use tracing::info;

/// Why a plan operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plan is invalid; every problem is listed.
    #[error(transparent)]
    Invalid(#[from] InvalidPlan),
    /// The plan is not in a status that allows the operation.
    #[error("plan {plan} is {status}: cannot {operation}")]
    WrongStatus {
        /// Plan.
        plan: PlanId,
        /// Its status.
        status: PlanStatus,
        /// What was asked.
        operation: &'static str,
    },
    /// Approval is required before start.
    #[error("plan {0} requires approval before it can start")]
    NotApproved(PlanId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl Executor {
    /// Validates and creates a plan (status `draft`). Every problem is listed
    /// at once; nothing is created when there is one. Cluster sizes come
    /// from the cluster manager when it answers, else from registered hosts.
    pub async fn create_plan(&self, plan: NewPlan) -> Result<store::PlanCreated, PlanError> {
        let store = &self.shared.services.store;
        let mut cx = ValidationContext {
            extra_checks: self.shared.services.checks.extra_names(),
            ..Default::default()
        };
        let all_hosts = store.list_hosts().await?;
        let mut registered: BTreeMap<_, usize> = BTreeMap::new();
        for h in &all_hosts {
            if let Some(k) = h.cluster_key() {
                *registered.entry(k).or_default() += 1;
            }
        }
        for t in &plan.targets {
            match all_hosts.iter().find(|h| h.id == t.host_id) {
                None => cx.unknown_hosts.push(t.host_id.to_string()),
                Some(h) => {
                    if let Some(k) = h.cluster_key()
                        && !cx.cluster_sizes.contains_key(&k)
                    {
                        let live = match &self.shared.services.cluster {
                            Some(cm) => cm.cluster_hosts(&k).await.ok().map(|v| v.len()),
                            None => None,
                        };
                        let size = live.unwrap_or_else(|| registered.get(&k).copied().unwrap_or(0));
                        cx.cluster_sizes.insert(k, size);
                    }
                }
            }
        }
        validate_plan(&plan, &cx)?;
        Ok(store.create_plan(plan).await?)
    }

    /// Approves a draft plan.
    pub async fn approve(&self, plan: PlanId, by: UserId) -> Result<(), PlanError> {
        self.move_plan(
            plan,
            &[PlanStatus::Draft],
            PlanStatus::Approved,
            "approve",
            Some(by),
            None,
        )
        .await
    }

    /// Starts a plan: `approved` (or `draft` when no approval is required)
    /// to `running`.
    pub async fn start(&self, plan: PlanId, by: Option<UserId>) -> Result<(), PlanError> {
        let p = self.shared.services.store.get_plan(plan).await?;
        if p.approval_required && p.status == PlanStatus::Draft {
            return Err(PlanError::NotApproved(plan));
        }
        self.move_plan(
            plan,
            &[PlanStatus::Draft, PlanStatus::Approved],
            PlanStatus::Running,
            "start",
            by,
            None,
        )
        .await?;
        self.wake();
        Ok(())
    }

    /// Pauses a plan: no new host starts; hosts in flight finish their run.
    pub async fn pause(&self, plan: PlanId, by: Option<UserId>) -> Result<(), PlanError> {
        self.move_plan(
            plan,
            &[PlanStatus::Running],
            PlanStatus::Paused,
            "pause",
            by,
            None,
        )
        .await
    }

    /// Resumes a paused plan.
    pub async fn resume(&self, plan: PlanId, by: Option<UserId>) -> Result<(), PlanError> {
        self.move_plan(
            plan,
            &[PlanStatus::Paused],
            PlanStatus::Running,
            "resume",
            by,
            None,
        )
        .await?;
        self.wake();
        Ok(())
    }

    /// Cancels a plan: runs not started are cancelled at once; running runs
    /// stop at their next safe point (never in the middle of an install),
    /// leave maintenance mode, and end `cancelled`.
    pub async fn cancel(&self, plan: PlanId, by: Option<UserId>) -> Result<(), PlanError> {
        self.move_plan(
            plan,
            &[
                PlanStatus::Draft,
                PlanStatus::Approved,
                PlanStatus::Running,
                PlanStatus::Paused,
            ],
            PlanStatus::Cancelled,
            "cancel",
            by,
            Some("cancelled by operator"),
        )
        .await?;
        cancel_unfinished(&self.shared, plan).await?;
        Ok(())
    }

    async fn move_plan(
        &self,
        plan: PlanId,
        from: &[PlanStatus],
        to: PlanStatus,
        operation: &'static str,
        by: Option<UserId>,
        reason: Option<&str>,
    ) -> Result<(), PlanError> {
        let store = &self.shared.services.store;
        // A compare-and-set per allowed origin: a concurrent change loses cleanly.
        for _ in 0..3 {
            let p = store.get_plan(plan).await?;
            if !from.contains(&p.status) {
                return Err(PlanError::WrongStatus {
                    plan,
                    status: p.status,
                    operation,
                });
            }
            if store
                .set_plan_status(plan, p.status, to, reason, by)
                .await?
            {
                info!(plan = %plan, from = %p.status, to = %to, "plan status changed");
                return Ok(());
            }
        }
        let p = store.get_plan(plan).await?;
        Err(PlanError::WrongStatus {
            plan,
            status: p.status,
            operation,
        })
    }
}

async fn cancel_unfinished(shared: &Shared, plan: PlanId) -> Result<(), store::Error> {
    let store = &shared.services.store;
    for r in store.list_runs(plan).await? {
        if !r.state.is_final() {
            store.request_cancel(r.id).await?;
        }
    }
    Ok(())
}

/// Every run is final: the plan ends `completed` when none failed, else `failed`.
pub(super) async fn finish_plan(
    shared: &Shared,
    plan: &Plan,
    counts: &RunCounts,
) -> Result<(), store::Error> {
    let (to, reason) = if counts.needs_attention > 0 {
        (
            PlanStatus::Failed,
            Some(format!(
                "{} of {} host(s) need attention, {} failed",
                counts.needs_attention,
                counts.total(),
                counts.failed
            )),
        )
    } else if counts.failed == 0 && counts.cancelled == 0 {
        (PlanStatus::Completed, None)
    } else if counts.failed == 0 {
        (
            PlanStatus::Completed,
            Some(format!("{} run(s) cancelled", counts.cancelled)),
        )
    } else {
        (
            PlanStatus::Failed,
            Some(format!(
                "{} of {} host(s) failed",
                counts.failed,
                counts.total()
            )),
        )
    };
    shared
        .services
        .store
        .set_plan_status(plan.id, PlanStatus::Running, to, reason.as_deref(), None)
        .await?;
    Ok(())
}

/// The failure budget is spent: admit nothing more; once the hosts in
/// flight are done, cancel what never started and fail the plan.
pub(super) async fn halt_for_budget(
    shared: &Shared,
    plan: &Plan,
    counts: &RunCounts,
) -> Result<(), store::Error> {
    if counts.running > 0 {
        return Ok(());
    }
    let store = &shared.services.store;
    for r in store.list_runs(plan.id).await? {
        if matches!(r.state, RunState::Pending | RunState::Retrying) {
            store.request_cancel(r.id).await?;
        }
    }
    let reason = format!(
        "failure budget exhausted: {} of {} host(s) failed",
        counts.failed,
        counts.total()
    );
    store
        .set_plan_status(
            plan.id,
            PlanStatus::Running,
            PlanStatus::Failed,
            Some(&reason),
            None,
        )
        .await?;
    Ok(())
}
