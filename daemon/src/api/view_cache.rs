//! Shared, short-lived snapshots of whole plan views.
//!
//! A plan view of 1,000 hosts reads every run of the plan and every host and
//! serialises a row per host; fifty clients polling it would each pay that,
//! and on two cores they queue behind each other. Instead, concurrent
//! requests for the same view wait for one computation (single flight), and
//! a computed view is served again for [`FRESH_FOR`]: a poller sees the plan
//! as it was at most that long ago, and the answer says so itself (its
//! `next_since` is the snapshot's time, so a `?since=` read from it misses
//! nothing). The live stream carries every change as it happens; partial
//! (`?since=`) views are not cached. Plan actions forget the plan's
//! snapshots, so the answer to a click, and the next poll, show its effect.

use super::ApiResult;
use axum::body::Bytes;
use firmflow_core::model::{DatacenterId, PlanId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long a computed view is served again.
pub const FRESH_FOR: Duration = Duration::from_millis(500);

/// A view is per plan and per datacenter scope (a scoped caller's rows are
/// only its datacenter's).
type Key = (PlanId, Option<DatacenterId>);

struct Snapshot {
    at: Instant,
    body: Bytes,
}

type Slot = Arc<tokio::sync::Mutex<Option<Snapshot>>>;

/// The snapshots, one slot per plan and scope.
pub struct PlanViews {
    slots: Mutex<HashMap<Key, Slot>>,
    fresh_for: Duration,
}

impl Default for PlanViews {
    fn default() -> Self {
        Self::new(FRESH_FOR)
    }
}

impl PlanViews {
    /// Snapshots served for `fresh_for` after they are computed.
    pub fn new(fresh_for: Duration) -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            fresh_for,
        }
    }

    /// The view of `plan` for `scope`: a fresh snapshot, or the one a
    /// concurrent request is computing, or `compute`'s answer (kept). An
    /// error is returned to this caller and not kept.
    pub async fn get_or_compute<F, Fut>(
        &self,
        plan: PlanId,
        scope: Option<DatacenterId>,
        compute: F,
    ) -> ApiResult<Bytes>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<Bytes>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry((plan, scope)).or_default().clone()
        };
        // Held while computing: the others wait for this answer instead of
        // computing the same view again.
        let mut snapshot = slot.lock().await;
        if let Some(s) = snapshot.as_ref()
            && s.at.elapsed() < self.fresh_for
        {
            return Ok(s.body.clone());
        }
        let body = compute().await?;
        *snapshot = Some(Snapshot {
            at: Instant::now(),
            body: body.clone(),
        });
        Ok(body)
    }

    /// Drops every snapshot of `plan` (after an action changed it).
    pub fn forget(&self, plan: PlanId) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(p, _), _| *p != plan);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn view(views: &PlanViews, plan: PlanId, computed: &AtomicUsize) -> Bytes {
        views
            .get_or_compute(plan, None, || async {
                let n = computed.fetch_add(1, Ordering::SeqCst) + 1;
                // Long enough that the other requests arrive while it runs.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(Bytes::from(format!("view {n}")))
            })
            .await
            .expect("view")
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_share_one_computation_until_it_is_stale() {
        let views = PlanViews::new(Duration::from_millis(500));
        let plan = PlanId::new();
        let computed = AtomicUsize::new(0);
        let answers =
            futures::future::join_all((0..20).map(|_| view(&views, plan, &computed))).await;
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        assert!(answers.iter().all(|a| a == "view 1"));
        // Stale: computed again, once.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let answers =
            futures::future::join_all((0..5).map(|_| view(&views, plan, &computed))).await;
        assert_eq!(computed.load(Ordering::SeqCst), 2);
        assert!(answers.iter().all(|a| a == "view 2"));
        // Another scope is another view.
        views
            .get_or_compute(plan, Some(DatacenterId::new()), || async {
                computed.fetch_add(1, Ordering::SeqCst);
                Ok(Bytes::from_static(b"scoped"))
            })
            .await
            .expect("scoped");
        assert_eq!(computed.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_action_forgets_the_plan_and_errors_are_not_kept() {
        let views = PlanViews::default();
        let (plan, other) = (PlanId::new(), PlanId::new());
        let computed = AtomicUsize::new(0);
        view(&views, plan, &computed).await;
        view(&views, other, &computed).await;
        views.forget(plan);
        assert_eq!(view(&views, plan, &computed).await, "view 3");
        assert_eq!(view(&views, other, &computed).await, "view 2");
        let e = views
            .get_or_compute(PlanId::new(), None, || async {
                Err(super::super::ApiError::not_found("gone"))
            })
            .await;
        assert!(e.is_err());
    }
}
