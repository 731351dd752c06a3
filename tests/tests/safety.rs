//! One scenario per safety defect found in review (issue 10): each failed on
//! the engine before the change and passes after. The exhaustive crash-point
//! test (crash_points.rs) covers the same invariants at every effect; these
//! name the defects one by one. Paused tokio time, memory store, fakes.

use async_trait::async_trait;
use firmflow_core::bmc::{self, BmcConnector, BmcDriver, JobQuery, JobSearch, ResetKind};
use firmflow_core::checks::CheckRegistry;
use firmflow_core::executor::{Executor, ExecutorConfig, Jitter, Services};
use firmflow_core::model::*;
use firmflow_core::store::RunStore as _;
use firmflow_core::testkit::fakes::{ArtifactListResolver, HostScript};
use firmflow_tests::crash::*;
use firmflow_tests::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

fn executor_with(
    w: &World,
    name: &str,
    bmc: Arc<dyn BmcConnector>,
    switch: &CrashSwitch,
) -> Executor {
    let mut cfg = ExecutorConfig::new(name);
    cfg.slots = 4;
    cfg.jitter = Jitter::Fixed(0.5);
    Executor::new(
        Services {
            store: Arc::new(CrashStore {
                inner: w.store.clone(),
                switch: switch.clone(),
            }),
            bmc: Arc::new(CrashConnector {
                inner: bmc,
                switch: switch.clone(),
            }),
            cluster: Some(Arc::new(CrashCluster {
                inner: Arc::new(w.cluster.clone()),
                switch: switch.clone(),
            })),
            resolver: Arc::new(ArtifactListResolver),
            checks: CheckRegistry::builtin(),
            clock: w.clock.clone(),
        },
        cfg,
    )
}

fn executor(w: &World, name: &str, switch: &CrashSwitch) -> Executor {
    executor_with(w, name, Arc::new(w.fleet.clone()), switch)
}

/// A clustered host (two spare members) in a fresh world.
async fn world(script: HostScript) -> (World, Host) {
    let mut w = World::new();
    let h = w.clustered("esx0", "c1", script).await;
    w.cluster.add_host(&cluster_key("c1"), "host-spare1");
    w.cluster.add_host(&cluster_key("c1"), "host-spare2");
    (w, h)
}

/// The index of the `nth` (0-based) effect labelled `label` in a clean run.
async fn effect_index(
    script: HostScript,
    np: impl Fn(&Host) -> NewPlan,
    label: &str,
    nth: usize,
) -> usize {
    let (w, h) = world(script).await;
    let sw = CrashSwitch::counting();
    let exec = executor(&w, "count", &sw);
    let handle = exec.spawn();
    let pid = start(&exec, np(&h)).await;
    finish(&handle, pid).await;
    handle.shutdown().await;
    sw.labels()
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == label)
        .nth(nth)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no {label} #{nth} in {:?}", sw.labels()))
}

/// Runs a plan with a crash at effect `k`, then a fresh executor takes over.
async fn crash_and_resume(
    w: &World,
    np: NewPlan,
    k: usize,
    side: Side,
    between: impl FnOnce(&World),
) -> (PlanId, HostRun) {
    let sw = CrashSwitch::armed(k, side);
    let exec_a = executor(w, "a", &sw);
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, np).await;
    sw.wait_tripped().await;
    handle_a.abort();
    between(w);
    tokio::time::sleep(Duration::from_secs(180)).await;
    let exec_b = executor(w, "b", &CrashSwitch::counting());
    let handle_b = exec_b.spawn();
    finish(&handle_b, pid).await;
    handle_b.shutdown().await;
    let run = w.store.list_runs(pid).await.expect("runs").remove(0);
    (pid, run)
}

fn bios_plan(h: &Host) -> NewPlan {
    let mut np = plan(&[(h, 0)], vec![bios("2.19.1")]);
    np.policy.rollback_on_failure = true;
    np
}

