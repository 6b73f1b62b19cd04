//! A lookup index: one new record against everything already indexed, without a batch run.
//!
//! The index keeps the encoded records, a map from each blocking key to its records, and a
//! trained model. A lookup encodes the new record, gathers the records sharing any of its
//! keys (skipping keys shared by more than `max_candidates` records, which say too little),
//! scores them and returns those above the review threshold, best first. Inserting a record
//! makes later lookups see it, so the index can be kept fresh from registry events.

use std::collections::HashMap;

use crate::blocking::Blocker;
use crate::compare::Comparison;
use crate::config::LinkageConfig;
use crate::dataset::Dataset;
use crate::model::{self, FieldContribution, Scorer, TrainedModel};
use crate::LinkageError;

pub struct LinkIndex {
    config: LinkageConfig,
    data: Dataset,
    blocker: Blocker,
    buckets: Vec<HashMap<u64, Vec<u32>>>,
    scorer: Scorer,
    review_weight: f64,
    max_candidates: usize,
}

/// A record found by a lookup.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub record: u32,
    pub weight: f64,
    pub probability: f64,
    pub explanation: Vec<FieldContribution>,
}

impl LinkIndex {
    /// Indexes `data` (a dedupe-mode dataset) for lookups scored by `model`.
    pub fn build(
        config: &LinkageConfig,
        data: Dataset,
        model: &TrainedModel,
        max_candidates: usize,
    ) -> Result<LinkIndex, LinkageError> {
        config.validate()?;
        if data.is_link() {
            return Err(LinkageError::Input(
                "a lookup index holds one dataset, not a linked pair".into(),
            ));
        }
        let comparisons = Comparison::from_config(config)?;
        TrainedModel::from_json(&model.to_json(), &comparisons)?;
        let blocker = Blocker::new(&data, &config.blocking, config.model.max_block_pairs)?;
        let mut buckets = vec![HashMap::<u64, Vec<u32>>::new(); blocker.rule_count()];
        for r in 0..data.len() {
            for (rule, k) in blocker.record_keys(r).into_iter().enumerate() {
                if k != 0 {
                    buckets[rule].entry(k).or_default().push(r as u32);
                }
            }
        }
        Ok(LinkIndex {
            config: config.clone(),
            scorer: Scorer::new(comparisons, model),
            review_weight: model::weight_of(config.clustering.review),
            data,
            blocker,
            buckets,
            max_candidates,
        })
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Adds a record (values in field order); returns its record number.
    pub fn insert<S: AsRef<str> + Sync>(&mut self, row: Vec<S>) -> Result<u32, LinkageError> {
        let r = self.data.push_rows(&self.config, &[row], self.data.len())?;
        for (rule, k) in self.blocker.keys_for(&self.data, r).into_iter().enumerate() {
            if k != 0 {
                self.buckets[rule].entry(k).or_default().push(r as u32);
            }
        }
        Ok(r as u32)
    }

    /// Records that may be the same person as `row`, best first; the index is unchanged.
    pub fn lookup<S: AsRef<str> + Sync>(
        &mut self,
        row: Vec<S>,
    ) -> Result<Vec<Candidate>, LinkageError> {
        let probe = self.data.push_rows(&self.config, &[row], self.data.len())?;
        let keys = self.blocker.keys_for(&self.data, probe);
        let mut candidates: Vec<u32> = Vec::new();
        for (rule, k) in keys.into_iter().enumerate() {
            if let Some(records) = self.buckets[rule].get(&k) {
                if k != 0 && records.len() <= self.max_candidates {
                    candidates.extend_from_slice(records);
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut found: Vec<Candidate> = candidates
            .into_iter()
            .filter_map(|c| {
                let weight = self.scorer.weight(&self.data, c as usize, probe);
                (weight >= self.review_weight).then(|| Candidate {
                    record: c,
                    weight,
                    probability: model::probability(weight),
                    explanation: self.scorer.explain(&self.data, c as usize, probe),
                })
            })
            .collect();
        self.data.pop_last();
        found.sort_by(|x, y| y.weight.total_cmp(&x.weight).then(x.record.cmp(&y.record)));
        Ok(found)
    }
}
