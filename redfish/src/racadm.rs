//! The remote racadm `BmcDriver`: runs `racadm -r <bmc> -u <user> -p <pass>
//! <TLS option> <command>` (binary path configurable) and parses its text.
//!
//! TLS: racadm verifies the BMC's certificate against the system's trust
//! store only, and stops on a certificate error only when given `-S`. So
//! [`TlsMode::Verify`] passes `-S` (a self-signed BMC is refused),
//! [`TlsMode::AcceptInvalid`] passes `--nocertwarn` (and the connector
//! records it like any insecure connection), and a CA file or a pinned
//! certificate, which racadm cannot check, is refused before racadm runs.
//!
//! The password: remote racadm takes it only as `-p <password>` (no
//! documented environment variable, file or stdin form), which puts it in
//! the process list for every local user. The driver therefore refuses to
//! run unless [`RacadmConfig::password_on_command_line`] is set, an explicit
//! opt-in for hosts where that exposure is acceptable (a single-user
//! management host); the Redfish driver is the way without it.
//!
//! Output formats parsed (fixtures `racadm_*.txt`): `jobqueue view [-i JID]`
//! blocks (`[Job ID=…]`, `Status=…`, `Message=[ID: text]`,
//! `Percent Complete=[n|NA]`), `key = value` lines of `getversion`,
//! `RACnnn:`/`ERROR:` lines with Dell message ids, and any `JID_` + 12 digits
//! a command names for its job. The arguments hold the password and are
//! never logged.

use crate::error::BmcMessage;
use crate::error::{Outcome, classify_message_id, message_suffix};
use crate::racadm_repo;
use crate::repo::RepoHandle;
use crate::state::{dell_job_state, percent};
use crate::tls::TlsMode;
use async_trait::async_trait;
use firmflow_core::bmc::{
    self, BmcDriver, BmcJobState, ErrorKind, FirmwareComponent, Health, Inventory, JobQuery,
    JobSearch, JobStatus, PowerState, Readiness, ResetKind, SystemInfo, UpdateOptions, UpdateStart,
};
use firmflow_core::credentials::Credential;
use firmflow_core::model::{ComponentKind, JobHandle, Package, PackageSource};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// racadm settings.
#[derive(Clone, Debug)]
pub struct RacadmConfig {
    /// The racadm executable.
    pub binary: PathBuf,
    /// Timeout of one command (an update command uploads the image).
    pub timeout: Duration,
    /// Opt-in: run racadm although it shows the BMC password to every
    /// local user (`ps`, `/proc/<pid>/cmdline`) while it runs. Off by
    /// default: the driver then refuses every command.
    pub password_on_command_line: bool,
}

impl Default for RacadmConfig {
    fn default() -> Self {
        Self {
            binary: PathBuf::from("racadm"),
            timeout: Duration::from_secs(15 * 60),
            password_on_command_line: false,
        }
    }
}

/// One job of `racadm jobqueue view`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RacadmJob {
    /// `JID_…`.
    pub id: String,
    /// `Job Name`.
    pub name: String,
    /// `Status`.
    pub status: String,
    /// Message id (before the colon in `Message=[…]`).
    pub message_id: Option<String>,
    /// Message text.
    pub message: Option<String>,
    /// `Percent Complete` (`NA` → none).
    pub percent: Option<u8>,
}

impl RacadmJob {
    /// The job as the core's status.
    pub fn status(&self) -> JobStatus {
        let msg = BmcMessage {
            message_id: self.message_id.clone(),
            message: self.message.clone(),
            severity: None,
        };
        JobStatus {
            state: dell_job_state(&self.status, std::slice::from_ref(&msg)),
            percent: self.percent,
            message: self.message.clone(),
            message_id: self.message_id.clone(),
        }
    }
}

fn strip_brackets(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(v)
        .trim()
}

