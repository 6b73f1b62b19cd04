//! SMS reminders end to end on every configured backend: the planner over the overdue
//! worklists, the `sms.send` jobs run by the worker through the real Kannel and Africa's
//! Talking clients against the built-in gateway simulator (with injected failures and an
//! outage), delivery reports posted back to Inkingi over HTTP, quiet hours, caps, escalation,
//! beneficiary notifications from the outbox, idempotency, refused reports, and the per-CHW
//! worklist.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, Timelike, Utc};
use common::children::{member, register};
use common::{add_user, token};
use inkingi_domain::identity::{Role, Username};
use inkingi_domain::jobs::{JobName, JobStatus, RetryPolicy};
use inkingi_domain::registry::{MemberRole, PhoneNumber, Sex};
use inkingi_interop::breaker::{BreakerSettings, Breakers};
use inkingi_interop::simulate::faults::FaultPlan;
use inkingi_interop::simulate::sms::{SmsPlan, SmsSim};
use inkingi_interop::sms::send::SendSmsHandler;
use inkingi_interop::sms::{
    Caps, Provider, QuietHours, SmsConnector, SmsSettings, RWANDA_OFFSET_SECS,
};
use inkingi_interop::worker::{run_with, Registry, WorkerSettings};
use inkingi_server::children::reminders::{plan, PlanSummary};
use inkingi_store::jobs::{JobFilter, JobRecord, NewJob};
use inkingi_store::notifications::NotifyJob;
use inkingi_store::registry::NewMember;
use inkingi_store::sms::{SmsKind, SmsMessage, SmsStatus};
use inkingi_store::Store;
use inkingi_testkit::{databases, TestApp};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const VILLAGE: &str = "11010102";
const CELL: &str = "110101";
const MOTHER_PHONE: &str = "+250788123456";
const CHW_PHONE: &str = "+250788000111";
const NURSE_PHONE: &str = "+250788000222";

fn with_phone(mut m: NewMember, phone: Option<&str>) -> NewMember {
    m.person.phones = phone
        .map(|p| PhoneNumber::parse(p).unwrap())
        .into_iter()
        .collect();
    m
}

struct Family {
    household: Uuid,
    mother: Uuid,
    children: Vec<Uuid>,
}

/// A mother (head, with `phone`) and her children born `ages` days ago, in VILLAGE; none has
/// any health fact, so every child is overdue for its birth doses.
async fn family(
    store: &Store,
    mother_name: &str,
    phone: Option<&str>,
    kids: &[(&str, u64)],
) -> Family {
    let today = Utc::now().date_naive();
    let born = NaiveDate::from_ymd_opt(1995, 3, 2).unwrap();
    let mother = with_phone(
        member(mother_name, Sex::Female, born, MemberRole::Head, None),
        phone,
    );
    let mut members = vec![mother.clone()];
    for (name, age) in kids {
        let born = today - Days::new(*age);
        members.push(member(
            name,
            Sex::Female,
            born,
            MemberRole::Child,
            Some(mother.id),
        ));
    }
    let children = members[1..].iter().map(|m| m.id).collect();
    let f = Family {
        household: register(store, VILLAGE, members).await,
        mother: mother.id,
        children,
    };
    f
}

/// The community health worker of the cell and the district's nurse, with phones.
async fn staff(app: &TestApp, chw_language: &str) {
    add_user(app, "chw.cell", Role::CommunityHealthWorker, CELL).await;
    add_user(app, "nurse.district", Role::HealthWorker, "11").await;
    let sms = app.store.sms();
    for (u, p, l) in [
        ("chw.cell", CHW_PHONE, chw_language),
        ("nurse.district", NURSE_PHONE, "en"),
    ] {
        assert!(sms
            .set_user_contact(&Username::parse(u).unwrap(), Some(p), Some(l))
            .await
            .unwrap());
    }
}

fn settings(escalate_after: u32, caps: Caps) -> SmsSettings {
    SmsSettings {
        quiet: None,
        caps,
        default_language: "en".into(),
        escalate_after,
    }
}

const LOOSE: Caps = Caps {
    per_day: 10,
    per_week: 50,
};

async fn sms_jobs(store: &Store) -> Vec<JobRecord> {
    let filter = JobFilter {
        limit: 500,
        ..Default::default()
    };
    let jobs = store.jobs().list(&filter).await.unwrap();
    jobs.into_iter().filter(|j| j.kind == "sms.send").collect()
}

