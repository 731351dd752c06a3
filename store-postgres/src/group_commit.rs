//! Group commit of fenced run writes.
//!
//! Every checkpoint and transition of a run is a durable write before the
//! run's next side effect, so a 10,000-host plan is 110,000 of them, and
//! one statement and one commit each made the plan commit-bound (about
//! 3,500 a second on the benchmark machine). Concurrent writes of
//! different runs are instead gathered, while the previous batches run,
//! into one statement: one `UPDATE … FROM unnest(…)` whose `WHERE` fences
//! every row on its own (state, lease owner, lease epoch, exactly as the
//! single write does), one `INSERT` of their audit events, one commit. A
//! write returns only after its batch committed, so it is exactly as
//! durable as before; a row the fence refused is reported to its writer,
//! who diagnoses it alone (stale lease, state mismatch) as before. A batch
//! never holds two writes of one run: a run awaits each write before the
//! next.
//!
//! If a batch statement fails as a whole, each of its writes is tried
//! alone, so one bad write cannot fail the others.

use crate::error::db_err;
use chrono::{DateTime, Utc};
use firmflow_core::model::PlanId;
use firmflow_core::store::Result;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

/// Writes in one batch at most.
const MAX_BATCH: usize = 256;

/// Batches in flight at once (each on its own connection).
const WRITERS: usize = 4;

/// One fenced write of a run: what [`crate::runs`]'s single write binds.
#[derive(Debug, Clone)]
pub(crate) struct RunWrite {
    pub run_id: Uuid,
    pub from: &'static str,
    pub to: &'static str,
    pub ctx: serde_json::Value,
    pub add_attempts: i32,
    pub retry_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub now: Option<DateTime<Utc>>,
    pub owner: String,
    pub epoch: i64,
    pub event: Option<EventRow>,
}

/// The audit event written with it.
#[derive(Debug, Clone)]
pub(crate) struct EventRow {
    pub event_type: String,
    pub severity: &'static str,
    pub message: String,
    pub details: serde_json::Value,
    pub user_id: Option<Uuid>,
    pub host_id: Option<Uuid>,
    pub plan_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
}

/// What became of one write: applied (with the run's plan), or refused by
/// the fence (the writer finds out why).
pub(crate) type Written = Result<Option<PlanId>>;

struct Pending {
    write: RunWrite,
    reply: oneshot::Sender<Written>,
}

/// The queue the run writes go through, and its writer tasks.
pub(crate) struct GroupCommit {
    queue: mpsc::UnboundedSender<Pending>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    batches: AtomicU64,
    largest: AtomicU64,
}

impl GroupCommit {
    /// Starts the writer tasks on `pool`. They end when the store is dropped.
    pub(crate) fn start(pool: PgPool) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let counts = Arc::new(Counts::default());
        for _ in 0..WRITERS {
            let rx = rx.clone();
            let pool = pool.clone();
            let counts = counts.clone();
            tokio::spawn(async move {
                loop {
                    // Gather under the lock, write without it: while one
                    // batch commits, the next one fills.
                    let batch = {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else {
                            return;
                        };
                        let mut batch = vec![first];
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(p) => batch.push(p),
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    counts.batches.fetch_add(1, Ordering::Relaxed);
                    counts
                        .largest
                        .fetch_max(batch.len() as u64, Ordering::Relaxed);
                    write_batch(&pool, batch).await;
                }
            });
        }
        Self { queue, counts }
    }

    /// Batches written so far.
    pub(crate) fn batches(&self) -> u64 {
        self.counts.batches.load(Ordering::Relaxed)
    }

    /// The largest batch so far.
    pub(crate) fn largest(&self) -> u64 {
        self.counts.largest.load(Ordering::Relaxed)
    }

    /// Queues `write` and waits for its batch to commit.
    pub(crate) async fn write(&self, write: RunWrite) -> Written {
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Pending { write, reply }).is_err() {
            return Err(firmflow_core::store::Error::Unavailable(
                "the store is closing".into(),
            ));
        }
        answer.await.unwrap_or_else(|_| {
            Err(firmflow_core::store::Error::Unavailable(
                "the store's writer stopped".into(),
            ))
        })
    }
}

async fn write_batch(pool: &PgPool, mut batch: Vec<Pending>) {
    // Rows locked in id order: two batches (of two daemons) never wait on
    // each other in a cycle.
    batch.sort_by_key(|p| p.write.run_id);
    let writes: Vec<&RunWrite> = batch.iter().map(|p| &p.write).collect();
    match batch_statement(pool, &writes).await {
        Ok(applied) => {
            for p in batch {
                let plan = applied
                    .iter()
                    .find(|(id, _)| *id == p.write.run_id)
                    .map(|(_, plan)| PlanId(*plan));
                let _ = p.reply.send(Ok(plan));
            }
        }
        Err(e) if batch.len() == 1 => {
            if let Some(p) = batch.pop() {
                let _ = p.reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, writes = batch.len(), "batched run writes failed; writing each alone");
            for p in batch {
                let one = batch_statement(pool, &[&p.write])
                    .await
                    .map(|applied| applied.first().map(|(_, plan)| PlanId(*plan)));
                let _ = p.reply.send(one);
            }
        }
    }
}

