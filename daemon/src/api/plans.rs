//! `/api/v1/plans`: create (the seed's plan + policy JSON, read by
//! firmflow-ops' plan files, so the CLI and the API accept the same plans),
//! validate, dry run, approve / start / pause / resume / cancel (the
//! caller is the actor in the audit trail), list, get with per-host
//! progress, and the plan's packages.

use super::{
    ApiError, ApiResult, AppState, Page, Paged, dc_of, host_index, paginate, plan_visible, progress,
};
use crate::auth::Caller;
use crate::config::Role;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use firmflow_catalog::{
    CatalogIndex, DryRunInput, DurationModel, HostFacts, PackageLocator, dry_run as simulate,
};
use firmflow_core::model::{
    EventType, Host, HostRun, NewEvent, NewPlan, Plan, PlanId, PlanStatus, UpdateMode,
};
use firmflow_ops::plan_file::{self, FileProblem, PlanFile, PlanFileError, PlanFormat};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn problems_error(e: &PlanFileError) -> ApiError {
    let ps: &[FileProblem] = e.problems();
    let mut err = ApiError::invalid(match ps {
        [] => e.to_string(),
        [one] => format!("{}: {}", one.field, one.message),
        many => format!(
            "{} problems: {}",
            many.len(),
            many.iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    });
    err.field = ps.first().map(|p| p.field.clone());
    err.problems = ps
        .iter()
        .map(|p| json!({"field": p.field, "line": p.line, "message": p.message}))
        .collect();
    err
}

pub(crate) fn parse_plan_id(s: &str) -> ApiResult<PlanId> {
    s.parse().map_err(|_| {
        ApiError::bad_request(format!("id: {s:?} is not a plan id (UUID)")).field("id")
    })
}

/// Reads a plan body against the hosts the caller sees.
async fn read_plan(s: &AppState, caller: &Caller, body: &[u8]) -> ApiResult<(PlanFile, NewPlan)> {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("malformed JSON: {e}"),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("body: not UTF-8").field("body"))?;
    let pf =
        plan_file::parse(text, PlanFormat::Json, "plan", None).map_err(|e| problems_error(&e))?;
    let hosts: Vec<Host> = s
        .store
        .list_hosts()
        .await?
        .into_iter()
        .filter(|h| caller.sees(h.datacenter_id))
        .collect();
    let extra = firmflow_core::checks::CheckRegistry::builtin().extra_names();
    let mut plan = pf.check(&hosts, &extra).map_err(|e| problems_error(&e))?;
    // A clustered host needs maintenance mode, which needs a vCenter:
    // refuse now rather than fail every such host when the plan runs.
    if plan.policy.require_maintenance_mode && !s.engine.has_vcenter {
        let clustered: Vec<&str> = plan
            .targets
            .iter()
            .filter_map(|t| hosts.iter().find(|h| h.id == t.host_id))
            .filter(|h| h.cluster_key().is_some() && h.host_moid.is_some())
            .map(|h| h.fqdn.as_str())
            .collect();
        if let Some(first) = clustered.first() {
            return Err(ApiError::invalid(format!(
                "policy.requireMaintenanceMode: {} target host(s) are in a vSphere cluster \
                 (first: {first}) but this daemon has no vCenter endpoint: add one under \
                 [[vcenter.endpoints]], or set requireMaintenanceMode to false",
                clustered.len()
            ))
            .field("policy.requireMaintenanceMode"));
        }
    }
    plan.created_by = Some(caller.user_id);
    plan.idempotency_key = Some(pf.idempotency_key());
    Ok((pf, plan))
}

/// Creates a plan (status draft) from the seed's plan + policy JSON.
#[utoipa::path(post, path = "/api/v1/plans", tag = "plans",
    request_body(content = Value, description = "name, targets {hosts, tags, clusters, datacenters, all, exclude, priority}, policy (the seed's camelCase policy), catalog, packages, window, approval_required, idempotency_key"),
    responses((status = 201, description = "Created", body = Value), (status = 200, description = "Same idempotency key: the existing plan", body = Value),
        (status = 400, description = "Malformed JSON"), (status = 422, description = "Invalid plan, every problem with its field")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(Role::Operator)?;
    let (pf, plan) = read_plan(&s, &caller, &body).await?;
    let created = s.executor.create_plan(plan).await.map_err(|e| match e {
        firmflow_core::executor::PlanError::Invalid(inv) => problems_error(&pf.explain(&inv)),
        other => other.into(),
    })?;
    let p = created.plan;
    if created.created {
        audit(&s, &caller, p.id, "create").await;
        tracing::info!(plan = %p.id, name = %p.name, by = %caller.name, "plan created");
    }
    let code = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(plan_view(&s, &caller, &p, None).await?)))
}

