//! Typed inputs of a growth assessment. Each can only be built valid: finite, positive and
//! within bounds wider than anything a child under six can measure. Values that are possible
//! but implausible for the child's age (a 40 kg infant) pass here and are caught by WHO's
//! flags on the z-score, which know the age.

use super::GrowthError;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Sex, as the standards tabulate boys and girls separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Male,
    Female,
}

/// How a length was measured: lying down (recumbent length) or standing (height).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeasuredPosition {
    /// Recumbent length, the standard position under two years (LOINC 8306-3).
    Lying,
    /// Standing height, the standard position from two years (LOINC 8302-2).
    Standing,
}

/// Age in completed days at the measurement, within the standards' 0–1856 days.
///
/// Deserializing goes through [`AgeDays::new`], so an out-of-range age is refused there too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct AgeDays(u16);

impl TryFrom<i64> for AgeDays {
    type Error = GrowthError;
    fn try_from(days: i64) -> Result<AgeDays, GrowthError> {
        AgeDays::new(days)
    }
}

impl From<AgeDays> for i64 {
    fn from(age: AgeDays) -> i64 {
        i64::from(age.0)
    }
}

impl AgeDays {
    /// The last day WHO's software computes age-based z-scores for (61 months less a day).
    pub const MAX: u16 = 1856;
    /// The first day on which a child's standard position is standing (24 months): WHO's
    /// length tables end, and its height tables start, here.
    pub const STANDING_FROM: u16 = 731;

    pub fn new(days: i64) -> Result<AgeDays, GrowthError> {
        match u16::try_from(days) {
            Ok(d) if d <= Self::MAX => Ok(AgeDays(d)),
            _ => Err(GrowthError::AgeOutOfRange { days }),
        }
    }

    /// Age on `measured` of a child born on `birth`.
    pub fn between(birth: NaiveDate, measured: NaiveDate) -> Result<AgeDays, GrowthError> {
        AgeDays::new((measured - birth).num_days())
    }

    pub fn days(self) -> u16 {
        self.0
    }

    /// The position the standards expect at this age.
    pub fn standard_position(self) -> MeasuredPosition {
        if self.0 < Self::STANDING_FROM {
            MeasuredPosition::Lying
        } else {
            MeasuredPosition::Standing
        }
    }
}

impl fmt::Display for AgeDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} days", self.0)
    }
}

/// Defines a bounded measurement newtype over `f64`; deserializing validates like `new`.
macro_rules! measurement {
    ($(#[$doc:meta])* $name:ident, $quantity:literal, $unit:literal, $min:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(try_from = "f64", into = "f64")]
        pub struct $name(f64);

        impl TryFrom<f64> for $name {
            type Error = GrowthError;
            fn try_from(value: f64) -> Result<$name, GrowthError> {
                $name::new(value)
            }
        }

        impl From<$name> for f64 {
            fn from(m: $name) -> f64 {
                m.0
            }
        }

        impl $name {
            pub const MIN: f64 = $min;
            pub const MAX: f64 = $max;

            pub fn new(value: f64) -> Result<$name, GrowthError> {
                if !value.is_finite() {
                    return Err(GrowthError::NotFinite { quantity: $quantity });
                }
                if !(Self::MIN..=Self::MAX).contains(&value) {
                    return Err(GrowthError::Implausible {
                        quantity: $quantity,
                        value,
                        unit: $unit,
                        min: Self::MIN,
                        max: Self::MAX,
                    });
                }
                Ok($name(value))
            }

            pub fn value(self) -> f64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.0, $unit)
            }
        }
    };
}

measurement!(
    /// Body weight in kilograms.
    WeightKg, "weight", "kg", 0.5, 60.0
);
measurement!(
    /// Recumbent length or standing height in centimetres, as measured.
    LengthCm, "length/height", "cm", 35.0, 150.0
);
measurement!(
    /// Head (occipitofrontal) circumference in centimetres.
    HeadCircumferenceCm, "head circumference", "cm", 20.0, 65.0
);
measurement!(
    /// Mid-upper-arm circumference in centimetres.
    MuacCm, "mid-upper-arm circumference", "cm", 5.0, 35.0
);

/// A length or height together with the position it was measured in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LengthMeasurement {
    pub length: LengthCm,
    pub position: MeasuredPosition,
}

/// What standing up shortens a child by, on average: WHO's correction between recumbent
/// length and standing height.
pub const POSITION_CORRECTION_CM: f64 = 0.7;

