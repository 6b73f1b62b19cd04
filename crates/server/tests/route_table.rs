//! Walks EVERY route of the router: an anonymous caller and a caller scoped to another district
//! are refused on every protected route, public routes are listed as public on purpose, and a
//! route added without an entry here fails the test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::*;
use inkingi_domain::identity::Role;
use inkingi_server::routes::{self, Access};
use inkingi_testkit::{databases, TestApp};

/// What an anonymous caller gets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Anonymous {
    /// Public: served (this status) without credentials.
    Served(u16),
    /// 401 problem+json.
    Unauthorized,
    /// A web page: 303 to the sign-in page.
    ToLogin,
}

/// What a caller holding the right role but scoped to another district gets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Foreign {
    /// Public route: nothing to hide.
    NotApplicable,
    /// 403 or 404 (without saying whether the thing exists): routes naming one record.
    Refused,
    /// Served, but nothing from the other district is in the answer.
    Filtered,
}

struct Entry {
    method: &'static str,
    path: &'static str,
    /// A concrete path to call (path parameters filled in).
    call: &'static str,
    anonymous: Anonymous,
    foreign: Foreign,
    /// The role a "foreign" caller gets: one that has the route's permission.
    role: Option<Role>,
}

const fn public(method: &'static str, path: &'static str, status: u16) -> Entry {
    Entry {
        method,
        path,
        call: path,
        anonymous: Anonymous::Served(status),
        foreign: Foreign::NotApplicable,
        role: None,
    }
}