/// Validates a plan body without creating it.
#[utoipa::path(post, path = "/api/v1/plans/validate", tag = "plans",
    request_body(content = Value, description = "A plan body, as for POST /api/v1/plans"),
    responses((status = 200, description = "{valid: true, targets} or {valid: false, problems}", body = Value),
        (status = 400, description = "Malformed JSON")), security(("bearer" = [])))]
pub async fn validate(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    match read_plan(&s, &caller, &body).await {
        Ok((_, plan)) => Ok(Json(json!({
            "valid": true,
            "name": plan.name,
            "targets": plan.targets.iter().map(|t| json!({"host_id": t.host_id, "priority": t.priority})).collect::<Vec<_>>(),
            "policy": plan.policy,
        }))),
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => Ok(Json(
            json!({"valid": false, "message": e.message, "problems": e.problems}),
        )),
        Err(e) => Err(e),
    }
}

/// Plan filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanQuery {
    /// Only plans in this status.
    pub status: Option<String>,
    /// Cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
}

/// Lists plans, newest first.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans", params(PlanQuery),
    responses((status = 200, description = "A page of plans, each with counts and progress (ETA)", body = Value)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<PlanQuery>,
) -> ApiResult<Json<Paged<PlanSummary>>> {
    let status = match &q.status {
        Some(st) => Some(PlanStatus::parse(st).ok_or_else(|| {
            ApiError::bad_request(format!("status: {st:?} is not a plan status")).field("status")
        })?),
        None => None,
    };
    let store = s.reader(&caller);
    let hosts = host_index(store.as_ref()).await?;
    let mut plans = Vec::new();
    for p in store.list_plans().await? {
        if status.is_some_and(|st| p.status != st) {
            continue;
        }
        if plan_visible(store.as_ref(), &caller, p.id, &hosts).await? {
            plans.push(p);
        }
    }
    plans.sort_by_key(|p| std::cmp::Reverse(p.id));
    let page = Page {
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = paginate(plans, &page, |p| p.id.0, true)?;
    // Counts and progress only for the page's plans: the list stays one
    // store read per plan shown, not per plan stored.
    let now = Utc::now();
    let mut items = Vec::with_capacity(page.items.len());
    for p in page.items {
        let counts = store.run_counts(p.id).await?;
        let runs = store.list_runs(p.id).await?;
        let progress = progress::plan_progress(&p, &counts, &runs, now);
        items.push(PlanSummary {
            plan: p,
            counts,
            progress,
        });
    }
    Ok(Json(Paged {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// A plan in the list: the plan's fields, its run counts and progress.
#[derive(Debug, serde::Serialize)]
pub struct PlanSummary {
    /// The plan (its fields at the top level, as before counts were added).
    #[serde(flatten)]
    pub plan: Plan,
    /// Runs by state.
    pub counts: firmflow_core::policy::RunCounts,
    /// total, done, percent, started_at, eta, eta_basis.
    pub progress: Value,
}

pub(crate) async fn visible_plan(s: &AppState, caller: &Caller, id: &str) -> ApiResult<Plan> {
    let id = parse_plan_id(id)?;
    let store = s.reader(caller);
    let p = store.get_plan(id).await?;
    if caller.datacenter.is_none() {
        return Ok(p);
    }
    let hosts = host_index(store.as_ref()).await?;
    if !plan_visible(store.as_ref(), caller, id, &hosts).await? {
        return Err(ApiError::not_found(format!("plan {id} not found")));
    }
    Ok(p)
}

/// `GET /api/v1/plans/{id}` options.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanViewQuery {
    /// Only host rows changed at or after this time (RFC 3339): pass the
    /// previous answer's `next_since` (a live view re-reads only what the
    /// stream said changed). Plan, counts, progress and clusters are always whole.
    pub since: Option<String>,
}

pub(crate) async fn plan_view(
    s: &AppState,
    caller: &Caller,
    p: &Plan,
    since: Option<DateTime<Utc>>,
) -> ApiResult<Value> {
    // Read the time first: `next_since` must not pass a row written during the read.
    let now = Utc::now();
    let store = s.reader(caller);
    let counts = store.run_counts(p.id).await?;
    let hosts = host_index(store.as_ref()).await?;
    let runs: Vec<HostRun> = store
        .list_runs(p.id)
        .await?
        .into_iter()
        .filter(|r| caller.sees(dc_of(&hosts, r.host_id)))
        .collect();
    let per_host: Vec<Value> = runs
        .iter()
        .filter(|r| since.is_none_or(|t| r.updated_at >= t))
        .map(|r| progress::host_row(r, hosts.get(&r.host_id)))
        .collect();
    Ok(json!({
        "plan": p,
        "counts": counts,
        "progress": progress::plan_progress(p, &counts, &runs, now),
        "clusters": progress::clusters(p, &runs, &hosts, caller),
        "hosts": per_host,
        "partial": since.is_some(),
        "next_since": progress::next_since(now, s.engine.pg.is_some()),
    }))
}

/// A plan with its run counts, progress (ETA), clusters and per-host rows.
#[utoipa::path(get, path = "/api/v1/plans/{id}", tag = "plans", params(("id" = String, Path, description = "Plan id"), PlanViewQuery),
    responses((status = 200, description = "plan, counts, progress, clusters, hosts (only those changed since `since` when given), next_since", body = Value),
        (status = 400, description = "Bad `since`"), (status = 404, description = "Unknown plan")),
    security(("bearer" = [])))]
pub async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PlanViewQuery>,
) -> ApiResult<Response> {
    let since = match &q.since {
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|e| {
                    ApiError::bad_request(format!("since: {t:?} is not an RFC 3339 time: {e}"))
                        .field("since")
                })?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let p = visible_plan(&s, &caller, &id).await?;
    let body = match since {
        Some(_) => json_bytes(&plan_view(&s, &caller, &p, since).await?)?,
        None => {
            s.plan_views
                .get_or_compute(p.id, caller.datacenter, || async {
                    json_bytes(&plan_view(&s, &caller, &p, None).await?)
                })
                .await?
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn json_bytes(v: &Value) -> ApiResult<Bytes> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(format!("serialising the plan view: {e}")))
}

/// Records who did what to a plan (the status change itself carries the
/// user id; this names the token and its role).
async fn audit(s: &AppState, caller: &Caller, plan: PlanId, action: &str) {
    let mut ev = NewEvent::info(
        EventType::Other("api_action".into()),
        format!("{action} by {} ({})", caller.name, caller.role),
    );
    ev.plan_id = Some(plan);
    ev.user_id = Some(caller.user_id);
    ev.details = json!({"action": action, "actor": caller.name, "role": caller.role});
    if let Err(e) = s.store.append_event(ev).await {
        tracing::warn!(plan = %plan, error = %e, "could not record the API action in the audit trail");
    }
}

macro_rules! plan_action {
    ($fn_name:ident, $path:literal, $what:literal, |$s:ident, $p:ident, $who:ident| $call:expr) => {
        #[doc = concat!("Plan action: ", $what, ".")]
        #[utoipa::path(post, path = $path, tag = "plans", params(("id" = String, Path, description = "Plan id")),
            responses((status = 200, description = "The plan after the action", body = Value),
                (status = 403, description = "Needs role operator"), (status = 404, description = "Unknown plan"),
                (status = 409, description = "The plan's status does not allow it")),
            security(("bearer" = [])))]
        pub async fn $fn_name(State($s): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
            caller.require(Role::Operator)?;
            let plan = visible_plan(&$s, &caller, &id).await?;
            let $p = plan.id;
            let $who = caller.user_id;
            $call.await?;
            $s.plan_views.forget($p);
            audit(&$s, &caller, $p, $what).await;
            tracing::info!(plan = %$p, action = $what, by = %caller.name, "plan action");
            let p = $s.store.get_plan($p).await?;
            Ok(Json(plan_view(&$s, &caller, &p, None).await?))
        }
    };
}

