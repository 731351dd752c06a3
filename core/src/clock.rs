//! Injected wall-clock time. Sleeping and deadlines use `tokio::time`
//! (monotonic, pausable in tests); wall-clock values for leases, events and
//! windows come from a [`Clock`], so tests can drive them.

use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// The time a database should use instead of its own `now()`; `None`
    /// in production so lease time is the database's.
    fn db_now(&self) -> Option<DateTime<Utc>> {
        Some(self.now())
    }
}

/// The system clock; databases use their own time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn db_now(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// Wall time derived from tokio's clock: a fixed origin plus the tokio
/// `Instant` elapsed since creation. Under `tokio::time::pause` it moves only
/// when tokio time moves, so leases and windows follow paused tests.
#[derive(Debug)]
pub struct TokioClock {
    origin_wall: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `origin_wall` now.
    pub fn starting_at(origin_wall: DateTime<Utc>) -> Self {
        Self {
            origin_wall,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.origin.elapsed();
        self.origin_wall + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::zero())
    }
}

/// A clock set by hand (tests against a real database, where tokio time
/// must not be paused).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock at `t`.
    pub fn new(t: DateTime<Utc>) -> Self {
        Self { now: Mutex::new(t) }
    }
    /// Moves the clock forward.
    pub fn advance(&self, d: std::time::Duration) {
        let mut g = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *g += chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
    }
    /// Sets the clock.
    pub fn set(&self, t: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let c = TokioClock::starting_at(t0);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!((c.now() - t0).num_seconds(), 90);
    }

    #[test]
    fn manual_clock_advances() {
        let c = ManualClock::new(DateTime::<Utc>::MIN_UTC);
        c.advance(std::time::Duration::from_secs(5));
        assert_eq!((c.now() - DateTime::<Utc>::MIN_UTC).num_seconds(), 5);
        assert_eq!(c.db_now(), Some(c.now()));
        assert_eq!(SystemClock.db_now(), None);
    }
}
