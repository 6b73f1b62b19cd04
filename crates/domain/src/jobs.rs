//! The job queue's pure rules: retry policy (exponential backoff with jitter) and job states.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for `run_at`.
    Queued,
    /// Claimed by a worker that holds a lease until `lease_until`.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Failed permanently or ran out of attempts; kept for an operator to inspect and replay.
    Dead,
}

impl JobStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Dead,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// Exponential backoff with full jitter, capped.
///
/// "Full jitter" (a uniformly random delay between 0 and the exponential bound) spreads the
/// retries of many jobs that failed together, so a system coming back up is not hit by a
/// synchronised wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(2),
            cap: Duration::from_secs(15 * 60),
        }
    }
}

impl RetryPolicy {
    /// The exponential bound for the retry after `attempt` failed attempts (1-based).
    pub fn bound(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let factor = 1u64 << exp;
        let millis = (self.base.as_millis() as u64).saturating_mul(factor);
        Duration::from_millis(millis).min(self.cap)
    }

    /// The delay before the next try, given a uniform random number in [0, 1).
    pub fn delay(&self, attempt: u32, unit_random: f64) -> Duration {
        let bound = self.bound(attempt);
        // Never retry sooner than a tenth of the base, to avoid a hot loop.
        let floor = self.base / 10;
        bound.mul_f64(unit_random.clamp(0.0, 1.0)).max(floor)
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    pub fn may_retry(&self, attempts: u32) -> bool {
        attempts < self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
        };
        assert_eq!(p.bound(1), Duration::from_secs(1));
        assert_eq!(p.bound(2), Duration::from_secs(2));
        assert_eq!(p.bound(4), Duration::from_secs(8));
        assert_eq!(p.bound(5), Duration::from_secs(10));
        assert_eq!(p.bound(500), Duration::from_secs(10));
        assert_eq!(p.delay(3, 0.5), Duration::from_secs(2));
        assert_eq!(p.delay(3, 0.0), Duration::from_millis(100));
        assert!(p.may_retry(4));
        assert!(!p.may_retry(5));
    }

    #[test]
    fn status_round_trip() {
        for s in ["queued", "running", "succeeded", "dead"] {
            assert_eq!(JobStatus::parse(s).map(|x| x.as_str()), Some(s));
        }
        assert_eq!(JobStatus::parse("done"), None);
    }
}