plan_action!(
    approve,
    "/api/v1/plans/{id}/approve",
    "approve",
    |s, p, who| s.executor.approve(p, who)
);
plan_action!(start, "/api/v1/plans/{id}/start", "start", |s, p, who| s
    .executor
    .start(p, Some(who)));
plan_action!(pause, "/api/v1/plans/{id}/pause", "pause", |s, p, who| s
    .executor
    .pause(p, Some(who)));
plan_action!(
    resume,
    "/api/v1/plans/{id}/resume",
    "resume",
    |s, p, who| s.executor.resume(p, Some(who))
);
plan_action!(
    cancel,
    "/api/v1/plans/{id}/cancel",
    "cancel",
    |s, p, who| s.executor.cancel(p, Some(who))
);

/// What the plan will do: reads the BMCs, simulates admission, changes nothing.
#[utoipa::path(post, path = "/api/v1/plans/{id}/dry-run", tag = "plans", params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, description = "dry_run (waves, hosts, packages) and unreadable hosts", body = Value),
        (status = 422, description = "The catalog cannot be loaded")), security(("bearer" = [])))]
pub async fn dry_run(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Operator)?;
    let plan = visible_plan(&s, &caller, &id).await?;
    let targets = s.store.plan_targets(plan.id).await?;
    let artifacts = s.store.plan_artifacts(plan.id).await?;
    let all = host_index(s.store.as_ref()).await?;
    let catalog = match &plan.policy.catalog_url {
        Some(c) if plan.policy.update_mode == UpdateMode::LatestFromCatalog => {
            let loaded = s.engine.catalogs.load(c).await.map_err(|e| {
                ApiError::invalid(format!("policy.catalogUrl: {e}")).field("policy.catalogUrl")
            })?;
            Some((CatalogIndex::new(loaded.catalog.clone()), c.clone()))
        }
        _ => None,
    };
    let mut facts = Vec::new();
    let mut unreadable = Vec::new();
    for t in &targets {
        let Some(h) = all.get(&t.host_id) else {
            continue;
        };
        match super::hosts::read_bmc_facts(&s, h).await {
            Ok((system, inventory)) => facts.push(HostFacts {
                host: h.clone(),
                system,
                inventory,
            }),
            Err(e) => unreadable.push(json!({"host": h.fqdn, "error": e})),
        }
    }
    let mut others: BTreeMap<_, BTreeSet<String>> = BTreeMap::new();
    for h in all.values() {
        if let Some(k) = h.cluster_key()
            && !targets.iter().any(|t| t.host_id == h.id)
        {
            others
                .entry(k)
                .or_default()
                .insert(h.host_moid.clone().unwrap_or_else(|| h.id.to_string()));
        }
    }
    let locator = catalog
        .as_ref()
        .map(|(_, url)| PackageLocator::new(url.clone()));
    let dr = simulate(&DryRunInput {
        plan: &plan,
        targets: &targets,
        hosts: &facts,
        artifacts: &artifacts,
        catalog: catalog.as_ref().map(|(i, _)| i),
        locator: locator.as_ref(),
        other_cluster_members: others,
        start: plan
            .maintenance_window
            .as_ref()
            .map(|w| w.start.max(Utc::now()))
            .unwrap_or_else(Utc::now),
        durations: DurationModel::default(),
    });
    Ok(Json(json!({"dry_run": dr, "unreadable": unreadable})))
}

/// The plan's packages: its artifacts, and per run what it resolved with the status of each.
#[utoipa::path(get, path = "/api/v1/plans/{id}/packages", tag = "plans", params(("id" = String, Path, description = "Plan id")),
    responses((status = 200, description = "artifacts and per-run packages", body = Value)), security(("bearer" = [])))]
pub async fn packages(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let plan = visible_plan(&s, &caller, &id).await?;
    let artifacts = s.store.plan_artifacts(plan.id).await?;
    let runs = s.store.list_runs(plan.id).await?;
    let per_run: Vec<Value> = runs
        .iter()
        .map(|r| json!({"run_id": r.id, "host_id": r.host_id, "packages": r.ctx.checkpoint.packages}))
        .collect();
    Ok(Json(json!({"artifacts": artifacts, "runs": per_run})))
}
