//! The areas context on PostgreSQL.

use std::collections::HashSet;

use inkingi_domain::areas::{AreaCode, AreaLevel};
use inkingi_domain::text::search_key;
use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::PgAdapter;
use crate::areas::{
    areas_from_rows, check_descendant_levels, counts_by_level, push_list_filters, sorted_for_load,
    Area, AreaQuery, AreaRow, AreaStore, AREAS_DATASET,
};
use crate::StoreResult;

const COLUMNS: &str = "SELECT code, level, name, parent_code FROM areas";

/// Rows per `UNNEST` statement. One statement per batch keeps each round trip's arrays a few
/// hundred kilobytes.
const BATCH: usize = 5000;

/// Serialises loads of the areas data set when several nodes start at once.
const LOAD_LOCK: i64 = 0x696e_6b69_6172_6561; // "inkiarea"

#[async_trait::async_trait]
impl AreaStore for PgAdapter {
    async fn get_area(&self, code: &AreaCode) -> StoreResult<Option<Area>> {
        let row: Option<AreaRow> = sqlx::query_as(&format!("{COLUMNS} WHERE code = $1"))
            .bind(code.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(Area::try_from).transpose()
    }

    async fn get_areas(&self, codes: &[AreaCode]) -> StoreResult<Vec<Area>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let codes: Vec<&str> = codes.iter().map(AreaCode::as_str).collect();
        let rows: Vec<AreaRow> =
            sqlx::query_as(&format!("{COLUMNS} WHERE code = ANY($1) ORDER BY code"))
                .bind(codes)
                .fetch_all(&self.pool)
                .await?;
        areas_from_rows(rows)
    }

    async fn list_areas(&self, query: &AreaQuery) -> StoreResult<Vec<Area>> {
        let mut qb = QueryBuilder::<Postgres>::new(COLUMNS);
        push_list_filters(&mut qb, query);
        let rows: Vec<AreaRow> = qb.build_query_as().fetch_all(&self.pool).await?;
        areas_from_rows(rows)
    }

    async fn count_areas_by_level(&self) -> StoreResult<Vec<(AreaLevel, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT level, COUNT(*) FROM areas GROUP BY level")
                .fetch_all(&self.pool)
                .await?;
        counts_by_level(rows)
    }

    async fn count_descendants(
        &self,
        of: AreaLevel,
        counted: AreaLevel,
    ) -> StoreResult<Vec<(Area, i64)>> {
        check_descendant_levels(of, counted)?;
        // Codes nest by prefix, so grouping the descendants by their prefix counts them.
        let rows: Vec<(String, String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT a.code, a.level, a.name, a.parent_code, COALESCE(d.n, 0) \
             FROM areas a LEFT JOIN ( \
                 SELECT substr(code, 1, $1) AS ancestor, COUNT(*) AS n \
                 FROM areas WHERE level = $2 GROUP BY ancestor \
             ) d ON d.ancestor = a.code \
             WHERE a.level = $3 ORDER BY a.code",
        )
        .bind(of.code_len() as i32)
        .bind(counted.as_str())
        .bind(of.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(code, level, name, parent_code, n)| {
                let row = AreaRow {
                    code,
                    level,
                    name,
                    parent_code,
                };
                Ok((Area::try_from(row)?, n))
            })
            .collect()
    }

    async fn replace_areas(&self, version: &str, areas: &[Area]) -> StoreResult<()> {
        let sorted = sorted_for_load(areas)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LOAD_LOCK)
            .execute(&mut *tx)
            .await?;
        let stale = stale_codes(&mut tx, &sorted).await?;
        for chunk in sorted.chunks(BATCH) {
            upsert(&mut tx, chunk).await?;
        }
        // One statement: foreign keys are checked at its end, so order does not matter.
        sqlx::query("DELETE FROM areas WHERE code = ANY($1)")
            .bind(&stale)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO reference_data (dataset, version, rows, loaded_at) \
             VALUES ($1, $2, $3, now()) \
             ON CONFLICT (dataset) DO UPDATE SET version = excluded.version, \
                 rows = excluded.rows, loaded_at = excluded.loaded_at",
        )
        .bind(AREAS_DATASET)
        .bind(version)
        .bind(sorted.len() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn count_children(&self, code: &AreaCode) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM areas WHERE parent_code = $1")
            .bind(code.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}

/// Codes in the table that the new data set no longer lists.
async fn stale_codes(conn: &mut PgConnection, keep: &[&Area]) -> StoreResult<Vec<String>> {
    let keep: HashSet<&str> = keep.iter().map(|a| a.code.as_str()).collect();
    let existing: Vec<String> = sqlx::query_scalar("SELECT code FROM areas")
        .fetch_all(&mut *conn)
        .await?;
    Ok(existing
        .into_iter()
        .filter(|c| !keep.contains(c.as_str()))
        .collect())
}

/// Inserts new areas and updates changed ones; unchanged rows are not rewritten.
async fn upsert(conn: &mut PgConnection, chunk: &[&Area]) -> StoreResult<()> {
    let mut codes = Vec::with_capacity(chunk.len());
    let mut levels = Vec::with_capacity(chunk.len());
    let mut names = Vec::with_capacity(chunk.len());
    let mut keys = Vec::with_capacity(chunk.len());
    let mut parents = Vec::with_capacity(chunk.len());
    for area in chunk {
        codes.push(area.code.as_str());
        levels.push(area.level.as_str());
        names.push(area.name.as_str());
        keys.push(search_key(&area.name));
        parents.push(area.parent.as_ref().map(AreaCode::as_str));
    }
    sqlx::query(
        "INSERT INTO areas (code, level, name, name_key, parent_code) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) \
         ON CONFLICT (code) DO UPDATE SET level = excluded.level, name = excluded.name, \
             name_key = excluded.name_key, parent_code = excluded.parent_code \
         WHERE (areas.level, areas.name, areas.name_key, areas.parent_code) \
             IS DISTINCT FROM (excluded.level, excluded.name, excluded.name_key, \
                               excluded.parent_code)",
    )
    .bind(codes)
    .bind(levels)
    .bind(names)
    .bind(keys)
    .bind(parents)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
