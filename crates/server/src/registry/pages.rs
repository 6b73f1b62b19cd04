//! The registry's web pages: search, a household's page (members, answers, history, open
//! change requests, and the household as of a date), and the forms that register a household
//! and edit its own fields. They call the same validation and store functions as the API, so a
//! page and an API client see the same rules and field errors.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use inkingi_domain::identity::{Permission, Purpose};
use inkingi_domain::registry::change::ChangeStatus;
use inkingi_domain::registry::form::{FormSchema, Question, QuestionKind};
use inkingi_domain::registry::history::{HouseholdDoc, RegistryEvent};
use inkingi_domain::registry::Household;
use inkingi_store::changes::ChangeQuery;
use inkingi_store::registry::household_doc;
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::households::{self, HouseholdView, HOUSEHOLD_FIELDS};
use super::people::{self, SearchParams};
use super::{current_form, not_visible};
use crate::audit::record_read;
use crate::auth::{PagePrincipal, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::web::page::{not_found, render, Chrome, PageCtx, Section};
use crate::AppState;

pub mod edit;

/// Why a page reads personal data when the user declared nothing else.
pub(super) fn page_purpose(state: &AppState, principal: &Principal) -> ApiResult<Purpose> {
    principal.require(Permission::ReadPersonalData)?;
    principal.purpose_or(Purpose::Registration, &state.auth.settings.purposes)
}

/// A JSON value as page text: strings bare, lists joined, nothing for null.
pub(super) fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| text(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// A question's label in the page's language, else English, else its key.
pub(super) fn label(q: &Question, lang: &str) -> String {
    q.label
        .get(lang)
        .or_else(|| q.label.get("en"))
        .cloned()
        .unwrap_or_else(|| q.key.clone())
}

// --- search ---------------------------------------------------------------------------------

struct HitRow {
    name: String,
    sex: String,
    birth: String,
    role: String,
    household_id: String,
    household_number: String,
    village: String,
}

#[derive(Template)]
#[template(path = "registry/search.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    searched: bool,
    error: Option<String>,
    may_write: bool,
    rows: Vec<HitRow>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchForm {
    q: Option<String>,
    lang: Option<String>,
}

/// Search people by name, registry number, national ID or phone: one box, ranked results.
#[utoipa::path(get, path = "/registry", operation_id = "registry_search_page", tag = "registry",
    responses((status = 200, description = "The search page (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn search_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Query(f): Query<SearchForm>,
) -> ApiResult<Response> {
    let purpose = page_purpose(&state, &principal)?;
    let _ = f.lang;
    let q = f.q.unwrap_or_default().trim().to_string();
    let mut page = SearchPage {
        chrome: ctx.chrome(Section::Registry, &ctx.t().reg_search_title),
        q: q.clone(),
        searched: !q.is_empty(),
        error: None,
        may_write: principal.require(Permission::WritePersonalData).is_ok(),
        rows: Vec::new(),
    };
    if !q.is_empty() {
        let params = SearchParams {
            q: Some(q),
            ..Default::default()
        };
        match people::to_search(&params) {
            Ok(s) => {
                let hits = people::search_for(&state, &principal, &s, purpose).await?;
                page.rows = hit_rows(&state, &principal, hits).await?;
            }
            Err(e) => page.error = Some(e.detail),
        }
    }
    Ok(render(&ctx, StatusCode::OK, &page))
}

async fn hit_rows(
    state: &AppState,
    principal: &Principal,
    hits: Vec<inkingi_store::registry::PersonHit>,
) -> ApiResult<Vec<HitRow>> {
    let mut numbers: HashMap<Uuid, String> = HashMap::new();
    for id in hits.iter().filter_map(|h| h.record.person.household_id) {
        if numbers.contains_key(&id) {
            continue;
        }
        if let Some(h) = state
            .store
            .registry()
            .household(&principal.scope, id)
            .await?
        {
            numbers.insert(id, h.registry_number.to_string());
        }
    }
    Ok(hits
        .into_iter()
        .map(|h| {
            let p = &h.record.person;
            let hh = p.household_id;
            HitRow {
                name: format!("{} {}", p.data.given_name, p.data.family_name),
                sex: p.data.sex.to_string(),
                birth: p
                    .data
                    .birth_date
                    .as_ref()
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                role: h.record.role.map(|r| r.to_string()).unwrap_or_default(),
                household_id: hh.map(|i| i.to_string()).unwrap_or_default(),
                household_number: hh
                    .and_then(|i| numbers.get(&i).cloned())
                    .unwrap_or_default(),
                village: p
                    .village
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            }
        })
        .collect())
}

// --- the household page ---------------------------------------------------------------------

struct MemberRow {
    id: String,
    name: String,
    role: String,
    sex: String,
    birth: String,
    national_id: String,
    phones: String,
    /// The mother's id and name, when she is recorded.
    mother: Option<(String, String)>,
    /// The latest check against the national ID registry: status and when.
    id_check: String,
}

struct FieldChange {
    field: String,
    before: String,
    after: String,
}

struct EventRow {
    when: String,
    who: String,
    channel: String,
    kind: String,
    reason: String,
    changes: Vec<FieldChange>,
}

struct OpenChange {
    kind: String,
    by: String,
    created: String,
}

#[derive(Template)]
#[template(path = "registry/household.html")]
struct HouseholdPage {
    chrome: Chrome,
    id: String,
    number: String,
    village: String,
    village_names: String,
    address: String,
    status: String,
    as_of: String,
    /// The page shows an earlier state: no edit link.
    past: bool,
    may_write: bool,
    members: Vec<MemberRow>,
    answers: Vec<(String, String)>,
    events: Vec<EventRow>,
    open_changes: Vec<OpenChange>,
    csrf: String,
    /// A check against the national ID registry was just queued.
    verify_queued: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HouseholdParams {
    as_of: Option<String>,
    lang: Option<String>,
    /// `queued` after the "verify now" button.
    verify: Option<String>,
}

/// The household's village with the names of the areas it lies in ("Kigali › … › Village").
pub(super) async fn area_names(state: &AppState, h: &Household) -> ApiResult<String> {
    let mut codes = h.village.ancestors();
    codes.push(h.village.clone());
    let areas = state.store.areas().get_areas(&codes).await?;
    Ok(areas
        .into_iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(" › "))
}

fn member_rows(doc: &HouseholdDoc) -> Vec<MemberRow> {
    let name = |m: &Map<String, Value>| {
        format!(
            "{} {}",
            text(m.get("given_name")),
            text(m.get("family_name"))
        )
    };
    let mut rows: Vec<(bool, MemberRow)> = doc
        .members
        .iter()
        .map(|(id, m)| {
            let mother = m
                .get("mother_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Uuid>().ok())
                .map(|mid| {
                    let shown = doc
                        .members
                        .get(&mid)
                        .map(name)
                        .unwrap_or_else(|| mid.to_string());
                    (mid.to_string(), shown)
                });
            let role = text(m.get("role"));
            let row = MemberRow {
                id: id.to_string(),
                name: name(m),
                sex: text(m.get("sex")),
                birth: text(m.get("birth_date")),
                national_id: text(m.get("national_id")),
                phones: text(m.get("phones")),
                mother,
                role: role.clone(),
                id_check: String::new(),
            };
            (role != "head", row)
        })
        .collect();
    // Head first, like the API's member list.
    rows.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.birth.cmp(&b.1.birth)));
    rows.into_iter().map(|(_, r)| r).collect()
}

fn answer_rows(
    form: &FormSchema,
    answers: &Map<String, Value>,
    lang: &str,
) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = form
        .household
        .iter()
        .filter_map(|q| answers.get(&q.key).map(|v| (label(q, lang), text(Some(v)))))
        .collect();
    // Answers to questions the current form no longer asks are still shown, by key.
    for (k, v) in answers {
        if !form.household.iter().any(|q| &q.key == k) {
            rows.push((k.clone(), text(Some(v))));
        }
    }
    rows
}

/// The fields an event changed, each with its value before and after.
fn changes_of(e: &RegistryEvent) -> Vec<FieldChange> {
    let empty = Map::new();
    let before = e.before.as_ref().unwrap_or(&empty);
    let after = e.after.as_ref().unwrap_or(&empty);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            before: text(before.get(k)),
            after: text(after.get(k)),
        })
        .collect()
}

