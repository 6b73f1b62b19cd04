//! The registry's web pages over a signed-in session: register a household through the form
//! (errors shown next to their fields, values kept), find it by search, open its page, and the
//! page of a household outside the user's scope is a 404.

#![allow(clippy::unwrap_used)]

mod common;

use common::{add_user, hidden, session};
use inkingi_domain::identity::Role;
use inkingi_testkit::{databases, TestApp};

const VILLAGE: &str = "11010102";

fn answers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("answers.tenure", "owner"),
        ("answers.wall", "mud_bricks"),
        ("answers.roof", "iron_sheets"),
        ("answers.floor", "earth"),
        ("answers.rooms", "2"),
        ("answers.water_source", "public_tap"),
        ("answers.toilet", "pit_latrine_slab"),
        ("answers.lighting", "solar"),
        ("answers.cooking_fuel", "firewood"),
        ("answers.owns_land", "false"),
        ("answers.owns_livestock", "false"),
        ("answers.income_sources", "farming"),
        ("answers.meals_per_day", "2"),
    ]
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let res = app
        .client
        .get(app.url(path))
        .header("cookie", cookie)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn post(app: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("cookie", cookie)
        .header("accept-language", "en")
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_household_is_registered_found_and_shown_only_within_scope() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "local.officer", Role::DistrictOfficer, "11").await;
        add_user(&app, "foreign.officer", Role::DistrictOfficer, "12").await;
        let local = session(&app, "local.officer").await;
        let foreign = session(&app, "foreign.officer").await;

        let (status, html) = page(&app, &local, "/registry/households/new").await;
        assert_eq!(status, 200, "{html}");
        let csrf = hidden(&html, "csrf");

        // Bad input: the form comes back with each error next to its field and values kept.
        let mut bad = vec![
            ("csrf", csrf.as_str()),
            ("village", VILLAGE),
            ("head.given_name", "Aline"),
            ("head.family_name", "Uwase"),
            ("head.sex", "F"),
            ("head.national_id", "123"),
        ];
        bad.extend(answers().into_iter().filter(|(k, _)| *k != "answers.rooms"));
        let res = post(&app, &local, "/registry/households/new", &bad).await;
        assert_eq!(res.status(), 422);
        let html = res.text().await.unwrap();
        assert!(html.contains(r#"id="e-head-national_id""#), "{html}");
        assert!(html.contains(r#"id="e-a-rooms""#), "{html}");
        assert!(!html.contains(r#"id="e-village""#), "{html}");
        assert!(html.contains(r#"value="Aline""#), "{html}");

        // Good input registers the household and goes to its page.
        let mut good = vec![
            ("csrf", csrf.as_str()),
            ("village", VILLAGE),
            ("address", "Near the market"),
            ("head.given_name", "Aline"),
            ("head.family_name", "Uwase"),
            ("head.sex", "F"),
            ("head.birth_date", "1990-02-01"),
            ("head.national_id", "1199070000001012"),
        ];
        good.extend(answers());
        let res = post(&app, &local, "/registry/households/new", &good).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let to = res.headers()["location"].to_str().unwrap().to_string();
        assert!(to.starts_with("/registry/households/"), "{to}");

        let (status, html) = page(&app, &local, &to).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Aline Uwase"), "{html}");
        assert!(html.contains("Near the market"), "{html}");
        assert!(
            html.contains("household.registered") || html.contains("registered"),
            "{html}"
        );

        // Editing with the version the form was loaded at saves; a stale version is refused.
        let edit = format!("{to}/edit");
        let (status, html) = page(&app, &local, &edit).await;
        assert_eq!(status, 200, "{html}");
        let version = hidden(&html, "version");
        let stale = (version.parse::<i64>().unwrap() - 1).to_string();
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("village", VILLAGE),
            ("address", "By the school"),
            ("version", stale.as_str()),
        ];
        form.extend(answers());
        let res = post(&app, &local, &edit, &form).await;
        assert_eq!(res.status(), 409);
        assert!(res.text().await.unwrap().contains(r#"id="stale""#));
        form[3].1 = version.as_str();
        let res = post(&app, &local, &edit, &form).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let (_, html) = page(&app, &local, &to).await;
        assert!(html.contains("By the school"), "{html}");

        // The search finds her by a misspelt name and links to the household.
        let (status, html) = page(&app, &local, "/registry?q=alinne+uwase").await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(&format!(r#"href="{to}""#)), "{html}");

        // Outside the user's scope the household page does not exist.
        let (status, html) = page(&app, &foreign, &to).await;
        assert_eq!(status, 404, "{html}");
        assert!(!html.contains("Aline"), "{html}");
        let (_, html) = page(&app, &foreign, "/registry?q=aline+uwase").await;
        assert!(!html.contains(&to), "{html}");
        app.stop().await;
    }
}

/// The household as the API returns it, read with the session.
async fn api_household(app: &TestApp, cookie: &str, page_path: &str) -> serde_json::Value {
    let id = page_path.trim_start_matches("/registry/households/");
    app.client
        .get(app.url(&format!("/api/v1/households/{id}")))
        .header("cookie", cookie)
        .header("x-purpose-of-use", "registration")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_head_answers_member_questions_and_an_edit_can_clear_a_multi_choice() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, "local.officer", Role::DistrictOfficer, "11").await;
        let local = session(&app, "local.officer").await;
        let (_, html) = page(&app, &local, "/registry/households/new").await;
        assert!(html.contains(r#"name="head.answers.education""#), "{html}");
        let csrf = hidden(&html, "csrf");
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("village", VILLAGE),
            ("head.given_name", "Aline"),
            ("head.family_name", "Uwase"),
            ("head.sex", "F"),
            ("head.birth_date", "1990"),
            ("head.answers.education", "doctorate"),
            ("answers.assets", "radio"),
            ("answers.assets", "bicycle"),
        ];
        form.extend(answers());

        // A member answer outside its choices comes back next to its field, the rest kept.
        let res = post(&app, &local, "/registry/households/new", &form).await;
        assert_eq!(res.status(), 422);
        let html = res.text().await.unwrap();
        assert!(html.contains(r#"id="e-head-a-education""#), "{html}");
        assert!(html.contains(r#"value="bicycle" checked"#), "{html}");

        form[6].1 = "primary";
        let res = post(&app, &local, "/registry/households/new", &form).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let to = res.headers()["location"].to_str().unwrap().to_string();
        let h = api_household(&app, &local, &to).await;
        assert_eq!(h["members"][0]["answers"]["education"], "primary", "{h}");
        assert_eq!(
            h["answers"]["assets"],
            serde_json::json!(["radio", "bicycle"])
        );

        // Unticking every box of a multi-choice question clears the answer.
        let edit = format!("{to}/edit");
        let (_, html) = page(&app, &local, &edit).await;
        assert!(html.contains(r#"value="radio" checked"#), "{html}");
        let version = hidden(&html, "version");
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("village", VILLAGE),
            ("version", version.as_str()),
        ];
        form.extend(answers());
        let res = post(&app, &local, &edit, &form).await;
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let h = api_household(&app, &local, &to).await;
        assert!(h["answers"].get("assets").is_none(), "{h}");
        app.stop().await;
    }
}
