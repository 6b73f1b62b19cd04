//! FHIR R4 for the child record: `POST /fhir/R4` transaction and batch Bundles, create of
//! Patient, RelatedPerson, Immunization, Observation and Encounter, reads of a child's
//! resources, and the CapabilityStatement of exactly that.
//!
//! Bodies are `application/fhir+json`; every refusal is an OperationOutcome naming the element
//! at fault. A transaction is all-or-nothing; a batch stores each entry on its own. Writes
//! need a health role (`RecordHealthData`), reads `ReadHealthData` and a declared purpose; both
//! are audited and limited to the caller's area scope.

pub mod parse;
pub mod render;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use inkingi_domain::children::schedule::Schedules;
use inkingi_domain::identity::Permission;
use inkingi_store::children::{PersonFacts, Written};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::ingest::{Ingest, Stored};
use crate::audit::record_read;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::AppState;
use parse::{outcome, Incoming, Issue};

pub const FHIR_JSON: &str = "application/fhir+json";
/// Entries of one Bundle, at most.
pub const MAX_ENTRIES: usize = 1000;

/// A FHIR error: an OperationOutcome with an HTTP status.
#[derive(Debug)]
pub struct FhirError {
    pub status: StatusCode,
    pub issues: Vec<Issue>,
}

impl FhirError {
    fn new(status: StatusCode, issues: Vec<Issue>) -> Self {
        FhirError { status, issues }
    }
}

impl From<ApiError> for FhirError {
    fn from(e: ApiError) -> Self {
        let code = match e.status.as_u16() {
            401 => "login",
            403 => "forbidden",
            404 => "not-found",
            409 => "conflict",
            400 | 422 => "invalid",
            503 => "transient",
            _ => "exception",
        };
        let expression = e.field.clone().unwrap_or_default();
        FhirError::new(e.status, vec![Issue::new(code, expression, e.detail)])
    }
}

impl From<inkingi_store::StoreError> for FhirError {
    fn from(e: inkingi_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        fhir(self.status, outcome(&self.issues))
    }
}

type FhirResult<T> = Result<T, FhirError>;

/// One Bundle entry as read: its fullUrl and the resource, or the issues refusing it.
type Parsed = (Option<String>, Result<Incoming, Vec<Issue>>);

/// A FHIR JSON response.
pub fn fhir(status: StatusCode, body: Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    res
}

fn vaccines() -> FhirResult<&'static inkingi_domain::children::schedule::VaccineCodes> {
    Schedules::embedded()
        .map(|s| &s.vaccines)
        .map_err(|e| ApiError::internal(e).into())
}

fn body_json(body: &Bytes) -> FhirResult<Value> {
    serde_json::from_slice(body).map_err(|e| {
        FhirError::new(
            StatusCode::BAD_REQUEST,
            vec![Issue::new(
                "structure",
                "",
                format!("the body is not JSON: {e}"),
            )],
        )
    })
}

/// The CapabilityStatement: exactly what this server supports.
#[utoipa::path(get, path = "/fhir/R4/metadata", tag = "fhir", operation_id = "fhir_metadata",
    responses((status = 200, description = "CapabilityStatement (application/fhir+json)", body = Object)))]
pub async fn metadata() -> Response {
    let create_and_search = |t: &str, doc: &str| {
        json!({
            "type": t,
            "interaction": [{"code": "create"}, {"code": "search-type"}],
            "searchParam": [{"name": "patient", "type": "reference",
                "documentation": "A registry person id or a received Patient's id"}],
            "documentation": doc,
        })
    };
    let codes: Vec<&str> = parse::OBSERVATION_CODES.iter().map(|(c, _)| *c).collect();
    fhir(
        StatusCode::OK,
        json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-22",
            "kind": "instance",
            "software": {"name": "Inkingi", "version": env!("CARGO_PKG_VERSION")},
            "implementation": {"description": "Inkingi integrated child record (children under six and their mothers)"},
            "fhirVersion": "4.0.1",
            "format": [FHIR_JSON],
            "rest": [{
                "mode": "server",
                "security": {"description": "Bearer API token of a user with a health role; reads need the X-Purpose-Of-Use header (healthcare)"},
                "interaction": [
                    {"code": "transaction", "documentation": "All or nothing"},
                    {"code": "batch", "documentation": "Each entry on its own"}
                ],
                "resource": [
                    {"type": "Patient", "interaction": [{"code": "create"}, {"code": "read"}],
                     "documentation": format!("Linked to a registry person by identifier ({}, {}, {}) or else by record linkage within the sender's area; uncertain matches are queued for review", parse::SID_PERSON, parse::SID_NATIONAL_ID, parse::SID_BIRTH_REGISTRATION)},
                    {"type": "RelatedPerson", "interaction": [{"code": "create"}],
                     "documentation": "relationship coded in v3 RoleCode (MTH, FTH, GUARD)"},
                    create_and_search("Immunization", &format!("status completed; vaccineCode in CVX ({}) or WHO ATC ({}); protocolApplied.doseNumber; unknown codes are kept and flagged for mapping", inkingi_domain::children::schedule::CVX, inkingi_domain::children::schedule::ATC)),
                    create_and_search("Observation", &format!("LOINC {}: weight, height, length, head circumference, MUAC (valueQuantity), last menstrual period and estimated delivery date (valueDateTime); {} hiv-exposure (valueCodeableConcept {}: exposed, not-exposed, unknown; sealed, shown to health workers only)", codes.join(", "), parse::INKINGI_OBSERVATION, parse::HIV_EXPOSURE_VALUES)),
                    create_and_search("Encounter", &format!("type {} anc|pnc|other, or SNOMED CT 424619006 / 133906008; period.start", parse::CONTACT_TYPE)),
                ],
            }],
        }),
    )
}

