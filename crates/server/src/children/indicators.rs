//! Child indicators by area and month (definitions in docs/CHILDREN.md, "Indicators"), counted
//! from the materialised statuses, and the drill-down to the children missing what.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::children::indicators::{
    cohort, missing_doses, IndicatorCode, Occurrence, RefMonth,
};
use inkingi_domain::identity::{AreaScope, Permission, Purpose};
use inkingi_store::child_status::{AreaCount, ListedChild, StatusRow};
use inkingi_store::Store;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::services::{health_reader, schedules};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::AppState;

/// Children a drill-down lists at most.
pub const MISSING_MAX: u32 = 5000;

/// One indicator in one area.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Cell {
    pub numerator: i64,
    pub denominator: i64,
    /// numerator / denominator; none when the denominator is 0.
    pub value: Option<f64>,
    /// Prevalence indicators: moderate and severe cases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderate: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severe: Option<i64>,
}

impl Cell {
    fn add(&mut self, c: &AreaCount, prevalence: bool) {
        self.numerator += c.numerator;
        self.denominator += c.denominator;
        self.value =
            (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64);
        if prevalence {
            *self.moderate.get_or_insert(0) += c.moderate;
            *self.severe.get_or_insert(0) += c.severe;
        }
    }
}

/// The indicators of one area, by indicator code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct AreaRow {
    pub area: String,
    pub indicators: BTreeMap<String, Cell>,
}

/// Indicators of an area and of each area one level down.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IndicatorTable {
    /// The area asked (empty: the whole country).
    pub area: String,
    pub month: String,
    /// The schedules behind the immunisation indicators are provisional.
    pub provisional: bool,
    pub total: AreaRow,
    pub areas: Vec<AreaRow>,
}

/// Counts every indicator in `area` (none: the country, by district) and its sub-areas.
pub async fn table(
    store: &Store,
    scope: &AreaScope,
    area: Option<&AreaCode>,
    month: RefMonth,
) -> ApiResult<IndicatorTable> {
    let code = area.map(|a| a.as_str()).unwrap_or("");
    let sub_len = match area {
        None => 2,
        Some(a) => a.level().child().map_or(a.as_str().len(), |l| l.code_len()),
    };
    let mut total = AreaRow {
        area: code.to_string(),
        ..Default::default()
    };
    let mut rows: BTreeMap<String, AreaRow> = BTreeMap::new();
    for ic in IndicatorCode::ALL {
        let counts = store
            .child_status()
            .counts(scope, code, sub_len, ic, &cohort(ic, month))
            .await?;
        let key = ic.as_str().to_string();
        // Every indicator is present in the total, even with nobody to count.
        let t = total.indicators.entry(key.clone()).or_default();
        if ic.is_prevalence() {
            t.moderate.get_or_insert(0);
            t.severe.get_or_insert(0);
        }
        for c in &counts {
            t.add(c, ic.is_prevalence());
            rows.entry(c.area.clone())
                .or_insert_with(|| AreaRow {
                    area: c.area.clone(),
                    ..Default::default()
                })
                .indicators
                .entry(key.clone())
                .or_default()
                .add(c, ic.is_prevalence());
        }
    }
    Ok(IndicatorTable {
        area: code.to_string(),
        month: month.to_string(),
        provisional: schedules()?.schedules.iter().any(|s| s.provisional),
        total,
        areas: rows.into_values().collect(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IndicatorParams {
    /// An area code inside your scope; none: your area (the whole country for national
    /// roles).
    pub area: Option<String>,
    /// The reference month, `YYYY-MM`; none: the current month.
    pub month: Option<String>,
}

/// The area and month asked, checked against the caller's scope.
pub fn area_and_month(
    principal: &Principal,
    q: &IndicatorParams,
) -> ApiResult<(Option<AreaCode>, RefMonth)> {
    let month = match &q.month {
        None => RefMonth::of(Utc::now().date_naive()),
        Some(m) => RefMonth::parse(m).map_err(|e| ApiError::invalid_field("month", e))?,
    };
    let area = match q.area.as_deref().filter(|a| !a.trim().is_empty()) {
        Some(a) => {
            let a =
                AreaCode::parse(a).map_err(|e| ApiError::invalid_field("area", e.to_string()))?;
            if !principal.scope.contains(&a) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("area {a} is outside your scope"),
                ));
            }
            Some(a)
        }
        None if principal.scope.is_national() => None,
        None => match principal.scope.codes().as_slice() {
            [one] => Some((*one).clone()),
            _ => {
                return Err(ApiError::invalid_field(
                    "area",
                    "name one of the areas of your scope",
                ))
            }
        },
    };
    Ok((area, month))
}

/// Indicators by area and month: full immunisation at 12 and 24 months, stunting and wasting
/// prevalence, growth monitoring, birth registration and pre-primary enrolment, for the area
/// and each area one level down. Counts only (no personal data); audited as an aggregate read.
#[utoipa::path(get, path = "/api/v1/children/indicators", tag = "children", operation_id = "children_indicators",
    params(IndicatorParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Numerator, denominator and value of each indicator, per area", body = IndicatorTable),
        (status = 400, description = "Malformed area or month"),
        (status = 403, description = "The area is outside your scope")))]
