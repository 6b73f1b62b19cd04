//! The child page: services due with their windows, growth charts, a timeline of every fact
//! received from every source with its provenance and z-scores, and the restricted sections
//! (child protection for roles that may declare that purpose; HIV exposure, whose value only
//! health workers see).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use inkingi_domain::children::growth::Sex;
use inkingi_domain::identity::Purpose;
use inkingi_store::children::{FeedFact, PersonFacts};
use uuid::Uuid;

use super::charts::{charts, Chart};
use super::feeds::protection_cases;
use super::sensitive::{self, HivExposureView};
use super::services::{children_of, health_reader, services_due};
use crate::audit::record_read;
use crate::auth::PagePrincipal;
use crate::error::ApiResult;
use crate::registry::not_visible;
use crate::web::page::{not_found, render, Chrome, PageCtx, Section};
use crate::AppState;

struct ServiceRow {
    code: String,
    name: String,
    window: String,
    status: &'static str,
    done: Option<String>,
}

struct TimelineRow {
    date: String,
    kind: String,
    detail: String,
    source: String,
}

#[derive(Template)]
#[template(path = "children/child.html")]
struct ChildPage {
    chrome: Chrome,
    name: String,
    birth: String,
    village: String,
    household: Option<Uuid>,
    provisional: bool,
    services: Vec<ServiceRow>,
    timeline: Vec<TimelineRow>,
    charts: Vec<Chart>,
    /// `None`: the reader may not see child-protection data (not even whether there is any).
    protection: Option<Vec<TimelineRow>>,
    hiv: HivExposureView,
}

fn src(p: &inkingi_store::children::Provenance) -> String {
    format!(
        "{} · {} · {}",
        p.source_system,
        p.source_id,
        p.received_at.format("%Y-%m-%d %H:%M")
    )
}

/// A feed fact's row: its details in clear (never a sealed value).
fn feed_row(f: &FeedFact) -> TimelineRow {
    let detail = |keys: &[&str]| {
        keys.iter()
            .filter_map(|k| f.details.get(*k).and_then(|v| v.as_str()))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let (kind, detail) = match f.kind {
        inkingi_store::children::FeedKind::PreprimaryEnrolment => (
            "pre-primary enrolment".to_string(),
            detail(&["school_name", "school_code", "school_year"]),
        ),
        _ => (
            detail(&["case_kind"]).replace('_', " "),
            format!(
                "case {}{}",
                detail(&["case_id"]),
                f.ended_on
                    .map(|d| format!(" · closed {d}"))
                    .unwrap_or_default()
            ),
        ),
    };
    TimelineRow {
        date: f.occurred_on.to_string(),
        kind,
        detail,
        source: src(&f.provenance),
    }
}

fn timeline(f: &PersonFacts) -> Vec<TimelineRow> {
    let mut rows: Vec<TimelineRow> = f.enrolments.iter().map(feed_row).collect();
    for i in &f.immunizations {
        let vaccine = i
            .vaccine
            .clone()
            .unwrap_or_else(|| format!("{} (unmapped code)", i.vaccine_code));
        let dose = i
            .dose_number
            .map(|d| format!(" dose {d}"))
            .unwrap_or_default();
        rows.push(TimelineRow {
            date: i.occurred_on.to_string(),
            kind: "immunization".into(),
            detail: format!("{vaccine}{dose}"),
            source: src(&i.provenance),
        });
    }
    for m in &f.measurements {
        let z: Vec<String> = m
            .zscores
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k} z = {v}"))
            .collect();
        rows.push(TimelineRow {
            date: m.measured_on.to_string(),
            kind: m.kind.as_str().replace('_', " "),
            detail: format!("{} {} {}", m.value, m.unit, z.join(", ")),
            source: src(&m.provenance),
        });
    }
    for e in &f.encounters {
        rows.push(TimelineRow {
            date: e.occurred_on.to_string(),
            kind: format!("{} contact", e.kind.to_uppercase()),
            detail: String::new(),
            source: src(&e.provenance),
        });
    }
    for p in &f.pregnancies {
        let detail = format!(
            "LMP {} · EDD {}",
            p.lmp.map(|d| d.to_string()).unwrap_or_default(),
            p.edd.map(|d| d.to_string()).unwrap_or_default()
        );
        rows.push(TimelineRow {
            date: p.provenance.received_at.date_naive().to_string(),
            kind: "pregnancy".into(),
            detail,
            source: src(&p.provenance),
        });
    }
    rows.sort_by(|a, b| b.date.cmp(&a.date));
    rows
}

/// A child's (or mother's) record page.
#[utoipa::path(get, path = "/children/{person_id}", operation_id = "child_page", tag = "children",
    params(("person_id" = Uuid, Path)),
    responses((status = 200, description = "The child page (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn child_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(person_id): Path<Uuid>,
) -> ApiResult<Response> {
    let purpose = health_reader(&state, &principal)?;
    let Some(person) = state
        .store
        .registry()
        .person(&principal.scope, person_id)
        .await?
    else {
        let _ = not_visible(&state, &principal, "person", person_id).await;
        return Ok(not_found(&ctx));
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
    let due = services_due(&person, &f, &kids, today)?;
    record_read(
        &state,
        &principal,
        purpose,
        ("person", &person_id.to_string()),
        person.person.village.clone(),
        &["child_record", "services_due"],
    )
    .await?;
    let protection = match protection_cases(&state, &principal, person_id).await? {
        Some(cases) => {
            record_read(
                &state,
                &principal,
                Purpose::ChildProtection,
                ("person", &person_id.to_string()),
                person.person.village.clone(),
                &["protection_cases"],
            )
            .await?;
            Some(cases.iter().map(feed_row).collect())
        }
        None => None,
    };
    let hiv = sensitive::view(&state, &principal, purpose, &person).await?;
    let d = &person.person.data;
    let sex = match d.sex.to_string().as_str() {
        "F" => Some(Sex::Female),
        "M" => Some(Sex::Male),
        _ => None,
    };
    let growth = match (sex, d.birth_date.map(|b| b.midpoint())) {
        // The standards end at five years; nothing to chart for older people.
        (Some(sex), Some(birth)) if (today - birth).num_days() <= 1856 => {
            charts(sex, birth, today, &f.measurements)
        }
        _ => Vec::new(),
    };
    let page = ChildPage {
        chrome: ctx.chrome(Section::Registry, &ctx.t().child_title),
        name: format!("{} {}", d.given_name, d.family_name),
        birth: d.birth_date.map(|b| b.to_string()).unwrap_or_default(),
        village: person
            .person
            .village
            .as_ref()
            .map(|v| v.as_str().to_string())
            .unwrap_or_default(),
        household: person.person.household_id,
        provisional: due.iter().any(|s| s.provisional),
        services: due
            .iter()
            .map(|s| ServiceRow {
                code: s.service.clone(),
                name: if s.occurrence > 1 {
                    format!("{} #{}", s.name, s.occurrence)
                } else {
                    s.name.clone()
                },
                window: format!(
                    "{} – {}{}",
                    s.window.opens,
                    s.window.due_by,
                    s.window
                        .closes
                        .map(|c| format!(" (≤ {c})"))
                        .unwrap_or_default()
                ),
                status: s.status.as_str(),
                done: s.completed_on.map(|d| d.to_string()),
            })
            .collect(),
        timeline: timeline(&f),
        charts: growth,
        protection,
        hiv,
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}
