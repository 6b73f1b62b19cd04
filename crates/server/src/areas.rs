//! `/api/v1/areas`: Rwanda's administrative hierarchy (Province → District → Sector → Cell →
//! Village) with NISR codes. Public reference data: no authentication, no area scope.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use inkingi_domain::areas::{Area, AreaCode, AreaLevel};
use inkingi_store::areas::AreaQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{ApiError, ApiResult, ProblemBody};
use crate::extract::{page_limit, Query};
use crate::AppState;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Longer search text cannot match any name; refusing it bounds the work a request can ask for.
const MAX_Q_CHARS: usize = 100;

#[derive(OpenApi)]
#[openapi(
    paths(list_areas, get_area),
    components(schemas(AreaItem, AreaPage, AreaDetail, ApiAreaLevel, ProblemBody))
)]
struct AreasApi;

pub fn api() -> utoipa::openapi::OpenApi {
    AreasApi::openapi()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list_areas))
        .route("/{code}", get(get_area))
}

/// A level of the hierarchy, from the top.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = AreaLevel)]
pub enum ApiAreaLevel {
    Province,
    District,
    Sector,
    Cell,
    Village,
}

impl From<AreaLevel> for ApiAreaLevel {
    fn from(level: AreaLevel) -> Self {
        match level {
            AreaLevel::Province => ApiAreaLevel::Province,
            AreaLevel::District => ApiAreaLevel::District,
            AreaLevel::Sector => ApiAreaLevel::Sector,
            AreaLevel::Cell => ApiAreaLevel::Cell,
            AreaLevel::Village => ApiAreaLevel::Village,
        }
    }
}

/// An administrative area.
#[derive(Debug, Serialize, ToSchema)]
pub struct AreaItem {
    /// NISR code: 1 digit (province), 2 (district), 4 (sector), 6 (cell) or 8 (village). It
    /// starts with the code of every enclosing area.
    #[schema(example = "1101")]
    pub code: String,
    /// The name as NISR publishes it.
    #[schema(example = "Gitega")]
    pub name: String,
    pub level: ApiAreaLevel,
    /// Code of the enclosing area; null for provinces.
    #[schema(example = "11", required = true)]
    pub parent: Option<String>,
}

impl From<Area> for AreaItem {
    fn from(a: Area) -> Self {
        AreaItem {
            code: a.code.to_string(),
            name: a.name,
            level: a.level.into(),
            parent: a.parent.map(|p| p.to_string()),
        }
    }
}

/// One page of areas, ordered by code.
#[derive(Debug, Serialize, ToSchema)]
pub struct AreaPage {
    pub items: Vec<AreaItem>,
    /// Pass as `after` to get the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// An area with the areas that enclose it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AreaDetail {
    /// NISR code of the area.
    #[schema(example = "1101")]
    pub code: String,
    /// The name as NISR publishes it.
    #[schema(example = "Gitega")]
    pub name: String,
    pub level: ApiAreaLevel,
    /// Code of the enclosing area; null for provinces.
    #[schema(example = "11", required = true)]
    pub parent: Option<String>,
    /// The enclosing areas, province first, down to the parent.
    pub ancestors: Vec<AreaItem>,
    /// How many areas lie directly inside this one (0 for villages).
    pub child_count: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only the areas directly inside this one (a NISR code).
    #[param(value_type = Option<String>, example = "1101")]
    parent: Option<AreaCode>,
    /// Only areas of this level.
    #[param(value_type = Option<ApiAreaLevel>)]
    level: Option<AreaLevel>,
    /// Text found anywhere in the name, ignoring case and diacritics (`gasabo` finds `Gasabo`).
    #[param(example = "gasabo")]
    q: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`: only areas after this code.
    #[param(value_type = Option<String>)]
    after: Option<AreaCode>,
}

impl ListParams {
    fn into_query(self) -> ApiResult<AreaQuery> {
        let limit = page_limit(self.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        if self
            .q
            .as_deref()
            .is_some_and(|q| q.chars().count() > MAX_Q_CHARS)
        {
            return Err(ApiError::invalid_field(
                "q",
                format!("query parameter 'q': at most {MAX_Q_CHARS} characters"),
            ));
        }
        Ok(AreaQuery {
            parent: self.parent,
            level: self.level,
            q: self.q.filter(|q| !q.trim().is_empty()),
            after: self.after,
            limit,
        })
    }
}

/// List areas, filtered and paginated by code.
///
/// Filters combine with AND. Pages are ordered by code; follow `next_cursor` (as `after`) until
/// it is null.
#[utoipa::path(get, path = "/api/v1/areas", tag = "areas", params(ListParams),
    responses(
        (status = 200, description = "A page of areas", body = AreaPage),
        (status = 400, description = "A malformed query parameter, named in `field`",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No area has the `parent` code",
            body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn list_areas(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<AreaPage>> {
    let mut query = params.into_query()?;
    let limit = query.limit as usize;
    // One more than asked tells whether another page follows.
    query.limit += 1;
    let mut areas = state.store.areas().list_areas(&query).await?;
    if areas.is_empty() {
        if let Some(parent) = &query.parent {
            ensure_exists(&state, parent, Some("parent")).await?;
        }
    }
    let next_cursor = if areas.len() > limit {
        areas.truncate(limit);
        areas.last().map(|a| a.code.to_string())
    } else {
        None
    };
    Ok(Json(AreaPage {
        items: areas.into_iter().map(AreaItem::from).collect(),
        next_cursor,
    }))
}

/// One area, with the areas enclosing it and how many areas it contains directly.
#[utoipa::path(get, path = "/api/v1/areas/{code}", tag = "areas",
    params(("code" = String, Path, description = "NISR code: 1, 2, 4, 6 or 8 digits",
        example = "110101")),
    responses(
        (status = 200, description = "The area", body = AreaDetail),
        (status = 400, description = "`code` is not a NISR code",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No area has this code",
            body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub async fn get_area(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> ApiResult<Json<AreaDetail>> {
    let code = AreaCode::parse(&code)
        .map_err(|e| ApiError::invalid_field("code", format!("path parameter 'code': {e}")))?;
    let areas = state.store.areas();
    let area = ensure_exists(&state, &code, None).await?;
    let ancestors = areas.get_areas(&code.ancestors()).await?;
    let child_count = areas.count_children(&code).await?;
    Ok(Json(AreaDetail {
        code: area.code.to_string(),
        name: area.name,
        level: area.level.into(),
        parent: area.parent.map(|p| p.to_string()),
        ancestors: ancestors.into_iter().map(AreaItem::from).collect(),
        child_count,
    }))
}

/// The area with `code`, or a 404 naming `field` when it came from a query parameter.
async fn ensure_exists(state: &AppState, code: &AreaCode, field: Option<&str>) -> ApiResult<Area> {
    match state.store.areas().get_area(code).await? {
        Some(area) => Ok(area),
        None => Err(ApiError {
            field: field.map(str::to_string),
            ..ApiError::not_found(format!("no area has the code {code}"))
        }),
    }
}
