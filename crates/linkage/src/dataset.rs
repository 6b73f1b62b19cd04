//! Records encoded for speed and memory: one `u32` per field per record, columnar.
//!
//! Text values are standardised once and interned into a per-field vocabulary, so a record
//! costs a few machine words whatever its names' lengths, equal values compare as integers,
//! and everything derived from a value (its frequency, its variant key) is computed once per
//! distinct value rather than once per record or per pair.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use rayon::prelude::*;

use crate::config::{FieldKind, LinkageConfig};
use crate::standardise::{self, Variants};
use crate::LinkageError;

/// The encoded value of a missing field.
pub const MISSING: u32 = u32::MAX;

/// Distinct standardised values of one field, with what is derived from each.
#[derive(Debug, Default, Clone)]
pub struct Vocab {
    bytes: Vec<u8>,
    ends: Vec<u32>,
    /// How many records hold each value (term frequency).
    pub counts: Vec<u32>,
    /// Each value's variant key, interned (names only).
    pub variant: Vec<u32>,
    /// Each value's variant key hashed (names only): comparable across name fields, whose
    /// interned ids are not, for given and family names written in each other's place.
    pub variant_hash: Vec<u64>,
    /// Ids by value. The table holds only ids and hashes values out of `bytes`, so a field
    /// where every record has its own value (national IDs, phones) costs a few bytes per value
    /// instead of a second copy of every string.
    lookup: HashTable<u32>,
    hasher: RandomState,
    variant_lookup: HashMap<Box<str>, u32>,
    /// Records with any value.
    pub total: u64,
}

impl Vocab {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of heap held (containers' capacities; the hash tables' control bytes included).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.ends.capacity() * 4
            + self.counts.capacity() * 4
            + self.variant.capacity() * 4
            + self.variant_hash.capacity() * 8
            + self.lookup.capacity() * 5
            + self
                .variant_lookup
                .keys()
                .map(|k| k.len() + 24)
                .sum::<usize>()
    }

    /// The standardised value of an id.
    pub fn get(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    pub fn get_str(&self, id: u32) -> &str {
        // Only whole `str`s are pushed, so every slice is valid UTF-8.
        std::str::from_utf8(self.get(id)).unwrap_or("")
    }

    pub fn find(&self, value: &str) -> Option<u32> {
        let h = self.hasher.hash_one(value.as_bytes());
        self.lookup
            .find(h, |&id| self.get(id) == value.as_bytes())
            .copied()
    }

    fn intern(&mut self, value: &str, variant: Option<&str>) -> u32 {
        let id = match self.find(value) {
            Some(id) => id,
            None => {
                let id = self.ends.len() as u32;
                self.bytes.extend_from_slice(value.as_bytes());
                self.ends.push(self.bytes.len() as u32);
                self.counts.push(0);
                let (hasher, bytes, ends) = (&self.hasher, &self.bytes, &self.ends);
                let rehash = |&id: &u32| {
                    let i = id as usize;
                    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
                    hasher.hash_one(&bytes[start..ends[i] as usize])
                };
                self.lookup
                    .insert_unique(hasher.hash_one(value.as_bytes()), id, rehash);
                if let Some(v) = variant {
                    let next = self.variant_lookup.len() as u32;
                    let vid = *self.variant_lookup.entry(v.into()).or_insert(next);
                    self.variant.push(vid);
                    self.variant_hash.push(hash_bytes(v.as_bytes()));
                }
                id
            }
        };
        self.counts[id as usize] += 1;
        self.total += 1;
        id
    }

    /// The share of records holding this value.
    pub fn frequency(&self, id: u32) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        f64::from(self.counts[id as usize]) / self.total as f64
    }
}

/// FNV-1a over bytes: short keys, no allocation, the same in every process (blocking keys and
/// cross-field name keys must not depend on a per-process random seed).
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One field's values for every record.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: FieldKind,
    pub values: Vec<u32>,
    /// For text-like kinds; empty for dates and sex.
    pub vocab: Vocab,
    /// Names: the column of the name field this one may be swapped with (`swap_with`).
    pub swap_with: Option<usize>,
}

/// Dates are packed as `year << 16 | month << 8 | day`, with 0 for an unknown month or day.
pub mod date {
    pub fn pack(year: u16, month: u8, day: u8) -> u32 {
        (u32::from(year) << 16) | (u32::from(month) << 8) | u32::from(day)
    }
    pub fn year(v: u32) -> u16 {
        (v >> 16) as u16
    }
    pub fn month(v: u32) -> u8 {
        ((v >> 8) & 0xff) as u8
    }
    pub fn day(v: u32) -> u8 {
        (v & 0xff) as u8
    }
}

/// A problem with one input value: the record is kept, the value may be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The record's position in its input (0-based, header excluded).
    pub row: usize,
    pub field: String,
    pub reason: String,
    /// The value as written.
    pub value: String,
}

