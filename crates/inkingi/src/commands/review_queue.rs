//! `match run`'s pairs into the linkage review queue (`linkage_reviews`, kind
//! `registry_duplicate`): every pair at or above the review threshold, with its weight and the
//! engine's per-field explanation.
//!
//! Pairs above the auto-link threshold are queued too, marked `auto_link`, and never merged by
//! the run: a merge changes households, programme lists and scores, so a person decides it
//! (the confirmation becomes a change request an approver decides). Queueing is idempotent: a
//! pair already in the queue in any state is skipped, so a second run neither duplicates an
//! open review nor reopens a dismissed one.

use anyhow::Context;
use chrono::Utc;
use inkingi_domain::areas::AreaCode;
use inkingi_linkage::cluster::PairStatus;
use inkingi_linkage::model::{probability, weight_of};
use inkingi_linkage::{Dataset, LinkageConfig, Run};
use inkingi_store::children::LinkageReview;
use inkingi_store::linkage::{common_area, REGISTRY_DUPLICATE, REGISTRY_SOURCE};
use inkingi_store::Store;
use serde_json::json;
use uuid::Uuid;

/// Reviews written per transaction.
const BATCH: usize = 1_000;

/// A record of the run: the registry person and the village of their household.
#[derive(Debug, Clone)]
pub struct RegistryPerson {
    pub id: Uuid,
    pub village: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    pub created: u64,
    /// Of those created, above the auto-link threshold.
    pub auto_link: u64,
    pub existing: u64,
}

fn reason(status: PairStatus) -> &'static str {
    match status {
        PairStatus::Linked => {
            "above the auto-link threshold: queued for a decision, never merged automatically"
        }
        PairStatus::Review => "between the review and auto-link thresholds",
        PairStatus::Refused => {
            "above the auto-link threshold but refused by a cannot-link constraint"
        }
    }
}

/// The review of pair `i` of the run, its two people in a fixed order (smaller id first) so
/// that the same pair always has the same key.
fn review_of(
    config: &LinkageConfig,
    data: &Dataset,
    out: &Run,
    people: &[RegistryPerson],
    i: usize,
) -> (LinkageReview, bool) {
    let p = out.pairs[i];
    let status = out.clustering.status[i];
    let (mut a, mut b) = (p.a as usize, p.b as usize);
    if people[b].id < people[a].id {
        std::mem::swap(&mut a, &mut b);
    }
    let weight = f64::from(p.weight);
    let area = match (
        AreaCode::parse(&people[a].village),
        AreaCode::parse(&people[b].village),
    ) {
        (Ok(x), Ok(y)) => common_area(&x, &y).map(|c| c.as_str().to_string()),
        _ => None,
    };
    let explanation = json!({
        "fields": out.scorer.explain(data, a, b),
        "prior": out.scorer.prior(),
        "probability": probability(weight),
        "auto_link_weight": out.auto_link_weight,
        "review_weight": weight_of(config.clustering.review),
        "status": status.as_str(),
        "reason": reason(status),
    });
    let review = LinkageReview {
        id: Uuid::now_v7(),
        kind: REGISTRY_DUPLICATE.into(),
        source_system: REGISTRY_SOURCE.into(),
        source_id: people[a].id.to_string(),
        candidate_person_id: Some(people[b].id),
        weight: Some(weight),
        explanation,
        status: "open".into(),
        area_code: area,
        created_at: Utc::now(),
        decided_at: None,
        decided_by: None,
    };
    (review, status == PairStatus::Linked)
}

/// Queues every pair of `out` (all are at or above the review threshold).
pub async fn queue(
    store: &Store,
    config: &LinkageConfig,
    data: &Dataset,
    out: &Run,
    people: &[RegistryPerson],
) -> anyhow::Result<Queued> {
    let mut q = Queued::default();
    let all: Vec<usize> = (0..out.pairs.len()).collect();
    for chunk in all.chunks(BATCH) {
        let mut uow = store.begin().await?;
        for &i in chunk {
            let (review, auto_link) = review_of(config, data, out, people, i);
            let created = store
                .linkage()
                .queue_pair(&mut uow, &review, auto_link)
                .await
                .with_context(|| format!("queueing the review of pair {i}"))?;
            if created {
                q.created += 1;
                q.auto_link += u64::from(auto_link);
            } else {
                q.existing += 1;
            }
        }
        uow.commit().await?;
    }
    Ok(q)
}
