//! A national ID registry (Rwanda's NIDA in production) speaking DCI's synchronous search:
//! `POST /registry/sync/search` with `idtype-value` queries on `UIN` answers each request with
//! the person the registry holds under that number (`CRVS_Person`-shaped: identifier, name,
//! sex, birth date), or with no record.
//!
//! Its people come from a members CSV (what `inkingi generate` or `inkingi export` writes), so
//! a demo registry and its ID registry hold the same people. A seeded share of them is held
//! with a discrepancy — birth year off by one, a given name spelled differently, the other
//! sex — the kinds of disagreement verification exists to find. Faults (5xx share, outage,
//! latency, lost answers) come from the shared [`FaultPlan`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::faults::{Fault, FaultPlan, FaultState};
use crate::dci::envelope::{timestamp, CallbackHeader, Envelope};
use crate::dci::records::ID_NATIONAL;

/// Our DCI sender id in answers.
const SENDER_ID: &str = "id-registry-simulator";

/// A person as the ID registry holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdPerson {
    pub national_id: String,
    pub given_name: String,
    pub family_name: String,
    /// `female` or `male`, as DCI writes it.
    pub sex: String,
    /// As known: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: String,
}

/// How the simulator is set up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdPlan {
    pub faults: FaultPlan,
    /// Share of people held with one discrepancy, 0 to 1 (chosen from the seed and the ID).
    pub mismatch_share: f64,
}

/// What the simulator has answered so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdStats {
    pub requests: u64,
    pub found: u64,
    pub not_found: u64,
    pub injected_failures: u64,
    pub outage_refusals: u64,
    pub lost_answers: u64,
    pub malformed: u64,
}

#[derive(Debug)]
struct Inner {
    faults: FaultState,
    stats: IdStats,
}

#[derive(Debug)]
struct Shared {
    people: HashMap<String, IdPerson>,
    inner: Mutex<Inner>,
}

/// A running simulator.
#[derive(Debug, Clone)]
pub struct IdRegistry {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// Reads people from a members CSV with a header naming `national_id`, `given_name`,
/// `family_name`, `sex` (F/M) and `birth_date`; rows without a national ID are skipped, and
/// the first row of a number wins (injected duplicates repeat it).
pub fn load_people(path: &Path) -> Result<Vec<IdPerson>, String> {
    let mut r = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers = r
        .headers()
        .map_err(|e| format!("{}: header: {e}", path.display()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| format!("{}: no '{name}' column", path.display()))
    };
    let (nid, given, family, sex, birth) = (
        col("national_id")?,
        col("given_name")?,
        col("family_name")?,
        col("sex")?,
        col("birth_date")?,
    );
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}: row {}: {e}", path.display(), i + 2))?;
        let field = |c: usize| rec.get(c).unwrap_or("").trim().to_string();
        let national_id = field(nid);
        if national_id.is_empty() {
            continue;
        }
        let sex = match field(sex).as_str() {
            "F" | "female" => "female",
            "M" | "male" => "male",
            other => {
                return Err(format!(
                    "{}: row {}, column sex: '{other}' is not F or M",
                    path.display(),
                    i + 2
                ))
            }
        };
        out.push(IdPerson {
            national_id,
            given_name: field(given),
            family_name: field(family),
            sex: sex.to_string(),
            birth_date: field(birth),
        });
    }
    Ok(out)
}

