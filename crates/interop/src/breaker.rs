//! Circuit breakers for outbound calls, one per outside system (scheme, host and port), and the
//! per-connector metrics of those calls.
//!
//! A breaker is *closed* while calls succeed. After `failure_threshold` failures in a row it
//! *opens*: jobs calling that system are put back (deferred, their attempt not counted) instead
//! of calling, for `open_for`. Then it is *half-open*: one call goes through as a probe; its
//! success closes the breaker, its failure opens it again.
//!
//! Breakers live in each worker process, not in the database: a node learns that a system is
//! down from its own `failure_threshold` failed calls, which costs a few calls per node and no
//! database write per call (a shared breaker would add a write to every delivery, on the same
//! database the registry needs). Nothing is lost either way: a deferred job stays queued.
//!
//! Metrics (label `connector`, e.g. `dci.notify`, and `system`):
//! `connector_sent_total`, `connector_retried_total`, `connector_failed_total` (dead for
//! good), `connector_deferred_total` and the gauge `connector_circuit_state` (0 closed,
//! 1 half-open, 2 open). Queue depth and the age of the oldest due job come per queue from
//! `job_queue_depth` and `job_oldest_due_age_seconds`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failures in a row that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before letting a probe through.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe is out since `since`; if it never reports, another may go after `open_for`.
    HalfOpen {
        since: Instant,
    },
}

impl State {
    fn gauge(self) -> f64 {
        match self {
            State::Closed { .. } => 0.0,
            State::HalfOpen { .. } => 1.0,
            State::Open { .. } => 2.0,
        }
    }
}

/// The breakers of one process, by system.
#[derive(Debug)]
pub struct Breakers {
    settings: Mutex<BreakerSettings>,
    states: Mutex<HashMap<String, State>>,
}

impl Breakers {
    pub fn new(settings: BreakerSettings) -> Breakers {
        Breakers {
            settings: Mutex::new(settings),
            states: Mutex::new(HashMap::new()),
        }
    }

    /// The breakers every connector of this process shares.
    pub fn global() -> &'static Breakers {
        static GLOBAL: OnceLock<Breakers> = OnceLock::new();
        GLOBAL.get_or_init(|| Breakers::new(BreakerSettings::default()))
    }

    /// Changes the settings (from the configuration, at start).
    pub fn configure(&self, settings: BreakerSettings) {
        if let Ok(mut s) = self.settings.lock() {
            *s = settings;
        }
    }

    fn settings(&self) -> BreakerSettings {
        self.settings.lock().map(|s| *s).unwrap_or_default()
    }

    /// May a call to `system` go now? `Err(wait)` when the breaker is open (or its probe is
    /// out): try again after `wait`.
    pub fn before_call(&self, connector: &str, system: &str) -> Result<(), Duration> {
        let settings = self.settings();
        let now = Instant::now();
        let Ok(mut states) = self.states.lock() else {
            return Ok(());
        };
        let state = states
            .entry(system.to_string())
            .or_insert(State::Closed { failures: 0 });
        let (next, verdict) = match *state {
            State::Closed { .. } => (*state, Ok(())),
            State::Open { until } if now >= until => (State::HalfOpen { since: now }, Ok(())),
            State::Open { until } => (*state, Err(until - now)),
            State::HalfOpen { since } if now >= since + settings.open_for => {
                (State::HalfOpen { since: now }, Ok(()))
            }
            State::HalfOpen { .. } => (*state, Err(probe_wait(settings))),
        };
        set(state, next, connector, system);
        verdict
    }

    /// Records a successful call: the breaker closes.
    pub fn success(&self, connector: &str, system: &str) {
        metrics::counter!("connector_sent_total", "connector" => connector.to_string(), "system" => system.to_string())
            .increment(1);
        if let Ok(mut states) = self.states.lock() {
            let state = states
                .entry(system.to_string())
                .or_insert(State::Closed { failures: 0 });
            set(state, State::Closed { failures: 0 }, connector, system);
        }
    }

    /// Records a failed call (the system did not take it); may open the breaker.
    pub fn failure(&self, connector: &str, system: &str) {
        let settings = self.settings();
        let now = Instant::now();
        if let Ok(mut states) = self.states.lock() {
            let state = states
                .entry(system.to_string())
                .or_insert(State::Closed { failures: 0 });
            let next = match *state {
                State::Closed { failures } if failures + 1 < settings.failure_threshold => {
                    State::Closed {
                        failures: failures + 1,
                    }
                }
                _ => State::Open {
                    until: now + settings.open_for,
                },
            };
            if !matches!(*state, State::Open { .. }) && matches!(next, State::Open { .. }) {
                tracing::warn!(connector, system, open_for = ?settings.open_for, "circuit opened");
            }
            set(state, next, connector, system);
        }
    }

    /// The state of `system`'s breaker: `closed`, `half_open` or `open`.
    pub fn state(&self, system: &str) -> &'static str {
        let states = match self.states.lock() {
            Ok(s) => s,
            Err(_) => return "closed",
        };
        match states.get(system) {
            None | Some(State::Closed { .. }) => "closed",
            Some(State::HalfOpen { .. }) => "half_open",
            Some(State::Open { .. }) => "open",
        }
    }
}

