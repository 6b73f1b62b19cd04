//! The civil registration (CRVS) connector over DCI: subscribing to live-birth and death events,
//! and reading the events the CRVS notifies.
//!
//! - Subscribing is a `crvs.subscribe` job (queue `connectors`, through the per-system circuit
//!   breaker, retried with backoff). The worker queues one per *round* of `resubscribe`
//!   (idempotency key `crvs-subscribe:<round>`), so a worker start subscribes once, and a CRVS
//!   that lost its subscribers (a restart) has them back within a round. The CRVS keys a
//!   subscription by (sender id, `sender_uri`), so subscribing again changes nothing there.
//! - The CRVS POSTs `notify` to `sender_uri` + `/notify` (Inkingi's `/dci/crvs/notify`); each
//!   `notify_event` is read here ([`read_notice`]), stored once per (source, event id) and
//!   processed by a `crvs.process` job ([`CrvsProcessJob`]), run by the server crate's handler.
//!   Each event carries `subject_id` and `seq` (the order of that person's events at the
//!   CRVS, as Inkingi's own notifications do), so events delivered out of order are processed
//!   in order.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use inkingi_store::jobs::{Job, NewJob};
use inkingi_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::breaker::{self, Breakers};
use crate::dci::envelope::{timestamp, VERSION};
use crate::dci::notify::EventType;
use crate::worker::{JobContext, JobError, JobHandler};

/// The connector's name in metrics and breakers.
const CONNECTOR: &str = "crvs";

/// Identifier type of a death registration number.
pub const ID_DEATH_REGISTRATION: &str = "DRN";

/// Where the CRVS is and how Inkingi subscribes to it.
#[derive(Debug, Clone, PartialEq)]
pub struct CrvsConnector {
    /// Base URL of its DCI API (`…/registry`); `/subscribe` is appended.
    pub url: String,
    /// Our DCI sender id.
    pub sender_id: String,
    /// Where the CRVS sends its callbacks: Inkingi's public `…/dci/crvs` (it appends
    /// `/notify` and `/on-subscribe`).
    pub callback_url: String,
    /// Timeout of one call.
    pub timeout: Duration,
    /// How often the subscription is renewed (a lost one comes back within this).
    pub resubscribe: Duration,
}

impl CrvsConnector {
    pub fn new(url: impl Into<String>, callback_url: impl Into<String>) -> CrvsConnector {
        CrvsConnector {
            url: url.into(),
            sender_id: "inkingi".into(),
            callback_url: callback_url.into(),
            timeout: Duration::from_secs(10),
            resubscribe: Duration::from_secs(600),
        }
    }

    /// Refuses URLs that are not http(s) with a host, naming which.
    pub fn check(&self) -> Result<(), String> {
        for (name, url) in [("url", &self.url), ("callback_url", &self.callback_url)] {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                Ok(_) => return Err(format!("{name} '{url}': an http or https URL is needed")),
                Err(e) => return Err(format!("{name} '{url}': {e}")),
            }
        }
        if self.resubscribe.is_zero() {
            return Err("resubscribe: must be at least one second".into());
        }
        Ok(())
    }

    fn subscribe_url(&self) -> String {
        format!("{}/subscribe", self.url.trim_end_matches('/'))
    }

    /// The subscribe envelope (registry core API `SubscribeRequest`).
    pub fn subscribe_request(&self, message_id: &str) -> Value {
        let now = timestamp(Utc::now());
        json!({
            "header": {
                "version": VERSION,
                "message_id": message_id,
                "message_ts": now,
                "action": "subscribe",
                "sender_id": self.sender_id,
                "sender_uri": self.callback_url,
                "total_count": 1,
                "is_msg_encrypted": false,
            },
            "message": {
                "transaction_id": message_id,
                "subscribe_request": [{
                    "reference_id": format!("{}-vital-events", self.sender_id),
                    "timestamp": now,
                    "subscribe_criteria": {
                        "version": VERSION,
                        "reg_type": "ns:org:RegistryType:Civil",
                        "reg_event_type": ["live_birth", "death"],
                        "notify_record_type": "Person",
                    },
                }],
            },
        })
    }
}