/// Parses `jobqueue view` output (one or many job blocks).
pub fn parse_jobqueue(text: &str) -> Vec<RacadmJob> {
    let mut jobs = Vec::new();
    let mut cur: Option<RacadmJob> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("[Job ID=") {
            if let Some(j) = cur.take() {
                jobs.push(j);
            }
            cur = Some(RacadmJob {
                id: rest.trim_end_matches(']').trim().to_string(),
                ..RacadmJob::default()
            });
            continue;
        }
        let Some(j) = cur.as_mut() else { continue };
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = strip_brackets(v);
        match k.trim() {
            "Job Name" => j.name = v.to_string(),
            "Status" => j.status = v.to_string(),
            "Percent Complete" => {
                j.percent = percent(Some(&serde_json::Value::String(v.to_string())))
            }
            "Message" => match v.split_once(':') {
                Some((id, text)) if !id.contains(' ') && !id.is_empty() => {
                    j.message_id = Some(id.trim().to_string());
                    j.message = Some(text.trim().to_string());
                }
                _ => j.message = Some(v.to_string()),
            },
            _ => {}
        }
    }
    if let Some(j) = cur {
        jobs.push(j);
    }
    jobs
}

/// The first `JID_` + 12 digits in `text`.
pub fn find_jid(text: &str) -> Option<String> {
    text.match_indices("JID_").find_map(|(start, _)| {
        let id = text.get(start..start + 16)?;
        id.get(4..)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
            .filter(|_| {
                // Exactly 12 digits: the next character is not a digit.
                !text
                    .get(start + 16..)
                    .and_then(|r| r.bytes().next())
                    .is_some_and(|b| b.is_ascii_digit())
            })
            .map(|_| id.to_string())
    })
}

/// `key = value` lines (`getversion`, `getremoteservicesstatus`).
pub fn parse_kv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=').or_else(|| l.split_once(':'))?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// Dell message ids (`RAC1118`, `SUP029`, …) named at the start of a line
/// or after `ERROR:`.
pub fn message_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("ERROR:").map(str::trim).unwrap_or(l);
            let (id, _) = l.split_once(':')?;
            let id = id.trim();
            let alpha = id.chars().take_while(|c| c.is_ascii_uppercase()).count();
            (alpha >= 2 && alpha < id.len() && id[alpha..].chars().all(|c| c.is_ascii_digit()))
                .then(|| id.to_string())
        })
        .collect()
}

/// The remote racadm driver.
pub struct RacadmDriver {
    cfg: RacadmConfig,
    address: String,
    credential: Credential,
    tls: TlsMode,
    /// Since when a finished repository job has had no job for a package
    /// (key: repository job, component, version).
    repo_idle: std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
}

impl RacadmDriver {
    /// A driver for the iDRAC at `address`, verifying its certificate
    /// ([`TlsMode::Verify`]; see [`Self::with_tls`]).
    pub fn new(cfg: RacadmConfig, address: String, credential: Credential) -> Self {
        Self {
            cfg,
            address,
            credential,
            tls: TlsMode::Verify,
            repo_idle: Default::default(),
        }
    }

    /// The TLS mode to honour (the connector passes the host's).
    pub fn with_tls(mut self, tls: TlsMode) -> Self {
        self.tls = tls;
        self
    }

    /// The racadm option that makes it honour the TLS mode, or why racadm
    /// cannot.
    fn tls_option(&self) -> Result<&'static str, bmc::Error> {
        match &self.tls {
            TlsMode::Verify => Ok("-S"),
            TlsMode::AcceptInvalid => Ok("--nocertwarn"),
            other => Err(self.err(
                ErrorKind::Tls,
                format!(
                    "racadm cannot verify a BMC certificate by {} (it knows only the system \
                     trust store): use tls verify or accept_invalid for this host, or the \
                     Redfish driver",
                    other.name()
                ),
            )),
        }
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> bmc::Error {
        bmc::Error::new(&self.address, kind, msg)
    }

