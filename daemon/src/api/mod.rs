//! The HTTP API under `/api/v1` (axum, JSON), its OpenAPI 3 document
//! (utoipa, from the handlers' annotations) and the route table both are
//! checked against: [`route_table`] builds the router, and a test compares
//! it with the document's paths.
//!
//! Errors are JSON `{"error", "message", "field", "problems"}` with 400
//! (malformed request), 401, 403, 404, 409 (wrong state) or 422 (invalid
//! content); bad input never gives a 500. Every list is paginated by an
//! opaque cursor (`?cursor=&limit=`, `next_cursor` in the answer).

pub mod events;
pub mod hosts;
pub mod plans;
pub mod progress;
pub mod system;
pub mod view_cache;

use crate::auth::{AuthError, Caller, Tokens};
use crate::config::{Config, Role};
use crate::engine::Engine;
use crate::metrics::Metrics;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Json, Router};
use firmflow_core::executor::{Executor, ExecutorHandle, PlanError};
use firmflow_core::model::{DatacenterId, Host, HostId, PlanId};
use firmflow_core::store::{self, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// What every handler reaches.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The executor (plan operations).
    pub executor: Executor,
    /// The engine (connector, catalogs, PostgreSQL handle).
    pub engine: Arc<Engine>,
    /// The tokens.
    pub tokens: Arc<Tokens>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The configuration.
    pub config: Arc<Config>,
    /// The running executor, while it runs (leases held, shutdown).
    pub handle: Arc<Mutex<Option<ExecutorHandle>>>,
    /// Set when the daemon stops: live streams end.
    pub stopping: watch::Receiver<bool>,
    /// Shared snapshots of whole plan views (polled by many clients).
    pub plan_views: Arc<view_cache::PlanViews>,
}

impl AppState {
    /// The store `caller` reads through: PostgreSQL's row-level security
    /// for a datacenter-scoped caller ([`crate::rls`]).
    pub fn reader(&self, caller: &Caller) -> Arc<dyn Store> {
        crate::rls::reader(&self.store, self.engine.pg.as_ref(), caller)
    }
}

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
    /// The field to blame.
    pub field: Option<String>,
    /// Every problem, when there are several.
    pub problems: Vec<Value>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            problems: Vec::new(),
        }
    }
    /// Names the field.
    pub fn field(mut self, f: impl Into<String>) -> Self {
        self.field = Some(f.into());
        self
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    /// 422.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
    /// 500 for a store or engine failure (never for bad input).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.code,
            "message": self.message,
            "field": self.field,
            "problems": self.problems,
        });
        (self.status, Json(body)).into_response()
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match &e {
            store::Error::NotFound { .. } => ApiError::not_found(e.to_string()),
            store::Error::Conflict(_) => ApiError::conflict(e.to_string()),
            store::Error::InvalidPlan(inv) => invalid_plan(inv),
            store::Error::PermissionDenied(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
            }
            store::Error::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            store::Error::Corrupt(_) => ApiError::internal(e.to_string()),
        }
    }
}

fn invalid_plan(inv: &firmflow_core::policy::InvalidPlan) -> ApiError {
    let mut e = ApiError::invalid(inv.to_string());
    e.problems = vec![json!({"field": "plan", "message": inv.to_string()})];
    e.field = Some("plan".into());
    e
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Invalid(inv) => invalid_plan(&inv),
            PlanError::WrongStatus { .. } | PlanError::NotApproved(_) => {
                ApiError::conflict(e.to_string()).field("status")
            }
            PlanError::Store(s) => s.into(),
        }
    }
}

/// Result alias.
pub type ApiResult<T> = Result<T, ApiError>;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        s.tokens.authenticate(header).map_err(|e| match e {
            AuthError::Unauthenticated(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", m)
            }
        })
    }
}

impl Caller {
    /// 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> ApiResult<()> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token {:?} has role {}; this needs {role}",
                    self.name, self.role
                ),
            ))
        }
    }
}

/// A JSON body whose errors name the field: syntax errors are 400 with
/// serde's message, wrong values 422 with the path to the value.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, s: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, s)
            .await
            .map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
        parse_json(&bytes).map(Body)
    }
}

/// Parses JSON with the field path of a wrong value.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    // Syntax first: a malformed document is a 400 whatever its content.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("malformed JSON: {e}"),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".into() } else { path };
        ApiError::invalid(format!("{field}: {}", e.inner())).field(field)
    })
}

/// `?cursor=&limit=`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// From the previous answer's `next_cursor`.
    pub cursor: Option<String>,
    /// At most this many items (default 100, at most 1000).
    pub limit: Option<usize>,
}

