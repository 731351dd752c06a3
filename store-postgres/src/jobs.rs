//! `JobQueue`: auxiliary work in `background_jobs`, claimed with
//! `FOR UPDATE SKIP LOCKED` (many workers, no blocking), held under a lock
//! that expires, retried with the caller's backoff up to `max_attempts`.

use crate::error::db_err;
use crate::rows::{self, JOB_COLS, secs};
use crate::{PgStore, with_conn};
use async_trait::async_trait;
use firmflow_core::model::*;
use firmflow_core::store::{Error, JobQueue, Result};
use sqlx::AssertSqlSafe;
use std::sync::LazyLock;
use std::time::Duration;

static CLAIM_SQL: LazyLock<String> = LazyLock::new(|| {
    let cols = JOB_COLS
        .split(", ")
        .map(|c| format!("j.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH picked AS ( \
           SELECT id FROM background_jobs \
           WHERE ((status = 'queued' AND scheduled_for <= coalesce($3, now())) \
                  OR (status = 'running' AND locked_until < coalesce($3, now()) \
                      AND attempts < max_attempts)) \
             AND (cardinality($2::text[]) = 0 OR job_type = ANY($2)) \
           ORDER BY scheduled_for, id \
           LIMIT $4 \
           FOR UPDATE SKIP LOCKED) \
         UPDATE background_jobs j \
         SET status = 'running', locked_by = $1, \
             locked_until = coalesce($3, now()) + make_interval(secs => $5), \
             attempts = j.attempts + 1, started_at = coalesce(j.started_at, coalesce($3, now())) \
         FROM picked WHERE j.id = picked.id \
         RETURNING {cols}"
    )
});

#[async_trait]
impl JobQueue for PgStore {
    async fn enqueue(&self, job: NewJob) -> Result<JobId> {
        let id = JobId::new();
        let now = self.now_param();
        let max = rows::i32_of(job.max_attempts, "max attempts")?;
        with_conn!(self, c => {
            sqlx::query(
                "INSERT INTO background_jobs (id, job_type, payload, max_attempts, scheduled_for, \
                   created_at) \
                 VALUES ($1, $2, $3, $4, coalesce($5, $6, now()), coalesce($6, now()))",
            )
            .bind(id.0)
            .bind(&job.job_type)
            .bind(&job.payload)
            .bind(max)
            .bind(job.scheduled_for)
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
            Ok(id)
        })
    }

    async fn claim_jobs(
        &self,
        worker: &WorkerId,
        types: &[String],
        limit: usize,
        lock_ttl: Duration,
    ) -> Result<Vec<BackgroundJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = self.now_param();
        let mut tx = self.begin().await?;
        // A job whose lock expired on its last attempt has no attempt left
        // to claim it with: it failed.
        sqlx::query(
            "UPDATE background_jobs \
             SET status = 'failed', locked_by = NULL, locked_until = NULL, \
                 completed_at = coalesce($1, now()), \
                 error_message = coalesce(error_message, 'lock expired on the last attempt') \
             WHERE id IN (SELECT id FROM background_jobs \
                          WHERE status = 'running' AND locked_until < coalesce($1, now()) \
                            AND attempts >= max_attempts \
                          FOR UPDATE SKIP LOCKED)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let rs = sqlx::query(AssertSqlSafe(CLAIM_SQL.as_str()))
            .bind(worker.as_str())
            .bind(types)
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(secs(lock_ttl))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let mut jobs = rs.iter().map(rows::job).collect::<Result<Vec<_>>>()?;
        jobs.sort_by(|a, b| a.scheduled_for.cmp(&b.scheduled_for).then(a.id.cmp(&b.id)));
        Ok(jobs)
    }

    async fn complete_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        result: serde_json::Value,
    ) -> Result<bool> {
        let now = self.now_param();
        with_conn!(self, c => {
            let done = sqlx::query(
                "UPDATE background_jobs \
                 SET status = 'completed', result = $3, completed_at = coalesce($4, now()), \
                     locked_by = NULL, locked_until = NULL \
                 WHERE id = $1 AND status = 'running' AND locked_by = $2",
            )
            .bind(id.0)
            .bind(worker.as_str())
            .bind(&result)
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
            if done.rows_affected() == 1 {
                Ok(true)
            } else {
                ensure_job(c, id).await.map(|_| false)
            }
        })
    }

    async fn fail_job(
        &self,
        id: JobId,
        worker: &WorkerId,
        error: &str,
        backoff: Duration,
    ) -> Result<bool> {
        let now = self.now_param();
        with_conn!(self, c => {
            let done = sqlx::query(
                "UPDATE background_jobs \
                 SET status = CASE WHEN attempts < max_attempts THEN 'queued' ELSE 'failed' END, \
                     scheduled_for = CASE WHEN attempts < max_attempts \
                         THEN coalesce($4, now()) + make_interval(secs => $5) ELSE scheduled_for END, \
                     completed_at = CASE WHEN attempts < max_attempts THEN NULL \
                         ELSE coalesce($4, now()) END, \
                     error_message = $3, locked_by = NULL, locked_until = NULL \
                 WHERE id = $1 AND status = 'running' AND locked_by = $2",
            )
            .bind(id.0)
            .bind(worker.as_str())
            .bind(error)
            .bind(now)
            .bind(secs(backoff))
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
            if done.rows_affected() == 1 {
                Ok(true)
            } else {
                ensure_job(c, id).await.map(|_| false)
            }
        })
    }

    async fn get_job(&self, id: JobId) -> Result<BackgroundJob> {
        let sql = format!("SELECT {JOB_COLS} FROM background_jobs WHERE id = $1");
        with_conn!(self, c => {
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)?
                .ok_or_else(|| Error::not_found(format!("job {id}")))?;
            rows::job(&row)
        })
    }
}

async fn ensure_job(c: &mut sqlx::PgConnection, id: JobId) -> Result<()> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM background_jobs WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_err)?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::not_found(format!("job {id}")))
}
