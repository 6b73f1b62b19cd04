use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::change::ChangeRequest;
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::PgAdapter;
use crate::changes::{from_body, stale, to_body, ChangeQuery, ChangeRequestStore};
use crate::registry::{area_range, push_scope};
use crate::{StoreResult, UnitOfWork};

async fn write_touches(conn: &mut sqlx::PgConnection, cr: &ChangeRequest) -> StoreResult<()> {
    sqlx::query("DELETE FROM registry_change_touches WHERE change_request_id = $1")
        .bind(cr.id)
        .execute(&mut *conn)
        .await?;
    if cr.status.is_open() {
        for record in cr.change.touches() {
            sqlx::query(
                "INSERT INTO registry_change_touches (record_id, change_request_id) \
                 VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(record)
            .bind(cr.id)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl ChangeRequestStore for PgAdapter {
    async fn insert_change(&self, uow: &mut UnitOfWork, cr: &ChangeRequest) -> StoreResult<()> {
        let conn = uow.postgres()?;
        let now = cr.created_at;
        sqlx::query(
            "INSERT INTO registry_change_requests \
             (id, kind, status, area_code, submitted_by, body, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9)",
        )
        .bind(cr.id)
        .bind(cr.change.name())
        .bind(cr.status.as_str())
        .bind(cr.area.as_str())
        .bind(&cr.submitted_by)
        .bind(to_body(cr)?)
        .bind(cr.version)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        write_touches(conn, cr).await
    }

    async fn change(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<ChangeRequest>> {
        let mut qb = QueryBuilder::new(
            "SELECT body::text AS body FROM registry_change_requests WHERE id = ",
        );
        qb.push_bind(id);
        push_scope(&mut qb, "area_code", scope);
        let row = qb.build().fetch_optional(&self.pool).await?;
        row.map(|r| from_body(r.try_get("body")?)).transpose()
    }

    async fn change_for_update(
        &self,
        uow: &mut UnitOfWork,
        id: Uuid,
    ) -> StoreResult<Option<ChangeRequest>> {
        let row = sqlx::query(
            "SELECT body::text AS body FROM registry_change_requests WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(uow.postgres()?)
        .await?;
        row.map(|r| from_body(r.try_get("body")?)).transpose()
    }

    async fn save_change(&self, uow: &mut UnitOfWork, cr: &ChangeRequest) -> StoreResult<()> {
        let conn = uow.postgres()?;
        let done = sqlx::query(
            "UPDATE registry_change_requests SET status = $1, body = $2::jsonb, version = $3, \
             updated_at = $4 WHERE id = $5 AND version = $6",
        )
        .bind(cr.status.as_str())
        .bind(to_body(cr)?)
        .bind(cr.version)
        .bind(chrono::Utc::now())
        .bind(cr.id)
        .bind(cr.version - 1)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Err(stale(cr.id));
        }
        write_touches(conn, cr).await
    }

    async fn list_changes(
        &self,
        scope: &AreaScope,
        q: &ChangeQuery,
    ) -> StoreResult<Vec<ChangeRequest>> {
        let mut qb = QueryBuilder::new(
            "SELECT body::text AS body FROM registry_change_requests WHERE 1 = 1",
        );
        if let Some(s) = q.status {
            qb.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(area) = &q.area {
            let (lo, hi) = area_range(area);
            qb.push(" AND area_code >= ").push_bind(lo);
            qb.push(" AND area_code < ").push_bind(hi);
        }
        if let Some(k) = &q.kind {
            qb.push(" AND kind = ").push_bind(k.clone());
        }
        if let Some(by) = &q.submitted_by {
            qb.push(" AND submitted_by = ").push_bind(by.clone());
        }
        if let Some(before) = q.before {
            qb.push(" AND id < ").push_bind(before);
        }
        push_scope(&mut qb, "area_code", scope);
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(q.limit));
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(|r| from_body(r.try_get("body")?)).collect()
    }

    async fn open_conflicts(
        &self,
        uow: &mut UnitOfWork,
        records: &[Uuid],
        except: Option<Uuid>,
    ) -> StoreResult<Vec<Uuid>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::new(
            "SELECT DISTINCT change_request_id FROM registry_change_touches WHERE record_id IN (",
        );
        let mut list = qb.separated(", ");
        for r in records {
            list.push_bind(*r);
        }
        qb.push(")");
        if let Some(e) = except {
            qb.push(" AND change_request_id <> ").push_bind(e);
        }
        let rows = qb.build().fetch_all(uow.postgres()?).await?;
        rows.iter()
            .map(|r| r.try_get::<Uuid, _>(0).map_err(Into::into))
            .collect()
    }
}
