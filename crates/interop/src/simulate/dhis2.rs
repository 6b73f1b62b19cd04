//! A DHIS2 instance (the HMIS) configured as `data/dhis2/mapping.toml` describes, serving the
//! tracker API Inkingi reads: `GET /api/tracker/trackedEntities` (and `/{uid}`) and
//! `GET /api/tracker/events`, with real paging (`page`, `pageSize`, `totalPages`), filtering
//! by `program`, organisation unit and `updatedAfter` (inclusive), ordered by `updatedAt`, and
//! the personal access token check (`Authorization: ApiToken …`, else 401).
//!
//! Its children (and their mothers) are given — drawn from a registry export or made up by the
//! caller — and their health records are generated from the seed: a birth event (BCG, OPV 0,
//! birth weight), immunisation visits at 6, 10 and 14 weeks and 9 and 15 months (a seeded share
//! missed), growth monitoring monthly to two years then quarterly, and for mothers of infants a
//! pregnancy enrolment with ANC and PNC visits. [`Dhis2Sim::add_growth_visits`] adds events
//! later, as health workers would, so incremental syncs have something new to find. Faults come
//! from the shared [`FaultPlan`].
//!
//! It also takes aggregate data, `POST /api/dataValueSets`, for the organisation units and data
//! elements of the mapping's `[aggregate]`, and answers an import summary as recent DHIS2
//! versions do (a web message whose `response` is the `ImportSummary`; HTTP 409 when there were
//! conflicts): unknown organisation units, periods, data elements or non-numeric values are
//! conflicts, and data elements named in [`Dhis2Plan::reject_data_elements`] (or later with
//! [`Dhis2Sim::reject_data_element`]) are refused on demand. A value sent again for the same
//! data element, combination, unit and period is updated, not duplicated.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Days, Months, NaiveDate, NaiveDateTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::faults::{Fault, FaultPlan, FaultState};
use crate::dhis2::aggregate::{Conflict, DataValueSet, ImportCount, ImportSummary};
use crate::dhis2::{
    format_stamp, parse_stamp, AttributeValue, DataValue, Enrollment, Event, Mapping, Subject,
    TrackedEntity,
};

/// The root organisation unit every mapped unit descends from.
pub const ROOT_ORG_UNIT: &str = "OuRwanda00A";

/// A mother as the HMIS knows her.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMother {
    pub given_name: String,
    pub family_name: String,
    pub national_id: Option<String>,
    pub phone: Option<String>,
}

/// A child as the HMIS knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimChild {
    pub given_name: String,
    pub family_name: String,
    /// `F` or `M`.
    pub sex: String,
    pub birth_date: NaiveDate,
    pub birth_registration: Option<String>,
    pub org_unit: String,
    pub mother: Option<SimMother>,
}

/// How the simulator is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct Dhis2Plan {
    pub faults: FaultPlan,
    /// The personal access token it accepts.
    pub token: String,
    /// Share of scheduled immunisation visits that did not happen, 0 to 1.
    pub missed_share: f64,
    /// Aggregate data elements refused with a conflict (to show how conflicts are handled).
    pub reject_data_elements: Vec<String>,
}

impl Default for Dhis2Plan {
    fn default() -> Self {
        Dhis2Plan {
            faults: FaultPlan::default(),
            token: "d2pat_simulator0000000000000000000000".into(),
            missed_share: 0.1,
            reject_data_elements: Vec::new(),
        }
    }
}

/// What the simulator has answered so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dhis2Stats {
    pub requests: u64,
    pub pages: u64,
    pub unauthorised: u64,
    pub injected_failures: u64,
    pub outage_refusals: u64,
    pub lost_answers: u64,
    /// Data value sets received (and answered).
    pub data_value_sets: u64,
}

/// The records held.
#[derive(Debug, Clone)]
struct Data {
    tracked_entities: Vec<(TrackedEntity, NaiveDateTime)>,
    events: Vec<(Event, NaiveDateTime)>,
    /// The last `updatedAt` given: every change gets a later (or, in a batch, the same) one.
    clock: NaiveDateTime,
    rng: StdRng,
    /// Child tracked entity → (birth date, enrolment, org unit).
    children: Vec<(String, NaiveDate, String, String)>,
    /// Aggregate values: (data element, combination, org unit, period) → value.
    values: BTreeMap<(String, String, String, String), String>,
    rejected: Vec<String>,
}

#[derive(Debug)]
struct Inner {
    faults: FaultState,
    stats: Dhis2Stats,
    data: Data,
}

#[derive(Debug)]
struct Shared {
    token: String,
    mapping: Mapping,
    inner: Mutex<Inner>,
}

