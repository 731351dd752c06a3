//! One authenticated Redfish conversation with one BMC: the session manager
//! and the request primitives every Redfish driver uses.
//!
//! Sessions (anchors-features §3 #4, redfish-idrac §2):
//! - one session per BMC, created lazily with a single POST to the service
//!   root's `Links.Sessions` (the low-level nv-redfish `create_session`; the
//!   typed path needs Basic auth and leaks the session on an odd 201 body);
//! - the token is stored through the core's `SessionCache`, so a restarted
//!   process reuses it instead of leaking a new one;
//! - a 401 means the token is gone (expired, iDRAC restarted): log in again
//!   once and repeat the request; a 401 is answered before the BMC acts, so
//!   repeating even a POST is safe;
//! - [`RedfishClient::logout`] deletes the session (the driver's `close`), and
//!   dropping a client that still holds one logs out in the background;
//! - a service without a session service (none in the service root, or
//!   404/405/501 on the POST), or one refusing the POST with 401 and
//!   `WWW-Authenticate: Basic`, gets Basic auth;
//! - a session answered 201 or 204 with `X-Auth-Token` and `Location` but no
//!   body is a session.

use crate::error::{classify_http, transport_error};
use crate::transport::{RequestCounter, RequestCounts, Stack};
use chrono::Utc;
use firmflow_core::bmc::{self, ErrorKind};
use firmflow_core::credentials::Credential;
use firmflow_core::model::{HostId, RedfishSession};
use firmflow_core::store::SessionCache;
use nv_redfish::bmc_http::BmcCredentials;
use nv_redfish::bmc_http::reqwest::BmcError;
use nv_redfish::core::action::ActionTarget;
use nv_redfish::core::query::ExpandQuery;
use nv_redfish::core::{
    Action, Bmc, DataStream, ModificationResponse, MultipartUpdateRequest, ODataId, Raw,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Re-logins one request may do after a 401 before it reports the BMC as
/// unavailable: two, so one session dropped by a restarting iDRAC right after
/// it was granted is still survived without the run noticing.
const RELOGINS_PER_REQUEST: u32 = 2;

/// What an action, upload or delete answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reply {
    /// `Location` of a 202 (task, task monitor or job), as a path.
    pub location: Option<String>,
    /// `Retry-After` of a 202, when numeric.
    pub retry_after: Option<Duration>,
    /// The body of a 200/201, if any.
    pub body: Option<Value>,
}

