//! Payment cycles, re-certification and notifications over HTTP on every configured backend:
//! a frozen cycle keeps its amounts when the registry changes; steps by different users, in
//! order, never twice (concurrent approvals: one wins); the payment list as CSV within the
//! caller's scope, audited; payment statuses one by one and as a file, all or nothing with
//! row errors; re-certification opened by a job, decided by a person; notifications queued.

#![allow(clippy::unwrap_used)]

mod common;

use common::add_user;
use common::programmes::{
    add_member, client, drain_jobs, enrol, household, setup_programme, Client,
};
use inkingi_domain::identity::{AreaScope, Role};
use inkingi_testkit::{databases, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const OFFICER: &str = "district.officer";

async fn step(c: &Client<'_>, cycle: &str, name: &str) -> (u16, Value) {
    c.post(
        &format!("/api/v1/cycles/{cycle}/steps"),
        json!({"step": name}),
    )
    .await
}

/// The payment list of cycle `id` as CSV.
async fn payments_csv(c: &Client<'_>, id: &str) -> (u16, String) {
    c.text(
        Method::GET,
        &format!("/api/v1/cycles/{id}/payments.csv"),
        None,
    )
    .await
}

/// Opens a cycle of programme `cash` for a period.
async fn open_cycle(c: &Client<'_>, start: &str, end: &str) -> (u16, Value) {
    c.post(
        "/api/v1/programmes/cash/cycles",
        json!({"period_start": start, "period_end": end}),
    )
    .await
}

async fn entitlements(c: &Client<'_>, cycle: &str) -> Vec<Value> {
    let (s, list) = c
        .get(&format!("/api/v1/cycles/{cycle}/entitlements?limit=100"))
        .await;
    assert_eq!(s, 200, "{list}");
    list.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_frozen_cycle_keeps_its_amounts_and_is_approved_once_by_different_users() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, OFFICER, Role::DistrictOfficer, "11").await;
        let pm = client(&app, "prog.manager", Role::ProgrammeManager, "national").await;
        let verifier = client(&app, "prog.verifier", Role::ProgrammeManager, "national").await;
        let approver = client(&app, "fin.approver", Role::FinanceOfficer, "national").await;
        let other = client(&app, "fin.other", Role::FinanceOfficer, "national").await;
        let bystander = client(&app, "prog.other", Role::ProgrammeManager, "national").await;
        let district = client(&app, "prog.district", Role::ProgrammeManager, "11").await;
        setup_programme(&app, &pm, "cash", "size >= 1").await;
        let mut households = Vec::new();
        for size in 1..=3 {
            let (hh, _) = household(&app, OFFICER, size, 2).await;
            enrol(&pm, "cash", &hh).await;
            households.push(hh);
        }

        // Bad periods name the field; one cycle per start date.
        let (s, p) = open_cycle(&pm, "2026-02-30", "2026-03-01").await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], "period_start");
        let (s, p) = open_cycle(&pm, "2026-01-31", "2026-01-01").await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], "period_end");
        let period = json!({"period_start": "2026-01-01", "period_end": "2026-01-31"});
        let (s, cycle) = pm
            .post("/api/v1/programmes/cash/cycles", period.clone())
            .await;
        assert_eq!(s, 201, "[{db:?}] {cycle}");
        assert_eq!(cycle["status"], "draft");
        assert_eq!(cycle["code"], "cash-20260101");
        let (s, _) = pm.post("/api/v1/programmes/cash/cycles", period).await;
        assert_eq!(s, 409, "the same period twice");
        let id = cycle["id"].as_str().unwrap().to_string();

        // Out of order, or by someone without national scope: refused.
        let (s, p) = step(&approver, &id, "approve").await;
        assert_eq!(s, 409, "approve a draft: {p}");
        let (s, _) = step(&district, &id, "freeze").await;
        assert_eq!(s, 403, "a district-scoped manager cannot freeze");
        let (s, p) = step(&pm, &id, "publish").await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], "step");

        // Freeze: 1000 + 500 × size for sizes 1, 2, 3.
        let (s, frozen) = step(&pm, &id, "freeze").await;
        assert_eq!(s, 200, "[{db:?}] {frozen}");
        assert_eq!(frozen["status"], "prepared");
        assert_eq!(frozen["prepared_by"], "prog.manager");
        assert_eq!(frozen["beneficiaries"], 3);
        assert_eq!(frozen["total_amount"], 1500 + 2000 + 2500);
        let (s, _) = step(&pm, &id, "freeze").await;
        assert_eq!(s, 409, "frozen twice");
        let before = entitlements(&pm, &id).await;
        let amount_of = |list: &[Value], hh: &str| -> (i64, i64) {
            let e = list.iter().find(|e| e["household_id"] == hh).unwrap();
            (
                e["amount"].as_i64().unwrap(),
                e["household_size"].as_i64().unwrap(),
            )
        };
        assert_eq!(amount_of(&before, &households[0]), (1500, 1));
        assert!(before[0]["beneficiary"]
            .as_str()
            .unwrap()
            .contains("Member0"));

        // The registry changes after the freeze: the frozen amounts do not.
        add_member(&app, OFFICER, &households[0], "Newcomer").await;
        let (s, hh) = pm
            .get(&format!("/api/v1/households/{}", households[0]))
            .await;
        assert_eq!(s, 200, "{hh}");
        assert_eq!(
            hh["members"].as_array().unwrap().len(),
            2,
            "the edit happened"
        );
        let after = entitlements(&pm, &id).await;
        assert_eq!(
            after, before,
            "[{db:?}] a registry edit moved a frozen amount"
        );
        // A new cycle sees the new size.
        let (_, next) = open_cycle(&pm, "2026-02-01", "2026-02-28").await;
        let next_id = next["id"].as_str().unwrap();
        step(&pm, next_id, "freeze").await;
        assert_eq!(
            amount_of(&entitlements(&pm, next_id).await, &households[0]),
            (2000, 2)
        );

        // No payment list before approval.
        let (s, _) = payments_csv(&pm, &id).await;
        assert_eq!(s, 409);

        // Separation of duties: the preparer cannot verify; the verifier cannot approve.
        let (s, p) = step(&pm, &id, "verify").await;
        assert_eq!(s, 403, "{p}");
        let (s, v) = step(&verifier, &id, "verify").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["verified_by"], "prog.verifier");
        for who in [&pm, &verifier] {
            let (s, p) = step(who, &id, "approve").await;
            assert_eq!(s, 403, "{p}");
        }
        // Approval is finance's: a programme manager who took no step is refused, by name.
        let (s, p) = step(&bystander, &id, "approve").await;
        assert_eq!(s, 403, "{p}");
        assert!(
            p["detail"].as_str().unwrap().contains("approve payments"),
            "{p}"
        );
        // Finance neither opens, freezes nor verifies cycles, nor sets up programmes.
        let (s, p) = open_cycle(&approver, "2026-03-01", "2026-03-31").await;
        assert_eq!(s, 403, "finance opened a cycle: {p}");
        let (s, p) = step(&approver, next_id, "verify").await;
        assert_eq!(s, 403, "finance verified a cycle: {p}");
        let (s, p) = approver
            .post(
                "/api/v1/programmes",
                common::programmes::cash_programme("fin", "size >= 1"),
            )
            .await;
        assert_eq!(s, 403, "finance set up a programme: {p}");
        // Two approvals at once: exactly one wins; approving again is 409.
        let (a, b) = tokio::join!(
            step(&approver, &id, "approve"),
            step(&other, &id, "approve")
        );
        let mut codes = [a.0, b.0];
        codes.sort();
        assert_eq!(codes, [200, 409], "[{db:?}] {a:?} {b:?}");
        let (s, p) = step(&approver, &id, "approve").await;
        assert_eq!(s, 409, "a cycle cannot be approved twice: {p}");
        let (_, c) = pm.get(&format!("/api/v1/cycles/{id}")).await;
        assert_eq!(c["status"], "approved");
        assert!(["fin.approver", "fin.other"].contains(&c["approved_by"].as_str().unwrap()));
        // Finance reads the payment list it approved (audited under its own name below).
        let (s, csv) = payments_csv(&approver, &id).await;
        assert_eq!(s, 200, "{csv}");
        assert_eq!(csv.lines().count(), 4, "{csv}");

        // The payment list: every entitlement, within the caller's scope, audited.
        let (s, csv) = payments_csv(&pm, &id).await;
        assert_eq!(s, 200, "{csv}");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "payment_reference,beneficiary,registry_number,village,amount"
        );
        assert_eq!(lines.len(), 4, "{csv}");
        for e in &before {
            let line = format!(
                "{},{},{},{},{}",
                e["payment_reference"].as_str().unwrap(),
                e["beneficiary"].as_str().unwrap(),
                e["registry_number"].as_str().unwrap(),
                e["village"].as_str().unwrap(),
                e["amount"]
            );
            assert!(lines.contains(&line.as_str()), "{line} not in {csv}");
        }
        let far = client(&app, "prog.far", Role::ProgrammeManager, "12").await;
        let (s, csv_far) = payments_csv(&far, &id).await;
        assert_eq!(s, 200);
        assert_eq!(
            csv_far.lines().count(),
            1,
            "another district sees no row: {csv_far}"
        );
        let audit = app
            .store
            .audit()
            .query(
                &AreaScope::national(),
                &inkingi_store::audit::AuditQuery {
                    actor: Some("prog.manager".into()),
                    limit: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let actions: Vec<&str> = audit.iter().map(|a| a.record.action.as_str()).collect();
        for a in [
            "cycle.create",
            "cycle.freeze",
            "payment_list.export",
            "entitlement.read",
        ] {
            assert!(actions.contains(&a), "{a} not audited: {actions:?}");
        }
        app.stop().await;
    }
}

