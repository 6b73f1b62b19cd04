//! Type checking and compilation in one pass: every name is resolved to a fact, every operator
//! checked against its operands' types, and the result is a typed tree ready to evaluate.

use super::lexer::Span;
use super::parser::{BinOp, Expr, ExprKind};
use super::{Located, Target};
use crate::registry::form::{FormSchema, QuestionKind, Section};

/// Numbers about a household.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumVar {
    Score,
    Size,
    DependencyRatio,
    Under5,
    Under15,
    WorkingAge,
    Elderly,
    PregnantWomen,
    DisabledMembers,
    SeverelyDisabledMembers,
    ChronicallyIllMembers,
    LabourCapacity,
    HeadAge,
    LandHa,
    Tlu,
    AssetsCount,
    PersonsPerRoom,
    // About the person in scope.
    Age,
    AgeMonths,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextVar {
    Category,
    Area,
    HeadSex,
    Sex,
    Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolVar {
    FemaleHeaded,
    Pregnant,
    Disabled,
    SeverelyDisabled,
    CanWork,
    ChronicIllness,
    InSchool,
    IsHead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    Num(NumVar),
    Text(TextVar),
    Bool(BoolVar),
}

/// Names a rule may use anywhere, with what they mean.
pub const HOUSEHOLD_NAMES: &[(&str, &str)] = &[
    (
        "score",
        "the household's score, 0–100 (unknown when not scored)",
    ),
    ("category", "the household's score band, e.g. \"1\""),
    ("area", "the village's NISR code"),
    ("size", "living members"),
    ("dependency_ratio", "(0–14 and 65+) over 15–64"),
    ("under_5", "members aged 0–4"),
    ("under_15", "members aged 0–14"),
    ("working_age", "members aged 15–64"),
    ("elderly", "members aged 65 and over"),
    ("pregnant_women", "pregnant members"),
    ("disabled_members", "members with any reported difficulty"),
    (
        "severely_disabled_members",
        "members with a lot of difficulty or more",
    ),
    ("chronically_ill_members", "members with a chronic illness"),
    (
        "labour_capacity",
        "adults 18–64 able to work and not severely disabled",
    ),
    ("head_age", "the head's age in years"),
    ("head_sex", "the head's sex, \"F\" or \"M\""),
    ("female_headed", "true when the head is a woman"),
    ("land_ha", "farm land, hectares"),
    ("tlu", "livestock, tropical livestock units"),
    ("assets_count", "goods owned"),
    ("persons_per_room", "members per sleeping room"),
];

/// Names about one person: usable in person-target rules and inside member functions.
pub const PERSON_NAMES: &[(&str, &str)] = &[
    ("age", "completed years"),
    ("age_months", "completed months"),
    ("sex", "\"F\" or \"M\""),
    (
        "role",
        "\"head\", \"spouse\", \"child\", \"other_relative\" or \"non_relative\"",
    ),
    ("pregnant", "currently pregnant"),
    ("disabled", "any reported difficulty"),
    ("severely_disabled", "a lot of difficulty or more"),
    ("can_work", "able to do physical work"),
    ("chronic_illness", "has a chronic illness"),
    ("in_school", "attends school"),
    ("is_head", "is the household head"),
];

const FUNCTIONS: &[(&str, &str)] = &[
    ("has_child_under_months", "has_child_under_months(number)"),
    ("enrolled", "enrolled(\"programme code\")"),
    ("any_member", "any_member(condition on a member)"),
    ("all_members", "all_members(condition on a member)"),
    ("count_members", "count_members(condition on a member)"),
    ("answer", "answer(\"household question key\")"),
    ("member_answer", "member_answer(\"member question key\")"),
];

fn resolve(name: &str) -> Option<(Var, bool)> {
    use {BoolVar as B, NumVar as N, TextVar as T, Var::*};
    let household = match name {
        "score" => Num(N::Score),
        "category" => Text(T::Category),
        "area" => Text(T::Area),
        "size" => Num(N::Size),
        "dependency_ratio" => Num(N::DependencyRatio),
        "under_5" => Num(N::Under5),
        "under_15" => Num(N::Under15),
        "working_age" => Num(N::WorkingAge),
        "elderly" => Num(N::Elderly),
        "pregnant_women" => Num(N::PregnantWomen),
        "disabled_members" => Num(N::DisabledMembers),
        "severely_disabled_members" => Num(N::SeverelyDisabledMembers),
        "chronically_ill_members" => Num(N::ChronicallyIllMembers),
        "labour_capacity" => Num(N::LabourCapacity),
        "head_age" => Num(N::HeadAge),
        "head_sex" => Text(T::HeadSex),
        "female_headed" => Bool(B::FemaleHeaded),
        "land_ha" => Num(N::LandHa),
        "tlu" => Num(N::Tlu),
        "assets_count" => Num(N::AssetsCount),
        "persons_per_room" => Num(N::PersonsPerRoom),
        _ => {
            let person = match name {
                "age" => Num(N::Age),
                "age_months" => Num(N::AgeMonths),
                "sex" => Text(T::Sex),
                "role" => Text(T::Role),
                "pregnant" => Bool(B::Pregnant),
                "disabled" => Bool(B::Disabled),
                "severely_disabled" => Bool(B::SeverelyDisabled),
                "can_work" => Bool(B::CanWork),
                "chronic_illness" => Bool(B::ChronicIllness),
                "in_school" => Bool(B::InSchool),
                "is_head" => Bool(B::IsHead),
                _ => return None,
            };
            return Some((person, true));
        }
    };
    Some((household, false))
}

/// Which answers an `answer` node reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Household,
    Member,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
}

