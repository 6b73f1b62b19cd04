//! The indicators page: the table of an area and the areas one level down, each figure linked
//! to the list of children behind it, and each area to its own table.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use inkingi_domain::children::indicators::IndicatorCode;
use inkingi_domain::identity::Permission;

use super::indicators::{area_and_month, table, AreaRow, IndicatorParams};
use crate::auth::PagePrincipal;
use crate::error::ApiResult;
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