#[tokio::test]
async fn payment_statuses_are_recorded_one_by_one_or_by_file_all_or_nothing() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, OFFICER, Role::DistrictOfficer, "11").await;
        let pm = client(&app, "prog.manager", Role::ProgrammeManager, "national").await;
        let verifier = client(&app, "prog.verifier", Role::ProgrammeManager, "national").await;
        let approver = client(&app, "fin.approver", Role::FinanceOfficer, "national").await;
        setup_programme(&app, &pm, "cash", "size >= 1").await;
        for size in 1..=3 {
            let (hh, _) = household(&app, OFFICER, size, 2).await;
            enrol(&pm, "cash", &hh).await;
        }
        let (_, cycle) = open_cycle(&pm, "2026-01-01", "2026-01-31").await;
        let id = cycle["id"].as_str().unwrap().to_string();
        step(&pm, &id, "freeze").await;
        let refs: Vec<String> = entitlements(&pm, &id)
            .await
            .iter()
            .map(|e| e["payment_reference"].as_str().unwrap().to_string())
            .collect();
        let status_path = |r: &str| format!("/api/v1/cycles/{id}/payments/{r}/status");
        let paid = json!({"status": "paid", "reference": "MM-1", "date": "2026-01-15"});
        let (s, _) = pm.post(&status_path(&refs[0]), paid.clone()).await;
        assert_eq!(s, 409, "statuses wait for approval");
        step(&verifier, &id, "verify").await;
        let (s, _) = step(&approver, &id, "approve").await;
        assert_eq!(s, 200);

        // One by one: checked fields, lifecycle, unknown references.
        let (s, p) = pm
            .post(
                &status_path(&refs[0]),
                json!({"status": "paid", "date": "2026-01-15"}),
            )
            .await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], "reference");
        let (s, p) = pm.post(&status_path(&refs[0]), paid.clone()).await;
        assert_eq!(s, 200, "[{db:?}] {p}");
        assert_eq!(p["recorded"], 1);
        let (s, p) = pm.post(&status_path(&refs[0]), paid.clone()).await;
        assert_eq!(
            (s, p["unchanged"].clone()),
            (200, json!(1)),
            "a repeat changes nothing"
        );
        let (s, p) = pm
            .post(
                &status_path(&refs[0]),
                json!({"status": "failed", "date": "2026-01-16"}),
            )
            .await;
        assert_eq!(s, 422, "paid cannot become failed: {p}");
        assert_eq!(p["errors"][0]["field"], "status");
        let (s, _) = pm.post(&status_path("cash-20260101-999999"), paid).await;
        assert_eq!(s, 404);

        // A file with errors: every bad row reported, nothing recorded.
        let upload = format!("/api/v1/cycles/{id}/payment-statuses");
        let bad = format!(
            "payment_reference,status,reference,date,note\n\
             {r1},paid,MM-2,2026-01-15,\n\
             {r2},sent,MM-3,2026-01-15,\n\
             cash-20260101-000777,paid,MM-4,2026-01-15,\n\
             {r2},failed,,2999-01-01,no answer\n",
            r1 = refs[1],
            r2 = refs[2]
        );
        let (s, body) = pm.text(Method::POST, &upload, Some(bad)).await;
        assert_eq!(s, 422, "{body}");
        let p: Value = serde_json::from_str(&body).unwrap();
        let errors: Vec<(u64, &str)> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["row"].as_u64().unwrap(), e["field"].as_str().unwrap()))
            .collect();
        assert_eq!(
            errors,
            vec![(3, "status"), (4, "payment_reference"), (5, "date")],
            "{p}"
        );
        let list = entitlements(&pm, &id).await;
        let status_of = |list: &[Value], r: &str| {
            list.iter().find(|e| e["payment_reference"] == r).unwrap()["payment_status"].clone()
        };
        assert_eq!(
            status_of(&list, &refs[1]),
            "pending",
            "nothing half-written"
        );
        let (s, body) = pm
            .text(
                Method::POST,
                &upload,
                Some("payment_reference,state\nx,paid\n".into()),
            )
            .await;
        assert_eq!(s, 422, "{body}");
        assert!(body.contains("\"field\":\"state\""), "{body}");

        // A good file, then the same file again.
        let good = format!(
            "payment_reference,status,reference,date\n{},paid,MM-2,2026-01-15\n{},failed,,2026-01-16\n",
            refs[1], refs[2]
        );
        let (s, body) = pm.text(Method::POST, &upload, Some(good.clone())).await;
        assert_eq!(s, 200, "[{db:?}] {body}");
        assert!(body.contains("\"recorded\":2"), "{body}");
        let (_, body) = pm.text(Method::POST, &upload, Some(good)).await;
        assert!(
            body.contains("\"recorded\":0") && body.contains("\"unchanged\":2"),
            "{body}"
        );
        let list = entitlements(&pm, &id).await;
        assert_eq!(status_of(&list, &refs[1]), "paid");
        let failed = list
            .iter()
            .find(|e| e["payment_reference"] == refs[2].as_str())
            .unwrap();
        assert_eq!(failed["payment_status"], "failed");
        assert_eq!(failed["status_date"], "2026-01-16");
        assert_eq!(failed["status_by"], "prog.manager");
        app.stop().await;
    }
}

