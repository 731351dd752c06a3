//! The `BmcDriver` conformance suite: one call runs every case against a
//! driver implementation, each case on a fresh BMC. FakeBmc and the real
//! iDRAC9, iDRAC10, generic Redfish and racadm drivers (on the simulated
//! fleet) all run it, so the executor's promises — a job is adopted only
//! when it is provably ours, never a stale or foreign one — are proved
//! against the drivers the executor really uses, not only against the fake.
//!
//! ```ignore
//! firmflow_core::testkit::bmc_conformance::run_all(&MyFactory).await;
//! ```
//!
//! A case drives the BMC the way the executor does: it takes a job baseline
//! ([`BmcDriver::job_ids`]) before submitting, polls with a pause between
//! polls ([`BmcSubject::pause`]: virtual time for the fake, a few real
//! milliseconds for a sped-up simulator), reboots the host once when the
//! job waits for it, and checks the outcome on the BMC's own side-effect
//! counter ([`BmcControl::install_count`]).

// Test support: a failed expectation here is a failed test, so it panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::bmc::{
    ApplyTime, BmcDriver, BmcJobState, JobQuery, JobSearch, JobStatus, ResetKind, UpdateOptions,
    UpdateStart,
};
use crate::model::{JobHandle, Package};
use async_trait::async_trait;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// What the suite can do to the BMC behind a driver, beyond the driver
/// itself: the test double's or simulator's control surface.
#[async_trait]
pub trait BmcControl: Send + Sync {
    /// Sets a component's installed version behind the driver's back (an
    /// earlier campaign or another tool): the job that installed the
    /// version before stays on the BMC's queue.
    async fn set_version(&self, component_id: &str, version: &str);
    /// Makes update jobs fail from now on (`true`) or succeed again.
    async fn fail_jobs(&self, failing: bool);
    /// Restarts the BMC (not the host) now, losing what the BMC loses on a
    /// restart (DMTF tasks on the simulator; nothing on the fake, whose job
    /// queue is durable like a Dell job queue).
    async fn restart_bmc(&self);
    /// Installs of `component_id` the BMC performed so far.
    fn install_count(&self, component_id: &str) -> usize;
}

/// One fresh BMC for one case.
pub struct BmcSubject {
    /// The driver under test, connected to the BMC.
    pub driver: Arc<dyn BmcDriver>,
    /// The BMC's control surface.
    pub control: Arc<dyn BmcControl>,
    /// A package newer than the installed version of a component that needs
    /// a host reboot (BIOS).
    pub package: Package,
    /// A package for another component, to make a foreign job; `None` where
    /// one submission covers every package (a repository update).
    pub other_package: Option<Package>,
    /// The version of `package`'s component installed at the start.
    pub installed_version: String,
    /// Whether the BMC lists its jobs (`job_ids` is `Some`).
    pub lists_jobs: bool,
    /// The pause between two polls.
    pub pause: Duration,
}

/// Builds fresh BMCs for the suite.
#[async_trait]
pub trait BmcFactory: Send + Sync {
    /// A new BMC, with its driver connected.
    async fn fresh(&self) -> BmcSubject;
}

type Case = fn(BmcSubject) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        fn all_cases() -> Vec<(&'static str, Case)> {
            vec![$((stringify!($name), |s| Box::pin($name(s)))),*]
        }
    };
}

cases!(
    submit_poll_reboot_verify,
    find_job_finds_the_job_submitted_after_the_baseline,
    find_job_without_a_submission_finds_nothing,
    a_stale_job_is_never_adopted_nor_followed,
    a_foreign_job_is_not_ours,
    no_baseline_is_unknowable,
    a_failed_job_reads_failed_and_installs_nothing,
    a_bmc_restart_mid_job_never_reads_as_a_false_outcome,
    an_unknown_job_reads_missing,
    power_agrees_with_the_system_and_with_readiness,
);

