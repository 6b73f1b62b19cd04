//! Search requests: the `search_request` items of a message, checked and translated into
//! [`PeopleQuery`]s, each refusal carrying the spec's `SearchStatusReasonCode`.
//!
//! The three query types:
//! - `idtype-value`: `{"type": "UIN", "value": "1198…"}` — an identifier, matched exactly;
//! - `expression`: a document query `{"type": …, "value": {"expression": {"collection": …,
//!   "query": {"$and": [{"birth_date": {"$gte": "1990"}}, …]}}}}` (`$and`, `$or`, `$not`,
//!   `$eq`, `$gt`, `$gte`, `$lt`, `$lte`, `$in`), or, as the published samples also send, a
//!   list of predicate items;
//! - `predicate`: a list (or one) of `{"seq_num", "expression1", "condition", "expression2"}`
//!   items, each expression `{"attribute_name", "operator", "attribute_value"}` with operators
//!   `gt`, `lt`, `eq`, `ge`, `le`, `in`; items are all required (and-ed) in `seq_num` order.

use std::collections::HashSet;

use chrono::{Datelike, Months, NaiveDate};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::registry::{
    BirthDate, MemberRole, Name, NationalId, PhoneNumber, RegistryNumber, Sex,
};
use inkingi_store::registry::{
    CmpOp, Condition, PeopleQuery, PersonField, PersonFilter, PersonSort,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::envelope::short;

/// Largest page a search returns.
pub const MAX_PAGE_SIZE: u64 = 100;
/// Page size when a request gives no pagination.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Most values in one `in` list.
pub const MAX_IN_VALUES: usize = 100;
/// Deepest nesting of `$and`/`$or`/`$not` accepted.
const MAX_DEPTH: usize = 8;

/// The `message` of a search.
#[derive(Debug, Clone, Deserialize)]
pub struct SearchMessage {
    #[serde(default)]
    pub transaction_id: String,
    pub search_request: Vec<SearchItem>,
}

/// One request of a batch, as sent; checked by [`prepare`].
#[derive(Debug, Clone, Deserialize)]
pub struct SearchItem {
    #[serde(default)]
    pub reference_id: Option<Value>,
    #[serde(default)]
    pub timestamp: Option<Value>,
    #[serde(default)]
    pub search_criteria: Option<Value>,
    #[serde(default)]
    pub locale: Option<Value>,
}

/// `SearchStatusReasonCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReason {
    ReferenceIdInvalid,
    ReferenceIdDuplicate,
    TimestampInvalid,
    SearchCriteriaInvalid,
    FilterInvalid,
    SortInvalid,
    PaginationInvalid,
}

impl SearchReason {
    pub fn code(self) -> &'static str {
        match self {
            SearchReason::ReferenceIdInvalid => "rjct.reference_id.invalid",
            SearchReason::ReferenceIdDuplicate => "rjct.reference_id.duplicate",
            SearchReason::TimestampInvalid => "rjct.timestamp.invalid",
            SearchReason::SearchCriteriaInvalid => "rjct.search_criteria.invalid",
            SearchReason::FilterInvalid => "rjct.filter.invalid",
            SearchReason::SortInvalid => "rjct.sort.invalid",
            SearchReason::PaginationInvalid => "rjct.pagination.invalid",
        }
    }
}

/// A refused request: the reason code and what was wrong, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: SearchReason,
    pub message: String,
}

fn reject<T>(reason: SearchReason, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection {
        reason,
        message: message.into(),
    })
}

/// What a search returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    /// People, each as a `Member` with their `SRPerson` demographic info.
    Member,
    /// Households having a matching member, each as a `Group` with its members.
    Group,
}

/// A request ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSearch {
    pub entity: Entity,
    pub query: PeopleQuery,
    pub page_size: u64,
    pub page_number: u64,
}

/// A request with its identity, ready to run or refused.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedItem {
    /// As sent (possibly empty when that was the problem).
    pub reference_id: String,
    pub locale: Option<String>,
    pub outcome: Result<PreparedSearch, Rejection>,
}

/// Checks every request of a batch; `today` anchors `age` conditions.
pub fn check_batch(items: &[SearchItem], today: NaiveDate) -> Vec<CheckedItem> {
    let mut seen = HashSet::new();
    items
        .iter()
        .map(|item| {
            let reference_id = match &item.reference_id {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let locale = item
                .locale
                .as_ref()
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(16).collect());
            let outcome = check_reference(&reference_id, &mut seen)
                .and_then(|()| check_timestamp(item.timestamp.as_ref()))
                .and_then(|()| prepare(item.search_criteria.as_ref(), today));
            CheckedItem {
                reference_id,
                locale,
                outcome,
            }
        })
        .collect()
}