#[tokio::test]
async fn a_registry_change_opens_a_recertification_for_review_and_notifications_are_queued() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, OFFICER, Role::DistrictOfficer, "11").await;
        let pm = client(&app, "prog.manager", Role::ProgrammeManager, "national").await;
        setup_programme(&app, &pm, "small", "size <= 2").await;
        let (hh, _) = household(&app, OFFICER, 2, 2).await;
        drain_jobs(&app).await;
        let e = enrol(&pm, "small", &hh).await;
        let enrolment = e["id"].as_str().unwrap().to_string();
        drain_jobs(&app).await;
        let hh_id = hh.parse().unwrap();
        let outbox = app
            .store
            .notifications()
            .for_household(hh_id)
            .await
            .unwrap();
        let templates: Vec<&str> = outbox.iter().map(|m| m.template.as_str()).collect();
        assert_eq!(templates, ["enrolment.enrolled"], "[{db:?}]");
        assert_eq!(outbox[0].params["programme"], "small");

        // The household grows past the rule: a decision opens, nobody is dropped.
        add_member(&app, OFFICER, &hh, "Third").await;
        drain_jobs(&app).await;
        let (s, open) = pm.get("/api/v1/programmes/small/recertifications").await;
        assert_eq!(s, 200, "{open}");
        assert_eq!(open.as_array().unwrap().len(), 1, "[{db:?}] {open}");
        assert_eq!(open[0]["enrolment_id"], enrolment.as_str());
        assert!(
            open[0]["finding"]
                .as_str()
                .unwrap()
                .starts_with("not eligible"),
            "{open}"
        );
        let (_, still) = pm.get(&format!("/api/v1/enrolments/{enrolment}")).await;
        assert_eq!(still["status"], "enrolled", "never silently dropped");
        // Another change while it is open: still one decision.
        add_member(&app, OFFICER, &hh, "Fourth").await;
        drain_jobs(&app).await;
        let (_, open) = pm.get("/api/v1/programmes/small/recertifications").await;
        assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
        let rid = open[0]["id"].as_str().unwrap().to_string();
        // Outside the caller's scope it does not exist.
        let far = client(&app, "prog.far", Role::ProgrammeManager, "12").await;
        let (_, none) = far.get("/api/v1/programmes/small/recertifications").await;
        assert_eq!(none, json!([]));
        let decide = format!("/api/v1/recertifications/{rid}/decision");
        let (s, _) = far.post(&decide, json!({"decision": "keep"})).await;
        assert_eq!(s, 404);

        // Deciding: a reason to exit; unknown decisions named; once only.
        let (s, p) = pm.post(&decide, json!({"decision": "exit"})).await;
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], "reason");
        let (s, p) = pm.post(&decide, json!({"decision": "drop"})).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"][0]["field"], "decision");
        let (s, kept) = pm
            .post(
                &decide,
                json!({"decision": "keep", "reason": "temporary guest"}),
            )
            .await;
        assert_eq!(s, 200, "{kept}");
        assert_eq!(kept["recertification"]["status"], "kept");
        assert_eq!(kept["recertification"]["decided_by"], "prog.manager");
        let (s, _) = pm
            .post(&decide, json!({"decision": "exit", "reason": "x"}))
            .await;
        assert_eq!(s, 409, "decided twice");

        // The next change opens a new decision; exiting closes the enrolment.
        add_member(&app, OFFICER, &hh, "Fifth").await;
        drain_jobs(&app).await;
        let (_, open) = pm.get("/api/v1/programmes/small/recertifications").await;
        let rid = open[0]["id"].as_str().unwrap();
        let (s, exited) = pm
            .post(
                &format!("/api/v1/recertifications/{rid}/decision"),
                json!({"decision": "exit", "reason": "household above the size limit"}),
            )
            .await;
        assert_eq!(s, 200, "{exited}");
        assert_eq!(exited["enrolment"]["status"], "exited");
        drain_jobs(&app).await;
        let outbox = app
            .store
            .notifications()
            .for_household(hh_id)
            .await
            .unwrap();
        let templates: Vec<&str> = outbox.iter().map(|m| m.template.as_str()).collect();
        assert_eq!(
            templates,
            [
                "enrolment.enrolled",
                "recertification.kept",
                "enrolment.exited"
            ],
            "[{db:?}]"
        );
        assert_eq!(outbox[2].params["reason"], "household above the size limit");
        app.stop().await;
    }
}

