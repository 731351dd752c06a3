//! One simulated iDRAC: its state and the processes that change it over
//! (simulated) time: update jobs, host reboots, iDRAC restarts, sessions.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::catalog;
use crate::faults::{ActiveFaults, Fault, Kind};
use crate::fleet::{Flavor, Inner, InstallRecord, RequestStats};
use crate::inventory::{self, Component, Model};
use crate::messages::{self, Msg};
use crate::package::{Package, PackageError, PackageKind};
use crate::settings::{CONFIG_JOB, Config};

mod repo;
mod stats;

pub(crate) use self::repo::{RepoRequest, firmware_job_name, run_repo_job};
pub(crate) use self::stats::{Stats, record};

/// Dell durations (seconds of real iDRAC time) the simulation uses.
pub(crate) mod durations {
    /// From job creation to download start.
    pub(crate) const NEW: f64 = 2.0;
    /// Simulated download time on top of the real transfer.
    pub(crate) const DOWNLOAD: f64 = 30.0;
    /// Install time: 10–15 minutes per update.
    pub(crate) const INSTALL_MIN: f64 = 600.0;
    /// Upper bound of install time.
    pub(crate) const INSTALL_MAX: f64 = 900.0;
    /// Host POST before scheduled updates are applied.
    pub(crate) const POST: f64 = 60.0;
    /// Host boot after updates until out of POST.
    pub(crate) const BOOT: f64 = 120.0;
    /// Graceful shutdown.
    pub(crate) const SHUTDOWN: f64 = 20.0;
    /// iDRAC keeps answering (LC "Ready") after a reset was requested.
    pub(crate) const BMC_PENDING: f64 = 60.0;
    /// iDRAC unreachable while it restarts.
    pub(crate) const BMC_DOWN: f64 = 180.0;
    /// LC not ready after the iDRAC is back.
    pub(crate) const LC_SETTLE: f64 = 60.0;
    /// Finished tasks disappear from the TaskService after this long.
    pub(crate) const TASK_PURGE: f64 = 60.0;
}

/// Maximum number of jobs in the queue (JCP017 past it).
pub(crate) const MAX_JOBS: usize = 256;

/// Dell `JobState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobState {
    New,
    Downloading,
    Downloaded,
    Scheduled,
    Running,
    Completed,
    Failed,
    CompletedWithErrors,
    RebootPending,
    RebootCompleted,
}

impl JobState {
    pub(crate) fn dell(self) -> &'static str {
        match self {
            JobState::New => "New",
            JobState::Downloading => "Downloading",
            JobState::Downloaded => "Downloaded",
            JobState::Scheduled => "Scheduled",
            JobState::Running => "Running",
            JobState::Completed => "Completed",
            JobState::Failed => "Failed",
            JobState::CompletedWithErrors => "CompletedWithErrors",
            JobState::RebootPending => "RebootPending",
            JobState::RebootCompleted => "RebootCompleted",
        }
    }

    /// DMTF `TaskState` (and `Job.JobState`, which shares these values).
    pub(crate) fn task(self) -> &'static str {
        match self {
            JobState::New => "New",
            JobState::Scheduled | JobState::RebootPending => "Starting",
            JobState::Downloading | JobState::Downloaded | JobState::Running => "Running",
            JobState::Completed | JobState::CompletedWithErrors | JobState::RebootCompleted => {
                "Completed"
            }
            JobState::Failed => "Exception",
        }
    }

    pub(crate) fn status(self) -> &'static str {
        match self {
            JobState::Failed => "Critical",
            JobState::CompletedWithErrors => "Warning",
            _ => "OK",
        }
    }

    pub(crate) fn finished(self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Failed
                | JobState::CompletedWithErrors
                | JobState::RebootCompleted
        )
    }
}

/// What an update job installs once its image is validated.
#[derive(Debug, Clone)]
pub(crate) struct InstallPlan {
    pub(crate) comp: usize,
    pub(crate) version: String,
    pub(crate) kind: PackageKind,
    pub(crate) reboot_host: bool,
}

