//! Rwanda's administrative hierarchy: Province → District → Sector → Cell → Village.
//!
//! NISR codes are hierarchical digit strings: the code of an area starts with the code of each of
//! its ancestors. Province 1 digit, district 2, sector 4, cell 6, village 8 (e.g. village
//! `11010102` lies in cell `110101`, sector `1101`, district `11`, province `1`). Because of that
//! prefix property an area scope ("this district and everything below it") is a prefix test.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The five levels of the hierarchy, from the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AreaLevel {
    Province,
    District,
    Sector,
    Cell,
    Village,
}

impl AreaLevel {
    pub const ALL: [AreaLevel; 5] = [
        AreaLevel::Province,
        AreaLevel::District,
        AreaLevel::Sector,
        AreaLevel::Cell,
        AreaLevel::Village,
    ];

    /// Number of digits of a code at this level.
    pub const fn code_len(self) -> usize {
        match self {
            AreaLevel::Province => 1,
            AreaLevel::District => 2,
            AreaLevel::Sector => 4,
            AreaLevel::Cell => 6,
            AreaLevel::Village => 8,
        }
    }

    pub fn from_code_len(len: usize) -> Option<AreaLevel> {
        AreaLevel::ALL.into_iter().find(|l| l.code_len() == len)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            AreaLevel::Province => "province",
            AreaLevel::District => "district",
            AreaLevel::Sector => "sector",
            AreaLevel::Cell => "cell",
            AreaLevel::Village => "village",
        }
    }

    /// The level directly above, `None` for provinces.
    pub fn parent(self) -> Option<AreaLevel> {
        let i = AreaLevel::ALL.iter().position(|l| *l == self)?;
        i.checked_sub(1).map(|p| AreaLevel::ALL[p])
    }

    /// The level directly below, `None` for villages.
    pub fn child(self) -> Option<AreaLevel> {
        let i = AreaLevel::ALL.iter().position(|l| *l == self)?;
        AreaLevel::ALL.get(i + 1).copied()
    }
}

impl fmt::Display for AreaLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown area level '{0}': expected one of province, district, sector, cell, village")]
pub struct UnknownAreaLevel(pub String);

impl FromStr for AreaLevel {
    type Err = UnknownAreaLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AreaLevel::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownAreaLevel(s.to_string()))
    }
}

/// A syntactically valid NISR area code. Whether the area exists is the store's business.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AreaCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid area code '{value}': expected 1, 2, 4, 6 or 8 digits (NISR province, district, sector, cell or village code)")]
pub struct InvalidAreaCode {
    pub value: String,
}

impl AreaCode {
    pub fn parse(input: &str) -> Result<AreaCode, InvalidAreaCode> {
        let s = input.trim();
        let ok = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && AreaLevel::from_code_len(s.len()).is_some();
        if ok {
            Ok(AreaCode(s.to_string()))
        } else {
            Err(InvalidAreaCode {
                value: input.chars().take(40).collect(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn level(&self) -> AreaLevel {
        // Construction guarantees a valid length.
        AreaLevel::from_code_len(self.0.len()).unwrap_or(AreaLevel::Village)
    }

    /// The code of the enclosing area, `None` for a province.
    pub fn parent(&self) -> Option<AreaCode> {
        let parent = self.level().parent()?;
        Some(AreaCode(self.0[..parent.code_len()].to_string()))
    }

    /// Codes of every enclosing area, from the province down to the direct parent.
    pub fn ancestors(&self) -> Vec<AreaCode> {
        let mut out = Vec::new();
        let mut cur = self.parent();
        while let Some(c) = cur {
            cur = c.parent();
            out.push(c);
        }
        out.reverse();
        out
    }

    /// True when `other` is this area or lies inside it.
    pub fn contains(&self, other: &AreaCode) -> bool {
        other.0.starts_with(&self.0)
    }
}

impl fmt::Display for AreaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AreaCode {
    type Err = InvalidAreaCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AreaCode::parse(s)
    }
}

impl<'de> Deserialize<'de> for AreaCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AreaCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One administrative area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Area {
    pub code: AreaCode,
    pub name: String,
    pub level: AreaLevel,
    /// `None` for provinces.
    pub parent: Option<AreaCode>,
}

/// The header line of the area data file (`data/areas/rwanda-areas.csv`).
pub const AREA_DATA_HEADER: &str = "code,level,name,parent_code";

/// A defect in the area data file, with the line (1-based) where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("area data, line {line}: {reason}")]
pub struct AreaDataError {
    pub line: usize,
    pub reason: String,
}

/// Parses the area data file: CSV with the header [`AREA_DATA_HEADER`], one area per line,
/// sorted by code, every parent before its children.
///
/// Everything the database will rely on is checked here, so a bad file fails at load time with
/// the line at fault rather than as a constraint error: codes well-formed and unique, the level
/// matching the code's length, names non-empty and in NFC, the parent being the code's prefix
/// and listed earlier.
pub fn parse_area_data(text: &str) -> Result<Vec<Area>, AreaDataError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, header)) if header.trim_start_matches('\u{feff}') == AREA_DATA_HEADER => {}
        _ => {
            return Err(data_error(
                1,
                format!("expected the header '{AREA_DATA_HEADER}'"),
            ))
        }
    }
    let mut areas: Vec<Area> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (line, record) in lines {
        let area = parse_area_record(record, &seen).map_err(|reason| data_error(line, reason))?;
        if let Some(prev) = areas.last() {
            if area.code <= prev.code {
                let reason = format!(
                    "code {} is not after {}: sort by code",
                    area.code, prev.code
                );
                return Err(data_error(line, reason));
            }
        }
        seen.insert(area.code.clone());
        areas.push(area);
    }
    if areas.is_empty() {
        return Err(data_error(1, "no areas after the header".into()));
    }
    Ok(areas)
}

