//! Evaluation against known truth: pairwise precision, recall and F1 (a true pair that
//! blocking never produced is a false negative like any other), B-cubed, and the pair
//! completeness of blocking; the same for any subgroup of records.
//!
//! Everything is computed from counts of (cluster, entity) cells, never by listing pairs,
//! except pair completeness, which lists the true pairs.

use std::collections::HashMap;

use serde::Serialize;

/// A record without a known entity: left out of the evaluation.
pub const UNKNOWN: u32 = u32::MAX;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub records: u64,
    pub true_pairs: u64,
    pub predicted_pairs: u64,
    pub true_positives: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub bcubed_precision: f64,
    pub bcubed_recall: f64,
    pub bcubed_f1: f64,
    /// Share of true pairs that blocking produced (when the blocking is known).
    pub pair_completeness: Option<f64>,
}

/// The truth and a clustering of the same records, index-aligned.
pub struct Evaluation<'a> {
    /// Entity of each record (dense ids; [`UNKNOWN`] when not known).
    pub entity: &'a [u32],
    /// Cluster of each record.
    pub cluster: &'a [u32],
    /// Link mode: which records are on the left; only pairs across sides count.
    pub left: Option<&'a [bool]>,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    left: u64,
    right: u64,
}

impl Counts {
    fn pairs(self, link: bool) -> u64 {
        if link {
            self.left * self.right
        } else {
            let n = self.left + self.right;
            n * n.saturating_sub(1) / 2
        }
    }
}

struct Pairwise {
    tp: u64,
    predicted: u64,
    truth: u64,
}

impl<'a> Evaluation<'a> {
    fn link(&self) -> bool {
        self.left.is_some()
    }

    fn is_left(&self, r: usize) -> bool {
        self.left.is_none_or(|l| l[r])
    }

    fn pairwise(&self, include: &dyn Fn(usize) -> bool) -> Pairwise {
        let mut cells: HashMap<(u32, u32), Counts> = HashMap::new();
        let mut clusters: HashMap<u32, Counts> = HashMap::new();
        let mut entities: HashMap<u32, Counts> = HashMap::new();
        for r in 0..self.entity.len() {
            if self.entity[r] == UNKNOWN || !include(r) {
                continue;
            }
            let bump = |c: &mut Counts| {
                if self.is_left(r) {
                    c.left += 1
                } else {
                    c.right += 1
                }
            };
            bump(cells.entry((self.cluster[r], self.entity[r])).or_default());
            bump(clusters.entry(self.cluster[r]).or_default());
            bump(entities.entry(self.entity[r]).or_default());
        }
        let link = self.link();
        let sum = |m: &mut dyn Iterator<Item = &Counts>| m.map(|c| c.pairs(link)).sum();
        Pairwise {
            tp: sum(&mut cells.values()),
            predicted: sum(&mut clusters.values()),
            truth: sum(&mut entities.values()),
        }
    }

    /// Metrics over all records, or (with `subgroup`) over pairs with at least one record in
    /// the subgroup and B-cubed over the subgroup's records. `generated` tells whether
    /// blocking produced a pair.
    pub fn metrics(
        &self,
        subgroup: Option<&[bool]>,
        generated: Option<&(dyn Fn(usize, usize) -> bool + Sync)>,
    ) -> Metrics {
        let all = self.pairwise(&|_| true);
        let (tp, predicted, truth) = match subgroup {
            None => (all.tp, all.predicted, all.truth),
            Some(s) => {
                let outside = self.pairwise(&|r| !s[r]);
                (
                    all.tp - outside.tp,
                    all.predicted - outside.predicted,
                    all.truth - outside.truth,
                )
            }
        };
        let in_group = |r: usize| subgroup.is_none_or(|s| s[r]);
        let (bp, br, records) = self.bcubed(&in_group);
        let precision = ratio(tp, predicted);
        let recall = ratio(tp, truth);
        Metrics {
            records,
            true_pairs: truth,
            predicted_pairs: predicted,
            true_positives: tp,
            precision,
            recall,
            f1: harmonic(precision, recall),
            bcubed_precision: bp,
            bcubed_recall: br,
            bcubed_f1: harmonic(bp, br),
            pair_completeness: generated.map(|g| self.pair_completeness(&in_group, g)),
        }
    }

    fn bcubed(&self, in_group: &dyn Fn(usize) -> bool) -> (f64, f64, u64) {
        let mut cells: HashMap<(u32, u32), u64> = HashMap::new();
        let mut clusters: HashMap<u32, u64> = HashMap::new();
        let mut entities: HashMap<u32, u64> = HashMap::new();
        for r in 0..self.entity.len() {
            if self.entity[r] == UNKNOWN {
                continue;
            }
            *cells.entry((self.cluster[r], self.entity[r])).or_default() += 1;
            *clusters.entry(self.cluster[r]).or_default() += 1;
            *entities.entry(self.entity[r]).or_default() += 1;
        }
        let (mut p, mut rec, mut n) = (0.0, 0.0, 0u64);
        for r in 0..self.entity.len() {
            if self.entity[r] == UNKNOWN || !in_group(r) {
                continue;
            }
            let cell = cells[&(self.cluster[r], self.entity[r])] as f64;
            p += cell / clusters[&self.cluster[r]] as f64;
            rec += cell / entities[&self.entity[r]] as f64;
            n += 1;
        }
        if n == 0 {
            return (1.0, 1.0, 0);
        }
        (p / n as f64, rec / n as f64, n)
    }

