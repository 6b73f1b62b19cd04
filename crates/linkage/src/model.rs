//! The Fellegi–Sunter model: for each comparison level, m = P(level | match) and
//! u = P(level | non-match); a pair's match weight is log2(λ/(1-λ)) plus log2(m/u) over its
//! levels, and its match probability follows from the weight.
//!
//! u is estimated from a seeded random sample of all pairs (nearly all of which are
//! non-matches); m by expectation–maximisation over the distinct comparison patterns of the
//! blocked pairs (counts, not pairs, so EM costs nothing at national scale); λ, the share of
//! all pairs that match, from the pairs that deterministic rules find.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compare::{Comparison, EXACT};
use crate::dataset::Dataset;
use crate::LinkageError;

/// Bumped whenever the saved model's meaning changes; older files are refused.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// Estimates are kept away from 0 so no single field can make a weight infinite.
const FLOOR: f64 = 1e-6;

/// A trained model, saved as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedModel {
    pub format_version: u32,
    /// The engine version that trained it.
    pub engine: String,
    /// λ: the probability that two records drawn at random match.
    pub lambda: f64,
    pub comparisons: Vec<ComparisonParams>,
    pub training: TrainingSummary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComparisonParams {
    pub name: String,
    pub term_frequency: bool,
    pub levels: Vec<LevelParams>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LevelParams {
    pub label: String,
    pub m: f64,
    pub u: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub records: u64,
    pub u_sample_pairs: u64,
    pub deterministic_pairs: u64,
    pub candidate_pairs: u64,
    /// Candidate pairs whose patterns EM read (all of them, or a seeded sample when there are
    /// more than `model.em_sample_pairs`).
    #[serde(default)]
    pub em_pairs: u64,
    pub distinct_patterns: u64,
    pub em_iterations: u32,
    pub em_converged: bool,
    /// With `model.em_sessions`: what each blocking rule's EM session found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<SessionSummary>,
}

/// One EM session: m trained on the pairs of one blocking rule's blocks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SessionSummary {
    pub rule: String,
    /// Pairs the session read (a seeded sample of the rule's pairs when there are more).
    pub pairs: u64,
    /// Fields the rule makes agree, left out of the session.
    pub left_out: Vec<String>,
    pub lambda_start: f64,
    /// The share of the session's pairs EM put in the match class.
    pub lambda: f64,
    pub iterations: u32,
    pub converged: bool,
    /// Whether the session's m entered the model; `note` says why not.
    pub used: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Mixed-radix code of a pair's levels over all comparisons.
pub type Pattern = u64;

/// Encodes levels; also the inverse.
#[derive(Debug, Clone)]
pub struct PatternCodec {
    radices: Vec<u64>,
}

impl PatternCodec {
    pub fn new(comparisons: &[Comparison]) -> Result<PatternCodec, LinkageError> {
        let radices: Vec<u64> = comparisons.iter().map(|c| c.radix() as u64).collect();
        let mut total = 1u64;
        for r in &radices {
            total = total.checked_mul(*r).ok_or_else(|| {
                LinkageError::Config("too many comparison levels to encode a pattern".into())
            })?;
        }
        Ok(PatternCodec { radices })
    }

    pub fn encode(
        &self,
        comparisons: &[Comparison],
        data: &Dataset,
        a: usize,
        b: usize,
    ) -> Pattern {
        comparisons
            .iter()
            .zip(&self.radices)
            .fold(0u64, |p, (c, r)| p * r + u64::from(c.level(data, a, b)))
    }

    pub fn decode(&self, mut p: Pattern) -> Vec<u8> {
        let mut levels = vec![0u8; self.radices.len()];
        for (i, r) in self.radices.iter().enumerate().rev() {
            levels[i] = (p % r) as u8;
            p /= r;
        }
        levels
    }
}

/// u for every comparison level, from `sample` random pairs drawn with `seed`.
pub fn estimate_u(
    comparisons: &[Comparison],
    data: &Dataset,
    sample: u64,
    seed: u64,
) -> (Vec<Vec<f64>>, u64) {
    let n = data.len();
    let (left, right) = if data.is_link() {
        (data.left_len, n - data.left_len)
    } else {
        (n, n)
    };
    if left == 0 || right == 0 || (!data.is_link() && n < 2) {
        return (
            comparisons
                .iter()
                .map(|c| vec![1.0 / c.labels.len() as f64; c.radix()])
                .collect(),
            0,
        );
    }
    // Each of a fixed number of chunks has its own seed, so the sample does not depend on how
    // many threads run it.
    const CHUNKS: u64 = 64;
    let per_chunk = sample.div_ceil(CHUNKS);
    let counts = (0..CHUNKS)
        .into_par_iter()
        .map(|chunk| {
            let mut rng = StdRng::seed_from_u64(seed ^ chunk.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut counts: Vec<Vec<u64>> =
                comparisons.iter().map(|c| vec![0; c.radix()]).collect();
            for _ in 0..per_chunk {
                let (a, b) = if data.is_link() {
                    (rng.random_range(0..left), left + rng.random_range(0..right))
                } else {
                    let a = rng.random_range(0..n);
                    let mut b = rng.random_range(0..n - 1);
                    if b >= a {
                        b += 1;
                    }
                    (a, b)
                };
                for (c, cnt) in comparisons.iter().zip(counts.iter_mut()) {
                    cnt[usize::from(c.level(data, a, b))] += 1;
                }
            }
            counts
        })
        .reduce(
            || comparisons.iter().map(|c| vec![0; c.radix()]).collect(),
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    for (p, q) in x.iter_mut().zip(y) {
                        *p += q;
                    }
                }
                a
            },
        );
    let u = counts.iter().map(|c| proportions(c, 0.5)).collect();
    (u, per_chunk * CHUNKS)
}

