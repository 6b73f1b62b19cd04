//! The web pages in a real headless Chromium, driven over WebDriver by chromedriver.
//!
//! Runs when `INKINGI_BROWSER_TESTS=1` (CI sets it and installs Debian's `chromium` and
//! `chromium-driver`); otherwise it prints that it was skipped. With the variable set, a missing
//! chromedriver or Chromium is a failure, not a skip, so CI cannot go green without a browser.
//! `CHROMEDRIVER` and `CHROME_BIN` override where they are looked up (default: on `PATH`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use inkingi_testkit::TestApp;
use serde_json::{json, Value};

const ENABLE: &str = "INKINGI_BROWSER_TESTS";

fn enabled() -> bool {
    std::env::var(ENABLE).is_ok_and(|v| v == "1")
}

/// The first executable named `name` on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn locate(env: &str, names: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env}={} does not exist", p.display());
        return p;
    }
    names.iter().find_map(|n| on_path(n)).unwrap_or_else(|| {
        panic!(
            "{ENABLE}=1 but none of {names:?} is on PATH (install Debian packages chromium and \
             chromium-driver, or set {env})"
        )
    })
}

/// chromedriver, killed when dropped — also when an assertion panics half-way.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver(chromedriver: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = http
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success());
        if ready.is_some() {
            return driver;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A new browser session with a fresh profile (no cookies from an earlier session); the profile
/// directory lives as long as the returned guard.
async fn connect(driver: &Driver, chromium: &Path) -> (Client, tempfile::TempDir) {
    let profile = tempfile::tempdir().unwrap();
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=1280,900",
        // English first, so the page starts in a known language through Accept-Language.
        "--lang=en-US",
        &format!("--user-data-dir={}", profile.path().display()),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium.to_string_lossy(),
            "args": args,
            "prefs": {"intl.accept_languages": "en-US,en"},
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
    (client, profile)
}

/// Console messages at level SEVERE (script errors, CSP violations, failed loads) since the last
/// call. chromedriver's log endpoint is outside the W3C protocol, so it is called directly.
async fn severe_console_messages(driver: &Driver, client: &Client) -> Vec<String> {
    let id = client.session_id().await.unwrap().expect("session id");
    let res: Value = reqwest::Client::new()
        .post(format!("{}/session/{id}/se/log", driver.url))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["value"]
        .as_array()
        .unwrap_or_else(|| panic!("unexpected log reply: {res}"))
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The text of the first element matching `css`. htmx may swap the element out between finding
/// it and reading it (a stale reference), so both steps are retried until a deadline.
async fn text_of(client: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = async {
            let el = client.find(Locator::Css(css)).await?;
            el.text().await
        }
        .await;
        match attempt {
            Ok(text) => return text,
            Err(e) if Instant::now() >= deadline => panic!("no readable element {css}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn html_lang(client: &Client) -> String {
    let v = client
        .execute("return document.documentElement.lang", vec![])
        .await
        .unwrap();
    v.as_str().unwrap_or_default().to_string()
}

/// Clicks the language switcher's link for `code` and waits for the page in that language.
async fn switch_to(client: &Client, code: &str) {
    client
        .find(Locator::Css(&format!("a[data-lang-switch='{code}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(&format!("html[lang='{code}']")))
        .await
        .unwrap_or_else(|e| panic!("page did not switch to {code}: {e}"));
}

#[tokio::test]
async fn language_switch_in_a_real_browser() {
    if !enabled() {
        eprintln!(
            "browser test skipped: set {ENABLE}=1 to run it (needs chromium and chromedriver)"
        );
        return;
    }
    let chromedriver = locate("CHROMEDRIVER", &["chromedriver"]);
    let chromium = locate(
        "CHROME_BIN",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = start_driver(&chromedriver).await;

    for db in inkingi_testkit::databases().await {
        let app = TestApp::start(&db).await;
        let (client, _profile) = connect(&driver, &chromium).await;
        let outcome = run_scenario(&driver, &client, &app).await;
        client.close().await.ok();
        app.stop().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
    drop(driver);
}

/// Signing in with a one-time password in a real browser: the cookies stick, the change page
/// comes first, a weak choice is refused next to its field, then the user reaches the audit page
/// and signs out from the header — all under the Content-Security-Policy.
#[tokio::test]
async fn one_time_password_in_a_real_browser() {
    if !enabled() {
        eprintln!("browser test skipped: set {ENABLE}=1 to run it");
        return;
    }
    let chromedriver = locate("CHROMEDRIVER", &["chromedriver"]);
    let chromium = locate(
        "CHROME_BIN",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let driver = start_driver(&chromedriver).await;
    for db in inkingi_testkit::databases().await {
        // Plain HTTP on 127.0.0.1: browsers keep `Secure` cookies only on https or "localhost".
        let mut settings = inkingi_server::ServerSettings::default();
        settings.auth.cookie_secure = false;
        let app = TestApp::start_with(&db, settings).await;
        let (client, _profile) = connect(&driver, &chromium).await;
        use futures::FutureExt;
        let outcome = std::panic::AssertUnwindSafe(password_scenario(&driver, &client, &app))
            .catch_unwind()
            .await;
        client.close().await.ok();
        app.stop().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
    drop(driver);
}

async fn fill(client: &Client, css: &str, text: &str) {
    let el = client.find(Locator::Css(css)).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

async fn submit(client: &Client, form: &str) {
    client
        .find(Locator::Css(&format!("{form} button[type='submit']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn wait_for(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"));
}

async fn password_scenario(driver: &Driver, client: &Client, app: &TestApp) {
    use inkingi_domain::identity::{AreaScope, Role, Username};
    use inkingi_server::auth::service::{self, Actor};
    use inkingi_server::auth::{Argon2Settings, Passwords};
    use secrecy::ExposeSecret;
    let backend = app.kind.as_str();
    let (_, otp) = service::create_user(
        &app.store,
        &Passwords::new(Argon2Settings::default()).unwrap(),
        &Actor::cli(),
        Username::parse("ada.auditor").unwrap(),
        Role::Auditor,
        AreaScope::national(),
        None,
    )
    .await
    .unwrap();
    let otp = otp.unwrap().expose_secret().to_string();

    // A signed-in page sends the browser to sign in, and back afterwards.
    client.goto(&app.url("/audit")).await.unwrap();
    wait_for(client, "form[action='/login']").await;
    assert_eq!(text_of(client, "h1").await, "Sign in", "[{backend}]");
    fill(client, "#username", "ada.auditor").await;
    fill(client, "#password", &otp).await;
    submit(client, "form[action='/login']").await;
    wait_for(client, "form[action='/account/password']").await;
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), "/account/password", "[{backend}]");
    assert_eq!(text_of(client, ".account-name a").await, "ada.auditor");

    fill(client, "#current_password", &otp).await;
    fill(client, "#new_password", "ada.auditor").await;
    fill(client, "#new_password_again", "ada.auditor").await;
    submit(client, "form[action='/account/password']").await;
    wait_for(client, "[data-field-error='new_password']").await;
    assert_eq!(
        text_of(client, "[data-field-error='new_password']").await,
        "Use at least 12 characters.",
        "[{backend}]"
    );

    fill(client, "#current_password", &otp).await;
    fill(client, "#new_password", "a passphrase of my own").await;
    fill(client, "#new_password_again", "a passphrase of my own").await;
    submit(client, "form[action='/account/password']").await;
    wait_for(client, "table.audit-table").await;
    assert_eq!(text_of(client, "h1").await, "Audit log", "[{backend}]");
    assert_eq!(
        text_of(client, ".main-nav a[aria-current='page']").await,
        "Audit log"
    );

    submit(client, "form.sign-out").await;
    wait_for(client, "form[action='/login']").await;
    assert_eq!(
        text_of(client, "p.notice").await,
        "You have signed out.",
        "[{backend}]"
    );
    client.goto(&app.url("/")).await.unwrap();
    wait_for(client, "a.sign-in").await;
    assert!(
        client.find(Locator::Css(".account-name")).await.is_err(),
        "[{backend}] signed out"
    );
    // Chromium logs the refused form's 422 as a failed load; that one is expected.
    let severe: Vec<_> = severe_console_messages(driver, client)
        .await
        .into_iter()
        .filter(|m| !(m.contains("/account/password") && m.contains("status of 422")))
        .collect();
    assert!(severe.is_empty(), "[{backend}] console errors: {severe:#?}");
}

/// Runs the checks, catching a failed assertion so the browser session is closed either way.
async fn run_scenario(
    driver: &Driver,
    client: &Client,
    app: &TestApp,
) -> Result<(), Box<dyn std::any::Any + Send>> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(scenario(driver, client, app))
        .catch_unwind()
        .await
}

async fn scenario(driver: &Driver, client: &Client, app: &TestApp) {
    let backend = app.kind.as_str();
    client.goto(&app.url("/")).await.unwrap();
    assert_eq!(
        html_lang(client).await,
        "en",
        "[{backend}] Accept-Language en-US"
    );
    assert_eq!(text_of(client, "h1").await, "Overview");
    assert_eq!(
        text_of(client, ".main-nav a[aria-current='page']").await,
        "Home"
    );

    // The vendored scripts loaded and ran under the Content-Security-Policy.
    let libs = client
        .execute("return [typeof htmx, typeof Chart]", vec![])
        .await
        .unwrap();
    assert_eq!(libs, json!(["object", "function"]), "[{backend}]");

    switch_to(client, "fr").await;
    assert_eq!(text_of(client, "h1").await, "Vue d'ensemble", "[{backend}]");
    assert_eq!(
        text_of(client, ".main-nav a[aria-current='page']").await,
        "Accueil"
    );

    // The choice is remembered (cookie) when the address no longer names a language.
    client.goto(&app.url("/areas")).await.unwrap();
    assert_eq!(html_lang(client).await, "fr", "[{backend}] cookie");
    assert_eq!(text_of(client, "h1").await, "Entités administratives");

    switch_to(client, "rw").await;
    assert_eq!(
        text_of(client, "h1").await,
        "Inzego z'imitegekere",
        "[{backend}]"
    );
    let url = client.current_url().await.unwrap();
    assert_eq!(url.path(), "/areas", "[{backend}] switching keeps the page");

    client.goto(&app.url("/")).await.unwrap();
    assert_eq!(html_lang(client).await, "rw");
    assert_eq!(text_of(client, "h1").await, "Incamake");
    // Without the reference data, the home page explains itself instead of failing.
    if app.store.areas().count_areas_by_level().await.is_err() {
        assert_eq!(
            text_of(client, ".notice h2").await,
            "Amakuru shingiro ntaboneka"
        );
    } else {
        let bars = client
            .execute(
                "const c = document.getElementById('villages-chart'); \
                 const chart = c && Chart.getChart(c); \
                 return chart ? chart.data.labels.length : -1",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            bars.as_i64().unwrap_or(-1) > 0,
            "[{backend}] chart drawn: {bars}"
        );
    }

    drill_down(client, app).await;

    client.goto(&app.url("/api/docs")).await.unwrap();
    assert!(
        client.find(Locator::Css("#op-get-healthz")).await.is_ok(),
        "[{backend}] API docs list /healthz"
    );

    let severe = severe_console_messages(driver, client).await;
    assert!(
        severe.is_empty(),
        "[{backend}] console errors (CSP violations, failed loads…): {severe:#?}"
    );
}

/// On the areas page, following a province swaps in its districts through htmx (no full page
/// load: a marker set on `window` survives) and pushes the province's URL.
async fn drill_down(client: &Client, app: &TestApp) {
    let backend = app.kind.as_str();
    let query = inkingi_store::areas::AreaQuery {
        level: Some(inkingi_domain::areas::AreaLevel::Province),
        limit: 1,
        ..Default::default()
    };
    let Ok(provinces) = app.store.areas().list_areas(&query).await else {
        eprintln!("[{backend}] areas adapter unavailable: drill-down not exercised");
        return;
    };
    let Some(province) = provinces.first() else {
        panic!("[{backend}] the areas adapter works but holds no province");
    };
    client.goto(&app.url("/areas")).await.unwrap();
    client
        .execute("window.__sameDocument = true", vec![])
        .await
        .unwrap();
    client
        .find(Locator::Css(&format!(
            ".area-list a[href='/areas?parent={}']",
            province.code
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let heading = text_of(client, "#area-heading").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut heading = heading;
    while !heading.starts_with(&province.name) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        heading = text_of(client, "#area-heading").await;
    }
    assert!(heading.starts_with(&province.name), "[{backend}] {heading}");
    let same = client
        .execute("return window.__sameDocument === true", vec![])
        .await
        .unwrap();
    assert_eq!(
        same,
        json!(true),
        "[{backend}] htmx swapped the panel in place"
    );
    let url = client.current_url().await.unwrap();
    assert_eq!(
        url.query(),
        Some(format!("parent={}", province.code).as_str())
    );
    let children = client
        .find_all(Locator::Css(".area-list li"))
        .await
        .unwrap();
    assert!(
        !children.is_empty(),
        "[{backend}] the province lists its districts"
    );
}
