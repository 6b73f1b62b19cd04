//! Hand-checked dates: a child born 2026-01-15 (2026 is not a leap year).
#![allow(clippy::unwrap_used)]

use super::*;
use chrono::NaiveDate;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn sched(id: &str) -> &'static Schedule {
    Schedules::embedded()
        .unwrap()
        .schedules
        .iter()
        .find(|s| s.id == id)
        .unwrap()
}

fn shot(vaccine: &str, dose: Option<u32>, date: &str) -> Fact {
    Fact {
        kind: FactKind::Immunization,
        vaccine: Some(vaccine.into()),
        dose,
        date: d(date),
    }
}

fn fact(kind: FactKind, date: &str) -> Fact {
    Fact {
        kind,
        vaccine: None,
        dose: None,
        date: d(date),
    }
}

fn find<'a>(all: &'a [ServiceStatus], code: &str, n: u32) -> &'a ServiceStatus {
    all.iter()
        .find(|s| s.service == code && s.occurrence == n)
        .unwrap_or_else(|| panic!("no {code} #{n} in {all:#?}"))
}

const BORN: &str = "2026-01-15";

#[test]
fn every_embedded_file_parses_and_is_marked() {
    let all = Schedules::embedded().unwrap();
    assert_eq!(all.schedules.len(), 4);
    // Nothing is signed off yet: every schedule says so.
    assert!(all.schedules.iter().all(|s| s.provisional));
    assert_eq!(all.vaccines.map(CVX, "19"), Some("BCG"));
    assert_eq!(all.vaccines.map(ATC, "J07BH01"), Some("ROTA"));
    assert_eq!(all.vaccines.map(CVX, "999"), None);
}

#[test]
fn epi_windows_are_counted_in_weeks_and_calendar_months() {
    let r = evaluate(sched("rw-epi"), d(BORN), &[], d("2026-03-01"), None);
    let bcg = find(&r, "bcg", 1);
    assert_eq!(
        (bcg.window.opens, bcg.window.due_by, bcg.window.closes),
        (d("2026-01-15"), d("2026-01-29"), Some(d("2027-01-15")))
    );
    // 6 weeks = 42 days after 15 January is 26 February; +14 days is 12 March.
    let opv1 = find(&r, "opv-1", 1);
    assert_eq!(
        (opv1.window.opens, opv1.window.due_by),
        (d("2026-02-26"), d("2026-03-12"))
    );
    assert_eq!(opv1.status, Status::Due);
    assert_eq!(find(&r, "bcg", 1).status, Status::Overdue);
    assert_eq!(
        find(&r, "opv-0", 1).status,
        Status::Missed,
        "closed at 6 weeks"
    );
    // 9 months: 15 October; due by 15 November.
    let mr1 = find(&r, "mr-1", 1);
    assert_eq!(
        (mr1.window.opens, mr1.window.due_by, mr1.status),
        (d("2026-10-15"), d("2026-11-15"), Status::Upcoming)
    );
    assert_eq!(find(&r, "mr-2", 1).window.opens, d("2027-04-15"));
}

#[test]
fn statuses_change_at_the_window_edges() {
    let s = sched("rw-epi");
    let at = |day: &str| find(&evaluate(s, d(BORN), &[], d(day), None), "penta-1", 1).status;
    assert_eq!(at("2026-02-25"), Status::Upcoming);
    assert_eq!(at("2026-02-26"), Status::Due);
    assert_eq!(at("2026-03-12"), Status::Due);
    assert_eq!(at("2026-03-13"), Status::Overdue);
    assert_eq!(
        at("2031-01-15"),
        Status::Overdue,
        "last day of the 5-year window"
    );
    assert_eq!(at("2031-01-16"), Status::Missed);
    // Rotavirus closes at two years.
    let rota = |day: &str| find(&evaluate(s, d(BORN), &[], d(day), None), "rota-1", 1).status;
    assert_eq!(rota("2028-01-15"), Status::Overdue);
    assert_eq!(rota("2028-01-16"), Status::Missed);
}

