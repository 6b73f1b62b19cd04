//! `/dci/registry/subscribe` and `/dci/registry/unsubscribe`: subscriptions to registry events
//! (DCI registry core API, v1.0.0), and their status through `txn/status` with
//! `txn_type: subscribe`.
//!
//! Both endpoints are asynchronous, as the spec has them: `ACK` at once (HTTP 202), the answer
//! (`on-subscribe`, `on-unsubscribe`) POSTed to `sender_uri` by a `dci.callback` job enqueued in
//! the same transaction as the subscription. Notifications go to `sender_uri` + `/notify`
//! (see [`inkingi_interop::dci::notify`]), within the subscriber's area scope, each audited as
//! a read by the subscriber with the purpose declared when subscribing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use inkingi_interop::dci::envelope::{timestamp, Ack, Answer, CallbackHeader, ErrorCode};
use inkingi_interop::dci::notify::{
    check_subscribe, subscription_info, CheckedSubscribe, SubscribeMessage, SubscribeReason,
    UnsubscribeMessage,
};
use inkingi_interop::dci::txn::TxnStatusMessage;
use inkingi_store::dci_notify::Subscription;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::Principal;
use crate::dci::{accept, enqueue, our_id, reply_url, write_audit, Accepted, Refusal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Most subscription codes in one unsubscribe or status request.
const MAX_CODES: usize = 100;

/// Subscribe to registry events: `ACK` now; the `on-subscribe` answer, with each request's
/// `subscription_code`, is POSTed to `sender_uri` + `/on-subscribe`.
#[utoipa::path(post, path = "/dci/registry/subscribe", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header, message: SubscribeRequest}; header.sender_uri is required (notifications go to sender_uri + /notify)"),
    responses(
        (status = 202, description = "ACK with the correlation id", body = Object),
        (status = 400, description = "ERR acknowledgement: the message could not be read", body = Object),
        (status = 422, description = "NACK acknowledgement (reason code first in error.message)", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn subscribe(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    let now = chrono::Utc::now();
    let fallback = Uuid::now_v7().to_string();
    let count = |m: &SubscribeMessage| m.subscribe_request.len();
    let mut a = match accept(&state, &principal, &body, "subscribe", count).await {
        Ok(a) => a,
        Err(r) => return r.ack(&fallback, now),
    };
    let urls = reply_url(&a.header, "notify")
        .and_then(|n| reply_url(&a.header, "on-subscribe").map(|o| (n, o)));
    let (notify_url, answer_url) = match urls {
        Ok(u) => u,
        Err(r) => return r.ack(&a.correlation_id, now),
    };
    let cid = a.correlation_id.clone();
    let result = async {
        let checked = check_subscribe(&a.message.subscribe_request, a.now.date_naive());
        let mut items = Vec::with_capacity(checked.len());
        let mut audit = Vec::new();
        for c in checked {
            let (item, code) = subscribe_one(&state, &principal, &mut a, &notify_url, c).await?;
            if let Some(code) = code {
                let mut r = principal.audit_record("dci.subscribe", "dci_subscription");
                r.subject_id = Some(code);
                r.purpose = Some(a.purpose.to_string());
                audit.push(r);
            }
            items.push(item);
        }
        let all_rejected = items.iter().all(|i| i["status"] == "rjct");
        let mut header =
            CallbackHeader::answering(&a.header, "on-subscribe", our_id(&state), a.now);
        header.status = if all_rejected { "rjct" } else { "succ" }.into();
        header.completed_count = items.len() as u64;
        let answer = Answer {
            signature: None,
            header,
            message: json!({
                "transaction_id": a.message.transaction_id,
                "correlation_id": cid,
                "subscribe_response": items,
            }),
        };
        enqueue(&state, &mut a.uow, answer_url, &answer, &cid).await?;
        a.uow.commit().await?;
        write_audit(&state, audit).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => (StatusCode::ACCEPTED, Json(Ack::accepted(&cid, now))).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Stores one checked subscribe request; returns its `subscribe_response` item and, when
/// accepted, its code.
async fn subscribe_one(
    state: &AppState,
    principal: &Principal,
    a: &mut Accepted<SubscribeMessage>,
    notify_url: &str,
    c: CheckedSubscribe,
) -> ApiResult<(Value, Option<String>)> {
    let mut item = json!({"reference_id": c.reference_id, "timestamp": timestamp(a.now)});
    let criteria = c.outcome.and_then(|criteria| {
        let outside = criteria
            .areas
            .iter()
            .find(|area| !principal.scope.contains(area))
            .cloned();
        match outside {
            Some(area) => Err(inkingi_interop::dci::notify::SubscribeRejection {
                reason: SubscribeReason::NotifyDetailsInvalid,
                message: format!(
                    "subscribe_criteria.filter: area {} is outside your area scope",
                    area.as_str()
                ),
            }),
            None => Ok(criteria),
        }
    });
    let criteria = match criteria {
        Ok(c) => c,
        Err(r) => {
            item["status"] = json!("rjct");
            item["status_reason_code"] = json!(r.reason.code());
            item["status_reason_message"] = json!(r.message);
            return Ok((item, None));
        }
    };
    let sub = Subscription {
        code: Uuid::now_v7().to_string(),
        client: principal.username.to_string(),
        sender_id: a.header.sender_id.clone(),
        notify_url: notify_url.to_string(),
        event_types: criteria
            .event_types
            .iter()
            .map(|t| t.as_str().to_string())
            .collect(),
        areas: criteria
            .areas
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        record_type: criteria.record_type.to_string(),
        purpose: a.purpose.to_string(),
        status: "subscribe".into(),
        transaction_id: a.message.transaction_id.clone(),
        reference_id: c.reference_id.clone(),
        criteria: criteria.raw,
        created_at: a.now,
        updated_at: a.now,
        kind: inkingi_store::dci_notify::KIND_DCI.into(),
        secret: None,
    };
    state
        .store
        .dci_notify()
        .create_subscription(&mut a.uow, &sub)
        .await?;
    item["status"] = json!("succ");
    item["subscriptions"] = json!([subscription_info(&sub)]);
    Ok((item, Some(sub.code)))
}

/// Unsubscribe: `ACK` now; the `on-unsubscribe` answer is POSTed to `sender_uri` +
/// `/on-unsubscribe`. Codes of other clients are unknown codes.
#[utoipa::path(post, path = "/dci/registry/unsubscribe", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header, message: UnSubscribeRequest {transaction_id, timestamp, subscription_codes}}; header.total_count is 1"),
    responses(
        (status = 202, description = "ACK with the correlation id", body = Object),
        (status = 400, description = "ERR acknowledgement", body = Object),
        (status = 422, description = "NACK acknowledgement", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    let now = chrono::Utc::now();
    let fallback = Uuid::now_v7().to_string();
    let mut a = match accept(
        &state,
        &principal,
        &body,
        "unsubscribe",
        |_: &UnsubscribeMessage| 1,
    )
    .await
    {
        Ok(a) => a,
        Err(r) => return r.ack(&fallback, now),
    };
    let codes = &a.message.subscription_codes;
    if codes.is_empty() || codes.len() > MAX_CODES {
        let msg = format!("message.subscription_codes: 1 to {MAX_CODES} codes");
        return Refusal::Err(ErrorCode::RequestBad, msg).ack(&a.correlation_id, now);
    }
    let answer_url = match reply_url(&a.header, "on-unsubscribe") {
        Ok(u) => u,
        Err(r) => return r.ack(&a.correlation_id, now),
    };
    let cid = a.correlation_id.clone();
    let result = async {
        let (message, audit) = unsubscribe_all(&state, &principal, &mut a).await?;
        let mut header =
            CallbackHeader::answering(&a.header, "on-unsubscribe", our_id(&state), a.now);
        header.status = message["status"].as_str().unwrap_or("rjct").into();
        header.completed_count = 1;
        let answer = Answer {
            signature: None,
            header,
            message,
        };
        enqueue(&state, &mut a.uow, answer_url, &answer, &cid).await?;
        a.uow.commit().await?;
        write_audit(&state, audit).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => (StatusCode::ACCEPTED, Json(Ack::accepted(&cid, now))).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Ends each named subscription of the caller; the `UnSubscribeResponse` and audit entries.
async fn unsubscribe_all(
    state: &AppState,
    principal: &Principal,
    a: &mut Accepted<UnsubscribeMessage>,
) -> ApiResult<(Value, Vec<inkingi_domain::audit::AuditRecord>)> {
    let client = principal.username.to_string();
    let codes = a.message.subscription_codes.clone();
    let found = state
        .store
        .dci_notify()
        .subscriptions(&client, &codes)
        .await?;
    let mut statuses = Vec::new();
    let mut first_refusal: Option<(SubscribeReason, String)> = None;
    let mut audit = Vec::new();
    for code in &codes {
        let refusal = match found.iter().find(|s| &s.code == code) {
            None => Some((
                SubscribeReason::SubscriptionCodeInvalid,
                format!("subscription code '{code}' is not one of yours"),
            )),
            Some(s) if s.status == "unsubscribe" => Some((
                SubscribeReason::AlreadyUnsubscribed,
                format!("subscription {code} is already unsubscribed"),
            )),
            Some(_) => None,
        };
        match refusal {
            Some(r) => {
                first_refusal.get_or_insert(r);
            }
            None => {
                state
                    .store
                    .dci_notify()
                    .set_subscription_status(&mut a.uow, &client, code, "unsubscribe", a.now)
                    .await?;
                statuses.push(json!({"code": code, "status": "unsubscribe"}));
                let mut r = principal.audit_record("dci.unsubscribe", "dci_subscription");
                r.subject_id = Some(code.clone());
                audit.push(r);
            }
        }
    }
    let mut message = json!({
        "transaction_id": a.message.transaction_id,
        "correlation_id": a.correlation_id,
        "timestamp": timestamp(a.now),
        "status": if statuses.is_empty() { "rjct" } else { "succ" },
        "subscription_status": statuses,
    });
    if let Some((reason, text)) = first_refusal {
        message["status_reason_code"] = json!(reason.code());
        message["status_reason_message"] = json!(text);
    }
    Ok((message, audit))
}

/// The status of subscriptions (`txn_type: subscribe`, `attribute_type:
/// subscription_code_list`; an empty list asks for all of the caller's): a
/// `SubscribeResponse` with each subscription's info.
pub(crate) async fn subscription_status(
    state: &AppState,
    principal: &Principal,
    a: &Accepted<TxnStatusMessage>,
) -> Result<Answer<Value>, Refusal> {
    let req = &a.message.txnstatus_request;
    let codes: Option<Vec<String>> = match (req.attribute_type.as_str(), &req.attribute_value) {
        ("subscription_code_list", Value::Array(list)) if list.len() <= MAX_CODES => list
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => None,
    };
    let Some(codes) = codes else {
        return Err(Refusal::Err(
            ErrorCode::RequestBad,
            format!(
                "txnstatus_request: txn_type subscribe needs attribute_type \
                 subscription_code_list and attribute_value a list of at most {MAX_CODES} codes"
            ),
        ));
    };
    let subs = state
        .store
        .dci_notify()
        .subscriptions(principal.username.as_str(), &codes)
        .await
        .map_err(ApiError::from)?;
    let mut header = CallbackHeader::answering(&a.header, "txn-on-status", our_id(state), a.now);
    header.completed_count = 1;
    if subs.is_empty() {
        header.status = "rjct".into();
        header.status_reason_code = Some(SubscribeReason::SubscriptionCodeInvalid.code().into());
        header.status_reason_message = Some("no such subscription".into());
    }
    let items: Vec<Value> = subs
        .iter()
        .map(|s| {
            json!({
                "reference_id": s.reference_id,
                "timestamp": timestamp(s.updated_at),
                "status": "succ",
                "subscriptions": [subscription_info(s)],
            })
        })
        .collect();
    Ok(Answer {
        signature: None,
        header,
        message: json!({
            "transaction_id": a.message.transaction_id,
            "correlation_id": a.correlation_id,
            "txnstatus_response": {
                "txn_type": "subscribe",
                "txn_status": {
                    "transaction_id": subs.first().map(|s| s.transaction_id.clone()).unwrap_or_default(),
                    "correlation_id": a.correlation_id,
                    "subscribe_response": items,
                },
            },
        }),
    })
}
