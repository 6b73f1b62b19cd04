//! Per-client rate limits (token buckets keyed by client address), held in process memory.
//!
//! Behind a load balancer every node keeps its own buckets, so the effective limit is the
//! configured one times the number of nodes; the account lockout, stored in the database, is
//! what bounds password guessing across nodes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Bounds memory under a flood of distinct addresses: full buckets are forgotten past this.
const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refilled(&self, b: Bucket, now: Instant) -> Bucket {
        let rate = f64::from(self.limit.per_minute) / 60.0;
        let tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate)
            .min(f64::from(self.limit.burst));
        Bucket { tokens, at: now }
    }

    /// Takes one request's worth; `Err(retry_after)` when the client is over its limit.
    pub fn hit(&self, client: IpAddr) -> Result<(), Duration> {
        self.take(client, true)
    }

    /// Whether the client is over its limit, without taking anything (for limits that count
    /// only failures).
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.take(client, false)
    }

    fn take(&self, client: IpAddr, consume: bool) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > MAX_TRACKED {
            let burst = f64::from(self.limit.burst);
            let mut fresh = HashMap::new();
            for (k, b) in map.drain() {
                let b = self.refilled(b, now);
                if b.tokens < burst {
                    fresh.insert(k, b);
                }
            }
            *map = fresh;
        }
        let full = Bucket {
            tokens: f64::from(self.limit.burst),
            at: now,
        };
        let b = self.refilled(*map.get(&client).unwrap_or(&full), now);
        if b.tokens < 1.0 {
            map.insert(client, b);
            let rate = f64::from(self.limit.per_minute.max(1)) / 60.0;
            return Err(Duration::from_secs_f64(((1.0 - b.tokens) / rate).max(1.0)));
        }
        let tokens = if consume { b.tokens - 1.0 } else { b.tokens };
        map.insert(client, Bucket { tokens, at: now });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_per_client() {
        let l = RateLimiter::new(RateLimit {
            per_minute: 1,
            burst: 3,
        });
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(l.hit(a).is_ok());
        }
        assert!(l.check(a).is_err());
        assert!(l.hit(a).is_err());
        assert!(l.hit(b).is_ok(), "other clients are not affected");
    }
}
