//! The school and child-protection feeds: pre-primary enrolments, most-vulnerable-children
//! flags and child-labour cases, by CSV (upload or `inkingi children import-school`) or JSON.
//!
//! Every record names a child, who goes through the same linkage as a FHIR Patient (linked to
//! the registry when certain, else kept unlinked and queued for review), and one fact with its
//! provenance. A file is all or nothing: every record is checked first, and one bad record
//! refuses the whole file with the row, field and reason of every fault, nothing written. Each
//! child and fact has a source key, so sending the same file again stores nothing new.

use std::collections::HashMap;

use axum::body::to_bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::{AreaCode, AreaLevel};
use inkingi_domain::identity::{AreaScope, Permission, Purpose};
use inkingi_domain::registry::{BirthDate, NationalId};
use inkingi_store::children::{FeedFact, FeedKind, Written};
use inkingi_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::dhis2::widen;
use super::fhir::parse::{PersonIn, SID_BIRTH_REGISTRATION, SID_NATIONAL_ID};
use super::ingest::Ingest;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::Query;
use crate::AppState;

/// Records one request may carry, at most.
pub const MAX_RECORDS: usize = 20_000;
/// Faults listed in one refusal, at most (the first ones, in file order).
const MAX_ERRORS: usize = 200;

/// Which feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    School,
    Protection,
}

/// The child's columns, common to both feeds.
const CHILD: &[&str] = &["village", "given_name", "family_name", "sex", "birth_date"];
const CHILD_OPTIONAL: &[&str] = &["national_id", "birth_registration"];

impl Feed {
    /// Names its audit actions and review kinds (`school_patient`, `protection.case.create`).
    pub const fn channel(self) -> &'static str {
        match self {
            Feed::School => "school",
            Feed::Protection => "protection",
        }
    }

    fn required(self) -> Vec<&'static str> {
        let own: &[&str] = match self {
            Feed::School => &["school_code", "school_name", "enrolled_on", "school_year"],
            Feed::Protection => &["case_id", "kind", "opened_on"],
        };
        own.iter().chain(CHILD).copied().collect()
    }

    fn optional(self) -> Vec<&'static str> {
        let own: &[&str] = match self {
            Feed::School => &["pupil_id", "mother_name"],
            Feed::Protection => &["closed_on", "child_id"],
        };
        own.iter().chain(CHILD_OPTIONAL).copied().collect()
    }
}

/// One record as received: where it is (`row[3]`, the line in the file; `records[0]`) and its
/// non-empty cells by column.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub at: String,
    pub cells: HashMap<String, String>,
}

/// A record that passed every check.
#[derive(Debug, Clone)]
struct Checked {
    at: String,
    /// The child's source id at the sending system.
    person_key: String,
    person: PersonIn,
    village: AreaCode,
    kind: FeedKind,
    fact_key: String,
    occurred_on: NaiveDate,
    ended_on: Option<NaiveDate>,
    details: Value,
}

/// What a feed request stored.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct FeedSummary {
    /// Records received.
    pub records: usize,
    /// Facts stored now.
    pub created: usize,
    /// Facts already stored (same source key): nothing new.
    pub existing: usize,
    /// Records whose child is a registry person.
    pub linked: usize,
    /// Records whose child is not linked (the child waits in the review queue).
    pub in_review: usize,
}

/// Reads a CSV file (UTF-8, header first; columns in any order, case-insensitive). A wrong
/// header refuses the file naming the missing and unknown columns.
pub fn read_csv(feed: Feed, bytes: &[u8]) -> ApiResult<Vec<RawRecord>> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
        .map_err(|e| ApiError::invalid_field("file", format!("not UTF-8 text: {e}")))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::invalid_field("header", e.to_string()))?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect();
    check_columns(feed, header.iter().map(String::as_str), "header")?;
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ApiError::validation(vec![FieldError {
                field: format!("row[{line}]"),
                reason: e.to_string(),
            }])
        })?;
        let line = row.position().map_or(0, |p| p.line());
        let cells = header
            .iter()
            .zip(row.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        out.push(RawRecord {
            at: format!("row[{line}]"),
            cells,
        });
        too_many(out.len())?;
    }
    Ok(out)
}

