//! Growth assessment against the WHO 2006 Child Growth Standards: z-scores by the LMS method
//! and the classification of stunting, wasting, underweight and overweight.
//!
//! The rules are WHO's, as its igrowup and anthro software apply them:
//! - age-based indicators look up the row of the child's age in days (0–1856);
//! - length is used under 731 days and height from 731 days; a measurement taken in the other
//!   position is corrected by ±0.7 cm first ([`LengthMeasurement::standardised_cm`]);
//! - weight-for-length (45–110 cm, under 731 days) and weight-for-height (65–120 cm, from 731
//!   days) interpolate the 0.1 cm rows linearly;
//! - the weight-based indicators (weight-for-age, weight-for-length/height, BMI-for-age,
//!   MUAC-for-age) use the restricted rule beyond ±3 SD; length- and head-circumference-for-age
//!   do not need it (their L is 1, the distribution is normal);
//! - with bilateral pitting oedema, weight-based z-scores are not computed (the weight includes
//!   fluid), and the child counts as severely wasted and severely underweight;
//! - a z-score too extreme to be a real measurement is flagged ([`ZScore::is_implausible`]) and
//!   is left out of classification.
//!
//! The tables are data, embedded from `data/growth/` (see its README for source and licence).

mod lms;
mod measures;
mod tables;

pub use measures::{
    AgeDays, HeadCircumferenceCm, LengthCm, LengthMeasurement, MeasuredPosition, MuacCm, Sex,
    WeightKg, POSITION_CORRECTION_CM,
};

use lms::Lms;
use serde::{Deserialize, Serialize};
use std::fmt;
use tables::{Table, TABLES};

/// The growth indicators of the standards that Inkingi computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    WeightForAge,
    LengthForAge,
    WeightForLength,
    WeightForHeight,
    BmiForAge,
    MuacForAge,
    HeadCircumferenceForAge,
}

impl Indicator {
    pub const fn as_str(self) -> &'static str {
        match self {
            Indicator::WeightForAge => "weight-for-age",
            Indicator::LengthForAge => "length/height-for-age",
            Indicator::WeightForLength => "weight-for-length",
            Indicator::WeightForHeight => "weight-for-height",
            Indicator::BmiForAge => "BMI-for-age",
            Indicator::MuacForAge => "MUAC-for-age",
            Indicator::HeadCircumferenceForAge => "head-circumference-for-age",
        }
    }

    /// Whether WHO's restricted rule beyond ±3 SD applies: the skewed, weight-based ones.
    const fn restricted(self) -> bool {
        matches!(
            self,
            Indicator::WeightForAge
                | Indicator::WeightForLength
                | Indicator::WeightForHeight
                | Indicator::BmiForAge
                | Indicator::MuacForAge
        )
    }

    /// WHO's flag for a biologically implausible z-score of this indicator.
    fn implausible(self, z: f64) -> bool {
        match self {
            Indicator::LengthForAge => z.abs() > 6.0,
            Indicator::WeightForAge => !(-6.0..=5.0).contains(&z),
            _ => z.abs() > 5.0,
        }
    }

    fn table(self) -> &'static Table {
        let t = &*TABLES;
        match self {
            Indicator::WeightForAge => &t.weight_for_age,
            Indicator::LengthForAge => &t.length_for_age,
            Indicator::WeightForLength => &t.weight_for_length,
            Indicator::WeightForHeight => &t.weight_for_height,
            Indicator::BmiForAge => &t.bmi_for_age,
            Indicator::MuacForAge => &t.muac_for_age,
            Indicator::HeadCircumferenceForAge => &t.head_circumference_for_age,
        }
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a measurement or a z-score could not be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GrowthError {
    #[error("{quantity} must be a finite number")]
    NotFinite { quantity: &'static str },
    #[error("{quantity} {value} {unit} is outside the plausible range {min}–{max} {unit}")]
    Implausible {
        quantity: &'static str,
        value: f64,
        unit: &'static str,
        min: f64,
        max: f64,
    },
    #[error("age {days} days is outside the WHO 2006 standards (0–1856 days)")]
    AgeOutOfRange { days: i64 },
    #[error("{indicator} is not defined at {days} days (the standard covers {min}–{max} days)")]
    AgeOutsideTable {
        indicator: Indicator,
        days: u16,
        min: u32,
        max: u32,
    },
    #[error(
        "{indicator} is not defined at {cm:.1} cm (the standard covers {min}–{max} cm, \
         after the ±0.7 cm position correction)"
    )]
    LengthOutsideTable {
        indicator: Indicator,
        cm: f64,
        min: f64,
        max: f64,
    },
    #[error("{indicator} needs the {measurement}, which was not measured")]
    NotMeasured {
        indicator: Indicator,
        measurement: &'static str,
    },
    #[error("{indicator} is not computed for a child with bilateral pitting oedema")]
    Oedema { indicator: Indicator },
}

/// A z-score of one indicator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ZScore {
    indicator: Indicator,
    value: f64,
}

