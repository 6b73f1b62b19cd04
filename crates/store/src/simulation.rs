//! Whole-registry passes of the `targeting` context: one ordered stream of the active
//! households with their current members, and the simulation of scoring models and eligibility
//! rules over it (see docs/TARGETING.md, "Simulation").
//!
//! The stream is one cursor over the active households in id order, each row carrying the
//! household's members aggregated as JSON by the database: no page queries, no per-household
//! round trip, and the driver's per-row cost is paid once per household. A reader task turns
//! rows into raw batches; a blocking worker decodes them (JSON answers and members, dates) and
//! runs the caller's work with rayon on every core, so reading overlaps with computing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use futures::{Stream, TryStreamExt};
use inkingi_domain::areas::{AreaCode, AreaLevel};
use inkingi_domain::identity::AreaScope;
use inkingi_domain::programmes::TargetType;
use inkingi_domain::registry::form::FormSchema;
use inkingi_domain::registry::{BirthDate, MemberRole, Sex};
use inkingi_domain::targeting::rules::{Rule, Target};
use inkingi_domain::targeting::simulation::{Report, Scenario, SimProgramme, Simulation, Tally};
use inkingi_domain::targeting::ScoringModel;
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::QueryBuilder;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::registry::push_scope;
use crate::shared_sql::{on_read, Pools};
use crate::targeting::{MemberRow, ScoringInput, Targeting};
use crate::{Store, StoreError, StoreResult};

/// Households handed to the workers at a time.
pub const BATCH: usize = 8192;

/// One household row with its members aggregated as a JSON array by the database, not yet
/// decoded: `[[id, sex, birth_date, role, answers, died_on], …]`.
pub(crate) type RawInput = (Uuid, String, String, Option<String>);

type MemberJson = (
    String,
    String,
    Option<String>,
    Option<String>,
    Map<String, Value>,
    Option<String>,
);

fn decode_member(m: MemberJson) -> StoreResult<MemberRow> {
    let (id, sex, birth, role, answers, died_on) = m;
    Ok(MemberRow {
        person_id: Uuid::parse_str(&id).map_err(bad)?,
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
        answers,
        died_on: died_on
            .as_deref()
            .map(|d| d.get(..10).unwrap_or(d).parse::<NaiveDate>())
            .transpose()
            .map_err(bad)?,
    })
}

pub(crate) fn decode(r: RawInput) -> StoreResult<ScoringInput> {
    let (id, village, answers, members) = r;
    let members: Vec<MemberJson> = match members.as_deref() {
        None => Vec::new(),
        Some(text) => {
            serde_json::from_str(text).map_err(|e| bad(format!("stored members: {e}")))?
        }
    };
    Ok(ScoringInput {
        household_id: id,
        village: AreaCode::parse(&village).map_err(bad)?,
        answers: json_map(&answers)?,
        members: members
            .into_iter()
            .map(decode_member)
            .collect::<StoreResult<_>>()?,
    })
}

