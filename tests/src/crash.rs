//! Crash injection at every effect boundary of a run.
//!
//! The ports a run acts through (BMC, vCenter, the store's run writes) are
//! wrapped so that every call is one numbered *effect*. A [`CrashSwitch`]
//! armed at effect `k` makes that call either never reach the world
//! ([`Side::Before`]) or reach it and lose its answer ([`Side::After`]); the
//! calling task then hangs until the test aborts the executor, exactly as a
//! killed process leaves things. A fresh executor then takes the run over
//! from what the store holds. Reads count as effects too: a crash may come
//! anywhere, not only around writes.

use async_trait::async_trait;
use firmflow_core::artifacts::{self, ArtifactResolver, ResolveRequest};
use firmflow_core::bmc::{self, BmcConnector, BmcDriver, JobQuery, JobSearch};
use firmflow_core::cluster::{self, ClusterHealth, ClusterHostState, ClusterManager};
use firmflow_core::model::*;
use firmflow_core::store::{
    CancelOutcome, ClaimRequest, ClaimedRun, ConfigStore, EventFilter, EventStore, HostStore,
    JobQueue, PlanCreated, PlanStore, Renewal, RunStore, SessionCache, Store, Transition,
    WriteOutcome,
};

type SResult<T> = firmflow_core::store::Result<T>;
use firmflow_core::testkit::fakes::ArtifactListResolver;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Which side of the armed effect the crash falls on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The call never reaches the world.
    Before,
    /// The call reaches the world; its answer is lost.
    After,
}

#[derive(Default)]
struct SwitchState {
    armed: Option<(usize, Side)>,
    count: usize,
    labels: Vec<&'static str>,
    tripped: bool,
}

/// Counts effects and crashes at the armed one.
#[derive(Clone, Default)]
pub struct CrashSwitch {
    state: Arc<Mutex<SwitchState>>,
    tripped: Arc<Notify>,
}

enum Gate {
    Go,
    CrashBefore,
    CrashAfter,
}

impl CrashSwitch {
    /// A switch that only counts.
    pub fn counting() -> Self {
        Self::default()
    }

    /// A switch that crashes at effect `k` (0-based) on `side`.
    pub fn armed(k: usize, side: Side) -> Self {
        let s = Self::default();
        s.lock().armed = Some((k, side));
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SwitchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Effects seen so far.
    pub fn count(&self) -> usize {
        self.lock().count
    }

    /// Labels of the effects seen, in order.
    pub fn labels(&self) -> Vec<&'static str> {
        self.lock().labels.clone()
    }

    /// Whether the crash happened.
    pub fn has_tripped(&self) -> bool {
        self.lock().tripped
    }

    /// Waits until the crash happened.
    pub async fn wait_tripped(&self) {
        loop {
            let notified = self.tripped.notified();
            if self.has_tripped() {
                return;
            }
            notified.await;
        }
    }

    fn gate(&self, label: &'static str) -> Gate {
        let mut s = self.lock();
        if s.tripped {
            // After the crash nothing of this process reaches the world.
            return Gate::CrashBefore;
        }
        let k = s.count;
        s.count += 1;
        s.labels.push(label);
        match s.armed {
            Some((at, side)) if at == k => {
                if side == Side::Before {
                    s.tripped = true;
                    drop(s);
                    self.tripped.notify_waiters();
                    Gate::CrashBefore
                } else {
                    Gate::CrashAfter
                }
            }
            _ => Gate::Go,
        }
    }

    fn trip(&self) {
        self.lock().tripped = true;
        self.tripped.notify_waiters();
    }

    /// Runs `call` as effect `label`, crashing there when armed.
    pub async fn effect<T>(&self, label: &'static str, call: impl Future<Output = T>) -> T {
        match self.gate(label) {
            Gate::Go => call.await,
            Gate::CrashBefore => std::future::pending().await,
            Gate::CrashAfter => {
                let _lost = call.await;
                self.trip();
                std::future::pending().await
            }
        }
    }
}

