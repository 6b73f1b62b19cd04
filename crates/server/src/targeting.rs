//! `/api/v1/targeting`: versioned scoring models and eligibility rule sets (programme managers),
//! and `/api/v1/households/{id}/score`: a household's current score with its explanation.
//!
//! A model with an unknown field, or a rule that does not parse or type-check, is refused with
//! 422 naming the field (for a rule: line, column and reason) and is never saved.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use inkingi_domain::identity::Permission;
use inkingi_domain::targeting::rules::{Rule, RuleError, Target};
use inkingi_domain::targeting::simulation::Report;
use inkingi_domain::targeting::ScoringModel;
use inkingi_store::simulation::{resolve, SimulationRequest};
use inkingi_store::targeting::{RuleSet, SavedModel, StoredScore};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::audit::record_read;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::Query;
use crate::registry::{current_form, input::parse_body, not_visible, reader};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(save_model, list_models, get_model, save_rule_set, list_rule_sets, check_rule, household_score, simulate),
    components(schemas(NewRuleSet, RuleCheck)),
    tags((name = "targeting", description = "Proxy-means-test scoring models, eligibility rules and household scores"))
)]
struct TargetingApi;

pub fn api() -> utoipa::openapi::OpenApi {
    TargetingApi::openapi()
}

fn utf8(body: &Bytes) -> ApiResult<&str> {
    std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))
}

/// A refused rule as a 422 naming the field, with the position and reason.
pub fn rule_refused(field: &str, e: &RuleError) -> ApiError {
    ApiError::validation(vec![FieldError {
        field: field.to_string(),
        reason: format!(
            "line {}, column {}: {}\n{}",
            e.line, e.column, e.message, e.excerpt
        ),
    }])
}

/// Save a new version of a scoring model (JSON; see docs/TARGETING.md). Its `version` must be
/// one above the latest of its `id` (1 for a new model); the latest saved model scores the
/// registry from then on.
#[utoipa::path(post, path = "/api/v1/targeting/models", tag = "targeting", operation_id = "targeting_models_save",
    request_body = Object,
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, description = "Saved", body = Object),
        (status = 409, description = "The version is not the next one"),
        (status = 422, description = "Unknown field or invalid value, named", body = crate::error::ProblemBody)))]
pub async fn save_model(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let refused =
        |field: String, reason: String| ApiError::validation(vec![FieldError { field, reason }]);
    let model = ScoringModel::from_json(utf8(&body)?).map_err(|e| refused(e.field, e.reason))?;
    let form = current_form(&state).await?;
    model
        .check_against_form(&form)
        .map_err(|e| refused(e.field, e.reason))?;
    let saved = state
        .store
        .targeting()
        .save_model(&model, principal.username.as_str())
        .await?;
    let mut audit = principal.audit_record("targeting.model.save", "scoring_model");
    audit.subject_id = Some(format!("{}/{}", model.id, model.version));
    state.audit.append(vec![audit]).await?;
    Ok((StatusCode::CREATED, Json(saved)).into_response())
}

/// Every saved model version, newest first.
#[utoipa::path(get, path = "/api/v1/targeting/models", tag = "targeting", operation_id = "targeting_models_list",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Model versions", body = Vec<Object>)))]
pub async fn list_models(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<SavedModel>>> {
    principal.require(Permission::ManageProgrammes)?;
    Ok(Json(state.store.targeting().list_models().await?))
}

/// One version of a model.
#[utoipa::path(get, path = "/api/v1/targeting/models/{id}/versions/{version}", tag = "targeting", operation_id = "targeting_models_get",
    params(("id" = String, Path), ("version" = u32, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The model", body = Object),
        (status = 404, description = "No such model version")))]
pub async fn get_model(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, version)): Path<(String, u32)>,
) -> ApiResult<Json<SavedModel>> {
    principal.require(Permission::ManageProgrammes)?;
    state
        .store
        .targeting()
        .model(&id, Some(version))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no version {version} of model {id}")))
}

