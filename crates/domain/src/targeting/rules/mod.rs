//! Eligibility rules: a small, safe expression language over household and person facts.
//!
//! ```text
//! score < 40 and has_child_under_months(24)
//! category in ["1", "2"] and not enrolled("vup_ds")
//! size >= 5 or (disabled_members > 0 and labour_capacity == 0)
//! area startswith "11"
//! count_members(sex == "F" and age >= 15 and age <= 49) > 0
//! "radio" not in answer("assets")
//! ```
//!
//! A rule is lexed, parsed, then type-checked and compiled in one pass into a typed tree whose
//! names are already resolved to fields, so evaluation does no lookup by name, no type dispatch
//! and no allocation (answers are read from the facts by key). The same tree is walked a second
//! way to explain a decision. Errors carry the line, column and a caret excerpt.
//!
//! Values are numbers, true/false, text, and lists of text. A number that is not known (an age
//! without a birth date, a missing score) makes every comparison involving it false.

mod check;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::Serialize;

use crate::registry::form::FormSchema;
use crate::targeting::facts::{HouseholdFacts, PersonFacts};
use lexer::Span;

pub use check::{HOUSEHOLD_NAMES, PERSON_NAMES};
pub use eval::{Decision, Leaf};

/// Longest rule accepted, in characters.
pub const MAX_RULE_CHARS: usize = 2000;
/// Most tokens in a rule: bounds the size (and so the depth) of every tree built from it.
pub const MAX_TOKENS: usize = 400;
/// Deepest nesting of brackets, calls and prefix operators the parser follows.
pub const MAX_DEPTH: usize = 64;

/// What a rule decides about: a whole household, or one person in it (individual-target
/// programmes such as nutrition support for pregnant women).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Household,
    Person,
}

/// An error at a place in the source, before line and column are worked out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located {
    span: Span,
    message: String,
}

impl Located {
    fn new(span: Span, message: String) -> Located {
        Located { span, message }
    }
}

/// Why a rule was refused, with where: 1-based line and column (in characters) and the line
/// with a caret under the offending part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("line {line}, column {column}: {message}\n{excerpt}")]
pub struct RuleError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub excerpt: String,
}

impl RuleError {
    fn at(src: &str, located: Located) -> RuleError {
        let start = floor_char_boundary(src, located.span.start.min(src.len()));
        let end = floor_char_boundary(src, located.span.end.clamp(start, src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line = src[..start].matches('\n').count() + 1;
        let column = src[line_start..start].chars().count() + 1;
        let marked = src[start..end.min(line_end)].chars().count().max(1);
        let pad: String = src[line_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        RuleError {
            line,
            column,
            message: located.message,
            excerpt: format!(
                "  {}\n  {pad}{}",
                &src[line_start..line_end],
                "^".repeat(marked)
            ),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Everything a rule reads about its subject. For a person-target rule, `person` is the
/// person being decided on and must be one of `household.members`.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub household: &'a HouseholdFacts,
    pub person: Option<&'a PersonFacts>,
    /// The household's current score and category, when scored.
    pub score: Option<f64>,
    pub category: Option<&'a str>,
    /// Codes of the programmes the subject is enrolled in.
    pub enrolments: &'a [String],
}

impl<'a> Subject<'a> {
    pub fn household(household: &'a HouseholdFacts) -> Subject<'a> {
        Subject {
            household,
            person: None,
            score: None,
            category: None,
            enrolments: &[],
        }
    }
}

/// A checked, compiled rule. Cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Rule {
    source: String,
    target: Target,
    root: check::B,
}

impl Rule {
    /// Checks a rule against the shipped questionnaire (for `answer(...)`).
    pub fn compile(source: &str, target: Target) -> Result<Rule, RuleError> {
        Self::compile_for_form(source, target, &FormSchema::default_form())
    }

    /// Parses and type-checks `source`; `form` types the answers a rule may read.
    pub fn compile_for_form(
        source: &str,
        target: Target,
        form: &FormSchema,
    ) -> Result<Rule, RuleError> {
        let err = |l: Located| RuleError::at(source, l);
        if let Some((at, _)) = source.char_indices().nth(MAX_RULE_CHARS) {
            return Err(err(Located::new(
                Span {
                    start: at,
                    end: at + 1,
                },
                format!("the rule is longer than {MAX_RULE_CHARS} characters"),
            )));
        }
        let tokens = lexer::lex(source).map_err(err)?;
        if let Some(t) = tokens.get(MAX_TOKENS) {
            return Err(err(Located::new(
                t.span,
                format!("the rule has more than {MAX_TOKENS} words and symbols"),
            )));
        }
        let ast = parser::parse(&tokens).map_err(err)?;
        let root = check::compile_rule(&ast, source, target, form).map_err(err)?;
        Ok(Rule {
            source: source.to_string(),
            target,
            root,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn target(&self) -> Target {
        self.target
    }

    /// Decides quickly, without explanation.
    pub fn evaluate(&self, subject: &Subject<'_>) -> bool {
        eval::bool_of(&self.root, subject)
    }

    /// Decides and records which conditions held, with the values they saw.
    pub fn explain(&self, subject: &Subject<'_>) -> Decision {
        let mut leaves = Vec::new();
        let eligible = eval::explain(&self.root, subject, &mut leaves);
        Decision { eligible, leaves }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}
