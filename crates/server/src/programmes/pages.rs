//! Programme pages: the list, the set-up form (create and edit, errors next to each field),
//! the rule editor's live check, its simulation chart by district, and the enrolment list.
//!
//! Every page works without JavaScript. With it, htmx checks the rule as it is typed and
//! draws the simulation in place; both answer the same HTML fragments a plain form post would
//! get inside a whole page.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use inkingi_domain::identity::{may, Permission, Purpose};
use inkingi_domain::programmes::{
    Benefit, EnrolmentStatus, Frequency, InvalidProgramme, Programme, TargetType,
};
use inkingi_domain::targeting::rules::RuleError;
use inkingi_domain::targeting::simulation::{AreaReport, Report};
use inkingi_store::programmes::{Enrolment, StoredProgramme};
use inkingi_store::simulation::{CompareRequest, RuleChoice, SimulationRequest};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use super::{enrolments_in_scope, programme_or_404, save_programme, status_param};
use crate::auth::PagePrincipal;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::targeting::{compile, run_simulation};
use crate::web::page::{render, Chrome, PageCtx, Section};
use crate::AppState;

/// Most enrolments one list page shows; the status filter narrows a longer list.
const ENROLMENTS_SHOWN: u32 = 500;

struct ProgrammeRow {
    code: String,
    name: String,
    agency: String,
    target: &'static str,
    frequency: String,
    benefit: String,
    capacity: String,
    illustrative: bool,
}

#[derive(Template)]
#[template(path = "programmes/list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<ProgrammeRow>,
    /// Programme staff: set-up and enrolment links (finance sees only the cycles).
    may_manage: bool,
    notice: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    done: Option<String>,
}

fn benefit_text(b: &Benefit) -> String {
    match b {
        Benefit::Fixed { amount } => format!("{amount} RWF"),
        Benefit::PerMember {
            base,
            per_member,
            cap,
        } => {
            let cap = cap.map(|c| format!(", ≤ {c}")).unwrap_or_default();
            format!("{base} + {per_member} × size RWF{cap}")
        }
        Benefit::DailyWage { daily_wage, days } => format!("{daily_wage} RWF × {days} days"),
    }
}

/// Every programme, with links to its set-up, enrolments and cycles.
#[utoipa::path(get, path = "/programmes", operation_id = "programmes_page", tag = "programmes",
    responses((status = 200, description = "The programme list (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn list_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Query(p): Query<ListParams>,
) -> ApiResult<Response> {
    // Finance reaches the cycles from here too; set-up and enrolment links are for programme
    // staff only.
    principal.require(Permission::ManagePayments)?;
    let may_manage = may(principal.role, Permission::ManageProgrammes);
    let all = state.store.programmes().programmes(None).await?;
    let rows = all
        .iter()
        .map(|s| {
            let p = &s.programme;
            ProgrammeRow {
                code: p.code.clone(),
                name: p.name.clone(),
                agency: p.agency.clone(),
                target: p.target.as_str(),
                frequency: p.frequency.to_string(),
                benefit: benefit_text(&p.benefit),
                capacity: p.capacity.map(|c| c.to_string()).unwrap_or_default(),
                illustrative: p.illustrative,
            }
        })
        .collect();
    let page = ListPage {
        chrome: ctx.chrome(Section::Programmes, &ctx.t().prog_title),
        rows,
        may_manage,
        notice: p.done.filter(|d| !d.is_empty()),
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}

/// The set-up form as posted: every field as text, so that a wrong one can be shown back
/// exactly as typed next to its error.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeForm {
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    agency: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    eligibility: String,
    #[serde(default)]
    benefit: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    base: String,
    #[serde(default)]
    per_member: String,
    #[serde(default)]
    cap: String,
    #[serde(default)]
    daily_wage: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    capacity: String,
    #[serde(default)]
    budget: String,
    #[serde(default)]
    frequency: String,
    #[serde(default)]
    overlaps_with: String,
}

impl ProgrammeForm {
    fn from_stored(s: &StoredProgramme) -> ProgrammeForm {
        let p = &s.programme;
        let num = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let mut f = ProgrammeForm {
            code: p.code.clone(),
            version: s.version.to_string(),
            name: p.name.clone(),
            agency: p.agency.clone(),
            description: p.description.clone(),
            target: p.target.as_str().into(),
            eligibility: p.eligibility.clone(),
            capacity: p.capacity.map(|c| c.to_string()).unwrap_or_default(),
            budget: num(p.budget),
            frequency: p.frequency.to_string(),
            overlaps_with: p.overlaps_with.join(", "),
            ..ProgrammeForm::default()
        };
        match &p.benefit {
            Benefit::Fixed { amount } => {
                f.benefit = "fixed".into();
                f.amount = amount.to_string();
            }
            Benefit::PerMember {
                base,
                per_member,
                cap,
            } => {
                f.benefit = "per_member".into();
                f.base = base.to_string();
                f.per_member = per_member.to_string();
                f.cap = num(*cap);
            }
            Benefit::DailyWage { daily_wage, days } => {
                f.benefit = "daily_wage".into();
                f.daily_wage = daily_wage.to_string();
                f.days = days.to_string();
            }
        }
        f
    }
}

/// Field name → what is wrong with it.
type Errors = BTreeMap<String, String>;

/// The errors as the template reads them: by a field name given as `&str`.
struct FieldErrors(Errors);

impl FieldErrors {
    fn get(&self, field: &str) -> Option<&String> {
        self.0.get(field)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

fn whole<T: std::str::FromStr>(errors: &mut Errors, field: &str, raw: &str) -> Option<T> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    match raw.parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.insert(field.into(), format!("'{raw}' is not a whole number"));
            None
        }
    }
}

