#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn the_shipped_catalogue_has_nine_programmes_under_four_agencies() {
    let c = Catalogue::rw_illustrative().unwrap();
    assert!(c.illustrative);
    assert_eq!(c.agencies.len(), 4);
    assert_eq!(c.programmes.len(), 9);
    assert!(c.programmes.iter().all(|p| p.illustrative));
    let ds = c.programmes.iter().find(|p| p.code == "vup_ds").unwrap();
    assert_eq!(ds.overlaps_with, ["vup_cpw", "vup_epw"]);
}

#[test]
fn benefit_formulas() {
    let pm = Benefit::PerMember {
        base: 4500,
        per_member: 3000,
        cap: Some(21000),
    };
    assert_eq!(pm.amount(1), 7500);
    assert_eq!(pm.amount(3), 13500);
    assert_eq!(pm.amount(9), 21000);
    let pw = Benefit::DailyWage {
        daily_wage: 1500,
        days: 12,
    };
    assert_eq!(pw.amount(4), 18000);
    assert_eq!(Benefit::Fixed { amount: 10 }.amount(7), 10);
}

fn programme_json(rule: &str) -> String {
    serde_json::json!({
        "code": "test_prog", "name": "Test", "agency": "loda", "target": "household",
        "eligibility": rule, "benefit": {"type": "fixed", "amount": 100},
        "frequency": "monthly"
    })
    .to_string()
}

#[test]
fn a_programme_with_a_broken_rule_is_refused_with_its_position() {
    let e = Programme::from_json(&programme_json("score < 40 and")).unwrap_err();
    assert_eq!(e.field, "eligibility");
    let r = e.rule_error.unwrap();
    assert_eq!(r.line, 1);
    assert_eq!(r.column, 15);
    let e = Programme::from_json(&programme_json("size == \"big\"")).unwrap_err();
    assert_eq!(e.field, "eligibility");
    assert!(e.rule_error.is_some());
}

#[test]
fn unknown_fields_are_named() {
    let mut v: serde_json::Value = serde_json::from_str(&programme_json("score < 40")).unwrap();
    v["benefit"]["bonus"] = 5.into();
    let e = Programme::from_json(&v.to_string()).unwrap_err();
    assert_eq!(e.field, "benefit");
    assert!(e.reason.contains("bonus"), "{}", e.reason);
    let mut v: serde_json::Value = serde_json::from_str(&programme_json("score < 40")).unwrap();
    v["colour"] = "red".into();
    let e = Programme::from_json(&v.to_string()).unwrap_err();
    assert!(e.reason.contains("colour"), "{e}");
}

#[test]
fn catalogue_references_are_checked() {
    let bad = RW_ILLUSTRATIVE_TOML.replace("agency = \"rssb\"", "agency = \"nobody\"");
    let e = Catalogue::from_toml(&bad).unwrap_err();
    assert!(e.field.ends_with(".agency"), "{e}");
}

#[test]
fn lifecycle() {
    use EnrolmentStatus::*;
    assert!(Eligible.transition(Enrolled, None).is_ok());
    assert!(Waiting.transition(Enrolled, None).is_ok());
    assert_eq!(
        Enrolled.transition(Exited, Some("  ")),
        Err(TransitionError::ReasonRequired(Exited))
    );
    assert!(Enrolled
        .transition(Graduated, Some("income above threshold"))
        .is_ok());
    assert!(Suspended.transition(Enrolled, None).is_ok());
    assert!(matches!(
        Graduated.transition(Enrolled, None),
        Err(TransitionError::NotAllowed { .. })
    ));
    assert!(matches!(
        Exited.transition(Suspended, Some("x")),
        Err(TransitionError::NotAllowed { .. })
    ));
    assert!(Enrolled.holds_place() && Suspended.holds_place() && !Waiting.holds_place());
}