    fn pair_completeness(
        &self,
        in_group: &dyn Fn(usize) -> bool,
        generated: &(dyn Fn(usize, usize) -> bool + Sync),
    ) -> f64 {
        let mut members: HashMap<u32, Vec<usize>> = HashMap::new();
        for r in 0..self.entity.len() {
            if self.entity[r] != UNKNOWN {
                members.entry(self.entity[r]).or_default().push(r);
            }
        }
        let (mut found, mut total) = (0u64, 0u64);
        for m in members.values() {
            for (i, &a) in m.iter().enumerate() {
                for &b in &m[i + 1..] {
                    if self.link() && self.is_left(a) == self.is_left(b) {
                        continue;
                    }
                    if !(in_group(a) || in_group(b)) {
                        continue;
                    }
                    total += 1;
                    if generated(a, b) {
                        found += 1;
                    }
                }
            }
        }
        ratio(found, total)
    }
}

/// Dense entity ids for string labels.
pub fn dense_ids<'s>(labels: impl IntoIterator<Item = Option<&'s str>>) -> Vec<u32> {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    labels
        .into_iter()
        .map(|l| match l {
            Some(l) => {
                let next = ids.len() as u32;
                *ids.entry(l).or_insert(next)
            }
            None => UNKNOWN,
        })
        .collect()
}

/// FEBRL record ids name their entity: `rec-12-org` and `rec-12-dup-0` are both `rec-12`.
pub fn febrl_entity(record_id: &str) -> &str {
    let id = record_id.trim();
    if let Some(i) = id.find("-dup-") {
        return &id[..i];
    }
    id.strip_suffix("-org").unwrap_or(id)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn harmonic(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_pairs_and_bcubed_by_hand() {
        // Entities: {0,1,2} {3}; clusters: {0,1} {2,3}.
        let entity = [0, 0, 0, 1];
        let cluster = [0, 0, 1, 1];
        let e = Evaluation {
            entity: &entity,
            cluster: &cluster,
            left: None,
        };
        let m = e.metrics(None, Some(&|a, b| !(a == 0 && b == 2)));
        assert_eq!(
            (m.true_pairs, m.predicted_pairs, m.true_positives),
            (3, 2, 1)
        );
        assert!((m.precision - 0.5).abs() < 1e-12);
        assert!((m.recall - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.pair_completeness.unwrap_or(0.0) - 2.0 / 3.0).abs() < 1e-12);
        // B-cubed precision: (1 + 1 + 1/2 + 1/2) / 4; recall: (2/3 + 2/3 + 1/3 + 1) / 4.
        assert!((m.bcubed_precision - 0.75).abs() < 1e-12);
        assert!((m.bcubed_recall - (2.0 / 3.0 + 2.0 / 3.0 + 1.0 / 3.0 + 1.0) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn subgroups_count_pairs_touching_them() {
        let entity = [0, 0, 0, 1];
        let cluster = [0, 0, 1, 1];
        let e = Evaluation {
            entity: &entity,
            cluster: &cluster,
            left: None,
        };
        let group = [false, false, true, false];
        let m = e.metrics(Some(&group), None);
        // True pairs touching record 2: (0,2), (1,2); predicted: (2,3); none right.
        assert_eq!(
            (m.true_pairs, m.predicted_pairs, m.true_positives),
            (2, 1, 0)
        );
        assert_eq!(m.records, 1);
    }

    #[test]
    fn link_mode_counts_only_cross_pairs() {
        let entity = [0, 1, 0, 1];
        let cluster = [0, 0, 0, 1];
        let left = [true, true, false, false];
        let e = Evaluation {
            entity: &entity,
            cluster: &cluster,
            left: Some(&left),
        };
        let m = e.metrics(None, None);
        // Cross pairs predicted: (0,2), (1,2); true: (0,2), (1,3).
        assert_eq!(
            (m.true_pairs, m.predicted_pairs, m.true_positives),
            (2, 2, 1)
        );
    }

    #[test]
    fn febrl_ids_name_their_entity() {
        assert_eq!(febrl_entity("rec-12-dup-0"), "rec-12");
        assert_eq!(febrl_entity(" rec-12-org"), "rec-12");
        assert_eq!(febrl_entity("other"), "other");
        assert_eq!(
            dense_ids([Some("a"), None, Some("b"), Some("a")]),
            vec![0, UNKNOWN, 1, 0]
        );
    }
}
