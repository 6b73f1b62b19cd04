//! Evaluation of compiled rules: a fast path that only decides, and an explaining path that
//! records each condition it relied on with the values it saw.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::check::{Arith, BoolVar, Cmp, Labels, NumVar, Scope, TextVar, B, L, N, T};
use super::Subject;
use crate::registry::person::{MemberRole, Sex};
use crate::targeting::facts::PersonFacts;

/// One condition a decision rested on. `text` states the facts as found (true either way);
/// `held` says whether the condition itself held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leaf {
    pub text: String,
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub eligible: bool,
    /// The conditions that decided, in rule order: for a yes, those that made it true; for a
    /// no, those that made it false.
    pub leaves: Vec<Leaf>,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.eligible {
            "eligible"
        } else {
            "not eligible"
        };
        let reasons: Vec<&str> = self.leaves.iter().map(|l| l.text.as_str()).collect();
        if reasons.is_empty() {
            f.write_str(verdict)
        } else {
            write!(f, "{verdict}: {}", reasons.join(" and "))
        }
    }
}

fn person_answers<'a>(s: &Subject<'a>, scope: Scope) -> Option<&'a serde_json::Map<String, Value>> {
    match scope {
        Scope::Household => Some(&s.household.answers),
        Scope::Member => s.person.map(|p| &p.answers),
    }
}

fn answer<'a>(s: &Subject<'a>, scope: Scope, key: &str) -> Option<&'a Value> {
    person_answers(s, scope).and_then(|m| m.get(key))
}

pub fn num(n: &N, s: &Subject<'_>) -> f64 {
    match n {
        N::Const(c) => *c,
        N::Var(v) => num_var(*v, s),
        N::Neg(x) => -num(x, s),
        N::Bin(op, a, b) => {
            let (a, b) = (num(a, s), num(b, s));
            match op {
                Arith::Add => a + b,
                Arith::Sub => a - b,
                Arith::Mul => a * b,
                // Dividing by zero gives an unknown number rather than infinity, so that a rule
                // like `under_15 / working_age > 2` is false for a household with no one 15–64
                // instead of silently true.
                Arith::Div if b == 0.0 => f64::NAN,
                Arith::Div => a / b,
            }
        }
        N::Count(pred) => s
            .household
            .members
            .iter()
            .filter(|p| bool_of(pred, &with_person(s, p)))
            .count() as f64,
        N::Answer(scope, key) => answer(s, *scope, key)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN),
    }
}

fn with_person<'a>(s: &Subject<'a>, p: &'a PersonFacts) -> Subject<'a> {
    Subject {
        person: Some(p),
        ..*s
    }
}

fn num_var(v: NumVar, s: &Subject<'_>) -> f64 {
    let h = s.household;
    let count = f64::from;
    let opt = |x: Option<i32>| x.map_or(f64::NAN, f64::from);
    match v {
        NumVar::Score => s.score.unwrap_or(f64::NAN),
        NumVar::Size => count(h.size),
        NumVar::DependencyRatio => h.dependency_ratio,
        NumVar::Under5 => count(h.under_5),
        NumVar::Under15 => count(h.under_15),
        NumVar::WorkingAge => count(h.working_age),
        NumVar::Elderly => count(h.elderly),
        NumVar::PregnantWomen => count(h.pregnant_women),
        NumVar::DisabledMembers => count(h.disabled_members),
        NumVar::SeverelyDisabledMembers => count(h.severely_disabled_members),
        NumVar::ChronicallyIllMembers => count(h.chronically_ill_members),
        NumVar::LabourCapacity => count(h.labour_capacity),
        NumVar::HeadAge => opt(h.head_age),
        NumVar::LandHa => h.land_ha,
        NumVar::Tlu => h.tlu,
        NumVar::AssetsCount => count(h.assets_count),
        NumVar::PersonsPerRoom => h.persons_per_room,
        NumVar::Age => opt(s.person.and_then(|p| p.age_years)),
        NumVar::AgeMonths => opt(s.person.and_then(|p| p.age_months)),
    }
}

fn sex_str(s: Sex) -> &'static str {
    s.as_str()
}

pub fn text<'a>(t: &'a T, s: &Subject<'a>) -> &'a str {
    match t {
        T::Lit(l) => l,
        T::Var(TextVar::Category) => s.category.unwrap_or(""),
        T::Var(TextVar::Area) => &s.household.area,
        T::Var(TextVar::HeadSex) => s.household.head_sex.map_or("", sex_str),
        T::Var(TextVar::Sex) => s.person.map_or("", |p| sex_str(p.sex)),
        T::Var(TextVar::Role) => s.person.map_or("", |p| MemberRole::as_str(p.role)),
        T::Answer(scope, key) => answer(s, *scope, key).and_then(Value::as_str).unwrap_or(""),
    }
}

fn list_contains(l: &L, s: &Subject<'_>, item: &str) -> bool {
    match l {
        L::Lit(items) => items.iter().any(|i| &**i == item),
        L::Answer(scope, key) => match answer(s, *scope, key) {
            Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(item)),
            _ => false,
        },
    }
}