fn event_rows(events: &[RegistryEvent]) -> Vec<EventRow> {
    events
        .iter()
        .rev()
        .map(|e| EventRow {
            when: e.at.format("%Y-%m-%d %H:%M").to_string(),
            who: e.actor.clone(),
            channel: e.channel.to_string(),
            kind: e.kind.clone(),
            reason: e.reason.clone().unwrap_or_default(),
            changes: changes_of(e),
        })
        .collect()
}

async fn open_changes(
    state: &AppState,
    principal: &Principal,
    h: &Household,
) -> ApiResult<Vec<OpenChange>> {
    let q = ChangeQuery {
        status: Some(ChangeStatus::Submitted),
        area: Some(h.village.as_str().to_string()),
        limit: 200,
        ..Default::default()
    };
    let found = state
        .store
        .changes()
        .list_changes(&principal.scope, &q)
        .await?;
    Ok(found
        .into_iter()
        .filter(|cr| cr.change.touches().contains(&h.id))
        .map(|cr| OpenChange {
            kind: cr.change.name().to_string(),
            by: cr.submitted_by.clone(),
            created: cr.created_at.format("%Y-%m-%d %H:%M").to_string(),
        })
        .collect())
}

fn parse_day(raw: Option<&str>) -> ApiResult<Option<NaiveDate>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                ApiError::invalid_field("as_of", format!("'{s}': expected a date YYYY-MM-DD"))
            }),
    }
}

