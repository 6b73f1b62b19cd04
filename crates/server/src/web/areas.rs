//! `/areas`: browse the administrative hierarchy, one level at a time.
//!
//! Every level is a plain link (`/areas?parent=CODE`), so the page works without JavaScript. With
//! htmx, links are boosted: htmx asks for the same URL with `HX-Request`, gets only the panel,
//! swaps it in and pushes the URL, so Back and bookmarks keep working.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use inkingi_domain::areas::{AreaCode, AreaLevel};
use inkingi_store::areas::{Area, AreaQuery, AreaStore};
use inkingi_store::StoreResult;
use serde::Deserialize;

use super::i18n::Messages;
use super::page::{bad_request, render, Chrome, PageCtx, Section};
use crate::error::ApiError;
use crate::extract::parse_query;
use crate::AppState;

/// More children than any Rwandan area has (the most is a few dozen), so none is cut off.
const MAX_CHILDREN: u32 = 1000;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AreasQuery {
    /// Show the areas directly inside this one (NISR code); provinces when absent.
    parent: Option<String>,
    /// Language: `rw`, `en` or `fr`.
    #[allow(dead_code)]
    lang: Option<String>,
}

#[derive(Template)]
#[template(path = "areas.html")]
struct AreasPage {
    chrome: Chrome,
    panel: Panel,
}

#[derive(Template)]
#[template(path = "areas_panel.html")]
struct Panel {
    t: &'static Messages,
    crumbs: Vec<Crumb>,
    body: PanelBody,
}

struct Crumb {
    name: String,
    href: String,
}

enum PanelBody {
    Unavailable,
    NotFound(String),
    Children {
        heading: String,
        level_tag: Option<&'static str>,
        list_heading: &'static str,
        children: Vec<Child>,
    },
}

struct Child {
    code: String,
    name: String,
    /// `None` for villages, which have nothing below them.
    href: Option<String>,
}

/// The administrative areas page (or, for htmx, just its panel).
#[utoipa::path(get, path = "/areas", tag = "web", operation_id = "areas_page",
    params(AreasQuery),
    responses(
        (status = 200, description = "HTML page", content_type = "text/html"),
        (status = 400, description = "Malformed `parent` or unsupported `lang`", content_type = "text/html"),
        (status = 404, description = "No area has the `parent` code", content_type = "text/html")))]
pub async fn page(ctx: PageCtx, State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    let parent = match parse_parent(uri.query().unwrap_or_default()) {
        Ok(p) => p,
        Err(e) => return bad_request(&ctx, &e),
    };
    let t = ctx.t();
    let (status, panel) = build_panel(state.store.areas(), t, parent.as_ref()).await;
    if ctx.fragment {
        return render(&ctx, status, &panel);
    }
    let page = AreasPage {
        chrome: ctx.chrome(Section::Areas, &t.areas_title),
        panel,
    };
    render(&ctx, status, &page)
}

fn parse_parent(raw: &str) -> Result<Option<AreaCode>, ApiError> {
    let q: AreasQuery = parse_query(raw)?;
    q.parent
        .filter(|p| !p.trim().is_empty())
        .map(|p| AreaCode::parse(&p))
        .transpose()
        .map_err(|e| ApiError::invalid_field("parent", format!("query parameter 'parent': {e}")))
}

async fn build_panel(
    store: &dyn AreaStore,
    t: &'static Messages,
    parent: Option<&AreaCode>,
) -> (StatusCode, Panel) {
    let root = Crumb {
        name: t.breadcrumb_root.clone(),
        href: "/areas".into(),
    };
    let Some(code) = parent else {
        let body = match store.list_areas(&children_query(None)).await {
            Ok(areas) => children_body(
                t,
                t.breadcrumb_root.clone(),
                None,
                AreaLevel::Province,
                areas,
            ),
            Err(e) => unavailable(e),
        };
        return (
            StatusCode::OK,
            Panel {
                t,
                crumbs: vec![root],
                body,
            },
        );
    };
    match load_area(store, code).await {
        Ok(Some((area, ancestors, children))) => {
            let mut crumbs = vec![root];
            crumbs.extend(ancestors.iter().chain([&area]).map(crumb));
            let below = area.level.child().unwrap_or(AreaLevel::Village);
            let tag = Some(t.level_singular(area.level));
            let body = children_body(t, area.name.clone(), tag, below, children);
            (StatusCode::OK, Panel { t, crumbs, body })
        }
        Ok(None) => {
            let body = PanelBody::NotFound(code.to_string());
            (
                StatusCode::NOT_FOUND,
                Panel {
                    t,
                    crumbs: vec![root],
                    body,
                },
            )
        }
        Err(e) => (
            StatusCode::OK,
            Panel {
                t,
                crumbs: vec![root],
                body: unavailable(e),
            },
        ),
    }
}

type Loaded = (Area, Vec<Area>, Vec<Area>);

/// The area, its ancestors from the province down, and its children.
async fn load_area(store: &dyn AreaStore, code: &AreaCode) -> StoreResult<Option<Loaded>> {
    let Some(area) = store.get_area(code).await? else {
        return Ok(None);
    };
    let ancestors = store.get_areas(&code.ancestors()).await?;
    let children = if area.level.child().is_some() {
        store
            .list_areas(&children_query(Some(code.clone())))
            .await?
    } else {
        Vec::new()
    };
    Ok(Some((area, ancestors, children)))
}

fn children_query(parent: Option<AreaCode>) -> AreaQuery {
    AreaQuery {
        level: parent.is_none().then_some(AreaLevel::Province),
        parent,
        limit: MAX_CHILDREN,
        ..AreaQuery::default()
    }
}

fn crumb(a: &Area) -> Crumb {
    Crumb {
        name: a.name.clone(),
        href: format!("/areas?parent={}", a.code),
    }
}

fn children_body(
    t: &'static Messages,
    heading: String,
    level_tag: Option<&'static str>,
    below: AreaLevel,
    areas: Vec<Area>,
) -> PanelBody {
    PanelBody::Children {
        heading,
        level_tag,
        list_heading: t.level_plural(below),
        children: areas
            .into_iter()
            .map(|a| Child {
                href: a.level.child().map(|_| format!("/areas?parent={}", a.code)),
                code: a.code.to_string(),
                name: a.name,
            })
            .collect(),
    }
}

fn unavailable(e: inkingi_store::StoreError) -> PanelBody {
    tracing::warn!(error = %e, "areas page: reference data unavailable");
    PanelBody::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_parameter_is_parsed_and_named_when_bad() {
        assert_eq!(parse_parent("").expect("ok"), None);
        assert_eq!(parse_parent("parent=").expect("ok"), None);
        assert_eq!(
            parse_parent("parent=11&lang=fr").expect("ok"),
            Some(AreaCode::parse("11").expect("valid"))
        );
        let e = parse_parent("parent=123").expect_err("3 digits is no level");
        assert_eq!(e.field.as_deref(), Some("parent"));
        let e = parse_parent("parnet=11").expect_err("unknown parameter");
        assert_eq!(e.field.as_deref(), Some("parnet"));
    }
}