fn check_reference(id: &str, seen: &mut HashSet<String>) -> Result<(), Rejection> {
    if id.trim().is_empty() || id.chars().count() > 99 {
        return reject(
            SearchReason::ReferenceIdInvalid,
            "search_request.reference_id: required, 1 to 99 characters",
        );
    }
    if !seen.insert(id.to_string()) {
        return reject(
            SearchReason::ReferenceIdDuplicate,
            format!(
                "search_request.reference_id '{}' appears twice in this message",
                short(id)
            ),
        );
    }
    Ok(())
}

fn check_timestamp(ts: Option<&Value>) -> Result<(), Rejection> {
    match ts.and_then(Value::as_str) {
        Some(s) if chrono::DateTime::parse_from_rfc3339(s.trim()).is_ok() => Ok(()),
        Some(s) => reject(
            SearchReason::TimestampInvalid,
            format!(
                "search_request.timestamp '{}': not an ISO 8601 date-time with offset",
                short(s)
            ),
        ),
        None => reject(
            SearchReason::TimestampInvalid,
            "search_request.timestamp: required",
        ),
    }
}

/// Translates `search_criteria`.
pub fn prepare(criteria: Option<&Value>, today: NaiveDate) -> Result<PreparedSearch, Rejection> {
    use SearchReason::SearchCriteriaInvalid as Bad;
    let Some(Value::Object(c)) = criteria else {
        return reject(Bad, "search_request.search_criteria: required, an object");
    };
    if let Some(v) = c.get("version").and_then(Value::as_str) {
        if !v.is_empty() && v != super::envelope::VERSION {
            return reject(
                Bad,
                format!("search_criteria.version '{}': only 1.0.0", short(v)),
            );
        }
    }
    let entity = match c.get("response_entity").and_then(Value::as_str) {
        None | Some("") | Some("Member") | Some("Person") => Entity::Member,
        Some("Group") | Some("Household") | Some("HouseHold") => Entity::Group,
        Some(other) => {
            return reject(
                Bad,
                format!(
                    "search_criteria.response_entity '{}': expected Member or Group",
                    short(other)
                ),
            )
        }
    };
    let query = c.get("query").ok_or(Rejection {
        reason: Bad,
        message: "search_criteria.query: required".into(),
    })?;
    let filter = match c.get("query_type").and_then(Value::as_str) {
        Some("idtype-value") => id_type_value(query)?,
        Some("expression") if query.is_array() => predicates(query, today)?,
        Some("expression") => expression(query, today)?,
        Some("predicate") => predicates(query, today)?,
        Some(other) => {
            return reject(
                Bad,
                format!(
                    "search_criteria.query_type '{}': expected idtype-value, expression or \
                     predicate",
                    short(other)
                ),
            )
        }
        None => return reject(Bad, "search_criteria.query_type: required"),
    };
    let sort = sort(c.get("sort"), entity)?;
    let (page_size, page_number) = pagination(c.get("pagination"))?;
    Ok(PreparedSearch {
        entity,
        query: PeopleQuery {
            filter,
            sort,
            limit: page_size as u32,
            offset: (page_number - 1).saturating_mul(page_size),
            max_candidates: inkingi_store::registry::query::MAX_CANDIDATES,
        },
        page_size,
        page_number,
    })
}

fn id_type_value(q: &Value) -> Result<PersonFilter, Rejection> {
    let (Some(t), Some(v)) = (q.get("type").and_then(Value::as_str), q.get("value")) else {
        return reject(
            SearchReason::SearchCriteriaInvalid,
            "search_criteria.query: idtype-value needs {\"type\": …, \"value\": …}",
        );
    };
    let field = match t.to_ascii_lowercase().as_str() {
        "uin" | "nid" | "nationalid" | "national_id" => "national_id",
        "mobile" | "phone" | "phone_number" => "phone",
        "hhid" | "registry_number" | "household_registry_number" => "registry_number",
        _ => {
            return reject(
                SearchReason::FilterInvalid,
                format!(
                    "search_criteria.query.type '{}': unknown identifier type; expected UIN \
                     (national ID), MOBILE or HHID (household registry number)",
                    short(t)
                ),
            )
        }
    };
    condition(field, "eq", v, Date::today_unused())
}