/// One request, so the 401 retry is written once.
enum Req<'a> {
    Get(&'a str),
    Expand(&'a str),
    Action(&'a str, &'a Value),
    Delete(&'a str),
    Multipart {
        uri: &'a str,
        params: &'a Value,
        file: &'a PathBuf,
        timeout: Duration,
    },
}

impl Req<'_> {
    /// A read, which may be sent again: never an action or an upload.
    fn is_read(&self) -> bool {
        matches!(self, Req::Get(_) | Req::Expand(_))
    }

    /// Method and resource, for the request trace.
    fn describe(&self) -> (&'static str, &str) {
        match self {
            Req::Get(u) => ("GET", u),
            Req::Expand(u) => ("GET $expand", u),
            Req::Action(u, _) => ("POST", u),
            Req::Delete(u) => ("DELETE", u),
            Req::Multipart { uri, .. } => ("POST multipart", uri),
        }
    }
}

/// Whether a request failed because the connection it went out on was
/// closed under it (no answer, a reset, a TLS stream cut without
/// close_notify), as an iDRAC does to its pooled connections when it
/// restarts. Not a refused connect and not a timeout: those say the BMC is
/// away, and are reported.
fn is_dropped_connection(e: &BmcError) -> bool {
    let BmcError::ReqwestError(re) = e else {
        return false;
    };
    if re.is_timeout() || re.is_connect() {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(re);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

enum Resp {
    Doc(Value),
    Reply(Reply),
}

#[derive(Default)]
struct SessionState {
    /// Bumped on every login, so concurrent 401s log in only once.
    generation: u64,
    auth: Auth,
    /// Session resource to DELETE on logout.
    location: Option<String>,
    /// Token of the current session, kept for the Drop logout.
    token: Option<SecretString>,
    /// The service root read during login, so discovery does not read it again.
    root: Option<Value>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Auth {
    #[default]
    None,
    Token,
    Basic,
}

/// What a login POST led to.
enum SessionAnswer {
    /// A session: its token and, when the BMC named it, its resource.
    Created {
        token: SecretString,
        location: Option<String>,
    },
    /// The service wants Basic auth (the reason, for the log).
    UseBasic(&'static str),
}

/// Where a client persists its session.
#[derive(Clone)]
pub struct SessionStore {
    /// The cache (the store's `redfish_sessions`).
    pub cache: Arc<dyn SessionCache>,
    /// The host the session belongs to.
    pub host_id: HostId,
}

/// An authenticated Redfish client for one BMC.
pub struct RedfishClient {
    host: String,
    base: url::Url,
    http: reqwest::Client,
    bmc: Stack,
    credential: Credential,
    store: Option<SessionStore>,
    session: Mutex<SessionState>,
    counter: Arc<RequestCounter>,
    session_ttl: Duration,
}

/// The logout path of a session, whatever form the `Location` took.
pub fn path_of(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(u) if u.has_host() => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        _ => location.to_string(),
    }
}

impl RedfishClient {
    /// A client; nothing is sent until the first request.
    pub fn new(
        host: impl Into<String>,
        base: url::Url,
        http: reqwest::Client,
        bmc: Stack,
        credential: Credential,
        store: Option<SessionStore>,
        counter: Arc<RequestCounter>,
    ) -> Self {
        Self {
            host: host.into(),
            base,
            http,
            bmc,
            credential,
            store,
            session: Mutex::new(SessionState::default()),
            counter,
            // iDRAC's default web-server idle timeout is 1800 s.
            session_ttl: Duration::from_secs(1800),
        }
    }

    /// Host name used in errors.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The session generation: bumped by every login (a re-login after an
    /// iDRAC restart tells the driver to discover its services again).
    pub async fn generation(&self) -> u64 {
        self.session.lock().await.generation
    }

    /// Requests sent so far.
    pub fn requests(&self) -> RequestCounts {
        self.counter.snapshot()
    }

    /// The error for an nv-redfish failure.
    pub fn map_err(&self, e: &BmcError) -> bmc::Error {
        match e {
            BmcError::InvalidResponse { status, text, url } => {
                let mut err = classify_http(&self.host, status.as_u16(), text).1;
                if status.as_u16() == 404 {
                    // Name what is missing: "HTTP 404" alone does not say
                    // which link of the service led nowhere.
                    err.message = format!("{} not found: {}", url.path(), err.message);
                }
                err
            }
            BmcError::ReqwestError(re) => transport_error(&self.host, re),
            BmcError::JsonError(_) | BmcError::DecodeError(_) => bmc::Error::new(
                &self.host,
                ErrorKind::InvalidResponse,
                format!("unreadable response: {e}"),
            ),
            BmcError::ActionNotSupported => {
                bmc::Error::new(&self.host, ErrorKind::NotSupported, e.to_string())
            }
            other => bmc::Error::new(&self.host, ErrorKind::Other, other.to_string()),
        }
    }

    fn is_401(e: &BmcError) -> bool {
        matches!(e, BmcError::InvalidResponse { status, .. } if status.as_u16() == 401)
    }

    /// Makes sure a session (or Basic auth) is in place; returns its generation.
    async fn ensure(&self) -> Result<u64, bmc::Error> {
        let mut st = self.session.lock().await;
        if st.auth != Auth::None {
            return Ok(st.generation);
        }
        if let Some(store) = &self.store {
            match store.cache.get_session(store.host_id).await {
                Ok(Some(s)) if s.expires_at > Utc::now() => {
                    tracing::debug!(host = %self.host, "reusing cached Redfish session");
                    self.bmc.set_credentials(BmcCredentials::token(
                        s.session_token.expose_secret().to_string(),
                    ));
                    st.auth = Auth::Token;
                    st.location = Some(s.session_uri.clone());
                    st.token = Some(s.session_token.clone());
                    st.generation += 1;
                    return Ok(st.generation);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(host = %self.host, error = %e, "session cache unavailable")
                }
            }
        }
        self.login(&mut st).await?;
        Ok(st.generation)
    }

    async fn login(&self, st: &mut SessionState) -> Result<(), bmc::Error> {
        // The service root needs no authentication and names the sessions
        // collection (it moved from /redfish/v1/Sessions in Redfish 1.6).
        self.bmc.set_credentials(BmcCredentials::anonymous());
        st.root = None;
        let sessions = match self
            .bmc
            .get::<Raw>(&ODataId::from("/redfish/v1".to_string()))
            .await
        {
            Ok(root) => {
                let v = root.value().clone();
                let link = v
                    .pointer("/Links/Sessions/@odata.id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let has_service = v.get("SessionService").is_some();
                st.root = Some(v);
                match (link, has_service) {
                    (Some(l), _) => Some(l),
                    (None, true) => Some("/redfish/v1/SessionService/Sessions".into()),
                    // A readable root without any session service: Basic only.
                    (None, false) => None,
                }
            }
            Err(e) => {
                tracing::debug!(host = %self.host, error = %e, "service root unreadable before login");
                Some("/redfish/v1/SessionService/Sessions".into())
            }
        };
        let Some(sessions) = sessions else {
            tracing::info!(host = %self.host, "service root names no SessionService; using Basic auth");
            self.use_basic(st);
            return Ok(());
        };
        match self.post_session(&sessions).await? {
            SessionAnswer::Created { token, location } => {
                self.bmc
                    .set_credentials(BmcCredentials::token(token.expose_secret().to_string()));
                st.auth = Auth::Token;
                st.location = location.clone();
                st.token = Some(token.clone());
                st.generation += 1;
                tracing::debug!(host = %self.host, session = ?location, "Redfish session created");
                if let (Some(store), Some(location)) = (&self.store, location) {
                    let now = Utc::now();
                    let ttl = chrono::Duration::from_std(self.session_ttl)
                        .unwrap_or(chrono::Duration::zero());
                    let rec = RedfishSession {
                        host_id: store.host_id,
                        session_token: token,
                        session_uri: location,
                        expires_at: now + ttl,
                        created_at: now,
                    };
                    if let Err(e) = store.cache.put_session(rec).await {
                        tracing::warn!(host = %self.host, error = %e, "could not cache Redfish session");
                    }
                }
                Ok(())
            }
            SessionAnswer::UseBasic(why) => {
                tracing::info!(host = %self.host, %sessions, why, "using Basic auth");
                self.use_basic(st);
                Ok(())
            }
        }
    }

    fn use_basic(&self, st: &mut SessionState) {
        self.bmc.set_credentials(BmcCredentials::new(
            self.credential.username.clone(),
            self.credential.expose().to_string(),
        ));
        st.auth = Auth::Basic;
        st.location = None;
        st.token = None;
        st.generation += 1;
    }

    /// POSTs the login to the sessions collection. Plain reqwest, not
    /// nv-redfish's `create_session`: that one hides the response headers
    /// (`WWW-Authenticate`) and refuses a session answered 204, or 201 with
    /// no body, which several non-Dell BMCs send.
    async fn post_session(&self, sessions: &str) -> Result<SessionAnswer, bmc::Error> {
        let url = self.base.join(sessions).map_err(|e| {
            bmc::Error::new(
                &self.host,
                ErrorKind::InvalidResponse,
                format!("bad sessions link {sessions}: {e}"),
            )
        })?;
        let body =
            json!({"UserName": self.credential.username, "Password": self.credential.expose()});
        self.counter.post();
        let resp = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| transport_error(&self.host, &e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let token = header("x-auth-token").filter(|t| !t.is_empty());
        let location = header("location").map(|l| path_of(&l));
        let basic_offered = resp
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.trim_start().to_ascii_lowercase().starts_with("basic"));
        let text = resp.text().await.unwrap_or_default();
        match status {
            200..=299 => {
                let Some(token) = token else {
                    return Err(bmc::Error::new(
                        &self.host,
                        ErrorKind::InvalidResponse,
                        format!(
                            "{sessions} answered HTTP {status} to the login but sent no X-Auth-Token header"
                        ),
                    ));
                };
                // Location, else the session's own @odata.id from a body.
                let location = location.or_else(|| {
                    let v: Value = serde_json::from_str(&text).ok()?;
                    v.get("@odata.id").and_then(Value::as_str).map(path_of)
                });
                if location.is_none() {
                    tracing::warn!(host = %self.host, %sessions, "session created without Location; it cannot be logged out");
                }
                Ok(SessionAnswer::Created {
                    token: SecretString::from(token),
                    location,
                })
            }
            401 if basic_offered => Ok(SessionAnswer::UseBasic(
                "session login refused with WWW-Authenticate: Basic",
            )),
            404 | 405 | 501 => Ok(SessionAnswer::UseBasic("no session service")),
            _ => {
                let mut err = classify_http(&self.host, status, &text).1;
                if status == 401 {
                    err.kind = ErrorKind::Authentication;
                }
                Err(err)
            }
        }
    }

    /// Forgets the session of `generation` (it got a 401) and logs in again,
    /// unless another request already did.
    async fn relogin(&self, generation: u64) -> Result<(), bmc::Error> {
        let mut st = self.session.lock().await;
        if st.generation != generation && st.auth != Auth::None {
            return Ok(());
        }
        tracing::info!(host = %self.host, "session rejected (401); logging in again");
        st.auth = Auth::None;
        st.location = None;
        st.token = None;
        if let Some(store) = &self.store {
            let _ = store.cache.delete_session(store.host_id).await;
        }
        self.login(&mut st).await
    }

    async fn send(&self, req: &Req<'_>) -> Result<Resp, BmcError> {
        match req {
            Req::Get(uri) => Ok(Resp::Doc(self.bmc.read_document(uri, None).await?)),
            Req::Expand(uri) => {
                let query = ExpandQuery::all().levels(1).to_query_string();
                Ok(Resp::Doc(self.bmc.read_document(uri, Some(&query)).await?))
            }
            Req::Action(target, body) => {
                let action: Action<Value, Value> =
                    Action::new(ActionTarget::new(target.to_string()));
                let r = self.bmc.action(&action, body).await?;
                Ok(Resp::Reply(reply_of(r)))
            }
            Req::Delete(uri) => {
                let r = self
                    .bmc
                    .delete::<Raw>(&ODataId::from(uri.to_string()))
                    .await?;
                Ok(Resp::Reply(reply_of(r.map_entity(|e| e.value().clone()))))
            }
            Req::Multipart {
                uri,
                params,
                file,
                timeout,
            } => {
                let f = tokio::fs::File::open(file).await.map_err(|e| {
                    BmcError::InvalidRequest(format!("cannot open {}: {e}", file.display()))
                })?;
                let len = f
                    .metadata()
                    .await
                    .map_err(|e| {
                        BmcError::InvalidRequest(format!("cannot stat {}: {e}", file.display()))
                    })?
                    .len();
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "firmware.bin".into());
                // Content-Length is mandatory: iDRAC rejects chunked uploads.
                let stream = DataStream::new(name, f.compat()).with_content_length(len);
                let r = self
                    .bmc
                    .multipart_update::<_, Value, Value>(
                        uri,
                        MultipartUpdateRequest {
                            update_parameters: *params,
                            update_stream: stream,
                            oem_parts: Vec::new(),
                            upload_timeout: *timeout,
                        },
                    )
                    .await?;
                Ok(Resp::Reply(reply_of(r)))
            }
        }
    }

    /// Sends `req` on the current session; a 401 logs in again and resends,
    /// at most [`RELOGINS_PER_REQUEST`] times; a read whose connection was
    /// dropped under it is resent once.
    ///
    /// A 401 on a session the BMC has just granted does not mean the
    /// credential is wrong (the login with it succeeded): the BMC dropped its
    /// sessions, as an iDRAC does while it restarts after its own update. That
    /// is transient, and reported so, so the run retries instead of failing
    /// terminal. A refused credential fails the login itself, which reports
    /// [`ErrorKind::Authentication`].
    async fn call(&self, req: Req<'_>) -> Result<Resp, bmc::Error> {
        let mut generation = self.ensure().await?;
        let mut relogins = 0;
        let mut resent = false;
        loop {
            if tracing::enabled!(tracing::Level::TRACE) {
                let (method, uri) = req.describe();
                tracing::trace!(host = %self.host, method, uri, "request");
            }
            let e = match self.send(&req).await {
                Ok(r) => return Ok(r),
                Err(e) if Self::is_401(&e) => e,
                // A read on a connection the BMC closed under it is sent
                // once more (on a new connection): failing the whole attempt
                // for it cost a retry of the run. Writes are never resent.
                Err(e) if req.is_read() && !resent && is_dropped_connection(&e) => {
                    tracing::debug!(host = %self.host, error = %self.map_err(&e), "connection dropped under a read; sending it again");
                    resent = true;
                    continue;
                }
                Err(e) => return Err(self.map_err(&e)),
            };
            if relogins > 0 && self.session.lock().await.auth == Auth::Basic {
                // No session to lose: Basic auth sends the credential with
                // every request, so a 401 after the login probe chose Basic
                // again refuses the credential.
                let mut err = self.map_err(&e);
                err.kind = ErrorKind::Authentication;
                return Err(err);
            }
            if relogins == RELOGINS_PER_REQUEST {
                let mut err = self.map_err(&e);
                err.kind = ErrorKind::ServiceUnavailable;
                err.message = format!(
                    "the BMC rejected {relogins} sessions it had just granted (HTTP 401 right after a \
                     successful login); it is probably restarting: {}",
                    err.message
                );
                return Err(err);
            }
            self.relogin(generation).await?;
            generation = self.generation().await;
            relogins += 1;
        }
    }

    /// The service root: the copy read at login when there is one.
    pub async fn service_root(&self) -> Result<Value, bmc::Error> {
        self.ensure().await?;
        if let Some(root) = self.session.lock().await.root.clone() {
            return Ok(root);
        }
        self.get("/redfish/v1").await
    }

    /// GET a resource as JSON.
    pub async fn get(&self, uri: &str) -> Result<Value, bmc::Error> {
        match self.call(Req::Get(uri)).await? {
            Resp::Doc(v) => Ok(v),
            Resp::Reply(_) => unreachable_reply(&self.host),
        }
    }

    /// GET a collection with its members inline (`$expand=*($levels=1)`).
    pub async fn get_expanded(&self, uri: &str) -> Result<Value, bmc::Error> {
        match self.call(Req::Expand(uri)).await? {
            Resp::Doc(v) => Ok(v),
            Resp::Reply(_) => unreachable_reply(&self.host),
        }
    }

    /// POST an action (DMTF or OEM) with a JSON body.
    pub async fn action(&self, target: &str, body: &Value) -> Result<Reply, bmc::Error> {
        match self.call(Req::Action(target, body)).await? {
            Resp::Reply(r) => Ok(r),
            Resp::Doc(v) => Ok(Reply {
                body: Some(v),
                ..Reply::default()
            }),
        }
    }

    /// DELETE a resource.
    pub async fn delete(&self, uri: &str) -> Result<Reply, bmc::Error> {
        match self.call(Req::Delete(uri)).await? {
            Resp::Reply(r) => Ok(r),
            Resp::Doc(v) => Ok(Reply {
                body: Some(v),
                ..Reply::default()
            }),
        }
    }

    /// Multipart upload (`UpdateParameters` JSON part, then `UpdateFile`),
    /// streamed from disk with Content-Length.
    pub async fn multipart(
        &self,
        uri: &str,
        params: &Value,
        file: &PathBuf,
        timeout: Duration,
    ) -> Result<Reply, bmc::Error> {
        match self
            .call(Req::Multipart {
                uri,
                params,
                file,
                timeout,
            })
            .await?
        {
            Resp::Reply(r) => Ok(r),
            Resp::Doc(v) => Ok(Reply {
                body: Some(v),
                ..Reply::default()
            }),
        }
    }

    /// iDRAC's HttpPushUri form (iDRAC8, early iDRAC9): `If-Match` with the
    /// collection's ETag and a multipart field named `file`. nv-redfish's
    /// `http_push_uri_update` sends the DMTF raw-octet form, which iDRAC
    /// refuses, so this one request is plain reqwest with the session token.
    /// Returns the `Available-…` inventory URI.
    pub async fn dell_http_push(&self, uri: &str, file: &PathBuf) -> Result<String, bmc::Error> {
        self.ensure().await?;
        let (auth, token) = {
            let st = self.session.lock().await;
            (st.auth, st.token.clone())
        };
        let url = self.base.join(uri).map_err(|e| {
            bmc::Error::new(
                &self.host,
                ErrorKind::InvalidResponse,
                format!("bad HttpPushUri {uri}: {e}"),
            )
        })?;
        let authed = |rb: reqwest::RequestBuilder| match (auth, &token) {
            (Auth::Token, Some(t)) => rb.header("X-Auth-Token", t.expose_secret()),
            _ => rb.basic_auth(&self.credential.username, Some(self.credential.expose())),
        };
        self.counter.get();
        let head = authed(self.http.get(url.clone()))
            .send()
            .await
            .map_err(|e| transport_error(&self.host, &e))?;
        let etag = head
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let f = tokio::fs::File::open(file).await.map_err(|e| {
            bmc::Error::new(
                &self.host,
                ErrorKind::Other,
                format!("cannot open {}: {e}", file.display()),
            )
        })?;
        let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "firmware.exe".into());
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(f)),
            len,
        )
        .file_name(name)
        .mime_str("application/octet-stream")
        .map_err(|e| bmc::Error::new(&self.host, ErrorKind::Other, e.to_string()))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let mut rb = authed(self.http.post(url)).multipart(form);
        if let Some(etag) = etag {
            rb = rb.header(reqwest::header::IF_MATCH, etag);
        }
        self.counter.post();
        let resp = rb
            .send()
            .await
            .map_err(|e| transport_error(&self.host, &e))?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(path_of);
        let text = resp.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(classify_http(&self.host, status, &text).1);
        }
        location
            .or_else(|| {
                let v: Value = serde_json::from_str(&text).ok()?;
                let id = v.get("Id").and_then(Value::as_str)?;
                Some(format!("{}/{id}", uri.trim_end_matches('/')))
            })
            .ok_or_else(|| {
                bmc::Error::new(
                    &self.host,
                    ErrorKind::InvalidResponse,
                    "upload answered without Location",
                )
            })
    }

    /// Deletes the session on the BMC and in the cache. A session the BMC
    /// already dropped (401/404) counts as logged out.
    pub async fn logout(&self) -> Result<(), bmc::Error> {
        let mut st = self.session.lock().await;
        let location = st.location.take();
        let was = std::mem::take(&mut st.auth);
        st.token = None;
        if let Some(store) = &self.store {
            let _ = store.cache.delete_session(store.host_id).await;
        }
        let result = match (was, location) {
            (Auth::Token, Some(loc)) => {
                match self.bmc.delete::<Raw>(&ODataId::from(loc.clone())).await {
                    Ok(_) => {
                        tracing::debug!(host = %self.host, session = %loc, "logged out");
                        Ok(())
                    }
                    Err(BmcError::InvalidResponse { status, .. })
                        if matches!(status.as_u16(), 401 | 404) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(self.map_err(&e)),
                }
            }
            _ => Ok(()),
        };
        self.bmc.set_credentials(BmcCredentials::anonymous());
        result
    }

    /// Whether a session is open (for tests and shutdown checks).
    pub async fn has_session(&self) -> bool {
        self.session.lock().await.auth == Auth::Token
    }
}