/// Warnings, counted by field and reason, with the first few kept as examples.
#[derive(Debug, Clone, Default)]
pub struct WarningReport {
    pub counts: Vec<((String, String), u64)>,
    pub examples: Vec<Warning>,
}

impl WarningReport {
    const EXAMPLES: usize = 20;

    fn add(&mut self, w: Warning) {
        match self
            .counts
            .iter_mut()
            .find(|(k, _)| k.0 == w.field && k.1 == w.reason)
        {
            Some((_, n)) => *n += 1,
            None => self.counts.push(((w.field.clone(), w.reason.clone()), 1)),
        }
        // Keep the first example of each kind, then the first few overall.
        let first_of_kind = !self
            .examples
            .iter()
            .any(|e| e.field == w.field && e.reason == w.reason);
        if first_of_kind || self.examples.len() < Self::EXAMPLES {
            self.examples.push(w);
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

/// Every record, columnar. In link mode records `0..left_len` come from the left input.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub columns: Vec<Column>,
    /// Link mode: the number of left records; dedupe mode: every record.
    pub left_len: usize,
    pub warnings: WarningReport,
    linking: bool,
}

/// A standardised value before interning.
enum Std {
    Missing,
    Text(String, Option<String>),
    Code(u32),
}

impl Dataset {
    /// An empty dataset for the configured fields.
    pub fn new(config: &LinkageConfig) -> Dataset {
        let columns = config
            .fields
            .iter()
            .map(|f| Column {
                name: f.name.clone(),
                kind: f.kind,
                values: Vec::new(),
                vocab: Vocab::default(),
                swap_with: f
                    .swap_with
                    .as_ref()
                    .and_then(|o| config.fields.iter().position(|g| &g.name == o)),
            })
            .collect();
        Dataset {
            columns,
            left_len: 0,
            warnings: WarningReport::default(),
            linking: false,
        }
    }

    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, |c| c.values.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once `start_right` was called: only pairs across the two inputs are compared.
    pub fn is_link(&self) -> bool {
        self.linking
    }

    /// Records pushed from now on belong to the right input.
    pub fn start_right(&mut self) {
        self.left_len = self.len();
        self.linking = true;
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The column a name column may be swapped with, when configured.
    pub fn swap_partner(&self, column: usize) -> Option<usize> {
        self.columns.get(column)?.swap_with
    }

    /// Removes the last record (a lookup's probe). Values it added to a vocabulary stay there
    /// with a count of zero, so ids already handed out keep their meaning.
    pub fn pop_last(&mut self) {
        for column in &mut self.columns {
            if let Some(v) = column.values.pop() {
                if v != MISSING && column.kind != FieldKind::Date && column.kind != FieldKind::Sex {
                    column.vocab.counts[v as usize] -= 1;
                    column.vocab.total -= 1;
                }
            }
        }
        if !self.linking {
            self.left_len = self.len();
        }
    }

    /// Standardises (in parallel) and appends rows whose values are in field order.
    /// `first_row` numbers the rows in warnings. Returns the index of the first new record.
    pub fn push_rows<S: AsRef<str> + Sync>(
        &mut self,
        config: &LinkageConfig,
        rows: &[Vec<S>],
        first_row: usize,
    ) -> Result<usize, LinkageError> {
        let n_fields = self.columns.len();
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != n_fields) {
            return Err(LinkageError::Input(format!(
                "row {}: {} values for {} fields",
                first_row + i,
                r.len(),
                n_fields
            )));
        }
        let variants = Variants::kinyarwanda();
        let kinds: Vec<(FieldKind, bool)> = config
            .fields
            .iter()
            .map(|f| (f.kind, f.sort_tokens.unwrap_or(f.kind == FieldKind::Name)))
            .collect();
        let standardised: Vec<Vec<Result<Std, String>>> = rows
            .par_iter()
            .map(|row| {
                row.iter()
                    .zip(&kinds)
                    .map(|(v, &(kind, sort))| standardise_value(v.as_ref(), kind, sort, variants))
                    .collect()
            })
            .collect();
        let start = self.len();
        if !self.linking {
            self.left_len = start + rows.len();
        }
        for (i, row) in standardised.into_iter().enumerate() {
            let raw = |c: usize| rows[i][c].as_ref().trim().to_string();
            for (c, value) in row.into_iter().enumerate() {
                let column = &mut self.columns[c];
                let encoded = match value {
                    Ok(Std::Missing) => MISSING,
                    Ok(Std::Code(v)) => v,
                    Ok(Std::Text(s, variant)) => column.vocab.intern(&s, variant.as_deref()),
                    Err(reason) => {
                        self.warnings.add(Warning {
                            row: first_row + i,
                            field: column.name.clone(),
                            reason,
                            value: raw(c),
                        });
                        MISSING
                    }
                };
                if column.kind == FieldKind::Name
                    && encoded != MISSING
                    && column.vocab.get(encoded).len() == 1
                {
                    self.warnings.add(Warning {
                        row: first_row + i,
                        field: column.name.clone(),
                        reason: "one-character name (kept; compared as written)".into(),
                        value: raw(c),
                    });
                }
                column.values.push(encoded);
            }
        }
        Ok(start)
    }
}

fn standardise_value(
    raw: &str,
    kind: FieldKind,
    sort: bool,
    variants: &Variants,
) -> Result<Std, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(Std::Missing);
    }
    let text = |s: String| {
        if s.is_empty() {
            Std::Missing
        } else {
            Std::Text(s, None)
        }
    };
    Ok(match kind {
        FieldKind::Name => {
            let key = standardise::name_key(raw, sort);
            if key.is_empty() {
                return Err("name has no letters".into());
            }
            let variant = variants.key(&key);
            Std::Text(key, Some(variant))
        }
        FieldKind::Text | FieldKind::Exact => text(standardise::name_key(raw, false)),
        FieldKind::NationalId => text(standardise::digits(raw)),
        FieldKind::Identifier => text(
            raw.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect(),
        ),
        FieldKind::Phone => match standardise::phone_key(raw) {
            Some(p) => Std::Text(p, None),
            None => return Err("phone number has fewer than 7 digits".into()),
        },
        FieldKind::Area => {
            let d = standardise::digits(raw);
            if d.is_empty() || d.len() > 8 || d.len() != raw.len() {
                return Err("area code is not 1 to 8 digits".to_string());
            }
            Std::Text(d, None)
        }
        FieldKind::Sex => Std::Code(
            parse_sex(raw).ok_or_else(|| "sex is not m, f, male, female, 1 or 2".to_string())?,
        ),
        FieldKind::Date => Std::Code(parse_date(raw)?),
    })
}