pub async fn indicators(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<IndicatorParams>,
) -> ApiResult<Json<IndicatorTable>> {
    principal.require(Permission::ReadAggregates)?;
    let (area, month) = area_and_month(&principal, &q)?;
    let t = table(&state.store, &principal.scope, area.as_ref(), month).await?;
    let mut rec = principal.audit_record("children.indicators.read", "aggregate");
    rec.area = area;
    rec.fields = vec![
        format!("scope={}", principal.scope.to_stored()),
        format!("month={month}"),
    ];
    state.audit.append(vec![rec]).await?;
    Ok(Json(t))
}

/// A child an indicator's drill-down lists, with what it is missing (coverage) or its grade
/// (prevalence).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MissingChild {
    pub person_id: Uuid,
    pub name: String,
    pub village: Option<String>,
    pub birth_date: NaiveDate,
    pub household_id: Option<Uuid>,
    /// What the child lacks for the indicator: vaccine doses, a weighing in the month, a birth
    /// registration, an enrolment; for stunting and wasting, the grade (`moderate`, `severe`)
    /// of the latest length/height.
    pub missing: Vec<String>,
    /// The latest visit with a length or height.
    pub measured_on: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MissingList {
    pub indicator: String,
    pub area: String,
    pub month: String,
    pub as_of: NaiveDate,
    /// More children than one list holds.
    pub truncated: bool,
    pub children: Vec<MissingChild>,
}

/// What `c` lacks for `code` (its stored statuses `rows`, for immunisation).
fn missing_of(
    code: IndicatorCode,
    c: &ListedChild,
    rows: &[&StatusRow],
    month: RefMonth,
    today: NaiveDate,
) -> ApiResult<Vec<String>> {
    let grade = |g: Option<i32>| match g {
        Some(3) => "severe".to_string(),
        _ => "moderate".to_string(),
    };
    Ok(match code {
        IndicatorCode::Fic12 | IndicatorCode::Fic24 => {
            let months = if code == IndicatorCode::Fic12 { 12 } else { 24 };
            let occ = rows.iter().map(|r| Occurrence {
                schedule: &r.schedule,
                service: &r.service,
                due_by: r.window.due_by,
                completed_on: r.completed_on,
            });
            missing_doses(schedules()?, occ, c.birth_date, months, today)
                .map(|m| m.into_iter().map(str::to_string).collect())
                .unwrap_or_else(|| vec![format!("not {months} months old yet")])
        }
        IndicatorCode::Stunting => vec![grade(c.stunting)],
        IndicatorCode::Wasting => vec![grade(c.wasting)],
        IndicatorCode::GrowthMonitoring => vec![format!("growth monitoring in {month}")],
        IndicatorCode::BirthRegistration => vec!["birth registration".into()],
        IndicatorCode::PreprimaryEnrolment => vec!["pre-primary enrolment".into()],
    })
}

