//! Storage of the `targeting` context (schema `0016_targeting_programmes`): versioned scoring
//! models and eligibility rule sets, and the current score of every household with the model
//! version that produced it and its explanation.
//!
//! Scoring the whole registry streams households with their members in id order (see
//! [`crate::simulation`]), scores them on every core and writes the scores with multi-row
//! upserts while the next batches are read: no round trip per household.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::{BirthDate, MemberRole, Sex};
use inkingi_domain::targeting::rules::Target;
use inkingi_domain::targeting::{
    Contribution, HouseholdFacts, MemberRecord, OwnedMember, Score, ScoringModel,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::registry::push_scope;
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{Store, StoreError, StoreResult};

/// A saved model version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedModel {
    pub model: ScoringModel,
    pub saved_at: DateTime<Utc>,
    pub saved_by: String,
}

/// A versioned eligibility rule, compiled before it was saved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSet {
    pub id: String,
    pub version: u32,
    pub target: Target,
    pub rule: String,
    pub description: String,
    pub saved_at: DateTime<Utc>,
    pub saved_by: String,
}

/// Why a score is what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub intercept: f64,
    /// Before clamping to 0–100.
    pub raw: f64,
    pub contributions: Vec<Contribution>,
}

/// A household's current score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredScore {
    pub household_id: Uuid,
    pub village: String,
    pub model_id: String,
    pub model_version: u32,
    pub score: f64,
    pub category: String,
    pub explanation: Explanation,
    pub scored_at: DateTime<Utc>,
}

/// What a household's facts are derived from, as read for scoring.
#[derive(Debug, Clone)]
pub struct ScoringInput {
    pub household_id: Uuid,
    pub village: AreaCode,
    pub answers: Map<String, Value>,
    pub members: Vec<MemberRow>,
}

/// One current member, as read for scoring.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub person_id: Uuid,
    pub sex: Sex,
    pub birth_date: Option<BirthDate>,
    pub role: MemberRole,
    pub answers: Map<String, Value>,
    pub died_on: Option<NaiveDate>,
}

impl ScoringInput {
    /// The household's facts on `on`.
    pub fn facts(&self, on: NaiveDate) -> HouseholdFacts {
        let records: Vec<MemberRecord<'_>> = self
            .members
            .iter()
            .map(|m| MemberRecord {
                sex: m.sex,
                birth_date: m.birth_date,
                role: m.role,
                answers: &m.answers,
                died_on: m.died_on,
            })
            .collect();
        HouseholdFacts::build(&self.village, &self.answers, &records, on)
    }

    /// The same facts, keeping the answers instead of copying them (whole-registry passes).
    pub fn into_facts(self, on: NaiveDate) -> HouseholdFacts {
        let members = self
            .members
            .into_iter()
            .map(|m| OwnedMember {
                sex: m.sex,
                birth_date: m.birth_date,
                role: m.role,
                answers: m.answers,
                died_on: m.died_on,
            })
            .collect();
        HouseholdFacts::build_owned(&self.village, self.answers, members, on)
    }
}

/// A score as written: the explanation already JSON text.
struct ScoreRow {
    household_id: Uuid,
    village: String,
    model_id: String,
    model_version: u32,
    score: f64,
    category: String,
    explanation: String,
}

impl ScoreRow {
    fn of(household_id: Uuid, village: String, s: &Score) -> StoreResult<ScoreRow> {
        #[derive(Serialize)]
        struct ExplanationRef<'a> {
            intercept: f64,
            raw: f64,
            contributions: &'a [Contribution],
        }
        let explanation = serde_json::to_string(&ExplanationRef {
            intercept: s.intercept,
            raw: s.raw,
            contributions: &s.contributions,
        })
        .map_err(|e| bad(format!("score explanation: {e}")))?;
        Ok(ScoreRow {
            household_id,
            village,
            model_id: s.model_id.clone(),
            model_version: s.model_version,
            score: s.value,
            category: s.category.clone(),
            explanation,
        })
    }
}

/// Recomputes one household's score after its data changed; enqueued with every registry
/// event, in the event's transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RescoreJob {
    pub household_id: Uuid,
}

impl crate::jobs::Job for RescoreJob {
    const KIND: &'static str = "targeting.rescore";
    const MAX_ATTEMPTS: u32 = 5;
}

/// Totals of a batch scoring run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreRun {
    pub households: u64,
    pub seconds: f64,
}

