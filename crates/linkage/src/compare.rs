//! Comparisons: each compared field turns a pair of records into a level, from 1 (the most
//! alike) upwards; level 0 means "cannot tell" (a value is missing) and carries no weight.

use crate::config::{FieldKind, LinkageConfig};
use crate::dataset::{date, Column, Dataset, MISSING};
use crate::LinkageError;

/// How one field is compared.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub name: String,
    pub column: usize,
    pub kind: FieldKind,
    /// Labels of levels 1.. (level 0 is "missing").
    pub labels: Vec<String>,
    thresholds: Vec<f64>,
    /// Adjust the exact level's weight by the value's frequency.
    pub term_frequency: bool,
    minors: Option<Minors>,
    /// Names: the column whose values this one's may have been written in place of.
    swap: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Minors {
    date_column: usize,
    reference_year: u16,
    adult_age: u16,
}

/// The level an exact agreement gets in every comparison.
pub const EXACT: u8 = 1;

impl Comparison {
    /// The comparisons a configuration asks for, in field order.
    pub fn from_config(config: &LinkageConfig) -> Result<Vec<Comparison>, LinkageError> {
        let mut out = Vec::new();
        for (column, f) in config.fields.iter().enumerate() {
            if !f.compare {
                continue;
            }
            let textual = matches!(f.kind, FieldKind::Name | FieldKind::Text);
            let thresholds = if textual {
                f.thresholds
                    .clone()
                    .unwrap_or_else(|| vec![0.95, 0.88, 0.80])
            } else {
                Vec::new()
            };
            let minors = match &f.minors_only {
                Some(m) => Some(Minors {
                    date_column: config
                        .fields
                        .iter()
                        .position(|d| d.name == m.date_field)
                        .ok_or_else(|| {
                            LinkageError::Config(format!("unknown date field {:?}", m.date_field))
                        })?,
                    reference_year: m.reference_year,
                    adult_age: m.adult_age,
                }),
                None => None,
            };
            let swap = match &f.swap_with {
                Some(other) => Some(
                    config
                        .fields
                        .iter()
                        .position(|g| &g.name == other)
                        .ok_or_else(|| {
                            LinkageError::Config(format!("unknown swap_with field {other:?}"))
                        })?,
                ),
                None => None,
            };
            out.push(Comparison {
                name: f.name.clone(),
                column,
                kind: f.kind,
                labels: labels(f.kind, &thresholds, f.swap_with.as_deref()),
                thresholds,
                term_frequency: f.term_frequency.unwrap_or(f.kind == FieldKind::Name),
                minors,
                swap,
            });
        }
        Ok(out)
    }

    /// Levels including level 0.
    pub fn radix(&self) -> usize {
        self.labels.len() + 1
    }

    pub fn label(&self, level: u8) -> &str {
        match level {
            0 => "missing",
            l => self
                .labels
                .get(usize::from(l) - 1)
                .map_or("?", String::as_str),
        }
    }

    /// The level of records `a` and `b`.
    pub fn level(&self, data: &Dataset, a: usize, b: usize) -> u8 {
        let col = &data.columns[self.column];
        let (x, y) = (col.values[a], col.values[b]);
        if x == MISSING || y == MISSING {
            return 0;
        }
        if let Some(m) = self.minors {
            let dates = &data.columns[m.date_column].values;
            if !(is_minor(dates[a], m) && is_minor(dates[b], m)) {
                return 0;
            }
        }
        match self.kind {
            FieldKind::Name | FieldKind::Text => {
                if x != y && self.swapped(data, a, b) {
                    return 3;
                }
                self.text_level(col, x, y)
            }
            FieldKind::NationalId | FieldKind::Identifier => {
                if x == y {
                    EXACT
                } else if within_one_edit(col.vocab.get(x), col.vocab.get(y)) {
                    2
                } else {
                    3
                }
            }
            FieldKind::Date => date_level(x, y),
            FieldKind::Area => area_level(col.vocab.get(x), col.vocab.get(y)),
            FieldKind::Sex | FieldKind::Phone | FieldKind::Exact => {
                if x == y {
                    EXACT
                } else {
                    2
                }
            }
        }
    }