/// Parses every entry of a Bundle: (entry index, fullUrl, parsed) or the issues of all.
fn entries(b: &Value) -> FhirResult<(bool, Vec<Parsed>)> {
    let bad = |at: &str, why: String| {
        FhirError::new(
            StatusCode::BAD_REQUEST,
            vec![Issue::new("invalid", at, why)],
        )
    };
    if b.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(bad(
            "Bundle.resourceType",
            "POST /fhir/R4 takes a Bundle".into(),
        ));
    }
    let transaction = match b.get("type").and_then(Value::as_str) {
        Some("transaction") => true,
        Some("batch") => false,
        other => {
            return Err(bad(
                "Bundle.type",
                format!("{other:?}: expected transaction or batch"),
            ))
        }
    };
    let list = b
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if list.len() > MAX_ENTRIES {
        return Err(bad(
            "Bundle.entry",
            format!("{} entries; at most {MAX_ENTRIES}", list.len()),
        ));
    }
    let vaccines = vaccines()?;
    let today = chrono::Utc::now().date_naive();
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let at = format!("Bundle.entry[{i}]");
        let full_url = e.get("fullUrl").and_then(Value::as_str).map(str::to_string);
        let method = e.pointer("/request/method").and_then(Value::as_str);
        let parsed = if method.is_some_and(|m| m != "POST") {
            Err(vec![Issue::new(
                "not-supported",
                format!("{at}.request.method"),
                format!(
                    "{}: only POST (create) is supported",
                    method.unwrap_or_default()
                ),
            )])
        } else {
            match e.get("resource") {
                Some(r) => parse::resource(
                    r,
                    &format!("{at}.resource"),
                    full_url.as_deref(),
                    vaccines,
                    today,
                ),
                None => Err(vec![Issue::new(
                    "required",
                    format!("{at}.resource"),
                    "an entry needs a resource",
                )]),
            }
        };
        out.push((full_url, parsed));
    }
    Ok((transaction, out))
}

/// Persons first, so facts in the same Bundle can refer to them; otherwise Bundle order.
fn processing_order(n: usize, parsed: &[Parsed]) -> Vec<usize> {
    let rank = |i: usize| match &parsed[i].1 {
        Ok(inc) if inc.resource_type == "Patient" => 0,
        Ok(inc) if inc.resource_type == "RelatedPerson" => 1,
        _ => 2,
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|i| (rank(*i), *i));
    order
}

fn entry_response(s: &Stored) -> Value {
    let (status, id) = match s.written {
        Written::Created(id) => ("201 Created", id),
        Written::Existing(id) => ("200 OK", id),
    };
    json!({"response": {"status": status, "location": format!("{}/{id}", s.resource_type)}})
}

/// Transaction or batch Bundle.
#[utoipa::path(post, path = "/fhir/R4", tag = "fhir", operation_id = "fhir_bundle",
    request_body(content = Object, description = "A FHIR R4 Bundle of type transaction or batch (application/fhir+json)"),
    security(("bearer" = [])),
    responses((status = 200, description = "transaction-response or batch-response Bundle", body = Object),
        (status = 400, description = "OperationOutcome naming the elements at fault; nothing stored", body = Object),
        (status = 422, description = "OperationOutcome: a business rule refused an entry; nothing stored", body = Object)))]