/// Defect 1: a finished job left on the BMC by an earlier campaign, for the
/// same component, must not be adopted after a crash in the submit window
/// (adopting it failed verification and rolled back a component the run
/// never touched).
#[tokio::test(start_paused = true)]
async fn a_stale_finished_job_is_never_adopted_after_a_crash_in_the_submit_window() {
    let k = effect_index(HostScript::default(), bios_plan, "bmc.start_update", 0).await;
    let (w, h) = world(HostScript::default()).await;
    w.fleet.add_old_job(&h.fqdn, "159", "2.19.1", true);
    let (_, run) = crash_and_resume(&w, bios_plan(&h), k, Side::Before, |_| {}).await;
    assert_eq!(run.state, RunState::Completed, "{:?}", run.last_error);
    assert_eq!(
        w.fleet.submits(&h.fqdn).len(),
        1,
        "submitted once, by the resume"
    );
    assert_eq!(
        w.fleet.installs(&h.fqdn),
        vec![("159".into(), "2.19.1".into())]
    );
    assert!(w.fleet.rollbacks(&h.fqdn).is_empty(), "nothing rolled back");
}

/// Defect 2: a BMC that cannot list its jobs (generic Redfish without a
/// TaskService) gave "no job", so a crash right after the submission reached
/// it led to a second submission. Now the run parks with the evidence.
#[tokio::test(start_paused = true)]
async fn a_bmc_without_job_listing_parks_instead_of_resubmitting() {
    let script = HostScript {
        job_listing: false,
        ..HostScript::default()
    };
    let k = effect_index(script.clone(), bios_plan, "bmc.start_update", 0).await;
    let (w, h) = world(script).await;
    let (_, run) = crash_and_resume(&w, bios_plan(&h), k, Side::After, |_| {}).await;
    assert_eq!(run.state, RunState::NeedsAttention, "{:?}", run.last_error);
    assert_eq!(
        w.fleet.submits(&h.fqdn).len(),
        1,
        "never resubmitted blindly"
    );
    let a = run.ctx.checkpoint.attention.expect("evidence");
    assert_eq!(a.evidence["search"]["result"], "unknowable");
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
}

/// A connector whose drivers take 30 minutes to start an update (a slow
/// upload) before the BMC sees it.
struct SlowSubmit {
    inner: Arc<dyn BmcConnector>,
    entered: Arc<Notify>,
}

struct SlowDriver {
    inner: Arc<dyn BmcDriver>,
    entered: Arc<Notify>,
}

#[async_trait]
impl BmcConnector for SlowSubmit {
    async fn connect(&self, host: &Host) -> Result<Arc<dyn BmcDriver>, bmc::Error> {
        Ok(Arc::new(SlowDriver {
            inner: self.inner.connect(host).await?,
            entered: self.entered.clone(),
        }))
    }
}

#[async_trait]
impl BmcDriver for SlowDriver {
    async fn system(&self) -> Result<bmc::SystemInfo, bmc::Error> {
        self.inner.system().await
    }
    async fn inventory(&self) -> Result<bmc::Inventory, bmc::Error> {
        self.inner.inventory().await
    }
    async fn readiness(&self) -> Result<bmc::Readiness, bmc::Error> {
        self.inner.readiness().await
    }
    async fn power(&self) -> Result<bmc::PowerState, bmc::Error> {
        self.inner.power().await
    }
    async fn start_update(
        &self,
        p: &Package,
        o: &bmc::UpdateOptions,
    ) -> Result<bmc::UpdateStart, bmc::Error> {
        self.entered.notify_one();
        tokio::time::sleep(Duration::from_secs(30 * 60)).await;
        self.inner.start_update(p, o).await
    }
    async fn job_ids(&self) -> Result<Option<Vec<String>>, bmc::Error> {
        self.inner.job_ids().await
    }
    async fn find_job(&self, q: &JobQuery<'_>) -> Result<JobSearch, bmc::Error> {
        self.inner.find_job(q).await
    }
    async fn poll_job(&self, j: &JobHandle) -> Result<bmc::JobStatus, bmc::Error> {
        self.inner.poll_job(j).await
    }
    async fn reset(&self, k: ResetKind) -> Result<(), bmc::Error> {
        self.inner.reset(k).await
    }
    async fn rollback(&self, c: &bmc::FirmwareComponent) -> Result<Option<JobHandle>, bmc::Error> {
        self.inner.rollback(c).await
    }
    async fn clear_job_queue(&self) -> Result<(), bmc::Error> {
        self.inner.clear_job_queue().await
    }
    async fn close(&self) -> Result<(), bmc::Error> {
        self.inner.close().await
    }
}