/// Source text of both sides of a comparison, for explanations.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    pub left: Box<str>,
    pub right: Box<str>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum N {
    Const(f64),
    Var(NumVar),
    Neg(Box<N>),
    Bin(Arith, Box<N>, Box<N>),
    Count(Box<B>),
    Answer(Scope, Box<str>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum T {
    Lit(Box<str>),
    Var(TextVar),
    Answer(Scope, Box<str>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum L {
    Lit(Vec<Box<str>>),
    Answer(Scope, Box<str>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum B {
    Const(bool),
    Var(BoolVar),
    Answer(Scope, Box<str>),
    Not(Box<B>),
    And(Vec<B>),
    Or(Vec<B>),
    Num(Cmp, N, N, Labels),
    /// `==` when true, `!=` when false.
    Text(bool, T, T, Labels),
    Bool(bool, Box<B>, Box<B>, Labels),
    /// Negated (`not in`) when the flag is true.
    In(bool, T, L, Labels),
    StartsWith(T, T, Labels),
    ChildUnder(N),
    Enrolled(T),
    AnyMember(Box<B>, Box<str>),
    AllMembers(Box<B>, Box<str>),
}

enum Typed {
    Num(N),
    Text(T),
    Bool(B),
    List(L),
}

impl Typed {
    fn name(&self) -> &'static str {
        match self {
            Typed::Num(_) => "a number",
            Typed::Text(_) => "text",
            Typed::Bool(_) => "a condition (true or false)",
            Typed::List(_) => "a list of text",
        }
    }
}

struct Cx<'s> {
    src: &'s str,
    form: &'s FormSchema,
    person_in_scope: bool,
}

pub fn compile_rule(e: &Expr, src: &str, target: Target, form: &FormSchema) -> Result<B, Located> {
    let cx = Cx {
        src,
        form,
        person_in_scope: target == Target::Person,
    };
    match compile(e, &cx)? {
        Typed::Bool(b) => Ok(b),
        other => Err(Located::new(
            e.span,
            format!(
                "a rule must be a condition (true or false), but this is {}",
                other.name()
            ),
        )),
    }
}

fn label(cx: &Cx<'_>, span: Span) -> Box<str> {
    cx.src.get(span.start..span.end).unwrap_or("").into()
}

fn compile(e: &Expr, cx: &Cx<'_>) -> Result<Typed, Located> {
    Ok(match &e.kind {
        ExprKind::Num(n) => Typed::Num(N::Const(*n)),
        ExprKind::Str(s) => Typed::Text(T::Lit(s.as_str().into())),
        ExprKind::Bool(b) => Typed::Bool(B::Const(*b)),
        ExprKind::Ident(name) => ident(name, e.span, cx)?,
        ExprKind::List(items) => Typed::List(L::Lit(
            items
                .iter()
                .map(|i| match &i.kind {
                    ExprKind::Str(s) => Ok(s.as_str().into()),
                    _ => Err(Located::new(
                        i.span,
                        "lists may hold only quoted text, e.g. [\"1\", \"2\"]".into(),
                    )),
                })
                .collect::<Result<_, _>>()?,
        )),
        ExprKind::Neg(inner) => Typed::Num(N::Neg(Box::new(number(inner, cx)?))),
        ExprKind::Not(inner) => Typed::Bool(B::Not(Box::new(condition(inner, cx)?))),
        ExprKind::Binary(op, l, r) => binary(*op, l, r, cx)?,
        ExprKind::Call {
            name,
            name_span,
            args,
        } => call(name, *name_span, args, e.span, cx)?,
    })
}

fn expect_type(e: &Expr, cx: &Cx<'_>, want: &str) -> Result<Typed, Located> {
    let t = compile(e, cx)?;
    let ok = matches!(
        (&t, want),
        (Typed::Num(_), "a number")
            | (Typed::Bool(_), "a condition (true or false)")
            | (Typed::Text(_), "text")
    );
    if ok {
        Ok(t)
    } else {
        Err(Located::new(
            e.span,
            format!("expected {want} here, found {}", t.name()),
        ))
    }
}

fn number(e: &Expr, cx: &Cx<'_>) -> Result<N, Located> {
    match expect_type(e, cx, "a number")? {
        Typed::Num(n) => Ok(n),
        _ => Err(Located::new(e.span, "expected a number".into())),
    }
}

fn condition(e: &Expr, cx: &Cx<'_>) -> Result<B, Located> {
    match expect_type(e, cx, "a condition (true or false)")? {
        Typed::Bool(b) => Ok(b),
        _ => Err(Located::new(e.span, "expected a condition".into())),
    }
}

fn text(e: &Expr, cx: &Cx<'_>) -> Result<T, Located> {
    match expect_type(e, cx, "text")? {
        Typed::Text(t) => Ok(t),
        _ => Err(Located::new(e.span, "expected text".into())),
    }
}

fn ident(name: &str, span: Span, cx: &Cx<'_>) -> Result<Typed, Located> {
    let Some((var, about_person)) = resolve(name) else {
        return Err(Located::new(span, unknown_name(name)));
    };
    if about_person && !cx.person_in_scope {
        return Err(Located::new(
            span,
            format!(
                "'{name}' is a fact about one member: use it inside any_member(…), all_members(…) \
                 or count_members(…), or in a rule for individuals"
            ),
        ));
    }
    Ok(match var {
        Var::Num(v) => Typed::Num(N::Var(v)),
        Var::Text(v) => Typed::Text(T::Var(v)),
        Var::Bool(v) => Typed::Bool(B::Var(v)),
    })
}

fn unknown_name(name: &str) -> String {
    let known = HOUSEHOLD_NAMES
        .iter()
        .chain(PERSON_NAMES)
        .chain(FUNCTIONS)
        .map(|(n, _)| *n);
    match known
        .min_by_key(|k| edit_distance(k, name))
        .filter(|k| edit_distance(k, name) <= 2)
    {
        Some(k) => format!("unknown name '{name}'; did you mean '{k}'?"),
        None => format!("unknown name '{name}'"),
    }
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diag = above;
        }
    }
    row[b.len()]
}

fn binary(op: BinOp, l: &Expr, r: &Expr, cx: &Cx<'_>) -> Result<Typed, Located> {
    let labels = || Labels {
        left: label(cx, l.span),
        right: label(cx, r.span),
    };
    Ok(match op {
        BinOp::And | BinOp::Or => {
            let (a, b) = (condition(l, cx)?, condition(r, cx)?);
            Typed::Bool(flatten(op == BinOp::And, a, b))
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
            let arith = match op {
                BinOp::Add => Arith::Add,
                BinOp::Sub => Arith::Sub,
                BinOp::Mul => Arith::Mul,
                _ => Arith::Div,
            };
            Typed::Num(N::Bin(
                arith,
                Box::new(number(l, cx)?),
                Box::new(number(r, cx)?),
            ))
        }
        BinOp::In | BinOp::NotIn => {
            let item = text(l, cx)?;
            let Typed::List(list) = compile(r, cx)? else {
                return Err(Located::new(
                    r.span,
                    format!(
                        "'{}' needs a list on the right, e.g. [\"1\", \"2\"]",
                        op.symbol()
                    ),
                ));
            };
            Typed::Bool(B::In(op == BinOp::NotIn, item, list, labels()))
        }
        BinOp::StartsWith => Typed::Bool(B::StartsWith(text(l, cx)?, text(r, cx)?, labels())),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Eq | BinOp::Ne => {
            comparison(op, l, r, cx, labels())?
        }
    })
}

fn flatten(is_and: bool, a: B, b: B) -> B {
    let mut items = Vec::new();
    for x in [a, b] {
        match x {
            B::And(inner) if is_and => items.extend(inner),
            B::Or(inner) if !is_and => items.extend(inner),
            other => items.push(other),
        }
    }
    if is_and {
        B::And(items)
    } else {
        B::Or(items)
    }
}

fn comparison(
    op: BinOp,
    l: &Expr,
    r: &Expr,
    cx: &Cx<'_>,
    labels: Labels,
) -> Result<Typed, Located> {
    let cmp = match op {
        BinOp::Lt => Cmp::Lt,
        BinOp::Le => Cmp::Le,
        BinOp::Gt => Cmp::Gt,
        BinOp::Ge => Cmp::Ge,
        BinOp::Eq => Cmp::Eq,
        _ => Cmp::Ne,
    };
    let equality = matches!(cmp, Cmp::Eq | Cmp::Ne);
    Ok(Typed::Bool(match (compile(l, cx)?, compile(r, cx)?) {
        (Typed::Num(a), Typed::Num(b)) => B::Num(cmp, a, b, labels),
        (Typed::Text(a), Typed::Text(b)) if equality => {
            check_choice(&a, &b, r.span, cx)?;
            check_choice(&b, &a, l.span, cx)?;
            B::Text(cmp == Cmp::Eq, a, b, labels)
        }
        (Typed::Bool(a), Typed::Bool(b)) if equality => {
            B::Bool(cmp == Cmp::Eq, Box::new(a), Box::new(b), labels)
        }
        (Typed::Text(_), Typed::Text(_)) | (Typed::Bool(_), Typed::Bool(_)) => {
            return Err(Located::new(
                l.span.to(r.span),
                format!(
                    "'{}' compares numbers; text and conditions take only == and !=",
                    op.symbol()
                ),
            ))
        }
        (a, b) => {
            return Err(Located::new(
                l.span.to(r.span),
                format!("cannot compare {} with {}", a.name(), b.name()),
            ))
        }
    }))
}

fn call(
    name: &str,
    name_span: Span,
    args: &[Expr],
    span: Span,
    cx: &Cx<'_>,
) -> Result<Typed, Located> {
    let Some((_, usage)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
        let msg = if resolve(name).is_some() {
            format!("'{name}' is a fact, not a function: remove the brackets")
        } else {
            unknown_name(name)
        };
        return Err(Located::new(name_span, msg));
    };
    let [arg] = args else {
        return Err(Located::new(
            span,
            format!(
                "{name} takes 1 argument, {} given: write {usage}",
                args.len()
            ),
        ));
    };
    let in_person = Cx {
        src: cx.src,
        form: cx.form,
        person_in_scope: true,
    };
    Ok(match name {
        "has_child_under_months" => Typed::Bool(B::ChildUnder(number(arg, cx)?)),
        "enrolled" => Typed::Bool(B::Enrolled(text(arg, cx)?)),
        "any_member" => Typed::Bool(B::AnyMember(
            Box::new(condition(arg, &in_person)?),
            label(cx, arg.span),
        )),
        "all_members" => Typed::Bool(B::AllMembers(
            Box::new(condition(arg, &in_person)?),
            label(cx, arg.span),
        )),
        "count_members" => Typed::Num(N::Count(Box::new(condition(arg, &in_person)?))),
        "member_answer" if !cx.person_in_scope => {
            return Err(Located::new(
                name_span,
                "member_answer(…) reads one member's answers: use it inside any_member(…), \
                 all_members(…) or count_members(…), or in a rule for individuals"
                    .into(),
            ))
        }
        "member_answer" => answer(arg, Scope::Member, cx)?,
        _ => answer(arg, Scope::Household, cx)?,
    })
}

fn answer(arg: &Expr, scope: Scope, cx: &Cx<'_>) -> Result<Typed, Located> {
    let ExprKind::Str(key) = &arg.kind else {
        return Err(Located::new(
            arg.span,
            "the question key must be quoted text, e.g. \"roof\"".into(),
        ));
    };
    let section = match scope {
        Scope::Household => Section::Household,
        Scope::Member => Section::Member,
    };
    let Some(q) = cx.form.questions(section).iter().find(|q| &q.key == key) else {
        return Err(Located::new(
            arg.span,
            format!(
                "form {} v{} has no {section} question '{key}'",
                cx.form.id, cx.form.version
            ),
        ));
    };
    let key: Box<str> = key.as_str().into();
    Ok(match q.kind {
        QuestionKind::Boolean => Typed::Bool(B::Answer(scope, key)),
        QuestionKind::Integer { .. } | QuestionKind::Decimal { .. } => {
            Typed::Num(N::Answer(scope, key))
        }
        QuestionKind::MultiChoice { .. } => Typed::List(L::Answer(scope, key)),
        QuestionKind::Text { .. } | QuestionKind::Choice { .. } | QuestionKind::Date => {
            Typed::Text(T::Answer(scope, key))
        }
    })
}

/// `answer("roof") == "marble"` can never hold: refuse a literal that is not a choice of the
/// question it is compared with.
fn check_choice(answer: &T, literal: &T, literal_span: Span, cx: &Cx<'_>) -> Result<(), Located> {
    let (T::Answer(scope, key), T::Lit(value)) = (answer, literal) else {
        return Ok(());
    };
    let section = match scope {
        Scope::Household => Section::Household,
        Scope::Member => Section::Member,
    };
    let choices = cx
        .form
        .questions(section)
        .iter()
        .find(|q| *q.key == **key)
        .and_then(|q| match &q.kind {
            QuestionKind::Choice { choices } => Some(choices),
            _ => None,
        });
    match choices {
        Some(choices) if !choices.iter().any(|c| **c == **value) => Err(Located::new(
            literal_span,
            format!(
                "'{value}' is not a choice of '{key}': expected one of {}",
                choices.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}
