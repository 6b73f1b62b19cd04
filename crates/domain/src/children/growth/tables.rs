//! The WHO 2006 LMS tables, embedded from `data/growth/` and parsed once on first use.
//!
//! Age-based tables have one row per day of age; the weight-for-length and weight-for-height
//! tables one row per millimetre (0.1 cm). `tools/convert_growth.py` writes them sorted and
//! gap-free, which the parser checks, so a lookup is an index computation.

use super::lms::Lms;
use super::Sex;
use std::sync::LazyLock;

/// A parse error in an embedded table: which file, line and field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}, field {field}: {reason}")]
pub(crate) struct TableError {
    file: &'static str,
    line: usize,
    field: &'static str,
    reason: String,
}

/// One table: per sex, consecutive rows starting at key `first` (a day or a millimetre).
#[derive(Debug)]
pub(crate) struct Table {
    first: u32,
    male: Vec<Lms>,
    female: Vec<Lms>,
}

impl Table {
    fn rows(&self, sex: Sex) -> &[Lms] {
        match sex {
            Sex::Male => &self.male,
            Sex::Female => &self.female,
        }
    }

    /// First and last key covered (both sexes cover the same keys; the parser checks it).
    pub fn range(&self) -> (u32, u32) {
        let len = u32::try_from(self.male.len()).unwrap_or(u32::MAX);
        (self.first, self.first + len.saturating_sub(1))
    }

    /// The row at `key`, if tabulated.
    pub fn at(&self, sex: Sex, key: u32) -> Option<Lms> {
        let i = usize::try_from(key.checked_sub(self.first)?).ok()?;
        self.rows(sex).get(i).copied()
    }

    /// L, M and S at length `cm` of a table keyed by millimetre.
    ///
    /// Between two tabulated lengths WHO's software interpolates L, M and S linearly from the
    /// row at the length truncated to 0.1 cm and the next one; we do the same.
    pub fn at_length(&self, sex: Sex, cm: f64) -> Option<Lms> {
        let tenths = cm * 10.0;
        if !tenths.is_finite() || tenths < 0.0 {
            return None;
        }
        let low = tenths.floor();
        let fraction = tenths - low;
        // `low` is a small non-negative whole number here (checked above and by the caller's
        // range test), so the conversion is exact.
        let key = low as u32;
        let below = self.at(sex, key)?;
        if fraction == 0.0 {
            return Some(below);
        }
        Some(below.lerp(&self.at(sex, key + 1)?, fraction))
    }
}

/// All tables of the standards that Inkingi uses.
#[derive(Debug)]
pub(crate) struct Tables {
    pub weight_for_age: Table,
    pub length_for_age: Table,
    pub bmi_for_age: Table,
    pub muac_for_age: Table,
    pub head_circumference_for_age: Table,
    pub weight_for_length: Table,
    pub weight_for_height: Table,
}

/// (file name, contents, key column) of each embedded table.
const WFA: (&str, &str, &str) = (
    "wfa.csv",
    include_str!("../../../../../data/growth/wfa.csv"),
    "age_days",
);
const LHFA: (&str, &str, &str) = (
    "lhfa.csv",
    include_str!("../../../../../data/growth/lhfa.csv"),
    "age_days",
);
const BMIFA: (&str, &str, &str) = (
    "bmifa.csv",
    include_str!("../../../../../data/growth/bmifa.csv"),
    "age_days",
);
const ACFA: (&str, &str, &str) = (
    "acfa.csv",
    include_str!("../../../../../data/growth/acfa.csv"),
    "age_days",
);
const HCFA: (&str, &str, &str) = (
    "hcfa.csv",
    include_str!("../../../../../data/growth/hcfa.csv"),
    "age_days",
);
const WFL: (&str, &str, &str) = (
    "wfl.csv",
    include_str!("../../../../../data/growth/wfl.csv"),
    "length_mm",
);
const WFH: (&str, &str, &str) = (
    "wfh.csv",
    include_str!("../../../../../data/growth/wfh.csv"),
    "length_mm",
);

impl Tables {
    fn parse() -> Result<Tables, TableError> {
        let table =
            |(file, text, key): (&'static str, &str, &'static str)| parse_table(file, text, key);
        Ok(Tables {
            weight_for_age: table(WFA)?,
            length_for_age: table(LHFA)?,
            bmi_for_age: table(BMIFA)?,
            muac_for_age: table(ACFA)?,
            head_circumference_for_age: table(HCFA)?,
            weight_for_length: table(WFL)?,
            weight_for_height: table(WFH)?,
        })
    }
}

/// The tables, parsed on first use. The data is committed and covered by tests, so a parse
/// failure is a build defect, not bad input: it stops the program with the file and line.
pub(crate) static TABLES: LazyLock<Tables> = LazyLock::new(|| {
    Tables::parse().unwrap_or_else(|e| panic!("embedded WHO growth table is corrupt: {e}"))
});

