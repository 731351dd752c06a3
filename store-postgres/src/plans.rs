//! `PlanStore`: plans, targets, artifacts and one pending run per target,
//! created atomically and idempotently.

use crate::error::{corrupt, db_err};
use crate::rows::{self, PLAN_COLS};
use crate::{PgStore, with_conn};
use async_trait::async_trait;
use firmflow_core::model::*;
use firmflow_core::store::{Error, PlanCreated, PlanStore, Result};
use serde_json::json;
use sqlx::AssertSqlSafe;

fn to_json<T: serde::Serialize>(v: &T, what: &str) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| corrupt(format!("{what}: {e}")))
}

#[async_trait]
impl PlanStore for PgStore {
    async fn create_plan(&self, plan: NewPlan) -> Result<PlanCreated> {
        let now = self.now_param();
        let id = PlanId::new();
        let policy = to_json(&plan.policy, "policy")?;
        let window = match &plan.maintenance_window {
            Some(w) => Some(to_json(w, "maintenance window")?),
            None => None,
        };
        let max_attempts = rows::i32_of(plan.policy.retry().max_attempts, "max attempts")?;
        let host_ids: Vec<uuid::Uuid> = plan.targets.iter().map(|t| t.host_id.0).collect();
        // Run ids are made here, in target order, so that equal priorities
        // are claimed in the order the plan lists them (v7 ids sort by time).
        let targets: Vec<serde_json::Value> = plan
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({
                    "host_id": t.host_id, "priority": t.priority,
                    "conditions": t.conditions, "position": i, "run_id": RunId::new(),
                })
            })
            .collect();
        let artifacts: Vec<serde_json::Value> = plan
            .artifacts
            .iter()
            .map(|a| to_json(a, "artifact"))
            .collect::<Result<_>>()?;

        let mut tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO update_plans (id, name, policy, status, created_by, maintenance_window, \
               approval_required, idempotency_key, datacenter_id, created_at, updated_at) \
             SELECT $1, $2, $3, 'draft', $4, $5, $6, $7, \
               (SELECT CASE WHEN count(*) > 0 AND bool_and(h.datacenter_id IS NOT NULL) \
                             AND count(DISTINCT h.datacenter_id) = 1 \
                        THEN (array_agg(h.datacenter_id))[1] END \
                FROM hosts h WHERE h.id = ANY($8)), \
               coalesce($9, now()), coalesce($9, now()) \
             ON CONFLICT (idempotency_key) DO NOTHING \
             RETURNING {PLAN_COLS}"
        );
        let inserted = sqlx::query(AssertSqlSafe(sql))
            .bind(id.0)
            .bind(&plan.name)
            .bind(&policy)
            .bind(plan.created_by.map(|u| u.0))
            .bind(&window)
            .bind(plan.approval_required)
            .bind(&plan.idempotency_key)
            .bind(&host_ids)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let Some(row) = inserted else {
            // The idempotency key is taken: hand back that plan unchanged.
            let sql = format!("SELECT {PLAN_COLS} FROM update_plans WHERE idempotency_key = $1");
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(&plan.idempotency_key)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?
                .ok_or_else(|| {
                    Error::Conflict(
                        "idempotency key belongs to a plan this caller cannot see".into(),
                    )
                })?;
            tx.commit().await.map_err(db_err)?;
            return Ok(PlanCreated {
                plan: rows::plan(&row)?,
                created: false,
            });
        };
        let created = rows::plan(&row)?;

        sqlx::query(
            "INSERT INTO plan_targets (plan_id, host_id, priority, conditions, position) \
             SELECT $1, (e->>'host_id')::uuid, (e->>'priority')::int, \
                    coalesce(e->'conditions', 'null'::jsonb), (e->>'position')::int \
             FROM jsonb_array_elements($2) AS e",
        )
        .bind(id.0)
        .bind(serde_json::Value::Array(targets.clone()))
        .execute(&mut *tx)
        .await
        .map_err(|e| target_err(db_err(e)))?;

        if !artifacts.is_empty() {
            sqlx::query(
                "INSERT INTO artifacts (id, plan_id, component, image_uri, version, checksum, \
                   size_bytes, metadata, position) \
                 SELECT (e->>'id')::uuid, $1, e->>'component', e->>'image_uri', e->>'version', \
                        e->>'checksum', (e->>'size_bytes')::bigint, \
                        coalesce(e->'metadata', 'null'::jsonb), (o.n - 1)::int \
                 FROM jsonb_array_elements($2) WITH ORDINALITY AS o(e, n)",
            )
            .bind(id.0)
            .bind(serde_json::Value::Array(artifacts))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }

        sqlx::query(
            "INSERT INTO host_runs (id, plan_id, host_id, state, max_attempts, priority, run_at, \
               created_at, updated_at) \
             SELECT (e->>'run_id')::uuid, $1, (e->>'host_id')::uuid, 'pending', $3, \
                    (e->>'priority')::int, coalesce($4, now()), coalesce($4, now()), coalesce($4, now()) \
             FROM jsonb_array_elements($2) AS e",
        )
        .bind(id.0)
        .bind(serde_json::Value::Array(targets))
        .bind(max_attempts)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| target_err(db_err(e)))?;

        crate::events::insert_event(
            &mut tx,
            &NewEvent::info(
                EventType::PlanCreated,
                format!("plan {} created", plan.name),
            )
            .for_plan(id)
            .by(plan.created_by)
            .details(json!({ "targets": plan.targets.len() })),
            now,
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(PlanCreated {
            plan: created,
            created: true,
        })
    }

    async fn get_plan(&self, id: PlanId) -> Result<Plan> {
        let sql = format!("SELECT {PLAN_COLS} FROM update_plans WHERE id = $1");
        with_conn!(self, c => {
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)?
                .ok_or_else(|| Error::not_found(format!("plan {id}")))?;
            rows::plan(&row)
        })
    }

    async fn list_plans(&self) -> Result<Vec<Plan>> {
        let sql = format!("SELECT {PLAN_COLS} FROM update_plans ORDER BY created_at DESC, id DESC");
        with_conn!(self, c => {
            let rs = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *c).await.map_err(db_err)?;
            rs.iter().map(rows::plan).collect::<Result<Vec<_>>>()
        })
    }

    async fn active_plans(&self) -> Result<Vec<Plan>> {
        // Running or paused plans, and plans of any status that still have a
        // running run (its lease may expire and need a takeover to finish)
        // or a run marked for cleanup (it must still be claimed).
        let sql = format!(
            "SELECT {PLAN_COLS} FROM update_plans p \
             WHERE p.status IN ('running', 'paused') \
                OR EXISTS (SELECT 1 FROM host_runs r WHERE r.plan_id = p.id AND r.state = 'running') \
                OR EXISTS (SELECT 1 FROM host_runs r WHERE r.plan_id = p.id \
                           AND r.state IN ('pending', 'retrying') \
                           AND r.cancel_requested_at IS NOT NULL) \
             ORDER BY created_at, id"
        );
        with_conn!(self, c => {
            let rs = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut *c).await.map_err(db_err)?;
            rs.iter().map(rows::plan).collect::<Result<Vec<_>>>()
        })
    }

    async fn plan_targets(&self, id: PlanId) -> Result<Vec<PlanTarget>> {
        with_conn!(self, c => {
            ensure_plan(&mut *c, id).await?;
            let rs = sqlx::query(
                "SELECT host_id, priority, conditions FROM plan_targets WHERE plan_id = $1 \
                 ORDER BY priority DESC, position, host_id",
            )
            .bind(id.0)
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
            rs.iter().map(rows::target).collect::<Result<Vec<_>>>()
        })
    }

    async fn plan_artifacts(&self, id: PlanId) -> Result<Vec<Artifact>> {
        with_conn!(self, c => {
            ensure_plan(&mut *c, id).await?;
            let rs = sqlx::query(
                "SELECT id, component, image_uri, version, checksum, size_bytes, metadata \
                 FROM artifacts WHERE plan_id = $1 ORDER BY position, id",
            )
            .bind(id.0)
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
            rs.iter().map(rows::artifact).collect::<Result<Vec<_>>>()
        })
    }

    async fn set_plan_status(
        &self,
        id: PlanId,
        from: PlanStatus,
        to: PlanStatus,
        reason: Option<&str>,
        by: Option<UserId>,
    ) -> Result<bool> {
        let now = self.now_param();
        with_conn!(self, c => {
            let moved = sqlx::query(
                "WITH moved AS ( \
                   UPDATE update_plans \
                   SET status = $3, \
                       approved_by = CASE WHEN $3 = 'approved' THEN coalesce($5, approved_by) \
                                          ELSE approved_by END, \
                       status_reason = coalesce($4, status_reason), \
                       updated_at = coalesce($6, now()) \
                   WHERE id = $1 AND status = $2 \
                   RETURNING id) \
                 INSERT INTO system_events (event_type, severity, message, details, user_id, \
                   plan_id, created_at) \
                 SELECT 'plan_status_changed', 'info', 'plan ' || $2 || ' -> ' || $3, \
                        jsonb_build_object('from', $2::text, 'to', $3::text, 'reason', $4::text), \
                        $5, id, coalesce($6, now()) \
                 FROM moved RETURNING plan_id",
            )
            .bind(id.0)
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(reason)
            .bind(by.map(|u| u.0))
            .bind(now)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err)?;
            if moved.is_some() {
                Ok(true)
            } else {
                ensure_plan(&mut *c, id).await?;
                Ok(false)
            }
        })
    }
}

/// `NotFound` unless the plan exists (and is visible to this identity).
pub(crate) async fn ensure_plan(c: &mut sqlx::PgConnection, id: PlanId) -> Result<()> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM update_plans WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_err)?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::not_found(format!("plan {id}")))
}

fn target_err(e: Error) -> Error {
    match e {
        Error::NotFound { what } => Error::NotFound {
            what: format!("target host ({what})"),
        },
        Error::Conflict(m)
            if m.contains("plan_targets_pkey") || m.contains("idx_host_runs_plan_host") =>
        {
            Error::Conflict(format!(
                "a host is listed twice in the plan's targets ({m})"
            ))
        }
        other => other,
    }
}