/// Defect 4: the lease was trusted for a whole call. A 30-minute upload under
/// a 60 s lease whose heartbeats stopped reached the BMC after a successor
/// had taken the run over and submitted it itself: two installs.
#[tokio::test(start_paused = true)]
async fn a_call_outliving_its_lease_is_dropped_before_a_successor_acts() {
    let (w, h) = world(HostScript::default()).await;
    let entered = Arc::new(Notify::new());
    let slow = Arc::new(SlowSubmit {
        inner: Arc::new(w.fleet.clone()),
        entered: entered.clone(),
    });
    let exec_a = executor_with(&w, "a", slow, &CrashSwitch::counting());
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, bios_plan(&h)).await;
    entered.notified().await;
    // The worker loses its database link in the middle of the upload.
    handle_a.suspend_heartbeats();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let exec_b = executor(&w, "b", &CrashSwitch::counting());
    let handle_b = exec_b.spawn();
    finish(&handle_b, pid).await;
    // Long after A's upload would have finished.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let run = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(run.state, RunState::Completed, "{:?}", run.last_error);
    assert_eq!(
        w.fleet.submits(&h.fqdn).len(),
        1,
        "only the successor submitted"
    );
    assert_eq!(w.fleet.installs(&h.fqdn).len(), 1);
    handle_b.shutdown().await;
    handle_a.abort();
}

fn nic_script() -> HostScript {
    let mut s = HostScript::default();
    s.components.insert(
        "101".into(),
        (
            "Broadcom NetXtreme".into(),
            ComponentKind::Nic,
            "21.0".into(),
        ),
    );
    s.failing_components = vec!["101".into()];
    s
}

fn nic(version: &str) -> Artifact {
    Artifact {
        id: ArtifactId::new(),
        component: "101".into(),
        image_uri: format!("https://repo.test/NIC_{version}.EXE"),
        version: Some(version.into()),
        checksum: None,
        size_bytes: None,
        metadata: serde_json::json!({ "rebootRequired": true }),
    }
}

fn bios_and_failing_nic(h: &Host) -> NewPlan {
    let mut np = plan(&[(h, 0)], vec![bios("2.19.1"), nic("22.0")]);
    np.policy.rollback_on_failure = true;
    np.policy.reboot_type = Some(RebootType::Graceful);
    np.policy.retry = Some(RetrySettings {
        max_attempts: 1,
        initial_backoff_secs: 60,
        multiplier: 2.0,
        max_backoff_secs: 600,
        jitter: 0.0,
    });
    np
}