/// A running simulator.
#[derive(Debug, Clone)]
pub struct Dhis2Sim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// A UID as DHIS2 makes them: a letter, then ten letters or digits.
fn uid(rng: &mut StdRng) -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut s = String::with_capacity(11);
    s.push(ALNUM[rng.random_range(0..52)] as char);
    for _ in 0..10 {
        s.push(ALNUM[rng.random_range(0..ALNUM.len())] as char);
    }
    s
}

/// WHO medians (both sexes, rounded) by age in months: weight kg, length/height cm.
const WEIGHT: &[(f64, f64)] = &[
    (0.0, 3.3),
    (1.0, 4.5),
    (2.0, 5.6),
    (3.0, 6.4),
    (6.0, 7.9),
    (9.0, 8.9),
    (12.0, 9.6),
    (18.0, 10.9),
    (24.0, 12.2),
    (36.0, 14.3),
    (48.0, 16.3),
    (60.0, 18.3),
    (72.0, 20.5),
];
const LENGTH: &[(f64, f64)] = &[
    (0.0, 49.9),
    (3.0, 61.4),
    (6.0, 67.6),
    (9.0, 72.0),
    (12.0, 75.7),
    (18.0, 82.3),
    (24.0, 87.1),
    (36.0, 96.1),
    (48.0, 103.3),
    (60.0, 110.0),
    (72.0, 116.0),
];

fn interpolate(table: &[(f64, f64)], x: f64) -> f64 {
    for w in table.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0).max(0.0) / (x1 - x0);
        }
    }
    table.last().map_or(0.0, |l| l.1)
}

/// Data element UIDs of the mapping, by what they hold.
struct Elements {
    immunisation_stage: String,
    birth_stage: String,
    growth_stage: String,
    anc_stage: Option<String>,
    pnc_stage: Option<String>,
    /// (vaccine code, dose) → data element.
    doses: HashMap<(String, u32), (String, String)>,
    /// The birth stage's weight: (data element, unit).
    birth_weight: Option<(String, String)>,
    /// Growth monitoring: kind → (data element, unit).
    measures: HashMap<String, (String, String)>,
}

fn elements(m: &Mapping) -> Result<Elements, String> {
    let mut doses = HashMap::new();
    let mut measures = HashMap::new();
    let mut birth_weight = None;
    let (mut imm, mut birth, mut growth, mut anc, mut pnc) = (None, None, None, None, None);
    for s in &m.stages {
        let at_birth = s.immunizations.iter().any(|i| i.dose == Some(0));
        for i in &s.immunizations {
            doses.insert(
                (i.code.clone(), i.dose.unwrap_or(1)),
                (s.uid.clone(), i.data_element.clone()),
            );
        }
        if at_birth {
            birth = Some(s.uid.clone());
            birth_weight = s
                .measurements
                .iter()
                .find(|ms| ms.kind == "weight")
                .map(|ms| (ms.data_element.clone(), ms.unit.clone()));
        } else if !s.immunizations.is_empty() {
            imm = Some(s.uid.clone());
        } else if !s.measurements.is_empty() {
            growth = Some(s.uid.clone());
            for ms in &s.measurements {
                measures.insert(ms.kind.clone(), (ms.data_element.clone(), ms.unit.clone()));
            }
        }
        match s.contact.as_deref() {
            Some("anc") => anc = Some(s.uid.clone()),
            Some("pnc") => pnc = Some(s.uid.clone()),
            _ => {}
        }
    }
    let need = |v: Option<String>, what: &str| {
        v.ok_or_else(|| format!("the mapping has no {what} stage the simulator can fill"))
    };
    Ok(Elements {
        immunisation_stage: need(imm, "immunisation")?,
        birth_stage: need(birth, "birth")?,
        growth_stage: need(growth, "growth monitoring")?,
        anc_stage: anc,
        pnc_stage: pnc,
        doses,
        birth_weight,
        measures,
    })
}

/// The immunisation visits of the Rwanda EPI the simulator records: age, (vaccine code, dose).
const VISITS: &[(&str, &[(&str, u32)])] = &[
    ("6w", &[("02", 1), ("102", 1), ("133", 1), ("116", 1)]),
    ("10w", &[("02", 2), ("102", 2), ("133", 2), ("116", 2)]),
    ("14w", &[("02", 3), ("102", 3), ("133", 3), ("10", 1)]),
    ("9m", &[("04", 1)]),
    ("15m", &[("04", 2)]),
];

fn at_age(birth: NaiveDate, age: &str) -> Option<NaiveDate> {
    let (n, unit) = age.split_at(age.len() - 1);
    let n: u32 = n.parse().ok()?;
    match unit {
        "w" => birth.checked_add_days(Days::new(u64::from(n) * 7)),
        _ => birth.checked_add_months(Months::new(n)),
    }
}

/// Whose event: program, tracked entity, enrolment and organisation unit.
struct Owner<'a> {
    program: &'a str,
    te: &'a str,
    enrollment: &'a str,
    org_unit: &'a str,
}