fn required<T: std::str::FromStr + Default>(errors: &mut Errors, field: &str, raw: &str) -> T {
    if raw.trim().is_empty() {
        errors.insert(field.into(), "is required".into());
        return T::default();
    }
    whole(errors, field, raw).unwrap_or_default()
}

fn benefit_of(f: &ProgrammeForm, errors: &mut Errors) -> Benefit {
    match f.benefit.as_str() {
        "per_member" => Benefit::PerMember {
            base: whole(errors, "base", &f.base).unwrap_or(0),
            per_member: required(errors, "per_member", &f.per_member),
            cap: whole(errors, "cap", &f.cap),
        },
        "daily_wage" => Benefit::DailyWage {
            daily_wage: required(errors, "daily_wage", &f.daily_wage),
            days: required(errors, "days", &f.days),
        },
        "fixed" => Benefit::Fixed {
            amount: required(errors, "amount", &f.amount),
        },
        other => {
            errors.insert(
                "benefit".into(),
                format!("'{other}' is not fixed, per_member or daily_wage"),
            );
            Benefit::Fixed { amount: 0 }
        }
    }
}

fn target_of(raw: &str, errors: &mut Errors) -> TargetType {
    match raw {
        "individual" => TargetType::Individual,
        "household" => TargetType::Household,
        other => {
            errors.insert(
                "target".into(),
                format!("'{other}' is not household or individual"),
            );
            TargetType::Household
        }
    }
}

fn frequency_of(raw: &str, errors: &mut Errors) -> Frequency {
    match raw {
        "monthly" => Frequency::Monthly,
        "quarterly" => Frequency::Quarterly,
        "annual" => Frequency::Annual,
        "once" => Frequency::Once,
        other => {
            errors.insert(
                "frequency".into(),
                format!("'{other}' is not monthly, quarterly, annual or once"),
            );
            Frequency::Monthly
        }
    }
}

