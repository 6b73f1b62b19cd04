//! The binary form of a facts block: what scoring models and eligibility rules read about up to
//! about a thousand households (village, answers, and each current member's sex, birth date,
//! role, answers and date of death), packed so that a whole-registry pass reads a few thousand
//! rows instead of building JSON for every household.
//!
//! Format (little-endian, version [`FORMAT`]): `FORMAT u8`, household count (varint), then per
//! household its id (16 bytes), village (string), answers (object), member count (varint) and
//! per member: id (16 bytes), sex and role (index in `Sex::ALL` / `MemberRole::ALL`), birth date
//! (string, empty when unknown), date of death (`i32` days from the common era, or a zero byte)
//! and answers (object). Answers keep every JSON value exactly (integers stay integers), so the
//! facts derived from a decoded block are those derived from the tables. Object keys are
//! interned per block: a key is a varint, `2 × index` for a key seen before in the block, odd
//! for a new key followed by its text.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::{BirthDate, MemberRole, Sex};
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use crate::targeting::{MemberRow, ScoringInput};
use crate::{StoreError, StoreResult};

/// Version of the binary layout; a block of another version is refused.
pub const FORMAT: u8 = 1;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
const INT: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// Deepest JSON nesting decoded (answers are flat or one level of lists in practice).
const MAX_DEPTH: u32 = 32;

struct Writer {
    buf: Vec<u8>,
    keys: HashMap<String, u64>,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    fn text(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn key(&mut self, k: &str) {
        if let Some(i) = self.keys.get(k) {
            let code = i * 2;
            self.varint(code);
        } else {
            let next = self.keys.len() as u64;
            self.keys.insert(k.to_string(), next);
            self.varint(next * 2 + 1);
            self.text(k);
        }
    }

    fn object(&mut self, m: &Map<String, Value>) {
        self.varint(m.len() as u64);
        for (k, v) in m {
            self.key(k);
            self.value(v);
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.buf.push(NULL),
            Value::Bool(false) => self.buf.push(FALSE),
            Value::Bool(true) => self.buf.push(TRUE),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    self.buf.push(UINT);
                    self.buf.extend_from_slice(&u.to_le_bytes());
                } else if let Some(i) = n.as_i64() {
                    self.buf.push(INT);
                    self.buf.extend_from_slice(&i.to_le_bytes());
                } else {
                    self.buf.push(FLOAT);
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    self.buf.extend_from_slice(&f.to_le_bytes());
                }
            }
            Value::String(s) => {
                self.buf.push(STRING);
                self.text(s);
            }
            Value::Array(items) => {
                self.buf.push(ARRAY);
                self.varint(items.len() as u64);
                for i in items {
                    self.value(i);
                }
            }
            Value::Object(m) => {
                self.buf.push(OBJECT);
                self.object(m);
            }
        }
    }
}

fn code_of<T: Copy + PartialEq>(all: &[T], v: T) -> u8 {
    all.iter().position(|x| *x == v).unwrap_or(0) as u8
}

/// Packs these households (in id order) into one block.
pub fn encode(households: &[ScoringInput]) -> Vec<u8> {
    let mut w = Writer {
        buf: Vec::with_capacity(households.len() * 512),
        keys: HashMap::new(),
    };
    w.buf.push(FORMAT);
    w.varint(households.len() as u64);
    for h in households {
        w.buf.extend_from_slice(h.household_id.as_bytes());
        w.text(h.village.as_str());
        w.object(&h.answers);
        w.varint(h.members.len() as u64);
        for m in &h.members {
            w.buf.extend_from_slice(m.person_id.as_bytes());
            w.buf.push(code_of(Sex::ALL, m.sex));
            w.buf.push(code_of(MemberRole::ALL, m.role));
            match m.birth_date {
                Some(b) => w.text(&b.to_string()),
                None => w.varint(0),
            }
            match m.died_on {
                Some(d) => {
                    w.buf.push(1);
                    w.buf.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
                }
                None => w.buf.push(0),
            }
            w.object(&m.answers);
        }
    }
    w.buf
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    keys: Vec<String>,
}

