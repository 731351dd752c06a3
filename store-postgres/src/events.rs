//! `EventStore`: the audit trail in `system_events` (partitioned by month).
//! `seq` orders events store-wide; note that a reader paging by `after_seq`
//! may see a lower `seq` commit after a higher one from a concurrent writer.

use crate::error::db_err;
use crate::rows::{self, EVENT_COLS};
use crate::{PgStore, with_conn};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use firmflow_core::model::*;
use firmflow_core::store::{EventFilter, EventStore, Result};
use sqlx::AssertSqlSafe;

/// Inserts one event on `c` (inside the caller's transaction).
pub(crate) async fn insert_event(
    c: &mut sqlx::PgConnection,
    e: &NewEvent,
    now: Option<DateTime<Utc>>,
) -> Result<SystemEvent> {
    let sql = format!(
        "INSERT INTO system_events (id, event_type, severity, message, details, user_id, host_id, \
           plan_id, run_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10, now())) RETURNING {EVENT_COLS}"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(EventId::new().0)
        .bind(e.event_type.as_str())
        .bind(e.severity.as_str())
        .bind(&e.message)
        .bind(&e.details)
        .bind(e.user_id.map(|u| u.0))
        .bind(e.host_id.map(|h| h.0))
        .bind(e.plan_id.map(|p| p.0))
        .bind(e.run_id.map(|r| r.0))
        .bind(now)
        .fetch_one(&mut *c)
        .await
        .map_err(db_err)?;
    rows::event(&row)
}

#[async_trait]
impl EventStore for PgStore {
    async fn append_event(&self, event: NewEvent) -> Result<SystemEvent> {
        let now = self.now_param();
        with_conn!(self, c => insert_event(c, &event, now).await)
    }

    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<SystemEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLS} FROM system_events \
             WHERE ($1::uuid IS NULL OR plan_id = $1) AND ($2::uuid IS NULL OR run_id = $2) \
               AND ($3::uuid IS NULL OR host_id = $3) AND ($4::bigint IS NULL OR seq > $4) \
               AND ($6::text IS NULL OR event_type = $6) \
               AND ($7::timestamptz IS NULL OR created_at >= $7) \
               AND ($8::timestamptz IS NULL OR created_at < $8) \
             ORDER BY seq LIMIT $5"
        );
        let limit = filter.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        with_conn!(self, c => {
            let rs = sqlx::query(AssertSqlSafe(sql))
                .bind(filter.plan_id.map(|p| p.0))
                .bind(filter.run_id.map(|r| r.0))
                .bind(filter.host_id.map(|h| h.0))
                .bind(filter.after_seq)
                .bind(limit)
                .bind(filter.event_type.as_ref().map(|t| t.as_str().to_string()))
                .bind(filter.since)
                .bind(filter.until)
                .fetch_all(&mut *c)
                .await
                .map_err(db_err)?;
            rs.iter().map(rows::event).collect::<Result<Vec<_>>>()
        })
    }
}
