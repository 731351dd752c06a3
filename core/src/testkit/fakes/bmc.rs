//! A scripted fake BMC fleet: each host's behaviour is scripted, its side
//! effects counted (submissions, installs, resets) to prove exactly-once
//! installs. Time inside is tokio time, so scenario tests run paused.

use super::lock;
use crate::bmc::*;
use crate::model::{ComponentKind, Host, JobHandle, Package};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How one fake host behaves.
#[derive(Clone, Debug)]
pub struct HostScript {
    /// Installed components: component id -> (name, kind, version).
    pub components: BTreeMap<String, (String, ComponentKind, String)>,
    /// Time a job takes to install once running.
    pub install_time: Duration,
    /// Time a reboot takes until the BMC reads ready again.
    pub reboot_time: Duration,
    /// Fail the first N submissions with a transient error (BMC busy).
    pub transient_submit_failures: u32,
    /// Fail the first N rollback requests with a transient error (BMC busy).
    pub transient_rollback_failures: u32,
    /// Jobs for these components fail.
    pub failing_components: Vec<String>,
    /// After an install the component reads this version instead.
    pub wrong_version_after_install: Option<String>,
    /// The host never comes back after a reboot.
    pub never_back: bool,
    /// Ignore graceful restarts (OS hangs); only forced ones work.
    pub ignore_graceful: bool,
    /// Whether the BMC lists its jobs (a generic Redfish service without a
    /// TaskService does not: `job_ids` is `None`, `find_job` cannot tell).
    pub job_listing: bool,
}

impl Default for HostScript {
    fn default() -> Self {
        let mut components = BTreeMap::new();
        components.insert(
            "159".to_string(),
            (
                "BIOS".to_string(),
                ComponentKind::Bios,
                "2.10.0".to_string(),
            ),
        );
        components.insert(
            "25227".to_string(),
            (
                "Integrated Dell Remote Access Controller".to_string(),
                ComponentKind::Bmc,
                "6.10.00.00".to_string(),
            ),
        );
        Self {
            components,
            install_time: Duration::from_secs(600),
            reboot_time: Duration::from_secs(300),
            transient_submit_failures: 0,
            transient_rollback_failures: 0,
            failing_components: Vec::new(),
            wrong_version_after_install: None,
            never_back: false,
            ignore_graceful: false,
            job_listing: true,
        }
    }
}

#[derive(Debug, Clone)]
struct FakeJob {
    /// Order of creation (job ids grow with it).
    seq: u64,
    component: String,
    version: String,
    reboot_required: bool,
    /// When it started running (None while awaiting a reboot).
    started: Option<Instant>,
    rollback: bool,
    failed: bool,
    done: bool,
    /// What the polls of this job saw, for the BMC-load figures.
    trace: JobTrace,
}

/// How one fake job was polled: when it ran, when it ended, every poll and
/// the first poll that saw it finished. Read with [`FakeFleet::job_traces`].
#[derive(Debug, Clone, Default)]
pub struct JobTrace {
    /// The job's id.
    pub job_id: String,
    /// Its component.
    pub component: String,
    /// When it started running (submission, or the reboot for a staged job).
    pub started: Option<Instant>,
    /// When it finished (completed or failed).
    pub ended: Option<Instant>,
    /// Every `poll_job` of it, in order.
    pub polls: Vec<Instant>,
    /// The first poll that read it finished.
    pub noticed: Option<Instant>,
}

#[derive(Debug)]
struct HostState {
    script: HostScript,
    installed: BTreeMap<String, String>,
    previous: BTreeMap<String, String>,
    jobs: BTreeMap<String, FakeJob>,
    /// While rebooting: back at this instant.
    down_until: Option<Instant>,
    power_off_seen: bool,
    submits: Vec<(String, String)>,
    installs: Vec<(String, String)>,
    resets: Vec<ResetKind>,
    rollbacks: Vec<(String, String)>,
    submit_failures_left: u32,
    rollback_failures_left: u32,
    calls: u64,
}

