use sqlx::Row;
use uuid::Uuid;

use super::PgAdapter;
use crate::uploads::{NewUpload, UploadStatus, UploadStore};
use crate::{StoreResult, UnitOfWork};

#[async_trait::async_trait]
impl UploadStore for PgAdapter {
    async fn insert_upload(&self, uow: &mut UnitOfWork, u: &NewUpload) -> StoreResult<()> {
        let now = chrono::Utc::now();
        sqlx::query(
            "INSERT INTO registry_uploads (id, source, households, members, status, created_by, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', $5, $6, $6)",
        )
        .bind(u.id)
        .bind(&u.source)
        .bind(&u.households)
        .bind(&u.members)
        .bind(&u.created_by)
        .bind(now)
        .execute(uow.postgres()?)
        .await?;
        Ok(())
    }

    async fn upload_files(&self, id: Uuid) -> StoreResult<Option<(String, Vec<u8>, Vec<u8>)>> {
        let row =
            sqlx::query("SELECT source, households, members FROM registry_uploads WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok((
                r.try_get("source")?,
                r.try_get("households")?,
                r.try_get("members")?,
            ))
        })
        .transpose()
    }

    async fn set_upload_progress(
        &self,
        id: Uuid,
        status: &str,
        progress: &serde_json::Value,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE registry_uploads SET status = $1, progress = $2, updated_at = now() WHERE id = $3")
            .bind(status)
            .bind(progress)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish_upload(
        &self,
        id: Uuid,
        status: &str,
        summary: &str,
        errors: &[u8],
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE registry_uploads SET status = $1, summary = $2, errors = $3, updated_at = now() \
             WHERE id = $4",
        )
        .bind(status)
        .bind(summary)
        .bind(errors)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upload_status(&self, id: Uuid) -> StoreResult<Option<UploadStatus>> {
        let row = sqlx::query(
            "SELECT id, source, status, progress, summary, \
             coalesce(length(errors), 0) > 0 AS has_errors, created_by, created_at, updated_at \
             FROM registry_uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(UploadStatus {
            id: r.try_get("id")?,
            source: r.try_get("source")?,
            status: r.try_get("status")?,
            progress: r.try_get("progress")?,
            summary: r.try_get("summary")?,
            has_errors: r.try_get("has_errors")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        }))
    }

    async fn upload_errors(&self, id: Uuid) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT errors FROM registry_uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        // A decoding failure is an error, not "no report".
        Ok(row
            .map(|r| r.try_get::<Option<Vec<u8>>, _>("errors"))
            .transpose()?
            .flatten())
    }
}