/// Runs the worker with the SMS sender until every due `sms.send` job has finished.
async fn send_all(store: &Store, gateway: &SmsConnector, settings: &SmsSettings) {
    let worker = WorkerSettings {
        concurrency: 2,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 25,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        },
        retain_succeeded: None,
    };
    let handlers = Registry::new().register(SendSmsHandler::new(
        gateway.gateway().unwrap(),
        settings.clone(),
    ));
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_with(store.clone(), worker, handlers, stop.clone()));
    let started = Instant::now();
    loop {
        let now = Utc::now();
        let open = sms_jobs(store).await.into_iter().any(|j| {
            !matches!(j.status, JobStatus::Succeeded | JobStatus::Dead)
                && j.run_at <= now + chrono::Duration::seconds(5)
        });
        if !open || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    task.await.unwrap().unwrap();
}

fn connector(sim: &SmsSim, app: &TestApp, provider: Provider) -> SmsConnector {
    SmsConnector {
        provider,
        url: sim.url(),
        username: "inkingi".into(),
        secret: "s3cret".into(),
        sender_id: "INKINGI".into(),
        dlr_base: app.url(""),
        timeout: Duration::from_secs(5),
    }
}

async fn start_sim(app: &TestApp, provider: Provider) -> SmsSim {
    // Breakers are per process: short ones, whichever test starts first.
    Breakers::global().configure(BreakerSettings {
        failure_threshold: 3,
        open_for: Duration::from_millis(100),
    });
    let plan = SmsPlan {
        faults: FaultPlan {
            seed: 7,
            fail_share: 0.3,
            // The first request starts a short outage: retries and the breaker are exercised.
            outage_after: Some(0),
            outage: Duration::from_millis(300),
            ..Default::default()
        },
        protocol: Some(provider),
        username: "inkingi".into(),
        secret: "s3cret".into(),
        callback_url: Some(app.url("/sms/dlr/africastalking")),
    };
    SmsSim::start("127.0.0.1:0".parse().unwrap(), plan)
        .await
        .unwrap()
}

/// Materialises the services due of the families just registered, as the daily recompute
/// (and the worker's registry follower) would: the planner reads the stored statuses.
async fn recompute(store: &Store) {
    inkingi_server::children::status::recompute_all(store, Utc::now().date_naive(), 1000, |_| {})
        .await
        .unwrap();
}

async fn messages(store: &Store) -> Vec<SmsMessage> {
    store
        .sms()
        .since(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap())
        .await
        .unwrap()
}

fn of_kind(ms: &[SmsMessage], kind: SmsKind) -> Vec<SmsMessage> {
    ms.iter().filter(|m| m.kind == kind).cloned().collect()
}