/// A fleet of fake BMCs, keyed by host fqdn. Implements [`BmcConnector`].
#[derive(Clone, Default)]
pub struct FakeFleet {
    hosts: Arc<Mutex<HashMap<String, Arc<Mutex<HostState>>>>>,
    next_job: Arc<AtomicU64>,
    unreachable: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

impl FakeFleet {
    /// An empty fleet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a host.
    pub fn add_host(&self, fqdn: &str, script: HostScript) {
        let installed = script
            .components
            .iter()
            .map(|(id, (_, _, v))| (id.clone(), v.clone()))
            .collect();
        let submit_failures_left = script.transient_submit_failures;
        let rollback_failures_left = script.transient_rollback_failures;
        lock(&self.hosts).insert(
            fqdn.to_string(),
            Arc::new(Mutex::new(HostState {
                script,
                installed,
                previous: BTreeMap::new(),
                jobs: BTreeMap::new(),
                down_until: None,
                power_off_seen: false,
                submits: Vec::new(),
                installs: Vec::new(),
                resets: Vec::new(),
                rollbacks: Vec::new(),
                submit_failures_left,
                rollback_failures_left,
                calls: 0,
            })),
        );
    }

    fn host(&self, fqdn: &str) -> Option<Arc<Mutex<HostState>>> {
        lock(&self.hosts).get(fqdn).cloned()
    }

    /// Submissions (component, version) seen by a host.
    pub fn submits(&self, fqdn: &str) -> Vec<(String, String)> {
        self.host(fqdn)
            .map(|h| lock(&h).submits.clone())
            .unwrap_or_default()
    }

    /// Completed installs (component, version) on a host.
    pub fn installs(&self, fqdn: &str) -> Vec<(String, String)> {
        self.host(fqdn)
            .map(|h| lock(&h).installs.clone())
            .unwrap_or_default()
    }

    /// Resets requested on a host.
    pub fn resets(&self, fqdn: &str) -> Vec<ResetKind> {
        self.host(fqdn)
            .map(|h| lock(&h).resets.clone())
            .unwrap_or_default()
    }

    /// Rollbacks (component, version rolled back to) asked of a host.
    pub fn rollbacks(&self, fqdn: &str) -> Vec<(String, String)> {
        self.host(fqdn)
            .map(|h| lock(&h).rollbacks.clone())
            .unwrap_or_default()
    }

    /// Puts a finished job on a host's queue, as an earlier campaign (or
    /// another tool) leaves behind: `completed` or failed, for `component`.
    /// A run must never adopt it as its own.
    pub fn add_old_job(&self, fqdn: &str, component: &str, version: &str, completed: bool) {
        if let Some(h) = self.host(fqdn) {
            let seq = self.next_job.fetch_add(1, Ordering::SeqCst) + 1;
            lock(&h).jobs.insert(
                format!("JID_{seq:012}"),
                FakeJob {
                    seq,
                    component: component.to_string(),
                    version: version.to_string(),
                    reboot_required: false,
                    started: None,
                    rollback: false,
                    failed: !completed,
                    done: completed,
                    trace: JobTrace::default(),
                },
            );
        }
    }

    /// Makes `connect` to a host fail (BMC unreachable) or work again.
    pub fn set_unreachable(&self, fqdn: &str, unreachable: bool) {
        let mut u = lock(&self.unreachable);
        if unreachable {
            u.insert(fqdn.to_string());
        } else {
            u.remove(fqdn);
        }
    }

    /// Installed version of a component.
    pub fn version(&self, fqdn: &str, component: &str) -> Option<String> {
        self.host(fqdn)
            .and_then(|h| lock(&h).installed.get(component).cloned())
    }

    /// Sets the installed version of a component, as another tool (or a
    /// downgrade outside firmflow) would: the job that installed the old
    /// version stays on the queue.
    pub fn set_version(&self, fqdn: &str, component: &str, version: &str) {
        if let Some(h) = self.host(fqdn) {
            lock(&h)
                .installed
                .insert(component.to_string(), version.to_string());
        }
    }

