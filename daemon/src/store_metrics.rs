//! Store write latency: [`MeteredStore`] wraps whichever store the daemon
//! runs on (memory or PostgreSQL) and times every write it is asked for.
//!
//! Writes are what a campaign waits on (each fenced checkpoint is a durable
//! commit before the next side effect), so their latency is the first thing
//! to look at when runs slow down: `firmflowd_store_write_duration_seconds`
//! by operation, and `firmflowd_store_write_errors_total` by operation for
//! the writes that failed (a fenced write refused for a stale lease is an
//! answer, not an error). Reads pass through untimed.

use async_trait::async_trait;
use firmflow_core::model::*;
use firmflow_core::policy::RunCounts;
use firmflow_core::store::*;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The store write metrics.
#[derive(Clone)]
pub struct StoreMetrics {
    write_seconds: HistogramVec,
    write_errors: IntCounterVec,
}

impl StoreMetrics {
    /// Registers the metrics in `registry` (under its `firmflowd_` prefix).
    pub fn register(registry: &Registry) -> std::result::Result<Self, prometheus::Error> {
        let write_seconds = HistogramVec::new(
            HistogramOpts::new(
                "store_write_duration_seconds",
                "Time the store took for each write, by operation",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["operation"],
        )?;
        let write_errors = IntCounterVec::new(
            Opts::new(
                "store_write_errors_total",
                "Store writes that failed, by operation",
            ),
            &["operation"],
        )?;
        registry.register(Box::new(write_seconds.clone()))?;
        registry.register(Box::new(write_errors.clone()))?;
        Ok(Self {
            write_seconds,
            write_errors,
        })
    }

    /// Records one write of `operation` that took `took`.
    pub fn observe(&self, operation: &str, took: Duration, ok: bool) {
        self.write_seconds
            .with_label_values(&[operation])
            .observe(took.as_secs_f64());
        if !ok {
            self.write_errors.with_label_values(&[operation]).inc();
        }
    }
}

/// A store whose writes are timed into [`StoreMetrics`].
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: StoreMetrics,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, metrics: StoreMetrics) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(&self, operation: &str, write: impl Future<Output = Result<T>>) -> Result<T> {
        let started = Instant::now();
        let out = write.await;
        self.metrics
            .observe(operation, started.elapsed(), out.is_ok());
        out
    }
}

#[async_trait]
impl HostStore for MeteredStore {
    async fn add_host(&self, host: NewHost) -> Result<Host> {
        self.timed("add_host", self.inner.add_host(host)).await
    }
    async fn get_host(&self, id: HostId) -> Result<Host> {
        self.inner.get_host(id).await
    }
    async fn list_hosts(&self) -> Result<Vec<Host>> {
        self.inner.list_hosts().await
    }
    async fn update_host(&self, host: &Host) -> Result<()> {
        self.timed("update_host", self.inner.update_host(host))
            .await
    }
    async fn add_credential(
        &self,
        host_id: Option<HostId>,
        kind: CredentialKind,
        vault_path: &str,
    ) -> Result<CredentialRecord> {
        self.timed(
            "add_credential",
            self.inner.add_credential(host_id, kind, vault_path),
        )
        .await
    }
    async fn credentials_for(
        &self,
        host_id: HostId,
        kind: CredentialKind,
    ) -> Result<Vec<CredentialRecord>> {
        self.inner.credentials_for(host_id, kind).await
    }
    async fn remove_host(&self, id: HostId) -> Result<()> {
        self.timed("remove_host", self.inner.remove_host(id)).await
    }
}

#[async_trait]
impl PlanStore for MeteredStore {
    async fn create_plan(&self, plan: NewPlan) -> Result<PlanCreated> {
        self.timed("create_plan", self.inner.create_plan(plan))
            .await
    }
    async fn get_plan(&self, id: PlanId) -> Result<Plan> {
        self.inner.get_plan(id).await
    }
    async fn list_plans(&self) -> Result<Vec<Plan>> {
        self.inner.list_plans().await
    }
    async fn active_plans(&self) -> Result<Vec<Plan>> {
        self.inner.active_plans().await
    }
    async fn plan_targets(&self, id: PlanId) -> Result<Vec<PlanTarget>> {
        self.inner.plan_targets(id).await
    }
    async fn plan_artifacts(&self, id: PlanId) -> Result<Vec<Artifact>> {
        self.inner.plan_artifacts(id).await
    }
    async fn set_plan_status(
        &self,
        id: PlanId,
        from: PlanStatus,
        to: PlanStatus,
        reason: Option<&str>,
        by: Option<UserId>,
    ) -> Result<bool> {
        self.timed(
            "set_plan_status",
            self.inner.set_plan_status(id, from, to, reason, by),
        )
        .await
    }
}

