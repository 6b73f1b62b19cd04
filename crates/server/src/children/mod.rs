//! The integrated child record: facts about children under six and their mothers received from
//! health systems (FHIR R4), linked to registry people, and the services due to each.

pub mod charts;
pub mod dhis2;
pub mod feeds;
pub mod fhir;
pub mod indicators;
pub mod indicators_page;
pub mod ingest;
pub mod link;
pub mod page;
pub mod push;
pub mod reminders;
pub mod sealed;
pub mod sensitive;
pub mod services;
pub mod sms_dlr;
pub mod status;

use std::sync::Arc;
use utoipa::OpenApi;

/// Settings of the child record.
#[derive(Debug, Clone, Default)]
pub struct ChildrenSettings {
    /// `[children] field_key_file`: without keys, sensitive facts are refused.
    pub field_keys: Option<Arc<sealed::FieldKeys>>,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        fhir::metadata,
        fhir::bundle,
        fhir::create_patient,
        fhir::create_related_person,
        fhir::create_immunization,
        fhir::create_observation,
        fhir::create_encounter,
        fhir::read_patient,
        fhir::search_immunization,
        fhir::search_observation,
        fhir::search_encounter,
        services::services,
        services::overdue,
        page::child_page,
        sms_dlr::kannel,
        sms_dlr::africastalking,
        feeds::school,
        feeds::protection,
        feeds::protection_read,
        sensitive::hiv_exposure,
        indicators::indicators,
        indicators::missing,
        indicators_page::indicators_page,
        indicators_page::missing_page,
    ),
    components(schemas(services::ServicesView, services::Worklist, services::VillageList,
        services::OverdueChild, services::OverdueItem, sms_dlr::ReportAnswer, sms_dlr::AtReport,
        feeds::FeedSummary, feeds::FeedBody,
        sensitive::HivExposureView, sensitive::HivExposureRecord,
        indicators::IndicatorTable,
        indicators::AreaRow, indicators::Cell, indicators::MissingList,
        indicators::MissingChild)),
    tags((name = "fhir", description = "FHIR R4 for the child record (application/fhir+json; errors are OperationOutcome)"),
        (name = "children", description = "Services due to children under six and their mothers, and worklists"))
)]
struct ChildrenApi;

pub fn api() -> utoipa::openapi::OpenApi {
    ChildrenApi::openapi()
}
