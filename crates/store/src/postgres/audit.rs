use inkingi_domain::audit::{AuditEntry, AuditRecord, ChainHash, ChainHead};
use inkingi_domain::identity::AreaScope;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

use super::PgAdapter;
use crate::audit::{fields_json, scope_patterns, AuditQuery, AuditStore, MalformedEntry, RawEntry};
use crate::{StoreError, StoreResult, UnitOfWork};

const COLS: &str = "seq, occurred_at, actor, via, role, action, outcome, subject_type, \
                    subject_id, area, fields, purpose, request_id, client_addr, xroad_client, xroad_id, \
                    prev_hash, hash";

fn entry_from(row: &PgRow) -> StoreResult<Result<AuditEntry, MalformedEntry>> {
    Ok(RawEntry {
        seq: row.try_get("seq")?,
        occurred_at: row.try_get("occurred_at")?,
        actor: row.try_get("actor")?,
        via: row.try_get("via")?,
        role: row.try_get("role")?,
        action: row.try_get("action")?,
        outcome: row.try_get("outcome")?,
        subject_type: row.try_get("subject_type")?,
        subject_id: row.try_get("subject_id")?,
        area: row.try_get("area")?,
        fields: row.try_get("fields")?,
        purpose: row.try_get("purpose")?,
        request_id: row.try_get("request_id")?,
        client_addr: row.try_get("client_addr")?,
        xroad_client: row.try_get("xroad_client")?,
        xroad_id: row.try_get("xroad_id")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    }
    .into_entry())
}

fn head_from(row: &PgRow) -> StoreResult<ChainHead> {
    let hash: Vec<u8> = row.try_get("hash")?;
    Ok(ChainHead {
        seq: row.try_get("seq")?,
        hash: ChainHash::from_slice(&hash)
            .ok_or_else(|| StoreError::Invalid("audit_head.hash is not 32 bytes".into()))?,
    })
}

/// Appends on a connection inside a transaction. Locking the head row serialises appenders on
/// every node; the lock is held until the transaction ends.
async fn append_on(conn: &mut PgConnection, records: Vec<AuditRecord>) -> StoreResult<ChainHead> {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
        .fetch_one(&mut *conn)
        .await?;
    let head = head_from(&row)?;
    if records.is_empty() {
        return Ok(head);
    }
    let (entries, head) = head.extend(records);
    // PostgreSQL allows 65535 bound parameters; 18 per row.
    for chunk in entries.chunks(2000) {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("INSERT INTO audit_log ({COLS}) "));
        qb.push_values(chunk, |mut b, e| {
            let r = &e.record;
            b.push_bind(e.seq)
                .push_bind(r.occurred_at())
                .push_bind(r.actor.clone())
                .push_bind(r.via.clone())
                .push_bind(r.role.clone())
                .push_bind(r.action.clone())
                .push_bind(r.outcome.clone())
                .push_bind(r.subject_type.clone())
                .push_bind(r.subject_id.clone())
                .push_bind(r.area.as_ref().map(|a| a.to_string()))
                .push_bind(fields_json(&r.fields))
                .push_bind(r.purpose.clone())
                .push_bind(r.request_id.clone())
                .push_bind(r.client_addr.clone())
                .push_bind(r.xroad_client.clone())
                .push_bind(r.xroad_id.clone())
                .push_bind(e.prev_hash.as_bytes().to_vec())
                .push_bind(e.hash.as_bytes().to_vec());
        });
        qb.build().execute(&mut *conn).await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(head.seq)
        .bind(head.hash.as_bytes().to_vec())
        .execute(&mut *conn)
        .await?;
    Ok(head)
}

#[async_trait::async_trait]
impl AuditStore for PgAdapter {
    async fn append(&self, records: Vec<AuditRecord>) -> StoreResult<ChainHead> {
        let mut tx = self.pool.begin().await?;
        let head = append_on(&mut tx, records).await?;
        tx.commit().await?;
        Ok(head)
    }

    async fn append_in(
        &self,
        uow: &mut UnitOfWork,
        records: Vec<AuditRecord>,
    ) -> StoreResult<ChainHead> {
        append_on(uow.postgres()?, records).await
    }

    async fn head(&self) -> StoreResult<ChainHead> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        head_from(&row)
    }

    async fn query(&self, scope: &AreaScope, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("SELECT {COLS} FROM audit_log WHERE TRUE"));
        if let Some(patterns) = scope_patterns(scope) {
            qb.push(" AND area LIKE ANY(").push_bind(patterns).push(")");
        }
        if let Some(v) = &q.subject_type {
            qb.push(" AND subject_type = ").push_bind(v.clone());
        }
        if let Some(v) = &q.subject_id {
            qb.push(" AND subject_id = ").push_bind(v.clone());
        }
        if let Some(v) = &q.actor {
            qb.push(" AND actor = ").push_bind(v.clone());
        }
        if let Some(v) = q.from {
            qb.push(" AND occurred_at >= ").push_bind(v);
        }
        if let Some(v) = q.to {
            qb.push(" AND occurred_at < ").push_bind(v);
        }
        if let Some(v) = q.after {
            qb.push(" AND seq > ").push_bind(v);
        }
        qb.push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(q.limit));
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| entry_from(r)?.map_err(StoreError::from))
            .collect()
    }

    async fn entries_after(
        &self,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Result<AuditEntry, MalformedEntry>>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry_from).collect()
    }
}
