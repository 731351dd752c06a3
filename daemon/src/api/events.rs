//! Runs (`/plans/{id}/runs`, `/runs/{id}`), the audit trail (`/events`,
//! filtered by plan, host, run, type and time, paged by `seq`) and the live
//! stream (`/events/stream`, Server-Sent Events).
//!
//! The stream reads the store, not the executor's broadcast, so it carries
//! every daemon's events and resumes exactly: each SSE `id` is the event's
//! store-wide `seq`, and `Last-Event-ID` (or `?after=`) continues after it.
//! PostgreSQL may commit a lower `seq` after a higher one; the stream holds
//! back past a gap until it fills or [`GAP_WAIT`] passes (a rolled-back
//! insert leaves a gap for ever), so nothing is skipped or sent twice.

use super::plans::{parse_plan_id, visible_plan};
use super::{
    ApiError, ApiResult, AppState, Page, Paged, dc_of, host_index, paginate, plan_visible,
};
use crate::auth::Caller;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use firmflow_core::model::{EventType, HostId, HostRun, PlanId, RunId, SystemEvent};
use firmflow_core::store::EventFilter;
use futures::Stream;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, Instant};

/// How long the stream waits for a gap in `seq` to fill.
pub const GAP_WAIT: Duration = Duration::from_secs(2);
/// Store poll period of a live stream.
pub const STREAM_POLL: Duration = Duration::from_millis(100);

/// Runs of a plan.
#[utoipa::path(get, path = "/api/v1/plans/{id}/runs", tag = "runs",
    params(("id" = String, Path, description = "Plan id"), Page),
    responses((status = 200, description = "A page of runs with ctx, progress and timing", body = Value),
        (status = 404, description = "Unknown plan")), security(("bearer" = [])))]
pub async fn runs_of_plan(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<Paged<HostRun>>> {
    let plan = visible_plan(&s, &caller, &id).await?;
    let store = s.reader(&caller);
    let hosts = host_index(store.as_ref()).await?;
    let mut runs: Vec<HostRun> = store
        .list_runs(plan.id)
        .await?
        .into_iter()
        .filter(|r| caller.sees(dc_of(&hosts, r.host_id)))
        .collect();
    runs.sort_by_key(|r| r.id);
    Ok(Json(paginate(runs, &page, |r| r.id.0, false)?))
}

/// A run with its ctx (progress, results, timing, checkpoint).
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = String, Path, description = "Run id")),
    responses((status = 200, description = "The run", body = Value), (status = 404, description = "Unknown run")),
    security(("bearer" = [])))]
pub async fn run(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<HostRun>> {
    let rid: RunId = id.parse().map_err(|_| {
        ApiError::bad_request(format!("id: {id:?} is not a run id (UUID)")).field("id")
    })?;
    let store = s.reader(&caller);
    let r = store.get_run(rid).await?;
    let hosts = host_index(store.as_ref()).await?;
    if !caller.sees(dc_of(&hosts, r.host_id)) {
        return Err(ApiError::not_found(format!("run {rid} not found")));
    }
    Ok(Json(r))
}

/// Event filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only this plan.
    pub plan: Option<String>,
    /// Only this host.
    pub host: Option<String>,
    /// Only this run.
    pub run: Option<String>,
    /// Only this type (`plan_status_changed`, `run_transition`, ...).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Created at or after (RFC 3339).
    pub since: Option<String>,
    /// Created before (RFC 3339).
    pub until: Option<String>,
    /// Cursor (an event `seq`).
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
}

fn time_param(name: &str, v: &Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    match v {
        None => Ok(None),
        Some(t) => DateTime::parse_from_rfc3339(t)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|e| {
                ApiError::bad_request(format!("{name}: {t:?} is not an RFC 3339 time: {e}"))
                    .field(name)
            }),
    }
}

fn id_param<T: std::str::FromStr>(name: &str, v: &Option<String>) -> ApiResult<Option<T>> {
    match v {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{name}: {s:?} is not an id (UUID)")).field(name)
        }),
    }
}

/// Whether a scoped caller sees an event: by its host, else by its plan;
/// events of neither are for unscoped callers only.
struct EventScope {
    hosts: HashMap<HostId, firmflow_core::model::Host>,
    plans: HashMap<PlanId, bool>,
}

impl EventScope {
    async fn new(s: &AppState) -> ApiResult<Self> {
        Ok(Self {
            hosts: host_index(s.store.as_ref()).await?,
            plans: HashMap::new(),
        })
    }

    async fn sees(&mut self, s: &AppState, caller: &Caller, e: &SystemEvent) -> ApiResult<bool> {
        if caller.datacenter.is_none() {
            return Ok(true);
        }
        if let Some(h) = e.event.host_id {
            if !self.hosts.contains_key(&h) {
                // A host registered since: read again once.
                self.hosts = host_index(s.store.as_ref()).await?;
            }
            return Ok(caller.sees(dc_of(&self.hosts, h)));
        }
        if let Some(p) = e.event.plan_id {
            if let Some(v) = self.plans.get(&p) {
                return Ok(*v);
            }
            let v = plan_visible(s.store.as_ref(), caller, p, &self.hosts).await?;
            self.plans.insert(p, v);
            return Ok(v);
        }
        Ok(false)
    }
}

