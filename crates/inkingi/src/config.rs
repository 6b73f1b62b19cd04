//! Typed, layered configuration: built-in defaults, then a TOML file (`--config`, env
//! `INKINGI_CONFIG`), then `INKINGI_*` environment variables, then command-line flags (each of
//! which has its own `INKINGI_*` twin). Nested keys use a double underscore in the environment:
//! `INKINGI_WORKER__CONCURRENCY=4`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Where the embedded default keeps its data.
pub const DEFAULT_DATA_DIR: &str = "inkingi-data";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `sqlite://PATH` (embedded default) or `postgres://USER@HOST:PORT/DB`.
    pub database_url: String,
    /// Connections in the pool (PostgreSQL) or read pool (SQLite).
    pub db_max_connections: u32,
    /// Address `serve` listens on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Requests running longer are cut with 408.
    pub request_timeout_secs: u64,
    /// `text` for people, `json` for log shippers.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `inkingi=debug,sqlx=warn`. `RUST_LOG` wins when set.
    pub log_level: String,
    pub worker: WorkerConfig,
    pub auth: crate::auth_config::AuthConfig,
    pub registry: RegistryConfig,
    pub dci: DciConfig,
    pub connectors: ConnectorsConfig,
    pub lookup: LookupConfig,
    pub children: ChildrenConfig,
}

/// `[children]`: the integrated child record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChildrenConfig {
    /// The keys sealing sensitive fields (HIV exposure): lines `KEY_ID HEX64`, the last seals
    /// new values. Absent: sensitive facts are refused, never stored in clear.
    pub field_key_file: Option<PathBuf>,
}

/// `[lookup]`: the in-memory index `serve` keeps for registration-time duplicate lookups.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LookupConfig {
    /// Build the index when `serve` starts (else on the first lookup).
    pub build_at_start: bool,
    /// How often the index reads new registry events, in milliseconds.
    pub poll_ms: u64,
    /// A `model.json` written by `inkingi match run` on this registry; without one the index
    /// scores with provisional priors.
    pub model: Option<PathBuf>,
    /// Without a model: the share of registrations believed to be people already registered.
    pub duplicate_share: f64,
}

impl Default for LookupConfig {
    fn default() -> Self {
        LookupConfig {
            build_at_start: true,
            poll_ms: 1000,
            model: None,
            duplicate_share: 0.05,
        }
    }
}

/// `[connectors]`: outside systems the worker calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorsConfig {
    /// `[connectors.national_id]`: verify registry people against the national ID registry.
    /// Absent: no verification runs.
    pub national_id: Option<NationalIdConfig>,
    /// `[connectors.crvs]`: subscribe to civil registration's live births and deaths.
    /// Absent: no subscription (events posted to `/dci/crvs/notify` are still processed).
    pub crvs: Option<CrvsConfig>,
    /// `[connectors.dhis2]`: pull the child record's facts from DHIS2 (the HMIS). Absent: no
    /// DHIS2 sync.
    pub dhis2: Option<Dhis2Config>,
    /// `[connectors.sms]`: the SMS gateway for reminders, digests and beneficiary
    /// notifications. Absent: nothing is sent (messages stay queued).
    pub sms: Option<crate::sms_config::SmsConfig>,
}

/// `[connectors.dhis2]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dhis2Config {
    /// Base URL of the DHIS2 instance; `/api/tracker/…` is appended.
    pub url: String,
    /// A DHIS2 personal access token (`d2pat_…`); better given in the environment:
    /// `INKINGI_CONNECTORS__DHIS2__TOKEN`.
    pub token: String,
    /// UID of the organisation unit whose descendants are read (the country).
    pub org_unit: String,
    /// The mapping file (see data/dhis2/mapping.toml, the one used when absent).
    pub mapping: Option<PathBuf>,
    /// Records asked per page.
    pub page_size: u32,
    /// Timeout of one call, in milliseconds.
    pub timeout_ms: u64,
    /// Seconds between scheduled syncs; 0: none (only `inkingi dhis2 sync`).
    pub every_secs: u64,
}

