//! `LISTEN/NOTIFY` as a hint: [`PgWaker`] wakes an idle worker when a plan
//! may have claimable runs (`<schema>.work`) or a run or plan was asked to
//! stop (`<schema>.control`). Polling stays the correctness path: a lost
//! notification only delays work until the next poll, and after every
//! reconnect the waker says so ([`Wake::reconnected`]) so the caller polls
//! everything at once.
//!
//! A background task owns the listening connection and forwards what it
//! receives; [`PgWaker::wait`] collects it. Wake-ups are debounced: after
//! returning, the next `wait` returns no sooner than the debounce interval
//! later, gathering everything that arrived meanwhile into one wake-up, so a
//! burst of transitions costs one claim attempt per plan.

use crate::PgStore;
use crate::error::PgStoreError;
use firmflow_core::model::{PlanId, RunId};
use sqlx::postgres::PgListener;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Buffered signals before the waker falls back to "poll everything".
const BUFFER: usize = 1024;

#[derive(Debug)]
enum Signal {
    Work(PlanId),
    CancelRun(RunId),
    ControlPlan(PlanId),
    Reconnected,
}

/// What woke a worker. Empty with `reconnected == false` means the wait
/// timed out: poll as usual.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wake {
    /// Plans that may have claimable runs or free slots.
    pub plans: BTreeSet<PlanId>,
    /// Runs an operator asked to cancel.
    pub cancel_runs: BTreeSet<RunId>,
    /// Plans paused, cancelled or otherwise stopped.
    pub stopped_plans: BTreeSet<PlanId>,
    /// Notifications may have been lost (reconnect, overflow): poll every plan.
    pub reconnected: bool,
}

impl Wake {
    /// Whether nothing arrived before the timeout.
    pub fn timed_out(&self) -> bool {
        !self.reconnected
            && self.plans.is_empty()
            && self.cancel_runs.is_empty()
            && self.stopped_plans.is_empty()
    }

    fn add(&mut self, s: Signal) {
        match s {
            Signal::Work(p) => {
                self.plans.insert(p);
            }
            Signal::CancelRun(r) => {
                self.cancel_runs.insert(r);
            }
            Signal::ControlPlan(p) => {
                self.stopped_plans.insert(p);
            }
            Signal::Reconnected => self.reconnected = true,
        }
    }
}

struct WaitState {
    rx: mpsc::Receiver<Signal>,
    last_return: Option<Instant>,
}

/// Debounced wake-ups from `LISTEN/NOTIFY` on this store's channels.
pub struct PgWaker {
    state: Mutex<WaitState>,
    overflow: Arc<AtomicBool>,
    debounce: Duration,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for PgWaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgWaker")
            .field("debounce", &self.debounce)
            .finish()
    }
}

impl Drop for PgWaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PgWaker {
    /// Starts listening on `<schema>.work` and `<schema>.control` with a
    /// connection of the store's pool (LISTEN needs a session: not through
    /// a transaction-pooling proxy).
    pub async fn start(store: &PgStore, debounce: Duration) -> Result<Self, PgStoreError> {
        let mut listener = PgListener::connect_with(store.pool())
            .await
            .map_err(|e| PgStoreError::Connect(format!("listener: {e}")))?;
        let work = format!("{}.work", store.schema());
        let control = format!("{}.control", store.schema());
        listener
            .listen_all([work.as_str(), control.as_str()])
            .await
            .map_err(|e| PgStoreError::Connect(format!("LISTEN: {e}")))?;
        let (tx, rx) = mpsc::channel(BUFFER);
        let overflow = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(listen_loop(listener, work, control, tx, overflow.clone()));
        Ok(Self {
            state: Mutex::new(WaitState {
                rx,
                last_return: None,
            }),
            overflow,
            debounce,
            task,
        })
    }

    /// Waits at most `max` for something to do. Returns early on a
    /// notification, at most once per debounce interval.
    pub async fn wait(&self, max: Duration) -> Wake {
        let deadline = Instant::now() + max;
        let mut st = self.state.lock().await;
        let mut wake = Wake::default();
        // Debounce: not sooner than `debounce` after the previous return.
        if let Some(last) = st.last_return {
            let quiet_until = (last + self.debounce).min(deadline);
            if Instant::now() < quiet_until {
                tokio::time::sleep_until(quiet_until).await;
            }
        }
        drain(&mut st.rx, &mut wake);
        if wake.timed_out() && !self.overflow.load(Ordering::Acquire) {
            match tokio::time::timeout_at(deadline, st.rx.recv()).await {
                Ok(Some(s)) => {
                    wake.add(s);
                    drain(&mut st.rx, &mut wake);
                }
                // The listener task ended (pool closed): behave like a
                // reconnect so the caller polls.
                Ok(None) => wake.reconnected = true,
                Err(_) => {}
            }
        }
        if self.overflow.swap(false, Ordering::AcqRel) {
            wake.reconnected = true;
        }
        st.last_return = Some(Instant::now());
        wake
    }
}