/// Reads the `records` of a JSON feed: objects whose values are strings (or null).
pub fn read_json(feed: Feed, records: &[Map<String, Value>]) -> ApiResult<Vec<RawRecord>> {
    too_many(records.len())?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let at = format!("records[{i}]");
        if let Err(e) = check_columns(feed, r.keys().map(String::as_str), &at) {
            errors.extend(e.errors);
        }
        let mut cells = HashMap::new();
        for (k, v) in r {
            match v {
                Value::String(s) if !s.trim().is_empty() => {
                    cells.insert(k.clone(), s.trim().to_string());
                }
                Value::String(_) | Value::Null => {}
                _ => errors.push(FieldError {
                    field: format!("{at}.{k}"),
                    reason: "expected a string or null".into(),
                }),
            }
        }
        out.push(RawRecord { at, cells });
    }
    refuse_if_any(errors)?;
    Ok(out)
}

fn too_many(n: usize) -> ApiResult<()> {
    if n > MAX_RECORDS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-records",
            format!("at most {MAX_RECORDS} records per request: split the file"),
        ));
    }
    Ok(())
}

fn refuse_if_any(mut errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        return Ok(());
    }
    errors.truncate(MAX_ERRORS);
    Err(ApiError::validation(errors))
}

/// Every required column present, none unknown (JSON: missing keys count as empty cells, so
/// only unknown ones are refused there).
fn check_columns<'a>(feed: Feed, names: impl Iterator<Item = &'a str>, at: &str) -> ApiResult<()> {
    let (required, optional) = (feed.required(), feed.optional());
    let names: Vec<&str> = names.collect();
    let mut errors: Vec<FieldError> = names
        .iter()
        .filter(|n| !required.contains(n) && !optional.contains(n))
        .map(|n| FieldError {
            field: format!("{at}.{n}"),
            reason: format!(
                "unknown column; expected {} and optionally {}",
                required.join(", "),
                optional.join(", ")
            ),
        })
        .collect();
    if at == "header" {
        errors.extend(
            required
                .iter()
                .filter(|r| !names.contains(r))
                .map(|r| FieldError {
                    field: format!("header.{r}"),
                    reason: "required column missing".into(),
                }),
        );
    }
    refuse_if_any(errors)
}

/// Checks one record's cells, collecting every fault.
struct Cells<'a> {
    r: &'a RawRecord,
    errors: Vec<FieldError>,
}