/// `today` is only needed for `age`; a newtype keeps call sites honest about it.
#[derive(Clone, Copy)]
struct Date(NaiveDate);

impl Date {
    fn today_unused() -> Date {
        Date(NaiveDate::MIN)
    }
}

fn expression(q: &Value, today: NaiveDate) -> Result<PersonFilter, Rejection> {
    let inner = q
        .get("value")
        .and_then(|v| v.get("expression"))
        .and_then(|e| e.get("query"));
    match inner {
        Some(Value::Object(m)) => mongo(m, Date(today), 0),
        _ => reject(
            SearchReason::SearchCriteriaInvalid,
            "search_criteria.query: an expression query needs value.expression.query (an \
             object such as {\"$and\": [{\"birth_date\": {\"$gte\": \"1990\"}}]}) or a list \
             of predicate items",
        ),
    }
}

fn mongo(m: &Map<String, Value>, today: Date, depth: usize) -> Result<PersonFilter, Rejection> {
    if depth > MAX_DEPTH {
        return reject(
            SearchReason::FilterInvalid,
            format!("query: nested deeper than {MAX_DEPTH} levels"),
        );
    }
    let mut parts = Vec::with_capacity(m.len());
    for (k, v) in m {
        let part = match k.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = v else {
                    return reject(SearchReason::FilterInvalid, format!("query {k}: a list"));
                };
                let subs = items
                    .iter()
                    .map(|i| match i {
                        Value::Object(o) => mongo(o, today, depth + 1),
                        _ => reject(SearchReason::FilterInvalid, format!("query {k}: objects")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if k == "$and" {
                    PersonFilter::All(subs)
                } else {
                    PersonFilter::Any(subs)
                }
            }
            "$not" => match v {
                Value::Object(o) => PersonFilter::Not(Box::new(mongo(o, today, depth + 1)?)),
                _ => return reject(SearchReason::FilterInvalid, "query $not: an object"),
            },
            field => match v {
                Value::Object(ops) => {
                    let mut conds = Vec::with_capacity(ops.len());
                    for (op, val) in ops {
                        let op = match op.as_str() {
                            "$eq" => "eq",
                            "$gt" => "gt",
                            "$gte" | "$ge" => "ge",
                            "$lt" => "lt",
                            "$lte" | "$le" => "le",
                            "$in" => "in",
                            other => {
                                return reject(
                                    SearchReason::FilterInvalid,
                                    format!(
                                        "query '{}': unknown operator '{}'; expected $eq, $gt, \
                                         $gte, $lt, $lte or $in",
                                        short(field),
                                        short(other)
                                    ),
                                )
                            }
                        };
                        conds.push(condition(field, op, val, today)?);
                    }
                    PersonFilter::All(conds)
                }
                scalar => condition(field, "eq", scalar, today)?,
            },
        };
        parts.push(part);
    }
    Ok(PersonFilter::All(parts))
}

fn predicates(q: &Value, today: NaiveDate) -> Result<PersonFilter, Rejection> {
    let items: Vec<&Value> = match q {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![q],
        _ => {
            return reject(
                SearchReason::SearchCriteriaInvalid,
                "search_criteria.query: predicate items, a list or one object",
            )
        }
    };
    if items.is_empty() {
        return reject(
            SearchReason::SearchCriteriaInvalid,
            "search_criteria.query: no predicate items",
        );
    }
    let mut keyed = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let seq = item
            .get("seq_num")
            .and_then(Value::as_f64)
            .unwrap_or(i as f64);
        keyed.push((seq, i, item));
    }
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let parts = keyed
        .into_iter()
        .map(|(_, i, item)| predicate_item(item, i, Date(today)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PersonFilter::All(parts))
}

/// `expression1 [condition expression2 [condition expression3 …]]`.
fn predicate_item(item: &Value, i: usize, today: Date) -> Result<PersonFilter, Rejection> {
    let at = |n: usize| format!("query[{i}].expression{n}");
    let Some(first) = item.get("expression1").filter(|e| e.is_object()) else {
        return reject(
            SearchReason::SearchCriteriaInvalid,
            format!("{}: required, an object", at(1)),
        );
    };
    let mut acc = simple(first, &at(1), today)?;
    let cond = item.get("condition").and_then(Value::as_str).unwrap_or("");
    for n in 2.. {
        let Some(next) = item.get(format!("expression{n}")) else {
            break;
        };
        if !next.is_object() {
            // The samples send "" for an absent second expression.
            break;
        }
        let e = simple(next, &at(n), today)?;
        acc = match cond {
            "and" | "" => PersonFilter::All(vec![acc, e]),
            "or" => PersonFilter::Any(vec![acc, e]),
            "not" => PersonFilter::All(vec![acc, PersonFilter::Not(Box::new(e))]),
            other => {
                return reject(
                    SearchReason::FilterInvalid,
                    format!(
                        "query[{i}].condition '{}': expected and, or or not",
                        short(other)
                    ),
                )
            }
        };
    }
    Ok(acc)
}

fn simple(e: &Value, at: &str, today: Date) -> Result<PersonFilter, Rejection> {
    let name = e.get("attribute_name").and_then(Value::as_str);
    let op = e.get("operator").and_then(Value::as_str);
    let (Some(name), Some(op), Some(value)) = (name, op, e.get("attribute_value")) else {
        return reject(
            SearchReason::SearchCriteriaInvalid,
            format!("{at}: needs attribute_name, operator and attribute_value"),
        );
    };
    condition(name, op, value, today).map_err(|r| Rejection {
        reason: r.reason,
        message: format!("{at}: {}", r.message),
    })
}

/// How a query attribute maps onto the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    Field(PersonField),
    /// Year of birth: a condition on `birth_date`'s year.
    BirthYear,
    /// Age in whole years today: a condition on `birth_date`.
    Age,
}

