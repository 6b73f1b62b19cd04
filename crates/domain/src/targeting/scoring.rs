//! Proxy-means-test scoring: a versioned, data-driven model turns a household's facts into a
//! score from 0 (poorest) to 100 and a named category, with each factor's contribution kept
//! so that every score can be explained and audited.
//!
//! A model is an intercept plus weighted terms. Terms on questionnaire answers weigh a choice
//! value, a yes/no, each good of a multiple choice, or a number (optionally capped and
//! log-transformed); terms on derived indicators weigh facts such as household size or livestock
//! units. Per-area overrides replace the intercept or individual terms for areas whose NISR code
//! starts with a prefix (the most specific prefix wins).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::facts::HouseholdFacts;
use crate::registry::form::{FormSchema, QuestionKind, Section};

/// The illustrative model shipped with Inkingi.
pub const DEFAULT_MODEL_JSON: &str = include_str!("../../../../data/targeting/pmt-default.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringModel {
    /// Stable name, e.g. `pmt-default`.
    pub id: String,
    /// Raised for every published change; each score records the version that produced it.
    pub version: u32,
    #[serde(default)]
    pub description: String,
    /// True for models whose weights are not an official calibration.
    #[serde(default)]
    pub illustrative: bool,
    pub intercept: f64,
    /// Terms on household answers, by question key.
    #[serde(default)]
    pub answers: BTreeMap<String, AnswerTerm>,
    /// Terms on derived indicators.
    #[serde(default)]
    pub indicators: BTreeMap<Indicator, NumericTerm>,
    #[serde(default)]
    pub overrides: Vec<AreaOverride>,
    /// Score bands from the lowest up; every band but the last has an upper bound `below`.
    pub categories: Vec<Category>,
}

/// How an answer contributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnswerTerm {
    /// Points per choice value; a value without a weight adds nothing.
    Choice {
        weights: BTreeMap<String, f64>,
    },
    /// Points per chosen item of a multiple choice.
    MultiChoice {
        weights: BTreeMap<String, f64>,
    },
    Boolean {
        #[serde(default)]
        if_true: f64,
        #[serde(default)]
        if_false: f64,
    },
    Numeric(NumericTerm),
}

/// `weight × transform(clamp(x, floor, cap))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericTerm {
    pub weight: f64,
    #[serde(default)]
    pub transform: Transform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    #[default]
    Linear,
    /// ln(1 + x): diminishing returns for income, land and livestock.
    Log1p,
    Sqrt,
}

/// Indicators derived from the household's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    Size,
    DependencyRatio,
    #[serde(rename = "under_5")]
    Under5,
    Elderly,
    DisabledMembers,
    SeverelyDisabledMembers,
    ChronicallyIllMembers,
    LabourCapacity,
    /// 1 for a female head, 0 otherwise.
    FemaleHead,
    LandHa,
    /// Tropical livestock units.
    Tlu,
    AssetsCount,
    PersonsPerRoom,
}

impl Indicator {
    pub fn value(self, f: &HouseholdFacts) -> f64 {
        use Indicator::*;
        match self {
            Size => f64::from(f.size),
            DependencyRatio => f.dependency_ratio,
            Under5 => f64::from(f.under_5),
            Elderly => f64::from(f.elderly),
            DisabledMembers => f64::from(f.disabled_members),
            SeverelyDisabledMembers => f64::from(f.severely_disabled_members),
            ChronicallyIllMembers => f64::from(f.chronically_ill_members),
            LabourCapacity => f64::from(f.labour_capacity),
            FemaleHead => f64::from(u8::from(
                f.head_sex == Some(crate::registry::person::Sex::Female),
            )),
            LandHa => f.land_ha,
            Tlu => f.tlu,
            AssetsCount => f64::from(f.assets_count),
            PersonsPerRoom => f.persons_per_room,
        }
    }