/// A page's HTML for the session `cookie`.
async fn page(app: &TestApp, path: &str, cookie: &str) -> String {
    common::get_with(app, path, ("cookie", cookie))
        .await
        .text()
        .await
        .unwrap()
}

/// Takes `step` of cycle `id` through the page's form.
async fn step_form(
    app: &TestApp,
    id: &str,
    cookie: &str,
    csrf: &str,
    step: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/cycles/{id}/steps")))
        .header("cookie", cookie)
        .form(&[("csrf", csrf), ("step", step)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_cycle_page_lists_cycles_and_takes_steps_with_csrf() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        add_user(&app, OFFICER, Role::DistrictOfficer, "11").await;
        let pm = client(&app, "prog.manager", Role::ProgrammeManager, "national").await;
        add_user(&app, "prog.verifier", Role::ProgrammeManager, "national").await;
        setup_programme(&app, &pm, "cash", "size >= 1").await;
        let (hh, _) = household(&app, OFFICER, 2, 2).await;
        enrol(&pm, "cash", &hh).await;
        let (_, cycle) = open_cycle(&pm, "2026-01-01", "2026-01-31").await;
        let id = cycle["id"].as_str().unwrap().to_string();

        let cookie = common::session(&app, "prog.manager").await;
        let first = common::get_with(&app, "/programmes/cash/cycles", ("cookie", &cookie)).await;
        assert_eq!(first.status(), 200);
        let html = first.text().await.unwrap();
        assert!(html.contains("cash-20260101"), "{html}");
        assert!(
            html.contains("value=\"freeze\""),
            "the preparer sees the freeze button"
        );
        let csrf = common::hidden(&html, "csrf");
        let res = step_form(&app, &id, &cookie, "wrong", "freeze").await;
        assert_eq!(res.status(), 403, "a bad CSRF token");
        let (_, c) = pm.get(&format!("/api/v1/cycles/{id}")).await;
        assert_eq!(c["status"], "draft");
        let res = step_form(&app, &id, &cookie, &csrf, "freeze").await;
        assert_eq!(res.status(), 303, "{:?}", res.text().await);
        let (_, c) = pm.get(&format!("/api/v1/cycles/{id}")).await;
        assert_eq!(c["status"], "prepared", "[{db:?}]");

        // The preparer is not offered the next step; the verifier is.
        let html = page(&app, "/programmes/cash/cycles", &cookie).await;
        assert!(!html.contains("value=\"verify\""), "{html}");
        let theirs = common::session(&app, "prog.verifier").await;
        let html = page(&app, "/programmes/cash/cycles", &theirs).await;
        assert!(html.contains("value=\"verify\""), "{html}");
        let res = step_form(&app, &id, &theirs, &common::hidden(&html, "csrf"), "verify").await;
        assert_eq!(res.status(), 303, "{:?}", res.text().await);

        // Finance is offered the approval, but no new cycle, and no set-up from the list.
        add_user(&app, "fin.approver", Role::FinanceOfficer, "national").await;
        let finance = common::session(&app, "fin.approver").await;
        let html = page(&app, "/programmes/cash/cycles", &finance).await;
        assert!(html.contains("value=\"approve\""), "{html}");
        assert!(!html.contains("id=\"new-cycle\""), "{html}");
        let html = page(&app, "/programmes", &finance).await;
        assert!(html.contains("/programmes/cash/cycles"), "{html}");
        assert!(!html.contains("/programmes/new"), "{html}");
        assert!(!html.contains("/programmes/cash/edit"), "{html}");
        // The programme manager who prepared it is not offered the approval.
        let html = page(&app, "/programmes/cash/cycles", &cookie).await;
        assert!(!html.contains("value=\"approve\""), "{html}");
        // Someone without the permission is refused.
        let officer = common::session(&app, OFFICER).await;
        let res = common::get_with(&app, "/programmes/cash/cycles", ("cookie", &officer)).await;
        assert_eq!(res.status(), 403);
        app.stop().await;
    }
}
