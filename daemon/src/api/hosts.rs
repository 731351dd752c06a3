//! `/api/v1/hosts`: the fleet registry (list with filters, get, create,
//! bulk import of the CLI's hosts files, update, delete), inventory refresh
//! from the BMC, and compliance against a catalog. Rows are read and
//! written through firmflow-ops, as the CLI does.

use super::{ApiError, ApiResult, AppState, Body, Page, Paged, paginate};
use crate::auth::Caller;
use crate::config::Role;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use firmflow_catalog::{CatalogIndex, assess_host};
use firmflow_core::bmc::{Inventory, SystemInfo};
use firmflow_core::model::{Host, HostId, MgmtKind, Policy, UpdateMode};
use firmflow_ops::hosts::{HostsFormat, RowError, datacenter_id};
use serde::Deserialize;
use serde_json::{Value, json};

/// Host filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostQuery {
    /// Hosts with this tag.
    pub tag: Option<String>,
    /// Hosts in this cluster (moid).
    pub cluster: Option<String>,
    /// Hosts in this datacenter (name or UUID).
    pub datacenter: Option<String>,
    /// Hosts of this management kind.
    pub mgmt_kind: Option<String>,
    /// Hosts whose fqdn or management address contains this.
    pub q: Option<String>,
    /// Cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
}

pub(crate) fn parse_host_id(s: &str) -> ApiResult<HostId> {
    s.parse().map_err(|_| {
        ApiError::bad_request(format!("id: {s:?} is not a host id (UUID)")).field("id")
    })
}

async fn visible_host(s: &AppState, caller: &Caller, id: &str) -> ApiResult<Host> {
    let id = parse_host_id(id)?;
    let h = s.reader(caller).get_host(id).await?;
    if !caller.sees(h.datacenter_id) {
        return Err(ApiError::not_found(format!("host {id} not found")));
    }
    Ok(h)
}

fn row_problems(errors: &[RowError]) -> ApiError {
    let mut e = ApiError::invalid(format!(
        "{} problem(s), nothing imported: {}",
        errors.len(),
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    ));
    e.field = errors.first().and_then(|r| r.field.clone());
    e.problems = errors
        .iter()
        .map(|r| json!({"line": r.line, "field": r.field, "message": r.message}))
        .collect();
    e
}

/// Lists hosts.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "hosts", params(HostQuery),
    responses((status = 200, description = "A page of hosts", body = Value)), security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<HostQuery>,
) -> ApiResult<Json<Paged<Host>>> {
    let dc = q.datacenter.as_deref().map(datacenter_id);
    let kind = q.mgmt_kind.as_deref().map(MgmtKind::from);
    let needle = q.q.as_deref().map(str::to_ascii_lowercase);
    let mut hosts: Vec<Host> = s
        .reader(&caller)
        .list_hosts()
        .await?
        .into_iter()
        .filter(|h| caller.sees(h.datacenter_id))
        .filter(|h| q.tag.as_ref().is_none_or(|t| h.tags.contains(t)))
        .filter(|h| {
            q.cluster
                .as_ref()
                .is_none_or(|c| h.cluster_moid.as_ref() == Some(c))
        })
        .filter(|h| dc.is_none_or(|d| h.datacenter_id == Some(d)))
        .filter(|h| kind.as_ref().is_none_or(|k| &h.mgmt_kind == k))
        .filter(|h| {
            needle.as_ref().is_none_or(|n| {
                h.fqdn.to_ascii_lowercase().contains(n)
                    || h.mgmt_ip.to_ascii_lowercase().contains(n)
            })
        })
        .collect();
    hosts.sort_by_key(|h| h.id);
    let page = Page {
        cursor: q.cursor,
        limit: q.limit,
    };
    Ok(Json(paginate(hosts, &page, |h| h.id.0, false)?))
}

/// Gets a host.
#[utoipa::path(get, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = String, Path, description = "Host id")),
    responses((status = 200, description = "The host", body = Value), (status = 404, description = "Unknown host")),
    security(("bearer" = [])))]