#[async_trait]
impl RunStore for MeteredStore {
    async fn claim(&self, request: ClaimRequest<'_>) -> Result<Vec<ClaimedRun>> {
        self.timed("claim", self.inner.claim(request)).await
    }
    async fn renew(
        &self,
        worker: &WorkerId,
        leases: &[Lease],
        ttl: Duration,
    ) -> Result<Vec<Renewal>> {
        self.timed("renew", self.inner.renew(worker, leases, ttl))
            .await
    }
    async fn transition(&self, lease: &Lease, change: Transition) -> Result<WriteOutcome> {
        // A checkpoint keeps the state; a transition changes it.
        let op = if change.from == change.to {
            "checkpoint"
        } else {
            "transition"
        };
        self.timed(op, self.inner.transition(lease, change)).await
    }
    async fn release(&self, lease: &Lease, ctx: RunCtx) -> Result<WriteOutcome> {
        self.timed("release", self.inner.release(lease, ctx)).await
    }
    async fn release_all(&self, worker: &WorkerId) -> Result<u64> {
        self.timed("release_all", self.inner.release_all(worker))
            .await
    }
    async fn request_cancel(&self, run: RunId) -> Result<CancelOutcome> {
        self.timed("request_cancel", self.inner.request_cancel(run))
            .await
    }
    async fn get_run(&self, id: RunId) -> Result<HostRun> {
        self.inner.get_run(id).await
    }
    async fn list_runs(&self, plan: PlanId) -> Result<Vec<HostRun>> {
        self.inner.list_runs(plan).await
    }
    async fn run_counts(&self, plan: PlanId) -> Result<RunCounts> {
        self.inner.run_counts(plan).await
    }
}

#[async_trait]
impl EventStore for MeteredStore {
    async fn append_event(&self, event: NewEvent) -> Result<SystemEvent> {
        self.timed("append_event", self.inner.append_event(event))
            .await
    }
    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<SystemEvent>> {
        self.inner.list_events(filter).await
    }
}

#[async_trait]
impl JobQueue for MeteredStore {
    async fn enqueue(&self, job: NewJob) -> Result<JobId> {
        self.timed("enqueue", self.inner.enqueue(job)).await
    }
    async fn claim_jobs(
        &self,
        worker: &WorkerId,
        types: &[String],
        limit: usize,
        lock_ttl: Duration,
    ) -> Result<Vec<BackgroundJob>> {
        self.timed(
            "claim_jobs",
            self.inner.claim_jobs(worker, types, limit, lock_ttl),
        )
        .await
    }
    async fn complete_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        result: serde_json::Value,
    ) -> Result<bool> {
        self.timed("complete_job", self.inner.complete_job(id, worker, result))
            .await
    }
    async fn fail_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        error: &str,
        backoff: Duration,
    ) -> Result<bool> {
        self.timed("fail_job", self.inner.fail_job(id, worker, error, backoff))
            .await
    }
    async fn get_job(&self, id: JobId) -> Result<BackgroundJob> {
        self.inner.get_job(id).await
    }
}

#[async_trait]
impl ConfigStore for MeteredStore {
    async fn get_config(&self, key: &str) -> Result<Option<ConfigEntry>> {
        self.inner.get_config(key).await
    }
    async fn set_config(
        &self,
        key: &str,
        value: serde_json::Value,
        description: Option<&str>,
    ) -> Result<ConfigEntry> {
        self.timed("set_config", self.inner.set_config(key, value, description))
            .await
    }
    async fn list_config(&self) -> Result<Vec<ConfigEntry>> {
        self.inner.list_config().await
    }
}

#[async_trait]
impl SessionCache for MeteredStore {
    async fn get_session(&self, host: HostId) -> Result<Option<RedfishSession>> {
        self.inner.get_session(host).await
    }
    async fn put_session(&self, session: RedfishSession) -> Result<()> {
        self.timed("put_session", self.inner.put_session(session))
            .await
    }
    async fn delete_session(&self, host: HostId) -> Result<()> {
        self.timed("delete_session", self.inner.delete_session(host))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmflow_core::SystemClock;
    use firmflow_store_memory::MemoryStore;

    #[tokio::test]
    async fn writes_are_timed_by_operation_and_failures_counted() {
        let registry = Registry::new();
        let metrics = StoreMetrics::register(&registry).expect("register");
        let store = MeteredStore::new(Arc::new(MemoryStore::new(Arc::new(SystemClock))), metrics);
        let h = store
            .add_host(NewHost::idrac("a.example.net", "10.0.0.1"))
            .await
            .expect("host");
        store.list_hosts().await.expect("read");
        // A failed write: an unknown host.
        let mut ghost = h.clone();
        ghost.id = HostId::new();
        let _ = store.update_host(&ghost).await;
        let mut text = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut text,
        )
        .expect("encode");
        let text = String::from_utf8(text).expect("utf-8");
        let value = |series: &str| -> Option<String> {
            text.lines()
                .find_map(|l| l.strip_prefix(series))
                .map(|v| v.trim().to_string())
        };
        let count = |op: &str| {
            value(&format!(
                "store_write_duration_seconds_count{{operation=\"{op}\"}} "
            ))
        };
        let errors = |op: &str| value(&format!("store_write_errors_total{{operation=\"{op}\"}} "));
        assert_eq!(count("add_host").as_deref(), Some("1"), "{text}");
        assert_eq!(count("update_host").as_deref(), Some("1"), "{text}");
        assert_eq!(errors("update_host").as_deref(), Some("1"), "{text}");
        assert_eq!(errors("add_host"), None, "{text}");
        assert!(!text.contains("list_hosts"), "reads are not timed: {text}");
    }
}
