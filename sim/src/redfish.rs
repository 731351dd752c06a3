//! Redfish resources and actions of one simulated iDRAC: routing, auth,
//! faults on the request path, and iDRAC-shaped JSON.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{Map, Value, json};

use crate::faults::Kind;
use crate::fleet::{Flavor, Inner};
use crate::host::{
    self, Bmc, Host, HostState, ImageSource, Job, JobState, NewJob, Refusal, RepoRequest,
    ResetKind, ServerStatus, Session, durations,
};
use crate::messages::{self, Msg, base, render};
use crate::multipart;
use crate::package::Package;

/// Largest request body accepted (bigger uploads get `SYS411`).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// The connection is dropped without a response (reset fault, iDRAC down).
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the simulator")
    }
}
impl std::error::Error for Dropped {}

/// A response under construction.
#[derive(Debug)]
pub(crate) struct Reply {
    status: StatusCode,
    body: Option<Bytes>,
    content_type: &'static str,
    headers: Vec<(header::HeaderName, String)>,
}

impl Reply {
    fn json(status: StatusCode, v: &Value) -> Reply {
        Reply {
            status,
            body: Some(Bytes::from(serde_json::to_vec(v).unwrap_or_default())),
            content_type: "application/json;charset=utf-8",
            headers: Vec::new(),
        }
    }
    fn ok(v: &Value) -> Reply {
        Reply::json(StatusCode::OK, v)
    }
    fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            body: None,
            content_type: "application/json;charset=utf-8",
            headers: Vec::new(),
        }
    }
    fn with(mut self, name: header::HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
    fn into_response(self, head: bool, allow: &str) -> Response<Full<Bytes>> {
        let mut b = Response::builder().status(self.status);
        let has_body = self.body.is_some();
        if let Some(h) = b.headers_mut() {
            h.insert("OData-Version", HeaderValue::from_static("4.0"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            if has_body {
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(self.content_type),
                );
            }
            if !allow.is_empty()
                && let Ok(v) = HeaderValue::from_str(allow)
            {
                h.insert(header::ALLOW, v);
            }
            for (k, v) in self.headers {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.append(k, v);
                }
            }
        }
        let body = if head {
            Bytes::new()
        } else {
            self.body.unwrap_or_default()
        };
        b.body(Full::new(body))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

// ---------------------------------------------------------------- messages

fn ext(host: &Host, msg: &Msg, args: &[String]) -> Value {
    let id = if msg.id.contains('.') || is_base(msg) {
        format!("Base.1.12.{}", msg.id)
    } else if host.is_dell() {
        format!("{}{}", host.registry(), msg.id)
    } else {
        format!("Base.1.12.{}", generic_id(msg))
    };
    json!({
        "Message": render(msg.message, args),
        "MessageArgs": args,
        "MessageArgs@odata.count": args.len(),
        "MessageId": id,
        "RelatedProperties": [],
        "RelatedProperties@odata.count": 0,
        "Resolution": msg.resolution,
        "Severity": msg.severity,
    })
}

fn is_base(msg: &Msg) -> bool {
    msg.id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase())
        && msg.id.chars().any(|c| c.is_ascii_lowercase())
}

fn generic_id(msg: &Msg) -> &'static str {
    match msg.id {
        "RAC0218" => "SessionLimitExceeded",
        "SYS518" | "LC060" => "ServiceTemporarilyUnavailable",
        "JCP017" => "CreateLimitReachedForResource",
        "SYS415" => "NoValidSession",
        "SYS402" => "OperationNotAllowed",
        "SYS403" => "ResourceMissingAtURI",
        _ => "GeneralError",
    }
}

fn error(host: &Host, status: StatusCode, msg: Msg, args: &[String]) -> Reply {
    let info = ext(host, &msg, args);
    let code = if is_base(&msg) {
        format!("Base.1.12.{}", msg.id)
    } else {
        "Base.1.12.GeneralError".to_string()
    };
    Reply::json(
        status,
        &json!({"error": {
            "@Message.ExtendedInfo": [info],
            "code": code,
            "message": "A general error has occurred. See ExtendedInfo for more information",
        }}),
    )
}

fn success_info(host: &Host) -> Value {
    if host.is_dell() {
        json!({"@Message.ExtendedInfo": [ext(host, &base::SUCCESS, &[]), ext(host, &messages::SYS413, &[])]})
    } else {
        json!({"@Message.ExtendedInfo": [ext(host, &base::SUCCESS, &[])]})
    }
}

fn not_found(host: &Host, path: &str) -> Reply {
    if host.is_dell() {
        error(
            host,
            StatusCode::NOT_FOUND,
            messages::SYS403,
            &[path.to_string()],
        )
    } else {
        error(
            host,
            StatusCode::NOT_FOUND,
            base::RESOURCE_MISSING,
            &[path.to_string()],
        )
    }
}

fn bad_json(host: &Host) -> Reply {
    error(host, StatusCode::BAD_REQUEST, base::MALFORMED_JSON, &[])
}

fn refusal(host: &Host, r: Refusal) -> Reply {
    match r {
        Refusal::QueueFull => error(host, StatusCode::BAD_REQUEST, messages::JCP017, &[]),
        Refusal::LcNotReady => error(host, StatusCode::SERVICE_UNAVAILABLE, messages::LC060, &[])
            .with(header::RETRY_AFTER, "30"),
    }
}

// ---------------------------------------------------------------- routing