/// Query attribute names understood, with their aliases (matched without case).
const ATTRIBUTES: &[(&str, Attr)] = &[
    ("national_id", Attr::Field(PersonField::NationalId)),
    ("uin", Attr::Field(PersonField::NationalId)),
    ("nid", Attr::Field(PersonField::NationalId)),
    ("phone", Attr::Field(PersonField::Phone)),
    ("mobile", Attr::Field(PersonField::Phone)),
    ("phone_number", Attr::Field(PersonField::Phone)),
    ("registry_number", Attr::Field(PersonField::RegistryNumber)),
    ("hhid", Attr::Field(PersonField::RegistryNumber)),
    ("birth_date", Attr::Field(PersonField::BirthDate)),
    ("dob", Attr::Field(PersonField::BirthDate)),
    ("yob", Attr::BirthYear),
    ("age", Attr::Age),
    ("sex", Attr::Field(PersonField::Sex)),
    ("gender", Attr::Field(PersonField::Sex)),
    ("village", Attr::Field(PersonField::Village)),
    ("location", Attr::Field(PersonField::Village)),
    ("area", Attr::Field(PersonField::Village)),
    ("given_name", Attr::Field(PersonField::GivenName)),
    ("first_name", Attr::Field(PersonField::GivenName)),
    ("surname", Attr::Field(PersonField::FamilyName)),
    ("family_name", Attr::Field(PersonField::FamilyName)),
    ("role", Attr::Field(PersonField::Role)),
];

/// Attributes of the DCI data objects the registry does not hold (yet): named so that the
/// refusal says why rather than "unknown".
const NOT_HELD: &[(&str, &str)] = &[
    (
        "poverty_score",
        "poverty scores are published once targeting stores them",
    ),
    (
        "group_size",
        "search households by member attributes instead",
    ),
    (
        "household_size",
        "search households by member attributes instead",
    ),
];

fn attribute(name: &str) -> Result<Attr, Rejection> {
    let lower = name.to_ascii_lowercase();
    if let Some((_, a)) = ATTRIBUTES.iter().find(|(n, _)| *n == lower) {
        return Ok(*a);
    }
    if let Some((_, why)) = NOT_HELD.iter().find(|(n, _)| *n == lower) {
        return reject(
            SearchReason::FilterInvalid,
            format!("attribute '{lower}' is not available: {why}"),
        );
    }
    let known: Vec<&str> = ATTRIBUTES.iter().map(|(n, _)| *n).collect();
    reject(
        SearchReason::FilterInvalid,
        format!(
            "unknown attribute '{}'; known: {}",
            short(name),
            known.join(", ")
        ),
    )
}