#[tokio::test]
async fn reminders_and_digests_are_sent_once_through_both_gateways() {
    for provider in [Provider::Kannel, Provider::AfricasTalking] {
        for db in databases().await {
            let app = TestApp::start(&db).await;
            let label = format!("[{} {}]", app.kind.as_str(), provider.as_str());
            let keza = family(&app.store, "Aline", Some(MOTHER_PHONE), &[("Keza", 120)]).await;
            // A child whose household has no phone at all.
            family(&app.store, "Grace", None, &[("Ineza", 200)]).await;
            recompute(&app.store).await;
            staff(&app, "fr").await;
            let set = settings(3, LOOSE);

            let first = plan(&app.store, &set, Utc::now()).await.unwrap();
            assert_eq!(
                (
                    first.children_overdue,
                    first.reminders,
                    first.digests,
                    first.no_phone
                ),
                (2, 1, 1, 1),
                "{label} {first:?}"
            );
            // The planner's read of the worklist is audited.
            let audit = app
                .store
                .audit()
                .query(
                    &inkingi_domain::identity::AreaScope::national(),
                    &inkingi_store::audit::AuditQuery {
                        limit: 100,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert!(audit.iter().any(|e| e.record.action == "worklist.read"
                && e.record.subject_id.as_deref() == Some("chw.cell")));
            // The planner again: nothing new.
            let again = plan(&app.store, &set, Utc::now()).await.unwrap();
            assert_eq!(
                (again.reminders, again.digests, again.existing),
                (0, 0, 2),
                "{label} {again:?}"
            );

            let sim = start_sim(&app, provider).await;
            let gw = connector(&sim, &app, provider);
            send_all(&app.store, &gw, &set).await;

            // Each message reached the gateway once, in effect, despite the failures.
            let took = sim.messages();
            let stats = sim.stats();
            assert!(stats.outage_refusals >= 1, "{label} {stats:?}");
            let to_mother: Vec<_> = took.iter().filter(|m| m.to == MOTHER_PHONE).collect();
            let to_chw: Vec<_> = took.iter().filter(|m| m.to == CHW_PHONE).collect();
            assert_eq!(
                (to_mother.len(), to_chw.len(), took.len()),
                (1, 1, 2),
                "{label} {took:?}"
            );
            assert!(
                to_mother[0].text.starts_with("Inkingi: Keza is due for "),
                "{label} {}",
                to_mother[0].text
            );
            // The health worker reads French: her digest counts the two children.
            assert!(
                to_chw[0].text.contains("2 enfants en retard"),
                "{label} {}",
                to_chw[0].text
            );
            assert_eq!(to_mother[0].from.as_deref(), Some("INKINGI"));

            let stored = messages(&app.store).await;
            assert!(
                stored.iter().all(|m| m.status == SmsStatus::Sent),
                "{label} {stored:?}"
            );
            // Per-connector metrics, in the shared connector style.
            let metrics = app.get("/metrics").await.text().await.unwrap();
            let conn = format!("connector=\"sms.{}\"", provider.as_str());
            for name in ["connector_sent_total", "connector_retried_total"] {
                assert!(
                    metrics
                        .lines()
                        .any(|l| l.starts_with(name) && l.contains(&conn)),
                    "{label} no {name} for {conn}"
                );
            }
            let reminder = of_kind(&stored, SmsKind::Reminder).pop().unwrap();
            assert_eq!(reminder.recipient.id(), keza.mother);

            // Delivery reports come back over HTTP and move the status.
            assert_eq!(
                sim.report(&to_mother[0].id, true).await.unwrap(),
                200,
                "{label}"
            );
            assert_eq!(
                sim.report(&to_chw[0].id, false).await.unwrap(),
                200,
                "{label}"
            );
            let stored = messages(&app.store).await;
            assert_eq!(
                of_kind(&stored, SmsKind::Reminder)[0].status,
                SmsStatus::Delivered,
                "{label}"
            );
            assert_eq!(
                of_kind(&stored, SmsKind::Digest)[0].status,
                SmsStatus::Undelivered,
                "{label}"
            );
            if provider == Provider::Kannel {
                assert_eq!(to_mother[0].coding.as_deref(), Some("0"));
                assert!(to_mother[0].dlr_url.as_deref().unwrap().contains("type=%d"));
            }

            // The job run again for a sent message sends nothing.
            let again = NewJob::new(
                JobName::parse("sms.send").unwrap(),
                json!({"message_id": reminder.id}),
            );
            app.store.jobs().enqueue_now(again).await.unwrap();
            send_all(&app.store, &gw, &set).await;
            assert_eq!(sim.messages().len(), 2, "{label}");
            sim.stop();
        }
    }
}

async fn status_of(res: reqwest::Response) -> (u16, Value) {
    let s = res.status().as_u16();
    let body = res.text().await.unwrap();
    (
        s,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test]
async fn bad_delivery_reports_are_refused_naming_the_field() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let get = |q: String| {
            app.client
                .get(app.url(&format!("/sms/dlr/kannel?{q}")))
                .send()
        };
        let (s, body) = status_of(get("id=not-a-uuid&token=x&type=1".into()).await.unwrap()).await;
        assert_eq!(s, 400, "{body}");
        assert!(body.to_string().contains("id"), "{body}");
        let id = Uuid::now_v7();
        let (s, body) = status_of(get(format!("id={id}&token=x&type=7")).await.unwrap()).await;
        assert_eq!(s, 400, "{body}");
        assert!(body.to_string().contains("1, 2, 4, 8 or 16"), "{body}");
        let (s, _) = status_of(get(format!("id={id}&token=x&type=1")).await.unwrap()).await;
        assert_eq!(s, 404);
        let (s, body) = status_of(get(format!("id={id}&type=1")).await.unwrap()).await;
        assert_eq!(s, 400, "{body}");
        assert!(body.to_string().contains("token"), "{body}");

        let post = |form: &'static str| {
            app.client
                .post(app.url("/sms/dlr/africastalking"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
        };
        let (s, body) = status_of(post("id=ATXid_1&status=Delivered").await.unwrap()).await;
        assert_eq!(s, 400, "{body}");
        assert!(body.to_string().contains("status"), "{body}");
        let (s, body) = status_of(post("status=Success").await.unwrap()).await;
        assert_eq!(s, 400, "{body}");
        assert!(body.to_string().contains("id"), "{body}");
        let (s, _) = status_of(post("id=ATXid_unknown&status=Success").await.unwrap()).await;
        assert_eq!(s, 404);
    }
}

fn window_around_now() -> String {
    let local = Utc::now() + chrono::Duration::seconds(i64::from(RWANDA_OFFSET_SECS));
    let h = local.hour();
    format!("{:02}:00-{:02}:00", h, (h + 2) % 24)
}

#[tokio::test]
async fn quiet_hours_defer_caps_hold_and_ignored_reminders_escalate() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let label = app.kind.as_str();
        // Two small children: two reminders to one mother a day, against a cap of one a day.
        // The older (listed first) is reminded each day.
        let twins = family(
            &app.store,
            "Aline",
            Some(MOTHER_PHONE),
            &[("Keza", 120), ("Kalisa", 125)],
        )
        .await;
        recompute(&app.store).await;
        staff(&app, "en").await;
        let caps = Caps {
            per_day: 1,
            per_week: 2,
        };
        let mut set = settings(2, caps);
        set.quiet = Some(QuietHours::parse(&window_around_now(), RWANDA_OFFSET_SECS).unwrap());

        let now = Utc::now();
        let d0 = plan(&app.store, &set, now).await.unwrap();
        assert_eq!(
            (d0.reminders, d0.capped, d0.escalations),
            (1, 1, 0),
            "{label} {d0:?}"
        );
        // Planned inside the quiet hours: kept, due at their end, not sent before.
        let ms = messages(&app.store).await;
        assert!(
            ms.iter()
                .all(|m| m.not_before > now && m.status == SmsStatus::Queued),
            "{label}"
        );
        let jobs = sms_jobs(&app.store).await;
        assert_eq!(jobs.len(), ms.len(), "{label}");
        for m in &ms {
            let j = jobs
                .iter()
                .find(|j| j.payload["message_id"] == m.id.to_string())
                .unwrap();
            assert!(
                j.run_at >= m.not_before - chrono::Duration::seconds(1),
                "{label}"
            );
            assert_eq!(j.status, JobStatus::Queued, "{label}");
        }

        // The next day the same services are still overdue: the second reminder of each
        // reaches the escalation threshold (2), and the district nurse is told once.
        let d1 = plan(&app.store, &set, now + chrono::Duration::days(1))
            .await
            .unwrap();
        assert_eq!((d1.reminders, d1.capped), (1, 1), "{label} {d1:?}");
        assert_eq!(d1.escalations, 1, "{label} {d1:?}");
        let esc = of_kind(&messages(&app.store).await, SmsKind::Escalation);
        assert_eq!(esc.len(), 1, "{label}");
        assert_eq!(esc[0].params["village"], VILLAGE);
        assert!(
            esc[0].source_key.contains(&twins.children[1].to_string()),
            "{label}"
        );
        // Weekly cap of two reached: no third reminder; an escalation is not repeated.
        let d2 = plan(&app.store, &set, now + chrono::Duration::days(2))
            .await
            .unwrap();
        assert_eq!((d2.reminders, d2.capped), (0, 2), "{label} {d2:?}");
        let again = plan(&app.store, &set, now + chrono::Duration::days(2))
            .await
            .unwrap();
        assert_eq!(
            again.reminders + again.digests + again.escalations,
            0,
            "{label} {again:?}"
        );
        let reminders = of_kind(&messages(&app.store).await, SmsKind::Reminder);
        assert!(reminders.iter().all(|m| m.recipient.id() == twins.mother));
        assert_eq!(reminders.len(), 2, "{label}");
    }
}