/// Routes the simulator knows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Redfish,
    Root,
    Metadata,
    OData,
    Systems,
    System,
    SystemReset,
    Chassis,
    ChassisMember,
    Managers,
    Manager,
    ManagerReset,
    SessionService,
    Sessions,
    Session(String),
    UpdateService,
    Inventory,
    InventoryMember(String),
    SimpleUpdate,
    MultipartUpload,
    DellInstall,
    TaskService,
    Tasks,
    Task(String),
    TaskMonitor(String),
    JobService,
    JobServiceJobs,
    JobServiceJob(String),
    DellJobs(&'static str),
    DellJob(&'static str, String),
    DellJobService(&'static str),
    DeleteJobQueue,
    DellLcService(&'static str),
    LcStatus,
    DellIdracCardService(&'static str),
    IdracReset,
    DellSwService(&'static str),
    InstallFromRepository,
    RepoUpdateList,
    AccountService,
    Accounts,
    Account(String),
    Roles,
    Role(String),
    DellSystem,
    NotFound,
}

const JOBS_5X: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs";
const JOBS_3X: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs";
const OEM_5X: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell";
const OEM_3X: &str = "/redfish/v1/Dell/Managers/iDRAC.Embedded.1";
const SW_5X: &str =
    "/redfish/v1/Systems/System.Embedded.1/Oem/Dell/DellSoftwareInstallationService";
const SW_3X: &str = "/redfish/v1/Dell/Systems/System.Embedded.1/DellSoftwareInstallationService";

fn route(host: &Host, segs: &[&str]) -> (Route, &'static str) {
    use Route as R;
    let sys = host.system_path();
    let mgr = host.manager_path();
    let dell = host.is_dell();
    let idrac10 = host.flavor == Flavor::Idrac10;

    match segs {
        ["redfish"] => (R::Redfish, "/redfish"),
        ["redfish", "v1"] => (R::Root, "/redfish/v1"),
        ["redfish", "v1", "$metadata"] => (R::Metadata, "/redfish/v1/$metadata"),
        ["redfish", "v1", "odata"] => (R::OData, "/redfish/v1/odata"),
        ["redfish", "v1", "Systems"] => (R::Systems, "/redfish/v1/Systems"),
        ["redfish", "v1", "Systems", s] if *s == sys => (R::System, "/redfish/v1/Systems/{id}"),
        [
            "redfish",
            "v1",
            "Systems",
            s,
            "Actions",
            "ComputerSystem.Reset",
        ] if *s == sys => (
            R::SystemReset,
            "/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset",
        ),
        ["redfish", "v1", "Chassis"] => (R::Chassis, "/redfish/v1/Chassis"),
        ["redfish", "v1", "Chassis", s] if *s == sys => {
            (R::ChassisMember, "/redfish/v1/Chassis/{id}")
        }
        ["redfish", "v1", "Managers"] => (R::Managers, "/redfish/v1/Managers"),
        ["redfish", "v1", "Managers", m] if *m == mgr => (R::Manager, "/redfish/v1/Managers/{id}"),
        ["redfish", "v1", "Managers", m, "Actions", "Manager.Reset"] if *m == mgr => (
            R::ManagerReset,
            "/redfish/v1/Managers/{id}/Actions/Manager.Reset",
        ),
        ["redfish", "v1", "SessionService"] => (R::SessionService, "/redfish/v1/SessionService"),
        ["redfish", "v1", "SessionService", "Sessions", "Members"] => {
            (R::Sessions, "/redfish/v1/SessionService/Sessions/Members")
        }
        ["redfish", "v1", "AccountService"] => (R::AccountService, "/redfish/v1/AccountService"),
        ["redfish", "v1", "AccountService", "Accounts"] => {
            (R::Accounts, "/redfish/v1/AccountService/Accounts")
        }
        ["redfish", "v1", "AccountService", "Accounts", id] => (
            R::Account(id.to_string()),
            "/redfish/v1/AccountService/Accounts/{id}",
        ),
        ["redfish", "v1", "AccountService", "Roles"] => {
            (R::Roles, "/redfish/v1/AccountService/Roles")
        }
        ["redfish", "v1", "AccountService", "Roles", id] => (
            R::Role(id.to_string()),
            "/redfish/v1/AccountService/Roles/{id}",
        ),
        [
            "redfish",
            "v1",
            "Systems",
            "System.Embedded.1",
            "Oem",
            "Dell",
            "DellSystem",
            "System.Embedded.1",
        ] if dell => (
            R::DellSystem,
            "/redfish/v1/Systems/{id}/Oem/Dell/DellSystem/{id}",
        ),
        ["redfish", "v1", "SessionService", "Sessions"] => {
            (R::Sessions, "/redfish/v1/SessionService/Sessions")
        }
        ["redfish", "v1", "Sessions"] if dell => (R::Sessions, "/redfish/v1/Sessions"),
        ["redfish", "v1", "SessionService", "Sessions", id] => (
            R::Session(id.to_string()),
            "/redfish/v1/SessionService/Sessions/{id}",
        ),
        ["redfish", "v1", "Sessions", id] if dell => {
            (R::Session(id.to_string()), "/redfish/v1/Sessions/{id}")
        }
        ["redfish", "v1", "UpdateService"] => (R::UpdateService, "/redfish/v1/UpdateService"),
        ["redfish", "v1", "UpdateService", "FirmwareInventory"] => {
            (R::Inventory, "/redfish/v1/UpdateService/FirmwareInventory")
        }
        ["redfish", "v1", "UpdateService", "FirmwareInventory", id] => (
            R::InventoryMember(id.to_string()),
            "/redfish/v1/UpdateService/FirmwareInventory/{id}",
        ),
        [
            "redfish",
            "v1",
            "UpdateService",
            "Actions",
            "UpdateService.SimpleUpdate",
        ] => (
            R::SimpleUpdate,
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
        ),
        ["redfish", "v1", "UpdateService", "MultipartUpload"] => (
            R::MultipartUpload,
            "/redfish/v1/UpdateService/MultipartUpload",
        ),
        [
            "redfish",
            "v1",
            "UpdateService",
            "Actions",
            "Oem",
            "DellUpdateService.Install",
        ] if dell && !idrac10 => (
            R::DellInstall,
            "/redfish/v1/UpdateService/Actions/Oem/DellUpdateService.Install",
        ),
        ["redfish", "v1", "TaskService"] => (R::TaskService, "/redfish/v1/TaskService"),
        ["redfish", "v1", "TaskService", "Tasks"] => (R::Tasks, "/redfish/v1/TaskService/Tasks"),
        ["redfish", "v1", "TaskService", "Tasks", id] => (
            R::Task(id.to_string()),
            "/redfish/v1/TaskService/Tasks/{id}",
        ),
        ["redfish", "v1", "TaskService", "TaskMonitors", id] => (
            R::TaskMonitor(id.to_string()),
            "/redfish/v1/TaskService/TaskMonitors/{id}",
        ),
        ["redfish", "v1", "JobService"] if dell => (R::JobService, "/redfish/v1/JobService"),
        ["redfish", "v1", "JobService", "Jobs"] if dell => {
            (R::JobServiceJobs, "/redfish/v1/JobService/Jobs")
        }
        ["redfish", "v1", "JobService", "Jobs", id] if dell => (
            R::JobServiceJob(id.to_string()),
            "/redfish/v1/JobService/Jobs/{id}",
        ),
        [
            "redfish",
            "v1",
            "Managers",
            "iDRAC.Embedded.1",
            "Oem",
            "Dell",
            "Jobs",
        ] if dell => (
            R::DellJobs(JOBS_5X),
            "/redfish/v1/Managers/{id}/Oem/Dell/Jobs",
        ),
        ["redfish", "v1", "Managers", "iDRAC.Embedded.1", "Jobs"] if dell => {
            (R::DellJobs(JOBS_3X), "/redfish/v1/Managers/{id}/Jobs")
        }
        [
            "redfish",
            "v1",
            "Managers",
            "iDRAC.Embedded.1",
            "Oem",
            "Dell",
            "Jobs",
            id,
        ] if dell => (
            R::DellJob(JOBS_5X, id.to_string()),
            "/redfish/v1/Managers/{id}/Oem/Dell/Jobs/{id}",
        ),
        ["redfish", "v1", "Managers", "iDRAC.Embedded.1", "Jobs", id] if dell => (
            R::DellJob(JOBS_3X, id.to_string()),
            "/redfish/v1/Managers/{id}/Jobs/{id}",
        ),
        [
            "redfish",
            "v1",
            "Managers",
            "iDRAC.Embedded.1",
            "Oem",
            "Dell",
            svc,
            rest @ ..,
        ]
        | [
            "redfish",
            "v1",
            "Dell",
            "Managers",
            "iDRAC.Embedded.1",
            svc,
            rest @ ..,
        ] if dell => {
            let base = if segs.get(2) == Some(&"Dell") {
                OEM_3X
            } else {
                OEM_5X
            };
            match (*svc, rest) {
                ("DellJobService", []) => (R::DellJobService(base), "{oem}/DellJobService"),
                ("DellJobService", ["Actions", "DellJobService.DeleteJobQueue"]) => (
                    R::DeleteJobQueue,
                    "{oem}/DellJobService/Actions/DellJobService.DeleteJobQueue",
                ),
                ("DellLCService", []) => (R::DellLcService(base), "{oem}/DellLCService"),
                ("DellLCService", ["Actions", "DellLCService.GetRemoteServicesAPIStatus"]) => (
                    R::LcStatus,
                    "{oem}/DellLCService/Actions/DellLCService.GetRemoteServicesAPIStatus",
                ),
                ("DelliDRACCardService", []) => {
                    (R::DellIdracCardService(base), "{oem}/DelliDRACCardService")
                }
                ("DelliDRACCardService", ["Actions", "DelliDRACCardService.iDRACReset"]) => (
                    R::IdracReset,
                    "{oem}/DelliDRACCardService/Actions/DelliDRACCardService.iDRACReset",
                ),
                _ => (R::NotFound, "{unknown}"),
            }
        }
        [
            "redfish",
            "v1",
            "Systems",
            "System.Embedded.1",
            "Oem",
            "Dell",
            "DellSoftwareInstallationService",
            rest @ ..,
        ]
        | [
            "redfish",
            "v1",
            "Dell",
            "Systems",
            "System.Embedded.1",
            "DellSoftwareInstallationService",
            rest @ ..,
        ] if dell => {
            let base = if segs.get(2) == Some(&"Dell") {
                SW_3X
            } else {
                SW_5X
            };
            match rest {
                [] => (
                    R::DellSwService(base),
                    "{sw}/DellSoftwareInstallationService",
                ),
                [
                    "Actions",
                    "DellSoftwareInstallationService.InstallFromRepository",
                ] => (
                    R::InstallFromRepository,
                    "{sw}/Actions/DellSoftwareInstallationService.InstallFromRepository",
                ),
                [
                    "Actions",
                    "DellSoftwareInstallationService.GetRepoBasedUpdateList",
                ] => (
                    R::RepoUpdateList,
                    "{sw}/Actions/DellSoftwareInstallationService.GetRepoBasedUpdateList",
                ),
                _ => (R::NotFound, "{unknown}"),
            }
        }
        _ => (R::NotFound, "{unknown}"),
    }
}

fn allowed(route: &Route) -> &'static str {
    use Route as R;
    match route {
        R::Sessions => "GET, HEAD, POST",
        R::Session(_) => "GET, HEAD, DELETE",
        R::SessionService => "GET, HEAD, PATCH",
        R::Inventory => "GET, HEAD",
        R::DellJob(..) => "GET, HEAD, DELETE",
        R::SystemReset
        | R::ManagerReset
        | R::SimpleUpdate
        | R::MultipartUpload
        | R::DellInstall
        | R::DeleteJobQueue
        | R::LcStatus
        | R::IdracReset
        | R::InstallFromRepository
        | R::RepoUpdateList => "POST",
        R::NotFound => "",
        _ => "GET, HEAD",
    }
}

fn public(route: &Route, method: &Method) -> bool {
    matches!(
        route,
        Route::Redfish | Route::Root | Route::Metadata | Route::OData
    ) || (matches!(route, Route::Sessions) && method == Method::POST)
}

// ---------------------------------------------------------------- entry

/// Handles one HTTP request for the fleet.
pub(crate) async fn handle(
    inner: Arc<Inner>,
    fixed: Option<usize>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let idx = match fixed {
        Some(i) => i,
        None => {
            let name = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().host())
                .map(|h| h.rsplit_once(':').map_or(h, |(n, _)| n))
                .map(|h| {
                    h.strip_suffix(".localhost")
                        .unwrap_or(h)
                        .to_ascii_lowercase()
                });
            match name.and_then(|n| inner.by_name.get(&n).copied()) {
                Some(i) => i,
                None => {
                    let mut r = Response::new(Full::new(Bytes::from_static(
                        b"{\"error\":{\"code\":\"Base.1.12.GeneralError\",\"message\":\"unknown virtual host\"}}",
                    )));
                    *r.status_mut() = StatusCode::NOT_FOUND;
                    return Ok(r);
                }
            }
        }
    };
    let Some(host) = inner.hosts.get(idx).cloned() else {
        return Err(Dropped);
    };
    let (parts, req_body) = req.into_parts();
    let method = parts.method;
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (route, template) = route(&host, &segs);
    let allow = allowed(&route);
    let (latency, server_error) = {
        let mut st = host.lock();
        if st.bmc == Bmc::Down {
            return Err(Dropped);
        }
        host::record(&mut st, method.as_str(), template);
        if st.faults.is_empty() {
            (None, false)
        } else {
            let st = &mut *st;
            if st.faults.take(Kind::ConnReset, &mut st.rng).is_some() {
                return Err(Dropped);
            }
            let latency = match st.faults.take(Kind::Latency, &mut st.rng) {
                Some(crate::Fault::Latency { ms }) => Some(ms),
                _ => None,
            };
            let se = st.faults.take(Kind::ServerError, &mut st.rng).is_some();
            (latency, se)
        }
    };
    if let Some(ms) = latency {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let head = method == Method::HEAD;
    if server_error {
        return Ok(error(
            &host,
            StatusCode::INTERNAL_SERVER_ERROR,
            messages::SYS518,
            &[],
        )
        .into_response(head, allow));
    }
    if route == Route::NotFound {
        return Ok(not_found(&host, path).into_response(head, ""));
    }
    // HttpPushUri: iDRAC9 accepts POST on the inventory collection although
    // the schema marks it non-insertable (so Allow does not advertise it).
    let push = route == Route::Inventory && method == Method::POST && host.flavor == Flavor::Idrac9;
    let method_ok = push || allow.split(", ").any(|m| m == method.as_str());
    if let Some(v) = parts.headers.get("odata-version")
        && v.as_bytes() != b"4.0"
    {
        return Ok(error(
            &host,
            StatusCode::PRECONDITION_FAILED,
            base::PRECONDITION_FAILED,
            &[],
        )
        .into_response(head, allow));
    }
    if let Some(bad) = query
        .split('&')
        .map(|kv| kv.replace("%24", "$"))
        .find(|kv| {
            kv.starts_with('$') && !kv.starts_with("$select=") && !kv.starts_with("$expand=")
        })
    {
        let name = bad.split('=').next().unwrap_or_default().to_string();
        return Ok(error(
            &host,
            StatusCode::NOT_IMPLEMENTED,
            base::QUERY_NOT_SUPPORTED,
            &[name],
        )
        .into_response(head, allow));
    }
    if !method_ok {
        return Ok(
            error(&host, StatusCode::METHOD_NOT_ALLOWED, messages::SYS402, &[])
                .into_response(head, allow),
        );
    }
    let session = if public(&route, &method) {
        None
    } else {
        match authenticate(&inner, &host, &parts.headers) {
            Ok(s) => s,
            Err(r) => return Ok(r.into_response(head, allow)),
        }
    };
    let headers = &parts.headers;
    let chunked = headers
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked
        && matches!(route, Route::MultipartUpload | Route::Inventory)
        && method == Method::POST
    {
        // iDRAC needs Content-Length on uploads; drain and refuse.
        let _ = Limited::new(req_body, MAX_BODY).collect().await;
        return Ok(
            error(&host, StatusCode::BAD_REQUEST, messages::RAC0508, &[])
                .into_response(head, allow),
        );
    }
    let body = match Limited::new(req_body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(
                error(&host, StatusCode::PAYLOAD_TOO_LARGE, messages::SYS411, &[])
                    .into_response(head, allow),
            );
        }
    };
    let ctx = Ctx {
        inner: &inner,
        host: &host,
        method: &method,
        path,
        query,
        headers,
        body: &body,
        session,
    };
    let reply = dispatch(&ctx, route);
    let reply = finish_get(&ctx, reply);
    Ok(reply.into_response(head, allow))
}

/// Adds an ETag to successful GETs, answers If-None-Match with 304.
fn finish_get(ctx: &Ctx<'_>, mut reply: Reply) -> Reply {
    if (ctx.method == Method::GET || ctx.method == Method::HEAD)
        && reply.status == StatusCode::OK
        && let Some(body) = &reply.body
    {
        let etag = reply
            .headers
            .iter()
            .find(|(k, _)| k == header::ETAG)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| {
                let e = format!("W/\"{:016x}\"", fnv(body));
                reply.headers.push((header::ETAG, e.clone()));
                e
            });
        if let Some(link) = described_by(body) {
            reply.headers.push((header::LINK, link));
        }
        let inm = ctx
            .headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok());
        if inm.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
            let mut r = Reply::empty(StatusCode::NOT_MODIFIED);
            r.headers.push((header::ETAG, etag));
            return r;
        }
    }
    reply
}