fn corrupt(at: usize, what: &str) -> StoreError {
    StoreError::Invalid(format!("facts block: {what} at byte {at}"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> StoreResult<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| corrupt(self.at, "truncated"))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self) -> StoreResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> StoreResult<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn varint(&mut self) -> StoreResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(corrupt(self.at, "varint too long"))
    }

    fn len(&mut self) -> StoreResult<usize> {
        let n = self.varint()?;
        // Every counted item takes at least one byte: a count beyond the rest is corrupt and
        // must not reserve memory.
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.data.len() - self.at)
            .ok_or_else(|| corrupt(self.at, "count beyond the block"))
    }

    fn text(&mut self) -> StoreResult<&'a str> {
        let n = self.len()?;
        let at = self.at;
        std::str::from_utf8(self.take(n)?).map_err(|_| corrupt(at, "text not UTF-8"))
    }

    fn uuid(&mut self) -> StoreResult<Uuid> {
        Ok(Uuid::from_bytes(self.array::<16>()?))
    }

    fn key(&mut self) -> StoreResult<String> {
        let code = self.varint()?;
        if code % 2 == 1 {
            let k = self.text()?.to_string();
            self.keys.push(k.clone());
            return Ok(k);
        }
        usize::try_from(code / 2)
            .ok()
            .and_then(|i| self.keys.get(i))
            .cloned()
            .ok_or_else(|| corrupt(self.at, "unknown key"))
    }

    fn object(&mut self, depth: u32) -> StoreResult<Map<String, Value>> {
        let n = self.len()?;
        let mut m = Map::new();
        for _ in 0..n {
            let k = self.key()?;
            let v = self.value(depth)?;
            m.insert(k, v);
        }
        Ok(m)
    }

    fn value(&mut self, depth: u32) -> StoreResult<Value> {
        if depth > MAX_DEPTH {
            return Err(corrupt(self.at, "answers nested too deep"));
        }
        let at = self.at;
        Ok(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UINT => Value::from(u64::from_le_bytes(self.array()?)),
            INT => Value::from(i64::from_le_bytes(self.array()?)),
            FLOAT => {
                let f = f64::from_le_bytes(self.array()?);
                Value::Number(Number::from_f64(f).ok_or_else(|| corrupt(at, "not a number"))?)
            }
            STRING => Value::String(self.text()?.to_string()),
            ARRAY => {
                let n = self.len()?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            OBJECT => Value::Object(self.object(depth + 1)?),
            _ => return Err(corrupt(at, "unknown value tag")),
        })
    }

    fn member(&mut self) -> StoreResult<MemberRow> {
        let person_id = self.uuid()?;
        let at = self.at;
        let sex = *Sex::ALL
            .get(usize::from(self.byte()?))
            .ok_or_else(|| corrupt(at, "unknown sex"))?;
        let role = *MemberRole::ALL
            .get(usize::from(self.byte()?))
            .ok_or_else(|| corrupt(at + 1, "unknown role"))?;
        let at = self.at;
        let birth = self.text()?;
        let birth_date = if birth.is_empty() {
            None
        } else {
            Some(BirthDate::parse(birth).map_err(|e| corrupt(at, &e.to_string()))?)
        };
        let at = self.at;
        let died_on = match self.byte()? {
            0 => None,
            _ => Some(
                NaiveDate::from_num_days_from_ce_opt(i32::from_le_bytes(self.array()?))
                    .ok_or_else(|| corrupt(at, "date of death out of range"))?,
            ),
        };
        let answers = self.object(0)?;
        Ok(MemberRow {
            person_id,
            sex,
            birth_date,
            role,
            answers,
            died_on,
        })
    }
}

