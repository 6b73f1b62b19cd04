//! Web pages over real HTTP, on every configured backend: language resolution, assets, security
//! headers, error pages and the API documentation page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use inkingi_domain::areas::AreaLevel;
use inkingi_testkit::TestApp;
use reqwest::header::{self, HeaderMap};

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

async fn fetch(app: &TestApp, path: &str, extra: &[(&str, &str)]) -> Page {
    let mut req = app.client.get(app.url(path));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    Page {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

fn html_lang(body: &str) -> &str {
    let start = body.find("<html lang=\"").expect("<html lang=…>") + 12;
    let end = body[start..].find('"').unwrap() + start;
    &body[start..end]
}

fn header(p: &Page, name: header::HeaderName) -> &str {
    p.headers
        .get(&name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

/// Every `<script>` must load a file and no element may carry a `style` attribute or hold a
/// `<style>` block: the Content-Security-Policy would block them in a browser.
fn assert_no_inline_code(path: &str, body: &str) {
    let lower = body.to_ascii_lowercase();
    for (i, _) in lower.match_indices("<script") {
        let tag_end = lower[i..].find('>').unwrap() + i;
        let tag = &lower[i..tag_end];
        assert!(tag.contains(" src=\""), "{path}: inline script {tag}");
        assert!(
            lower[tag_end + 1..].starts_with("</script>"),
            "{path}: script with a body at {i}"
        );
    }
    assert!(!lower.contains("<style"), "{path}: <style> block");
    for (i, _) in lower.match_indices(" style=") {
        // Only an attribute inside a tag counts; text such as "style=" in prose would not be.
        let open = lower[..i].rfind('<').unwrap_or(0);
        let close = lower[..i].rfind('>').unwrap_or(0);
        assert!(
            open < close,
            "{path}: style attribute near {}",
            &body[open..i + 20]
        );
    }
    assert!(!lower.contains(" onclick="), "{path}: inline event handler");
    assert!(!lower.contains("hx-on"), "{path}: htmx inline handler");
}

/// Pages and the language each is expected in.
const PAGES: [&str; 4] = ["/", "/areas", "/areas?parent=1", "/api/docs"];

#[tokio::test]
async fn pages_speak_the_requested_language() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let k = app.kind.as_str();
        for path in PAGES {
            let sep = if path.contains('?') { '&' } else { '?' };
            for (code, nav_home) in [("rw", "Ahabanza"), ("en", "Home"), ("fr", "Accueil")] {
                let p = fetch(&app, &format!("{path}{sep}lang={code}"), &[]).await;
                // A parent code may be unknown before reference data is loaded: 404 is fine there.
                assert!(
                    p.status == 200 || path.contains("parent"),
                    "[{k}] {path}: {}",
                    p.status
                );
                assert_eq!(html_lang(&p.body), code, "[{k}] {path}");
                assert!(p.body.contains(nav_home), "[{k}] {path} in {code}");
                assert!(header(&p, header::CONTENT_TYPE).starts_with("text/html"));
                let cookie = header(&p, header::SET_COOKIE);
                assert!(
                    cookie.starts_with(&format!("lang={code};")),
                    "[{k}] {cookie}"
                );
                assert!(
                    cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
                    "{cookie}"
                );
            }
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn language_comes_from_cookie_then_browser_then_default() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let k = app.kind.as_str();
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("cookie", "lang=fr"), ("accept-language", "en")], "fr"),
            (&[("accept-language", "de-CH, en-GB;q=0.8, fr;q=0.5")], "en"),
            (&[("accept-language", "fr-RW")], "fr"),
            (&[("accept-language", "de, sw")], "rw"),
            (&[], "rw"),
        ];
        for (headers, expected) in cases {
            let p = fetch(&app, "/", headers).await;
            assert_eq!(p.status, 200, "[{k}] {headers:?}");
            assert_eq!(html_lang(&p.body), expected, "[{k}] {headers:?}");
            // Only an explicit choice sets the cookie.
            assert!(p.headers.get(header::SET_COOKIE).is_none(), "[{k}]");
            assert!(header(&p, header::VARY).contains("Cookie"));
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn home_shows_the_store_figures_or_says_they_are_unavailable() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let k = app.kind.as_str();
        let p = fetch(&app, "/?lang=en", &[]).await;
        assert_eq!(
            p.status, 200,
            "[{k}] never a 500, even without reference data"
        );
        let areas = app.store.areas();
        let per_district = areas
            .count_descendants(AreaLevel::District, AreaLevel::Village)
            .await;
        match (areas.count_areas_by_level().await, per_district) {
            (Ok(levels), Ok(districts)) => {
                let villages: i64 = levels
                    .iter()
                    .filter(|(l, _)| *l == AreaLevel::Village)
                    .map(|(_, n)| n)
                    .sum();
                let shown = format!("<span class=\"stat-value\">{}</span>", group(villages));
                assert!(p.body.contains(&shown), "[{k}] village count {shown}");
                for (district, _) in districts {
                    assert!(p.body.contains(&district.name), "[{k}] {}", district.name);
                }
                assert!(p.body.contains("data-chart="), "[{k}]");
            }
            _ => {
                assert!(p.body.contains("Reference data unavailable"), "[{k}]");
                let fr = fetch(&app, "/?lang=fr", &[]).await;
                assert!(
                    fr.body.contains("Données de référence indisponibles"),
                    "[{k}]"
                );
                let rw = fetch(&app, "/?lang=rw", &[]).await;
                assert!(rw.body.contains("Amakuru shingiro ntaboneka"), "[{k}]");
            }
        }
        app.stop().await;
    }
}

/// English thousands grouping, written independently of the code under test.
fn group(n: i64) -> String {
    let rev: Vec<char> = n.to_string().chars().rev().collect();
    let groups: Vec<String> = rev.chunks(3).map(|c| c.iter().rev().collect()).collect();
    groups.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The `/assets/…` URLs a page links.
fn asset_urls(body: &str) -> Vec<String> {
    body.match_indices("\"/assets/")
        .map(|(i, _)| {
            let rest = &body[i + 1..];
            rest[..rest.find('"').unwrap()].replace("&amp;", "&")
        })
        .collect()
}

#[tokio::test]
async fn assets_have_types_and_safe_long_caching() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let k = app.kind.as_str();
        let home = fetch(&app, "/?lang=en", &[]).await;
        let urls = asset_urls(&home.body);
        let expect = [
            ("/assets/app.css?v=", "text/css"),
            ("/assets/app.js?v=", "text/javascript"),
            ("/assets/vendor/htmx-2.0.11.min.js?v=", "text/javascript"),
            (
                "/assets/vendor/chart-4.6.1.umd.min.js?v=",
                "text/javascript",
            ),
            ("/assets/favicon.svg?v=", "image/svg+xml"),
        ];
        for (prefix, ctype) in expect {
            let url = urls
                .iter()
                .find(|u| u.starts_with(prefix))
                .unwrap_or_else(|| panic!("[{k}] home links no {prefix}: {urls:?}"));
            let p = fetch(&app, url, &[]).await;
            assert_eq!(p.status, 200, "[{k}] {url}");
            assert!(
                header(&p, header::CONTENT_TYPE).starts_with(ctype),
                "[{k}] {url}"
            );
            assert_eq!(
                header(&p, header::CACHE_CONTROL),
                "public, max-age=31536000, immutable",
                "[{k}] {url}"
            );
            assert!(!p.body.is_empty());

            // Without the current hash the asset must be revalidated, and revalidation works.
            let bare = url.split('?').next().unwrap();
            let p = fetch(&app, bare, &[]).await;
            assert_eq!(
                header(&p, header::CACHE_CONTROL),
                "no-cache",
                "[{k}] {bare}"
            );
            let etag = header(&p, header::ETAG).to_string();
            let p = fetch(&app, bare, &[("if-none-match", &etag)]).await;
            assert_eq!(p.status, 304, "[{k}] {bare}");
            let p = fetch(&app, &format!("{bare}?v=0000"), &[]).await;
            assert_eq!(
                header(&p, header::CACHE_CONTROL),
                "no-cache",
                "[{k}] stale hash"
            );
        }
        let htmx = fetch(&app, "/assets/vendor/htmx-2.0.11.min.js", &[]).await;
        assert!(htmx.body.contains("htmx"), "[{k}] real htmx");
        let lic = fetch(&app, "/assets/vendor/LICENSE-chartjs.txt", &[]).await;
        assert!(lic.body.contains("MIT"), "[{k}]");

        let missing = fetch(&app, "/assets/nope.js", &[]).await;
        assert_eq!(missing.status, 404, "[{k}]");
        assert!(header(&missing, header::CONTENT_TYPE).starts_with("application/problem+json"));
        let bad = fetch(&app, "/assets/app.css?x=1", &[]).await;
        assert_eq!(bad.status, 400, "[{k}]");
        assert!(bad.body.contains("\"field\":\"x\""), "[{k}] {}", bad.body);
        app.stop().await;
    }
}

