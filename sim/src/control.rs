//! The control API (plain HTTP, not under `/redfish`): fault injection,
//! inspection, and a file server for images and catalogs.
//!
//! | Method | Path | What |
//! |---|---|---|
//! | GET | `/hosts` | every host (`name`, `url`, `username`, `password`, `service_tag`, `system_id`, `model`, `flavor`) |
//! | GET | `/hosts/{name}` | one host plus power state, live sessions, firmware, active faults |
//! | GET | `/hosts/{name}/installs` | installs, in order |
//! | GET | `/hosts/{name}/requests` | `{"total": n, "endpoints": [{"method","path","count"}]}` |
//! | GET | `/hosts/{name}/sessions` | `{"live": n}` |
//! | GET | `/hosts/{name}/firmware` | installed components |
//! | GET | `/hosts/{name}/jobs` | jobs with state and percentage |
//! | PUT | `/hosts/{name}/firmware/{component_id}` | body = version: set it (test setup) |
//! | POST | `/hosts/{name}/faults` | body = fault spec (`host=` implied): inject |
//! | DELETE | `/hosts/{name}/faults` | clear the host's faults |
//! | POST | `/faults` | body = fault spec (rules name hosts with `host=`, else all hosts) |
//! | PUT/POST | `/files/{name}` | body = bytes: serve them; answers `{"url": ...}` |
//! | GET/HEAD | `/files/{name}` | the served bytes |

use crate::json::JsonExt as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::faults::FaultSpec;
use crate::fleet::Inner;
use crate::host::Host;

type S = State<Arc<Inner>>;

/// Serves the control API until shutdown.
pub(crate) async fn serve(inner: Arc<Inner>, listener: TcpListener) {
    let mut shutdown = inner.shutdown.subscribe();
    let app = Router::new()
        .route("/hosts", get(hosts))
        .route("/hosts/{name}", get(host))
        .route("/hosts/{name}/installs", get(installs))
        .route("/hosts/{name}/requests", get(requests))
        .route("/hosts/{name}/sessions", get(sessions))
        .route("/hosts/{name}/firmware", get(firmware))
        .route("/hosts/{name}/jobs", get(jobs))
        .route("/hosts/{name}/firmware/{component}", put(set_firmware))
        .route(
            "/hosts/{name}/faults",
            axum::routing::post(inject).delete(clear),
        )
        .route("/faults", axum::routing::post(inject_all))
        .route("/files/{*name}", get(file).put(upload).post(upload))
        .with_state(inner);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await;
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "unknown host"})),
    )
        .into_response()
}

fn with_host(inner: &Inner, name: &str, f: impl FnOnce(&Host) -> Value) -> Response {
    match inner.host(name) {
        Some(h) => axum::Json(f(h)).into_response(),
        None => not_found(),
    }
}

fn host_json(inner: &Inner, h: &Host) -> Value {
    let _ = inner;
    json!({
        "name": h.name,
        "username": h.username,
        "password": h.password,
        "service_tag": h.service_tag,
        "system_id": h.model.system_id,
        "model": h.model.name,
        "flavor": h.flavor.as_str(),
    })
}

async fn hosts(State(inner): S) -> Response {
    let v: Vec<Value> = inner.hosts.iter().map(|h| host_json(&inner, h)).collect();
    axum::Json(v).into_response()
}

async fn host(State(inner): S, Path(name): Path<String>) -> Response {
    with_host(&inner, &name, |h| {
        let mut v = host_json(&inner, h);
        let mut st = h.lock();
        st.purge_sessions(&inner);
        v.set(
            &["power_state"],
            json!(if st.power_on { "On" } else { "Off" }),
        );
        v.set(&["live_sessions"], json!(st.sessions.len()));
        v.set(&["peak_sessions"], json!(st.peak_sessions));
        v.set(&["firmware"], firmware_json(&st));
        v.set(
            &["faults"],
            json!(
                st.faults
                    .rules
                    .iter()
                    .map(|(r, _)| r.fault.to_string())
                    .collect::<Vec<_>>()
            ),
        );
        v
    })
}