    /// True when each record's name in this field is the other's name in the swap partner,
    /// up to spelling variants (and not already the same name here: that ranks higher).
    fn swapped(&self, data: &Dataset, a: usize, b: usize) -> bool {
        let Some(partner) = self.swap else {
            return false;
        };
        let (own, other) = (&data.columns[self.column], &data.columns[partner]);
        let (x, y) = (own.values[a], own.values[b]);
        let (px, py) = (other.values[a], other.values[b]);
        if px == MISSING || py == MISSING {
            return false;
        }
        // Only name values carry a variant hash; anything else (a configuration that was not
        // validated) is simply never swapped.
        let h = |c: &Column, v: u32| c.vocab.variant_hash.get(v as usize).copied();
        let (Some(hx), Some(hy), Some(hpx), Some(hpy)) =
            (h(own, x), h(own, y), h(other, px), h(other, py))
        else {
            return false;
        };
        hx != hy && hx == hpy && hpx == hy
    }

    /// Whether this comparison has the "swapped with" level (`swap_with`).
    pub fn swaps(&self) -> bool {
        self.swap.is_some()
    }

    fn text_level(&self, col: &Column, x: u32, y: u32) -> u8 {
        if x == y {
            return EXACT;
        }
        let mut level = 2;
        if self.kind == FieldKind::Name {
            if col.vocab.variant[x as usize] == col.vocab.variant[y as usize] {
                return 2;
            }
            // Level 3 is "swapped" when the field has a swap partner (see `level`).
            level = if self.swap.is_some() { 4 } else { 3 };
        }
        let jw = jaro_winkler(col.vocab.get(x), col.vocab.get(y));
        for t in &self.thresholds {
            if jw >= *t {
                return level;
            }
            level += 1;
        }
        level
    }
}

fn is_minor(dob: u32, m: Minors) -> bool {
    dob != MISSING && m.reference_year.saturating_sub(date::year(dob)) < m.adult_age
}

fn labels(kind: FieldKind, thresholds: &[f64], swap_with: Option<&str>) -> Vec<String> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match kind {
        FieldKind::Name | FieldKind::Text => {
            let mut l = vec!["exact".to_string()];
            if kind == FieldKind::Name {
                l.push("spelling variant".into());
                if let Some(other) = swap_with {
                    l.push(format!("swapped with {other}"));
                }
            }
            l.extend(thresholds.iter().map(|t| format!("jaro-winkler >= {t}")));
            l.push("different".into());
            l
        }
        FieldKind::NationalId | FieldKind::Identifier => s(&["exact", "one typo", "different"]),
        FieldKind::Date => s(&[
            "exact",
            "one typo or day/month swapped",
            "same year and month",
            "same year",
            "same year, one known only to the year",
            "different",
        ]),
        FieldKind::Area => s(&[
            "same village",
            "same cell",
            "same sector",
            "same district",
            "different",
        ]),
        FieldKind::Sex | FieldKind::Phone | FieldKind::Exact => s(&["same", "different"]),
    }
}

fn date_level(x: u32, y: u32) -> u8 {
    let (ya, ma, da) = (date::year(x), date::month(x), date::day(x));
    let (yb, mb, db) = (date::year(y), date::month(y), date::day(y));
    let precise = da != 0 && db != 0;
    if precise {
        if x == y {
            return EXACT;
        }
        let swapped = ya == yb && ma == db && da == mb;
        let digits = |y: u16, m: u8, d: u8| format!("{y:04}{m:02}{d:02}").into_bytes();
        if swapped || one_substitution(&digits(ya, ma, da), &digits(yb, mb, db)) {
            return 2;
        }
    }
    if ya != yb {
        return 6;
    }
    if ma != 0 && mb != 0 {
        if ma == mb {
            return 3;
        }
        return 4;
    }
    5
}

/// NISR codes: 2 digits district, 4 sector, 6 cell, 8 village. Two codes agree as far as both
/// are known; the level is the finest unit they share.
fn area_level(a: &[u8], b: &[u8]) -> u8 {
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    match common {
        8.. => 1,
        6..=7 => 2,
        4..=5 => 3,
        2..=3 => 4,
        _ => 5,
    }
}

fn one_substitution(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).filter(|(x, y)| x != y).count() == 1
}

/// True when `a` becomes `b` by one substitution, insertion, deletion or adjacent swap.
pub fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    match a.len().abs_diff(b.len()) {
        0 => {
            a.is_empty()
                || a[1..] == b[1..]
                || (a.len() >= 2 && a[0] == b[1] && a[1] == b[0] && a[2..] == b[2..])
        }
        1 => {
            let (short, long) = if a.len() < b.len() { (a, b) } else { (b, a) };
            short == &long[1..]
        }
        _ => false,
    }
}