pub async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let h = visible_host(&s, &caller, &id).await?;
    let creds = s
        .store
        .credentials_for(h.id, firmflow_core::model::CredentialKind::Idrac)
        .await?;
    let mut v = serde_json::to_value(&h).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        // References only (`env:`, `file:`, `vault:`): never a secret.
        o.insert(
            "credentials".into(),
            json!(
                creds
                    .iter()
                    .map(|c| c.vault_path.clone())
                    .collect::<Vec<_>>()
            ),
        );
    }
    Ok(Json(v))
}

/// Parses hosts and refuses rows outside the caller's datacenter.
fn entries_for(
    caller: &Caller,
    text: &str,
    format: HostsFormat,
) -> ApiResult<Vec<firmflow_ops::HostEntry>> {
    let entries = firmflow_ops::hosts::parse(text, format).map_err(|e| row_problems(&e))?;
    if let Some(mine) = caller.datacenter {
        let outside: Vec<RowError> = entries
            .iter()
            .filter(|e| e.host.datacenter_id != Some(mine))
            .map(|e| RowError {
                line: Some(e.line),
                field: Some("datacenter".into()),
                message: format!(
                    "{}: this token manages one datacenter only; give it that datacenter",
                    e.host.fqdn
                ),
            })
            .collect();
        if !outside.is_empty() {
            let mut err = row_problems(&outside);
            err.status = StatusCode::FORBIDDEN;
            err.code = "forbidden";
            return Err(err);
        }
    }
    Ok(entries)
}

/// Registers one host (the fields of a hosts-file row, as JSON).
#[utoipa::path(post, path = "/api/v1/hosts", tag = "hosts",
    request_body(content = Value, description = "fqdn, mgmt_ip, model, service_tag, mgmt_kind, vcenter_url, cluster_moid, host_moid, datacenter, tags, credential"),
    responses((status = 201, description = "Registered", body = Value), (status = 409, description = "fqdn already registered"),
        (status = 422, description = "Invalid field")), security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Body(body): Body<Value>,
) -> ApiResult<(StatusCode, Json<Host>)> {
    caller.require(Role::Admin)?;
    if !body.is_object() {
        return Err(ApiError::invalid("body: expected an object of host fields").field("body"));
    }
    let text = Value::Array(vec![body]).to_string();
    let entries = entries_for(&caller, &text, HostsFormat::Json)?;
    let existing = s.store.list_hosts().await?;
    for e in &entries {
        if existing
            .iter()
            .any(|h| h.fqdn.eq_ignore_ascii_case(&e.host.fqdn))
        {
            return Err(ApiError::conflict(format!(
                "fqdn {} is already registered (PUT /api/v1/hosts/{{id}} changes it)",
                e.host.fqdn
            ))
            .field("fqdn"));
        }
    }
    let (_, hosts) = firmflow_ops::register::import_entries(s.store.as_ref(), &entries).await?;
    let h = hosts
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("no host registered"))?;
    tracing::info!(host = %h.id, fqdn = %h.fqdn, by = %caller.name, "host registered");
    Ok((StatusCode::CREATED, Json(h)))
}

/// Import format.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `csv` or `json` (default: from Content-Type).
    pub format: Option<String>,
}

/// Bulk import of a hosts file (CSV or JSON), all or nothing.
#[utoipa::path(post, path = "/api/v1/hosts/import", tag = "hosts", params(ImportQuery),
    request_body(content = String, description = "A hosts file (the CLI's CSV or JSON)", content_type = "text/csv"),
    responses((status = 200, description = "added / updated / unchanged fqdns", body = Value),
        (status = 422, description = "Rows with problems, each with line and field")), security(("bearer" = [])))]
pub async fn import(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Admin)?;
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = match q.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => HostsFormat::Csv,
        Some("json") => HostsFormat::Json,
        Some(other) => {
            return Err(
                ApiError::bad_request(format!("format: {other:?}; expected csv or json"))
                    .field("format"),
            );
        }
        None if ct.contains("json") => HostsFormat::Json,
        None if ct.contains("csv") || ct.starts_with("text/") => HostsFormat::Csv,
        None => {
            return Err(ApiError::bad_request(
                "say the format: Content-Type text/csv or application/json, or ?format=",
            )
            .field("format"));
        }
    };
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("body: not UTF-8").field("body"))?;
    if format == HostsFormat::Json
        && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("malformed JSON: {e}"),
        ));
    }
    let entries = entries_for(&caller, text, format)?;
    let (report, _) = firmflow_ops::register::import_entries(s.store.as_ref(), &entries).await?;
    tracing::info!(added = report.added.len(), updated = report.updated.len(), by = %caller.name, "hosts imported");
    Ok(Json(json!(report)))
}

