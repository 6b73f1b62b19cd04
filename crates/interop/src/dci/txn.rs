//! Transaction status: which transactions a `txnstatus_request` names, and the answer built
//! from what the store recorded (statuses and reason codes; search results are not kept).

use inkingi_store::dci::{Transaction, TxnKey};
use serde::Deserialize;
use serde_json::{json, Value};

use super::envelope::{short, timestamp};

/// The `message` of a txn-status request.
#[derive(Debug, Clone, Deserialize)]
pub struct TxnStatusMessage {
    #[serde(default)]
    pub transaction_id: String,
    pub txnstatus_request: TxnStatusRequest,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TxnStatusRequest {
    pub reference_id: String,
    pub txn_type: String,
    pub attribute_type: String,
    pub attribute_value: Value,
    #[serde(default)]
    pub locale: Option<String>,
}

impl TxnStatusRequest {
    /// The store key, or what is wrong with the request.
    pub fn key(&self) -> Result<TxnKey, String> {
        if self.txn_type != "search" {
            return Err(format!(
                "txnstatus_request.txn_type '{}': only search transactions are kept",
                short(&self.txn_type)
            ));
        }
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        match (self.attribute_type.as_str(), &self.attribute_value) {
            ("transaction_id", v) => text(v).map(TxnKey::TransactionId),
            ("correlation_id", v) => text(v).map(TxnKey::CorrelationId),
            ("reference_id_list", Value::Array(a)) if !a.is_empty() && a.len() <= 100 => a
                .iter()
                .map(text)
                .collect::<Option<Vec<_>>>()
                .map(TxnKey::ReferenceIds),
            _ => None,
        }
        .ok_or_else(|| {
            format!(
                "txnstatus_request: attribute_type '{}' needs attribute_value as a text \
                 (transaction_id, correlation_id) or a list of 1 to 100 texts (reference_id_list)",
                short(&self.attribute_type)
            )
        })
    }
}

/// The `TxnStatusResponse` message for the transactions found (the requests of all of them,
/// restricted to the asked reference ids when the key lists them).
pub fn response(
    req: &TxnStatusMessage,
    key: &TxnKey,
    found: &[Transaction],
    correlation_id: &str,
) -> Value {
    let wanted = |r: &str| match key {
        TxnKey::ReferenceIds(ids) => ids.iter().any(|i| i == r),
        _ => true,
    };
    let items: Vec<Value> = found
        .iter()
        .flat_map(|t| t.requests.iter().map(move |r| (t, r)))
        .filter(|(_, r)| wanted(&r.reference_id))
        .map(|(t, r)| {
            let mut v = json!({
                "reference_id": r.reference_id,
                "timestamp": timestamp(t.updated_at),
                "status": if t.status == "pdng" && r.status == "succ" { "pdng" } else { r.status.as_str() },
                "record_count": r.record_count,
            });
            if let Some(c) = &r.reason_code {
                v["status_reason_code"] = json!(c);
            }
            if let Some(m) = &r.reason_message {
                v["status_reason_message"] = json!(m);
            }
            v
        })
        .collect();
    let first = found.first();
    json!({
        "transaction_id": req.transaction_id,
        "correlation_id": correlation_id,
        "txnstatus_response": {
            "txn_type": "search",
            "txn_status": {
                "transaction_id": first.map(|t| t.transaction_id.clone()).unwrap_or_default(),
                "correlation_id": first.map(|t| t.correlation_id.clone()).unwrap_or_default(),
                "search_response": items,
            }
        }
    })
}
