use super::*;
use crate::areas::AreaCode;
use crate::registry::person::{BirthDate, MemberRole, Sex};
use crate::targeting::facts::MemberRecord;
use chrono::NaiveDate;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A mother of 27 (pregnant when `pregnant`), her husband (severely disabled when `disabled`),
/// and a child born 2025-09-10, assessed on 2026-06-15 (9 months old).
fn family(area: &str, pregnant: bool, disabled: bool) -> HouseholdFacts {
    let mother = obj(json!({"pregnant": pregnant, "education": "primary"}));
    let father = if disabled {
        obj(json!({"disability": "walking", "disability_severity": "a_lot"}))
    } else {
        Map::new()
    };
    let none = Map::new();
    let m = |sex, born: &str, role, answers| MemberRecord {
        sex,
        birth_date: Some(BirthDate::parse(born).expect("date")),
        role,
        answers,
        died_on: None,
    };
    let members = [
        m(Sex::Female, "1999-01-20", MemberRole::Head, &mother),
        m(Sex::Male, "1995", MemberRole::Spouse, &father),
        m(Sex::Female, "2025-09-10", MemberRole::Child, &none),
    ];
    let answers = obj(json!({"roof": "grass_or_leaves", "assets": ["radio"], "rooms": 1}));
    let on = NaiveDate::from_ymd_opt(2026, 6, 15).expect("date");
    HouseholdFacts::build(
        &AreaCode::parse(area).expect("area"),
        &answers,
        &members,
        on,
    )
}

fn subject<'a>(
    h: &'a HouseholdFacts,
    score: f64,
    category: &'a str,
    enrolments: &'a [String],
) -> Subject<'a> {
    Subject {
        household: h,
        person: None,
        score: Some(score),
        category: Some(category),
        enrolments,
    }
}

fn rule(src: &str) -> Rule {
    Rule::compile(src, Target::Household).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn refused(src: &str, target: Target) -> RuleError {
    match Rule::compile(src, target) {
        Ok(_) => panic!("accepted: {src}"),
        Err(e) => e,
    }
}

#[test]
fn examples_from_the_brief_evaluate() {
    let h = family("41010101", true, true);
    let enrolled = vec!["vup_ds".to_string()];
    let s = subject(&h, 31.0, "2", &enrolled);
    let cases = [
        ("score < 40 and has_child_under_months(24)", true),
        ("score < 40 and has_child_under_months(9)", false),
        ("category in [\"1\", \"2\"]", true),
        ("category not in [\"1\", \"2\"]", false),
        ("size >= 5 or (disabled_members > 0 and labour_capacity == 1)", true),
        ("area startswith \"11\"", false),
        ("area startswith \"41\"", true),
        ("enrolled(\"vup_ds\")", true),
        ("not enrolled(\"vup_pw\")", true),
        ("any_member(age < 2)", true),
        ("any_member(age_months < 9)", false),
        ("count_members(sex == \"F\" and age >= 15 and age <= 49) == 1", true),
        ("count_members(true) / size == 1", true),
        ("pregnant_women > 0 and female_headed and head_age == 27", true),
        ("\"radio\" in answer(\"assets\") and answer(\"roof\") == \"grass_or_leaves\"", true),
        ("answer(\"rooms\") * 2 - 1 == 1 and -size < 0", true),
        ("all_members(age >= 18)", false),
        ("any_member(member_answer(\"pregnant\") and member_answer(\"education\") == \"primary\")", true),
        ("answer(\"monthly_income_rwf\") >= 0 or answer(\"monthly_income_rwf\") < 0", false),
        ("size / (working_age - 2) > 0", false),
    ];
    for (src, want) in cases {
        let r = rule(src);
        assert_eq!(r.evaluate(&s), want, "{src}");
        assert_eq!(r.explain(&s).eligible, want, "explained {src}");
    }
}

#[test]
fn truth_tables_of_connectives() {
    let h = family("41010101", false, false);
    for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
        let s = subject(&h, 0.0, "1", &[]);
        let (x, y) = (a.to_string(), b.to_string());
        assert_eq!(rule(&format!("{x} and {y}")).evaluate(&s), a && b);
        assert_eq!(rule(&format!("{x} or {y}")).evaluate(&s), a || b);
        assert_eq!(rule(&format!("not {x} or {y}")).evaluate(&s), !a || b);
        assert_eq!(rule(&format!("{x} == {y}")).evaluate(&s), a == b);
        assert_eq!(rule(&format!("{x} != {y}")).evaluate(&s), a != b);
    }
    // `and` binds tighter than `or`; `not` tighter than `and`.
    let s = subject(&h, 0.0, "1", &[]);
    assert!(rule("true or false and false").evaluate(&s));
    assert!(!rule("(true or false) and false").evaluate(&s));
    assert!(!rule("not true and false").evaluate(&s));
    assert!(rule("1 + 2 * 3 == 7 and 8 / 4 / 2 == 1 and 10 - 4 - 3 == 3").evaluate(&s));
}