impl Data {
    fn tick(&mut self) -> NaiveDateTime {
        // Three records share each millisecond: bulk imports give equal times, and a client
        // must page through ties.
        if self.rng.random_range(0..3) == 0 {
            self.clock += chrono::Duration::milliseconds(1);
        }
        self.clock
    }

    fn event(&mut self, o: &Owner<'_>, stage: &str, on: NaiveDate, values: Vec<(String, String)>) {
        let at = self.tick();
        let e = Event {
            event: uid(&mut self.rng),
            status: Some("COMPLETED".into()),
            program: o.program.into(),
            program_stage: stage.into(),
            enrollment: Some(o.enrollment.into()),
            tracked_entity: Some(o.te.into()),
            org_unit: Some(o.org_unit.into()),
            occurred_at: Some(format_stamp(on.and_time(chrono::NaiveTime::MIN))),
            updated_at: Some(format_stamp(at)),
            deleted: false,
            data_values: values
                .into_iter()
                .map(|(data_element, value)| DataValue {
                    data_element,
                    value: Some(value),
                })
                .collect(),
        };
        self.events.push((e, at));
    }

    fn measures(
        &mut self,
        el: &Elements,
        birth: NaiveDate,
        on: NaiveDate,
    ) -> Vec<(String, String)> {
        let months = (on - birth).num_days() as f64 / 30.4375;
        let mut out = Vec::new();
        let jitter = |rng: &mut StdRng| rng.random_range(0.95..1.05);
        if let Some((de, unit)) = el.measures.get("weight") {
            let kg = interpolate(WEIGHT, months) * jitter(&mut self.rng);
            let v = if unit == "g" {
                format!("{:.0}", kg * 1000.0)
            } else {
                format!("{kg:.1}")
            };
            out.push((de.clone(), v));
        }
        let kind = if months < 24.0 { "length" } else { "height" };
        if let Some((de, _)) = el.measures.get(kind) {
            let cm = interpolate(LENGTH, months) * jitter(&mut self.rng);
            out.push((de.clone(), format!("{cm:.1}")));
        }
        if months >= 6.0 {
            if let Some((de, unit)) = el.measures.get("muac") {
                let cm = 14.5 * jitter(&mut self.rng);
                let v = if unit == "mm" {
                    format!("{:.0}", cm * 10.0)
                } else {
                    format!("{cm:.1}")
                };
                out.push((de.clone(), v));
            }
        }
        out
    }
}

/// Builds the records of `children` as of `today`.
fn generate(
    mapping: &Mapping,
    children: &[SimChild],
    today: NaiveDate,
    seed: u64,
    missed_share: f64,
) -> Result<Data, String> {
    let el = elements(mapping)?;
    let program_of = |s: Subject| mapping.programs.iter().find(|p| p.subject == s);
    let child_program = program_of(Subject::Child)
        .ok_or("the mapping has no program of children")?
        .uid
        .clone();
    let mother_program = program_of(Subject::Mother).map(|p| p.uid.clone());
    let a = &mapping.attributes;
    let sex_code = |s: &str| {
        let codes = if s == "F" {
            &mapping.sex.female
        } else {
            &mapping.sex.male
        };
        codes.first().cloned().unwrap_or_else(|| s.to_string())
    };
    let start = today
        .checked_sub_days(Days::new(1))
        .unwrap_or(today)
        .and_time(chrono::NaiveTime::MIN);
    let mut d = Data {
        tracked_entities: Vec::new(),
        events: Vec::new(),
        clock: start,
        rng: StdRng::seed_from_u64(seed),
        children: Vec::new(),
        values: BTreeMap::new(),
        rejected: Vec::new(),
    };
    for c in children {
        let te = uid(&mut d.rng);
        let enrollment = uid(&mut d.rng);
        let mut attrs = vec![
            (&a.given_name, Some(c.given_name.clone())),
            (&a.family_name, Some(c.family_name.clone())),
            (&a.sex, Some(sex_code(&c.sex))),
            (&a.birth_date, Some(c.birth_date.to_string())),
            (&a.birth_registration, c.birth_registration.clone()),
        ];
        if let Some(m) = &c.mother {
            attrs.push((&a.mother_national_id, m.national_id.clone()));
            attrs.push((&a.mother_phone, m.phone.clone()));
        }
        let at = d.tick();
        d.tracked_entities.push((
            TrackedEntity {
                tracked_entity: te.clone(),
                org_unit: Some(c.org_unit.clone()),
                updated_at: Some(format_stamp(at)),
                deleted: false,
                attributes: attributes(attrs),
                enrollments: vec![Enrollment {
                    enrollment: enrollment.clone(),
                    program: child_program.clone(),
                    org_unit: Some(c.org_unit.clone()),
                    enrolled_at: Some(c.birth_date.to_string()),
                    occurred_at: Some(c.birth_date.to_string()),
                    deleted: false,
                }],
            },
            at,
        ));
        d.children.push((
            te.clone(),
            c.birth_date,
            enrollment.clone(),
            c.org_unit.clone(),
        ));
        // Birth: the birth stage's vaccines (BCG, OPV 0) and the birth weight.
        let mut birth: Vec<(String, String)> = el
            .doses
            .values()
            .filter(|(stage, _)| *stage == el.birth_stage)
            .map(|(_, de)| (de.clone(), "true".to_string()))
            .collect();
        birth.sort();
        if let Some((de, unit)) = &el.birth_weight {
            let kg = d.rng.random_range(2.8..3.8);
            let v = if unit == "g" {
                format!("{:.0}", kg * 1000.0)
            } else {
                format!("{kg:.2}")
            };
            birth.push((de.clone(), v));
        }
        let owner = Owner {
            program: &child_program,
            te: &te,
            enrollment: &enrollment,
            org_unit: &c.org_unit,
        };
        d.event(&owner, &el.birth_stage, c.birth_date, birth);
        for (age, doses) in VISITS {
            let Some(on) = at_age(c.birth_date, age).filter(|on| *on <= today) else {
                continue;
            };
            if d.rng.random_bool(missed_share.clamp(0.0, 1.0)) {
                continue;
            }
            let values = doses
                .iter()
                .filter_map(|(code, dose)| el.doses.get(&(code.to_string(), *dose)))
                .map(|(_, de)| (de.clone(), "true".to_string()))
                .collect();
            d.event(&owner, &el.immunisation_stage, on, values);
        }
        let mut month = 1;
        while let Some(on) = c
            .birth_date
            .checked_add_months(Months::new(month))
            .filter(|on| *on <= today)
        {
            let values = d.measures(&el, c.birth_date, on);
            d.event(&owner, &el.growth_stage, on, values);
            month += if month < 24 { 1 } else { 3 };
        }
        if let (Some(m), Some(program)) = (&c.mother, &mother_program) {
            mother_records(&mut d, &el, mapping, program, m, c)?;
        }
    }
    Ok(d)
}