/// A BMC connector whose drivers pass every call through a [`CrashSwitch`].
pub struct CrashConnector {
    /// The real connector.
    pub inner: Arc<dyn BmcConnector>,
    /// The switch.
    pub switch: CrashSwitch,
}

#[async_trait]
impl BmcConnector for CrashConnector {
    async fn connect(&self, host: &Host) -> Result<Arc<dyn BmcDriver>, bmc::Error> {
        let d = self
            .switch
            .effect("bmc.connect", self.inner.connect(host))
            .await?;
        Ok(Arc::new(CrashBmc {
            inner: d,
            switch: self.switch.clone(),
        }))
    }
}

struct CrashBmc {
    inner: Arc<dyn BmcDriver>,
    switch: CrashSwitch,
}

#[async_trait]
impl BmcDriver for CrashBmc {
    async fn system(&self) -> Result<bmc::SystemInfo, bmc::Error> {
        self.switch.effect("bmc.system", self.inner.system()).await
    }
    async fn inventory(&self) -> Result<bmc::Inventory, bmc::Error> {
        self.switch
            .effect("bmc.inventory", self.inner.inventory())
            .await
    }
    async fn readiness(&self) -> Result<bmc::Readiness, bmc::Error> {
        self.switch
            .effect("bmc.readiness", self.inner.readiness())
            .await
    }
    async fn power(&self) -> Result<bmc::PowerState, bmc::Error> {
        self.switch.effect("bmc.power", self.inner.power()).await
    }
    async fn start_update(
        &self,
        package: &Package,
        options: &bmc::UpdateOptions,
    ) -> Result<bmc::UpdateStart, bmc::Error> {
        self.switch
            .effect(
                "bmc.start_update",
                self.inner.start_update(package, options),
            )
            .await
    }
    async fn job_ids(&self) -> Result<Option<Vec<String>>, bmc::Error> {
        self.switch
            .effect("bmc.job_ids", self.inner.job_ids())
            .await
    }
    async fn find_job(&self, query: &JobQuery<'_>) -> Result<JobSearch, bmc::Error> {
        self.switch
            .effect("bmc.find_job", self.inner.find_job(query))
            .await
    }
    async fn poll_job(&self, job: &JobHandle) -> Result<bmc::JobStatus, bmc::Error> {
        self.switch
            .effect("bmc.poll_job", self.inner.poll_job(job))
            .await
    }
    async fn reset(&self, kind: bmc::ResetKind) -> Result<(), bmc::Error> {
        self.switch
            .effect("bmc.reset", self.inner.reset(kind))
            .await
    }
    async fn rollback(
        &self,
        component: &bmc::FirmwareComponent,
    ) -> Result<Option<JobHandle>, bmc::Error> {
        self.switch
            .effect("bmc.rollback", self.inner.rollback(component))
            .await
    }
    async fn clear_job_queue(&self) -> Result<(), bmc::Error> {
        self.switch
            .effect("bmc.clear_job_queue", self.inner.clear_job_queue())
            .await
    }
    async fn close(&self) -> Result<(), bmc::Error> {
        self.switch.effect("bmc.close", self.inner.close()).await
    }
}

/// A cluster manager passing every call through a [`CrashSwitch`].
pub struct CrashCluster {
    /// The real one.
    pub inner: Arc<dyn ClusterManager>,
    /// The switch.
    pub switch: CrashSwitch,
}

#[async_trait]
impl ClusterManager for CrashCluster {
    async fn cluster_hosts(&self, c: &ClusterKey) -> Result<Vec<ClusterHostState>, cluster::Error> {
        // Read by the scheduler on its own timing, not by the run: not an
        // effect of the run, so not counted.
        self.inner.cluster_hosts(c).await
    }
    async fn cluster_health(&self, c: &ClusterKey) -> Result<ClusterHealth, cluster::Error> {
        self.switch
            .effect("vc.cluster_health", self.inner.cluster_health(c))
            .await
    }
    async fn enter_maintenance(&self, host: &Host, t: Duration) -> Result<(), cluster::Error> {
        self.switch
            .effect(
                "vc.enter_maintenance",
                self.inner.enter_maintenance(host, t),
            )
            .await
    }
    async fn exit_maintenance(&self, host: &Host, t: Duration) -> Result<(), cluster::Error> {
        self.switch
            .effect("vc.exit_maintenance", self.inner.exit_maintenance(host, t))
            .await
    }
    async fn in_maintenance(&self, host: &Host) -> Result<bool, cluster::Error> {
        self.switch
            .effect("vc.in_maintenance", self.inner.in_maintenance(host))
            .await
    }
}