/// Runs every case, each on a fresh BMC from `factory`, and names the case
/// that fails.
pub async fn run_all(factory: &dyn BmcFactory) {
    for (name, case) in all_cases() {
        eprintln!("bmc conformance: {name}");
        case(factory.fresh().await).await;
    }
}

/// Runs one case by name (to debug a single failure).
pub async fn run_one(factory: &dyn BmcFactory, name: &str) {
    let (_, case) = all_cases()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no conformance case named {name}"));
    case(factory.fresh().await).await;
}

const MAX_POLLS: u32 = 3_000;

fn options(known_jobs: Vec<String>) -> UpdateOptions {
    UpdateOptions {
        apply: ApplyTime::OnReset,
        force: false,
        known_jobs,
    }
}

/// Retries what a transient error interrupts (the executor's retry policy).
async fn retry<T, F, Fut>(s: &BmcSubject, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::bmc::Error>>,
{
    for _ in 0..MAX_POLLS {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.is_transient() => tokio::time::sleep(s.pause).await,
            Err(e) => panic!("{what}: terminal error: {e}"),
        }
    }
    panic!("{what}: still failing after {MAX_POLLS} tries")
}

async fn baseline(s: &BmcSubject) -> Option<Vec<String>> {
    let ids = retry(s, "job_ids", || s.driver.job_ids()).await;
    assert_eq!(
        ids.is_some(),
        s.lists_jobs,
        "job_ids must be Some exactly when the BMC lists its jobs"
    );
    ids
}

async fn submit(s: &BmcSubject, p: &Package, known: &[String]) -> JobHandle {
    match s
        .driver
        .start_update(p, &options(known.to_vec()))
        .await
        .unwrap_or_else(|e| panic!("start_update {}: {e}", p.component_id))
    {
        UpdateStart::Submitted(h) => h,
        UpdateStart::AlreadyInstalled => panic!("{} reported already installed", p.component_id),
    }
}

async fn search(s: &BmcSubject, p: &Package, known: Option<&[String]>) -> JobSearch {
    let q = JobQuery {
        package: p,
        since: Utc::now(),
        known_jobs: known,
    };
    retry(s, "find_job", || s.driver.find_job(&q)).await
}

/// Polls `job` to a final state, rebooting the host once when it waits for
/// one (what the executor does).
async fn drive(s: &BmcSubject, job: &JobHandle) -> JobStatus {
    let mut rebooted = false;
    for _ in 0..MAX_POLLS {
        tokio::time::sleep(s.pause).await;
        let st = match s.driver.poll_job(job).await {
            Ok(st) => st,
            Err(e) if e.is_transient() => continue,
            Err(e) => panic!("poll_job {}: {e}", job.id),
        };
        if st.state == BmcJobState::AwaitingReboot && !rebooted {
            retry(s, "reset", || s.driver.reset(ResetKind::ForceRestart)).await;
            rebooted = true;
            continue;
        }
        if st.state.is_final() {
            return st;
        }
    }
    panic!("job {} never finished", job.id)
}

async fn installed(s: &BmcSubject, component_id: &str) -> Option<String> {
    let inv = retry(s, "inventory", || s.driver.inventory()).await;
    inv.installed_for(component_id).map(|c| c.version.clone())
}

/// `power()` (the cheap read) says what `system()` says, and a `readiness()`
/// that reads ready names the same power (a not-ready one may leave it
/// unknown). Read first on a new session, then again on the same one.
async fn power_agrees_with_the_system_and_with_readiness(s: BmcSubject) {
    for _ in 0..2 {
        let power = retry(&s, "power", || s.driver.power()).await;
        let system = retry(&s, "system", || s.driver.system()).await;
        assert_eq!(power, system.power, "power() against system()");
        let ready = retry(&s, "readiness", || s.driver.readiness()).await;
        if ready.ready {
            assert_eq!(ready.power, system.power, "readiness() against system()");
        }
    }
    let _ = s.driver.close().await;
}

