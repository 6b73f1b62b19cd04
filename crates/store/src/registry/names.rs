//! Name search with a fixed bound on the rows it reads.
//!
//! A name is looked up by its phonetic skeletons (see [`inkingi_domain::registry::search`])
//! through indexes that end with the village code (migration `0012_search_keys`): each lookup
//! is one index range inside the reader's area and reads at most `per_key` rows, so a query
//! reads at most `keys × scope areas × per_key` candidates however common the name is and
//! whatever the area. Candidates carry only the id and the names; the few that rank best are
//! then read in full.
//!
//! Two tiers: first every ordered pair of the query's tokens as (given, family) — the usual
//! "given family" query, and the swapped order too; only when those give fewer hits than asked
//! for, each token alone as a given or a family name.
//!
//! The trade-off of the bound: when one key matches more people than `per_key` (at national
//! scope, "Jean … Habimana" matches tens of thousands), the candidates are the first `per_key`
//! in index order (by village), so an equally good match further on is not seen; narrowing the
//! area or adding an identifier finds it.

use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::search::{jaro_winkler, skeleton};
use inkingi_domain::text::search_key;
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{area_range, MIN_NAME_SCORE};

/// Query tokens looked up at most; further tokens still count in the ranking.
pub const MAX_KEY_TOKENS: usize = 4;
/// Rows read per key and area, at least; grows with the number of results asked for.
pub const MIN_PER_KEY: u32 = 200;
/// Rows read per key and area, at most.
pub const MAX_PER_KEY: u32 = 2000;

/// One indexed lookup: skeletons of the first given- and family-name tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameKey {
    Pair { given: String, family: String },
    Given(String),
    Family(String),
}

/// What ranking needs of a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCandidate {
    pub id: Uuid,
    pub given_name: String,
    pub family_name: String,
}

/// Rows read per key for a search returning `limit` results.
pub fn per_key(limit: usize) -> u32 {
    u32::try_from(limit.saturating_mul(10))
        .unwrap_or(MAX_PER_KEY)
        .clamp(MIN_PER_KEY, MAX_PER_KEY)
}

/// The distinct skeletons of the first [`MAX_KEY_TOKENS`] tokens of `name`, in order.
pub fn key_skeletons(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in tokens(name).iter().map(|t| skeleton(t)) {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
        if out.len() == MAX_KEY_TOKENS {
            break;
        }
    }
    out
}

/// First tier: every ordered pair of distinct skeletons as (given, family).
pub fn pair_keys(skels: &[String]) -> Vec<NameKey> {
    let mut keys = Vec::new();
    for g in skels {
        for f in skels {
            if g != f {
                keys.push(NameKey::Pair {
                    given: g.clone(),
                    family: f.clone(),
                });
            }
        }
    }
    keys
}

/// Second tier: each skeleton alone, as a given and as a family name.
pub fn single_keys(skels: &[String]) -> Vec<NameKey> {
    skels
        .iter()
        .flat_map(|s| [NameKey::Given(s.clone()), NameKey::Family(s.clone())])
        .collect()
}

/// `SELECT id, given_name, family_name` of the people under each key, at most `per_key` per key
/// and scope area, as one statement: a `UNION ALL` of limited index range scans.
pub(crate) fn push_candidates<'a, DB>(
    qb: &mut QueryBuilder<'a, DB>,
    scope: &AreaScope,
    keys: &[NameKey],
    per_key: u32,
) where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let areas: Vec<Option<(String, String)>> = if scope.is_national() {
        vec![None]
    } else {
        scope
            .codes()
            .iter()
            .map(|c| Some(area_range(c.as_str())))
            .collect()
    };
    let mut n = 0;
    for key in keys {
        for area in &areas {
            if n > 0 {
                qb.push(" UNION ALL ");
            }
            qb.push(
                "SELECT * FROM (SELECT id, given_name, family_name FROM registry_people WHERE ",
            );
            match key {
                NameKey::Pair { given, family } => {
                    qb.push("family_skel = ")
                        .push_bind(family.clone())
                        .push(" AND given_skel = ")
                        .push_bind(given.clone());
                }
                NameKey::Given(s) => {
                    qb.push("given_skel = ").push_bind(s.clone());
                }
                NameKey::Family(s) => {
                    qb.push("family_skel = ").push_bind(s.clone());
                }
            }
            if let Some((lo, hi)) = area {
                qb.push(" AND village_code >= ")
                    .push_bind(lo.clone())
                    .push(" AND village_code < ")
                    .push_bind(hi.clone());
            }
            qb.push(super::MERGED_OUT);
            qb.push(" LIMIT ")
                .push_bind(i64::from(per_key))
                .push(format!(") AS k{n}"));
            n += 1;
        }
    }
    if n == 0 {
        qb.push("SELECT id, given_name, family_name FROM registry_people WHERE FALSE");
    }
}