impl Cells<'_> {
    fn fail(&mut self, field: &str, reason: String) {
        self.errors.push(FieldError {
            field: format!("{}.{field}", self.r.at),
            reason,
        });
    }

    fn opt(&self, field: &str) -> Option<&str> {
        self.r.cells.get(field).map(String::as_str)
    }

    /// A required text of at most `max` characters.
    fn text(&mut self, field: &str, max: usize) -> Option<String> {
        match self.opt(field).map(str::to_string) {
            None => {
                self.fail(field, "required".into());
                None
            }
            Some(v) => self.bounded(field, v, max),
        }
    }

    fn opt_text(&mut self, field: &str, max: usize) -> Option<String> {
        let v = self.opt(field)?.to_string();
        self.bounded(field, v, max)
    }

    fn bounded(&mut self, field: &str, v: String, max: usize) -> Option<String> {
        if v.chars().count() > max || v.chars().any(char::is_control) {
            self.fail(
                field,
                format!("'{v}': at most {max} characters, no control characters"),
            );
            return None;
        }
        Some(v)
    }

    /// A date `YYYY-MM-DD`, not after `today`.
    fn date(&mut self, field: &str, today: NaiveDate, required: bool) -> Option<NaiveDate> {
        let Some(v) = self.opt(field).map(str::to_string) else {
            if required {
                self.fail(field, "required".into());
            }
            return None;
        };
        match NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
            Ok(d) if d <= today => Some(d),
            Ok(_) => {
                self.fail(field, format!("'{v}' is in the future"));
                None
            }
            Err(_) => {
                self.fail(field, format!("'{v}': expected a date YYYY-MM-DD"));
                None
            }
        }
    }

    /// The child: names, sex, birth date (with its precision), identifiers, village in scope.
    fn child(&mut self, scope: &AreaScope, today: NaiveDate) -> Option<(PersonIn, AreaCode)> {
        let village = self.opt("village").map(str::to_string);
        let village = match village.as_deref().map(AreaCode::parse) {
            None => {
                self.fail("village", "required".into());
                None
            }
            Some(Ok(c)) if c.level() != AreaLevel::Village => {
                self.fail(
                    "village",
                    format!("'{c}' is a {}, not a village", c.level()),
                );
                None
            }
            Some(Ok(c)) if !scope.contains(&c) => {
                self.fail("village", format!("'{c}' is outside your area scope"));
                None
            }
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                self.fail("village", e.to_string());
                None
            }
        };
        let given = self.text("given_name", 100);
        let family = self.text("family_name", 100);
        let sex = match self.opt("sex") {
            Some("F" | "f") => Some("F".to_string()),
            Some("M" | "m") => Some("M".to_string()),
            Some(v) => {
                let v = v.to_string();
                self.fail("sex", format!("'{v}': expected F or M"));
                None
            }
            None => {
                self.fail("sex", "required".into());
                None
            }
        };
        let birth = match self
            .opt("birth_date")
            .map(|v| (v.to_string(), BirthDate::parse_on(v, today)))
        {
            Some((_, Ok(b))) => Some(b.to_string()),
            Some((v, Err(e))) => {
                self.fail("birth_date", format!("'{v}': {e}"));
                None
            }
            None => {
                self.fail("birth_date", "required".into());
                None
            }
        };
        let mut identifiers = Vec::new();
        if let Some(v) = self.opt("national_id").map(str::to_string) {
            match NationalId::parse(&v) {
                Ok(n) => identifiers.push((SID_NATIONAL_ID.to_string(), n.to_string())),
                Err(e) => self.fail("national_id", format!("'{v}': {e}")),
            }
        }
        if let Some(v) = self.opt_text("birth_registration", 40) {
            identifiers.push((SID_BIRTH_REGISTRATION.to_string(), v));
        }
        let person = PersonIn {
            identifiers,
            given,
            family,
            sex,
            birth_date: birth,
            patient: None,
            relationship: None,
        };
        Some((person, village?))
    }
}

/// The key of a child named without an id at its source: school, names and birth date.
fn name_key(p: &PersonIn) -> String {
    format!(
        "{}|{}|{}",
        p.given.as_deref().unwrap_or_default().to_lowercase(),
        p.family.as_deref().unwrap_or_default().to_lowercase(),
        p.birth_date.as_deref().unwrap_or_default()
    )
}

fn check(
    feed: Feed,
    r: &RawRecord,
    scope: &AreaScope,
    today: NaiveDate,
) -> Result<Checked, Vec<FieldError>> {
    let mut c = Cells {
        r,
        errors: Vec::new(),
    };
    let child = c.child(scope, today);
    let checked = match feed {
        Feed::School => check_school(&mut c, child, today),
        Feed::Protection => check_protection(&mut c, child, today),
    };
    match checked {
        Some(x) if c.errors.is_empty() => Ok(x),
        _ => Err(c.errors),
    }
}