fn attributes(list: Vec<(&Option<String>, Option<String>)>) -> Vec<AttributeValue> {
    list.into_iter()
        .filter_map(|(uid, value)| {
            Some(AttributeValue {
                attribute: uid.clone()?,
                value: Some(value?),
            })
        })
        .collect()
}

/// The mother of an infant: a pregnancy enrolment (incident date = LMP), ANC visits before the
/// birth and PNC visits after it.
fn mother_records(
    d: &mut Data,
    el: &Elements,
    mapping: &Mapping,
    program: &str,
    m: &SimMother,
    c: &SimChild,
) -> Result<(), String> {
    let today = d.clock.date() + Days::new(1);
    if (today - c.birth_date).num_days() > 365 {
        return Ok(());
    }
    let lmp = c
        .birth_date
        .checked_sub_days(Days::new(280))
        .ok_or("birth date out of range")?;
    let a = &mapping.attributes;
    let te = uid(&mut d.rng);
    let enrollment = uid(&mut d.rng);
    let at = d.tick();
    d.tracked_entities.push((
        TrackedEntity {
            tracked_entity: te.clone(),
            org_unit: Some(c.org_unit.clone()),
            updated_at: Some(format_stamp(at)),
            deleted: false,
            attributes: attributes(vec![
                (&a.given_name, Some(m.given_name.clone())),
                (&a.family_name, Some(m.family_name.clone())),
                (&a.sex, mapping.sex.female.first().cloned()),
                (&a.national_id, m.national_id.clone()),
            ]),
            enrollments: vec![Enrollment {
                enrollment: enrollment.clone(),
                program: program.into(),
                org_unit: Some(c.org_unit.clone()),
                enrolled_at: Some(
                    lmp.checked_add_days(Days::new(70))
                        .unwrap_or(lmp)
                        .to_string(),
                ),
                occurred_at: Some(lmp.to_string()),
                deleted: false,
            }],
        },
        at,
    ));
    let owner = Owner {
        program,
        te: &te,
        enrollment: &enrollment,
        org_unit: &c.org_unit,
    };
    if let Some(stage) = &el.anc_stage {
        for weeks in [12, 20, 26, 30] {
            let on = lmp + Days::new(weeks * 7);
            if on < c.birth_date {
                d.event(&owner, stage, on, Vec::new());
            }
        }
    }
    if let Some(stage) = &el.pnc_stage {
        for days in [1, 7] {
            let on = c.birth_date + Days::new(days);
            if on <= today {
                d.event(&owner, stage, on, Vec::new());
            }
        }
    }
    Ok(())
}

