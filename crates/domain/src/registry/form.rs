//! The socio-economic questionnaire as data: a versioned form schema that an administrator can
//! extend without code, and the validation of answers against it on every write and import.
//!
//! A schema has two sections, `household` (dwelling, assets, land, livestock, income) and
//! `member` (education, occupation, disability…). Each question has a key, a type, whether it
//! is required, and optionally a skip condition (`when`) on an earlier question of the same
//! section: a question whose condition does not hold must be left unanswered.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The form shipped with Inkingi, modelled on the questions of Rwanda's household surveys
/// (EICV dwelling and asset modules) and the social registry's questionnaire.
pub const DEFAULT_FORM_JSON: &str = include_str!("../../../../data/forms/rw-socioeconomic.json");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormSchema {
    /// Stable name of the form, e.g. `rw-socioeconomic`.
    pub id: String,
    /// Raised by one for every published change; answers record the version they were given
    /// against.
    pub version: u32,
    pub title: String,
    pub household: Vec<Question>,
    pub member: Vec<Question>,
}

// No `deny_unknown_fields` here: serde cannot combine it with the flattened `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// `snake_case`, unique within the section; the answer's key and the CSV column suffix.
    pub key: String,
    /// Label per language (`en` required; `rw`, `fr` optional).
    pub label: BTreeMap<String, String>,
    #[serde(flatten)]
    pub kind: QuestionKind,
    #[serde(default)]
    pub required: bool,
    /// Asked only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum QuestionKind {
    Boolean,
    Integer {
        min: i64,
        max: i64,
    },
    Decimal {
        min: f64,
        max: f64,
    },
    Text {
        max_len: usize,
    },
    /// One value from `choices`. List choices from the poorest to the richest condition where
    /// that order exists: scoring models and the data generator rely on it.
    Choice {
        choices: Vec<String>,
    },
    /// Any number of values from `choices` (no repeats).
    MultiChoice {
        choices: Vec<String>,
    },
    /// `YYYY-MM-DD`.
    Date,
}

/// A skip condition: the earlier question `question` equals `equals`, or is one of `in`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub any_of: Option<Vec<Value>>,
}

impl Condition {
    fn holds(&self, answers: &Map<String, Value>) -> bool {
        let Some(v) = answers.get(&self.question) else {
            return false;
        };
        if let Some(e) = &self.equals {
            return v == e;
        }
        self.any_of.as_ref().is_some_and(|set| set.contains(v))
    }
}

/// Which part of the form answers belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Household,
    Member,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Household => "household",
            Section::Member => "member",
        })
    }
}

/// One rejected answer: the question's key and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnswerError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Why a schema cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("form schema: {0}")]
pub struct InvalidSchema(pub String);

impl FormSchema {
    pub fn default_form() -> FormSchema {
        // The shipped form is checked by a unit test; a failure here is a build mistake.
        Self::from_json(DEFAULT_FORM_JSON).unwrap_or_else(|e| panic!("shipped form: {e}"))
    }

    /// Parses and checks a schema (as an administrator submits it).
    pub fn from_json(text: &str) -> Result<FormSchema, InvalidSchema> {
        let schema: FormSchema =
            serde_json::from_str(text).map_err(|e| InvalidSchema(e.to_string()))?;
        schema.check()?;
        Ok(schema)
    }

    pub fn questions(&self, section: Section) -> &[Question] {
        match section {
            Section::Household => &self.household,
            Section::Member => &self.member,
        }
    }

    /// The schema's own consistency: keys, ranges, choices, and conditions that refer to an
    /// earlier question with a value that question can take.
    pub fn check(&self) -> Result<(), InvalidSchema> {
        if self.id.is_empty() || self.version == 0 {
            return Err(InvalidSchema(
                "id must be set and version at least 1".into(),
            ));
        }
        for section in [Section::Household, Section::Member] {
            let mut seen: HashSet<&str> = HashSet::new();
            for q in self.questions(section) {
                let at = |m: String| InvalidSchema(format!("{section}.{}: {m}", q.key));
                check_key(&q.key).map_err(at)?;
                if !q.label.contains_key("en") {
                    return Err(at("needs an English label ('en')".into()));
                }
                check_kind(&q.kind).map_err(at)?;
                if let Some(c) = &q.when {
                    if !seen.contains(c.question.as_str()) {
                        return Err(at(format!(
                            "condition refers to '{}', which is not an earlier question",
                            c.question
                        )));
                    }
                    if c.equals.is_none() == c.any_of.is_none() {
                        return Err(at("condition needs exactly one of 'equals' or 'in'".into()));
                    }
                }
                if !seen.insert(&q.key) {
                    return Err(at("key is used twice".into()));
                }
            }
        }
        Ok(())
    }