fn firmware_json(st: &crate::host::HostState) -> Value {
    json!(
        st.components
            .iter()
            .map(|c| json!({
                "component_id": c.component_id,
                "name": c.name,
                "version": c.version,
                "previous": c.previous,
                "fqdd": c.fqdd,
            }))
            .collect::<Vec<_>>()
    )
}

async fn installs(State(inner): S, Path(name): Path<String>) -> Response {
    with_host(&inner, &name, |h| {
        json!(
            h.lock()
                .installs
                .iter()
                .map(|r| json!({
                    "component_id": r.component_id,
                    "name": r.name,
                    "from_version": r.from_version,
                    "to_version": r.to_version,
                    "at": r.at,
                }))
                .collect::<Vec<_>>()
        )
    })
}

async fn requests(State(inner): S, Path(name): Path<String>) -> Response {
    with_host(&inner, &name, |h| {
        let stats = h.lock().stats.snapshot();
        json!({
            "total": stats.total,
            "endpoints": stats.by_endpoint.iter().map(|((m, p), n)| json!({"method": m, "path": p, "count": n})).collect::<Vec<_>>(),
        })
    })
}

async fn sessions(State(inner): S, Path(name): Path<String>) -> Response {
    with_host(&inner, &name, |h| {
        let mut st = h.lock();
        st.purge_sessions(&inner);
        json!({"live": st.sessions.len(), "peak": st.peak_sessions})
    })
}

async fn firmware(State(inner): S, Path(name): Path<String>) -> Response {
    with_host(&inner, &name, |h| firmware_json(&h.lock()))
}

async fn jobs(State(inner): S, Path(name): Path<String>) -> Response {
    with_host(&inner, &name, |h| {
        json!(
            h.lock()
                .jobs
                .iter()
                .map(|j| json!({
                    "id": j.id, "name": j.name, "state": j.state.dell(), "percent": j.percent,
                    "message_id": j.msg.id,
                }))
                .collect::<Vec<_>>()
        )
    })
}

async fn set_firmware(
    State(inner): S,
    Path((name, component)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let version = String::from_utf8_lossy(&body).trim().to_string();
    let Some(h) = inner.host(&name) else {
        return not_found();
    };
    let mut st = h.lock();
    match st
        .components
        .iter_mut()
        .find(|c| c.matches(&component) || c.fqdd == component)
    {
        Some(c) if !version.is_empty() => {
            c.version = version;
            st.inventory_gen += 1;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "unknown component or empty version"})),
        )
            .into_response(),
    }
}

fn spec_from(body: &Bytes) -> Result<FaultSpec, Box<Response>> {
    let text = String::from_utf8_lossy(body).to_string();
    let text = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => m
            .get("spec")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => text,
    };
    FaultSpec::parse(text.trim()).map_err(|e| {
        Box::new(
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response(),
        )
    })
}

async fn inject(State(inner): S, Path(name): Path<String>, body: Bytes) -> Response {
    if inner.host(&name).is_none() {
        return not_found();
    }
    let spec = match spec_from(&body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    for mut rule in spec.rules {
        rule.host = Some(name.clone());
        if let Err(e) = inner.add_rule(rule) {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn inject_all(State(inner): S, body: Bytes) -> Response {
    let spec = match spec_from(&body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    for rule in spec.rules {
        if let Err(e) = inner.add_rule(rule) {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn clear(State(inner): S, Path(name): Path<String>) -> Response {
    match inner.host(&name) {
        Some(h) => {
            h.lock().faults.rules.clear();
            StatusCode::NO_CONTENT.into_response()
        }
        None => not_found(),
    }
}

async fn upload(State(inner): S, Path(name): Path<String>, body: Bytes) -> Response {
    let url = inner.serve_file(&name, body.to_vec());
    (StatusCode::CREATED, axum::Json(json!({"url": url}))).into_response()
}

async fn file(State(inner): S, Path(name): Path<String>) -> Response {
    let bytes = inner.files.read().ok().and_then(|f| f.get(&name).cloned());
    match bytes {
        Some(b) => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            b,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
