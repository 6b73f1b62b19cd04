//! A DCI subscriber (a programme's MIS) that receives `notify` messages over HTTP, with faults
//! injected on demand from a seed: a share of 5xx answers, an outage window, latency, and lost
//! acknowledgements (the message is taken but the answer says 503, so the registry sends it
//! again: a duplicate delivery).
//!
//! It keeps the *effects* of what it received: one per distinct event, however often that event
//! is delivered, and checks each subject's events arrive in order (`seq` rising). Its counters
//! are what a test asserts: every event once in effect, none out of order.
//!
//! Routes: `POST …/notify`, `POST …/on-subscribe`, `POST …/on-unsubscribe`, `POST …/on-search`,
//! `GET /stats`. Any path prefix is accepted, so `sender_uri` may be `http://ADDR/any/prefix`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use super::faults::FaultPlan;
use super::faults::{Fault, FaultState};

/// What the subscriber has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Notify requests received.
    pub requests: u64,
    /// Distinct events taken (the effects).
    pub effects: u64,
    /// Events received again after they were taken (dropped: no second effect).
    pub duplicates: u64,
    /// Events of a subject that arrived after a later one of the same subject.
    pub out_of_order: u64,
    /// Requests answered 500 by the fail share.
    pub injected_failures: u64,
    /// Requests answered 503 during the outage.
    pub outage_refusals: u64,
    /// Requests taken whose answer was 503 (lost acknowledgements).
    pub lost_acks: u64,
    /// Other callbacks received (on-subscribe, on-unsubscribe, on-search).
    pub callbacks: u64,
    /// Notify bodies that could not be read.
    pub malformed: u64,
}

#[derive(Debug)]
struct Inner {
    faults: FaultState,
    stats: Stats,
    taken: HashSet<String>,
    last_seq: HashMap<String, i64>,
    callbacks: Vec<Value>,
    /// Event ids taken, in the order taken.
    order: Vec<String>,
}

/// A running simulator.
#[derive(Debug, Clone)]
pub struct Subscriber {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    stop: CancellationToken,
}

impl Subscriber {
    /// Listens on `listen` (port 0 picks one) and serves until [`Subscriber::stop`].
    pub async fn start(listen: SocketAddr, plan: FaultPlan) -> std::io::Result<Subscriber> {
        let faults = FaultState::new(plan)?;
        let inner = Arc::new(Mutex::new(Inner {
            faults,
            stats: Stats::default(),
            taken: HashSet::new(),
            last_seq: HashMap::new(),
            callbacks: Vec::new(),
            order: Vec::new(),
        }));
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/stats", get(stats))
            .route("/{*path}", post(receive))
            .with_state(inner.clone());
        let addr = super::serve(listen, app, &stop, "subscriber simulator").await?;
        Ok(Subscriber { addr, inner, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give as `sender_uri`.
    pub fn sender_uri(&self) -> String {
        format!("http://{}/dci", self.addr)
    }

    pub fn stats(&self) -> Stats {
        self.inner
            .lock()
            .map(|i| i.stats.clone())
            .unwrap_or_default()
    }

    /// The callbacks other than notify, as received.
    pub fn callbacks(&self) -> Vec<Value> {
        self.inner
            .lock()
            .map(|i| i.callbacks.clone())
            .unwrap_or_default()
    }

    /// The event ids taken, in order.
    pub fn taken(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|i| i.order.clone())
            .unwrap_or_default()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn stats(State(inner): State<Arc<Mutex<Inner>>>) -> Response {
    match inner.lock() {
        Ok(i) => Json(i.stats.clone()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(path): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let latency = inner.lock().map(|i| i.faults.latency()).unwrap_or_default();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let Ok(mut i) = inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            i.stats.malformed += 1;
            return (StatusCode::BAD_REQUEST, format!("not JSON: {e}")).into_response();
        }
    };
    if !path.ends_with("notify") {
        i.stats.callbacks += 1;
        i.callbacks.push(body);
        return ack();
    }
    i.stats.requests += 1;
    let requests = i.stats.requests;
    match i.faults.next(requests) {
        Fault::Outage => {
            i.stats.outage_refusals += 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "outage").into_response();
        }
        Fault::Fail => {
            i.stats.injected_failures += 1;
            return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
        }
        Fault::LoseAck => {
            if i.take(&body) {
                i.stats.lost_acks += 1;
                return (StatusCode::SERVICE_UNAVAILABLE, "answer lost").into_response();
            }
        }
        Fault::None => {
            if i.take(&body) {
                return ack();
            }
        }
    }
    i.stats.malformed += 1;
    (
        StatusCode::BAD_REQUEST,
        "no notify_event with event_id, subject_id and seq",
    )
        .into_response()
}

fn ack() -> Response {
    Json(json!({"message": {"ack_status": "ACK", "timestamp": chrono::Utc::now().to_rfc3339()}}))
        .into_response()
}

impl Inner {
    /// Takes every event of a notify message once; false when it holds none that can be read.
    fn take(&mut self, body: &Value) -> bool {
        let Some(events) = body["message"]["notify_event"].as_array() else {
            return false;
        };
        let mut any = false;
        for e in events {
            let (Some(id), Some(subject), Some(seq)) = (
                e["event_id"].as_str(),
                e["subject_id"].as_str(),
                e["seq"].as_i64(),
            ) else {
                continue;
            };
            any = true;
            let key = format!("{}:{id}", e["subscription_code"].as_str().unwrap_or(""));
            if !self.taken.insert(key) {
                self.stats.duplicates += 1;
                continue;
            }
            let chain = format!(
                "{}:{subject}",
                e["subscription_code"].as_str().unwrap_or("")
            );
            let last = self.last_seq.entry(chain).or_insert(i64::MIN);
            if seq < *last {
                self.stats.out_of_order += 1;
            }
            *last = (*last).max(seq);
            self.stats.effects += 1;
            self.order.push(id.to_string());
        }
        any
    }
}
