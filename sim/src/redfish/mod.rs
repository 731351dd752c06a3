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
use crate::json::JsonExt;
use crate::messages::{self, Msg, base, render};
use crate::multipart;
use crate::package::Package;

mod bios;
mod errors;
mod jobs;
mod managers;
mod repository;
mod root;
mod routes;
mod sessions;
mod systems;
mod update;

use self::bios::*;
use self::errors::*;
use self::jobs::*;
use self::managers::*;
use self::repository::*;
use self::root::*;
use self::routes::*;
use self::sessions::*;
use self::systems::*;
use self::update::*;

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

/// `$select`: the `@odata.*` annotations plus each selected property; a
/// `/` in a name selects inside a complex property (`Attributes/BootMode`).
fn selected(full: &Value, sel: &[String]) -> Value {
    let mut out = Value::Object(Map::new());
    if let Some(m) = full.as_object() {
        for (k, v) in m.iter().filter(|(k, _)| k.starts_with("@odata")) {
            out.set(&[k], v.clone());
        }
    }
    for s in sel {
        let path: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
        let pointer: String = path
            .iter()
            .map(|p| format!("/{}", p.replace('~', "~0")))
            .collect();
        if !path.is_empty()
            && let Some(v) = full.pointer(&pointer)
        {
            out.set(&path, v.clone());
        }
    }
    out
}

/// The `ETag` a GET of `resource` carries.
fn etag_of(resource: &Value) -> String {
    format!(
        "W/\"{:016x}\"",
        fnv(&serde_json::to_vec(resource).unwrap_or_default())
    )
}

/// `If-Match` on a PATCH: absent or `*` passes (iDRAC does not require it
/// for PATCH); a tag other than the resource's current one is 412.
fn if_match(ctx: &Ctx<'_>, current: &Value) -> Result<(), Reply> {
    let Some(tags) = ctx
        .headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let strip = |s: &str| {
        s.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    let now = strip(&etag_of(current));
    if tags.split(',').any(|t| t.trim() == "*" || strip(t) == now) {
        Ok(())
    } else {
        Err(error(
            ctx.host,
            StatusCode::PRECONDITION_FAILED,
            base::PRECONDITION_FAILED,
            &[],
        ))
    }
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
    let rest = body.get(start..)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    let ty = std::str::from_utf8(rest.get(..end)?).ok()?;
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
            let kv = kv
                .replace("%24", "$")
                .replace("%2C", ",")
                .replace("%2F", "/")
                .replace("%2f", "/");
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
                let cfg = st.config.generation;
                fnv(format!("{}|{}|{}|{cfg}", st.power_on, st.health(), bios).as_bytes())
            };
            if get {
                cached(ctx, 1, key, || system(ctx))
            } else {
                patch_system(ctx)
            }
        }
        R::Bios => Reply::ok(&bios(ctx)),
        R::BootOptions => boot_options(ctx),
        R::BootOption(id) => match boot_option(host, &id) {
            Some(v) => Reply::ok(&v),
            None => not_found(host, ctx.path),
        },
        R::BiosSettings if get => Reply::ok(&bios_settings(ctx)),
        R::BiosSettings => patch_bios_settings(ctx),
        R::IdracAttributes if get => Reply::ok(&idrac_attributes(ctx)),
        R::IdracAttributes => patch_idrac_attributes(ctx),
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
        R::DellJobs(base) if get => dell_jobs(ctx, base),
        R::DellJobs(base) => post_config_job(ctx, base),
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
            Reply::ok(sys.at(&["Oem", "Dell", "DellSystem"]))
        }
        R::RepoUpdateList => repo_update_list(ctx),
        R::NotFound => not_found(host, ctx.path),
    };
    if get
        && reply.status == StatusCode::OK
        && let (Some(sel), Some(body)) = (ctx.select(), reply.body.as_ref())
        && let Ok(full @ Value::Object(_)) = serde_json::from_slice::<Value>(body)
    {
        return Reply::ok(&selected(&full, &sel));
    }
    reply
}