    /// Makes jobs for `component` fail from now on (`failing`), or succeed again.
    pub fn set_failing(&self, fqdn: &str, component: &str, failing: bool) {
        if let Some(h) = self.host(fqdn) {
            let mut h = lock(&h);
            h.script.failing_components.retain(|c| c != component);
            if failing {
                h.script.failing_components.push(component.to_string());
            }
        }
    }

    /// How every job of a host was polled (ids, run times, polls).
    pub fn job_traces(&self, fqdn: &str) -> Vec<JobTrace> {
        let Some(h) = self.host(fqdn) else {
            return Vec::new();
        };
        let s = lock(&h);
        s.jobs
            .iter()
            .map(|(id, j)| {
                let mut t = j.trace.clone();
                t.job_id = id.clone();
                t.component = j.component.clone();
                if t.started.is_none() {
                    t.started = j.started;
                }
                t
            })
            .collect()
    }

    /// Driver calls made to a host.
    pub fn calls(&self, fqdn: &str) -> u64 {
        self.host(fqdn).map(|h| lock(&h).calls).unwrap_or(0)
    }
}

#[async_trait]
impl BmcConnector for FakeFleet {
    async fn connect(&self, host: &Host) -> Result<Arc<dyn BmcDriver>, Error> {
        if lock(&self.unreachable).contains(&host.fqdn) {
            return Err(Error::new(
                &host.fqdn,
                ErrorKind::Unreachable,
                "connection timed out",
            ));
        }
        let state = self
            .host(&host.fqdn)
            .ok_or_else(|| Error::new(&host.fqdn, ErrorKind::Unreachable, "no such fake host"))?;
        Ok(Arc::new(FakeBmc {
            name: host.fqdn.clone(),
            state,
            next_job: self.next_job.clone(),
        }))
    }
}

/// One fake BMC.
pub struct FakeBmc {
    name: String,
    state: Arc<Mutex<HostState>>,
    next_job: Arc<AtomicU64>,
}

impl FakeBmc {
    /// Advances jobs and reboots to `now`.
    fn tick(&self, s: &mut HostState) {
        let now = Instant::now();
        s.calls += 1;
        if let Some(t) = s.down_until
            && now >= t
            && !s.script.never_back
        {
            s.down_until = None;
        }
        let install_time = s.script.install_time;
        let done: Vec<String> = s
            .jobs
            .iter()
            .filter(|(_, j)| j.started.is_some_and(|st| now >= st + install_time))
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            let Some(mut job) = s.jobs.remove(&id) else {
                continue;
            };
            job.trace.started = job.started;
            job.trace.ended = job.started.map(|st| st + install_time);
            if s.script.failing_components.contains(&job.component) && !job.rollback {
                s.jobs.insert(
                    id,
                    FakeJob {
                        started: None,
                        failed: true,
                        ..job
                    },
                );
                continue;
            }
            let old = s.installed.get(&job.component).cloned();
            let new_version = if job.rollback {
                job.version.clone()
            } else {
                s.script
                    .wrong_version_after_install
                    .clone()
                    .unwrap_or_else(|| job.version.clone())
            };
            if let Some(o) = old {
                s.previous.insert(job.component.clone(), o);
            }
            s.installed
                .insert(job.component.clone(), new_version.clone());
            s.installs.push((job.component.clone(), new_version));
            s.jobs.insert(
                id,
                FakeJob {
                    started: None,
                    done: true,
                    ..job
                },
            );
        }
    }