/// Sends the rows of `rows` to `tx` in batches.
async fn batches<S>(mut rows: S, tx: &mpsc::Sender<Vec<RawInput>>) -> StoreResult<()>
where
    S: Stream<Item = Result<RawInput, sqlx::Error>> + Unpin,
{
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(r) = rows.try_next().await? {
        batch.push(r);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.send(full).await.is_err() {
                // The worker stopped (it failed): its error is the one reported.
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
    Ok(())
}

fn bad(what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(what.to_string())
}

fn json_map(text: &str) -> StoreResult<Map<String, Value>> {
    serde_json::from_str(text).map_err(|e| bad(format!("stored answers: {e}")))
}

impl Targeting<'_> {
    fn read_pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Streams the active households in `scope` (with their members) to `tx`, in id order;
    /// only those with an id in `range` (from, up to but not including) when given.
    pub(crate) async fn read_raw(
        &self,
        scope: &AreaScope,
        range: Option<(Uuid, Option<Uuid>)>,
        tx: &mpsc::Sender<Vec<RawInput>>,
    ) -> StoreResult<()> {
        let pools = self.read_pools();
        // The members come aggregated per household, so one cursor carries everything and
        // the per-row cost of the driver is paid once per household, not once per person.
        let (answers, members) = match pools {
            Pools::Postgres(_) => (
                "h.answers::text",
                "(SELECT json_agg(json_build_array(p.id, p.sex, p.birth_date, p.role, \
                 p.answers, p.died_on))::text FROM registry_people p \
                 WHERE p.household_id = h.id)",
            ),
            Pools::Sqlite { .. } => (
                "h.answers",
                "(SELECT json_group_array(json_array(hex(p.id), p.sex, p.birth_date, p.role, \
                 json(p.answers), p.died_on)) FROM registry_people p \
                 WHERE p.household_id = h.id)",
            ),
        };
        on_read!(pools, |p| {
            let mut q = QueryBuilder::new(format!(
                "SELECT h.id, h.village_code, {answers}, {members} \
                 FROM registry_households h WHERE h.status = 'active'"
            ));
            push_scope(&mut q, "h.village_code", scope);
            if let Some((from, to)) = range {
                q.push(" AND h.id >= ").push_bind(from);
                if let Some(to) = to {
                    q.push(" AND h.id < ").push_bind(to);
                }
            }
            q.push(" ORDER BY h.id");
            let rows = q.build_query_as::<RawInput>().fetch(p);
            batches(rows, tx).await
        })
    }

    /// Runs `work` over every active household in `scope` with its current members read
    /// straight from the registry tables (one cursor, members as JSON), batch by batch, on a
    /// blocking thread; returns the final state. The reference path: passes read the facts
    /// blocks instead ([`Targeting::for_each_batch`]), which are packed from this stream.
    pub async fn for_each_batch_direct<S, F>(
        &self,
        scope: &AreaScope,
        init: S,
        work: F,
    ) -> StoreResult<S>
    where
        S: Send + 'static,
        F: Fn(&mut S, Vec<ScoringInput>) -> StoreResult<()> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Vec<RawInput>>(4);
        let worker = tokio::task::spawn_blocking(move || -> StoreResult<S> {
            let mut state = init;
            while let Some(raw) = rx.blocking_recv() {
                let inputs = raw
                    .into_par_iter()
                    .map(decode)
                    .collect::<StoreResult<Vec<_>>>()?;
                work(&mut state, inputs)?;
            }
            Ok(state)
        });
        let read = self.read_raw(scope, None, &tx).await;
        drop(tx);
        let state = worker
            .await
            .map_err(|e| bad(format!("registry pass worker: {e}")))?;
        read?;
        state
    }

    /// Households currently enrolled (status `enrolled`) in `scope`, with their programmes.
    async fn enrolled_by_household(
        &self,
        scope: &AreaScope,
    ) -> StoreResult<HashMap<Uuid, Vec<String>>> {
        let rows: Vec<(Uuid, String)> = on_read!(self.read_pools(), |p| {
            let mut qb = QueryBuilder::new(
                "SELECT household_id, programme_code FROM programme_enrolments \
                 WHERE status = 'enrolled'",
            );
            push_scope(&mut qb, "village_code", scope);
            qb.build_query_as().fetch_all(p).await?
        });
        let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
        for (h, code) in rows {
            let codes = out.entry(h).or_default();
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        Ok(out)
    }

    /// Runs a simulation over the households in `scope`, reading the facts blocks (brought up
    /// to date first). Writes nothing but the blocks' refresh.
    pub async fn simulate(&self, scope: &AreaScope, sim: Simulation) -> StoreResult<Report> {
        self.simulate_from(scope, sim, true).await
    }

    /// The same simulation over the registry tables read directly: the reference the facts
    /// blocks are checked against (tests, diagnosis).
    pub async fn simulate_direct(&self, scope: &AreaScope, sim: Simulation) -> StoreResult<Report> {
        self.simulate_from(scope, sim, false).await
    }

    async fn simulate_from(
        &self,
        scope: &AreaScope,
        sim: Simulation,
        blocks: bool,
    ) -> StoreResult<Report> {
        let sim = Arc::new(sim);
        let enrolled = Arc::new(self.enrolled_by_household(scope).await?);
        let on = Utc::now().date_naive();
        let worker_sim = Arc::clone(&sim);
        let work = move |tally: &mut Tally, batch: Vec<ScoringInput>| {
            let part = batch
                .into_par_iter()
                .fold(Tally::default, |mut t, h| {
                    let codes = enrolled.get(&h.household_id).map_or(&[][..], Vec::as_slice);
                    worker_sim.add(&mut t, &h.into_facts(on), codes);
                    t
                })
                .reduce(Tally::default, Tally::merge);
            *tally = std::mem::take(tally).merge(part);
            Ok(())
        };
        let tally = if blocks {
            self.for_each_batch(scope, Tally::default(), work).await?
        } else {
            self.for_each_batch_direct(scope, Tally::default(), work)
                .await?
        };
        let codes: Vec<AreaCode> = tally
            .areas
            .keys()
            .filter_map(|c| AreaCode::parse(c).ok())
            .collect();
        let names: BTreeMap<String, String> = self
            .store
            .areas()
            .get_areas(&codes)
            .await?
            .into_iter()
            .map(|a| (a.code.as_str().to_string(), a.name))
            .collect();
        Ok(sim.report(&tally, &names))
    }
}

/// A model version to simulate with; the latest version of `id` when `version` is absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub id: String,
    #[serde(default)]
    pub version: Option<u32>,
}