/// The audit trail, oldest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(EventQuery),
    responses((status = 200, description = "A page of events", body = Value), (status = 400, description = "Bad filter")),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<EventQuery>,
) -> ApiResult<Json<Paged<SystemEvent>>> {
    let after = match &q.cursor {
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::bad_request("cursor: not a cursor of this list").field("cursor")
        })?),
        None => None,
    };
    let page = Page {
        cursor: None,
        limit: q.limit,
    };
    let limit = page.limit();
    let mut filter = EventFilter {
        plan_id: id_param("plan", &q.plan)?,
        host_id: id_param("host", &q.host)?,
        run_id: id_param("run", &q.run)?,
        event_type: q.event_type.as_deref().map(EventType::from),
        since: time_param("since", &q.since)?,
        until: time_param("until", &q.until)?,
        after_seq: after,
        limit: Some(limit + 1),
    };
    let mut scope = EventScope::new(&s).await?;
    let store = s.reader(&caller);
    let mut out = Vec::new();
    // A scoped caller's rows may be sparse: read on until the page is full.
    loop {
        let batch = store.list_events(&filter).await?;
        let done = batch.len() <= limit;
        let last = batch.last().map(|e| e.seq);
        for e in batch {
            if out.len() > limit {
                break;
            }
            if scope.sees(&s, &caller, &e).await? {
                out.push(e);
            }
        }
        if done || out.len() > limit {
            break;
        }
        filter.after_seq = last;
    }
    Ok(Json(paginate(out, &page, |e| e.seq, false)?))
}

/// Live stream filters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only this plan's events.
    pub plan: Option<String>,
    /// Resume after this seq (like `Last-Event-ID`).
    pub after: Option<i64>,
    /// Start with the events created at or after this time (RFC 3339)
    /// instead of the whole trail: a client that has just read a snapshot
    /// (`next_since` of `GET /api/v1/plans/{id}`) follows on from it.
    /// `Last-Event-ID` or `after` still say where a reconnect resumes.
    pub since: Option<String>,
}

struct StreamState {
    s: AppState,
    caller: Caller,
    plan: Option<PlanId>,
    /// Only events created at or after this.
    since: Option<DateTime<Utc>>,
    /// Every event up to here was sent or skipped for good.
    watermark: i64,
    pending: VecDeque<Event>,
    gap_since: Option<Instant>,
    scope: Option<EventScope>,
    failures: u32,
}

/// Server-Sent Events: every new event (of `plan`, created since `since`),
/// `id` = its seq; resumes after `Last-Event-ID`.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", params(StreamQuery),
    responses((status = 200, description = "text/event-stream; each event's data is the event JSON, its id the seq", content_type = "text/event-stream", body = String)),
    security(("bearer" = [])))]
pub async fn stream(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let plan = match &q.plan {
        Some(p) => {
            let id = parse_plan_id(p).map_err(|e| e.field("plan"))?;
            visible_plan(&s, &caller, &id.to_string()).await?;
            Some(id)
        }
        None => None,
    };
    let last = match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!("Last-Event-ID: {v:?} is not an event seq"))
                .field("Last-Event-ID")
        })?),
        None => q.after,
    };
    let since = time_param("since", &q.since)?;
    let st = StreamState {
        s,
        caller,
        plan,
        since,
        watermark: last.unwrap_or(0).max(0),
        pending: VecDeque::new(),
        gap_since: None,
        scope: None,
        failures: 0,
    };
    let events = futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok(e), st));
            }
            if *st.s.stopping.borrow() {
                return None;
            }
            match fill(&mut st).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    st.failures += 1;
                    tracing::warn!(error = %e.message, "live stream: reading events failed");
                    if st.failures > 50 {
                        return None;
                    }
                }
            }
            let mut stop = st.s.stopping.clone();
            tokio::select! {
                _ = tokio::time::sleep(STREAM_POLL) => {}
                _ = stop.changed() => {}
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Reads what follows the watermark; `true` when something was queued.
async fn fill(st: &mut StreamState) -> ApiResult<bool> {
    let batch =
        st.s.store
            .list_events(&EventFilter {
                after_seq: Some(st.watermark),
                since: st.since,
                limit: Some(500),
                ..Default::default()
            })
            .await?;
    if st.scope.is_none() && st.caller.datacenter.is_some() {
        st.scope = Some(EventScope::new(&st.s).await?);
    }
    let mut queued = false;
    for e in batch {
        if e.seq != st.watermark + 1 && st.watermark > 0 {
            // A gap: a lower seq may still commit. Wait, then accept it.
            let since = *st.gap_since.get_or_insert_with(Instant::now);
            if since.elapsed() < GAP_WAIT {
                break;
            }
        }
        st.gap_since = None;
        st.watermark = e.seq;
        if st.plan.is_some_and(|p| e.event.plan_id != Some(p)) {
            continue;
        }
        if let Some(scope) = st.scope.as_mut()
            && !scope.sees(&st.s, &st.caller, &e).await?
        {
            continue;
        }
        let data = serde_json::to_string(&e).map_err(|x| ApiError::internal(x.to_string()))?;
        st.pending.push_back(
            Event::default()
                .id(e.seq.to_string())
                .event(e.event.event_type.as_str())
                .data(data),
        );
        st.s.metrics.sse_events.with_label_values(&["event"]).inc();
        queued = true;
    }
    Ok(queued)
}
