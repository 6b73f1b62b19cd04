//! Request bodies of the registry API as sent (plain strings), and their validation into domain
//! types. Validation collects every error with the field's path (`members[2].national_id`),
//! so one 422 tells the caller everything to fix.

use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::{AreaCode, AreaLevel};
use inkingi_domain::registry::form::{FormSchema, Section};
use inkingi_domain::registry::model::{person_consistency, MAX_ADDRESS_CHARS};
use inkingi_domain::registry::{
    BirthDate, Gps, HouseholdInput, MemberRole, Name, NationalId, PersonInput, PhoneNumber, Sex,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};

/// A person's fields (and, when adding a member, their role and start date).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberFields {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `F` or `M`.
    pub sex: Option<String>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// 16 digits.
    pub national_id: Option<String>,
    pub birth_registration: Option<String>,
    pub refugee_id: Option<String>,
    pub passport: Option<String>,
    #[serde(default)]
    pub phones: Vec<String>,
    /// Answers to the member section of the form.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub answers: Map<String, Value>,
    /// The person's mother (female, born at least 10 years earlier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mother: Option<PersonRef>,
    /// The person's father (male, born at least 10 years earlier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub father: Option<PersonRef>,
    /// The person's guardian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian: Option<PersonRef>,
    /// `head`, `spouse`, `child`, `other_relative` or `non_relative`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Start of the membership, `YYYY-MM-DD`; default today.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Why the member is added (else the `X-Change-Reason` header).
    #[serde(default, skip_serializing)]
    pub reason: Option<String>,
}

/// A relative named in a request: `{"id": "…"}`, a person already registered (within your
/// area scope), or, when registering a household, `{"member": 1}`, another member of the same
/// request by position.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PersonRef {
    Id(uuid::Uuid),
    Member(usize),
}

/// A household's own fields.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HouseholdFields {
    /// 8-digit NISR village code.
    pub village: Option<String>,
    pub address: Option<String>,
    pub gps: Option<GpsFields>,
    /// Answers to the household section of the form.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub answers: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GpsFields {
    pub lat: f64,
    pub lon: f64,
}

/// Collects field errors under a path prefix.
#[derive(Default)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    pub fn add(&mut self, prefix: &str, field: &str, reason: impl Into<String>) {
        let field = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        self.0.push(FieldError {
            field,
            reason: reason.into(),
        });
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.0))
        }
    }
}

/// Parses a JSON body; a field of the wrong type or an unknown field is a 422 naming it.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        ApiError::validation(vec![FieldError {
            field: if path == "." { "body".into() } else { path },
            reason,
        }])
    })
}

fn opt_text(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Validates a person's fields against the model and the member section of `form`.
pub fn person(
    prefix: &str,
    m: &MemberFields,
    form: &FormSchema,
    e: &mut Errors,
) -> Option<PersonInput> {
    let today = Utc::now().date_naive();
    let before = e.0.len();
    let mut name = |field: &str, v: &Option<String>| match v.as_deref().map(Name::parse) {
        None => {
            e.add(prefix, field, "is required");
            None
        }
        Some(Err(err)) => {
            e.add(prefix, field, err.to_string());
            None
        }
        Some(Ok(n)) => Some(n),
    };
    let given_name = name("given_name", &m.given_name);
    let family_name = name("family_name", &m.family_name);
    let sex = match m.sex.as_deref().map(str::parse::<Sex>) {
        None => {
            e.add(prefix, "sex", "is required");
            None
        }
        Some(Err(err)) => {
            e.add(prefix, "sex", err.to_string());
            None
        }
        Some(Ok(s)) => Some(s),
    };
    let birth_date = match opt_text(&m.birth_date).map(|b| BirthDate::parse_on(&b, today)) {
        Some(Err(err)) => {
            e.add(prefix, "birth_date", err.to_string());
            None
        }
        Some(Ok(b)) => Some(b),
        None => None,
    };
    let national_id = match opt_text(&m.national_id).map(|n| NationalId::parse(&n)) {
        Some(Err(err)) => {
            e.add(prefix, "national_id", err.to_string());
            None
        }
        Some(Ok(n)) => Some(n),
        None => None,
    };
    let mut phones = Vec::new();
    for (i, p) in m.phones.iter().enumerate() {
        match PhoneNumber::parse(p) {
            Ok(p) if !phones.contains(&p) => phones.push(p),
            Ok(_) => {}
            Err(err) => e.add(prefix, &format!("phones[{i}]"), err.to_string()),
        }
    }
    for a in form.validate(Section::Member, &m.answers) {
        e.add(prefix, &format!("answers.{}", a.field), a.reason);
    }
    let (given_name, family_name, sex) = (given_name?, family_name?, sex?);
    let p = PersonInput {
        given_name,
        family_name,
        sex,
        birth_date,
        national_id,
        birth_registration: opt_text(&m.birth_registration),
        refugee_id: opt_text(&m.refugee_id),
        passport: opt_text(&m.passport),
        phones,
        answers: m.answers.clone(),
    };
    for (field, reason) in person_consistency(&p, today) {
        e.add(prefix, field, reason);
    }
    (e.0.len() == before).then_some(p)
}

/// The role and start date of a new member.
pub fn membership(
    prefix: &str,
    m: &MemberFields,
    e: &mut Errors,
) -> Option<(MemberRole, NaiveDate)> {
    let role = match m.role.as_deref().map(str::parse::<MemberRole>) {
        None => {
            e.add(prefix, "role", "is required");
            None
        }
        Some(Err(err)) => {
            e.add(prefix, "role", err.to_string());
            None
        }
        Some(Ok(r)) => Some(r),
    };
    let since = match opt_text(&m.since) {
        None => Some(Utc::now().date_naive()),
        Some(s) => match NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                e.add(prefix, "since", format!("'{s}' is not a date (YYYY-MM-DD)"));
                None
            }
        },
    };
    Some((role?, since?))
}