/// The whole update: submit, poll, reboot, final Completed, inventory shows
/// the target version, installed exactly once.
async fn submit_poll_reboot_verify(s: BmcSubject) {
    let known = baseline(&s).await.unwrap_or_default();
    let job = submit(&s, &s.package, &known).await;
    let st = drive(&s, &job).await;
    assert_eq!(st.state, BmcJobState::Completed, "{st:?}");
    assert_eq!(
        installed(&s, &s.package.component_id).await.as_deref(),
        Some(s.package.target_version.as_str())
    );
    assert_eq!(s.control.install_count(&s.package.component_id), 1);
    let _ = s.driver.close().await;
}

/// After a crash between the POST and the journal, `find_job` with the
/// baseline taken before the POST finds the job — while it runs and once
/// it has finished (it is provably ours) — and following it installs once.
async fn find_job_finds_the_job_submitted_after_the_baseline(s: BmcSubject) {
    let known = baseline(&s).await;
    let job = submit(&s, &s.package, known.as_deref().unwrap_or_default()).await;
    let Some(known) = known else {
        // No job listing: the driver must say it cannot tell.
        assert!(matches!(
            search(&s, &s.package, Some(&[])).await,
            JobSearch::Unknowable { .. }
        ));
        drive(&s, &job).await;
        return;
    };
    let found = search(&s, &s.package, Some(&known))
        .await
        .into_job()
        .expect("the job submitted after the baseline is found");
    assert_eq!(found.id, job.id, "the same job: {found:?} vs {job:?}");
    let st = drive(&s, &found).await;
    assert_eq!(st.state, BmcJobState::Completed, "{st:?}");
    let again = search(&s, &s.package, Some(&known))
        .await
        .into_job()
        .expect("a finished job created after the baseline is still ours");
    assert_eq!(again.id, job.id);
    assert_eq!(drive(&s, &again).await.state, BmcJobState::Completed);
    assert_eq!(s.control.install_count(&s.package.component_id), 1);
    let _ = s.driver.close().await;
}

/// The crash came before the POST: nothing on the BMC is ours.
async fn find_job_without_a_submission_finds_nothing(s: BmcSubject) {
    let known = baseline(&s).await;
    let r = search(&s, &s.package, known.as_deref().or(Some(&[]))).await;
    if known.is_some() {
        assert_eq!(r, JobSearch::NotFound);
    } else {
        assert!(matches!(r, JobSearch::Unknowable { .. }), "{r:?}");
    }
    assert_eq!(s.control.install_count(&s.package.component_id), 0);
    let _ = s.driver.close().await;
}

/// Defect 1: an earlier install of the same package left a completed job
/// on the queue, then the component was downgraded behind firmflow's back.
/// A run whose baseline lists that job never adopts it (adopting it would
/// read "completed" while the old version is installed) and a new
/// submission never follows it: it installs again, once.
async fn a_stale_job_is_never_adopted_nor_followed(s: BmcSubject) {
    let known = baseline(&s).await.unwrap_or_default();
    let old = submit(&s, &s.package, &known).await;
    assert_eq!(drive(&s, &old).await.state, BmcJobState::Completed);
    s.control
        .set_version(&s.package.component_id, &s.installed_version)
        .await;
    let Some(known) = baseline(&s).await else {
        let _ = s.driver.close().await;
        return;
    };
    let r = search(&s, &s.package, Some(&known)).await;
    assert_eq!(
        r,
        JobSearch::NotFound,
        "the stale job {} must not be adopted",
        old.id
    );
    let job = submit(&s, &s.package, &known).await;
    assert_ne!(job.id, old.id, "a new submission never follows a known job");
    let st = drive(&s, &job).await;
    assert_eq!(st.state, BmcJobState::Completed, "{st:?}");
    assert_eq!(
        installed(&s, &s.package.component_id).await.as_deref(),
        Some(s.package.target_version.as_str()),
        "{st:?}"
    );
    assert_eq!(s.control.install_count(&s.package.component_id), 2);
    let _ = s.driver.close().await;
}

