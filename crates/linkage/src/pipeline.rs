//! A whole run: block, train (unless a model is given), score, cluster.

use std::collections::HashMap;

use crate::blocking::Blocker;
use crate::cluster::{cluster, Clustering, Constraints, ScoredPair};
use crate::compare::Comparison;
use crate::config::LinkageConfig;
use crate::dataset::Dataset;
use crate::model::{self, PatternCodec, Scorer, TrainedModel, TrainingSummary};
use crate::LinkageError;

/// Told how far a run has got; the command line draws a progress bar with it.
pub trait Progress: Sync {
    /// A new stage begins, with `total` units of work (pairs) or 0 when unknown.
    fn stage(&self, name: &str, total: u64);
    fn advance(&self, n: u64);
}

/// Progress that goes nowhere.
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Everything a run produced.
pub struct Run {
    pub model: TrainedModel,
    pub scorer: Scorer,
    pub blocker: Blocker,
    /// Pairs at or above the review threshold.
    pub pairs: Vec<ScoredPair>,
    pub clustering: Clustering,
    /// Distinct pairs blocking produced and the model compared.
    pub candidate_pairs: u64,
    pub auto_link_weight: f64,
}

/// Every pair the data could form (the denominator of λ).
pub fn total_pairs(data: &Dataset) -> u64 {
    let n = data.len() as u64;
    if data.is_link() {
        data.left_len as u64 * (n - data.left_len as u64)
    } else {
        n * n.saturating_sub(1) / 2
    }
}

/// Runs blocking, training (when `model` is None), scoring and clustering.
pub fn run(
    config: &LinkageConfig,
    data: &Dataset,
    model: Option<TrainedModel>,
    progress: &dyn Progress,
) -> Result<Run, LinkageError> {
    config.validate()?;
    let comparisons = Comparison::from_config(config)?;
    let codec = PatternCodec::new(&comparisons)?;
    progress.stage("blocking", 0);
    let blocker = Blocker::new(data, &config.blocking, config.model.max_block_pairs)?;
    let trained = model.is_none();
    let mut model = match model {
        Some(m) => TrainedModel::from_json(&m.to_json(), &comparisons)?,
        None => train(config, data, &comparisons, &codec, &blocker, progress)?,
    };
    let scorer = Scorer::new(comparisons, &model);
    let review = model::weight_of(config.clustering.review);
    progress.stage("scoring", blocker.planned_pairs());
    let (pairs, candidate_pairs) = blocker.fold_pairs(
        || (Vec::new(), 0u64),
        |(kept, n), a, b| {
            *n += 1;
            let w = scorer.weight(data, a as usize, b as usize);
            if w >= review {
                kept.push(ScoredPair {
                    a,
                    b,
                    weight: w as f32,
                });
            }
        },
        |(mut x, n), (y, m)| {
            x.extend(y);
            (x, n + m)
        },
        &|n| progress.advance(n),
    );
    if trained {
        model.training.candidate_pairs = candidate_pairs;
    }
    progress.stage("clustering", 0);
    let auto_link_weight = model::weight_of(config.clustering.auto_link);
    let constraints = Constraints::new(config, data);
    let one_to_one = config.clustering.one_to_one && data.is_link();
    let clustering = cluster(data, &constraints, &pairs, auto_link_weight, one_to_one);
    Ok(Run {
        model,
        scorer,
        blocker,
        pairs,
        clustering,
        candidate_pairs,
        auto_link_weight,
    })
}

fn train(
    config: &LinkageConfig,
    data: &Dataset,
    comparisons: &[Comparison],
    codec: &PatternCodec,
    blocker: &Blocker,
    progress: &dyn Progress,
) -> Result<TrainedModel, LinkageError> {
    let mc = &config.model;
    progress.stage("estimating u", 0);
    let (u, sampled) = model::estimate_u(comparisons, data, mc.u_sample_pairs, mc.seed);
    let planned = blocker.planned_pairs();
    let share = mc.em_sample_pairs as f64 / planned.max(1) as f64;
    progress.stage("comparison patterns", planned);
    let patterns: HashMap<u64, u64> = blocker.fold_sample(
        share,
        mc.seed,
        HashMap::new,
        |m, _rule, a, b| {
            *m.entry(codec.encode(comparisons, data, a as usize, b as usize))
                .or_insert(0) += 1
        },
        |mut x, y| {
            for (k, v) in y {
                *x.entry(k).or_insert(0) += v;
            }
            x
        },
        &|n| progress.advance(n),
    );
    // Pairs EM reads; all candidate pairs when the sample is the whole.
    let em_pairs: u64 = patterns.values().sum();
    progress.stage("EM", 0);
    let em = model::expectation_maximisation(
        codec,
        comparisons,
        &patterns,
        &u,
        mc.em_max_iterations,
        mc.em_tolerance,
    );
    let total = total_pairs(data);
    let deterministic = if mc.deterministic.is_empty() {
        None
    } else {
        progress.stage("deterministic rules", 0);
        let det = Blocker::new(data, &mc.deterministic, mc.max_block_pairs)?;
        let found = det.count_distinct();
        Some((
            model::estimate_lambda(found, mc.deterministic_recall, total),
            found,
        ))
    };
    let (lambda, deterministic_pairs) = match deterministic {
        Some(d) => d,
        None => {
            // Without deterministic rules, λ is EM's share of matches among candidates spread
            // over all pairs: blocking is assumed to find nearly every match.
            let matched = em_match_share(codec, &patterns, &em.m, &u);
            let candidate_pairs = em_pairs as f64 / share.min(1.0);
            (
                (matched * candidate_pairs / total.max(1) as f64).clamp(1e-12, 0.5),
                0,
            )
        }
    };
    let training = TrainingSummary {
        records: data.len() as u64,
        u_sample_pairs: sampled,
        deterministic_pairs,
        // Set once scoring has counted every candidate pair.
        candidate_pairs: em_pairs,
        em_pairs,
        distinct_patterns: patterns.len() as u64,
        em_iterations: em.iterations,
        em_converged: em.converged,
    };
    Ok(TrainedModel::new(comparisons, &em.m, &u, lambda, training))
}

/// The share of candidate pairs EM's m and the sampled u call matches, at an even prior.
fn em_match_share(
    codec: &PatternCodec,
    patterns: &HashMap<u64, u64>,
    m: &[Vec<f64>],
    u: &[Vec<f64>],
) -> f64 {
    let (mut matched, mut total) = (0.0, 0.0);
    let mut sorted: Vec<(&u64, &u64)> = patterns.iter().collect();
    sorted.sort_unstable();
    for (p, n) in sorted {
        let levels = codec.decode(*p);
        let bf: f64 = levels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l != 0)
            .map(|(i, &l)| m[i][usize::from(l)] / u[i][usize::from(l)])
            .product();
        let prob = bf / (1.0 + bf);
        if prob > 0.5 {
            matched += *n as f64;
        }
        total += *n as f64;
    }
    if total == 0.0 {
        0.0
    } else {
        matched / total
    }
}
