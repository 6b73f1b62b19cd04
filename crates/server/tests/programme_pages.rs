//! The programme pages: set-up with errors next to each field and nothing saved until the
//! form is right; an edit made on a stale version refused; the rule checked as it is typed;
//! the simulation chart by district; the enrolment list scoped to the viewer's area.
#![allow(clippy::unwrap_used)]

mod common;

use common::programmes::{client, enrol, household, setup_programme, Client};
use common::{add_user, get_with, hidden, session};
use inkingi_domain::identity::Role;
use inkingi_testkit::{databases, TestApp};

const OFFICER: &str = "district.officer";

/// Posts a page form with the session cookie, in English.
async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    fields: &[(&str, &str)],
    htmx: bool,
) -> (u16, String) {
    let mut req = app
        .client
        .post(app.url(path))
        .header("cookie", cookie)
        .header("accept-language", "en")
        .form(fields);
    if htmx {
        req = req.header("hx-request", "true");
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    let body = res.text().await.unwrap();
    (status, location.unwrap_or(body))
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

fn programme_fields<'a>(
    csrf: &'a str,
    per_member: &'a str,
    rule: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("code", "kids_cash"),
        ("name", "Kids cash"),
        ("agency", "loda"),
        ("description", ""),
        ("target", "household"),
        ("eligibility", rule),
        ("benefit", "per_member"),
        ("amount", ""),
        ("base", "1000"),
        ("per_member", per_member),
        ("cap", ""),
        ("daily_wage", ""),
        ("days", ""),
        ("capacity", "50"),
        ("budget", ""),
        ("frequency", "monthly"),
        ("overlaps_with", ""),
    ]
}

#[tokio::test]
async fn set_up_names_each_bad_field_saves_nothing_then_saves_and_refuses_a_stale_edit() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, OFFICER, Role::DistrictOfficer, "11").await;
        let pm: Client<'_> = client(&app, "prog.manager", Role::ProgrammeManager, "national").await;
        setup_programme(&app, &pm, "cash", "size >= 1").await;
        let cookie = session(&app, "prog.manager").await;

        let (s, html) = page(&app, &cookie, "/programmes/new").await;
        assert_eq!(s, 200, "{html}");
        let csrf = hidden(&html, "csrf");

        // Two wrong fields: both named, and nothing stored.
        let bad = programme_fields(&csrf, "ten", "score <");
        let (s, html) = post_form(&app, &cookie, "/programmes/new", &bad, false).await;
        assert_eq!(s, 422, "[{db:?}] {html}");
        assert!(html.contains("id=\"e-per_member\""), "{html}");
        assert!(
            html.contains("&#39;ten&#39;") || html.contains("'ten'"),
            "{html}"
        );
        let (s, _) = pm.get("/api/v1/programmes/kids_cash").await;
        assert_eq!(s, 404, "nothing saved");
        // The rule alone wrong: named with its position.
        let bad = programme_fields(&csrf, "500", "score <");
        let (s, html) = post_form(&app, &cookie, "/programmes/new", &bad, false).await;
        assert_eq!(s, 422, "{html}");
        assert!(html.contains("id=\"e-eligibility\""), "{html}");
        assert!(html.contains("line 1, column"), "{html}");

        // An agency the store does not know: named next to its field, nothing stored.
        let mut unknown = programme_fields(&csrf, "500", "size >= 2");
        unknown.retain(|(k, _)| *k != "agency");
        unknown.push(("agency", "nowhere"));
        let (s, html) = post_form(&app, &cookie, "/programmes/new", &unknown, false).await;
        assert_eq!(s, 422, "[{db:?}] {html}");
        assert!(html.contains("id=\"e-agency\""), "{html}");
        let (s, _) = pm.get("/api/v1/programmes/kids_cash").await;
        assert_eq!(s, 404, "nothing saved");

        // A bad CSRF token is refused.
        let good = programme_fields("wrong", "500", "size >= 2");
        let (s, _) = post_form(&app, &cookie, "/programmes/new", &good, false).await;
        assert_eq!(s, 403);

        let good = programme_fields(&csrf, "500", "size >= 2");
        let (s, to) = post_form(&app, &cookie, "/programmes/new", &good, false).await;
        assert_eq!(s, 303, "[{db:?}] {to}");
        assert_eq!(to, "/programmes?done=kids_cash");
        let (s, p) = pm.get("/api/v1/programmes/kids_cash").await;
        assert_eq!(s, 200, "{p}");
        assert_eq!(p["benefit"]["per_member"], 500);
        assert_eq!(p["capacity"], 50);
        assert_eq!(p["version"], 1);
        let (_, list) = page(&app, &cookie, "/programmes").await;
        assert!(list.contains("id=\"programme-kids_cash\""), "{list}");

        // Edit: the form carries version 1; a second save of version 1 is stale.
        let (s, html) = page(&app, &cookie, "/programmes/kids_cash/edit").await;
        assert_eq!(s, 200);
        assert_eq!(hidden(&html, "version"), "1");
        let mut edit = programme_fields(&csrf, "600", "size >= 2");
        edit.push(("version", "1"));
        let (s, to) = post_form(&app, &cookie, "/programmes/kids_cash/edit", &edit, false).await;
        assert_eq!(s, 303, "{to}");
        let (s, html) = post_form(&app, &cookie, "/programmes/kids_cash/edit", &edit, false).await;
        assert_eq!(s, 409, "[{db:?}] a second save of version 1");
        assert!(html.contains("id=\"stale\""), "{html}");
        let (_, p) = pm.get("/api/v1/programmes/kids_cash").await;
        assert_eq!(p["version"], 2);
        assert_eq!(p["benefit"]["per_member"], 600);

        // The same through the API, with If-Match.
        let mut body = p.clone();
        for k in ["version", "updated_at", "updated_by"] {
            body.as_object_mut().unwrap().remove(k);
        }
        body["name"] = "Renamed".into();
        let put = |etag: &'static str| {
            app.client
                .put(app.url("/api/v1/programmes/kids_cash"))
                .bearer_auth(&pm.token)
                .header("x-purpose-of-use", pm.purpose)
                .header("if-match", etag)
                .json(&body)
                .send()
        };
        assert_eq!(put("\"1\"").await.unwrap().status(), 412);
        assert_eq!(put("\"2\"").await.unwrap().status(), 200);

        // Someone without the permission gets no page.
        let officer = session(&app, OFFICER).await;
        let res = get_with(&app, "/programmes", ("cookie", &officer)).await;
        assert_eq!(res.status(), 403);
        app.stop().await;
    }
}