fn data_error(line: usize, reason: String) -> AreaDataError {
    AreaDataError { line, reason }
}

fn parse_area_record(
    record: &str,
    earlier: &std::collections::HashSet<AreaCode>,
) -> Result<Area, String> {
    let fields = split_csv_record(record)?;
    let [code, level, name, parent] = fields.as_slice() else {
        return Err(format!("expected 4 fields, found {}", fields.len()));
    };
    let code = strict_code(code)?;
    let level = AreaLevel::ALL
        .into_iter()
        .find(|l| l.as_str() == level)
        .ok_or_else(|| format!("unknown level '{level}'"))?;
    if level != code.level() {
        return Err(format!(
            "code {code} is a {} code, not a {level}",
            code.level()
        ));
    }
    if name.is_empty() || name.trim() != name || !unicode_normalization::is_nfc(name) {
        return Err(format!(
            "name '{name}' must be non-empty, trimmed and in NFC"
        ));
    }
    let parent = if parent.is_empty() {
        None
    } else {
        Some(strict_code(parent)?)
    };
    if parent != code.parent() {
        let expected = code.parent().map_or("none".to_string(), |p| p.to_string());
        return Err(format!("parent of {code} must be {expected}"));
    }
    if let Some(p) = parent.as_ref().filter(|p| !earlier.contains(*p)) {
        return Err(format!("parent {p} of {code} is not listed before it"));
    }
    Ok(Area {
        code,
        name: name.clone(),
        level,
        parent,
    })
}

/// Unlike [`AreaCode::parse`], refuses surrounding white space: a data file is written by a
/// program, so any deviation is a defect worth reporting.
fn strict_code(field: &str) -> Result<AreaCode, String> {
    match AreaCode::parse(field) {
        Ok(code) if code.as_str() == field => Ok(code),
        _ => Err(format!("invalid area code '{field}'")),
    }
}

