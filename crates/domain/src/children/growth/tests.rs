//! Edge rules of the growth assessment. The whole method is checked against WHO's own results
//! by the survey test in `crates/domain/tests/growth_who_survey.rs`.

use super::tables::TABLES;
use super::*;

fn age(days: i64) -> AgeDays {
    AgeDays::new(days).expect("age in range")
}
fn kg(v: f64) -> WeightKg {
    WeightKg::new(v).expect("weight in range")
}
fn lying(cm: f64) -> LengthMeasurement {
    LengthMeasurement::new(LengthCm::new(cm).expect("cm"), MeasuredPosition::Lying)
}
fn standing(cm: f64) -> LengthMeasurement {
    LengthMeasurement::new(LengthCm::new(cm).expect("cm"), MeasuredPosition::Standing)
}
fn z(r: Result<ZScore, GrowthError>) -> f64 {
    r.expect("z-score").value()
}

#[test]
fn weight_based_indicators_are_restricted_beyond_three_sd() {
    let lms = TABLES.weight_for_age.at(Sex::Female, 400).expect("row");
    let (sd2, sd3) = (lms.centile(2.0), lms.centile(3.0));
    let heavy = sd3 + 2.0 * (sd3 - sd2);
    let zw = weight_for_age(Sex::Female, age(400), kg(heavy)).expect("z");
    assert!((zw.value() - 5.0).abs() < 1e-9, "{}", zw.value());
    assert!(
        (lms.z(heavy) - 5.0).abs() > 0.05,
        "the plain LMS value differs"
    );

    let lms = TABLES.muac_for_age.at(Sex::Male, 500).expect("row");
    let (sdm2, sdm3) = (lms.centile(-2.0), lms.centile(-3.0));
    let thin = MuacCm::new(sdm3 - 0.5 * (sdm2 - sdm3)).expect("muac");
    assert!((z(muac_for_age(Sex::Male, age(500), thin)) + 3.5).abs() < 1e-9);
}

#[test]
fn length_for_age_is_plain_lms() {
    let lms = TABLES.length_for_age.at(Sex::Male, 100).expect("row");
    let tall = lms.m * (1.0 + 4.0 * lms.s);
    assert!((z(length_for_age(Sex::Male, age(100), lying(tall))) - 4.0).abs() < 1e-9);
}

#[test]
fn weight_for_length_switches_to_height_at_731_days() {
    let at_730 =
        weight_for_length_or_height(Sex::Male, age(730), kg(11.0), lying(85.0)).expect("730 days");
    let at_731 = weight_for_length_or_height(Sex::Male, age(731), kg(11.0), standing(85.0))
        .expect("731 days");
    assert_eq!(at_730.indicator(), Indicator::WeightForLength);
    assert_eq!(at_731.indicator(), Indicator::WeightForHeight);

    // A wrong position is corrected before the lookup: lying 85.7 cm at 731 days is standing
    // 85.0 cm, standing 84.3 cm at 730 days is lying 85.0 cm.
    let corrected = weight_for_length_or_height(Sex::Male, age(731), kg(11.0), lying(85.7));
    assert!((z(corrected) - at_731.value()).abs() < 1e-9);
    let corrected = weight_for_length_or_height(Sex::Male, age(730), kg(11.0), standing(84.3));
    assert!((z(corrected) - at_730.value()).abs() < 1e-9);
    let corrected = length_for_age(Sex::Female, age(900), lying(90.7));
    assert!((z(corrected) - z(length_for_age(Sex::Female, age(900), standing(90.0)))).abs() < 1e-9);
}

#[test]
fn weight_for_length_interpolates_between_tabulated_lengths() {
    let w = kg(7.9);
    let at = |cm| {
        z(weight_for_length_or_height(
            Sex::Female,
            age(200),
            w,
            lying(cm),
        ))
    };
    let (lo, hi) = (
        TABLES.weight_for_length.at(Sex::Female, 683).expect("68.3"),
        TABLES.weight_for_length.at(Sex::Female, 684).expect("68.4"),
    );
    let expected = lo.lerp(&hi, 0.25).restricted_z(7.9);
    assert!((at(68.325) - expected).abs() < 1e-9);
    assert!(at(68.3) > at(68.325) && at(68.325) > at(68.4));
    assert!((at(68.3) - lo.z(7.9)).abs() < 1e-12);
}