/// The programme the form describes, or every field's error. `illustrative` is kept from the
/// stored programme: only the demo catalogue sets it.
fn programme_of(f: &ProgrammeForm, illustrative: bool) -> Result<Programme, Errors> {
    let mut errors = Errors::new();
    let p = Programme {
        code: f.code.trim().to_string(),
        name: f.name.trim().to_string(),
        agency: f.agency.trim().to_string(),
        description: f.description.trim().to_string(),
        illustrative,
        target: target_of(&f.target, &mut errors),
        eligibility: f.eligibility.trim().to_string(),
        benefit: benefit_of(f, &mut errors),
        capacity: whole(&mut errors, "capacity", &f.capacity),
        budget: whole(&mut errors, "budget", &f.budget),
        frequency: frequency_of(&f.frequency, &mut errors),
        overlaps_with: f
            .overlaps_with
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    };
    if let Err(InvalidProgramme { field, reason, .. }) = p.check("") {
        // The benefit's own fields are named without the prefix on the form.
        let field = field.strip_prefix("benefit.").unwrap_or(&field).to_string();
        errors.entry(field).or_insert(reason);
    }
    if errors.is_empty() {
        Ok(p)
    } else {
        Err(errors)
    }
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

fn choices(values: &[(&str, &str)], current: &str) -> Vec<Choice> {
    values
        .iter()
        .map(|(v, l)| Choice {
            value: (*v).into(),
            label: (*l).into(),
            selected: *v == current,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "programmes/edit.html")]
struct EditPage {
    chrome: Chrome,
    csrf: String,
    /// `None` for a new programme.
    editing: Option<String>,
    action: String,
    form: ProgrammeForm,
    agencies: Vec<Choice>,
    targets: Vec<Choice>,
    benefits: Vec<Choice>,
    frequencies: Vec<Choice>,
    errors: FieldErrors,
    stale: bool,
    check: RuleCheckView,
}

async fn edit_page_for(
    state: &AppState,
    ctx: &PageCtx,
    principal: &PagePrincipal,
    editing: Option<String>,
    form: ProgrammeForm,
    errors: Errors,
) -> ApiResult<EditPage> {
    let t = ctx.t();
    let agencies = state.store.programmes().agencies().await?;
    let agency_pairs: Vec<(&str, &str)> = agencies
        .iter()
        .map(|a| (a.code.as_str(), a.name.as_str()))
        .collect();
    let title = match &editing {
        Some(code) => format!("{} — {code}", t.prog_edit_title),
        None => t.prog_new_title.clone(),
    };
    let check = match errors.get("eligibility") {
        Some(e) => RuleCheckView::refused(e.clone()),
        None => RuleCheckView::default(),
    };
    Ok(EditPage {
        chrome: ctx.chrome(Section::Programmes, &title),
        csrf: principal.csrf_token().to_string(),
        action: match &editing {
            Some(code) => format!("/programmes/{code}/edit"),
            None => "/programmes/new".into(),
        },
        editing,
        agencies: choices(&agency_pairs, &form.agency),
        targets: choices(
            &[
                ("household", t.prog_target_household.as_str()),
                ("individual", t.prog_target_individual.as_str()),
            ],
            &form.target,
        ),
        benefits: choices(
            &[
                ("fixed", t.prog_benefit_fixed.as_str()),
                ("per_member", t.prog_benefit_per_member.as_str()),
                ("daily_wage", t.prog_benefit_daily_wage.as_str()),
            ],
            &form.benefit,
        ),
        frequencies: choices(
            &[
                ("monthly", "monthly"),
                ("quarterly", "quarterly"),
                ("annual", "annual"),
                ("once", "once"),
            ],
            &form.frequency,
        ),
        form,
        errors: FieldErrors(errors),
        stale: false,
        check,
    })
}

/// The form for a new programme.
#[utoipa::path(get, path = "/programmes/new", operation_id = "programmes_new_page", tag = "programmes",
    responses((status = 200, description = "The set-up form (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn new_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let form = ProgrammeForm {
        target: "household".into(),
        benefit: "fixed".into(),
        frequency: "monthly".into(),
        ..ProgrammeForm::default()
    };
    let page = edit_page_for(&state, &ctx, &principal, None, form, Errors::new()).await?;
    Ok(render(&ctx, StatusCode::OK, &page))
}

/// The set-up form of a programme, filled in.
#[utoipa::path(get, path = "/programmes/{code}/edit", operation_id = "programmes_edit_page", tag = "programmes",
    params(("code" = String, Path)),
    responses((status = 200, description = "The set-up form (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page"),
        (status = 404, description = "No such programme")))]