/// The targeting tables, reached through [`Store::targeting`].
pub struct Targeting<'a> {
    pub(crate) store: &'a Store,
}

type HouseholdRow = (Uuid, String, Json<Map<String, Value>>);
type PersonRow = (
    Uuid,
    Option<Uuid>,
    String,
    Option<String>,
    Option<String>,
    Json<Map<String, Value>>,
    Option<NaiveDate>,
);

fn bad(what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(what.to_string())
}

fn member_from(r: PersonRow) -> StoreResult<(Option<Uuid>, MemberRow)> {
    let (person_id, household, sex, birth, role, answers, died_on) = r;
    let member = MemberRow {
        person_id,
        sex: sex.parse::<Sex>().map_err(bad)?,
        birth_date: birth
            .as_deref()
            .map(BirthDate::parse)
            .transpose()
            .map_err(bad)?,
        role: role
            .as_deref()
            .unwrap_or("other_relative")
            .parse::<MemberRole>()
            .map_err(bad)?,
        answers: answers.0,
        died_on,
    };
    Ok((household, member))
}

fn inputs_from(
    households: Vec<HouseholdRow>,
    people: Vec<PersonRow>,
) -> StoreResult<Vec<ScoringInput>> {
    let mut out = Vec::with_capacity(households.len());
    let mut index = HashMap::with_capacity(households.len());
    for (id, village, answers) in households {
        index.insert(id, out.len());
        out.push(ScoringInput {
            household_id: id,
            village: AreaCode::parse(&village).map_err(bad)?,
            answers: answers.0,
            members: Vec::new(),
        });
    }
    for p in people {
        let (household, m) = member_from(p)?;
        // People of households outside the page (or not active) fall in the id range too.
        if let Some(i) = household.and_then(|h| index.get(&h)) {
            out[*i].members.push(m);
        }
    }
    Ok(out)
}

const PEOPLE_COLS: &str =
    "id, household_id, sex, birth_date, role, answers, died_on FROM registry_people";