fn parse_op(op: &str) -> Result<CmpOp, Rejection> {
    Ok(match op {
        "eq" => CmpOp::Eq,
        "gt" => CmpOp::Gt,
        "lt" => CmpOp::Lt,
        "ge" => CmpOp::Ge,
        "le" => CmpOp::Le,
        "in" => CmpOp::In,
        other => {
            return reject(
                SearchReason::FilterInvalid,
                format!(
                    "operator '{}': expected gt, lt, eq, ge, le or in",
                    short(other)
                ),
            )
        }
    })
}

/// One `attribute op value` as a filter, the value checked and normalised as stored.
fn condition(name: &str, op: &str, value: &Value, today: Date) -> Result<PersonFilter, Rejection> {
    let attr = attribute(name)?;
    let op = parse_op(op)?;
    let raw = values(name, op, value)?;
    match attr {
        Attr::Field(field) => {
            let ordered = matches!(field, PersonField::BirthDate);
            if !ordered && !matches!(op, CmpOp::Eq | CmpOp::In) {
                return reject(
                    SearchReason::FilterInvalid,
                    format!("attribute '{name}' takes only eq and in"),
                );
            }
            let values = raw
                .iter()
                .map(|v| normalise(field, v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Rejection {
                    reason: SearchReason::FilterInvalid,
                    message: format!("attribute '{name}': {e}"),
                })?;
            Ok(PersonFilter::Cond(Condition { field, op, values }))
        }
        Attr::BirthYear | Attr::Age => {
            let nums = raw
                .iter()
                .map(|v| v.trim().parse::<i32>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| Rejection {
                    reason: SearchReason::FilterInvalid,
                    message: format!("attribute '{name}': whole numbers expected"),
                })?;
            if nums.iter().any(|n| !(0..=9999).contains(n)) {
                return reject(
                    SearchReason::FilterInvalid,
                    format!("attribute '{name}': out of range"),
                );
            }
            let one = |n: i32| match attr {
                Attr::BirthYear => year_filter(op, n),
                _ => age_filter(op, n, today.0),
            };
            Ok(if op == CmpOp::In {
                PersonFilter::Any(nums.into_iter().map(one).collect())
            } else {
                one(nums[0])
            })
        }
    }
}

fn values(name: &str, op: CmpOp, value: &Value) -> Result<Vec<String>, Rejection> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let out: Option<Vec<String>> = match (op, value) {
        (CmpOp::In, Value::Array(a)) => a.iter().map(scalar).collect(),
        // `in` with a comma-separated text, as form-style clients send it.
        (CmpOp::In, Value::String(s)) => Some(s.split(',').map(|p| p.trim().to_string()).collect()),
        (CmpOp::In, _) => None,
        (_, v) => scalar(v).map(|s| vec![s]),
    };
    match out {
        Some(v) if v.is_empty() => reject(
            SearchReason::FilterInvalid,
            format!("attribute '{name}': 'in' needs at least one value"),
        ),
        Some(v) if v.len() > MAX_IN_VALUES => reject(
            SearchReason::FilterInvalid,
            format!("attribute '{name}': at most {MAX_IN_VALUES} values"),
        ),
        Some(v) => Ok(v),
        None => reject(
            SearchReason::FilterInvalid,
            format!(
                "attribute '{name}': expected {}",
                if op == CmpOp::In {
                    "a list of texts or numbers"
                } else {
                    "a text or a number"
                }
            ),
        ),
    }
}

fn normalise(field: PersonField, v: &str) -> Result<String, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    Ok(match field {
        PersonField::NationalId => NationalId::parse(v).map_err(|x| e(&x))?.as_str().into(),
        PersonField::Phone => PhoneNumber::parse(v).map_err(|x| e(&x))?.as_str().into(),
        PersonField::RegistryNumber => RegistryNumber::parse(v).map_err(|x| e(&x))?.as_str().into(),
        PersonField::BirthDate => {
            // Date-times (as the samples write birth dates) count by their date.
            let d = v
                .trim()
                .get(..10)
                .filter(|_| v.trim().len() > 10)
                .unwrap_or(v.trim());
            BirthDate::parse(d).map_err(|x| e(&x))?.to_string()
        }
        PersonField::Sex => match v.trim().to_ascii_lowercase().as_str() {
            "female" | "f" => Sex::Female.as_str().into(),
            "male" | "m" => Sex::Male.as_str().into(),
            _ => return Err(format!("'{}': expected female or male", short(v))),
        },
        PersonField::Village => AreaCode::parse(v).map_err(|x| e(&x))?.as_str().into(),
        PersonField::GivenName | PersonField::FamilyName => {
            Name::parse(v).map_err(|x| e(&x))?.as_str().into()
        }
        PersonField::Role => v.parse::<MemberRole>().map_err(|x| e(&x))?.as_str().into(),
        PersonField::BirthRegistration => v.trim().to_string(),
    })
}