#[tokio::test]
async fn the_rule_is_checked_as_typed_and_simulated_by_district() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, OFFICER, Role::DistrictOfficer, "11").await;
        let pm = client(&app, "prog.manager", Role::ProgrammeManager, "national").await;
        setup_programme(&app, &pm, "cash", "size >= 1").await;
        household(&app, OFFICER, 1, 1).await;
        household(&app, OFFICER, 3, 2).await;
        let cookie = session(&app, "prog.manager").await;
        let (_, html) = page(&app, &cookie, "/programmes/cash/edit").await;
        let csrf = hidden(&html, "csrf");
        assert!(
            html.contains("hx-post=\"/programmes/rule-check\""),
            "{html}"
        );

        let check = |rule: &'static str| {
            let (app, cookie, csrf) = (&app, cookie.clone(), csrf.clone());
            async move {
                let fields = [
                    ("csrf", csrf.as_str()),
                    ("eligibility", rule),
                    ("target", "household"),
                ];
                post_form(app, &cookie, "/programmes/rule-check", &fields, true).await
            }
        };
        let (s, frag) = check("size >=").await;
        assert_eq!(s, 200);
        assert!(frag.contains("line 1, column"), "{frag}");
        assert!(!frag.contains("<html"), "a fragment, not a page");
        let (_, frag) = check("size >= 2 and nonsense_fact > 1").await;
        assert!(frag.contains("field-error"), "an unknown fact: {frag}");
        let (_, frag) = check("size >= 2").await;
        assert!(frag.contains("The rule is valid."), "{frag}");

        // The saved rule (size ≥ 1) makes both households eligible, the typed one (size ≥ 2)
        // one of them.
        let fields = [("csrf", csrf.as_str()), ("eligibility", "size >= 2")];
        let (s, frag) = post_form(&app, &cookie, "/programmes/cash/simulate", &fields, true).await;
        assert_eq!(s, 200, "[{db:?}] {frag}");
        assert!(frag.contains("id=\"sim-current\">2<"), "{frag}");
        assert!(frag.contains("id=\"sim-proposed\">1<"), "{frag}");
        assert!(frag.contains("<svg class=\"sim-chart\""), "{frag}");
        assert!(frag.contains("Nyarugenge"), "the district by name: {frag}");
        // Without htmx the same chart comes in a whole page.
        let (s, whole) =
            post_form(&app, &cookie, "/programmes/cash/simulate", &fields, false).await;
        assert_eq!(s, 200);
        assert!(
            whole.contains("<html") && whole.contains("sim-chart"),
            "{whole}"
        );
        // A typed rule that does not compile is shown where the chart would be.
        let fields = [("csrf", csrf.as_str()), ("eligibility", "size >=")];
        let (s, frag) = post_form(&app, &cookie, "/programmes/cash/simulate", &fields, true).await;
        assert_eq!(s, 200);
        assert!(
            frag.contains("field-error") && !frag.contains("<svg"),
            "{frag}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn the_enrolment_list_shows_the_viewers_area_and_filters_by_status() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, OFFICER, Role::DistrictOfficer, "11").await;
        let pm = client(&app, "prog.manager", Role::ProgrammeManager, "national").await;
        add_user(&app, "pm.south", Role::ProgrammeManager, "21").await;
        setup_programme(&app, &pm, "cash", "size >= 1").await;
        let (hh, _) = household(&app, OFFICER, 2, 1).await;
        enrol(&pm, "cash", &hh).await;

        let cookie = session(&app, "prog.manager").await;
        let (s, html) = page(&app, &cookie, "/programmes/cash/enrolments").await;
        assert_eq!(s, 200, "[{db:?}] {html}");
        assert!(html.contains(&hh), "{html}");
        let (_, html) = page(&app, &cookie, "/programmes/cash/enrolments?status=exited").await;
        assert!(!html.contains(&hh), "filtered out: {html}");
        let (s, _) = page(&app, &cookie, "/programmes/cash/enrolments?status=gone").await;
        assert_eq!(s, 400, "an unknown status is named");
        // A manager of another district sees none of it.
        let south = session(&app, "pm.south").await;
        let (s, html) = page(&app, &south, "/programmes/cash/enrolments").await;
        assert_eq!(s, 200);
        assert!(!html.contains(&hh), "{html}");
        app.stop().await;
    }
}