#[test]
fn unknown_numbers_make_comparisons_false() {
    let h = family("41010101", false, false);
    let s = Subject::household(&h);
    assert!(!rule("score < 40").evaluate(&s));
    assert!(!rule("score >= 40").evaluate(&s));
    assert!(!rule("score != 40").evaluate(&s));
    assert_eq!(
        rule("score < 40").explain(&s).to_string(),
        "not eligible: score unknown < 40 cannot be decided"
    );
}

#[test]
fn decisions_are_explained_with_values() {
    let h = family("41010101", true, false);
    let s = subject(&h, 31.0, "2", &[]);
    let d = rule("score < 40 and has_child_under_months(24)").explain(&s);
    assert_eq!(
        d.to_string(),
        "eligible: score 31 < 40 and has a child aged 9 months"
    );
    assert!(d.leaves.iter().all(|l| l.held));

    let s = subject(&h, 55.5, "3", &[]);
    let d = rule("score < 40 and has_child_under_months(24)").explain(&s);
    assert_eq!(d.to_string(), "not eligible: score 55.5 >= 40");
    assert!(!d.leaves[0].held);

    let d = rule("category in [\"1\", \"2\"] or pregnant_women > 0").explain(&s);
    assert_eq!(d.to_string(), "eligible: pregnant_women 1 > 0");

    let d = rule("not enrolled(\"vup_ds\") and any_member(sex == \"F\" and age >= 15)").explain(&s);
    assert_eq!(
        d.to_string(),
        "eligible: not enrolled in vup_ds and member 1 (F, head, 27 years): sex \"F\" == \"F\" and age 27 >= 15"
    );

    let d = rule("has_child_under_months(6) or size > 4").explain(&s);
    assert_eq!(
        d.to_string(),
        "not eligible: has no child under 6 months and size 3 <= 4"
    );

    let d = rule("all_members(age >= 18)").explain(&s);
    assert_eq!(
        d.to_string(),
        "not eligible: member 3 (F, child, 9 months) fails age >= 18: age 0 < 18"
    );
}

#[test]
fn person_target_rules() {
    let h = family("41010101", true, false);
    let r = Rule::compile(
        "pregnant or (sex == \"F\" and age_months < 24)",
        Target::Person,
    )
    .expect("rule");
    let decided: Vec<bool> = h
        .members
        .iter()
        .map(|p| {
            r.evaluate(&Subject {
                person: Some(p),
                ..Subject::household(&h)
            })
        })
        .collect();
    assert_eq!(decided, [true, false, true]);
    let d = r.explain(&Subject {
        person: Some(&h.members[2]),
        ..Subject::household(&h)
    });
    assert_eq!(
        d.to_string(),
        "eligible: sex \"F\" == \"F\" and age_months 9 < 24"
    );
}

