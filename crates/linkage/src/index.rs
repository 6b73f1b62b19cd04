//! A lookup index: one new record against everything already indexed, without a batch run.
//!
//! The index keeps the encoded records, each blocking rule's records by key, and a trained
//! model. A lookup encodes the new record, gathers the records sharing any of its keys
//! (skipping keys shared by more than `max_candidates` records, which say too little), scores
//! them and returns those above the review threshold, best first. Inserting a record makes
//! later lookups see it and removing one hides it, so the index can be kept fresh from
//! registry events.
//!
//! Memory: the records built at once are kept per rule as one sorted key array with offsets
//! into one array of record numbers (about 4 bytes a record per rule plus 12 bytes a distinct
//! key), not as a hash map of small vectors (which costs some 60 bytes per distinct key, and
//! identifiers such as the national ID have one key per person). Records inserted later go to a
//! small hash map per rule. A removed record keeps its slot and is skipped.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::blocking::Blocker;
use crate::compare::Comparison;
use crate::config::LinkageConfig;
use crate::dataset::Dataset;
use crate::model::{self, FieldContribution, Scorer, TrainedModel};
use crate::LinkageError;

/// One blocking rule's records by key.
#[derive(Debug, Default)]
struct Buckets {
    /// Distinct keys of the records indexed at build time, ascending.
    keys: Vec<u64>,
    /// `records[starts[i]..starts[i + 1]]` hold `keys[i]`.
    starts: Vec<u32>,
    records: Vec<u32>,
    /// Records inserted after the build.
    added: HashMap<u64, Vec<u32>>,
}

impl Buckets {
    /// Sorts `(key, record)` pairs into the compact form; key 0 (no key) is dropped.
    fn build(mut pairs: Vec<(u64, u32)>) -> Buckets {
        pairs.retain(|p| p.0 != 0);
        pairs.par_sort_unstable();
        let mut b = Buckets {
            records: Vec::with_capacity(pairs.len()),
            ..Buckets::default()
        };
        for (k, r) in pairs {
            if b.keys.last() != Some(&k) {
                b.keys.push(k);
                b.starts.push(b.records.len() as u32);
            }
            b.records.push(r);
        }
        b.starts.push(b.records.len() as u32);
        b.keys.shrink_to_fit();
        b.starts.shrink_to_fit();
        b
    }

    fn built(&self, key: u64) -> &[u32] {
        match self.keys.binary_search(&key) {
            Ok(i) => &self.records[self.starts[i] as usize..self.starts[i + 1] as usize],
            Err(_) => &[],
        }
    }

    fn later(&self, key: u64) -> &[u32] {
        self.added.get(&key).map_or(&[], Vec::as_slice)
    }

    fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8
            + self.starts.capacity() * 4
            + self.records.capacity() * 4
            + self
                .added
                .values()
                .map(|v| v.capacity() * 4 + 40)
                .sum::<usize>()
    }
}