/// How long calls wait while a half-open breaker's probe is out.
fn probe_wait(settings: BreakerSettings) -> Duration {
    (settings.open_for / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
}

fn set(state: &mut State, next: State, connector: &str, system: &str) {
    if state.gauge() != next.gauge() {
        tracing::info!(
            connector,
            system,
            state = next.gauge(),
            "circuit state changed"
        );
    }
    *state = next;
    metrics::gauge!("connector_circuit_state", "connector" => connector.to_string(), "system" => system.to_string())
        .set(next.gauge());
}

/// The system a URL calls, as breakers and metrics name it: `scheme://host:port`.
pub fn system_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => "invalid".into(),
    }
}

/// Counts an attempt that failed and will be retried.
pub fn count_retry(connector: &str, system: &str) {
    metrics::counter!("connector_retried_total", "connector" => connector.to_string(), "system" => system.to_string())
        .increment(1);
}

/// Counts a message given up on (dead-lettered).
pub fn count_failed(connector: &str, system: &str) {
    metrics::counter!("connector_failed_total", "connector" => connector.to_string(), "system" => system.to_string())
        .increment(1);
}

/// Counts a call not made because the breaker was open.
pub fn count_deferred(connector: &str, system: &str) {
    metrics::counter!("connector_deferred_total", "connector" => connector.to_string(), "system" => system.to_string())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers(open_ms: u64) -> Breakers {
        Breakers::new(BreakerSettings {
            failure_threshold: 3,
            open_for: Duration::from_millis(open_ms),
        })
    }

    #[test]
    fn opens_after_the_threshold_and_closes_after_a_good_probe() {
        let b = breakers(40);
        let s = "http://a:80";
        for _ in 0..2 {
            assert!(b.before_call("t", s).is_ok());
            b.failure("t", s);
        }
        assert_eq!(b.state(s), "closed");
        b.failure("t", s);
        assert_eq!(b.state(s), "open");
        assert!(b.before_call("t", s).is_err());
        std::thread::sleep(Duration::from_millis(50));
        assert!(b.before_call("t", s).is_ok(), "the probe goes through");
        assert_eq!(b.state(s), "half_open");
        assert!(b.before_call("t", s).is_err(), "one probe at a time");
        b.success("t", s);
        assert_eq!(b.state(s), "closed");
        assert!(b.before_call("t", s).is_ok());
    }

    #[test]
    fn a_failed_probe_opens_again_and_systems_are_separate() {
        let b = breakers(30);
        let s = "http://a:80";
        for _ in 0..3 {
            b.failure("t", s);
        }
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.before_call("t", s).is_ok());
        b.failure("t", s);
        assert_eq!(b.state(s), "open");
        assert_eq!(b.state("http://b:80"), "closed");
        assert!(b.before_call("t", "http://b:80").is_ok());
        // A success in between resets the count of failures in a row.
        let c = "http://c:80";
        b.failure("t", c);
        b.failure("t", c);
        b.success("t", c);
        b.failure("t", c);
        assert_eq!(b.state(c), "closed");
    }

    #[test]
    fn names_systems_by_scheme_host_and_port() {
        assert_eq!(
            system_of("http://sp.example/dci/notify"),
            "http://sp.example:80"
        );
        assert_eq!(
            system_of("https://sp.example:8443/x"),
            "https://sp.example:8443"
        );
        assert_eq!(system_of("nope"), "invalid");
    }
}
