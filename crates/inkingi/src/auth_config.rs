//! The `[auth]` section of the configuration: sign-in, sessions, tokens, purposes of use.

use std::collections::BTreeMap;
use std::time::Duration;

use inkingi_domain::identity::PurposePolicy;
use inkingi_server::auth::{Argon2Settings, AuthSettings, RateLimit};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Mark cookies Secure. Browsers keep Secure cookies only over HTTPS (and on localhost);
    /// turn off only to try the system over plain HTTP on another address.
    pub cookie_secure: bool,
    /// A session unused this long ends.
    pub session_idle_minutes: u64,
    /// A session ends this long after sign-in.
    pub session_absolute_hours: u64,
    /// Consecutive failed sign-ins that lock an account, and for how long.
    pub lockout_threshold: u32,
    pub lockout_minutes: u64,
    /// Sign-in attempts per client address per minute (per node).
    pub login_per_minute: u32,
    /// Failed bearer-token authentications per client address per minute (per node).
    pub token_failures_per_minute: u32,
    /// argon2id cost: memory in KiB, passes, lanes.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Trust the last X-Forwarded-For entry as the client address (only behind a proxy).
    pub trust_forwarded_for: bool,
    /// Role → purposes of use it may declare, replacing that role's defaults, e.g.
    /// `district_officer = ["registration", "case-management"]`.
    pub purposes: BTreeMap<String, Vec<String>>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let d = AuthSettings::default();
        AuthConfig {
            cookie_secure: d.cookie_secure,
            session_idle_minutes: d.session_idle.as_secs() / 60,
            session_absolute_hours: d.session_absolute.as_secs() / 3600,
            lockout_threshold: d.lockout_threshold,
            lockout_minutes: d.lockout_duration.as_secs() / 60,
            login_per_minute: d.login_rate.per_minute,
            token_failures_per_minute: d.token_rate.per_minute,
            argon2_memory_kib: d.argon2.memory_kib,
            argon2_iterations: d.argon2.iterations,
            argon2_parallelism: d.argon2.parallelism,
            trust_forwarded_for: d.trust_forwarded_for,
            purposes: BTreeMap::new(),
        }
    }
}

impl AuthConfig {
    pub fn argon2(&self) -> Argon2Settings {
        Argon2Settings {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }

    /// Errors name the key at fault.
    pub fn check(&self) -> Result<(), String> {
        let a = self.argon2();
        if a.iterations == 0 || !(1..=255).contains(&a.parallelism) {
            return Err(
                "auth.argon2_iterations must be at least 1 and auth.argon2_parallelism 1 to 255"
                    .into(),
            );
        }
        if a.memory_kib < 8 * a.parallelism {
            return Err(
                "auth.argon2_memory_kib must be at least 8 × auth.argon2_parallelism".into(),
            );
        }
        if self.session_idle_minutes == 0 || self.session_absolute_hours == 0 {
            return Err(
                "auth.session_idle_minutes and auth.session_absolute_hours must be at least 1"
                    .into(),
            );
        }
        if self.lockout_threshold == 0
            || self.login_per_minute == 0
            || self.token_failures_per_minute == 0
        {
            return Err("auth.lockout_threshold, auth.login_per_minute and auth.token_failures_per_minute must be at least 1".into());
        }
        PurposePolicy::from_config(&self.purposes).map_err(|e| format!("auth.purposes: {e}"))?;
        Ok(())
    }

    pub fn settings(&self) -> AuthSettings {
        AuthSettings {
            cookie_secure: self.cookie_secure,
            session_idle: Duration::from_secs(self.session_idle_minutes * 60),
            session_absolute: Duration::from_secs(self.session_absolute_hours * 3600),
            lockout_threshold: self.lockout_threshold,
            lockout_duration: Duration::from_secs(self.lockout_minutes * 60),
            login_rate: RateLimit {
                per_minute: self.login_per_minute,
                burst: self.login_per_minute,
            },
            token_rate: RateLimit {
                per_minute: self.token_failures_per_minute,
                burst: self.token_failures_per_minute.div_ceil(2),
            },
            argon2: self.argon2(),
            // Checked by `check` when the configuration is loaded.
            purposes: PurposePolicy::from_config(&self.purposes).unwrap_or_default(),
            trust_forwarded_for: self.trust_forwarded_for,
            audit_reads: true,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_check_and_errors_name_the_key() {
        assert!(AuthConfig::default().check().is_ok());
        let bad = AuthConfig {
            argon2_iterations: 0,
            ..AuthConfig::default()
        };
        assert!(bad.check().unwrap_err().contains("auth.argon2_iterations"));
        let mut purposes = BTreeMap::new();
        purposes.insert("auditor".to_string(), vec!["gossip".to_string()]);
        let bad = AuthConfig {
            purposes,
            ..AuthConfig::default()
        };
        let e = bad.check().unwrap_err();
        assert!(e.contains("auth.purposes") && e.contains("gossip"), "{e}");
        let s = AuthConfig::default().settings();
        assert_eq!(s.session_idle, Duration::from_secs(30 * 60));
        assert!(s.cookie_secure && s.audit_reads);
    }
}