#[test]
fn doses_are_matched_by_number_or_else_in_order() {
    let s = sched("rw-epi");
    let facts = [
        shot("BCG", Some(1), "2026-01-15"),
        // Unnumbered OPV at 7 and 11 weeks: too late for the birth dose, so OPV 1 and 2.
        shot("OPV", None, "2026-03-05"),
        shot("OPV", None, "2026-04-02"),
        // Numbered penta 2 only.
        shot("PENTA", Some(2), "2026-03-26"),
    ];
    let r = evaluate(s, d(BORN), &facts, d("2026-04-25"), None);
    assert_eq!(find(&r, "bcg", 1).completed_on, Some(d("2026-01-15")));
    assert_eq!(find(&r, "opv-0", 1).status, Status::Missed);
    assert_eq!(find(&r, "opv-1", 1).completed_on, Some(d("2026-03-05")));
    assert_eq!(find(&r, "opv-2", 1).completed_on, Some(d("2026-04-02")));
    // OPV 3 opens at 14 weeks, 23 April.
    assert_eq!(find(&r, "opv-3", 1).status, Status::Due);
    assert_eq!(find(&r, "penta-1", 1).status, Status::Overdue);
    assert_eq!(find(&r, "penta-2", 1).status, Status::Completed);
    // An unnumbered OPV at birth is the birth dose.
    let r = evaluate(
        s,
        d(BORN),
        &[shot("OPV", None, "2026-01-16")],
        d("2026-01-20"),
        None,
    );
    assert_eq!(find(&r, "opv-0", 1).status, Status::Completed);
    assert_eq!(find(&r, "opv-1", 1).status, Status::Upcoming);
}

#[test]
fn an_unmapped_vaccine_completes_nothing() {
    let unmapped = Fact {
        vaccine: None,
        ..shot("BCG", Some(1), "2026-01-15")
    };
    let r = evaluate(sched("rw-epi"), d(BORN), &[unmapped], d("2026-01-20"), None);
    assert_eq!(find(&r, "bcg", 1).status, Status::Due);
}

#[test]
fn growth_monitoring_is_monthly_then_quarterly() {
    let s = sched("rw-child-services");
    let facts = [
        fact(FactKind::Measurement, "2026-01-20"),
        // Two weighings in March: only one counts for March; April is still missed.
        fact(FactKind::Measurement, "2026-03-16"),
        fact(FactKind::Measurement, "2026-03-30"),
    ];
    let r = evaluate(s, d(BORN), &facts, d("2026-05-20"), None);
    let m1 = find(&r, "growth-monthly", 1);
    assert_eq!(
        (m1.window.opens, m1.window.due_by, m1.window.closes),
        (d("2026-01-15"), d("2026-01-29"), Some(d("2026-02-14")))
    );
    assert_eq!(m1.completed_on, Some(d("2026-01-20")));
    assert_eq!(find(&r, "growth-monthly", 2).status, Status::Missed);
    assert_eq!(
        find(&r, "growth-monthly", 3).completed_on,
        Some(d("2026-03-16"))
    );
    assert_eq!(find(&r, "growth-monthly", 4).status, Status::Missed);
    // 15 May to 14 June: due for 14 days (to 29 May).
    assert_eq!(find(&r, "growth-monthly", 5).status, Status::Due);
    assert_eq!(find(&r, "growth-monthly", 6).status, Status::Upcoming);
    assert!(r
        .iter()
        .all(|x| x.service != "growth-quarterly" || x.occurrence == 1));
    // 24 monthly periods, then quarterly from the second birthday to the fifth.
    let r = evaluate(s, d(BORN), &[], d("2031-06-01"), None);
    let monthly = r.iter().filter(|x| x.service == "growth-monthly").count();
    let quarterly: Vec<_> = r
        .iter()
        .filter(|x| x.service == "growth-quarterly")
        .collect();
    assert_eq!((monthly, quarterly.len()), (24, 12));
    assert_eq!(quarterly[0].window.opens, d("2028-01-15"));
    assert_eq!(quarterly[11].window.closes, Some(d("2031-01-14")));
}

#[test]
fn month_ends_clamp_to_the_calendar() {
    let s = sched("rw-child-services");
    let r = evaluate(s, d("2026-01-31"), &[], d("2026-02-01"), None);
    let m1 = find(&r, "growth-monthly", 1);
    // One month after 31 January is 28 February; the first period ends the day before.
    assert_eq!(m1.window.closes, Some(d("2026-02-27")));
    assert_eq!(find(&r, "growth-monthly", 2).window.opens, d("2026-02-28"));
}