/// The drill-down list of an indicator in an area and month.
pub async fn missing_list(
    store: &Store,
    scope: &AreaScope,
    code: IndicatorCode,
    area: Option<&AreaCode>,
    month: RefMonth,
) -> ApiResult<MissingList> {
    let area_code = area.map(|a| a.as_str()).unwrap_or("");
    let today = Utc::now().date_naive();
    let status = store.child_status();
    let mut listed = status
        .listed(
            scope,
            area_code,
            code,
            &cohort(code, month),
            MISSING_MAX + 1,
        )
        .await?;
    let truncated = listed.len() > MISSING_MAX as usize;
    listed.truncate(MISSING_MAX as usize);
    let rows = match code {
        IndicatorCode::Fic12 | IndicatorCode::Fic24 => {
            let ids: Vec<Uuid> = listed.iter().map(|c| c.person_id).collect();
            status.rows_of(&ids).await?
        }
        _ => Vec::new(),
    };
    let mut by_person: BTreeMap<Uuid, Vec<&StatusRow>> = BTreeMap::new();
    for r in &rows {
        by_person.entry(r.person_id).or_default().push(r);
    }
    let mut children = Vec::with_capacity(listed.len());
    for c in &listed {
        let mine = by_person
            .get(&c.person_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        children.push(MissingChild {
            person_id: c.person_id,
            name: format!("{} {}", c.given_name, c.family_name),
            village: c.village_code.clone(),
            birth_date: c.birth_date,
            household_id: c.household_id,
            missing: missing_of(code, c, mine, month, today)?,
            measured_on: c.growth_on,
        });
    }
    Ok(MissingList {
        indicator: code.as_str().to_string(),
        area: area_code.to_string(),
        month: month.to_string(),
        as_of: today,
        truncated,
        children,
    })
}

/// Which children are missing what: for a coverage indicator the children of its denominator
/// outside its numerator, with what each lacks; for stunting and wasting, the cases with their
/// grade. Personal data: health roles, within scope, audited.
#[utoipa::path(get, path = "/api/v1/children/indicators/{indicator}/missing", tag = "children", operation_id = "children_indicator_missing",
    params(("indicator" = String, Path, description = "fic12, fic24, stunting, wasting, growth_monitoring, birth_registration or preprimary_enrolment"),
        IndicatorParams,
        ("X-Purpose-Of-Use" = Option<String>, Header, description = "Why health data is read (default healthcare)")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The children, by village and age", body = MissingList),
        (status = 400, description = "Malformed area or month"),
        (status = 403, description = "The area is outside your scope"),
        (status = 404, description = "No such indicator")))]
pub async fn missing(
    State(state): State<AppState>,
    principal: Principal,
    Path(indicator): Path<String>,
    Query(q): Query<IndicatorParams>,
) -> ApiResult<Json<MissingList>> {
    let purpose = health_reader(&state, &principal)?;
    let Some(code) = IndicatorCode::parse(&indicator) else {
        return Err(ApiError::not_found(format!(
            "no indicator '{indicator}': expected one of {}",
            IndicatorCode::ALL.map(|c| c.as_str()).join(", ")
        )));
    };
    let (area, month) = area_and_month(&principal, &q)?;
    let list = read_missing(&state, &principal, purpose, code, area, month).await?;
    Ok(Json(list))
}

/// The drill-down list, audited as a read of personal health data (the API and the page).
pub(crate) async fn read_missing(
    state: &AppState,
    principal: &Principal,
    purpose: Purpose,
    code: IndicatorCode,
    area: Option<AreaCode>,
    month: RefMonth,
) -> ApiResult<MissingList> {
    let list = missing_list(&state.store, &principal.scope, code, area.as_ref(), month).await?;
    let mut rec = principal.audit_record("children.indicator_missing.read", "area");
    rec.subject_id = Some(list.area.clone());
    rec.area = area;
    rec.purpose = Some(purpose.to_string());
    rec.fields = vec![
        format!("indicator={}", code.as_str()),
        format!("month={month}"),
        format!("children:{}", list.children.len()),
    ];
    state.audit.append(vec![rec]).await?;
    Ok(list)
}