    /// Runs one racadm command; returns stdout (+stderr) on success.
    pub async fn run(&self, args: &[&str]) -> Result<String, bmc::Error> {
        let tls = self.tls_option()?;
        if !self.cfg.password_on_command_line {
            return Err(self.err(
                ErrorKind::NotSupported,
                "remote racadm takes the BMC password only on its command line, where every \
                 local user can read it; refused (set racadm password_on_command_line = true \
                 to accept that, or use the Redfish driver)",
            ));
        }
        let mut cmd = tokio::process::Command::new(&self.cfg.binary);
        cmd.arg("-r")
            .arg(&self.address)
            .arg("-u")
            .arg(&self.credential.username)
            .arg("-p")
            .arg(self.credential.expose())
            .arg(tls)
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| {
            self.err(
                ErrorKind::NotSupported,
                format!("cannot run {}: {e}", self.cfg.binary.display()),
            )
        })?;
        let out = tokio::time::timeout(self.cfg.timeout, child.wait_with_output())
            .await
            .map_err(|_| {
                self.err(
                    ErrorKind::Timeout,
                    format!("racadm {} timed out", args.first().unwrap_or(&"")),
                )
            })?
            .map_err(|e| self.err(ErrorKind::Unreachable, format!("racadm failed: {e}")))?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.trim().is_empty() {
            text.push('\n');
            text.push_str(&stderr);
        }
        let failed =
            !out.status.success() || text.lines().any(|l| l.trim_start().starts_with("ERROR"));
        if failed {
            return Err(self.classify(&text, args.first().copied().unwrap_or("")));
        }
        Ok(text)
    }

    fn classify(&self, text: &str, what: &str) -> bmc::Error {
        let ids = message_ids(text);
        let known = ids
            .iter()
            .find_map(|id| classify_message_id(id).map(|o| (id.clone(), o)));
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("ERROR") || ids.iter().any(|id| l.starts_with(id.as_str())))
            .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
            .unwrap_or("no output")
            .to_string();
        let lower = text.to_ascii_lowercase();
        let kind = match &known {
            Some((_, Outcome::Error(k))) => k.clone(),
            Some((_, Outcome::AlreadyInstalled)) => ErrorKind::Other,
            // `-S`: racadm stopped on the BMC's certificate (its message
            // may also say it could not connect).
            None if lower.contains("certificate") => ErrorKind::Tls,
            None if lower.contains("unable to connect") || lower.contains("connection") => {
                ErrorKind::Unreachable
            }
            None if lower.contains("login failed") || lower.contains("invalid username") => {
                ErrorKind::Authentication
            }
            None => ErrorKind::Other,
        };
        let mut e = self.err(kind, format!("racadm {what}: {line}"));
        if let Some(id) = known.map(|(id, _)| id).or_else(|| ids.first().cloned()) {
            e = e.with_message_id(id);
        }
        e
    }

    /// Restarts the iDRAC (`racadm racreset`).
    pub async fn reset_bmc(&self) -> Result<(), bmc::Error> {
        self.run(&["racreset"]).await.map(|_| ())
    }

    async fn versions(&self) -> Result<Vec<(String, String)>, bmc::Error> {
        Ok(parse_kv(&self.run(&["getversion"]).await?))
    }

    async fn power(&self) -> Result<PowerState, bmc::Error> {
        let out = self.run(&["serveraction", "powerstatus"]).await?;
        let l = out.to_ascii_lowercase();
        Ok(if l.contains(": on") || l.trim_end().ends_with(" on") {
            PowerState::On
        } else if l.contains(": off") || l.trim_end().ends_with(" off") {
            PowerState::Off
        } else {
            PowerState::Unknown
        })
    }
}

impl RacadmDriver {
    /// A repository job created after the run's baseline that covers
    /// `package`: still working, or with a child job for the package.
    async fn covering_repository_job(
        &self,
        package: &Package,
        known: &[String],
    ) -> Result<Option<RepoHandle>, bmc::Error> {
        let jobs = parse_jobqueue(&self.run(&["jobqueue", "view"]).await?);
        let Some(repo) = racadm_repo::unknown_repository_job(&jobs, known) else {
            return Ok(None);
        };
        let mut h = RepoHandle::for_package(repo.id.clone(), None, None, package);
        Ok(match racadm_repo::read(&jobs, &h) {
            racadm_repo::Reading::Child(c) if !c.status().state.is_final() => {
                h.child = Some(c.id.clone());
                Some(h)
            }
            racadm_repo::Reading::Repository(Some(r)) if !r.status().state.is_final() => Some(h),
            racadm_repo::Reading::OthersFirst { .. } if package.kind == ComponentKind::Bmc => {
                Some(h)
            }
            _ => None,
        })
    }