/// Unpacks a block, keeping only the households in `scope`.
pub fn decode(data: &[u8], scope: &AreaScope) -> StoreResult<Vec<ScoringInput>> {
    let mut r = Reader {
        data,
        at: 0,
        keys: Vec::new(),
    };
    let format = r.byte()?;
    if format != FORMAT {
        return Err(corrupt(0, &format!("format {format}, expected {FORMAT}")));
    }
    let n = r.len()?;
    let mut out = Vec::with_capacity(n);
    let national = scope.is_national();
    for _ in 0..n {
        let household_id = r.uuid()?;
        let at = r.at;
        let village = AreaCode::parse(r.text()?).map_err(|e| corrupt(at, &e.to_string()))?;
        let answers = r.object(0)?;
        let count = r.len()?;
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            members.push(r.member()?);
        }
        // Keys are interned across households, so out-of-scope ones are read all the same.
        if national || scope.contains(&village) {
            out.push(ScoringInput {
                household_id,
                village,
                answers,
                members,
            });
        }
    }
    if r.at != data.len() {
        return Err(corrupt(r.at, "trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn sample() -> Vec<ScoringInput> {
        let member =
            |sex, born: Option<&str>, role, answers: Value, died: Option<&str>| MemberRow {
                person_id: Uuid::now_v7(),
                sex,
                birth_date: born.map(|b| BirthDate::parse(b).expect("birth date")),
                role,
                answers: obj(answers),
                died_on: died.map(|d| d.parse().expect("date")),
            };
        vec![
            ScoringInput {
                household_id: Uuid::now_v7(),
                village: AreaCode::parse("41010101").expect("area"),
                answers: obj(json!({"rooms": 2, "land_area_ha": 0.25, "debt": -3,
                    "assets": ["radio", "radio"], "owns_land": true, "note": null,
                    "nested": {"a": [1, {"b": false}]}, "big": u64::MAX})),
                members: vec![
                    member(
                        Sex::Female,
                        Some("1990-03-02"),
                        MemberRole::Head,
                        json!({"pregnant": true}),
                        None,
                    ),
                    member(
                        Sex::Male,
                        Some("1950"),
                        MemberRole::OtherRelative,
                        json!({}),
                        Some("2026-01-01"),
                    ),
                    member(
                        Sex::Male,
                        None,
                        MemberRole::Child,
                        json!({"in_school": true}),
                        None,
                    ),
                ],
            },
            ScoringInput {
                household_id: Uuid::now_v7(),
                village: AreaCode::parse("11010102").expect("area"),
                answers: obj(json!({"rooms": 1, "assets": []})),
                members: vec![member(
                    Sex::Female,
                    Some("2001-07"),
                    MemberRole::Head,
                    json!({"pregnant": false}),
                    None,
                )],
            },
        ]
    }

    fn same(a: &ScoringInput, b: &ScoringInput) {
        assert_eq!(a.household_id, b.household_id);
        assert_eq!(a.village, b.village);
        assert_eq!(a.answers, b.answers);
        assert_eq!(a.members.len(), b.members.len());
        for (x, y) in a.members.iter().zip(&b.members) {
            assert_eq!(
                (
                    x.person_id,
                    x.sex,
                    x.birth_date,
                    x.role,
                    &x.answers,
                    x.died_on
                ),
                (
                    y.person_id,
                    y.sex,
                    y.birth_date,
                    y.role,
                    &y.answers,
                    y.died_on
                )
            );
        }
    }

    #[test]
    fn a_block_round_trips_every_value_exactly() {
        let hs = sample();
        let block = encode(&hs);
        let back = decode(&block, &AreaScope::national()).expect("decodes");
        assert_eq!(back.len(), 2);
        same(&hs[0], &back[0]);
        same(&hs[1], &back[1]);
        // Integers stay integers (a rule or model may tell 2 from 2.0 through the JSON).
        assert!(back[0].answers["rooms"].is_u64());
        assert!(back[0].answers["debt"].is_i64());
        assert!(back[0].answers["land_area_ha"].is_f64());
    }

    #[test]
    fn scope_keeps_only_its_households() {
        let block = encode(&sample());
        let kigali = AreaScope::parse("11").expect("scope");
        let back = decode(&block, &kigali).expect("decodes");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].village.as_str(), "11010102");
    }

    #[test]
    fn a_damaged_block_is_refused_with_the_place() {
        let block = encode(&sample());
        let cut = &block[..block.len() - 3];
        let err = decode(cut, &AreaScope::national()).expect_err("truncated");
        assert!(err.to_string().contains("facts block"), "{err}");
        let mut other = block.clone();
        other[0] = 9;
        let err = decode(&other, &AreaScope::national()).expect_err("format");
        assert!(err.to_string().contains("format 9"), "{err}");
        let mut longer = block;
        longer.push(0);
        assert!(decode(&longer, &AreaScope::national()).is_err());
    }
}