fn parse_table(file: &'static str, text: &str, key_col: &'static str) -> Result<Table, TableError> {
    let err = |line: usize, field: &'static str, reason: String| TableError {
        file,
        line,
        field,
        reason,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let expected_header = format!("sex,{key_col},l,m,s");
    match lines.next() {
        Some((_, header)) if header == expected_header => {}
        other => {
            let found = other.map_or("nothing", |(_, h)| h);
            return Err(err(
                1,
                "header",
                format!("expected {expected_header}, found {found}"),
            ));
        }
    }
    let mut male: Vec<Lms> = Vec::new();
    let mut female: Vec<Lms> = Vec::new();
    let mut firsts: [Option<u32>; 2] = [None, None];
    for (line, row) in lines {
        let fields: Vec<&str> = row.split(',').collect();
        let [sex, key, l, m, s] = fields[..] else {
            return Err(err(
                line,
                "row",
                format!("expected 5 fields, found {}", fields.len()),
            ));
        };
        let (rows, first) = match sex {
            "m" => (&mut male, &mut firsts[0]),
            "f" => (&mut female, &mut firsts[1]),
            other => {
                return Err(err(
                    line,
                    "sex",
                    format!("expected m or f, found '{other}'"),
                ))
            }
        };
        let key: u32 = key
            .parse()
            .map_err(|_| err(line, key_col, format!("not a whole number: '{key}'")))?;
        let first = *first.get_or_insert(key);
        let expected = first + u32::try_from(rows.len()).unwrap_or(u32::MAX);
        if key != expected {
            return Err(err(
                line,
                key_col,
                format!("expected {expected} (rows must be consecutive), found {key}"),
            ));
        }
        let number = |field: &'static str, v: &str| -> Result<f64, TableError> {
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(err(line, field, format!("not a finite number: '{v}'"))),
            }
        };
        let lms = Lms {
            l: number("l", l)?,
            m: number("m", m)?,
            s: number("s", s)?,
        };
        if lms.m <= 0.0 || lms.s <= 0.0 {
            return Err(err(line, "m", "m and s must be positive".to_string()));
        }
        rows.push(lms);
    }
    if male.is_empty() || firsts[0] != firsts[1] || male.len() != female.len() {
        return Err(err(
            0,
            "sex",
            "boys and girls must cover the same keys".to_string(),
        ));
    }
    Ok(Table {
        first: firsts[0].unwrap_or(0),
        male,
        female,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_table_parses_and_covers_the_published_range() {
        let t = &*TABLES;
        for age_table in [
            &t.weight_for_age,
            &t.length_for_age,
            &t.bmi_for_age,
            &t.head_circumference_for_age,
        ] {
            assert_eq!(age_table.range(), (0, 1856));
        }
        assert_eq!(t.muac_for_age.range(), (91, 1856));
        assert_eq!(t.weight_for_length.range(), (450, 1100));
        assert_eq!(t.weight_for_height.range(), (650, 1200));
    }

    #[test]
    fn rows_are_found_by_key() {
        let t = &*TABLES;
        let birth = t.weight_for_age.at(Sex::Male, 0);
        assert_eq!(
            birth,
            Some(Lms {
                l: 0.3487,
                m: 3.3464,
                s: 0.14602
            })
        );
        assert_eq!(t.muac_for_age.at(Sex::Female, 90), None);
        assert_eq!(t.weight_for_age.at(Sex::Female, 1857), None);
        assert!(t.weight_for_length.at(Sex::Female, 450).is_some());
    }

    #[test]
    fn length_lookup_interpolates_between_millimetre_rows() {
        let t = &TABLES.weight_for_length;
        let (a, b) = (
            t.at(Sex::Male, 650).expect("row 65.0 cm"),
            t.at(Sex::Male, 651).expect("row 65.1 cm"),
        );
        let mid = t.at_length(Sex::Male, 65.04).expect("65.04 cm");
        let frac = 65.04f64 * 10.0 - 650.0;
        assert!((mid.m - (a.m + frac * (b.m - a.m))).abs() < 1e-12);
        assert!((mid.s - (a.s + frac * (b.s - a.s))).abs() < 1e-12);
        assert_eq!(t.at_length(Sex::Male, 65.0), Some(a));
        assert_eq!(t.at_length(Sex::Male, 110.0), t.at(Sex::Male, 1100));
        assert_eq!(t.at_length(Sex::Male, 110.05), None);
        assert_eq!(t.at_length(Sex::Male, 44.95), None);
    }

    #[test]
    fn malformed_tables_are_refused_with_line_and_field() {
        let e = parse_table(
            "x.csv",
            "sex,age_days,l,m,s\nm,0,1,2,0.1\nm,2,1,2,0.1\n",
            "age_days",
        )
        .expect_err("gap");
        assert_eq!(e.line, 3);
        assert_eq!(e.field, "age_days");
        let e =
            parse_table("x.csv", "sex,age_days,l,m,s\nx,0,1,2,0.1\n", "age_days").expect_err("sex");
        assert_eq!((e.line, e.field), (2, "sex"));
        let e = parse_table("x.csv", "sex,age_days,l,m,s\nm,0,1,abc,0.1\n", "age_days")
            .expect_err("number");
        assert_eq!((e.line, e.field), (2, "m"));
        let e = parse_table("x.csv", "sex,day,l,m,s\n", "age_days").expect_err("header");
        assert_eq!(e.field, "header");
        let e = parse_table("x.csv", "sex,age_days,l,m,s\nm,0,1,2,0.1\n", "age_days")
            .expect_err("no girls");
        assert!(e.to_string().contains("same keys"), "{e}");
    }
}