impl ZScore {
    pub fn indicator(&self) -> Indicator {
        self.indicator
    }

    /// The z-score at full precision.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The z-score to two decimals, as WHO's software reports it. Flags and grades are judged
    /// on this value so that Inkingi's prevalences agree with WHO's tools at the boundaries.
    pub fn rounded(&self) -> f64 {
        (self.value * 100.0).round() / 100.0
    }

    /// WHO's flag: a z-score this extreme is most likely a measurement or entry error
    /// (length/height-for-age beyond ±6, weight-for-age below −6 or above +5, others beyond ±5).
    pub fn is_implausible(&self) -> bool {
        self.indicator.implausible(self.rounded())
    }
}

fn z_from(indicator: Indicator, lms: Lms, y: f64) -> ZScore {
    let value = if indicator.restricted() {
        lms.restricted_z(y)
    } else {
        lms.z(y)
    };
    ZScore { indicator, value }
}

fn by_age(indicator: Indicator, sex: Sex, age: AgeDays, y: f64) -> Result<ZScore, GrowthError> {
    let table = indicator.table();
    let lms = table.at(sex, u32::from(age.days())).ok_or_else(|| {
        let (min, max) = table.range();
        GrowthError::AgeOutsideTable {
            indicator,
            days: age.days(),
            min,
            max,
        }
    })?;
    Ok(z_from(indicator, lms, y))
}

/// The SD lines growth charts draw: −3, −2, 0 (the median), +2, +3.
pub const SD_LINES: [f64; 5] = [-3.0, -2.0, 0.0, 2.0, 3.0];

/// The measurements on the [`SD_LINES`] of `indicator` for `sex` at `key` (age in days, or for
/// weight-for-length/height the length in millimetres); `None` outside the table.
pub fn reference_lines(indicator: Indicator, sex: Sex, key: u32) -> Option<[f64; 5]> {
    let lms = indicator.table().at(sex, key)?;
    Some(SD_LINES.map(|z| lms.centile(z)))
}

/// The first and last key of `indicator`'s table (days of age, or millimetres of length).
pub fn table_range(indicator: Indicator) -> (u32, u32) {
    indicator.table().range()
}

/// Weight-for-age (restricted beyond ±3 SD).
pub fn weight_for_age(sex: Sex, age: AgeDays, weight: WeightKg) -> Result<ZScore, GrowthError> {
    by_age(Indicator::WeightForAge, sex, age, weight.value())
}

/// Length/height-for-age, after the position correction.
pub fn length_for_age(
    sex: Sex,
    age: AgeDays,
    length: LengthMeasurement,
) -> Result<ZScore, GrowthError> {
    by_age(
        Indicator::LengthForAge,
        sex,
        age,
        length.standardised_cm(age),
    )
}

/// Weight-for-length under 731 days, weight-for-height from 731 days (restricted), after the
/// position correction, interpolating between the tabulated 0.1 cm rows.
pub fn weight_for_length_or_height(
    sex: Sex,
    age: AgeDays,
    weight: WeightKg,
    length: LengthMeasurement,
) -> Result<ZScore, GrowthError> {
    let indicator = match age.standard_position() {
        MeasuredPosition::Lying => Indicator::WeightForLength,
        MeasuredPosition::Standing => Indicator::WeightForHeight,
    };
    let cm = length.standardised_cm(age);
    let table = indicator.table();
    let (min_mm, max_mm) = table.range();
    let (min, max) = (f64::from(min_mm) / 10.0, f64::from(max_mm) / 10.0);
    let outside = || GrowthError::LengthOutsideTable {
        indicator,
        cm,
        min,
        max,
    };
    if !(min..=max).contains(&cm) {
        return Err(outside());
    }
    let lms = table.at_length(sex, cm).ok_or_else(outside)?;
    Ok(z_from(indicator, lms, weight.value()))
}

/// The body mass index, kg/m², from the position-corrected length.
pub fn bmi(age: AgeDays, weight: WeightKg, length: LengthMeasurement) -> f64 {
    let metres = length.standardised_cm(age) / 100.0;
    weight.value() / (metres * metres)
}

/// BMI-for-age (restricted), from the position-corrected length.
pub fn bmi_for_age(
    sex: Sex,
    age: AgeDays,
    weight: WeightKg,
    length: LengthMeasurement,
) -> Result<ZScore, GrowthError> {
    by_age(Indicator::BmiForAge, sex, age, bmi(age, weight, length))
}

/// Mid-upper-arm-circumference-for-age (restricted); the standard starts at 91 days.
pub fn muac_for_age(sex: Sex, age: AgeDays, muac: MuacCm) -> Result<ZScore, GrowthError> {
    by_age(Indicator::MuacForAge, sex, age, muac.value())
}

/// Head-circumference-for-age.
pub fn head_circumference_for_age(
    sex: Sex,
    age: AgeDays,
    head: HeadCircumferenceCm,
) -> Result<ZScore, GrowthError> {
    by_age(Indicator::HeadCircumferenceForAge, sex, age, head.value())
}

