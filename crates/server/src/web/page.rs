//! What every page shares: the request's language, the layout's data ("chrome"), rendering with
//! the right headers, and the HTML error pages.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::assets;
use super::i18n::{self, Chosen, Lang, Messages};
use crate::error::ApiError;
use crate::AppState;
use inkingi_domain::identity::{may, Permission};

/// The sections of the main navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Areas,
    ApiDocs,
    Audit,
    /// The approval queue of change requests.
    Changes,
    /// Search, households and their forms.
    Registry,
    /// The record-linkage review queue.
    Linkage,
    /// Programmes: set-up, rule editor, enrolments and cycles.
    Programmes,
    /// The sign-in page and the signed-in user's own pages.
    Account,
    /// Error pages belong to no section.
    None,
}

/// Per-request facts a page needs, extracted before the handler runs. A bad `?lang=` is
/// answered here with a 400 page naming it.
#[derive(Debug, Clone)]
pub struct PageCtx {
    pub chosen: Chosen,
    path: String,
    query: Option<String>,
    /// Asked by htmx for a fragment (and not a history restore, which needs the whole page).
    pub fragment: bool,
    /// The signed-in user, shown in the header. Public pages are served either way.
    pub viewer: Option<Viewer>,
}

/// The signed-in user as the layout shows them.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub username: String,
    /// For the sign-out form.
    pub csrf_token: String,
    pub may_read_audit: bool,
    /// Sees the approval queue in the menu.
    pub may_approve: bool,
    /// Sees the registry search in the menu.
    pub may_read_registry: bool,
    /// Sees the programmes in the menu (programme staff, and finance for the cycles).
    pub may_manage_payments: bool,
    pub must_change_password: bool,
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query();
        match i18n::resolve(query, &parts.headers) {
            Ok(chosen) => Ok(PageCtx {
                chosen,
                path: parts.uri.path().to_string(),
                query: query.map(str::to_string),
                fragment: is_fragment_request(&parts.headers),
                viewer: crate::auth::viewer(state, parts).await.map(|u| Viewer {
                    may_read_audit: may(u.role, Permission::ReadAudit),
                    may_approve: may(u.role, Permission::ApproveChanges),
                    may_read_registry: may(u.role, Permission::ReadPersonalData),
                    may_manage_payments: may(u.role, Permission::ManagePayments),
                    username: u.username,
                    csrf_token: u.csrf_token,
                    must_change_password: u.must_change_password,
                }),
            }),
            Err(e) => {
                let ctx = PageCtx {
                    chosen: Chosen::Implicitly(i18n::implicit(&parts.headers)),
                    path: parts.uri.path().to_string(),
                    query: None,
                    fragment: false,
                    viewer: None,
                };
                Err(bad_request(
                    &ctx,
                    &ApiError::invalid_field("lang", e.to_string()),
                ))
            }
        }
    }
}

fn is_fragment_request(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-history-restore-request")
}

impl PageCtx {
    /// For pages built outside an extractor (the browser 404 fallback).
    pub fn from_parts(path: &str, query: Option<&str>, headers: &HeaderMap) -> PageCtx {
        let chosen = i18n::resolve(query, headers)
            .unwrap_or_else(|_| Chosen::Implicitly(i18n::implicit(headers)));
        PageCtx {
            chosen,
            path: path.to_string(),
            query: query.map(str::to_string),
            fragment: false,
            viewer: None,
        }
    }

    pub fn lang(&self) -> Lang {
        self.chosen.lang()
    }