pub async fn edit_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(code): Path<String>,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let stored = programme_or_404(&state, &code).await?;
    let form = ProgrammeForm::from_stored(&stored);
    let page = edit_page_for(&state, &ctx, &principal, Some(code), form, Errors::new()).await?;
    Ok(render(&ctx, StatusCode::OK, &page))
}

/// Saves a new programme from the form; the form again with each error when it is wrong.
#[utoipa::path(post, path = "/programmes/new", operation_id = "programmes_create_page", tag = "programmes",
    responses((status = 303, description = "Saved: to the list"),
        (status = 403, description = "A bad CSRF token"),
        (status = 409, description = "A programme with this code exists (the form, with the error)"),
        (status = 422, description = "The form, with each field's error")))]
pub async fn create_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Form(f): Form<ProgrammeForm>,
) -> ApiResult<Response> {
    save_form(&state, &ctx, &principal, None, f).await
}

/// Saves a changed programme; a version changed meanwhile by someone else is not overwritten.
#[utoipa::path(post, path = "/programmes/{code}/edit", operation_id = "programmes_update_page", tag = "programmes",
    params(("code" = String, Path)),
    responses((status = 303, description = "Saved: to the list"),
        (status = 403, description = "A bad CSRF token"),
        (status = 404, description = "No such programme"),
        (status = 409, description = "Changed by someone else since the form was opened"),
        (status = 422, description = "The form, with each field's error")))]
pub async fn update_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(code): Path<String>,
    Form(mut f): Form<ProgrammeForm>,
) -> ApiResult<Response> {
    // The code is the URL's: it cannot be changed from the form.
    f.code = code.clone();
    save_form(&state, &ctx, &principal, Some(code), f).await
}

async fn save_form(
    state: &AppState,
    ctx: &PageCtx,
    principal: &PagePrincipal,
    editing: Option<String>,
    f: ProgrammeForm,
) -> ApiResult<Response> {
    principal.check_csrf(Some(&f.csrf))?;
    principal.require(Permission::ManageProgrammes)?;
    let (expected, illustrative) = match &editing {
        Some(code) => {
            let stored = programme_or_404(state, code).await?;
            let expected = f.version.trim().parse::<i64>().map_err(|_| {
                ApiError::invalid_field("version", "the form lost its version: reload it")
            })?;
            (Some(expected), stored.programme.illustrative)
        }
        None => (None, false),
    };
    let mut errors = match programme_of(&f, illustrative) {
        Ok(p) => match checked_rule(state, &p).await? {
            Ok(()) => return store_form(state, ctx, principal, editing, f, &p, expected).await,
            Err(e) => Errors::from([("eligibility".to_string(), rule_error_text(&e))]),
        },
        Err(errors) => errors,
    };
    if let Some(e) = errors.remove("eligibility") {
        errors.insert("eligibility".into(), e);
    }
    let page = edit_page_for(state, ctx, principal, editing, f, errors).await?;
    Ok(render(ctx, StatusCode::UNPROCESSABLE_ENTITY, &page))
}

/// The rule checked against the questionnaire in use too (the domain check knows only the
/// built-in facts).
async fn checked_rule(state: &AppState, p: &Programme) -> ApiResult<Result<(), RuleError>> {
    Ok(compile(state, &p.eligibility, p.target.rule_target())
        .await?
        .map(|_| ()))
}