impl Page {
    /// The limit, bounded.
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

/// A page of items.
#[derive(Debug, Serialize)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Pages `items` (already in cursor order) after `cursor` by `key`.
pub fn paginate<T, K: PartialOrd + std::str::FromStr + ToString>(
    items: Vec<T>,
    page: &Page,
    key: impl Fn(&T) -> K,
    descending: bool,
) -> ApiResult<Paged<T>> {
    let after = match &page.cursor {
        Some(c) => Some(c.parse::<K>().map_err(|_| {
            ApiError::bad_request("cursor: not a cursor of this list").field("cursor")
        })?),
        None => None,
    };
    let limit = page.limit();
    let mut out: Vec<T> = items
        .into_iter()
        .filter(|i| match &after {
            None => true,
            Some(a) if descending => key(i) < *a,
            Some(a) => key(i) > *a,
        })
        .take(limit + 1)
        .collect();
    let next = if out.len() > limit {
        out.truncate(limit);
        out.last().map(|i| key(i).to_string())
    } else {
        None
    };
    Ok(Paged {
        items: out,
        next_cursor: next,
    })
}

/// Hosts by id, for scope checks.
pub async fn host_index(store: &dyn Store) -> ApiResult<HashMap<HostId, Host>> {
    Ok(store
        .list_hosts()
        .await?
        .into_iter()
        .map(|h| (h.id, h))
        .collect())
}

/// Whether a scoped caller sees a plan: some target in its datacenter.
pub async fn plan_visible(
    store: &dyn Store,
    caller: &Caller,
    plan: PlanId,
    hosts: &HashMap<HostId, Host>,
) -> ApiResult<bool> {
    if caller.datacenter.is_none() {
        return Ok(true);
    }
    let targets = store.plan_targets(plan).await?;
    Ok(targets.iter().any(|t| {
        hosts
            .get(&t.host_id)
            .is_some_and(|h| caller.sees(h.datacenter_id))
    }))
}

/// The datacenter of a host, if known.
pub fn dc_of(hosts: &HashMap<HostId, Host>, id: HostId) -> Option<DatacenterId> {
    hosts.get(&id).and_then(|h| h.datacenter_id)
}

/// Every route: method, path, handler. The router is built from it and the
/// OpenAPI test checks it against the document.
pub fn route_table() -> Vec<(Method, &'static str, MethodRouter<AppState>)> {
    use axum::routing::{delete, get, post, put};
    vec![
        (Method::GET, "/healthz", get(system::healthz)),
        (Method::GET, "/readyz", get(system::readyz)),
        (Method::GET, "/metrics", get(system::metrics)),
        (Method::GET, "/api/v1/openapi.json", get(system::openapi)),
        (Method::GET, "/api/v1/me", get(system::me)),
        (Method::GET, "/api/v1/hosts", get(hosts::list)),
        (Method::POST, "/api/v1/hosts", post(hosts::create)),
        (Method::POST, "/api/v1/hosts/import", post(hosts::import)),
        (Method::GET, "/api/v1/hosts/{id}", get(hosts::get_one)),
        (Method::PUT, "/api/v1/hosts/{id}", put(hosts::update)),
        (Method::DELETE, "/api/v1/hosts/{id}", delete(hosts::remove)),
        (
            Method::POST,
            "/api/v1/hosts/{id}/refresh",
            post(hosts::refresh),
        ),
        (Method::POST, "/api/v1/compliance", post(hosts::compliance)),
        (Method::GET, "/api/v1/plans", get(plans::list)),
        (Method::POST, "/api/v1/plans", post(plans::create)),
        (
            Method::POST,
            "/api/v1/plans/validate",
            post(plans::validate),
        ),
        (Method::GET, "/api/v1/plans/{id}", get(plans::get_one)),
        (
            Method::POST,
            "/api/v1/plans/{id}/dry-run",
            post(plans::dry_run),
        ),
        (
            Method::POST,
            "/api/v1/plans/{id}/approve",
            post(plans::approve),
        ),
        (Method::POST, "/api/v1/plans/{id}/start", post(plans::start)),
        (Method::POST, "/api/v1/plans/{id}/pause", post(plans::pause)),
        (
            Method::POST,
            "/api/v1/plans/{id}/resume",
            post(plans::resume),
        ),
        (
            Method::POST,
            "/api/v1/plans/{id}/cancel",
            post(plans::cancel),
        ),
        (
            Method::GET,
            "/api/v1/plans/{id}/runs",
            get(events::runs_of_plan),
        ),
        (
            Method::GET,
            "/api/v1/plans/{id}/packages",
            get(plans::packages),
        ),
        (Method::GET, "/api/v1/runs/{id}", get(events::run)),
        (Method::GET, "/api/v1/events", get(events::list)),
        (Method::GET, "/api/v1/events/stream", get(events::stream)),
    ]
}

/// The router over `state`.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (_, path, handler) in route_table() {
        r = r.route(path, handler);
    }
    // The web view's files, outside the API's table (they hold no data).
    r = r.merge(crate::ui::router());
    let metrics = state.metrics.clone();
    r.fallback(|| async { ApiError::not_found("no such route (see /api/v1/openapi.json)") })
        .layer(axum::middleware::from_fn(
            move |req: Request, next: axum::middleware::Next| {
                let metrics = metrics.clone();
                async move {
                    let route = req
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_else(|| "unmatched".into());
                    let method = req.method().to_string();
                    let t = std::time::Instant::now();
                    let resp = next.run(req).await;
                    metrics
                        .http_seconds
                        .with_label_values(&[route.as_str()])
                        .observe(t.elapsed().as_secs_f64());
                    metrics
                        .http_requests
                        .with_label_values(&[
                            route.as_str(),
                            method.as_str(),
                            resp.status().as_str(),
                        ])
                        .inc();
                    resp
                }
            },
        ))
        .with_state(state)
}

/// The OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "firmflowd", description = "The firmflow daemon: hosts, plans, runs, events."),
    paths(
        system::healthz, system::readyz, system::metrics, system::openapi, system::me,
        hosts::list, hosts::create, hosts::import, hosts::get_one, hosts::update,
        hosts::remove, hosts::refresh, hosts::compliance,
        plans::list, plans::create, plans::validate, plans::get_one, plans::dry_run,
        plans::approve, plans::start, plans::pause, plans::resume, plans::cancel,
        plans::packages,
        events::runs_of_plan, events::run, events::list, events::stream,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "hosts"), (name = "plans"), (name = "runs"), (name = "events"), (name = "system"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