pub async fn bundle(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> FhirResult<Response> {
    principal.require(Permission::RecordHealthData)?;
    let b = body_json(&body)?;
    let (transaction, parsed) = entries(&b)?;
    if transaction {
        return run_transaction(&state, &principal, parsed).await;
    }
    run_batch(&state, &principal, parsed).await
}

async fn run_transaction(
    state: &AppState,
    principal: &Principal,
    parsed: Vec<Parsed>,
) -> FhirResult<Response> {
    let issues: Vec<Issue> = parsed
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .flatten()
        .cloned()
        .collect();
    if !issues.is_empty() {
        return Err(FhirError::new(StatusCode::BAD_REQUEST, issues));
    }
    let mut ingest = Ingest::new(state, principal);
    let mut uow = state.store.begin().await?;
    let mut results: Vec<Option<Stored>> = vec![None; parsed.len()];
    for i in processing_order(parsed.len(), &parsed) {
        let (full_url, Ok(inc)) = &parsed[i] else {
            continue;
        };
        match ingest.one(&mut uow, inc, full_url.as_deref()).await? {
            Ok(s) => results[i] = Some(s),
            Err(issues) => {
                uow.rollback().await?;
                return Err(FhirError::new(StatusCode::UNPROCESSABLE_ENTITY, issues));
            }
        }
    }
    uow.commit().await?;
    let entry: Vec<Value> = results.iter().flatten().map(entry_response).collect();
    Ok(fhir(
        StatusCode::OK,
        json!({"resourceType": "Bundle", "type": "transaction-response", "entry": entry}),
    ))
}

async fn run_batch(
    state: &AppState,
    principal: &Principal,
    parsed: Vec<Parsed>,
) -> FhirResult<Response> {
    let mut ingest = Ingest::new(state, principal);
    let mut results: Vec<Value> = vec![Value::Null; parsed.len()];
    for i in processing_order(parsed.len(), &parsed) {
        let (full_url, r) = &parsed[i];
        results[i] = match r {
            Err(issues) => failed("400 Bad Request", issues),
            Ok(inc) => {
                let mut uow = state.store.begin().await?;
                match ingest.one(&mut uow, inc, full_url.as_deref()).await? {
                    Ok(s) => {
                        uow.commit().await?;
                        entry_response(&s)
                    }
                    Err(issues) => {
                        uow.rollback().await?;
                        failed("422 Unprocessable Entity", &issues)
                    }
                }
            }
        };
    }
    Ok(fhir(
        StatusCode::OK,
        json!({"resourceType": "Bundle", "type": "batch-response", "entry": results}),
    ))
}

fn failed(status: &str, issues: &[Issue]) -> Value {
    json!({"response": {"status": status, "outcome": outcome(issues)}})
}

/// Create one resource of the type in the path.
async fn create(
    state: &AppState,
    principal: &Principal,
    resource_type: &str,
    body: Bytes,
) -> FhirResult<Response> {
    principal.require(Permission::RecordHealthData)?;
    let r = body_json(&body)?;
    let sent = r
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if sent != resource_type {
        return Err(FhirError::new(
            StatusCode::BAD_REQUEST,
            vec![Issue::new(
                "invalid",
                format!("{resource_type}.resourceType"),
                format!("'{sent}' posted to /fhir/R4/{resource_type}"),
            )],
        ));
    }
    let today = chrono::Utc::now().date_naive();
    let inc = parse::resource(&r, resource_type, None, vaccines()?, today)
        .map_err(|issues| FhirError::new(StatusCode::BAD_REQUEST, issues))?;
    let mut ingest = Ingest::new(state, principal);
    let mut uow = state.store.begin().await?;
    match ingest.one(&mut uow, &inc, None).await? {
        Ok(s) => {
            uow.commit().await?;
            let (status, id) = match s.written {
                Written::Created(id) => (StatusCode::CREATED, id),
                Written::Existing(id) => (StatusCode::OK, id),
            };
            let mut res = fhir(
                status,
                json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational", "diagnostics": if status == StatusCode::CREATED { "created" } else { "already received; nothing changed" }}]}),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("{resource_type}/{id}")) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            Ok(res)
        }
        Err(issues) => {
            uow.rollback().await?;
            Err(FhirError::new(StatusCode::UNPROCESSABLE_ENTITY, issues))
        }
    }
}

macro_rules! create_route {
    ($name:ident, $rt:literal, $op:literal) => {
        #[doc = concat!("Create a ", $rt, ".")]
        #[utoipa::path(post, path = concat!("/fhir/R4/", $rt), tag = "fhir", operation_id = $op,
            request_body(content = Object, description = concat!("A FHIR R4 ", $rt, " (application/fhir+json)")),
            security(("bearer" = [])),
            responses((status = 201, description = "Created; Location names it"),
                (status = 200, description = "Already received (same source system and id); nothing changed"),
                (status = 400, description = "OperationOutcome naming the elements at fault", body = Object),
                (status = 422, description = "OperationOutcome: refused by a business rule", body = Object)))]
        pub async fn $name(State(state): State<AppState>, principal: Principal, body: Bytes) -> FhirResult<Response> {
            create(&state, &principal, $rt, body).await
        }
    };
}