/// One Dell job (also the DMTF task / job with the same id).
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) job_type: &'static str,
    pub(crate) state: JobState,
    pub(crate) percent: u32,
    pub(crate) msg: Msg,
    pub(crate) msg_args: Vec<String>,
    pub(crate) start_time: String,
    pub(crate) actual_start: Option<String>,
    pub(crate) actual_stop: Option<String>,
    pub(crate) completion: Option<String>,
    pub(crate) finished_at: Option<Instant>,
    pub(crate) task_lost: bool,
    pub(crate) generation: u64,
    pub(crate) plan: Option<InstallPlan>,
    pub(crate) stuck: bool,
    pub(crate) fail: bool,
}

/// A live Redfish session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) token: String,
    pub(crate) user: String,
    pub(crate) created: String,
    pub(crate) last_used: Instant,
}

/// An image uploaded through `HttpPushUri` (`Available-` member).
#[derive(Debug, Clone)]
pub(crate) struct Available {
    pub(crate) id: String,
    pub(crate) package: Package,
}

/// A package found applicable by the last repository comparison.
#[derive(Debug, Clone)]
pub(crate) struct RepoEntry {
    pub(crate) comp: usize,
    pub(crate) package_name: String,
    pub(crate) package_path: String,
    pub(crate) version: String,
    pub(crate) installed: String,
    pub(crate) reboot_type: &'static str,
    pub(crate) criticality: String,
    pub(crate) job_id: String,
}

/// Whether the iDRAC itself is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bmc {
    Up,
    RestartPending,
    Down,
}

/// Where the host server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerStatus {
    OutOfPost,
    InPost,
    PoweredOff,
}

/// Mutable state of one simulated iDRAC.
#[derive(Debug)]
pub(crate) struct HostState {
    pub(crate) rng: fastrand::Rng,
    pub(crate) components: Vec<Component>,
    pub(crate) available: Vec<Available>,
    pub(crate) jobs: Vec<Job>,
    pub(crate) sessions: Vec<Session>,
    /// The most sessions alive at once since the host started (idle ones
    /// purged first), for the one-session-per-BMC figure.
    pub(crate) peak_sessions: usize,
    pub(crate) next_session: u64,
    pub(crate) next_task: u64,
    pub(crate) session_timeout: u64,
    pub(crate) power_on: bool,
    pub(crate) server: ServerStatus,
    pub(crate) boot_epoch: u64,
    pub(crate) bmc: Bmc,
    pub(crate) lc_settle_until: Option<Instant>,
    pub(crate) faults: ActiveFaults,
    pub(crate) stats: Stats,
    /// Rendered bodies of hot resources: (route, key hash, bytes).
    pub(crate) render_cache: Vec<(u8, u64, bytes::Bytes)>,
    pub(crate) installs: Vec<InstallRecord>,
    pub(crate) repo: Option<Vec<RepoEntry>>,
    pub(crate) inventory_gen: u64,
    pub(crate) generation: u64,
    /// BIOS, boot override and iDRAC attributes.
    pub(crate) config: Config,
}

/// One simulated iDRAC.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) name: String,
    pub(crate) flavor: Flavor,
    pub(crate) model: Model,
    pub(crate) service_tag: String,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) basic: String,
    /// Strict Redfish mode: no schema-violating iDRAC quirks.
    pub(crate) strict: bool,
    pub(crate) state: Mutex<HostState>,
    pub(crate) up: watch::Sender<bool>,
}

impl Host {
    pub(crate) fn new(
        index: usize,
        name: String,
        flavor: Flavor,
        seed: u64,
        username: &str,
        password: &str,
        strict: bool,
    ) -> Host {
        use base64::Engine as _;
        let mut rng = fastrand::Rng::with_seed(
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(index as u64 + 1),
        );
        let model = inventory::model_for(flavor, index);
        let service_tag = inventory::service_tag(&mut rng);
        let components = inventory::initial_components(flavor, &model, &mut rng);
        let config = Config::new(model.name, model.generation, &service_tag);
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        );
        Host {
            name,
            flavor,
            model,
            service_tag,
            username: username.to_string(),
            password: password.to_string(),
            basic,
            strict,
            state: Mutex::new(HostState {
                rng,
                components,
                available: Vec::new(),
                jobs: Vec::new(),
                sessions: Vec::new(),
                peak_sessions: 0,
                next_session: 1,
                next_task: 1,
                session_timeout: 1800,
                power_on: true,
                server: ServerStatus::OutOfPost,
                boot_epoch: 0,
                bmc: Bmc::Up,
                lc_settle_until: None,
                faults: ActiveFaults::default(),
                stats: Stats::default(),
                render_cache: Vec::new(),
                installs: Vec::new(),
                repo: None,
                inventory_gen: 1,
                generation: 1,
                config,
            }),
            up: watch::channel(true).0,
        }
    }

    /// Locks the state; a poisoned lock is recovered (state stays usable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_dell(&self) -> bool {
        self.flavor != Flavor::Generic
    }

    pub(crate) fn system_path(&self) -> &'static str {
        if self.is_dell() {
            "System.Embedded.1"
        } else {
            "1"
        }
    }

    pub(crate) fn manager_path(&self) -> &'static str {
        if self.is_dell() {
            "iDRAC.Embedded.1"
        } else {
            "BMC"
        }
    }

    /// Registry prefix for Dell message ids on this generation.
    pub(crate) fn registry(&self) -> &'static str {
        match self.flavor {
            Flavor::Idrac10 => "IDRAC.2.9.",
            _ => "IDRAC.2.8.",
        }
    }
}

