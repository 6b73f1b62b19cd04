//! `/api/v1/households`: register (with members), list by area and status, read (now or as of a
//! date), update with If-Match, and the history of changes.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Days, NaiveDate};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::Permission;
use inkingi_domain::registry::form::FormSchema;
use inkingi_domain::registry::history::{Channel, HouseholdDoc, RegistryEvent};
use inkingi_domain::registry::model::check_one_head;
use inkingi_domain::registry::{Household, HouseholdInput, HouseholdStatus, RegistryNumber};
use inkingi_store::registry::{
    household_doc, EventMeta, HouseholdChange, HouseholdCursor, HouseholdQuery, NewHousehold,
    NewMember, PersonRecord,
};
use inkingi_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::input::{self, Errors, HouseholdFields, MemberFields};
use super::memberships::{relative_ids, rule_error};
use super::{audit_change, current_form, etag, event_meta, if_match, not_visible, reader, reason};
use crate::audit::record_read;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{page_limit, Query};
use crate::AppState;

const MAX_LIMIT: u32 = 500;
const DEFAULT_LIMIT: u32 = 100;
/// The fields a household read returns, as the audit entry records them.
pub const HOUSEHOLD_FIELDS: &[&str] = &[
    "registry_number",
    "village",
    "address",
    "gps",
    "answers",
    "members",
];

/// A household to register with its members (exactly one `head`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHousehold {
    pub village: Option<String>,
    pub address: Option<String>,
    pub gps: Option<input::GpsFields>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub answers: Map<String, Value>,
    #[serde(default)]
    pub members: Vec<MemberFields>,
    /// Why (else the `X-Change-Reason` header).
    pub reason: Option<String>,
}

/// A household with its current members.
#[derive(Debug, Serialize)]
pub struct HouseholdView {
    #[serde(flatten)]
    pub household: Household,
    pub members: Vec<PersonRecord>,
}

/// Checks the village exists and lies within the principal's scope.
pub async fn check_village(
    state: &AppState,
    principal: &Principal,
    village: &AreaCode,
    e: &mut Errors,
) -> ApiResult<()> {
    if state.store.areas().get_area(village).await?.is_none() {
        e.add("", "village", format!("no village has the code {village}"));
    } else if !principal.scope.contains(village) {
        e.add(
            "",
            "village",
            format!("village {village} is outside your area scope"),
        );
    }
    Ok(())
}

/// Validates a registration body into the household and its members.
pub async fn validate_new(
    state: &AppState,
    principal: &Principal,
    body: &CreateHousehold,
    form: &FormSchema,
) -> ApiResult<(HouseholdInput, Vec<NewMember>)> {
    let mut e = Errors::default();
    let fields = HouseholdFields {
        village: body.village.clone(),
        address: body.address.clone(),
        gps: body.gps,
        answers: body.answers.clone(),
    };
    let hh = input::household(&fields, form, &mut e);
    let village = body
        .village
        .as_deref()
        .and_then(|v| AreaCode::parse(v).ok());
    if let Some(v) = village.filter(|v| v.level() == inkingi_domain::areas::AreaLevel::Village) {
        check_village(state, principal, &v, &mut e).await?;
    }
    if body.members.is_empty() {
        e.add(
            "",
            "members",
            "a household needs at least one member (its head)",
        );
    }
    let mut members = Vec::new();
    for (i, m) in body.members.iter().enumerate() {
        let prefix = format!("members[{i}]");
        let person = input::person(&prefix, m, form, &mut e);
        let role = input::membership(&prefix, m, &mut e);
        if let (Some(person), Some((role, since))) = (person, role) {
            members.push(NewMember {
                id: Uuid::now_v7(),
                person,
                role,
                since,
                mother_id: None,
                father_id: None,
                guardian_id: None,
                source_key: None,
            });
        }
    }
    if members.len() == body.members.len() && !members.is_empty() {
        if let Err(why) = check_one_head(members.iter().map(|m| &m.role)) {
            e.add("", "members", why);
        }
        let ids: Vec<Uuid> = members.iter().map(|m| m.id).collect();
        for (i, (fields, m)) in body.members.iter().zip(members.iter_mut()).enumerate() {
            let [mother, father, guardian] =
                relative_ids(state, principal, fields, Some((i, &ids)), &mut e).await?;
            (m.mother_id, m.father_id, m.guardian_id) = (mother, father, guardian);
        }
    }
    e.into_result()?;
    let hh = hh.ok_or_else(|| ApiError::internal("validated household missing"))?;
    Ok((hh, members))
}