async fn store_form(
    state: &AppState,
    ctx: &PageCtx,
    principal: &PagePrincipal,
    editing: Option<String>,
    f: ProgrammeForm,
    p: &Programme,
    expected: Option<i64>,
) -> ApiResult<Response> {
    let refusal = match save_programme(state, principal, p, expected).await {
        Ok(saved) => {
            let to = format!("/programmes?done={}", saved.programme.code);
            return Ok(Redirect::to(&to).into_response());
        }
        Err(e) => e,
    };
    // A stale version or an existing code is shown on the form, keeping what was typed.
    let (status, stale, errors) = match refusal.status {
        StatusCode::PRECONDITION_FAILED => (StatusCode::CONFLICT, true, Errors::new()),
        StatusCode::CONFLICT => (
            StatusCode::CONFLICT,
            false,
            Errors::from([("code".into(), refusal.detail.clone())]),
        ),
        StatusCode::UNPROCESSABLE_ENTITY => (
            StatusCode::UNPROCESSABLE_ENTITY,
            false,
            Errors::from([store_refusal_field(&refusal.detail)]),
        ),
        _ => return Err(refusal),
    };
    let mut page = edit_page_for(state, ctx, principal, editing, f, errors).await?;
    page.stale = stale;
    Ok(render(ctx, status, &page))
}

/// The store words a refusal `field: reason` (e.g. `agency: no agency has the code 'x'`):
/// shown next to that field when the form has it, else in the summary under `programme`.
fn store_refusal_field(detail: &str) -> (String, String) {
    const FIELDS: [&str; 4] = ["agency", "code", "eligibility", "overlaps_with"];
    match detail.split_once(": ") {
        Some((field, reason)) if FIELDS.contains(&field) => (field.into(), reason.into()),
        _ => ("programme".into(), detail.into()),
    }
}

fn rule_error_text(e: &RuleError) -> String {
    format!("line {}, column {}: {}", e.line, e.column, e.message)
}

/// What the live check shows under the rule.
#[derive(Debug, Clone, Default)]
struct RuleCheckView {
    valid: bool,
    error: String,
    excerpt: String,
}

impl RuleCheckView {
    fn refused(error: String) -> RuleCheckView {
        RuleCheckView {
            error,
            ..RuleCheckView::default()
        }
    }
}

#[derive(Template)]
#[template(path = "programmes/rule_check.html")]
struct RuleCheckFragment {
    chrome: Chrome,
    check: RuleCheckView,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RuleCheckForm {
    csrf: String,
    #[serde(default)]
    eligibility: String,
    #[serde(default)]
    target: String,
}

/// Checks a rule as it is typed (htmx posts the form's rule here); answers the message
/// fragment shown under the rule. Other fields of the form are ignored.
#[utoipa::path(post, path = "/programmes/rule-check", operation_id = "programmes_rule_check_page", tag = "programmes",
    responses((status = 200, description = "The check's message (HTML fragment)", content_type = "text/html"),
        (status = 403, description = "A bad CSRF token")))]
pub async fn rule_check_fragment(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Form(f): Form<RuleCheckForm>,
) -> ApiResult<Response> {
    principal.check_csrf(Some(&f.csrf))?;
    principal.require(Permission::ManageProgrammes)?;
    let mut errors = Errors::new();
    let target = target_of(&f.target, &mut errors).rule_target();
    // An empty rule shows nothing yet: the form says it is required when saved.
    let check = if f.eligibility.trim().is_empty() {
        RuleCheckView::default()
    } else {
        match compile(&state, f.eligibility.trim(), target).await? {
            Ok(_) => RuleCheckView {
                valid: true,
                ..RuleCheckView::default()
            },
            Err(e) => RuleCheckView {
                error: rule_error_text(&e),
                excerpt: e.excerpt.clone(),
                ..RuleCheckView::default()
            },
        }
    };
    let fragment = RuleCheckFragment {
        chrome: ctx.chrome(Section::Programmes, ""),
        check,
    };
    Ok(render(&ctx, StatusCode::OK, &fragment))
}

/// One district's bar pair in the simulation chart (coordinates in SVG units).
struct ChartRow {
    name: String,
    y: u32,
    current: u64,
    proposed: u64,
    current_w: u32,
    proposed_w: u32,
    /// Where the counts are written: after the longer bar.
    value_x: u32,
}

const CHART_LABEL_W: u32 = 170;
const CHART_BAR_W: u32 = 420;
const CHART_ROW_H: u32 = 30;

