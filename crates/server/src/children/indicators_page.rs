//! The indicators page: the table of an area and the areas one level down, each figure linked
//! to the list of children behind it, and each area to its own table.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use inkingi_domain::children::indicators::IndicatorCode;
use inkingi_domain::identity::Permission;

use super::indicators::{area_and_month, read_missing, table, AreaRow, IndicatorParams};
use super::services::health_reader;
use crate::auth::PagePrincipal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::web::i18n::Messages;
use crate::web::page::{render, PageCtx, Section};
use crate::AppState;

/// The page's query: the API's, and the language the page is shown in.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    pub area: Option<String>,
    pub month: Option<String>,
    /// en, fr or rw.
    pub lang: Option<String>,
}

struct CellView {
    code: &'static str,
    value: String,
    numerator: i64,
    denominator: i64,
    /// Moderate and severe cases of a prevalence indicator.
    grades: String,
}

struct RowView {
    area: String,
    total: bool,
    cells: Vec<CellView>,
}

#[derive(Template)]
#[template(path = "children/indicators.html")]
struct IndicatorsPage {
    chrome: crate::web::page::Chrome,
    area: String,
    month: String,
    up: Option<String>,
    provisional: bool,
    empty: bool,
    headers: Vec<String>,
    rows: Vec<RowView>,
}

fn header(t: &Messages, code: IndicatorCode) -> String {
    match code {
        IndicatorCode::Fic12 => &t.ind_fic12,
        IndicatorCode::Fic24 => &t.ind_fic24,
        IndicatorCode::Stunting => &t.ind_stunting,
        IndicatorCode::Wasting => &t.ind_wasting,
        IndicatorCode::GrowthMonitoring => &t.ind_growth_monitoring,
        IndicatorCode::BirthRegistration => &t.ind_birth_registration,
        IndicatorCode::PreprimaryEnrolment => &t.ind_preprimary_enrolment,
    }
    .clone()
}

fn row(r: &AreaRow, total: bool) -> RowView {
    let cells = IndicatorCode::ALL
        .into_iter()
        .map(|code| {
            let c = r.indicators.get(code.as_str()).cloned().unwrap_or_default();
            CellView {
                code: code.as_str(),
                value: c
                    .value
                    .map(|v| format!("{:.1} %", v * 100.0))
                    .unwrap_or_else(|| "–".into()),
                numerator: c.numerator,
                denominator: c.denominator,
                grades: match (c.moderate, c.severe) {
                    (Some(m), Some(s)) => format!("{m} + {s}"),
                    _ => String::new(),
                },
            }
        })
        .collect();
    RowView {
        area: r.area.clone(),
        total,
        cells,
    }
}

/// Child indicators by area (HTML).
#[utoipa::path(get, path = "/children/indicators", operation_id = "children_indicators_page", tag = "children",
    params(PageParams),
    responses((status = 200, description = "The indicators page (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn indicators_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Query(q): Query<PageParams>,
) -> ApiResult<Response> {
    principal.require(Permission::ReadAggregates)?;
    let q = IndicatorParams {
        area: q.area,
        month: q.month,
    };
    let (area, month) = area_and_month(&principal, &q)?;
    let t = table(&state.store, &principal.scope, area.as_ref(), month).await?;
    let mut rec = principal.audit_record("children.indicators.read", "aggregate");
    rec.area = area.clone();
    rec.fields = vec![format!("month={month}"), "page".into()];
    state.audit.append(vec![rec]).await?;
    let tr = ctx.t();
    let mut rows = vec![row(&t.total, true)];
    rows.extend(t.areas.iter().map(|r| row(r, false)));
    let page = IndicatorsPage {
        chrome: ctx.chrome(Section::Registry, &tr.ind_title),
        area: t.area.clone(),
        month: t.month.clone(),
        up: area
            .as_ref()
            .and_then(|a| a.parent())
            .map(|p| p.as_str().to_string()),
        provisional: t.provisional,
        empty: t.total.indicators.values().all(|c| c.denominator == 0),
        headers: IndicatorCode::ALL
            .into_iter()
            .map(|c| header(tr, c))
            .collect(),
        rows,
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}

struct MissingRow {
    person_id: String,
    name: String,
    village: String,
    birth_date: String,
    missing: String,
    measured_on: String,
}

#[derive(Template)]
#[template(path = "children/missing.html")]
struct MissingPage {
    chrome: crate::web::page::Chrome,
    indicator: String,
    area: String,
    month: String,
    truncated: bool,
    rows: Vec<MissingRow>,
}

/// Which children are missing what, for one indicator, area and month (HTML): the page behind
/// each figure of the indicators page. Personal health data: health roles, scoped, audited.
#[utoipa::path(get, path = "/children/indicators/{indicator}/missing", operation_id = "children_indicator_missing_page", tag = "children",
    params(("indicator" = String, Path), PageParams),
    responses((status = 200, description = "The children behind a figure (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page"),
        (status = 404, description = "No such indicator")))]
pub async fn missing_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(indicator): Path<String>,
    Query(q): Query<PageParams>,
) -> ApiResult<Response> {
    let purpose = health_reader(&state, &principal)?;
    let code = IndicatorCode::parse(&indicator)
        .ok_or_else(|| ApiError::not_found(format!("no indicator '{indicator}'")))?;
    let q = IndicatorParams {
        area: q.area,
        month: q.month,
    };
    let (area, month) = area_and_month(&principal, &q)?;
    let list = read_missing(&state, &principal, purpose, code, area, month).await?;
    let tr = ctx.t();
    let title = format!("{} — {}", header(tr, code), tr.ind_missing_title);
    let page = MissingPage {
        chrome: ctx.chrome(Section::Registry, &title),
        indicator: header(tr, code),
        area: list.area.clone(),
        month: list.month.clone(),
        truncated: list.truncated,
        rows: list
            .children
            .iter()
            .map(|c| MissingRow {
                person_id: c.person_id.to_string(),
                name: c.name.clone(),
                village: c.village.clone().unwrap_or_default(),
                birth_date: c.birth_date.to_string(),
                missing: c.missing.join(", "),
                measured_on: c.measured_on.map(|d| d.to_string()).unwrap_or_default(),
            })
            .collect(),
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}