/// Validates a household's own fields; the village must be a village code (its existence and
/// scope are checked by the caller, which has the store).
pub fn household(h: &HouseholdFields, form: &FormSchema, e: &mut Errors) -> Option<HouseholdInput> {
    let before = e.0.len();
    let village = match h.village.as_deref().map(AreaCode::parse) {
        None => {
            e.add("", "village", "is required");
            None
        }
        Some(Err(err)) => {
            e.add("", "village", err.to_string());
            None
        }
        Some(Ok(c)) if c.level() != AreaLevel::Village => {
            e.add(
                "",
                "village",
                format!("{c} is a {}, not a village", c.level()),
            );
            None
        }
        Some(Ok(c)) => Some(c),
    };
    let address = opt_text(&h.address);
    if address
        .as_ref()
        .is_some_and(|a| a.chars().count() > MAX_ADDRESS_CHARS)
    {
        e.add(
            "",
            "address",
            format!("is longer than {MAX_ADDRESS_CHARS} characters"),
        );
    }
    let gps = match h.gps.map(|g| Gps::new(g.lat, g.lon)) {
        Some(Err(err)) => {
            e.add("", "gps", err.to_string());
            None
        }
        Some(Ok(g)) => Some(g),
        None => None,
    };
    for a in form.validate(Section::Household, &h.answers) {
        e.add("", &format!("answers.{}", a.field), a.reason);
    }
    let village = village?;
    (e.0.len() == before).then_some(HouseholdInput {
        village,
        address,
        gps,
        answers: h.answers.clone(),
    })
}

/// The editable fields of a stored person, as a patch applies to them.
pub fn person_fields(p: &PersonInput) -> MemberFields {
    MemberFields {
        given_name: Some(p.given_name.to_string()),
        family_name: Some(p.family_name.to_string()),
        sex: Some(p.sex.as_str().to_string()),
        birth_date: p.birth_date.map(|b| b.to_string()),
        national_id: p.national_id.as_ref().map(|n| n.to_string()),
        birth_registration: p.birth_registration.clone(),
        refugee_id: p.refugee_id.clone(),
        passport: p.passport.clone(),
        phones: p.phones.iter().map(|p| p.to_string()).collect(),
        answers: p.answers.clone(),
        mother: None,
        father: None,
        guardian: None,
        role: None,
        since: None,
        reason: None,
    }
}

/// Applies a JSON merge patch (RFC 7396, one level: a key present replaces the field, `null`
/// clears it) to `current`, then reads the result back as `T` (unknown keys are refused).
pub fn merge_patch<T: Serialize + DeserializeOwned>(
    current: &T,
    patch: Map<String, Value>,
) -> Result<T, ApiError> {
    let mut doc = match serde_json::to_value(current) {
        Ok(Value::Object(m)) => m,
        _ => return Err(ApiError::internal("record does not serialise to an object")),
    };
    for (k, v) in patch {
        doc.insert(k, v);
    }
    let bytes = serde_json::to_vec(&Value::Object(doc)).map_err(ApiError::internal)?;
    parse_body(&bytes)
}

/// Takes the `reason` key out of a patch body.
pub fn take_reason(patch: &mut Map<String, Value>) -> Result<Option<String>, ApiError> {
    match patch.remove("reason") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::validation(vec![FieldError {
            field: "reason".into(),
            reason: "must be text".into(),
        }])),
    }
}