/// Registers a validated household in one transaction with its audit entry; retries on the
/// rare collision of a fresh registry number.
pub async fn register(
    state: &AppState,
    principal: &Principal,
    input: HouseholdInput,
    members: Vec<NewMember>,
    form: &FormSchema,
    meta: &EventMeta,
) -> ApiResult<Household> {
    let mut new = NewHousehold {
        id: Uuid::now_v7(),
        registry_number: RegistryNumber::generate(&mut rand::rng()),
        input,
        form_id: form.id.clone(),
        form_version: form.version,
        source_key: None,
        members,
    };
    for attempt in 0..3 {
        let mut uow = state.store.begin().await?;
        match state
            .store
            .registry()
            .register_household(&mut uow, &new, meta)
            .await
        {
            Ok(h) => {
                let fields = vec!["household".to_string(), "members".to_string()];
                audit_change(
                    state,
                    &mut uow,
                    principal,
                    "household.register",
                    ("household", h.id),
                    Some(h.village.clone()),
                    fields,
                )
                .await?;
                uow.commit().await?;
                return Ok(h);
            }
            Err(StoreError::Conflict(m)) if m.starts_with("registry_number") && attempt < 2 => {
                new.registry_number = RegistryNumber::generate(&mut rand::rng());
            }
            Err(StoreError::Conflict(m)) => {
                return Err(conflict_field(&m));
            }
            Err(e @ StoreError::Invalid(_)) => return Err(rule_error(e)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("could not allocate a registry number"))
}

/// A uniqueness conflict names its field (`national_id is already registered`).
fn conflict_field(m: &str) -> ApiError {
    let field = m.split_whitespace().next().unwrap_or("body").to_string();
    ApiError {
        field: Some(field),
        ..ApiError::conflict(m)
    }
}

async fn view(state: &AppState, principal: &Principal, h: Household) -> ApiResult<HouseholdView> {
    let members = state
        .store
        .registry()
        .members(&principal.scope, h.id)
        .await?;
    Ok(HouseholdView {
        household: h,
        members,
    })
}

fn with_etag(status: StatusCode, version: i64, body: impl Serialize) -> Response {
    (status, [etag(version)], Json(body)).into_response()
}

/// Register a household with its members.
#[utoipa::path(post, path = "/api/v1/households", tag = "registry", operation_id = "households_create", request_body = CreateHousehold,
    params(("X-Change-Reason" = Option<String>, Header, description = "Why, when the body has no reason")),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Registered; ETag is its version. `possible_duplicates` lists members who may already be registered (a warning: the household is registered anyway)", body = Object),
        (status = 409, description = "A national ID is already registered (the problem names the field)"),
        (status = 422, description = "Field errors, each with its path", body = crate::error::ProblemBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::WritePersonalData)?;
    let body: CreateHousehold = input::parse_body(&body)?;
    let form = current_form(&state).await?;
    let (hh, members) = validate_new(&state, &principal, &body, &form).await?;
    // Looked up before writing, so the new members are not their own duplicates.
    let warnings =
        super::matching::duplicate_warnings(&state, &principal, &hh.village, &members).await;
    let meta = event_meta(
        &principal,
        Channel::Api,
        reason(body.reason.clone(), &headers),
    );
    let h = register(&state, &principal, hh, members, &form, &meta).await?;
    let version = h.version;
    let v = view(&state, &principal, h).await?;
    if warnings.is_empty() {
        return Ok(with_etag(StatusCode::CREATED, version, v));
    }
    let mut body = serde_json::to_value(&v).map_err(ApiError::internal)?;
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "possible_duplicates".into(),
            serde_json::to_value(&warnings).map_err(ApiError::internal)?,
        );
    }
    Ok(with_etag(StatusCode::CREATED, version, body))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Area code (province to village); only households inside it.
    area: Option<String>,
    /// `active`, `merged` or `dissolved`.
    status: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 500, default 100.
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HouseholdPage {
    #[schema(value_type = Vec<Object>)]
    pub households: Vec<Household>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn to_query(p: &ListParams) -> ApiResult<HouseholdQuery> {
    let limit = page_limit(p.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let area = p
        .area
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(AreaCode::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field("area", format!("query parameter 'area': {e}")))?;
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(HouseholdStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                format!("query parameter 'status': '{s}' is not active, merged or dissolved"),
            )
        })?),
    };
    let after = match p.cursor.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(c) => Some(HouseholdCursor::decode(c).ok_or_else(|| {
            ApiError::invalid_field(
                "cursor",
                "query parameter 'cursor': not a cursor from a previous page",
            )
        })?),
    };
    Ok(HouseholdQuery {
        area,
        status,
        after,
        limit,
    })
}

