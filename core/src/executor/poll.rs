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
//!
//! A host rebooting through staged updates is down for minutes too: its
//! readiness reads back off the same way ([`ReadyPolls`]), and once it reads
//! ready the stable reads that confirm it follow at the base period.

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

/// How far the readiness period may grow past its base while a host stays
/// down: four times (15 s → 60 s at the defaults, capped by
/// `ready_poll_max`), so a host that is back is noticed within a few base
/// periods while a long reboot costs a fraction of the reads.
const READY_GROWTH_LIMIT: u32 = 4;

/// The readiness schedule while a host comes back from a reboot: the period
/// grows by half per read that finds it down, from `base` up to the smaller
/// of four times `base` and `max`; once a read finds it ready, the stable
/// reads that must follow are `base` apart (a host that is back is
/// confirmed quickly).
#[derive(Debug, Clone)]
pub(crate) struct ReadyPolls {
    base: Duration,
    longest: Duration,
    delay: Duration,
}

impl ReadyPolls {
    /// A schedule from `base`, never longer than `max` (nor shorter than `base`).
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        let longest = base.saturating_mul(READY_GROWTH_LIMIT).min(max).max(base);
        Self {
            base,
            longest,
            delay: base,
        }
    }

    /// The pause before the next read; `confirming` when the last read
    /// found the host ready and stable reads are being counted.
    pub(crate) fn next(&mut self, confirming: bool) -> Duration {
        if confirming {
            return self.base;
        }
        let d = self.delay;
        self.delay = self.delay.mul_f64(1.5).min(self.longest);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_backs_off_while_down_and_confirms_at_the_base_period() {
        let mut p = ReadyPolls::new(15 * S, 45 * S);
        let down: Vec<u64> = (0..6).map(|_| p.next(false).as_secs()).collect();
        // 15, 22.5, 33.75, then the cap (min of 4 × 15 and 45).
        assert_eq!(down, vec![15, 22, 33, 45, 45, 45]);
        assert_eq!(p.next(true), 15 * S, "stable reads at the base period");
        // A 10-minute reboot: 600 s at a fixed 15 s is 40 reads.
        let mut p = ReadyPolls::new(15 * S, 45 * S);
        let (mut t, mut reads) = (Duration::ZERO, 0);
        while t < 600 * S {
            t += p.next(false);
            reads += 1;
        }
        assert!(reads <= 16, "{reads} reads over a 10-minute reboot");
        // The cap never goes below the base, and never past four times it.
        assert_eq!(ReadyPolls::new(20 * S, S).longest, 20 * S);
        assert_eq!(ReadyPolls::new(S, 3600 * S).longest, 4 * S);
    }

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