impl HostState {
    pub(crate) fn job_mut(&mut self, id: &str) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    pub(crate) fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id)
    }

    pub(crate) fn lc_ready(&mut self) -> bool {
        if self.faults.peek(Kind::LcNotReady).is_some() {
            return false;
        }
        match self.lc_settle_until {
            Some(t) if t > Instant::now() => false,
            _ => {
                self.lc_settle_until = None;
                true
            }
        }
    }

    pub(crate) fn health(&self) -> &str {
        match self.faults.peek(Kind::Degraded) {
            Some(Fault::DegradedHealth { health }) => health.as_str(),
            _ => "OK",
        }
    }

    pub(crate) fn bump(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Drops sessions idle for longer than the session timeout.
    pub(crate) fn purge_sessions(&mut self, inner: &Inner) {
        let timeout = inner.clock.dell(self.session_timeout as f64);
        let now = Instant::now();
        self.sessions
            .retain(|s| now.duration_since(s.last_used) < timeout);
    }
}

/// Why a job could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    QueueFull,
    LcNotReady,
}

/// Options of a new job.
#[derive(Debug, Clone)]
pub(crate) struct NewJob {
    pub(crate) name: String,
    pub(crate) job_type: &'static str,
}

/// Creates a job in state `New` (checks queue and LC readiness).
pub(crate) fn create_job(
    host: &Host,
    inner: &Inner,
    st: &mut HostState,
    spec: NewJob,
) -> Result<String, Refusal> {
    if !st.lc_ready() {
        return Err(Refusal::LcNotReady);
    }
    let full = st.faults.take(Kind::QueueFull, &mut st.rng).is_some();
    if full || st.jobs.len() >= MAX_JOBS {
        return Err(Refusal::QueueFull);
    }
    let id = if host.is_dell() {
        loop {
            let id = format!("JID_{:012}", st.rng.u64(100_000_000_000..1_000_000_000_000));
            if st.job(&id).is_none() {
                break id;
            }
        }
    } else {
        let n = st.next_task;
        st.next_task += 1;
        n.to_string()
    };
    let fail = st.faults.take(Kind::FailJob, &mut st.rng).is_some();
    let stuck = !fail && st.faults.take(Kind::StuckJob, &mut st.rng).is_some();
    let generation = st.bump();
    st.jobs.push(Job {
        id: id.clone(),
        name: spec.name,
        job_type: spec.job_type,
        state: JobState::New,
        percent: 0,
        msg: messages::JCP001,
        msg_args: Vec::new(),
        start_time: "TIME_NOW".into(),
        actual_start: None,
        actual_stop: None,
        completion: None,
        finished_at: None,
        task_lost: false,
        generation,
        plan: None,
        stuck,
        fail,
    });
    let _ = inner;
    Ok(id)
}

/// Updates a job if it still exists; returns false when it was deleted.
pub(crate) fn with_job(host: &Host, id: &str, f: impl FnOnce(&mut Job)) -> bool {
    let mut st = host.lock();
    let generation = st.bump();
    match st.job_mut(id) {
        Some(j) => {
            f(j);
            j.generation = generation;
            true
        }
        None => false,
    }
}

pub(crate) fn set_state(host: &Host, id: &str, state: JobState, msg: Msg, percent: u32) -> bool {
    with_job(host, id, |j| {
        j.state = state;
        j.msg = msg;
        j.msg_args.clear();
        j.percent = percent;
    })
}