/// A store whose run writes (transitions, checkpoints, releases) pass
/// through a [`CrashSwitch`]; everything else is the inner store's.
pub struct CrashStore {
    /// The real store.
    pub inner: Arc<dyn Store>,
    /// The switch.
    pub switch: CrashSwitch,
}

#[async_trait]
impl HostStore for CrashStore {
    async fn add_host(&self, host: NewHost) -> SResult<Host> {
        self.inner.add_host(host).await
    }
    async fn get_host(&self, id: HostId) -> SResult<Host> {
        self.inner.get_host(id).await
    }
    async fn list_hosts(&self) -> SResult<Vec<Host>> {
        self.inner.list_hosts().await
    }
    async fn update_host(&self, host: &Host) -> SResult<()> {
        self.inner.update_host(host).await
    }
    async fn add_credential(
        &self,
        host_id: Option<HostId>,
        kind: CredentialKind,
        vault_path: &str,
    ) -> SResult<CredentialRecord> {
        self.inner.add_credential(host_id, kind, vault_path).await
    }
    async fn credentials_for(
        &self,
        host_id: HostId,
        kind: CredentialKind,
    ) -> SResult<Vec<CredentialRecord>> {
        self.inner.credentials_for(host_id, kind).await
    }
}

#[async_trait]
impl PlanStore for CrashStore {
    async fn create_plan(&self, plan: NewPlan) -> SResult<PlanCreated> {
        self.inner.create_plan(plan).await
    }
    async fn get_plan(&self, id: PlanId) -> SResult<Plan> {
        self.inner.get_plan(id).await
    }
    async fn list_plans(&self) -> SResult<Vec<Plan>> {
        self.inner.list_plans().await
    }
    async fn active_plans(&self) -> SResult<Vec<Plan>> {
        self.inner.active_plans().await
    }
    async fn plan_targets(&self, id: PlanId) -> SResult<Vec<PlanTarget>> {
        self.inner.plan_targets(id).await
    }
    async fn plan_artifacts(&self, id: PlanId) -> SResult<Vec<Artifact>> {
        self.inner.plan_artifacts(id).await
    }
    async fn set_plan_status(
        &self,
        id: PlanId,
        from: PlanStatus,
        to: PlanStatus,
        reason: Option<&str>,
        by: Option<UserId>,
    ) -> SResult<bool> {
        self.inner.set_plan_status(id, from, to, reason, by).await
    }
}

#[async_trait]
impl RunStore for CrashStore {
    async fn claim(&self, request: ClaimRequest<'_>) -> SResult<Vec<ClaimedRun>> {
        if self.switch.has_tripped() {
            return std::future::pending().await;
        }
        self.inner.claim(request).await
    }
    async fn renew(
        &self,
        worker: &WorkerId,
        leases: &[Lease],
        ttl: Duration,
    ) -> SResult<Vec<Renewal>> {
        if self.switch.has_tripped() {
            return std::future::pending().await;
        }
        self.inner.renew(worker, leases, ttl).await
    }
    async fn transition(&self, lease: &Lease, change: Transition) -> SResult<WriteOutcome> {
        let label = if change.to == RunState::Running {
            "store.checkpoint"
        } else {
            "store.transition"
        };
        self.switch
            .effect(label, self.inner.transition(lease, change))
            .await
    }
    async fn release(&self, lease: &Lease, ctx: RunCtx) -> SResult<WriteOutcome> {
        self.switch
            .effect("store.release", self.inner.release(lease, ctx))
            .await
    }
    async fn release_all(&self, worker: &WorkerId) -> SResult<u64> {
        self.inner.release_all(worker).await
    }
    async fn request_cancel(&self, run: RunId) -> SResult<CancelOutcome> {
        self.inner.request_cancel(run).await
    }
    async fn get_run(&self, id: RunId) -> SResult<HostRun> {
        self.inner.get_run(id).await
    }
    async fn list_runs(&self, plan: PlanId) -> SResult<Vec<HostRun>> {
        self.inner.list_runs(plan).await
    }
    async fn run_counts(&self, plan: PlanId) -> SResult<firmflow_core::policy::RunCounts> {
        self.inner.run_counts(plan).await
    }
}