impl Drop for RedfishClient {
    fn drop(&mut self) {
        // A driver dropped without close(): log out in the background so the
        // iDRAC's small session pool does not fill up (RAC0218).
        let st = self.session.get_mut();
        if let (Auth::Token, Some(loc), Some(token)) =
            (st.auth, st.location.take(), st.token.take())
        {
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let Ok(url) = self.base.join(&loc) else {
                return;
            };
            let http = self.http.clone();
            let host = self.host.clone();
            let store = self.store.clone();
            self.counter.post();
            rt.spawn(async move {
                let r = http
                    .delete(url)
                    .header("X-Auth-Token", token.expose_secret())
                    .send()
                    .await;
                if let Some(store) = store {
                    let _ = store.cache.delete_session(store.host_id).await;
                }
                tracing::debug!(%host, ok = r.is_ok(), "logged out on drop");
            });
        }
    }
}

fn unreachable_reply<T>(host: &str) -> Result<T, bmc::Error> {
    Err(bmc::Error::new(
        host,
        ErrorKind::Other,
        "internal: unexpected reply kind",
    ))
}

fn reply_of(r: ModificationResponse<Value>) -> Reply {
    match r {
        ModificationResponse::Task(t) => Reply {
            location: Some(path_of(&t.location.0.to_string())),
            retry_after: t.retry_after,
            body: None,
        },
        ModificationResponse::Entity(v) | ModificationResponse::Message(v) => Reply {
            body: Some(v),
            ..Reply::default()
        },
        ModificationResponse::Empty => Reply::default(),
    }
}