    /// The state of one package of a repository update: its child job's,
    /// or while there is none, what the repository job and its other
    /// children say — never the repository job's own Completed.
    async fn poll_repository(&self, h: &RepoHandle) -> Result<JobStatus, bmc::Error> {
        let jobs = parse_jobqueue(&self.run(&["jobqueue", "view"]).await?);
        let about = |st: JobStatus, what: String| JobStatus {
            message: Some(match &st.message {
                Some(m) => format!("{what}: {m}"),
                None => what,
            }),
            ..st
        };
        let waiting = |state, message: String| JobStatus {
            state,
            percent: None,
            message: Some(message),
            message_id: None,
        };
        let key = format!("{}|{}|{}", h.repo, h.component_id, h.version);
        Ok(match racadm_repo::read(&jobs, h) {
            racadm_repo::Reading::Child(c) => {
                if let Ok(mut idle) = self.repo_idle.lock() {
                    idle.remove(&key);
                }
                about(
                    c.status(),
                    format!(
                        "{} {} (job {} of repository job {})",
                        h.name, h.version, c.id, h.repo
                    ),
                )
            }
            racadm_repo::Reading::Repository(Some(r)) => about(
                r.status(),
                format!("repository job {} for {} {}", h.repo, h.name, h.version),
            ),
            racadm_repo::Reading::Repository(None) => waiting(
                BmcJobState::Missing,
                format!("no job for {} {} on the BMC", h.name, h.version),
            ),
            racadm_repo::Reading::OthersFirst { awaiting_reboot } => waiting(
                if awaiting_reboot {
                    BmcJobState::AwaitingReboot
                } else {
                    BmcJobState::Running
                },
                format!(
                    "repository job {}: other packages install first; {} {} follows",
                    h.repo, h.name, h.version
                ),
            ),
            racadm_repo::Reading::NoChild(r) => {
                let st = r.status();
                let nothing_applicable =
                    st.message_id.as_deref().map(message_suffix) == Some("SUP029");
                let since = self
                    .repo_idle
                    .lock()
                    .ok()
                    .map(|mut m| *m.entry(key).or_insert_with(tokio::time::Instant::now));
                // The iDRAC creates its own update job only after the
                // staged ones ran: give it a moment before concluding.
                if since.is_some_and(|t| t.elapsed() < REPO_CHILD_GRACE) && !nothing_applicable {
                    waiting(
                        BmcJobState::Running,
                        format!(
                            "repository job {} finished; waiting for the iDRAC to create the job for {} {}",
                            h.repo, h.name, h.version
                        ),
                    )
                } else {
                    // No job was made: the inventory decides (already
                    // installed, or not applicable to this system).
                    JobStatus {
                        state: BmcJobState::CompletedWithErrors,
                        percent: Some(100),
                        message: Some(format!(
                            "repository job {} created no job for {} {}",
                            h.repo, h.name, h.version
                        )),
                        message_id: st.message_id,
                    }
                }
            }
        })
    }
}

/// How long a finished repository job may go without a job for a package
/// before the package is judged not applicable.
const REPO_CHILD_GRACE: Duration = Duration::from_secs(120);

