//! Services due to a child or a mother, from the schedules and the facts received, and the
//! worklist of who is overdue for what, per village.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{Months, NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::children::schedule::{
    evaluate, Anchor, Fact, FactKind, ScheduleError, Schedules, ServiceStatus, Status,
};
use inkingi_domain::identity::{Permission, Purpose};
use inkingi_domain::registry::BirthDate;
use inkingi_store::children::{PersonFacts, Pregnancy};
use inkingi_store::registry::PersonRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::audit::record_read;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::registry::not_visible;
use crate::AppState;

/// Children (under six) a worklist covers at most; a larger area answers with the first ones
/// and says it was truncated.
pub const WORKLIST_MAX_CHILDREN: u32 = 5000;
/// A pregnancy is followed until two weeks past its expected delivery date.
const PREGNANCY_GRACE_DAYS: u64 = 14;

pub(crate) fn schedules() -> ApiResult<&'static Schedules> {
    Schedules::embedded().map_err(|e: ScheduleError| ApiError::internal(e))
}

/// Who the schedules look at: a birth date, and whether the registry holds the person's birth
/// registration number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    pub birth_date: Option<BirthDate>,
    pub birth_registered: bool,
}

impl Subject {
    pub fn of(person: &PersonRecord) -> Subject {
        Subject {
            birth_date: person.person.data.birth_date,
            birth_registered: person.person.data.birth_registration.is_some(),
        }
    }
}

/// The facts of a person as the schedules see them.
fn facts(who: &Subject, f: &PersonFacts) -> Vec<Fact> {
    let mut out: Vec<Fact> = Vec::new();
    let fact = |kind, vaccine, dose, date| Fact {
        kind,
        vaccine,
        dose,
        date,
    };
    for i in &f.immunizations {
        out.push(fact(
            FactKind::Immunization,
            i.vaccine.clone(),
            i.dose_number,
            i.occurred_on,
        ));
    }
    for m in &f.measurements {
        out.push(fact(FactKind::Measurement, None, None, m.measured_on));
    }
    for e in &f.encounters {
        let kind = match e.kind.as_str() {
            "anc" => FactKind::AncContact,
            "pnc" => FactKind::PncContact,
            _ => continue,
        };
        out.push(fact(kind, None, None, e.occurred_on));
    }
    // A registry birth registration number means the birth is registered (the date it was
    // done is not known; it counts from birth).
    if let (true, Some(b)) = (who.birth_registered, who.birth_date) {
        out.push(fact(FactKind::BirthRegistration, None, None, b.earliest()));
    }
    out
}

/// Everything due to `person` on `today`: a child's schedules until the sixth birthday; a
/// mother's antenatal contacts for an ongoing pregnancy and postnatal visits after each recent
/// birth (her children in the registry).
pub fn services_due(
    person: &PersonRecord,
    f: &PersonFacts,
    children: &[PersonRecord],
    today: NaiveDate,
) -> ApiResult<Vec<ServiceStatus>> {
    let births: Vec<BirthDate> = children
        .iter()
        .filter_map(|c| c.person.data.birth_date)
        .collect();
    services_of(&Subject::of(person), f, &births, today)
}

/// [`services_due`] from what it needs only: the subject, its facts and the birth dates of its
/// registry children.
pub fn services_of(
    who: &Subject,
    f: &PersonFacts,
    children: &[BirthDate],
    today: NaiveDate,
) -> ApiResult<Vec<ServiceStatus>> {
    let all = schedules()?;
    let facts = facts(who, f);
    let mut out = Vec::new();
    if let Some(birth) = who.birth_date.map(|b| b.midpoint()) {
        let sixth = birth.checked_add_months(Months::new(72));
        if sixth.is_some_and(|s| today < s) {
            for s in all.for_anchor(Anchor::Birth) {
                out.extend(evaluate(s, birth, &facts, today, sixth));
            }
        }
    }
    for p in ongoing(&f.pregnancies, children, today) {
        if let Some(lmp) = p.lmp {
            for s in all.for_anchor(Anchor::Lmp) {
                out.extend(evaluate(s, lmp, &facts, today, p.outcome_on));
            }
        }
    }
    for b in children {
        if b.precision() != inkingi_domain::registry::DatePrecision::Exact {
            continue;
        }
        let born = b.earliest();
        // Postnatal care lasts ten weeks at most.
        if (today - born).num_days() <= 70 && born <= today {
            let after: Vec<Fact> = facts.iter().filter(|x| x.date >= born).cloned().collect();
            for s in all.for_anchor(Anchor::Delivery) {
                out.extend(evaluate(s, born, &after, today, None));
            }
        }
    }
    Ok(out)
}