    pub fn t(&self) -> &'static Messages {
        self.lang().messages()
    }

    /// This page's URL in `lang`: the same path and query with `lang` replaced.
    fn url_in(&self, lang: Lang) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in form_urlencoded::parse(self.query.as_deref().unwrap_or_default().as_bytes()) {
            if k != "lang" {
                q.append_pair(&k, &v);
            }
        }
        q.append_pair("lang", lang.code());
        format!("{}?{}", self.path, q.finish())
    }

    /// The sign-in link, coming back to this page afterwards; none on the sign-in page itself.
    fn sign_in_href(&self) -> Option<String> {
        if self.path == "/login" {
            return None;
        }
        let here = match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        };
        let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
        Some(format!("/login?next={next}"))
    }

    pub fn chrome(&self, section: Section, title: &str) -> Chrome {
        let t = self.t();
        let mut nav = vec![
            ("/", &t.nav_home, Section::Home),
            ("/areas", &t.nav_areas, Section::Areas),
            ("/api/docs", &t.nav_api_docs, Section::ApiDocs),
        ];
        // Shown only to those who may open it; the page itself checks again.
        if self.viewer.as_ref().is_some_and(|v| v.may_read_audit) {
            nav.push(("/audit", &t.nav_audit, Section::Audit));
        }
        if self.viewer.as_ref().is_some_and(|v| v.may_read_registry) {
            nav.push(("/registry", &t.nav_registry, Section::Registry));
        }
        if self.viewer.as_ref().is_some_and(|v| v.may_approve) {
            nav.push(("/change-requests", &t.nav_changes, Section::Changes));
        }
        // Reviewers are those who may approve changes: a confirmed duplicate becomes one.
        if self
            .viewer
            .as_ref()
            .is_some_and(|v| v.may_approve && v.may_read_registry)
        {
            nav.push(("/linkage/reviews", &t.nav_linkage, Section::Linkage));
        }
        if self.viewer.as_ref().is_some_and(|v| v.may_manage_payments) {
            nav.push(("/programmes", &t.nav_programmes, Section::Programmes));
        }
        Chrome {
            change_password_notice: section != Section::Account
                && self.viewer.as_ref().is_some_and(|v| v.must_change_password),
            user: self.viewer.clone(),
            sign_in_href: self.sign_in_href(),
            lang: self.lang().code(),
            t,
            title: title.to_string(),
            nav: nav
                .into_iter()
                .map(|(href, label, s)| NavItem {
                    href,
                    label: label.as_str(),
                    current: s == section,
                })
                .collect(),
            languages: Lang::ALL
                .into_iter()
                .map(|l| LangLink {
                    code: l.code(),
                    name: l.native_name(),
                    href: self.url_in(l),
                    current: l == self.lang(),
                })
                .collect(),
            css: assets::url(assets::APP_CSS),
            app_js: assets::url(assets::APP_JS),
            htmx_js: assets::url(assets::HTMX),
            chart_js: assets::url(assets::CHART),
            favicon: assets::url(assets::FAVICON),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// The layout's data (`templates/base.html`).
pub struct Chrome {
    pub lang: &'static str,
    pub t: &'static Messages,
    pub title: String,
    pub nav: Vec<NavItem>,
    pub languages: Vec<LangLink>,
    pub css: String,
    pub app_js: String,
    pub htmx_js: String,
    pub chart_js: String,
    pub favicon: String,
    pub version: &'static str,
    pub user: Option<Viewer>,
    pub sign_in_href: Option<String>,
    /// The user still has a one-time password: every page says where to change it.
    pub change_password_notice: bool,
}

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

pub struct LangLink {
    pub code: &'static str,
    pub name: &'static str,
    pub href: String,
    pub current: bool,
}

/// Renders a template as an HTML response, remembering an explicit language choice.
pub fn render(ctx: &PageCtx, status: StatusCode, page: &impl Template) -> Response {
    let html = match page.render() {
        Ok(html) => html,
        Err(e) => return ApiError::internal(format!("template: {e}")).into_response(),
    };
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Pages show live data and depend on the language choice, so caches must ask every time.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::VARY,
        HeaderValue::from_static("Cookie, Accept-Language, HX-Request"),
    );
    if let Chosen::Explicitly(lang) = ctx.chosen {
        if let Ok(v) = HeaderValue::from_str(&i18n::set_cookie(lang)) {
            h.insert(header::SET_COOKIE, v);
        }
    }
    res
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: Chrome,
    heading: &'a str,
    body: &'a str,
    /// The offending parameter and what is wrong with it.
    detail: Option<(String, String)>,
}

/// 404 page for browsers; API clients get problem+json from the router's fallback.
pub fn not_found(ctx: &PageCtx) -> Response {
    let t = ctx.t();
    let page = ErrorPage {
        chrome: ctx.chrome(Section::None, &t.error_not_found_title),
        heading: &t.error_not_found_title,
        body: &t.error_not_found_body,
        detail: None,
    };
    render(ctx, StatusCode::NOT_FOUND, &page)
}

/// 400 page naming the parameter at fault (the detail is the English text API clients get).
pub fn bad_request(ctx: &PageCtx, err: &ApiError) -> Response {
    let t = ctx.t();
    let page = ErrorPage {
        chrome: ctx.chrome(Section::None, &t.error_bad_request_title),
        heading: &t.error_bad_request_title,
        body: &t.error_bad_request_body,
        detail: Some((
            err.field.clone().unwrap_or_else(|| "query".into()),
            err.detail.clone(),
        )),
    };
    render(ctx, StatusCode::BAD_REQUEST, &page)
}

/// Browsers list `text/html` in `Accept`; API clients and `curl` do not.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_links_keep_other_parameters() {
        let ctx = PageCtx {
            chosen: Chosen::Implicitly(Lang::En),
            path: "/areas".into(),
            query: Some("parent=11&lang=en".into()),
            fragment: false,
            viewer: None,
        };
        assert_eq!(ctx.url_in(Lang::Fr), "/areas?parent=11&lang=fr");
        let chrome = ctx.chrome(Section::Areas, "x");
        let current: Vec<_> = chrome.languages.iter().filter(|l| l.current).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0].code, "en");
        assert!(chrome.nav.iter().any(|n| n.current && n.href == "/areas"));
        assert_eq!(
            chrome.sign_in_href.as_deref(),
            Some("/login?next=%2Fareas%3Fparent%3D11%26lang%3Den")
        );
        assert!(!chrome.nav.iter().any(|n| n.href == "/audit"));
    }

    #[test]
    fn audit_link_only_for_those_who_may_read_it() {
        let ctx = |may_read_audit| PageCtx {
            chosen: Chosen::Implicitly(Lang::En),
            path: "/".into(),
            query: None,
            fragment: false,
            viewer: Some(Viewer {
                username: "ada".into(),
                csrf_token: "c".into(),
                may_read_audit,
                may_approve: false,
                may_read_registry: false,
                may_manage_payments: false,
                must_change_password: true,
            }),
        };
        let has_audit = |c: &Chrome| c.nav.iter().any(|n| n.href == "/audit");
        assert!(has_audit(&ctx(true).chrome(Section::Home, "x")));
        assert!(!has_audit(&ctx(false).chrome(Section::Home, "x")));
        assert!(ctx(false).chrome(Section::Home, "x").change_password_notice);
        assert!(
            !ctx(false)
                .chrome(Section::Account, "x")
                .change_password_notice
        );
    }
}