/// A job created after the baseline for another component is not this
/// package's.
async fn a_foreign_job_is_not_ours(s: BmcSubject) {
    let Some(other) = s.other_package.clone() else {
        let _ = s.driver.close().await;
        return;
    };
    let Some(known) = baseline(&s).await else {
        let _ = s.driver.close().await;
        return;
    };
    let job = submit(&s, &other, &known).await;
    let st = drive(&s, &job).await;
    assert!(st.state.is_final());
    let r = search(&s, &s.package, Some(&known)).await;
    assert_eq!(
        r,
        JobSearch::NotFound,
        "job {} is for {}",
        job.id,
        other.component_id
    );
    assert_eq!(s.control.install_count(&s.package.component_id), 0);
    let _ = s.driver.close().await;
}

/// An intent that recorded no baseline cannot tell new jobs from old.
async fn no_baseline_is_unknowable(s: BmcSubject) {
    let r = search(&s, &s.package, None).await;
    assert!(matches!(r, JobSearch::Unknowable { .. }), "{r:?}");
    let _ = s.driver.close().await;
}

/// A failing job reads as a final failure with a message, and the
/// component keeps its version.
async fn a_failed_job_reads_failed_and_installs_nothing(s: BmcSubject) {
    s.control.fail_jobs(true).await;
    let known = baseline(&s).await.unwrap_or_default();
    let job = submit(&s, &s.package, &known).await;
    let st = drive(&s, &job).await;
    assert!(
        matches!(
            st.state,
            BmcJobState::Failed | BmcJobState::CompletedWithErrors
        ),
        "{st:?}"
    );
    assert!(st.message.is_some(), "a failure says why: {st:?}");
    s.control.fail_jobs(false).await;
    assert_eq!(
        installed(&s, &s.package.component_id).await.as_deref(),
        Some(s.installed_version.as_str())
    );
    assert_eq!(s.control.install_count(&s.package.component_id), 0);
    let _ = s.driver.close().await;
}

/// The BMC restarts while the job runs (tasks lost, sessions dropped). The
/// driver re-logs in, and the job's reading is never a false outcome:
/// Completed only with the new version installed, Failed only without it;
/// Missing (the BMC forgot the job) leaves the decision to the inventory.
async fn a_bmc_restart_mid_job_never_reads_as_a_false_outcome(s: BmcSubject) {
    let known = baseline(&s).await.unwrap_or_default();
    let job = submit(&s, &s.package, &known).await;
    s.control.restart_bmc().await;
    let st = drive(&s, &job).await;
    let now = installed(&s, &s.package.component_id).await;
    let count = s.control.install_count(&s.package.component_id);
    match st.state {
        BmcJobState::Completed => {
            assert_eq!(now.as_deref(), Some(s.package.target_version.as_str()));
            assert_eq!(count, 1);
        }
        BmcJobState::Failed | BmcJobState::Cancelled => {
            assert_eq!(now.as_deref(), Some(s.installed_version.as_str()));
            assert_eq!(count, 0);
        }
        BmcJobState::Missing => assert!(count <= 1),
        other => panic!("unexpected final state {other:?}"),
    }
    let _ = s.driver.close().await;
}

/// A job the BMC does not know (purged, or a handle from another BMC)
/// reads Missing, not an error and not Completed.
async fn an_unknown_job_reads_missing(s: BmcSubject) {
    let unknown = JobHandle::new("JID_000000000001");
    let st = retry(&s, "poll_job", || s.driver.poll_job(&unknown)).await;
    assert_eq!(st.state, BmcJobState::Missing, "{st:?}");
    let _ = s.driver.close().await;
}