    /// Validates answers for one section: every answer is to a known question, of the right
    /// type and range, required questions that apply are answered, and skipped questions are
    /// not. Returns every problem, not just the first.
    pub fn validate(&self, section: Section, answers: &Map<String, Value>) -> Vec<AnswerError> {
        let questions = self.questions(section);
        let mut errors = Vec::new();
        for key in answers.keys() {
            if !questions.iter().any(|q| &q.key == key) {
                errors.push(AnswerError {
                    field: key.clone(),
                    reason: format!(
                        "no such question in the {section} section of form {} v{}",
                        self.id, self.version
                    ),
                });
            }
        }
        for q in questions {
            let applies = q.when.as_ref().is_none_or(|c| c.holds(answers));
            let err = |reason: String| AnswerError {
                field: q.key.clone(),
                reason,
            };
            match (answers.get(&q.key), applies) {
                (None | Some(Value::Null), true) if q.required => {
                    errors.push(err("is required".into()))
                }
                (None | Some(Value::Null), _) => {}
                (Some(_), false) => errors.push(err(format!(
                    "must be left empty: it is asked only when {}",
                    describe(q.when.as_ref())
                ))),
                (Some(v), true) => {
                    if let Err(reason) = check_value(&q.kind, v) {
                        errors.push(err(reason));
                    }
                }
            }
        }
        errors
    }

    /// Reads one CSV cell (or form field) as an answer to `question`: empty is no answer;
    /// booleans accept yes/no/true/false/1/0; multiple choices are separated by `;` or `|`.
    pub fn parse_text(question: &Question, text: &str) -> Result<Option<Value>, String> {
        let t = text.trim();
        if t.is_empty() {
            return Ok(None);
        }
        let v = match &question.kind {
            QuestionKind::Boolean => match t.to_ascii_lowercase().as_str() {
                "yes" | "true" | "1" | "y" | "yego" => Value::Bool(true),
                "no" | "false" | "0" | "n" | "oya" => Value::Bool(false),
                _ => return Err(format!("'{}' is not yes or no", clip(t))),
            },
            QuestionKind::Integer { .. } => t
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("'{}' is not a whole number", clip(t)))?,
            QuestionKind::Decimal { .. } => t
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::from)
                .ok_or_else(|| format!("'{}' is not a number", clip(t)))?,
            QuestionKind::MultiChoice { .. } => Value::Array(
                t.split([';', '|'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_string()))
                    .collect(),
            ),
            QuestionKind::Text { .. } | QuestionKind::Choice { .. } | QuestionKind::Date => {
                Value::String(t.to_string())
            }
        };
        check_value(&question.kind, &v)?;
        Ok(Some(v))
    }

    /// The inverse of [`FormSchema::parse_text`], for exports.
    pub fn to_text(value: &Value) -> String {
        match value {
            Value::Null => String::new(),
            Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(Self::to_text)
                .collect::<Vec<_>>()
                .join(";"),
            other => other.to_string(),
        }
    }
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn describe(c: Option<&Condition>) -> String {
    match c {
        None => "always".into(),
        Some(c) => match (&c.equals, &c.any_of) {
            (Some(v), _) => format!("'{}' is {v}", c.question),
            (_, Some(set)) => format!(
                "'{}' is one of {}",
                c.question,
                set.iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => "never".into(),
        },
    }
}

fn check_key(key: &str) -> Result<(), String> {
    let ok = (1..=48).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("key must be 1–48 characters of a–z, 0–9 and '_', starting with a letter".into())
    }
}

fn check_kind(kind: &QuestionKind) -> Result<(), String> {
    match kind {
        QuestionKind::Integer { min, max } if min > max => Err("min is above max".into()),
        QuestionKind::Decimal { min, max }
            if min.partial_cmp(max) != Some(std::cmp::Ordering::Less) && min != max =>
        {
            Err("min is above max".into())
        }
        QuestionKind::Text { max_len } if *max_len == 0 || *max_len > 2000 => {
            Err("max_len must be 1 to 2000".into())
        }
        QuestionKind::Choice { choices } | QuestionKind::MultiChoice { choices } => {
            let unique: HashSet<&String> = choices.iter().collect();
            if choices.is_empty() || unique.len() != choices.len() {
                return Err("choices must be a non-empty list without repeats".into());
            }
            choices
                .iter()
                .try_for_each(|c| check_key(c).map_err(|e| format!("choice '{c}': {e}")))
        }
        _ => Ok(()),
    }
}

