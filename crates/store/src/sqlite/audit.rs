use inkingi_domain::audit::{AuditEntry, AuditRecord, ChainHash, ChainHead};
use inkingi_domain::identity::AreaScope;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::ts::{parse_ts, ts};
use super::SqliteAdapter;
use crate::audit::{fields_json, scope_patterns, AuditQuery, AuditStore, MalformedEntry, RawEntry};
use crate::{StoreError, StoreResult, UnitOfWork};

const COLS: &str = "seq, occurred_at, actor, via, role, action, outcome, subject_type, \
                    subject_id, area, fields, purpose, request_id, client_addr, xroad_client, xroad_id, \
                    prev_hash, hash";

fn entry_from(row: &SqliteRow) -> StoreResult<Result<AuditEntry, MalformedEntry>> {
    Ok(RawEntry {
        seq: row.try_get("seq")?,
        occurred_at: parse_ts(row.try_get("occurred_at")?)?,
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

/// Appends on a connection that is inside a transaction. The first statement writes the head
/// row, which takes SQLite's write lock before the head is read, so no other process can slip
/// an entry in between.
async fn append_on(
    conn: &mut SqliteConnection,
    records: Vec<AuditRecord>,
) -> StoreResult<ChainHead> {
    let row = sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
        .fetch_one(&mut *conn)
        .await?;
    let hash: Vec<u8> = row.try_get("hash")?;
    let head = ChainHead {
        seq: row.try_get("seq")?,
        hash: ChainHash::from_slice(&hash)
            .ok_or_else(|| StoreError::Invalid("audit_head.hash is not 32 bytes".into()))?,
    };
    if records.is_empty() {
        return Ok(head);
    }
    let (entries, head) = head.extend(records);
    // SQLite allows 32766 bound parameters; 18 per row.
    for chunk in entries.chunks(1000) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("INSERT INTO audit_log ({COLS}) "));
        qb.push_values(chunk, |mut b, e| {
            let r = &e.record;
            b.push_bind(e.seq)
                .push_bind(ts(r.occurred_at()))
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
impl AuditStore for SqliteAdapter {
    async fn append(&self, records: Vec<AuditRecord>) -> StoreResult<ChainHead> {
        let mut tx = self.write.begin().await?;
        let head = append_on(&mut tx, records).await?;
        tx.commit().await?;
        Ok(head)
    }

    async fn append_in(
        &self,
        uow: &mut UnitOfWork,
        records: Vec<AuditRecord>,
    ) -> StoreResult<ChainHead> {
        append_on(uow.sqlite()?, records).await
    }

    async fn head(&self) -> StoreResult<ChainHead> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.read)
            .await?;
        let hash: Vec<u8> = row.try_get("hash")?;
        Ok(ChainHead {
            seq: row.try_get("seq")?,
            hash: ChainHash::from_slice(&hash)
                .ok_or_else(|| StoreError::Invalid("audit_head.hash is not 32 bytes".into()))?,
        })
    }

    async fn query(&self, scope: &AreaScope, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLS} FROM audit_log WHERE 1 = 1"));
        if let Some(patterns) = scope_patterns(scope) {
            qb.push(" AND (0 = 1");
            for p in patterns {
                qb.push(" OR area LIKE ").push_bind(p);
            }
            qb.push(")");
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
            qb.push(" AND occurred_at >= ").push_bind(ts(v));
        }
        if let Some(v) = q.to {
            qb.push(" AND occurred_at < ").push_bind(ts(v));
        }
        if let Some(v) = q.after {
            qb.push(" AND seq > ").push_bind(v);
        }
        qb.push(" ORDER BY seq LIMIT ")
            .push_bind(i64::from(q.limit));
        let rows = qb.build().fetch_all(&self.read).await?;
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
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(entry_from).collect()
    }
}
