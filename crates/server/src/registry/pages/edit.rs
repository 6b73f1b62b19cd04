//! The forms that register a household (with its head) and edit a household's own fields.
//! Bad input re-renders the form with each error next to its field and every value kept.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use inkingi_domain::identity::Permission;
use inkingi_domain::registry::form::FormSchema;
use inkingi_domain::registry::history::Channel;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    answer_values, answers_from_form, field_errors, question_fields, see_other, QuestionField,
};
use crate::auth::PagePrincipal;
use crate::error::{ApiError, ApiResult};
use crate::registry::households::{self, CreateHousehold};
use crate::registry::input::MemberFields;
use crate::registry::{current_form, event_meta, not_visible};
use crate::web::page::{not_found, render, Chrome, PageCtx, Section};
use crate::AppState;

/// The head's fields on the form, and the paths their errors come back under.
const HEAD: &[(&str, &str)] = &[
    ("given_name", "members[0].given_name"),
    ("family_name", "members[0].family_name"),
    ("sex", "members[0].sex"),
    ("birth_date", "members[0].birth_date"),
    ("national_id", "members[0].national_id"),
    ("phone", "members[0].phones[0]"),
];

/// Input-name prefixes of the household's answers and of the head's member answers.
const ANSWERS: &str = "answers.";
const HEAD_ANSWERS: &str = "head.answers.";

/// One of the head's text fields as the template draws it.
struct HeadField {
    name: &'static str,
    label: &'static str,
    input_type: &'static str,
    value: String,
    error: Option<String>,
}

fn head(
    t: &'static crate::web::i18n::Messages,
    values: &BTreeMap<String, String>,
    errors: &BTreeMap<String, String>,
) -> Vec<HeadField> {
    [
        ("given_name", &t.reg_given_name, "text"),
        ("family_name", &t.reg_family_name, "text"),
        ("birth_date", &t.reg_col_birth, "text"),
        ("national_id", &t.reg_col_national_id, "text"),
        ("phone", &t.reg_phone, "tel"),
    ]
    .into_iter()
    .map(|(name, label, input_type)| {
        let key = format!("head.{name}");
        HeadField {
            name,
            label: label.as_str(),
            input_type,
            value: values.get(&key).cloned().unwrap_or_default(),
            error: errors.get(&key).cloned(),
        }
    })
    .collect()
}

#[derive(Template)]
#[template(path = "registry/household_form.html")]
struct FormPage {
    chrome: Chrome,
    /// Where the form posts.
    action: String,
    /// The household being edited; `None` when registering.
    id: Option<String>,
    csrf: String,
    version: String,
    /// Sent values by form field name (`village`, `head.given_name`, …).
    values: BTreeMap<String, String>,
    /// Field errors by form field name; `form` for one that names no field.
    errors: BTreeMap<String, String>,
    questions: Vec<QuestionField>,
    head: Vec<HeadField>,
    /// The member section of the form, for the head (registration only).
    head_questions: Vec<QuestionField>,
    /// The household changed since the form was loaded.
    stale: bool,
}