/// Subscribes (again) for one round of the renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrvsSubscribeJob {
    pub round: u64,
}

impl Job for CrvsSubscribeJob {
    const KIND: &'static str = "crvs.subscribe";
    const QUEUE: &'static str = "connectors";
    const MAX_ATTEMPTS: u32 = 25;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!("crvs-subscribe:{}", self.round))
    }
}

/// Processes one stored event (`crvs_events.id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrvsProcessJob {
    pub event: Uuid,
}

impl Job for CrvsProcessJob {
    const KIND: &'static str = "crvs.process";
    const QUEUE: &'static str = "connectors";
    const MAX_ATTEMPTS: u32 = 25;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!("crvs-event:{}", self.event))
    }
}

/// Runs `crvs.subscribe` jobs.
#[derive(Debug, Clone)]
pub struct CrvsSubscribeHandler {
    connector: CrvsConnector,
    client: reqwest::Client,
}

impl CrvsSubscribeHandler {
    pub fn new(connector: CrvsConnector) -> Result<CrvsSubscribeHandler, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(connector.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(CrvsSubscribeHandler { connector, client })
    }

    /// `Ok` on an `ACK`; `Err((retry, why))` otherwise.
    async fn subscribe(&self) -> Result<(), (bool, String)> {
        let url = self.connector.subscribe_url();
        let body = self
            .connector
            .subscribe_request(&Uuid::now_v7().to_string());
        let res = self
            .client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| (true, format!("POST {url}: {e}")))?;
        let status = res.status();
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
        {
            return Err((true, format!("POST {url}: HTTP {status}")));
        }
        let ack: Value = res
            .json()
            .await
            .map_err(|e| (true, format!("POST {url}: answer: {e}")))?;
        match ack["message"]["ack_status"].as_str() {
            Some("ACK") => Ok(()),
            other => Err((
                false,
                format!(
                    "POST {url}: HTTP {status}, {} {}",
                    other.unwrap_or("no ack_status"),
                    ack["message"]["error"]
                ),
            )),
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for CrvsSubscribeHandler {
    fn kind(&self) -> &'static str {
        CrvsSubscribeJob::KIND
    }

    async fn run(&self, ctx: &JobContext, _payload: Value) -> Result<(), JobError> {
        let system = breaker::system_of(&self.connector.url);
        let breakers = Breakers::global();
        if let Err(wait) = breakers.before_call(CONNECTOR, &system) {
            breaker::count_deferred(CONNECTOR, &system);
            return Err(JobError::Defer {
                after: wait,
                reason: format!("circuit of {system} is open"),
            });
        }
        match self.subscribe().await {
            Ok(()) => {
                breakers.success(CONNECTOR, &system);
                tracing::info!(%system, "subscribed to CRVS live-birth and death events");
                Ok(())
            }
            Err((true, msg)) => {
                breakers.failure(CONNECTOR, &system);
                if ctx.attempt < ctx.max_attempts {
                    breaker::count_retry(CONNECTOR, &system);
                } else {
                    breaker::count_failed(CONNECTOR, &system);
                }
                Err(JobError::Retry(msg))
            }
            Err((false, msg)) => {
                breaker::count_failed(CONNECTOR, &system);
                Err(JobError::Permanent(msg))
            }
        }
    }
}

/// Queues the subscription of the current round (nothing when it is queued already).
pub async fn subscribe_now(
    store: &Store,
    connector: &CrvsConnector,
) -> inkingi_store::StoreResult<()> {
    let secs = connector.resubscribe.as_secs().max(1);
    let round = Utc::now().timestamp().max(0) as u64 / secs;
    let mut uow = store.begin().await?;
    store
        .jobs()
        .enqueue(&mut uow, NewJob::of(&CrvsSubscribeJob { round })?)
        .await?;
    uow.commit().await
}

/// Subscribes at start and renews every `resubscribe`, until `shutdown`.
pub async fn run_subscriber(store: Store, connector: CrvsConnector, shutdown: CancellationToken) {
    loop {
        if let Err(e) = subscribe_now(&store, &connector).await {
            tracing::warn!(error = %e, "CRVS subscription: will try again");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(connector.resubscribe) => {}
        }
    }
}

/// One `notify_event` item, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub event_id: String,
    /// `live_birth` or `death`.
    pub event_type: &'static str,
    pub subject: String,
    pub seq: i64,
    /// The item as received.
    pub payload: Value,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads item `i` of `message.notify_event`; the error names the field.
pub fn read_notice(i: usize, item: &Value) -> Result<Notice, String> {
    let at = format!("message.notify_event[{i}]");
    let event_id =
        text(&item["event_id"]).ok_or_else(|| format!("{at}.event_id: required (a string)"))?;
    if event_id.chars().count() > 99 {
        return Err(format!("{at}.event_id: at most 99 characters"));
    }
    let raw_type = item["data"]["reg_event_type"].as_str().unwrap_or("");
    let event_type = match EventType::parse(raw_type) {
        Some(EventType::LiveBirth) => "live_birth",
        Some(EventType::Death) => "death",
        _ => {
            return Err(format!(
                "{at}.data.reg_event_type '{}': expected live_birth or death",
                crate::dci::envelope::short(raw_type)
            ))
        }
    };
    if !item["data"]["reg_records"]
        .get(0)
        .is_some_and(Value::is_object)
    {
        return Err(format!(
            "{at}.data.reg_records: one person record is required"
        ));
    }
    let subject = text(&item["subject_id"]).unwrap_or_else(|| format!("event:{event_id}"));
    let seq = match &item["seq"] {
        Value::Null => 1,
        v => v
            .as_i64()
            .filter(|s| *s >= 1)
            .ok_or_else(|| format!("{at}.seq: expected an integer from 1"))?,
    };
    Ok(Notice {
        event_id,
        event_type,
        subject,
        seq,
        payload: item.clone(),
    })
}

/// A person as a CRVS record names them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrvsPerson {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `female` or `male` when given so.
    pub sex: Option<String>,
    /// `YYYY-MM-DD` (the date of a date-time).
    pub birth_date: Option<String>,
    /// (identifier type, value), e.g. (`UIN`, national ID), (`BRN`, birth registration).
    pub identifiers: Vec<(String, String)>,
}

