//! `/`: counts of areas per level and a chart of villages per district.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use inkingi_domain::areas::AreaLevel;
use inkingi_store::areas::Area;
use inkingi_store::StoreResult;
use serde::Serialize;

use super::i18n::{Lang, Messages};
use super::page::{render, Chrome, PageCtx, Section};
use crate::AppState;

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub chrome: Chrome,
    pub data: HomeData,
}

pub enum HomeData {
    /// The store could not answer; the page says so instead of failing.
    Unavailable,
    Loaded {
        counts: Vec<LevelCount>,
        districts: Vec<DistrictRow>,
        /// JSON for the chart, read by `assets/app.js` from a data attribute (no inline script).
        chart: String,
    },
}

pub struct LevelCount {
    pub label: &'static str,
    pub value: String,
}

pub struct DistrictRow {
    pub code: String,
    pub name: String,
    pub count: String,
}

#[derive(Serialize)]
struct ChartData<'a> {
    locale: &'static str,
    label: &'a str,
    labels: Vec<&'a str>,
    values: Vec<i64>,
}

/// The home page.
#[utoipa::path(get, path = "/", tag = "web", operation_id = "home_page",
    params(("lang" = Option<String>, Query, description = "Language: `rw`, `en` or `fr`; remembered in a cookie")),
    responses(
        (status = 200, description = "HTML page", content_type = "text/html"),
        (status = 400, description = "Unsupported `lang`", content_type = "text/html")))]
pub async fn page(ctx: PageCtx, State(state): State<AppState>) -> Response {
    let areas = state.store.areas();
    let by_level = areas.count_areas_by_level().await;
    let per_district = match by_level {
        Ok(_) => {
            areas
                .count_descendants(AreaLevel::District, AreaLevel::Village)
                .await
        }
        Err(_) => Ok(Vec::new()),
    };
    let t = ctx.t();
    let page = HomePage {
        chrome: ctx.chrome(Section::Home, &t.home_title),
        data: home_data(ctx.lang(), by_level, per_district),
    };
    render(&ctx, StatusCode::OK, &page)
}

/// Builds the page's data from the store's answers; any failure becomes the "unavailable" notice.
pub fn home_data(
    lang: Lang,
    by_level: StoreResult<Vec<(AreaLevel, i64)>>,
    per_district: StoreResult<Vec<(Area, i64)>>,
) -> HomeData {
    let (by_level, per_district) = match (by_level, per_district) {
        (Ok(l), Ok(d)) => (l, d),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "home page: area figures unavailable");
            return HomeData::Unavailable;
        }
    };
    let t = lang.messages();
    HomeData::Loaded {
        counts: level_counts(lang, t, &by_level),
        districts: per_district
            .iter()
            .map(|(a, n)| DistrictRow {
                code: a.code.to_string(),
                name: a.name.clone(),
                count: lang.format_count(*n),
            })
            .collect(),
        chart: chart_json(lang, t, &per_district),
    }
}

/// One entry per level, top down, zero for a level the store did not mention.
fn level_counts(
    lang: Lang,
    t: &'static Messages,
    by_level: &[(AreaLevel, i64)],
) -> Vec<LevelCount> {
    AreaLevel::ALL
        .into_iter()
        .map(|level| {
            let n = by_level
                .iter()
                .filter(|(l, _)| *l == level)
                .map(|(_, n)| *n)
                .sum();
            LevelCount {
                label: t.level_plural(level),
                value: lang.format_count(n),
            }
        })
        .collect()
}

fn chart_json(lang: Lang, t: &Messages, per_district: &[(Area, i64)]) -> String {
    let data = ChartData {
        locale: lang.code(),
        label: &t.table_villages,
        labels: per_district.iter().map(|(a, _)| a.name.as_str()).collect(),
        values: per_district.iter().map(|(_, n)| *n).collect(),
    };
    serde_json::to_string(&data).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use inkingi_domain::areas::AreaCode;
    use inkingi_store::StoreError;

    fn district(code: &str, name: &str) -> Area {
        Area {
            code: AreaCode::parse(code).expect("valid code"),
            name: name.into(),
            level: AreaLevel::District,
            parent: AreaCode::parse(&code[..1]).ok(),
        }
    }

    fn render_home(lang: Lang, data: HomeData) -> String {
        let ctx = PageCtx::from_parts(
            "/",
            Some(&format!("lang={}", lang.code())),
            &Default::default(),
        );
        HomePage {
            chrome: ctx.chrome(Section::Home, "x"),
            data,
        }
        .render()
        .expect("renders")
    }

    #[test]
    fn figures_are_shown_with_chart_data() {
        let data = home_data(
            Lang::En,
            Ok(vec![(AreaLevel::Province, 5), (AreaLevel::Village, 14837)]),
            Ok(vec![
                (district("11", "Nyarugenge"), 144),
                (district("12", "Gasabo"), 1001),
            ]),
        );
        let html = render_home(Lang::En, data);
        assert!(html.contains("14,837"), "{html}");
        assert!(html.contains("Villages"));
        assert!(html.contains("1,001"));
        assert!(html.contains("data-chart=\""));
        // The JSON is attribute-escaped, so quotes cannot end the attribute.
        assert!(
            html.contains("&#34;labels&#34;") || html.contains("&quot;labels&quot;"),
            "{html}"
        );
        assert!(html.contains("Gasabo"));
        assert!(!html.contains("Reference data unavailable"));
    }

    #[test]
    fn store_failure_becomes_a_translated_notice() {
        fn err<T>() -> StoreResult<T> {
            Err(StoreError::Unavailable("down".into()))
        }
        let html = render_home(Lang::Fr, home_data(Lang::Fr, err(), Ok(vec![])));
        assert!(
            html.contains("Données de référence indisponibles"),
            "{html}"
        );
        assert!(!html.contains("data-chart"));
        let html = render_home(Lang::Rw, home_data(Lang::Rw, Ok(vec![]), err()));
        assert!(html.contains("Amakuru shingiro ntaboneka"), "{html}");
    }

    #[test]
    fn empty_reference_data_says_so() {
        let html = render_home(Lang::En, home_data(Lang::En, Ok(vec![]), Ok(vec![])));
        assert!(html.contains("No administrative areas are loaded yet."));
        assert!(!html.contains("<canvas"));
    }
}
