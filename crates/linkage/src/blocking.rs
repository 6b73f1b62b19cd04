//! Blocking: which pairs are compared at all.
//!
//! Each rule gives every record a 64-bit key (0 when a part is missing); records with equal
//! keys form a block. Blocks are sized before any pair is made: a block with more pairs than
//! the cap is skipped and reported, so a million people called "Uwimana" cost a count, not a
//! quadratic loop. A pair found by several rules is produced once: by the first rule that
//! finds it (a later rule skips pairs whose keys agree under an earlier rule's block that was
//! not skipped). Pairs are streamed to the caller, never stored all at once.

use std::collections::HashSet;

use rayon::prelude::*;

use crate::config::{BlockingRule, FieldKind};
use crate::dataset::{date, hash_bytes, Dataset, MISSING};
use crate::LinkageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Value,
    Prefix(usize),
    Variant,
    Year,
    Token(usize),
    /// Both names' variant keys in sorted order: the same key when given and family names
    /// were written in each other's place. The partner is the field's `swap_with` column.
    Unordered(usize),
}

#[derive(Debug, Clone)]
struct Part {
    column: usize,
    transform: Transform,
}

/// A block skipped because it was too big.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OversizedBlock {
    pub rule: String,
    /// The block's key, as the first record of the block shows it.
    pub example: String,
    pub records: u64,
    pub pairs: u64,
}

/// What blocking did, per rule.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BlockingReport {
    pub rules: Vec<RuleReport>,
    pub oversized: Vec<OversizedBlock>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RuleReport {
    pub rule: String,
    pub blocks: u64,
    /// Pairs in this rule's blocks that were not skipped (before removing pairs an earlier
    /// rule already produced).
    pub pairs: u64,
    pub skipped_pairs: u64,
}

/// A slice of one block's pairs: rows `from..to` of the block (left rows in link mode).
#[derive(Debug, Clone, Copy)]
struct Unit {
    rule: u32,
    start: u32,
    len: u32,
    /// Link mode: position in the block of its first right record.
    split: u32,
    from: u32,
    to: u32,
}

/// Compiled rules and every record's keys.
#[derive(Debug)]
pub struct Blocker {
    names: Vec<String>,
    parts: Vec<Vec<Part>>,
    /// keys[rule][record]; 0 = the record is in no block of this rule.
    keys: Vec<Vec<u64>>,
    /// Records of each rule sorted by key.
    order: Vec<Vec<u32>>,
    oversized: Vec<HashSet<u64>>,
    units: Vec<Unit>,
    pub report: BlockingReport,
    link: bool,
    left_len: usize,
}

/// Work units hold at most about this many pairs, so one huge block spreads over threads.
const UNIT_PAIRS: u64 = 1 << 20;

impl Blocker {
    /// Compiles the rules and computes keys; `max_block_pairs` caps a block.
    pub fn new(
        data: &Dataset,
        rules: &[BlockingRule],
        max_block_pairs: u64,
    ) -> Result<Blocker, LinkageError> {
        let parts = rules
            .iter()
            .map(|r| compile(data, r))
            .collect::<Result<Vec<_>, _>>()?;
        let names: Vec<String> = rules
            .iter()
            .map(|r| r.name.clone().unwrap_or_else(|| r.on.join(" & ")))
            .collect();
        let keys: Vec<Vec<u64>> = parts
            .iter()
            .map(|p| {
                (0..data.len())
                    .into_par_iter()
                    .map(|i| key(data, p, i))
                    .collect()
            })
            .collect();
        let mut b = Blocker {
            names,
            parts,
            keys,
            order: Vec::new(),
            oversized: Vec::new(),
            units: Vec::new(),
            report: BlockingReport::default(),
            link: data.is_link(),
            left_len: data.left_len,
        };
        for rule in 0..b.parts.len() {
            b.plan_rule(data, rule, max_block_pairs);
        }
        Ok(b)
    }