/// Households in the caller's scope by area and status, in stable (village, id) order.
#[utoipa::path(get, path = "/api/v1/households", tag = "registry", operation_id = "households_list", params(ListParams,
        ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "One page", body = HouseholdPage),
        (status = 400, description = "A malformed parameter, named in the problem")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<HouseholdPage>> {
    let purpose = reader(&state, &principal)?;
    let q = to_query(&params)?;
    let households = state
        .store
        .registry()
        .list_households(&principal.scope, &q)
        .await?;
    if state.auth.settings.audit_reads && !households.is_empty() {
        let records = households
            .iter()
            .map(|h| {
                let mut r = principal.audit_record("household.read", "household");
                r.subject_id = Some(h.id.to_string());
                r.area = Some(h.village.clone());
                r.fields = ["registry_number", "village", "address", "gps", "answers"]
                    .map(String::from)
                    .to_vec();
                r.purpose = Some(purpose.to_string());
                r
            })
            .collect();
        state.audit.record_reads(records).await?;
    }
    let next_cursor = (households.len() == q.limit as usize)
        .then(|| households.last())
        .flatten()
        .map(|h| {
            HouseholdCursor {
                village: h.village.as_str().to_string(),
                id: h.id,
            }
            .encode()
        });
    Ok(Json(HouseholdPage {
        households,
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// `YYYY-MM-DD`: the household as it was at the end of that day (UTC).
    as_of: Option<NaiveDate>,
}

/// The household and its members as they were at the end of `day`.
pub async fn as_of(
    state: &AppState,
    principal: &Principal,
    current: &HouseholdView,
    day: NaiveDate,
) -> ApiResult<Option<HouseholdDoc>> {
    let end = day
        .checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| ApiError::invalid_field("as_of", "query parameter 'as_of': out of range"))?;
    let mut later = state
        .store
        .registry()
        .events(&principal.scope, current.household.id, Some(end))
        .await?;
    Ok(household_doc(&current.household, &current.members).rewind(&mut later))
}

/// Renders a document's members with their ids, in a stable order.
pub fn doc_json(doc: &HouseholdDoc, day: NaiveDate) -> Value {
    let members: Vec<Value> = doc
        .members
        .iter()
        .map(|(id, m)| {
            let mut m = m.clone();
            m.insert("id".into(), Value::String(id.to_string()));
            Value::Object(m)
        })
        .collect();
    serde_json::json!({
        "as_of": day,
        "household": doc.household,
        "members": members,
    })
}

/// One household with its members; `?as_of=YYYY-MM-DD` gives it as it was on that date.
#[utoipa::path(get, path = "/api/v1/households/{id}", tag = "registry", operation_id = "households_get_one",
    params(("id" = Uuid, Path), GetParams,
        ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The household; ETag is its version", body = Object),
        (status = 404, description = "No such household in your area scope (or it did not exist on that date)")))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    Query(params): Query<GetParams>,
) -> ApiResult<Response> {
    let purpose = reader(&state, &principal)?;
    let Some(h) = state
        .store
        .registry()
        .household(&principal.scope, id)
        .await?
    else {
        return Err(not_visible(&state, &principal, "household", id).await);
    };
    let area = h.village.clone();
    let v = view(&state, &principal, h).await?;
    let subject = ("household", id.to_string());
    record_read(
        &state,
        &principal,
        purpose,
        (subject.0, &subject.1),
        Some(area),
        HOUSEHOLD_FIELDS,
    )
    .await?;
    match params.as_of {
        None => Ok(with_etag(StatusCode::OK, v.household.version, v)),
        Some(day) => match as_of(&state, &principal, &v, day).await? {
            Some(doc) => Ok(Json(doc_json(&doc, day)).into_response()),
            None => Err(ApiError::not_found(format!(
                "household {} was not registered yet on {day}",
                v.household.registry_number
            ))),
        },
    }
}