pub(crate) fn finish(
    host: &Host,
    inner: &Inner,
    id: &str,
    state: JobState,
    msg: Msg,
    args: Vec<String>,
) {
    let now = inner.clock.now_job();
    with_job(host, id, |j| {
        j.state = state;
        j.msg = msg;
        j.msg_args = args;
        j.percent = 100;
        j.completion = Some(now.clone());
        j.actual_stop = Some(now);
        j.finished_at = Some(Instant::now());
    });
}

/// Where an update job gets its image.
#[derive(Debug, Clone)]
pub(crate) enum ImageSource {
    /// Fetch over HTTP(S).
    Url(String),
    /// Already on the iDRAC (uploaded `Available-` image).
    Local(Package),
    /// Uploaded bytes, validated by the job like a DUP.
    Bytes(Vec<u8>),
    /// Roll back a component to its `Previous-` version.
    Rollback(usize),
}

/// Runs an update job from download to install (or to `Scheduled`).
pub(crate) async fn run_update_job(
    inner: Arc<Inner>,
    host: Arc<Host>,
    id: String,
    source: ImageSource,
    reboot_after: bool,
) {
    let clock = &inner.clock;
    clock.sleep(durations::NEW).await;
    if !set_state(&host, &id, JobState::Downloading, messages::RED003, 0) {
        return;
    }
    let result: Result<InstallPlan, (Msg, Vec<String>)> = match source {
        ImageSource::Url(url) => match inner.fetch(&url).await {
            Err(_) => Err((messages::RED006, Vec::new())),
            Ok(bytes) => match Package::parse(&bytes) {
                Err(PackageError::Checksum) => Err((messages::RED007, Vec::new())),
                Err(_) => Err((messages::RED008, Vec::new())),
                Ok(p) => validate(&host, &p),
            },
        },
        ImageSource::Local(p) => validate(&host, &p),
        ImageSource::Bytes(bytes) => match Package::parse(&bytes) {
            Err(PackageError::Checksum) => Err((messages::RED007, Vec::new())),
            Err(_) => Err((messages::RED008, Vec::new())),
            Ok(p) => validate(&host, &p),
        },
        ImageSource::Rollback(comp) => {
            let st = host.lock();
            match st
                .components
                .get(comp)
                .and_then(|c| Some((c.previous.clone()?, c.kind)))
            {
                Some((v, kind)) => Ok(InstallPlan {
                    comp,
                    version: v,
                    kind,
                    reboot_host: needs_host_reboot(kind, true),
                }),
                None => Err((messages::SUP024, Vec::new())),
            }
        }
    };
    clock.sleep(durations::DOWNLOAD).await;
    let plan = match result {
        Ok(p) => p,
        Err((msg, args)) => {
            finish(&host, &inner, &id, JobState::Failed, msg, args);
            return;
        }
    };
    // A second unfinished job for the same component is refused.
    let duplicate = {
        let st = host.lock();
        st.jobs.iter().any(|j| {
            j.id != id
                && !j.state.finished()
                && j.plan.as_ref().is_some_and(|p| p.comp == plan.comp)
        })
    };
    if duplicate {
        finish(
            &host,
            &inner,
            &id,
            JobState::Failed,
            messages::RED014,
            Vec::new(),
        );
        return;
    }
    let reboot_host = plan.reboot_host;
    let comp_name = host
        .lock()
        .components
        .get(plan.comp)
        .map(|c| firmware_job_name(&c.name))
        .unwrap_or_default();
    let ok = with_job(&host, &id, |j| {
        if j.name.ends_with("update:new") {
            j.name = format!("Firmware Update: {comp_name}");
        }
        j.plan = Some(plan);
        j.state = JobState::Downloaded;
        j.msg = messages::RED002;
        j.percent = 0;
    });
    if !ok {
        return;
    }
    clock.sleep(2.0).await;
    if reboot_host {
        if !set_state(&host, &id, JobState::Scheduled, messages::JCP001, 0) {
            return;
        }
        if reboot_after {
            let (i2, h2) = (inner.clone(), host.clone());
            inner.spawn(async move { reset_host(i2, h2, ResetKind::Restart).await });
        }
    } else {
        install(&inner, &host, &id).await;
    }
}

