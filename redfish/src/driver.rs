//! The Redfish `BmcDriver`s: Dell iDRAC (Redfish + Dell OEM) and generic
//! DMTF Redfish (no vendor extension assumed). One type, two flavours: they
//! share the session, discovery, inventory and reset code and differ in
//! readiness, job tracking, repository installs, rollback and queue clearing.
//!
//! Everything is found by links from the service root (`Links.Sessions`,
//! `Systems`, `Managers`, `UpdateService`, `Manager.Links.Oem.Dell.*`,
//! `System.Links.Oem.Dell.*`, `Actions.*.target`): Dell moved its OEM
//! services between 3.x and 5.x, and iDRAC10 answers with TaskMonitors.
//! Discovery is cached and redone after a re-login (an iDRAC that restarted
//! may run another firmware with other paths).

pub mod generic;

use crate::client::{RedfishClient, Reply, path_of};
use crate::error::message_suffix;
use crate::repair;
use crate::repo::{RepoEntry, RepoHandle, parse_package_list};
use crate::state;
use crate::transport::RequestCounts;
use async_trait::async_trait;
use firmflow_core::bmc::{
    self, BmcDriver, BmcJobState, ErrorKind, FirmwareComponent, Health, Inventory, JobQuery,
    JobSearch, JobStatus, PciIds, PowerState, Readiness, ResetKind, SystemInfo, UpdateOptions,
    UpdateStart,
};
use firmflow_core::model::{ComponentKind, JobHandle, Package, PackageSource};
use nv_redfish::schema::software_inventory::SoftwareInventory;
use serde::Deserialize as _;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Which Redfish dialect a driver speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Dell iDRAC: DMTF Redfish plus Dell OEM (jobs, LC service, repository).
    Idrac,
    /// Any DMTF Redfish service; no vendor extension is used.
    Generic,
}

/// Driver settings.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Dialect.
    pub flavor: Flavor,
    /// Timeout of one multipart upload.
    pub upload_timeout: Duration,
    /// After a reset, readiness reads "not ready" this long: iDRAC's
    /// LCStatus still says Ready for about two minutes after a restart.
    pub lc_settle: Duration,
    /// How long a finished repository job may go without a child job for a
    /// package before the driver says so: the iDRAC creates some children
    /// (its own update) only after the staged ones have run.
    pub repo_child_grace: Duration,
}

impl DriverConfig {
    /// Defaults for a flavour.
    pub fn new(flavor: Flavor) -> Self {
        Self {
            flavor,
            upload_timeout: Duration::from_secs(30 * 60),
            lc_settle: Duration::from_secs(120),
            repo_child_grace: Duration::from_secs(120),
        }
    }
}

/// Where things are on this BMC, found by links.
#[derive(Clone, Debug, Default)]
pub struct Services {
    /// `Links.Sessions`.
    pub sessions: Option<String>,
    /// The computer system.
    pub system: String,
    /// The manager (BMC).
    pub manager: Option<String>,
    /// `ComputerSystem.Reset` target.
    pub system_reset: Option<String>,
    /// Allowed `ResetType`s (empty: not advertised).
    pub reset_types: Vec<String>,
    /// `Manager.Reset` target.
    pub manager_reset: Option<String>,
    /// Firmware inventory collection.
    pub firmware_inventory: Option<String>,
    /// `SimpleUpdate` target.
    pub simple_update: Option<String>,
    /// What the SimpleUpdate ActionInfo says about `Targets` (generic only).
    pub simple_update_info: generic::SimpleUpdateInfo,
    /// `TransferProtocol@Redfish.AllowableValues`.
    pub transfer_protocols: Vec<String>,
    /// Supported `@Redfish.OperationApplyTime` values.
    pub apply_times: Vec<String>,
    /// `MultipartHttpPushUri`.
    pub multipart: Option<String>,
    /// `HttpPushUri`.
    pub http_push: Option<String>,
    /// TaskService task collection.
    pub tasks: Option<String>,
    /// DMTF JobService job collection.
    pub jobs: Option<String>,
    /// Whether `$expand=*($levels=1)` may be used.
    pub expand: bool,
    /// Dell job collection (`Links.Oem.Dell.Jobs`).
    pub dell_jobs: Option<String>,
    /// `DellJobService`.
    pub dell_job_service: Option<String>,
    /// `DellLCService`.
    pub dell_lc_service: Option<String>,
    /// `DellSoftwareInstallationService` (on the system).
    pub dell_software_installation: Option<String>,
}

/// The system and manager documents a discovery has just read.
struct Fresh {
    system: Value,
    manager: Option<Value>,
}

