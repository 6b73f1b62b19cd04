//! A civil registration (CRVS) registry speaking DCI: it takes `subscribe` (answering `ACK`,
//! then POSTing `on-subscribe` to the subscriber's `sender_uri`), keeps its subscribers, and
//! notifies each of them of live births and deaths (`sender_uri` + `/notify`), on demand
//! (`POST /admin/emit {"births": N, "deaths": N}`) or on a schedule. It also answers
//! `sync/search` by identifier (`UIN` of its people, `BRN` of the births, `DRN` of the deaths
//! it registered), for reconciliation.
//!
//! Mothers and the deceased are drawn, from the seed, among its people (a members CSV: what
//! `inkingi export` writes, so events match real registry persons): most are named with their
//! exact national ID; a share with a noisy name and no ID (a letter doubled), a share are
//! people the registry does not know — so the receiver's linkage has certain, uncertain and
//! missing matches to tell apart. `GET /admin/events` lists what was emitted and how.
//!
//! Faults: the shared [`FaultPlan`] on its DCI endpoints (downtime, 5xx share, latency), and
//! on its deliveries duplicates (a share of messages sent twice, under the same message id)
//! and out-of-order delivery (a share of neighbouring messages swapped). A delivery that is
//! not acknowledged with 2xx is sent again with backoff, as a CRVS would.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Datelike, NaiveDate, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::faults::{Fault, FaultPlan, FaultState};
use super::national_id::IdPerson;
use crate::crvs::ID_DEATH_REGISTRATION;
use crate::dci::envelope::{timestamp, Ack, CallbackHeader, Envelope, VERSION};
use crate::dci::records::{ID_BIRTH_REGISTRATION, ID_NATIONAL};

/// Our DCI sender id.
pub const SENDER_ID: &str = "crvs-simulator";

/// Names of people the registry does not know, and of newborns.
const GIVEN: &[&str] = &[
    "Keza",
    "Ineza",
    "Gisa",
    "Shema",
    "Teta",
    "Mugisha",
    "Iradukunda",
    "Uwase",
    "Ishimwe",
    "Cyusa",
    "Kamikazi",
    "Ngabo",
];
const FAMILY: &[&str] = &[
    "Nyirahabimana",
    "Mukeshimana",
    "Habimana",
    "Niyonsaba",
    "Uwimana",
    "Hakizimana",
];

/// How the simulator is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct CrvsPlan {
    /// Faults of its DCI endpoints; the seed also draws the events.
    pub faults: FaultPlan,
    /// Share of deliveries sent twice (0 to 1).
    pub duplicate_share: f64,
    /// Share of deliveries swapped with the next one (0 to 1).
    pub reorder_share: f64,
    /// Share of events naming the person with a noisy name and no ID (0 to 1).
    pub noisy_share: f64,
    /// Share of events naming a person unknown to the registry (0 to 1).
    pub unknown_share: f64,
    /// Bearer token sent with callbacks (Inkingi's API token for the CRVS).
    pub token: Option<String>,
    /// Emit one event (births and deaths in turn) this often; none when `None`.
    pub every: Option<Duration>,
    /// Attempts per delivery before giving it up.
    pub max_attempts: u32,
}

impl Default for CrvsPlan {
    fn default() -> Self {
        CrvsPlan {
            faults: FaultPlan::default(),
            duplicate_share: 0.0,
            reorder_share: 0.0,
            noisy_share: 0.2,
            unknown_share: 0.1,
            token: None,
            every: None,
            max_attempts: 30,
        }
    }
}

impl CrvsPlan {
    fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("duplicate share", self.duplicate_share),
            ("reorder share", self.reorder_share),
            ("noisy share", self.noisy_share),
            ("unknown share", self.unknown_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} {v}: expected a number from 0 to 1"));
            }
        }
        if self.noisy_share + self.unknown_share > 1.0 {
            return Err("noisy share + unknown share: more than 1".into());
        }
        self.faults.check()
    }
}