    /// The indicator's key in model files.
    pub fn name(self) -> &'static str {
        use Indicator::*;
        match self {
            Size => "size",
            DependencyRatio => "dependency_ratio",
            Under5 => "under_5",
            Elderly => "elderly",
            DisabledMembers => "disabled_members",
            SeverelyDisabledMembers => "severely_disabled_members",
            ChronicallyIllMembers => "chronically_ill_members",
            LabourCapacity => "labour_capacity",
            FemaleHead => "female_head",
            LandHa => "land_ha",
            Tlu => "tlu",
            AssetsCount => "assets_count",
            PersonsPerRoom => "persons_per_room",
        }
    }
}

/// Replacements for areas whose code starts with `area_prefix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaOverride {
    pub area_prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intercept: Option<f64>,
    #[serde(default)]
    pub answers: BTreeMap<String, AnswerTerm>,
    #[serde(default)]
    pub indicators: BTreeMap<Indicator, NumericTerm>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Short code used in rules, e.g. `"1"`.
    pub name: String,
    #[serde(default)]
    pub label: String,
    /// Scores strictly below this fall in this band (absent on the last band).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
}

/// One factor's share of a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// What was weighed, e.g. `roof = iron_sheets` or `tlu 0.9 (log1p)`.
    pub factor: String,
    pub contribution: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Clamped to 0–100.
    pub value: f64,
    /// Intercept plus contributions, before clamping.
    pub raw: f64,
    pub category: String,
    pub model_id: String,
    pub model_version: u32,
    pub intercept: f64,
    pub contributions: Vec<Contribution>,
}

/// Why a model was refused: the field (a path such as `answers.roof.weights`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scoring model, {field}: {reason}")]
pub struct InvalidModel {
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> InvalidModel {
    InvalidModel {
        field: field.into(),
        reason: reason.into(),
    }
}

impl ScoringModel {
    pub fn default_model() -> ScoringModel {
        // Checked by a unit test; a failure here is a build mistake.
        Self::from_json(DEFAULT_MODEL_JSON).unwrap_or_else(|e| panic!("shipped model: {e}"))
    }

    /// Parses and checks a model; unknown fields are refused.
    pub fn from_json(text: &str) -> Result<ScoringModel, InvalidModel> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let model: ScoringModel = serde_path_to_error::deserialize(de)
            .map_err(|e| invalid(path_or_root(e.path()), e.inner().to_string()))?;
        model.check()?;
        Ok(model)
    }

    pub fn from_toml(text: &str) -> Result<ScoringModel, InvalidModel> {
        let de = toml::Deserializer::new(text);
        let model: ScoringModel = serde_path_to_error::deserialize(de)
            .map_err(|e| invalid(path_or_root(e.path()), e.inner().message().to_string()))?;
        model.check()?;
        Ok(model)
    }

