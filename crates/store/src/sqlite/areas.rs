use super::SqliteAdapter;
use crate::areas::AreaStore;

#[async_trait::async_trait]
impl AreaStore for SqliteAdapter {}