fn parse_sex(raw: &str) -> Option<u32> {
    match raw.to_ascii_lowercase().as_str() {
        "m" | "male" | "1" | "gabo" | "h" | "homme" => Some(1),
        "f" | "female" | "2" | "gore" | "femme" => Some(2),
        _ => None,
    }
}

/// Parses a birth date into the packed form; the precision is carried by zero month or day.
pub fn parse_date(raw: &str) -> Result<u32, String> {
    let bad = || "date is not YYYY-MM-DD, YYYYMMDD, DD/MM/YYYY, YYYY-MM or YYYY".to_string();
    let num = |s: &str| -> Result<u32, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (y, m, d) = if raw.contains('/') {
        let parts: Vec<&str> = raw.split('/').collect();
        match parts.as_slice() {
            [d, m, y] => (num(y)?, num(m)?, num(d)?),
            [m, y] => (num(y)?, num(m)?, 0),
            _ => return Err(bad()),
        }
    } else if raw.contains('-') {
        let parts: Vec<&str> = raw.split('-').collect();
        match parts.as_slice() {
            [y, m, d] => (num(y)?, num(m)?, num(d)?),
            [y, m] => (num(y)?, num(m)?, 0),
            _ => return Err(bad()),
        }
    } else {
        match raw.len() {
            8 => (num(&raw[..4])?, num(&raw[4..6])?, num(&raw[6..])?),
            6 => (num(&raw[..4])?, num(&raw[4..])?, 0),
            4 => (num(raw)?, 0, 0),
            _ => return Err(bad()),
        }
    };
    if !(1800..=2200).contains(&y) {
        return Err("impossible date: year before 1800 or after 2200".into());
    }
    if m > 12 || (m == 0 && d != 0) {
        return Err("impossible date: no such month".into());
    }
    if d > days_in_month(y, m) {
        return Err("impossible date: no such day in that month".into());
    }
    Ok(date::pack(y as u16, m as u8, d as u8))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates_keep_their_precision() {
        assert_eq!(parse_date("2020-03-09").unwrap(), date::pack(2020, 3, 9));
        assert_eq!(parse_date("20200309").unwrap(), date::pack(2020, 3, 9));
        assert_eq!(parse_date("09/03/2020").unwrap(), date::pack(2020, 3, 9));
        assert_eq!(parse_date("2020-03").unwrap(), date::pack(2020, 3, 0));
        assert_eq!(parse_date("2020").unwrap(), date::pack(2020, 0, 0));
        assert_eq!(parse_date("2020-02-29").unwrap(), date::pack(2020, 2, 29));
        for bad in [
            "2021-02-29",
            "2020-13-01",
            "2020-04-31",
            "1200",
            "20x0",
            "2020-1-1-1",
            "",
            "12/12",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