#[tokio::test]
async fn every_page_has_the_csp_and_no_inline_code() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let k = app.kind.as_str();
        let browser = [("accept", BROWSER_ACCEPT)];
        let paths =
            PAGES
                .iter()
                .copied()
                .chain(["/no/such/page", "/?lang=de", "/areas?parent=123"]);
        for path in paths {
            let p = fetch(&app, path, &browser).await;
            assert!(
                header(&p, header::CONTENT_TYPE).starts_with("text/html"),
                "[{k}] {path}"
            );
            let csp = header(&p, header::CONTENT_SECURITY_POLICY);
            assert!(csp.contains("script-src 'self'"), "[{k}] {path}: {csp}");
            assert!(csp.contains("style-src 'self'"), "[{k}] {path}: {csp}");
            assert_no_inline_code(path, &p.body);
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn error_pages_for_browsers_and_problems_for_clients() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let k = app.kind.as_str();
        let browser = ("accept", BROWSER_ACCEPT);

        let p = fetch(&app, "/no/such/page", &[browser, ("cookie", "lang=fr")]).await;
        assert_eq!(p.status, 404, "[{k}]");
        assert_eq!(html_lang(&p.body), "fr");
        assert!(p.body.contains("Page introuvable"), "[{k}]");

        let api = fetch(&app, "/no/such/page", &[]).await;
        assert_eq!(api.status, 404, "[{k}]");
        assert!(header(&api, header::CONTENT_TYPE).starts_with("application/problem+json"));

        let p = fetch(&app, "/?lang=de", &[browser, ("accept-language", "en")]).await;
        assert_eq!(p.status, 400, "[{k}]");
        assert_eq!(html_lang(&p.body), "en");
        assert!(
            p.body.contains("<code>lang</code>"),
            "[{k}] names the parameter"
        );
        assert!(
            p.body.contains("unsupported language &#39;de&#39;")
                || p.body.contains("unsupported language 'de'"),
            "[{k}] {}",
            p.body
        );

        let p = fetch(&app, "/areas?parent=123&lang=en", &[browser]).await;
        assert_eq!(p.status, 400, "[{k}]");
        assert!(p.body.contains("<code>parent</code>"), "[{k}]");
        let p = fetch(&app, "/areas?prent=1&lang=en", &[browser]).await;
        assert_eq!(p.status, 400, "[{k}]");
        assert!(p.body.contains("<code>prent</code>"), "[{k}]");
        app.stop().await;
    }
}