/// Serves a hot resource from the host's render cache while `key` matches.
fn cached(ctx: &Ctx<'_>, id: u8, key: u64, build: impl FnOnce() -> Value) -> Reply {
    let hit = ctx
        .host
        .lock()
        .render_cache
        .iter()
        .find(|(r, k, _)| *r == id && *k == key)
        .map(|(_, _, b)| b.clone());
    let bytes = match hit {
        Some(b) => b,
        None => {
            let b = Bytes::from(serde_json::to_vec(&build()).unwrap_or_default());
            let mut st = ctx.host.lock();
            st.render_cache.retain(|(r, _, _)| *r != id);
            st.render_cache.push((id, key, b.clone()));
            b
        }
    };
    Reply {
        status: StatusCode::OK,
        body: Some(bytes),
        content_type: "application/json;charset=utf-8",
        headers: Vec::new(),
    }
}

/// `Link: </redfish/v1/Schemas/X.vN.json>; rel=describedby` from the body's `@odata.type`.
fn described_by(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"@odata.type\":\"#";
    let start = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let end = body[start..].iter().position(|b| *b == b'"')? + start;
    let ty = std::str::from_utf8(&body[start..end]).ok()?;
    let schema = match ty.rsplit_once('.') {
        Some((ns, _)) if ns.contains(".v") => ns.to_string(),
        Some((ns, _)) => ns.to_string(),
        None => ty.to_string(),
    };
    Some(format!(
        "</redfish/v1/Schemas/{schema}.json>; rel=describedby"
    ))
}

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

struct Ctx<'a> {
    inner: &'a Arc<Inner>,
    host: &'a Arc<Host>,
    method: &'a Method,
    path: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
    body: &'a Bytes,
    session: Option<String>,
}

impl Ctx<'_> {
    fn json_body(&self) -> Result<Map<String, Value>, Reply> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad_json(self.host)),
        }
    }

    fn expand(&self) -> bool {
        self.query.split('&').any(|kv| {
            let kv = kv.replace("%24", "$");
            kv.starts_with("$expand=")
        })
    }

    fn select(&self) -> Option<Vec<String>> {
        if self.query.is_empty() {
            return None;
        }
        self.query.split('&').find_map(|kv| {
            let kv = kv.replace("%24", "$").replace("%2C", ",");
            kv.strip_prefix("$select=")
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        })
    }
}

fn authenticate(inner: &Inner, host: &Host, headers: &HeaderMap) -> Result<Option<String>, Reply> {
    let unauthorized =
        |r: Reply| r.with(header::WWW_AUTHENTICATE, "Basic realm=\"RedfishService\"");
    if let Some(tok) = headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        let mut st = host.lock();
        st.purge_sessions(inner);
        let st = &mut *st;
        if st.faults.take(Kind::SessionExpiry, &mut st.rng).is_some() {
            st.sessions.clear();
        }
        return match st.sessions.iter_mut().find(|s| s.token == tok) {
            Some(s) => {
                s.last_used = tokio::time::Instant::now();
                Ok(Some(s.id.clone()))
            }
            None => Err(unauthorized(error(
                host,
                StatusCode::UNAUTHORIZED,
                base::NO_VALID_SESSION,
                &[],
            ))),
        };
    }
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        if auth.as_bytes() == host.basic.as_bytes() || basic_matches(host, auth) {
            return Ok(None);
        }
        return Err(unauthorized(error(
            host,
            StatusCode::UNAUTHORIZED,
            messages::SYS415,
            &[],
        )));
    }
    Err(unauthorized(error(
        host,
        StatusCode::UNAUTHORIZED,
        base::NO_VALID_SESSION,
        &[],
    )))
}

fn basic_matches(host: &Host, auth: &HeaderValue) -> bool {
    use base64::Engine as _;
    let Ok(s) = auth.to_str() else { return false };
    let Some((scheme, b64)) = s.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    raw == format!("{}:{}", host.username, host.password).as_bytes()
}

fn dispatch(ctx: &Ctx<'_>, route: Route) -> Reply {
    use Route as R;
    let host = ctx.host;
    let get = ctx.method == Method::GET || ctx.method == Method::HEAD;
    let reply = match route {
        R::Redfish => Reply::ok(&json!({"v1": "/redfish/v1/"})),
        R::Root => cached(ctx, 0, 0, || service_root(ctx)),
        R::Metadata => metadata(host),
        R::OData => Reply::ok(&odata(host)),
        R::Systems => Reply::ok(&collection(
            "/redfish/v1/Systems",
            "#ComputerSystemCollection.ComputerSystemCollection",
            "Computer System Collection",
            vec![format!("/redfish/v1/Systems/{}", host.system_path())],
        )),
        R::System => {
            let key = {
                let st = host.lock();
                let bios = st
                    .components
                    .first()
                    .map(|c| c.version.as_str())
                    .unwrap_or("");
                fnv(format!("{}|{}|{}", st.power_on, st.health(), bios).as_bytes())
            };
            cached(ctx, 1, key, || system(ctx))
        }
        R::SystemReset => system_reset(ctx),
        R::Chassis => Reply::ok(&collection(
            "/redfish/v1/Chassis",
            "#ChassisCollection.ChassisCollection",
            "Chassis Collection",
            vec![format!("/redfish/v1/Chassis/{}", host.system_path())],
        )),
        R::ChassisMember => Reply::ok(&chassis(ctx)),
        R::Managers => Reply::ok(&collection(
            "/redfish/v1/Managers",
            "#ManagerCollection.ManagerCollection",
            "Manager Collection",
            vec![format!("/redfish/v1/Managers/{}", host.manager_path())],
        )),
        R::Manager => Reply::ok(&manager(ctx)),
        R::ManagerReset | R::IdracReset => manager_reset(ctx, matches!(route, R::IdracReset)),
        R::SessionService if get => Reply::ok(&session_service(ctx)),
        R::SessionService => patch_session_service(ctx),
        R::Sessions if get => sessions(ctx),
        R::Sessions => login(ctx),
        R::Session(id) if get => session_get(ctx, &id),
        R::Session(id) => logout(ctx, &id),
        R::UpdateService => Reply::ok(&update_service(ctx)),
        R::Inventory if get => inventory(ctx),
        R::Inventory => http_push(ctx),
        R::InventoryMember(id) => inventory_member(ctx, &id),
        R::SimpleUpdate => simple_update(ctx),
        R::MultipartUpload => multipart_upload(ctx),
        R::DellInstall => dell_install(ctx),
        R::TaskService => Reply::ok(&task_service(ctx)),
        R::Tasks => tasks(ctx),
        R::Task(id) => task(ctx, &id),
        R::TaskMonitor(id) => task_monitor(ctx, &id),
        R::JobService => Reply::ok(&json!({
            "@odata.context": "/redfish/v1/$metadata#JobService.JobService",
            "@odata.id": "/redfish/v1/JobService",
            "@odata.type": "#JobService.v1_0_2.JobService",
            "Description": "Represents the properties for the Job Service",
            "Id": "JobService",
            "Jobs": {"@odata.id": "/redfish/v1/JobService/Jobs"},
            "Name": "Job Service",
            "ServiceCapabilities": {"MaxJobs": host::MAX_JOBS, "Scheduling": true},
            "ServiceEnabled": true,
            "Status": {"Health": "OK", "State": "Enabled"},
        })),
        R::JobServiceJobs => job_service_jobs(ctx),
        R::JobServiceJob(id) => {
            let st = ctx.host.lock();
            match st.job(&id) {
                Some(j) => Reply::ok(&dmtf_job(ctx, j)),
                None => not_found(host, ctx.path),
            }
        }
        R::DellJobs(base) => dell_jobs(ctx, base),
        R::DellJob(base, id) if get => {
            let st = ctx.host.lock();
            match st.job(&id) {
                Some(j) => Reply::ok(&dell_job(host, j, Some(base))),
                None => error(host, StatusCode::NOT_FOUND, messages::SUP024, &[]),
            }
        }
        R::DellJob(_, id) => delete_job(ctx, &id),
        R::DellJobService(base) => Reply::ok(&json!({
            "@odata.context": "/redfish/v1/$metadata#DellJobService.DellJobService",
            "@odata.id": format!("{base}/DellJobService"),
            "@odata.type": "#DellJobService.v1_1_0.DellJobService",
            "Actions": {"#DellJobService.DeleteJobQueue": {
                "target": format!("{base}/DellJobService/Actions/DellJobService.DeleteJobQueue")}},
            "Description": "The DellJobService resource provides some actions to support Job management functionality.",
            "Id": "Job Service",
            "Name": "DellJobService",
        })),
        R::DeleteJobQueue => delete_job_queue(ctx),
        R::DellLcService(base) => Reply::ok(&json!({
            "@odata.context": "/redfish/v1/$metadata#DellLCService.DellLCService",
            "@odata.id": format!("{base}/DellLCService"),
            "@odata.type": "#DellLCService.v1_1_0.DellLCService",
            "Actions": {"#DellLCService.GetRemoteServicesAPIStatus": {
                "target": format!("{base}/DellLCService/Actions/DellLCService.GetRemoteServicesAPIStatus")}},
            "Description": "The DellLCService resource provides some actions to support Lifecycle Controller functionality.",
            "Id": "DellLCService",
            "Name": "DellLCService",
        })),
        R::LcStatus => lc_status(ctx),
        R::DellIdracCardService(base) => Reply::ok(&json!({
            "@odata.context": "/redfish/v1/$metadata#DelliDRACCardService.DelliDRACCardService",
            "@odata.id": format!("{base}/DelliDRACCardService"),
            "@odata.type": "#DelliDRACCardService.v1_1_0.DelliDRACCardService",
            "Actions": {"#DelliDRACCardService.iDRACReset": {
                "Force@Redfish.AllowableValues": ["Force", "Graceful"],
                "target": format!("{base}/DelliDRACCardService/Actions/DelliDRACCardService.iDRACReset")}},
            "Description": "The DelliDRACCardService resource provides some actions to support iDRAC configurations.",
            "Id": "DelliDRACCardService",
            "Name": "DelliDRACCardService",
        })),
        R::DellSwService(base) => Reply::ok(&json!({
            "@odata.context": "/redfish/v1/$metadata#DellSoftwareInstallationService.DellSoftwareInstallationService",
            "@odata.id": base,
            "@odata.type": "#DellSoftwareInstallationService.v1_3_0.DellSoftwareInstallationService",
            "Actions": {
                "#DellSoftwareInstallationService.InstallFromRepository": {
                    "ApplyUpdate@Redfish.AllowableValues": ["True", "False"],
                    "IgnoreCertWarning@Redfish.AllowableValues": ["On", "Off"],
                    "RebootNeeded@Redfish.AllowableValues": [true, false],
                    "ShareType@Redfish.AllowableValues": ["NFS", "CIFS", "HTTP", "HTTPS", "FTP", "TFTP"],
                    "target": format!("{base}/Actions/DellSoftwareInstallationService.InstallFromRepository")},
                "#DellSoftwareInstallationService.GetRepoBasedUpdateList": {
                    "target": format!("{base}/Actions/DellSoftwareInstallationService.GetRepoBasedUpdateList")},
            },
            "Description": "The DellSoftwareInstallationService resource provides some actions to support software installation functionality.",
            "Id": "DellSoftwareInstallationService",
            "Name": "DellSoftwareInstallationService",
        })),
        R::InstallFromRepository => install_from_repository(ctx),
        R::AccountService => Reply::ok(&json!({
            "@odata.context": "/redfish/v1/$metadata#AccountService.AccountService",
            "@odata.id": "/redfish/v1/AccountService",
            "@odata.type": "#AccountService.v1_5_0.AccountService",
            "Accounts": odata_id("/redfish/v1/AccountService/Accounts"),
            "Description": "BMC User Accounts",
            "Id": "AccountService",
            "Name": "Account Service",
            "Roles": odata_id("/redfish/v1/AccountService/Roles"),
            "ServiceEnabled": true,
            "Status": {"Health": "OK", "State": "Enabled"},
        })),
        R::Accounts => Reply::ok(&collection(
            "/redfish/v1/AccountService/Accounts",
            "#ManagerAccountCollection.ManagerAccountCollection",
            "Accounts Collection",
            vec!["/redfish/v1/AccountService/Accounts/2".into()],
        )),
        R::Account(id) if id == "2" => Reply::ok(&json!({
            "@odata.context": "/redfish/v1/$metadata#ManagerAccount.ManagerAccount",
            "@odata.id": "/redfish/v1/AccountService/Accounts/2",
            "@odata.type": "#ManagerAccount.v1_4_0.ManagerAccount",
            "AccountTypes": ["Redfish"],
            "Description": "User Account",
            "Enabled": true,
            "Id": "2",
            "Links": {"Role": odata_id("/redfish/v1/AccountService/Roles/Administrator")},
            "Locked": false,
            "Name": "User Account",
            "Password": null,
            "RoleId": "Administrator",
            "UserName": host.username,
        })),
        R::Account(_) => not_found(host, ctx.path),
        R::Roles => Reply::ok(&collection(
            "/redfish/v1/AccountService/Roles",
            "#RoleCollection.RoleCollection",
            "Roles",
            ["Administrator", "Operator", "ReadOnly"]
                .iter()
                .map(|r| format!("/redfish/v1/AccountService/Roles/{r}"))
                .collect(),
        )),
        R::Role(id) => {
            let privs: &[&str] = match id.as_str() {
                "Administrator" => &[
                    "Login",
                    "ConfigureManager",
                    "ConfigureUsers",
                    "ConfigureComponents",
                    "ConfigureSelf",
                ],
                "Operator" => &["Login", "ConfigureComponents", "ConfigureSelf"],
                "ReadOnly" => &["Login", "ConfigureSelf"],
                _ => return not_found(host, ctx.path),
            };
            Reply::ok(&json!({
                "@odata.context": "/redfish/v1/$metadata#Role.Role",
                "@odata.id": format!("/redfish/v1/AccountService/Roles/{id}"),
                "@odata.type": "#Role.v1_2_1.Role",
                "AssignedPrivileges": privs,
                "Description": format!("{id} User Role"),
                "Id": id,
                "IsPredefined": true,
                "Name": id,
                "RoleId": id,
            }))
        }
        R::DellSystem => {
            let sys = system(ctx);
            Reply::ok(&sys["Oem"]["Dell"]["DellSystem"])
        }
        R::RepoUpdateList => repo_update_list(ctx),
        R::NotFound => not_found(host, ctx.path),
    };
    if get
        && reply.status == StatusCode::OK
        && let (Some(sel), Some(body)) = (ctx.select(), reply.body.as_ref())
        && let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body)
    {
        let kept: Map<String, Value> = m
            .into_iter()
            .filter(|(k, _)| k.starts_with("@odata") || sel.iter().any(|s| s == k))
            .collect();
        return Reply::ok(&Value::Object(kept));
    }
    reply
}