fn needs_host_reboot(kind: PackageKind, reboot_required: bool) -> bool {
    match kind {
        PackageKind::Idrac | PackageKind::Diagnostics => false,
        PackageKind::Bios | PackageKind::Nic | PackageKind::Raid | PackageKind::Cpld => true,
        _ => reboot_required,
    }
}

/// Checks a package against this host (system, component).
pub(crate) fn validate(host: &Host, p: &Package) -> Result<InstallPlan, (Msg, Vec<String>)> {
    if !p.supports_system(host.model.system_id) {
        return Err((messages::RED017, Vec::new()));
    }
    let st = host.lock();
    let (comp, kind) = st
        .components
        .iter()
        .enumerate()
        .find(|(_, c)| c.matches(&p.component_id))
        .map(|(i, c)| (i, c.kind))
        .ok_or((messages::RED097, Vec::new()))?;
    Ok(InstallPlan {
        comp,
        version: p.version.clone(),
        kind,
        reboot_host: needs_host_reboot(kind, p.reboot_required),
    })
}

fn install_secs(host: &Host) -> f64 {
    let mut st = host.lock();
    durations::INSTALL_MIN + st.rng.f64() * (durations::INSTALL_MAX - durations::INSTALL_MIN)
}

/// Installs a downloaded job now (runs `Running` to the end).
pub(crate) async fn install(inner: &Arc<Inner>, host: &Arc<Host>, id: &str) {
    let now = inner.clock.now_job();
    let (plan, stuck, fail, is_idrac) = {
        let mut st = host.lock();
        let generation = st.bump();
        let Some(j) = st.job_mut(id) else { return };
        let Some(plan) = j.plan.clone() else { return };
        j.state = JobState::Running;
        j.msg = if plan.kind.restarts_idrac() {
            messages::RAC0608
        } else {
            messages::PR20
        };
        j.percent = 10;
        j.actual_start = Some(now);
        j.generation = generation;
        let is_idrac = plan.kind.restarts_idrac();
        (plan, j.stuck, j.fail, is_idrac)
    };
    let total = install_secs(host);
    if stuck {
        inner.clock.sleep(total / 4.0).await;
        with_job(host, id, |j| j.percent = 35);
        return;
    }
    for pct in [30, 55, 80, 95] {
        inner.clock.sleep(total / 4.0).await;
        if !with_job(host, id, |j| j.percent = pct) {
            return;
        }
    }
    if fail {
        let (msg, args) = match host.flavor {
            Flavor::Idrac10 => (messages::RED106, Vec::new()),
            _ => {
                let name = host
                    .lock()
                    .components
                    .get(plan.comp)
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                (messages::SUP0538, vec![name])
            }
        };
        finish(host, inner, id, JobState::Failed, msg, args);
        return;
    }
    apply_version(inner, host, &plan);
    let done = if is_rollback(host, id) {
        messages::PR19
    } else {
        messages::RED001
    };
    finish(host, inner, id, JobState::Completed, done, Vec::new());
    if is_idrac {
        let (i2, h2) = (inner.clone(), host.clone());
        inner.spawn(async move { restart_bmc(i2, h2, durations::BMC_PENDING / 2.0).await });
    }
}

fn is_rollback(host: &Host, id: &str) -> bool {
    host.lock()
        .job(id)
        .is_some_and(|j| j.name.starts_with("Firmware Rollback"))
}

/// Makes the new version current; the old one becomes `Previous-`.
fn apply_version(inner: &Inner, host: &Host, plan: &InstallPlan) {
    let mut guard = host.lock();
    let st = &mut *guard;
    let wrong = st.faults.take(Kind::WrongVersion, &mut st.rng);
    let at = inner.clock.now_iso();
    let generation = st.bump();
    st.inventory_gen = generation;
    let Some(c) = st.components.get_mut(plan.comp) else {
        return;
    };
    let from = c.version.clone();
    let reported = match wrong {
        Some(Fault::WrongVersion { version: Some(v) }) => v,
        Some(_) => from.clone(),
        None => plan.version.clone(),
    };
    if reported != from {
        c.previous = Some(from.clone());
        c.previous_release_date = c.release_date.clone();
        c.release_date = at.clone();
        c.version = reported;
    }
    let record = InstallRecord {
        component_id: c.component_id.clone(),
        name: c.name.clone(),
        from_version: from,
        to_version: plan.version.clone(),
        at,
    };
    st.installs.push(record);
}