#[tokio::test]
async fn beneficiary_notifications_leave_through_the_gateway() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let f = family(&app.store, "Aline", Some(MOTHER_PHONE), &[]).await;
        let job = NotifyJob {
            key: format!("enrolment-event:{}", Uuid::now_v7()),
            template: "enrolment.enrolled".into(),
            household_id: f.household,
            person_id: None,
            village: VILLAGE.into(),
            params: json!({"programme": "VUP", "status": "enrolled", "reason": null}),
        };
        assert!(app.store.notifications().write(&job).await.unwrap());
        let set = settings(3, LOOSE);
        let sum: PlanSummary = plan(&app.store, &set, Utc::now()).await.unwrap();
        assert_eq!(sum.notifications, 1, "{sum:?}");
        assert_eq!(
            plan(&app.store, &set, Utc::now())
                .await
                .unwrap()
                .notifications,
            0
        );
        let sim = start_sim(&app, Provider::Kannel).await;
        send_all(&app.store, &connector(&sim, &app, Provider::Kannel), &set).await;
        let took = sim.messages();
        assert_eq!(
            took.len(),
            1,
            "{took:?} {:?} {:?}",
            sms_jobs(&app.store).await,
            messages(&app.store).await
        );
        assert_eq!(took[0].to, MOTHER_PHONE);
        assert_eq!(took[0].text, "Inkingi: your household is enrolled in VUP.");
        let outbox = app
            .store
            .notifications()
            .for_household(f.household)
            .await
            .unwrap();
        assert_eq!(outbox[0].status, "sent");
        sim.stop();
    }
}

