//! Child indicators by area and month: what each counts, per child, from the statuses the
//! schedule evaluator computed and the WHO growth standards. Counting by area is the store's
//! job; deciding whether one child counts is done here, once (docs/CHILDREN.md defines each).

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

use super::growth::{
    self, AgeDays, Condition, Grade, LengthCm, LengthMeasurement, MeasuredPosition, Sex, WeightKg,
};
use super::schedule::{FactKind, Schedules};

/// The indicators, by their code in the API and the DHIS2 mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorCode {
    /// Fully immunised by the first birthday, among children turning one in the month.
    Fic12,
    /// Fully immunised by the second birthday, among children turning two in the month.
    Fic24,
    /// Stunted (moderate or severe) at the latest length/height, among children under five
    /// measured in the quarter ending with the month.
    Stunting,
    /// Wasted (moderate or severe), same children as stunting.
    Wasting,
    /// Weighed or measured during the month, among children under two.
    GrowthMonitoring,
    /// Birth registered, among children under five.
    BirthRegistration,
    /// Enrolled in pre-primary, among children aged three to five.
    PreprimaryEnrolment,
}

impl IndicatorCode {
    pub const ALL: [IndicatorCode; 7] = [
        IndicatorCode::Fic12,
        IndicatorCode::Fic24,
        IndicatorCode::Stunting,
        IndicatorCode::Wasting,
        IndicatorCode::GrowthMonitoring,
        IndicatorCode::BirthRegistration,
        IndicatorCode::PreprimaryEnrolment,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            IndicatorCode::Fic12 => "fic12",
            IndicatorCode::Fic24 => "fic24",
            IndicatorCode::Stunting => "stunting",
            IndicatorCode::Wasting => "wasting",
            IndicatorCode::GrowthMonitoring => "growth_monitoring",
            IndicatorCode::BirthRegistration => "birth_registration",
            IndicatorCode::PreprimaryEnrolment => "preprimary_enrolment",
        }
    }

    pub fn parse(s: &str) -> Option<IndicatorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the numerator counts a problem (prevalence) rather than a service received
    /// (coverage). Drill-down lists the numerator of the first, the gap of the second.
    pub const fn is_prevalence(self) -> bool {
        matches!(self, IndicatorCode::Stunting | IndicatorCode::Wasting)
    }
}

