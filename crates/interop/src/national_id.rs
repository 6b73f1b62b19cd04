//! Verification of registry people against the national ID registry over DCI.
//!
//! A sweep walks the registry by primary key and enqueues an `id.verify` job for every living
//! person with a national ID whose current names, sex and birth date no check holds yet (see
//! `inkingi_store::id_checks`). The job asks the ID registry's `sync/search` for the number
//! (`idtype-value`, `UIN`), compares what it holds with the registry, and stores the outcome —
//! verified, mismatch with each discrepancy, or not found — for officers to review. Sending a
//! person's data out is a disclosure, so each check is audited.
//!
//! Calls go through the per-system circuit breaker; a failed call is retried by the job queue
//! with backoff, and a message id is sent with each attempt. A search changes nothing at the
//! ID registry, so a repeated attempt has no effect there.

use std::time::Duration;

use chrono::Utc;
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::{BirthDate, PersonInput, Sex};
use inkingi_domain::text::search_key;
use inkingi_store::id_checks::{CheckStatus, Discrepancy, IdCheck};
use inkingi_store::jobs::{Job, NewJob};
use inkingi_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::breaker::{self, Breakers};
use crate::dci::envelope::{timestamp, VERSION};
use crate::dci::records::ID_NATIONAL;
use crate::worker::{JobContext, JobError, JobHandler};

/// The connector's name in metrics and breakers.
const CONNECTOR: &str = "national_id";

/// Where the national ID registry is and how to walk the registry for it.
#[derive(Debug, Clone, PartialEq)]
pub struct IdConnector {
    /// Base URL of its DCI API; `…/sync/search` is appended.
    pub url: String,
    /// Our DCI sender id.
    pub sender_id: String,
    /// Timeout of one call.
    pub timeout: Duration,
    /// People read per sweep window.
    pub window: u32,
    /// Pause between windows (paces the sweep, and so the load on the ID registry).
    pub pause: Duration,
    /// Rest after the registry has been walked to its end, before walking it again.
    pub rest: Duration,
}

impl IdConnector {
    pub fn new(url: impl Into<String>) -> IdConnector {
        IdConnector {
            url: url.into(),
            sender_id: "inkingi".into(),
            timeout: Duration::from_secs(10),
            window: 500,
            pause: Duration::from_millis(200),
            rest: Duration::from_secs(60),
        }
    }

    /// Refuses a URL that is not http(s) with a host.
    pub fn check(&self) -> Result<(), String> {
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
            Ok(_) => Err(format!("'{}': an http or https URL is needed", self.url)),
            Err(e) => Err(format!("'{}': {e}", self.url)),
        }
    }

    fn search_url(&self) -> String {
        format!("{}/sync/search", self.url.trim_end_matches('/'))
    }
}

/// Checks one person in the state the sweep saw (`subject`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdVerifyJob {
    pub person_id: Uuid,
    pub subject: String,
}

impl Job for IdVerifyJob {
    const KIND: &'static str = "id.verify";
    const QUEUE: &'static str = "connectors";
    /// With the default backoff this keeps trying for about a day.
    const MAX_ATTEMPTS: u32 = 25;

    /// One job per person and state: a sweep that passes again before the job ran adds none.
    fn idempotency_key(&self) -> Option<String> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.subject.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Some(format!("id-verify:{}:{h:016x}", self.person_id))
    }
}

/// What the ID registry holds under a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdRecord {
    pub given_name: String,
    pub family_name: String,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
}

impl IdRecord {
    /// Reads a DCI person record (`name.given_name`, `name.surname`, `sex`, `birth_date`).
    pub fn from_dci(r: &Value) -> IdRecord {
        let s = |v: &Value| v.as_str().map(str::to_string);
        IdRecord {
            given_name: s(&r["name"]["given_name"]).unwrap_or_default(),
            family_name: s(&r["name"]["surname"]).unwrap_or_default(),
            sex: s(&r["sex"]),
            birth_date: s(&r["birth_date"]),
        }
    }
}