impl Dhis2Sim {
    /// Listens on `listen` (port 0 picks one) and serves the records of `children`, as of
    /// `today`, until [`Dhis2Sim::stop`].
    pub async fn start(
        listen: SocketAddr,
        plan: Dhis2Plan,
        mapping: Mapping,
        children: &[SimChild],
        today: NaiveDate,
    ) -> std::io::Result<Dhis2Sim> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
        if !(0.0..=1.0).contains(&plan.missed_share) {
            return Err(invalid(format!(
                "missed share {}: expected a number from 0 to 1",
                plan.missed_share
            )));
        }
        if plan.token.trim().is_empty() {
            return Err(invalid("the simulator needs a token to accept".into()));
        }
        let mut data = generate(
            &mapping,
            children,
            today,
            plan.faults.seed,
            plan.missed_share,
        )
        .map_err(invalid)?;
        data.rejected = plan.reject_data_elements.clone();
        let shared = Arc::new(Shared {
            token: plan.token.trim().to_string(),
            mapping,
            inner: Mutex::new(Inner {
                faults: FaultState::new(plan.faults)?,
                stats: Dhis2Stats::default(),
                data,
            }),
        });
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/stats", get(stats))
            .route("/api/tracker/trackedEntities", get(tracked_entities))
            .route("/api/tracker/trackedEntities/{uid}", get(tracked_entity))
            .route("/api/tracker/events", get(events))
            .route("/api/dataValueSets", axum::routing::post(data_value_sets))
            .with_state(shared.clone());
        let addr = super::serve(listen, app, &stop, "DHIS2 simulator").await?;
        Ok(Dhis2Sim { addr, shared, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a client is configured with.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    fn with_data<T>(&self, f: impl FnOnce(&mut Data) -> T) -> Option<T> {
        self.shared.inner.lock().ok().map(|mut i| f(&mut i.data))
    }

    /// Every tracked entity held.
    pub fn tracked_entities(&self) -> Vec<TrackedEntity> {
        self.with_data(|d| d.tracked_entities.iter().map(|t| t.0.clone()).collect())
            .unwrap_or_default()
    }

    /// Every event held.
    pub fn events(&self) -> Vec<Event> {
        self.with_data(|d| d.events.iter().map(|e| e.0.clone()).collect())
            .unwrap_or_default()
    }

    /// A growth-monitoring visit on `on` for every child under six then: new events with a
    /// later `updatedAt`. Returns how many were added.
    pub fn add_growth_visits(&self, on: NaiveDate) -> usize {
        let Ok(el) = elements(&self.shared.mapping) else {
            return 0;
        };
        let Some(program) = self
            .shared
            .mapping
            .programs
            .iter()
            .find(|p| p.subject == Subject::Child)
            .map(|p| p.uid.clone())
        else {
            return 0;
        };
        self.with_data(|d| {
            // Later than anything served so far.
            d.clock += chrono::Duration::seconds(1);
            let children = d.children.clone();
            let mut n = 0;
            for (te, birth, enrollment, ou) in children {
                if on < birth || (on - birth).num_days() >= 6 * 365 {
                    continue;
                }
                let values = d.measures(&el, birth, on);
                d.event(
                    &Owner {
                        program: &program,
                        te: &te,
                        enrollment: &enrollment,
                        org_unit: &ou,
                    },
                    &el.growth_stage,
                    on,
                    values,
                );
                n += 1;
            }
            n
        })
        .unwrap_or(0)
    }

    /// Refuses values of `data_element` from now on (each one a conflict).
    pub fn reject_data_element(&self, data_element: &str) {
        self.with_data(|d| d.rejected.push(data_element.to_string()));
    }

    /// Every aggregate value held: (data element, combination, org unit, period, value).
    pub fn data_values(&self) -> Vec<(String, String, String, String, String)> {
        self.with_data(|d| {
            d.values
                .iter()
                .map(|((de, coc, ou, pe), v)| {
                    (de.clone(), coc.clone(), ou.clone(), pe.clone(), v.clone())
                })
                .collect()
        })
        .unwrap_or_default()
    }

    pub fn stats(&self) -> Dhis2Stats {
        self.shared
            .inner
            .lock()
            .map(|i| i.stats.clone())
            .unwrap_or_default()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// DHIS2's default category option combination (`categoryOptionCombo` left out).
const DEFAULT_COC: &str = "HllvX50cXC0";

/// `POST /api/dataValueSets`: stores what it can and answers the import summary.
async fn data_value_sets(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = admit(&shared, &headers).await {
        return r;
    }
    let set: DataValueSet = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unreadable data value set: {e}"),
            )
        }
    };
    let Ok(mut i) = shared.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    i.stats.data_value_sets += 1;
    let summary = import(&shared.mapping, &mut i.data, &set);
    let ok = summary.status == "SUCCESS";
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    let answer = json!({
        "httpStatus": status.canonical_reason().unwrap_or("OK"),
        "httpStatusCode": status.as_u16(),
        "status": if ok { "OK" } else { summary.status.as_str() },
        "message": if ok { "Import was successful." } else { "One or more conflicts encountered, please check import summary." },
        "response": {
            "responseType": "ImportSummary",
            "status": summary.status,
            "description": summary.description,
            "importCount": summary.import_count,
            "conflicts": summary.conflicts,
            "dataSetComplete": "false",
        },
    });
    (status, Json(answer)).into_response()
}

/// Applies a data value set as DHIS2 would: each value checked, the good ones stored.
fn import(mapping: &Mapping, d: &mut Data, set: &DataValueSet) -> ImportSummary {
    let mut count = ImportCount::default();
    let mut conflicts = Vec::new();
    let agg = mapping.aggregate.as_ref();
    let conflict = |object: &str, value: &str| Conflict {
        object: object.to_string(),
        value: value.to_string(),
    };
    let unit_known = agg.is_some_and(|a| a.org_units.values().any(|o| *o == set.org_unit));
    let period_ok = set.period.len() == 6
        && set.period.bytes().all(|b| b.is_ascii_digit())
        && matches!(set.period[4..].parse::<u32>(), Ok(1..=12));
    if !unit_known {
        conflicts.push(conflict(
            &set.org_unit,
            "Organisation unit not found or not accessible",
        ));
    }
    if !period_ok {
        conflicts.push(conflict(&set.period, "Period not valid"));
    }
    for v in &set.data_values {
        let known = agg.is_some_and(|a| {
            a.data_elements
                .iter()
                .any(|e| e.data_element == v.data_element)
        });
        if !unit_known || !period_ok {
            count.ignored += 1;
        } else if !known || d.rejected.contains(&v.data_element) {
            conflicts.push(conflict(
                &v.data_element,
                "Data element not found or not accessible",
            ));
            count.ignored += 1;
        } else if v.value.parse::<u64>().is_err() {
            conflicts.push(conflict(&v.value, "Value must be zero or positive integer"));
            count.ignored += 1;
        } else {
            let coc = v
                .category_option_combo
                .clone()
                .unwrap_or_else(|| DEFAULT_COC.to_string());
            let key = (
                v.data_element.clone(),
                coc,
                set.org_unit.clone(),
                set.period.clone(),
            );
            match d.values.insert(key, v.value.clone()) {
                None => count.imported += 1,
                Some(_) => count.updated += 1,
            }
        }
    }
    let status = if conflicts.is_empty() {
        "SUCCESS"
    } else if count.imported + count.updated > 0 {
        "WARNING"
    } else {
        "ERROR"
    };
    ImportSummary {
        status: status.to_string(),
        description: Some(if conflicts.is_empty() {
            "Import process completed successfully".to_string()
        } else {
            "Import process completed with conflicts".to_string()
        }),
        import_count: count,
        conflicts,
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    match shared.inner.lock() {
        Ok(i) => Json(i.stats.clone()).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    (
        status,
        Json(json!({
            "httpStatus": reason,
            "httpStatusCode": status.as_u16(),
            "status": "ERROR",
            "message": message.into(),
        })),
    )
        .into_response()
}

/// Token and faults, before a request is looked at: `Err` is the answer to give instead.
async fn admit(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let expected = format!("ApiToken {}", shared.token);
    let authorised = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == expected);
    let (fault, latency) = {
        let Ok(mut i) = shared.inner.lock() else {
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        i.stats.requests += 1;
        if !authorised {
            i.stats.unauthorised += 1;
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: send Authorization: ApiToken <personal access token>",
            ));
        }
        let n = i.stats.requests;
        let f = i.faults.next(n);
        match f {
            Fault::Outage => i.stats.outage_refusals += 1,
            Fault::Fail => i.stats.injected_failures += 1,
            Fault::LoseAck => i.stats.lost_answers += 1,
            Fault::None => {}
        }
        (f, i.faults.latency())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Fault::Outage => Err(error(StatusCode::SERVICE_UNAVAILABLE, "outage")),
        Fault::Fail => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "injected failure")),
        // A read changes nothing: a lost answer only makes the caller ask again.
        Fault::LoseAck => Err(error(StatusCode::SERVICE_UNAVAILABLE, "answer lost")),
        Fault::None => Ok(()),
    }
}

