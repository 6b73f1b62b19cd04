//! Port of the `areas` context: Rwanda's administrative hierarchy (reference data).

use inkingi_domain::areas::{AreaCode, AreaLevel};

use crate::{StoreError, StoreResult};

pub use inkingi_domain::areas::Area;

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
    ///
    /// Areas are upserted by code and those no longer listed are deleted, so rows elsewhere
    /// that refer to an unchanged area keep pointing at it; deleting an area still referred to
    /// fails the whole replacement.
    async fn replace_areas(&self, version: &str, areas: &[Area]) -> StoreResult<()>;
    /// How many areas have `code` as their parent.
    async fn count_children(&self, code: &AreaCode) -> StoreResult<i64>;
}

/// The name of the areas data set in `reference_data`.
pub const AREAS_DATASET: &str = "areas";

/// An `areas` row as both adapters read it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AreaRow {
    pub code: String,
    pub level: String,
    pub name: String,
    pub parent_code: Option<String>,
}

impl TryFrom<AreaRow> for Area {
    type Error = StoreError;

    fn try_from(row: AreaRow) -> StoreResult<Area> {
        // Constraints make these impossible; a failure means the table was edited by hand.
        let corrupt = |what: String| StoreError::Invalid(format!("areas row {}: {what}", row.code));
        let code = AreaCode::parse(&row.code).map_err(|e| corrupt(e.to_string()))?;
        let level = row
            .level
            .parse::<AreaLevel>()
            .map_err(|e| corrupt(e.to_string()))?;
        let parent = row
            .parent_code
            .as_deref()
            .map(AreaCode::parse)
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(Area {
            code,
            name: row.name,
            level,
            parent,
        })
    }
}

pub(crate) fn areas_from_rows(rows: Vec<AreaRow>) -> StoreResult<Vec<Area>> {
    rows.into_iter().map(Area::try_from).collect()
}

/// The `LIKE` pattern that finds `q` anywhere in a `name_key`, with `\` as the escape character.
pub(crate) fn name_pattern(q: &str) -> String {
    let key = inkingi_domain::text::search_key(q);
    let mut out = String::with_capacity(key.len() + 2);
    out.push('%');
    for c in key.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Appends the `WHERE … ORDER BY … LIMIT` of [`AreaStore::list_areas`] to a query selecting from
/// `areas`; the same SQL serves both backends.
pub(crate) fn push_list_filters<'a, DB>(qb: &mut sqlx::QueryBuilder<'a, DB>, q: &AreaQuery)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push(" WHERE TRUE");
    if let Some(parent) = &q.parent {
        qb.push(" AND parent_code = ")
            .push_bind(parent.as_str().to_string());
    }
    if let Some(level) = q.level {
        qb.push(" AND level = ")
            .push_bind(level.as_str().to_string());
    }
    if let Some(text) = q.q.as_deref().filter(|t| !t.trim().is_empty()) {
        qb.push(" AND name_key LIKE ")
            .push_bind(name_pattern(text))
            .push(" ESCAPE '\\'");
    }
    if let Some(after) = &q.after {
        qb.push(" AND code > ")
            .push_bind(after.as_str().to_string());
    }
    qb.push(" ORDER BY code LIMIT ")
        .push_bind(i64::from(q.limit));
}

/// Checks the input of [`AreaStore::replace_areas`] and returns it sorted by code, so parents
/// come before their children.
pub(crate) fn sorted_for_load(areas: &[Area]) -> StoreResult<Vec<&Area>> {
    let mut sorted: Vec<&Area> = areas.iter().collect();
    sorted.sort_by(|a, b| a.code.cmp(&b.code));
    if let Some(w) = sorted.windows(2).find(|w| w[0].code == w[1].code) {
        return Err(StoreError::Invalid(format!(
            "area {} is listed twice",
            w[0].code
        )));
    }
    Ok(sorted)
}

/// A count for every level, zero where there are no areas, from provinces down.
pub(crate) fn counts_by_level(rows: Vec<(String, i64)>) -> StoreResult<Vec<(AreaLevel, i64)>> {
    let mut out: Vec<(AreaLevel, i64)> = AreaLevel::ALL.iter().map(|l| (*l, 0)).collect();
    for (level, n) in rows {
        let level = level
            .parse::<AreaLevel>()
            .map_err(|e| StoreError::Invalid(format!("areas table: {e}")))?;
        if let Some(slot) = out.iter_mut().find(|(l, _)| *l == level) {
            slot.1 = n;
        }
    }
    Ok(out)
}

/// `counted` must lie below `of` for [`AreaStore::count_descendants`].
pub(crate) fn check_descendant_levels(of: AreaLevel, counted: AreaLevel) -> StoreResult<()> {
    if counted > of {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "cannot count {counted}s inside {of}s: {counted} is not below {of}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_pattern_keys_and_escapes() {
        assert_eq!(name_pattern("  GÁSABO "), "%gasabo%");
        assert_eq!(name_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