#[derive(Template)]
#[template(path = "programmes/simulation.html")]
struct SimulationFragment {
    chrome: Chrome,
    code: String,
    rows: Vec<ChartRow>,
    height: u32,
    label_w: u32,
    max: u64,
    total_current: u64,
    total_proposed: u64,
    cost_current: u64,
    cost_proposed: u64,
    error: Option<String>,
}

fn chart_rows(report: &Report) -> (Vec<ChartRow>, u64) {
    let pair = |a: &AreaReport| {
        let m = a.programmes.first().map(|p| &p.scenarios);
        let at = |i: usize| m.and_then(|s| s.get(i)).map_or(0, |m| m.eligible);
        (at(0), at(1))
    };
    let max = report
        .areas
        .iter()
        .map(|a| {
            let (c, p) = pair(a);
            c.max(p)
        })
        .max()
        .unwrap_or(0);
    let scale = |v: u64| -> u32 {
        if max == 0 {
            return 0;
        }
        // Rounded, and at least one unit for a non-zero count so that it stays visible.
        let w = (u128::from(v) * u128::from(CHART_BAR_W) + u128::from(max) / 2) / u128::from(max);
        u32::try_from(w)
            .unwrap_or(CHART_BAR_W)
            .max(u32::from(v > 0))
    };
    let rows = report
        .areas
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let (current, proposed) = pair(a);
            let (current_w, proposed_w) = (scale(current), scale(proposed));
            ChartRow {
                name: a.name.clone(),
                y: u32::try_from(i).unwrap_or(0) * CHART_ROW_H,
                current,
                proposed,
                current_w,
                proposed_w,
                value_x: CHART_LABEL_W + current_w.max(proposed_w) + 6,
            }
        })
        .collect();
    (rows, max)
}

/// Simulates the form's rule against the saved one, by district, within the caller's scope:
/// how many would be eligible, and at what cost. Nothing is saved or enrolled.
#[utoipa::path(post, path = "/programmes/{code}/simulate", operation_id = "programmes_simulate_page", tag = "programmes",
    params(("code" = String, Path)),
    responses((status = 200, description = "The chart by district with its table (HTML fragment)", content_type = "text/html"),
        (status = 403, description = "A bad CSRF token"),
        (status = 404, description = "No such programme")))]
pub async fn simulate_fragment(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(code): Path<String>,
    Form(f): Form<RuleCheckForm>,
) -> ApiResult<Response> {
    principal.check_csrf(Some(&f.csrf))?;
    principal.require(Permission::ManageProgrammes)?;
    programme_or_404(&state, &code).await?;
    let req = SimulationRequest {
        by: Some("district".into()),
        programmes: Some(vec![code.clone()]),
        compare: Some(CompareRequest {
            model: None,
            rules: BTreeMap::from([(
                code.clone(),
                RuleChoice {
                    rule_set: None,
                    rule: Some(f.eligibility.trim().to_string()),
                },
            )]),
        }),
        ..SimulationRequest::default()
    };
    let mut fragment = SimulationFragment {
        chrome: ctx.chrome(Section::Programmes, ""),
        code,
        rows: Vec::new(),
        height: 0,
        label_w: CHART_LABEL_W,
        max: 0,
        total_current: 0,
        total_proposed: 0,
        cost_current: 0,
        cost_proposed: 0,
        error: None,
    };
    match run_simulation(&state, &principal, &req).await {
        Ok(report) => {
            let (rows, max) = chart_rows(&report);
            let totals = report.total.programmes.first().map(|p| &p.scenarios);
            let total = |i: usize| totals.and_then(|s| s.get(i)).cloned();
            fragment.height = u32::try_from(rows.len()).unwrap_or(0) * CHART_ROW_H + 4;
            fragment.rows = rows;
            fragment.max = max;
            fragment.total_current = total(0).map_or(0, |m| m.eligible);
            fragment.total_proposed = total(1).map_or(0, |m| m.eligible);
            fragment.cost_current = total(0).map_or(0, |m| m.cost);
            fragment.cost_proposed = total(1).map_or(0, |m| m.cost);
        }
        // A rule that does not compile is shown where the chart would be.
        Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
            let reasons: Vec<String> = e.errors.iter().map(|f| f.reason.clone()).collect();
            fragment.error = Some(if reasons.is_empty() {
                e.detail
            } else {
                reasons.join("; ")
            });
        }
        Err(e) => return Err(e),
    }
    if ctx.fragment {
        return Ok(render(&ctx, StatusCode::OK, &fragment));
    }
    // Without htmx the form posted here directly: the chart in a whole page.
    let body = fragment
        .render()
        .map_err(|e| ApiError::internal(format!("template: {e}")))?;
    let page = SimulationPage {
        chrome: ctx.chrome(Section::Programmes, &ctx.t().prog_sim_heading),
        code: fragment.code,
        body,
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}