/// Jaro-Winkler similarity on bytes (standardised names are ASCII after transliteration),
/// prefix scale 0.1 over at most four characters.
pub fn jaro_winkler(a: &[u8], b: &[u8]) -> f64 {
    let j = jaro(a, b);
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    j + prefix as f64 * 0.1 * (1.0 - j)
}

fn jaro(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    // Names are short; a fixed buffer avoids an allocation per comparison.
    let mut b_used = [false; 64];
    if a.len() > b_used.len() || b.len() > b_used.len() {
        return jaro_long(a, b);
    }
    let mut a_matches = [0u8; 64];
    let mut m = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_used[j] && b[j] == ca {
                b_used[j] = true;
                a_matches[m] = ca;
                m += 1;
                break;
            }
        }
    }
    if m == 0 {
        return 0.0;
    }
    let mut k = 0;
    let mut half_transpositions = 0;
    for (j, &cb) in b.iter().enumerate() {
        if b_used[j] {
            if a_matches[k] != cb {
                half_transpositions += 1;
            }
            k += 1;
        }
    }
    let m = m as f64;
    let t = f64::from(half_transpositions / 2);
    (m / a.len() as f64 + m / b.len() as f64 + (m - t) / m) / 3.0
}

/// Long values (free text) fall back to comparing their first 64 bytes.
fn jaro_long(a: &[u8], b: &[u8]) -> f64 {
    jaro(&a[..a.len().min(64)], &b[..b.len().min(64)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaro_winkler_matches_published_values() {
        // Winkler's examples (1990): MARTHA/MARHTA 0.961, DWAYNE/DUANE 0.84, DIXON/DICKSONX 0.813.
        assert!((jaro_winkler(b"martha", b"marhta") - 0.9611).abs() < 1e-3);
        assert!((jaro_winkler(b"dwayne", b"duane") - 0.84).abs() < 1e-3);
        assert!((jaro_winkler(b"dixon", b"dicksonx") - 0.8133).abs() < 1e-3);
        assert_eq!(jaro_winkler(b"abc", b"abc"), 1.0);
        assert_eq!(jaro_winkler(b"", b"abc"), 0.0);
        assert_eq!(jaro_winkler(b"abc", b"xyz"), 0.0);
    }

    #[test]
    fn one_edit_covers_typos_only() {
        assert!(within_one_edit(b"1234567", b"1234568"));
        assert!(within_one_edit(b"1234567", b"1243567"));
        assert!(within_one_edit(b"1234567", b"123567"));
        assert!(within_one_edit(b"1234567", b"12345678"));
        assert!(!within_one_edit(b"1234567", b"1243568"));
        assert!(!within_one_edit(b"1234567", b"7654321"));
    }

    #[test]
    fn dates_compare_at_their_precision() {
        let d = date::pack;
        assert_eq!(date_level(d(2020, 3, 9), d(2020, 3, 9)), 1);
        assert_eq!(date_level(d(2020, 3, 9), d(2020, 9, 3)), 2);
        assert_eq!(date_level(d(2020, 3, 9), d(2020, 3, 8)), 2);
        assert_eq!(date_level(d(2020, 3, 9), d(2020, 3, 21)), 3);
        assert_eq!(date_level(d(2020, 3, 9), d(2020, 11, 21)), 4);
        assert_eq!(date_level(d(2020, 0, 0), d(2020, 11, 21)), 5);
        assert_eq!(date_level(d(2020, 3, 0), d(2020, 3, 21)), 3);
        assert_eq!(date_level(d(2019, 0, 0), d(2020, 11, 21)), 6);
    }

    #[test]
    fn areas_share_their_finest_unit() {
        assert_eq!(area_level(b"11010101", b"11010101"), 1);
        assert_eq!(area_level(b"11010101", b"11010102"), 2);
        assert_eq!(area_level(b"11010101", b"11010201"), 3);
        assert_eq!(area_level(b"11010101", b"11020101"), 4);
        assert_eq!(area_level(b"11010101", b"12010101"), 5);
        assert_eq!(area_level(b"1101", b"11010101"), 3);
    }
}
