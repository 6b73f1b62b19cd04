// Placeholder until the areas adapter lands (being built on the feat/areas branch).
use inkingi_domain::areas::{AreaCode, AreaLevel};

use super::SqliteAdapter;
use crate::areas::{Area, AreaQuery, AreaStore};
use crate::{StoreError, StoreResult};

fn missing<T>() -> StoreResult<T> {
    Err(StoreError::Unavailable(
        "areas adapter not built yet".into(),
    ))
}

#[async_trait::async_trait]
impl AreaStore for SqliteAdapter {
    async fn get_area(&self, _code: &AreaCode) -> StoreResult<Option<Area>> {
        missing()
    }
    async fn get_areas(&self, _codes: &[AreaCode]) -> StoreResult<Vec<Area>> {
        missing()
    }
    async fn list_areas(&self, _query: &AreaQuery) -> StoreResult<Vec<Area>> {
        missing()
    }
    async fn count_areas_by_level(&self) -> StoreResult<Vec<(AreaLevel, i64)>> {
        missing()
    }
    async fn count_descendants(
        &self,
        _of: AreaLevel,
        _counted: AreaLevel,
    ) -> StoreResult<Vec<(Area, i64)>> {
        missing()
    }
    async fn replace_areas(&self, _version: &str, _areas: &[Area]) -> StoreResult<()> {
        missing()
    }
}