    /// The compiled rules alone, without computing or planning any record's keys (for the
    /// lookup index, which keeps its own per-key lists).
    pub fn rules_only(data: &Dataset, rules: &[BlockingRule]) -> Result<Blocker, LinkageError> {
        let parts = rules
            .iter()
            .map(|r| compile(data, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Blocker {
            names: rules
                .iter()
                .map(|r| r.name.clone().unwrap_or_else(|| r.on.join(" & ")))
                .collect(),
            parts,
            keys: Vec::new(),
            order: Vec::new(),
            oversized: Vec::new(),
            units: Vec::new(),
            report: BlockingReport::default(),
            link: data.is_link(),
            left_len: data.left_len,
        })
    }

    /// One record's key under one rule (0: in no block of the rule).
    pub(crate) fn rule_key(&self, data: &Dataset, rule: usize, record: usize) -> u64 {
        key(data, &self.parts[rule], record)
    }

    fn plan_rule(&mut self, data: &Dataset, rule: usize, cap: u64) {
        let keys = std::mem::take(&mut self.keys[rule]);
        let mut order: Vec<u32> = (0..keys.len() as u32)
            .filter(|&i| keys[i as usize] != 0)
            .collect();
        order.par_sort_unstable_by_key(|&i| (keys[i as usize], i));
        let mut report = RuleReport {
            rule: self.names[rule].clone(),
            ..RuleReport::default()
        };
        let mut oversized = HashSet::new();
        let mut start = 0usize;
        while start < order.len() {
            let k = keys[order[start] as usize];
            let mut end = start + 1;
            while end < order.len() && keys[order[end] as usize] == k {
                end += 1;
            }
            let block = &order[start..end];
            let split = block.partition_point(|&i| (i as usize) < self.left_len);
            let pairs = if self.link {
                split as u64 * (block.len() - split) as u64
            } else {
                let n = block.len() as u64;
                n * (n - 1) / 2
            };
            if pairs > cap {
                oversized.insert(k);
                report.skipped_pairs += pairs;
                self.report.oversized.push(OversizedBlock {
                    rule: self.names[rule].clone(),
                    example: describe(data, &self.parts[rule], block[0] as usize),
                    records: block.len() as u64,
                    pairs,
                });
            } else if pairs > 0 {
                report.blocks += 1;
                report.pairs += pairs;
                self.push_units(rule, start, block.len(), split, pairs);
            }
            start = end;
        }
        self.keys[rule] = keys;
        self.order.push(order);
        self.oversized.push(oversized);
        self.report.rules.push(report);
    }

    fn push_units(&mut self, rule: usize, start: usize, len: usize, split: usize, pairs: u64) {
        let rows = if self.link { split } else { len };
        let chunks = pairs.div_ceil(UNIT_PAIRS).max(1) as usize;
        let step = rows.div_ceil(chunks).max(1);
        let mut from = 0;
        while from < rows {
            let to = (from + step).min(rows);
            self.units.push(Unit {
                rule: rule as u32,
                start: start as u32,
                len: len as u32,
                split: split as u32,
                from: from as u32,
                to: to as u32,
            });
            from = to;
        }
    }

    /// Pairs blocking will produce, summed over rules (a pair found by two rules counts twice).
    pub fn planned_pairs(&self) -> u64 {
        self.report.rules.iter().map(|r| r.pairs).sum()
    }

    /// Would blocking produce this pair? (For the pair completeness of an evaluation.)
    pub fn would_generate(&self, a: usize, b: usize) -> bool {
        if self.link && ((a < self.left_len) == (b < self.left_len)) {
            return false;
        }
        (0..self.keys.len()).any(|r| self.in_live_block(r, a, b))
    }

    fn in_live_block(&self, rule: usize, a: usize, b: usize) -> bool {
        let k = self.keys[rule][a];
        k != 0 && k == self.keys[rule][b] && !self.oversized[rule].contains(&k)
    }

    /// Folds every distinct candidate pair `(a, b)` (in link mode `a` is left, `b` right) in
    /// parallel. `tick` is called with the number of pairs in each finished work unit.
    pub fn fold_pairs<T, I, F, R>(
        &self,
        init: I,
        fold: F,
        reduce: R,
        tick: &(dyn Fn(u64) + Sync),
    ) -> T
    where
        T: Send,
        I: Fn() -> T + Sync + Send,
        F: Fn(&mut T, u32, u32) + Sync + Send,
        R: Fn(T, T) -> T + Sync + Send,
    {
        let fold = |acc: &mut T, _rule: usize, a: u32, b: u32| fold(acc, a, b);
        self.fold_units(&|_| true, true, init, fold, reduce, tick)
    }

    /// Like [`Blocker::fold_pairs`], over a seeded random `share` of the work units: every
    /// candidate pair is in the sample with the same probability, so pattern counts from it
    /// estimate those of all pairs (training needs the shares, not every pair). `fold` is also
    /// told the rule that produced the pair.
    pub fn fold_sample<T, I, F, R>(
        &self,
        share: f64,
        seed: u64,
        init: I,
        fold: F,
        reduce: R,
        tick: &(dyn Fn(u64) + Sync),
    ) -> T
    where
        T: Send,
        I: Fn() -> T + Sync + Send,
        F: Fn(&mut T, usize, u32, u32) + Sync + Send,
        R: Fn(T, T) -> T + Sync + Send,
    {
        // A unit is kept when its hash, read as a fraction of 2^64, is below the share.
        let limit = (share.max(0.0) * u64::MAX as f64) as u64;
        let keep = |unit: usize| share >= 1.0 || mix(seed ^ mix(unit as u64 + 1)) < limit;
        self.fold_units(&keep, true, init, fold, reduce, tick)
    }

    /// Like [`Blocker::fold_sample`], but every pair of every rule's blocks, including pairs an
    /// earlier rule also produced: the pairs of one rule as that rule alone would make them
    /// (what an EM session per blocking rule trains on). `share` applies to each rule.
    pub fn fold_sample_per_rule<T, I, F, R>(
        &self,
        share: f64,
        seed: u64,
        init: I,
        fold: F,
        reduce: R,
        tick: &(dyn Fn(u64) + Sync),
    ) -> T
    where
        T: Send,
        I: Fn() -> T + Sync + Send,
        F: Fn(&mut T, usize, u32, u32) + Sync + Send,
        R: Fn(T, T) -> T + Sync + Send,
    {
        let limit = (share.max(0.0) * u64::MAX as f64) as u64;
        let keep = |unit: usize| share >= 1.0 || mix(seed ^ mix(unit as u64 + 1)) < limit;
        self.fold_units(&keep, false, init, fold, reduce, tick)
    }

    /// Pairs in the blocks of `rule` that were not skipped.
    pub fn rule_pairs(&self, rule: usize) -> u64 {
        self.report.rules.get(rule).map_or(0, |r| r.pairs)
    }

    fn fold_units<T, I, F, R>(
        &self,
        keep: &(dyn Fn(usize) -> bool + Sync),
        distinct: bool,
        init: I,
        fold: F,
        reduce: R,
        tick: &(dyn Fn(u64) + Sync),
    ) -> T
    where
        T: Send,
        I: Fn() -> T + Sync + Send,
        F: Fn(&mut T, usize, u32, u32) + Sync + Send,
        R: Fn(T, T) -> T + Sync + Send,
    {
        self.units
            .par_iter()
            .enumerate()
            .fold(&init, |mut acc, (i, u)| {
                let n = if keep(i) {
                    self.run_unit(u, distinct, &mut acc, &fold)
                } else {
                    self.unit_pairs(u)
                };
                tick(n);
                acc
            })
            .reduce(&init, reduce)
    }

    /// Pairs a unit walks (before removing those an earlier rule produced).
    fn unit_pairs(&self, u: &Unit) -> u64 {
        let rows = u64::from(u.to - u.from);
        if self.link {
            rows * u64::from(u.len - u.split)
        } else {
            // Row i pairs with the len - 1 - i rows after it.
            let first = u64::from(u.len - 1 - u.from);
            let last = u64::from(u.len - u.to);
            rows * (first + last) / 2
        }
    }

    fn run_unit<T, F: Fn(&mut T, usize, u32, u32)>(
        &self,
        u: &Unit,
        distinct: bool,
        acc: &mut T,
        fold: &F,
    ) -> u64 {
        let rule = u.rule as usize;
        let block = &self.order[rule][u.start as usize..(u.start + u.len) as usize];
        let mut n = 0u64;
        for i in u.from as usize..u.to as usize {
            let a = block[i];
            let others = if self.link {
                &block[u.split as usize..]
            } else {
                &block[i + 1..]
            };
            for &b in others {
                n += 1;
                if distinct && (0..rule).any(|r| self.in_live_block(r, a as usize, b as usize)) {
                    continue;
                }
                fold(acc, rule, a, b);
            }
        }
        n
    }

    /// Distinct candidate pairs (runs the pair loop without comparing anything).
    pub fn count_distinct(&self) -> u64 {
        self.fold_pairs(|| 0u64, |n, _, _| *n += 1, |a, b| a + b, &|_| {})
    }

    /// Keys of one record under each rule (for the lookup index).
    pub fn record_keys(&self, record: usize) -> Vec<u64> {
        self.keys.iter().map(|k| k[record]).collect()
    }

    pub(crate) fn keys_for(&self, data: &Dataset, record: usize) -> Vec<u64> {
        self.parts.iter().map(|p| key(data, p, record)).collect()
    }

    /// The fields (column indexes) a rule's keys are made of.
    /// The columns a rule's keys are made of: an `unordered` part reads its partner too.
    pub fn rule_columns(&self, rule: usize) -> Vec<usize> {
        let mut columns = Vec::new();
        for p in &self.parts[rule] {
            columns.push(p.column);
            if let Transform::Unordered(partner) = p.transform {
                columns.push(partner);
            }
        }
        columns
    }

    pub fn rule_name(&self, rule: usize) -> &str {
        &self.names[rule]
    }

    pub fn rule_count(&self) -> usize {
        self.parts.len()
    }
}

fn compile(data: &Dataset, rule: &BlockingRule) -> Result<Vec<Part>, LinkageError> {
    if rule.on.is_empty() {
        return Err(LinkageError::Config("a blocking rule has no parts".into()));
    }
    rule.on
        .iter()
        .map(|spec| {
            let (field, transform) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
            let column = data.column(field).ok_or_else(|| {
                LinkageError::Config(format!(
                    "blocking rule part {spec:?}: unknown field {field:?}"
                ))
            })?;
            let kind = data.columns[column].kind;
            let bad = |why: &str| {
                Err(LinkageError::Config(format!(
                    "blocking rule part {spec:?}: {why}"
                )))
            };
            let number = |p: &str| {
                transform
                    .strip_prefix(p)
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n > 0)
            };
            let transform = match transform {
                "" => Transform::Value,
                "variant" if kind == FieldKind::Name => Transform::Variant,
                "variant" => return bad("variant applies to name fields only"),
                "year" if kind == FieldKind::Date => Transform::Year,
                "year" => return bad("year applies to date fields only"),
                "unordered" => match data.swap_partner(column) {
                    Some(partner) => Transform::Unordered(partner),
                    None => return bad("unordered applies to name fields with swap_with"),
                },
                t if t.starts_with("prefix") || t.starts_with("token") => {
                    if kind == FieldKind::Date || kind == FieldKind::Sex {
                        return bad("prefix and token apply to text fields");
                    }
                    match (number("prefix"), number("token")) {
                        (Some(n), _) => Transform::Prefix(n),
                        (_, Some(n)) => Transform::Token(n),
                        _ => return bad("expected prefixN or tokenN with N at least 1"),
                    }
                }
                _ => {
                    return bad(
                        "unknown transform; use prefixN, tokenN, variant, unordered or year",
                    )
                }
            };
            Ok(Part { column, transform })
        })
        .collect()
}

