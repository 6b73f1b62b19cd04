//! The areas context on SQLite.

use std::collections::HashSet;

use inkingi_domain::areas::{AreaCode, AreaLevel};
use inkingi_domain::text::search_key;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::SqliteAdapter;
use crate::areas::{
    areas_from_rows, check_descendant_levels, counts_by_level, push_list_filters, sorted_for_load,
    Area, AreaQuery, AreaRow, AreaStore, AREAS_DATASET,
};
use crate::StoreResult;

const COLUMNS: &str = "SELECT code, level, name, parent_code FROM areas";

/// Rows per multi-row statement: 5 bound values each, far below SQLite's 32,766 limit, and
/// large enough that a full load is a few dozen statements.
const BATCH: usize = 500;

#[async_trait::async_trait]
impl AreaStore for SqliteAdapter {
    async fn get_area(&self, code: &AreaCode) -> StoreResult<Option<Area>> {
        let row: Option<AreaRow> = sqlx::query_as(&format!("{COLUMNS} WHERE code = ?1"))
            .bind(code.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.map(Area::try_from).transpose()
    }

    async fn get_areas(&self, codes: &[AreaCode]) -> StoreResult<Vec<Area>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = QueryBuilder::<Sqlite>::new(COLUMNS);
        qb.push(" WHERE code IN (");
        let mut list = qb.separated(", ");
        for code in codes {
            list.push_bind(code.as_str().to_string());
        }
        qb.push(") ORDER BY code");
        let rows: Vec<AreaRow> = qb.build_query_as().fetch_all(&self.read).await?;
        areas_from_rows(rows)
    }

    async fn list_areas(&self, query: &AreaQuery) -> StoreResult<Vec<Area>> {
        let mut qb = QueryBuilder::<Sqlite>::new(COLUMNS);
        push_list_filters(&mut qb, query);
        let rows: Vec<AreaRow> = qb.build_query_as().fetch_all(&self.read).await?;
        areas_from_rows(rows)
    }

    async fn count_areas_by_level(&self) -> StoreResult<Vec<(AreaLevel, i64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT level, COUNT(*) FROM areas GROUP BY level")
                .fetch_all(&self.read)
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
                 SELECT substr(code, 1, ?1) AS ancestor, COUNT(*) AS n \
                 FROM areas WHERE level = ?2 GROUP BY ancestor \
             ) d ON d.ancestor = a.code \
             WHERE a.level = ?3 ORDER BY a.code",
        )
        .bind(of.code_len() as i64)
        .bind(counted.as_str())
        .bind(of.as_str())
        .fetch_all(&self.read)
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
        let mut tx = self.write.begin().await?;
        let stale = stale_codes(&mut tx, &sorted).await?;
        for chunk in sorted.chunks(BATCH) {
            upsert(&mut tx, chunk).await?;
        }
        delete(&mut tx, &stale).await?;
        sqlx::query(
            "INSERT INTO reference_data (dataset, version, rows, loaded_at) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (dataset) DO UPDATE SET version = excluded.version, \
                 rows = excluded.rows, loaded_at = excluded.loaded_at",
        )
        .bind(AREAS_DATASET)
        .bind(version)
        .bind(sorted.len() as i64)
        .bind(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn count_children(&self, code: &AreaCode) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM areas WHERE parent_code = ?1")
            .bind(code.as_str())
            .fetch_one(&self.read)
            .await?;
        Ok(n)
    }
}

/// Codes in the table that the new data set no longer lists, children before parents.
async fn stale_codes(conn: &mut SqliteConnection, keep: &[&Area]) -> StoreResult<Vec<String>> {
    let keep: HashSet<&str> = keep.iter().map(|a| a.code.as_str()).collect();
    let existing: Vec<String> = sqlx::query_scalar("SELECT code FROM areas")
        .fetch_all(&mut *conn)
        .await?;
    let mut stale: Vec<String> = existing
        .into_iter()
        .filter(|c| !keep.contains(c.as_str()))
        .collect();
    stale.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    Ok(stale)
}

/// Inserts new areas and updates changed ones; unchanged rows are not rewritten.
async fn upsert(conn: &mut SqliteConnection, chunk: &[&Area]) -> StoreResult<()> {
    let mut qb = QueryBuilder::<Sqlite>::new(
        "INSERT INTO areas (code, level, name, name_key, parent_code) ",
    );
    qb.push_values(chunk, |mut row, area| {
        row.push_bind(area.code.as_str().to_string())
            .push_bind(area.level.as_str())
            .push_bind(area.name.clone())
            .push_bind(search_key(&area.name))
            .push_bind(area.parent.as_ref().map(|p| p.as_str().to_string()));
    });
    qb.push(
        " ON CONFLICT (code) DO UPDATE SET level = excluded.level, name = excluded.name, \
         name_key = excluded.name_key, parent_code = excluded.parent_code \
         WHERE areas.level IS NOT excluded.level OR areas.name IS NOT excluded.name \
            OR areas.name_key IS NOT excluded.name_key \
            OR areas.parent_code IS NOT excluded.parent_code",
    );
    qb.build().execute(&mut *conn).await?;
    Ok(())
}

async fn delete(conn: &mut SqliteConnection, codes: &[String]) -> StoreResult<()> {
    for chunk in codes.chunks(BATCH) {
        let mut qb = QueryBuilder::<Sqlite>::new("DELETE FROM areas WHERE code IN (");
        let mut list = qb.separated(", ");
        for code in chunk {
            list.push_bind(code.clone());
        }
        qb.push(")");
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}
