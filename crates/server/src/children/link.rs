//! Linking a person received from a health system to a registry person: by identifier when it
//! carries one (registry person id, national ID, birth registration number), else with the
//! record-linkage engine against the registry people of the sender's area. An uncertain match
//! is never guessed: the person stays unlinked and a review row says who it might be and why.

use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::NationalId;
use inkingi_linkage::compare::Comparison;
use inkingi_linkage::config::FieldKind;
use inkingi_linkage::index::LinkIndex;
use inkingi_linkage::model::TrainingSummary;
use inkingi_linkage::{Dataset, LinkageConfig, TrainedModel};
use inkingi_store::registry::{
    CmpOp, Condition, PeopleQuery, PersonField, PersonFilter, PersonRecord, PersonSearch,
};
use inkingi_store::Store;
use serde_json::{json, Value};
use std::sync::LazyLock;
use uuid::Uuid;

use super::fhir::parse::{Issue, PersonIn, SID_BIRTH_REGISTRATION, SID_NATIONAL_ID, SID_PERSON};
use crate::error::{ApiError, ApiResult};

const CONFIG_TOML: &str = include_str!("../../../../data/linkage/fhir-patient.toml");
/// Registry people compared with one incoming person, at most.
const MAX_CANDIDATES: u32 = 200;

/// What linking decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Linked to this registry person; `method` says how.
    Linked {
        person: Box<PersonRecord>,
        method: &'static str,
    },
    /// Not linked: the best candidate (if any) with its weight and the per-field explanation,
    /// for the review queue.
    Review {
        candidate: Option<Uuid>,
        weight: Option<f64>,
        explanation: Value,
    },
}

struct Engine {
    config: LinkageConfig,
    model: TrainedModel,
    auto_weight: f64,
}

static ENGINE: LazyLock<Result<Engine, String>> = LazyLock::new(engine);

fn engine() -> Result<Engine, String> {
    let config: LinkageConfig = toml::from_str(CONFIG_TOML).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    let comparisons = Comparison::from_config(&config).map_err(|e| e.to_string())?;
    let (m, u): (Vec<Vec<f64>>, Vec<Vec<f64>>) = comparisons.iter().map(priors).unzip();
    // One candidate in a hundred of those with resembling names is the same person.
    let model = TrainedModel::new(&comparisons, &m, &u, 0.01, TrainingSummary::default());
    let auto_weight = inkingi_linkage::model::weight_of(config.clustering.auto_link);
    Ok(Engine {
        config,
        model,
        auto_weight,
    })
}

/// Provisional m and u per comparison level (index 0, "missing", is unused), by field kind.
fn priors(c: &Comparison) -> (Vec<f64>, Vec<f64>) {
    let (m, u): (&[f64], &[f64]) = match c.kind {
        // exact, spelling variant, jw >= .95, .88, .80, different
        FieldKind::Name => (
            &[0.0, 0.80, 0.08, 0.05, 0.03, 0.02, 0.02],
            &[0.0, 0.005, 0.005, 0.01, 0.02, 0.05, 0.91],
        ),
        // exact, typo/swap, same year and month, same year, year-only, different
        FieldKind::Date => (
            &[0.0, 0.85, 0.06, 0.03, 0.02, 0.02, 0.02],
            &[0.0, 0.0005, 0.001, 0.01, 0.1, 0.02, 0.8685],
        ),
        _ => (&[0.0, 0.98, 0.02], &[0.0, 0.5, 0.5]),
    };
    let fit = |v: &[f64]| {
        let mut v = v.to_vec();
        v.resize(c.radix(), 0.01);
        v
    };
    (fit(m), fit(u))
}

/// Links `p` to a registry person visible in `scope`. Refusals (a malformed national ID, a
/// registry id not in scope) are issues at `at`.
pub async fn link(
    store: &Store,
    scope: &AreaScope,
    p: &PersonIn,
    at: &str,
) -> ApiResult<Result<Decision, Vec<Issue>>> {
    for (i, (system, value)) in p.identifiers.iter().enumerate() {
        let here = format!("{at}.identifier[{i}].value");
        match system.as_str() {
            SID_PERSON => {
                let Ok(id) = Uuid::parse_str(value) else {
                    return Ok(Err(vec![Issue::new(
                        "invalid",
                        here,
                        format!("'{value}' is not a registry person id"),
                    )]));
                };
                return Ok(match store.registry().person(scope, id).await? {
                    Some(person) => Ok(Decision::Linked {
                        person: Box::new(person),
                        method: "registry_id",
                    }),
                    None => Err(vec![Issue::new(
                        "not-found",
                        here,
                        format!("no registry person {id} in your area scope"),
                    )]),
                });
            }
            SID_NATIONAL_ID => {
                let nid = match NationalId::parse(value) {
                    Ok(n) => n,
                    Err(e) => return Ok(Err(vec![Issue::new("invalid", here, e.to_string())])),
                };
                let q = PersonSearch {
                    national_id: Some(nid),
                    limit: 2,
                    ..Default::default()
                };
                let mut hits = store.registry().search_people(scope, &q).await?;
                if hits.len() == 1 {
                    let person = hits.remove(0).record;
                    return Ok(Ok(Decision::Linked {
                        person: Box::new(person),
                        method: "national_id",
                    }));
                }
            }
            SID_BIRTH_REGISTRATION => {
                if let Some(person) = by_birth_registration(store, scope, value).await? {
                    return Ok(Ok(Decision::Linked {
                        person: Box::new(person),
                        method: "birth_registration",
                    }));
                }
            }
            _ => {}
        }
    }
    Ok(Ok(by_linkage(store, scope, p).await?))
}

