//! When to poll a BMC job next: rarely while it cannot be done, at its
//! expected end when it soon can.
//!
//! An update job runs 10–15 minutes. Polling it at a fixed short period
//! loads the BMC for nothing; polling it at a long one notices its end late
//! (every host's run waits for that, and a rolling campaign adds the delays
//! up). The job's own `PercentComplete` says how fast it goes: from the
//! first progress seen, the remaining time is estimated and the next poll
//! lands at the estimated end (never sooner than the initial delay, never
//! later than one and a half times the longest delay). Without progress to
//! go by, the delay grows by half each poll from the initial to the longest.

use std::time::Duration;
use tokio::time::Instant;

/// The poll schedule of one job.
#[derive(Debug, Clone)]
pub(crate) struct JobPolls {
    initial: Duration,
    longest: Duration,
    delay: Duration,
    /// The first progress seen below 100 %: when, and how much.
    first: Option<(Instant, u8)>,
}

impl JobPolls {
    /// Delays between `initial` and `longest`.
    pub(crate) fn new(initial: Duration, longest: Duration) -> Self {
        let longest = longest.max(initial);
        Self {
            initial,
            longest,
            delay: initial,
            first: None,
        }
    }

    /// The delay before the next poll, given what this poll read at `now`.
    pub(crate) fn next(&mut self, now: Instant, percent: Option<u8>) -> Duration {
        let grown = self.delay;
        self.delay = self.delay.mul_f64(1.5).min(self.longest);
        let Some(p) = percent.filter(|p| *p < 100) else {
            return grown;
        };
        let Some((t0, p0)) = self.first else {
            self.first = Some((now, p));
            return grown;
        };
        let elapsed = now.saturating_duration_since(t0).as_secs_f64();
        let done = f64::from(p.saturating_sub(p0));
        if done <= 0.0 || elapsed <= 0.0 {
            return grown;
        }
        let remaining = elapsed * f64::from(100 - p) / done;
        // With progress to go by the end is predicted, so polls far from it
        // may be sparser than the blind schedule's longest delay (half as
        // long again): that keeps a job under two polls a minute even with
        // the extra poll or two its end takes.
        let far = self.longest.mul_f64(1.5);
        Duration::from_secs_f64(remaining.min(far.as_secs_f64())).clamp(self.initial, far)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A job of `total` seconds reporting its percent, polled on schedule:
    /// the polls per minute in steady state (after its first two minutes)
    /// and how late its end is seen.
    fn follow(total: f64, reports_percent: bool) -> (f64, f64) {
        let start = Instant::now();
        let mut polls = JobPolls::new(5 * S, 30 * S);
        let mut t = 0.0f64;
        let mut steady = 0u32;
        loop {
            if t >= 120.0 {
                steady += 1;
            }
            if t >= total {
                return (f64::from(steady) / ((t - 120.0) / 60.0), t - total);
            }
            let pct = reports_percent.then(|| (t / total * 100.0) as u8);
            let now = start + Duration::from_secs_f64(t);
            t += polls.next(now, pct).as_secs_f64();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_job_is_polled_twice_a_minute_and_its_end_seen_within_15_s() {
        for total in [600.0, 750.0, 900.0] {
            let (per_minute, late) = follow(total, true);
            assert!(per_minute <= 2.0, "{total}: {per_minute} polls a minute");
            assert!(late <= 15.0, "{total}: end seen {late} s late");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn without_progress_the_delay_grows_to_the_longest() {
        let mut polls = JobPolls::new(5 * S, 30 * S);
        let now = Instant::now();
        let delays: Vec<u64> = (0..7).map(|_| polls.next(now, None).as_secs()).collect();
        assert_eq!(delays, vec![5, 7, 11, 16, 25, 30, 30]);
        // A job stuck at one percent is no reason to poll faster.
        let mut polls = JobPolls::new(5 * S, 30 * S);
        for k in 0..10 {
            let d = polls.next(now + k * 30 * S, Some(40));
            assert!(d >= 5 * S && d <= 45 * S, "{d:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn near_the_end_it_polls_no_sooner_than_the_initial_delay() {
        let mut polls = JobPolls::new(5 * S, 30 * S);
        let t0 = Instant::now();
        polls.next(t0, Some(10));
        let d = polls.next(t0 + 100 * S, Some(99));
        assert_eq!(d, 5 * S);
    }
}