    /// The model's own consistency: identity, finite weights, sound transforms and bands.
    pub fn check(&self) -> Result<(), InvalidModel> {
        if self.id.trim().is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        if self.version == 0 {
            return Err(invalid("version", "must be at least 1"));
        }
        finite("intercept", self.intercept)?;
        check_terms("", &self.answers, &self.indicators)?;
        let mut prefixes = BTreeSet::new();
        for (i, o) in self.overrides.iter().enumerate() {
            let at = format!("overrides[{i}]");
            let p = &o.area_prefix;
            if p.is_empty() || p.len() > 8 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    format!("{at}.area_prefix"),
                    "must be 1 to 8 digits",
                ));
            }
            if !prefixes.insert(p) {
                return Err(invalid(
                    format!("{at}.area_prefix"),
                    format!("'{p}' is used twice"),
                ));
            }
            if let Some(v) = o.intercept {
                finite(&format!("{at}.intercept"), v)?;
            }
            check_terms(&format!("{at}."), &o.answers, &o.indicators)?;
        }
        check_categories(&self.categories)
    }

    /// Checks that every answer term refers to a household question of `form` of a matching
    /// type, and every weighted choice is one of its choices.
    pub fn check_against_form(&self, form: &FormSchema) -> Result<(), InvalidModel> {
        let all = std::iter::once(("".to_string(), &self.answers)).chain(
            self.overrides
                .iter()
                .enumerate()
                .map(|(i, o)| (format!("overrides[{i}]."), &o.answers)),
        );
        for (prefix, terms) in all {
            for (key, term) in terms {
                let at = format!("{prefix}answers.{key}");
                let q = form
                    .questions(Section::Household)
                    .iter()
                    .find(|q| &q.key == key)
                    .ok_or_else(|| {
                        invalid(
                            &at,
                            format!(
                                "no household question '{key}' in form {} v{}",
                                form.id, form.version
                            ),
                        )
                    })?;
                check_term_fits(&at, term, &q.kind)?;
            }
        }
        Ok(())
    }

    /// Scores a household. The contributions and the intercept add up to `raw`.
    pub fn score(&self, facts: &HouseholdFacts) -> Score {
        let mut contributions = Vec::with_capacity(self.answers.len() + self.indicators.len());
        let intercept = self.weigh(facts, &mut contributions);
        let raw = intercept + contributions.iter().map(|c| c.contribution).sum::<f64>();
        let value = clamp(raw);
        Score {
            value,
            raw,
            category: self.category_of(value).to_string(),
            model_id: self.id.clone(),
            model_version: self.version,
            intercept,
            contributions,
        }
    }

    /// The household's (clamped) score and category without the explanation, for passes that
    /// only count: the same numbers as [`ScoringModel::score`], summed in the same order, but
    /// no factor is described.
    pub fn value(&self, facts: &HouseholdFacts) -> (f64, &str) {
        let mut parts = Values(Vec::with_capacity(
            self.answers.len() + self.indicators.len(),
        ));
        let intercept = self.weigh(facts, &mut parts);
        let raw = intercept + parts.0.iter().copied().sum::<f64>();
        let value = clamp(raw);
        (value, self.category_of(value))
    }

    /// Pushes every factor's contribution to `out` (answers by key, then indicators, each in
    /// order); returns the intercept.
    fn weigh<S: Sink>(&self, facts: &HouseholdFacts, out: &mut S) -> f64 {
        let area = facts.area.as_str();
        let overrides = self.matching_overrides(area);
        let intercept = overrides
            .iter()
            .find_map(|o| o.intercept)
            .unwrap_or(self.intercept);
        if overrides.is_empty() {
            // The base model's own keys, already in order: no union to build.
            for (key, term) in &self.answers {
                answer_contributions(key, term, facts.answers.get(key), out);
            }
            for (ind, term) in &self.indicators {
                let x = ind.value(facts);
                out.push(
                    || format!("{} {}", ind.name(), trim_number(x)),
                    term.apply(x),
                );
            }
            return intercept;
        }
        // An override may weigh a factor the base model leaves out, so walk the union of keys.
        let answer_keys: BTreeSet<&String> = self
            .answers
            .keys()
            .chain(overrides.iter().flat_map(|o| o.answers.keys()))
            .collect();
        for key in answer_keys {
            let term = overrides
                .iter()
                .find_map(|o| o.answers.get(key))
                .or_else(|| self.answers.get(key));
            if let Some(term) = term {
                answer_contributions(key, term, facts.answers.get(key), out);
            }
        }
        let indicators: BTreeSet<Indicator> = self
            .indicators
            .keys()
            .chain(overrides.iter().flat_map(|o| o.indicators.keys()))
            .copied()
            .collect();
        for ind in indicators {
            let term = overrides
                .iter()
                .find_map(|o| o.indicators.get(&ind))
                .or_else(|| self.indicators.get(&ind));
            if let Some(term) = term {
                let x = ind.value(facts);
                out.push(
                    || format!("{} {}", ind.name(), trim_number(x)),
                    term.apply(x),
                );
            }
        }
        intercept
    }

    /// The band a (clamped) score falls in.
    pub fn category_of(&self, value: f64) -> &str {
        self.categories
            .iter()
            .find(|c| c.below.is_none_or(|b| value < b))
            .map(|c| c.name.as_str())
            .unwrap_or_default()
    }

    /// Overrides whose prefix matches `area`, most specific first.
    fn matching_overrides(&self, area: &str) -> Vec<&AreaOverride> {
        let mut found: Vec<&AreaOverride> = self
            .overrides
            .iter()
            .filter(|o| area.starts_with(&o.area_prefix))
            .collect();
        found.sort_by_key(|o| std::cmp::Reverse(o.area_prefix.len()));
        found
    }
}

