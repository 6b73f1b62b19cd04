//! An SMS gateway speaking both protocols Inkingi sends through:
//! - Kannel's `GET /cgi-bin/sendsms` (`username`, `password`, `to`, `text`, `from`, `charset`,
//!   `coding`, `dlr-mask`, `dlr-url`): `202 0: Accepted for delivery`, `403 Authorization
//!   failed for sendsms`, `400` for a missing receiver or text;
//! - Africa's Talking's `POST /version1/messaging` (form `username`, `to`, `message`, `from`;
//!   header `apiKey`): `201` with `SMSMessageData.Recipients[]`, `401` for a wrong key.
//!
//! It records every message it took (`GET /messages`, JSON, oldest first) and sends delivery
//! reports on demand (`POST /admin/dlr {"id": "...", "delivered": true}`): to the message's
//! `dlr-url` (Kannel, `%d` replaced by 1 or 2) or, for Africa's Talking, as a form POST (`id`,
//! `status` `Success`/`Failed`, `phoneNumber`, `networkCode`, `failureReason`) to the callback
//! URL it was started with. Faults (5xx share, outage, latency, lost answers) are the shared
//! [`FaultPlan`]; a lost answer takes the message and still answers 503.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::faults::{Fault, FaultPlan, FaultState};
use crate::sms::Provider;

/// How the simulator is set up.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SmsPlan {
    pub faults: FaultPlan,
    /// Only this protocol is served (the other answers 404); `None`: both.
    pub protocol: Option<Provider>,
    /// Kannel sendsms-user / Africa's Talking username.
    pub username: String,
    /// Kannel password / Africa's Talking API key.
    pub secret: String,
    /// Africa's Talking's delivery-report callback URL (set in its dashboard).
    pub callback_url: Option<String>,
}

/// A message the gateway took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// The gateway's id: `ATXid_…` (Africa's Talking) or `kannel-N`.
    pub id: String,
    pub protocol: Provider,
    pub to: String,
    pub from: Option<String>,
    pub text: String,
    /// Kannel: the `coding` asked for.
    pub coding: Option<String>,
    /// Kannel: the delivery-report URL given with it.
    pub dlr_url: Option<String>,
    /// The report sent so far: `delivered`, `failed`.
    pub report: Option<String>,
}

/// What the simulator has answered so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmsStats {
    pub requests: u64,
    pub taken: u64,
    pub refused: u64,
    pub injected_failures: u64,
    pub outage_refusals: u64,
    pub lost_answers: u64,
    pub reports_sent: u64,
}

#[derive(Debug)]
struct Inner {
    faults: FaultState,
    stats: SmsStats,
    messages: Vec<Received>,
}

#[derive(Debug)]
struct Shared {
    plan: SmsPlan,
    inner: Mutex<Inner>,
    http: reqwest::Client,
}

