//! The vim25 client: one vCenter, one session, typed calls.
//!
//! The session is the `vmware_soap_session` cookie that `SessionManager.Login`
//! sets. It is created lazily, shared by concurrent callers, and replaced once
//! when the server says `NotAuthenticated` (vCenter restarted, session idle
//! timeout): the failed call is then retried once with the new session.

use crate::config::{Auth, VcenterConfig};
use crate::error::VimError;
use crate::soap::{Answer, FilterSpec, MoRef, ObjectContent, PropSpec, Request, Traversal};
use crate::task::{TaskInfo, wait_for_task};
use crate::xml::{self, Element};
use firmflow_core::cluster::{ClusterHostState, Connection, Status};
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

const SESSION_COOKIE: &str = "vmware_soap_session";

/// The managed objects a session starts from (`ServiceContent`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceContent {
    /// Inventory root folder.
    pub root_folder: MoRef,
    /// The property collector.
    pub property_collector: MoRef,
    /// The view manager (absent on some ESXi builds).
    pub view_manager: Option<MoRef>,
    /// The session manager.
    pub session_manager: MoRef,
    /// `about.apiVersion`, e.g. `8.0.2.0`.
    pub api_version: String,
    /// `about.apiType`: `VirtualCenter` or `HostAgent`.
    pub api_type: String,
}

impl ServiceContent {
    fn from_element(e: &Element) -> Option<Self> {
        let r = |name: &str| e.child(name).and_then(MoRef::from_element);
        Some(Self {
            root_folder: r("rootFolder")?,
            property_collector: r("propertyCollector")?,
            view_manager: r("viewManager"),
            session_manager: r("sessionManager")?,
            api_version: e.text_at(&["about", "apiVersion"]).unwrap_or("").into(),
            api_type: e.text_at(&["about", "apiType"]).unwrap_or("").into(),
        })
    }
}

/// A cluster as vCenter reports it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// Cluster name.
    pub name: String,
    /// `overallStatus`.
    pub overall_status: Status,
    /// DRS enabled.
    pub drs_enabled: bool,
    /// DRS default VM behaviour is `fullyAutomated`.
    pub drs_fully_automated: bool,
    /// vSphere HA enabled.
    pub ha_enabled: bool,
    /// Hosts, by name.
    pub hosts: Vec<ClusterHostState>,
}

#[derive(Default)]
struct SessionState {
    content: Option<ServiceContent>,
    cookie: Option<SecretString>,
    /// Bumped at every login, so a caller that saw `NotAuthenticated` on an
    /// old session does not throw away a newer one another caller made.
    generation: u64,
}

/// A client of one vCenter.
pub struct VimClient {
    cfg: VcenterConfig,
    sdk_url: Url,
    origin: String,
    http: reqwest::Client,
    state: Mutex<SessionState>,
}

impl std::fmt::Debug for VimClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VimClient")
            .field("sdk_url", &self.sdk_url.as_str())
            .finish_non_exhaustive()
    }
}