#[derive(Template)]
#[template(path = "programmes/simulation_page.html")]
struct SimulationPage {
    chrome: Chrome,
    code: String,
    /// The fragment, rendered (escaped by its own template).
    body: String,
}

struct EnrolmentRow {
    household: String,
    village: String,
    status: String,
    score: String,
    amount: i64,
    since: String,
    reason: String,
}

struct StatusOption {
    value: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "programmes/enrolments.html")]
struct EnrolmentsPage {
    chrome: Chrome,
    code: String,
    name: String,
    rows: Vec<EnrolmentRow>,
    statuses: Vec<StatusOption>,
    truncated: bool,
    limit: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentsParams {
    status: Option<String>,
}

fn enrolment_row(e: &Enrolment) -> EnrolmentRow {
    EnrolmentRow {
        household: e.household_id.to_string(),
        village: e.village.clone(),
        status: e.status.as_str().to_string(),
        score: e.score.map(|s| format!("{s:.1}")).unwrap_or_default(),
        amount: e.amount,
        since: e
            .enrolled_since
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        reason: e.reason.clone().unwrap_or_default(),
    }
}

/// A programme's enrolments in the caller's area, filtered by status (reads are audited).
#[utoipa::path(get, path = "/programmes/{code}/enrolments", operation_id = "programmes_enrolments_page", tag = "programmes",
    params(("code" = String, Path), ("status" = Option<String>, Query, description = "An enrolment status")),
    responses((status = 200, description = "The enrolment list (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page"),
        (status = 404, description = "No such programme")))]