fn version_of(kv: &[(String, String)], key: &str) -> Option<String> {
    kv.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

#[async_trait]
impl BmcDriver for RacadmDriver {
    async fn system(&self) -> Result<SystemInfo, bmc::Error> {
        let kv = self.versions().await?;
        Ok(SystemInfo {
            model: None,
            service_tag: None,
            system_id: None,
            power: self.power().await?,
            health: Health::Unknown,
            bios_version: version_of(&kv, "Bios Version"),
            bmc_version: version_of(&kv, "iDRAC Version"),
            bmc_model: None,
            manufacturer: None,
        })
    }

    async fn inventory(&self) -> Result<Inventory, bmc::Error> {
        // getversion names BIOS, iDRAC and Lifecycle Controller; their Dell
        // component ids are fixed (159 BIOS, 25227 iDRAC with LC).
        let kv = self.versions().await?;
        let mut components = Vec::new();
        let mut add = |key: &str, cid: &str, name: &str, kind: ComponentKind| {
            if let Some(v) = version_of(&kv, key) {
                components.push(FirmwareComponent {
                    id: format!("Installed-{cid}-{v}"),
                    name: name.into(),
                    version: v,
                    component_id: Some(cid.into()),
                    kind,
                    updateable: true,
                    installed: true,
                    pci: None,
                    release_date: None,
                });
            }
        };
        add("Bios Version", "159", "BIOS", ComponentKind::Bios);
        add(
            "iDRAC Version",
            "25227",
            "Integrated Dell Remote Access Controller",
            ComponentKind::Bmc,
        );
        Ok(Inventory { components })
    }

    async fn readiness(&self) -> Result<Readiness, bmc::Error> {
        let out = self.run(&["getremoteservicesstatus"]).await?;
        let kv = parse_kv(&out);
        let lc = kv
            .iter()
            .find(|(k, _)| k.to_ascii_lowercase().contains("lifecycle controller"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let overall = kv
            .iter()
            .find(|(k, _)| k.to_ascii_lowercase().contains("overall"))
            .map(|(_, v)| v.clone());
        let ready = lc.eq_ignore_ascii_case("ready")
            && overall
                .as_deref()
                .is_none_or(|o| o.eq_ignore_ascii_case("ready"));
        Ok(Readiness {
            ready,
            power: self.power().await?,
            detail: Some(out.trim().to_string()),
        })
    }

    async fn start_update(
        &self,
        package: &Package,
        options: &UpdateOptions,
    ) -> Result<UpdateStart, bmc::Error> {
        // racadm applies per package type; the executor reboots.
        if let PackageSource::Repository { .. } = &package.source
            && let Some(h) = self
                .covering_repository_job(package, &options.known_jobs)
                .await?
        {
            // One repository job installs every applicable package of the
            // catalog: a second one would flash the staged ones twice.
            return Ok(UpdateStart::Submitted(h.to_job()));
        }
        let result = match &package.source {
            PackageSource::LocalFile { path } => self.run(&["update", "-f", path]).await,
            PackageSource::ImageUri { uri } => {
                let (dir, file) = uri.rsplit_once('/').ok_or_else(|| {
                    self.err(
                        ErrorKind::Other,
                        format!("image URI without a file name: {uri}"),
                    )
                })?;
                self.run(&["update", "-f", file, "-l", dir]).await
            }
            PackageSource::Repository {
                repository_uri,
                catalog_file,
            } => {
                let scheme = repository_uri
                    .split("://")
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                let t = match scheme.as_str() {
                    "HTTP" | "HTTPS" | "FTP" | "TFTP" => scheme.clone(),
                    _ if repository_uri.starts_with("//") => "CIFS".into(),
                    _ => "NFS".into(),
                };
                self.run(&[
                    "update",
                    "-f",
                    catalog_file,
                    "-t",
                    &t,
                    "-l",
                    repository_uri,
                    "-a",
                    "FALSE",
                ])
                .await
            }
        };
        match result {
            Ok(out) => match find_jid(&out) {
                // The repository job's Completed is not this package's:
                // poll_job follows the package's child job.
                Some(jid) if matches!(package.source, PackageSource::Repository { .. }) => {
                    Ok(UpdateStart::Submitted(
                        RepoHandle::for_package(jid, None, None, package).to_job(),
                    ))
                }
                Some(jid) => Ok(UpdateStart::Submitted(JobHandle::new(jid))),
                None if message_ids(&out)
                    .iter()
                    .any(|i| message_suffix(i) == "SUP029") =>
                {
                    Ok(UpdateStart::AlreadyInstalled)
                }
                None => Err(self.err(ErrorKind::InvalidResponse, "racadm update named no job id")),
            },
            Err(e) if e.message_id.as_deref().map(message_suffix) == Some("SUP029") => {
                Ok(UpdateStart::AlreadyInstalled)
            }
            Err(e) => Err(e),
        }
    }

    async fn job_ids(&self) -> Result<Option<Vec<String>>, bmc::Error> {
        let jobs = parse_jobqueue(&self.run(&["jobqueue", "view"]).await?);
        Ok(Some(jobs.into_iter().map(|j| j.id).collect()))
    }

    async fn find_job(&self, query: &JobQuery<'_>) -> Result<JobSearch, bmc::Error> {
        let package = query.package;
        let Some(known) = query.known_jobs else {
            return Ok(JobSearch::Unknowable {
                reason: "the intent recorded no job baseline".into(),
            });
        };
        let jobs = parse_jobqueue(&self.run(&["jobqueue", "view"]).await?);
        if let PackageSource::Repository { .. } = &package.source {
            // The interrupted submission's repository job, followed to the
            // package's child like a fresh one (never the repository job's
            // own state, never a repository job from before the intent).
            return Ok(match racadm_repo::unknown_repository_job(&jobs, known) {
                Some(r) => {
                    let mut h = RepoHandle::for_package(r.id.clone(), None, None, package);
                    if let racadm_repo::Reading::Child(c) = racadm_repo::read(&jobs, &h) {
                        h.child = Some(c.id.clone());
                    }
                    JobSearch::Found(h.to_job())
                }
                None => JobSearch::NotFound,
            });
        }
        Ok(
            match pick_package_job(&jobs, known, &package.name, package.kind) {
                Some(j) => JobSearch::Found(JobHandle::new(j.id.clone())),
                None => JobSearch::NotFound,
            },
        )
    }

    async fn poll_job(&self, job: &JobHandle) -> Result<JobStatus, bmc::Error> {
        if let Some(h) = RepoHandle::parse(job) {
            return self.poll_repository(&h).await;
        }
        match self.run(&["jobqueue", "view", "-i", &job.id]).await {
            Ok(out) => match parse_jobqueue(&out).into_iter().find(|j| j.id == job.id) {
                Some(j) => Ok(j.status()),
                None => Err(self.err(
                    ErrorKind::InvalidResponse,
                    format!("jobqueue view printed no job {}", job.id),
                )),
            },
            Err(e)
                if e.message_id.as_deref().map(message_suffix) == Some("SUP024")
                    || e.kind == ErrorKind::NotFound =>
            {
                Ok(JobStatus::of(bmc::BmcJobState::Missing))
            }
            Err(e) => Err(e),
        }
    }

    async fn reset(&self, kind: ResetKind) -> Result<(), bmc::Error> {
        let action = match kind {
            ResetKind::GracefulRestart => "gracereboot",
            ResetKind::ForceRestart => "hardreset",
            ResetKind::PowerCycle => "powercycle",
            ResetKind::On => "powerup",
            ResetKind::GracefulShutdown => "graceshutdown",
            ResetKind::ForceOff => "powerdown",
        };
        self.run(&["serveraction", action]).await.map(|_| ())
    }

    async fn rollback(
        &self,
        component: &FirmwareComponent,
    ) -> Result<Option<JobHandle>, bmc::Error> {
        // racadm rolls back by FQDD, which iDRAC puts after "__" in the member id.
        let fqdd = component
            .id
            .split_once("__")
            .map(|(_, f)| f.to_string())
            .ok_or_else(|| {
                self.err(
                    ErrorKind::NotSupported,
                    format!("{} has no FQDD for racadm rollback", component.id),
                )
            })?;
        let out = self.run(&["rollback", &fqdd]).await?;
        Ok(find_jid(&out).map(JobHandle::new))
    }

    async fn clear_job_queue(&self) -> Result<(), bmc::Error> {
        self.run(&["jobqueue", "delete", "-i", "JID_CLEARALL"])
            .await
            .map(|_| ())
    }

    async fn close(&self) -> Result<(), bmc::Error> {
        // Each racadm invocation opens and closes its own session.
        Ok(())
    }
}

/// The job an interrupted single-package submission created: one not in the
/// baseline (`known`) that names the component — unfinished first, then the
/// newest (JIDs grow with time).
///
/// While it downloads, iDRAC names the job "Firmware Update: update:new" (as
/// over Redfish): it cannot be told apart, and a duplicate flash is worse
/// than following an extra job, so an unfinished placeholder counts too.
fn pick_package_job<'a>(
    jobs: &'a [RacadmJob],
    known: &[String],
    name: &str,
    kind: ComponentKind,
) -> Option<&'a RacadmJob> {
    let mut hits: Vec<&RacadmJob> = jobs
        .iter()
        .filter(|j| !known.contains(&j.id))
        .filter(|j| {
            racadm_repo::names_component(&j.name, name, kind)
                || (j.name.to_ascii_lowercase().ends_with("update:new")
                    && !j.status().state.is_final())
        })
        .collect();
    hits.sort_by(|a, b| {
        a.status()
            .state
            .is_final()
            .cmp(&b.status().state.is_final())
            .then(b.id.cmp(&a.id))
    });
    hits.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmflow_core::bmc::BmcJobState;

    #[test]
    fn jobqueue_completed_old_format() {
        let jobs = parse_jobqueue(include_str!(
            "../tests/fixtures/racadm_jobqueue_view_completed.txt"
        ));
        assert_eq!(jobs.len(), 1);
        let j = &jobs[0];
        assert_eq!(j.id, "JID_378288740486");
        assert_eq!(j.name, "Configure: RAID.Integrated.1-1");
        assert_eq!(j.message_id.as_deref(), Some("PR19"));
        assert_eq!(j.percent, Some(100));
        assert_eq!(j.status().state, BmcJobState::Completed);
    }

    #[test]
    fn jobqueue_running_new_format() {
        let jobs = parse_jobqueue(include_str!(
            "../tests/fixtures/racadm_jobqueue_view_running.txt"
        ));
        let j = &jobs[0];
        assert_eq!(j.id, "JID_000123456789");
        assert_eq!(j.status().state, BmcJobState::Running);
        assert_eq!(j.percent, Some(20));
        assert_eq!(
            j.message.as_deref(),
            Some("Applying configuration changes.")
        );
    }

    fn job_block(id: &str, name: &str, status: &str) -> String {
        format!(
            "---------------------------- JOB -------------------------\n\
             [Job ID={id}]\nJob Name={name}\nStatus={status}\n\
             Message=[RED003: Downloading package.]\nPercent Complete=[0]\n\
             ----------------------------------------------------------\n"
        )
    }

    #[test]
    fn an_interrupted_submission_is_found_while_its_job_is_still_named_update_new() {
        let out = [
            job_block("JID_100000000000", "Firmware Update: BIOS", "Completed"),
            job_block(
                "JID_200000000000",
                "Firmware Update: update:new",
                "Downloading",
            ),
        ]
        .concat();
        let jobs = parse_jobqueue(&out);
        let known = vec!["JID_100000000000".to_string()];
        let hit = pick_package_job(&jobs, &known, "BIOS", ComponentKind::Bios);
        assert_eq!(hit.map(|j| j.id.as_str()), Some("JID_200000000000"));
        // A finished placeholder cannot be told apart and is never adopted;
        // neither is anything in the baseline.
        let done = parse_jobqueue(&job_block(
            "JID_300000000000",
            "Firmware Update: update:new",
            "Failed",
        ));
        assert!(pick_package_job(&done, &[], "BIOS", ComponentKind::Bios).is_none());
        let all = vec!["JID_100000000000".into(), "JID_200000000000".into()];
        assert!(pick_package_job(&jobs, &all, "BIOS", ComponentKind::Bios).is_none());
    }

    #[test]
    fn jid_and_ids_from_text() {
        let t = include_str!("../tests/fixtures/racadm_set_xml_import_job_created.txt");
        assert_eq!(find_jid(t).as_deref(), Some("JID_000000000000"));
        assert_eq!(message_ids(t), vec!["RAC977".to_string()]);
        assert_eq!(
            find_jid("JID_123 and JID_123456789012."),
            Some("JID_123456789012".into())
        );
        assert_eq!(find_jid("JID_1234567890123"), None);
        // Multi-byte text around the id never splits a character.
        assert_eq!(
            find_jid("ünïcode JID_ JID_999999999999é").as_deref(),
            Some("JID_999999999999")
        );
        assert_eq!(
            message_ids("ERROR: SUP029: Firmware versions on server match catalog"),
            vec!["SUP029"]
        );
    }

    #[test]
    fn kv_lines() {
        let kv = parse_kv(
            "Bios Version                    = 2.10.2\niDRAC Version                   = 5.10.00.00\n",
        );
        assert_eq!(version_of(&kv, "bios version").as_deref(), Some("2.10.2"));
        assert_eq!(
            version_of(&kv, "iDRAC Version").as_deref(),
            Some("5.10.00.00")
        );
    }
}