/// Kinds of host power action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetKind {
    On,
    ForceOff,
    GracefulShutdown,
    Restart,
}

/// Adds a Dell reboot job (`RID_…`, `RebootPending`) for a host restart.
pub(crate) fn create_reboot_job(host: &Host, st: &mut HostState) {
    if !host.is_dell() {
        return;
    }
    let id = format!("RID_{:012}", st.rng.u64(100_000_000_000..1_000_000_000_000));
    let generation = st.bump();
    st.jobs.push(Job {
        id,
        name: "Reboot3".into(),
        job_type: "RebootForce",
        state: JobState::RebootPending,
        percent: 0,
        msg: messages::PR20,
        msg_args: Vec::new(),
        start_time: "TIME_NOW".into(),
        actual_start: None,
        actual_stop: None,
        completion: None,
        finished_at: None,
        task_lost: false,
        generation,
        plan: None,
        stuck: false,
        fail: false,
    });
}

/// Performs a host power action; a boot applies the scheduled updates.
pub(crate) async fn reset_host(inner: Arc<Inner>, host: Arc<Host>, kind: ResetKind) {
    let epoch = {
        let mut st = host.lock();
        st.boot_epoch += 1;
        st.boot_epoch
    };
    let current = |h: &Host| h.lock().boot_epoch == epoch;
    match kind {
        ResetKind::ForceOff => {
            let mut st = host.lock();
            st.power_on = false;
            st.server = ServerStatus::PoweredOff;
            return;
        }
        ResetKind::GracefulShutdown => {
            inner.clock.sleep(durations::SHUTDOWN).await;
            if current(&host) {
                let mut st = host.lock();
                st.power_on = false;
                st.server = ServerStatus::PoweredOff;
            }
            return;
        }
        ResetKind::On | ResetKind::Restart => {}
    }
    {
        let mut st = host.lock();
        if st.faults.peek(Kind::NeverReturns).is_some() {
            st.power_on = false;
            st.server = ServerStatus::PoweredOff;
            return;
        }
        st.power_on = true;
        st.server = ServerStatus::InPost;
    }
    inner.clock.sleep(durations::POST).await;
    loop {
        if !current(&host) {
            return;
        }
        let next = {
            let st = host.lock();
            st.jobs
                .iter()
                .find(|j| j.state == JobState::Scheduled && j.job_type != CONFIG_JOB)
                .map(|j| j.id.clone())
        };
        let Some(id) = next else { break };
        install(&inner, &host, &id).await;
        // A stuck job stays Running; move on to the next one.
        let still_scheduled = host
            .lock()
            .job(&id)
            .is_some_and(|j| j.state == JobState::Scheduled);
        if still_scheduled {
            break;
        }
    }
    if !current(&host) {
        return;
    }
    crate::settings::run_config_jobs(&inner, &host).await;
    inner.clock.sleep(durations::BOOT).await;
    if current(&host) {
        host.lock().server = ServerStatus::OutOfPost;
        let pending: Vec<String> = host
            .lock()
            .jobs
            .iter()
            .filter(|j| j.state == JobState::RebootPending)
            .map(|j| j.id.clone())
            .collect();
        for id in pending {
            finish(
                &host,
                &inner,
                &id,
                JobState::RebootCompleted,
                messages::RED030,
                Vec::new(),
            );
        }
    }
}

/// Restarts the iDRAC: answers for `pending` Dell seconds (LC still "Ready"),
/// then refuses connections, drops sessions and tasks, then comes back with
/// the LC not ready for a while.
pub(crate) async fn restart_bmc(inner: Arc<Inner>, host: Arc<Host>, pending: f64) {
    {
        let mut st = host.lock();
        if st.bmc != Bmc::Up {
            return;
        }
        st.bmc = Bmc::RestartPending;
    }
    inner.clock.sleep(pending).await;
    {
        let mut st = host.lock();
        st.bmc = Bmc::Down;
        st.sessions.clear();
        for j in &mut st.jobs {
            j.task_lost = true;
        }
    }
    host.up.send_replace(false);
    inner.clock.sleep(durations::BMC_DOWN).await;
    {
        let mut st = host.lock();
        st.bmc = Bmc::Up;
        st.lc_settle_until = Some(inner.clock.deadline(durations::LC_SETTLE));
    }
    host.up.send_replace(true);
}