pub async fn enrolments_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    Path(code): Path<String>,
    Query(p): Query<EnrolmentsParams>,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let purpose = principal.purpose_or(
        Purpose::ProgrammeAdministration,
        &state.auth.settings.purposes,
    )?;
    let prog = programme_or_404(&state, &code).await?;
    let status = status_param(p.status.as_deref())?;
    // One more than shown tells whether the list goes on.
    let list = enrolments_in_scope(
        &state,
        &principal,
        purpose,
        &code,
        status,
        ENROLMENTS_SHOWN + 1,
    )
    .await?;
    let truncated = list.len() > ENROLMENTS_SHOWN as usize;
    let chosen = status.map(EnrolmentStatus::as_str).unwrap_or("");
    let page = EnrolmentsPage {
        chrome: ctx.chrome(
            Section::Programmes,
            &format!(
                "{} — {}",
                ctx.t().prog_enrolments_title,
                prog.programme.name
            ),
        ),
        name: prog.programme.name.clone(),
        code,
        rows: list
            .iter()
            .take(ENROLMENTS_SHOWN as usize)
            .map(enrolment_row)
            .collect(),
        statuses: [
            "",
            "eligible",
            "waiting",
            "enrolled",
            "suspended",
            "graduated",
            "exited",
        ]
        .into_iter()
        .map(|value| StatusOption {
            value,
            selected: value == chosen,
        })
        .collect(),
        truncated,
        limit: ENROLMENTS_SHOWN,
    };
    Ok(render(&ctx, StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;
    use inkingi_domain::targeting::simulation::{Metrics, ProgrammeReport};

    fn form() -> ProgrammeForm {
        ProgrammeForm {
            code: "cash".into(),
            name: "Cash".into(),
            agency: "loda".into(),
            target: "household".into(),
            eligibility: "score < 40".into(),
            benefit: "per_member".into(),
            per_member: "1000".into(),
            cap: "".into(),
            frequency: "monthly".into(),
            overlaps_with: "vup_pw, cbhi".into(),
            ..ProgrammeForm::default()
        }
    }

    #[test]
    fn a_store_refusal_lands_on_its_field_or_in_the_summary() {
        assert_eq!(
            store_refusal_field("agency: no agency has the code 'x'"),
            ("agency".into(), "no agency has the code 'x'".into())
        );
        assert_eq!(
            store_refusal_field("something else went wrong"),
            ("programme".into(), "something else went wrong".into())
        );
    }

    #[test]
    fn a_good_form_makes_the_programme() {
        let p = programme_of(&form(), false).expect("valid");
        assert_eq!(
            p.benefit,
            Benefit::PerMember {
                base: 0,
                per_member: 1000,
                cap: None
            }
        );
        assert_eq!(p.overlaps_with, vec!["vup_pw", "cbhi"]);
    }

    #[test]
    fn each_wrong_field_is_named() {
        let mut f = form();
        f.per_member = "ten".into();
        f.capacity = "-3".into();
        f.frequency = "weekly".into();
        let errors = programme_of(&f, false).expect_err("invalid");
        assert!(errors["per_member"].contains("'ten'"), "{errors:?}");
        assert!(errors.contains_key("capacity"), "{errors:?}");
        assert!(errors["frequency"].contains("weekly"), "{errors:?}");
    }

    #[test]
    fn a_rule_that_does_not_compile_is_refused_with_its_position() {
        let mut f = form();
        f.eligibility = "score <".into();
        let errors = programme_of(&f, false).expect_err("invalid");
        assert!(errors["eligibility"].contains("line 1"), "{errors:?}");
    }

    #[test]
    fn the_stored_programme_fills_the_form_back() {
        let p = programme_of(&form(), false).expect("valid");
        let stored = StoredProgramme {
            programme: p.clone(),
            version: 4,
            updated_at: chrono::Utc::now(),
            updated_by: "x".into(),
        };
        let again = ProgrammeForm::from_stored(&stored);
        assert_eq!(again.version, "4");
        assert_eq!(programme_of(&again, false).expect("valid"), p);
    }

    fn area(name: &str, current: u64, proposed: u64) -> AreaReport {
        let m = |eligible| Metrics {
            eligible,
            beneficiaries: eligible,
            coverage: 0.0,
            cost: 0,
            enrolled: 0,
            eligible_enrolled: 0,
            eligible_not_enrolled: 0,
            enrolled_not_eligible: 0,
        };
        AreaReport {
            code: String::new(),
            name: name.into(),
            households: 100,
            programmes: vec![ProgrammeReport {
                programme: "cash".into(),
                scenarios: vec![m(current), m(proposed)],
                delta: None,
            }],
            overlaps: Vec::new(),
        }
    }

    #[test]
    fn bars_scale_to_the_largest_count_and_small_ones_stay_visible() {
        let report = Report {
            by: inkingi_domain::areas::AreaLevel::District,
            scenarios: Vec::new(),
            programmes: vec!["cash".into()],
            areas: vec![area("Gasabo", 1000, 500), area("Nyarugenge", 1, 0)],
            total: area("", 1001, 500),
        };
        let (rows, max) = chart_rows(&report);
        assert_eq!(max, 1000);
        assert_eq!(rows[0].current_w, CHART_BAR_W);
        assert_eq!(rows[0].proposed_w, CHART_BAR_W / 2);
        assert_eq!(rows[1].y, CHART_ROW_H);
        assert_eq!(rows[1].current_w, 1, "a count of one is still drawn");
        assert_eq!(rows[1].proposed_w, 0);
    }
}