// ---------------------------------------------------------------- resources

fn odata_id(s: impl Into<String>) -> Value {
    json!({"@odata.id": s.into()})
}

fn collection(id: &str, ty: &str, name: &str, members: Vec<String>) -> Value {
    let n = members.len();
    let members: Vec<Value> = members.into_iter().map(odata_id).collect();
    let ctx_name = ty.trim_start_matches('#');
    json!({
        "@odata.context": format!("/redfish/v1/$metadata#{ctx_name}"),
        "@odata.id": id,
        "@odata.type": ty,
        "Description": name,
        "Members": members,
        "Members@odata.count": n,
        "Name": name,
    })
}

fn expanded_collection(id: &str, ty: &str, name: &str, members: Vec<Value>) -> Value {
    let n = members.len();
    let ctx_name = ty.trim_start_matches('#');
    json!({
        "@odata.context": format!("/redfish/v1/$metadata#{ctx_name}"),
        "@odata.id": id,
        "@odata.type": ty,
        "Description": name,
        "Members": members,
        "Members@odata.count": n,
        "Name": name,
    })
}

fn uuid(host: &Host) -> String {
    let tag: Vec<u8> = host.service_tag.bytes().collect();
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(b"4c4c");
    for (i, x) in tag.iter().enumerate().take(12) {
        b[4 + i] = *x;
    }
    let h = hex::encode(&b[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn redfish_version(host: &Host) -> &'static str {
    match host.flavor {
        Flavor::Idrac9 => "1.11.0",
        Flavor::Idrac10 => "1.20.1",
        Flavor::Generic => "1.15.0",
    }
}

fn service_root(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#ServiceRoot.ServiceRoot",
        "@odata.id": "/redfish/v1",
        "@odata.type": "#ServiceRoot.v1_6_0.ServiceRoot",
        "AccountService": odata_id("/redfish/v1/AccountService"),
        "Chassis": odata_id("/redfish/v1/Chassis"),
        "Description": "Root Service",
        "Id": "RootService",
        "Links": {"Sessions": odata_id("/redfish/v1/SessionService/Sessions")},
        "Managers": odata_id("/redfish/v1/Managers"),
        "Name": "Root Service",
        "ProtocolFeaturesSupported": {
            "ExcerptQuery": false,
            "ExpandQuery": {"ExpandAll": true, "Levels": true, "Links": true, "MaxLevels": 1, "NoLinks": true},
            "FilterQuery": false,
            "OnlyMemberQuery": false,
            "SelectQuery": true,
        },
        "RedfishVersion": redfish_version(host),
        "SessionService": odata_id("/redfish/v1/SessionService"),
        "Systems": odata_id("/redfish/v1/Systems"),
        "Tasks": odata_id("/redfish/v1/TaskService"),
        "UpdateService": odata_id("/redfish/v1/UpdateService"),
        "UUID": uuid(host),
    });
    if host.is_dell() {
        v["JobService"] = odata_id("/redfish/v1/JobService");
        v["Oem"] = json!({"Dell": {
            "@odata.context": "/redfish/v1/$metadata#DellServiceRoot.DellServiceRoot",
            "@odata.type": "#DellServiceRoot.v1_0_0.DellServiceRoot",
            "IsBranded": 0,
            "ManagerMACAddress": "d0:8e:79:bb:3e:ea",
            "ServiceTag": host.service_tag,
        }});
        v["Product"] = json!("Integrated Dell Remote Access Controller");
        v["Vendor"] = json!("Dell");
    } else {
        v["Product"] = json!("Simulated Redfish BMC");
        v["Vendor"] = json!("Contoso");
    }
    v
}

fn metadata(host: &Host) -> Reply {
    let mut refs = vec![
        ("ServiceRoot", "v1_6_0"),
        ("ComputerSystemCollection", ""),
        ("ComputerSystem", "v1_10_0"),
        ("ChassisCollection", ""),
        ("Chassis", "v1_10_0"),
        ("ManagerCollection", ""),
        ("Manager", "v1_9_0"),
        ("SessionService", "v1_1_8"),
        ("AccountService", "v1_5_0"),
        ("ManagerAccountCollection", ""),
        ("ManagerAccount", "v1_4_0"),
        ("RoleCollection", ""),
        ("Role", "v1_2_1"),
        ("SessionCollection", ""),
        ("Session", "v1_3_0"),
        ("UpdateService", "v1_8_0"),
        ("SoftwareInventoryCollection", ""),
        ("SoftwareInventory", "v1_2_3"),
        ("TaskService", "v1_1_5"),
        ("TaskCollection", ""),
        ("Task", "v1_4_3"),
        ("Message", "v1_0_0"),
        ("Resource", "v1_0_0"),
        ("Settings", "v1_3_0"),
    ];
    if host.is_dell() {
        refs.push(("JobService", "v1_0_2"));
        refs.push(("JobCollection", ""));
        refs.push(("Job", "v1_0_5"));
    }
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edmx:Edmx xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\" Version=\"4.0\">\n",
    );
    for (ns, ver) in &refs {
        xml.push_str(&format!(
            "  <edmx:Reference Uri=\"http://redfish.dmtf.org/schemas/v1/{ns}_v1.xml\">\n    <edmx:Include Namespace=\"{ns}\"/>\n"
        ));
        if !ver.is_empty() {
            xml.push_str(&format!("    <edmx:Include Namespace=\"{ns}.{ver}\"/>\n"));
        }
        xml.push_str("  </edmx:Reference>\n");
    }
    xml.push_str("  <edmx:DataServices>\n    <Schema xmlns=\"http://docs.oasis-open.org/odata/ns/edm\" Namespace=\"Service\">\n      <EntityContainer Name=\"Service\" Extends=\"ServiceRoot.v1_6_0.ServiceContainer\"/>\n    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n");
    Reply {
        status: StatusCode::OK,
        body: Some(Bytes::from(xml)),
        content_type: "application/xml;charset=utf-8",
        headers: Vec::new(),
    }
}

fn odata(host: &Host) -> Value {
    let mut entries = vec![
        ("AccountService", "/redfish/v1/AccountService"),
        ("Systems", "/redfish/v1/Systems"),
        ("Chassis", "/redfish/v1/Chassis"),
        ("Managers", "/redfish/v1/Managers"),
        ("SessionService", "/redfish/v1/SessionService"),
        ("Tasks", "/redfish/v1/TaskService"),
        ("UpdateService", "/redfish/v1/UpdateService"),
    ];
    if host.is_dell() {
        entries.push(("JobService", "/redfish/v1/JobService"));
    }
    let mut value = vec![json!({"kind": "Singleton", "name": "Service", "url": "/redfish/v1/"})];
    value.extend(
        entries
            .into_iter()
            .map(|(n, u)| json!({"kind": "Singleton", "name": n, "url": u})),
    );
    json!({"@odata.context": "/redfish/v1/$metadata", "value": value})
}

fn power_str(st: &HostState) -> &'static str {
    if st.power_on { "On" } else { "Off" }
}