/// Shares of levels 1.. (level 0, missing, is left at 1 and never used), with a pseudo-count.
fn proportions(counts: &[u64], pseudo: f64) -> Vec<f64> {
    let levels = counts.len() - 1;
    let total: f64 = counts[1..].iter().map(|&c| c as f64).sum::<f64>() + pseudo * levels as f64;
    let mut out = vec![1.0];
    out.extend(
        counts[1..]
            .iter()
            .map(|&c| ((c as f64 + pseudo) / total).max(FLOOR)),
    );
    out
}

/// Result of EM.
pub struct EmResult {
    pub m: Vec<Vec<f64>>,
    pub iterations: u32,
    pub converged: bool,
}

/// EM over distinct patterns with their counts. `u_start` seeds the non-match side.
pub fn expectation_maximisation(
    codec: &PatternCodec,
    comparisons: &[Comparison],
    patterns: &HashMap<Pattern, u64>,
    u_start: &[Vec<f64>],
    max_iterations: u32,
    tolerance: f64,
) -> EmResult {
    // Sorted, so that float sums, and therefore the model, do not depend on hash order.
    let mut sorted: Vec<(&Pattern, &u64)> = patterns.iter().collect();
    sorted.sort_unstable();
    let decoded: Vec<(Vec<u8>, f64)> = sorted
        .into_iter()
        .map(|(p, n)| (codec.decode(*p), *n as f64))
        .collect();
    let mut m: Vec<Vec<f64>> = comparisons.iter().map(initial_m).collect();
    let mut u: Vec<Vec<f64>> = u_start.to_vec();
    let mut p_match = 0.1f64;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iterations {
        iterations += 1;
        let mut m_acc: Vec<Vec<f64>> = m.iter().map(|l| vec![0.0; l.len()]).collect();
        let mut u_acc = m_acc.clone();
        let (mut matches, mut total) = (0.0, 0.0);
        for (levels, count) in &decoded {
            let (mut pm, mut pu) = (p_match, 1.0 - p_match);
            for (i, &l) in levels.iter().enumerate() {
                if l != 0 {
                    pm *= m[i][usize::from(l)];
                    pu *= u[i][usize::from(l)];
                }
            }
            let r = if pm + pu > 0.0 { pm / (pm + pu) } else { 0.0 };
            matches += r * count;
            total += count;
            for (i, &l) in levels.iter().enumerate() {
                m_acc[i][usize::from(l)] += r * count;
                u_acc[i][usize::from(l)] += (1.0 - r) * count;
            }
        }
        let new_m: Vec<Vec<f64>> = m_acc.iter().map(|c| normalise(c)).collect();
        let new_u: Vec<Vec<f64>> = u_acc.iter().map(|c| normalise(c)).collect();
        let new_p = if total > 0.0 {
            (matches / total).clamp(FLOOR, 1.0 - FLOOR)
        } else {
            p_match
        };
        let delta = max_change(&m, &new_m)
            .max(max_change(&u, &new_u))
            .max((new_p - p_match).abs());
        m = new_m;
        u = new_u;
        p_match = new_p;
        if delta < tolerance {
            converged = true;
            break;
        }
    }
    EmResult {
        m,
        iterations,
        converged,
    }
}