/// The expectations, one per route. Keep in step with `inkingi_server::routes`.
const TABLE: &[Entry] = &[
    public("GET", "/healthz", 200),
    public("GET", "/readyz", 200),
    public("GET", "/metrics", 200),
    public("GET", "/api/v1/openapi.json", 200),
    public("GET", "/login", 200),
    public("GET", "/", 200),
    public("GET", "/areas", 200),
    public("GET", "/api/docs", 200),
    // Without a form: grant_type is missing.
    public("POST", "/dci/oauth2/client/token", 400),
    // SMS delivery reports without their parameters: refused, naming the field.
    public("GET", "/sms/dlr/kannel", 400),
    public("POST", "/sms/dlr/africastalking", 400),
    public("GET", "/dci/.well-known/jwks.json", 200),
    Entry {
        call: "/assets/app.css",
        ..public("GET", "/assets/{*path}", 200)
    },
    // Reachable by anyone; without the form's CSRF token it is refused.
    public("POST", "/login", 403),
    Entry {
        method: "POST",
        path: "/logout",
        call: "/logout",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/account/password",
        call: "/account/password",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/account/password",
        call: "/account/password",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/api/v1/audit",
        call: "/api/v1/audit?limit=500",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::Filtered,
        role: Some(Role::Auditor),
    },
    Entry {
        method: "GET",
        path: "/audit",
        call: "/audit",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::Filtered,
        role: Some(Role::Auditor),
    },
    // Area filtering of DCI searches is tested in `dci.rs` (a caller scoped elsewhere finds
    // nothing); here: no anonymous or garbage-token access.
    Entry {
        method: "POST",
        path: "/dci/registry/sync/search",
        call: "/dci/registry/sync/search",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    // Area filtering of DCI searches is tested in `dci.rs` (a caller scoped elsewhere finds
    // nothing); here: no anonymous or garbage-token access.
    Entry {
        method: "POST",
        path: "/dci/registry/search",
        call: "/dci/registry/search",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    // Area filtering of DCI searches is tested in `dci.rs` (a caller scoped elsewhere finds
    // nothing); here: no anonymous or garbage-token access.
    Entry {
        method: "POST",
        path: "/dci/registry/sync/txn/status",
        call: "/dci/registry/sync/txn/status",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    // Area filtering of DCI searches is tested in `dci.rs` (a caller scoped elsewhere finds
    // nothing); here: no anonymous or garbage-token access.
    Entry {
        method: "POST",
        path: "/dci/registry/txn/status",
        call: "/dci/registry/txn/status",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    // Notifications are scoped to the subscriber's area (tested in `dci_events.rs`); here: no
    // anonymous or garbage-token access.
    Entry {
        method: "POST",
        path: "/dci/registry/subscribe",
        call: "/dci/registry/subscribe",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/dci/registry/unsubscribe",
        call: "/dci/registry/unsubscribe",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    // IBR: scope is tested in `dci_ibr.rs` (a caller scoped elsewhere finds nothing, a reader
    // may not report enrolments); here: no anonymous or garbage-token access.
    Entry {
        method: "POST",
        path: "/dci/registry/sync/enrolled",
        call: "/dci/registry/sync/enrolled",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/dci/registry/enrolled",
        call: "/dci/registry/enrolled",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/dci/registry/sync/enrollment/updates",
        call: "/dci/registry/sync/enrollment/updates",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/dci/registry/enrollment/updates",
        call: "/dci/registry/enrollment/updates",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    // Civil registration events: a national-scope client delivers them (tested in
    // `crvs.rs`, which also checks a district-scoped caller is refused).
    Entry {
        method: "POST",
        path: "/dci/crvs/notify",
        call: "/dci/crvs/notify",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/dci/crvs/on-subscribe",
        call: "/dci/crvs/on-subscribe",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
];

const fn api(
    method: &'static str,
    path: &'static str,
    call: &'static str,
    foreign: Foreign,
    role: Role,
) -> Entry {
    Entry {
        method,
        path,
        call,
        anonymous: Anonymous::Unauthorized,
        foreign,
        role: Some(role),
    }
}

/// The registry's routes; `{hh}` and `{person}` in `call` are replaced by a household and a
/// person registered in district 11.
const REGISTRY: &[Entry] = &[
    api(
        "POST",
        "/api/v1/households",
        "/api/v1/households",
        Foreign::NotApplicable,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/households",
        "/api/v1/households",
        Foreign::Filtered,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/households/{id}",
        "/api/v1/households/{hh}",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "PATCH",
        "/api/v1/households/{id}",
        "/api/v1/households/{hh}",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/households/{id}/history",
        "/api/v1/households/{hh}/history",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "POST",
        "/api/v1/households/{id}/members",
        "/api/v1/households/{hh}/members",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/individuals/search",
        "/api/v1/individuals/search?q=Uwase",
        Foreign::Filtered,
        Role::DistrictOfficer,
    ),
    // Scoping of candidates is tested in `people_match.rs` (an empty form body is a 422 here).
    api(
        "POST",
        "/api/v1/individuals/match",
        "/api/v1/individuals/match",
        Foreign::NotApplicable,
        Role::DistrictOfficer,
    ),
    // The index's size and position: any signed-in user, no personal data.
    Entry {
        method: "GET",
        path: "/api/v1/individuals/match/status",
        call: "/api/v1/individuals/match/status",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    api(
        "GET",
        "/api/v1/individuals/{id}",
        "/api/v1/individuals/{person}",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "PATCH",
        "/api/v1/individuals/{id}",
        "/api/v1/individuals/{person}",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/individuals/{id}/id-checks",
        "/api/v1/individuals/{person}/id-checks",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "POST",
        "/api/v1/individuals/{id}/id-checks",
        "/api/v1/individuals/{person}/id-checks",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/id-checks",
        "/api/v1/id-checks",
        Foreign::Filtered,
        Role::DistrictOfficer,
    ),
    api(
        "POST",
        "/api/v1/webhooks",
        "/api/v1/webhooks",
        Foreign::NotApplicable,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/webhooks",
        "/api/v1/webhooks",
        Foreign::Filtered,
        Role::DistrictOfficer,
    ),
    api(
        "DELETE",
        "/api/v1/webhooks/{id}",
        "/api/v1/webhooks/0190f2a4-0000-7000-8000-000000000000",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/crvs/events",
        "/api/v1/crvs/events",
        Foreign::Filtered,
        Role::DistrictOfficer,
    ),
    api(
        "PATCH",
        "/api/v1/memberships/{person_id}",
        "/api/v1/memberships/{person}",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "POST",
        "/api/v1/memberships/{person_id}/end",
        "/api/v1/memberships/{person}/end",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    // Schemas hold no personal data: any signed-in user reads them.
    Entry {
        method: "GET",
        path: "/api/v1/forms/{form_id}",
        call: "/api/v1/forms/rw-socioeconomic",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/api/v1/forms/{form_id}/versions/{version}",
        call: "/api/v1/forms/rw-socioeconomic/versions/1",
        anonymous: Anonymous::Unauthorized,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    api(
        "POST",
        "/api/v1/forms",
        "/api/v1/forms",
        Foreign::NotApplicable,
        Role::SystemAdmin,
    ),
    // Bulk imports need a national scope: a district officer is refused.
    api(
        "POST",
        "/api/v1/imports",
        "/api/v1/imports",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/imports/{id}",
        "/api/v1/imports/{hh}",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/imports/{id}/errors",
        "/api/v1/imports/{hh}/errors",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    // Change requests. A foreign caller cannot submit one naming district 11's household.
    api(
        "POST",
        "/api/v1/change-requests",
        "/api/v1/change-requests",
        Foreign::NotApplicable,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/change-requests",
        "/api/v1/change-requests",
        Foreign::Filtered,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/change-requests/{id}",
        "/api/v1/change-requests/{hh}",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "POST",
        "/api/v1/change-requests/{id}/decision",
        "/api/v1/change-requests/{hh}/decision",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    Entry {
        method: "GET",
        path: "/change-requests",
        call: "/change-requests",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/change-requests/{id}/decision",
        call: "/change-requests/00000000-0000-0000-0000-000000000000/decision",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    // The linkage review queue: listed within scope, another area's review is not found.
    api(
        "GET",
        "/api/v1/linkage/reviews",
        "/api/v1/linkage/reviews",
        Foreign::Filtered,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/linkage/reviews/{id}",
        "/api/v1/linkage/reviews/{hh}",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "POST",
        "/api/v1/linkage/reviews/{id}/confirm",
        "/api/v1/linkage/reviews/{hh}/confirm",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "POST",
        "/api/v1/linkage/reviews/{id}/dismiss",
        "/api/v1/linkage/reviews/{hh}/dismiss",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "POST",
        "/api/v1/linkage/reviews/{id}/unlink",
        "/api/v1/linkage/reviews/{hh}/unlink",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    Entry {
        method: "GET",
        path: "/linkage/reviews",
        call: "/linkage/reviews",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/linkage/reviews/{id}",
        call: "/linkage/reviews/00000000-0000-0000-0000-000000000000",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/linkage/reviews/{id}/confirm",
        call: "/linkage/reviews/00000000-0000-0000-0000-000000000000/confirm",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/linkage/reviews/{id}/dismiss",
        call: "/linkage/reviews/00000000-0000-0000-0000-000000000000/dismiss",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/registry",
        call: "/registry",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/registry/households/new",
        call: "/registry/households/new",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/registry/households/new",
        call: "/registry/households/new",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/registry/households/{id}",
        call: "/registry/households/00000000-0000-0000-0000-000000000000",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/registry/households/{id}/edit",
        call: "/registry/households/00000000-0000-0000-0000-000000000000/edit",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    // The "verify now" button; the CSRF check and scope are tested in `id_checks.rs`.
    Entry {
        method: "POST",
        path: "/registry/people/{id}/id-checks",
        call: "/registry/people/00000000-0000-0000-0000-000000000000/id-checks",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/registry/households/{id}/edit",
        call: "/registry/households/00000000-0000-0000-0000-000000000000/edit",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
];

/// Targeting and programmes. Configuration (models, rules, programmes) holds no personal data;
/// routes naming one enrolment, household or person refuse a caller scoped elsewhere.
const PROGRAMMES: &[Entry] = &[
    api(
        "POST",
        "/api/v1/targeting/models",
        "/api/v1/targeting/models",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/targeting/models",
        "/api/v1/targeting/models",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/targeting/models/{id}/versions/{version}",
        "/api/v1/targeting/models/pmt-default/versions/1",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/targeting/rule-sets",
        "/api/v1/targeting/rule-sets",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/targeting/rule-sets",
        "/api/v1/targeting/rule-sets",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/targeting/rule-check",
        "/api/v1/targeting/rule-check",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/targeting/simulations",
        "/api/v1/targeting/simulations",
        Foreign::Filtered,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/households/{id}/score",
        "/api/v1/households/{hh}/score",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/agencies",
        "/api/v1/agencies",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/programmes",
        "/api/v1/programmes",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/programmes",
        "/api/v1/programmes",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/programmes/{code}",
        "/api/v1/programmes/vup_ds",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "PUT",
        "/api/v1/programmes/{code}",
        "/api/v1/programmes/vup_ds",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/programmes/{code}/enrolments",
        "/api/v1/programmes/vup_ds/enrolments",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/programmes/{code}/enrolments",
        "/api/v1/programmes/vup_ds/enrolments",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/enrolments/{id}",
        "/api/v1/enrolments/{hh}",
        Foreign::Refused,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/enrolments/{id}/transition",
        "/api/v1/enrolments/{hh}/transition",
        Foreign::Refused,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/beneficiaries",
        "/api/v1/beneficiaries?household={hh}",
        Foreign::Refused,
        Role::DistrictOfficer,
    ),
    api(
        "GET",
        "/api/v1/programmes/{code}/recertifications",
        "/api/v1/programmes/vup_ds/recertifications",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/recertifications/{id}/decision",
        "/api/v1/recertifications/{hh}/decision",
        Foreign::Refused,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/programmes/{code}/cycles",
        "/api/v1/programmes/vup_ds/cycles",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/programmes/{code}/cycles",
        "/api/v1/programmes/vup_ds/cycles",
        Foreign::NotApplicable,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/cycles/{id}",
        "/api/v1/cycles/{hh}",
        Foreign::Refused,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/cycles/{id}/steps",
        "/api/v1/cycles/{hh}/steps",
        Foreign::Refused,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/cycles/{id}/entitlements",
        "/api/v1/cycles/{hh}/entitlements",
        Foreign::Refused,
        Role::ProgrammeManager,
    ),
    api(
        "GET",
        "/api/v1/cycles/{id}/payments.csv",
        "/api/v1/cycles/{hh}/payments.csv",
        Foreign::Refused,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/cycles/{id}/payments/{reference}/status",
        "/api/v1/cycles/{hh}/payments/x-000001/status",
        Foreign::Refused,
        Role::ProgrammeManager,
    ),
    api(
        "POST",
        "/api/v1/cycles/{id}/payment-statuses",
        "/api/v1/cycles/{hh}/payment-statuses",
        Foreign::Refused,
        Role::ProgrammeManager,
    ),
    Entry {
        method: "GET",
        path: "/programmes",
        call: "/programmes",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/programmes/new",
        call: "/programmes/new",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/programmes/new",
        call: "/programmes/new",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/programmes/rule-check",
        call: "/programmes/rule-check",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/programmes/{code}/edit",
        call: "/programmes/vup_ds/edit",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/programmes/{code}/edit",
        call: "/programmes/vup_ds/edit",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/programmes/{code}/simulate",
        call: "/programmes/vup_ds/simulate",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/programmes/{code}/enrolments",
        call: "/programmes/vup_ds/enrolments",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/programmes/{code}/cycles",
        call: "/programmes/vup_ds/cycles",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/programmes/{code}/cycles",
        call: "/programmes/vup_ds/cycles",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "POST",
        path: "/cycles/{id}/steps",
        call: "/cycles/00000000-0000-0000-0000-000000000000/steps",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
];

/// The child record: FHIR R4 and the services due; `{person}` is the seeded person.
const CHILDREN: &[Entry] = &[
    public("GET", "/fhir/R4/metadata", 200),
    api(
        "POST",
        "/fhir/R4",
        "/fhir/R4",
        Foreign::NotApplicable,
        Role::HealthWorker,
    ),
    api(
        "POST",
        "/fhir/R4/Patient",
        "/fhir/R4/Patient",
        Foreign::NotApplicable,
        Role::HealthWorker,
    ),
    api(
        "POST",
        "/fhir/R4/RelatedPerson",
        "/fhir/R4/RelatedPerson",
        Foreign::NotApplicable,
        Role::HealthWorker,
    ),
    api(
        "POST",
        "/fhir/R4/Immunization",
        "/fhir/R4/Immunization",
        Foreign::NotApplicable,
        Role::HealthWorker,
    ),
    api(
        "POST",
        "/fhir/R4/Observation",
        "/fhir/R4/Observation",
        Foreign::NotApplicable,
        Role::HealthWorker,
    ),
    api(
        "POST",
        "/fhir/R4/Encounter",
        "/fhir/R4/Encounter",
        Foreign::NotApplicable,
        Role::HealthWorker,
    ),
    api(
        "GET",
        "/fhir/R4/Patient/{id}",
        "/fhir/R4/Patient/{person}",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    api(
        "GET",
        "/fhir/R4/Immunization",
        "/fhir/R4/Immunization?patient={person}",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    api(
        "GET",
        "/fhir/R4/Observation",
        "/fhir/R4/Observation?patient={person}",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    api(
        "GET",
        "/fhir/R4/Encounter",
        "/fhir/R4/Encounter?patient={person}",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    api(
        "GET",
        "/api/v1/children/{person_id}/services",
        "/api/v1/children/{person}/services",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    // The school and child-protection feeds; restricted reads.
    api(
        "POST",
        "/api/v1/children/feeds/school",
        "/api/v1/children/feeds/school",
        Foreign::NotApplicable,
        Role::HealthWorker,
    ),
    api(
        "POST",
        "/api/v1/children/feeds/protection",
        "/api/v1/children/feeds/protection",
        Foreign::NotApplicable,
        Role::HealthWorker,
    ),
    api(
        "GET",
        "/api/v1/children/{person_id}/protection",
        "/api/v1/children/{person}/protection",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    api(
        "GET",
        "/api/v1/children/{person_id}/hiv-exposure",
        "/api/v1/children/{person}/hiv-exposure",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    // Scoped to district 12, asking for district 11: refused (403).
    api(
        "GET",
        "/api/v1/worklists/overdue",
        "/api/v1/worklists/overdue?area=11",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    Entry {
        method: "GET",
        path: "/children/{person_id}",
        call: "/children/{person}",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    // Child indicators: scoped to district 12, asking for district 11 (403).
    api(
        "GET",
        "/api/v1/children/indicators",
        "/api/v1/children/indicators?area=11",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    api(
        "GET",
        "/api/v1/children/indicators/{indicator}/missing",
        "/api/v1/children/indicators/fic12/missing?area=11",
        Foreign::Refused,
        Role::HealthWorker,
    ),
    Entry {
        method: "GET",
        path: "/children/indicators",
        call: "/children/indicators",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
    Entry {
        method: "GET",
        path: "/children/indicators/{indicator}/missing",
        call: "/children/indicators/fic12/missing",
        anonymous: Anonymous::ToLogin,
        foreign: Foreign::NotApplicable,
        role: None,
    },
];

fn all_entries() -> impl Iterator<Item = &'static Entry> {
    TABLE
        .iter()
        .chain(REGISTRY)
        .chain(PROGRAMMES)
        .chain(CHILDREN)
}

/// Subtrees mounted from other contexts, all public reference data.
const PUBLIC_MOUNTS: &[&str] = &["/api/v1/areas"];

fn key(method: &str, path: &str) -> (String, String) {
    (method.to_string(), path.to_string())
}

#[test]
fn every_route_has_an_entry_and_every_entry_a_route() {
    let registered: BTreeSet<_> = routes::specs()
        .iter()
        .map(|s| key(s.method.as_str(), s.path))
        .collect();
    let listed: BTreeSet<_> = all_entries().map(|e| key(e.method, e.path)).collect();
    let missing: Vec<_> = registered.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in TABLE: {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&registered).collect();
    assert!(
        stale.is_empty(),
        "TABLE entries for routes that do not exist: {stale:?}"
    );

    for spec in routes::specs() {
        let e = all_entries()
            .find(|e| e.method == spec.method.as_str() && e.path == spec.path)
            .unwrap();
        let table_public = matches!(e.anonymous, Anonymous::Served(_));
        assert_eq!(
            table_public,
            spec.access == Access::Public,
            "{} {}: the registry says {:?}",
            e.method,
            e.path,
            spec.access
        );
    }
    let mounts: Vec<_> = routes::mount_specs();
    for m in &mounts {
        assert!(
            PUBLIC_MOUNTS.contains(&m.prefix),
            "mount {} has no entry",
            m.prefix
        );
        assert_eq!(m.access, Access::Public, "mount {}", m.prefix);
    }
}

/// A documented operation that bypassed the registry would be served without being walked.
#[test]
fn every_documented_operation_is_registered() {
    let doc = serde_json::to_value(inkingi_server::openapi::document()).unwrap();
    let specs = routes::specs();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if PUBLIC_MOUNTS.iter().any(|m| path.starts_with(m)) {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            if method == "PARAMETERS" {
                continue;
            }
            assert!(
                specs
                    .iter()
                    // OpenAPI writes axum's catch-all `{*rest}` as `{rest}`.
                    .any(|s| s.method.as_str() == method && s.path.replace("{*", "{") == *path),
                "{method} {path} is in the OpenAPI document but not in the route registry"
            );
        }
    }
}

async fn call(
    app: &TestApp,
    e: &Entry,
    header: Option<(&str, &str)>,
    ids: &(String, String),
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(e.method.as_bytes()).unwrap();
    let call = e.call.replace("{hh}", &ids.0).replace("{person}", &ids.1);
    let mut req = app.client.request(method.clone(), app.url(&call));
    if method == reqwest::Method::POST {
        // What a browser sends for an empty form.
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body("");
    }
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    req.send().await.unwrap()
}

/// A household in village 11010102 with one member; returns (household id, person id).
async fn seed_household(app: &TestApp) -> (String, String) {
    add_user(app, "seed.officer", Role::DistrictOfficer, "11").await;
    let t = token(app, "seed.officer", &["write"]).await;
    let body = serde_json::json!({
        "village": "11010102",
        "answers": {"tenure": "owner", "wall": "mud_bricks", "roof": "iron_sheets",
            "floor": "earth", "rooms": 2, "water_source": "public_tap",
            "toilet": "pit_latrine_slab", "lighting": "solar", "cooking_fuel": "firewood",
            "owns_land": false, "owns_livestock": false, "income_sources": ["farming"],
            "meals_per_day": 2},
        "members": [{"given_name": "P-SECRET-11", "family_name": "Uwase", "sex": "F", "role": "head"}]
    });
    let res = app
        .client
        .post(app.url("/api/v1/households"))
        .bearer_auth(&t)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let h: serde_json::Value = res.json().await.unwrap();
    (
        h["id"].as_str().unwrap().to_string(),
        h["members"][0]["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn anonymous_and_foreign_callers_are_refused_on_every_protected_route() {
    for db in databases().await {
        // Every route is called with a garbage token from one address: allow more failed token
        // authentications than there are routes, or the limiter (rightly) answers 429 midway.
        let mut settings = inkingi_server::ServerSettings::default();
        settings.auth.token_rate = inkingi_server::auth::RateLimit {
            per_minute: 600,
            burst: 1000,
        };
        let app = TestApp::start_with(&db, settings).await;
        // Data in district 11 (Nyarugenge); the foreign callers are scoped to district 12.
        seed_reads(&app, "11010102", "P-SECRET-11", 3).await;
        add_user(&app, "foreign.auditor", Role::Auditor, "12").await;
        add_user(&app, "local.partner", Role::Partner, "11").await;
        add_user(&app, "foreign.officer", Role::DistrictOfficer, "12").await;
        add_user(&app, "foreign.admin", Role::SystemAdmin, "national").await;
        add_user(&app, "foreign.manager", Role::ProgrammeManager, "12").await;
        add_user(&app, "foreign.health", Role::HealthWorker, "12").await;
        let foreign_tokens: std::collections::HashMap<Role, String> = [
            (
                Role::DistrictOfficer,
                token(
                    &app,
                    "foreign.officer",
                    &["read", "write", "purpose:registration"],
                )
                .await,
            ),
            (
                Role::SystemAdmin,
                token(&app, "foreign.admin", &["admin"]).await,
            ),
            (
                Role::ProgrammeManager,
                token(&app, "foreign.manager", &["read", "write"]).await,
            ),
            (
                Role::HealthWorker,
                token(
                    &app,
                    "foreign.health",
                    &["read", "write", "purpose:healthcare"],
                )
                .await,
            ),
        ]
        .into_iter()
        .collect();
        let ids = seed_household(&app).await;
        let foreign_token = token(&app, "foreign.auditor", &["audit"]).await;
        let foreign_session = session(&app, "foreign.auditor").await;
        // A partner holds none of the permissions of the protected API routes.
        let wrong_role_token = token(&app, "local.partner", &["read", "write"]).await;
        add_user(&app, "other.auditor", Role::Auditor, "12").await;
        let auditor_token = token(&app, "other.auditor", &["read", "write"]).await;

        for e in all_entries() {
            let what = format!("[{:?}] {} {}", db, e.method, e.call);
            let res = call(&app, e, None, &ids).await;
            match e.anonymous {
                Anonymous::Served(status) => {
                    assert_eq!(res.status().as_u16(), status, "{what}");
                    continue;
                }
                Anonymous::Unauthorized => {
                    assert!(
                        res.headers().contains_key("www-authenticate"),
                        "{what}: no challenge"
                    );
                    problem(res, 401).await;
                }
                Anonymous::ToLogin => {
                    assert_eq!(res.status(), 303, "{what}");
                    let to = res.headers()["location"].to_str().unwrap();
                    assert!(to.starts_with("/login?next="), "{what}: {to}");
                }
            }
            // A garbage credential is no better than none.
            let res = call(&app, e, Some(("authorization", "Bearer ink_garbage")), &ids).await;
            let s = res.status().as_u16();
            assert!(s == 401 || s == 303, "{what} with a malformed token: {s}");

            let Some(role) = e.role else { continue };
            // Right role, wrong district: by token (API) and by session (pages and API).
            let api = e.path.starts_with("/api/");
            let credential = if role != Role::Auditor {
                ("authorization", format!("Bearer {}", foreign_tokens[&role]))
            } else if api {
                ("authorization", format!("Bearer {foreign_token}"))
            } else {
                ("cookie", foreign_session.clone())
            };
            let res = call(&app, e, Some((credential.0, &credential.1)), &ids).await;
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            match e.foreign {
                Foreign::Refused => {
                    assert!(status == 403 || status == 404, "{what}: {status} {body}")
                }
                Foreign::Filtered => {
                    assert_eq!(status, 200, "{what}: {body}");
                    assert!(!body.contains("P-SECRET-11"), "{what} leaked: {body}");
                    assert!(!body.contains("11010102"), "{what} leaked: {body}");
                }
                Foreign::NotApplicable => {}
            }
            // The wrong role is refused whatever its scope. Partners may submit change
            // requests and read aggregates, so on those routes the wrong role is an auditor.
            if api {
                let wrong = if e.path.starts_with("/api/v1/change-requests")
                    || e.path == "/api/v1/children/indicators"
                {
                    &auditor_token
                } else {
                    &wrong_role_token
                };
                let res = call(
                    &app,
                    e,
                    Some(("authorization", &format!("Bearer {wrong}"))),
                    &ids,
                )
                .await;
                problem(res, 403).await;
            }
        }

        // The same calls with the owner's scope do see the data, so "filtered" above is real.
        add_user(&app, "local.auditor", Role::Auditor, "11").await;
        let local = token(&app, "local.auditor", &["audit"]).await;
        let res = bearer(&app, "/api/v1/audit?subject_id=P-SECRET-11", &local).await;
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["entries"].as_array().unwrap().len(), 3, "{body}");
        app.stop().await;
    }
}

#[tokio::test]
async fn public_mounts_need_no_credentials() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        for m in PUBLIC_MOUNTS {
            let res = app.get(m).await;
            assert_ne!(res.status(), 401, "[{db:?}] {m}");
            assert_ne!(res.status(), 403, "[{db:?}] {m}");
        }
        app.stop().await;
    }
}
