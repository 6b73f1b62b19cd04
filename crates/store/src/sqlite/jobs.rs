use super::SqliteAdapter;
use crate::jobs::JobStore;

#[async_trait::async_trait]
impl JobStore for SqliteAdapter {}
