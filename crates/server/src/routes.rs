//! The route registry: every route the server answers, with who may call it.
//!
//! The router is built from this list only, and the route-table test walks this list, so a
//! route added here without an entry in the test's expectations fails the test. Add routes here,
//! not with `Router::route` elsewhere.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use inkingi_domain::identity::Permission;

use crate::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, metrics, the API description, reference data, the sign-in page.
    Public,
    /// Any signed-in user.
    SignedIn,
    /// A principal whose role has this permission, within its area scope.
    Requires(Permission),
}

/// One method on one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    /// axum path syntax (`/api/v1/people/{id}`).
    pub path: &'static str,
    pub access: Access,
}

/// A subtree served by another context's router under a prefix, with one access rule for all
/// of it (used for public reference data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub prefix: &'static str,
    pub access: Access,
}

pub(crate) struct Route {
    spec: RouteSpec,
    handler: MethodRouter<AppState>,
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        spec: RouteSpec {
            method,
            path,
            access,
        },
        handler,
    }
}

fn get_route<H, T>(path: &'static str, access: Access, h: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    route(Method::GET, path, access, get(h))
}

fn post_route<H, T>(path: &'static str, access: Access, h: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    route(Method::POST, path, access, post(h))
}

/// A POST route that accepts bodies up to `limit` bytes instead of the server's default.
fn upload_route<H, T>(path: &'static str, access: Access, limit: usize, h: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let handler = post(h).layer(axum::extract::DefaultBodyLimit::max(limit));
    route(Method::POST, path, access, handler)
}

fn put_route<H, T>(path: &'static str, access: Access, h: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    route(Method::PUT, path, access, put(h))
}

fn patch_route<H, T>(path: &'static str, access: Access, h: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    route(Method::PATCH, path, access, patch(h))
}

fn delete_route<H, T>(path: &'static str, access: Access, h: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    route(Method::DELETE, path, access, delete(h))
}