/// Keeps the token out of logs.
impl std::fmt::Debug for Dhis2Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dhis2Config")
            .field("url", &self.url)
            .field("token", &"[redacted]")
            .field("org_unit", &self.org_unit)
            .field("mapping", &self.mapping)
            .field("page_size", &self.page_size)
            .field("timeout_ms", &self.timeout_ms)
            .field("every_secs", &self.every_secs)
            .finish()
    }
}

impl Default for Dhis2Config {
    fn default() -> Self {
        let c = inkingi_interop::dhis2::Dhis2Connector::new("", "", "");
        Dhis2Config {
            url: String::new(),
            token: String::new(),
            org_unit: String::new(),
            mapping: None,
            page_size: c.page_size,
            timeout_ms: c.timeout.as_millis() as u64,
            every_secs: 900,
        }
    }
}

impl Dhis2Config {
    /// The connector, or what is wrong with the settings, naming the key.
    pub fn connector(&self) -> Result<inkingi_interop::dhis2::Dhis2Connector, String> {
        let mut c = inkingi_interop::dhis2::Dhis2Connector::new(
            self.url.trim(),
            self.token.trim(),
            self.org_unit.trim(),
        );
        c.page_size = self.page_size;
        c.timeout = std::time::Duration::from_millis(self.timeout_ms.max(1));
        c.check().map_err(|e| format!("connectors.dhis2.{e}"))?;
        Ok(c)
    }

    /// The mapping: the configured file, else the shipped one.
    pub fn mapping(&self) -> Result<inkingi_interop::dhis2::Mapping, String> {
        use inkingi_interop::dhis2::Mapping;
        match &self.mapping {
            None => Mapping::embedded().map_err(|e| e.to_string()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("connectors.dhis2.mapping: reading {}: {e}", path.display())
                })?;
                Mapping::parse_toml(&path.display().to_string(), &text).map_err(|e| e.to_string())
            }
        }
    }
}

/// `[connectors.crvs]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrvsConfig {
    /// Base URL of the CRVS's DCI API (`…/registry`); `/subscribe` is appended.
    pub url: String,
    /// Our DCI sender id.
    pub sender_id: String,
    /// Inkingi's public address of its CRVS callbacks (`https://HOST/dci/crvs`); the CRVS
    /// appends `/notify` and `/on-subscribe`.
    pub callback_url: String,
    /// Timeout of one call, in milliseconds.
    pub timeout_ms: u64,
    /// How often the subscription is renewed, in seconds (a lost one returns within this).
    pub resubscribe_secs: u64,
    /// How long an event waits for an earlier event of the same person, in seconds.
    pub order_hold_secs: u64,
}

impl Default for CrvsConfig {
    fn default() -> Self {
        let c = inkingi_interop::crvs::CrvsConnector::new("", "");
        CrvsConfig {
            url: String::new(),
            sender_id: c.sender_id,
            callback_url: String::new(),
            timeout_ms: c.timeout.as_millis() as u64,
            resubscribe_secs: c.resubscribe.as_secs(),
            order_hold_secs: 600,
        }
    }
}

impl CrvsConfig {
    /// The connector, or what is wrong with the settings, naming the key.
    pub fn connector(&self) -> Result<inkingi_interop::crvs::CrvsConnector, String> {
        let c = inkingi_interop::crvs::CrvsConnector {
            url: self.url.trim().to_string(),
            sender_id: self.sender_id.clone(),
            callback_url: self.callback_url.trim().to_string(),
            timeout: std::time::Duration::from_millis(self.timeout_ms.max(1)),
            resubscribe: std::time::Duration::from_secs(self.resubscribe_secs),
        };
        c.check().map_err(|e| format!("connectors.crvs.{e}"))?;
        Ok(c)
    }
}