#[test]
fn errors_point_at_the_problem() {
    let e = refused("score < 40 and scroe > 1", Target::Household);
    assert_eq!((e.line, e.column), (1, 16));
    assert!(e.message.contains("did you mean 'score'"), "{e}");
    assert_eq!(
        e.excerpt,
        "  score < 40 and scroe > 1\n                 ^^^^^"
    );

    let e = refused("score < 40 and\n  category < \"2\"", Target::Household);
    assert_eq!((e.line, e.column), (2, 3));
    assert!(e.message.contains("only == and !="), "{e}");

    let e = refused("size == \"5\"", Target::Household);
    assert!(
        e.message.contains("cannot compare a number with text"),
        "{e}"
    );
    assert_eq!(e.column, 1);

    let e = refused("age < 5", Target::Household);
    assert!(e.message.contains("any_member"), "{e}");
    assert!(Rule::compile("age < 5", Target::Person).is_ok());

    let e = refused("has_child_under_months(24, 3)", Target::Household);
    assert!(e.message.contains("takes 1 argument, 2 given"), "{e}");

    let e = refused("size > 3 and (score < 40", Target::Household);
    assert!(e.message.contains("expected ')'"), "{e}");
    assert_eq!(e.column, 25);

    let e = refused("score = 40", Target::Household);
    assert!(e.message.contains("write =="), "{e}");
    assert_eq!(e.column, 7);

    let e = refused("1 < score < 40", Target::Household);
    assert!(e.message.contains("cannot be chained"), "{e}");

    let e = refused("size + 1", Target::Household);
    assert!(e.message.contains("must be a condition"), "{e}");

    let e = refused("answer(\"rooof\") > 1", Target::Household);
    assert!(e.message.contains("no household question 'rooof'"), "{e}");
    assert_eq!(e.column, 8);

    let e = refused("category in [\"1\", 2]", Target::Household);
    assert!(e.message.contains("only quoted text"), "{e}");
    assert_eq!(e.column, 19);

    let e = refused("area startswith \"1", Target::Household);
    assert!(e.message.contains("not closed"), "{e}");

    let e = refused("size() > 1", Target::Household);
    assert!(e.message.contains("not a function"), "{e}");

    let e = refused(
        "member_answer(\"education\") == \"none\"",
        Target::Household,
    );
    assert!(e.message.contains("inside any_member"), "{e}");

    let e = refused("answer(\"roof\") == \"marble\"", Target::Household);
    assert!(e.message.contains("not a choice of 'roof'"), "{e}");
    assert_eq!(e.column, 19);

    // Columns count characters, not bytes.
    let e = refused("area == \"Ã©\" and ñ", Target::Household);
    assert_eq!(e.column, 18, "{e}");
}

#[test]
fn compiled_rules_can_be_shared_between_threads() {
    fn shareable<X: Send + Sync>() {}
    shareable::<Rule>();
}

#[test]
fn limits_refuse_abusive_rules() {
    let long = format!("size > 1{}", " ".repeat(MAX_RULE_CHARS));
    assert!(refused(&long, Target::Household)
        .message
        .contains("longer than"));
    let deep = format!("{}true{}", "(".repeat(100), ")".repeat(100));
    assert!(refused(&deep, Target::Household)
        .message
        .contains("nested too deeply"));
    let nots = format!("{}true", "not ".repeat(100));
    assert!(refused(&nots, Target::Household)
        .message
        .contains("nested too deeply"));
    let lists = format!("\"a\" in {}", "[".repeat(100));
    assert!(refused(&lists, Target::Household)
        .message
        .contains("nested too deeply"));
    let wide = vec!["size > 1"; 150].join(" and ");
    assert!(refused(&wide, Target::Household)
        .message
        .contains("more than"));
    let ok = format!("{}true{}", "(".repeat(20), ")".repeat(20));
    assert!(Rule::compile(&ok, Target::Household).is_ok());
}

proptest! {
    #[test]
    fn parser_never_panics(src in "\\PC{0,200}") {
        let _ = Rule::compile(&src, Target::Household);
    }

    #[test]
    fn parser_never_panics_on_rule_like_text(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("score"), Just("<"), Just("40"), Just("and"), Just("or"), Just("not"),
                Just("("), Just(")"), Just("["), Just("]"), Just(","), Just("\"1\""), Just("in"),
                Just("any_member"), Just("age"), Just("=="), Just("-"), Just("/"), Just("\""),
                Just("startswith"), Just("count_members"), Just("answer"), Just("\n"), Just("é"),
            ],
            0..60,
        )
    ) {
        let src = parts.join(" ");
        if let Err(e) = Rule::compile(&src, Target::Household) {
            prop_assert!(e.line >= 1 && e.column >= 1);
            prop_assert!(e.excerpt.contains('^'));
        }
    }
}
