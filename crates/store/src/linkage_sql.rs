//! The SQL of [`crate::linkage::LinkageReviewStore`], written once and expanded for each
//! backend inside its children adapter module (which provides `enc_ts`, `dec_ts` and
//! `dec_ts_opt`, as for [`crate::children::ChildStore`]).

/// Implements `LinkageReviewStore` for `$adapter` in a module of its own.
macro_rules! linkage_impl {
    ($adapter:ident, $db:ty, $uow:ident, |$s:ident| $read:expr) => {
        mod linkage_reviews {
            use super::{dec_ts, dec_ts_opt, enc_ts, $adapter};
            use inkingi_domain::identity::AreaScope;
            use sqlx::types::Json;
            use sqlx::{QueryBuilder, Row};
            use uuid::Uuid;

            use crate::children::LinkageReview;
            use crate::linkage::{LinkageReviewStore, Review, ReviewDecision, ReviewQuery};
            use crate::registry::{area_range, push_scope};
            use crate::{StoreResult, UnitOfWork};

            type DbRow = <$db as sqlx::Database>::Row;

            /// The tables whose rows are facts about a (source) person.
            const FACT_TABLES: [&str; 4] = [
                "child_immunizations",
                "child_measurements",
                "child_pregnancies",
                "child_encounters",
            ];

            fn review(r: &DbRow) -> StoreResult<Review> {
                let e: Json<serde_json::Value> = r.try_get("explanation")?;
                Ok(Review {
                    review: LinkageReview {
                        id: r.try_get("id")?,
                        kind: r.try_get("kind")?,
                        source_system: r.try_get("source_system")?,
                        source_id: r.try_get("source_id")?,
                        candidate_person_id: r.try_get("candidate_person_id")?,
                        weight: r.try_get("weight")?,
                        explanation: e.0,
                        status: r.try_get("status")?,
                        area_code: r.try_get("area_code")?,
                        created_at: dec_ts(r, "created_at")?,
                        decided_at: dec_ts_opt(r, "decided_at")?,
                        decided_by: r.try_get("decided_by")?,
                    },
                    auto_link: r.try_get("auto_link")?,
                    decision_reason: r.try_get("decision_reason")?,
                    change_request_id: r.try_get("change_request_id")?,
                })
            }

            fn push_where(qb: &mut QueryBuilder<'_, $db>, scope: &AreaScope, q: &ReviewQuery) {
                push_scope(qb, "area_code", scope);
                if let Some(s) = &q.status {
                    qb.push(" AND status = ").push_bind(s.clone());
                }
                if let Some(k) = &q.kind {
                    qb.push(" AND kind = ").push_bind(k.clone());
                }
                if let Some(a) = &q.area {
                    let (lo, hi) = area_range(a.as_str());
                    qb.push(" AND area_code >= ").push_bind(lo);
                    qb.push(" AND area_code < ").push_bind(hi);
                }
            }

            #[async_trait::async_trait]
            impl LinkageReviewStore for $adapter {
                async fn queue_pair(
                    &self,
                    uow: &mut UnitOfWork,
                    r: &LinkageReview,
                    auto_link: bool,
                ) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "INSERT INTO linkage_reviews (id, kind, source_system, source_id, \
                         candidate_person_id, weight, explanation, status, area_code, \
                         created_at, auto_link) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, \
                         $9, $10) ON CONFLICT (kind, source_system, source_id, \
                         candidate_person_id) WHERE kind = 'registry_duplicate' DO NOTHING",
                    )
                    .bind(r.id)
                    .bind(&r.kind)
                    .bind(&r.source_system)
                    .bind(&r.source_id)
                    .bind(r.candidate_person_id)
                    .bind(r.weight)
                    .bind(Json(&r.explanation))
                    .bind(&r.area_code)
                    .bind(enc_ts(r.created_at))
                    .bind(auto_link)
                    .execute(uow.$uow()?)
                    .await?
                    .rows_affected();
                    Ok(done == 1)
                }

                async fn reviews(
                    &self,
                    scope: &AreaScope,
                    q: &ReviewQuery,
                ) -> StoreResult<(Vec<Review>, u64)> {
                    let $s = self;
                    let mut count: QueryBuilder<$db> =
                        QueryBuilder::new("SELECT COUNT(*) FROM linkage_reviews WHERE TRUE");
                    push_where(&mut count, scope, q);
                    let total: i64 = count.build_query_scalar().fetch_one($read).await?;
                    let mut qb: QueryBuilder<$db> =
                        QueryBuilder::new("SELECT * FROM linkage_reviews WHERE TRUE");
                    push_where(&mut qb, scope, q);
                    qb.push(" ORDER BY created_at, id LIMIT ")
                        .push_bind(i64::from(q.limit))
                        .push(" OFFSET ")
                        .push_bind(i64::try_from(q.offset).unwrap_or(i64::MAX));
                    let rows = qb.build().fetch_all($read).await?;
                    let items = rows.iter().map(review).collect::<StoreResult<Vec<_>>>()?;
                    Ok((items, u64::try_from(total).unwrap_or(0)))
                }

                async fn review(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<Review>> {
                    let $s = self;
                    let mut qb: QueryBuilder<$db> =
                        QueryBuilder::new("SELECT * FROM linkage_reviews WHERE id = ");
                    qb.push_bind(id);
                    push_scope(&mut qb, "area_code", scope);
                    qb.build()
                        .fetch_optional($read)
                        .await?
                        .map(|r| review(&r))
                        .transpose()
                }

                async fn decide_review(
                    &self,
                    uow: &mut UnitOfWork,
                    id: Uuid,
                    d: &ReviewDecision<'_>,
                ) -> StoreResult<bool> {
                    // Only an open review changes: of two concurrent decisions, one finds it
                    // decided and is told so.
                    let done = sqlx::query(
                        "UPDATE linkage_reviews SET status = $1, decided_at = $2, \
                         decided_by = $3, decision_reason = $4, change_request_id = $5 \
                         WHERE id = $6 AND status = 'open'",
                    )
                    .bind(d.status)
                    .bind(enc_ts(d.at))
                    .bind(d.by)
                    .bind(d.reason)
                    .bind(d.change_request_id)
                    .bind(id)
                    .execute(uow.$uow()?)
                    .await?
                    .rows_affected();
                    Ok(done == 1)
                }

                async fn reopen_review(&self, uow: &mut UnitOfWork, id: Uuid) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "UPDATE linkage_reviews SET status = 'open', decided_at = NULL, \
                         decided_by = NULL, decision_reason = NULL, change_request_id = NULL \
                         WHERE id = $1 AND status = 'confirmed'",
                    )
                    .bind(id)
                    .execute(uow.$uow()?)
                    .await?
                    .rows_affected();
                    Ok(done == 1)
                }

                async fn link_source_person(
                    &self,
                    uow: &mut UnitOfWork,
                    source_person_id: Uuid,
                    person_id: Uuid,
                ) -> StoreResult<bool> {
                    let c = uow.$uow()?;
                    let done = sqlx::query(
                        "UPDATE child_source_people SET person_id = $1, link_method = 'review' \
                         WHERE id = $2 AND person_id IS NULL",
                    )
                    .bind(person_id)
                    .bind(source_person_id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                    if done != 1 {
                        return Ok(false);
                    }
                    // Facts of an unlinked source person have no registry person yet; they
                    // follow it, and only those (an unlink gives back exactly these).
                    for table in FACT_TABLES {
                        sqlx::query(&format!(
                            "UPDATE {table} SET person_id = $1 \
                             WHERE source_person_id = $2 AND person_id IS NULL"
                        ))
                        .bind(person_id)
                        .bind(source_person_id)
                        .execute(&mut *c)
                        .await?;
                    }
                    Ok(true)
                }

                async fn unlink_source_person(
                    &self,
                    uow: &mut UnitOfWork,
                    source_person_id: Uuid,
                    person_id: Uuid,
                ) -> StoreResult<bool> {
                    let c = uow.$uow()?;
                    let done = sqlx::query(
                        "UPDATE child_source_people SET person_id = NULL, link_method = NULL \
                         WHERE id = $1 AND person_id = $2 AND link_method = 'review'",
                    )
                    .bind(source_person_id)
                    .bind(person_id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                    if done != 1 {
                        return Ok(false);
                    }
                    for table in FACT_TABLES {
                        sqlx::query(&format!(
                            "UPDATE {table} SET person_id = NULL \
                             WHERE source_person_id = $1 AND person_id = $2"
                        ))
                        .bind(source_person_id)
                        .bind(person_id)
                        .execute(&mut *c)
                        .await?;
                    }
                    Ok(true)
                }
            }
        }
    };
}