/// `[connectors.national_id]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NationalIdConfig {
    /// Base URL of the ID registry's DCI API (`…/registry`); `/sync/search` is appended.
    pub url: String,
    /// Our DCI sender id.
    pub sender_id: String,
    /// Timeout of one call, in milliseconds.
    pub timeout_ms: u64,
    /// People the sweep reads at a time.
    pub window: u32,
    /// Pause between two windows of the sweep, in milliseconds.
    pub pause_ms: u64,
    /// Rest after the whole registry was walked, before the next walk, in seconds.
    pub rest_secs: u64,
}

impl Default for NationalIdConfig {
    fn default() -> Self {
        let c = inkingi_interop::national_id::IdConnector::new("");
        NationalIdConfig {
            url: String::new(),
            sender_id: c.sender_id,
            timeout_ms: c.timeout.as_millis() as u64,
            window: c.window,
            pause_ms: c.pause.as_millis() as u64,
            rest_secs: c.rest.as_secs(),
        }
    }
}

impl NationalIdConfig {
    /// The connector, or what is wrong with the settings, naming the key.
    pub fn connector(&self) -> Result<inkingi_interop::national_id::IdConnector, String> {
        if self.window == 0 {
            return Err("connectors.national_id.window: must be at least 1".into());
        }
        let c = inkingi_interop::national_id::IdConnector {
            url: self.url.trim().to_string(),
            sender_id: self.sender_id.clone(),
            timeout: std::time::Duration::from_millis(self.timeout_ms.max(1)),
            window: self.window,
            pause: std::time::Duration::from_millis(self.pause_ms),
            rest: std::time::Duration::from_secs(self.rest_secs),
        };
        c.check()
            .map_err(|e| format!("connectors.national_id.url: {e}"))?;
        Ok(c)
    }
}

/// `[dci]`: delivery of DCI event notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DciConfig {
    /// How often an idle worker reads new registry events for subscribers, in milliseconds.
    pub notify_poll_ms: u64,
    /// Failed calls in a row to one subscriber system that open its circuit breaker.
    pub breaker_failures: u32,
    /// How long an open circuit holds calls back before one probe goes, in milliseconds.
    pub breaker_open_ms: u64,
    /// This registry's `sender_id` in DCI messages, and the issuer of its access tokens.
    pub registry_id: String,
    /// A private Ed25519 JWK (`inkingi keys generate`) that signs access tokens and outgoing
    /// DCI messages; give every node the same file. Without one, each process draws its own
    /// key for access tokens and messages go unsigned.
    pub signing_key_file: Option<PathBuf>,
    /// Public JWK or JWK Set files of earlier signing keys: still published and accepted, so
    /// a key can be rotated without cutting off the access tokens it issued.
    pub previous_key_files: Vec<PathBuf>,
    /// Lifetime of an access token, in seconds.
    pub token_ttl_secs: u64,
    /// Refuse DCI messages that are not signed by a key listed in `sender_keys`.
    pub require_signatures: bool,
    /// Partners' published keys, `sender_id = "FILE"` (a JWK Set or one JWK): their signed
    /// messages are verified.
    pub sender_keys: std::collections::BTreeMap<String, PathBuf>,
}

impl Default for DciConfig {
    fn default() -> Self {
        DciConfig {
            notify_poll_ms: 500,
            breaker_failures: 5,
            breaker_open_ms: 30_000,
            registry_id: "inkingi".into(),
            signing_key_file: None,
            previous_key_files: Vec::new(),
            token_ttl_secs: 900,
            require_signatures: false,
            sender_keys: Default::default(),
        }
    }
}

/// `[registry]`: rules of the social registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Approvals needed per kind of change request, 1 to 3 (`[registry.approval_tiers]`,
    /// e.g. `move_household = 2`). Tier 1 is decided in the village's sector or cell, tier 2
    /// needs a district-level approver, tier 3 a national one.
    pub approval_tiers: std::collections::BTreeMap<String, u32>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            approval_tiers: inkingi_server::registry::changes::default_tiers(),
        }
    }
}