#[tokio::test]
async fn a_health_workers_worklist_covers_their_cell() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        let f = family(&app.store, "Aline", Some(MOTHER_PHONE), &[("Keza", 120)]).await;
        recompute(&app.store).await;
        staff(&app, "en").await;
        add_user(&app, "far.nurse", Role::HealthWorker, "12").await;
        let get = |who: &'static str, q: &'static str| {
            let app = &app;
            async move {
                let t = token(app, who, &["read", "purpose:healthcare"]).await;
                status_of(
                    app.client
                        .get(app.url(&format!("/api/v1/worklists/overdue?{q}")))
                        .bearer_auth(t)
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            }
        };
        let (s, wl) = get("nurse.district", "chw=chw.cell").await;
        assert_eq!(s, 200, "{wl}");
        assert_eq!(wl["chw"], "chw.cell");
        assert_eq!(
            wl["villages"][0]["children"][0]["person_id"],
            f.children[0].to_string()
        );
        let (s, _) = get("chw.cell", "chw=chw.cell").await;
        assert_eq!(s, 200);
        let (s, _) = get("far.nurse", "chw=chw.cell").await;
        assert_eq!(s, 403);
        let (s, body) = get("nurse.district", "chw=nobody").await;
        assert_eq!(s, 400, "{body}");
        let (s, body) = get("nurse.district", "chw=chw.cell&area=11").await;
        assert_eq!(s, 400, "{body}");
    }
}

/// Planning throughput (docs/BENCHMARKS.md): `cargo test --workspace --test sms --
/// --ignored --nocapture plan_throughput` (`SMS_BENCH_FAMILIES`, default 1000, one child each,
/// all in one cell). Prints the time of the first planning run and of the repeat.
#[tokio::test]
#[ignore]
async fn plan_throughput() {
    let n: usize = std::env::var("SMS_BENCH_FAMILIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    for db in databases().await {
        let app = TestApp::start(&db).await;
        for i in 0..n {
            let phone = format!("+25078{:07}", i);
            family(
                &app.store,
                "Aline",
                Some(&phone),
                &[("Keza", 60 + (i as u64 % 900))],
            )
            .await;
        }
        recompute(&app.store).await;
        staff(&app, "en").await;
        let set = settings(3, LOOSE);
        let started = Instant::now();
        let first = plan(&app.store, &set, Utc::now()).await.unwrap();
        let t1 = started.elapsed();
        let started = Instant::now();
        let again = plan(&app.store, &set, Utc::now()).await.unwrap();
        let t2 = started.elapsed();
        assert_eq!(first.reminders as usize, n);
        assert_eq!(again.reminders, 0);
        println!(
            "[{}] {n} children overdue: first plan {:.2} s ({:.0} children/s), repeat {:.2} s",
            app.kind.as_str(),
            t1.as_secs_f64(),
            n as f64 / t1.as_secs_f64(),
            t2.as_secs_f64()
        );
    }
}
