//! Retry decisions: whether a failed attempt is tried again, and when.

use crate::model::RetrySettings;
use std::time::Duration;

/// Decides retries. Pure apart from the jitter source it is given.
pub trait RetryPolicy: Send + Sync {
    /// The delay before the next attempt, or `None` to give up. `attempts`
    /// counts failures so far, this one included.
    fn next(&self, attempts: u32, transient: bool, jitter_unit: f64) -> Option<Duration>;
}

impl RetryPolicy for RetrySettings {
    fn next(&self, attempts: u32, transient: bool, jitter_unit: f64) -> Option<Duration> {
        if !transient || attempts >= self.max_attempts {
            return None;
        }
        let exp = attempts.saturating_sub(1).min(30) as i32;
        let base = self.initial_backoff_secs as f64 * self.multiplier.max(1.0).powi(exp);
        let capped = base.min(self.max_backoff_secs as f64);
        // jitter_unit in [0,1) -> factor in [1 - j, 1 + j)
        let j = self.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - j + 2.0 * j * jitter_unit.clamp(0.0, 1.0);
        Some(Duration::from_secs_f64((capped * factor).max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_capped_and_bounded_by_attempts() {
        let r = RetrySettings {
            max_attempts: 4,
            initial_backoff_secs: 60,
            multiplier: 2.0,
            max_backoff_secs: 200,
            jitter: 0.0,
        };
        assert_eq!(r.next(1, true, 0.5), Some(Duration::from_secs(60)));
        assert_eq!(r.next(2, true, 0.5), Some(Duration::from_secs(120)));
        assert_eq!(r.next(3, true, 0.5), Some(Duration::from_secs(200)));
        assert_eq!(r.next(4, true, 0.5), None);
        assert_eq!(r.next(1, false, 0.5), None);
    }

    #[test]
    fn jitter_stays_in_band() {
        let r = RetrySettings::default();
        for u in [0.0, 0.25, 0.5, 0.99] {
            let d = r.next(1, true, u).map(|d| d.as_secs_f64()).unwrap_or(0.0);
            assert!((108.0..=132.0).contains(&d), "{d}");
        }
    }
}