    fn down(&self, s: &HostState) -> Result<(), Error> {
        if s.down_until.is_some() {
            return Err(Error::new(
                &self.name,
                ErrorKind::Unreachable,
                "connection refused (host rebooting)",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl BmcDriver for FakeBmc {
    async fn system(&self) -> Result<SystemInfo, Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        Ok(SystemInfo {
            model: Some("PowerEdge R640".into()),
            service_tag: Some(self.name.to_uppercase()),
            system_id: Some(1814),
            power: if s.down_until.is_some() {
                PowerState::Off
            } else {
                PowerState::On
            },
            health: Health::Ok,
            bios_version: s.installed.get("159").cloned(),
            bmc_version: s.installed.get("25227").cloned(),
            bmc_model: Some("14G Monolithic".into()),
            manufacturer: Some("Dell Inc.".into()),
        })
    }

    async fn inventory(&self) -> Result<Inventory, Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        self.down(&s)?;
        let mut components = Vec::new();
        for (id, v) in &s.installed {
            let (name, kind, _) = s
                .script
                .components
                .get(id)
                .cloned()
                .unwrap_or_default_tuple();
            components.push(FirmwareComponent {
                id: format!("Installed-{id}-{v}"),
                name,
                version: v.clone(),
                component_id: Some(id.clone()),
                kind,
                updateable: true,
                installed: true,
                pci: None,
                release_date: None,
            });
        }
        for (id, v) in &s.previous {
            let (name, kind, _) = s
                .script
                .components
                .get(id)
                .cloned()
                .unwrap_or_default_tuple();
            components.push(FirmwareComponent {
                id: format!("Previous-{id}-{v}"),
                name,
                version: v.clone(),
                component_id: Some(id.clone()),
                kind,
                updateable: true,
                installed: false,
                pci: None,
                release_date: None,
            });
        }
        Ok(Inventory { components })
    }

    async fn readiness(&self) -> Result<Readiness, Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        if s.down_until.is_some() {
            s.power_off_seen = true;
            return Ok(Readiness {
                ready: false,
                power: PowerState::Off,
                detail: Some("rebooting".into()),
            });
        }
        Ok(Readiness {
            ready: true,
            power: PowerState::On,
            detail: None,
        })
    }

    async fn power(&self) -> Result<PowerState, Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        if s.down_until.is_some() {
            s.power_off_seen = true;
            return Ok(PowerState::Off);
        }
        Ok(PowerState::On)
    }

    async fn start_update(
        &self,
        package: &Package,
        _options: &UpdateOptions,
    ) -> Result<UpdateStart, Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        self.down(&s)?;
        s.submits
            .push((package.component_id.clone(), package.target_version.clone()));
        if s.submit_failures_left > 0 {
            s.submit_failures_left -= 1;
            return Err(
                Error::new(&self.name, ErrorKind::Busy, "job already running")
                    .with_message_id("IDRAC.2.8.RAC0679"),
            );
        }
        if !s.installed.contains_key(&package.component_id) {
            return Err(Error::new(
                &self.name,
                ErrorKind::PackageRejected,
                "package is not applicable to this system",
            )
            .with_message_id("IDRAC.2.8.RED014"));
        }
        let seq = self.next_job.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("JID_{seq:012}");
        let reboot = package.reboot_required && package.kind != ComponentKind::Bmc;
        s.jobs.insert(
            id.clone(),
            FakeJob {
                seq,
                component: package.component_id.clone(),
                version: package.target_version.clone(),
                reboot_required: reboot,
                started: if reboot { None } else { Some(Instant::now()) },
                rollback: false,
                failed: false,
                done: false,
                trace: JobTrace::default(),
            },
        );
        Ok(UpdateStart::Submitted(JobHandle::new(id)))
    }