#[test]
fn lengths_outside_the_tables_are_refused() {
    let wflh = |a, l| weight_for_length_or_height(Sex::Male, age(a), kg(8.0), l);
    assert!(wflh(100, lying(45.0)).is_ok());
    assert!(matches!(
        wflh(100, lying(44.9)),
        Err(GrowthError::LengthOutsideTable {
            indicator: Indicator::WeightForLength,
            ..
        })
    ));
    assert!(wflh(800, standing(120.0)).is_ok());
    assert!(matches!(
        wflh(800, standing(120.1)),
        Err(GrowthError::LengthOutsideTable {
            indicator: Indicator::WeightForHeight,
            ..
        })
    ));
    // Lying 65.5 cm at 800 days is standing 64.8 cm, below the height table.
    let e = wflh(800, lying(65.5)).expect_err("too short");
    assert!(e.to_string().contains("64.8 cm"), "{e}");
}

#[test]
fn muac_standard_starts_at_three_months() {
    let m = MuacCm::new(13.0).expect("muac");
    assert!(muac_for_age(Sex::Female, age(91), m).is_ok());
    assert_eq!(
        muac_for_age(Sex::Female, age(90), m),
        Err(GrowthError::AgeOutsideTable {
            indicator: Indicator::MuacForAge,
            days: 90,
            min: 91,
            max: 1856
        })
    );
}

#[test]
fn bmi_uses_the_corrected_length() {
    let b = bmi(age(800), kg(12.0), lying(87.7));
    assert!((b - 12.0 / (0.87 * 0.87)).abs() < 1e-9);
}

fn observation() -> Observation {
    Observation {
        sex: Sex::Male,
        age: age(400),
        weight: Some(kg(9.6)),
        length: Some(lying(76.5)),
        head_circumference: Some(HeadCircumferenceCm::new(46.0).expect("hc")),
        muac: Some(MuacCm::new(14.5).expect("muac")),
        oedema: false,
    }
}

#[test]
fn assess_computes_every_indicator_measured() {
    let a = assess(&observation());
    for r in [
        &a.weight_for_age,
        &a.length_for_age,
        &a.weight_for_length_or_height,
        &a.bmi_for_age,
        &a.muac_for_age,
        &a.head_circumference_for_age,
    ] {
        let zs = r.as_ref().expect("computed");
        assert!(zs.value().abs() < 2.0, "{zs:?}");
    }
    let a = assess(&Observation {
        weight: None,
        head_circumference: None,
        ..observation()
    });
    assert_eq!(
        a.weight_for_age,
        Err(GrowthError::NotMeasured {
            indicator: Indicator::WeightForAge,
            measurement: "weight"
        })
    );
    assert!(matches!(
        a.bmi_for_age,
        Err(GrowthError::NotMeasured { .. })
    ));
    assert!(a.length_for_age.is_ok());
    assert_eq!(a.grade(Condition::Wasting), None);
}

#[test]
fn oedema_suppresses_weight_based_scores_and_counts_as_severe() {
    let a = assess(&Observation {
        oedema: true,
        ..observation()
    });
    assert_eq!(
        a.weight_for_age,
        Err(GrowthError::Oedema {
            indicator: Indicator::WeightForAge
        })
    );
    assert!(matches!(
        a.weight_for_length_or_height,
        Err(GrowthError::Oedema { .. })
    ));
    assert!(matches!(a.bmi_for_age, Err(GrowthError::Oedema { .. })));
    assert!(a.length_for_age.is_ok() && a.muac_for_age.is_ok());
    assert_eq!(a.grade(Condition::Wasting), Some(Grade::Severe));
    assert_eq!(a.grade(Condition::Underweight), Some(Grade::Severe));
    assert_eq!(a.grade(Condition::Overweight), None);
    assert_eq!(a.grade(Condition::Stunting), Some(Grade::Absent));
}

#[test]
fn grades_use_strict_who_cut_offs() {
    let g = Condition::Stunting;
    assert_eq!(g.grade(-2.0), Grade::Absent);
    assert_eq!(g.grade(-2.01), Grade::Moderate);
    assert_eq!(g.grade(-3.0), Grade::Moderate);
    assert_eq!(g.grade(-3.01), Grade::Severe);
    assert_eq!(g.grade(2.5), Grade::Absent);
    let o = Condition::Overweight;
    assert_eq!(o.grade(2.0), Grade::Absent);
    assert_eq!(o.grade(2.01), Grade::Moderate);
    assert_eq!(o.grade(3.01), Grade::Severe);
    assert_eq!(o.grade(-4.0), Grade::Absent);
}