fn birth(op: CmpOp, v: String) -> PersonFilter {
    PersonFilter::Cond(Condition {
        field: PersonField::BirthDate,
        op,
        values: vec![v],
    })
}

/// Birth dates are text `YYYY[-MM[-DD]]`: a year `y` is everything from "y" up to "y+1".
fn year_filter(op: CmpOp, y: i32) -> PersonFilter {
    let (this, next) = (format!("{y:04}"), format!("{:04}", y + 1));
    match op {
        CmpOp::Eq | CmpOp::In => {
            PersonFilter::All(vec![birth(CmpOp::Ge, this), birth(CmpOp::Lt, next)])
        }
        CmpOp::Gt => birth(CmpOp::Ge, next),
        CmpOp::Ge => birth(CmpOp::Ge, this),
        CmpOp::Lt => birth(CmpOp::Lt, this),
        CmpOp::Le => birth(CmpOp::Lt, next),
    }
}

/// Age `a` today means born in `(today − (a+1) years, today − a years]`.
fn age_filter(op: CmpOp, a: i32, today: NaiveDate) -> PersonFilter {
    let years_ago = |n: i32| -> String {
        let d = today
            .checked_sub_months(Months::new(12 * n.max(0) as u32))
            .unwrap_or(NaiveDate::MIN);
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    };
    // at least `n` years old ⟺ born on or before today − n years.
    let at_least = |n: i32| birth(CmpOp::Le, years_ago(n));
    let younger_than = |n: i32| birth(CmpOp::Gt, years_ago(n));
    match op {
        CmpOp::Eq | CmpOp::In => PersonFilter::All(vec![at_least(a), younger_than(a + 1)]),
        CmpOp::Gt => at_least(a + 1),
        CmpOp::Ge => at_least(a),
        CmpOp::Lt => younger_than(a),
        CmpOp::Le => younger_than(a + 1),
    }
}

fn sort(v: Option<&Value>, entity: Entity) -> Result<Vec<PersonSort>, Rejection> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return reject(SearchReason::SortInvalid, "search_criteria.sort: a list"),
    };
    if entity == Entity::Group && !items.is_empty() {
        return reject(
            SearchReason::SortInvalid,
            "search_criteria.sort: groups come in a fixed order; sorting them is not supported",
        );
    }
    items
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let name = s
                .get("attribute_name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let field = match attribute(name) {
                Ok(Attr::Field(f)) if f != PersonField::Phone => f,
                Ok(Attr::BirthYear) | Ok(Attr::Age) => PersonField::BirthDate,
                _ => {
                    return reject(
                        SearchReason::SortInvalid,
                        format!("sort[{i}].attribute_name '{}': not sortable", short(name)),
                    )
                }
            };
            let descending = match s.get("sort_order").and_then(Value::as_str) {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(o) => {
                    return reject(
                        SearchReason::SortInvalid,
                        format!("sort[{i}].sort_order '{}': asc or desc", short(o)),
                    )
                }
            };
            Ok(PersonSort { field, descending })
        })
        .collect()
}