    async fn job_ids(&self) -> Result<Option<Vec<String>>, Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        self.down(&s)?;
        if !s.script.job_listing {
            return Ok(None);
        }
        Ok(Some(s.jobs.keys().cloned().collect()))
    }

    /// Matches like the real drivers do: by the component a job names (a
    /// real job does not say which version it installs; a rollback job names
    /// its component too), never a job listed before the intent; an
    /// unfinished one first, else the newest.
    async fn find_job(&self, query: &JobQuery<'_>) -> Result<JobSearch, Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        self.down(&s)?;
        if !s.script.job_listing {
            return Ok(JobSearch::Unknowable {
                reason: "the BMC has no task service to list jobs".into(),
            });
        }
        let Some(known) = query.known_jobs else {
            return Ok(JobSearch::Unknowable {
                reason: "the intent recorded no job baseline".into(),
            });
        };
        let best = s
            .jobs
            .iter()
            .filter(|(id, j)| !known.contains(id) && j.component == query.package.component_id)
            .max_by_key(|(_, j)| (!(j.done || j.failed), j.seq));
        Ok(match best {
            Some((id, _)) => JobSearch::Found(JobHandle::new(id.clone())),
            None => JobSearch::NotFound,
        })
    }

    async fn poll_job(&self, job: &JobHandle) -> Result<JobStatus, Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        self.down(&s)?;
        let Some(j) = s.jobs.get_mut(&job.id) else {
            return Ok(JobStatus::of(BmcJobState::Missing));
        };
        let now = Instant::now();
        j.trace.polls.push(now);
        if (j.done || j.failed) && j.trace.noticed.is_none() {
            j.trace.noticed = Some(now);
        }
        let state = if j.done {
            BmcJobState::Completed
        } else if j.failed {
            BmcJobState::Failed
        } else if let Some(st) = j.started {
            let pct = (st.elapsed().as_secs_f64() / s.script.install_time.as_secs_f64().max(1.0)
                * 100.0)
                .min(99.0) as u8;
            return Ok(JobStatus {
                state: BmcJobState::Running,
                percent: Some(pct),
                message: Some("Installing".into()),
                message_id: None,
            });
        } else {
            BmcJobState::AwaitingReboot
        };
        let mut st = JobStatus::of(state.clone());
        if state == BmcJobState::Failed {
            st.message = Some("Unable to complete the firmware update".into());
            st.message_id = Some("IDRAC.2.8.RED063".into());
        }
        Ok(st)
    }

    async fn reset(&self, kind: ResetKind) -> Result<(), Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        self.down(&s)?;
        s.resets.push(kind);
        if kind == ResetKind::GracefulRestart && s.script.ignore_graceful {
            return Ok(());
        }
        let back = Instant::now() + s.script.reboot_time;
        s.down_until = Some(back);
        // Staged jobs start when the host goes down; they finish during POST.
        let now = Instant::now();
        for j in s.jobs.values_mut() {
            if j.started.is_none() && !j.done && j.reboot_required && !j.failed {
                j.started = Some(now);
            }
        }
        Ok(())
    }

    async fn rollback(&self, component: &FirmwareComponent) -> Result<Option<JobHandle>, Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        self.down(&s)?;
        if s.rollback_failures_left > 0 {
            s.rollback_failures_left -= 1;
            return Err(
                Error::new(&self.name, ErrorKind::Busy, "job already running")
                    .with_message_id("IDRAC.2.8.RAC0679"),
            );
        }
        let cid = component.component_id.clone().unwrap_or_default();
        let Some(prev) = s.previous.get(&cid).cloned() else {
            return Err(Error::new(
                &self.name,
                ErrorKind::NotFound,
                "no previous image",
            ));
        };
        let seq = self.next_job.fetch_add(1, Ordering::SeqCst) + 1;
        let id = format!("JID_{seq:012}");
        s.rollbacks.push((cid.clone(), prev.clone()));
        // Like a real iDRAC: a host component's rollback applies at reboot.
        let reboot = component.kind != ComponentKind::Bmc;
        s.jobs.insert(
            id.clone(),
            FakeJob {
                seq,
                component: cid,
                version: prev,
                reboot_required: reboot,
                started: if reboot { None } else { Some(Instant::now()) },
                rollback: true,
                failed: false,
                done: false,
                trace: JobTrace::default(),
            },
        );
        Ok(Some(JobHandle::new(id)))
    }

    async fn clear_job_queue(&self) -> Result<(), Error> {
        let mut s = lock(&self.state);
        self.tick(&mut s);
        self.down(&s)?;
        s.jobs.clear();
        Ok(())
    }

    async fn close(&self) -> Result<(), Error> {
        Ok(())
    }
}

trait DefaultTuple {
    fn unwrap_or_default_tuple(self) -> (String, ComponentKind, String);
}

impl DefaultTuple for Option<(String, ComponentKind, String)> {
    fn unwrap_or_default_tuple(self) -> (String, ComponentKind, String) {
        self.unwrap_or_else(|| (String::new(), ComponentKind::Other, String::new()))
    }
}