/// A rule set version to save.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRuleSet {
    /// Stable name, e.g. `vup-ds-eligibility`.
    pub id: String,
    /// One above the latest version of `id` (1 for a new rule set).
    pub version: u32,
    /// `household` (default) or `person`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub target: Option<String>,
    /// The rule, e.g. `score < 40 and has_child_under_months(24)`.
    pub rule: String,
    #[serde(default)]
    pub description: String,
}

fn target_of(t: Option<&str>) -> ApiResult<Target> {
    match t.unwrap_or("household") {
        "household" => Ok(Target::Household),
        "person" => Ok(Target::Person),
        other => Err(ApiError::validation(vec![FieldError {
            field: "target".into(),
            reason: format!("'{other}' is not household or person"),
        }])),
    }
}

pub(crate) async fn compile(
    state: &AppState,
    rule: &str,
    target: Target,
) -> ApiResult<Result<Rule, RuleError>> {
    let form = current_form(state).await?;
    Ok(Rule::compile_for_form(rule, target, &form))
}

/// Save a new version of an eligibility rule set. The rule is parsed and type-checked first; a
/// rule that fails is refused with its line, column and reason and nothing is saved.
#[utoipa::path(post, path = "/api/v1/targeting/rule-sets", tag = "targeting", operation_id = "targeting_rule_sets_save",
    request_body = NewRuleSet,
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, description = "Saved", body = Object),
        (status = 409, description = "The version is not the next one"),
        (status = 422, description = "The rule does not parse or type-check (field `rule`, with position)", body = crate::error::ProblemBody)))]
pub async fn save_rule_set(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let body: NewRuleSet = parse_body(&body)?;
    let target = target_of(body.target.as_deref())?;
    if let Err(e) = compile(&state, &body.rule, target).await? {
        return Err(rule_refused("rule", &e));
    }
    if body.id.trim().is_empty() || body.id.len() > 64 {
        return Err(ApiError::validation(vec![FieldError {
            field: "id".into(),
            reason: "must be 1 to 64 characters".into(),
        }]));
    }
    let rs = RuleSet {
        id: body.id,
        version: body.version,
        target,
        rule: body.rule,
        description: body.description,
        saved_at: Utc::now(),
        saved_by: principal.username.as_str().to_string(),
    };
    state.store.targeting().save_rule_set(&rs).await?;
    let mut audit = principal.audit_record("targeting.rule_set.save", "rule_set");
    audit.subject_id = Some(format!("{}/{}", rs.id, rs.version));
    state.audit.append(vec![audit]).await?;
    Ok((StatusCode::CREATED, Json(rs)).into_response())
}

/// Every rule set version, by id, newest version first.
#[utoipa::path(get, path = "/api/v1/targeting/rule-sets", tag = "targeting", operation_id = "targeting_rule_sets_list",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Rule set versions", body = Vec<Object>)))]
pub async fn list_rule_sets(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<RuleSet>>> {
    principal.require(Permission::ManageProgrammes)?;
    Ok(Json(state.store.targeting().rule_sets(None).await?))
}

/// The outcome of checking a rule without saving it (for live validation in an editor).
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleCheck {
    pub valid: bool,
    #[schema(value_type = Option<Object>)]
    pub error: Option<RuleError>,
}

/// Check a rule without saving it: `{"rule": "...", "target": "household"}`.
#[utoipa::path(post, path = "/api/v1/targeting/rule-check", tag = "targeting", operation_id = "targeting_rule_check",
    request_body = Object,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Whether the rule compiles, and where it fails", body = RuleCheck)))]
pub async fn check_rule(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> ApiResult<Json<RuleCheck>> {
    principal.require(Permission::ManageProgrammes)?;
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Check {
        rule: String,
        target: Option<String>,
    }
    let body: Check = parse_body(&body)?;
    let target = target_of(body.target.as_deref())?;
    let error = compile(&state, &body.rule, target).await?.err();
    Ok(Json(RuleCheck {
        valid: error.is_none(),
        error,
    }))
}

/// A household's current score: model and version, category, and each factor's contribution.
#[utoipa::path(get, path = "/api/v1/households/{id}/score", tag = "targeting", operation_id = "households_score",
    params(("id" = Uuid, Path),
        ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The score", body = Object),
        (status = 404, description = "No such household in your area scope, or not scored yet")))]
