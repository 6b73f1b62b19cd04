//! Reading the sealed HIV exposure of a child: opened only for health workers, every read
//! audited with its purpose; other readers of health data learn that a restricted value exists,
//! never the value.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::identity::{Purpose, Role};
use inkingi_store::children::FeedKind;
use inkingi_store::registry::PersonRecord;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ingest::sealed_context;
use super::services::{health_reader, visible_person};
use crate::audit::record_read;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Who may see HIV exposure: health workers (clinical staff). Community health workers are
/// volunteers who live in the village they serve; they see that a value exists, not the value
/// (a decision of this build that keeps HIV status to the clinical team; change it here if
/// the health authority decides otherwise).
pub fn may_open(role: Role) -> bool {
    matches!(role, Role::HealthWorker)
}

/// A person's HIV exposure records, or the fact that there are some.
#[derive(Debug, Serialize, ToSchema)]
pub struct HivExposureView {
    pub person_id: Uuid,
    /// `hiv_exposure`.
    pub field: &'static str,
    /// True when the reader may not see the values: `records` is then empty.
    pub restricted: bool,
    /// How many records exist.
    pub count: usize,
    pub records: Vec<HivExposureRecord>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HivExposureRecord {
    /// `exposed`, `not-exposed` or `unknown`.
    pub value: String,
    pub observed_on: NaiveDate,
    pub source_system: String,
    pub source_id: String,
    pub received_at: DateTime<Utc>,
}

/// The view of `person`'s HIV exposure for `principal`, with the read audited under
/// `purpose` (`hiv_exposure` when opened, `hiv_exposure:restricted` when only counted).
pub async fn view(
    state: &AppState,
    principal: &Principal,
    purpose: Purpose,
    person: &PersonRecord,
) -> ApiResult<HivExposureView> {
    let id = person.person.id;
    let facts = state
        .store
        .children()
        .restricted_facts(&principal.scope, id, FeedKind::HivExposure)
        .await?;
    let open = may_open(principal.role);
    let mut records = Vec::new();
    if open && !facts.is_empty() {
        let keys = state.settings.children.field_keys.as_ref().ok_or_else(|| {
            ApiError::unavailable("sealed values cannot be opened: no field key is configured")
        })?;
        for f in &facts {
            let sealed = f
                .sealed
                .as_ref()
                .ok_or_else(|| ApiError::internal("hiv_exposure fact without a sealed value"))?;
            let plain = keys
                .open(&sealed_context(f.kind, f.id), sealed)
                .map_err(ApiError::internal)?;
            records.push(HivExposureRecord {
                value: String::from_utf8_lossy(&plain).into_owned(),
                observed_on: f.occurred_on,
                source_system: f.provenance.source_system.clone(),
                source_id: f.provenance.source_id.clone(),
                received_at: f.provenance.received_at,
            });
        }
    }
    let field = if open {
        "hiv_exposure"
    } else {
        "hiv_exposure:restricted"
    };
    record_read(
        state,
        principal,
        purpose,
        ("person", &id.to_string()),
        person.person.village.clone(),
        &[field],
    )
    .await?;
    Ok(HivExposureView {
        person_id: id,
        field: "hiv_exposure",
        restricted: !open,
        count: facts.len(),
        records,
    })
}

/// A child's HIV exposure (from the mother-to-child-HIV tracker): values for health workers,
/// only their existence for other readers of health data. Every read is audited.
#[utoipa::path(get, path = "/api/v1/children/{person_id}/hiv-exposure", tag = "children", operation_id = "children_hiv_exposure",
    params(("person_id" = Uuid, Path), ("X-Purpose-Of-Use" = Option<String>, Header, description = "Why health data is read (default healthcare)")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The records, or restricted with their count", body = HivExposureView),
        (status = 404, description = "No such person in your area scope")))]
pub async fn hiv_exposure(
    State(state): State<AppState>,
    principal: Principal,
    Path(person_id): Path<Uuid>,
) -> ApiResult<Json<HivExposureView>> {
    let purpose = health_reader(&state, &principal)?;
    let person = visible_person(&state, &principal, person_id).await?;
    Ok(Json(view(&state, &principal, purpose, &person).await?))
}
