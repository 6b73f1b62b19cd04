//! Port of API uploads for bulk import (schema `0011_registry_uploads`): the two CSV files, and
//! the progress, summary and error report of the job that imports them.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{StoreResult, UnitOfWork};

/// A new upload, stored in the same unit of work as the job that will import it.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub id: Uuid,
    pub source: String,
    pub households: Vec<u8>,
    pub members: Vec<u8>,
    pub created_by: String,
}

/// The state of an upload, without its files.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadStatus {
    pub id: Uuid,
    pub source: String,
    /// queued, running, done or failed.
    pub status: String,
    pub progress: Option<serde_json::Value>,
    pub summary: Option<String>,
    pub has_errors: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait UploadStore: Send + Sync {
    async fn insert_upload(&self, uow: &mut UnitOfWork, u: &NewUpload) -> StoreResult<()>;
    /// The source name and the two files.
    async fn upload_files(&self, id: Uuid) -> StoreResult<Option<(String, Vec<u8>, Vec<u8>)>>;
    async fn set_upload_progress(
        &self,
        id: Uuid,
        status: &str,
        progress: &serde_json::Value,
    ) -> StoreResult<()>;
    /// Marks the upload done or failed with its summary and error report.
    async fn finish_upload(
        &self,
        id: Uuid,
        status: &str,
        summary: &str,
        errors: &[u8],
    ) -> StoreResult<()>;
    async fn upload_status(&self, id: Uuid) -> StoreResult<Option<UploadStatus>>;
    async fn upload_errors(&self, id: Uuid) -> StoreResult<Option<Vec<u8>>>;
}