#[test]
fn assessment_grades_stunted_and_wasted_children() {
    let lms = TABLES.length_for_age.at(Sex::Male, 400).expect("row");
    let short = lms.m * (1.0 - 2.5 * lms.s);
    let a = assess(&Observation {
        length: Some(lying(short)),
        ..observation()
    });
    assert_eq!(a.grade(Condition::Stunting), Some(Grade::Moderate));
    // The observation is 76.5 cm lying at 400 days.
    let wfl = TABLES.weight_for_length.at(Sex::Male, 765).expect("row");
    let a = assess(&Observation {
        weight: Some(kg(wfl.centile(-3.4))),
        ..observation()
    });
    assert_eq!(a.grade(Condition::Wasting), Some(Grade::Severe));
    assert_eq!(a.grade(Condition::Overweight), Some(Grade::Absent));
    let a = assess(&Observation {
        weight: Some(kg(wfl.centile(2.6))),
        ..observation()
    });
    assert_eq!(a.grade(Condition::Overweight), Some(Grade::Moderate));
    assert_eq!(a.grade(Condition::Wasting), Some(Grade::Absent));
    let wfa = TABLES.weight_for_age.at(Sex::Male, 400).expect("row");
    let a = assess(&Observation {
        weight: Some(kg(wfa.centile(-2.5))),
        ..observation()
    });
    assert_eq!(a.grade(Condition::Underweight), Some(Grade::Moderate));
}

#[test]
fn implausible_scores_are_flagged_and_not_graded() {
    // A 40 kg infant: possible as a number, not as a one-month-old.
    let zw = weight_for_age(Sex::Male, age(30), kg(40.0)).expect("z");
    assert!(zw.is_implausible());
    let a = assess(&Observation {
        age: age(30),
        weight: Some(kg(40.0)),
        length: Some(lying(55.0)),
        ..observation()
    });
    assert_eq!(a.grade(Condition::Underweight), None);
    assert_eq!(a.grade(Condition::Overweight), None);

    // Weight-for-age is flagged below −6 or above +5; length-for-age beyond ±6.
    let f = |indicator, value| ZScore { indicator, value }.is_implausible();
    assert!(!f(Indicator::WeightForAge, -5.99));
    assert!(f(Indicator::WeightForAge, 5.01));
    assert!(!f(Indicator::WeightForAge, 5.004));
    assert!(!f(Indicator::LengthForAge, 5.9));
    assert!(f(Indicator::LengthForAge, -6.01));
    assert!(f(Indicator::BmiForAge, -5.01));
}

/// Sweeps each indicator over its measurement: the z-score must rise with the measurement
/// (fall with length, for weight-for-length/height) and move smoothly across table rows.
#[test]
fn z_scores_are_monotone_and_continuous_in_the_measurement() {
    for sex in [Sex::Male, Sex::Female] {
        for d in (0..=1856).step_by(61) {
            let a = age(d);
            let mut last = f64::NEG_INFINITY;
            for i in 0..=240 {
                let w = 1.0 + f64::from(i) * 0.125;
                let zw = z(weight_for_age(sex, a, kg(w)));
                assert!(
                    zw > last,
                    "{sex:?} day {d}: weight {w} kg gives {zw} after {last}"
                );
                last = zw;
            }
            let mut last = f64::NEG_INFINITY;
            for i in 0..=200 {
                let cm = 40.0 + f64::from(i) * 0.5;
                let zl = z(length_for_age(sex, a, lying(cm)));
                assert!(zl > last, "{sex:?} day {d}: {cm} cm");
                last = zl;
            }
        }
        for (days, from, to) in [(300, 45.0, 110.0), (1000, 65.0, 120.0)] {
            let mut last = f64::INFINITY;
            let mut cm = from;
            while cm <= to {
                let l = LengthMeasurement::new(
                    LengthCm::new(cm).expect("cm"),
                    age(days).standard_position(),
                );
                let zl = z(weight_for_length_or_height(sex, age(days), kg(12.0), l));
                assert!(zl < last, "{sex:?} {cm} cm: {zl} after {last}");
                assert!(last - zl < 0.05 || last.is_infinite(), "jump at {cm} cm");
                last = zl;
                cm += 0.013;
            }
        }
    }
}

#[test]
fn reference_lines_have_the_z_scores_they_name() {
    for (indicator, key) in [
        (Indicator::WeightForAge, 300),
        (Indicator::LengthForAge, 1000),
        (Indicator::WeightForLength, 650),
    ] {
        let lines = reference_lines(indicator, Sex::Female, key).expect("in the table");
        let lms = indicator.table().at(Sex::Female, key).expect("row");
        for (y, want) in lines.iter().zip(SD_LINES) {
            assert!((lms.z(*y) - want).abs() < 1e-9, "{indicator} {key}: {y}");
        }
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
    }
    let (_, last) = table_range(Indicator::WeightForAge);
    assert!(reference_lines(Indicator::WeightForAge, Sex::Male, last + 1).is_none());
}