/// The fenced update of every write and the insert of their events, in
/// one statement (one commit). Returns the ids and plans of the runs whose
/// fence held.
async fn batch_statement(pool: &PgPool, writes: &[&RunWrite]) -> Result<Vec<(Uuid, Uuid)>> {
    let n = writes.len();
    let mut ord = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut from = Vec::with_capacity(n);
    let mut to = Vec::with_capacity(n);
    let mut ctx = Vec::with_capacity(n);
    let mut add = Vec::with_capacity(n);
    let mut retry_at = Vec::with_capacity(n);
    let mut error = Vec::with_capacity(n);
    let mut now = Vec::with_capacity(n);
    let mut owner = Vec::with_capacity(n);
    let mut epoch = Vec::with_capacity(n);
    let mut ev_type = Vec::with_capacity(n);
    let mut ev_sev = Vec::with_capacity(n);
    let mut ev_msg = Vec::with_capacity(n);
    let mut ev_details = Vec::with_capacity(n);
    let mut ev_user = Vec::with_capacity(n);
    let mut ev_host = Vec::with_capacity(n);
    let mut ev_plan = Vec::with_capacity(n);
    let mut ev_run = Vec::with_capacity(n);
    for (i, w) in writes.iter().enumerate() {
        ord.push(i as i32);
        ids.push(w.run_id);
        from.push(w.from);
        to.push(w.to);
        ctx.push(w.ctx.clone());
        add.push(w.add_attempts);
        retry_at.push(w.retry_at);
        error.push(w.error.clone());
        now.push(w.now);
        owner.push(w.owner.as_str());
        epoch.push(w.epoch);
        let e = w.event.as_ref();
        ev_type.push(e.map(|e| e.event_type.clone()));
        ev_sev.push(e.map_or("info", |e| e.severity));
        ev_msg.push(e.map(|e| e.message.clone()).unwrap_or_default());
        ev_details.push(
            e.map(|e| e.details.clone())
                .unwrap_or(serde_json::Value::Null),
        );
        ev_user.push(e.and_then(|e| e.user_id));
        ev_host.push(e.and_then(|e| e.host_id));
        ev_plan.push(e.and_then(|e| e.plan_id));
        ev_run.push(e.and_then(|e| e.run_id));
    }
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(BATCH_SQL)
        .bind(&ord)
        .bind(&ids)
        .bind(&from)
        .bind(&to)
        .bind(&ctx)
        .bind(&add)
        .bind(&retry_at)
        .bind(&error)
        .bind(&now)
        .bind(&owner)
        .bind(&epoch)
        .bind(&ev_type)
        .bind(&ev_sev)
        .bind(&ev_msg)
        .bind(&ev_details)
        .bind(&ev_user)
        .bind(&ev_host)
        .bind(&ev_plan)
        .bind(&ev_run)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    Ok(rows)
}

/// The single write's statement (`runs.rs`), over arrays. The fence is the
/// same: `state`, `lease_owner` and `lease_epoch` as the writer knew them.
const BATCH_SQL: &str = "WITH input AS ( \
       SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], \
         $6::int[], $7::timestamptz[], $8::text[], $9::timestamptz[], $10::text[], $11::bigint[], \
         $12::text[], $13::text[], $14::text[], $15::jsonb[], $16::uuid[], $17::uuid[], \
         $18::uuid[], $19::uuid[]) \
       AS i(ord, id, from_state, to_state, ctx, add_attempts, retry_at, err, at, owner, epoch, \
            ev_type, ev_severity, ev_message, ev_details, ev_user, ev_host, ev_plan, ev_run)), \
     moved AS ( \
       UPDATE host_runs r \
       SET state = i.to_state, ctx = i.ctx, attempts = r.attempts + i.add_attempts, \
           run_at = coalesce(i.retry_at, r.run_at), last_error = coalesce(i.err, r.last_error), \
           lease_owner = CASE WHEN i.to_state = 'running' THEN r.lease_owner END, \
           lease_expires_at = CASE WHEN i.to_state = 'running' THEN r.lease_expires_at END, \
           completed_at = CASE WHEN i.to_state IN ('completed', 'failed', 'cancelled', 'needs_attention') \
                               THEN coalesce(i.at, now()) END, \
           updated_at = coalesce(i.at, now()) \
       FROM input i \
       WHERE r.id = i.id AND r.state = i.from_state AND r.lease_owner = i.owner \
         AND r.lease_epoch = i.epoch \
       RETURNING r.id, r.plan_id, r.host_id), \
     ev AS ( \
       INSERT INTO system_events (event_type, severity, message, details, user_id, host_id, \
         plan_id, run_id, created_at) \
       SELECT i.ev_type, i.ev_severity, i.ev_message, i.ev_details, i.ev_user, \
              coalesce(i.ev_host, m.host_id), coalesce(i.ev_plan, m.plan_id), \
              coalesce(i.ev_run, m.id), coalesce(i.at, now()) \
       FROM moved m JOIN input i ON i.id = m.id \
       WHERE i.ev_type IS NOT NULL \
       ORDER BY i.ord) \
     SELECT id, plan_id FROM moved";
