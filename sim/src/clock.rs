//! Simulated time: Dell durations scaled by a speed factor, and timestamps.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone};
use tokio::time::Instant;

/// Scales "Dell seconds" (how long the real thing takes) to real time.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    start: Instant,
    speed: f64,
    base: DateTime<FixedOffset>,
}

impl Clock {
    pub(crate) fn new(speed: f64) -> Self {
        let base = FixedOffset::west_opt(5 * 3600)
            .and_then(|tz| tz.with_ymd_and_hms(2025, 6, 2, 8, 0, 0).single())
            .unwrap_or_else(|| DateTime::<FixedOffset>::from(DateTime::UNIX_EPOCH));
        Self {
            start: Instant::now(),
            speed,
            base,
        }
    }

    /// Real duration of `secs` Dell seconds.
    pub(crate) fn dell(&self, secs: f64) -> Duration {
        let real = (secs / self.speed).max(0.0);
        Duration::from_secs_f64(real.min(1.0e9))
    }

    /// Sleeps for `secs` Dell seconds.
    pub(crate) async fn sleep(&self, secs: f64) {
        tokio::time::sleep(self.dell(secs)).await;
    }

    /// Dell seconds elapsed since the fleet started.
    pub(crate) fn elapsed_dell(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.speed
    }

    /// The instant `secs` Dell seconds from now.
    pub(crate) fn deadline(&self, secs: f64) -> Instant {
        Instant::now() + self.dell(secs)
    }

    /// Simulated wall clock, ISO 8601 with offset (like iDRAC's `DateTime`).
    pub(crate) fn now_iso(&self) -> String {
        let t = self.now();
        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// Simulated wall clock without offset (like DellJob `CompletionTime`).
    pub(crate) fn now_job(&self) -> String {
        self.now().format("%Y-%m-%dT%H:%M:%S").to_string()
    }

    fn now(&self) -> DateTime<FixedOffset> {
        let ms = (self.elapsed_dell() * 1000.0).min(1.0e15) as i64;
        self.base + chrono::Duration::milliseconds(ms)
    }
}