/// Fields to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPatch {
    mgmt_ip: Option<String>,
    model: Option<String>,
    service_tag: Option<String>,
    mgmt_kind: Option<String>,
    vcenter_url: Option<String>,
    cluster_moid: Option<String>,
    host_moid: Option<String>,
    tags: Option<Vec<String>>,
    datacenter: Option<String>,
    credential: Option<String>,
}

/// Changes a host's fields.
#[utoipa::path(put, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = String, Path, description = "Host id")),
    request_body(content = Value, description = "Any of mgmt_ip, model, service_tag, mgmt_kind, vcenter_url, cluster_moid, host_moid, tags, datacenter, credential"),
    responses((status = 200, description = "The host", body = Value), (status = 404, description = "Unknown host"),
        (status = 422, description = "Invalid field")), security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(p): Body<HostPatch>,
) -> ApiResult<Json<Host>> {
    caller.require(Role::Admin)?;
    let mut h = visible_host(&s, &caller, &id).await?;
    if let Some(v) = p.mgmt_ip {
        if v.trim().is_empty() {
            return Err(ApiError::invalid("mgmt_ip: must not be empty").field("mgmt_ip"));
        }
        h.mgmt_ip = v;
    }
    if let Some(v) = p.model {
        h.model = Some(v);
    }
    if let Some(v) = p.service_tag {
        h.service_tag = Some(v);
    }
    if let Some(v) = p.mgmt_kind {
        let k = MgmtKind::from(v.as_str());
        if let MgmtKind::Other(o) = &k {
            return Err(ApiError::invalid(format!(
                "mgmt_kind: {o:?}; expected idrac, redfish, racadm or ipmi"
            ))
            .field("mgmt_kind"));
        }
        h.mgmt_kind = k;
    }
    if let Some(v) = p.vcenter_url {
        h.vcenter_url = Some(v).filter(|s| !s.is_empty());
    }
    if let Some(v) = p.cluster_moid {
        h.cluster_moid = Some(v).filter(|s| !s.is_empty());
    }
    if let Some(v) = p.host_moid {
        h.host_moid = Some(v).filter(|s| !s.is_empty());
    }
    if let Some(v) = p.tags {
        h.tags = v;
    }
    if let Some(v) = p.datacenter {
        let d = datacenter_id(&v);
        if !caller.sees(Some(d)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "datacenter: this token manages one datacenter only",
            )
            .field("datacenter"));
        }
        h.datacenter_id = Some(d);
    }
    if let Some(r) = p.credential {
        firmflow_ops::bmc::check_reference(&r)
            .map_err(|e| ApiError::invalid(format!("credential: {e}")).field("credential"))?;
        s.store
            .add_credential(Some(h.id), firmflow_core::model::CredentialKind::Idrac, &r)
            .await?;
    }
    s.store.update_host(&h).await?;
    Ok(Json(s.store.get_host(h.id).await?))
}

/// Removes a host (refused while an unfinished plan targets it).
#[utoipa::path(delete, path = "/api/v1/hosts/{id}", tag = "hosts", params(("id" = String, Path, description = "Host id")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown host"),
        (status = 409, description = "An unfinished plan targets it")), security(("bearer" = [])))]
pub async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    let h = visible_host(&s, &caller, &id).await?;
    s.store.remove_host(h.id).await?;
    tracing::info!(host = %h.id, fqdn = %h.fqdn, by = %caller.name, "host removed");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn read_bmc_facts(
    s: &AppState,
    h: &Host,
) -> Result<(SystemInfo, Inventory), String> {
    let driver = s
        .engine
        .connector
        .connect(h)
        .await
        .map_err(|e| e.to_string())?;
    let facts = async {
        let system = driver.system().await?;
        let inventory = driver.inventory().await?;
        Ok::<_, firmflow_core::bmc::Error>((system, inventory))
    }
    .await;
    // Log out on every path: iDRACs have few session slots.
    let _ = driver.close().await;
    facts.map_err(|e| e.to_string())
}