impl CrvsPerson {
    /// Reads `name.given_name`, `name.surname`, `sex`, `birth_date`, `identifier[]`.
    pub fn from_dci(r: &Value) -> CrvsPerson {
        let date = |v: &Value| v.as_str().map(|s| s.get(..10).unwrap_or(s).to_string());
        let sex = r["sex"]
            .as_str()
            .map(|s| match s.to_ascii_lowercase().as_str() {
                "f" | "female" => "female".to_string(),
                "m" | "male" => "male".to_string(),
                other => other.to_string(),
            });
        CrvsPerson {
            given_name: text(&r["name"]["given_name"]),
            family_name: text(&r["name"]["surname"]),
            sex,
            birth_date: date(&r["birth_date"]),
            identifiers: r["identifier"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(|i| {
                            Some((text(&i["identifier_type"])?, text(&i["identifier_value"])?))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    pub fn identifier(&self, kind: &str) -> Option<&str> {
        self.identifiers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(kind))
            .map(|(_, v)| v.as_str())
    }
}

/// What a live birth says: the child, and the mother when named.
#[derive(Debug, Clone, PartialEq)]
pub struct Birth {
    pub child: CrvsPerson,
    pub mother: Option<CrvsPerson>,
}

/// What a death says.
#[derive(Debug, Clone, PartialEq)]
pub struct Death {
    pub person: CrvsPerson,
    pub died_on: Option<NaiveDate>,
}

fn record(notice_payload: &Value) -> &Value {
    &notice_payload["data"]["reg_records"][0]
}

/// The birth in a notice's payload: the record is the child; its `parents` (the CRVSPerson
/// `parents` property) name the mother with `relationship: mother` (or as the female parent).
pub fn birth_of(payload: &Value) -> Birth {
    let r = record(payload);
    let parents = r["parents"].as_array().cloned().unwrap_or_default();
    let mother = parents
        .iter()
        .find(|p| p["relationship"].as_str() == Some("mother"))
        .or_else(|| parents.iter().find(|p| p["sex"].as_str() == Some("female")))
        .map(CrvsPerson::from_dci);
    Birth {
        child: CrvsPerson::from_dci(r),
        mother,
    }
}

/// The death in a notice's payload: the record is the deceased, `death_date` the day.
pub fn death_of(payload: &Value) -> Death {
    let r = record(payload);
    let died_on = r["death_date"]
        .as_str()
        .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok());
    Death {
        person: CrvsPerson::from_dci(r),
        died_on,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn item(kind: &str, record: Value) -> Value {
        json!({"event_id": "e1", "subject_id": "P7", "seq": 2,
               "data": {"reg_event_type": kind, "reg_records": [record]}})
    }

    #[test]
    fn notices_are_read_with_their_order_or_refused_naming_the_field() {
        let n = read_notice(
            0,
            &item("spdci-common:RegistryEventType:LiveBirth", json!({})),
        )
        .unwrap();
        assert_eq!(
            (n.event_type, n.subject.as_str(), n.seq),
            ("live_birth", "P7", 2)
        );
        let mut no_order = item("death", json!({}));
        no_order["subject_id"] = Value::Null;
        no_order["seq"] = Value::Null;
        let n = read_notice(0, &no_order).unwrap();
        assert_eq!((n.subject.as_str(), n.seq), ("event:e1", 1));
        let err = read_notice(3, &item("marriage", json!({}))).unwrap_err();
        assert!(
            err.starts_with("message.notify_event[3].data.reg_event_type"),
            "{err}"
        );
        let mut no_id = item("death", json!({}));
        no_id["event_id"] = json!("");
        assert!(read_notice(0, &no_id).unwrap_err().contains("event_id"));
        let empty =
            json!({"event_id": "e", "data": {"reg_event_type": "death", "reg_records": []}});
        assert!(read_notice(0, &empty).unwrap_err().contains("reg_records"));
    }

    #[test]
    fn births_name_the_child_and_the_mother_deaths_the_day() {
        let payload = item(
            "live_birth",
            json!({
                "identifier": [{"identifier_type": "BRN", "identifier_value": "B-1"}],
                "name": {"given_name": "Keza", "surname": "Uwase"}, "sex": "F",
                "birth_date": "2026-11-20T08:00:00",
                "parents": [{"relationship": "father", "name": {"given_name": "Jean"}},
                            {"relationship": "mother", "sex": "female",
                             "name": {"given_name": "Aline", "surname": "Uwase"},
                             "identifier": [{"identifier_type": "UIN",
                                             "identifier_value": "1199070000000101"}]}]
            }),
        );
        let b = birth_of(&payload);
        assert_eq!(b.child.given_name.as_deref(), Some("Keza"));
        assert_eq!(b.child.sex.as_deref(), Some("female"));
        assert_eq!(b.child.birth_date.as_deref(), Some("2026-11-20"));
        assert_eq!(b.child.identifier("brn"), Some("B-1"));
        let m = b.mother.unwrap();
        assert_eq!(m.given_name.as_deref(), Some("Aline"));
        assert_eq!(m.identifier("UIN"), Some("1199070000000101"));
        let d = death_of(&item("death", json!({"death_date": "2026-11-01"})));
        assert_eq!(d.died_on, NaiveDate::from_ymd_opt(2026, 11, 1));
        assert_eq!(death_of(&item("death", json!({}))).died_on, None);
    }

    #[test]
    fn one_subscription_per_round_and_one_job_per_event() {
        let k = |r| CrvsSubscribeJob { round: r }.idempotency_key();
        assert_eq!(k(5), k(5));
        assert_ne!(k(5), k(6));
        let c = CrvsConnector::new("http://crvs.example/registry", "http://me.example/dci/crvs");
        assert_eq!(c.check(), Ok(()));
        let body = c.subscribe_request("m1");
        assert_eq!(body["header"]["sender_uri"], "http://me.example/dci/crvs");
        assert_eq!(
            body["message"]["subscribe_request"][0]["subscribe_criteria"]["reg_event_type"],
            json!(["live_birth", "death"])
        );
        let bad = CrvsConnector::new("ftp://x", "http://me.example");
        assert!(bad.check().unwrap_err().starts_with("url"));
    }
}