create_route!(create_patient, "Patient", "fhir_create_patient");
create_route!(
    create_related_person,
    "RelatedPerson",
    "fhir_create_related_person"
);
create_route!(
    create_immunization,
    "Immunization",
    "fhir_create_immunization"
);
create_route!(create_observation, "Observation", "fhir_create_observation");
create_route!(create_encounter, "Encounter", "fhir_create_encounter");

/// Read a Patient: a registry person (by its id) or a received, unlinked person.
#[utoipa::path(get, path = "/fhir/R4/Patient/{id}", tag = "fhir", operation_id = "fhir_read_patient",
    params(("id" = Uuid, Path), ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Patient", body = Object),
        (status = 404, description = "OperationOutcome: no such patient in your area scope", body = Object)))]
pub async fn read_patient(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> FhirResult<Response> {
    let purpose = health_reader(&state, &principal)?;
    let (resource, area) = match patient(&state, &principal, &id).await? {
        Some(found) => found,
        None => return Err(not_found(&state, &principal, &id).await),
    };
    record_read(
        &state,
        &principal,
        purpose,
        ("person", &id),
        area,
        &["Patient"],
    )
    .await?;
    Ok(fhir(StatusCode::OK, resource))
}

fn health_reader(
    state: &AppState,
    principal: &Principal,
) -> FhirResult<inkingi_domain::identity::Purpose> {
    principal.require(Permission::ReadHealthData)?;
    Ok(principal.purpose(&state.auth.settings.purposes)?)
}

async fn not_found(state: &AppState, principal: &Principal, id: &str) -> FhirError {
    let e = match Uuid::parse_str(id) {
        Ok(uuid) => crate::registry::not_visible(state, principal, "person", uuid).await,
        Err(_) => ApiError::not_found(format!("no Patient {id}")),
    };
    let mut f = FhirError::from(e);
    for i in &mut f.issues {
        i.expression = "Patient.id".into();
    }
    f
}

async fn patient(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> FhirResult<Option<(Value, Option<inkingi_domain::areas::AreaCode>)>> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    if let Some(p) = state
        .store
        .registry()
        .person(&principal.scope, uuid)
        .await?
    {
        return Ok(Some((
            render::patient_from_registry(&p),
            p.person.village.clone(),
        )));
    }
    if let Some(s) = state
        .store
        .children()
        .source_person_by_id(&principal.scope, uuid)
        .await?
    {
        let area = s
            .area_code
            .as_deref()
            .and_then(|a| inkingi_domain::areas::AreaCode::parse(a).ok());
        return Ok(Some((render::patient_from_source(&s), area)));
    }
    Ok(None)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PatientSearch {
    /// `<id>` or `Patient/<id>`: a registry person id or a received Patient's id.
    pub patient: String,
}

/// The facts of the patient named in a search, within scope, with the read audited.
async fn facts_for(
    state: &AppState,
    principal: &Principal,
    q: &PatientSearch,
    what: &str,
) -> FhirResult<PersonFacts> {
    let purpose = health_reader(state, principal)?;
    let id = q.patient.trim().trim_start_matches("Patient/");
    let Some((_, area)) = patient(state, principal, id).await? else {
        return Err(not_found(state, principal, id).await);
    };
    let uuid = Uuid::parse_str(id)
        .map_err(|_| ApiError::invalid_field("patient", "expected a patient id"))?;
    let children = state.store.children();
    let mut facts = match children
        .facts_of_people(&principal.scope, &[uuid])
        .await?
        .pop()
    {
        Some((_, f)) => f,
        None => PersonFacts::default(),
    };
    if facts == PersonFacts::default() {
        facts = children
            .facts_of_source_person(&principal.scope, uuid)
            .await?;
    }
    record_read(state, principal, purpose, ("person", id), area, &[what]).await?;
    Ok(facts)
}

macro_rules! search_route {
    ($name:ident, $rt:literal, $op:literal) => {
        #[doc = concat!("Search ", $rt, " resources of a patient.")]
        #[utoipa::path(get, path = concat!("/fhir/R4/", $rt), tag = "fhir", operation_id = $op,
            params(PatientSearch, ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
            security(("bearer" = []), ("session" = [])),
            responses((status = 200, description = "searchset Bundle", body = Object),
                (status = 404, description = "OperationOutcome: no such patient in your area scope", body = Object)))]
        pub async fn $name(State(state): State<AppState>, principal: Principal, Query(q): Query<PatientSearch>) -> FhirResult<Response> {
            let facts = facts_for(&state, &principal, &q, $rt).await?;
            Ok(fhir(StatusCode::OK, render::searchset(render::of_kind(&facts, $rt))))
        }
    };
}

search_route!(
    search_immunization,
    "Immunization",
    "fhir_search_immunization"
);
search_route!(search_observation, "Observation", "fhir_search_observation");
search_route!(search_encounter, "Encounter", "fhir_search_encounter");