/// A saved rule set version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSetRef {
    pub id: String,
    pub version: u32,
}

/// The rule to apply to one programme instead of its own: a saved rule set or a draft.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleChoice {
    #[serde(default)]
    pub rule_set: Option<RuleSetRef>,
    #[serde(default)]
    pub rule: Option<String>,
}

/// The version compared with the first: what is not given is the same as the first's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    #[serde(default)]
    pub model: Option<ModelRef>,
    #[serde(default)]
    pub rules: BTreeMap<String, RuleChoice>,
}

/// A simulation as asked for (API body, or built from the CLI's options).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulationRequest {
    /// `province`, `district` (default) or `sector`.
    #[serde(default)]
    pub by: Option<String>,
    /// Programme codes; every programme when absent.
    #[serde(default)]
    pub programmes: Option<Vec<String>>,
    /// The current model when absent.
    #[serde(default)]
    pub model: Option<ModelRef>,
    /// Replacement rules by programme code.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleChoice>,
    #[serde(default)]
    pub compare: Option<CompareRequest>,
}

/// Why a simulation request was refused: the field and the reason (for a rule: line, column,
/// message and the caret excerpt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub reason: String,
}

fn refuse(field: impl Into<String>, reason: impl Into<String>) -> Refusal {
    Refusal {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The programmes simulated, with their stored target and rule.
struct Base {
    code: String,
    target: Target,
    rule: String,
    benefit: inkingi_domain::programmes::Benefit,
}

async fn resolve_model(
    store: &Store,
    field: &str,
    m: Option<&ModelRef>,
) -> StoreResult<Result<ScoringModel, Refusal>> {
    let t = store.targeting();
    Ok(match m {
        None => t
            .current_model()
            .await?
            .ok_or_else(|| refuse(field, "no scoring model is saved")),
        Some(r) => t
            .model(&r.id, r.version)
            .await?
            .map(|s| s.model)
            .ok_or_else(|| match r.version {
                Some(v) => refuse(field, format!("no version {v} of model '{}'", r.id)),
                None => refuse(field, format!("no model '{}'", r.id)),
            }),
    })
}

fn target_name(t: Target) -> &'static str {
    match t {
        Target::Household => "household",
        Target::Person => "person",
    }
}

async fn resolve_rule(
    store: &Store,
    field: &str,
    base: &Base,
    choice: Option<&RuleChoice>,
    form: &FormSchema,
) -> StoreResult<Result<(Rule, String), Refusal>> {
    let compile = |src: &str, at: &str| {
        Rule::compile_for_form(src, base.target, form).map_err(|e| {
            refuse(
                at,
                format!(
                    "line {}, column {}: {}\n{}",
                    e.line, e.column, e.message, e.excerpt
                ),
            )
        })
    };
    let Some(choice) = choice else {
        return Ok(compile(&base.rule, field).map(|r| (r, "programme".to_string())));
    };
    Ok(match (&choice.rule_set, &choice.rule) {
        (Some(_), Some(_)) | (None, None) => Err(refuse(field, "give either rule_set or rule")),
        (None, Some(src)) => compile(src, &format!("{field}.rule")).map(|r| (r, "draft".into())),
        (Some(rs), None) => {
            let at = format!("{field}.rule_set");
            let found = store
                .targeting()
                .rule_sets(Some(&rs.id))
                .await?
                .into_iter()
                .find(|s| s.version == rs.version);
            match found {
                None => Err(refuse(
                    at,
                    format!("no version {} of rule set '{}'", rs.version, rs.id),
                )),
                Some(s) if s.target != base.target => Err(refuse(
                    at,
                    format!(
                        "rule set '{}' decides about a {} but programme '{}' about a {}",
                        rs.id,
                        target_name(s.target),
                        base.code,
                        target_name(base.target)
                    ),
                )),
                Some(s) => {
                    compile(&s.rule, &at).map(|r| (r, format!("rule set {} v{}", s.id, s.version)))
                }
            }
        }
    })
}

async fn resolve_scenario(
    store: &Store,
    prefix: &str,
    model: Result<ScoringModel, Refusal>,
    bases: &[Base],
    rules: &BTreeMap<String, RuleChoice>,
    fallback: &BTreeMap<String, RuleChoice>,
    form: &FormSchema,
) -> StoreResult<Result<Scenario, Refusal>> {
    let model = match model {
        Ok(m) => m,
        Err(r) => return Ok(Err(r)),
    };
    if let Some(code) = rules.keys().find(|c| !bases.iter().any(|b| b.code == **c)) {
        return Ok(Err(refuse(
            format!("{prefix}rules.{code}"),
            format!("programme '{code}' is not simulated (unknown, or not in `programmes`)"),
        )));
    }
    let mut programmes = Vec::with_capacity(bases.len());
    let mut sources = Vec::with_capacity(bases.len());
    for b in bases {
        let (choice, field) = match rules.get(&b.code) {
            Some(c) => (Some(c), format!("{prefix}rules.{}", b.code)),
            None => (fallback.get(&b.code), format!("rules.{}", b.code)),
        };
        let (rule, source) = match resolve_rule(store, &field, b, choice, form).await? {
            Ok(x) => x,
            Err(r) => return Ok(Err(r)),
        };
        programmes.push(SimProgramme {
            code: b.code.clone(),
            rule,
            benefit: b.benefit.clone(),
        });
        sources.push(source);
    }
    Ok(Ok(Scenario {
        model,
        programmes,
        rule_sources: sources,
    }))
}

/// Turns a request into a simulation: models, rule sets and programmes looked up, every rule
/// compiled against `form`. A refusal names the field (and for a rule, the position).
pub async fn resolve(
    store: &Store,
    req: &SimulationRequest,
    form: &FormSchema,
) -> StoreResult<Result<Simulation, Refusal>> {
    let level = match req.by.as_deref().unwrap_or("district") {
        "province" => AreaLevel::Province,
        "district" => AreaLevel::District,
        "sector" => AreaLevel::Sector,
        other => {
            return Ok(Err(refuse(
                "by",
                format!("'{other}' is not province, district or sector"),
            )))
        }
    };
    let stored = store.programmes().programmes(None).await?;
    let wanted: Vec<String> = match &req.programmes {
        Some(codes) => codes.clone(),
        None => stored.iter().map(|p| p.programme.code.clone()).collect(),
    };
    let mut bases = Vec::with_capacity(wanted.len());
    for (i, code) in wanted.iter().enumerate() {
        let Some(p) = stored.iter().find(|p| p.programme.code == *code) else {
            return Ok(Err(refuse(
                format!("programmes[{i}]"),
                format!("no programme '{code}'"),
            )));
        };
        if bases.iter().any(|b: &Base| b.code == *code) {
            return Ok(Err(refuse(
                format!("programmes[{i}]"),
                format!("'{code}' is listed twice"),
            )));
        }
        bases.push(Base {
            code: code.clone(),
            target: match p.programme.target {
                TargetType::Household => Target::Household,
                TargetType::Individual => Target::Person,
            },
            rule: p.programme.eligibility.clone(),
            benefit: p.programme.benefit.clone(),
        });
    }
    let none = BTreeMap::new();
    let model = resolve_model(store, "model", req.model.as_ref()).await?;
    let base_model = model.clone();
    let first = match resolve_scenario(store, "", model, &bases, &req.rules, &none, form).await? {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    let mut scenarios = vec![first];
    if let Some(c) = &req.compare {
        let model = match &c.model {
            Some(m) => resolve_model(store, "compare.model", Some(m)).await?,
            None => base_model,
        };
        match resolve_scenario(store, "compare.", model, &bases, &c.rules, &req.rules, form).await?
        {
            Ok(s) => scenarios.push(s),
            Err(r) => return Ok(Err(r)),
        }
    }
    Ok(Ok(Simulation { level, scenarios }))
}