fn system(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let st = host.lock();
    let sys = host.system_path();
    let bios = st
        .components
        .iter()
        .find(|c| c.component_id == "159")
        .map(|c| c.version.clone())
        .unwrap_or_default();
    let health = st.health().to_string();
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#ComputerSystem.ComputerSystem",
        "@odata.id": format!("/redfish/v1/Systems/{sys}"),
        "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
        "Actions": {"#ComputerSystem.Reset": {
            "target": format!("/redfish/v1/Systems/{sys}/Actions/ComputerSystem.Reset"),
            "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "ForceRestart", "GracefulRestart", "GracefulShutdown", "PushPowerButton", "Nmi", "PowerCycle"],
        }},
        "AssetTag": "",
        "BiosVersion": bios,
        "Description": "Computer System which represents a machine (physical or virtual) and the local resources such as memory, cpu and other devices that can be accessed from that machine.",
        "HostName": "",
        "Id": sys,
        "IndicatorLED": "Off",
        "Links": {
            "Chassis": [odata_id(format!("/redfish/v1/Chassis/{sys}"))],
            "Chassis@odata.count": 1,
            "ManagedBy": [odata_id(format!("/redfish/v1/Managers/{}", host.manager_path()))],
            "ManagedBy@odata.count": 1,
        },
        "Manufacturer": if host.is_dell() { "Dell Inc." } else { "Contoso" },
        "MemorySummary": {"MemoryMirroring": "System", "Status": {"Health": "OK", "HealthRollup": "OK", "State": "Enabled"}, "TotalSystemMemoryGiB": 192},
        "Model": host.model.name,
        "Name": "System",
        "PartNumber": "0H28RRA02",
        "PowerState": power_str(&st),
        "ProcessorSummary": {"Count": 2, "Model": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", "Status": {"Health": "OK", "HealthRollup": "OK", "State": "Enabled"}},
        "SKU": host.service_tag,
        "SerialNumber": format!("CN7475{}", &host.service_tag),
        "Status": {"Health": health, "HealthRollup": health, "State": "Enabled"},
        "SystemType": "Physical",
        "UUID": uuid(host),
    });
    if host.is_dell() {
        v["Links"]["Oem"] = json!({"Dell": {
            "@odata.type": "#DellOem.v1_1_0.DellOemLinks",
            "DellSoftwareInstallationService": odata_id(SW_5X),
        }});
        v["Oem"] = json!({"Dell": {
            "@odata.type": "#DellOem.v1_1_0.DellOemResources",
            "DellSystem": {
                "@odata.context": "/redfish/v1/$metadata#DellSystem.DellSystem",
                "@odata.id": "/redfish/v1/Systems/System.Embedded.1/Oem/Dell/DellSystem/System.Embedded.1",
                "@odata.type": "#DellSystem.v1_2_0.DellSystem",
                "BIOSReleaseDate": "11/02/2023",
                "ChassisServiceTag": host.service_tag,
                "CurrentRollupStatus": health,
                "ExpressServiceCode": "18197565051",
                "Id": "System.Embedded.1",
                "LastSystemInventoryTime": ctx.inner.clock.now_iso(),
                "Name": "DellSystem",
                "NodeID": host.service_tag,
                "SystemGeneration": host.model.generation,
                "SystemID": host.model.system_id,
                "SystemRevision": "I",
            }
        }});
    }
    v
}

fn chassis(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let st = host.lock();
    let sys = host.system_path();
    json!({
        "@odata.context": "/redfish/v1/$metadata#Chassis.Chassis",
        "@odata.id": format!("/redfish/v1/Chassis/{sys}"),
        "@odata.type": "#Chassis.v1_10_0.Chassis",
        "ChassisType": "RackMount",
        "Description": "It represents the properties for physical components for any system.",
        "Id": sys,
        "Links": {
            "ComputerSystems": [odata_id(format!("/redfish/v1/Systems/{sys}"))],
            "ComputerSystems@odata.count": 1,
            "ManagedBy": [odata_id(format!("/redfish/v1/Managers/{}", host.manager_path()))],
            "ManagedBy@odata.count": 1,
        },
        "Manufacturer": if host.is_dell() { "Dell Inc." } else { "Contoso" },
        "Model": host.model.name,
        "Name": "Computer System Chassis",
        "PowerState": power_str(&st),
        "SKU": host.service_tag,
        "SerialNumber": format!("CN7475{}", &host.service_tag),
        "Status": {"Health": st.health(), "HealthRollup": st.health(), "State": "Enabled"},
    })
}

fn idrac_version(st: &HostState) -> String {
    st.components
        .iter()
        .find(|c| c.component_id == "25227")
        .map(|c| c.version.clone())
        .unwrap_or_default()
}

fn manager(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let st = host.lock();
    let mgr = host.manager_path();
    let sys = host.system_path();
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#Manager.Manager",
        "@odata.id": format!("/redfish/v1/Managers/{mgr}"),
        "@odata.type": "#Manager.v1_9_0.Manager",
        "Actions": {"#Manager.Reset": {
            "ResetType@Redfish.AllowableValues": ["GracefulRestart"],
            "target": format!("/redfish/v1/Managers/{mgr}/Actions/Manager.Reset"),
        }},
        "DateTime": ctx.inner.clock.now_iso(),
        "DateTimeLocalOffset": "-05:00",
        "Description": "BMC",
        "FirmwareVersion": idrac_version(&st),
        "Id": mgr,
        "Links": {
            "ManagerForChassis": [odata_id(format!("/redfish/v1/Chassis/{sys}"))],
            "ManagerForChassis@odata.count": 1,
            "ManagerForServers": [odata_id(format!("/redfish/v1/Systems/{sys}"))],
            "ManagerForServers@odata.count": 1,
            "ManagerInChassis": odata_id(format!("/redfish/v1/Chassis/{sys}")),
        },
        "ManagerType": "BMC",
        "Model": host.model.generation,
        "Name": "Manager",
        "PowerState": "On",
        "ServiceEntryPointUUID": uuid(host),
        "Status": {"Health": "OK", "State": "Enabled"},
        "UUID": uuid(host),
    });
    if host.is_dell() {
        v["Links"]["Oem"] = json!({"Dell": {
            "@odata.type": "#DellOem.v1_1_0.DellOemLinks",
            "DellJobService": odata_id(format!("{OEM_5X}/DellJobService")),
            "DellLCService": odata_id(format!("{OEM_5X}/DellLCService")),
            "DelliDRACCardService": odata_id(format!("{OEM_5X}/DelliDRACCardService")),
            "Jobs": odata_id(JOBS_5X),
        }});
    } else {
        v["Model"] = json!("Simulated BMC");
    }
    v
}

fn session_service(ctx: &Ctx<'_>) -> Value {
    let st = ctx.host.lock();
    json!({
        "@odata.context": "/redfish/v1/$metadata#SessionService.SessionService",
        "@odata.id": "/redfish/v1/SessionService",
        "@odata.type": "#SessionService.v1_1_8.SessionService",
        "Description": "Session Service",
        "Id": "SessionService",
        "Name": "Session Service",
        "ServiceEnabled": true,
        "SessionTimeout": st.session_timeout,
        "Sessions": odata_id("/redfish/v1/SessionService/Sessions"),
        "Status": {"Health": "OK", "State": "Enabled"},
    })
}

fn patch_session_service(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    for (k, v) in &body {
        match k.as_str() {
            "SessionTimeout" => match v.as_u64() {
                Some(t) if (60..=10800).contains(&t) => {}
                _ => {
                    return error(
                        host,
                        StatusCode::BAD_REQUEST,
                        base::PROPERTY_VALUE_TYPE,
                        &[v.to_string(), k.clone()],
                    );
                }
            },
            "Id" | "Name" | "Description" | "Sessions" | "Status" | "ServiceEnabled" => {
                return error(
                    host,
                    StatusCode::BAD_REQUEST,
                    base::PROPERTY_NOT_WRITABLE,
                    std::slice::from_ref(k),
                );
            }
            k if k.starts_with('@') => {}
            _ => {
                return error(
                    host,
                    StatusCode::BAD_REQUEST,
                    base::PROPERTY_UNKNOWN,
                    std::slice::from_ref(k),
                );
            }
        }
    }
    if let Some(t) = body.get("SessionTimeout").and_then(Value::as_u64) {
        ctx.host.lock().session_timeout = t;
    }
    Reply::ok(&session_service(ctx))
}

fn session_json(host: &Host, s: &Session) -> Value {
    let _ = host;
    json!({
        "@odata.context": "/redfish/v1/$metadata#Session.Session",
        "@odata.id": format!("/redfish/v1/SessionService/Sessions/{}", s.id),
        "@odata.type": "#Session.v1_3_0.Session",
        "ClientOriginIPAddress": "127.0.0.1",
        "CreatedTime": s.created,
        "Description": "User Session",
        "Id": s.id,
        "Name": "User Session",
        "Password": null,
        "SessionType": "Redfish",
        "UserName": s.user,
    })
}

fn sessions(ctx: &Ctx<'_>) -> Reply {
    let mut st = ctx.host.lock();
    st.purge_sessions(ctx.inner);
    let id = "/redfish/v1/SessionService/Sessions";
    let ty = "#SessionCollection.SessionCollection";
    if ctx.expand() {
        let m = st
            .sessions
            .iter()
            .map(|s| session_json(ctx.host, s))
            .collect();
        Reply::ok(&expanded_collection(id, ty, "Session Collection", m))
    } else {
        let m = st
            .sessions
            .iter()
            .map(|s| format!("{id}/{}", s.id))
            .collect();
        Reply::ok(&collection(id, ty, "Session Collection", m))
    }
}

fn login(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let user = body.get("UserName").and_then(Value::as_str);
    let pass = body.get("Password").and_then(Value::as_str);
    let (Some(user), Some(pass)) = (user, pass) else {
        let missing = if user.is_none() {
            "UserName"
        } else {
            "Password"
        };
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["Session".into(), missing.into()],
        );
    };
    if user != host.username || pass != host.password {
        return error(host, StatusCode::UNAUTHORIZED, messages::SYS415, &[])
            .with(header::WWW_AUTHENTICATE, "Basic realm=\"RedfishService\"");
    }
    let mut st = host.lock();
    st.purge_sessions(ctx.inner);
    if st.sessions.len() >= ctx.inner.max_sessions {
        return error(
            host,
            StatusCode::SERVICE_UNAVAILABLE,
            messages::RAC0218,
            &[],
        );
    }
    let id = st.next_session.to_string();
    st.next_session += 1;
    let token = format!("{:016x}{:016x}", st.rng.u64(..), st.rng.u64(..));
    let s = Session {
        id: id.clone(),
        token: token.clone(),
        user: user.to_string(),
        created: ctx.inner.clock.now_iso(),
        last_used: tokio::time::Instant::now(),
    };
    let mut v = session_json(host, &s);
    st.sessions.push(s);
    v["@Message.ExtendedInfo"] = if host.is_dell() {
        json!([
            ext(host, &base::CREATED, &[]),
            ext(host, &messages::SYS414, &[])
        ])
    } else {
        json!([ext(host, &base::CREATED, &[])])
    };
    let location = format!("/redfish/v1/SessionService/Sessions/{id}");
    Reply::json(StatusCode::CREATED, &v)
        .with(header::LOCATION, location)
        .with(header::HeaderName::from_static("x-auth-token"), token)
}

fn session_get(ctx: &Ctx<'_>, id: &str) -> Reply {
    let mut st = ctx.host.lock();
    st.purge_sessions(ctx.inner);
    match st.sessions.iter().find(|s| s.id == id) {
        Some(s) => Reply::ok(&session_json(ctx.host, s)),
        None => not_found(ctx.host, ctx.path),
    }
}

fn logout(ctx: &Ctx<'_>, id: &str) -> Reply {
    let mut st = ctx.host.lock();
    let before = st.sessions.len();
    st.sessions.retain(|s| s.id != id);
    if st.sessions.len() == before {
        return not_found(ctx.host, ctx.path);
    }
    let _ = &ctx.session;
    Reply::ok(&success_info(ctx.host))
}

