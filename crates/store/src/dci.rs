//! Port of the DCI API's own state (schema: migrations `0010_dci`): the ids of messages already
//! received, so a replay is refused, and the transactions received with each request's outcome,
//! so `txn/status` can answer. Search results themselves are not kept.

use chrono::{DateTime, Utc};

use crate::{StoreResult, UnitOfWork};

/// A message accepted from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The authenticated caller (user name behind the token).
    pub client: String,
    pub message_id: String,
    /// `header.sender_id` as the caller declared it.
    pub sender_id: String,
    pub action: String,
    pub received_at: DateTime<Utc>,
}

/// Outcome of one request of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOutcome {
    pub reference_id: String,
    /// `rcvd`, `pdng`, `succ` or `rjct`.
    pub status: String,
    pub reason_code: Option<String>,
    pub reason_message: Option<String>,
    pub record_count: u64,
}

/// A transaction (one message's batch of requests) as received and answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub correlation_id: String,
    pub client: String,
    pub transaction_id: String,
    pub message_id: String,
    pub action: String,
    /// `pdng` while an asynchronous answer is undelivered, then `succ`; `rjct` when refused.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub requests: Vec<RequestOutcome>,
}

/// How a status request names the transactions it asks about (always within one client's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnKey {
    TransactionId(String),
    CorrelationId(String),
    ReferenceIds(Vec<String>),
}

/// What a synchronous request leaves behind: its message id and its transaction, written
/// together (by the server's journal writer, many requests' entries per unit of work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub message: InboundMessage,
    pub transaction: Transaction,
}

#[async_trait::async_trait]
pub trait DciStore: Send + Sync {
    /// Writes each entry in `uow`: its message id and, unless that id was already recorded,
    /// its transaction. One flag per entry, in order: false for a replay (nothing of it is
    /// written). The unique key on (client, message_id) decides, across processes too.
    async fn record_journal(
        &self,
        uow: &mut UnitOfWork,
        entries: &[JournalEntry],
    ) -> StoreResult<Vec<bool>> {
        let mut fresh = Vec::with_capacity(entries.len());
        for e in entries {
            let new = self.accept_message(uow, &e.message).await?;
            if new {
                self.record_transaction(uow, &e.transaction).await?;
            }
            fresh.push(new);
        }
        Ok(fresh)
    }

    /// Records a message id; false when this client already sent one with that id (a replay).
    async fn accept_message(&self, uow: &mut UnitOfWork, m: &InboundMessage) -> StoreResult<bool>;
    async fn record_transaction(&self, uow: &mut UnitOfWork, t: &Transaction) -> StoreResult<()>;
    /// The client's transactions matching `key`, oldest first, with their requests.
    async fn transactions(&self, client: &str, key: &TxnKey) -> StoreResult<Vec<Transaction>>;
    /// Sets a transaction's status (e.g. `succ` once its callback was delivered).
    async fn set_transaction_status(
        &self,
        correlation_id: &str,
        status: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Forgets message ids received before `before`; returns how many. Replays older than the
    /// accepted clock skew are refused by their timestamp anyway.
    async fn prune_messages(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// Groups request rows (correlation id first) under their transactions.
pub(crate) fn attach_requests(
    mut txns: Vec<Transaction>,
    rows: Vec<(String, RequestOutcome)>,
) -> Vec<Transaction> {
    for (cid, r) in rows {
        if let Some(t) = txns.iter_mut().find(|t| t.correlation_id == cid) {
            t.requests.push(r);
        }
    }
    txns
}