/// Update a household's own fields (village, address, gps, answers) as a merge patch.
#[utoipa::path(patch, path = "/api/v1/households/{id}", tag = "registry", operation_id = "households_patch",
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = "ETag of the version changed"),
        ("X-Change-Reason" = Option<String>, Header, description = "Why, when the body has no reason")),
    request_body(content = HouseholdFields, description = "Fields to change; `reason` allowed"),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Updated; ETag is the new version", body = Object),
        (status = 404, description = "No such household in your area scope"),
        (status = 412, description = "Changed by someone else since your version"),
        (status = 422, description = "Field errors", body = crate::error::ProblemBody),
        (status = 428, description = "If-Match is missing")))]
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::WritePersonalData)?;
    // Existence (within scope) first, so a caller elsewhere learns nothing from 428 or 422.
    if state
        .store
        .registry()
        .household(&principal.scope, id)
        .await?
        .is_none()
    {
        return Err(not_visible(&state, &principal, "household", id).await);
    }
    let expected = if_match(&headers)?;
    let mut patch: Map<String, Value> = input::parse_body(&body)?;
    let why = input::take_reason(&mut patch)?;
    let meta = event_meta(&principal, Channel::Api, reason(why, &headers));
    let h = update(&state, &principal, id, expected, patch, &meta).await?;
    let version = h.version;
    let v = view(&state, &principal, h).await?;
    Ok(with_etag(StatusCode::OK, version, v))
}

/// Applies a merge patch to a household's fields, validates, and writes it with its event and
/// audit entry.
pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    expected: i64,
    patch: Map<String, Value>,
    meta: &EventMeta,
) -> ApiResult<Household> {
    let Some(current) = state
        .store
        .registry()
        .household(&principal.scope, id)
        .await?
    else {
        return Err(not_visible(state, principal, "household", id).await);
    };
    let keys: Vec<String> = patch.keys().cloned().collect();
    let fields = HouseholdFields {
        village: Some(current.village.as_str().to_string()),
        address: current.address.clone(),
        gps: current.gps.map(|g| input::GpsFields {
            lat: g.lat,
            lon: g.lon,
        }),
        answers: current.answers.clone(),
    };
    let merged: HouseholdFields = input::merge_patch(&fields, patch)?;
    let form = current_form(state).await?;
    let mut e = Errors::default();
    let hh = input::household(&merged, &form, &mut e);
    if let Some(h) = &hh {
        if h.village != current.village {
            check_village(state, principal, &h.village, &mut e).await?;
        }
    }
    e.into_result()?;
    let hh = hh.ok_or_else(|| ApiError::internal("validated household missing"))?;
    let mut uow = state.store.begin().await?;
    let change = HouseholdChange {
        input: hh,
        form_version: form.version,
    };
    let h = state
        .store
        .registry()
        .update_household(&mut uow, &principal.scope, id, expected, &change, meta)
        .await?;
    audit_change(
        state,
        &mut uow,
        principal,
        "household.update",
        ("household", id),
        Some(h.village.clone()),
        keys,
    )
    .await?;
    uow.commit().await?;
    Ok(h)
}

#[derive(Debug, Serialize)]
pub struct HistoryPage {
    pub events: Vec<RegistryEvent>,
}

/// Every change of a household, oldest first, each with before → after.
#[utoipa::path(get, path = "/api/v1/households/{id}/history", tag = "registry", operation_id = "households_history",
    params(("id" = Uuid, Path), ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Events in time order", body = Object),
        (status = 404, description = "No such household in your area scope")))]
pub async fn history(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<HistoryPage>> {
    let purpose = reader(&state, &principal)?;
    let events = match state
        .store
        .registry()
        .events(&principal.scope, id, None)
        .await
    {
        Ok(e) => e,
        Err(StoreError::NotFound(_)) => {
            return Err(not_visible(&state, &principal, "household", id).await)
        }
        Err(e) => return Err(e.into()),
    };
    let area = state.store.registry().locate(id).await?;
    record_read(
        &state,
        &principal,
        purpose,
        ("household", &id.to_string()),
        area,
        &["history"],
    )
    .await?;
    Ok(Json(HistoryPage { events }))
}