/// Pregnancies still followed: no outcome, not past the expected delivery plus two weeks, and
/// no child born to the mother since the last menstrual period. Several records of one
/// pregnancy (an LMP and an EDD observation) count once.
fn ongoing<'a>(
    ps: &'a [Pregnancy],
    children: &[BirthDate],
    today: NaiveDate,
) -> Vec<&'a Pregnancy> {
    let mut out: Vec<&Pregnancy> = Vec::new();
    for p in ps {
        let (Some(lmp), Some(edd)) = (p.lmp, p.edd) else {
            continue;
        };
        let ended = p.outcome.is_some()
            || edd
                .checked_add_days(chrono::Days::new(PREGNANCY_GRACE_DAYS))
                .is_some_and(|e| e < today)
            || children.iter().any(|b| b.earliest() > lmp);
        let same = out
            .iter()
            .any(|o| o.lmp.is_some_and(|l| (l - lmp).num_days().abs() < 56));
        if !ended && !same {
            out.push(p);
        }
    }
    out
}

/// The services of one person.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServicesView {
    pub person_id: Uuid,
    pub as_of: NaiveDate,
    /// Statuses computed from provisional schedules say so (`provisional`).
    #[schema(value_type = Vec<Object>)]
    pub services: Vec<ServiceStatus>,
}

/// The reader of health data, with the purpose declared (healthcare when none).
pub fn health_reader(state: &AppState, principal: &Principal) -> ApiResult<Purpose> {
    principal.require(Permission::ReadHealthData)?;
    principal.purpose_or(Purpose::Healthcare, &state.auth.settings.purposes)
}

/// The registry children of `mother` in her household.
pub async fn children_of(
    state: &AppState,
    principal: &Principal,
    mother: &PersonRecord,
) -> ApiResult<Vec<PersonRecord>> {
    let Some(h) = mother.person.household_id else {
        return Ok(Vec::new());
    };
    let members = state.store.registry().members(&principal.scope, h).await?;
    Ok(members
        .into_iter()
        .filter(|m| m.mother_id == Some(mother.person.id))
        .collect())
}

/// Services due to a child (or mother), with their windows and statuses.
#[utoipa::path(get, path = "/api/v1/children/{person_id}/services", tag = "children", operation_id = "children_services",
    params(("person_id" = Uuid, Path), ("X-Purpose-Of-Use" = Option<String>, Header, description = "Why health data is read (default healthcare)")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Services with status due / overdue / missed / completed / upcoming", body = ServicesView),
        (status = 404, description = "No such person in your area scope")))]