fn check_school(
    c: &mut Cells<'_>,
    child: Option<(PersonIn, AreaCode)>,
    today: NaiveDate,
) -> Option<Checked> {
    let school = c.text("school_code", 32);
    let name = c.text("school_name", 200);
    let year = c.text("school_year", 9);
    let year_ok = year.as_deref().is_some_and(|y| {
        let b = y.as_bytes();
        (b.len() == 4 && b.iter().all(u8::is_ascii_digit))
            || (b.len() == 9
                && b[4] == b'-'
                && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit))
    });
    if year.is_some() && !year_ok {
        let y = year.clone().unwrap_or_default();
        c.fail("school_year", format!("'{y}': expected YYYY or YYYY-YYYY"));
    }
    let enrolled = c.date("enrolled_on", today, true);
    let pupil = c.opt_text("pupil_id", 64);
    let mother = c.opt_text("mother_name", 200);
    let (person, village) = child?;
    let (school, name, year, enrolled) = (school?, name?, year?, enrolled?);
    before_birth(c, &person, enrolled, "enrolled_on")?;
    let tail = pupil.clone().unwrap_or_else(|| name_key(&person));
    Some(Checked {
        at: c.r.at.clone(),
        person_key: format!("pupil/{school}/{tail}"),
        fact_key: format!("enrolment/{school}/{year}/{tail}"),
        kind: FeedKind::PreprimaryEnrolment,
        occurred_on: enrolled,
        ended_on: None,
        details: json!({
            "school_code": school, "school_name": name, "school_year": year,
            "village": village.as_str(), "pupil_id": pupil, "mother_name": mother,
        }),
        person,
        village,
    })
}

/// Kinds of child-protection case.
const CASE_KINDS: &[&str] = &["most_vulnerable", "child_labour"];

fn check_protection(
    c: &mut Cells<'_>,
    child: Option<(PersonIn, AreaCode)>,
    today: NaiveDate,
) -> Option<Checked> {
    let case = c.text("case_id", 64);
    let kind = match c.opt("kind").map(str::to_string) {
        Some(k) if CASE_KINDS.contains(&k.as_str()) => Some(k),
        Some(k) => {
            c.fail(
                "kind",
                format!("'{k}': expected {}", CASE_KINDS.join(" or ")),
            );
            None
        }
        None => {
            c.fail("kind", "required".into());
            None
        }
    };
    let opened = c.date("opened_on", today, true);
    let closed = c.date("closed_on", today, false);
    if let (Some(o), Some(cl)) = (opened, closed) {
        if cl < o {
            c.fail("closed_on", format!("{cl} is before opened_on {o}"));
        }
    }
    let child_id = c.opt_text("child_id", 64);
    let (person, village) = child?;
    let (case, kind, opened) = (case?, kind?, opened?);
    before_birth(c, &person, opened, "opened_on")?;
    Some(Checked {
        at: c.r.at.clone(),
        person_key: child_id
            .as_ref()
            .map_or_else(|| format!("case/{case}"), |id| format!("child/{id}")),
        fact_key: format!("case/{case}"),
        kind: FeedKind::ProtectionCase,
        occurred_on: opened,
        ended_on: closed,
        details: json!({"case_id": case, "case_kind": kind, "child_id": child_id}),
        person,
        village,
    })
}

/// Refuses a date before the child's birth (the earliest day its birth date allows).
fn before_birth(c: &mut Cells<'_>, p: &PersonIn, on: NaiveDate, field: &str) -> Option<()> {
    let born = p
        .birth_date
        .as_deref()
        .and_then(|b| BirthDate::parse(b).ok())?;
    if on < born.earliest() {
        c.fail(
            field,
            format!("{on} is before the child's birth date {born}"),
        );
        return None;
    }
    Some(())
}