/// What one EM session (one blocking rule's pairs) estimated.
pub struct Session {
    pub m: Vec<Vec<f64>>,
    /// Per comparison: the session estimated its m (not left out, and seen in the pairs).
    pub estimated: Vec<bool>,
    pub lambda: f64,
    pub iterations: u32,
    pub converged: bool,
}

/// EM over one blocking rule's pattern counts with u held at `u` (the random-sample values)
/// and the comparisons in `left_out` ignored: the rule made them agree, so within its blocks
/// they say nothing about matching. Only m and the session's λ move, λ at most `lambda_max`:
/// fields that go with the rule's keys (given names and family names tell the sex) make the
/// block's non-matches agree more than random pairs, and with λ free EM explains that excess
/// with a "match" class of most of the block; a block cannot hold more matches than the
/// data, which bounds λ.
#[allow(clippy::too_many_arguments)]
pub fn em_session(
    codec: &PatternCodec,
    comparisons: &[Comparison],
    patterns: &HashMap<Pattern, u64>,
    u: &[Vec<f64>],
    left_out: &[bool],
    (lambda_start, lambda_max): (f64, f64),
    max_iterations: u32,
    tolerance: f64,
) -> Session {
    let lambda_max = lambda_max.clamp(FLOOR, 1.0 - FLOOR);
    // Patterns merged once the left-out levels are cleared; a BTreeMap keeps the order (and
    // so the float sums) independent of hashing.
    let mut merged: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
    for (p, n) in patterns {
        let mut levels = codec.decode(*p);
        for (l, out) in levels.iter_mut().zip(left_out) {
            if *out {
                *l = 0;
            }
        }
        *merged.entry(levels).or_insert(0.0) += *n as f64;
    }
    let mut m: Vec<Vec<f64>> = comparisons.iter().map(initial_m).collect();
    let mut lambda = lambda_start.clamp(FLOOR, lambda_max);
    let mut observed = vec![0.0f64; comparisons.len()];
    let (mut iterations, mut converged) = (0, false);
    while iterations < max_iterations {
        iterations += 1;
        let mut m_acc: Vec<Vec<f64>> = m.iter().map(|l| vec![0.0; l.len()]).collect();
        observed.fill(0.0);
        let (mut matches, mut total) = (0.0, 0.0);
        for (levels, count) in &merged {
            let (mut pm, mut pu) = (lambda, 1.0 - lambda);
            for (i, &l) in levels.iter().enumerate().filter(|(_, &l)| l != 0) {
                pm *= m[i][usize::from(l)];
                pu *= u[i][usize::from(l)];
            }
            let r = if pm + pu > 0.0 { pm / (pm + pu) } else { 0.0 };
            matches += r * count;
            total += count;
            for (i, &l) in levels.iter().enumerate().filter(|(_, &l)| l != 0) {
                m_acc[i][usize::from(l)] += r * count;
                observed[i] += r * count;
            }
        }
        // A comparison the match class never saw keeps its m: nothing was learnt about it.
        let new_m: Vec<Vec<f64>> = m_acc
            .iter()
            .zip(&m)
            .zip(&observed)
            .map(|((acc, old), &o)| if o > 0.0 { normalise(acc) } else { old.clone() })
            .collect();
        let new_lambda = if total > 0.0 {
            (matches / total).clamp(FLOOR, lambda_max)
        } else {
            lambda
        };
        let delta = max_change(&m, &new_m).max((new_lambda - lambda).abs());
        m = new_m;
        lambda = new_lambda;
        if delta < tolerance {
            converged = true;
            break;
        }
    }
    let estimated = observed
        .iter()
        .zip(left_out)
        .map(|(&o, &out)| !out && o >= 1.0)
        .collect();
    Session {
        m,
        estimated,
        lambda,
        iterations,
        converged,
    }
}