/// The fields on which the registry and the ID registry disagree.
///
/// Names compare by search key (case, accents and spacing ignored) and in either order, since
/// given and family names are often written the other way round. Birth dates agree when their
/// known periods overlap: a registry that knows only the year agrees with any day of it.
pub fn compare(p: &PersonInput, r: &IdRecord) -> Vec<Discrepancy> {
    let mut out = Vec::new();
    let ours = (
        search_key(p.given_name.as_str()),
        search_key(p.family_name.as_str()),
    );
    let theirs = (search_key(&r.given_name), search_key(&r.family_name));
    let swapped = (theirs.1.clone(), theirs.0.clone());
    if ours != theirs && ours != swapped {
        if ours.0 != theirs.0 {
            out.push(diff("given_name", p.given_name.as_str(), &r.given_name));
        }
        if ours.1 != theirs.1 {
            out.push(diff("family_name", p.family_name.as_str(), &r.family_name));
        }
    }
    let our_sex = match p.sex {
        Sex::Female => "female",
        Sex::Male => "male",
    };
    match r.sex.as_deref().map(str::to_ascii_lowercase) {
        Some(s) if s == our_sex || (s == "f" && our_sex == "female") => {}
        Some(s) if s == "m" && our_sex == "male" => {}
        Some(s) => out.push(diff("sex", our_sex, &s)),
        None => {}
    }
    if let (Some(ours), Some(raw)) = (&p.birth_date, &r.birth_date) {
        // DCI samples send a date-time; the date is its first ten characters.
        let day = raw.get(..10).unwrap_or(raw);
        match BirthDate::parse(day).or_else(|_| BirthDate::parse(raw)) {
            Ok(theirs) if overlaps(ours, &theirs) => {}
            _ => out.push(diff("birth_date", &ours.to_string(), raw)),
        }
    }
    out
}

fn overlaps(a: &BirthDate, b: &BirthDate) -> bool {
    a.earliest() <= b.latest() && b.earliest() <= a.latest()
}

fn diff(field: &str, registry: &str, id_registry: &str) -> Discrepancy {
    Discrepancy {
        field: field.into(),
        registry: registry.into(),
        id_registry: id_registry.into(),
    }
}

/// The outcome of one search.
#[derive(Debug)]
enum Asked {
    Found(IdRecord),
    NotFound,
    /// Worth another attempt (network, timeout, 5xx, 429).
    Retry(String),
    /// Never worth another attempt (the ID registry refused the request itself).
    Refused(String),
}

/// Runs `id.verify` jobs.
#[derive(Debug, Clone)]
pub struct IdVerifyHandler {
    connector: IdConnector,
    client: reqwest::Client,
}

impl IdVerifyHandler {
    pub fn new(connector: IdConnector) -> Result<IdVerifyHandler, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(connector.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(IdVerifyHandler { connector, client })
    }

    fn request(&self, message_id: &str, national_id: &str) -> Value {
        let now = timestamp(Utc::now());
        json!({
            "header": {
                "version": VERSION,
                "message_id": message_id,
                "message_ts": now,
                "action": "search",
                "sender_id": self.connector.sender_id,
                "total_count": 1,
                "is_msg_encrypted": false,
            },
            "message": {
                "transaction_id": message_id,
                "search_request": [{
                    "reference_id": message_id,
                    "timestamp": now,
                    "search_criteria": {
                        "version": VERSION,
                        "reg_event_type": "REGISTER",
                        "query_type": "idtype-value",
                        "query": {"type": ID_NATIONAL, "value": national_id},
                    },
                }],
            },
        })
    }

    async fn ask(&self, message_id: &str, national_id: &str) -> (Asked, String) {
        let url = self.connector.search_url();
        let res = match self
            .client
            .post(&url)
            .json(&self.request(message_id, national_id))
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return (Asked::Retry(format!("POST {url}: {e}")), String::new()),
        };
        let status = res.status();
        if !status.is_success() {
            let msg = format!("POST {url}: HTTP {status}");
            let transient = status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT;
            return if transient {
                (Asked::Retry(msg), String::new())
            } else {
                (Asked::Refused(msg), String::new())
            };
        }
        match res.json::<Value>().await {
            Ok(body) => read_answer(&body),
            Err(e) => (
                Asked::Retry(format!("POST {url}: answer: {e}")),
                String::new(),
            ),
        }
    }
}