/// The paging and filtering parameters, read as DHIS2 reads them.
struct Params {
    program: String,
    org_unit: Option<String>,
    updated_after: Option<NaiveDateTime>,
    page: usize,
    page_size: usize,
    total_pages: bool,
}

fn params(q: &HashMap<String, String>, mapping: &Mapping) -> Result<Params, String> {
    let bad = |m: String| Err(m);
    let Some(program) = q.get("program").cloned() else {
        return bad(
            "Either `program`, `trackedEntityType` or `trackedEntities` should be specified".into(),
        );
    };
    if mapping.program(&program).is_none() {
        return bad(format!(
            "Program is specified but does not exist: {program}"
        ));
    }
    let num = |k: &str, default: usize| -> Result<usize, String> {
        match q.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{k} must be greater than or equal to 1: '{v}'")),
        }
    };
    let page = match num("page", 1) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let page_size = match num("pageSize", 50) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let updated_after = match q.get("updatedAfter") {
        None => None,
        Some(v) => match parse_stamp(v) {
            Some(t) => Some(t),
            None => {
                return bad(format!(
                    "Value {v} is not a valid date for query param updatedAfter"
                ))
            }
        },
    };
    let org_unit = q.get("orgUnits").or_else(|| q.get("orgUnit")).cloned();
    Ok(Params {
        program,
        org_unit,
        updated_after,
        page,
        page_size: page_size.min(1000),
        total_pages: q.get("totalPages").is_some_and(|v| v == "true"),
    })
}