/// Splits one CSV record (RFC 4180 quoting, no line breaks inside fields).
fn split_csv_record(record: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = record
        .strip_suffix('\r')
        .unwrap_or(record)
        .chars()
        .peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("text after a closing quote".into());
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                if c == '"' {
                    return Err("quote inside an unquoted field".into());
                }
                field.push(c);
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_levels_and_ancestors() {
        let v = AreaCode::parse("11010102").expect("valid");
        assert_eq!(v.level(), AreaLevel::Village);
        let anc: Vec<String> = v.ancestors().iter().map(|c| c.to_string()).collect();
        assert_eq!(anc, ["1", "11", "1101", "110101"]);
        assert!(AreaCode::parse("11").expect("valid").contains(&v));
        assert!(!AreaCode::parse("12").expect("valid").contains(&v));
        assert_eq!(AreaCode::parse("1").expect("valid").parent(), None);
    }

    #[test]
    fn rejects_bad_codes() {
        for bad in ["", "123", "12345", "1101010a", "110101021", "-1", "１１"] {
            assert!(AreaCode::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn level_round_trip() {
        for l in AreaLevel::ALL {
            assert_eq!(l.as_str().parse::<AreaLevel>(), Ok(l));
            assert_eq!(AreaLevel::from_code_len(l.code_len()), Some(l));
        }
        assert!("County".parse::<AreaLevel>().is_err());
        assert_eq!(AreaLevel::Province.parent(), None);
        assert_eq!(AreaLevel::Village.child(), None);
    }
    const GOOD: &str = "code,level,name,parent_code\n\
        1,province,Umujyi wa Kigali,\n\
        11,district,Nyarugenge,1\n\
        1101,sector,Gitega,11\n\
        110101,cell,Akabahizi,1101\n\
        11010102,village,\"Gihanga, \"\"Ya 1\"\"\",110101\n\
        11010103,village,Cité,110101\n";

    #[test]
    fn parses_area_data() {
        let areas = parse_area_data(GOOD).expect("valid");
        assert_eq!(areas.len(), 6);
        assert_eq!(areas[0].parent, None);
        assert_eq!(areas[4].name, "Gihanga, \"Ya 1\"");
        assert_eq!(areas[4].level, AreaLevel::Village);
        assert_eq!(areas[5].parent.as_ref().map(|p| p.as_str()), Some("110101"));
        assert_eq!(areas[5].name, "Cité");
        let crlf = GOOD.replace('\n', "\r\n");
        assert_eq!(parse_area_data(&crlf), Ok(areas));
    }

    #[test]
    fn area_data_errors_name_the_line() {
        let cases = [
            ("code,level,name\n1,province,X,\n", 1, "header"),
            (
                "code,level,name,parent_code\n1,province,A,\n1,province,B,\n",
                3,
                "not after",
            ),
            (
                "code,level,name,parent_code\n2,province,A,\n1,province,B,\n",
                3,
                "sort by code",
            ),
            (
                "code,level,name,parent_code\n1,district,A,\n",
                2,
                "province code",
            ),
            (
                "code,level,name,parent_code\n1,county,A,\n",
                2,
                "unknown level",
            ),
            (
                "code,level,name,parent_code\n123,province,A,\n",
                2,
                "invalid area code",
            ),
            (
                "code,level,name,parent_code\n 1,province,A,\n",
                2,
                "invalid area code",
            ),
            (
                "code,level,name,parent_code\n1,province,,\n",
                2,
                "non-empty",
            ),
            (
                "code,level,name,parent_code\n1,province, A,\n",
                2,
                "trimmed",
            ),
            (
                "code,level,name,parent_code\n1,province,Cite\u{301},\n",
                2,
                "NFC",
            ),
            (
                "code,level,name,parent_code\n1,province,A,2\n",
                2,
                "must be none",
            ),
            (
                "code,level,name,parent_code\n11,district,A,\n",
                2,
                "must be 1",
            ),
            (
                "code,level,name,parent_code\n11,district,A,1\n",
                2,
                "not listed before",
            ),
            (
                "code,level,name,parent_code\n1,province,A,\n1101,sector,B,1\n",
                3,
                "must be 11",
            ),
            ("code,level,name,parent_code\n1,province,A\n", 2, "4 fields"),
            (
                "code,level,name,parent_code\n1,province,\"A,\n",
                2,
                "unterminated",
            ),
            (
                "code,level,name,parent_code\n1,province,\"A\"x,\n",
                2,
                "closing quote",
            ),
            (
                "code,level,name,parent_code\n1,province,A\"x,\n",
                2,
                "unquoted",
            ),
            (
                "code,level,name,parent_code\n1,province,A,\n\n",
                3,
                "4 fields",
            ),
            ("code,level,name,parent_code\n", 1, "no areas"),
            ("", 1, "header"),
        ];
        for (text, line, words) in cases {
            let err = parse_area_data(text).expect_err(text);
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.to_string().contains(words), "{text:?}: {err}");
        }
    }
}