impl Targeting<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Saves a model. Its version must be the next one of its id (1 for a new id).
    pub async fn save_model(&self, model: &ScoringModel, by: &str) -> StoreResult<SavedModel> {
        model.check().map_err(bad)?;
        let mut uow = self.store.begin().await?;
        let now = Utc::now();
        let latest: Option<i64> = on_uow!(uow, |c| {
            sqlx::query_scalar("SELECT max(version) FROM targeting_models WHERE model_id = $1")
                .bind(&model.id)
                .fetch_one(&mut *c)
                .await?
        });
        let next = latest.unwrap_or(0) + 1;
        if i64::from(model.version) != next {
            return Err(StoreError::Conflict(format!(
                "version: model {} must be saved as version {next}, not {}",
                model.id, model.version
            )));
        }
        on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO targeting_models (model_id, version, body, saved_at, saved_by) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&model.id)
            .bind(i64::from(model.version))
            .bind(Json(model))
            .bind(now)
            .bind(by)
            .execute(&mut *c)
            .await?;
        });
        uow.commit().await?;
        Ok(SavedModel {
            model: model.clone(),
            saved_at: now,
            saved_by: by.to_string(),
        })
    }

    /// A model version; the latest of `id` when `version` is `None`.
    pub async fn model(&self, id: &str, version: Option<u32>) -> StoreResult<Option<SavedModel>> {
        let v = version.map(i64::from).unwrap_or(i64::MAX);
        let row: Option<(Json<ScoringModel>, DateTime<Utc>, String)> =
            on_read!(self.pools(), |p| {
                sqlx::query_as(
                    "SELECT body, saved_at, saved_by FROM targeting_models \
                 WHERE model_id = $1 AND version <= $2 ORDER BY version DESC LIMIT 1",
                )
                .bind(id)
                .bind(v)
                .fetch_optional(p)
                .await?
            });
        Ok(row
            .filter(|r| version.is_none_or(|v| r.0 .0.version == v))
            .map(|(m, at, by)| SavedModel {
                model: m.0,
                saved_at: at,
                saved_by: by,
            }))
    }

    /// The model scores are computed with: the most recently saved version of any model.
    pub async fn current_model(&self) -> StoreResult<Option<ScoringModel>> {
        let row: Option<Json<ScoringModel>> = on_read!(self.pools(), |p| {
            sqlx::query_scalar(
                "SELECT body FROM targeting_models ORDER BY saved_at DESC, version DESC LIMIT 1",
            )
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(|m| m.0))
    }

    /// Every saved model version, newest first.
    pub async fn list_models(&self) -> StoreResult<Vec<SavedModel>> {
        let rows: Vec<(Json<ScoringModel>, DateTime<Utc>, String)> = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT body, saved_at, saved_by FROM targeting_models \
                 ORDER BY saved_at DESC, model_id, version DESC",
            )
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(m, at, by)| SavedModel {
                model: m.0,
                saved_at: at,
                saved_by: by,
            })
            .collect())
    }

    /// Saves a rule set version (compiled by the caller). Its version must be the next one.
    pub async fn save_rule_set(&self, rs: &RuleSet) -> StoreResult<()> {
        let mut uow = self.store.begin().await?;
        let latest: Option<i64> = on_uow!(uow, |c| {
            sqlx::query_scalar(
                "SELECT max(version) FROM targeting_rule_sets WHERE rule_set_id = $1",
            )
            .bind(&rs.id)
            .fetch_one(&mut *c)
            .await?
        });
        let next = latest.unwrap_or(0) + 1;
        if i64::from(rs.version) != next {
            return Err(StoreError::Conflict(format!(
                "version: rule set {} must be saved as version {next}, not {}",
                rs.id, rs.version
            )));
        }
        let target = match rs.target {
            Target::Household => "household",
            Target::Person => "person",
        };
        on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO targeting_rule_sets (rule_set_id, version, target, source, \
                 description, saved_at, saved_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&rs.id)
            .bind(i64::from(rs.version))
            .bind(target)
            .bind(&rs.rule)
            .bind(&rs.description)
            .bind(rs.saved_at)
            .bind(&rs.saved_by)
            .execute(&mut *c)
            .await?;
        });
        uow.commit().await
    }

    /// Rule sets, every version, by id then newest version first; only `id`'s when given.
    pub async fn rule_sets(&self, id: Option<&str>) -> StoreResult<Vec<RuleSet>> {
        type Row = (String, i64, String, String, String, DateTime<Utc>, String);
        let rows: Vec<Row> = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT rule_set_id, version, target, source, description, saved_at, saved_by \
                 FROM targeting_rule_sets WHERE ($1 IS NULL OR rule_set_id = $1) \
                 ORDER BY rule_set_id, version DESC",
            )
            .bind(id)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(id, v, target, rule, description, at, by)| {
                Ok(RuleSet {
                    id,
                    version: u32::try_from(v).map_err(bad)?,
                    target: if target == "person" {
                        Target::Person
                    } else {
                        Target::Household
                    },
                    rule,
                    description,
                    saved_at: at,
                    saved_by: by,
                })
            })
            .collect()
    }

    /// One active household's scoring input (not scoped: jobs and batch runs call it).
    pub async fn scoring_input(&self, household_id: Uuid) -> StoreResult<Option<ScoringInput>> {
        let pools = self.pools();
        let households: Vec<HouseholdRow> = on_read!(&pools, |p| {
            sqlx::query_as(
                "SELECT id, village_code, answers FROM registry_households \
                 WHERE status = 'active' AND id = $1",
            )
            .bind(household_id)
            .fetch_all(p)
            .await?
        });
        if households.is_empty() {
            return Ok(None);
        }
        let people: Vec<PersonRow> = on_read!(&pools, |p| {
            sqlx::query_as(&format!("SELECT {PEOPLE_COLS} WHERE household_id = $1"))
                .bind(household_id)
                .fetch_all(p)
                .await?
        });
        Ok(inputs_from(households, people)?.pop())
    }

    /// Writes (replaces) the scores of these households in one transaction.
    pub async fn write_scores(&self, scores: &[(Uuid, String, Score)]) -> StoreResult<()> {
        let rows = scores
            .iter()
            .map(|(id, village, s)| ScoreRow::of(*id, village.clone(), s))
            .collect::<StoreResult<Vec<_>>>()?;
        self.write_score_rows(&rows).await
    }

    /// Writes rows whose explanation is already JSON text (serialised by the scoring workers,
    /// not by the single writer).
    async fn write_score_rows(&self, rows: &[ScoreRow]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        // Text into a JSONB column needs a cast on PostgreSQL; SQLite stores the text.
        let cast = match self.store.kind() {
            crate::BackendKind::Postgres => "::jsonb",
            crate::BackendKind::Sqlite => "",
        };
        let mut uow = self.store.begin().await?;
        // 8 parameters a row; 4,000 rows stay under both backends' parameter limits.
        for chunk in rows.chunks(4000) {
            on_uow!(uow, |c| {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO targeting_scores (household_id, village_code, model_id, \
                     model_version, score, category, explanation, scored_at) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(r.household_id)
                        .push_bind(r.village.clone())
                        .push_bind(r.model_id.clone())
                        .push_bind(i64::from(r.model_version))
                        .push_bind(r.score)
                        .push_bind(r.category.clone())
                        .push_bind(r.explanation.clone())
                        .push_unseparated(cast)
                        .push_bind(now);
                });
                qb.push(
                    " ON CONFLICT (household_id) DO UPDATE SET village_code = excluded.village_code, \
                     model_id = excluded.model_id, model_version = excluded.model_version, \
                     score = excluded.score, category = excluded.category, \
                     explanation = excluded.explanation, scored_at = excluded.scored_at",
                );
                qb.build().execute(&mut *c).await?;
            });
        }
        uow.commit().await
    }

    /// The household's current score, if it is in `scope` and scored.
    pub async fn score(
        &self,
        scope: &AreaScope,
        household_id: Uuid,
    ) -> StoreResult<Option<StoredScore>> {
        type Row = (
            Uuid,
            String,
            String,
            i64,
            f64,
            String,
            Json<Explanation>,
            DateTime<Utc>,
        );
        let row: Option<Row> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(
                "SELECT household_id, village_code, model_id, model_version, score, category, \
                 explanation, scored_at FROM targeting_scores WHERE household_id = ",
            );
            qb.push_bind(household_id);
            push_scope(&mut qb, "village_code", scope);
            qb.build_query_as().fetch_optional(p).await?
        });
        row.map(|(id, village, model_id, v, score, category, e, at)| {
            Ok(StoredScore {
                household_id: id,
                village,
                model_id,
                model_version: u32::try_from(v).map_err(bad)?,
                score,
                category,
                explanation: e.0,
                scored_at: at,
            })
        })
        .transpose()
    }

    /// Scores one household with the current model and stores the score. `None` when there is
    /// no model or the household is not active.
    pub async fn rescore(&self, household_id: Uuid) -> StoreResult<Option<Score>> {
        let Some(model) = self.current_model().await? else {
            return Ok(None);
        };
        let Some(input) = self.scoring_input(household_id).await? else {
            return Ok(None);
        };
        let score = model.score(&input.facts(Utc::now().date_naive()));
        self.write_scores(&[(
            household_id,
            input.village.as_str().to_string(),
            score.clone(),
        )])
        .await?;
        Ok(Some(score))
    }

    /// Scores every active household with `model` and stores the scores: one ordered stream
    /// of the registry (see [`crate::simulation`]) scored on every core, while the scores of
    /// earlier batches are written; `progress` is told how many households each batch held.
    pub async fn score_all(
        &self,
        model: &ScoringModel,
        mut progress: impl FnMut(u64),
    ) -> StoreResult<ScoreRun> {
        let started = Instant::now();
        let on = Utc::now().date_naive();
        let model = std::sync::Arc::new(model.clone());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ScoreRow>>(2);
        let pass = async {
            self.for_each_batch(&AreaScope::national(), tx, move |tx, batch| {
                use rayon::prelude::*;
                let scores = batch
                    .into_par_iter()
                    .map(|h| {
                        let (id, village) = (h.household_id, h.village.as_str().to_string());
                        ScoreRow::of(id, village, &model.score(&h.into_facts(on)))
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                tx.blocking_send(scores)
                    .map_err(|_| bad("the score writer stopped"))
            })
            .await
            // Dropping the sender here ends the writer's loop.
            .map(drop)
        };
        let write = async {
            let mut total = 0u64;
            while let Some(scores) = rx.recv().await {
                self.write_score_rows(&scores).await?;
                total += scores.len() as u64;
                progress(scores.len() as u64);
            }
            Ok::<u64, StoreError>(total)
        };
        let (pass, total) = tokio::join!(pass, write);
        let total = total?;
        pass?;
        Ok(ScoreRun {
            households: total,
            seconds: started.elapsed().as_secs_f64(),
        })
    }
}

/// Saves the shipped illustrative model as the first model when none is saved yet.
pub(crate) async fn ensure_default_model(store: &Store) -> StoreResult<()> {
    let t = store.targeting();
    if t.current_model().await?.is_some() {
        return Ok(());
    }
    let model = ScoringModel::default_model();
    match t.save_model(&model, "system").await {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