/// Reads the host's system and firmware inventory from its BMC and
/// records model and service tag.
#[utoipa::path(post, path = "/api/v1/hosts/{id}/refresh", tag = "hosts", params(("id" = String, Path, description = "Host id")),
    responses((status = 200, description = "System and inventory as read", body = Value),
        (status = 502, description = "The BMC could not be read")), security(("bearer" = [])))]
pub async fn refresh(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Operator)?;
    let mut h = visible_host(&s, &caller, &id).await?;
    let (system, inventory) = read_bmc_facts(&s, &h)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "bmc_error", e))?;
    let before = h.clone();
    h.model = system.model.clone().or(h.model);
    h.service_tag = system.service_tag.clone().or(h.service_tag);
    if h != before {
        s.store.update_host(&h).await?;
    }
    Ok(Json(
        json!({"host": h, "system": system, "inventory": inventory}),
    ))
}

/// Which hosts to assess.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceRequest {
    /// Host ids (default: every visible host, or those with `tag`).
    #[serde(default)]
    hosts: Vec<HostId>,
    /// Hosts with this tag.
    #[serde(default)]
    tag: Option<String>,
    /// Catalog URL or file (default: `[artifacts] catalog`).
    #[serde(default)]
    catalog: Option<String>,
    /// Count downgrades as updates.
    #[serde(default)]
    allow_downgrade: bool,
}

/// Compliance of hosts against a catalog (reads the BMCs, changes nothing).
#[utoipa::path(post, path = "/api/v1/compliance", tag = "hosts",
    request_body(content = Value, description = "hosts (ids), tag, catalog, allow_downgrade"),
    responses((status = 200, description = "Per host: the catalog's verdict per component, or the error", body = Value),
        (status = 422, description = "No catalog, or unknown hosts")), security(("bearer" = [])))]
pub async fn compliance(
    State(s): State<AppState>,
    caller: Caller,
    Body(r): Body<ComplianceRequest>,
) -> ApiResult<Json<Value>> {
    caller.require(Role::Operator)?;
    let catalog = r
        .catalog
        .clone()
        .or_else(|| s.config.artifacts.catalog.clone())
        .ok_or_else(|| {
            ApiError::invalid("catalog: none given and no [artifacts] catalog configured")
                .field("catalog")
        })?;
    let all: Vec<Host> = s
        .reader(&caller)
        .list_hosts()
        .await?
        .into_iter()
        .filter(|h| caller.sees(h.datacenter_id))
        .collect();
    let mut chosen = Vec::new();
    for (i, id) in r.hosts.iter().enumerate() {
        match all.iter().find(|h| h.id == *id) {
            Some(h) => chosen.push(h.clone()),
            None => {
                return Err(ApiError::invalid(format!("hosts[{i}]: unknown host {id}"))
                    .field(format!("hosts[{i}]")));
            }
        }
    }
    if r.hosts.is_empty() {
        chosen = all
            .into_iter()
            .filter(|h| r.tag.as_ref().is_none_or(|t| h.tags.contains(t)))
            .collect();
    }
    let loaded = s
        .engine
        .catalogs
        .load(&catalog)
        .await
        .map_err(|e| ApiError::invalid(format!("catalog: {e}")).field("catalog"))?;
    let index = CatalogIndex::new(loaded.catalog.clone());
    let mut policy = Policy::new(UpdateMode::LatestFromCatalog);
    policy.catalog_url = Some(catalog.clone());
    policy.allow_downgrade = Some(r.allow_downgrade);
    let mut out = Vec::new();
    for h in chosen {
        let v = match read_bmc_facts(&s, &h).await {
            Ok((system, inventory)) => {
                match assess_host(&index, &h.fqdn, &system, &inventory, &policy) {
                    Ok(c) => json!({"host_id": h.id, "host": h.fqdn, "compliance": c}),
                    Err(e) => json!({"host_id": h.id, "host": h.fqdn, "error": e.to_string()}),
                }
            }
            Err(e) => json!({"host_id": h.id, "host": h.fqdn, "error": e}),
        };
        out.push(v);
    }
    Ok(Json(json!({"catalog": catalog, "hosts": out})))
}