impl RegistryConfig {
    /// Refuses unknown kinds and tier counts outside 1–3, naming the key.
    pub fn check(&self) -> Result<(), String> {
        let known = inkingi_server::registry::changes::default_tiers();
        for (kind, tiers) in &self.approval_tiers {
            if !known.contains_key(kind) {
                let names: Vec<&str> = known.keys().map(String::as_str).collect();
                return Err(format!(
                    "registry.approval_tiers.{kind}: unknown kind of change request; expected one of {}",
                    names.join(", ")
                ));
            }
            if !(1..=3).contains(tiers) {
                return Err(format!(
                    "registry.approval_tiers.{kind}: {tiers} tiers; use 1, 2 or 3"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkerConfig {
    /// Jobs run at once by one worker process.
    pub concurrency: usize,
    /// How often an idle worker looks for due jobs, in milliseconds.
    pub poll_interval_ms: u64,
    /// How long a claimed job is reserved; a worker that dies loses its claim after this.
    /// Running jobs renew it every third of this.
    pub lease_secs: u64,
    /// Backoff before the first retry of a failed job, in milliseconds; it doubles with each
    /// further attempt (with full jitter).
    pub retry_base_ms: u64,
    /// The longest backoff between two attempts, in seconds.
    pub retry_cap_secs: u64,
    /// Succeeded jobs older than this many hours are deleted by the worker (hourly); 0 keeps
    /// them. Dead jobs are never deleted automatically.
    pub retain_succeeded_hours: u64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 4,
            poll_interval_ms: 500,
            lease_secs: 300,
            retry_base_ms: 2000,
            retry_cap_secs: 15 * 60,
            retain_succeeded_hours: 168,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: default_database_url(),
            db_max_connections: 16,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 2 * 1024 * 1024,
            request_timeout_secs: 30,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            worker: WorkerConfig::default(),
            auth: crate::auth_config::AuthConfig::default(),
            registry: RegistryConfig::default(),
            dci: DciConfig::default(),
            connectors: ConnectorsConfig::default(),
            lookup: LookupConfig::default(),
            children: ChildrenConfig::default(),
        }
    }
}

pub fn default_database_url() -> String {
    format!("sqlite://{DEFAULT_DATA_DIR}/inkingi.db")
}

/// Values given on the command line (already merged with their env twins by clap).
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration error: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.to_path_buf()));
            }
            fig = fig.merge(Toml::file(path));
        }
        let config: Config = fig
            .merge(
                Env::prefixed("INKINGI_")
                    .split("__")
                    // Not configuration keys: the harness's PostgreSQL URL and the file path.
                    .ignore(&["test_database_url", "config"]),
            )
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(e)))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, expected: &str| {
            Err(ConfigError::Invalid(format!(
                "key `{key}` (env INKINGI_{}): expected {expected}",
                key.to_uppercase().replace('.', "__")
            )))
        };
        if inkingi_store::BackendKind::from_url(&self.database_url).is_err() {
            return bad(
                "database_url",
                "sqlite://PATH or postgres://USER@HOST:PORT/DB",
            );
        }
        self.registry.check().map_err(ConfigError::Invalid)?;
        if let Some(id) = &self.connectors.national_id {
            id.connector().map_err(ConfigError::Invalid)?;
        }
        if let Some(d) = &self.connectors.dhis2 {
            d.connector().map_err(ConfigError::Invalid)?;
            d.mapping().map_err(ConfigError::Invalid)?;
        }
        if let Some(c) = &self.connectors.crvs {
            c.connector().map_err(ConfigError::Invalid)?;
        }
        if let Some(c) = &self.connectors.sms {
            c.check().map_err(ConfigError::Invalid)?;
        }
        if self.db_max_connections == 0 {
            return bad("db_max_connections", "a whole number of at least 1");
        }
        if self.worker.concurrency == 0 {
            return bad("worker.concurrency", "a whole number of at least 1");
        }
        if self.worker.poll_interval_ms == 0 {
            return bad(
                "worker.poll_interval_ms",
                "a whole number of milliseconds, at least 1",
            );
        }
        if self.worker.lease_secs == 0 {
            return bad("worker.lease_secs", "a whole number of seconds, at least 1");
        }
        if self.worker.retry_base_ms == 0 {
            return bad(
                "worker.retry_base_ms",
                "a whole number of milliseconds, at least 1",
            );
        }
        if self.worker.retry_cap_secs == 0 {
            return bad(
                "worker.retry_cap_secs",
                "a whole number of seconds, at least 1",
            );
        }
        // Ten years: beyond that the cutoff is meaningless, and the arithmetic must not overflow.
        if self.worker.retain_succeeded_hours > 24 * 366 * 10 {
            return bad(
                "worker.retain_succeeded_hours",
                "a whole number of hours up to 87840 (0 keeps succeeded jobs)",
            );
        }
        if self.dci.notify_poll_ms == 0 {
            return bad(
                "dci.notify_poll_ms",
                "a whole number of milliseconds, at least 1",
            );
        }
        if self.dci.token_ttl_secs == 0 || self.dci.token_ttl_secs > 86_400 {
            return bad("dci.token_ttl_secs", "a number of seconds from 1 to 86400");
        }
        if self.dci.registry_id.trim().is_empty() {
            return bad("dci.registry_id", "a non-empty sender id");
        }
        if self.dci.breaker_failures == 0 {
            return bad("dci.breaker_failures", "a whole number of at least 1");
        }
        if self.dci.breaker_open_ms == 0 {
            return bad(
                "dci.breaker_open_ms",
                "a whole number of milliseconds, at least 1",
            );
        }
        self.auth.check().map_err(ConfigError::Invalid)?;
        if self.request_timeout_secs == 0 {
            return bad(
                "request_timeout_secs",
                "a whole number of seconds, at least 1",
            );
        }
        Ok(())
    }
}

