//! Simulation: what a scoring model and eligibility rules would do over the registry, without
//! enrolling anyone. Per area: households, those eligible for each programme, the cost per
//! cycle of the programme's benefit formula, coverage, inclusion and exclusion against current
//! enrolment, and households eligible for two programmes at once. One or two versions
//! ("scenarios") are tallied in the same pass, so a change is seen side by side with its deltas.
//!
//! Pure: the store feeds households (facts and current enrolments) and merges the tallies of
//! its parallel workers with [`Tally::merge`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::areas::AreaLevel;
use crate::programmes::Benefit;
use crate::targeting::rules::{Rule, Subject, Target};
use crate::targeting::{HouseholdFacts, ScoringModel};

/// One programme as simulated: the rule applied (its own or a replacement) and its benefit.
#[derive(Debug, Clone)]
pub struct SimProgramme {
    pub code: String,
    pub rule: Rule,
    pub benefit: Benefit,
}

/// One version of the targeting: a scoring model and a rule per programme (every scenario of a
/// simulation lists the same programmes in the same order).
#[derive(Debug, Clone)]
pub struct Scenario {
    pub model: ScoringModel,
    pub programmes: Vec<SimProgramme>,
    /// How the rules were chosen, for the report (`programme`, `rule set x v2`, `draft`).
    pub rule_sources: Vec<String>,
}

/// Counts of one programme in one area under one scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Households eligible (for an individual programme: with at least one eligible member).
    pub eligible: u64,
    /// Eligible households, or eligible people for an individual programme.
    pub beneficiaries: u64,
    /// Francs per cycle over the beneficiaries.
    pub cost: u64,
    /// Households currently enrolled (status `enrolled`).
    pub enrolled: u64,
    pub eligible_enrolled: u64,
    /// Exclusion error: eligible, not enrolled.
    pub eligible_not_enrolled: u64,
    /// Inclusion error: enrolled, not eligible.
    pub enrolled_not_eligible: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.eligible += o.eligible;
        self.beneficiaries += o.beneficiaries;
        self.cost += o.cost;
        self.enrolled += o.enrolled;
        self.eligible_enrolled += o.eligible_enrolled;
        self.eligible_not_enrolled += o.eligible_not_enrolled;
        self.enrolled_not_eligible += o.enrolled_not_eligible;
    }
}

/// One area's tallies: households, then per scenario the counts of every programme and the
/// households eligible for each pair of programmes (`i < j`, in [`pairs`] order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AreaTally {
    pub households: u64,
    pub counts: Vec<Vec<Counts>>,
    pub overlaps: Vec<Vec<u64>>,
}

impl AreaTally {
    fn new(scenarios: usize, programmes: usize) -> AreaTally {
        let n_pairs = programmes * programmes.saturating_sub(1) / 2;
        AreaTally {
            households: 0,
            counts: vec![vec![Counts::default(); programmes]; scenarios],
            overlaps: vec![vec![0; n_pairs]; scenarios],
        }
    }

    fn merge(&mut self, o: &AreaTally) {
        self.households += o.households;
        for (mine, theirs) in self.counts.iter_mut().zip(&o.counts) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                a.add(b);
            }
        }
        for (mine, theirs) in self.overlaps.iter_mut().zip(&o.overlaps) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a += b;
            }
        }
    }
}

/// The pairs of programme indexes `(i, j)`, `i < j`, in the order overlaps are kept.
pub fn pairs(programmes: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..programmes).flat_map(move |i| (i + 1..programmes).map(move |j| (i, j)))
}

/// A simulation: one or two scenarios over the same programmes, tallied by area at `level`.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub level: AreaLevel,
    pub scenarios: Vec<Scenario>,
}

/// Tallies by area code (at the simulation's level).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub areas: BTreeMap<String, AreaTally>,
}

impl Tally {
    pub fn merge(mut self, other: Tally) -> Tally {
        for (code, t) in other.areas {
            match self.areas.get_mut(&code) {
                Some(mine) => mine.merge(&t),
                None => {
                    self.areas.insert(code, t);
                }
            }
        }
        self
    }
}

impl Simulation {
    fn programmes(&self) -> usize {
        self.scenarios.first().map_or(0, |s| s.programmes.len())
    }

