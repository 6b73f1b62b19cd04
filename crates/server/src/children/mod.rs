//! The integrated child record: facts about children under six and their mothers received from
//! health systems (FHIR R4), linked to registry people, and the services due to each.

pub mod dhis2;
pub mod fhir;
pub mod indicators;
pub mod indicators_page;
pub mod ingest;
pub mod link;
pub mod page;
pub mod push;
pub mod services;
pub mod status;

use utoipa::OpenApi;

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
        indicators::indicators,
        indicators::missing,
        indicators_page::indicators_page,
    ),
    components(schemas(services::ServicesView, services::Worklist, services::VillageList,
        services::OverdueChild, services::OverdueItem, indicators::IndicatorTable,
        indicators::AreaRow, indicators::Cell, indicators::MissingList,
        indicators::MissingChild)),
    tags((name = "fhir", description = "FHIR R4 for the child record (application/fhir+json; errors are OperationOutcome)"),
        (name = "children", description = "Services due to children under six and their mothers, and worklists"))
)]
struct ChildrenApi;

pub fn api() -> utoipa::openapi::OpenApi {
    ChildrenApi::openapi()
}