fn check_value(kind: &QuestionKind, v: &Value) -> Result<(), String> {
    match (kind, v) {
        (QuestionKind::Boolean, Value::Bool(_)) => Ok(()),
        (QuestionKind::Integer { min, max }, Value::Number(n)) => match n.as_i64() {
            Some(i) if (*min..=*max).contains(&i) => Ok(()),
            Some(i) => Err(format!("{i} is outside {min}..{max}")),
            None => Err(format!("{n} is not a whole number")),
        },
        (QuestionKind::Decimal { min, max }, Value::Number(n)) => match n.as_f64() {
            Some(f) if f >= *min && f <= *max => Ok(()),
            _ => Err(format!("{n} is outside {min}..{max}")),
        },
        (QuestionKind::Text { max_len }, Value::String(s)) => {
            if s.chars().count() > *max_len {
                Err(format!("is longer than {max_len} characters"))
            } else if s.chars().any(|c| c.is_control() && c != '\n') {
                Err("contains a control character".into())
            } else {
                Ok(())
            }
        }
        (QuestionKind::Choice { choices }, Value::String(s)) => one_of(choices, s),
        (QuestionKind::MultiChoice { choices }, Value::Array(items)) => {
            let mut seen = HashSet::new();
            for item in items {
                let s = item.as_str().ok_or("every choice must be text")?;
                one_of(choices, s)?;
                if !seen.insert(s) {
                    return Err(format!("'{}' is given twice", clip(s)));
                }
            }
            Ok(())
        }
        (QuestionKind::Date, Value::String(s)) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(|_| ())
            .map_err(|_| format!("'{}' is not a date (YYYY-MM-DD)", clip(s))),
        (kind, _) => Err(format!("expected {}", kind_name(kind))),
    }
}

fn one_of(choices: &[String], s: &str) -> Result<(), String> {
    if choices.iter().any(|c| c == s) {
        Ok(())
    } else {
        let mut list = choices
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if choices.len() > 12 {
            list.push_str(", …");
        }
        Err(format!("'{}' is not one of: {list}", clip(s)))
    }
}

fn kind_name(kind: &QuestionKind) -> &'static str {
    match kind {
        QuestionKind::Boolean => "true or false",
        QuestionKind::Integer { .. } => "a whole number",
        QuestionKind::Decimal { .. } => "a number",
        QuestionKind::Text { .. } => "text",
        QuestionKind::Choice { .. } => "one choice (text)",
        QuestionKind::MultiChoice { .. } => "a list of choices",
        QuestionKind::Date => "a date (YYYY-MM-DD)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answers(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn the_shipped_form_is_valid() {
        let f = FormSchema::default_form();
        assert_eq!(f.id, "rw-socioeconomic");
        assert!(f.household.len() >= 20 && f.member.len() >= 5);
    }

    #[test]
    fn validates_types_ranges_required_and_skips() {
        let f = FormSchema::default_form();
        let ok = answers(json!({
            "tenure": "owner", "wall": "mud_bricks", "roof": "iron_sheets", "floor": "earth",
            "rooms": 3, "water_source": "public_tap", "toilet": "pit_latrine_slab",
            "lighting": "solar", "cooking_fuel": "firewood", "assets": ["radio", "mobile_phone"],
            "owns_land": true, "land_area_ha": 0.4, "owns_livestock": false,
            "income_sources": ["farming"], "meals_per_day": 2, "hungry_months": 3
        }));
        assert_eq!(f.validate(Section::Household, &ok), vec![]);

        let mut bad = ok.clone();
        bad.insert("rooms".into(), json!(0));
        bad.insert("owns_land".into(), json!(false));
        bad.remove("wall");
        bad.insert("colour".into(), json!("blue"));
        let errs = f.validate(Section::Household, &bad);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["colour", "wall", "rooms", "land_area_ha"],
            "{errs:?}"
        );
        assert!(errs[3]
            .reason
            .contains("asked only when 'owns_land' is true"));
    }

    #[test]
    fn parses_cells() {
        let f = FormSchema::default_form();
        let q = |k: &str| {
            f.household
                .iter()
                .find(|q| q.key == k)
                .expect("question")
                .clone()
        };
        assert_eq!(
            FormSchema::parse_text(&q("owns_land"), "Yes"),
            Ok(Some(json!(true)))
        );
        assert_eq!(FormSchema::parse_text(&q("rooms"), ""), Ok(None));
        assert!(FormSchema::parse_text(&q("rooms"), "three").is_err());
        assert_eq!(
            FormSchema::parse_text(&q("assets"), "radio; bicycle"),
            Ok(Some(json!(["radio", "bicycle"])))
        );
        assert!(FormSchema::parse_text(&q("assets"), "radio;radio").is_err());
        assert_eq!(
            FormSchema::to_text(&json!(["radio", "bicycle"])),
            "radio;bicycle"
        );
    }

    #[test]
    fn refuses_inconsistent_schemas() {
        let mut f = FormSchema::default_form();
        f.household[0].when = Some(Condition {
            question: "rooms".into(),
            equals: Some(json!(1)),
            any_of: None,
        });
        assert!(f
            .check()
            .expect_err("refused")
            .0
            .contains("not an earlier question"));
        let mut g = FormSchema::default_form();
        g.member.push(g.member[0].clone());
        assert!(g.check().expect_err("refused").0.contains("used twice"));
        assert!(FormSchema::from_json("{\"id\":1}").is_err());
    }
}