impl FormPage {
    fn value(&self, name: &str) -> &str {
        self.values
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    fn error(&self, name: &str) -> Option<&String> {
        self.errors.get(name)
    }

    fn other_errors(&self) -> Vec<(&String, &String)> {
        let shown = |k: &str| {
            ["village", "address", "reason"].contains(&k)
                || HEAD
                    .iter()
                    .any(|(f, _)| *f == k.trim_start_matches("head."))
                || self
                    .questions
                    .iter()
                    .chain(&self.head_questions)
                    .any(|q| k == q.name)
        };
        self.errors.iter().filter(|(k, _)| !shown(k)).collect()
    }
}

/// Maps API field paths to the form's field names (`members[0].sex` → `head.sex`,
/// `members[0].answers.education` → `head.answers.education`).
fn form_errors(api: BTreeMap<String, String>) -> BTreeMap<String, String> {
    api.into_iter()
        .map(|(k, v)| {
            let name = HEAD
                .iter()
                .find(|(_, path)| *path == k)
                .map(|(f, _)| format!("head.{f}"))
                .or_else(|| {
                    k.strip_prefix("members[0].answers.")
                        .map(|q| format!("{HEAD_ANSWERS}{q}"))
                })
                .unwrap_or(k);
            (name, v)
        })
        .collect()
}

fn single(raw: &[(String, String)], name: &str) -> Option<String> {
    raw.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn sent_values(raw: &[(String, String)]) -> BTreeMap<String, String> {
    raw.iter()
        .filter(|(k, _)| !k.starts_with(ANSWERS) && !k.starts_with(HEAD_ANSWERS) && k != "csrf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What the form shows: values by field name, and answers by question key.
#[derive(Default)]
struct Shown {
    values: BTreeMap<String, String>,
    answers: BTreeMap<String, Vec<String>>,
    head_answers: BTreeMap<String, Vec<String>>,
}

impl Shown {
    /// The form as it was sent, to show it again with its errors.
    fn sent(raw: &[(String, String)], form: &FormSchema) -> Self {
        Shown {
            values: sent_values(raw),
            answers: answers_from_form(&form.household, raw, ANSWERS).1,
            head_answers: answers_from_form(&form.member, raw, HEAD_ANSWERS).1,
        }
    }
}

async fn form_page(
    state: &AppState,
    ctx: &PageCtx,
    principal: &PagePrincipal,
    id: Option<Uuid>,
    shown: Shown,
    errors: BTreeMap<String, String>,
) -> ApiResult<FormPage> {
    let Shown {
        values,
        answers,
        head_answers,
    } = shown;
    let form = current_form(state).await?;
    let t = ctx.t();
    let title = if id.is_some() {
        &t.reg_edit
    } else {
        &t.reg_new_household
    };
    Ok(FormPage {
        chrome: ctx.chrome(Section::Registry, title),
        action: match id {
            Some(id) => format!("/registry/households/{id}/edit"),
            None => "/registry/households/new".into(),
        },
        id: id.map(|i| i.to_string()),
        csrf: principal.csrf_token().to_string(),
        version: values.get("version").cloned().unwrap_or_default(),
        questions: question_fields(
            &form.household,
            ctx.lang().code(),
            &answers,
            &errors,
            ANSWERS,
        ),
        head_questions: question_fields(
            &form.member,
            ctx.lang().code(),
            &head_answers,
            &errors,
            HEAD_ANSWERS,
        ),
        head: head(t, &values, &errors),
        stale: errors.contains_key("version"),
        values,
        errors,
    })
}

/// The form to register a household with its head.
#[utoipa::path(get, path = "/registry/households/new", operation_id = "registry_new_household_page", tag = "registry",
    responses((status = 200, description = "The registration form (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn new_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
) -> ApiResult<Response> {
    principal.require(Permission::WritePersonalData)?;
    let page = form_page(
        &state,
        &ctx,
        &principal,
        None,
        Shown::default(),
        BTreeMap::new(),
    )
    .await?;
    Ok(render(&ctx, StatusCode::OK, &page))
}

fn head_fields(raw: &[(String, String)], form: &FormSchema) -> MemberFields {
    let f = |name: &str| single(raw, &format!("head.{name}"));
    MemberFields {
        answers: answers_from_form(&form.member, raw, HEAD_ANSWERS).0,
        given_name: f("given_name"),
        family_name: f("family_name"),
        sex: f("sex"),
        birth_date: f("birth_date"),
        national_id: f("national_id"),
        phones: f("phone").into_iter().collect(),
        role: Some("head".into()),
        ..Default::default()
    }
}

/// Registers the household; back to the form with field errors on bad input.
#[utoipa::path(post, path = "/registry/households/new", operation_id = "registry_create_household_page", tag = "registry",
    responses((status = 303, description = "Registered: to the household's page"),
        (status = 422, description = "The form again, each error next to its field")))]
pub async fn create_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Form(raw): Form<Vec<(String, String)>>,
) -> ApiResult<Response> {
    principal.check_csrf(single(&raw, "csrf").as_deref())?;
    principal.require(Permission::WritePersonalData)?;
    let form = current_form(&state).await?;
    let (answers, _) = answers_from_form(&form.household, &raw, ANSWERS);
    let body = CreateHousehold {
        village: single(&raw, "village"),
        address: single(&raw, "address"),
        gps: None,
        answers,
        members: vec![head_fields(&raw, &form)],
        reason: single(&raw, "reason"),
    };
    let outcome = async {
        let (hh, members) = households::validate_new(&state, &principal, &body, &form).await?;
        let meta = event_meta(&principal, Channel::Web, body.reason.clone());
        households::register(&state, &principal, hh, members, &form, &meta).await
    }
    .await;
    match outcome {
        Ok(h) => Ok(see_other(&format!("/registry/households/{}", h.id))),
        Err(e) => {
            let errors = form_errors(field_errors(e)?);
            let page = form_page(
                &state,
                &ctx,
                &principal,
                None,
                Shown::sent(&raw, &form),
                errors,
            )
            .await?;
            Ok(render(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// The form to edit a household's village, address and answers.
#[utoipa::path(get, path = "/registry/households/{id}/edit", operation_id = "registry_edit_household_page", tag = "registry",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The edit form (HTML)", content_type = "text/html"),
        (status = 404, description = "No such household in your area scope")))]
pub async fn edit_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    principal.require(Permission::WritePersonalData)?;
    let Some(h) = state
        .store
        .registry()
        .household(&principal.scope, id)
        .await?
    else {
        let _ = not_visible(&state, &principal, "household", id).await;
        return Ok(not_found(&ctx));
    };
    let values = BTreeMap::from([
        ("village".to_string(), h.village.to_string()),
        ("address".to_string(), h.address.clone().unwrap_or_default()),
        ("version".to_string(), h.version.to_string()),
    ]);
    let shown = Shown {
        values,
        answers: answer_values(&h.answers),
        head_answers: BTreeMap::new(),
    };
    let page = form_page(&state, &ctx, &principal, Some(id), shown, BTreeMap::new()).await?;
    Ok(render(&ctx, StatusCode::OK, &page))
}

/// Saves the edit if the household is still at the version the form was loaded with.
#[utoipa::path(post, path = "/registry/households/{id}/edit", operation_id = "registry_update_household_page", tag = "registry",
    params(("id" = Uuid, Path)),
    responses((status = 303, description = "Saved: to the household's page"),
        (status = 409, description = "Changed by someone else since the form was loaded"),
        (status = 422, description = "The form again, each error next to its field")))]
pub async fn update_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(id): Path<Uuid>,
    Form(raw): Form<Vec<(String, String)>>,
) -> ApiResult<Response> {
    principal.check_csrf(single(&raw, "csrf").as_deref())?;
    principal.require(Permission::WritePersonalData)?;
    if state
        .store
        .registry()
        .household(&principal.scope, id)
        .await?
        .is_none()
    {
        let _ = not_visible(&state, &principal, "household", id).await;
        return Ok(not_found(&ctx));
    }
    let form = current_form(&state).await?;
    let (answers, _) = answers_from_form(&form.household, &raw, ANSWERS);
    let expected = single(&raw, "version").and_then(|v| v.parse::<i64>().ok());
    let mut patch = Map::new();
    patch.insert("village".into(), single(&raw, "village").into());
    patch.insert("address".into(), single(&raw, "address").into());
    patch.insert("answers".into(), Value::Object(answers));
    let outcome = match expected {
        None => Err(ApiError::invalid_field(
            "version",
            "the form has no version; reload it",
        )),
        Some(v) => {
            let meta = event_meta(&principal, Channel::Web, single(&raw, "reason"));
            households::update(&state, &principal, id, v, patch, &meta).await
        }
    };
    match outcome {
        Ok(_) => Ok(see_other(&format!("/registry/households/{id}"))),
        Err(e) if e.status == StatusCode::PRECONDITION_FAILED => {
            let errors = BTreeMap::from([("version".to_string(), e.detail)]);
            let page = form_page(
                &state,
                &ctx,
                &principal,
                Some(id),
                Shown::sent(&raw, &form),
                errors,
            )
            .await?;
            Ok(render(&ctx, StatusCode::CONFLICT, &page))
        }
        Err(e) => {
            let errors = form_errors(field_errors(e)?);
            let page = form_page(
                &state,
                &ctx,
                &principal,
                Some(id),
                Shown::sent(&raw, &form),
                errors,
            )
            .await?;
            Ok(render(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}