/// What the simulator has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CrvsStats {
    /// Requests to its DCI endpoints.
    pub requests: u64,
    pub subscribes: u64,
    pub searches: u64,
    pub injected_failures: u64,
    pub outage_refusals: u64,
    pub malformed: u64,
    /// Events registered (and queued to every subscriber).
    pub events: u64,
    /// Delivery attempts, and those answered 2xx.
    pub attempts: u64,
    pub delivered: u64,
    /// Deliveries given up after `max_attempts`.
    pub given_up: u64,
    pub duplicates_sent: u64,
    pub reordered: u64,
}

/// An event as registered, with how its person was named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emitted {
    pub event_id: String,
    /// `live_birth` or `death`.
    pub event_type: String,
    pub subject: String,
    pub seq: i64,
    /// `exact` (national ID), `noisy` (a name variant, no ID) or `unknown` (not a registry
    /// person).
    pub variant: String,
    /// The national ID of the mother or deceased drawn from the people (none when unknown).
    pub national_id: Option<String>,
    /// The `notify_event` item.
    pub item: Value,
}

#[derive(Debug, Clone)]
struct Subscriber {
    code: String,
    sender_id: String,
    notify_url: String,
}

#[derive(Debug)]
struct Inner {
    faults: FaultState,
    rng: StdRng,
    stats: CrvsStats,
    subscribers: Vec<Subscriber>,
    seqs: HashMap<String, i64>,
    dead: HashSet<usize>,
    emitted: Vec<Emitted>,
    turn: u64,
}

#[derive(Debug)]
struct Shared {
    people: Vec<IdPerson>,
    plan: CrvsPlan,
    client: reqwest::Client,
    inner: Mutex<Inner>,
}

/// A running simulator.
#[derive(Debug, Clone)]
pub struct CrvsRegistry {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
}