/// Checks and stores `records` of `feed` sent by `principal` as `source` (default: the
/// account's name): all or nothing.
pub async fn receive(
    store: &Store,
    principal: &Principal,
    feed: Feed,
    source: Option<&str>,
    records: &[RawRecord],
) -> ApiResult<FeedSummary> {
    let system = match source.map(str::trim) {
        None | Some("") => principal.username.as_str().to_string(),
        Some(s) if s.len() <= 64 && !s.chars().any(char::is_control) => s.to_string(),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "source",
                "at most 64 characters, no control characters",
            ))
        }
    };
    let today = Utc::now().date_naive();
    let mut checked = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    for r in records {
        match check(feed, r, &principal.scope, today) {
            Ok(c) => checked.push(c),
            Err(e) => errors.extend(e),
        }
    }
    refuse_if_any(errors)?;
    let mut ingest = Ingest::on(store, principal.clone(), feed.channel());
    let mut uow = store.begin().await?;
    let mut summary = FeedSummary {
        records: records.len(),
        ..Default::default()
    };
    let action = match feed {
        Feed::School => "school.enrolment.create",
        Feed::Protection => "protection.case.create",
    };
    for c in &checked {
        // Compared with the registry people of the record's district, as for DHIS2 (faster,
        // and fewer look-alikes), when the sender may see all of it.
        let district = widen(&c.village, AreaLevel::District);
        let within = match AreaScope::areas([district.clone()]) {
            Ok(d) if principal.scope.contains(&district) => d,
            _ => principal.scope.clone(),
        };
        ingest.place(within, Some(c.village.clone()));
        let found = ingest
            .feed_person(&mut uow, (&system, &c.person_key), &c.at, &c.person)
            .await?;
        let (subject, area) = match found {
            Ok(x) => x,
            Err(issues) => {
                uow.rollback().await?;
                return Err(ApiError::validation(
                    issues
                        .into_iter()
                        .map(|i| FieldError {
                            field: i.expression,
                            reason: i.diagnostics,
                        })
                        .collect(),
                ));
            }
        };
        let f = FeedFact {
            id: Uuid::now_v7(),
            subject,
            kind: c.kind,
            occurred_on: c.occurred_on,
            ended_on: c.ended_on,
            details: c.details.clone(),
            sealed: None,
            provenance: ingest.feed_provenance(&system, c.fact_key.clone()),
        };
        match ingest.feed_fact(&mut uow, &f, area, action).await? {
            Written::Created(_) => summary.created += 1,
            Written::Existing(_) => summary.existing += 1,
        }
        if subject.person_id.is_some() {
            summary.linked += 1;
        } else {
            summary.in_review += 1;
        }
    }
    uow.commit().await?;
    Ok(summary)
}

/// `?source=`: the sending system (default: the account's name); with the record ids it
/// makes the source keys.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    pub source: Option<String>,
}

/// A JSON feed: records whose keys are the CSV columns.
#[derive(Debug, Deserialize, ToSchema)]
pub struct FeedBody {
    pub source: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<Map<String, Value>>,
}

/// Reads the request body: multipart (part `file`, optional part `source`), `text/csv`, or
/// JSON ([`FeedBody`]).
async fn body_records(
    state: &AppState,
    feed: Feed,
    params: FeedParams,
    request: Request,
) -> ApiResult<(Option<String>, Vec<RawRecord>)> {
    let ctype = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ctype.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("multipart body: {e}")))?;
        let (mut source, mut file) = (params.source, None);
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("multipart body: {e}")))?
        {
            let name = field.name().unwrap_or_default().to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| ApiError::invalid_field(name.clone(), e.to_string()))?;
            match name.as_str() {
                "source" => source = Some(String::from_utf8_lossy(&bytes).trim().to_string()),
                "file" => file = Some(bytes),
                other => {
                    return Err(ApiError::invalid_field(
                        other.to_string(),
                        format!("unknown part '{other}': send file and optionally source"),
                    ))
                }
            }
        }
        let file = file.ok_or_else(|| {
            ApiError::invalid_field("file", "part 'file' (a CSV file) is missing")
        })?;
        return Ok((source, read_csv(feed, &file)?));
    }
    let bytes = to_bytes(request.into_body(), state.settings.body_limit)
        .await
        .map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    if ctype.starts_with("text/csv") {
        return Ok((params.source, read_csv(feed, &bytes)?));
    }
    if ctype.starts_with("application/json") {
        let body: FeedBody = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("JSON body: {e}")))?;
        return Ok((
            body.source.or(params.source),
            read_json(feed, &body.records)?,
        ));
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "send multipart/form-data (part 'file'), text/csv or application/json",
    ))
}

/// Pre-primary enrolments from school data (CSV or JSON): all records stored, or none.
#[utoipa::path(post, path = "/api/v1/children/feeds/school", tag = "children", operation_id = "children_feed_school",
    params(FeedParams),
    request_body(content = FeedBody, description = "JSON records; or text/csv; or multipart/form-data with part 'file' (CSV) and optionally 'source'. Columns: school_code, school_name, village, given_name, family_name, sex, birth_date (YYYY[-MM[-DD]]), enrolled_on, school_year; optional pupil_id, national_id, birth_registration, mother_name"),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "What was stored", body = FeedSummary),
        (status = 422, description = "Refused, nothing stored: every fault with its row and field", body = crate::error::ProblemBody)))]
