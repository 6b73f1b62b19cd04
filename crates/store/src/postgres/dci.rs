//! The DCI store on PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder, Row};

use super::PgAdapter;
use crate::dci::{attach_requests, DciStore, InboundMessage, RequestOutcome, Transaction, TxnKey};
use crate::{StoreResult, UnitOfWork};

#[async_trait::async_trait]
impl DciStore for PgAdapter {
    async fn accept_message(&self, uow: &mut UnitOfWork, m: &InboundMessage) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO dci_messages (client, message_id, sender_id, action, received_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client, message_id) DO NOTHING",
        )
        .bind(&m.client)
        .bind(&m.message_id)
        .bind(&m.sender_id)
        .bind(&m.action)
        .bind(m.received_at)
        .execute(uow.postgres()?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_transaction(&self, uow: &mut UnitOfWork, t: &Transaction) -> StoreResult<()> {
        let c = uow.postgres()?;
        sqlx::query(
            "INSERT INTO dci_transactions (correlation_id, client, transaction_id, message_id, \
             action, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.correlation_id)
        .bind(&t.client)
        .bind(&t.transaction_id)
        .bind(&t.message_id)
        .bind(&t.action)
        .bind(&t.status)
        .bind(t.created_at)
        .bind(t.updated_at)
        .execute(&mut *c)
        .await?;
        for r in &t.requests {
            sqlx::query(
                "INSERT INTO dci_requests (correlation_id, client, reference_id, status, \
                 reason_code, reason_message, record_count) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&t.correlation_id)
            .bind(&t.client)
            .bind(&r.reference_id)
            .bind(&r.status)
            .bind(&r.reason_code)
            .bind(&r.reason_message)
            .bind(i64::try_from(r.record_count).unwrap_or(i64::MAX))
            .execute(&mut *c)
            .await?;
        }
        Ok(())
    }

    async fn transactions(&self, client: &str, key: &TxnKey) -> StoreResult<Vec<Transaction>> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT correlation_id, client, transaction_id, message_id, action, status, \
             created_at, updated_at FROM dci_transactions WHERE client = ",
        );
        qb.push_bind(client.to_string());
        match key {
            TxnKey::TransactionId(id) => {
                qb.push(" AND transaction_id = ").push_bind(id.clone());
            }
            TxnKey::CorrelationId(id) => {
                qb.push(" AND correlation_id = ").push_bind(id.clone());
            }
            TxnKey::ReferenceIds(ids) => {
                qb.push(
                    " AND correlation_id IN (SELECT correlation_id FROM dci_requests \
                     WHERE client = ",
                )
                .push_bind(client.to_string())
                .push(" AND reference_id IN (");
                let mut s = qb.separated(", ");
                for id in ids {
                    s.push_bind(id.clone());
                }
                qb.push("))");
            }
        }
        qb.push(" ORDER BY created_at, correlation_id LIMIT 100");
        let rows = qb.build().fetch_all(&self.pool).await?;
        let mut txns = Vec::with_capacity(rows.len());
        for row in &rows {
            txns.push(Transaction {
                correlation_id: row.try_get("correlation_id")?,
                client: row.try_get("client")?,
                transaction_id: row.try_get("transaction_id")?,
                message_id: row.try_get("message_id")?,
                action: row.try_get("action")?,
                status: row.try_get("status")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                requests: Vec::new(),
            });
        }
        if txns.is_empty() {
            return Ok(txns);
        }
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT correlation_id, reference_id, status, reason_code, reason_message, \
             record_count FROM dci_requests WHERE correlation_id IN (",
        );
        let mut s = qb.separated(", ");
        for t in &txns {
            s.push_bind(t.correlation_id.clone());
        }
        qb.push(") ORDER BY correlation_id, reference_id");
        let rows = qb.build().fetch_all(&self.pool).await?;
        let mut reqs = Vec::with_capacity(rows.len());
        for row in &rows {
            let n: i64 = row.try_get("record_count")?;
            reqs.push((
                row.try_get("correlation_id")?,
                RequestOutcome {
                    reference_id: row.try_get("reference_id")?,
                    status: row.try_get("status")?,
                    reason_code: row.try_get("reason_code")?,
                    reason_message: row.try_get("reason_message")?,
                    record_count: u64::try_from(n).unwrap_or(0),
                },
            ));
        }
        Ok(attach_requests(txns, reqs))
    }

    async fn set_transaction_status(
        &self,
        correlation_id: &str,
        status: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE dci_transactions SET status = $1, updated_at = $2 WHERE correlation_id = $3",
        )
        .bind(status)
        .bind(at)
        .bind(correlation_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prune_messages(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM dci_messages WHERE received_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