/// Why a session's match class is not one of matches, if it is not. A class of matches
/// agrees exactly far more often than random pairs on most fields (identifiers, names, birth
/// date, place); a class EM settled on by mistake (all pairs of the same sex, say) agrees more
/// than chance on one or two fields and like random pairs on the rest.
pub fn degenerate(session: &Session, u: &[Vec<f64>], names: &[&str]) -> Option<String> {
    const STRONG: f64 = 10.0;
    let fields: Vec<usize> = (0..u.len()).filter(|&i| session.estimated[i]).collect();
    if fields.is_empty() {
        return Some("no compared field was seen in the session's pairs".into());
    }
    let strong: Vec<&str> = fields
        .iter()
        .filter(|&&i| session.m[i][usize::from(EXACT)] >= STRONG * u[i][usize::from(EXACT)])
        .map(|&i| names[i])
        .collect();
    (strong.len() * 2 < fields.len()).then(|| {
        format!(
            "its match class agrees exactly at least {STRONG} times as often as random pairs on only {} of {} fields ({})",
            strong.len(),
            fields.len(),
            strong.join(", ")
        )
    })
}

fn initial_m(c: &Comparison) -> Vec<f64> {
    // Most matches agree exactly; the rest spread over the other levels, least on "different".
    let levels = c.labels.len();
    let mut m = vec![1.0];
    for l in 1..=levels {
        m.push(if l == 1 {
            0.9
        } else {
            0.1 / (levels - 1).max(1) as f64
        });
    }
    m
}

fn normalise(acc: &[f64]) -> Vec<f64> {
    let total: f64 = acc[1..].iter().sum();
    let mut out = vec![1.0];
    let levels = (acc.len() - 1) as f64;
    out.extend(acc[1..].iter().map(|x| {
        let share = if total > 0.0 { x / total } else { 1.0 / levels };
        share.max(FLOOR)
    }));
    out
}

fn max_change(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f64::max)
}

/// λ from the distinct pairs the deterministic rules find among `total_pairs`.
pub fn estimate_lambda(deterministic_pairs: u64, recall: f64, total_pairs: u64) -> f64 {
    if total_pairs == 0 {
        return 0.5;
    }
    let expected_matches = (deterministic_pairs as f64 / recall).max(1.0);
    (expected_matches / total_pairs as f64).clamp(1e-12, 0.5)
}

impl TrainedModel {
    pub fn new(
        comparisons: &[Comparison],
        m: &[Vec<f64>],
        u: &[Vec<f64>],
        lambda: f64,
        training: TrainingSummary,
    ) -> TrainedModel {
        TrainedModel {
            format_version: MODEL_FORMAT_VERSION,
            engine: env!("CARGO_PKG_VERSION").to_string(),
            lambda,
            comparisons: comparisons
                .iter()
                .enumerate()
                .map(|(i, c)| ComparisonParams {
                    name: c.name.clone(),
                    term_frequency: c.term_frequency,
                    levels: (1..c.radix())
                        .map(|l| LevelParams {
                            label: c.label(l as u8).to_string(),
                            m: m[i][l],
                            u: u[i][l],
                        })
                        .collect(),
                })
                .collect(),
            training,
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of numbers and strings always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a saved model and checks it fits these comparisons.
    pub fn from_json(text: &str, comparisons: &[Comparison]) -> Result<TrainedModel, LinkageError> {
        let model: TrainedModel = serde_json::from_str(text)
            .map_err(|e| LinkageError::Model(format!("not a model file: {e}")))?;
        if model.format_version != MODEL_FORMAT_VERSION {
            return Err(LinkageError::Model(format!(
                "model format {} is not the supported {}; train again",
                model.format_version, MODEL_FORMAT_VERSION
            )));
        }
        let same = model.comparisons.len() == comparisons.len()
            && model.comparisons.iter().zip(comparisons).all(|(p, c)| {
                p.name == c.name
                    && p.levels.len() == c.labels.len()
                    && p.levels
                        .iter()
                        .zip(&c.labels)
                        .all(|(l, label)| &l.label == label)
            });
        if !same {
            return Err(LinkageError::Model(
                "the model's comparisons and levels differ from the configuration's; train again"
                    .into(),
            ));
        }
        Ok(model)
    }
}

/// Scores pairs with a trained model.
#[derive(Debug, Clone)]
pub struct Scorer {
    pub comparisons: Vec<Comparison>,
    /// weights[comparison][level]; level 0 weighs 0.
    weights: Vec<Vec<f64>>,
    m_exact: Vec<f64>,
    prior: f64,
}

/// One field's part in a pair's weight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldContribution {
    pub field: String,
    pub level: String,
    pub weight: f64,
}

impl Scorer {
    pub fn new(comparisons: Vec<Comparison>, model: &TrainedModel) -> Scorer {
        let weights = model
            .comparisons
            .iter()
            .map(|c| {
                let mut w = vec![0.0];
                w.extend(
                    c.levels
                        .iter()
                        .map(|l| (l.m.max(FLOOR) / l.u.max(FLOOR)).log2()),
                );
                w
            })
            .collect();
        let m_exact = model
            .comparisons
            .iter()
            .map(|c| c.levels.first().map_or(1.0, |l| l.m))
            .collect();
        let lambda = model.lambda.clamp(1e-12, 1.0 - 1e-12);
        Scorer {
            comparisons,
            weights,
            m_exact,
            prior: (lambda / (1.0 - lambda)).log2(),
        }
    }