/// SplitMix64's finaliser: spreads combined parts over the 64 bits.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn part_value(data: &Dataset, p: &Part, record: usize) -> Option<u64> {
    let col = &data.columns[p.column];
    let v = col.values[record];
    if v == MISSING {
        return None;
    }
    Some(match p.transform {
        Transform::Value => u64::from(v),
        Transform::Year => u64::from(date::year(v)),
        Transform::Variant => u64::from(*col.vocab.variant.get(v as usize)?),
        Transform::Prefix(n) => {
            let s = col.vocab.get(v);
            hash_bytes(&s[..s.len().min(n)])
        }
        Transform::Token(n) => hash_bytes(col.vocab.get_str(v).split(' ').nth(n - 1)?.as_bytes()),
        Transform::Unordered(partner) => {
            let other = &data.columns[partner];
            let w = other.values[record];
            if w == MISSING {
                return None;
            }
            let (x, y) = (
                *col.vocab.variant_hash.get(v as usize)?,
                *other.vocab.variant_hash.get(w as usize)?,
            );
            x.min(y) ^ x.max(y).rotate_left(29)
        }
    })
}

fn key(data: &Dataset, parts: &[Part], record: usize) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for (i, p) in parts.iter().enumerate() {
        match part_value(data, p, record) {
            Some(v) => h = mix(h ^ mix(v.wrapping_add(i as u64 + 1))),
            None => return 0,
        }
    }
    h.max(1)
}

fn describe(data: &Dataset, parts: &[Part], record: usize) -> String {
    parts
        .iter()
        .map(|p| {
            let col = &data.columns[p.column];
            let v = col.values[record];
            match col.kind {
                FieldKind::Date => format!("{}={}", col.name, date::year(v)),
                FieldKind::Sex => format!("{}={}", col.name, v),
                _ => format!("{}={}", col.name, col.vocab.get_str(v)),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