/// The first search response of an answer, and the answering system's sender id.
fn read_answer(body: &Value) -> (Asked, String) {
    let system = body["header"]["sender_id"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    let item = &body["message"]["search_response"][0];
    if item["status"] != "succ" {
        let why = format!(
            "ID registry refused the search: {} {}",
            item["status_reason_code"]
                .as_str()
                .unwrap_or("(no reason code)"),
            item["status_reason_message"].as_str().unwrap_or("")
        );
        return (Asked::Refused(why), system);
    }
    match item["data"]["reg_records"].get(0) {
        Some(r) => (Asked::Found(IdRecord::from_dci(r)), system),
        None => (Asked::NotFound, system),
    }
}

#[async_trait::async_trait]
impl JobHandler for IdVerifyHandler {
    fn kind(&self) -> &'static str {
        IdVerifyJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<(), JobError> {
        let job: IdVerifyJob = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", IdVerifyJob::KIND)))?;
        let store = &ctx.store;
        let person = store
            .registry()
            .person(&AreaScope::national(), job.person_id)
            .await
            .map_err(JobError::retry)?;
        // Gone, dead or without a number since the sweep: nothing to verify.
        let Some(person) = person.filter(|p| p.person.died_on.is_none()) else {
            return Ok(());
        };
        let Some(nid) = person.person.data.national_id.clone() else {
            return Ok(());
        };
        let system = breaker::system_of(&self.connector.url);
        let breakers = Breakers::global();
        if let Err(wait) = breakers.before_call(CONNECTOR, &system) {
            breaker::count_deferred(CONNECTOR, &system);
            return Err(JobError::Defer {
                after: wait,
                reason: format!("circuit of {system} is open"),
            });
        }
        let message_id = Uuid::now_v7().to_string();
        let (asked, answered_by) = self.ask(&message_id, nid.as_str()).await;
        let (status, discrepancies) = match asked {
            Asked::Found(r) => {
                breakers.success(CONNECTOR, &system);
                let d = compare(&person.person.data, &r);
                let status = if d.is_empty() {
                    CheckStatus::Verified
                } else {
                    CheckStatus::Mismatch
                };
                (status, d)
            }
            Asked::NotFound => {
                breakers.success(CONNECTOR, &system);
                (CheckStatus::NotFound, Vec::new())
            }
            Asked::Retry(msg) => {
                breakers.failure(CONNECTOR, &system);
                if ctx.attempt < ctx.max_attempts {
                    breaker::count_retry(CONNECTOR, &system);
                } else {
                    breaker::count_failed(CONNECTOR, &system);
                }
                return Err(JobError::Retry(msg));
            }
            Asked::Refused(msg) => {
                breaker::count_failed(CONNECTOR, &system);
                return Err(JobError::Permanent(msg));
            }
        };
        let check = IdCheck {
            id: Uuid::now_v7(),
            person_id: job.person_id,
            national_id: nid.as_str().to_string(),
            subject: job.subject,
            system: answered_by,
            status,
            discrepancies,
            message_id,
            checked_at: Utc::now(),
            village: person.person.village.clone(),
        };
        store
            .id_checks()
            .record(&check)
            .await
            .map_err(JobError::retry)?;
        audit_disclosure(store, &person.person, &check).await
    }
}

/// Audits that a person's identity was sent to the ID registry, and what came back.
async fn audit_disclosure(
    store: &Store,
    p: &inkingi_domain::registry::Person,
    check: &IdCheck,
) -> Result<(), JobError> {
    let mut rec = AuditRecord::new("system", "person.id_verify", "person");
    rec.subject_id = Some(p.id.to_string());
    rec.area = p.village.clone();
    rec.fields = [
        "national_id",
        "given_name",
        "family_name",
        "sex",
        "birth_date",
    ]
    .map(String::from)
    .to_vec();
    rec.purpose = Some(format!("verification: {}", check.status.as_str()));
    store
        .audit()
        .append(vec![rec])
        .await
        .map(|_| ())
        .map_err(JobError::retry)
}

/// Walks the registry, enqueueing a check for every person who needs one, until `shutdown`.
pub async fn run_sweeper(store: Store, connector: IdConnector, shutdown: CancellationToken) {
    let mut after = Uuid::nil();
    loop {
        let pause = match sweep_once(&store, &connector, after).await {
            Ok(Some(next)) => {
                after = next;
                connector.pause
            }
            Ok(None) => {
                after = Uuid::nil();
                connector.rest
            }
            Err(e) => {
                tracing::warn!(error = %e, "national ID sweep: will try again");
                connector.rest
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// One window of the sweep; the position to go on from, or `None` at the registry's end.
pub async fn sweep_once(
    store: &Store,
    connector: &IdConnector,
    after: Uuid,
) -> inkingi_store::StoreResult<Option<Uuid>> {
    let w = store
        .id_checks()
        .sweep_window(after, connector.window)
        .await?;
    if !w.unchecked.is_empty() {
        let mut uow = store.begin().await?;
        for u in &w.unchecked {
            let job = NewJob::of(&IdVerifyJob {
                person_id: u.person_id,
                subject: u.subject.clone(),
            })?;
            store.jobs().enqueue(&mut uow, job).await?;
        }
        uow.commit().await?;
    }
    Ok(w.next)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use inkingi_domain::registry::Name;

    fn person(given: &str, family: &str, sex: Sex, birth: &str) -> PersonInput {
        PersonInput {
            given_name: Name::parse(given).unwrap(),
            family_name: Name::parse(family).unwrap(),
            sex,
            birth_date: Some(BirthDate::parse(birth).unwrap()),
            national_id: None,
            birth_registration: None,
            refugee_id: None,
            passport: None,
            phones: Vec::new(),
            answers: Default::default(),
        }
    }

    fn held(given: &str, family: &str, sex: &str, birth: &str) -> IdRecord {
        IdRecord {
            given_name: given.into(),
            family_name: family.into(),
            sex: Some(sex.into()),
            birth_date: Some(birth.into()),
        }
    }

    #[test]
    fn same_person_in_other_spelling_and_order_agrees() {
        let p = person("Aline", "Uwase", Sex::Female, "1990");
        assert_eq!(
            compare(&p, &held("ALINE", "Uwase", "female", "1990-04-02")),
            vec![]
        );
        assert_eq!(
            compare(&p, &held("Uwase", "Aline", "F", "1990-04-02T00:00:00")),
            vec![]
        );
    }

    #[test]
    fn each_disagreement_is_named() {
        let p = person("Aline", "Uwase", Sex::Female, "1990-04-02");
        let d = compare(&p, &held("Alinee", "Uwase", "male", "1989-04-02"));
        let fields: Vec<&str> = d.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["given_name", "sex", "birth_date"]);
        assert_eq!(d[0].registry, "Aline");
        assert_eq!(d[0].id_registry, "Alinee");
        let d = compare(&p, &held("Aline", "Uwase", "female", "not a date"));
        assert_eq!(d[0].field, "birth_date");
    }

    #[test]
    fn answers_are_read_as_found_not_found_or_refused() {
        let found = json!({"header": {"sender_id": "nida"}, "message": {"search_response": [
            {"status": "succ", "data": {"reg_records": [
                {"name": {"given_name": "Aline", "surname": "Uwase"}, "sex": "female"}]}}]}});
        let (a, system) = read_answer(&found);
        assert_eq!(system, "nida");
        assert!(matches!(a, Asked::Found(r) if r.given_name == "Aline" && r.birth_date.is_none()));
        let none = json!({"message": {"search_response": [
            {"status": "succ", "data": {"reg_records": []}}]}});
        assert!(matches!(read_answer(&none).0, Asked::NotFound));
        let refused = json!({"message": {"search_response": [
            {"status": "rjct", "status_reason_code": "rjct.search_criteria.invalid"}]}});
        assert!(matches!(read_answer(&refused).0, Asked::Refused(m) if m.contains("criteria")));
    }

    #[test]
    fn one_job_per_person_and_state() {
        let id = Uuid::now_v7();
        let key = |s: &str| {
            IdVerifyJob {
                person_id: id,
                subject: s.into(),
            }
            .idempotency_key()
            .unwrap()
        };
        assert_eq!(key("a|b"), key("a|b"));
        assert_ne!(key("a|b"), key("a|c"));
    }
}