/// A household's page; `?as_of=YYYY-MM-DD` shows it as it was at the end of that day.
#[utoipa::path(get, path = "/registry/households/{id}", operation_id = "registry_household_page", tag = "registry",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The household (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page"),
        (status = 404, description = "No such household in your area scope")))]
pub async fn household_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(id): Path<Uuid>,
    Query(params): Query<HouseholdParams>,
) -> ApiResult<Response> {
    let purpose = page_purpose(&state, &principal)?;
    let _ = params.lang;
    let day = match parse_day(params.as_of.as_deref()) {
        Ok(d) => d,
        Err(e) => return Ok(crate::web::page::bad_request(&ctx, &e)),
    };
    let Some(h) = state
        .store
        .registry()
        .household(&principal.scope, id)
        .await?
    else {
        // Audits the refusal when it exists elsewhere; the browser gets the 404 page.
        let _ = not_visible(&state, &principal, "household", id).await;
        return Ok(not_found(&ctx));
    };
    let members = state.store.registry().members(&principal.scope, id).await?;
    record_read(
        &state,
        &principal,
        purpose,
        ("household", &id.to_string()),
        Some(h.village.clone()),
        HOUSEHOLD_FIELDS,
    )
    .await?;
    let doc = match day {
        None => household_doc(&h, &members),
        Some(d) => {
            let view = HouseholdView {
                household: h.clone(),
                members,
            };
            match households::as_of(&state, &principal, &view, d).await? {
                Some(doc) => doc,
                None => return Ok(not_found(&ctx)),
            }
        }
    };
    let events = state
        .store
        .registry()
        .events(&principal.scope, id, None)
        .await?;
    let form = current_form(&state).await?;
    let lang = ctx.lang().code();
    let empty = Map::new();
    let answers = doc
        .household
        .get("answers")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let title = format!("{} {}", ctx.t().reg_household_title, h.registry_number);
    let page = HouseholdPage {
        chrome: ctx.chrome(Section::Registry, &title),
        id: id.to_string(),
        number: h.registry_number.to_string(),
        village: text(doc.household.get("village")),
        village_names: area_names(&state, &h).await?,
        address: text(doc.household.get("address")),
        status: text(doc.household.get("status")),
        as_of: day.map(|d| d.to_string()).unwrap_or_default(),
        past: day.is_some(),
        may_write: principal.require(Permission::WritePersonalData).is_ok(),
        members: with_id_checks(&state, &principal, purpose, &h, member_rows(&doc)).await?,
        answers: answer_rows(&form, answers, lang),
        events: event_rows(&events),
        open_changes: open_changes(&state, &principal, &h).await?,
        csrf: principal.csrf_token().to_string(),
        verify_queued: params.verify.as_deref() == Some("queued"),
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}

/// Fills each member's latest check against the national ID registry (one audited read of
/// the household's checks when any is shown).
async fn with_id_checks(
    state: &AppState,
    principal: &PagePrincipal,
    purpose: Purpose,
    h: &Household,
    mut rows: Vec<MemberRow>,
) -> ApiResult<Vec<MemberRow>> {
    let mut shown = false;
    for r in &mut rows {
        let Ok(pid) = r.id.parse::<Uuid>() else {
            continue;
        };
        let checks = state
            .store
            .id_checks()
            .for_person(&principal.scope, pid)
            .await?;
        if let Some(c) = checks.first() {
            r.id_check = format!(
                "{} · {}",
                c.status.as_str(),
                c.checked_at.format("%Y-%m-%d %H:%M")
            );
            shown = true;
        }
    }
    if shown {
        record_read(
            state,
            principal,
            purpose,
            ("household", &h.id.to_string()),
            Some(h.village.clone()),
            &["id_checks"],
        )
        .await?;
    }
    Ok(rows)
}

/// The "verify now" button of a member: queues a check against the national ID registry
/// (as `POST /api/v1/individuals/{id}/id-checks` does) and goes back to the household.
#[utoipa::path(post, path = "/registry/people/{id}/id-checks", operation_id = "registry_verify_person_page", tag = "registry",
    params(("id" = Uuid, Path)),
    responses((status = 303, description = "Queued: back to the household's page"),
        (status = 404, description = "No such person in your area scope"),
        (status = 422, description = "The person has no national ID or has died")))]