/// figment names the key and the source; keep its message, one line per error.
fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert!(c.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn file_values_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "db_max_connections = 3\n[worker]\nconcurrency = 2\n").unwrap();
        let c = Config::load(Some(&p), &Overrides::default()).unwrap();
        assert_eq!((c.db_max_connections, c.worker.concurrency), (3, 2));

        std::fs::write(&p, "db_max_connections = \"many\"\n").unwrap();
        let e = Config::load(Some(&p), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("db_max_connections"), "{e}");

        std::fs::write(&p, "database_url = \"mysql://x\"\n").unwrap();
        let e = Config::load(Some(&p), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("database_url") && e.contains("postgres://"),
            "{e}"
        );

        std::fs::write(&p, "[worker]\nlease_secs = 0\n").unwrap();
        let e = Config::load(Some(&p), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("worker.lease_secs") && e.contains("INKINGI_WORKER__LEASE_SECS"),
            "{e}"
        );

        std::fs::write(&p, "[worker]\nretain_succeeded_hours = 100000\n").unwrap();
        let e = Config::load(Some(&p), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("worker.retain_succeeded_hours"), "{e}");
        std::fs::write(&p, "[worker]\nretain_succeeded_hours = 0\n").unwrap();
        let c = Config::load(Some(&p), &Overrides::default()).unwrap();
        assert_eq!(c.worker.retain_succeeded_hours, 0);
    }

    #[test]
    fn crvs_connector_settings_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "[connectors.crvs]\nurl = \"http://crvs.example/registry\"\n\
             callback_url = \"https://inkingi.example/dci/crvs\"\nresubscribe_secs = 30\n",
        )
        .unwrap();
        let c = Config::load(Some(&p), &Overrides::default()).unwrap();
        let crvs = c.connectors.crvs.unwrap().connector().unwrap();
        assert_eq!(crvs.resubscribe.as_secs(), 30);
        assert_eq!(crvs.callback_url, "https://inkingi.example/dci/crvs");

        std::fs::write(
            &p,
            "[connectors.crvs]\nurl = \"http://crvs.example/registry\"\n",
        )
        .unwrap();
        let e = Config::load(Some(&p), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("connectors.crvs.callback_url"), "{e}");
    }
}