impl CrvsRegistry {
    /// Listens on `listen` (port 0 picks one) and serves until [`CrvsRegistry::stop`].
    pub async fn start(
        listen: SocketAddr,
        plan: CrvsPlan,
        people: Vec<IdPerson>,
    ) -> std::io::Result<CrvsRegistry> {
        plan.check().map_err(invalid)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(invalid)?;
        let shared = Arc::new(Shared {
            people,
            client,
            inner: Mutex::new(Inner {
                faults: FaultState::new(plan.faults.clone())?,
                rng: StdRng::seed_from_u64(plan.faults.seed ^ 0x00c0_ffee),
                stats: CrvsStats::default(),
                subscribers: Vec::new(),
                seqs: HashMap::new(),
                dead: HashSet::new(),
                emitted: Vec::new(),
                turn: 0,
            }),
            plan,
        });
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/stats", get(stats))
            .route("/admin/emit", post(emit))
            .route("/admin/events", get(events))
            .route("/admin/forget", post(forget))
            .route("/registry/subscribe", post(subscribe))
            .route("/registry/sync/search", post(search))
            .with_state(shared.clone());
        let addr = super::serve(listen, app, &stop, "CRVS simulator").await?;
        if let Some(every) = shared.plan.every {
            tokio::spawn(schedule(shared.clone(), every, stop.clone()));
        }
        Ok(CrvsRegistry { addr, shared, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a client is configured with (`…/registry`).
    pub fn url(&self) -> String {
        format!("http://{}/registry", self.addr)
    }

    pub fn people(&self) -> usize {
        self.shared.people.len()
    }

    pub fn subscribers(&self) -> usize {
        self.shared
            .inner
            .lock()
            .map(|i| i.subscribers.len())
            .unwrap_or(0)
    }

    pub fn stats(&self) -> CrvsStats {
        self.shared
            .inner
            .lock()
            .map(|i| i.stats.clone())
            .unwrap_or_default()
    }

    pub fn emitted(&self) -> Vec<Emitted> {
        self.shared
            .inner
            .lock()
            .map(|i| i.emitted.clone())
            .unwrap_or_default()
    }

    /// Registers births and deaths and delivers them to every subscriber (in the background).
    pub fn emit(&self, births: u32, deaths: u32) -> Vec<Emitted> {
        emit_now(&self.shared, births, deaths)
    }

    /// Forgets every subscriber, as a CRVS restarted without its subscriptions would.
    pub fn forget(&self) {
        if let Ok(mut i) = self.shared.inner.lock() {
            i.subscribers.clear();
        }
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn schedule(shared: Arc<Shared>, every: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let birth = shared
            .inner
            .lock()
            .map(|mut i| {
                i.turn += 1;
                i.turn % 2 == 1
            })
            .unwrap_or(true);
        emit_now(&shared, u32::from(birth), u32::from(!birth));
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    match shared.inner.lock() {
        Ok(i) => Json(i.stats.clone()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn events(State(shared): State<Arc<Shared>>) -> Response {
    match shared.inner.lock() {
        Ok(i) => Json(json!({"events": i.emitted})).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn forget(State(shared): State<Arc<Shared>>) -> Response {
    if let Ok(mut i) = shared.inner.lock() {
        i.subscribers.clear();
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitRequest {
    #[serde(default)]
    births: u32,
    #[serde(default)]
    deaths: u32,
}

async fn emit(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let req: EmitRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"births\": N, \"deaths\": N}}: {e}"),
            )
                .into_response()
        }
    };
    if req.births + req.deaths > 10_000 {
        return (StatusCode::BAD_REQUEST, "at most 10000 events at once").into_response();
    }
    let out = emit_now(&shared, req.births, req.deaths);
    Json(json!({"events": out})).into_response()
}

/// The fault for a DCI request (after the latency); `None` when it may be served.
async fn fault_of(shared: &Shared) -> Option<Response> {
    let (fault, latency) = {
        let mut i = shared.inner.lock().ok()?;
        i.stats.requests += 1;
        let n = i.stats.requests;
        (i.faults.next(n), i.faults.latency())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut i = shared.inner.lock().ok()?;
    match fault {
        Fault::Outage => {
            i.stats.outage_refusals += 1;
            Some((StatusCode::SERVICE_UNAVAILABLE, "outage").into_response())
        }
        Fault::Fail | Fault::LoseAck => {
            i.stats.injected_failures += 1;
            Some((StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response())
        }
        Fault::None => None,
    }
}

fn malformed(shared: &Shared, msg: String) -> Response {
    if let Ok(mut i) = shared.inner.lock() {
        i.stats.malformed += 1;
    }
    let now = Utc::now();
    let ack = Ack::err(
        crate::dci::envelope::ErrorCode::RequestBad,
        msg,
        &uuid::Uuid::now_v7().to_string(),
        now,
    );
    (StatusCode::BAD_REQUEST, Json(ack)).into_response()
}

async fn subscribe(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    if let Some(r) = fault_of(&shared).await {
        return r;
    }
    let env: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return malformed(&shared, format!("envelope: {e}")),
    };
    let sender_uri = env
        .header
        .sender_uri
        .clone()
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    if !(sender_uri.starts_with("http://") || sender_uri.starts_with("https://")) {
        return malformed(
            &shared,
            "header.sender_uri: an http(s) URL is required".into(),
        );
    }
    let Some(items) = env.message["subscribe_request"].as_array() else {
        return malformed(
            &shared,
            "message.subscribe_request: expected an array".into(),
        );
    };
    let now = Utc::now();
    let notify_url = format!("{sender_uri}/notify");
    let code = {
        let Ok(mut i) = shared.inner.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        i.stats.subscribes += 1;
        let sender = env.header.sender_id.clone();
        // One subscription per subscriber and callback address: subscribing again is a no-op.
        let existing = i
            .subscribers
            .iter()
            .find(|s| s.sender_id == sender && s.notify_url == notify_url)
            .map(|s| s.code.clone());
        match existing {
            Some(code) => code,
            None => {
                let code = uuid::Uuid::now_v7().to_string();
                i.subscribers.push(Subscriber {
                    code: code.clone(),
                    sender_id: sender,
                    notify_url,
                });
                code
            }
        }
    };
    let responses: Vec<Value> = items
        .iter()
        .map(|it| {
            json!({"reference_id": it["reference_id"], "timestamp": timestamp(now),
                   "status": "succ", "subscription_code": code})
        })
        .collect();
    let correlation_id = uuid::Uuid::now_v7().to_string();
    let mut header = CallbackHeader::answering(&env.header, "on-subscribe", SENDER_ID, now);
    header.completed_count = responses.len() as u64;
    let answer = json!({
        "header": header,
        "message": {"transaction_id": env.message["transaction_id"],
                    "correlation_id": correlation_id, "subscribe_response": responses},
    });
    let s = shared.clone();
    let url = format!("{sender_uri}/on-subscribe");
    tokio::spawn(async move { deliver(&s, &url, answer).await });
    (
        StatusCode::ACCEPTED,
        Json(Ack::accepted(&correlation_id, now)),
    )
        .into_response()
}

async fn search(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    if let Some(r) = fault_of(&shared).await {
        return r;
    }
    let env: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return malformed(&shared, format!("envelope: {e}")),
    };
    let Some(items) = env.message["search_request"].as_array() else {
        return malformed(&shared, "message.search_request: expected an array".into());
    };
    let now = Utc::now();
    let emitted = match shared.inner.lock() {
        Ok(mut i) => {
            i.stats.searches += 1;
            i.emitted.clone()
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let responses: Vec<Value> = items
        .iter()
        .map(|item| answer_search(&shared.people, &emitted, item, now))
        .collect();
    let mut header = CallbackHeader::answering(&env.header, "search", SENDER_ID, now);
    header.total_count = responses.len() as u64;
    header.completed_count = responses.len() as u64;
    Json(json!({
        "header": header,
        "message": {"transaction_id": env.message["transaction_id"],
                    "correlation_id": uuid::Uuid::now_v7().to_string(),
                    "search_response": responses},
    }))
    .into_response()
}

/// One search answer: people by `UIN`, registered births by `BRN`, deaths by `DRN`.
fn answer_search(
    people: &[IdPerson],
    emitted: &[Emitted],
    item: &Value,
    now: chrono::DateTime<Utc>,
) -> Value {
    let criteria = &item["search_criteria"];
    let kind = criteria["query"]["type"].as_str().unwrap_or("");
    let value = criteria["query"]["value"].as_str().unwrap_or("").trim();
    let mut r = json!({"reference_id": item["reference_id"], "timestamp": timestamp(now)});
    if criteria["query_type"] != "idtype-value" {
        r["status"] = json!("rjct");
        r["status_reason_code"] = json!("rjct.search_criteria.invalid");
        r["status_reason_message"] = json!("search_criteria: only query_type idtype-value");
        return r;
    }
    let records: Vec<Value> = match kind {
        ID_NATIONAL => people
            .iter()
            .filter(|p| p.national_id == value)
            .map(|p| person_record(p, true))
            .collect(),
        ID_BIRTH_REGISTRATION | ID_DEATH_REGISTRATION => emitted
            .iter()
            .map(|e| &e.item["data"]["reg_records"][0])
            .filter(|rec| {
                rec["identifier"].as_array().is_some_and(|ids| {
                    ids.iter()
                        .any(|i| i["identifier_type"] == kind && i["identifier_value"] == value)
                })
            })
            .cloned()
            .collect(),
        _ => {
            r["status"] = json!("rjct");
            r["status_reason_code"] = json!("rjct.search_criteria.invalid");
            r["status_reason_message"] = json!("query.type: UIN, BRN or DRN");
            return r;
        }
    };
    r["status"] = json!("succ");
    r["data"] = json!({"version": VERSION, "reg_type": "ns:org:RegistryType:Civil",
                       "reg_record_type": "Person", "reg_records": records});
    r
}

fn name(given: &str, family: &str) -> Value {
    json!({"@type": "Name", "given_name": given, "surname": family})
}

fn person_record(p: &IdPerson, with_id: bool) -> Value {
    let ids: Vec<Value> = if with_id {
        vec![
            json!({"@type": "Identifier", "identifier_type": ID_NATIONAL,
                    "identifier_value": p.national_id}),
        ]
    } else {
        Vec::new()
    };
    json!({
        "@type": "CRVSPerson",
        "identifier": ids,
        "name": name(&p.given_name, &p.family_name),
        "sex": p.sex,
        "birth_date": p.birth_date,
    })
}

/// A letter doubled: a spelling the registry and the CRVS can both hold.
fn noisy(given: &str) -> String {
    let mut s = given.to_string();
    if let Some(c) = s.chars().last() {
        s.push(c);
    }
    s
}

/// How the mother or deceased is named, and under which subject.
struct Drawn {
    record: Value,
    variant: &'static str,
    national_id: Option<String>,
    subject: String,
    family_name: String,
}

impl Inner {
    fn pick<'a>(
        &mut self,
        people: &'a [IdPerson],
        fit: impl Fn(&IdPerson) -> bool,
    ) -> Option<(usize, &'a IdPerson)> {
        let fits: Vec<usize> = (0..people.len())
            .filter(|i| !self.dead.contains(i) && fit(&people[*i]))
            .collect();
        if fits.is_empty() {
            return None;
        }
        let i = fits[self.rng.random_range(0..fits.len())];
        Some((i, &people[i]))
    }

    /// The person an event names: drawn from `people` (exact or noisy) or invented.
    fn draw(
        &mut self,
        plan: &CrvsPlan,
        people: &[IdPerson],
        fit: impl Fn(&IdPerson) -> bool,
        event_no: u64,
    ) -> (Drawn, Option<usize>) {
        let r: f64 = self.rng.random();
        let picked = if r < plan.unknown_share {
            None
        } else {
            self.pick(people, fit)
        };
        match picked {
            Some((i, p)) => {
                let exact = r >= plan.unknown_share + plan.noisy_share;
                let mut record = person_record(p, exact);
                if !exact {
                    record["name"] = name(&noisy(&p.given_name), &p.family_name);
                }
                let drawn = Drawn {
                    record,
                    variant: if exact { "exact" } else { "noisy" },
                    national_id: Some(p.national_id.clone()),
                    subject: format!("P{i}"),
                    family_name: p.family_name.clone(),
                };
                (drawn, Some(i))
            }
            None => {
                let given = GIVEN[self.rng.random_range(0..GIVEN.len())];
                let family = FAMILY[self.rng.random_range(0..FAMILY.len())];
                let year = self.rng.random_range(1980..2000);
                let record = json!({
                    "@type": "CRVSPerson", "identifier": [], "name": name(given, family),
                    "sex": "female", "birth_date": format!("{year}-0{}-1{}", self.rng.random_range(1..10), self.rng.random_range(0..10)),
                });
                let drawn = Drawn {
                    record,
                    variant: "unknown",
                    national_id: None,
                    subject: format!("X{event_no}"),
                    family_name: family.to_string(),
                };
                (drawn, None)
            }
        }
    }

    fn next_seq(&mut self, subject: &str) -> i64 {
        let s = self.seqs.entry(subject.to_string()).or_insert(0);
        *s += 1;
        *s
    }

    fn days_ago(&mut self, today: NaiveDate, most: i64) -> NaiveDate {
        today - chrono::Duration::days(self.rng.random_range(0..=most))
    }
}

fn birth_year(p: &IdPerson) -> Option<i32> {
    p.birth_date.get(..4).and_then(|y| y.parse().ok())
}

fn item(event_id: &str, kind: &str, subject: &str, seq: i64, record: Value) -> Value {
    json!({
        "reference_id": event_id,
        "timestamp": timestamp(Utc::now()),
        "event_id": event_id,
        "subject_id": subject,
        "seq": seq,
        "data": {"version": VERSION, "reg_type": "ns:org:RegistryType:Civil",
                 "reg_event_type": kind, "reg_record_type": "Person", "reg_records": [record]},
    })
}

/// Registers the events, then delivers them to every subscriber in the background.
fn emit_now(shared: &Arc<Shared>, births: u32, deaths: u32) -> Vec<Emitted> {
    let Ok(mut i) = shared.inner.lock() else {
        return Vec::new();
    };
    let today = Utc::now().date_naive();
    let year = today.year();
    let plan = &shared.plan;
    let people = &shared.people;
    let mut out = Vec::new();
    let mut mothers = Vec::new();
    for _ in 0..births {
        let n = i.stats.events + 1;
        let fertile = |p: &IdPerson| {
            p.sex == "female" && birth_year(p).is_some_and(|y| (15..=49).contains(&(year - y)))
        };
        let (mother, idx) = i.draw(plan, people, fertile, n);
        if let Some(idx) = idx {
            mothers.push(idx);
        }
        let given = GIVEN[i.rng.random_range(0..GIVEN.len())];
        let sex = if i.rng.random_bool(0.5) {
            "female"
        } else {
            "male"
        };
        let born = i.days_ago(today, 20);
        let event_id = format!("B-{}-{n}", plan.faults.seed);
        let mut mother_rec = mother.record.clone();
        mother_rec["relationship"] = json!("mother");
        let child = json!({
            "@type": "CRVSPerson",
            "identifier": [{"@type": "Identifier", "identifier_type": ID_BIRTH_REGISTRATION,
                            "identifier_value": format!("BRN{:04}{n:08}", plan.faults.seed % 10_000)}],
            "name": name(given, &mother.family_name),
            "sex": sex,
            "birth_date": born.to_string(),
            "parents": [mother_rec],
        });
        let seq = i.next_seq(&mother.subject);
        out.push(Emitted {
            item: item(&event_id, "live_birth", &mother.subject, seq, child),
            event_id,
            event_type: "live_birth".into(),
            subject: mother.subject,
            seq,
            variant: mother.variant.into(),
            national_id: mother.national_id,
        });
        i.stats.events += 1;
    }
    for d in 0..deaths {
        let n = i.stats.events + 1;
        // Every other death, when a mother of this batch is still alive, is hers: her events
        // then must be processed in order (the birth first).
        let prefer = (d % 2 == 0).then(|| mothers.pop()).flatten();
        let (person, idx) = match prefer {
            Some(m) if !i.dead.contains(&m) => {
                i.draw(plan, people, |p| std::ptr::eq(p, &people[m]), n)
            }
            _ => i.draw(plan, people, |_| true, n),
        };
        if let Some(idx) = idx {
            i.dead.insert(idx);
        }
        let died = i.days_ago(today, 10);
        let mut record = person.record.clone();
        record["death_date"] = json!(died.to_string());
        if let Some(ids) = record["identifier"].as_array_mut() {
            ids.push(json!({"@type": "Identifier", "identifier_type": ID_DEATH_REGISTRATION,
                            "identifier_value": format!("DRN{:04}{n:08}", plan.faults.seed % 10_000)}));
        }
        let event_id = format!("D-{}-{n}", plan.faults.seed);
        let seq = i.next_seq(&person.subject);
        out.push(Emitted {
            item: item(&event_id, "death", &person.subject, seq, record),
            event_id,
            event_type: "death".into(),
            subject: person.subject,
            seq,
            variant: person.variant.into(),
            national_id: person.national_id,
        });
        i.stats.events += 1;
    }
    i.emitted.extend(out.iter().cloned());
    let subscribers = i.subscribers.clone();
    for sub in subscribers {
        let mut queue: Vec<Value> = out.iter().map(|e| notify_body(&sub, &e.item)).collect();
        shuffle_and_duplicate(&mut i, plan, &mut queue);
        let s = shared.clone();
        tokio::spawn(async move {
            for body in queue {
                deliver(&s, &sub.notify_url, body).await;
            }
        });
    }
    out
}

/// Swaps a share of neighbouring messages and sends a share twice (the copy right after, or
/// after the next message).
fn shuffle_and_duplicate(i: &mut Inner, plan: &CrvsPlan, queue: &mut Vec<Value>) {
    let mut k = 0;
    while k + 1 < queue.len() {
        if plan.reorder_share > 0.0 && i.rng.random_bool(plan.reorder_share) {
            queue.swap(k, k + 1);
            i.stats.reordered += 1;
            k += 2;
        } else {
            k += 1;
        }
    }
    let mut out = Vec::with_capacity(queue.len());
    let mut later: Option<Value> = None;
    for body in queue.drain(..) {
        let copy = (plan.duplicate_share > 0.0 && i.rng.random_bool(plan.duplicate_share))
            .then(|| body.clone());
        out.push(body);
        if let Some(l) = later.take() {
            out.push(l);
        }
        if let Some(c) = copy {
            i.stats.duplicates_sent += 1;
            later = Some(c);
        }
    }
    out.extend(later);
    *queue = out;
}

fn notify_body(sub: &Subscriber, item: &Value) -> Value {
    let mut item = item.clone();
    item["subscription_code"] = json!(sub.code);
    json!({
        "signature": "",
        "header": {
            "version": VERSION,
            "message_id": uuid::Uuid::now_v7().to_string(),
            "message_ts": timestamp(Utc::now()),
            "action": "notify",
            "status": "succ",
            "total_count": 1,
            "completed_count": 1,
            "sender_id": SENDER_ID,
            "receiver_id": sub.sender_id,
            "is_msg_encrypted": false,
        },
        "message": {"transaction_id": sub.code, "notify_event": [item]},
    })
}

/// POSTs `body` until it is acknowledged with 2xx, with backoff, at most `max_attempts` times.
async fn deliver(shared: &Shared, url: &str, mut body: Value) {
    let mut wait = Duration::from_millis(50);
    for _ in 0..shared.plan.max_attempts.max(1) {
        body["header"]["message_ts"] = json!(timestamp(Utc::now()));
        let mut req = shared.client.post(url).json(&body);
        if let Some(t) = &shared.plan.token {
            req = req.bearer_auth(t);
        }
        let ok = match req.send().await {
            Ok(res) => res.status().is_success(),
            Err(_) => false,
        };
        if let Ok(mut i) = shared.inner.lock() {
            i.stats.attempts += 1;
            if ok {
                i.stats.delivered += 1;
            }
        }
        if ok {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
    if let Ok(mut i) = shared.inner.lock() {
        i.stats.given_up += 1;
    }
    tracing::warn!(%url, "CRVS simulator gave up a delivery");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn inner(seed: u64) -> Inner {
        Inner {
            faults: FaultState::new(FaultPlan::default()).unwrap(),
            rng: StdRng::seed_from_u64(seed),
            stats: CrvsStats::default(),
            subscribers: Vec::new(),
            seqs: HashMap::new(),
            dead: HashSet::new(),
            emitted: Vec::new(),
            turn: 0,
        }
    }

    #[test]
    fn duplicates_and_swaps_keep_every_message() {
        let plan = CrvsPlan {
            duplicate_share: 0.3,
            reorder_share: 0.3,
            ..Default::default()
        };
        let mut i = inner(4);
        let mut q: Vec<Value> = (0..200).map(|n| json!(n)).collect();
        shuffle_and_duplicate(&mut i, &plan, &mut q);
        let distinct: HashSet<i64> = q.iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(distinct.len(), 200, "nothing lost");
        assert_eq!(q.len() as u64, 200 + i.stats.duplicates_sent);
        assert!(
            i.stats.duplicates_sent > 20 && i.stats.reordered > 20,
            "{:?}",
            i.stats
        );
        let in_order = q.windows(2).all(|w| w[0].as_i64() <= w[1].as_i64());
        assert!(!in_order);
    }

    #[test]
    fn people_are_drawn_exact_noisy_or_unknown_by_share() {
        let people: Vec<IdPerson> = (0..50)
            .map(|n| IdPerson {
                national_id: format!("11990700000{n:05}"),
                given_name: "Aline".into(),
                family_name: "Uwase".into(),
                sex: "female".into(),
                birth_date: "1990-01-01".into(),
            })
            .collect();
        let plan = CrvsPlan {
            noisy_share: 0.3,
            unknown_share: 0.2,
            ..Default::default()
        };
        let mut i = inner(9);
        let mut count: HashMap<&str, u32> = HashMap::new();
        for n in 0..1000 {
            let (d, idx) = i.draw(&plan, &people, |_| true, n);
            *count.entry(d.variant).or_default() += 1;
            match d.variant {
                "exact" => assert_eq!(
                    d.record["identifier"][0]["identifier_value"],
                    json!(d.national_id)
                ),
                "noisy" => {
                    assert_eq!(d.record["identifier"], json!([]));
                    assert_eq!(d.record["name"]["given_name"], "Alinee");
                }
                _ => assert!(idx.is_none() && d.national_id.is_none()),
            }
        }
        assert!((150..250).contains(&count["unknown"]), "{count:?}");
        assert!((230..370).contains(&count["noisy"]), "{count:?}");
    }
}