impl LengthMeasurement {
    pub fn new(length: LengthCm, position: MeasuredPosition) -> LengthMeasurement {
        LengthMeasurement { length, position }
    }

    /// The length in the position the standards expect at `age`: a child under 731 days
    /// measured standing gets 0.7 cm added, one from 731 days measured lying 0.7 cm taken off.
    pub fn standardised_cm(&self, age: AgeDays) -> f64 {
        let cm = self.length.value();
        match (age.standard_position(), self.position) {
            (MeasuredPosition::Lying, MeasuredPosition::Standing) => cm + POSITION_CORRECTION_CM,
            (MeasuredPosition::Standing, MeasuredPosition::Lying) => cm - POSITION_CORRECTION_CM,
            _ => cm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_is_bounded_by_the_standards() {
        assert_eq!(AgeDays::new(0).map(AgeDays::days), Ok(0));
        assert_eq!(AgeDays::new(1856).map(AgeDays::days), Ok(1856));
        assert_eq!(
            AgeDays::new(1857),
            Err(GrowthError::AgeOutOfRange { days: 1857 })
        );
        assert_eq!(
            AgeDays::new(-1),
            Err(GrowthError::AgeOutOfRange { days: -1 })
        );
        assert_eq!(
            AgeDays::new(70_000),
            Err(GrowthError::AgeOutOfRange { days: 70_000 })
        );
    }

    #[test]
    fn age_from_dates_and_measurement_before_birth() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("valid date");
        assert_eq!(
            AgeDays::between(d(2024, 2, 28), d(2024, 3, 1)).map(AgeDays::days),
            Ok(2)
        );
        assert_eq!(
            AgeDays::between(d(2022, 1, 1), d(2024, 1, 1)).map(AgeDays::days),
            Ok(730)
        );
        assert!(matches!(
            AgeDays::between(d(2024, 3, 1), d(2024, 2, 28)),
            Err(GrowthError::AgeOutOfRange { days: -2 })
        ));
    }

    #[test]
    fn measurements_refuse_impossible_values_naming_the_quantity() {
        assert!(WeightKg::new(3.2).is_ok());
        assert_eq!(
            WeightKg::new(f64::NAN),
            Err(GrowthError::NotFinite { quantity: "weight" })
        );
        let e = LengthCm::new(-50.0).expect_err("negative height");
        assert_eq!(
            e.to_string(),
            "length/height -50 cm is outside the plausible range 35–150 cm"
        );
        assert!(WeightKg::new(0.0).is_err());
        assert!(WeightKg::new(120.0).is_err());
        assert!(HeadCircumferenceCm::new(f64::INFINITY).is_err());
        assert!(MuacCm::new(4.9).is_err());
        assert!(MuacCm::new(35.0).is_ok());
    }

    #[test]
    fn deserializing_validates() {
        let w: WeightKg = serde_json::from_str("3.4").expect("valid weight");
        assert_eq!(w.value(), 3.4);
        let e = serde_json::from_str::<WeightKg>("-1").expect_err("negative weight");
        assert!(e.to_string().contains("weight -1 kg is outside"), "{e}");
        assert!(serde_json::from_str::<AgeDays>("2000").is_err());
        let l: LengthMeasurement =
            serde_json::from_str(r#"{"length": 80.5, "position": "standing"}"#).expect("length");
        assert_eq!(l.position, MeasuredPosition::Standing);
        assert_eq!(
            serde_json::to_string(&l).ok().as_deref(),
            Some(r#"{"length":80.5,"position":"standing"}"#)
        );
    }

    #[test]
    fn position_correction_switches_at_731_days() {
        let len = |cm, pos| LengthMeasurement::new(LengthCm::new(cm).expect("cm"), pos);
        let age = |d| AgeDays::new(d).expect("age");
        let (lying, standing) = (MeasuredPosition::Lying, MeasuredPosition::Standing);
        // Day 730 is still "under two": length expected.
        assert_eq!(len(85.0, lying).standardised_cm(age(730)), 85.0);
        assert_eq!(len(85.0, standing).standardised_cm(age(730)), 85.7);
        // From day 731 height is expected.
        assert_eq!(len(85.0, standing).standardised_cm(age(731)), 85.0);
        assert_eq!(len(85.0, lying).standardised_cm(age(731)), 85.0 - 0.7);
        assert_eq!(age(730).standard_position(), lying);
        assert_eq!(age(731).standard_position(), standing);
    }
}