fn update_service(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#UpdateService.UpdateService",
        "@odata.id": "/redfish/v1/UpdateService",
        "@odata.type": "#UpdateService.v1_8_0.UpdateService",
        "Actions": {"#UpdateService.SimpleUpdate": {
            "@Redfish.OperationApplyTimeSupport": {
                "@odata.type": "#Settings.v1_3_0.OperationApplyTimeSupport",
                "SupportedValues": ["Immediate", "OnReset"],
            },
            "TransferProtocol@Redfish.AllowableValues": ["HTTP", "NFS", "CIFS", "TFTP", "HTTPS"],
            "target": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
        }},
        "Description": "Represents the properties for the Update Service",
        "FirmwareInventory": odata_id("/redfish/v1/UpdateService/FirmwareInventory"),
        "Id": "UpdateService",
        "MaxImageSizeBytes": null,
        "MultipartHttpPushUri": "/redfish/v1/UpdateService/MultipartUpload",
        "Name": "Update Service",
        "ServiceEnabled": true,
        "Status": {"Health": "OK", "State": "Enabled"},
    });
    match host.flavor {
        Flavor::Idrac9 => {
            v["HttpPushUri"] = json!("/redfish/v1/UpdateService/FirmwareInventory");
            let key = if host.strict {
                "#DellUpdateService.Install"
            } else {
                "DellUpdateService.v1_1_0#DellUpdateService.Install"
            };
            v["Actions"]["Oem"] = json!({key: {
                "InstallUpon@Redfish.AllowableValues": ["Now", "NowAndReboot", "NextReboot"],
                "target": "/redfish/v1/UpdateService/Actions/Oem/DellUpdateService.Install",
            }});
        }
        Flavor::Idrac10 => {}
        Flavor::Generic => {
            v["Actions"]["#UpdateService.SimpleUpdate"]["TransferProtocol@Redfish.AllowableValues"] =
                json!(["HTTP", "HTTPS"]);
        }
    }
    v
}

fn inventory_member_json(host: &Host, c: &crate::inventory::Component, which: &str) -> Value {
    let (version, date, id) = match which {
        "Previous" => (
            c.previous.clone().unwrap_or_default(),
            c.previous_release_date.clone(),
            if host.is_dell() {
                c.dell_id("Previous", c.previous.as_deref().unwrap_or_default())
            } else {
                format!("{}-Previous", c.generic_id)
            },
        ),
        _ => (
            c.version.clone(),
            c.release_date.clone(),
            if host.is_dell() {
                c.dell_id(which, &c.version)
            } else {
                c.generic_id.clone()
            },
        ),
    };
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#SoftwareInventory.SoftwareInventory",
        "@odata.id": format!("/redfish/v1/UpdateService/FirmwareInventory/{id}"),
        "@odata.type": "#SoftwareInventory.v1_2_3.SoftwareInventory",
        "Description": "Represents Firmware Inventory",
        "Id": id,
        "Name": c.name,
        "ReleaseDate": if host.strict && !date.contains('-') { "2000-01-01T00:00:00Z".to_string() } else { date.clone() },
        "SoftwareId": c.component_id,
        "Status": {"Health": "OK", "State": if which == "Previous" { "StandbyOffline" } else { "Enabled" }},
        "Updateable": true,
        "Version": version,
    });
    if host.is_dell() {
        let mut parts = version
            .split(['.', '-'])
            .map(|p| p.parse::<u64>().unwrap_or(0));
        let (ma, mi, rev) = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        let status = if which == "Previous" {
            "AvailableForInstallation"
        } else {
            "Installed"
        };
        let inst = if which == "Previous" {
            "PREVIOUS"
        } else {
            "INSTALLED"
        };
        let pci: Vec<&str> = c
            .pci
            .as_deref()
            .map(|p| p.split(':').collect())
            .unwrap_or_default();
        let identity = match &c.pci {
            Some(p) => format!("DCIM:firmware:{p}"),
            None => format!(
                "DCIM:{}:{}",
                c.kind.component_type().replace("FRMW", "firmware"),
                c.component_id
            ),
        };
        v["Oem"] = json!({"Dell": {"DellSoftwareInventory": {
            "BuildNumber": 0,
            "ComponentID": c.component_id,
            "ComponentType": c.kind.component_type(),
            "Description": "The DellSoftwareInventory resource is a representation of an available device firmware in the managed system.",
            "DeviceID": pci.get(1),
            "ElementName": c.name,
            "Id": format!("DCIM:{inst}_0x23_{}", c.fqdd),
            "IdentityInfoType": [if c.pci.is_some() { "OrgID:ComponentType:VendorID:DeviceID:SubVendorID:SubDeviceID" } else { "OrgID:ComponentType:ComponentID" }],
            "IdentityInfoValue": [identity],
            "InstallationDate": if which == "Previous" { "NA".to_string() } else { date.clone() },
            "IsEntity": true,
            "MajorVersion": ma,
            "MinorVersion": mi,
            "Name": "DellSoftwareInventory",
            "RevisionNumber": rev,
            "SidebandUpdateCapable": false,
            "Status": status,
            "SubDeviceID": pci.get(3),
            "SubVendorID": pci.get(2),
            "VendorID": pci.first(),
        }}});
    }
    v
}

/// All inventory members of the host: (id, json).
fn inventory_members(host: &Host, st: &HostState) -> Vec<Value> {
    let mut out = Vec::new();
    for c in &st.components {
        out.push(inventory_member_json(host, c, "Installed"));
        if c.component_id == "159" && host.is_dell() {
            out.push(inventory_member_json(host, c, "Current"));
        }
    }
    for c in &st.components {
        if c.previous.is_some() && host.is_dell() {
            out.push(inventory_member_json(host, c, "Previous"));
        }
    }
    for a in &st.available {
        out.push(json!({
            "@odata.context": "/redfish/v1/$metadata#SoftwareInventory.SoftwareInventory",
            "@odata.id": format!("/redfish/v1/UpdateService/FirmwareInventory/{}", a.id),
            "@odata.type": "#SoftwareInventory.v1_2_3.SoftwareInventory",
            "Description": "Represents Firmware Inventory",
            "Id": a.id,
            "Name": a.package.name,
            "ReleaseDate": if host.strict { "2000-01-01T00:00:00Z" } else { "00:00:00Z" },
            "SoftwareId": a.package.component_id,
            "Status": {"Health": "OK", "State": "Enabled"},
            "Updateable": true,
            "Version": a.package.version,
        }));
    }
    out
}

fn inventory_etag(st: &HostState) -> String {
    format!("W/\"inv-{}\"", st.inventory_gen)
}

fn inventory(ctx: &Ctx<'_>) -> Reply {
    let st = ctx.host.lock();
    let members = inventory_members(ctx.host, &st);
    let id = "/redfish/v1/UpdateService/FirmwareInventory";
    let ty = "#SoftwareInventoryCollection.SoftwareInventoryCollection";
    let v = if ctx.expand() {
        expanded_collection(id, ty, "Firmware Inventory Collection", members)
    } else {
        let ids = members
            .iter()
            .filter_map(|m| m["@odata.id"].as_str().map(str::to_string))
            .collect();
        collection(id, ty, "Firmware Inventory Collection", ids)
    };
    let mut v = v;
    v["Description"] = json!("Collection of Firmware Inventory");
    Reply::ok(&v).with(header::ETAG, inventory_etag(&st))
}

fn inventory_member(ctx: &Ctx<'_>, id: &str) -> Reply {
    let st = ctx.host.lock();
    inventory_members(ctx.host, &st)
        .into_iter()
        .find(|m| m["Id"] == id)
        .map(|m| Reply::ok(&m))
        .unwrap_or_else(|| not_found(ctx.host, ctx.path))
}

fn http_push(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let Some(if_match) = ctx
        .headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return error(host, StatusCode::BAD_REQUEST, messages::SYS404, &[]);
    };
    {
        let st = host.lock();
        let current = inventory_etag(&st);
        let strip = |s: &str| {
            s.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_string()
        };
        if if_match.trim() != "*" && strip(if_match) != strip(&current) {
            return error(
                host,
                StatusCode::PRECONDITION_FAILED,
                base::PRECONDITION_FAILED,
                &[],
            );
        }
    }
    let parts = match upload_parts(ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(file) = parts
        .iter()
        .find(|p| p.name == "file" || p.name == "UpdateFile" || p.filename.is_some())
    else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["HttpPushUri".into(), "file".into()],
        );
    };
    let package = match Package::parse(&file.data) {
        Ok(p) => p,
        Err(crate::PackageError::Checksum) => {
            return error(host, StatusCode::BAD_REQUEST, messages::RED007, &[]);
        }
        Err(_) => return error(host, StatusCode::BAD_REQUEST, messages::RED008, &[]),
    };
    let mut st = host.lock();
    let id = format!(
        "Available-{}-{}",
        package.component_id.replace(':', ""),
        package.version
    );
    st.available.retain(|a| a.id != id);
    st.available.push(crate::host::Available {
        id: id.clone(),
        package: package.clone(),
    });
    st.inventory_gen += 1;
    let location = format!("/redfish/v1/UpdateService/FirmwareInventory/{id}");
    let v = json!({
        "@odata.context": "/redfish/v1/$metadata#SoftwareInventory.SoftwareInventory",
        "@odata.id": location,
        "@odata.type": "#SoftwareInventory.v1_2_3.SoftwareInventory",
        "Description": "Represents Firmware Inventory",
        "Id": id,
        "Name": package.name,
        "SoftwareId": package.component_id,
        "Status": {"Health": "OK", "State": "Enabled"},
        "Updateable": true,
        "Version": package.version,
    });
    Reply::json(StatusCode::CREATED, &v).with(header::LOCATION, location)
}

fn upload_parts(ctx: &Ctx<'_>) -> Result<Vec<multipart::Part>, Reply> {
    let host = ctx.host;
    let ct = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(b) = multipart::boundary(ct) else {
        return Err(error(
            host,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            base::UNSUPPORTED_MEDIA,
            &[],
        ));
    };
    multipart::parse(ctx.body, &b)
        .ok_or_else(|| error(host, StatusCode::BAD_REQUEST, messages::RAC0508, &[]))
}

fn task_location(host: &Host, id: &str) -> String {
    if host.flavor == Flavor::Idrac10 {
        format!("/redfish/v1/TaskService/TaskMonitors/{id}")
    } else {
        format!("/redfish/v1/TaskService/Tasks/{id}")
    }
}

fn accepted(host: &Host, id: &str) -> Reply {
    let loc = task_location(host, id);
    if host.flavor == Flavor::Idrac10 {
        Reply::empty(StatusCode::ACCEPTED).with(header::LOCATION, loc)
    } else {
        let v = json!({"@Message.ExtendedInfo": [ext(host, &base::SUCCESS, &[])]});
        Reply::json(StatusCode::ACCEPTED, &v).with(header::LOCATION, loc)
    }
}

/// Starts an update job.
fn start_update(
    ctx: &Ctx<'_>,
    source: ImageSource,
    name: String,
    reboot_after: bool,
) -> Result<String, Reply> {
    let (inner, host) = (ctx.inner, ctx.host);
    let id = {
        let mut st = host.lock();
        host::create_job(
            host,
            inner,
            &mut st,
            NewJob {
                name,
                job_type: "FirmwareUpdate",
            },
        )
        .map_err(|r| refusal(host, r))?
    };
    let (i2, h2, id2) = (inner.clone(), host.clone(), id.clone());
    inner.spawn(async move { host::run_update_job(i2, h2, id2, source, reboot_after).await });
    Ok(id)
}

/// Resolves an `ImageURI` that points into the iDRAC's own inventory.
fn local_image(ctx: &Ctx<'_>, uri: &str) -> Result<(ImageSource, String), Reply> {
    let host = ctx.host;
    let id = uri.rsplit('/').next().unwrap_or("");
    let st = host.lock();
    if let Some(a) = st.available.iter().find(|a| a.id == id) {
        let name = format!(
            "Firmware Update: {}",
            host::firmware_job_name(&a.package.name)
        );
        return Ok((ImageSource::Local(a.package.clone()), name));
    }
    for (i, c) in st.components.iter().enumerate() {
        let prev = c.previous.as_deref().map(|p| c.dell_id("Previous", p));
        let generic_prev = format!("{}-Previous", c.generic_id);
        if prev.as_deref() == Some(id) || (c.previous.is_some() && generic_prev == id) {
            let label = if c.kind == crate::PackageKind::Bios {
                "BIOS"
            } else {
                "Firmware"
            };
            return Ok((
                ImageSource::Rollback(i),
                format!("Firmware Rollback: {label}"),
            ));
        }
    }
    Err(error(host, StatusCode::BAD_REQUEST, messages::SUP024, &[]))
}

