//! `/healthz` (the process answers), `/readyz` (the store answers and, with
//! PostgreSQL, every embedded migration is applied), `/metrics`
//! (Prometheus text), `/api/v1/openapi.json`, and `/api/v1/me` (who the
//! caller's token says it is, so a client such as the web view can show
//! only the actions its role allows).

use super::{ApiDoc, ApiResult, AppState};
use crate::auth::Caller;
use crate::config::Role;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use firmflow_core::model::RunState;
use serde_json::{Value, json};
use utoipa::OpenApi as _;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses((status = 200, description = "ok", body = Value)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: the store answers and its migrations are current.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "ready", body = Value), (status = 503, description = "not ready, with the reason", body = Value)))]
pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if *s.stopping.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "stopping"})),
        );
    }
    if let Err(e) = s.store.get_config("firmflowd.readyz").await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "store unreachable", "error": e.to_string()})),
        );
    }
    if let Some(pg) = &s.engine.pg {
        let want = firmflow_store_postgres::MIGRATOR
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        let have: Result<Option<i64>, _> =
            sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(pg.pool())
                .await;
        match have {
            Ok(Some(v)) if v >= want => {}
            Ok(v) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"status": "migrations behind", "applied": v, "embedded": want})),
                );
            }
            Err(e) => {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"status": "cannot read migrations", "error": e.to_string()})),
                );
            }
        }
    }
    (StatusCode::OK, Json(json!({"status": "ready"})))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let m = &s.metrics;
    // Runs by state over every plan, read now.
    if let Ok(plans) = s.store.list_plans().await {
        let mut by: std::collections::BTreeMap<&'static str, i64> = Default::default();
        for p in plans {
            if let Ok(c) = s.store.run_counts(p.id).await {
                for (k, v) in [
                    (RunState::Pending, c.pending),
                    (RunState::Running, c.running),
                    (RunState::Retrying, c.retrying),
                    (RunState::Completed, c.completed),
                    (RunState::Failed, c.failed),
                    (RunState::Cancelled, c.cancelled),
                    (RunState::NeedsAttention, c.needs_attention),
                ] {
                    *by.entry(k.as_str()).or_default() += i64::from(v);
                }
            }
        }
        for (k, v) in by {
            m.runs.with_label_values(&[k]).set(v);
        }
    }
    let held = s
        .handle
        .lock()
        .ok()
        .and_then(|h| h.as_ref().map(|h| h.active_runs()))
        .unwrap_or(0);
    m.leases_held.set(i64::try_from(held).unwrap_or(i64::MAX));
    if let Some(pg) = &s.engine.pg {
        let f = pg.metrics();
        m.store.with_label_values(&["claims"]).set(f.claims as f64);
        m.store
            .with_label_values(&["fenced_writes"])
            .set(f.fenced_writes as f64);
        m.store
            .with_label_values(&["claim_latency_p50_seconds"])
            .set(f.claim_p50.as_secs_f64());
        m.store
            .with_label_values(&["claim_latency_p99_seconds"])
            .set(f.claim_p99.as_secs_f64());
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "OpenAPI 3 document", body = Value)))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Who the caller is: the token's name, its role, its datacenter scope.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The token's name (the audit trail's actor); `anonymous` when the
    /// daemon has no tokens configured.
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// The only datacenter the token sees (as configured), or null for all.
    pub datacenter: Option<String>,
    /// The stable user id the audit trail records for this token.
    pub user_id: String,
    /// May approve, start, pause, resume, cancel plans (role operator or admin).
    pub can_operate: bool,
    /// May manage hosts (role admin).
    pub can_administer: bool,
}

/// The caller's identity and role (any valid token).
#[utoipa::path(get, path = "/api/v1/me", tag = "system",
    responses((status = 200, description = "The caller", body = Me), (status = 401, description = "No or unknown token")),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> ApiResult<Json<Me>> {
    Ok(Json(Me {
        name: caller.name.clone(),
        role: caller.role.to_string(),
        datacenter: caller.datacenter_name.clone(),
        user_id: caller.user_id.0.to_string(),
        can_operate: caller.role >= Role::Operator,
        can_administer: caller.role >= Role::Admin,
    }))
}