    /// Adds one household, given its facts and the codes of the programmes it is enrolled in.
    pub fn add(&self, tally: &mut Tally, facts: &HouseholdFacts, enrolled: &[String]) {
        let len = self.level.code_len();
        let area = facts.area.get(..len).unwrap_or(&facts.area);
        let n = self.programmes();
        if !tally.areas.contains_key(area) {
            tally
                .areas
                .insert(area.to_string(), AreaTally::new(self.scenarios.len(), n));
        }
        let Some(t) = tally.areas.get_mut(area) else {
            return;
        };
        t.households += 1;
        let mut eligible = vec![false; n];
        let mut last_score: Option<(&ScoringModel, f64, &str)> = None;
        for (si, sc) in self.scenarios.iter().enumerate() {
            // Two scenarios with the same model version score the household once.
            let reuse = last_score
                .as_ref()
                .filter(|(m, _, _)| m.id == sc.model.id && m.version == sc.model.version);
            // Counting needs the score, not its explanation.
            let (value, category) = match reuse {
                Some((_, v, c)) => (*v, *c),
                None => sc.model.value(facts),
            };
            let subject = Subject {
                household: facts,
                person: None,
                score: Some(value),
                category: Some(category),
                enrolments: enrolled,
            };
            for (pi, p) in sc.programmes.iter().enumerate() {
                let c = &mut t.counts[si][pi];
                let beneficiaries = match p.rule.target() {
                    Target::Household => u64::from(p.rule.evaluate(&subject)),
                    Target::Person => facts
                        .members
                        .iter()
                        .filter(|m| {
                            p.rule.evaluate(&Subject {
                                person: Some(m),
                                ..subject
                            })
                        })
                        .count() as u64,
                };
                let is_eligible = beneficiaries > 0;
                let is_enrolled = enrolled.contains(&p.code);
                eligible[pi] = is_eligible;
                c.eligible += u64::from(is_eligible);
                c.beneficiaries += beneficiaries;
                c.cost += beneficiaries * p.benefit.amount(facts.size);
                c.enrolled += u64::from(is_enrolled);
                c.eligible_enrolled += u64::from(is_eligible && is_enrolled);
                c.eligible_not_enrolled += u64::from(is_eligible && !is_enrolled);
                c.enrolled_not_eligible += u64::from(!is_eligible && is_enrolled);
            }
            for (k, (i, j)) in pairs(n).enumerate() {
                t.overlaps[si][k] += u64::from(eligible[i] && eligible[j]);
            }
            last_score = Some((&sc.model, value, category));
        }
    }

    /// The report of a tally; `names` gives area names by code (missing ones are left empty).
    pub fn report(&self, tally: &Tally, names: &BTreeMap<String, String>) -> Report {
        let codes: Vec<String> = self
            .scenarios
            .first()
            .map(|s| s.programmes.iter().map(|p| p.code.clone()).collect())
            .unwrap_or_default();
        let mut total = AreaTally::new(self.scenarios.len(), codes.len());
        let mut areas = Vec::with_capacity(tally.areas.len());
        for (code, t) in &tally.areas {
            total.merge(t);
            areas.push(area_report(
                code,
                names.get(code).cloned().unwrap_or_default(),
                t,
                &codes,
            ));
        }
        Report {
            by: self.level,
            scenarios: self
                .scenarios
                .iter()
                .map(|s| ScenarioInfo {
                    model: format!("{} v{}", s.model.id, s.model.version),
                    rules: codes
                        .iter()
                        .zip(&s.programmes)
                        .zip(&s.rule_sources)
                        .map(|((c, p), src)| RuleInfo {
                            programme: c.clone(),
                            source: src.clone(),
                            rule: p.rule.source().to_string(),
                        })
                        .collect(),
                })
                .collect(),
            programmes: codes.clone(),
            areas,
            total: area_report("", "Total".into(), &total, &codes),
        }
    }
}

/// Counts with coverage, as reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    pub eligible: u64,
    pub beneficiaries: u64,
    /// Eligible households over households (0 when the area has none).
    pub coverage: f64,
    pub cost: u64,
    pub enrolled: u64,
    pub eligible_enrolled: u64,
    pub eligible_not_enrolled: u64,
    pub enrolled_not_eligible: u64,
}

/// The second scenario minus the first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delta {
    pub eligible: i64,
    pub beneficiaries: i64,
    pub coverage: f64,
    pub cost: i64,
    pub eligible_enrolled: i64,
    pub eligible_not_enrolled: i64,
    pub enrolled_not_eligible: i64,
}

fn diff(a: u64, b: u64) -> i64 {
    i64::try_from(b).unwrap_or(i64::MAX) - i64::try_from(a).unwrap_or(i64::MAX)
}

fn metrics(c: &Counts, households: u64) -> Metrics {
    Metrics {
        eligible: c.eligible,
        beneficiaries: c.beneficiaries,
        coverage: if households == 0 {
            0.0
        } else {
            c.eligible as f64 / households as f64
        },
        cost: c.cost,
        enrolled: c.enrolled,
        eligible_enrolled: c.eligible_enrolled,
        eligible_not_enrolled: c.eligible_not_enrolled,
        enrolled_not_eligible: c.enrolled_not_eligible,
    }
}

