//! Clustering: connected components of the pairs above the auto-link threshold, strongest
//! first, refusing any union that would put two people who cannot be one person in one
//! cluster: two different national IDs, or twins (same mother, same full birth date,
//! different given names).

use serde::Serialize;

use crate::compare::jaro_winkler;
use crate::config::{FieldKind, LinkageConfig};
use crate::dataset::{date, Dataset, MISSING};

/// What became of a scored pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PairStatus {
    /// Above the auto-link threshold and joined.
    Linked,
    /// In the review band.
    Review,
    /// Above the threshold but refused by a constraint, or by one-to-one linking: for review.
    Refused,
}

impl PairStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PairStatus::Linked => "linked",
            PairStatus::Review => "review",
            PairStatus::Refused => "refused",
        }
    }
}

/// A pair kept after scoring.
#[derive(Debug, Clone, Copy)]
pub struct ScoredPair {
    pub a: u32,
    pub b: u32,
    pub weight: f32,
}

/// Cannot-link checks, compiled from the configuration.
#[derive(Debug, Clone)]
pub struct Constraints {
    national_ids: Vec<usize>,
    twins: Option<(usize, usize, usize)>,
}

/// Components larger than this are checked for twins only on the linking pair itself, so a
/// giant component cannot make a union quadratic.
const TWIN_CHECK_LIMIT: usize = 10_000;

impl Constraints {
    pub fn new(config: &LinkageConfig, data: &Dataset) -> Constraints {
        let national_ids = data
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.kind == FieldKind::NationalId)
            .map(|(i, _)| i)
            .collect();
        let twins = config.constraints.twins.as_ref().and_then(|t| {
            Some((
                data.column(&t.mother)?,
                data.column(&t.date_of_birth)?,
                data.column(&t.given_name)?,
            ))
        });
        Constraints {
            national_ids,
            twins,
        }
    }

    /// True when `a` and `b` are twins by the configured rule.
    pub fn twins(&self, data: &Dataset, a: usize, b: usize) -> bool {
        let Some((mother, dob, given)) = self.twins else {
            return false;
        };
        let v = |c: usize, r: usize| data.columns[c].values[r];
        let (ma, mb, da, db, ga, gb) = (
            v(mother, a),
            v(mother, b),
            v(dob, a),
            v(dob, b),
            v(given, a),
            v(given, b),
        );
        if [ma, mb, da, db, ga, gb].contains(&MISSING) || ma != mb || da != db || date::day(da) == 0
        {
            return false;
        }
        let vocab = &data.columns[given].vocab;
        // Typos are not twins: only names that are clearly different.
        ga != gb && jaro_winkler(vocab.get(ga), vocab.get(gb)) < 0.88
    }
}

/// Union-find over records. A component's members form a circular list through `next`, so
/// joining two components is O(1) and costs 4 bytes per record (not a vector per record).
struct Components {
    parent: Vec<u32>,
    size: Vec<u32>,
    next: Vec<u32>,
    /// Per national-ID column, the component's ID (MISSING if none yet), at its root.
    ids: Vec<Vec<u32>>,
}

impl Components {
    fn new(data: &Dataset, c: &Constraints) -> Components {
        let n = data.len() as u32;
        Components {
            parent: (0..n).collect(),
            size: vec![1; n as usize],
            next: (0..n).collect(),
            ids: c
                .national_ids
                .iter()
                .map(|&col| data.columns[col].values.clone())
                .collect(),
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }

    fn members(&self, root: u32) -> impl Iterator<Item = u32> + '_ {
        let mut at = Some(root);
        std::iter::from_fn(move || {
            let x = at?;
            let n = self.next[x as usize];
            at = (n != root).then_some(n);
            Some(x)
        })
    }

    fn conflict(&self, data: &Dataset, c: &Constraints, ra: u32, rb: u32, a: u32, b: u32) -> bool {
        let id_clash = self.ids.iter().any(|ids| {
            let (x, y) = (ids[ra as usize], ids[rb as usize]);
            x != MISSING && y != MISSING && x != y
        });
        if id_clash {
            return true;
        }
        if c.twins.is_none() {
            return false;
        }
        let (sa, sb) = (
            self.size[ra as usize] as usize,
            self.size[rb as usize] as usize,
        );
        if sa.saturating_mul(sb) > TWIN_CHECK_LIMIT {
            return c.twins(data, a as usize, b as usize);
        }
        self.members(ra).any(|x| {
            self.members(rb)
                .any(|y| c.twins(data, x as usize, y as usize))
        })
    }

    fn union(&mut self, ra: u32, rb: u32) {
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
        // Splice the two circular lists into one.
        self.next.swap(big as usize, small as usize);
        for ids in &mut self.ids {
            if ids[big as usize] == MISSING {
                ids[big as usize] = ids[small as usize];
            }
        }
    }
}

/// The outcome of clustering.
pub struct Clustering {
    /// Cluster number of every record (dense, from 0, in order of first record).
    pub cluster: Vec<u32>,
    /// Status of each input pair, in the input order.
    pub status: Vec<PairStatus>,
}

/// Clusters `pairs` (any order); `auto_link_weight` is the threshold as a match weight.
/// In link mode with `one_to_one`, each record joins at most one record of the other side.
pub fn cluster(
    data: &Dataset,
    constraints: &Constraints,
    pairs: &[ScoredPair],
    auto_link_weight: f64,
    one_to_one: bool,
) -> Clustering {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    // Strongest first, ties by record numbers so results never depend on thread timing.
    order.sort_unstable_by(|&x, &y| {
        let (p, q) = (&pairs[x], &pairs[y]);
        q.weight
            .total_cmp(&p.weight)
            .then((p.a, p.b).cmp(&(q.a, q.b)))
    });
    let mut comps = Components::new(data, constraints);
    let mut used = vec![false; if one_to_one { data.len() } else { 0 }];
    let mut status = vec![PairStatus::Review; pairs.len()];
    for i in order {
        let p = pairs[i];
        if f64::from(p.weight) < auto_link_weight {
            continue;
        }
        if one_to_one && (used[p.a as usize] || used[p.b as usize]) {
            status[i] = PairStatus::Refused;
            continue;
        }
        let (ra, rb) = (comps.find(p.a), comps.find(p.b));
        if ra == rb {
            status[i] = PairStatus::Linked;
            continue;
        }
        if comps.conflict(data, constraints, ra, rb, p.a, p.b) {
            status[i] = PairStatus::Refused;
            continue;
        }
        comps.union(ra, rb);
        if one_to_one {
            used[p.a as usize] = true;
            used[p.b as usize] = true;
        }
        status[i] = PairStatus::Linked;
    }
    let mut number = vec![u32::MAX; data.len()];
    let mut next = 0u32;
    let mut cluster = Vec::with_capacity(data.len());
    for r in 0..data.len() as u32 {
        let root = comps.find(r) as usize;
        if number[root] == u32::MAX {
            number[root] = next;
            next += 1;
        }
        cluster.push(number[root]);
    }
    Clustering { cluster, status }
}