#[tokio::test]
async fn areas_panel_comes_alone_for_htmx() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let k = app.kind.as_str();
        let full = fetch(&app, "/areas?lang=en", &[]).await;
        assert!(
            full.body.contains("<html") && full.body.contains("id=\"area-panel\""),
            "[{k}]"
        );
        let part = fetch(&app, "/areas?lang=en", &[("hx-request", "true")]).await;
        assert_eq!(part.status, 200, "[{k}]");
        assert!(!part.body.contains("<html"), "[{k}] a fragment, not a page");
        assert!(
            part.body
                .trim_start()
                .starts_with("<section id=\"area-panel\""),
            "[{k}]"
        );
        // A history restore needs the whole page again.
        let restore = fetch(
            &app,
            "/areas?lang=en",
            &[
                ("hx-request", "true"),
                ("hx-history-restore-request", "true"),
            ],
        )
        .await;
        assert!(restore.body.contains("<html"), "[{k}]");
        let listed = app
            .store
            .areas()
            .list_areas(&inkingi_store::areas::AreaQuery {
                level: Some(AreaLevel::Province),
                limit: 10,
                ..Default::default()
            })
            .await;
        match listed {
            Ok(provinces) => {
                for p in provinces {
                    assert!(
                        full.body.contains(&format!("/areas?parent={}", p.code)),
                        "[{k}]"
                    );
                }
            }
            Err(_) => assert!(full.body.contains("Reference data unavailable"), "[{k}]"),
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn api_docs_page_lists_every_documented_operation() {
    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let k = app.kind.as_str();
        let doc = app.get_json("/api/v1/openapi.json", 200).await;
        let p = fetch(&app, "/api/docs?lang=en", &[]).await;
        assert_eq!(p.status, 200, "[{k}]");
        assert!(
            p.body.contains("<code class=\"op-path\">/healthz</code>"),
            "[{k}]"
        );
        assert!(p.body.contains("id=\"op-get-healthz\""), "[{k}]");
        assert!(p.body.contains("href=\"/api/v1/openapi.json\""), "[{k}]");
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if method == "parameters" {
                    continue;
                }
                let marker = format!(
                    "<span class=\"method method-{method}\">{}</span> <code class=\"op-path\">{}</code>",
                    method.to_uppercase(),
                    path.replace('&', "&amp;")
                );
                assert!(p.body.contains(&marker), "[{k}] docs lack {method} {path}");
            }
        }
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(
                p.body.contains(&format!("<code>{name}</code>")),
                "[{k}] schema {name}"
            );
        }
        // Chrome is translated; the API's own texts stay in English and are marked so.
        let fr = fetch(&app, "/api/docs?lang=fr", &[]).await;
        assert!(fr.body.contains("Réponses"), "[{k}]");
        assert!(fr.body.contains("lang=\"en\""), "[{k}]");
        app.stop().await;
    }
}