/// `scheme://host:port` of a vCenter URL, lower-cased, used to match a host's
/// `vcenter_url` to a configured vCenter whatever path or case it carries.
pub fn vcenter_origin(url: &str) -> Option<String> {
    let u = Url::parse(url.trim()).ok()?;
    let host = u.host_str()?.to_ascii_lowercase();
    let port = u.port_or_known_default()?;
    Some(format!("{}://{}:{}", u.scheme(), host, port))
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn excerpt(body: &str) -> String {
    let t: String = body.chars().take(200).collect();
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads one SOAP response: the operation's answer element, or the fault,
/// HTTP error or protocol error it is. Pure, so the fuzz target
/// (`fuzz/fuzz_targets/soap_answer.rs`) drives exactly what the client runs.
pub(crate) fn read_answer(method: &str, status: u16, body: &str) -> Result<Element, VimError> {
    let success = (200..300).contains(&status);
    match xml::parse(body).ok().and_then(crate::soap::read_envelope) {
        Some(Answer::Fault(fault)) => Err(VimError::Fault {
            method: method.into(),
            fault,
        }),
        Some(Answer::Ok(el)) if success => Ok(el),
        _ if !success => Err(VimError::Http {
            method: method.into(),
            status,
            excerpt: excerpt(body),
        }),
        _ => Err(VimError::Protocol {
            method: method.into(),
            message: format!("not a SOAP answer: {}", excerpt(body)),
        }),
    }
}

/// What the readers of vCenter answers make of one response, for fuzzing:
/// the decoded answer and, when it decodes, every reader run on it (service
/// content, property-collector objects with host states, task info, the
/// "not authenticated" read). Returns a short description; never panics on
/// any input (the fuzz target's property).
#[doc(hidden)]
pub fn fuzz_read_response(status: u16, body: &str) -> Result<String, VimError> {
    let el = read_answer("Fuzz", status, body)?;
    let mut out = String::new();
    if let Some(fault) = crate::soap::unauthenticated_read(&el) {
        out.push_str(&format!("unauthenticated: {fault}; "));
    }
    let returnval = el.child("returnval").unwrap_or(&el);
    if let Some(c) = ServiceContent::from_element(returnval) {
        out.push_str(&format!("service content {}; ", c.api_version));
    }
    if let Some(t) = crate::task::TaskInfo::from_element(returnval) {
        out.push_str(&format!("task {:?}; ", t.state));
    }
    for objects in [&el, returnval] {
        for o in objects.children_named("objects") {
            if let Some(o) = ObjectContent::from_element(o) {
                match host_state(&o) {
                    Ok(h) => out.push_str(&format!("host {}; ", h.is_online())),
                    Err(e) => out.push_str(&format!("host error {e}; ")),
                }
            }
        }
    }
    Ok(out)
}

fn status_of(s: &str) -> Status {
    match s {
        "green" => Status::Green,
        "yellow" => Status::Yellow,
        "red" => Status::Red,
        _ => Status::Gray,
    }
}

fn host_state(o: &ObjectContent) -> Result<ClusterHostState, VimError> {
    let protocol = |m: String| VimError::Protocol {
        method: "RetrievePropertiesEx".into(),
        message: m,
    };
    let name = o.text("name").unwrap_or(&o.obj.value).to_string();
    let connection = match o.text("runtime.connectionState") {
        Some("connected") => Connection::Connected,
        Some("disconnected") => Connection::Disconnected,
        Some("notResponding") => Connection::NotResponding,
        other => {
            // Unknown or unreadable: never count such a host as serving.
            tracing::warn!(host = %name, state = ?other, "unexpected host connection state");
            Connection::NotResponding
        }
    };
    let in_maintenance = match o.text("runtime.inMaintenanceMode") {
        Some("true") => true,
        Some("false") => false,
        other => {
            let why = o
                .missing("runtime.inMaintenanceMode")
                .map_or_else(|| format!("{other:?}"), |f| format!("missing ({f})"));
            return Err(protocol(format!(
                "host {name} ({}): runtime.inMaintenanceMode is {why}",
                o.obj.value
            )));
        }
    };
    Ok(ClusterHostState {
        host_moid: o.obj.value.clone(),
        name,
        connection,
        in_maintenance,
        powered_on: o.text("runtime.powerState") == Some("poweredOn"),
        overall_status: o
            .text("summary.overallStatus")
            .map_or(Status::Gray, status_of),
    })
}

const HOST_STATE_PATHS: [&str; 5] = [
    "name",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "runtime.powerState",
    "summary.overallStatus",
];

impl VimClient {
    /// A client; no network traffic until the first call.
    pub fn new(cfg: VcenterConfig) -> Result<Self, VimError> {
        let mut sdk_url = Url::parse(cfg.url.trim())
            .map_err(|e| VimError::Config(format!("vCenter URL {:?}: {e}", cfg.url)))?;
        if !matches!(sdk_url.scheme(), "https" | "http") {
            return Err(VimError::Config(format!(
                "vCenter URL {:?}: scheme must be https",
                cfg.url
            )));
        }
        if sdk_url.path() == "/" || sdk_url.path().is_empty() {
            sdk_url.set_path("/sdk");
        }
        let origin = vcenter_origin(sdk_url.as_str())
            .ok_or_else(|| VimError::Config(format!("vCenter URL {:?} has no host", cfg.url)))?;
        let mut b = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.connect_timeout)
            .user_agent(concat!("firmflow-vcenter/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &cfg.tls.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| VimError::Config(format!("CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| VimError::Config(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(VimError::Config(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            // Pinning: trust this CA only, not the web PKI.
            b = b.tls_built_in_root_certs(false);
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if cfg.tls.accept_invalid_certs {
            tracing::warn!(
                vcenter = %origin,
                "TLS certificate verification is DISABLED for this vCenter (accept_invalid_certs)"
            );
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b
            .build()
            .map_err(|e| VimError::Config(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Self {
            cfg,
            sdk_url,
            origin,
            http,
            state: Mutex::new(SessionState::default()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VcenterConfig {
        &self.cfg
    }

    /// `scheme://host:port` of this vCenter (see [`vcenter_origin`]).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// One HTTP round trip, no session handling.
    async fn send(
        &self,
        req: &Request<'_>,
        cookie: Option<&SecretString>,
        api_version: Option<&str>,
    ) -> Result<(Element, Option<SecretString>), VimError> {
        let method = req.method();
        let version = self.cfg.api_version.as_deref().or(api_version);
        let action = match version {
            Some(v) if !v.is_empty() => format!("urn:vim25/{v}"),
            _ => "urn:vim25".to_string(),
        };
        let mut rb = self
            .http
            .post(self.sdk_url.clone())
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", action)
            .body(req.envelope());
        if let Some(c) = cookie {
            let mut v =
                HeaderValue::from_str(c.expose_secret()).map_err(|_| VimError::Protocol {
                    method: method.into(),
                    message: "session cookie is not a valid header value".into(),
                })?;
            v.set_sensitive(true);
            rb = rb.header(COOKIE, v);
        }
        tracing::debug!(vcenter = %self.origin, method, "vim25 call");
        let resp = rb.send().await.map_err(|e| {
            let chain = error_chain(&e);
            if chain.to_ascii_lowercase().contains("certificate") {
                VimError::Tls {
                    method: method.into(),
                    message: chain,
                }
            } else {
                VimError::Transport {
                    method: method.into(),
                    message: chain,
                }
            }
        })?;
        let status = resp.status();
        let new_cookie = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|kv| kv.trim_start().starts_with(SESSION_COOKIE))
            .map(|kv| SecretString::from(kv.trim().to_string()));
        let body = resp.text().await.map_err(|e| VimError::Transport {
            method: method.into(),
            message: error_chain(&e),
        })?;
        read_answer(method, status.as_u16(), &body).map(|el| (el, new_cookie))
    }

    /// The service content, fetched once.
    pub async fn service_content(&self) -> Result<ServiceContent, VimError> {
        let mut st = self.state.lock().await;
        self.content_locked(&mut st).await
    }

    async fn content_locked(&self, st: &mut SessionState) -> Result<ServiceContent, VimError> {
        if let Some(c) = &st.content {
            return Ok(c.clone());
        }
        let (el, _) = self
            .send(&Request::RetrieveServiceContent, None, None)
            .await?;
        let c = el
            .child("returnval")
            .and_then(ServiceContent::from_element)
            .ok_or_else(|| VimError::Protocol {
                method: "RetrieveServiceContent".into(),
                message: "no rootFolder/propertyCollector/sessionManager".into(),
            })?;
        st.content = Some(c.clone());
        Ok(c)
    }

    /// A live session (logging in when there is none): its cookie and generation.
    async fn session(&self) -> Result<(SecretString, u64, String), VimError> {
        let mut st = self.state.lock().await;
        let content = self.content_locked(&mut st).await?;
        if let Some(c) = &st.cookie {
            return Ok((c.clone(), st.generation, content.api_version));
        }
        let cred = match &self.cfg.auth {
            Auth::Credential(c) => c.clone(),
            Auth::Provider {
                provider,
                reference,
            } => provider.resolve(reference).await?,
        };
        let req = Request::Login {
            session_manager: &content.session_manager,
            user: &cred.username,
            password: cred.expose(),
        };
        let (_, cookie) = self.send(&req, None, Some(&content.api_version)).await?;
        let cookie = cookie.ok_or_else(|| VimError::Protocol {
            method: "Login".into(),
            message: format!("no {SESSION_COOKIE} cookie in the answer"),
        })?;
        st.generation += 1;
        st.cookie = Some(cookie.clone());
        tracing::info!(vcenter = %self.origin, user = %cred.username, "logged in to vCenter");
        Ok((cookie, st.generation, content.api_version))
    }

    /// Logs in now (otherwise the first call does).
    pub async fn login(&self) -> Result<(), VimError> {
        self.session().await.map(|_| ())
    }

    /// Ends the session, if any.
    pub async fn logout(&self) -> Result<(), VimError> {
        let mut st = self.state.lock().await;
        let (Some(cookie), Some(content)) = (st.cookie.take(), st.content.clone()) else {
            return Ok(());
        };
        let req = Request::Logout {
            session_manager: &content.session_manager,
        };
        match self
            .send(&req, Some(&cookie), Some(&content.api_version))
            .await
        {
            Ok(_) => Ok(()),
            // Already gone: the goal is reached.
            Err(e) if e.is_not_authenticated() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A call with the session, reporting a lost session on reads as the
    /// `NotAuthenticated` fault it is.
    async fn send_checked(
        &self,
        req: &Request<'_>,
        cookie: &SecretString,
        version: &str,
    ) -> Result<(Element, Option<SecretString>), VimError> {
        let (el, c) = self.send(req, Some(cookie), Some(version)).await?;
        if let Some(fault) = crate::soap::unauthenticated_read(&el) {
            return Err(VimError::Fault {
                method: req.method().into(),
                fault,
            });
        }
        Ok((el, c))
    }

    /// A call with the session; on `NotAuthenticated`, logs in again and
    /// retries once.
    async fn call(&self, req: &Request<'_>) -> Result<Element, VimError> {
        let (cookie, generation, version) = self.session().await?;
        match self.send_checked(req, &cookie, &version).await {
            Err(e) if e.is_not_authenticated() => {
                tracing::warn!(vcenter = %self.origin, method = req.method(), "vCenter session lost; logging in again");
                {
                    let mut st = self.state.lock().await;
                    if st.generation == generation {
                        st.cookie = None;
                    }
                }
                let (cookie, _, version) = self.session().await?;
                self.send_checked(req, &cookie, &version)
                    .await
                    .map(|(el, _)| el)
            }
            other => other.map(|(el, _)| el),
        }
    }

    /// Runs a property-collector query, following continuation tokens.
    pub(crate) async fn retrieve(&self, spec: &FilterSpec) -> Result<Vec<ObjectContent>, VimError> {
        let content = self.service_content().await?;
        let pc = &content.property_collector;
        let mut el = self
            .call(&Request::RetrievePropertiesEx {
                collector: pc,
                spec,
            })
            .await?;
        let mut out = Vec::new();
        // A bounded number of pages: a server that keeps handing out tokens
        // must not keep us here forever.
        for _ in 0..10_000 {
            let Some(ret) = el.child("returnval") else {
                break;
            };
            out.extend(
                ret.children_named("objects")
                    .filter_map(ObjectContent::from_element),
            );
            let Some(token) = ret.text_at(&["token"]).map(str::to_string) else {
                break;
            };
            el = self
                .call(&Request::ContinueRetrievePropertiesEx {
                    collector: pc,
                    token: &token,
                })
                .await?;
        }
        Ok(out)
    }

    async fn retrieve_one(
        &self,
        obj: &MoRef,
        paths: Vec<&'static str>,
        kind: &'static str,
    ) -> Result<ObjectContent, VimError> {
        let spec = FilterSpec {
            obj: obj.clone(),
            skip: false,
            traverse: vec![],
            props: vec![PropSpec { kind, paths }],
        };
        self.retrieve(&spec)
            .await?
            .into_iter()
            .find(|o| o.obj == *obj)
            .ok_or_else(|| not_found("RetrievePropertiesEx", obj))
    }

    /// The cluster's hosts with their live state, its overall status and its
    /// DRS/HA configuration, in one property-collector query.
    pub async fn cluster_snapshot(&self, cluster_moid: &str) -> Result<ClusterSnapshot, VimError> {
        let cluster = MoRef::new("ClusterComputeResource", cluster_moid);
        let spec = FilterSpec {
            obj: cluster.clone(),
            skip: false,
            traverse: vec![Traversal {
                kind: "ClusterComputeResource",
                path: "host",
            }],
            props: vec![
                PropSpec {
                    kind: "ClusterComputeResource",
                    paths: vec!["name", "overallStatus", "configurationEx"],
                },
                PropSpec {
                    kind: "HostSystem",
                    paths: HOST_STATE_PATHS.to_vec(),
                },
            ],
        };
        let objects = self.retrieve(&spec).await?;
        let c = objects
            .iter()
            .find(|o| o.obj == cluster)
            .ok_or_else(|| not_found("RetrievePropertiesEx", &cluster))?;
        let cfg = c.prop("configurationEx");
        let drs_enabled = cfg.and_then(|v| v.bool_at(&["drsConfig", "enabled"])) == Some(true);
        let mut hosts = objects
            .iter()
            .filter(|o| o.obj.kind == "HostSystem")
            .map(host_state)
            .collect::<Result<Vec<_>, _>>()?;
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ClusterSnapshot {
            name: c.text("name").unwrap_or(cluster_moid).to_string(),
            overall_status: c.text("overallStatus").map_or(Status::Gray, status_of),
            drs_enabled,
            // An unset behaviour is not assumed to be fully automated: a
            // wrong "yes" would let evacuation stall on a prompt.
            drs_fully_automated: drs_enabled
                && cfg.and_then(|v| v.text_at(&["drsConfig", "defaultVmBehavior"]))
                    == Some("fullyAutomated"),
            ha_enabled: cfg.and_then(|v| v.bool_at(&["dasConfig", "enabled"])) == Some(true),
            hosts,
        })
    }

    /// One host's live state.
    pub async fn host_state(&self, host_moid: &str) -> Result<ClusterHostState, VimError> {
        let host = MoRef::new("HostSystem", host_moid);
        let o = self
            .retrieve_one(&host, HOST_STATE_PATHS.to_vec(), "HostSystem")
            .await?;
        host_state(&o)
    }

    /// Starts `EnterMaintenanceMode_Task`; returns the task.
    pub async fn start_enter_maintenance(
        &self,
        host_moid: &str,
        timeout: Duration,
    ) -> Result<MoRef, VimError> {
        let host = MoRef::new("HostSystem", host_moid);
        let el = self
            .call(&Request::EnterMaintenanceMode {
                host: &host,
                timeout_secs: timeout_secs(timeout),
                evacuate_powered_off_vms: self.cfg.evacuate_powered_off_vms,
            })
            .await?;
        task_ref("EnterMaintenanceMode_Task", &el)
    }

    /// Starts `ExitMaintenanceMode_Task`; returns the task.
    pub async fn start_exit_maintenance(
        &self,
        host_moid: &str,
        timeout: Duration,
    ) -> Result<MoRef, VimError> {
        let host = MoRef::new("HostSystem", host_moid);
        let el = self
            .call(&Request::ExitMaintenanceMode {
                host: &host,
                timeout_secs: timeout_secs(timeout),
            })
            .await?;
        task_ref("ExitMaintenanceMode_Task", &el)
    }

    /// A task's `info`.
    pub async fn task_info(&self, task: &MoRef) -> Result<TaskInfo, VimError> {
        let o = self.retrieve_one(task, vec!["info"], "Task").await?;
        o.prop("info")
            .and_then(TaskInfo::from_element)
            .ok_or_else(|| VimError::Protocol {
                method: "RetrievePropertiesEx".into(),
                message: format!("task {} has no readable info", task.value),
            })
    }

    /// Waits for a task until `deadline` (polling with backoff).
    pub async fn wait_task(
        &self,
        what: &str,
        task: &MoRef,
        deadline: Instant,
        allowance: Duration,
    ) -> Result<TaskInfo, VimError> {
        wait_for_task(
            what,
            || self.task_info(task),
            deadline,
            allowance,
            self.cfg.task_poll_initial,
            self.cfg.task_poll_max,
        )
        .await
    }

    /// Asks vCenter to cancel a task (best effort; not every task can be).
    pub async fn cancel_task(&self, task: &MoRef) -> Result<(), VimError> {
        self.call(&Request::CancelTask { task }).await.map(|_| ())
    }

    /// Every host of the inventory (for discovery): a container view of
    /// `HostSystem` from the root folder, read in one query, then destroyed.
    pub(crate) async fn all_hosts(
        &self,
        paths: Vec<&'static str>,
    ) -> Result<Vec<ObjectContent>, VimError> {
        let content = self.service_content().await?;
        let vm = content
            .view_manager
            .as_ref()
            .ok_or_else(|| VimError::Protocol {
                method: "CreateContainerView".into(),
                message: "this server has no ViewManager (not a vCenter?)".into(),
            })?;
        let el = self
            .call(&Request::CreateContainerView {
                view_manager: vm,
                container: &content.root_folder,
                kind: "HostSystem",
            })
            .await?;
        let view = el
            .child("returnval")
            .and_then(MoRef::from_element)
            .ok_or_else(|| VimError::Protocol {
                method: "CreateContainerView".into(),
                message: "no view in the answer".into(),
            })?;
        let spec = FilterSpec {
            obj: view.clone(),
            skip: true,
            traverse: vec![Traversal {
                kind: "ContainerView",
                path: "view",
            }],
            props: vec![PropSpec {
                kind: "HostSystem",
                paths,
            }],
        };
        let result = self.retrieve(&spec).await;
        // Views live on the server until destroyed; do it whatever happened.
        if let Err(e) = self.call(&Request::DestroyView { view: &view }).await {
            tracing::debug!(error = %e, "DestroyView failed");
        }
        result
    }
}

fn not_found(method: &str, obj: &MoRef) -> VimError {
    VimError::Fault {
        method: method.into(),
        fault: crate::soap::Fault {
            kind: "ManagedObjectNotFound".into(),
            message: format!("{} {} does not exist", obj.kind, obj.value),
        },
    }
}

fn task_ref(method: &str, el: &Element) -> Result<MoRef, VimError> {
    el.child("returnval")
        .and_then(MoRef::from_element)
        .ok_or_else(|| VimError::Protocol {
            method: method.into(),
            message: "no task reference in the answer".into(),
        })
}

/// vCenter's `timeout` argument: whole seconds, at least 1 (0 means "none").
fn timeout_secs(d: Duration) -> i32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(s.max(1)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_normalises_case_path_and_default_port() {
        assert_eq!(
            vcenter_origin("https://VC.Example.com/sdk").as_deref(),
            Some("https://vc.example.com:443")
        );
        assert_eq!(
            vcenter_origin("https://vc.example.com:443"),
            vcenter_origin("https://vc.example.com/")
        );
        assert_eq!(vcenter_origin("not a url"), None);
    }

    #[test]
    fn timeout_rounds_up_to_whole_seconds() {
        assert_eq!(timeout_secs(Duration::from_millis(1)), 1);
        assert_eq!(timeout_secs(Duration::from_millis(1500)), 2);
        assert_eq!(timeout_secs(Duration::ZERO), 1);
        assert_eq!(timeout_secs(Duration::from_secs(u64::MAX)), i32::MAX);
    }

    #[test]
    fn unknown_connection_state_is_not_online() {
        let e = xml::parse(
            r#"<objects><obj type="HostSystem">host-1</obj>
               <propSet><name>name</name><val>esx1</val></propSet>
               <propSet><name>runtime.connectionState</name><val>weird</val></propSet>
               <propSet><name>runtime.inMaintenanceMode</name><val>false</val></propSet>
               <propSet><name>runtime.powerState</name><val>poweredOn</val></propSet>
            </objects>"#,
        )
        .expect("xml");
        let o = ObjectContent::from_element(&e).expect("object");
        let h = host_state(&o).expect("state");
        assert!(!h.is_online());
        assert_eq!(h.overall_status, Status::Gray);
    }

    #[test]
    fn missing_maintenance_flag_is_an_error_naming_the_host() {
        let e = xml::parse(
            r#"<objects><obj type="HostSystem">host-1</obj>
               <propSet><name>name</name><val>esx1</val></propSet></objects>"#,
        )
        .expect("xml");
        let o = ObjectContent::from_element(&e).expect("object");
        let err = host_state(&o).expect_err("incomplete");
        assert!(err.to_string().contains("esx1"), "{err}");
    }

    #[test]
    fn bad_urls_are_config_errors() {
        use firmflow_core::credentials::Credential;
        let auth = Auth::Credential(Credential::new("u", "p"));
        assert!(matches!(
            VimClient::new(VcenterConfig::new("ftp://x", auth.clone())),
            Err(VimError::Config(_))
        ));
        assert!(matches!(
            VimClient::new(VcenterConfig::new("::", auth.clone())),
            Err(VimError::Config(_))
        ));
        let mut cfg = VcenterConfig::new("https://vc", auth);
        cfg.tls.ca_file = Some("/nonexistent/ca.pem".into());
        let err = VimClient::new(cfg).expect_err("no CA file");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let c = VimClient::new(VcenterConfig::new(
            "https://vc.example.com",
            Auth::Credential(Credential::new("u", "p")),
        ))
        .expect("client");
        assert_eq!(c.sdk_url.as_str(), "https://vc.example.com/sdk");
    }
}