pub async fn verify_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(id): Path<Uuid>,
    Form(raw): Form<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let csrf = raw
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    principal.check_csrf(csrf)?;
    let queued = match super::id_checks::queue_check(&state, &principal, id).await {
        Ok(q) => q,
        Err(e) if e.status == StatusCode::NOT_FOUND => return Ok(not_found(&ctx)),
        Err(e) => return Ok(crate::web::page::bad_request(&ctx, &e)),
    };
    let household = state
        .store
        .registry()
        .person(&principal.scope, queued.person_id)
        .await?
        .and_then(|p| p.person.household_id);
    Ok(match household {
        Some(h) => see_other(&format!("/registry/households/{h}?verify=queued#m-{id}")),
        None => see_other("/registry"),
    })
}

/// Answers of the household section as a form sends them: one value per key, several for a
/// multiple choice.
pub(super) fn answers_from_form(
    questions: &[Question],
    raw: &[(String, String)],
    prefix: &str,
) -> (Map<String, Value>, BTreeMap<String, Vec<String>>) {
    let mut sent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in raw {
        if let Some(key) = k.strip_prefix(prefix) {
            sent.entry(key.to_string()).or_default().push(v.clone());
        }
    }
    let mut answers = Map::new();
    for q in questions {
        let values = sent.get(&q.key).cloned().unwrap_or_default();
        let first = values
            .first()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let v = match &q.kind {
            QuestionKind::MultiChoice { .. } => {
                if values.is_empty() {
                    continue;
                }
                Value::Array(values.into_iter().map(Value::String).collect())
            }
            _ if first.is_empty() => continue,
            QuestionKind::Boolean => match first.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::String(first),
            },
            // A number that does not parse is passed on as text, so validation names it.
            QuestionKind::Integer { .. } => first
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(first)),
            QuestionKind::Decimal { .. } => first
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                .unwrap_or(Value::String(first)),
            _ => Value::String(first),
        };
        answers.insert(q.key.clone(), v);
    }
    (answers, sent)
}