#[async_trait]
impl EventStore for CrashStore {
    async fn append_event(&self, event: NewEvent) -> SResult<SystemEvent> {
        self.inner.append_event(event).await
    }
    async fn list_events(&self, filter: &EventFilter) -> SResult<Vec<SystemEvent>> {
        self.inner.list_events(filter).await
    }
}

#[async_trait]
impl JobQueue for CrashStore {
    async fn enqueue(&self, job: NewJob) -> SResult<JobId> {
        self.inner.enqueue(job).await
    }
    async fn claim_jobs(
        &self,
        worker: &WorkerId,
        types: &[String],
        limit: usize,
        lock_ttl: Duration,
    ) -> SResult<Vec<BackgroundJob>> {
        self.inner.claim_jobs(worker, types, limit, lock_ttl).await
    }
    async fn complete_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        result: serde_json::Value,
    ) -> SResult<bool> {
        self.inner.complete_job(id, worker, result).await
    }
    async fn fail_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        error: &str,
        backoff: Duration,
    ) -> SResult<bool> {
        self.inner.fail_job(id, worker, error, backoff).await
    }
    async fn get_job(&self, id: JobId) -> SResult<BackgroundJob> {
        self.inner.get_job(id).await
    }
}

#[async_trait]
impl ConfigStore for CrashStore {
    async fn get_config(&self, key: &str) -> SResult<Option<ConfigEntry>> {
        self.inner.get_config(key).await
    }
    async fn set_config(
        &self,
        key: &str,
        value: serde_json::Value,
        description: Option<&str>,
    ) -> SResult<ConfigEntry> {
        self.inner.set_config(key, value, description).await
    }
    async fn list_config(&self) -> SResult<Vec<ConfigEntry>> {
        self.inner.list_config().await
    }
}

#[async_trait]
impl SessionCache for CrashStore {
    async fn get_session(&self, host: HostId) -> SResult<Option<RedfishSession>> {
        self.inner.get_session(host).await
    }
    async fn put_session(&self, session: RedfishSession) -> SResult<()> {
        self.inner.put_session(session).await
    }
    async fn delete_session(&self, host: HostId) -> SResult<()> {
        self.inner.delete_session(host).await
    }
}

/// How the packages of a crash scenario reach the BMC (the seed's modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// `SPECIFIC_PACKAGE`: an image URI the BMC pulls.
    ImageUri,
    /// `MULTIPART_FILE`: a local file uploaded.
    Upload,
    /// `LATEST_FROM_CATALOG`: one repository install covering the packages.
    Repository,
}

/// The fake resolver with the package source rewritten to a delivery mode.
pub struct DeliveryResolver(pub Delivery);

#[async_trait]
impl ArtifactResolver for DeliveryResolver {
    async fn resolve(
        &self,
        r: ResolveRequest<'_>,
    ) -> std::result::Result<Vec<Package>, artifacts::Error> {
        let mut out = ArtifactListResolver.resolve(r).await?;
        for p in &mut out {
            p.source = match self.0 {
                Delivery::ImageUri => continue,
                Delivery::Upload => PackageSource::LocalFile {
                    path: format!(
                        "/var/lib/firmflow/{}_{}.EXE",
                        p.component_id, p.target_version
                    ),
                },
                Delivery::Repository => PackageSource::Repository {
                    repository_uri: "https://downloads.test/repo".into(),
                    catalog_file: "Catalog.xml".into(),
                },
            };
        }
        Ok(out)
    }
}
