//! Retry arithmetic: pure, with time and randomness passed in.

use std::time::Duration;

use store::{AfterAttempt, Millis};

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Wait after the first failure (Salesforce: 30 s).
    pub base: Duration,
    /// Longest wait between attempts (Salesforce: 2 h).
    pub max: Duration,
    /// Relative spread of each wait, 0.1 = ±10%, so that endpoints recovering from an outage are not
    /// hit by every queued message at the same instant.
    pub jitter: f64,
    /// Age at which a notification stops being retried (Salesforce: 24 h).
    pub expiry: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            max: Duration::from_secs(2 * 60 * 60),
            jitter: 0.1,
            expiry: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failure number `failures` (1-based): `min(base × 2^(n−1), max)`, spread by the
    /// jitter. `sample` is a random number in [-1, 1].
    pub fn delay(&self, failures: u32, sample: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(62);
        let raw = self.base.as_secs_f64() * 2f64.powi(exponent as i32);
        let capped = raw.min(self.max.as_secs_f64());
        let spread = 1.0 + self.jitter * sample.clamp(-1.0, 1.0);
        Duration::from_secs_f64((capped * spread).max(0.0))
    }

    /// What becomes of a notification created at `created` whose attempt number `failures` just failed
    /// at `now`. The last attempt is made at the expiry instant; a failure at or after it expires the
    /// notification (kept as failed when `keep`).
    pub fn after_failure(
        &self,
        failures: u32,
        created: Millis,
        now: Millis,
        sample: f64,
        keep: bool,
    ) -> AfterAttempt {
        let deadline = created.saturating_add(self.expiry.as_millis() as i64);
        if now >= deadline {
            return AfterAttempt::Expired { keep };
        }
        let next = now.saturating_add(self.delay(failures, sample).as_millis() as i64);
        AfterAttempt::Retry {
            next_attempt: next.min(deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    #[test]
    fn salesforce_schedule_without_jitter() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=10).map(|n| p.delay(n, 0.0).as_secs()).collect();
        assert_eq!(
            waits,
            vec![30, 60, 120, 240, 480, 960, 1920, 3840, 7200, 7200]
        );
        assert_eq!(
            p.delay(1000, 0.0).as_secs(),
            7200,
            "no overflow for huge failure counts"
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 1.0).as_secs_f64(), 33.0);
        assert_eq!(p.delay(1, -1.0).as_secs_f64(), 27.0);
        assert_eq!(p.delay(1, 7.0).as_secs_f64(), 33.0, "sample is clamped");
    }

    #[test]
    fn expiry_after_a_day_keeps_or_drops() {
        let p = RetryPolicy::default();
        let day = 24 * 3600 * S;
        assert_eq!(
            p.after_failure(3, 0, 100 * S, 0.0, true),
            AfterAttempt::Retry {
                next_attempt: 220 * S
            }
        );
        // The last wait is cut to the deadline, so one attempt happens at 24 h.
        assert_eq!(
            p.after_failure(40, 0, day - S, 0.0, true),
            AfterAttempt::Retry { next_attempt: day }
        );
        assert_eq!(
            p.after_failure(41, 0, day, 0.0, true),
            AfterAttempt::Expired { keep: true }
        );
        assert_eq!(
            p.after_failure(41, 0, day + 5, 0.0, false),
            AfterAttempt::Expired { keep: false }
        );
    }

    #[test]
    fn short_intervals_for_tests() {
        let p = RetryPolicy {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
            jitter: 0.0,
            expiry: Duration::from_secs(2),
        };
        let waits: Vec<u128> = (1..=5).map(|n| p.delay(n, 0.0).as_millis()).collect();
        assert_eq!(waits, vec![50, 100, 200, 200, 200]);
    }
}