    fn field_weight(&self, i: usize, data: &Dataset, a: usize, b: usize) -> (u8, f64) {
        let c = &self.comparisons[i];
        let level = c.level(data, a, b);
        let mut w = self.weights[i][usize::from(level)];
        if level == EXACT && c.term_frequency {
            // An exact agreement on a rare value says more than one on a common value: use the
            // value's own frequency as u (Winkler's frequency-based adjustment).
            let col = &data.columns[c.column];
            let tf = col
                .vocab
                .frequency(col.values[a])
                .max(1.0 / col.vocab.total.max(1) as f64);
            w = (self.m_exact[i].max(FLOOR) / tf).log2();
        }
        (level, w)
    }

    /// The match weight of a pair.
    pub fn weight(&self, data: &Dataset, a: usize, b: usize) -> f64 {
        self.prior
            + (0..self.comparisons.len())
                .map(|i| self.field_weight(i, data, a, b).1)
                .sum::<f64>()
    }

    /// Each field's contribution; they sum with `prior()` to the pair's weight.
    pub fn explain(&self, data: &Dataset, a: usize, b: usize) -> Vec<FieldContribution> {
        (0..self.comparisons.len())
            .map(|i| {
                let (level, weight) = self.field_weight(i, data, a, b);
                FieldContribution {
                    field: self.comparisons[i].name.clone(),
                    level: self.comparisons[i].label(level).to_string(),
                    weight,
                }
            })
            .collect()
    }

    pub fn prior(&self) -> f64 {
        self.prior
    }
}

/// The probability that a pair with this match weight is a match.
pub fn probability(weight: f64) -> f64 {
    let b = weight.exp2();
    if b.is_infinite() {
        return 1.0;
    }
    b / (1.0 + b)
}

/// The weight of a probability (inverse of [`probability`]).
pub fn weight_of(probability: f64) -> f64 {
    let p = probability.clamp(1e-15, 1.0 - 1e-15);
    (p / (1.0 - p)).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_probabilities_are_inverse() {
        for p in [0.01, 0.5, 0.9, 0.999] {
            assert!((probability(weight_of(p)) - p).abs() < 1e-9);
        }
        assert_eq!(probability(0.0), 0.5);
    }

    #[test]
    fn a_match_class_agreeing_on_one_field_only_is_refused() {
        // Fields: an ID, a name, sex. u of exact agreement: rare, rare, half.
        let u = vec![
            vec![1.0, 1e-6, 0.999_999],
            vec![1.0, 0.01, 0.99],
            vec![1.0, 0.5, 0.5],
        ];
        let session = |m: Vec<Vec<f64>>| Session {
            m,
            estimated: vec![true; 3],
            lambda: 0.5,
            iterations: 3,
            converged: true,
        };
        let names = ["id", "name", "sex"];
        // "Same sex" is not a match class: the ID and the name agree as in random pairs.
        let same_sex = session(vec![
            vec![1.0, 1e-6, 0.999_999],
            vec![1.0, 0.01, 0.99],
            vec![1.0, 1.0, 0.0],
        ]);
        let why = degenerate(&same_sex, &u, &names);
        assert!(
            why.as_deref().is_some_and(|w| w.contains("0 of 3")),
            "{why:?}"
        );
        let matches = session(vec![
            vec![1.0, 0.99, 0.01],
            vec![1.0, 0.8, 0.2],
            vec![1.0, 0.99, 0.01],
        ]);
        assert_eq!(degenerate(&matches, &u, &names), None);
    }

    #[test]
    fn lambda_scales_with_recall() {
        assert!((estimate_lambda(80, 0.8, 10_000) - 0.01).abs() < 1e-12);
        assert_eq!(estimate_lambda(0, 0.8, 0), 0.5);
    }
}