fn simple_update(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(uri) = body.get("ImageURI").and_then(Value::as_str) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["UpdateService.SimpleUpdate".into(), "ImageURI".into()],
        );
    };
    let proto = body.get("TransferProtocol").and_then(Value::as_str);
    if let Some(p) = proto {
        let ok = ["HTTP", "HTTPS", "NFS", "CIFS", "TFTP"].contains(&p)
            && (host.is_dell() || ["HTTP", "HTTPS"].contains(&p));
        if !ok {
            return error(
                host,
                StatusCode::BAD_REQUEST,
                base::ACTION_PARAM_NOT_IN_LIST,
                &[
                    p.into(),
                    "TransferProtocol".into(),
                    "UpdateService.SimpleUpdate".into(),
                ],
            );
        }
    }
    if let Some(t) = body.get("@Redfish.OperationApplyTime")
        && t != "Immediate"
        && t != "OnReset"
    {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_NOT_IN_LIST,
            &[
                t.to_string(),
                "@Redfish.OperationApplyTime".into(),
                "UpdateService.SimpleUpdate".into(),
            ],
        );
    }
    let (source, name) = if uri.starts_with("/redfish/v1/UpdateService/FirmwareInventory/") {
        match local_image(ctx, uri) {
            Ok(x) => x,
            Err(r) => return r,
        }
    } else {
        let full = if uri.contains("://") {
            uri.to_string()
        } else if let Some(p) = proto {
            format!("{}://{}", p.to_ascii_lowercase(), uri)
        } else {
            return error(host, StatusCode::BAD_REQUEST, messages::RED005, &[]);
        };
        if url::Url::parse(&full).is_err() {
            return error(host, StatusCode::BAD_REQUEST, messages::RED005, &[]);
        }
        (
            ImageSource::Url(full),
            "Firmware Update: update:new".to_string(),
        )
    };
    match start_update(ctx, source, name, false) {
        Ok(id) => accepted(host, &id),
        Err(r) => r,
    }
}

fn multipart_upload(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let parts = match upload_parts(ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut apply_time = "Immediate".to_string();
    if let Some(p) = parts.iter().find(|p| p.name == "UpdateParameters") {
        match serde_json::from_slice::<Value>(&p.data) {
            Ok(Value::Object(m)) => {
                if let Some(t) = m.get("@Redfish.OperationApplyTime").and_then(Value::as_str) {
                    apply_time = t.to_string();
                }
            }
            _ => return bad_json(host),
        }
    }
    if apply_time != "Immediate" && apply_time != "OnReset" && apply_time != "OnStartUpdateRequest"
    {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_NOT_IN_LIST,
            &[
                apply_time,
                "@Redfish.OperationApplyTime".into(),
                "MultipartUpload".into(),
            ],
        );
    }
    let Some(file) = parts.iter().find(|p| {
        p.name == "UpdateFile"
            || p.name == "file"
            || (p.filename.is_some() && p.name != "UpdateParameters")
    }) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["MultipartUpload".into(), "UpdateFile".into()],
        );
    };
    // The file is on the iDRAC now; validation happens in the job, like a DUP.
    let name = match Package::parse(&file.data) {
        Ok(p) => format!("Firmware Update: {}", host::firmware_job_name(&p.name)),
        Err(_) => "Firmware Update: update:new".to_string(),
    };
    let source = ImageSource::Bytes(file.data.clone());
    match start_update(ctx, source, name, false) {
        Ok(id) => accepted(host, &id),
        Err(r) => r,
    }
}

fn dell_install(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(uris) = body.get("SoftwareIdentityURIs").and_then(Value::as_array) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &[
                "DellUpdateService.Install".into(),
                "SoftwareIdentityURIs".into(),
            ],
        );
    };
    let upon = body
        .get("InstallUpon")
        .and_then(Value::as_str)
        .unwrap_or("Now");
    if !["Now", "NowAndReboot", "NextReboot"].contains(&upon) {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_NOT_IN_LIST,
            &[
                upon.into(),
                "InstallUpon".into(),
                "DellUpdateService.Install".into(),
            ],
        );
    }
    let mut first = None;
    for uri in uris {
        let Some(uri) = uri.as_str() else {
            return bad_json(host);
        };
        let (source, name) = match local_image(ctx, uri) {
            Ok(x) => x,
            Err(r) => return r,
        };
        match start_update(ctx, source, name, upon == "NowAndReboot") {
            Ok(id) => {
                first.get_or_insert(id);
            }
            Err(r) => return r,
        }
    }
    match first {
        Some(id) => accepted(host, &id),
        None => error(host, StatusCode::BAD_REQUEST, messages::SUP024, &[]),
    }
}

fn task_service(ctx: &Ctx<'_>) -> Value {
    json!({
        "@odata.context": "/redfish/v1/$metadata#TaskService.TaskService",
        "@odata.id": "/redfish/v1/TaskService",
        "@odata.type": "#TaskService.v1_1_5.TaskService",
        "CompletedTaskOverWritePolicy": "Oldest",
        "DateTime": ctx.inner.clock.now_iso(),
        "Description": "Represents the properties for the service",
        "Id": "TaskService",
        "LifeCycleEventOnTaskStateChange": true,
        "Name": "Task Service",
        "ServiceEnabled": true,
        "Status": {"Health": "OK", "State": "Enabled"},
        "Tasks": odata_id("/redfish/v1/TaskService/Tasks"),
    })
}

/// Whether the task view of a job is still there (purged after a while, lost on restart).
fn task_visible(ctx: &Ctx<'_>, j: &Job) -> bool {
    if j.task_lost {
        return false;
    }
    if ctx.host.is_dell()
        && let Some(t) = j.finished_at
    {
        return t.elapsed() < ctx.inner.clock.dell(durations::TASK_PURGE);
    }
    true
}

fn dell_job(host: &Host, j: &Job, base: Option<&str>) -> Value {
    let idrac10 = host.flavor == Flavor::Idrac10;
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#DellJob.DellJob",
        "@odata.type": if idrac10 { "#DellJob.v1_6_0.DellJob" } else { "#DellJob.v1_4_0.DellJob" },
        "ActualRunningStartTime": j.actual_start,
        "ActualRunningStopTime": j.actual_stop,
        "CompletionTime": j.completion,
        "Description": "Job Instance",
        "EndTime": if idrac10 { Value::Null } else { json!("TIME_NA") },
        "Id": j.id,
        "JobState": j.state.dell(),
        "JobType": j.job_type,
        "Message": render(j.msg.message, &j.msg_args),
        "MessageArgs": j.msg_args,
        "MessageArgs@odata.count": j.msg_args.len(),
        "MessageId": j.msg.id,
        "Name": j.name,
        "PercentComplete": j.percent,
        "StartTime": j.start_time,
        "TargetSettingsURI": null,
    });
    if let Some(b) = base {
        v["@odata.id"] = json!(format!("{b}/{}", j.id));
    }
    if idrac10 {
        v["@odata.etag"] = json!(format!("W/\"generation-{}\"", j.generation));
    }
    v
}

fn task_json(ctx: &Ctx<'_>, j: &Job) -> Value {
    let host = ctx.host;
    let msg = ext(host, &j.msg, &j.msg_args);
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#Task.Task",
        "@odata.id": format!("/redfish/v1/TaskService/Tasks/{}", j.id),
        "@odata.type": "#Task.v1_4_3.Task",
        "Description": "Server Configuration and other Tasks running on iDRAC are listed here",
        "Id": j.id,
        "Messages": [{
            "Message": msg["Message"],
            "MessageArgs": msg["MessageArgs"],
            "MessageArgs@odata.count": msg["MessageArgs@odata.count"],
            "MessageId": msg["MessageId"],
        }],
        "Messages@odata.count": 1,
        "Name": j.name,
        "PercentComplete": j.percent,
        "TaskMonitor": format!("/redfish/v1/TaskService/TaskMonitors/{}", j.id),
        "TaskState": j.state.task(),
        "TaskStatus": j.state.status(),
    });
    if host.is_dell() {
        v["Oem"] = json!({"Dell": dell_job(host, j, None)});
    } else {
        v["Description"] = json!("Task");
    }
    v
}

fn tasks(ctx: &Ctx<'_>) -> Reply {
    let st = ctx.host.lock();
    let visible: Vec<&Job> = st.jobs.iter().filter(|j| task_visible(ctx, j)).collect();
    let id = "/redfish/v1/TaskService/Tasks";
    let ty = "#TaskCollection.TaskCollection";
    if ctx.expand() {
        let m = visible.iter().map(|j| task_json(ctx, j)).collect();
        Reply::ok(&expanded_collection(id, ty, "Task Collection", m))
    } else {
        let m = visible.iter().map(|j| format!("{id}/{}", j.id)).collect();
        Reply::ok(&collection(id, ty, "Task Collection", m))
    }
}

fn task(ctx: &Ctx<'_>, id: &str) -> Reply {
    let st = ctx.host.lock();
    match st.job(id).filter(|j| task_visible(ctx, j)) {
        Some(j) => Reply::ok(&task_json(ctx, j)),
        None => not_found(ctx.host, ctx.path),
    }
}

fn task_monitor(ctx: &Ctx<'_>, id: &str) -> Reply {
    let st = ctx.host.lock();
    match st.job(id).filter(|j| task_visible(ctx, j)) {
        Some(j) if j.state.finished() => Reply::empty(StatusCode::NO_CONTENT),
        Some(_) => Reply::empty(StatusCode::ACCEPTED).with(header::LOCATION, ctx.path.to_string()),
        None => not_found(ctx.host, ctx.path),
    }
}

fn dmtf_job(ctx: &Ctx<'_>, j: &Job) -> Value {
    let msg = ext(ctx.host, &j.msg, &j.msg_args);
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#Job.Job",
        "@odata.id": format!("/redfish/v1/JobService/Jobs/{}", j.id),
        "@odata.type": "#Job.v1_0_5.Job",
        "Description": "Job Instance",
        "Id": j.id,
        "JobState": j.state.task(),
        "JobStatus": j.state.status(),
        "Messages": [{"Message": msg["Message"], "MessageArgs": msg["MessageArgs"], "MessageId": msg["MessageId"]}],
        "Name": j.name,
        "PercentComplete": j.percent,
    });
    if let Some(t) = &j.completion {
        v["EndTime"] = json!(format!("{t}-05:00"));
    }
    v
}

fn job_service_jobs(ctx: &Ctx<'_>) -> Reply {
    let st = ctx.host.lock();
    let id = "/redfish/v1/JobService/Jobs";
    let ty = "#JobCollection.JobCollection";
    if ctx.expand() {
        let m = st.jobs.iter().map(|j| dmtf_job(ctx, j)).collect();
        Reply::ok(&expanded_collection(id, ty, "Job Collection", m))
    } else {
        let m = st.jobs.iter().map(|j| format!("{id}/{}", j.id)).collect();
        Reply::ok(&collection(id, ty, "Job Collection", m))
    }
}