/// A stable per-person draw from the seed and the ID, the same in every run: FNV-1a, then
/// the MurmurHash3 finaliser, because FNV alone leaves the low bits of similar numbers
/// correlated (IDs differ only in their last digits).
fn draw(seed: u64, id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The person as held, with a discrepancy for a `share` of IDs.
fn as_held(mut p: IdPerson, seed: u64, share: f64) -> IdPerson {
    let h = draw(seed, &p.national_id);
    // The low 32 bits decide whether, the next bits which discrepancy.
    if (h & 0xffff_ffff) as f64 / 4_294_967_296.0 >= share {
        return p;
    }
    match (h >> 32) % 3 {
        0 => {
            if let Some(year) = p.birth_date.get(..4).and_then(|y| y.parse::<i32>().ok()) {
                p.birth_date = format!("{}{}", year - 1, &p.birth_date[4..]);
            }
        }
        1 => {
            // One letter doubled: a spelling the registry and the survey can both hold.
            if let Some(c) = p.given_name.chars().last() {
                p.given_name.push(c);
            }
        }
        _ => p.sex = if p.sex == "female" { "male" } else { "female" }.into(),
    }
    p
}

impl IdRegistry {
    /// Listens on `listen` (port 0 picks one) and serves until [`IdRegistry::stop`].
    pub async fn start(
        listen: SocketAddr,
        plan: IdPlan,
        people: Vec<IdPerson>,
    ) -> std::io::Result<IdRegistry> {
        if !(0.0..=1.0).contains(&plan.mismatch_share) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "mismatch share {}: expected a number from 0 to 1",
                    plan.mismatch_share
                ),
            ));
        }
        let seed = plan.faults.seed;
        let mut held = HashMap::with_capacity(people.len());
        for p in people {
            let p = as_held(p, seed, plan.mismatch_share);
            held.entry(p.national_id.clone()).or_insert(p);
        }
        let shared = Arc::new(Shared {
            people: held,
            inner: Mutex::new(Inner {
                faults: FaultState::new(plan.faults)?,
                stats: IdStats::default(),
            }),
        });
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/stats", get(stats))
            .route("/registry/sync/search", post(search))
            .with_state(shared.clone());
        let addr = super::serve(listen, app, &stop, "ID registry simulator").await?;
        Ok(IdRegistry { addr, shared, stop })
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

    /// The person held under an ID, as the simulator would answer.
    pub fn held(&self, national_id: &str) -> Option<IdPerson> {
        self.shared.people.get(national_id).cloned()
    }

    pub fn stats(&self) -> IdStats {
        self.shared
            .inner
            .lock()
            .map(|i| i.stats.clone())
            .unwrap_or_default()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    match shared.inner.lock() {
        Ok(i) => Json(i.stats.clone()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn search(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let fault = {
        let Ok(mut i) = shared.inner.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        i.stats.requests += 1;
        let n = i.stats.requests;
        (i.faults.next(n), i.faults.latency())
    };
    if !fault.1.is_zero() {
        tokio::time::sleep(fault.1).await;
    }
    let count = |f: fn(&mut IdStats)| {
        if let Ok(mut i) = shared.inner.lock() {
            f(&mut i.stats);
        }
    };
    match fault.0 {
        Fault::Outage => {
            count(|s| s.outage_refusals += 1);
            return (StatusCode::SERVICE_UNAVAILABLE, "outage").into_response();
        }
        Fault::Fail => {
            count(|s| s.injected_failures += 1);
            return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
        }
        Fault::LoseAck => {
            // A search changes nothing: a lost answer only makes the caller ask again.
            count(|s| s.lost_answers += 1);
            return (StatusCode::SERVICE_UNAVAILABLE, "answer lost").into_response();
        }
        Fault::None => {}
    }
    let env: Envelope = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            count(|s| s.malformed += 1);
            return (StatusCode::BAD_REQUEST, format!("not a DCI envelope: {e}")).into_response();
        }
    };
    let Some(items) = env.message["search_request"].as_array() else {
        count(|s| s.malformed += 1);
        return (
            StatusCode::BAD_REQUEST,
            "message.search_request: expected an array",
        )
            .into_response();
    };
    let now = chrono::Utc::now();
    let mut found = 0;
    let mut responses = Vec::with_capacity(items.len());
    for item in items {
        let (resp, hit) = answer_item(&shared.people, item, now);
        found += u64::from(hit);
        responses.push(resp);
    }
    let asked = responses.len() as u64;
    count_found(&shared, found, asked);
    let mut header = CallbackHeader::answering(&env.header, "search", SENDER_ID, now);
    header.total_count = asked;
    header.completed_count = asked;
    Json(json!({
        "header": header,
        "message": {
            "transaction_id": env.message["transaction_id"],
            "correlation_id": uuid::Uuid::now_v7().to_string(),
            "search_response": responses,
        }
    }))
    .into_response()
}

fn count_found(shared: &Shared, found: u64, asked: u64) {
    if let Ok(mut i) = shared.inner.lock() {
        i.stats.found += found;
        i.stats.not_found += asked - found;
    }
}

/// One `search_response` item, and whether a person was found.
fn answer_item(
    people: &HashMap<String, IdPerson>,
    item: &Value,
    now: chrono::DateTime<chrono::Utc>,
) -> (Value, bool) {
    let criteria = &item["search_criteria"];
    let base = |status: &str| {
        json!({
            "reference_id": item["reference_id"],
            "timestamp": timestamp(now),
            "status": status,
        })
    };
    let query = &criteria["query"];
    if criteria["query_type"] != "idtype-value" || query["type"] != ID_NATIONAL {
        let mut r = base("rjct");
        r["status_reason_code"] = json!("rjct.search_criteria.invalid");
        r["status_reason_message"] = json!(format!(
            "search_criteria: only query_type idtype-value with query.type {ID_NATIONAL} is served"
        ));
        return (r, false);
    }
    let person = query["value"].as_str().and_then(|v| people.get(v.trim()));
    let records: Vec<Value> = person.iter().map(|p| record(p)).collect();
    let mut r = base("succ");
    r["data"] = json!({
        "version": "1.0.0",
        "reg_type": "ID",
        "reg_record_type": "Person",
        "reg_records": records,
    });
    (r, person.is_some())
}

fn record(p: &IdPerson) -> Value {
    json!({
        "@type": "Person",
        "identifier": [{
            "@type": "Identifier",
            "identifier_type": ID_NATIONAL,
            "identifier_value": p.national_id,
        }],
        "name": {"@type": "Name", "given_name": p.given_name, "surname": p.family_name},
        "sex": p.sex,
        "birth_date": p.birth_date,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn person(id: &str) -> IdPerson {
        IdPerson {
            national_id: id.into(),
            given_name: "Aline".into(),
            family_name: "Uwase".into(),
            sex: "female".into(),
            birth_date: "1990-04-02".into(),
        }
    }

    #[test]
    fn discrepancies_follow_the_share_and_the_seed() {
        let ids: Vec<String> = (0..4000).map(|i| format!("119908{i:010}")).collect();
        let changed = |seed, share| {
            ids.iter()
                .filter(|id| as_held(person(id), seed, share) != person(id))
                .count()
        };
        assert_eq!(changed(1, 0.0), 0);
        assert_eq!(changed(1, 1.0), 4000);
        let tenth = changed(7, 0.1);
        assert!((300..500).contains(&tenth), "about 10 % changed: {tenth}");
        assert_eq!(tenth, changed(7, 0.1), "the same seed, the same people");
    }

    #[test]
    fn answers_only_national_id_queries() {
        let people: HashMap<String, IdPerson> =
            [("1199080000000001".to_string(), person("1199080000000001"))].into();
        let now = chrono::Utc::now();
        let ask = |t: &str, v: &str| {
            json!({"reference_id": "r1", "search_criteria": {
                "query_type": "idtype-value", "query": {"type": t, "value": v}}})
        };
        let (hit, found) = answer_item(&people, &ask("UIN", "1199080000000001"), now);
        assert!(found);
        assert_eq!(hit["data"]["reg_records"][0]["name"]["given_name"], "Aline");
        let (miss, found) = answer_item(&people, &ask("UIN", "1199080000000002"), now);
        assert!(!found);
        assert_eq!(miss["status"], "succ");
        assert_eq!(miss["data"]["reg_records"], json!([]));
        let (bad, _) = answer_item(&people, &ask("BRN", "1"), now);
        assert_eq!(bad["status"], "rjct");
        assert_eq!(bad["status_reason_code"], "rjct.search_criteria.invalid");
    }
}