/// Search-key tokens of a name (case and diacritics folded), split like skeletons are.
pub fn tokens(s: &str) -> Vec<String> {
    search_key(s)
        .split(|c: char| c.is_whitespace() || c == '-' || c == '\'')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// How well a person's names match the query tokens: each query token scores its best
/// Jaro–Winkler match among the person's tokens; the mean over query tokens, so "Uwase Aline"
/// and "Aline Uwase" score alike.
pub fn name_score(query_tokens: &[String], given_name: &str, family_name: &str) -> f64 {
    if query_tokens.is_empty() {
        return 0.0;
    }
    let mut person = tokens(given_name);
    person.extend(tokens(family_name));
    query_tokens
        .iter()
        .map(|q| {
            person
                .iter()
                .map(|t| jaro_winkler(q, t))
                .fold(0.0, f64::max)
        })
        .sum::<f64>()
        / query_tokens.len() as f64
}

/// The candidates scoring at least [`MIN_NAME_SCORE`], best first (ties by id), one per person.
pub fn rank(query_tokens: &[String], candidates: &[NameCandidate]) -> Vec<(Uuid, f64)> {
    let mut seen = std::collections::HashSet::new();
    let mut ranked: Vec<(Uuid, f64)> = candidates
        .iter()
        .filter(|c| seen.insert(c.id))
        .map(|c| {
            (
                c.id,
                name_score(query_tokens, &c.given_name, &c.family_name),
            )
        })
        .filter(|(_, s)| *s >= MIN_NAME_SCORE)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_pair_every_order_then_single_tokens() {
        let skels = key_skeletons("Jean-Claude  NIYONZIMA niyonzima");
        assert_eq!(skels, ["jean", "kraude", "niunsima"]);
        let pairs = pair_keys(&skels);
        assert_eq!(pairs.len(), 6);
        assert!(pairs.contains(&NameKey::Pair {
            given: "niunsima".into(),
            family: "jean".into()
        }));
        assert_eq!(single_keys(&skels).len(), 6);
        assert_eq!(key_skeletons("a b c d e f").len(), MAX_KEY_TOKENS);
    }

    #[test]
    fn per_key_is_bounded_whatever_the_limit() {
        assert_eq!(per_key(1), MIN_PER_KEY);
        assert_eq!(per_key(50), 500);
        assert_eq!(per_key(usize::MAX), MAX_PER_KEY);
    }

    #[test]
    fn candidate_sql_is_one_limited_scan_per_key_and_area() {
        let scope = AreaScope::parse("11 2101").expect("scope");
        let mut qb: QueryBuilder<sqlx::Postgres> = QueryBuilder::new("");
        push_candidates(
            &mut qb,
            &scope,
            &[NameKey::Pair {
                given: "a".into(),
                family: "b".into(),
            }],
            200,
        );
        assert_eq!(
            qb.sql(),
            "SELECT * FROM (SELECT id, given_name, family_name FROM registry_people WHERE \
             family_skel = $1 AND given_skel = $2 AND village_code >= $3 AND village_code < $4 \
             AND merged_into IS NULL LIMIT $5) AS k0 UNION ALL SELECT * FROM (SELECT id, \
             given_name, family_name FROM registry_people WHERE family_skel = $6 AND \
             given_skel = $7 AND village_code >= $8 AND village_code < $9 AND merged_into IS \
             NULL LIMIT $10) AS k1"
        );
    }

    #[test]
    fn ranking_keeps_good_matches_once_best_first() {
        let c = |n: u128, g: &str, f: &str| NameCandidate {
            id: Uuid::from_u128(n),
            given_name: g.into(),
            family_name: f.into(),
        };
        let q = tokens("Aline Uwase");
        let ranked = rank(
            &q,
            &[
                c(3, "Alinne", "Uwase"),
                c(1, "Uwase", "Aline"),
                c(2, "Eric", "Habimana"),
                c(1, "Uwase", "Aline"),
            ],
        );
        let ids: Vec<u128> = ranked.iter().map(|(id, _)| id.as_u128()).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(ranked[0].1, 1.0);
    }
}