fn dell_jobs(ctx: &Ctx<'_>, base: &str) -> Reply {
    let st = ctx.host.lock();
    let ty = "#DellJobCollection.DellJobCollection";
    let mut v = if ctx.expand() {
        let m = st
            .jobs
            .iter()
            .map(|j| dell_job(ctx.host, j, Some(base)))
            .collect();
        expanded_collection(base, ty, "Collection of Job Instances", m)
    } else {
        let m = st.jobs.iter().map(|j| format!("{base}/{}", j.id)).collect();
        collection(base, ty, "Collection of Job Instances", m)
    };
    v["Id"] = json!("JobQueue");
    v["Name"] = json!("JobQueue");
    Reply::ok(&v)
}

fn delete_job(ctx: &Ctx<'_>, id: &str) -> Reply {
    let mut st = ctx.host.lock();
    match st.jobs.iter().position(|j| j.id == id) {
        Some(i) => {
            if st.jobs[i].state == JobState::Running {
                return error(
                    ctx.host,
                    StatusCode::BAD_REQUEST,
                    crate::messages::Msg {
                        id: "SUP0108",
                        message: "A firmware update operation is already in progress.",
                        resolution: "Wait for the update operation to conclude and then re-try.",
                        severity: "Warning",
                    },
                    &[],
                );
            }
            st.jobs.remove(i);
            Reply::ok(&success_info(ctx.host))
        }
        None => error(ctx.host, StatusCode::BAD_REQUEST, messages::SUP024, &[]),
    }
}

fn delete_job_queue(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(jid) = body.get("JobID").and_then(Value::as_str) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["DeleteJobQueue".into(), "JobID".into()],
        );
    };
    let mut st = host.lock();
    match jid {
        "JID_CLEARALL" => st.jobs.retain(|j| j.state == JobState::Running),
        "JID_CLEARALL_FORCE" => {
            st.jobs.clear();
            st.lc_settle_until = Some(ctx.inner.clock.deadline(durations::LC_SETTLE));
        }
        one => {
            let before = st.jobs.len();
            st.jobs.retain(|j| j.id != one);
            if st.jobs.len() == before {
                return error(host, StatusCode::BAD_REQUEST, messages::SUP024, &[]);
            }
        }
    }
    Reply::ok(&success_info(host))
}

fn lc_status(ctx: &Ctx<'_>) -> Reply {
    let mut st = ctx.host.lock();
    let lc = st.lc_ready();
    let server = match st.server {
        ServerStatus::OutOfPost => "OutOfPOST",
        ServerStatus::InPost => "InPOST",
        ServerStatus::PoweredOff => "PoweredOff",
    };
    let rt = lc && st.server != ServerStatus::InPost;
    let ready = |b: bool| if b { "Ready" } else { "NotReady" };
    let mut v = json!({
        "LCStatus": ready(lc),
        "RTStatus": ready(rt),
        "ServerStatus": server,
        "Status": ready(lc && rt),
        "TelemetryStatus": "Ready",
    });
    v["@Message.ExtendedInfo"] = json!([ext(ctx.host, &messages::SYS413, &[])]);
    Reply::ok(&v)
}

fn system_reset(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(t) = body.get("ResetType").and_then(Value::as_str) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["ComputerSystem.Reset".into(), "ResetType".into()],
        );
    };
    let on = host.lock().power_on;
    let kind = match t {
        "On" if on => None,
        "On" => Some(ResetKind::On),
        "ForceOff" => Some(ResetKind::ForceOff),
        "GracefulShutdown" if on => Some(ResetKind::GracefulShutdown),
        "GracefulShutdown" => None,
        "ForceRestart" | "GracefulRestart" | "PowerCycle" => Some(ResetKind::Restart),
        "PushPowerButton" if on => Some(ResetKind::GracefulShutdown),
        "PushPowerButton" => Some(ResetKind::On),
        "Nmi" => None,
        other => {
            return error(
                host,
                StatusCode::BAD_REQUEST,
                base::ACTION_PARAM_NOT_IN_LIST,
                &[
                    other.into(),
                    "ResetType".into(),
                    "ComputerSystem.Reset".into(),
                ],
            );
        }
    };
    if let Some(kind) = kind {
        let (i2, h2) = (ctx.inner.clone(), host.clone());
        if kind == ResetKind::ForceOff || kind == ResetKind::Restart || kind == ResetKind::On {
            // Power state changes before the response, like the real one.
            let mut st = host.lock();
            if kind == ResetKind::ForceOff {
                st.power_on = false;
                st.server = ServerStatus::PoweredOff;
            } else if kind == ResetKind::Restart {
                host::create_reboot_job(host, &mut st);
            }
        }
        ctx.inner
            .spawn(async move { host::reset_host(i2, h2, kind).await });
    }
    Reply::empty(StatusCode::NO_CONTENT)
}

fn manager_reset(ctx: &Ctx<'_>, oem: bool) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !oem {
        match body.get("ResetType").and_then(Value::as_str) {
            Some("GracefulRestart") => {}
            Some(other) => {
                return error(
                    host,
                    StatusCode::BAD_REQUEST,
                    base::ACTION_PARAM_NOT_IN_LIST,
                    &[other.into(), "ResetType".into(), "Manager.Reset".into()],
                );
            }
            None => {
                return error(
                    host,
                    StatusCode::BAD_REQUEST,
                    base::ACTION_PARAM_MISSING,
                    &["Manager.Reset".into(), "ResetType".into()],
                );
            }
        }
    }
    let (i2, h2) = (ctx.inner.clone(), host.clone());
    ctx.inner
        .spawn(async move { host::restart_bmc(i2, h2, durations::BMC_PENDING).await });
    if oem {
        Reply::ok(&success_info(host))
    } else {
        Reply::empty(StatusCode::NO_CONTENT)
    }
}

fn install_from_repository(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let share_type = s("ShareType")
        .unwrap_or_else(|| "HTTPS".into())
        .to_ascii_uppercase();
    let Some(ip) = s("IPAddress") else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["InstallFromRepository".into(), "IPAddress".into()],
        );
    };
    if !["NFS", "CIFS", "HTTP", "HTTPS", "FTP", "TFTP", "LOCAL"].contains(&share_type.as_str()) {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_NOT_IN_LIST,
            &[
                share_type,
                "ShareType".into(),
                "InstallFromRepository".into(),
            ],
        );
    }
    let apply = match body.get("ApplyUpdate") {
        None => true,
        Some(Value::String(v)) if v.eq_ignore_ascii_case("true") => true,
        Some(Value::String(v)) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            return error(
                host,
                StatusCode::BAD_REQUEST,
                base::PROPERTY_VALUE_TYPE,
                &[v.to_string(), "ApplyUpdate".into()],
            );
        }
    };
    let reboot = match body.get("RebootNeeded") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return error(
                host,
                StatusCode::BAD_REQUEST,
                base::PROPERTY_VALUE_TYPE,
                &[v.to_string(), "RebootNeeded".into()],
            );
        }
    };
    let flag = |k: &str| {
        body.get(k).is_some_and(|v| {
            v.as_bool() == Some(true) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
        })
    };
    let share = s("ShareName").unwrap_or_default();
    let file = s("CatalogFile").unwrap_or_else(|| "Catalog.xml".into());
    let mut path = String::new();
    for part in [share.trim_matches('/'), file.trim_matches('/')] {
        if !part.is_empty() {
            path.push('/');
            path.push_str(part);
        }
    }
    let catalog_url = format!("{}://{}{}", share_type.to_ascii_lowercase(), ip, path);
    let req = RepoRequest {
        catalog_url,
        apply,
        reboot,
        same_versions: flag("ApplySameVersions"),
        downgrades: flag("ApplyDowngradeVersions"),
    };
    let id = {
        let mut st = host.lock();
        match host::create_job(
            host,
            ctx.inner,
            &mut st,
            NewJob {
                name: "Repository Update".into(),
                job_type: "RepositoryUpdate",
            },
        ) {
            Ok(id) => id,
            Err(r) => return refusal(host, r),
        }
    };
    let (i2, h2, id2) = (ctx.inner.clone(), host.clone(), id.clone());
    ctx.inner
        .spawn(async move { host::run_repo_job(i2, h2, id2, req).await });
    accepted(host, &id)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn repo_update_list(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let st = host.lock();
    let entries = match &st.repo {
        Some(e) if !e.is_empty() => e,
        _ => return error(host, StatusCode::BAD_REQUEST, messages::SUP029, &[]),
    };
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<CIM xmlns:fo=\"http://www.w3.org/1999/XSL/Format\" CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\n  <MESSAGE ID=\"4711\" PROTOCOLVERSION=\"1.0\">\n    <SIMPLEREQ>\n",
    );
    for e in entries {
        let Some(c) = st.components.get(e.comp) else {
            continue;
        };
        let target = if c.component_id == "25227" {
            "DCIM:INSTALLED#iDRAC.Embedded.1-1#IDRACinfo".to_string()
        } else {
            format!("DCIM:INSTALLED#701__{}", c.fqdd)
        };
        let prop = |n: &str, v: &str| {
            format!(
                "<PROPERTY NAME=\"{n}\" TYPE=\"string\"><VALUE>{}</VALUE></PROPERTY>",
                xml_escape(v)
            )
        };
        let arr = |n: &str, v: &[String]| {
            let vals: String = v
                .iter()
                .map(|x| format!("<VALUE>{}</VALUE>", xml_escape(x)))
                .collect();
            format!(
                "<PROPERTY.ARRAY NAME=\"{n}\" TYPE=\"string\"><VALUE.ARRAY>{vals}</VALUE.ARRAY></PROPERTY.ARRAY>"
            )
        };
        let pci: Vec<String> = c.pci.iter().cloned().collect();
        let info_name: Vec<String> = if pci.is_empty() {
            vec![]
        } else {
            vec!["VendorID:DeviceID:SubVendorID:SubDeviceID".into()]
        };
        xml.push_str(
            "      <VALUE.NAMEDINSTANCE>\n        <INSTANCENAME CLASSNAME=\"DCIM_RepoUpdateSWID\">",
        );
        xml.push_str(&prop(
            "Criticality",
            if e.criticality.is_empty() {
                "1"
            } else {
                &e.criticality
            },
        ));
        xml.push_str(&prop("DisplayName", &c.name));
        xml.push_str("<PROPERTY NAME=\"BaseLocation\" TYPE=\"string\"><VALUE/></PROPERTY>");
        xml.push_str(&prop("PackagePath", &e.package_path));
        xml.push_str(&prop("PackageName", &e.package_name));
        xml.push_str(&prop("PackageVersion", &e.version));
        xml.push_str(&prop("RebootType", e.reboot_type));
        xml.push_str(&prop("JobID", &e.job_id));
        xml.push_str(&prop("Target", &target));
        xml.push_str(&prop("ComponentID", &c.component_id));
        xml.push_str(&prop("ComponentType", c.kind.component_type()));
        xml.push_str(&arr("ComponentInfoValue", &pci));
        xml.push_str(&arr("ComponentInfoName", &info_name));
        xml.push_str(&arr("ComponentInfoTarget", std::slice::from_ref(&target)));
        xml.push_str(&arr(
            "ComponentInstalledVersion",
            std::slice::from_ref(&e.installed),
        ));
        xml.push_str("\n  </INSTANCENAME>\n      </VALUE.NAMEDINSTANCE>\n");
    }
    xml.push_str("    </SIMPLEREQ>\n  </MESSAGE>\n</CIM>\n");
    let mut v = json!({"PackageList": xml});
    v["@Message.ExtendedInfo"] = json!([ext(host, &messages::SYS413, &[])]);
    Reply::ok(&v)
}