/// A running simulator.
#[derive(Debug, Clone)]
pub struct SmsSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl SmsSim {
    /// Listens on `listen` (port 0 picks one) and serves until [`SmsSim::stop`].
    pub async fn start(listen: SocketAddr, plan: SmsPlan) -> std::io::Result<SmsSim> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                faults: FaultState::new(plan.faults.clone())?,
                stats: SmsStats::default(),
                messages: Vec::new(),
            }),
            plan,
            http,
        });
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/cgi-bin/sendsms", get(kannel_send))
            .route("/version1/messaging", post(at_send))
            .route("/messages", get(list))
            .route("/stats", get(stats))
            .route("/admin/dlr", post(admin_dlr))
            .with_state(shared.clone());
        let s = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "SMS gateway simulator stopped");
            }
        });
        Ok(SmsSim { addr, shared, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a connector is configured with.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The messages taken, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        self.shared
            .inner
            .lock()
            .map(|i| i.messages.clone())
            .unwrap_or_default()
    }

    pub fn stats(&self) -> SmsStats {
        self.shared
            .inner
            .lock()
            .map(|i| i.stats.clone())
            .unwrap_or_default()
    }

    /// Sends the delivery report of message `id`; the HTTP status the receiver answered.
    pub async fn report(&self, id: &str, delivered: bool) -> Result<u16, String> {
        send_report(&self.shared, id, delivered).await
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// Counts the request and draws its fault; `Some(answer)` when the fault answers for it
/// before it is taken.
async fn before(shared: &Shared, protocol: Provider) -> Result<Fault, Response> {
    let (fault, latency) = {
        let Ok(mut i) = shared.inner.lock() else {
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        i.stats.requests += 1;
        let n = i.stats.requests;
        (i.faults.next(n), i.faults.latency())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if shared.plan.protocol.is_some_and(|p| p != protocol) {
        return Err((StatusCode::NOT_FOUND, "protocol not served").into_response());
    }
    let count = |f: fn(&mut SmsStats)| {
        if let Ok(mut i) = shared.inner.lock() {
            f(&mut i.stats);
        }
    };
    match fault {
        Fault::Outage => {
            count(|s| s.outage_refusals += 1);
            Err((StatusCode::SERVICE_UNAVAILABLE, "outage").into_response())
        }
        Fault::Fail => {
            count(|s| s.injected_failures += 1);
            Err((StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response())
        }
        other => Ok(other),
    }
}

/// Records a taken message; with a lost answer, says 503 after taking it.
fn take(shared: &Shared, m: Received, fault: Fault, answer: Response) -> Response {
    let Ok(mut i) = shared.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    i.messages.push(m);
    i.stats.taken += 1;
    if fault == Fault::LoseAck {
        i.stats.lost_answers += 1;
        return (StatusCode::SERVICE_UNAVAILABLE, "answer lost").into_response();
    }
    answer
}

fn refuse(shared: &Shared, status: StatusCode, why: &str) -> Response {
    if let Ok(mut i) = shared.inner.lock() {
        i.stats.refused += 1;
    }
    (status, why.to_string()).into_response()
}

async fn kannel_send(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let fault = match before(&shared, Provider::Kannel).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let get = |k: &str| q.get(k).cloned().filter(|v| !v.is_empty());
    let user = get("username").or_else(|| get("user"));
    let pass = get("password").or_else(|| get("pass"));
    if user.as_deref() != Some(shared.plan.username.as_str())
        || pass.as_deref() != Some(shared.plan.secret.as_str())
    {
        return refuse(
            &shared,
            StatusCode::FORBIDDEN,
            "Authorization failed for sendsms",
        );
    }
    let Some(to) = get("to") else {
        return refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            "Missing receiver number for sendsms",
        );
    };
    let Some(text) = get("text") else {
        return refuse(&shared, StatusCode::BAD_REQUEST, "Missing text for sendsms");
    };
    let n = shared.inner.lock().map(|i| i.messages.len()).unwrap_or(0);
    let m = Received {
        id: format!("kannel-{}", n + 1),
        protocol: Provider::Kannel,
        to,
        from: get("from"),
        text,
        coding: get("coding"),
        dlr_url: get("dlr-url"),
        report: None,
    };
    take(
        &shared,
        m,
        fault,
        (StatusCode::ACCEPTED, "0: Accepted for delivery").into_response(),
    )
}

#[derive(Debug, Deserialize)]
struct AtForm {
    username: Option<String>,
    to: Option<String>,
    message: Option<String>,
    from: Option<String>,
}

async fn at_send(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(f): Form<AtForm>,
) -> Response {
    let fault = match before(&shared, Provider::AfricasTalking).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let key = headers.get("apiKey").and_then(|v| v.to_str().ok());
    if key != Some(shared.plan.secret.as_str())
        || f.username.as_deref() != Some(shared.plan.username.as_str())
    {
        return refuse(
            &shared,
            StatusCode::UNAUTHORIZED,
            "The supplied authentication is invalid",
        );
    }
    let (Some(to), Some(text)) = (f.to, f.message) else {
        return refuse(
            &shared,
            StatusCode::BAD_REQUEST,
            "Request is missing required form field 'to' or 'message'",
        );
    };
    if !to.starts_with('+') {
        let body = json!({"SMSMessageData": {"Message": "Sent to 0/1 Total Cost: 0",
            "Recipients": [{"statusCode": 403, "number": to, "status": "InvalidPhoneNumber",
            "cost": "0", "messageId": "None"}]}});
        return refuse_json(&shared, body);
    }
    let id = format!("ATXid_{}", uuid::Uuid::new_v4().simple());
    let body = json!({"SMSMessageData": {"Message": "Sent to 1/1 Total Cost: RWF 15.0000",
        "Recipients": [{"statusCode": 101, "number": to, "status": "Success",
        "cost": "RWF 15.0000", "messageId": id}]}});
    let m = Received {
        id,
        protocol: Provider::AfricasTalking,
        to,
        from: f.from,
        text,
        coding: None,
        dlr_url: None,
        report: None,
    };
    take(
        &shared,
        m,
        fault,
        (StatusCode::CREATED, Json(body)).into_response(),
    )
}

fn refuse_json(shared: &Shared, body: serde_json::Value) -> Response {
    if let Ok(mut i) = shared.inner.lock() {
        i.stats.refused += 1;
    }
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn list(State(shared): State<Arc<Shared>>) -> Response {
    match shared.inner.lock() {
        Ok(i) => Json(i.messages.clone()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    match shared.inner.lock() {
        Ok(i) => Json(i.stats.clone()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DlrAsk {
    id: String,
    delivered: bool,
}

async fn admin_dlr(State(shared): State<Arc<Shared>>, Json(ask): Json<DlrAsk>) -> Response {
    match send_report(&shared, &ask.id, ask.delivered).await {
        Ok(status) => Json(json!({"receiver_status": status})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// Sends a delivery report of one taken message to where its protocol sends them.
async fn send_report(shared: &Shared, id: &str, delivered: bool) -> Result<u16, String> {
    let m = shared
        .inner
        .lock()
        .map_err(|_| "state poisoned".to_string())?
        .messages
        .iter()
        .find(|m| m.id == id)
        .cloned()
        .ok_or_else(|| format!("no message '{id}' was taken"))?;
    let req = match m.protocol {
        Provider::Kannel => {
            let url = m
                .dlr_url
                .as_deref()
                .ok_or_else(|| format!("message '{id}' came without a dlr-url"))?;
            shared
                .http
                .get(url.replace("%d", if delivered { "1" } else { "2" }))
        }
        Provider::AfricasTalking => {
            let url = shared
                .plan
                .callback_url
                .as_deref()
                .ok_or("no delivery-report callback URL was configured (--callback-url)")?;
            let mut form = vec![
                ("id", m.id.clone()),
                (
                    "status",
                    if delivered { "Success" } else { "Failed" }.into(),
                ),
                ("phoneNumber", m.to.clone()),
                ("networkCode", "63510".into()),
            ];
            if !delivered {
                form.push(("failureReason", "DeliveryFailure".into()));
            }
            shared.http.post(url).form(&form)
        }
    };
    let status = req
        .send()
        .await
        .map_err(|e| format!("sending the report: {e}"))?
        .status()
        .as_u16();
    if let Ok(mut i) = shared.inner.lock() {
        i.stats.reports_sent += 1;
        if let Some(x) = i.messages.iter_mut().find(|x| x.id == id) {
            x.report = Some(if delivered { "delivered" } else { "failed" }.into());
        }
    }
    Ok(status)
}
