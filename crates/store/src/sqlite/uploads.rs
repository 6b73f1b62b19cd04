use sqlx::Row;
use uuid::Uuid;

use super::ts::{parse_ts, ts};
use super::SqliteAdapter;
use crate::uploads::{NewUpload, UploadStatus, UploadStore};
use crate::{StoreError, StoreResult, UnitOfWork};

#[async_trait::async_trait]
impl UploadStore for SqliteAdapter {
    async fn insert_upload(&self, uow: &mut UnitOfWork, u: &NewUpload) -> StoreResult<()> {
        let now = ts(chrono::Utc::now());
        sqlx::query(
            "INSERT INTO registry_uploads (id, source, households, members, status, created_by, \
             created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
        )
        .bind(u.id)
        .bind(&u.source)
        .bind(&u.households)
        .bind(&u.members)
        .bind(&u.created_by)
        .bind(&now)
        .bind(&now)
        .execute(uow.sqlite()?)
        .await?;
        Ok(())
    }

    async fn upload_files(&self, id: Uuid) -> StoreResult<Option<(String, Vec<u8>, Vec<u8>)>> {
        let row =
            sqlx::query("SELECT source, households, members FROM registry_uploads WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.read)
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
        sqlx::query(
            "UPDATE registry_uploads SET status = ?, progress = ?, updated_at = ? WHERE id = ?",
        )
        .bind(status)
        .bind(progress.to_string())
        .bind(ts(chrono::Utc::now()))
        .bind(id)
        .execute(&self.write)
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
            "UPDATE registry_uploads SET status = ?, summary = ?, errors = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(status)
        .bind(summary)
        .bind(errors)
        .bind(ts(chrono::Utc::now()))
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn upload_status(&self, id: Uuid) -> StoreResult<Option<UploadStatus>> {
        let row = sqlx::query(
            "SELECT id, source, status, progress, summary, errors IS NOT NULL AND length(errors) > 0 \
             AS has_errors, created_by, created_at, updated_at FROM registry_uploads WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let progress: Option<String> = r.try_get("progress")?;
        Ok(Some(UploadStatus {
            id: r.try_get("id")?,
            source: r.try_get("source")?,
            status: r.try_get("status")?,
            progress: progress
                .map(|p| serde_json::from_str(&p))
                .transpose()
                .map_err(|e| StoreError::Invalid(format!("stored upload progress: {e}")))?,
            summary: r.try_get("summary")?,
            has_errors: r.try_get("has_errors")?,
            created_by: r.try_get("created_by")?,
            created_at: parse_ts(r.try_get("created_at")?)?,
            updated_at: parse_ts(r.try_get("updated_at")?)?,
        }))
    }

    async fn upload_errors(&self, id: Uuid) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT errors FROM registry_uploads WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        // A decoding failure is an error, not "no report".
        Ok(row
            .map(|r| r.try_get::<Option<Vec<u8>>, _>("errors"))
            .transpose()?
            .flatten())
    }
}