impl NumericTerm {
    pub fn apply(&self, x: f64) -> f64 {
        let mut v = x;
        if let Some(f) = self.floor {
            v = v.max(f);
        }
        if let Some(c) = self.cap {
            v = v.min(c);
        }
        let t = match self.transform {
            Transform::Linear => v,
            Transform::Log1p => v.max(0.0).ln_1p(),
            Transform::Sqrt => v.max(0.0).sqrt(),
        };
        self.weight * t
    }
}

/// Where factor contributions go: described ([`Contribution`]) or only counted.
trait Sink {
    fn push(&mut self, factor: impl FnOnce() -> String, contribution: f64);
}

impl Sink for Vec<Contribution> {
    fn push(&mut self, factor: impl FnOnce() -> String, contribution: f64) {
        Vec::push(
            self,
            Contribution {
                factor: factor(),
                contribution,
            },
        );
    }
}

/// Contributions without their descriptions.
struct Values(Vec<f64>);

impl Sink for Values {
    fn push(&mut self, _factor: impl FnOnce() -> String, contribution: f64) {
        self.0.push(contribution);
    }
}

/// Clamps a raw score to 0–100 (a NaN raw score counts as 0).
fn clamp(raw: f64) -> f64 {
    if raw.is_nan() {
        0.0
    } else {
        raw.clamp(0.0, 100.0)
    }
}

fn answer_contributions<S: Sink>(
    key: &str,
    term: &AnswerTerm,
    answer: Option<&Value>,
    out: &mut S,
) {
    match (term, answer) {
        (AnswerTerm::Choice { weights }, Some(Value::String(s))) => {
            out.push(
                || format!("{key} = {s}"),
                weights.get(s).copied().unwrap_or(0.0),
            );
        }
        (AnswerTerm::MultiChoice { weights }, Some(Value::Array(items))) => {
            let mut chosen: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            chosen.sort_unstable();
            chosen.dedup();
            for s in chosen {
                if let Some(w) = weights.get(s) {
                    out.push(|| format!("{key} includes {s}"), *w);
                }
            }
        }
        (AnswerTerm::Boolean { if_true, if_false }, Some(Value::Bool(b))) => {
            out.push(
                || format!("{key} = {}", if *b { "yes" } else { "no" }),
                if *b { *if_true } else { *if_false },
            );
        }
        (AnswerTerm::Numeric(n), Some(Value::Number(x))) => {
            if let Some(x) = x.as_f64() {
                out.push(|| format!("{key} {}", trim_number(x)), n.apply(x));
            }
        }
        // Unanswered (or mistyped) answers add nothing: the form validates answers on write.
        _ => {}
    }
}

fn trim_number(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn path_or_root(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." || s.is_empty() {
        "(model)".into()
    } else {
        s
    }
}

fn finite(field: &str, v: f64) -> Result<(), InvalidModel> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(invalid(field, "must be a finite number"))
    }
}