impl fmt::Display for IndicatorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A calendar month, the reference period of every indicator (`YYYY-MM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RefMonth {
    first: NaiveDate,
}

impl RefMonth {
    pub fn parse(s: &str) -> Result<RefMonth, String> {
        let bad = || format!("'{s}' is not a month written YYYY-MM");
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        NaiveDate::from_ymd_opt(y, m, 1)
            .map(|first| RefMonth { first })
            .ok_or_else(bad)
    }

    /// The month containing `day`.
    pub fn of(day: NaiveDate) -> RefMonth {
        RefMonth {
            first: day.with_day(1).unwrap_or(day),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        self.first
    }

    pub fn last_day(self) -> NaiveDate {
        self.plus(1).first.pred_opt().unwrap_or(self.first)
    }

    /// `n` months later.
    pub fn plus(self, n: u32) -> RefMonth {
        RefMonth {
            first: self
                .first
                .checked_add_months(Months::new(n))
                .unwrap_or(self.first),
        }
    }

    /// `n` months earlier.
    pub fn minus(self, n: u32) -> RefMonth {
        RefMonth {
            first: self
                .first
                .checked_sub_months(Months::new(n))
                .unwrap_or(self.first),
        }
    }

    /// DHIS2's monthly period, `YYYYMM`.
    pub fn dhis2_period(self) -> String {
        self.first.format("%Y%m").to_string()
    }
}

impl fmt::Display for RefMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.first.format("%Y-%m"))
    }
}

/// Which children each indicator counts in `month`, as birth-date ranges and dates, so a
/// store can count them by area. Bounds are inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cohort {
    /// Children born within this range are in the denominator (with `measured_from` for
    /// stunting and wasting: measured on or after it, up to the month's end).
    pub born_from: NaiveDate,
    pub born_to: NaiveDate,
    pub measured_from: Option<NaiveDate>,
    pub month_end: NaiveDate,
    pub month_start: NaiveDate,
}

/// The children an indicator looks at in `month` (see docs/CHILDREN.md, "Indicators").
pub fn cohort(code: IndicatorCode, month: RefMonth) -> Cohort {
    let end = month.last_day();
    // Born in the month `n` months before: they reach `n` months of age during `month`.
    let turning = |n: u32| (month.minus(n).first_day(), month.minus(n).last_day());
    // Under `n` months on the last day of the month: born after end − n months.
    let under = |n: u32| {
        let from = end
            .checked_sub_months(Months::new(n))
            .and_then(|d| d.succ_opt())
            .unwrap_or(end);
        (from, end)
    };
    let ((born_from, born_to), measured_from) = match code {
        IndicatorCode::Fic12 => (turning(12), None),
        IndicatorCode::Fic24 => (turning(24), None),
        IndicatorCode::Stunting | IndicatorCode::Wasting => {
            (under(60), Some(month.minus(2).first_day()))
        }
        IndicatorCode::GrowthMonitoring => (under(24), None),
        IndicatorCode::BirthRegistration => (under(60), None),
        IndicatorCode::PreprimaryEnrolment => {
            let (from, _) = under(72);
            let to = end.checked_sub_months(Months::new(36)).unwrap_or(end);
            ((from, to), None)
        }
    };
    Cohort {
        born_from,
        born_to,
        measured_from,
        month_end: end,
        month_start: month.first_day(),
    }
}

/// One occurrence as materialised: enough to judge immunisation by an age.
#[derive(Debug, Clone, Copy)]
pub struct Occurrence<'a> {
    pub schedule: &'a str,
    pub service: &'a str,
    pub due_by: NaiveDate,
    pub completed_on: Option<NaiveDate>,
}

/// The doses a child lacked on its `months`-month birthday: every immunisation the schedules
/// recommend by then (`due_by` on or before the birthday) not given by then. Birth doses
/// (dose 0) are left out, as WHO's "fully immunised child" leaves them out. `None` while the
/// child is younger than `months` on `today`.
pub fn missing_doses<'a>(
    schedules: &Schedules,
    occurrences: impl IntoIterator<Item = Occurrence<'a>>,
    birth: NaiveDate,
    months: u32,
    today: NaiveDate,
) -> Option<Vec<&'a str>> {
    let birthday = birth.checked_add_months(Months::new(months))?;
    if birthday > today {
        return None;
    }
    Some(
        occurrences
            .into_iter()
            .filter(|o| lacking_on(schedules, o, birthday))
            .map(|o| o.service)
            .collect(),
    )
}

/// The ages (months) of the full-immunisation indicators.
pub const FIC_MONTHS: [u32; 2] = [12, 24];

/// Whether `o` is a counted dose (not a birth dose) recommended by `birthday` and not given
/// by then: what [`missing_doses`] lists.
fn lacking_on(schedules: &Schedules, o: &Occurrence<'_>, birthday: NaiveDate) -> bool {
    o.due_by <= birthday
        && o.completed_on.is_none_or(|d| d > birthday)
        && schedules
            .service(o.schedule, o.service)
            .is_some_and(|s| s.fact == FactKind::Immunization && s.dose != Some(0))
}

/// Whether [`missing_doses`] can ever list `o` for a child born on `birth`, at 12 or 24
/// months, whatever the day asked. A dose given by both birthdays (and any occurrence that is
/// not a counted dose) never is: a store of occurrences for the indicators may leave it out,
/// and `missing_doses` over what is left gives the same answer.
pub fn ever_lacking(schedules: &Schedules, o: &Occurrence<'_>, birth: NaiveDate) -> bool {
    FIC_MONTHS.iter().any(|m| {
        birth
            .checked_add_months(Months::new(*m))
            .is_some_and(|birthday| lacking_on(schedules, o, birthday))
    })
}

/// A growth-monitoring visit: what was measured on one day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visit {
    pub on: NaiveDate,
    pub weight_kg: Option<f64>,
    /// Length (lying) or height (standing), in cm.
    pub length_cm: Option<(f64, MeasuredPosition)>,
}

/// The growth status of a child at its latest visit with a length or height.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrowthStatus {
    pub on: NaiveDate,
    pub stunting: Option<Grade>,
    pub wasting: Option<Grade>,
}

/// The latest visit with a length or height, judged by the WHO standards (stunting from
/// length/height-for-age, wasting from weight-for-length/height with the weight of that day).
/// `None` without such a visit before the fifth birthday.
pub fn latest_growth(sex: Sex, birth: NaiveDate, visits: &[Visit]) -> Option<GrowthStatus> {
    let v = visits
        .iter()
        .filter(|v| v.length_cm.is_some() && AgeDays::between(birth, v.on).is_ok())
        .max_by_key(|v| v.on)?;
    let age = AgeDays::between(birth, v.on).ok()?;
    let length = v.length_cm.and_then(|(cm, pos)| {
        LengthCm::new(cm)
            .ok()
            .map(|l| LengthMeasurement::new(l, pos))
    });
    let obs = growth::Observation {
        sex,
        age,
        weight: v.weight_kg.and_then(|w| WeightKg::new(w).ok()),
        length,
        head_circumference: None,
        muac: None,
        oedema: false,
    };
    let a = growth::assess(&obs);
    Some(GrowthStatus {
        on: v.on,
        stunting: a.grade(Condition::Stunting),
        wasting: a.grade(Condition::Wasting),
    })
}

/// A grade as stored: 0 absent, 2 moderate, 3 severe (the SD it is beyond).
pub const fn grade_code(g: Grade) -> i16 {
    match g {
        Grade::Absent => 0,
        Grade::Moderate => 2,
        Grade::Severe => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::children::schedule::Window;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn months_parse_and_count() {
        let m = RefMonth::parse("2026-03").expect("month");
        assert_eq!(m.last_day(), d("2026-03-31"));
        assert_eq!(m.minus(12).to_string(), "2025-03");
        assert_eq!(m.dhis2_period(), "202603");
        for bad in ["2026-13", "2026-3", "26-03", "march"] {
            assert!(RefMonth::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cohorts_follow_the_definitions() {
        let m = RefMonth::parse("2026-03").expect("month");
        let c = cohort(IndicatorCode::Fic12, m);
        assert_eq!((c.born_from, c.born_to), (d("2025-03-01"), d("2025-03-31")));
        let c = cohort(IndicatorCode::GrowthMonitoring, m);
        // Under two on 31 March 2026: born after 31 March 2024.
        assert_eq!((c.born_from, c.born_to), (d("2024-04-01"), d("2026-03-31")));
        let c = cohort(IndicatorCode::PreprimaryEnrolment, m);
        assert_eq!((c.born_from, c.born_to), (d("2020-04-01"), d("2023-03-31")));
        let c = cohort(IndicatorCode::Stunting, m);
        assert_eq!(c.measured_from, Some(d("2026-01-01")));
    }

    /// Each service of the shipped EPI schedule with its first window for a child born `birth`.
    fn epi_windows(all: &Schedules, birth: NaiveDate) -> Vec<(String, Window)> {
        let epi = all
            .schedules
            .iter()
            .find(|s| s.id == "rw-epi")
            .expect("epi");
        epi.services
            .iter()
            .map(|s| (s.code.clone(), s.timing.windows(birth)[0]))
            .collect()
    }

    #[test]
    fn a_dose_given_after_the_birthday_does_not_count() {
        let all = Schedules::embedded().expect("schedules");
        let birth = d("2025-01-10");
        let windows = epi_windows(all, birth);
        // Every dose given on its due date, except measles-rubella 1 given at 13 months.
        let late = birth.checked_add_months(Months::new(13)).expect("date");
        let occ: Vec<Occurrence<'_>> = windows
            .iter()
            .map(|(code, w)| Occurrence {
                schedule: "rw-epi",
                service: code,
                due_by: w.due_by,
                completed_on: Some(if code == "mr-1" { late } else { w.due_by }),
            })
            .collect();
        let today = d("2027-06-01");
        let missing = missing_doses(all, occ.iter().copied(), birth, 12, today).expect("old");
        assert_eq!(missing, vec!["mr-1"]);
        let missing = missing_doses(all, occ.iter().copied(), birth, 24, today).expect("old");
        assert!(missing.is_empty(), "{missing:?}");
        assert!(missing_doses(all, occ.iter().copied(), birth, 24, d("2026-06-01")).is_none());
    }

    #[test]
    fn doses_given_by_both_birthdays_can_be_left_out() {
        let all = Schedules::embedded().expect("schedules");
        let birth = d("2025-01-10");
        let windows = epi_windows(all, birth);
        // On time, except measles-rubella 1 at 13 months and penta 3 never.
        let late = birth.checked_add_months(Months::new(13)).expect("date");
        let occ: Vec<Occurrence<'_>> = windows
            .iter()
            .map(|(code, w)| Occurrence {
                schedule: "rw-epi",
                service: code,
                due_by: w.due_by,
                completed_on: match code.as_str() {
                    "mr-1" => Some(late),
                    "penta-3" => None,
                    _ => Some(w.due_by),
                },
            })
            .collect();
        let kept: Vec<Occurrence<'_>> = occ
            .iter()
            .copied()
            .filter(|o| ever_lacking(all, o, birth))
            .collect();
        let mut names: Vec<&str> = kept.iter().map(|o| o.service).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["mr-1", "penta-3"]);
        // The same answer from what is kept as from everything, on any day and at both ages.
        for today in [
            "2026-01-09",
            "2026-01-10",
            "2026-06-01",
            "2027-01-10",
            "2028-01-01",
        ] {
            for months in FIC_MONTHS {
                assert_eq!(
                    missing_doses(all, kept.iter().copied(), birth, months, d(today)),
                    missing_doses(all, occ.iter().copied(), birth, months, d(today)),
                    "{today} at {months} months"
                );
            }
        }
    }

    #[test]
    fn growth_uses_the_latest_visit_with_a_length() {
        let birth = d("2024-01-01");
        let visits = [
            Visit {
                on: d("2025-01-01"),
                weight_kg: Some(9.0),
                length_cm: Some((74.0, MeasuredPosition::Lying)),
            },
            // A later weighing without a length does not replace it.
            Visit {
                on: d("2025-03-01"),
                weight_kg: Some(9.5),
                length_cm: None,
            },
            Visit {
                on: d("2025-02-01"),
                weight_kg: Some(7.0),
                length_cm: Some((68.0, MeasuredPosition::Lying)),
            },
        ];
        let g = latest_growth(Sex::Male, birth, &visits).expect("judged");
        assert_eq!(g.on, d("2025-02-01"));
        // 68 cm at 13 months is far below the median (about 77 cm): severely stunted.
        assert_eq!(g.stunting, Some(Grade::Severe));
        assert!(g.wasting.is_some());
        assert!(latest_growth(Sex::Male, birth, &visits[1..2]).is_none());
    }
}