pub async fn household_score(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<StoredScore>> {
    let purpose = reader(&state, &principal)?;
    let Some(h) = state
        .store
        .registry()
        .household(&principal.scope, id)
        .await?
    else {
        return Err(not_visible(&state, &principal, "household", id).await);
    };
    let score = state
        .store
        .targeting()
        .score(&principal.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("household {id} has not been scored yet")))?;
    record_read(
        &state,
        &principal,
        purpose,
        ("household", &id.to_string()),
        Some(h.village.clone()),
        &["score", "category", "explanation"],
    )
    .await?;
    Ok(Json(score))
}

/// How a simulation is answered.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimulationFormat {
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    pub format: Option<String>,
}

fn wants_csv(q: &SimulationFormat, headers: &HeaderMap) -> ApiResult<bool> {
    match q.format.as_deref() {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::invalid_field(
            "format",
            format!("'{other}' is not json or csv"),
        )),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv"))),
    }
}

/// Simulate a scoring model and eligibility rules over the registry in your area scope, without
/// enrolling anyone: per district (or `by` province / sector) and programme, households,
/// eligible, cost per cycle, coverage, current enrolment with inclusion and exclusion errors,
/// and households eligible for two programmes. `compare` runs a second version (another model
/// version, rule set version or draft rule) side by side with the deltas. Body:
/// `{"by", "programmes": [codes], "model": {"id", "version"}, "rules": {"code": {"rule_set":
/// {"id", "version"}} | {"rule": "draft"}}, "compare": {"model", "rules"}}`, every part
/// optional. Nothing is stored; the request is audited as an aggregate read.
#[utoipa::path(post, path = "/api/v1/targeting/simulations", tag = "targeting", operation_id = "targeting_simulate",
    request_body = Object,
    params(SimulationFormat),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The simulation by area, as JSON or CSV", body = Object),
        (status = 422, description = "Unknown programme, model or rule set version, or a rule that does not compile (field and position named)", body = crate::error::ProblemBody)))]
pub async fn simulate(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<SimulationFormat>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let csv = wants_csv(&q, &headers)?;
    let req: SimulationRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SimulationRequest::default()
    } else {
        parse_body(&body)?
    };
    let report = run_simulation(&state, &principal, &req).await?;
    if !csv {
        return Ok(Json(report).into_response());
    }
    let mut res = report.to_csv().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"simulation.csv\""),
    );
    Ok(res)
}

/// Resolves and runs a simulation within the caller's scope, audited as an aggregate read
/// (the API and the rule editor page share it).
pub(crate) async fn run_simulation(
    state: &AppState,
    principal: &Principal,
    req: &SimulationRequest,
) -> ApiResult<Report> {
    let form = current_form(state).await?;
    let sim = resolve(&state.store, req, &form).await?.map_err(|r| {
        ApiError::validation(vec![FieldError {
            field: r.field,
            reason: r.reason,
        }])
    })?;
    let mut audit = principal.audit_record("targeting.simulate", "aggregate");
    audit.fields = vec![
        format!("scope={}", principal.scope.to_stored()),
        format!("by={}", sim.level.as_str()),
    ];
    audit.fields.extend(
        sim.scenarios
            .first()
            .into_iter()
            .flat_map(|s| s.programmes.iter().map(|p| format!("programme={}", p.code))),
    );
    let report = state
        .store
        .targeting()
        .simulate(&principal.scope, sim)
        .await?;
    state.audit.append(vec![audit]).await?;
    Ok(report)
}