fn check_terms(
    prefix: &str,
    answers: &BTreeMap<String, AnswerTerm>,
    indicators: &BTreeMap<Indicator, NumericTerm>,
) -> Result<(), InvalidModel> {
    for (key, term) in answers {
        let at = format!("{prefix}answers.{key}");
        match term {
            AnswerTerm::Choice { weights } | AnswerTerm::MultiChoice { weights } => {
                for (choice, w) in weights {
                    finite(&format!("{at}.weights.{choice}"), *w)?;
                }
            }
            AnswerTerm::Boolean { if_true, if_false } => {
                finite(&format!("{at}.if_true"), *if_true)?;
                finite(&format!("{at}.if_false"), *if_false)?;
            }
            AnswerTerm::Numeric(n) => check_numeric(&at, n)?,
        }
    }
    for (ind, term) in indicators {
        check_numeric(&format!("{prefix}indicators.{}", ind.name()), term)?;
    }
    Ok(())
}

fn check_numeric(at: &str, n: &NumericTerm) -> Result<(), InvalidModel> {
    finite(&format!("{at}.weight"), n.weight)?;
    for (name, v) in [("floor", n.floor), ("cap", n.cap)] {
        if let Some(v) = v {
            finite(&format!("{at}.{name}"), v)?;
        }
    }
    if let (Some(f), Some(c)) = (n.floor, n.cap) {
        if f > c {
            return Err(invalid(
                format!("{at}.floor"),
                format!("{f} is above the cap {c}"),
            ));
        }
    }
    if n.transform != Transform::Linear && n.floor.is_some_and(|f| f < 0.0) {
        return Err(invalid(
            format!("{at}.floor"),
            "log1p and sqrt need a floor of at least 0",
        ));
    }
    Ok(())
}

fn check_categories(categories: &[Category]) -> Result<(), InvalidModel> {
    if !(2..=10).contains(&categories.len()) {
        return Err(invalid("categories", "needs 2 to 10 bands"));
    }
    let mut names = BTreeSet::new();
    let mut previous = 0.0;
    let last = categories.len() - 1;
    for (i, c) in categories.iter().enumerate() {
        let at = format!("categories[{i}]");
        if c.name.trim().is_empty() || c.name.len() > 20 {
            return Err(invalid(format!("{at}.name"), "must be 1 to 20 characters"));
        }
        if !names.insert(c.name.as_str()) {
            return Err(invalid(
                format!("{at}.name"),
                format!("'{}' is used twice", c.name),
            ));
        }
        match (c.below, i == last) {
            (Some(_), true) => {
                return Err(invalid(
                    format!("{at}.below"),
                    "the last band takes every score above the others and has no bound",
                ))
            }
            (None, false) => {
                return Err(invalid(
                    format!("{at}.below"),
                    "is required on every band but the last",
                ))
            }
            (Some(b), false) if !(b > previous && b <= 100.0) => {
                return Err(invalid(
                    format!("{at}.below"),
                    format!("{b} must be above the previous bound ({previous}) and at most 100"),
                ))
            }
            (Some(b), false) => previous = b,
            (None, true) => {}
        }
    }
    Ok(())
}

fn check_term_fits(at: &str, term: &AnswerTerm, kind: &QuestionKind) -> Result<(), InvalidModel> {
    let known = |weights: &BTreeMap<String, f64>, choices: &[String]| {
        weights
            .keys()
            .find(|w| !choices.contains(w))
            .map_or(Ok(()), |w| {
                Err(invalid(
                    format!("{at}.weights.{w}"),
                    format!("'{w}' is not a choice of this question"),
                ))
            })
    };
    match (term, kind) {
        (AnswerTerm::Choice { weights }, QuestionKind::Choice { choices }) => {
            known(weights, choices)
        }
        (AnswerTerm::MultiChoice { weights }, QuestionKind::MultiChoice { choices }) => {
            known(weights, choices)
        }
        (AnswerTerm::Boolean { .. }, QuestionKind::Boolean) => Ok(()),
        (AnswerTerm::Numeric(_), QuestionKind::Integer { .. } | QuestionKind::Decimal { .. }) => {
            Ok(())
        }
        _ => Err(invalid(
            format!("{at}.type"),
            "does not fit the question's type",
        )),
    }
}

#[cfg(test)]
mod tests;