pub struct LinkIndex {
    config: LinkageConfig,
    data: Dataset,
    blocker: Blocker,
    buckets: Vec<Buckets>,
    /// One bit per record: set when the record was removed.
    removed: Vec<u64>,
    removed_count: usize,
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
        // Only the compiled rules are kept: the keys are computed here one rule at a time, so
        // building never holds more than one rule's (key, record) pairs besides the index.
        let blocker = Blocker::rules_only(&data, &config.blocking)?;
        let buckets = (0..blocker.rule_count())
            .map(|rule| {
                Buckets::build(
                    (0..data.len())
                        .into_par_iter()
                        .map(|r| (blocker.rule_key(&data, rule, r), r as u32))
                        .collect(),
                )
            })
            .collect();
        Ok(LinkIndex {
            config: config.clone(),
            scorer: Scorer::new(comparisons, model),
            review_weight: model::weight_of(config.clustering.review),
            removed: vec![0; data.len().div_ceil(64)],
            removed_count: 0,
            data,
            blocker,
            buckets,
            max_candidates,
        })
    }

    /// Records ever indexed, removed ones included (record numbers run `0..len()`).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Records a lookup can find.
    pub fn live(&self) -> usize {
        self.data.len() - self.removed_count
    }

    /// The encoded records (for a caller that shows a candidate's indexed values).
    pub fn data(&self) -> &Dataset {
        &self.data
    }

    /// Bytes of heap the index holds, from its containers' capacities (allocator overhead
    /// excluded; a process's resident size is the measure that counts, see BENCHMARKS.md).
    pub fn heap_bytes(&self) -> usize {
        let columns: usize = self
            .data
            .columns
            .iter()
            .map(|c| c.values.capacity() * 4 + c.vocab.heap_bytes())
            .sum();
        columns
            + self.buckets.iter().map(Buckets::heap_bytes).sum::<usize>()
            + self.removed.capacity() * 8
    }

    /// Adds a record (values in field order); returns its record number.
    pub fn insert<S: AsRef<str> + Sync>(&mut self, row: Vec<S>) -> Result<u32, LinkageError> {
        let r = self.data.push_rows(&self.config, &[row], self.data.len())?;
        for (rule, k) in self.blocker.keys_for(&self.data, r).into_iter().enumerate() {
            if k != 0 {
                self.buckets[rule]
                    .added
                    .entry(k)
                    .or_default()
                    .push(r as u32);
            }
        }
        if self.removed.len() * 64 < self.data.len() {
            self.removed.push(0);
        }
        Ok(r as u32)
    }

    /// Hides a record from later lookups; false when it was already removed or never existed.
    pub fn remove(&mut self, record: u32) -> bool {
        let r = record as usize;
        if r >= self.data.len() || self.is_removed(record) {
            return false;
        }
        self.removed[r / 64] |= 1 << (r % 64);
        self.removed_count += 1;
        true
    }

    pub fn is_removed(&self, record: u32) -> bool {
        let r = record as usize;
        self.removed
            .get(r / 64)
            .is_some_and(|w| w & (1 << (r % 64)) != 0)
    }

    /// Records that may be the same person as `row`, best first; the index is unchanged.
    pub fn lookup<S: AsRef<str> + Sync>(
        &mut self,
        row: Vec<S>,
    ) -> Result<Vec<Candidate>, LinkageError> {
        let probe = self.data.push_rows(&self.config, &[row], self.data.len())?;
        let keys = self.blocker.keys_for(&self.data, probe);
        let mut candidates: Vec<u32> = Vec::new();
        for (b, k) in self.buckets.iter().zip(keys) {
            if k == 0 {
                continue;
            }
            let (built, later) = (b.built(k), b.later(k));
            if built.len() + later.len() <= self.max_candidates {
                candidates.extend_from_slice(built);
                candidates.extend_from_slice(later);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut found: Vec<Candidate> = candidates
            .into_iter()
            .filter(|&c| !self.is_removed(c))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::TrainingSummary;

    const CONFIG: &str = r#"
[[field]]
name = "given_name"
kind = "name"
[[field]]
name = "family_name"
kind = "name"
[[field]]
name = "birth_date"
kind = "date"
[[blocking]]
on = ["family_name"]
"#;

    fn index(rows: &[[&str; 3]]) -> LinkIndex {
        let config: LinkageConfig = toml::from_str(CONFIG).unwrap();
        let comparisons = Comparison::from_config(&config).unwrap();
        // Agreement is likely for matches and rare otherwise, at every level.
        let m: Vec<Vec<f64>> = comparisons
            .iter()
            .map(|c| {
                let mut v = vec![1.0, 0.9];
                v.resize(c.radix(), 0.1 / (c.radix() - 2) as f64);
                v
            })
            .collect();
        let u: Vec<Vec<f64>> = comparisons
            .iter()
            .map(|c| {
                let mut v = vec![1.0, 0.001];
                v.resize(c.radix(), 0.999 / (c.radix() - 2) as f64);
                v
            })
            .collect();
        let model = TrainedModel::new(&comparisons, &m, &u, 0.01, TrainingSummary::default());
        let mut data = Dataset::new(&config);
        let rows: Vec<Vec<&str>> = rows.iter().map(|r| r.to_vec()).collect();
        data.push_rows(&config, &rows, 0).unwrap();
        LinkIndex::build(&config, data, &model, 100).unwrap()
    }

    fn found(index: &mut LinkIndex, row: [&str; 3]) -> Vec<u32> {
        index
            .lookup(row.to_vec())
            .unwrap()
            .into_iter()
            .map(|c| c.record)
            .collect()
    }

    #[test]
    fn built_inserted_and_removed_records() {
        let mut index = index(&[
            ["Keza", "Uwase", "2020-01-02"],
            ["Eric", "Mugisha", "1990-05-05"],
            ["Aline", "Uwase", "1985-03-01"],
        ]);
        assert_eq!(found(&mut index, ["Keza", "Uwase", "2020-01-02"]), vec![0]);
        let r = index
            .insert(vec!["Jean", "Habimana", "1970-04-05"])
            .unwrap();
        assert_eq!(r, 3);
        assert_eq!(
            found(&mut index, ["Jean", "Habimana", "1970-04-05"]),
            vec![3]
        );
        assert!(index.remove(0));
        assert!(!index.remove(0), "a second removal changes nothing");
        assert!(!index.remove(99));
        assert!(found(&mut index, ["Keza", "Uwase", "2020-01-02"]).is_empty());
        assert_eq!((index.len(), index.live()), (4, 3));
        // The probe is gone again: the index is unchanged by lookups.
        assert_eq!(index.len(), 4);
        assert!(index.heap_bytes() > 0);
    }

    #[test]
    fn many_inserts_keep_the_removed_bitmap_in_step() {
        let mut index = index(&[["Keza", "Uwase", "2020-01-02"]]);
        for i in 0..200 {
            let r = index
                .insert(vec!["Eric", "Mugisha", &format!("{}", 1900 + i)])
                .unwrap();
            assert!(index.remove(r));
        }
        assert_eq!(index.live(), 1);
        assert_eq!(found(&mut index, ["Keza", "Uwase", "2020-01-02"]), vec![0]);
    }
}