/// One question as the form template draws it.
pub(super) struct QuestionField {
    /// The input's name: the prefix and key (`answers.rooms`, `head.answers.education`).
    pub name: String,
    /// The suffix of the input's element ids (`a-rooms`, `head-a-education`).
    pub dom: String,
    pub label: String,
    pub required: bool,
    /// `choice`, `multi_choice`, `boolean`, `integer`, `decimal`, `date` or `text`.
    pub kind: &'static str,
    pub choices: Vec<String>,
    /// Values to show (as sent, or as stored).
    pub values: Vec<String>,
    pub error: Option<String>,
}

impl QuestionField {
    pub fn has(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    pub fn value(&self) -> &str {
        self.values.first().map(String::as_str).unwrap_or_default()
    }
}

/// The household questions with their values and field errors (`answers.<key>`).
pub(super) fn question_fields(
    questions: &[Question],
    lang: &str,
    values: &BTreeMap<String, Vec<String>>,
    errors: &BTreeMap<String, String>,
    prefix: &str,
) -> Vec<QuestionField> {
    let dom_prefix = prefix.replace("answers.", "a-").replace('.', "-");
    questions
        .iter()
        .map(|q| {
            let (kind, choices) = match &q.kind {
                QuestionKind::Choice { choices } => ("choice", choices.clone()),
                QuestionKind::MultiChoice { choices } => ("multi_choice", choices.clone()),
                QuestionKind::Boolean => ("boolean", Vec::new()),
                QuestionKind::Integer { .. } => ("integer", Vec::new()),
                QuestionKind::Decimal { .. } => ("decimal", Vec::new()),
                QuestionKind::Date => ("date", Vec::new()),
                QuestionKind::Text { .. } => ("text", Vec::new()),
            };
            QuestionField {
                name: format!("{prefix}{}", q.key),
                dom: format!("{dom_prefix}{}", q.key),
                label: label(q, lang),
                required: q.required,
                kind,
                choices,
                values: values.get(&q.key).cloned().unwrap_or_default(),
                error: errors.get(&format!("{prefix}{}", q.key)).cloned(),
            }
        })
        .collect()
}

/// Stored answers as the form's values.
pub(super) fn answer_values(answers: &Map<String, Value>) -> BTreeMap<String, Vec<String>> {
    answers
        .iter()
        .map(|(k, v)| {
            let vs = match v {
                Value::Array(items) => items.iter().map(|i| text(Some(i))).collect(),
                other => vec![text(Some(other))],
            };
            (k.clone(), vs)
        })
        .collect()
}

/// Field errors of a 422 by field path; any other error is passed on.
pub(super) fn field_errors(e: ApiError) -> ApiResult<BTreeMap<String, String>> {
    if e.status != StatusCode::UNPROCESSABLE_ENTITY && e.field.is_none() {
        return Err(e);
    }
    let mut out = BTreeMap::new();
    for fe in &e.errors {
        out.entry(fe.field.clone())
            .and_modify(|r: &mut String| {
                r.push_str("; ");
                r.push_str(&fe.reason);
            })
            .or_insert_with(|| fe.reason.clone());
    }
    if out.is_empty() {
        out.insert(
            e.field.clone().unwrap_or_else(|| "form".into()),
            e.detail.clone(),
        );
    }
    Ok(out)
}

pub(super) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
