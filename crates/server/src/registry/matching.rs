//! `POST /api/v1/individuals/match`: who in the registry a person about to be registered may
//! already be, from the in-memory lookup index ([`crate::lookup`]).
//!
//! Candidates inside the caller's area scope are returned with their record, match weight,
//! band and per-field explanation; candidates outside it are only counted by band. An officer
//! must learn that the person may already be registered elsewhere (or the registry gains a
//! duplicate), but may not read who that is: the count tells them to refer the case to someone
//! whose scope covers both areas, and reveals nothing the officer did not type in.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use chrono::Utc;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::registry::PersonInput;
use inkingi_domain::registry::{BirthDate, NationalId, PhoneNumber};
use inkingi_linkage::model::FieldContribution;
use inkingi_store::registry::{NewMember, PersonRecord};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::input;
use super::people::PERSON_FIELDS;
use super::reader;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::lookup::{Found, LookupError, LookupStatus};
use crate::AppState;

/// A person about to be registered; names are required, everything else sharpens the match.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchRequest {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// `F` or `M` (also `female`, `male`).
    pub sex: Option<String>,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`: the precision the date is known to.
    pub birth_date: Option<String>,
    pub national_id: Option<String>,
    pub phone: Option<String>,
    /// The NISR code of the village (or a wider area) the person lives in.
    pub village: Option<String>,
    /// Candidates returned at most, 1 to 50 (default 10).
    pub limit: Option<u32>,
}

/// One possible existing record of the person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MatchCandidate {
    pub person_id: Uuid,
    /// `auto_link` (almost surely the same person) or `review` (possibly). Lower weights are
    /// not returned (`non_match`).
    pub band: &'static str,
    /// log2 of the odds that the two are one person.
    pub weight: f64,
    pub probability: f64,
    /// Each field's level of agreement and part of the weight.
    #[schema(value_type = Vec<Object>)]
    pub fields: Vec<FieldContribution>,
    /// The person as the registry holds them now.
    #[schema(value_type = Object)]
    pub person: PersonRecord,
}

/// Candidates outside the caller's area scope, counted by band.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct OutsideScope {
    pub auto_link: u32,
    pub review: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MatchResponse {
    pub candidates: Vec<MatchCandidate>,
    pub outside_scope: OutsideScope,
    /// The match weights of the two bands' lower bounds.
    pub review_weight: f64,
    pub auto_link_weight: f64,
    pub index: LookupStatus,
}

/// Probable existing records of a person about to be registered, best first.
#[utoipa::path(post, path = "/api/v1/individuals/match", tag = "registry", operation_id = "people_match",
    params(("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    request_body(content = MatchRequest, description = "The person to look up"),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Candidates in your scope, and a count of those outside it", body = MatchResponse),
        (status = 422, description = "Field errors, each naming its field", body = crate::error::ProblemBody),
        (status = 503, description = "The lookup index is still being built; retry")))]
pub async fn match_person(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> ApiResult<Json<MatchResponse>> {
    let purpose = reader(&state, &principal)?;
    let req: MatchRequest = input::parse_body(&body)?;
    let (row, given) = probe(&state, &req)?;
    let limit = req.limit.unwrap_or(10) as usize;
    let found = state
        .lookup
        .lookup(&state.store, row)
        .await
        .map_err(lookup_error)?;
    let (review_weight, auto_link_weight) = state.lookup.thresholds();
    let band = |w: f64| {
        if w >= auto_link_weight {
            "auto_link"
        } else {
            "review"
        }
    };
    let mut candidates = Vec::new();
    let mut outside = OutsideScope::default();
    for f in found {
        let b = band(f.candidate.weight);
        match visible(&state, &principal, &f).await? {
            Some(person) if candidates.len() < limit => candidates.push(MatchCandidate {
                person_id: f.person_id,
                band: b,
                weight: f.candidate.weight,
                probability: f.candidate.probability,
                fields: f.candidate.explanation,
                person,
            }),
            Some(_) => {}
            None if b == "auto_link" => outside.auto_link += 1,
            None => outside.review += 1,
        }
    }
    audit(&state, &principal, purpose, &candidates, given).await?;
    Ok(Json(MatchResponse {
        candidates,
        outside_scope: outside,
        review_weight,
        auto_link_weight,
        index: state.lookup.status(),
    }))
}

/// Where the lookup index stands (no personal data); starts building it when it has not.
#[utoipa::path(get, path = "/api/v1/individuals/match/status", tag = "registry", operation_id = "people_match_status",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "State, size and position of this node's index", body = LookupStatus)))]
pub async fn status(
    State(state): State<AppState>,
    _principal: Principal,
) -> ApiResult<Json<LookupStatus>> {
    state.lookup.start(&state.store);
    Ok(Json(state.lookup.status()))
}

/// The person's current record when it lies in the caller's scope; None when outside it (or
/// gone since the index last heard of them, which is counted as outside: the caller learns
/// nothing more either way).
async fn visible(
    state: &AppState,
    principal: &Principal,
    f: &Found,
) -> ApiResult<Option<PersonRecord>> {
    let in_scope = f
        .village
        .as_deref()
        .and_then(|v| AreaCode::parse(v).ok())
        .is_some_and(|v| principal.scope.contains(&v));
    if !in_scope {
        return Ok(None);
    }
    Ok(state
        .store
        .registry()
        .person(&principal.scope, f.person_id)
        .await?)
}

/// One read entry per candidate shown, and one for the lookup itself (the fields typed in).
async fn audit(
    state: &AppState,
    principal: &Principal,
    purpose: inkingi_domain::identity::Purpose,
    candidates: &[MatchCandidate],
    given: Vec<String>,
) -> ApiResult<()> {
    if !state.auth.settings.audit_reads {
        return Ok(());
    }
    let mut lookup = principal.audit_record("person.match", "person");
    lookup.fields = given;
    lookup.purpose = Some(purpose.to_string());
    let mut records = vec![lookup];
    records.extend(candidates.iter().map(|c| {
        let mut r = principal.audit_record("person.match", "person");
        r.subject_id = Some(c.person_id.to_string());
        r.area = c.person.person.village.clone();
        r.fields = PERSON_FIELDS.iter().map(|f| f.to_string()).collect();
        r.purpose = Some(purpose.to_string());
        r
    }));
    state.audit.record_reads(records).await
}

fn lookup_error(e: LookupError) -> ApiError {
    match e {
        LookupError::NotReady(_) => ApiError::unavailable(e.to_string()),
        LookupError::Store(s) => s.into(),
        other => ApiError::internal(other),
    }
}

/// Validates the request into the index's row (field order) and the names of the fields given.
fn probe(state: &AppState, req: &MatchRequest) -> ApiResult<(Vec<String>, Vec<String>)> {
    let mut errors = Vec::new();
    let mut err = |field: &str, reason: String| {
        errors.push(FieldError {
            field: field.into(),
            reason,
        })
    };
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut values: Vec<(&str, String)> = Vec::new();
    for (field, v) in [
        ("given_name", &req.given_name),
        ("family_name", &req.family_name),
    ] {
        match text(v) {
            None => err(field, "required: the name as written".into()),
            Some(n) if !n.chars().any(char::is_alphabetic) => err(field, "has no letters".into()),
            Some(n) if n.chars().count() > 200 => err(field, "longer than 200 characters".into()),
            Some(n) => values.push((field, n)),
        }
    }
    if let Some(s) = text(&req.sex) {
        match s.to_ascii_lowercase().as_str() {
            "f" | "female" => values.push(("sex", "F".into())),
            "m" | "male" => values.push(("sex", "M".into())),
            _ => err("sex", format!("'{s}': expected F or M")),
        }
    }
    if let Some(d) = text(&req.birth_date) {
        match BirthDate::parse_on(&d, Utc::now().date_naive()) {
            Ok(b) => values.push(("birth_date", b.to_string())),
            Err(e) => err("birth_date", e.to_string()),
        }
    }
    if let Some(n) = text(&req.national_id) {
        match NationalId::parse(&n) {
            Ok(id) => values.push(("national_id", id.as_str().to_string())),
            Err(e) => err("national_id", e.to_string()),
        }
    }
    if let Some(p) = text(&req.phone) {
        match PhoneNumber::parse(&p) {
            Ok(p) => values.push(("phone", p.as_str().to_string())),
            Err(e) => err("phone", e.to_string()),
        }
    }
    if let Some(v) = text(&req.village) {
        match AreaCode::parse(&v) {
            Ok(a) => values.push(("village", a.as_str().to_string())),
            Err(e) => err("village", e.to_string()),
        }
    }
    if let Some(l) = req.limit {
        if !(1..=50).contains(&l) {
            err("limit", format!("{l}: must be between 1 and 50"));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let row = state
        .lookup
        .fields()
        .iter()
        .map(|(name, _)| {
            values
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    let given = values.iter().map(|(f, _)| f.to_string()).collect();
    Ok((row, given))
}

/// A likely earlier registration of one member of a household being registered.
#[derive(Debug, Serialize)]
pub struct DuplicateWarning {
    /// The member's position in the request's `members`.
    pub member: usize,
    pub candidates: Vec<WarnedCandidate>,
    pub outside_scope: OutsideScope,
}

#[derive(Debug, Serialize)]
pub struct WarnedCandidate {
    pub person_id: Uuid,
    pub band: &'static str,
    pub weight: f64,
    pub given_name: String,
    pub family_name: String,
}

/// Registration's duplicate check: each new member looked up before the household is written.
/// A warning, never a block: when the index is not ready or a lookup fails, the registration
/// goes ahead without warnings (and the failure is logged). Candidates are shown (and their
/// reads audited) only to a caller who may read personal data with a declared purpose; to
/// others, and for candidates outside the caller's scope, they are counted.
pub async fn duplicate_warnings(
    state: &AppState,
    principal: &Principal,
    village: &AreaCode,
    members: &[NewMember],
) -> Vec<DuplicateWarning> {
    let shown = reader(state, principal).ok();
    let mut out = Vec::new();
    for (i, m) in members.iter().enumerate() {
        match warn_one(state, principal, village, &m.person, shown).await {
            Ok(Some(w)) => out.push(DuplicateWarning { member: i, ..w }),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "duplicate check skipped");
                return out;
            }
        }
    }
    out
}

async fn warn_one(
    state: &AppState,
    principal: &Principal,
    village: &AreaCode,
    p: &PersonInput,
    shown: Option<inkingi_domain::identity::Purpose>,
) -> Result<Option<DuplicateWarning>, String> {
    let value = |name: &str| -> String {
        match name {
            "given_name" => p.given_name.as_str().to_string(),
            "family_name" => p.family_name.as_str().to_string(),
            "sex" => p.sex.as_str().to_string(),
            "birth_date" => p.birth_date.map(|b| b.to_string()).unwrap_or_default(),
            "national_id" => p
                .national_id
                .as_ref()
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
            "phone" => p
                .phones
                .first()
                .map(|n| n.as_str().to_string())
                .unwrap_or_default(),
            "village" => village.as_str().to_string(),
            _ => String::new(),
        }
    };
    let row = state
        .lookup
        .fields()
        .iter()
        .map(|(name, _)| value(name))
        .collect();
    let found = match state.lookup.lookup(&state.store, row).await {
        Ok(f) => f,
        Err(LookupError::NotReady(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let (_, auto_link_weight) = state.lookup.thresholds();
    let mut w = DuplicateWarning {
        member: 0,
        candidates: Vec::new(),
        outside_scope: OutsideScope::default(),
    };
    for f in found.into_iter().take(10) {
        let band = if f.candidate.weight >= auto_link_weight {
            "auto_link"
        } else {
            "review"
        };
        let person = match shown {
            Some(_) => visible(state, principal, &f)
                .await
                .map_err(|e| e.to_string())?,
            None => None,
        };
        match person {
            Some(rec) => w.candidates.push(WarnedCandidate {
                person_id: f.person_id,
                band,
                weight: f.candidate.weight,
                given_name: rec.person.data.given_name.as_str().to_string(),
                family_name: rec.person.data.family_name.as_str().to_string(),
            }),
            None if band == "auto_link" => w.outside_scope.auto_link += 1,
            None => w.outside_scope.review += 1,
        }
    }
    if let Some(purpose) = shown.filter(|_| !w.candidates.is_empty()) {
        let records = w
            .candidates
            .iter()
            .map(|c| {
                let mut r = principal.audit_record("person.match", "person");
                r.subject_id = Some(c.person_id.to_string());
                r.fields = vec!["given_name".into(), "family_name".into()];
                r.purpose = Some(purpose.to_string());
                r
            })
            .collect();
        if state.auth.settings.audit_reads {
            state
                .audit
                .record_reads(records)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let any = !w.candidates.is_empty() || w.outside_scope.auto_link + w.outside_scope.review > 0;
    Ok(any.then_some(w))
}