fn delta(a: &Metrics, b: &Metrics) -> Delta {
    Delta {
        eligible: diff(a.eligible, b.eligible),
        beneficiaries: diff(a.beneficiaries, b.beneficiaries),
        coverage: b.coverage - a.coverage,
        cost: diff(a.cost, b.cost),
        eligible_enrolled: diff(a.eligible_enrolled, b.eligible_enrolled),
        eligible_not_enrolled: diff(a.eligible_not_enrolled, b.eligible_not_enrolled),
        enrolled_not_eligible: diff(a.enrolled_not_eligible, b.enrolled_not_eligible),
    }
}

/// The outcome of a simulation, by area, with a total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub by: AreaLevel,
    /// The first is the base; a second is compared with it.
    pub scenarios: Vec<ScenarioInfo>,
    pub programmes: Vec<String>,
    pub areas: Vec<AreaReport>,
    pub total: AreaReport,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioInfo {
    pub model: String,
    pub rules: Vec<RuleInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleInfo {
    pub programme: String,
    /// Where the rule came from: `programme`, `rule set ID vN` or `draft`.
    pub source: String,
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaReport {
    /// Empty for the total.
    pub code: String,
    pub name: String,
    pub households: u64,
    pub programmes: Vec<ProgrammeReport>,
    pub overlaps: Vec<OverlapReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgrammeReport {
    pub programme: String,
    /// One per scenario.
    pub scenarios: Vec<Metrics>,
    /// Second scenario minus the first, when comparing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<Delta>,
}

/// Households eligible for both programmes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverlapReport {
    pub programmes: [String; 2],
    pub scenarios: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
}

fn area_report(code: &str, name: String, t: &AreaTally, codes: &[String]) -> AreaReport {
    let programmes = codes
        .iter()
        .enumerate()
        .map(|(pi, c)| {
            let scenarios: Vec<Metrics> = t
                .counts
                .iter()
                .map(|s| metrics(&s[pi], t.households))
                .collect();
            let delta = match scenarios.as_slice() {
                [a, b] => Some(delta(a, b)),
                _ => None,
            };
            ProgrammeReport {
                programme: c.clone(),
                scenarios,
                delta,
            }
        })
        .collect();
    let overlaps = pairs(codes.len())
        .enumerate()
        .map(|(k, (i, j))| {
            let scenarios: Vec<u64> = t.overlaps.iter().map(|s| s[k]).collect();
            let delta = match scenarios.as_slice() {
                [a, b] => Some(diff(*a, *b)),
                _ => None,
            };
            OverlapReport {
                programmes: [codes[i].clone(), codes[j].clone()],
                scenarios,
                delta,
            }
        })
        .collect();
    AreaReport {
        code: code.to_string(),
        name,
        households: t.households,
        programmes,
        overlaps,
    }
}

/// A CSV field: quoted when needed, and prefixed with `'` when a spreadsheet would run it.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

const METRICS: [&str; 8] = [
    "eligible",
    "beneficiaries",
    "coverage",
    "cost_per_cycle",
    "enrolled",
    "eligible_enrolled",
    "eligible_not_enrolled",
    "enrolled_not_eligible",
];

fn metric_values(m: &Metrics) -> [String; 8] {
    [
        m.eligible.to_string(),
        m.beneficiaries.to_string(),
        format!("{:.4}", m.coverage),
        m.cost.to_string(),
        m.enrolled.to_string(),
        m.eligible_enrolled.to_string(),
        m.eligible_not_enrolled.to_string(),
        m.enrolled_not_eligible.to_string(),
    ]
}

fn delta_values(d: &Delta) -> [String; 8] {
    [
        d.eligible.to_string(),
        d.beneficiaries.to_string(),
        format!("{:.4}", d.coverage),
        d.cost.to_string(),
        "0".into(),
        d.eligible_enrolled.to_string(),
        d.eligible_not_enrolled.to_string(),
        d.enrolled_not_eligible.to_string(),
    ]
}

impl Report {
    /// One line per area and programme, then one per area and pair of programmes eligible
    /// together (`programme` = `a&b`, only `eligible` filled), and the totals (empty area
    /// code). Comparing, each metric has `_a`, `_b` and `_delta` columns.
    pub fn to_csv(&self) -> String {
        let comparing = self.scenarios.len() == 2;
        let mut out = String::from("area_code,area_name,programme,households");
        for m in METRICS {
            if comparing {
                let _ = write!(out, ",{m}_a,{m}_b,{m}_delta");
            } else {
                let _ = write!(out, ",{m}");
            }
        }
        out.push('\n');
        let width = if comparing {
            3 * METRICS.len()
        } else {
            METRICS.len()
        };
        for a in self.areas.iter().chain(std::iter::once(&self.total)) {
            let head = format!("{},{}", field(&a.code), field(&a.name));
            for p in &a.programmes {
                let _ = write!(out, "{head},{},{}", field(&p.programme), a.households);
                let cols: Vec<[String; 8]> = p
                    .scenarios
                    .iter()
                    .map(metric_values)
                    .chain(p.delta.as_ref().map(delta_values))
                    .collect();
                for i in 0..METRICS.len() {
                    for c in &cols {
                        let _ = write!(out, ",{}", c[i]);
                    }
                }
                out.push('\n');
            }
            for o in &a.overlaps {
                let name = format!("{}&{}", o.programmes[0], o.programmes[1]);
                let _ = write!(out, "{head},{},{}", field(&name), a.households);
                let mut cols: Vec<String> = o.scenarios.iter().map(u64::to_string).collect();
                cols.extend(o.delta.map(|d| d.to_string()));
                for c in &cols {
                    let _ = write!(out, ",{c}");
                }
                out.push_str(&",".repeat(width - cols.len()));
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::registry::{BirthDate, MemberRole, Sex};
    use crate::targeting::MemberRecord;
    use chrono::NaiveDate;
    use serde_json::Map;

    fn facts(village: &str, adults: usize, children: usize) -> HouseholdFacts {
        let answers = Map::new();
        let mut members = Vec::new();
        for i in 0..adults + children {
            let birth = if i < adults {
                "1990-01-01"
            } else {
                "2025-06-01"
            };
            members.push(MemberRecord {
                sex: Sex::Female,
                birth_date: Some(BirthDate::parse(birth).unwrap()),
                role: if i == 0 {
                    MemberRole::Head
                } else {
                    MemberRole::OtherRelative
                },
                answers: &answers,
                died_on: None,
            });
        }
        let area = crate::areas::AreaCode::parse(village).unwrap();
        HouseholdFacts::build(
            &area,
            &Map::new(),
            &members,
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        )
    }

    fn programme(code: &str, rule: &str, target: Target, amount: u64) -> SimProgramme {
        SimProgramme {
            code: code.into(),
            rule: Rule::compile(rule, target).unwrap(),
            benefit: Benefit::Fixed { amount },
        }
    }

    fn scenario(programmes: Vec<SimProgramme>) -> Scenario {
        let n = programmes.len();
        Scenario {
            model: ScoringModel::default_model(),
            programmes,
            rule_sources: vec!["programme".into(); n],
        }
    }

    #[test]
    fn tallies_by_district_with_enrolment_errors_overlaps_and_deltas() {
        let big = programme("big", "size >= 3", Target::Household, 1000);
        let kids = programme("kids", "age < 5", Target::Person, 10);
        let big4 = programme("big", "size >= 4", Target::Household, 1000);
        let sim = Simulation {
            level: AreaLevel::District,
            scenarios: vec![
                scenario(vec![big, kids.clone()]),
                scenario(vec![big4, kids]),
            ],
        };
        let homes = [
            (facts("11010102", 2, 2), vec!["big".to_string()]),
            (facts("11010102", 1, 0), vec!["big".to_string()]),
            (facts("21010101", 3, 0), vec![]),
        ];
        // Two halves merged give the same as one pass.
        let mut a = Tally::default();
        let mut b = Tally::default();
        sim.add(&mut a, &homes[0].0, &homes[0].1);
        sim.add(&mut b, &homes[1].0, &homes[1].1);
        sim.add(&mut b, &homes[2].0, &homes[2].1);
        let tally = a.merge(b);
        let r = sim.report(
            &tally,
            &BTreeMap::from([("11".into(), "Nyarugenge".into())]),
        );
        assert_eq!(r.areas.len(), 2);
        let d11 = &r.areas[0];
        assert_eq!((d11.code.as_str(), d11.households), ("11", 2));
        let big = &d11.programmes[0].scenarios[0];
        assert_eq!(
            (big.eligible, big.cost, big.enrolled, big.eligible_enrolled),
            (1, 1000, 2, 1)
        );
        assert_eq!(big.enrolled_not_eligible, 1);
        assert_eq!(big.coverage, 0.5);
        let kids = &d11.programmes[1].scenarios[0];
        assert_eq!((kids.eligible, kids.beneficiaries, kids.cost), (1, 2, 20));
        assert_eq!(d11.overlaps[0].scenarios, vec![1, 1]);
        let d21 = &r.areas[1].programmes[0];
        assert_eq!(d21.scenarios[0].eligible_not_enrolled, 1);
        assert_eq!(d21.scenarios[1].eligible, 0);
        assert_eq!(d21.delta.unwrap().eligible, -1);
        assert_eq!(r.total.households, 3);
        assert_eq!(r.total.programmes[0].scenarios[0].eligible, 2);
        let csv = r.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 3 * 3);
        let cols = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == cols), "{csv}");
        assert!(lines[1].starts_with("11,Nyarugenge,big,2,1,1,0,"), "{csv}");
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("=1+1"), "'=1+1");
        assert_eq!(field("plain"), "plain");
    }
}