async fn by_birth_registration(
    store: &Store,
    scope: &AreaScope,
    number: &str,
) -> ApiResult<Option<PersonRecord>> {
    let q = PeopleQuery {
        filter: PersonFilter::All(vec![PersonFilter::Cond(Condition {
            field: PersonField::BirthRegistration,
            op: CmpOp::Eq,
            values: vec![number.to_string()],
        })]),
        sort: Vec::new(),
        limit: 2,
        offset: 0,
        max_candidates: inkingi_store::registry::query::MAX_CANDIDATES,
    };
    let mut page = store.registry().find_people(scope, &q).await?;
    Ok((page.items.len() == 1).then(|| page.items.remove(0)))
}

fn row(given: &str, family: &str, birth: &str, sex: &str) -> Vec<String> {
    vec![given.into(), family.into(), birth.into(), sex.into()]
}

async fn by_linkage(store: &Store, scope: &AreaScope, p: &PersonIn) -> ApiResult<Decision> {
    let (Some(given), Some(family)) = (&p.given, &p.family) else {
        return Ok(no_candidate("no name to compare"));
    };
    by_names(
        store,
        scope,
        given,
        family,
        p.birth_date.as_deref(),
        p.sex.as_deref(),
    )
    .await
}

/// Links a person known by names (birth date `YYYY[-MM[-DD]]` and sex `F`/`M` when known) to
/// the registry people of `scope` with the record-linkage engine: linked only when the best
/// candidate reaches the auto-link weight and no other does; otherwise a review decision with
/// the best candidate, if any. Used for health records and civil registration events alike.
pub async fn by_names(
    store: &inkingi_store::Store,
    scope: &AreaScope,
    given: &str,
    family: &str,
    birth_date: Option<&str>,
    sex: Option<&str>,
) -> ApiResult<Decision> {
    let q = PersonSearch {
        name: Some(format!("{given} {family}")),
        limit: MAX_CANDIDATES,
        ..Default::default()
    };
    let candidates: Vec<PersonRecord> = store
        .registry()
        .search_people(scope, &q)
        .await?
        .into_iter()
        .map(|h| h.record)
        .collect();
    if candidates.is_empty() {
        return Ok(no_candidate(
            "no registry person with a resembling name in your area scope",
        ));
    }
    let engine = ENGINE.as_ref().map_err(ApiError::internal)?;
    let rows: Vec<Vec<String>> = candidates
        .iter()
        .map(|c| {
            let d = &c.person.data;
            row(
                d.given_name.as_str(),
                d.family_name.as_str(),
                &d.birth_date.map(|b| b.to_string()).unwrap_or_default(),
                &d.sex.to_string(),
            )
        })
        .collect();
    let mut data = Dataset::new(&engine.config);
    data.push_rows(&engine.config, &rows, 0)
        .map_err(ApiError::internal)?;
    let mut index = LinkIndex::build(&engine.config, data, &engine.model, MAX_CANDIDATES as usize)
        .map_err(ApiError::internal)?;
    let probe = row(given, family, birth_date.unwrap_or(""), sex.unwrap_or(""));
    let found = index.lookup(probe).map_err(ApiError::internal)?;
    let Some(best) = found.first() else {
        return Ok(no_candidate("no candidate reached the review threshold"));
    };
    let best_person = &candidates[best.record as usize];
    let runner_up_linkable = found.get(1).is_some_and(|c| c.weight >= engine.auto_weight);
    if best.weight >= engine.auto_weight && !runner_up_linkable {
        return Ok(Decision::Linked {
            person: Box::new(best_person.clone()),
            method: "linkage",
        });
    }
    let explanation = json!({
        "probability": best.probability,
        "auto_link_weight": engine.auto_weight,
        "fields": best.explanation,
        "reason": if runner_up_linkable { "several candidates are as likely" } else { "below the auto-link threshold" },
        "others": found.iter().skip(1).take(4).map(|c| json!({
            "person_id": candidates[c.record as usize].person.id,
            "weight": c.weight,
        })).collect::<Vec<_>>(),
    });
    Ok(Decision::Review {
        candidate: Some(best_person.person.id),
        weight: Some(best.weight),
        explanation,
    })
}

fn no_candidate(reason: &str) -> Decision {
    Decision::Review {
        candidate: None,
        weight: None,
        explanation: json!({ "reason": reason }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn weigh(a: Vec<String>, b: Vec<String>) -> f64 {
        let e = ENGINE.as_ref().unwrap();
        let mut data = Dataset::new(&e.config);
        data.push_rows(&e.config, &[a], 0).unwrap();
        let mut index = LinkIndex::build(&e.config, data, &e.model, 10).unwrap();
        index
            .lookup(b)
            .unwrap()
            .first()
            .map_or(f64::NEG_INFINITY, |c| c.weight)
    }

    #[test]
    fn names_and_full_birth_date_link_names_alone_do_not() {
        let e = ENGINE.as_ref().unwrap();
        let keza = row("Keza", "Uwase", "2025-06-01", "F");
        assert!(weigh(keza.clone(), keza.clone()) >= e.auto_weight);
        // One letter off in the given name, everything else the same: a candidate for review
        // (with the provisional priors, not linked automatically).
        let w = weigh(keza.clone(), row("Kesa", "Uwase", "2025-06-01", "F"));
        assert!(w > inkingi_linkage::model::weight_of(0.5), "{w}");
        // No birth date: review, not a link.
        let w = weigh(keza.clone(), row("Keza", "Uwase", "", "F"));
        assert!(
            w < e.auto_weight && w > inkingi_linkage::model::weight_of(0.5),
            "{w}"
        );
        // Same names, another child born a year later: not a candidate worth review.
        assert!(weigh(keza, row("Keza", "Uwase", "2026-06-20", "F")) < e.auto_weight);
    }
}