/// Everything measured at one visit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub sex: Sex,
    pub age: AgeDays,
    pub weight: Option<WeightKg>,
    pub length: Option<LengthMeasurement>,
    pub head_circumference: Option<HeadCircumferenceCm>,
    pub muac: Option<MuacCm>,
    /// Bilateral pitting oedema seen at the visit.
    pub oedema: bool,
}

/// All z-scores of one [`Observation`]; each either computed or the reason it was not.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub weight_for_age: Result<ZScore, GrowthError>,
    pub length_for_age: Result<ZScore, GrowthError>,
    /// [`Indicator::WeightForLength`] or [`Indicator::WeightForHeight`] by age.
    pub weight_for_length_or_height: Result<ZScore, GrowthError>,
    pub bmi_for_age: Result<ZScore, GrowthError>,
    pub muac_for_age: Result<ZScore, GrowthError>,
    pub head_circumference_for_age: Result<ZScore, GrowthError>,
    pub oedema: bool,
}

fn needs<T>(
    value: Option<T>,
    indicator: Indicator,
    measurement: &'static str,
) -> Result<T, GrowthError> {
    value.ok_or(GrowthError::NotMeasured {
        indicator,
        measurement,
    })
}

/// Weight-based z-scores are left out with oedema, whatever was measured.
fn weight_based(
    obs: &Observation,
    indicator: Indicator,
    compute: impl FnOnce() -> Result<ZScore, GrowthError>,
) -> Result<ZScore, GrowthError> {
    if obs.oedema {
        return Err(GrowthError::Oedema { indicator });
    }
    compute()
}

/// Computes every indicator the observation allows.
pub fn assess(obs: &Observation) -> Assessment {
    let (sex, age) = (obs.sex, obs.age);
    let weight = |i| needs(obs.weight, i, "weight");
    let length = |i| needs(obs.length, i, "length/height");
    let wflh = match age.standard_position() {
        MeasuredPosition::Lying => Indicator::WeightForLength,
        MeasuredPosition::Standing => Indicator::WeightForHeight,
    };
    Assessment {
        weight_for_age: weight_based(obs, Indicator::WeightForAge, || {
            weight_for_age(sex, age, weight(Indicator::WeightForAge)?)
        }),
        length_for_age: length(Indicator::LengthForAge).and_then(|l| length_for_age(sex, age, l)),
        weight_for_length_or_height: weight_based(obs, wflh, || {
            weight_for_length_or_height(sex, age, weight(wflh)?, length(wflh)?)
        }),
        bmi_for_age: weight_based(obs, Indicator::BmiForAge, || {
            let i = Indicator::BmiForAge;
            bmi_for_age(sex, age, weight(i)?, length(i)?)
        }),
        muac_for_age: needs(
            obs.muac,
            Indicator::MuacForAge,
            "mid-upper-arm circumference",
        )
        .and_then(|m| muac_for_age(sex, age, m)),
        head_circumference_for_age: needs(
            obs.head_circumference,
            Indicator::HeadCircumferenceForAge,
            "head circumference",
        )
        .and_then(|h| head_circumference_for_age(sex, age, h)),
        oedema: obs.oedema,
    }
}

/// The forms of malnutrition the programme follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Low length/height-for-age.
    Stunting,
    /// Low weight-for-length/height.
    Wasting,
    /// Low weight-for-age.
    Underweight,
    /// High weight-for-length/height.
    Overweight,
}

/// How far a z-score is past the WHO cut-offs (−2 and −3, or +2 and +3 for overweight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// Within the cut-off.
    Absent,
    /// Beyond 2 SD (below −2, or above +2 for overweight) but not beyond 3 SD.
    Moderate,
    /// Beyond 3 SD.
    Severe,
}

impl Condition {
    /// The grade of a (two-decimal) z-score. The cut-offs are strict: −2.00 is not stunted.
    pub fn grade(self, z: f64) -> Grade {
        // Overweight looks at the upper tail; mirror it onto the lower one.
        let deficit = if self == Condition::Overweight { -z } else { z };
        if deficit < -3.0 {
            Grade::Severe
        } else if deficit < -2.0 {
            Grade::Moderate
        } else {
            Grade::Absent
        }
    }
}

impl Assessment {
    /// The grade of `condition`, or `None` when it cannot be judged: the z-score is missing or
    /// flagged implausible. With oedema a child counts as severely wasted and severely
    /// underweight (WHO's convention for prevalence), and is not judged for overweight.
    pub fn grade(&self, condition: Condition) -> Option<Grade> {
        let z = match condition {
            Condition::Stunting => &self.length_for_age,
            Condition::Wasting | Condition::Overweight => &self.weight_for_length_or_height,
            Condition::Underweight => &self.weight_for_age,
        };
        if self.oedema && condition != Condition::Stunting {
            return (condition != Condition::Overweight).then_some(Grade::Severe);
        }
        let z = z.as_ref().ok().filter(|z| !z.is_implausible())?;
        Some(condition.grade(z.rounded()))
    }
}

#[cfg(test)]
mod tests;
