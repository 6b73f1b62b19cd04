//! Services due to a child or a mother, from the schedules and the facts received, and the
//! worklist of who is overdue for what, per village.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{Months, NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::children::schedule::{
    evaluate, Anchor, Fact, FactKind, ScheduleError, Schedules, ServiceStatus, Status,
};
use inkingi_domain::identity::{AreaScope, Permission, Purpose};
use inkingi_domain::registry::BirthDate;
use inkingi_store::children::{ChildFacts, PersonFacts, PregnancyFact};
use inkingi_store::registry::PersonRecord;
use inkingi_store::Store;
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
fn facts(who: &Subject, f: &ChildFacts) -> Vec<Fact> {
    let mut out: Vec<Fact> = Vec::new();
    let fact = |kind, vaccine, dose, date| Fact {
        kind,
        vaccine,
        dose,
        date,
    };
    for i in &f.doses {
        out.push(fact(
            FactKind::Immunization,
            i.vaccine.clone(),
            i.dose,
            i.on,
        ));
    }
    for m in &f.measurements {
        out.push(fact(FactKind::Measurement, None, None, m.on));
    }
    // Pre-primary enrolments from school data.
    for on in &f.enrolled_on {
        out.push(fact(FactKind::PreprimaryEnrolment, None, None, *on));
    }
    for e in &f.contacts {
        let kind = match e.kind.as_str() {
            "anc" => FactKind::AncContact,
            "pnc" => FactKind::PncContact,
            _ => continue,
        };
        out.push(fact(kind, None, None, e.on));
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
    services_of(&Subject::of(person), &ChildFacts::from(f), &births, today)
}

/// [`services_due`] from what it needs only: the subject, its facts and the birth dates of its
/// registry children.
pub fn services_of(
    who: &Subject,
    f: &ChildFacts,
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
    ps: &'a [PregnancyFact],
    children: &[BirthDate],
    today: NaiveDate,
) -> Vec<&'a PregnancyFact> {
    let mut out: Vec<&PregnancyFact> = Vec::new();
    for p in ps {
        let (Some(lmp), Some(edd)) = (p.lmp, p.edd) else {
            continue;
        };
        let ended = p.ended
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

/// The registry person `person_id` if visible in the caller's scope; else 404, the refusal
/// audited.
pub async fn visible_person(
    state: &AppState,
    principal: &Principal,
    person_id: Uuid,
) -> ApiResult<PersonRecord> {
    match state
        .store
        .registry()
        .person(&principal.scope, person_id)
        .await?
    {
        Some(p) => Ok(p),
        None => Err(not_visible(state, principal, "person", person_id).await),
    }
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
    let person = visible_person(&state, &principal, person_id).await?;
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
    pub area: Option<String>,
    /// Instead of `area`: a community health worker's username; the worklist covers the
    /// areas of their scope, which must lie inside yours.
    pub chw: Option<String>,
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
    /// The community health worker whose areas it covers (`?chw=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chw: Option<String>,
}

/// Who is overdue for what, per village: children under six of an area, or of the areas of a
/// community health worker.
#[utoipa::path(get, path = "/api/v1/worklists/overdue", tag = "children", operation_id = "worklist_overdue",
    params(WorklistParams, ("X-Purpose-Of-Use" = Option<String>, Header, description = "Why health data is read (default healthcare)")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Overdue services per village", body = Worklist),
        (status = 400, description = "Malformed area code, unknown user, or both or neither of area and chw"),
        (status = 403, description = "The area (or the health worker's) is outside your scope")))]
pub async fn overdue(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<WorklistParams>,
) -> ApiResult<Json<Worklist>> {
    let purpose = health_reader(&state, &principal)?;
    let today = Utc::now().date_naive();
    let (list, subject) = match (&q.area, &q.chw) {
        (Some(area), None) => {
            let area = AreaCode::parse(area)
                .map_err(|e| ApiError::invalid_field("area", e.to_string()))?;
            if !principal.scope.contains(&area) {
                return Err(outside(&format!("area {area}")));
            }
            let list = worklist(&state.store, &principal.scope, &area, today).await?;
            (list, ("area", area.as_str().to_string(), Some(area)))
        }
        (None, Some(chw)) => {
            let list = chw_worklist(&state, &principal, chw, today).await?;
            (list, ("user", chw.clone(), None))
        }
        _ => {
            return Err(ApiError::invalid_field(
                "area",
                "give either area or chw (a community health worker's username)",
            ))
        }
    };
    let mut rec = principal.audit_record("worklist.read", subject.0);
    rec.subject_id = Some(subject.1);
    rec.area = subject.2;
    rec.purpose = Some(purpose.to_string());
    rec.fields = vec![
        format!("children:{}", list.children_checked),
        "services_overdue".into(),
    ];
    state.audit.append(vec![rec]).await?;
    Ok(Json(list))
}

fn outside(what: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "forbidden",
        format!("{what} is outside your scope"),
    )
}

/// The worklist of every area of a community health worker's scope, merged.
async fn chw_worklist(
    state: &AppState,
    principal: &Principal,
    chw: &str,
    today: NaiveDate,
) -> ApiResult<Worklist> {
    let unknown =
        || ApiError::invalid_field("chw", format!("'{chw}' is not a community health worker"));
    let name = inkingi_domain::identity::Username::parse(chw).map_err(|_| unknown())?;
    let user = state
        .store
        .identity()
        .user_by_name(&name)
        .await?
        .filter(|u| u.role == inkingi_domain::identity::Role::CommunityHealthWorker)
        .ok_or_else(unknown)?;
    if !principal.scope.covers(&user.scope) {
        return Err(outside(&format!("the area of {chw}")));
    }
    let mut out = Worklist {
        area: user.scope.to_stored(),
        as_of: today,
        children_checked: 0,
        truncated: false,
        villages: Vec::new(),
        chw: Some(chw.to_string()),
    };
    for area in user.scope.codes() {
        let part = worklist(&state.store, &user.scope, area, today).await?;
        out.children_checked += part.children_checked;
        out.truncated |= part.truncated;
        out.villages.extend(part.villages);
    }
    Ok(out)
}

/// Who is overdue in `area` on `today`, from the materialised statuses (`children.services`
/// jobs and `inkingi children recompute` keep them): the stored windows are judged for today by
/// the evaluator's own rule, so a row evaluated days ago still says the right thing.
pub async fn worklist(
    store: &Store,
    scope: &AreaScope,
    area: &AreaCode,
    today: NaiveDate,
) -> ApiResult<Worklist> {
    let all = schedules()?;
    let status = store.child_status();
    let (rows, truncated) = status
        .open_past_due(scope, area.as_str(), today, WORKLIST_MAX_CHILDREN)
        .await?;
    let checked = status.children_in(scope, area.as_str()).await?;
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
        chw: None,
    })
}