fn link<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The members of a collection document.
fn members(v: &Value) -> Vec<&Value> {
    v.get("Members")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The last path segment (job id of a task/job/monitor location).
pub fn last_segment(uri: &str) -> &str {
    let path = uri.split('?').next().unwrap_or(uri);
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// A Redfish `BmcDriver` (iDRAC or generic).
pub struct RedfishDriver {
    client: RedfishClient,
    cfg: DriverConfig,
    services: Mutex<Option<(u64, Arc<Services>)>>,
    discoveries: std::sync::atomic::AtomicU64,
    reset_at: std::sync::Mutex<Option<Instant>>,
    /// Action targets read from OEM service documents, per session generation.
    targets: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Child job of a repository job per package (`repo|cid|version`), once resolved.
    repo_children: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// Since when a finished repository job has shown no child for a package.
    repo_idle: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

impl RedfishDriver {
    /// A driver over an authenticated client.
    pub fn new(client: RedfishClient, cfg: DriverConfig) -> Self {
        Self {
            client,
            cfg,
            services: Mutex::new(None),
            discoveries: std::sync::atomic::AtomicU64::new(0),
            reset_at: std::sync::Mutex::new(None),
            targets: std::sync::Mutex::new(std::collections::HashMap::new()),
            repo_children: std::sync::Mutex::new(std::collections::HashMap::new()),
            repo_idle: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The flavour.
    pub fn flavor(&self) -> Flavor {
        self.cfg.flavor
    }

    /// Requests sent to this BMC so far.
    pub fn requests(&self) -> RequestCounts {
        self.client.requests()
    }

    /// The underlying client.
    pub fn client(&self) -> &RedfishClient {
        &self.client
    }

    fn host(&self) -> &str {
        self.client.host()
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> bmc::Error {
        bmc::Error::new(self.host(), kind, msg)
    }

    fn dell(&self) -> bool {
        self.cfg.flavor == Flavor::Idrac
    }

    /// The services of this BMC, discovered once per session generation.
    pub async fn services(&self) -> Result<Arc<Services>, bmc::Error> {
        Ok(self.services_fresh().await?.0)
    }

    /// The services, and the system and manager documents when this very
    /// call discovered them: they were read a moment ago, so the caller
    /// needs no second read of them (the first `system()` on a new session
    /// costs the discovery only).
    async fn services_fresh(&self) -> Result<(Arc<Services>, Option<Fresh>), bmc::Error> {
        let mut guard = self.services.lock().await;
        let generation = self.client.generation().await;
        if let Some((g, s)) = guard.as_ref()
            && *g == generation
        {
            return Ok((s.clone(), None));
        }
        let (s, fresh) = self.discover().await?;
        let s = Arc::new(s);
        if let Ok(mut t) = self.targets.lock() {
            t.clear();
        }
        // The discovery may itself have logged in: record the generation after it.
        *guard = Some((self.client.generation().await, s.clone()));
        Ok((s, Some(fresh)))
    }

    /// The system document, and the manager's when one is linked: the ones
    /// the discovery just read, else read now.
    async fn system_docs(&self) -> Result<(Value, Option<Value>), bmc::Error> {
        let (s, fresh) = self.services_fresh().await?;
        if let Some(f) = fresh {
            return Ok((f.system, f.manager));
        }
        let sys = self.client.get(&s.system).await?;
        let mgr = match &s.manager {
            Some(m) => Some(self.client.get(m).await?),
            None => None,
        };
        Ok((sys, mgr))
    }

    async fn discover(&self) -> Result<(Services, Fresh), bmc::Error> {
        self.discoveries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let c = &self.client;
        let root = c.service_root().await?;
        let mut s = Services {
            sessions: link(&root, "/Links/Sessions/@odata.id").map(str::to_owned),
            expand: root
                .pointer("/ProtocolFeaturesSupported/ExpandQuery/ExpandAll")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            tasks: None,
            ..Services::default()
        };
        let systems = link(&root, "/Systems/@odata.id").ok_or_else(|| {
            self.err(
                ErrorKind::InvalidResponse,
                "service root has no Systems link",
            )
        })?;
        let sys_coll = c.get(systems).await?;
        let sys_links: Vec<&str> = members(&sys_coll)
            .into_iter()
            .filter_map(|m| m.get("@odata.id").and_then(Value::as_str))
            .collect();
        // Several systems: prefer the embedded one iDRAC names System.Embedded.1.
        let system = sys_links
            .iter()
            .find(|l| l.ends_with("System.Embedded.1"))
            .or(sys_links.first())
            .ok_or_else(|| self.err(ErrorKind::NotFound, "no computer system in Systems"))?;
        s.system = system.to_string();
        let sys = c.get(system).await?;
        s.system_reset = link(&sys, "/Actions/#ComputerSystem.Reset/target").map(str::to_owned);
        s.reset_types = strings(
            sys.pointer("/Actions/#ComputerSystem.Reset/ResetType@Redfish.AllowableValues"),
        );
        s.dell_software_installation = link(
            &sys,
            "/Links/Oem/Dell/DellSoftwareInstallationService/@odata.id",
        )
        .map(str::to_owned);
        let manager = link(&sys, "/Links/ManagedBy/0/@odata.id").map(str::to_owned);
        let manager = match manager {
            Some(m) => Some(m),
            None => match link(&root, "/Managers/@odata.id") {
                Some(ms) => {
                    let coll = c.get(ms).await?;
                    members(&coll)
                        .first()
                        .and_then(|m| m.get("@odata.id"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }
                None => None,
            },
        };
        let mut manager_doc = None;
        if let Some(m) = &manager {
            let mgr = c.get(m).await?;
            s.manager_reset = link(&mgr, "/Actions/#Manager.Reset/target").map(str::to_owned);
            if self.dell() {
                let oem = |k: &str| {
                    link(&mgr, &format!("/Links/Oem/Dell/{k}/@odata.id"))
                        .or_else(|| link(&mgr, &format!("/Oem/Dell/{k}/@odata.id")))
                        .map(str::to_owned)
                };
                s.dell_jobs = oem("Jobs");
                s.dell_job_service = oem("DellJobService");
                s.dell_lc_service = oem("DellLCService");
            }
            manager_doc = Some(mgr);
        }
        s.manager = manager;
        if let Some(us) = link(&root, "/UpdateService/@odata.id") {
            let u = c.get(us).await?;
            s.firmware_inventory = link(&u, "/FirmwareInventory/@odata.id").map(str::to_owned);
            let su = u.pointer("/Actions/#UpdateService.SimpleUpdate");
            s.simple_update = su.and_then(|a| link(a, "/target")).map(str::to_owned);
            if let (false, Some(a)) = (self.dell(), su) {
                s.simple_update_info = self.read_simple_update_info(a).await;
            }
            s.transfer_protocols =
                strings(su.and_then(|a| a.get("TransferProtocol@Redfish.AllowableValues")));
            s.apply_times = strings(
                su.and_then(|a| a.pointer("/@Redfish.OperationApplyTimeSupport/SupportedValues"))
                    .or_else(|| u.pointer("/@Redfish.OperationApplyTimeSupport/SupportedValues")),
            );
            s.multipart = u
                .get("MultipartHttpPushUri")
                .and_then(Value::as_str)
                .map(str::to_owned);
            s.http_push = u
                .get("HttpPushUri")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        // TaskService and JobService: their collections follow the DMTF
        // layout under the service's own link, so no extra GET is spent.
        // ServiceRoot.Tasks is the TaskService (not its collection).
        s.tasks = link(&root, "/Tasks/@odata.id")
            .or_else(|| link(&root, "/TaskService/@odata.id"))
            .map(|t| format!("{}/Tasks", t.trim_end_matches('/')));
        s.jobs = link(&root, "/JobService/@odata.id")
            .map(|t| format!("{}/Jobs", t.trim_end_matches('/')));
        Ok((
            s,
            Fresh {
                system: sys,
                manager: manager_doc,
            },
        ))
    }

    /// How often services were discovered (1 per session generation).
    pub fn discoveries(&self) -> u64 {
        self.discoveries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The target of action `name` on the resource at `uri` (`Actions` map,
    /// including `Actions.Oem`).
    async fn action_target(&self, uri: &str, name: &str) -> Result<String, bmc::Error> {
        let key = format!("{uri}#{name}");
        if let Some(t) = self.targets.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(t);
        }
        let target = self.read_action_target(uri, name).await?;
        if let Ok(mut m) = self.targets.lock() {
            m.insert(key, target.clone());
        }
        Ok(target)
    }

    async fn read_action_target(&self, uri: &str, name: &str) -> Result<String, bmc::Error> {
        let doc = self.client.get(uri).await?;
        let actions = doc.get("Actions");
        let find = |map: Option<&Value>| -> Option<String> {
            map?.as_object()?.iter().find_map(|(k, v)| {
                (k.ends_with(&format!("#{name}")) || k == name)
                    .then(|| v.get("target").and_then(Value::as_str).map(str::to_owned))
                    .flatten()
            })
        };
        find(actions)
            .or_else(|| find(actions.and_then(|a| a.get("Oem"))))
            .ok_or_else(|| {
                self.err(
                    ErrorKind::NotSupported,
                    format!("{uri} has no action {name}"),
                )
            })
    }

    /// Reads the manager's firmware version (iDRAC self-update check).
    pub async fn bmc_firmware_version(&self) -> Result<Option<String>, bmc::Error> {
        let s = self.services().await?;
        let Some(m) = &s.manager else { return Ok(None) };
        let mgr = self.client.get(m).await?;
        Ok(mgr
            .get("FirmwareVersion")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// Restarts the BMC itself (`Manager.Reset` GracefulRestart). Sessions
    /// die with it; the next request logs in again.
    pub async fn reset_bmc(&self) -> Result<(), bmc::Error> {
        let s = self.services().await?;
        let target = s.manager_reset.clone().ok_or_else(|| {
            self.err(
                ErrorKind::NotSupported,
                "manager has no Manager.Reset action",
            )
        })?;
        self.client
            .action(&target, &json!({"ResetType": "GracefulRestart"}))
            .await?;
        self.mark_reset();
        Ok(())
    }

    fn mark_reset(&self) {
        if let Ok(mut g) = self.reset_at.lock() {
            *g = Some(Instant::now());
        }
    }

    fn settling(&self) -> Option<Duration> {
        let at = (*self.reset_at.lock().ok()?)?;
        let since = at.elapsed();
        (since < self.cfg.lc_settle).then(|| self.cfg.lc_settle - since)
    }

    fn component_from(&self, mut doc: Value, link: Option<&str>) -> Option<FirmwareComponent> {
        let release = repair::software_inventory(&mut doc, link);
        // Deserialized from the borrowed tree: no copy of the document first.
        let typed = match SoftwareInventory::deserialize(&doc) {
            Ok(t) => t,
            Err(e) => {
                // Skipping is safe: a component missing from the inventory
                // fails verification, it never fakes a success.
                tracing::warn!(host = %self.host(), member = ?link, error = %e, "firmware member unreadable; skipped");
                return None;
            }
        };
        let id = typed.id.clone();
        let dell = doc.pointer("/Oem/Dell/DellSoftwareInventory");
        let dstr = |k: &str| {
            dell.and_then(|d| d.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let component_id = typed
            .software_id
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| dstr("ComponentID"))
            .or_else(|| {
                // Installed-<ComponentID>-<Version>[__<FQDD>]
                let mut parts = id.splitn(3, '-');
                let prefix = parts.next()?;
                matches!(prefix, "Installed" | "Previous" | "Current" | "Available")
                    .then(|| parts.next().map(str::to_owned))
                    .flatten()
            });
        let lower = id.to_ascii_lowercase();
        let installed = !(lower.starts_with("previous-") || lower.starts_with("available-"));
        let pci = dell.and_then(|_| {
            let p = PciIds {
                vendor_id: dstr("VendorID").filter(|s| !s.is_empty()),
                device_id: dstr("DeviceID").filter(|s| !s.is_empty()),
                subsystem_vendor_id: dstr("SubVendorID").filter(|s| !s.is_empty()),
                subsystem_id: dstr("SubDeviceID").filter(|s| !s.is_empty()),
            };
            (p != PciIds::default()).then_some(p)
        });
        let version = typed.version.clone().flatten().unwrap_or_default();
        Some(FirmwareComponent {
            kind: kind_of(
                &typed.name,
                dstr("ComponentType").as_deref(),
                component_id.as_deref(),
            ),
            id,
            name: typed.name.clone(),
            version,
            component_id,
            updateable: typed.updateable.flatten().unwrap_or(false),
            installed,
            pci,
            release_date: release,
        })
    }

    async fn job_doc(&self, uri: &str) -> Result<Option<Value>, bmc::Error> {
        match self.client.get(uri).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            // iDRAC answers a GET of a job it does not know with 404 and
            // SUP024 ("InstanceID … invalid"), which elsewhere means a
            // rejected package: here it only says the job is not there.
            Err(e) if e.message_id.as_deref().map(message_suffix) == Some("SUP024") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn status_of(&self, doc: &Value, kind: DocKind) -> Result<JobStatus, bmc::Error> {
        let st = match kind {
            DocKind::DellJob => state::from_dell_job(doc),
            DocKind::Task => state::from_task(doc),
            DocKind::Job => state::from_job(doc),
        };
        st.ok_or_else(|| self.err(ErrorKind::InvalidResponse, "job document without a state"))
    }

    fn apply_time(&self, s: &Services, options: &UpdateOptions) -> Option<&'static str> {
        let want = match options.apply {
            bmc::ApplyTime::Immediate => "Immediate",
            bmc::ApplyTime::OnReset => "OnReset",
        };
        // iDRAC accepts it on every generation; a generic service only when advertised.
        (self.dell() || s.apply_times.iter().any(|v| v == want)).then_some(want)
    }

    fn handle_of(&self, reply: &Reply) -> Result<JobHandle, bmc::Error> {
        let loc = reply.location.clone().or_else(|| {
            reply.body.as_ref().and_then(|b| {
                b.get("@odata.id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        });
        match loc {
            Some(l) => Ok(JobHandle {
                id: last_segment(&l).to_string(),
                location: Some(l),
            }),
            None => match reply
                .body
                .as_ref()
                .and_then(|b| b.get("Id"))
                .and_then(Value::as_str)
            {
                Some(id) => Ok(JobHandle::new(id)),
                None => Err(self.err(
                    ErrorKind::InvalidResponse,
                    "the BMC accepted the update but named no job or task",
                )),
            },
        }
    }

    async fn simple_update(
        &self,
        s: &Services,
        uri: &str,
        options: &UpdateOptions,
        package: Option<&Package>,
    ) -> Result<Reply, bmc::Error> {
        let target = s.simple_update.clone().ok_or_else(|| {
            self.err(
                ErrorKind::NotSupported,
                "UpdateService has no SimpleUpdate action",
            )
        })?;
        let mut body = json!({"ImageURI": uri});
        let scheme = uri
            .split("://")
            .next()
            .filter(|_| uri.contains("://"))
            .map(str::to_ascii_uppercase);
        if let Some(scheme) = scheme
            && s.transfer_protocols
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&scheme))
        {
            set_field(&mut body, "TransferProtocol", json!(scheme));
        }
        if let Some(at) = self.apply_time(s, options) {
            set_field(&mut body, "@Redfish.OperationApplyTime", json!(at));
        }
        if options.force && !self.dell() {
            set_field(&mut body, "ForceUpdate", json!(true));
        }
        if !self.dell() {
            return self.generic_simple_update(s, &target, body, package).await;
        }
        self.client.action(&target, &body).await
    }

    async fn repository_update(
        &self,
        s: &Services,
        repository_uri: &str,
        catalog_file: &str,
        options: &UpdateOptions,
    ) -> Result<Reply, bmc::Error> {
        if !self.dell() {
            return Err(self.err(
                ErrorKind::NotSupported,
                "install from repository needs Dell OEM (iDRAC)",
            ));
        }
        let svc = s.dell_software_installation.clone().ok_or_else(|| {
            self.err(
                ErrorKind::NotSupported,
                "no DellSoftwareInstallationService (iDRAC too old or no licence)",
            )
        })?;
        let target = self
            .action_target(
                &svc,
                "DellSoftwareInstallationService.InstallFromRepository",
            )
            .await?;
        let share = parse_share(repository_uri).ok_or_else(|| {
            self.err(
                ErrorKind::Other,
                format!("unusable repository URI {repository_uri}"),
            )
        })?;
        let body = json!({
            "IPAddress": share.host,
            "ShareType": share.kind,
            "ShareName": share.path,
            "CatalogFile": catalog_file,
            // iDRAC wants these two as strings, RebootNeeded as a bool.
            "ApplyUpdate": "True",
            "IgnoreCertWarning": "On",
            "ApplySameVersions": if options.force { "True" } else { "False" },
            // The executor reboots (graceful, then forced) when it decides to.
            "RebootNeeded": false,
        });
        self.client.action(&target, &body).await
    }

    async fn upload(
        &self,
        s: &Services,
        path: &str,
        options: &UpdateOptions,
    ) -> Result<Reply, bmc::Error> {
        let file = PathBuf::from(path);
        if let Some(uri) = &s.multipart {
            let mut params = json!({"Targets": []});
            if let Some(at) = self.apply_time(s, options) {
                set_field(&mut params, "@Redfish.OperationApplyTime", json!(at));
            }
            if self.dell() {
                set_field(&mut params, "Oem", json!({}));
            }
            return self
                .client
                .multipart(uri, &params, &file, self.cfg.upload_timeout)
                .await;
        }
        if let (true, Some(push)) = (self.dell(), &s.http_push) {
            // iDRAC8 / early iDRAC9: push, then SimpleUpdate the Available- image.
            let available = self.client.dell_http_push(push, &file).await?;
            return self.simple_update(s, &available, options, None).await;
        }
        Err(self.err(
            ErrorKind::NotSupported,
            "no MultipartHttpPushUri (BMC firmware too old for uploads); use an image URI",
        ))
    }

    /// A plain (non-repository) job or task, from every place it may be read.
    async fn poll_plain(&self, s: &Services, job: &JobHandle) -> Result<JobStatus, bmc::Error> {
        let loc = job.location.as_deref().map(path_of);
        let id = job.id.as_str();
        // Sources in order of reliability. Dell jobs survive task purges and
        // iDRAC restarts; a 17G TaskMonitor has no body, so read the Task.
        let mut sources: Vec<(String, DocKind)> = Vec::new();
        let is_dell_job_loc = loc
            .as_deref()
            .is_some_and(|l| l.contains("/Jobs/") && !l.contains("/JobService/"));
        if self.dell() {
            if let Some(j) = &s.dell_jobs {
                sources.push((
                    format!("{}/{id}", j.trim_end_matches('/')),
                    DocKind::DellJob,
                ));
            } else if let (true, Some(l)) = (is_dell_job_loc, &loc) {
                sources.push((l.clone(), DocKind::DellJob));
            }
        }
        match &loc {
            Some(l) if l.contains("/TaskMonitors/") => {
                sources.push((l.replace("/TaskMonitors/", "/Tasks/"), DocKind::Task));
            }
            Some(l) if l.contains("/Tasks/") => sources.push((l.clone(), DocKind::Task)),
            Some(l) if l.contains("/JobService/") => sources.push((l.clone(), DocKind::Job)),
            _ => {}
        }
        if let Some(t) = &s.tasks {
            sources.push((format!("{}/{id}", t.trim_end_matches('/')), DocKind::Task));
        }
        if let Some(j) = &s.jobs {
            sources.push((format!("{}/{id}", j.trim_end_matches('/')), DocKind::Job));
        }
        let mut tried = std::collections::HashSet::new();
        for (uri, kind) in sources {
            if !tried.insert(uri.clone()) {
                continue;
            }
            if let Some(doc) = self.job_doc(&uri).await? {
                return self.status_of(&doc, kind);
            }
        }
        // Nobody knows the job: purged, or lost with an iDRAC restart. The
        // executor decides by re-reading the inventory.
        Ok(JobStatus {
            state: BmcJobState::Missing,
            percent: None,
            message: Some(format!(
                "job {id} not found on the BMC (purged or lost in a restart)"
            )),
            message_id: None,
        })
    }

    /// The Dell job queue in collection order (creation order on iDRAC);
    /// empty when the BMC has none.
    async fn dell_queue(&self, s: &Services) -> Result<Vec<Value>, bmc::Error> {
        let Some(coll) = s.dell_jobs.clone() else {
            return Ok(Vec::new());
        };
        let doc = match if s.expand {
            self.client.get_expanded(&coll).await
        } else {
            self.client.get(&coll).await
        } {
            Ok(d) => d,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for m in members(&doc) {
            if m.get("Id").is_some() {
                out.push(m.clone());
            } else if let Some(l) = m.get("@odata.id").and_then(Value::as_str)
                && let Some(d) = self.job_doc(l).await?
            {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// `GetRepoBasedUpdateList`: the packages of the last repository
    /// comparison with their child `JobID`s. `None` when the iDRAC cannot
    /// say (no such action, an error other than a transient one).
    async fn repo_list(&self, s: &Services) -> Result<Option<Vec<RepoEntry>>, bmc::Error> {
        let Some(svc) = s.dell_software_installation.clone() else {
            return Ok(None);
        };
        let target = match self
            .action_target(
                &svc,
                "DellSoftwareInstallationService.GetRepoBasedUpdateList",
            )
            .await
        {
            Ok(t) => t,
            Err(e) if e.is_transient() => return Err(e),
            Err(_) => return Ok(None),
        };
        match self.client.action(&target, &json!({})).await {
            Ok(r) => {
                let xml = r
                    .body
                    .as_ref()
                    .and_then(|b| b.get("PackageList"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                match parse_package_list(xml) {
                    Ok(l) => Ok(Some(l)),
                    Err(e) => {
                        tracing::warn!(host = %self.host(), error = %e, "unreadable GetRepoBasedUpdateList answer; using the job queue");
                        Ok(None)
                    }
                }
            }
            // SUP029: nothing applicable, so no child jobs.
            Err(e) if e.message_id.as_deref().map(message_suffix) == Some("SUP029") => {
                Ok(Some(Vec::new()))
            }
            Err(e) if e.is_transient() => Err(e),
            Err(e) => {
                tracing::debug!(host = %self.host(), error = %e, "GetRepoBasedUpdateList failed; using the job queue");
                Ok(None)
            }
        }
    }

    /// Finds the package's child of repository job `h.repo` in `queue`:
    /// the `JobID` `GetRepoBasedUpdateList` gives for the package when that
    /// job was created after the repository job, else the first firmware
    /// job after it whose name names the component.
    fn resolve_in(
        &self,
        h: &RepoHandle,
        queue: &[Value],
        list: Option<&[RepoEntry]>,
    ) -> Resolution {
        let repo_at = queue.iter().position(|d| job_id(d) == h.repo);
        let after: Vec<Value> = match repo_at {
            Some(i) => queue
                .iter()
                .skip(i + 1)
                .filter(|d| is_firmware_job(d) && !is_repository_job(d))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let listed = list.into_iter().flatten().find_map(|e| {
            if e.job_id.is_empty() || !h.entry_matches(e) {
                return None;
            }
            // A list left by an older comparison names jobs from before ours.
            let doc = match repo_at {
                Some(_) => after.iter().find(|d| job_id(d) == e.job_id).cloned(),
                None => queue.iter().find(|d| job_id(d) == e.job_id).cloned(),
            }?;
            Some((e.job_id.clone(), doc, e.version.trim() == h.version.trim()))
        });
        if let Some((id, doc, same_version)) = listed {
            return Resolution {
                child: Some((id, doc)),
                child_listed: same_version,
                after,
            };
        }
        let guessed = after
            .iter()
            .find(|d| names_component(d, &h.name, h.kind))
            .map(|d| (job_id(d).to_string(), d.clone()))
            .filter(|(id, _)| !id.is_empty());
        Resolution {
            child: guessed,
            child_listed: false,
            after,
        }
    }

    fn child_key(h: &RepoHandle) -> String {
        format!("{}|{}|{}", h.repo, h.component_id, h.version)
    }

    fn cached_child(&self, h: &RepoHandle) -> Option<String> {
        h.child.clone().or_else(|| {
            self.repo_children
                .lock()
                .ok()
                .and_then(|m| m.get(&Self::child_key(h)).cloned())
        })
    }

    fn remember_child(&self, h: &RepoHandle, child: &str) {
        if let Ok(mut m) = self.repo_children.lock() {
            m.insert(Self::child_key(h), child.to_string());
        }
        if let Ok(mut m) = self.repo_idle.lock() {
            m.remove(&Self::child_key(h));
        }
    }

    /// A repository job already on the iDRAC that covers `package`, so
    /// that a second package of the same catalog is never submitted again
    /// (a second repository job would flash the staged ones twice).
    /// `recover`: after a crash, any child of ours counts, even a failed one.
    /// Jobs in `known` (listed before this run's intent) are never followed.
    async fn locate_repository_job(
        &self,
        s: &Services,
        package: &Package,
        recover: bool,
        known: &[String],
    ) -> Result<Option<RepoHandle>, bmc::Error> {
        if !self.dell() {
            return Ok(None);
        }
        let queue = self.dell_queue(s).await?;
        let Some(repo) = queue
            .iter()
            .rev()
            .find(|d| is_repository_job(d) && !known.iter().any(|k| k == job_id(d)))
        else {
            return Ok(None);
        };
        let rid = job_id(repo).to_string();
        if rid.is_empty() {
            return Ok(None);
        }
        let base = repo
            .get("@odata.id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut h = RepoHandle::for_package(rid, base, None, package);
        let list = self.repo_list(s).await?;
        let res = self.resolve_in(&h, &queue, list.as_deref());
        if let Some((child, doc)) = &res.child {
            let st = self.status_of(doc, DocKind::DellJob)?;
            let usable = match st.state {
                BmcJobState::Completed => res.child_listed,
                s => !s.is_final(),
            };
            if recover || usable {
                self.remember_child(&h, child);
                h.child = Some(child.clone());
                return Ok(Some(h));
            }
            return Ok(None);
        }
        let repo_st = self.status_of(repo, DocKind::DellJob)?;
        if !repo_st.state.is_final() {
            return Ok(Some(h));
        }
        // The iDRAC creates its own update job only after the staged ones ran.
        let staged_before_bmc = package.kind == ComponentKind::Bmc
            && res.after.iter().any(|d| {
                self.status_of(d, DocKind::DellJob)
                    .is_ok_and(|st| !st.state.is_final())
            });
        Ok(staged_before_bmc.then_some(h))
    }

    /// The state of a repository update for one package: its child job's,
    /// or while there is none yet, the aggregate of the repository job and
    /// its other children.
    async fn poll_repository(&self, s: &Services, h: &RepoHandle) -> Result<JobStatus, bmc::Error> {
        let about = |st: JobStatus, child: &str| JobStatus {
            message: Some(format!(
                "{} {} (job {child} of repository job {}){}",
                h.name,
                h.version,
                h.repo,
                st.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )),
            ..st
        };
        if let Some(child) = self.cached_child(h) {
            let st = self.poll_plain(s, &JobHandle::new(child.clone())).await?;
            return Ok(about(st, &child));
        }
        let repo_st = if h.repo.is_empty() {
            None
        } else {
            let loc = h.base.clone();
            Some(
                self.poll_plain(
                    s,
                    &JobHandle {
                        id: h.repo.clone(),
                        location: loc,
                    },
                )
                .await?,
            )
        };
        let queue = self.dell_queue(s).await?;
        let list = self.repo_list(s).await?;
        let res = self.resolve_in(h, &queue, list.as_deref());
        if let Some((child, doc)) = &res.child {
            self.remember_child(h, child);
            let st = self.status_of(doc, DocKind::DellJob)?;
            return Ok(about(st, child));
        }
        let Some(repo_st) = repo_st else {
            return Ok(JobStatus {
                state: BmcJobState::Missing,
                percent: None,
                message: Some(format!("no job for {} {} on the BMC", h.name, h.version)),
                message_id: None,
            });
        };
        match repo_st.state {
            BmcJobState::Completed | BmcJobState::CompletedWithErrors => {}
            // Still comparing/creating children, failed, or gone: as it reads.
            _ => return Ok(repo_st),
        }
        let states: Vec<BmcJobState> = res
            .after
            .iter()
            .filter_map(|d| self.status_of(d, DocKind::DellJob).ok())
            .map(|st| st.state)
            .collect();
        let waiting = |msg: String, state| JobStatus {
            state,
            percent: None,
            message: Some(msg),
            message_id: None,
        };
        if states.contains(&BmcJobState::AwaitingReboot) {
            return Ok(waiting(
                format!(
                    "repository job {}: staged jobs wait for a host reboot; {} {} follows",
                    h.repo, h.name, h.version
                ),
                BmcJobState::AwaitingReboot,
            ));
        }
        if states.iter().any(|st| !st.is_final()) {
            return Ok(waiting(
                format!(
                    "repository job {}: other packages install first; {} {} follows",
                    h.repo, h.name, h.version
                ),
                BmcJobState::Running,
            ));
        }
        let key = Self::child_key(h);
        let nothing_applicable =
            repo_st.message_id.as_deref().map(message_suffix) == Some("SUP029");
        let since = self
            .repo_idle
            .lock()
            .ok()
            .map(|mut m| *m.entry(key).or_insert_with(Instant::now));
        let within_grace =
            since.is_some_and(|t| t.elapsed() < self.cfg.repo_child_grace) && !nothing_applicable;
        if within_grace {
            return Ok(waiting(
                format!(
                    "repository job {} finished; waiting for the iDRAC to create the job for {} {}",
                    h.repo, h.name, h.version
                ),
                BmcJobState::Running,
            ));
        }
        // No job was ever made for it: the inventory decides (already
        // installed, or the iDRAC found it not applicable).
        Ok(JobStatus {
            state: BmcJobState::CompletedWithErrors,
            percent: Some(100),
            message: Some(format!(
                "repository job {} created no job for {} {}{}",
                h.repo,
                h.name,
                h.version,
                repo_st
                    .message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )),
            message_id: repo_st.message_id,
        })
    }
}

#[derive(Clone, Copy)]
enum DocKind {
    DellJob,
    Task,
    Job,
}

/// A repository share for InstallFromRepository.
#[derive(Debug, PartialEq, Eq)]
pub struct Share {
    /// `IPAddress` (host name or address).
    pub host: String,
    /// `ShareType`.
    pub kind: String,
    /// `ShareName`.
    pub path: String,
}

/// Splits `https://downloads.dell.com/catalog`, `nfs://10.0.0.1/share`,
/// `10.0.0.1:/share` (NFS) or `//10.0.0.1/share` (CIFS).
pub fn parse_share(uri: &str) -> Option<Share> {
    if let Some(rest) = uri.strip_prefix("//") {
        let (host, path) = rest.split_once('/')?;
        return Some(Share {
            host: host.into(),
            kind: "CIFS".into(),
            path: path.into(),
        });
    }
    if !uri.contains("://") {
        let (host, path) = uri.split_once(":/")?;
        return Some(Share {
            host: host.into(),
            kind: "NFS".into(),
            path: format!("/{path}"),
        });
    }
    let u = url::Url::parse(uri).ok()?;
    let kind = match u.scheme() {
        "http" => "HTTP",
        "https" => "HTTPS",
        "nfs" => "NFS",
        "cifs" | "smb" => "CIFS",
        "ftp" => "FTP",
        "tftp" => "TFTP",
        _ => return None,
    };
    let host = match u.port() {
        Some(p) => format!("{}:{p}", u.host_str()?),
        None => u.host_str()?.to_string(),
    };
    Some(Share {
        host,
        kind: kind.into(),
        path: u.path().trim_start_matches('/').to_string(),
    })
}

/// The component kind from an inventory member's name, Dell ComponentType
/// and component id.
pub fn kind_of(
    name: &str,
    component_type: Option<&str>,
    component_id: Option<&str>,
) -> ComponentKind {
    let n = name.to_ascii_lowercase();
    if component_id == Some("25227")
        || n.contains("idrac")
        || n.contains("remote access controller")
        || n == "bmc"
        || n.contains("baseboard management")
    {
        return ComponentKind::Bmc;
    }
    if component_type == Some("BIOS")
        || component_id == Some("159")
        || n.starts_with("bios")
        || n.contains(" bios")
    {
        return ComponentKind::Bios;
    }
    let has = |ws: &[&str]| ws.iter().any(|w| n.contains(w));
    if has(&["cpld", "fpga"]) {
        ComponentKind::Cpld
    } else if has(&["perc", "raid", "hba", "boss", "storage controller", "sas"]) {
        ComponentKind::Storage
    } else if has(&[
        "network",
        "ethernet",
        "nic",
        "mellanox",
        "connectx",
        "broadcom",
        "qlogic",
        "intel(r) eth",
        "fibre channel",
    ]) {
        ComponentKind::Nic
    } else if has(&["disk", "ssd", "hdd", "nvme", "drive"]) {
        ComponentKind::Drive
    } else if has(&["power supply", "psu"]) {
        ComponentKind::PowerSupply
    } else {
        ComponentKind::Other
    }
}

fn power_of(v: Option<&str>) -> PowerState {
    match v.map(str::to_ascii_lowercase).as_deref() {
        Some("on") => PowerState::On,
        Some("off") => PowerState::Off,
        Some("poweringon") => PowerState::PoweringOn,
        Some("poweringoff") => PowerState::PoweringOff,
        _ => PowerState::Unknown,
    }
}

fn health_of(v: Option<&str>) -> Health {
    match v.map(str::to_ascii_lowercase).as_deref() {
        Some("ok") => Health::Ok,
        Some("warning") => Health::Warning,
        Some("critical") => Health::Critical,
        _ => Health::Unknown,
    }
}

/// Whether a job document (DellJob or DMTF Job/Task) looks like an update of `package`.
fn job_matches(doc: &Value, package: &Package) -> bool {
    if let PackageSource::Repository { .. } = &package.source {
        return is_repository_job(doc);
    }
    if !is_firmware_job(doc) {
        return false;
    }
    let by_uri = match &package.source {
        PackageSource::ImageUri { uri } => doc.to_string().contains(uri.as_str()),
        PackageSource::LocalFile { path } => std::path::Path::new(path)
            .file_name()
            .map(|f| doc.to_string().contains(&*f.to_string_lossy()))
            .unwrap_or(false),
        PackageSource::Repository { .. } => false,
    };
    by_uri || names_component(doc, &package.name, package.kind)
}

/// A Dell `RepositoryUpdate` job.
fn is_repository_job(doc: &Value) -> bool {
    let name = doc
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let job_type = doc.get("JobType").and_then(Value::as_str).unwrap_or("");
    job_type == "RepositoryUpdate" || name.contains("repository update")
}

/// A firmware update job (or a job/task that does not say its type).
fn is_firmware_job(doc: &Value) -> bool {
    let job_type = doc.get("JobType").and_then(Value::as_str).unwrap_or("");
    job_type.is_empty() || job_type == "FirmwareUpdate"
}

/// Whether a job's name ("Firmware Update: BIOS") names this component.
fn names_component(doc: &Value, component: &str, kind: ComponentKind) -> bool {
    let name = doc
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let target = name
        .strip_prefix("firmware update:")
        .or_else(|| name.strip_prefix("update:"))
        .unwrap_or(&name)
        .trim()
        .to_string();
    let pname = component.to_ascii_lowercase();
    let by_kind = match kind {
        ComponentKind::Bmc => target.contains("idrac") || target.contains("bmc"),
        ComponentKind::Bios => target.contains("bios"),
        _ => false,
    };
    by_kind || (!target.is_empty() && (pname.contains(&target) || target.contains(&pname)))
}

/// Sets `key` on a JSON object built by this module (a no-op on anything
/// else, which the builders never make).
fn set_field(v: &mut Value, key: &str, value: Value) {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_string(), value);
    }
}

fn job_id(doc: &Value) -> &str {
    doc.get("Id").and_then(Value::as_str).unwrap_or("")
}

/// What the job queue says about one package of a repository job.
struct Resolution {
    /// The package's child job: id and document.
    child: Option<(String, Value)>,
    /// Whether the child was named by `GetRepoBasedUpdateList` with the
    /// package's version (not only guessed from a job name).
    child_listed: bool,
    /// Firmware jobs created after the repository job (siblings included).
    after: Vec<Value>,
}

#[async_trait]
impl BmcDriver for RedfishDriver {
    async fn system(&self) -> Result<SystemInfo, bmc::Error> {
        let (sys, mgr) = self.system_docs().await?;
        let txt = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let service_tag = txt(&sys, "/SKU")
            .filter(|s| !s.is_empty())
            .or_else(|| txt(&sys, "/Oem/Dell/DellSystem/ChassisServiceTag"));
        let system_id = sys
            .pointer("/Oem/Dell/DellSystem/SystemID")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .and_then(|n| u32::try_from(n).ok());
        let health = sys
            .pointer("/Status/HealthRollup")
            .or_else(|| sys.pointer("/Status/Health"))
            .and_then(Value::as_str);
        Ok(SystemInfo {
            model: txt(&sys, "/Model"),
            service_tag: if self.dell() {
                service_tag
            } else {
                txt(&sys, "/SerialNumber").or(service_tag)
            },
            system_id,
            power: power_of(sys.get("PowerState").and_then(Value::as_str)),
            health: health_of(health),
            bios_version: txt(&sys, "/BiosVersion"),
            bmc_version: mgr.as_ref().and_then(|m| txt(m, "/FirmwareVersion")),
            bmc_model: mgr.as_ref().and_then(|m| txt(m, "/Model")),
            manufacturer: txt(&sys, "/Manufacturer").filter(|m| !m.trim().is_empty()),
        })
    }

    async fn inventory(&self) -> Result<Inventory, bmc::Error> {
        let s = self.services().await?;
        if s.firmware_inventory.is_none() && self.dell() {
            return Err(self.err(
                ErrorKind::NotSupported,
                "UpdateService has no FirmwareInventory",
            ));
        }
        // Generic services without one report BIOS and BMC versions.
        let mut components: Vec<FirmwareComponent> = self
            .inventory_members(&s)
            .await?
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        // iDRAC lists some components as both Current- and Installed-.
        let mut seen = std::collections::HashSet::new();
        components.sort_by_key(|c| !c.id.starts_with("Installed-"));
        components.retain(|c| {
            let fqdd = c.id.split_once("__").map(|(_, f)| f.to_string());
            seen.insert((
                c.installed,
                c.component_id.clone(),
                c.version.clone(),
                fqdd,
                c.name.clone(),
            ))
        });
        Ok(Inventory { components })
    }

    /// One read of the system document (not the manager's too, as `system`).
    async fn power(&self) -> Result<PowerState, bmc::Error> {
        let (s, fresh) = self.services_fresh().await?;
        let sys = match fresh {
            Some(f) => f.system,
            None => self.client.get(&s.system).await?,
        };
        Ok(power_of(sys.get("PowerState").and_then(Value::as_str)))
    }

    /// On iDRAC the Lifecycle Controller's status is read first and the
    /// system (for its power state) only when the LC is ready: while a host
    /// reboots through staged updates, each poll then costs one request, not
    /// two. Not ready, the power is `Unknown` (not read); [`BmcDriver::power`]
    /// reads it alone. Settling after a reset sends nothing.
    async fn readiness(&self) -> Result<Readiness, bmc::Error> {
        let (s, fresh) = self.services_fresh().await?;
        let settling = |power| {
            self.settling().map(|left| Readiness {
                ready: false,
                power,
                detail: Some(format!("settling after reset ({}s left)", left.as_secs())),
            })
        };
        let fresh_system = fresh.map(|f| f.system);
        if let (true, Some(lc)) = (self.dell(), &s.dell_lc_service) {
            if let Some(r) = settling(PowerState::Unknown) {
                return Ok(r);
            }
            let target = self
                .action_target(lc, "DellLCService.GetRemoteServicesAPIStatus")
                .await?;
            let r = self.client.action(&target, &json!({})).await?;
            let b = r.body.unwrap_or(Value::Null);
            let f = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let lc_status = f("LCStatus");
            let status = f("Status");
            let ready = lc_status == "Ready" && (status.is_empty() || status == "Ready");
            let power = if ready {
                let sys = match fresh_system {
                    Some(sys) => sys,
                    None => self.client.get(&s.system).await?,
                };
                power_of(sys.get("PowerState").and_then(Value::as_str))
            } else {
                PowerState::Unknown
            };
            return Ok(Readiness {
                ready,
                power,
                detail: Some(format!(
                    "LCStatus={lc_status} RTStatus={} ServerStatus={} Status={status}",
                    f("RTStatus"),
                    f("ServerStatus")
                )),
            });
        }
        let sys = match fresh_system {
            Some(sys) => sys,
            None => self.client.get(&s.system).await?,
        };
        let power = power_of(sys.get("PowerState").and_then(Value::as_str));
        if let Some(r) = settling(power) {
            return Ok(r);
        }
        // Generic: the update service is enabled and the system answers.
        let state = sys
            .pointer("/Status/State")
            .and_then(Value::as_str)
            .unwrap_or("Enabled");
        let ready = !matches!(
            state,
            "Starting" | "Updating" | "InTest" | "Deferring" | "Quiesced"
        );
        Ok(Readiness {
            ready,
            power,
            detail: Some(format!("System Status.State={state}")),
        })
    }

    async fn start_update(
        &self,
        package: &Package,
        options: &UpdateOptions,
    ) -> Result<UpdateStart, bmc::Error> {
        let s = self.services().await?;
        let repository = matches!(package.source, PackageSource::Repository { .. });
        if repository
            && let Some(h) = self
                .locate_repository_job(&s, package, false, &options.known_jobs)
                .await?
        {
            // One repository job installs every applicable package of the
            // catalog: follow it for this package instead of starting another.
            tracing::info!(host = %self.host(), component = %package.component_id, repo = %h.repo, child = ?h.child, "package covered by a repository job already on the BMC");
            return Ok(UpdateStart::Submitted(h.to_job()));
        }
        let result = match &package.source {
            PackageSource::ImageUri { uri } => {
                self.simple_update(&s, uri, options, Some(package)).await
            }
            PackageSource::LocalFile { path } => self.upload(&s, path, options).await,
            PackageSource::Repository {
                repository_uri,
                catalog_file,
            } => {
                self.repository_update(&s, repository_uri, catalog_file, options)
                    .await
            }
        };
        match result {
            Ok(reply) => {
                let job = self.handle_of(&reply)?;
                if repository {
                    // The repository job's own Completed is not this
                    // package's: poll_job follows its child job.
                    let h = RepoHandle::for_package(job.id, job.location, None, package);
                    return Ok(UpdateStart::Submitted(h.to_job()));
                }
                Ok(UpdateStart::Submitted(job))
            }
            Err(e) if e.message_id.as_deref().map(message_suffix) == Some("SUP029") => {
                tracing::info!(host = %self.host(), component = %package.component_id, "BMC reports firmware already current (SUP029)");
                Ok(UpdateStart::AlreadyInstalled)
            }
            Err(e) => Err(e),
        }
    }

    async fn job_ids(&self) -> Result<Option<Vec<String>>, bmc::Error> {
        let s = self.services().await?;
        let coll = match (self.dell(), &s.dell_jobs, &s.tasks) {
            (true, Some(j), _) => j.clone(),
            (_, _, Some(t)) => t.clone(),
            _ => return Ok(None),
        };
        let doc = self.client.get(&coll).await?;
        Ok(Some(
            members(&doc)
                .into_iter()
                .filter_map(|m| {
                    m.get("Id")
                        .and_then(Value::as_str)
                        .or_else(|| m.get("@odata.id").and_then(Value::as_str).map(last_segment))
                        .map(str::to_owned)
                })
                .collect(),
        ))
    }

    async fn find_job(&self, query: &JobQuery<'_>) -> Result<JobSearch, bmc::Error> {
        let package = query.package;
        let Some(known) = query.known_jobs else {
            return Ok(JobSearch::Unknowable {
                reason: "the intent recorded no job baseline".into(),
            });
        };
        let s = self.services().await?;
        if let PackageSource::Repository { .. } = &package.source
            && self.dell()
        {
            return Ok(
                match self.locate_repository_job(&s, package, true, known).await? {
                    Some(h) => JobSearch::Found(h.to_job()),
                    None => JobSearch::NotFound,
                },
            );
        }
        let (coll, kind) = match (self.dell(), &s.dell_jobs, &s.tasks) {
            (true, Some(j), _) => (j.clone(), DocKind::DellJob),
            (_, _, Some(t)) => (t.clone(), DocKind::Task),
            _ => {
                return Ok(JobSearch::Unknowable {
                    reason: "the BMC has no task service to list jobs".into(),
                });
            }
        };
        let doc = if s.expand {
            self.client.get_expanded(&coll).await?
        } else {
            self.client.get(&coll).await?
        };
        let mut candidates = Vec::new();
        for m in members(&doc) {
            let d = if m.get("Id").is_some() {
                m.clone()
            } else if let Some(l) = m.get("@odata.id").and_then(Value::as_str) {
                match self.job_doc(l).await? {
                    Some(d) => d,
                    None => continue,
                }
            } else {
                continue;
            };
            let Ok(st) = self.status_of(&d, kind) else {
                continue;
            };
            // While it downloads, iDRAC names the job "Firmware Update:
            // update:new": it cannot be told apart, and a duplicate flash is
            // worse than polling an extra job, so an unfinished one counts.
            let placeholder = d
                .get("Name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.to_ascii_lowercase().contains("update:new"));
            if !(job_matches(&d, package) || (placeholder && !st.state.is_final())) {
                continue;
            }
            let id = d
                .get("Id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if id.is_empty() || known.contains(&id) {
                continue;
            }
            let loc = d
                .get("@odata.id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}/{id}", coll.trim_end_matches('/')));
            candidates.push((st.state.is_final(), id, loc));
        }
        // An unfinished job first; among equals the newest (JIDs grow with time).
        candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        Ok(match candidates.into_iter().next() {
            Some((_, id, loc)) => JobSearch::Found(JobHandle {
                id,
                location: Some(loc),
            }),
            None => JobSearch::NotFound,
        })
    }

    async fn poll_job(&self, job: &JobHandle) -> Result<JobStatus, bmc::Error> {
        let s = self.services().await?;
        match RepoHandle::parse(job) {
            Some(h) => self.poll_repository(&s, &h).await,
            None => self.poll_plain(&s, job).await,
        }
    }

    async fn reset(&self, kind: ResetKind) -> Result<(), bmc::Error> {
        let s = self.services().await?;
        let target = s.system_reset.clone().ok_or_else(|| {
            self.err(
                ErrorKind::NotSupported,
                "system has no ComputerSystem.Reset action",
            )
        })?;
        let wanted = match kind {
            ResetKind::GracefulRestart => "GracefulRestart",
            ResetKind::ForceRestart => "ForceRestart",
            ResetKind::PowerCycle => "PowerCycle",
            ResetKind::On => "On",
            ResetKind::GracefulShutdown => "GracefulShutdown",
            ResetKind::ForceOff => "ForceOff",
        };
        if !s.reset_types.is_empty() && !s.reset_types.iter().any(|t| t == wanted) {
            return Err(self.err(
                ErrorKind::NotSupported,
                format!(
                    "ResetType {wanted} not allowed (allowed: {})",
                    s.reset_types.join(", ")
                ),
            ));
        }
        self.client
            .action(&target, &json!({"ResetType": wanted}))
            .await?;
        if !matches!(kind, ResetKind::GracefulShutdown | ResetKind::ForceOff) {
            self.mark_reset();
        }
        Ok(())
    }

    async fn rollback(
        &self,
        component: &FirmwareComponent,
    ) -> Result<Option<JobHandle>, bmc::Error> {
        if !self.dell() {
            return Err(self.err(
                ErrorKind::NotSupported,
                "rollback needs iDRAC's Previous- images",
            ));
        }
        let s = self.services().await?;
        let previous = if component.installed {
            let inv = self.inventory().await?;
            let key = component
                .component_id
                .clone()
                .unwrap_or_else(|| component.name.clone());
            inv.previous_for(&key).cloned().ok_or_else(|| {
                self.err(
                    ErrorKind::NotFound,
                    format!("no Previous- image for {} on the BMC", component.name),
                )
            })?
        } else {
            component.clone()
        };
        let fi = s.firmware_inventory.clone().ok_or_else(|| {
            self.err(
                ErrorKind::NotSupported,
                "UpdateService has no FirmwareInventory",
            )
        })?;
        let uri = format!("{}/{}", fi.trim_end_matches('/'), previous.id);
        let opts = UpdateOptions {
            apply: bmc::ApplyTime::Immediate,
            force: true,
            known_jobs: Vec::new(),
        };
        let reply = self.simple_update(&s, &uri, &opts, None).await?;
        if reply.location.is_none() && reply.body.as_ref().and_then(|b| b.get("Id")).is_none() {
            return Ok(None);
        }
        self.handle_of(&reply).map(Some)
    }

    async fn clear_job_queue(&self) -> Result<(), bmc::Error> {
        let s = self.services().await?;
        if self.dell() {
            let svc = s.dell_job_service.clone().ok_or_else(|| {
                self.err(ErrorKind::NotSupported, "no DellJobService on this iDRAC")
            })?;
            let target = self
                .action_target(&svc, "DellJobService.DeleteJobQueue")
                .await?;
            self.client
                .action(&target, &json!({"JobID": "JID_CLEARALL"}))
                .await?;
            return Ok(());
        }
        // DMTF: deleting a task cancels it; only unfinished ones are touched.
        let Some(tasks) = &s.tasks else { return Ok(()) };
        let coll = self.client.get(tasks).await?;
        for m in members(&coll) {
            let Some(l) = m.get("@odata.id").and_then(Value::as_str) else {
                continue;
            };
            let Some(doc) = self.job_doc(l).await? else {
                continue;
            };
            if let Some(st) = state::from_task(&doc)
                && !st.state.is_final()
            {
                match self.client.delete(l).await {
                    Ok(_) => {}
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn close(&self) -> Result<(), bmc::Error> {
        self.client.logout().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse() {
        assert_eq!(
            parse_share("https://downloads.dell.com/catalog").unwrap(),
            Share {
                host: "downloads.dell.com".into(),
                kind: "HTTPS".into(),
                path: "catalog".into()
            }
        );
        assert_eq!(parse_share("10.0.0.1:/exports/repo").unwrap().kind, "NFS");
        assert_eq!(
            parse_share("10.0.0.1:/exports/repo").unwrap().path,
            "/exports/repo"
        );
        assert_eq!(parse_share("//10.0.0.2/share/dir").unwrap().kind, "CIFS");
        assert_eq!(
            parse_share("http://127.0.0.1:8080/repo").unwrap().host,
            "127.0.0.1:8080"
        );
        assert!(parse_share("gopher://x/y").is_none());
    }

    #[test]
    fn kinds_from_names() {
        assert_eq!(
            kind_of(
                "Integrated Dell Remote Access Controller",
                None,
                Some("25227")
            ),
            ComponentKind::Bmc
        );
        assert_eq!(
            kind_of("BIOS", Some("BIOS"), Some("159")),
            ComponentKind::Bios
        );
        assert_eq!(
            kind_of("Mellanox Network Adapter - B8:CE", Some("FRMW"), Some("0")),
            ComponentKind::Nic
        );
        assert_eq!(
            kind_of("PERC H740P Mini", None, None),
            ComponentKind::Storage
        );
        assert_eq!(kind_of("System CPLD", None, None), ComponentKind::Cpld);
        assert_eq!(
            kind_of("Power Supply.Slot.1", None, None),
            ComponentKind::PowerSupply
        );
        assert_eq!(
            kind_of("Dell 64 Bit uEFI Diagnostics", None, None),
            ComponentKind::Other
        );
    }

    #[test]
    fn last_segments() {
        assert_eq!(
            last_segment("/redfish/v1/TaskService/Tasks/JID_123"),
            "JID_123"
        );
        assert_eq!(
            last_segment("/redfish/v1/TaskService/TaskMonitors/JID_1/"),
            "JID_1"
        );
    }
}