fn drain(rx: &mut mpsc::Receiver<Signal>, wake: &mut Wake) {
    while let Ok(s) = rx.try_recv() {
        wake.add(s);
    }
}

fn parse(channel: &str, payload: &str, work: &str, control: &str) -> Option<Signal> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    let uuid = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .and_then(|s| s.parse::<uuid::Uuid>().ok())
    };
    if channel == work {
        return uuid("plan").map(|p| Signal::Work(PlanId(p)));
    }
    if channel == control {
        if let Some(r) = uuid("run") {
            return Some(Signal::CancelRun(RunId(r)));
        }
        return uuid("plan").map(|p| Signal::ControlPlan(PlanId(p)));
    }
    None
}

async fn listen_loop(
    mut listener: PgListener,
    work: String,
    control: String,
    tx: mpsc::Sender<Signal>,
    overflow: Arc<AtomicBool>,
) {
    let send = |s: Signal| {
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(s) {
            overflow.store(true, Ordering::Release);
        }
    };
    loop {
        match listener.try_recv().await {
            Ok(Some(n)) => {
                if let Some(s) = parse(n.channel(), n.payload(), &work, &control) {
                    send(s);
                }
            }
            // Connection lost and re-established: anything sent meanwhile
            // is gone, so the caller must poll.
            Ok(None) => send(Signal::Reconnected),
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "notification listener failed; retrying");
                send(Signal::Reconnected);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// Sends `<schema>.work` notifications for the store, after commit and
/// debounced per store: the first wake-up goes out at once, later ones are
/// gathered for `window` and sent together (one transaction, one
/// notification per plan). NOTIFY takes a cluster-wide lock held through
/// the commit's WAL flush, so one notification per finished run would make
/// every completing transaction wait in line for the disk.
pub(crate) struct WorkNotifier {
    tx: mpsc::UnboundedSender<PlanId>,
}

impl WorkNotifier {
    /// Starts the sender task on the current runtime.
    pub(crate) fn start(pool: sqlx::PgPool, schema: &str, window: Duration) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(notifier_loop(pool, format!("{schema}.work"), window, rx));
        Self { tx }
    }

    /// Plan `plan` may have claimable runs or free slots now.
    pub(crate) fn wake(&self, plan: PlanId) {
        let _ = self.tx.send(plan);
    }
}

async fn notifier_loop(
    pool: sqlx::PgPool,
    channel: String,
    window: Duration,
    mut rx: mpsc::UnboundedReceiver<PlanId>,
) {
    while let Some(first) = rx.recv().await {
        let mut plans = BTreeSet::from([first]);
        while let Ok(p) = rx.try_recv() {
            plans.insert(p);
        }
        let payloads: Vec<String> = plans
            .iter()
            .map(|p| serde_json::json!({ "plan": p }).to_string())
            .collect();
        if let Err(e) = sqlx::query("SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x")
            .bind(&channel)
            .bind(&payloads)
            .execute(&pool)
            .await
        {
            // A hint only: pollers find the work anyway.
            tracing::debug!(error = %e, "work notification not sent");
            if matches!(e, sqlx::Error::PoolClosed) {
                return;
            }
        }
        tokio::time::sleep(window).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_by_channel() {
        let p = uuid::Uuid::new_v4();
        let s = parse(
            "ff.work",
            &format!("{{\"plan\":\"{p}\"}}"),
            "ff.work",
            "ff.control",
        );
        assert!(matches!(s, Some(Signal::Work(x)) if x.0 == p));
        let s = parse(
            "ff.control",
            &format!("{{\"run\":\"{p}\",\"action\":\"cancel\"}}"),
            "ff.work",
            "ff.control",
        );
        assert!(matches!(s, Some(Signal::CancelRun(x)) if x.0 == p));
        assert!(parse("ff.work", "not json", "ff.work", "ff.control").is_none());
        assert!(parse("other", "{}", "ff.work", "ff.control").is_none());
    }
}
