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
}