/// Defect 5: rollback was not journaled (a crash after the rollback request
/// submitted it again), rebooted with ForceRestart whatever the policy said,
/// and never made sure of maintenance mode.
#[tokio::test(start_paused = true)]
async fn rollback_is_journaled_reboots_as_the_policy_says_and_runs_in_maintenance_mode() {
    let k = effect_index(nic_script(), bios_and_failing_nic, "bmc.rollback", 0).await;
    let (w, h) = world(nic_script()).await;
    let (_, run) = crash_and_resume(&w, bios_and_failing_nic(&h), k, Side::After, |_| {}).await;
    assert_eq!(run.state, RunState::Failed, "{:?}", run.last_error);
    assert_eq!(
        w.fleet.rollbacks(&h.fqdn),
        vec![("159".into(), "2.10.0".into())],
        "one rollback, of the changed BIOS only"
    );
    assert_eq!(w.fleet.version(&h.fqdn, "159").as_deref(), Some("2.10.0"));
    assert!(
        !w.fleet.resets(&h.fqdn).contains(&ResetKind::ForceRestart),
        "graceful policy: {:?}",
        w.fleet.resets(&h.fqdn)
    );
    assert_eq!(
        w.fleet.resets(&h.fqdn).len(),
        2,
        "the update's reboot and the rollback's"
    );
    // Every reset happened with the host in maintenance mode, and it was left.
    assert!(w.cluster.min_online_seen(&cluster_key("c1")).is_some());
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
    let comps: Vec<&str> = run
        .ctx
        .results
        .components
        .iter()
        .map(|c| c.outcome.as_str())
        .collect();
    assert_eq!(comps, vec!["rolled_back", "failed"]);
}

/// Defect 6a: a BMC that cannot be reached on resume failed the run without
/// leaving the maintenance mode the run had entered (that needs no BMC).
#[tokio::test(start_paused = true)]
async fn an_unreachable_bmc_on_resume_still_leaves_maintenance_mode() {
    let k = effect_index(HostScript::default(), bios_plan, "vc.enter_maintenance", 0).await;
    let (w, h) = world(HostScript::default()).await;
    let fq = h.fqdn.clone();
    let (_, run) = crash_and_resume(&w, bios_plan(&h), k, Side::After, |w| {
        w.fleet.set_unreachable(&fq, true)
    })
    .await;
    assert_eq!(run.state, RunState::Failed, "{:?}", run.last_error);
    assert!(
        run.ctx
            .results
            .errors
            .iter()
            .any(|e| e.message.contains("connection timed out")),
        "{:?} {:?}",
        run.last_error,
        run.ctx.results.errors
    );
    assert_eq!(
        w.cluster.in_maintenance_now(&cluster_key("c1")),
        0,
        "maintenance mode left"
    );
}