/// Whether a record at `org_unit` is within the asked unit (the root holds every unit).
fn within(asked: &Option<String>, org_unit: Option<&str>) -> bool {
    match asked.as_deref() {
        None | Some(ROOT_ORG_UNIT) => true,
        Some(ou) => org_unit == Some(ou),
    }
}

/// Selected records sorted by (updatedAt, UID), then the asked page with its pager.
fn paged<T: Serialize>(mut hits: Vec<(NaiveDateTime, String, T)>, p: &Params, key: &str) -> Value {
    hits.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let total = hits.len();
    let items: Vec<T> = hits
        .into_iter()
        .skip((p.page - 1).saturating_mul(p.page_size))
        .take(p.page_size)
        .map(|h| h.2)
        .collect();
    let mut pager = json!({"page": p.page, "pageSize": p.page_size});
    if p.total_pages {
        pager["total"] = json!(total);
        pager["pageCount"] = json!(total.div_ceil(p.page_size));
    }
    json!({"pager": pager, key: items})
}

async fn tracked_entities(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&shared, &headers).await {
        return r;
    }
    let p = match params(&q, &shared.mapping) {
        Ok(p) => p,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let Ok(mut i) = shared.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    i.stats.pages += 1;
    let hits = i
        .data
        .tracked_entities
        .iter()
        .filter(|(t, at)| {
            t.enrollments.iter().any(|e| e.program == p.program)
                && within(&p.org_unit, t.org_unit.as_deref())
                && p.updated_after.is_none_or(|after| *at >= after)
        })
        .map(|(t, at)| (*at, t.tracked_entity.clone(), in_program(t, &p.program)))
        .collect();
    Json(paged(hits, &p, "trackedEntities")).into_response()
}

/// A tracked entity with only its enrolments in `program`.
fn in_program(t: &TrackedEntity, program: &str) -> TrackedEntity {
    let mut t = t.clone();
    t.enrollments.retain(|e| e.program == program);
    t
}

async fn tracked_entity(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    UrlPath(uid): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&shared, &headers).await {
        return r;
    }
    let Ok(i) = shared.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    match i
        .data
        .tracked_entities
        .iter()
        .find(|(t, _)| t.tracked_entity == uid)
    {
        Some((t, _)) => match q.get("program") {
            Some(p) => Json(in_program(t, p)).into_response(),
            None => Json(t.clone()).into_response(),
        },
        None => error(
            StatusCode::NOT_FOUND,
            format!("TrackedEntity with id {uid} could not be found."),
        ),
    }
}

async fn events(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&shared, &headers).await {
        return r;
    }
    let p = match params(&q, &shared.mapping) {
        Ok(p) => p,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let Ok(mut i) = shared.inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    i.stats.pages += 1;
    let hits = i
        .data
        .events
        .iter()
        .filter(|(e, at)| {
            e.program == p.program
                && within(&p.org_unit, e.org_unit.as_deref())
                && p.updated_after.is_none_or(|after| *at >= after)
        })
        .map(|(e, at)| (*at, e.event.clone(), e.clone()))
        .collect();
    Json(paged(hits, &p, "events")).into_response()
}

