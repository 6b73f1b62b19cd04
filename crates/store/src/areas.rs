//! Port of the `areas` context: Rwanda's administrative hierarchy (reference data).

use inkingi_domain::areas::{AreaCode, AreaLevel};
use serde::Serialize;

use crate::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Area {
    pub code: AreaCode,
    pub name: String,
    pub level: AreaLevel,
    pub parent: Option<AreaCode>,
}

/// Filters for [`AreaStore::list_areas`]; all optional and combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AreaQuery {
    /// Only direct children of this area.
    pub parent: Option<AreaCode>,
    pub level: Option<AreaLevel>,
    /// Case- and diacritic-insensitive substring of the name.
    pub q: Option<String>,
    /// Keyset pagination: only codes greater than this one.
    pub after: Option<AreaCode>,
    /// At most this many, ordered by code.
    pub limit: u32,
}

/// Read access to administrative areas. Areas are public reference data: no scope is needed.
#[async_trait::async_trait]
pub trait AreaStore: Send + Sync {
    async fn get_area(&self, code: &AreaCode) -> StoreResult<Option<Area>>;
    /// The areas with these codes that exist, ordered by code.
    async fn get_areas(&self, codes: &[AreaCode]) -> StoreResult<Vec<Area>>;
    async fn list_areas(&self, query: &AreaQuery) -> StoreResult<Vec<Area>>;
    /// How many areas each level has.
    async fn count_areas_by_level(&self) -> StoreResult<Vec<(AreaLevel, i64)>>;
    /// Each area of level `of` with the number of its descendants at level `counted`
    /// (e.g. villages per district), ordered by code.
    async fn count_descendants(
        &self,
        of: AreaLevel,
        counted: AreaLevel,
    ) -> StoreResult<Vec<(Area, i64)>>;
    /// Replaces the reference data set with `areas` in one transaction and records `version`.
    async fn replace_areas(&self, version: &str, areas: &[Area]) -> StoreResult<()>;
}
