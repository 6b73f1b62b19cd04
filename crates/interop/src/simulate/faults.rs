//! Faults a simulator injects on demand, decided from a seed so a run can be repeated: a share
//! of 5xx answers, an outage window after a number of requests, latency, and lost
//! acknowledgements (the request is taken but the answer says 503, so the caller sends it again).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which faults to inject.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    /// Share of requests answered 500 without taking them, 0 to 1.
    pub fail_share: f64,
    /// After this many requests, an outage starts: every request gets 503.
    pub outage_after: Option<u64>,
    pub outage: Duration,
    /// Added before each answer.
    pub latency: Duration,
    /// Share of requests taken, then answered 503 as if the answer was lost.
    pub lost_ack_share: f64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            seed: 1,
            fail_share: 0.0,
            outage_after: None,
            outage: Duration::ZERO,
            latency: Duration::ZERO,
            lost_ack_share: 0.0,
        }
    }
}

impl FaultPlan {
    /// Refuses shares outside 0–1, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("fail share", self.fail_share),
            ("lost-ack share", self.lost_ack_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} {v}: expected a number from 0 to 1"));
            }
        }
        Ok(())
    }
}

/// What to answer a request, decided before looking at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Outage,
    Fail,
    LoseAck,
}

/// A plan being played: its random source and the outage once started.
#[derive(Debug)]
pub struct FaultState {
    plan: FaultPlan,
    rng: StdRng,
    outage_until: Option<Instant>,
}

impl FaultState {
    /// Refuses an invalid plan as an `InvalidInput` error (a simulator's start-up error).
    pub fn new(plan: FaultPlan) -> std::io::Result<FaultState> {
        plan.check()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(FaultState {
            rng: StdRng::seed_from_u64(plan.seed),
            plan,
            outage_until: None,
        })
    }

    pub fn latency(&self) -> Duration {
        self.plan.latency
    }

    /// The fault for the request numbered `requests` (counting from 1).
    pub fn next(&mut self, requests: u64) -> Fault {
        let now = Instant::now();
        if let (Some(after), None) = (self.plan.outage_after, self.outage_until) {
            if requests > after {
                self.outage_until = Some(now + self.plan.outage);
                tracing::info!(
                    secs = self.plan.outage.as_secs_f64(),
                    "simulated outage starts"
                );
            }
        }
        if self.outage_until.is_some_and(|until| now < until) {
            return Fault::Outage;
        }
        if self.plan.fail_share > 0.0 && self.rng.random_bool(self.plan.fail_share) {
            return Fault::Fail;
        }
        if self.plan.lost_ack_share > 0.0 && self.rng.random_bool(self.plan.lost_ack_share) {
            return Fault::LoseAck;
        }
        Fault::None
    }
}