fn pagination(v: Option<&Value>) -> Result<(u64, u64), Rejection> {
    let Some(Value::Object(p)) = v else {
        return match v {
            None | Some(Value::Null) => Ok((DEFAULT_PAGE_SIZE, 1)),
            Some(Value::String(s)) if s.is_empty() => Ok((DEFAULT_PAGE_SIZE, 1)),
            _ => reject(
                SearchReason::PaginationInvalid,
                "search_criteria.pagination: an object",
            ),
        };
    };
    let whole = |k: &str| -> Result<Option<u64>, Rejection> {
        match p.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| {
                    v.as_f64()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or(Rejection {
                    reason: SearchReason::PaginationInvalid,
                    message: format!("pagination.{k}: a whole number"),
                }),
        }
    };
    let size = whole("page_size")?.unwrap_or(DEFAULT_PAGE_SIZE);
    let number = whole("page_number")?.unwrap_or(1);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return reject(
            SearchReason::PaginationInvalid,
            format!("pagination.page_size {size}: must be 1 to {MAX_PAGE_SIZE}"),
        );
    }
    if !(1..=1_000_000).contains(&number) {
        return reject(
            SearchReason::PaginationInvalid,
            format!("pagination.page_number {number}: must be 1 to 1000000 (pages count from 1)"),
        );
    }
    Ok((size, number))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 15).unwrap()
    }

    fn cond(field: PersonField, op: CmpOp, v: &str) -> PersonFilter {
        PersonFilter::Cond(Condition {
            field,
            op,
            values: vec![v.to_string()],
        })
    }

    fn criteria(query_type: &str, query: Value) -> Value {
        json!({"version": "1.0.0", "query_type": query_type, "query": query})
    }

    fn code(c: Value) -> &'static str {
        prepare(Some(&c), today()).unwrap_err().reason.code()
    }

    #[test]
    fn id_type_value_normalises_the_identifier() {
        let p = prepare(
            Some(&criteria(
                "idtype-value",
                json!({"type": "MOBILE", "value": "0788 123 456"}),
            )),
            today(),
        )
        .unwrap();
        assert_eq!(
            p.query.filter,
            cond(PersonField::Phone, CmpOp::Eq, "+250788123456")
        );
        assert_eq!(
            (p.page_size, p.page_number, p.query.offset),
            (DEFAULT_PAGE_SIZE, 1, 0)
        );
        assert_eq!(
            code(criteria(
                "idtype-value",
                json!({"type": "BRN", "value": "1"})
            )),
            "rjct.filter.invalid"
        );
    }

    #[test]
    fn the_published_expression_list_sample_parses() {
        // Social registry sample "processflow2": query_type expression with predicate items,
        // empty seq_num, condition and expression2.
        let q = json!([{"seq_num": "", "expression1": {"attribute_name": "UIN", "operator": "eq",
            "attribute_value": "1198570001234011"}, "condition": "", "expression2": ""}]);
        let p = prepare(Some(&criteria("expression", q)), today()).unwrap();
        assert_eq!(
            p.query.filter,
            PersonFilter::All(vec![cond(
                PersonField::NationalId,
                CmpOp::Eq,
                "1198570001234011"
            )])
        );
    }

    #[test]
    fn document_expressions_nest() {
        let q = json!({"type": "NoSql", "value": {"expression": {"collection": "Group", "query":
            {"$or": [{"sex": "F"}, {"$not": {"birth_date": {"$gte": "1990-01-01T00:00:00Z"}}}]}}}});
        let p = prepare(Some(&criteria("expression", q)), today()).unwrap();
        assert_eq!(
            p.query.filter,
            PersonFilter::All(vec![PersonFilter::Any(vec![
                PersonFilter::All(vec![cond(PersonField::Sex, CmpOp::Eq, "F")]),
                PersonFilter::All(vec![PersonFilter::Not(Box::new(PersonFilter::All(vec![
                    PersonFilter::All(vec![cond(PersonField::BirthDate, CmpOp::Ge, "1990-01-01")])
                ])))])
            ])])
        );
        let bad = json!({"value": {"expression": {"query": {"sex": {"$regex": "F"}}}}});
        assert_eq!(code(criteria("expression", bad)), "rjct.filter.invalid");
    }

    #[test]
    fn age_and_year_become_birth_date_ranges() {
        let age = |op: &str, v: Value| {
            let q = json!({"expression1": {"attribute_name": "age", "operator": op, "attribute_value": v}});
            prepare(Some(&criteria("predicate", q)), today())
                .unwrap()
                .query
                .filter
        };
        let one = |f: PersonFilter| PersonFilter::All(vec![f]);
        // Under 6 today: born after 2020-03-15.
        assert_eq!(
            age("lt", json!(6)),
            one(cond(PersonField::BirthDate, CmpOp::Gt, "2020-03-15"))
        );
        // 6 or over: born on or before 2020-03-15.
        assert_eq!(
            age("ge", json!("6")),
            one(cond(PersonField::BirthDate, CmpOp::Le, "2020-03-15"))
        );
        let q = json!({"expression1": {"attribute_name": "YOB", "operator": "le", "attribute_value": 1999}});
        let p = prepare(Some(&criteria("predicate", q)), today()).unwrap();
        assert_eq!(
            p.query.filter,
            one(cond(PersonField::BirthDate, CmpOp::Lt, "2000"))
        );
    }

    #[test]
    fn predicate_conditions_and_refusals() {
        let q = json!([
            {"seq_num": 2, "expression1": {"attribute_name": "village", "operator": "in", "attribute_value": ["11", "1201"]}},
            {"seq_num": 1, "expression1": {"attribute_name": "sex", "operator": "eq", "attribute_value": "male"},
             "condition": "not", "expression2": {"attribute_name": "role", "operator": "eq", "attribute_value": "head"}}
        ]);
        let p = prepare(Some(&criteria("predicate", q)), today()).unwrap();
        assert_eq!(
            p.query.filter,
            PersonFilter::All(vec![
                PersonFilter::All(vec![
                    cond(PersonField::Sex, CmpOp::Eq, "M"),
                    PersonFilter::Not(Box::new(cond(PersonField::Role, CmpOp::Eq, "head")))
                ]),
                PersonFilter::Cond(Condition {
                    field: PersonField::Village,
                    op: CmpOp::In,
                    values: vec!["11".into(), "1201".into()]
                }),
            ])
        );
        let simple = |name: &str, op: &str, v: Value| {
            criteria(
                "predicate",
                json!({"expression1": {"attribute_name": name, "operator": op, "attribute_value": v}}),
            )
        };
        assert_eq!(
            code(simple("village", "gt", json!("11"))),
            "rjct.filter.invalid"
        );
        assert_eq!(code(simple("sex", "eq", json!("x"))), "rjct.filter.invalid");
        assert_eq!(
            code(simple("sex", "like", json!("F"))),
            "rjct.filter.invalid"
        );
        assert_eq!(code(simple("sex", "in", json!([]))), "rjct.filter.invalid");
        assert_eq!(
            code(simple("birth_date", "eq", json!("20-01-1990"))),
            "rjct.filter.invalid"
        );
        assert_eq!(
            code(criteria("sql", json!({}))),
            "rjct.search_criteria.invalid"
        );
        assert_eq!(
            code(json!({"query_type": "predicate"})),
            "rjct.search_criteria.invalid"
        );
    }

    #[test]
    fn sort_and_pagination() {
        let q = json!({"expression1": {"attribute_name": "sex", "operator": "eq", "attribute_value": "F"}});
        let mut c = criteria("predicate", q);
        c["sort"] = json!([{"attribute_name": "DOB", "sort_order": "desc"}]);
        c["pagination"] = json!({"page_size": 10.0, "page_number": 3});
        let p = prepare(Some(&c), today()).unwrap();
        assert_eq!(
            p.query.sort,
            [PersonSort {
                field: PersonField::BirthDate,
                descending: true
            }]
        );
        assert_eq!((p.query.limit, p.query.offset), (10, 20));
        for (k, v, want) in [
            (
                "sort",
                json!([{"attribute_name": "phone"}]),
                "rjct.sort.invalid",
            ),
            (
                "sort",
                json!([{"attribute_name": "sex", "sort_order": "up"}]),
                "rjct.sort.invalid",
            ),
            (
                "pagination",
                json!({"page_size": 0}),
                "rjct.pagination.invalid",
            ),
            (
                "pagination",
                json!({"page_size": 5, "page_number": 0}),
                "rjct.pagination.invalid",
            ),
            (
                "pagination",
                json!({"page_size": 2.5}),
                "rjct.pagination.invalid",
            ),
        ] {
            let mut c = c.clone();
            c[k] = v;
            assert_eq!(code(c), want, "{k}");
        }
        let mut g = c.clone();
        g["response_entity"] = json!("Group");
        assert_eq!(code(g), "rjct.sort.invalid");
    }

    #[test]
    fn batch_checks_reference_ids_and_timestamps() {
        let item = |r: &str, ts: &str| SearchItem {
            reference_id: Some(json!(r)),
            timestamp: Some(json!(ts)),
            search_criteria: Some(criteria(
                "idtype-value",
                json!({"type": "UIN", "value": "1198570001234011"}),
            )),
            locale: None,
        };
        let now = "2026-03-15T10:00:00+02:00";
        let out = check_batch(
            &[
                item("a", now),
                item("a", now),
                item("", now),
                item("b", "noon"),
            ],
            today(),
        );
        let codes: Vec<_> = out
            .iter()
            .map(|c| c.outcome.as_ref().err().map(|r| r.reason.code()))
            .collect();
        assert_eq!(
            codes,
            [
                None,
                Some("rjct.reference_id.duplicate"),
                Some("rjct.reference_id.invalid"),
                Some("rjct.timestamp.invalid")
            ]
        );
    }
}