fn bool_var(v: BoolVar, s: &Subject<'_>) -> bool {
    let p = |f: fn(&PersonFacts) -> bool| s.person.is_some_and(f);
    match v {
        BoolVar::FemaleHeaded => s.household.head_sex == Some(Sex::Female),
        BoolVar::Pregnant => p(|p| p.pregnant),
        BoolVar::Disabled => p(|p| p.disabled),
        BoolVar::SeverelyDisabled => p(|p| p.severely_disabled),
        BoolVar::CanWork => p(|p| p.can_work),
        BoolVar::ChronicIllness => p(|p| p.chronic_illness),
        BoolVar::InSchool => p(|p| p.in_school),
        BoolVar::IsHead => p(|p| p.role == MemberRole::Head),
    }
}

fn bool_var_name(v: BoolVar) -> &'static str {
    match v {
        BoolVar::FemaleHeaded => "female_headed",
        BoolVar::Pregnant => "pregnant",
        BoolVar::Disabled => "disabled",
        BoolVar::SeverelyDisabled => "severely_disabled",
        BoolVar::CanWork => "can_work",
        BoolVar::ChronicIllness => "chronic_illness",
        BoolVar::InSchool => "in_school",
        BoolVar::IsHead => "is_head",
    }
}

/// Unknown numbers (NaN) make every comparison false, `!=` included.
fn compare(op: Cmp, a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return false;
    }
    match op {
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
        Cmp::Eq => a == b,
        Cmp::Ne => a != b,
    }
}

fn child_under<'a>(s: &Subject<'a>, months: f64) -> Option<&'a PersonFacts> {
    s.household.youngest_under_months(months)
}

pub fn bool_of(b: &B, s: &Subject<'_>) -> bool {
    match b {
        B::Const(c) => *c,
        B::Var(v) => bool_var(*v, s),
        B::Answer(scope, key) => answer(s, *scope, key)
            .and_then(Value::as_bool)
            .unwrap_or(false),
        B::Not(x) => !bool_of(x, s),
        B::And(items) => items.iter().all(|x| bool_of(x, s)),
        B::Or(items) => items.iter().any(|x| bool_of(x, s)),
        B::Num(op, l, r, _) => compare(*op, num(l, s), num(r, s)),
        B::Text(eq, l, r, _) => (text(l, s) == text(r, s)) == *eq,
        B::Bool(eq, l, r, _) => (bool_of(l, s) == bool_of(r, s)) == *eq,
        B::In(negated, item, list, _) => list_contains(list, s, text(item, s)) != *negated,
        B::StartsWith(l, r, _) => text(l, s).starts_with(text(r, s)),
        B::ChildUnder(n) => child_under(s, num(n, s)).is_some(),
        B::Enrolled(code) => {
            let code = text(code, s);
            s.enrolments.iter().any(|e| e == code)
        }
        B::AnyMember(pred, _) => s
            .household
            .members
            .iter()
            .any(|p| bool_of(pred, &with_person(s, p))),
        B::AllMembers(pred, _) => s
            .household
            .members
            .iter()
            .all(|p| bool_of(pred, &with_person(s, p))),
    }
}

/// Shows a number as people write it: whole numbers without decimals, others to two places.
pub fn show_number(x: f64) -> String {
    if x.is_nan() {
        return "unknown".into();
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{x:.0}");
    }
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `label value`, or just the value when the label is the literal itself.
fn side(label: &str, value: &str, literal: bool) -> String {
    if literal {
        label.to_string()
    } else {
        format!("{label} {value}")
    }
}

fn show_num_side(label: &str, n: &N, s: &Subject<'_>) -> String {
    side(label, &show_number(num(n, s)), matches!(n, N::Const(_)))
}

fn show_text_side(label: &str, t: &T, s: &Subject<'_>) -> String {
    side(label, &format!("{:?}", text(t, s)), matches!(t, T::Lit(_)))
}

fn negate(op: Cmp) -> Cmp {
    match op {
        Cmp::Lt => Cmp::Ge,
        Cmp::Le => Cmp::Gt,
        Cmp::Gt => Cmp::Le,
        Cmp::Ge => Cmp::Lt,
        Cmp::Eq => Cmp::Ne,
        Cmp::Ne => Cmp::Eq,
    }
}

fn symbol(op: Cmp) -> &'static str {
    match op {
        Cmp::Lt => "<",
        Cmp::Le => "<=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
        Cmp::Eq => "==",
        Cmp::Ne => "!=",
    }
}

fn describe_member(s: &Subject<'_>, p: &PersonFacts) -> String {
    let n = s
        .household
        .members
        .iter()
        .position(|m| std::ptr::eq(m, p))
        .map_or(0, |i| i + 1);
    format!("member {n} ({}, {}, {})", p.sex, p.role, p.describe_age())
}

fn leaf(out: &mut Vec<Leaf>, text: String, held: bool) -> bool {
    out.push(Leaf { text, held });
    held
}