fn all() -> Vec<Route> {
    use crate::registry::{
        changes, forms, households, id_checks, imports, matching, memberships, pages, people,
    };
    use crate::{
        audit, auth, children, crvs, cycles, dci, dci_auth, dci_events, dci_ibr, health, linkage,
        metrics, openapi, programmes, recertifications, targeting, web, webhooks,
    };
    const PROGRAMMES: Access = Access::Requires(Permission::ManageProgrammes);
    // Programme staff and finance; the handlers ask more of some steps (see `cycles`).
    const PAYMENTS: Access = Access::Requires(Permission::ManagePayments);
    const READ: Access = Access::Requires(Permission::ReadPersonalData);
    const WRITE: Access = Access::Requires(Permission::WritePersonalData);
    const HEALTH_READ: Access = Access::Requires(Permission::ReadHealthData);
    const HEALTH_WRITE: Access = Access::Requires(Permission::RecordHealthData);
    use Access::*;
    vec![
        get_route("/healthz", Public, health::healthz),
        get_route("/readyz", Public, health::readyz),
        // Route labels and pool sizes only; no personal data.
        get_route("/metrics", Public, metrics::render),
        get_route("/api/v1/openapi.json", Public, openapi::serve),
        get_route("/login", Public, auth::login::login_page),
        post_route("/login", Public, auth::login::login_submit),
        post_route("/logout", SignedIn, auth::login::logout),
        get_route("/account/password", SignedIn, auth::account::password_page),
        post_route(
            "/account/password",
            SignedIn,
            auth::account::password_submit,
        ),
        get_route(
            "/api/v1/audit",
            Requires(Permission::ReadAudit),
            audit::list,
        ),
        get_route("/audit", Requires(Permission::ReadAudit), audit::page),
        // The registry.
        post_route("/api/v1/households", WRITE, households::create),
        get_route("/api/v1/households", READ, households::list),
        get_route("/api/v1/households/{id}", READ, households::get_one),
        patch_route("/api/v1/households/{id}", WRITE, households::patch),
        get_route("/api/v1/households/{id}/history", READ, households::history),
        post_route("/api/v1/households/{id}/members", WRITE, memberships::add),
        get_route("/api/v1/individuals/search", READ, people::search),
        post_route("/api/v1/individuals/match", READ, matching::match_person),
        // The index's size and position only; no personal data.
        get_route(
            "/api/v1/individuals/match/status",
            SignedIn,
            matching::status,
        ),
        get_route("/api/v1/individuals/{id}", READ, people::get_one),
        patch_route("/api/v1/individuals/{id}", WRITE, people::patch),
        get_route(
            "/api/v1/individuals/{id}/id-checks",
            READ,
            id_checks::for_person,
        ),
        get_route("/api/v1/id-checks", READ, id_checks::worklist),
        post_route(
            "/api/v1/individuals/{id}/id-checks",
            WRITE,
            id_checks::verify_now,
        ),
        post_route("/registry/people/{id}/id-checks", WRITE, pages::verify_page),
        patch_route(
            "/api/v1/memberships/{person_id}",
            WRITE,
            memberships::change_role,
        ),
        post_route(
            "/api/v1/memberships/{person_id}/end",
            WRITE,
            memberships::end,
        ),
        // Bulk import through the API (the handlers also require a national scope).
        upload_route(
            "/api/v1/imports",
            WRITE,
            imports::MAX_UPLOAD_BYTES,
            imports::start,
        ),
        get_route("/api/v1/imports/{id}", WRITE, imports::get_one),
        get_route("/api/v1/imports/{id}/errors", WRITE, imports::errors),
        // Form schemas hold no personal data.
        get_route("/api/v1/forms/{form_id}", SignedIn, forms::latest),
        get_route(
            "/api/v1/forms/{form_id}/versions/{version}",
            SignedIn,
            forms::by_version,
        ),
        post_route(
            "/api/v1/forms",
            Requires(Permission::ManageForms),
            forms::publish,
        ),
        // Change requests: submitted in the submitter's area, decided by approvers of the
        // household's area (the handlers check the approval tier).
        post_route(
            "/api/v1/change-requests",
            Requires(Permission::SubmitChangeRequests),
            changes::create,
        ),
        get_route("/api/v1/change-requests", READ, changes::list),
        get_route("/api/v1/change-requests/{id}", READ, changes::get_one),
        post_route(
            "/api/v1/change-requests/{id}/decision",
            SignedIn,
            changes::decide_api,
        ),
        get_route(
            "/change-requests",
            Requires(Permission::ApproveChanges),
            changes::queue_page,
        ),
        post_route(
            "/change-requests/{id}/decision",
            Requires(Permission::ApproveChanges),
            changes::decide_page,
        ),
        // The linkage review queue: read within the reader's scope, decided by approvers
        // (a confirmed registry duplicate becomes a merge request for another approver).
        get_route("/api/v1/linkage/reviews", READ, linkage::list),
        get_route("/api/v1/linkage/reviews/{id}", READ, linkage::get_one),
        post_route(
            "/api/v1/linkage/reviews/{id}/confirm",
            Requires(Permission::ApproveChanges),
            linkage::confirm,
        ),
        post_route(
            "/api/v1/linkage/reviews/{id}/dismiss",
            Requires(Permission::ApproveChanges),
            linkage::dismiss,
        ),
        post_route(
            "/api/v1/linkage/reviews/{id}/unlink",
            Requires(Permission::ApproveChanges),
            linkage::unlink,
        ),
        get_route(
            "/linkage/reviews",
            Requires(Permission::ApproveChanges),
            linkage::pages::queue_page,
        ),
        get_route(
            "/linkage/reviews/{id}",
            Requires(Permission::ApproveChanges),
            linkage::pages::review_page,
        ),
        post_route(
            "/linkage/reviews/{id}/confirm",
            Requires(Permission::ApproveChanges),
            linkage::pages::confirm_page,
        ),
        post_route(
            "/linkage/reviews/{id}/dismiss",
            Requires(Permission::ApproveChanges),
            linkage::pages::dismiss_page,
        ),
        // Partner webhooks: events disclose personal data within the partner's scope; each
        // webhook is its maker's own.
        post_route("/api/v1/webhooks", READ, webhooks::create),
        get_route("/api/v1/webhooks", READ, webhooks::list),
        delete_route("/api/v1/webhooks/{id}", READ, webhooks::delete),
        // DCI authorisation: partner systems exchange their API token for an access token
        // (the token endpoint authenticates the client itself) and fetch the public keys.
        post_route("/dci/oauth2/client/token", Public, dci_auth::token),
        get_route("/dci/.well-known/jwks.json", Public, dci_auth::jwks_json),
        // DCI Social Registry API: searches read personal data within the caller's scope.
        post_route(
            "/dci/registry/sync/search",
            Requires(Permission::ReadPersonalData),
            dci::sync_search,
        ),
        post_route(
            "/dci/registry/search",
            Requires(Permission::ReadPersonalData),
            dci::search,
        ),
        post_route(
            "/dci/registry/sync/txn/status",
            Requires(Permission::ReadPersonalData),
            dci::sync_txn_status,
        ),
        post_route(
            "/dci/registry/txn/status",
            Requires(Permission::ReadPersonalData),
            dci::txn_status,
        ),
        // DCI Integrated Beneficiary Registry: enrolment queries read personal data; reported
        // enrolments change the programmes' enrolments (checked again in the handler).
        post_route("/dci/registry/sync/enrolled", READ, dci_ibr::sync_enrolled),
        post_route("/dci/registry/enrolled", READ, dci_ibr::enrolled),
        post_route(
            "/dci/registry/sync/enrollment/updates",
            PROGRAMMES,
            dci_ibr::sync_enrollment_updates,
        ),
        post_route(
            "/dci/registry/enrollment/updates",
            PROGRAMMES,
            dci_ibr::enrollment_updates,
        ),
        // Event subscriptions: notifications disclose personal data within the subscriber's
        // scope.
        post_route(
            "/dci/registry/subscribe",
            Requires(Permission::ReadPersonalData),
            dci_events::subscribe,
        ),
        post_route(
            "/dci/registry/unsubscribe",
            Requires(Permission::ReadPersonalData),
            dci_events::unsubscribe,
        ),
        // Civil registration events: the CRVS delivers them as a national-scope client that
        // may submit change requests; officers list them within their area.
        post_route(
            "/dci/crvs/notify",
            Requires(Permission::SubmitChangeRequests),
            crvs::notify,
        ),
        post_route(
            "/dci/crvs/on-subscribe",
            Requires(Permission::SubmitChangeRequests),
            crvs::on_subscribe,
        ),
        get_route("/api/v1/crvs/events", READ, crvs::list_events),
        // FHIR R4 for the child record: health roles write, health readers read (the
        // CapabilityStatement is public, as FHIR expects).
        get_route("/fhir/R4/metadata", Public, children::fhir::metadata),
        post_route("/fhir/R4", HEALTH_WRITE, children::fhir::bundle),
        post_route(
            "/fhir/R4/Patient",
            HEALTH_WRITE,
            children::fhir::create_patient,
        ),
        post_route(
            "/fhir/R4/RelatedPerson",
            HEALTH_WRITE,
            children::fhir::create_related_person,
        ),
        post_route(
            "/fhir/R4/Immunization",
            HEALTH_WRITE,
            children::fhir::create_immunization,
        ),
        post_route(
            "/fhir/R4/Observation",
            HEALTH_WRITE,
            children::fhir::create_observation,
        ),
        post_route(
            "/fhir/R4/Encounter",
            HEALTH_WRITE,
            children::fhir::create_encounter,
        ),
        get_route(
            "/fhir/R4/Patient/{id}",
            HEALTH_READ,
            children::fhir::read_patient,
        ),
        get_route(
            "/fhir/R4/Immunization",
            HEALTH_READ,
            children::fhir::search_immunization,
        ),
        get_route(
            "/fhir/R4/Observation",
            HEALTH_READ,
            children::fhir::search_observation,
        ),
        get_route(
            "/fhir/R4/Encounter",
            HEALTH_READ,
            children::fhir::search_encounter,
        ),
        // Services due, the overdue worklist and the child page.
        get_route(
            "/api/v1/children/{person_id}/services",
            HEALTH_READ,
            children::services::services,
        ),
        get_route(
            "/api/v1/worklists/overdue",
            HEALTH_READ,
            children::services::overdue,
        ),
        get_route(
            "/children/{person_id}",
            HEALTH_READ,
            children::page::child_page,
        ),
        // SMS delivery reports: gateways cannot sign in; a per-message secret (Kannel) or the
        // gateway's own message id (Africa's Talking) identifies the message.
        get_route("/sms/dlr/kannel", Public, children::sms_dlr::kannel),
        post_route(
            "/sms/dlr/africastalking",
            Public,
            children::sms_dlr::africastalking,
        ),
        // School and child-protection feeds; restricted reads (the handlers check purposes).
        post_route(
            "/api/v1/children/feeds/school",
            HEALTH_WRITE,
            children::feeds::school,
        ),
        post_route(
            "/api/v1/children/feeds/protection",
            HEALTH_WRITE,
            children::feeds::protection,
        ),
        get_route(
            "/api/v1/children/{person_id}/protection",
            READ,
            children::feeds::protection_read,
        ),
        get_route(
            "/api/v1/children/{person_id}/hiv-exposure",
            HEALTH_READ,
            children::sensitive::hiv_exposure,
        ),
        // Child indicators by area and month, their drill-down, and the page.
        get_route(
            "/api/v1/children/indicators",
            Access::Requires(Permission::ReadAggregates),
            children::indicators::indicators,
        ),
        get_route(
            "/api/v1/children/indicators/{indicator}/missing",
            HEALTH_READ,
            children::indicators::missing,
        ),
        get_route(
            "/children/indicators",
            Access::Requires(Permission::ReadAggregates),
            children::indicators_page::indicators_page,
        ),
        get_route(
            "/children/indicators/{indicator}/missing",
            HEALTH_READ,
            children::indicators_page::missing_page,
        ),
        // Registry pages: search, a household, and its forms (the handlers check writes).
        get_route("/registry", READ, pages::search_page),
        get_route("/registry/households/new", WRITE, pages::edit::new_page),
        post_route("/registry/households/new", WRITE, pages::edit::create_page),
        get_route("/registry/households/{id}", READ, pages::household_page),
        get_route(
            "/registry/households/{id}/edit",
            WRITE,
            pages::edit::edit_page,
        ),
        post_route(
            "/registry/households/{id}/edit",
            WRITE,
            pages::edit::update_page,
        ),
        // Targeting: scoring models and eligibility rules (no personal data), and scores.
        post_route(
            "/api/v1/targeting/models",
            PROGRAMMES,
            targeting::save_model,
        ),
        get_route(
            "/api/v1/targeting/models",
            PROGRAMMES,
            targeting::list_models,
        ),
        get_route(
            "/api/v1/targeting/models/{id}/versions/{version}",
            PROGRAMMES,
            targeting::get_model,
        ),
        post_route(
            "/api/v1/targeting/rule-sets",
            PROGRAMMES,
            targeting::save_rule_set,
        ),
        get_route(
            "/api/v1/targeting/rule-sets",
            PROGRAMMES,
            targeting::list_rule_sets,
        ),
        post_route(
            "/api/v1/targeting/rule-check",
            PROGRAMMES,
            targeting::check_rule,
        ),
        // Aggregates only: counts and costs by area within the caller's scope.
        post_route(
            "/api/v1/targeting/simulations",
            PROGRAMMES,
            targeting::simulate,
        ),
        get_route(
            "/api/v1/households/{id}/score",
            READ,
            targeting::household_score,
        ),
        // Programmes and enrolment (enrolments are read and changed within the caller's scope).
        get_route("/api/v1/agencies", PROGRAMMES, programmes::list_agencies),
        get_route(
            "/api/v1/programmes",
            PROGRAMMES,
            programmes::list_programmes,
        ),
        post_route(
            "/api/v1/programmes",
            PROGRAMMES,
            programmes::create_programme,
        ),
        get_route(
            "/api/v1/programmes/{code}",
            PROGRAMMES,
            programmes::get_programme,
        ),
        put_route(
            "/api/v1/programmes/{code}",
            PROGRAMMES,
            programmes::update_programme,
        ),
        post_route(
            "/api/v1/programmes/{code}/enrolments",
            PROGRAMMES,
            programmes::enrol,
        ),
        get_route(
            "/api/v1/programmes/{code}/enrolments",
            PROGRAMMES,
            programmes::list_enrolments,
        ),
        get_route(
            "/api/v1/enrolments/{id}",
            PROGRAMMES,
            programmes::get_enrolment,
        ),
        post_route(
            "/api/v1/enrolments/{id}/transition",
            PROGRAMMES,
            programmes::transition,
        ),
        // Re-certification decisions (within the caller's scope).
        get_route(
            "/api/v1/programmes/{code}/recertifications",
            PROGRAMMES,
            recertifications::list,
        ),
        post_route(
            "/api/v1/recertifications/{id}/decision",
            PROGRAMMES,
            recertifications::decide,
        ),
        // Payment cycles: steps need national scope and the step's own permission (freeze and
        // verify: manage_programmes; approve: approve_payments), checked by the handlers;
        // entitlements, the payment list and statuses are within the caller's scope.
        get_route(
            "/api/v1/programmes/{code}/cycles",
            PAYMENTS,
            cycles::list_cycles,
        ),
        post_route(
            "/api/v1/programmes/{code}/cycles",
            PROGRAMMES,
            cycles::create_cycle,
        ),
        get_route("/api/v1/cycles/{id}", PAYMENTS, cycles::get_cycle),
        post_route("/api/v1/cycles/{id}/steps", PAYMENTS, cycles::take_step),
        get_route(
            "/api/v1/cycles/{id}/entitlements",
            PAYMENTS,
            cycles::list_entitlements,
        ),
        get_route(
            "/api/v1/cycles/{id}/payments.csv",
            PAYMENTS,
            cycles::export_payments,
        ),
        post_route(
            "/api/v1/cycles/{id}/payments/{reference}/status",
            PAYMENTS,
            cycles::record_status,
        ),
        // A status file for a national cycle can be large: 64 MiB.
        upload_route(
            "/api/v1/cycles/{id}/payment-statuses",
            PAYMENTS,
            64 * 1024 * 1024,
            cycles::upload_statuses,
        ),
        // Programme pages: the list, set-up with the rule editor, and enrolments (scoped).
        get_route("/programmes", PAYMENTS, programmes::pages::list_page),
        get_route("/programmes/new", PROGRAMMES, programmes::pages::new_page),
        post_route(
            "/programmes/new",
            PROGRAMMES,
            programmes::pages::create_page,
        ),
        post_route(
            "/programmes/rule-check",
            PROGRAMMES,
            programmes::pages::rule_check_fragment,
        ),
        get_route(
            "/programmes/{code}/edit",
            PROGRAMMES,
            programmes::pages::edit_page,
        ),
        post_route(
            "/programmes/{code}/edit",
            PROGRAMMES,
            programmes::pages::update_page,
        ),
        post_route(
            "/programmes/{code}/simulate",
            PROGRAMMES,
            programmes::pages::simulate_fragment,
        ),
        get_route(
            "/programmes/{code}/enrolments",
            PROGRAMMES,
            programmes::pages::enrolments_page,
        ),
        get_route("/programmes/{code}/cycles", PAYMENTS, cycles::cycles_page),
        post_route(
            "/programmes/{code}/cycles",
            PROGRAMMES,
            cycles::create_cycle_page,
        ),
        post_route("/cycles/{id}/steps", PAYMENTS, cycles::step_page),
        // The consolidated beneficiary registry.
        get_route("/api/v1/beneficiaries", READ, programmes::beneficiaries),
        // Web pages over public reference data, and their static assets.
        get_route("/", Public, web::home::page),
        get_route("/areas", Public, web::areas::page),
        get_route("/api/docs", Public, web::api_docs::page),
        get_route("/assets/{*path}", Public, web::assets::serve),
    ]
}

/// Subtrees owned by other contexts' routers.
fn mounts() -> Vec<(MountSpec, Router<AppState>)> {
    vec![(
        MountSpec {
            prefix: "/api/v1/areas",
            access: Access::Public,
        },
        crate::areas::routes(),
    )]
}

/// Every route, for the route-table test and documentation.
pub fn specs() -> Vec<RouteSpec> {
    all().into_iter().map(|r| r.spec).collect()
}

pub fn mount_specs() -> Vec<MountSpec> {
    mounts().into_iter().map(|(m, _)| m).collect()
}

/// The router of every registered route and mount.
pub(crate) fn router() -> Router<AppState> {
    let mut router = Router::new();
    for r in all() {
        // Routes on one path with different methods merge into one method router.
        router = router.route(r.spec.path, r.handler);
    }
    for (m, sub) in mounts() {
        router = router.nest(m.prefix, sub);
    }
    router
}