/// Defect 6b: cancelling a plan whose run was released in maintenance mode
/// (graceful shutdown mid-run) finalised the run in the store, leaving the
/// host in maintenance mode for good. Now a worker cleans up, then cancels.
#[tokio::test(start_paused = true)]
async fn cancelling_a_released_run_in_maintenance_mode_cleans_up_first() {
    let (w, h) = world(HostScript::default()).await;
    let exec_a = executor(&w, "a", &CrashSwitch::counting());
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, bios_plan(&h)).await;
    while w.fleet.submits(&h.fqdn).is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    handle_a.shutdown().await; // released at a safe point, still in MM
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 1);
    let exec_b = executor(&w, "b", &CrashSwitch::counting());
    exec_b.cancel(pid, None).await.expect("cancel");
    let run = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert!(
        !run.state.is_final(),
        "the store must not finalise it: {:?}",
        run.state
    );
    let handle_b = exec_b.spawn();
    let run = loop {
        let r = w.store.list_runs(pid).await.expect("runs").remove(0);
        if r.state.is_final() {
            break r;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    handle_b.shutdown().await;
    // Cancelled at the next safe point, or completed when the release came
    // after the reboot (the install had already begun: nothing to stop).
    assert!(
        matches!(run.state, RunState::Cancelled | RunState::Completed),
        "{:?} {:?}",
        run.state,
        run.last_error
    );
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
    assert!(
        !run.ctx
            .checkpoint
            .packages
            .iter()
            .any(|p| p.status.in_flight()),
        "staged job deleted: {:?}",
        run.ctx.checkpoint.packages
    );
}

/// Defect 7: a run resumed in `finishing` (failed) went through failure
/// handling again: each refused exit was recorded twice and the retry
/// decision was taken again.
#[tokio::test(start_paused = true)]
async fn a_failed_run_whose_exit_is_refused_records_each_try_once() {
    let script = HostScript {
        failing_components: vec!["159".into()],
        ..HostScript::default()
    };
    let (w, h) = world(script).await;
    w.cluster.fail_next_exits(3);
    let mut np = bios_plan(&h);
    np.policy.retry = Some(RetrySettings {
        max_attempts: 1,
        initial_backoff_secs: 60,
        multiplier: 2.0,
        max_backoff_secs: 600,
        jitter: 0.0,
    });
    let exec = executor(&w, "a", &CrashSwitch::counting());
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    finish(&handle, pid).await;
    handle.shutdown().await;
    let run = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(run.state, RunState::Failed);
    let exits = run
        .ctx
        .results
        .errors
        .iter()
        .filter(|e| e.phase == Phase::ExitMaintenance)
        .count();
    assert_eq!(exits, 3, "{:?}", run.ctx.results.errors);
    assert_eq!(run.attempts, 1, "cleanup retries are not failed attempts");
    assert_eq!(w.fleet.submits(&h.fqdn).len(), 1);
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
}

/// Found by the fault soak: a rollback step that failed transiently under
/// load ended the run `failed` with a component still at the new version.
/// Now the rollback is tried again later (journaled, so it resumes where it
/// stopped), and the run fails only once the component is back.
#[tokio::test(start_paused = true)]
async fn a_transiently_refused_rollback_is_retried_until_the_component_is_back() {
    let script = HostScript {
        transient_rollback_failures: 2,
        ..nic_script()
    };
    let (w, h) = world(script).await;
    let exec = executor(&w, "a", &CrashSwitch::counting());
    let handle = exec.spawn();
    let pid = start(&exec, bios_and_failing_nic(&h)).await;
    finish(&handle, pid).await;
    handle.shutdown().await;
    let run = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(run.state, RunState::Failed, "{:?}", run.last_error);
    assert_eq!(w.fleet.version(&h.fqdn, "159").as_deref(), Some("2.10.0"));
    assert_eq!(
        w.fleet.rollbacks(&h.fqdn),
        vec![("159".into(), "2.10.0".into())]
    );
    let retried: Vec<&str> = run
        .ctx
        .results
        .errors
        .iter()
        .filter(|e| e.phase == Phase::Rollback && e.class == "transient")
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(retried.len(), 2, "{:?}", run.ctx.results.errors);
    assert!(retried[0].contains("not taken yet"), "{retried:?}");
    assert_eq!(run.attempts, 1, "rollback retries are not failed attempts");
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
    let comps: Vec<&str> = run
        .ctx
        .results
        .components
        .iter()
        .map(|c| c.outcome.as_str())
        .collect();
    assert_eq!(comps, vec!["rolled_back", "failed"]);
}

/// When the rollback keeps failing transiently, the run is parked with the
/// components' states, never plainly `failed`: the BIOS still runs the new
/// version of a failed run, and an operator must see it.
#[tokio::test(start_paused = true)]
async fn a_rollback_that_never_gets_through_parks_the_run_with_the_evidence() {
    let script = HostScript {
        transient_rollback_failures: 100,
        ..nic_script()
    };
    let (w, h) = world(script).await;
    let exec = executor(&w, "a", &CrashSwitch::counting());
    let handle = exec.spawn();
    let pid = start(&exec, bios_and_failing_nic(&h)).await;
    finish(&handle, pid).await;
    handle.shutdown().await;
    let run = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(run.state, RunState::NeedsAttention, "{:?}", run.last_error);
    assert_eq!(w.fleet.version(&h.fqdn, "159").as_deref(), Some("2.19.1"));
    let a = run.ctx.checkpoint.attention.as_ref().expect("evidence");
    assert!(
        a.reason.contains("did not finish after 3 attempts"),
        "{}",
        a.reason
    );
    let bios = a.evidence["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["component"] == "159"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(bios["startVersion"], "2.10.0", "{}", a.evidence);
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
}
