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
    if mc.em_sessions {
        return train_in_sessions(
            config,
            data,
            comparisons,
            codec,
            blocker,
            &u,
            sampled,
            progress,
        );
    }
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
        merge_counts,
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
    let (lambda, deterministic_pairs) = match deterministic_lambda(config, data, progress)? {
        Some(d) => d,
        None => {
            // Without deterministic rules, λ is EM's share of matches among candidates spread
            // over all pairs: blocking is assumed to find nearly every match.
            let matched = em_match_share(codec, &patterns, &em.m, &u);
            let candidate_pairs = em_pairs as f64 / share.min(1.0);
            (
                (matched * candidate_pairs / total_pairs(data).max(1) as f64).clamp(1e-12, 0.5),
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
        sessions: Vec::new(),
    };
    Ok(TrainedModel::new(comparisons, &em.m, &u, lambda, training))
}

fn merge_counts(mut x: HashMap<u64, u64>, y: HashMap<u64, u64>) -> HashMap<u64, u64> {
    for (k, v) in y {
        *x.entry(k).or_insert(0) += v;
    }
    x
}

/// λ and the distinct pairs the deterministic rules find, when there are such rules.
fn deterministic_lambda(
    config: &LinkageConfig,
    data: &Dataset,
    progress: &dyn Progress,
) -> Result<Option<(f64, u64)>, LinkageError> {
    let mc = &config.model;
    if mc.deterministic.is_empty() {
        return Ok(None);
    }
    progress.stage("deterministic rules", 0);
    let det = Blocker::new(data, &mc.deterministic, mc.max_block_pairs)?;
    let found = det.count_distinct();
    Ok(Some((
        model::estimate_lambda(found, mc.deterministic_recall, total_pairs(data)),
        found,
    )))
}

/// Splink's way of training m: one EM session per blocking rule over that rule's pairs, the
/// rule's own fields left out, u held at the random-sample values, λ started from the
/// matches the deterministic rules lead one to expect; each field's m is the plain mean over
/// the sessions that estimated it. A session whose match class is not one of matches
/// ([`model::degenerate`]) is reported and left out.
#[allow(clippy::too_many_arguments)]
fn train_in_sessions(
    config: &LinkageConfig,
    data: &Dataset,
    comparisons: &[Comparison],
    codec: &PatternCodec,
    blocker: &Blocker,
    u: &[Vec<f64>],
    sampled: u64,
    progress: &dyn Progress,
) -> Result<TrainedModel, LinkageError> {
    let mc = &config.model;
    let (lambda, deterministic_pairs) =
        deterministic_lambda(config, data, progress)?.ok_or_else(|| {
            LinkageError::Config(
                "model.em_sessions needs model.deterministic rules: λ comes from them".into(),
            )
        })?;
    let expected_matches = deterministic_pairs as f64 / mc.deterministic_recall;
    let rules = blocker.rule_count();
    let planned = blocker.planned_pairs();
    let share = mc.em_sample_pairs as f64 / planned.max(1) as f64;
    progress.stage("comparison patterns", planned);
    let patterns: Vec<HashMap<u64, u64>> = blocker.fold_sample_per_rule(
        share,
        mc.seed,
        || vec![HashMap::new(); rules],
        |m, rule, a, b| {
            *m[rule]
                .entry(codec.encode(comparisons, data, a as usize, b as usize))
                .or_insert(0) += 1
        },
        |x, y| {
            x.into_iter()
                .zip(y)
                .map(|(a, b)| merge_counts(a, b))
                .collect()
        },
        &|n| progress.advance(n),
    );
    progress.stage("EM", 0);
    let names: Vec<&str> = comparisons.iter().map(|c| c.name.as_str()).collect();
    let mut sum: Vec<Vec<f64>> = comparisons.iter().map(|c| vec![0.0; c.radix()]).collect();
    let mut sessions_of = vec![0u32; comparisons.len()];
    let mut summaries = Vec::new();
    let (mut em_pairs, mut distinct, mut iterations, mut converged) = (0u64, 0u64, 0u32, true);
    for (rule, counts) in patterns.iter().enumerate() {
        let columns = blocker.rule_columns(rule);
        let left_out: Vec<bool> = comparisons
            .iter()
            .map(|c| columns.contains(&c.column))
            .collect();
        let pairs: u64 = counts.values().sum();
        // The share of the rule's pairs that would match if every expected match were among
        // them: where EM starts, and twice it where EM must stop (see model::em_session).
        let expected_share = expected_matches / blocker.rule_pairs(rule).max(1) as f64;
        let lambda_start = expected_share.clamp(1e-6, 0.5);
        let session = model::em_session(
            codec,
            comparisons,
            counts,
            u,
            &left_out,
            (lambda_start, (2.0 * expected_share).max(lambda_start)),
            mc.em_max_iterations,
            mc.em_tolerance,
        );
        let problem = model::degenerate(&session, u, &names);
        if problem.is_none() {
            for (i, m) in session.m.iter().enumerate() {
                if session.estimated[i] {
                    sessions_of[i] += 1;
                    sum[i].iter_mut().zip(m).for_each(|(s, x)| *s += x);
                }
            }
            converged &= session.converged;
        }
        em_pairs += pairs;
        distinct += counts.len() as u64;
        iterations += session.iterations;
        summaries.push(model::SessionSummary {
            rule: blocker.rule_name(rule).to_string(),
            pairs,
            left_out: comparisons
                .iter()
                .zip(&left_out)
                .filter(|(_, &o)| o)
                .map(|(c, _)| c.name.clone())
                .collect(),
            lambda_start,
            lambda: session.lambda,
            iterations: session.iterations,
            converged: session.converged,
            used: problem.is_none(),
            note: problem.unwrap_or_default(),
        });
    }
    let m = average_m(&sum, &sessions_of, u);
    let training = TrainingSummary {
        records: data.len() as u64,
        u_sample_pairs: sampled,
        deterministic_pairs,
        candidate_pairs: em_pairs,
        em_pairs,
        distinct_patterns: distinct,
        em_iterations: iterations,
        em_converged: converged,
        sessions: summaries,
    };
    Ok(TrainedModel::new(comparisons, &m, u, lambda, training))
}

/// Each comparison's m: the mean of the sessions that estimated it. One that no session
/// estimated gets m = u, a weight of 0: nothing was learnt about it, so it counts for nothing.
fn average_m(sum: &[Vec<f64>], sessions_of: &[u32], u: &[Vec<f64>]) -> Vec<Vec<f64>> {
    sum.iter()
        .zip(sessions_of)
        .zip(u)
        .map(|((s, &n), u)| {
            if n == 0 {
                return u.clone();
            }
            let mut m = vec![1.0];
            m.extend(s[1..].iter().map(|x| x / f64::from(n)));
            m
        })
        .collect()
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