pub async fn school(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<FeedParams>,
    request: Request,
) -> ApiResult<Json<FeedSummary>> {
    principal.require(Permission::RecordHealthData)?;
    let (source, records) = body_records(&state, Feed::School, params, request).await?;
    let s = receive(
        &state.store,
        &principal,
        Feed::School,
        source.as_deref(),
        &records,
    )
    .await?;
    Ok(Json(s))
}

/// Whether `principal`'s role may read child-protection data: it may declare that purpose.
fn may_protect(state: &AppState, principal: &Principal) -> bool {
    state
        .auth
        .settings
        .purposes
        .allows(principal.role, Purpose::ChildProtection)
}

fn protection_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "child-protection data is for roles that may declare the child-protection purpose",
    )
}

/// Child-protection cases (CSV or JSON): most-vulnerable-children flags and child-labour
/// cases. All records stored, or none.
#[utoipa::path(post, path = "/api/v1/children/feeds/protection", tag = "children", operation_id = "children_feed_protection",
    params(FeedParams),
    request_body(content = FeedBody, description = "JSON records; or text/csv; or multipart/form-data with part 'file' (CSV). Columns: case_id, kind (most_vulnerable | child_labour), opened_on, village, given_name, family_name, sex, birth_date; optional closed_on, child_id, national_id, birth_registration"),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "What was stored", body = FeedSummary),
        (status = 403, description = "The role may not handle child-protection data"),
        (status = 422, description = "Refused, nothing stored: every fault with its row and field", body = crate::error::ProblemBody)))]
pub async fn protection(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<FeedParams>,
    request: Request,
) -> ApiResult<Json<FeedSummary>> {
    principal.require(Permission::RecordHealthData)?;
    if !may_protect(&state, &principal) {
        return Err(protection_only());
    }
    let (source, records) = body_records(&state, Feed::Protection, params, request).await?;
    let s = receive(
        &state.store,
        &principal,
        Feed::Protection,
        source.as_deref(),
        &records,
    )
    .await?;
    Ok(Json(s))
}

/// The child-protection cases of a person, for the child-protection purpose only (declared
/// or implied); the read is audited with it.
pub async fn protection_cases(
    state: &AppState,
    principal: &Principal,
    person_id: Uuid,
) -> ApiResult<Option<Vec<FeedFact>>> {
    if !may_protect(state, principal) {
        return Ok(None);
    }
    let facts = state
        .store
        .children()
        .restricted_facts(&principal.scope, person_id, FeedKind::ProtectionCase)
        .await?;
    Ok(Some(facts))
}

/// A person's child-protection cases.
#[utoipa::path(get, path = "/api/v1/children/{person_id}/protection", tag = "children", operation_id = "children_protection_cases",
    params(("person_id" = Uuid, Path), ("X-Purpose-Of-Use" = Option<String>, Header, description = "child-protection (implied when absent)")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The cases, oldest first", body = Vec<Object>),
        (status = 403, description = "The role may not read child-protection data, or another purpose was declared"),
        (status = 404, description = "No such person in your area scope")))]
pub async fn protection_read(
    State(state): State<AppState>,
    principal: Principal,
    Path(person_id): Path<Uuid>,
) -> ApiResult<Json<Vec<FeedFact>>> {
    principal.require(Permission::ReadPersonalData)?;
    let purpose = principal.purpose_or(Purpose::ChildProtection, &state.auth.settings.purposes)?;
    if purpose != Purpose::ChildProtection || !may_protect(&state, &principal) {
        return Err(protection_only());
    }
    let person = super::services::visible_person(&state, &principal, person_id).await?;
    let cases = protection_cases(&state, &principal, person_id)
        .await?
        .unwrap_or_default();
    crate::audit::record_read(
        &state,
        &principal,
        purpose,
        ("person", &person_id.to_string()),
        person.person.village.clone(),
        &["protection_cases"],
    )
    .await?;
    Ok(Json(cases))
}