pub async fn services(
    State(state): State<AppState>,
    principal: Principal,
    Path(person_id): Path<Uuid>,
) -> ApiResult<Json<ServicesView>> {
    let purpose = health_reader(&state, &principal)?;
    let Some(person) = state
        .store
        .registry()
        .person(&principal.scope, person_id)
        .await?
    else {
        return Err(not_visible(&state, &principal, "person", person_id).await);
    };
    let f = state
        .store
        .children()
        .facts_of_people(&principal.scope, &[person_id])
        .await?
        .pop()
        .map(|(_, f)| f)
        .unwrap_or_default();
    let kids = children_of(&state, &principal, &person).await?;
    let today = Utc::now().date_naive();
    let services = services_due(&person, &f, &kids, today)?;
    record_read(
        &state,
        &principal,
        purpose,
        ("person", &person_id.to_string()),
        person.person.village.clone(),
        &["services_due"],
    )
    .await?;
    Ok(Json(ServicesView {
        person_id,
        as_of: today,
        services,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WorklistParams {
    /// An area code (district, sector, cell or village) inside your scope.
    pub area: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueItem {
    pub service: String,
    pub name: String,
    pub occurrence: u32,
    pub due_by: NaiveDate,
    /// Missed after this day; none: never.
    pub closes: Option<NaiveDate>,
    pub provisional: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueChild {
    pub person_id: Uuid,
    pub name: String,
    pub birth_date: Option<String>,
    pub household_id: Option<Uuid>,
    pub overdue: Vec<OverdueItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VillageList {
    pub village: String,
    pub children: Vec<OverdueChild>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Worklist {
    pub area: String,
    pub as_of: NaiveDate,
    /// Children under six examined.
    pub children_checked: usize,
    /// More children live in the area than one worklist covers.
    pub truncated: bool,
    pub villages: Vec<VillageList>,
}

/// Who is overdue for what, per village: children under six of an area.
#[utoipa::path(get, path = "/api/v1/worklists/overdue", tag = "children", operation_id = "worklist_overdue",
    params(WorklistParams, ("X-Purpose-Of-Use" = Option<String>, Header, description = "Why health data is read (default healthcare)")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Overdue services per village", body = Worklist),
        (status = 400, description = "Malformed area code"),
        (status = 403, description = "The area is outside your scope")))]
pub async fn overdue(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<WorklistParams>,
) -> ApiResult<Json<Worklist>> {
    let purpose = health_reader(&state, &principal)?;
    let area =
        AreaCode::parse(&q.area).map_err(|e| ApiError::invalid_field("area", e.to_string()))?;
    if !principal.scope.contains(&area) {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            format!("area {area} is outside your scope"),
        ));
    }
    let today = Utc::now().date_naive();
    let list = worklist(&state, &principal, &area, today).await?;
    let mut rec = principal.audit_record("worklist.read", "area");
    rec.subject_id = Some(area.as_str().to_string());
    rec.area = Some(area.clone());
    rec.purpose = Some(purpose.to_string());
    rec.fields = vec![
        format!("children:{}", list.children_checked),
        "services_overdue".into(),
    ];
    state.audit.append(vec![rec]).await?;
    Ok(Json(list))
}

/// Who is overdue in `area` on `today`, from the materialised statuses (`children.services`
/// jobs and `inkingi children recompute` keep them): the stored windows are judged for today by
/// the evaluator's own rule, so a row evaluated days ago still says the right thing.
pub async fn worklist(
    state: &AppState,
    principal: &Principal,
    area: &AreaCode,
    today: NaiveDate,
) -> ApiResult<Worklist> {
    let all = schedules()?;
    let store = state.store.child_status();
    let (rows, truncated) = store
        .open_past_due(
            &principal.scope,
            area.as_str(),
            today,
            WORKLIST_MAX_CHILDREN,
        )
        .await?;
    let checked = store.children_in(&principal.scope, area.as_str()).await?;
    let mut villages: BTreeMap<String, Vec<OverdueChild>> = BTreeMap::new();
    for r in rows {
        let s = &r.row;
        if Status::on(&s.window, s.completed_on, today) != Status::Overdue {
            continue;
        }
        let (name, provisional) = all
            .schedules
            .iter()
            .find(|x| x.id == s.schedule)
            .map(|x| {
                let name = x.services.iter().find(|v| v.code == s.service);
                (name.map(|v| v.name.clone()), x.provisional)
            })
            .unwrap_or((None, true));
        let item = OverdueItem {
            service: s.service.clone(),
            name: name.unwrap_or_else(|| s.service.clone()),
            occurrence: s.occurrence,
            due_by: s.window.due_by,
            closes: s.window.closes,
            provisional,
        };
        let list = villages
            .entry(s.village_code.clone().unwrap_or_default())
            .or_default();
        match list.last_mut() {
            Some(c) if c.person_id == s.person_id => c.overdue.push(item),
            _ => list.push(OverdueChild {
                person_id: s.person_id,
                name: format!("{} {}", r.given_name, r.family_name),
                birth_date: r.birth_date.clone(),
                household_id: r.household_id,
                overdue: vec![item],
            }),
        }
    }
    Ok(Worklist {
        area: area.as_str().to_string(),
        as_of: today,
        children_checked: usize::try_from(checked).unwrap_or(usize::MAX),
        truncated,
        villages: villages
            .into_iter()
            .map(|(village, children)| VillageList { village, children })
            .collect(),
    })
}
