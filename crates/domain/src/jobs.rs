//! The job queue's pure rules: retry policy (exponential backoff with jitter), job states, and
//! the names and keys a job is enqueued with.

use serde::{Deserialize, Serialize};
use std::fmt;
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

    /// A job in this state will not run again unless an operator replays it.
    pub const fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Dead)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status '{0}': expected one of queued, running, succeeded, dead")]
pub struct UnknownJobStatus(pub String);

impl std::str::FromStr for JobStatus {
    type Err = UnknownJobStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::parse(s.trim()).ok_or_else(|| UnknownJobStatus(s.chars().take(40).collect()))
    }
}

/// The name of a job kind (`sms.send`) or of a queue (`default`): lower-case ASCII letters and
/// digits, with `.`, `_` or `-` inside, at most 64 characters. Names become metric labels and
/// log fields, so they are kept short and plain.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JobName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job name '{value}': expected 1 to 64 characters a-z, 0-9, '.', '_' or '-', starting with a letter or digit")]
pub struct InvalidJobName {
    pub value: String,
}

impl JobName {
    pub const MAX_LEN: usize = 64;

    /// The queue jobs go to unless told otherwise.
    pub fn default_queue() -> JobName {
        JobName("default".to_string())
    }

    pub fn parse(input: &str) -> Result<JobName, InvalidJobName> {
        let ok = !input.is_empty()
            && input.len() <= Self::MAX_LEN
            && input.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || (i > 0 && matches!(b, b'.' | b'_' | b'-'))
            });
        if ok {
            Ok(JobName(input.to_string()))
        } else {
            Err(InvalidJobName {
                value: input.chars().take(80).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for JobName {
    type Err = InvalidJobName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobName::parse(s)
    }
}

/// What makes two enqueues "the same job" within a queue (e.g. a provider's message id): at most
/// 200 characters, no control characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid idempotency key '{value}': expected 1 to 200 characters, not blank, without control characters")]
pub struct InvalidIdempotencyKey {
    pub value: String,
}

impl IdempotencyKey {
    pub const MAX_LEN: usize = 200;

    pub fn parse(input: &str) -> Result<IdempotencyKey, InvalidIdempotencyKey> {
        let ok = !input.trim().is_empty()
            && input.chars().count() <= Self::MAX_LEN
            && !input.chars().any(char::is_control);
        if ok {
            Ok(IdempotencyKey(input.to_string()))
        } else {
            Err(InvalidIdempotencyKey {
                value: input.chars().filter(|c| !c.is_control()).take(80).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
        assert_eq!(" dead ".parse::<JobStatus>(), Ok(JobStatus::Dead));
        assert!("DONE".parse::<JobStatus>().is_err());
        assert!(JobStatus::Dead.is_final() && !JobStatus::Running.is_final());
    }

    #[test]
    fn job_names() {
        for ok in [
            "default",
            "sms.send",
            "system.probe",
            "dci_callback-2",
            "a",
            "9",
        ] {
            assert_eq!(
                JobName::parse(ok).map(|n| n.to_string()),
                Ok(ok.to_string())
            );
        }
        assert!(JobName::parse(JobName::default_queue().as_str()).is_ok());
        let long = "a".repeat(65);
        for bad in [
            "",
            "SMS",
            ".x",
            "-x",
            "sms send",
            "sms/send",
            "é",
            long.as_str(),
        ] {
            assert!(JobName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn idempotency_keys() {
        assert!(IdempotencyKey::parse("ATXid_5f2c9a").is_ok());
        assert!(IdempotencyKey::parse(&"é".repeat(200)).is_ok());
        for bad in ["", "   ", "a\nb", "\u{0}"] {
            assert!(
                IdempotencyKey::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(IdempotencyKey::parse(&"k".repeat(201)).is_err());
    }
}