#[test]
fn supplementation_registration_and_preprimary() {
    let s = sched("rw-child-services");
    let facts = [
        fact(FactKind::VitaminA, "2026-07-20"),
        fact(FactKind::BirthRegistration, "2026-03-01"),
    ];
    let r = evaluate(s, d(BORN), &facts, d("2027-01-20"), None);
    let a1 = find(&r, "vitamin-a", 1);
    assert_eq!(
        (a1.window.opens, a1.window.due_by, a1.status),
        (d("2026-07-15"), d("2026-08-15"), Status::Completed)
    );
    assert_eq!(find(&r, "vitamin-a", 2).status, Status::Due);
    assert_eq!(find(&r, "deworming", 1).window.opens, d("2027-01-15"));
    // Registered late (after 30 days) still completes it; never "missed".
    assert_eq!(find(&r, "birth-registration", 1).status, Status::Completed);
    let r = evaluate(s, d(BORN), &[], d("2030-01-01"), None);
    assert_eq!(find(&r, "birth-registration", 1).status, Status::Overdue);
    let pre = find(&r, "preprimary-enrolment", 1);
    assert_eq!(
        (pre.window.opens, pre.window.due_by, pre.status),
        (d("2029-01-15"), d("2029-05-15"), Status::Overdue)
    );
}

#[test]
fn antenatal_contacts_follow_gestational_age_and_stop_at_delivery() {
    let s = sched("who-anc-2016");
    let lmp = d("2026-01-01");
    let facts = [fact(FactKind::AncContact, "2026-02-20")];
    let r = evaluate(s, lmp, &facts, d("2026-05-15"), None);
    assert_eq!(
        r.iter().filter(|x| x.service.starts_with("anc-")).count(),
        8
    );
    let c1 = find(&r, "anc-1", 1);
    // 12 weeks after 1 January is 26 March; 20 weeks is 21 May.
    assert_eq!(
        (c1.window.due_by, c1.window.closes, c1.status),
        (d("2026-03-26"), Some(d("2026-05-21")), Status::Completed)
    );
    // 18 weeks = 7 May, 21 weeks = 28 May.
    let c2 = find(&r, "anc-2", 1);
    assert_eq!((c2.window.opens, c2.status), (d("2026-05-07"), Status::Due));
    // A delivery at 35 weeks: later contacts are not listed.
    let r = evaluate(s, lmp, &facts, d("2026-09-10"), Some(d("2026-09-03")));
    assert_eq!(
        r.iter().map(|x| x.service.as_str()).collect::<Vec<_>>(),
        ["anc-1", "anc-2", "anc-3", "anc-4", "anc-5"]
    );
}

#[test]
fn postnatal_visits_count_from_delivery() {
    let s = sched("who-pnc");
    let facts = [fact(FactKind::PncContact, "2026-09-03")];
    let r = evaluate(s, d("2026-09-03"), &facts, d("2026-09-05"), None);
    assert_eq!(find(&r, "pnc-1", 1).status, Status::Completed);
    let p2 = find(&r, "pnc-2", 1);
    assert_eq!((p2.window.opens, p2.status), (d("2026-09-05"), Status::Due));
    assert_eq!(find(&r, "pnc-4", 1).window.opens, d("2026-10-15"));
}

#[test]
fn bad_files_name_the_service_and_field() {
    let text = r#"
        id = "x"
        version = "1"
        title = "t"
        anchor = "birth"
        provisional = true
        [[services]]
        code = "a"
        name = "A"
        fact = "measurement"
        opens = "2q"
        due_by = "1w"
    "#;
    let e = Schedule::parse_toml("x.toml", text).unwrap_err();
    assert!(e.at.contains("services[0] (a)"), "{e}");
    assert!(
        e.reason.contains("opens") && e.reason.contains("unit"),
        "{e}"
    );
    let e = Schedule::parse_toml("x.toml", &text.replace("\"2q\"", "\"2w\"")).unwrap_err();
    assert!(e.reason.contains("opens <= due_by"), "{e}");
    let e = Schedule::parse_toml("x.toml", &text.replace("opens = \"2q\"", "every = \"1m\""))
        .unwrap_err();
    assert!(e.reason.contains("either"), "{e}");
    assert!(Schedule::parse_toml("x.toml", &text.replace("\"2q\"", "\"0d\"")).is_ok());
}

#[test]
fn offsets_parse_and_add() {
    assert_eq!(
        Offset::parse("3y+4m").unwrap(),
        Offset {
            months: 40,
            days: 0
        }
    );
    assert_eq!(Offset::parse("6w+14d").unwrap().days, 56);
    assert!(Offset::parse("w").is_err());
    assert_eq!(
        Offset::parse("1m").unwrap().after(d("2024-01-31")),
        Some(d("2024-02-29"))
    );
}