/// The children under six of a registry export (`members.csv` beside its `households.csv`, as
/// `inkingi generate` or `inkingi export` writes them), with their mothers, each at the mapped
/// organisation unit covering the household's village (else the first mapped unit).
pub fn load_children(
    members: &Path,
    mapping: &Mapping,
    today: NaiveDate,
) -> Result<Vec<SimChild>, String> {
    let households = members.with_file_name("households.csv");
    let villages = read_csv(&households)?
        .into_iter()
        .filter_map(|r| {
            Some((
                r.get("household_key")?.clone(),
                r.get("village_code")?.clone(),
            ))
        })
        .collect::<HashMap<_, _>>();
    let rows = read_csv(members)?;
    let by_key: HashMap<&str, &HashMap<String, String>> = rows
        .iter()
        .filter_map(|r| Some((r.get("member_key")?.as_str(), r)))
        .collect();
    let field = |r: &HashMap<String, String>, k: &str| {
        r.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let Some(birth) =
            field(r, "birth_date").and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok())
        else {
            continue;
        };
        if birth > today || (today - birth).num_days() >= 6 * 365 {
            continue;
        }
        let village = field(r, "household_key").and_then(|h| villages.get(&h).cloned());
        let org_unit = org_unit_for(mapping, village.as_deref()).ok_or_else(|| {
            format!(
                "{}: the mapping has no organisation units",
                members.display()
            )
        })?;
        let mother = field(r, "mother_key")
            .and_then(|k| by_key.get(k.as_str()).copied())
            .map(|m| SimMother {
                given_name: field(m, "given_name").unwrap_or_default(),
                family_name: field(m, "family_name").unwrap_or_default(),
                national_id: field(m, "national_id"),
                phone: field(m, "phones").and_then(|p| p.split(';').next().map(str::to_string)),
            });
        let sex = match field(r, "sex").as_deref() {
            Some("F") => "F",
            Some("M") => "M",
            other => {
                return Err(format!(
                    "{}: row {}, column sex: '{}' is not F or M",
                    members.display(),
                    i + 2,
                    other.unwrap_or("")
                ))
            }
        };
        out.push(SimChild {
            given_name: field(r, "given_name").unwrap_or_default(),
            family_name: field(r, "family_name").unwrap_or_default(),
            sex: sex.into(),
            birth_date: birth,
            birth_registration: field(r, "birth_registration"),
            org_unit,
            mother,
        });
    }
    Ok(out)
}

fn org_unit_for(mapping: &Mapping, village: Option<&str>) -> Option<String> {
    let covering = village.and_then(|v| {
        mapping
            .org_units
            .iter()
            .filter(|(_, code)| v.starts_with(code.as_str()))
            .max_by_key(|(_, code)| code.len())
            .map(|(ou, _)| ou.clone())
    });
    covering.or_else(|| mapping.org_units.keys().next().cloned())
}

fn read_csv(path: &Path) -> Result<Vec<HashMap<String, String>>, String> {
    let mut r = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| format!("{}: header: {e}", path.display()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}: row {}: {e}", path.display(), i + 2))?;
        out.push(
            headers
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn child(name: &str, born: NaiveDate) -> SimChild {
        SimChild {
            given_name: name.into(),
            family_name: "Uwase".into(),
            sex: "F".into(),
            birth_date: born,
            birth_registration: None,
            org_unit: "OuKigali01a".into(),
            mother: Some(SimMother {
                given_name: "Aline".into(),
                family_name: "Mukamana".into(),
                national_id: Some("1199070000000101".into()),
                phone: None,
            }),
        }
    }

    #[test]
    fn records_follow_the_seed_and_the_age() {
        let m = Mapping::embedded().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let infant = child("Keza", NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        let d = generate(&m, std::slice::from_ref(&infant), today, 7, 0.0).unwrap();
        // The child and its mother; birth, 3 immunisation visits (6, 10, 14 weeks), 5 growth
        // visits (1–5 months), 4 ANC and 2 PNC visits.
        assert_eq!(d.tracked_entities.len(), 2);
        let stage = |s: &str| d.events.iter().filter(|e| e.0.program_stage == s).count();
        assert_eq!(stage("StBirth01aB"), 1);
        assert_eq!(stage("StImmun01aC"), 3);
        assert_eq!(stage("StGrowth1aD"), 5);
        assert_eq!(stage("StAncVis1aE"), 4);
        assert_eq!(stage("StPncVis1aF"), 2);
        let again = generate(&m, &[infant], today, 7, 0.0).unwrap();
        assert_eq!(again.events.len(), d.events.len());
        assert_eq!(again.events[3].0.event, d.events[3].0.event);
        // Times never go back.
        assert!(d.events.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn pages_are_sorted_and_cut() {
        let t = |ms: i64| {
            NaiveDate::from_ymd_opt(2026, 1, 1)
                .unwrap()
                .and_time(chrono::NaiveTime::MIN)
                + chrono::Duration::milliseconds(ms)
        };
        let hits = vec![
            (t(2), "b".to_string(), 2),
            (t(1), "z".into(), 1),
            (t(2), "a".into(), 3),
        ];
        let p = Params {
            program: "x".into(),
            org_unit: None,
            updated_after: None,
            page: 1,
            page_size: 2,
            total_pages: true,
        };
        let v = paged(hits, &p, "events");
        assert_eq!(v["events"], json!([1, 3]));
        assert_eq!(v["pager"]["pageCount"], 2);
    }
}
