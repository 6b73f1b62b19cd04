//! The SQL of [`crate::children::ChildStore`], written once and expanded for each backend: the
//! statements are the same, only the connection and the timestamp encoding differ (the
//! adapter module in scope provides `enc_ts`, `dec_ts` and `dec_ts_opt`).

/// Implements `ChildStore` for `$adapter`: `$db` is the sqlx database, `$uow` the unit of
/// work's connection accessor, `$read` the expression giving a read executor from `self`.
macro_rules! children_impl {
    ($adapter:ty, $db:ty, $uow:ident, |$s:ident| $read:expr) => {
        use chrono::NaiveDate;
        use inkingi_domain::identity::AreaScope;
        use sqlx::types::Json;
        use sqlx::{QueryBuilder, Row};
        use uuid::Uuid;

        use crate::children::{
            ChildStore, Encounter, FeedFact, FeedKind, Immunization, LinkageReview, Measurement,
            MeasurementKind, PersonFacts, Pregnancy, Provenance, Sealed, SourcePerson, Subject,
            Written,
        };
        use crate::registry::push_scope;
        use crate::{StoreError, StoreResult, UnitOfWork};

        type DbRow = <$db as sqlx::Database>::Row;

        const SOURCE_PERSON_COLS: &str = "sp.id, sp.kind, sp.person_id, sp.link_method, \
            sp.area_code, sp.given_name, sp.family_name, sp.sex, sp.birth_date, sp.identifiers, \
            sp.related_to, sp.relationship, sp.source_system, sp.source_id, sp.received_at, \
            sp.received_by";

        fn provenance(r: &DbRow) -> StoreResult<Provenance> {
            Ok(Provenance {
                source_system: r.try_get("source_system")?,
                source_id: r.try_get("source_id")?,
                received_at: dec_ts(r, "received_at")?,
                received_by: r.try_get("received_by")?,
            })
        }

        fn subject(r: &DbRow) -> StoreResult<Subject> {
            Ok(Subject {
                person_id: r.try_get("person_id")?,
                source_person_id: r.try_get("source_person_id")?,
            })
        }

        fn source_person(r: &DbRow) -> StoreResult<SourcePerson> {
            let ids: Json<serde_json::Value> = r.try_get("identifiers")?;
            Ok(SourcePerson {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                person_id: r.try_get("person_id")?,
                link_method: r.try_get("link_method")?,
                area_code: r.try_get("area_code")?,
                given_name: r.try_get("given_name")?,
                family_name: r.try_get("family_name")?,
                sex: r.try_get("sex")?,
                birth_date: r.try_get("birth_date")?,
                identifiers: ids.0,
                related_to: r.try_get("related_to")?,
                relationship: r.try_get("relationship")?,
                provenance: provenance(r)?,
            })
        }

        fn immunization(r: &DbRow) -> StoreResult<Immunization> {
            let dose: Option<i32> = r.try_get("dose_number")?;
            Ok(Immunization {
                id: r.try_get("id")?,
                subject: subject(r)?,
                vaccine_system: r.try_get("vaccine_system")?,
                vaccine_code: r.try_get("vaccine_code")?,
                vaccine: r.try_get("vaccine")?,
                needs_mapping: r.try_get("needs_mapping")?,
                dose_number: dose.and_then(|d| u32::try_from(d).ok()),
                occurred_on: r.try_get("occurred_on")?,
                provenance: provenance(r)?,
            })
        }

        fn measurement(r: &DbRow) -> StoreResult<Measurement> {
            let kind: String = r.try_get("kind")?;
            let z: Json<serde_json::Value> = r.try_get("zscores")?;
            Ok(Measurement {
                id: r.try_get("id")?,
                subject: subject(r)?,
                kind: MeasurementKind::parse(&kind).ok_or_else(|| {
                    StoreError::Invalid(format!("child_measurements: kind '{kind}'"))
                })?,
                loinc: r.try_get("loinc")?,
                value: r.try_get("value")?,
                unit: r.try_get("unit")?,
                measured_on: r.try_get("measured_on")?,
                zscores: z.0,
                provenance: provenance(r)?,
            })
        }

        fn pregnancy(r: &DbRow) -> StoreResult<Pregnancy> {
            Ok(Pregnancy {
                id: r.try_get("id")?,
                subject: subject(r)?,
                lmp: r.try_get::<Option<NaiveDate>, _>("lmp")?,
                edd: r.try_get::<Option<NaiveDate>, _>("edd")?,
                outcome: r.try_get("outcome")?,
                outcome_on: r.try_get::<Option<NaiveDate>, _>("outcome_on")?,
                provenance: provenance(r)?,
            })
        }

        fn encounter(r: &DbRow) -> StoreResult<Encounter> {
            Ok(Encounter {
                id: r.try_get("id")?,
                subject: subject(r)?,
                kind: r.try_get("kind")?,
                pregnancy_id: r.try_get("pregnancy_id")?,
                occurred_on: r.try_get("occurred_on")?,
                provenance: provenance(r)?,
            })
        }

        fn feed_fact(r: &DbRow) -> StoreResult<FeedFact> {
            let kind: String = r.try_get("kind")?;
            let details: Json<serde_json::Value> = r.try_get("details")?;
            let key_id: Option<String> = r.try_get("key_id")?;
            let bytes: Option<Vec<u8>> = r.try_get("sealed")?;
            Ok(FeedFact {
                id: r.try_get("id")?,
                subject: subject(r)?,
                kind: FeedKind::parse(&kind).ok_or_else(|| {
                    StoreError::Invalid(format!("child_feed_facts: kind '{kind}'"))
                })?,
                occurred_on: r.try_get("occurred_on")?,
                ended_on: r.try_get::<Option<NaiveDate>, _>("ended_on")?,
                details: details.0,
                sealed: key_id.zip(bytes).map(|(key_id, bytes)| Sealed { key_id, bytes }),
                provenance: provenance(r)?,
            })
        }

        fn review(r: &DbRow) -> StoreResult<LinkageReview> {
            let e: Json<serde_json::Value> = r.try_get("explanation")?;
            Ok(LinkageReview {
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
            })
        }

        /// The row already holding this source key, after an insert that did nothing.
        async fn existing(
            c: &mut <$db as sqlx::Database>::Connection,
            table: &str,
            system: &str,
            id: &str,
        ) -> StoreResult<Written> {
            let q = format!("SELECT id FROM {table} WHERE source_system = $1 AND source_id = $2");
            let row = sqlx::query(&q).bind(system).bind(id).fetch_one(&mut *c).await?;
            Ok(Written::Existing(row.try_get("id")?))
        }

        fn written(done: u64, id: Uuid) -> Option<Written> {
            (done == 1).then_some(Written::Created(id))
        }

        type Insert<'q> = sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>;

        /// The insert of one fact into `table`: the columns every fact table shares (id,
        /// subject, source key, receipt) are `$1`–`$7`, then `cols` from `$8`. A fact already
        /// stored under its source key is left alone (see [`settle`]).
        fn fact_sql(table: &str, cols: &[&str]) -> String {
            let params: Vec<String> = (8..8 + cols.len()).map(|i| format!("${i}")).collect();
            format!(
                "INSERT INTO {table} (id, person_id, source_person_id, source_system, source_id, \
                 received_at, received_by, {}) VALUES ($1, $2, $3, $4, $5, $6, $7, {}) \
                 ON CONFLICT (source_system, source_id) DO NOTHING",
                cols.join(", "),
                params.join(", ")
            )
        }

        /// Binds the shared columns of [`fact_sql`]; the caller binds its own after them.
        fn bind_head<'q>(q: Insert<'q>, id: Uuid, s: &Subject, pr: &'q Provenance) -> Insert<'q> {
            q.bind(id)
                .bind(s.person_id)
                .bind(s.source_person_id)
                .bind(&pr.source_system)
                .bind(&pr.source_id)
                .bind(enc_ts(pr.received_at))
                .bind(&pr.received_by)
        }

        /// Runs a fact insert: the new row, or the row already holding its source key (a
        /// re-sent message stores nothing).
        async fn settle(
            c: &mut <$db as sqlx::Database>::Connection,
            q: Insert<'_>,
            id: Uuid,
            table: &str,
            pr: &Provenance,
        ) -> StoreResult<Written> {
            let done = q.execute(&mut *c).await?.rows_affected();
            match written(done, id) {
                Some(w) => Ok(w),
                None => existing(c, table, &pr.source_system, &pr.source_id).await,
            }
        }

        /// `table` rows of the given subject column, oldest first.
        async fn rows_of(
            $s: &$adapter,
            table: &str,
            column: &str,
            date: &str,
            ids: &[Uuid],
        ) -> StoreResult<Vec<DbRow>> {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut qb: QueryBuilder<$db> =
                QueryBuilder::new(format!("SELECT * FROM {table} WHERE {column} IN ("));
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(format!(") ORDER BY {date}, id"));
            Ok(qb.build().fetch_all($read).await?)
        }

        async fn facts_where(
            $s: &$adapter,
            column: &str,
            ids: &[Uuid],
        ) -> StoreResult<PersonFacts> {
            let mut all = PersonFacts::default();
            for r in rows_of($s, "child_immunizations", column, "occurred_on", ids).await? {
                all.immunizations.push(immunization(&r)?);
            }
            for r in rows_of($s, "child_measurements", column, "measured_on", ids).await? {
                all.measurements.push(measurement(&r)?);
            }
            for r in rows_of($s, "child_pregnancies", column, "received_at", ids).await? {
                all.pregnancies.push(pregnancy(&r)?);
            }
            for r in rows_of($s, "child_encounters", column, "occurred_on", ids).await? {
                all.encounters.push(encounter(&r)?);
            }
            // Only enrolments: protection cases and sealed facts are read one kind at a time.
            let enrolments = "(SELECT * FROM child_feed_facts \
                WHERE kind = 'preprimary_enrolment') f";
            for r in rows_of($s, enrolments, column, "occurred_on", ids).await? {
                all.enrolments.push(feed_fact(&r)?);
            }
            Ok(all)
        }

        fn split_by_person(ids: &[Uuid], all: PersonFacts) -> Vec<(Uuid, PersonFacts)> {
            ids.iter()
                .map(|id| {
                    let mine = |s: &Subject| s.person_id == Some(*id);
                    (
                        *id,
                        PersonFacts {
                            immunizations: all
                                .immunizations
                                .iter()
                                .filter(|f| mine(&f.subject))
                                .cloned()
                                .collect(),
                            measurements: all
                                .measurements
                                .iter()
                                .filter(|f| mine(&f.subject))
                                .cloned()
                                .collect(),
                            pregnancies: all
                                .pregnancies
                                .iter()
                                .filter(|f| mine(&f.subject))
                                .cloned()
                                .collect(),
                            encounters: all
                                .encounters
                                .iter()
                                .filter(|f| mine(&f.subject))
                                .cloned()
                                .collect(),
                            enrolments: all
                                .enrolments
                                .iter()
                                .filter(|f| mine(&f.subject))
                                .cloned()
                                .collect(),
                        },
                    )
                })
                .collect()
        }

        #[async_trait::async_trait]
        impl ChildStore for $adapter {
            async fn put_source_person(
                &self,
                uow: &mut UnitOfWork,
                p: &SourcePerson,
            ) -> StoreResult<Written> {
                let q = sqlx::query(
                    "INSERT INTO child_source_people (id, source_system, source_id, kind, \
                     person_id, link_method, area_code, given_name, family_name, sex, \
                     birth_date, identifiers, related_to, relationship, received_at, \
                     received_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                     $13, $14, $15, $16) ON CONFLICT (source_system, source_id) DO NOTHING",
                )
                .bind(p.id)
                .bind(&p.provenance.source_system)
                .bind(&p.provenance.source_id)
                .bind(&p.kind)
                .bind(p.person_id)
                .bind(&p.link_method)
                .bind(&p.area_code)
                .bind(&p.given_name)
                .bind(&p.family_name)
                .bind(&p.sex)
                .bind(&p.birth_date)
                .bind(Json(&p.identifiers))
                .bind(p.related_to)
                .bind(&p.relationship)
                .bind(enc_ts(p.provenance.received_at))
                .bind(&p.provenance.received_by);
                settle(uow.$uow()?, q, p.id, "child_source_people", &p.provenance).await
            }

            async fn put_immunization(
                &self,
                uow: &mut UnitOfWork,
                f: &Immunization,
            ) -> StoreResult<Written> {
                const TABLE: &str = "child_immunizations";
                let sql = fact_sql(
                    TABLE,
                    &[
                        "vaccine_system",
                        "vaccine_code",
                        "vaccine",
                        "needs_mapping",
                        "dose_number",
                        "occurred_on",
                    ],
                );
                let q = bind_head(sqlx::query(&sql), f.id, &f.subject, &f.provenance)
                    .bind(&f.vaccine_system)
                    .bind(&f.vaccine_code)
                    .bind(&f.vaccine)
                    .bind(f.needs_mapping)
                    .bind(f.dose_number.and_then(|d| i32::try_from(d).ok()))
                    .bind(f.occurred_on);
                settle(uow.$uow()?, q, f.id, TABLE, &f.provenance).await
            }

            async fn put_measurement(
                &self,
                uow: &mut UnitOfWork,
                f: &Measurement,
            ) -> StoreResult<Written> {
                const TABLE: &str = "child_measurements";
                let sql = fact_sql(
                    TABLE,
                    &[
                        "kind",
                        "loinc",
                        "value",
                        "unit",
                        "measured_on",
                        "zscores",
                    ],
                );
                let q = bind_head(sqlx::query(&sql), f.id, &f.subject, &f.provenance)
                    .bind(f.kind.as_str())
                    .bind(&f.loinc)
                    .bind(f.value)
                    .bind(&f.unit)
                    .bind(f.measured_on)
                    .bind(Json(&f.zscores));
                settle(uow.$uow()?, q, f.id, TABLE, &f.provenance).await
            }

            async fn put_pregnancy(
                &self,
                uow: &mut UnitOfWork,
                f: &Pregnancy,
            ) -> StoreResult<Written> {
                const TABLE: &str = "child_pregnancies";
                let sql = fact_sql(TABLE, &["lmp", "edd", "outcome", "outcome_on"]);
                let q = bind_head(sqlx::query(&sql), f.id, &f.subject, &f.provenance)
                    .bind(f.lmp)
                    .bind(f.edd)
                    .bind(&f.outcome)
                    .bind(f.outcome_on);
                settle(uow.$uow()?, q, f.id, TABLE, &f.provenance).await
            }

            async fn put_encounter(
                &self,
                uow: &mut UnitOfWork,
                f: &Encounter,
            ) -> StoreResult<Written> {
                const TABLE: &str = "child_encounters";
                let sql = fact_sql(TABLE, &["kind", "pregnancy_id", "occurred_on"]);
                let q = bind_head(sqlx::query(&sql), f.id, &f.subject, &f.provenance)
                    .bind(&f.kind)
                    .bind(f.pregnancy_id)
                    .bind(f.occurred_on);
                settle(uow.$uow()?, q, f.id, TABLE, &f.provenance).await
            }

            async fn put_feed_fact(
                &self,
                uow: &mut UnitOfWork,
                f: &FeedFact,
            ) -> StoreResult<Written> {
                const TABLE: &str = "child_feed_facts";
                let sql = fact_sql(
                    TABLE,
                    &[
                        "kind",
                        "occurred_on",
                        "ended_on",
                        "details",
                        "key_id",
                        "sealed",
                    ],
                );
                let q = bind_head(sqlx::query(&sql), f.id, &f.subject, &f.provenance)
                    .bind(f.kind.as_str())
                    .bind(f.occurred_on)
                    .bind(f.ended_on)
                    .bind(Json(&f.details))
                    .bind(f.sealed.as_ref().map(|s| s.key_id.clone()))
                    .bind(f.sealed.as_ref().map(|s| s.bytes.clone()));
                settle(uow.$uow()?, q, f.id, TABLE, &f.provenance).await
            }

            async fn add_review(&self, uow: &mut UnitOfWork, r: &LinkageReview) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO linkage_reviews (id, kind, source_system, source_id, \
                     candidate_person_id, weight, explanation, status, area_code, created_at, \
                     decided_at, decided_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                     $11, $12)",
                )
                .bind(r.id)
                .bind(&r.kind)
                .bind(&r.source_system)
                .bind(&r.source_id)
                .bind(r.candidate_person_id)
                .bind(r.weight)
                .bind(Json(&r.explanation))
                .bind(&r.status)
                .bind(&r.area_code)
                .bind(enc_ts(r.created_at))
                .bind(r.decided_at.map(enc_ts))
                .bind(&r.decided_by)
                .execute(uow.$uow()?)
                .await?;
                Ok(())
            }

            async fn source_person(
                &self,
                scope: &AreaScope,
                source_system: &str,
                source_id: &str,
            ) -> StoreResult<Option<SourcePerson>> {
                let $s = self;
                let mut qb: QueryBuilder<$db> = QueryBuilder::new(format!(
                    "SELECT {SOURCE_PERSON_COLS} FROM child_source_people sp \
                     LEFT JOIN registry_people p ON p.id = sp.person_id \
                     WHERE sp.source_system = "
                ));
                qb.push_bind(source_system.to_string())
                    .push(" AND sp.source_id = ")
                    .push_bind(source_id.to_string());
                push_scope(&mut qb, "COALESCE(p.village_code, sp.area_code)", scope);
                qb.build()
                    .fetch_optional($read)
                    .await?
                    .map(|r| source_person(&r))
                    .transpose()
            }

            async fn source_person_by_id(
                &self,
                scope: &AreaScope,
                id: Uuid,
            ) -> StoreResult<Option<SourcePerson>> {
                let $s = self;
                let mut qb: QueryBuilder<$db> = QueryBuilder::new(format!(
                    "SELECT {SOURCE_PERSON_COLS} FROM child_source_people sp \
                     LEFT JOIN registry_people p ON p.id = sp.person_id WHERE sp.id = "
                ));
                qb.push_bind(id);
                push_scope(&mut qb, "COALESCE(p.village_code, sp.area_code)", scope);
                qb.build()
                    .fetch_optional($read)
                    .await?
                    .map(|r| source_person(&r))
                    .transpose()
            }

            async fn facts_of_people(
                &self,
                scope: &AreaScope,
                person_ids: &[Uuid],
            ) -> StoreResult<Vec<(Uuid, PersonFacts)>> {
                let $s = self;
                if person_ids.is_empty() {
                    return Ok(Vec::new());
                }
                // Only the people visible in scope.
                let mut qb: QueryBuilder<$db> =
                    QueryBuilder::new("SELECT id FROM registry_people WHERE id IN (");
                let mut sep = qb.separated(", ");
                for id in person_ids {
                    sep.push_bind(*id);
                }
                qb.push(")");
                push_scope(&mut qb, "village_code", scope);
                let rows = qb.build().fetch_all($read).await?;
                let found = rows
                    .iter()
                    .map(|r| r.try_get("id"))
                    .collect::<Result<std::collections::HashSet<Uuid>, _>>()?;
                // In the caller's order.
                let visible: Vec<Uuid> = person_ids
                    .iter()
                    .filter(|id| found.contains(id))
                    .copied()
                    .collect();
                let mut out = Vec::with_capacity(visible.len());
                // Bounded IN lists: a village worklist may ask about thousands of children.
                for chunk in visible.chunks(500) {
                    let facts = facts_where(self, "person_id", chunk).await?;
                    out.extend(split_by_person(chunk, facts));
                }
                Ok(out)
            }

            async fn facts_of_source_person(
                &self,
                scope: &AreaScope,
                id: Uuid,
            ) -> StoreResult<PersonFacts> {
                if self.source_person_by_id(scope, id).await?.is_none() {
                    return Ok(PersonFacts::default());
                }
                facts_where(self, "source_person_id", &[id]).await
            }

            async fn restricted_facts(
                &self,
                scope: &AreaScope,
                person_id: Uuid,
                kind: FeedKind,
            ) -> StoreResult<Vec<FeedFact>> {
                let $s = self;
                let mut qb: QueryBuilder<$db> = QueryBuilder::new(
                    "SELECT f.* FROM child_feed_facts f \
                     JOIN registry_people p ON p.id = f.person_id WHERE f.person_id = ",
                );
                qb.push_bind(person_id)
                    .push(" AND f.kind = ")
                    .push_bind(kind.as_str());
                push_scope(&mut qb, "p.village_code", scope);
                qb.push(" ORDER BY f.occurred_on, f.id");
                let rows = qb.build().fetch_all($read).await?;
                rows.iter().map(feed_fact).collect()
            }

            async fn open_reviews(
                &self,
                scope: &AreaScope,
                kind: &str,
                limit: u32,
            ) -> StoreResult<Vec<LinkageReview>> {
                let $s = self;
                let mut qb: QueryBuilder<$db> = QueryBuilder::new(
                    "SELECT * FROM linkage_reviews WHERE status = 'open' AND kind = ",
                );
                qb.push_bind(kind.to_string());
                push_scope(&mut qb, "area_code", scope);
                qb.push(" ORDER BY created_at, id LIMIT ")
                    .push_bind(i64::from(limit));
                let rows = qb.build().fetch_all($read).await?;
                rows.iter().map(review).collect()
            }
        }
    };
}