/// Evaluates `b` like [`bool_of`] and appends the conditions the result rests on.
pub fn explain(b: &B, s: &Subject<'_>, out: &mut Vec<Leaf>) -> bool {
    match b {
        B::Const(c) => *c,
        B::Var(v) => {
            let held = bool_var(*v, s);
            let name = bool_var_name(*v);
            leaf(
                out,
                if held {
                    name.into()
                } else {
                    format!("not {name}")
                },
                held,
            )
        }
        B::Answer(scope, key) => {
            let v = answer(s, *scope, key).and_then(Value::as_bool);
            let shown = v.map_or("unanswered", |b| if b { "yes" } else { "no" });
            leaf(out, format!("{key} = {shown}"), v == Some(true))
        }
        B::Not(x) => !explain(x, s, out),
        B::And(items) => junction(items, s, out, true),
        B::Or(items) => junction(items, s, out, false),
        B::Num(op, l, r, labels) => explain_num(*op, l, r, labels, s, out),
        B::Text(eq, l, r, labels) => {
            let held = bool_of(b, s);
            let same = held == *eq;
            let op = if same { "==" } else { "!=" };
            let (a, c) = (
                show_text_side(&labels.left, l, s),
                show_text_side(&labels.right, r, s),
            );
            leaf(out, format!("{a} {op} {c}"), held)
        }
        B::Bool(_, _, _, labels) => {
            let held = bool_of(b, s);
            let verdict = if held { "holds" } else { "does not hold" };
            leaf(
                out,
                format!("{} == {} {verdict}", labels.left, labels.right),
                held,
            )
        }
        B::In(negated, item, _, labels) => {
            let held = bool_of(b, s);
            let member = held != *negated;
            let op = if member { "in" } else { "not in" };
            leaf(
                out,
                format!(
                    "{} {op} {}",
                    show_text_side(&labels.left, item, s),
                    labels.right
                ),
                held,
            )
        }
        B::StartsWith(l, r, labels) => {
            let held = bool_of(b, s);
            let op = if held {
                "starts with"
            } else {
                "does not start with"
            };
            let (a, c) = (
                show_text_side(&labels.left, l, s),
                show_text_side(&labels.right, r, s),
            );
            leaf(out, format!("{a} {op} {c}"), held)
        }
        B::ChildUnder(n) => {
            let months = num(n, s);
            match child_under(s, months) {
                Some(p) => leaf(out, format!("has a child aged {}", p.describe_age()), true),
                None => leaf(
                    out,
                    format!("has no child under {} months", show_number(months)),
                    false,
                ),
            }
        }
        B::Enrolled(code) => {
            let held = bool_of(b, s);
            let not = if held { "" } else { "not " };
            leaf(out, format!("{not}enrolled in {}", text(code, s)), held)
        }
        B::AnyMember(pred, src) => quantifier(pred, src, s, out, true),
        B::AllMembers(pred, src) => quantifier(pred, src, s, out, false),
    }
}

fn explain_num(
    op: Cmp,
    l: &N,
    r: &N,
    labels: &Labels,
    s: &Subject<'_>,
    out: &mut Vec<Leaf>,
) -> bool {
    let (a, c) = (num(l, s), num(r, s));
    let held = compare(op, a, c);
    let (ls, rs) = (
        show_num_side(&labels.left, l, s),
        show_num_side(&labels.right, r, s),
    );
    let text = if a.is_nan() || c.is_nan() {
        format!("{ls} {} {rs} cannot be decided", symbol(op))
    } else {
        format!("{ls} {} {rs}", symbol(if held { op } else { negate(op) }))
    };
    leaf(out, text, held)
}

/// `and` (all = true) or `or`: keeps the leaves that decided the result.
fn junction(items: &[B], s: &Subject<'_>, out: &mut Vec<Leaf>, all: bool) -> bool {
    let mut kept = Vec::new();
    for item in items {
        let mut mine = Vec::new();
        let v = explain(item, s, &mut mine);
        if v != all {
            // The deciding item: a false one ends an `and`, a true one ends an `or`.
            out.extend(mine);
            return !all;
        }
        kept.extend(mine);
    }
    out.extend(kept);
    all
}

/// `any_member` (any = true) or `all_members`: names the member that decided.
fn quantifier(pred: &B, src: &str, s: &Subject<'_>, out: &mut Vec<Leaf>, any: bool) -> bool {
    for p in &s.household.members {
        let sub = with_person(s, p);
        let mut mine = Vec::new();
        if explain(pred, &sub, &mut mine) == any {
            let reasons: Vec<String> = mine.into_iter().map(|l| l.text).collect();
            let who = describe_member(s, p);
            let text = if any {
                format!("{who}: {}", reasons.join(" and "))
            } else {
                format!("{who} fails {src}: {}", reasons.join(" and "))
            };
            return leaf(out, text, any);
        }
    }
    if any {
        leaf(out, format!("no member has {src}"), false)
    } else {
        leaf(out, format!("every member has {src}"), true)
    }
}
