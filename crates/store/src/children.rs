//! Port of the `children` context (schema: migrations `0014_children`): facts about children
//! under six and their mothers as health systems sent them — immunisations, measurements,
//! pregnancies and contacts — each with its provenance, the source persons they came with, and
//! the linkage review queue.
//!
//! Every write is idempotent by (source system, source id): a fact already received is not
//! written again, and the call says so. Reads of personal data take the reader's scope: a
//! linked fact is visible where its registry person lives, an unlinked one where its source
//! person was received.

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::identity::AreaScope;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{StoreResult, UnitOfWork};

/// Where a fact came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    pub source_system: String,
    pub source_id: String,
    pub received_at: DateTime<Utc>,
    /// The user (or token's user) that sent it.
    pub received_by: String,
}

/// Whom a fact is about: the registry person, the source person it came with, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub person_id: Option<Uuid>,
    pub source_person_id: Option<Uuid>,
}

/// A person as a source system sent it (FHIR Patient or RelatedPerson).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourcePerson {
    pub id: Uuid,
    /// `patient` or `related_person`.
    pub kind: String,
    /// The registry person it is linked to; `None` while unlinked.
    pub person_id: Option<Uuid>,
    /// How it was linked: `national_id`, `birth_registration`, `registry_id` or `linkage`.
    pub link_method: Option<String>,
    pub area_code: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
    /// `[{"system": …, "value": …}]` as received.
    pub identifiers: Value,
    pub related_to: Option<Uuid>,
    pub relationship: Option<String>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Immunization {
    pub id: Uuid,
    #[serde(flatten)]
    pub subject: Subject,
    pub vaccine_system: String,
    pub vaccine_code: String,
    /// The vaccine the code maps to; `None` for a code not mapped yet.
    pub vaccine: Option<String>,
    pub needs_mapping: bool,
    pub dose_number: Option<u32>,
    pub occurred_on: NaiveDate,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// What a measurement measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasurementKind {
    Weight,
    Height,
    Length,
    HeadCircumference,
    Muac,
}

impl MeasurementKind {
    pub const ALL: [MeasurementKind; 5] = [
        MeasurementKind::Weight,
        MeasurementKind::Height,
        MeasurementKind::Length,
        MeasurementKind::HeadCircumference,
        MeasurementKind::Muac,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            MeasurementKind::Weight => "weight",
            MeasurementKind::Height => "height",
            MeasurementKind::Length => "length",
            MeasurementKind::HeadCircumference => "head_circumference",
            MeasurementKind::Muac => "muac",
        }
    }

    pub fn parse(s: &str) -> Option<MeasurementKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub id: Uuid,
    #[serde(flatten)]
    pub subject: Subject,
    pub kind: MeasurementKind,
    pub loinc: String,
    pub value: f64,
    pub unit: String,
    pub measured_on: NaiveDate,
    /// Indicator name → z-score, computed when stored.
    pub zscores: Value,
    #[serde(flatten)]
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pregnancy {
    pub id: Uuid,
    #[serde(flatten)]
    pub subject: Subject,
    pub lmp: Option<NaiveDate>,
    pub edd: Option<NaiveDate>,
    /// `live_birth`, `stillbirth`, `miscarriage` or `abortion`.
    pub outcome: Option<String>,
    pub outcome_on: Option<NaiveDate>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Encounter {
    pub id: Uuid,
    #[serde(flatten)]
    pub subject: Subject,
    /// `anc`, `pnc` or `other`.
    pub kind: String,
    pub pregnancy_id: Option<Uuid>,
    pub occurred_on: NaiveDate,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// What a feed fact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    /// Enrolled in pre-primary school (school data).
    PreprimaryEnrolment,
    /// A child-protection case: a most-vulnerable-children flag or a child-labour case.
    /// Readable only with the child-protection purpose.
    ProtectionCase,
    /// HIV exposure (mother-to-child-HIV tracker): its value is sealed.
    HivExposure,
}

impl FeedKind {
    pub const ALL: [FeedKind; 3] = [
        FeedKind::PreprimaryEnrolment,
        FeedKind::ProtectionCase,
        FeedKind::HivExposure,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            FeedKind::PreprimaryEnrolment => "preprimary_enrolment",
            FeedKind::ProtectionCase => "protection_case",
            FeedKind::HivExposure => "hiv_exposure",
        }
    }

    pub fn parse(s: &str) -> Option<FeedKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A value sealed with an AEAD: the id of the key that sealed it, and nonce || ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

/// A fact received from the school or child-protection feeds, or a sensitive fact whose value
/// is sealed (migration `0031_child_feeds`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedFact {
    pub id: Uuid,
    #[serde(flatten)]
    pub subject: Subject,
    pub kind: FeedKind,
    /// Enrolment date, case opened, exposure observed.
    pub occurred_on: NaiveDate,
    /// A closed case's closing date.
    pub ended_on: Option<NaiveDate>,
    /// What describes the fact in clear (never a sealed value).
    pub details: Value,
    /// The sealed value of a sensitive fact; never serialised.
    #[serde(skip)]
    pub sealed: Option<Sealed>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// A record that may be a registry person but was not linked automatically.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkageReview {
    pub id: Uuid,
    /// What kind of record, e.g. `fhir_patient`.
    pub kind: String,
    pub source_system: String,
    pub source_id: String,
    pub candidate_person_id: Option<Uuid>,
    pub weight: Option<f64>,
    /// Per-field comparison, as the linkage engine explains it.
    pub explanation: Value,
    /// `open`, `confirmed` or `dismissed`.
    pub status: String,
    pub area_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
}

/// Everything received about one person, oldest first within each kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PersonFacts {
    pub immunizations: Vec<Immunization>,
    pub measurements: Vec<Measurement>,
    pub pregnancies: Vec<Pregnancy>,
    pub encounters: Vec<Encounter>,
    /// Pre-primary enrolments (school data). Protection cases and sealed facts are never
    /// here: they are read one kind at a time ([`ChildStore::restricted_facts`]).
    pub enrolments: Vec<FeedFact>,
}

/// What the schedules and the indicators read of a person's facts: the dates, vaccines,
/// doses and values, without provenance. The batch recompute reads only this (a tenth of the
/// bytes of [`PersonFacts`]); the per-person paths make it from [`PersonFacts`], so both
/// evaluate the same input. Oldest first within each kind, as [`PersonFacts`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChildFacts {
    pub doses: Vec<DoseFact>,
    pub measurements: Vec<MeasureFact>,
    pub pregnancies: Vec<PregnancyFact>,
    pub contacts: Vec<ContactFact>,
    /// Dates of pre-primary enrolments.
    pub enrolled_on: Vec<NaiveDate>,
}

/// An immunisation as the schedules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseFact {
    /// `None` for a code not mapped yet (it completes nothing).
    pub vaccine: Option<String>,
    pub dose: Option<u32>,
    pub on: NaiveDate,
}

/// A measurement as the growth indicators see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasureFact {
    pub kind: MeasurementKind,
    pub value: f64,
    pub on: NaiveDate,
}

/// A pregnancy as the antenatal schedule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PregnancyFact {
    pub lmp: Option<NaiveDate>,
    pub edd: Option<NaiveDate>,
    pub ended: bool,
    pub outcome_on: Option<NaiveDate>,
}

/// An encounter: `anc`, `pnc` or `other`, and its day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFact {
    pub kind: String,
    pub on: NaiveDate,
}

impl From<&PersonFacts> for ChildFacts {
    fn from(f: &PersonFacts) -> ChildFacts {
        ChildFacts {
            doses: f
                .immunizations
                .iter()
                .map(|i| DoseFact {
                    vaccine: i.vaccine.clone(),
                    dose: i.dose_number,
                    on: i.occurred_on,
                })
                .collect(),
            measurements: f
                .measurements
                .iter()
                .map(|m| MeasureFact {
                    kind: m.kind,
                    value: m.value,
                    on: m.measured_on,
                })
                .collect(),
            pregnancies: f
                .pregnancies
                .iter()
                .map(|p| PregnancyFact {
                    lmp: p.lmp,
                    edd: p.edd,
                    ended: p.outcome.is_some(),
                    outcome_on: p.outcome_on,
                })
                .collect(),
            contacts: f
                .encounters
                .iter()
                .map(|e| ContactFact {
                    kind: e.kind.clone(),
                    on: e.occurred_on,
                })
                .collect(),
            enrolled_on: f.enrolments.iter().map(|e| e.occurred_on).collect(),
        }
    }
}

/// Whether a write stored something new or found it already received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Written {
    Created(Uuid),
    /// Already received (same source system and source id): the stored row's id.
    Existing(Uuid),
}

impl Written {
    pub fn id(self) -> Uuid {
        match self {
            Written::Created(id) | Written::Existing(id) => id,
        }
    }
}

#[async_trait::async_trait]
pub trait ChildStore: Send + Sync {
    // --- writes, inside the caller's unit of work; idempotent by (source system, source id) ---
    async fn put_source_person(
        &self,
        uow: &mut UnitOfWork,
        p: &SourcePerson,
    ) -> StoreResult<Written>;
    async fn put_immunization(
        &self,
        uow: &mut UnitOfWork,
        f: &Immunization,
    ) -> StoreResult<Written>;
    async fn put_measurement(&self, uow: &mut UnitOfWork, f: &Measurement) -> StoreResult<Written>;
    async fn put_pregnancy(&self, uow: &mut UnitOfWork, f: &Pregnancy) -> StoreResult<Written>;
    async fn put_encounter(&self, uow: &mut UnitOfWork, f: &Encounter) -> StoreResult<Written>;
    async fn put_feed_fact(&self, uow: &mut UnitOfWork, f: &FeedFact) -> StoreResult<Written>;
    async fn add_review(&self, uow: &mut UnitOfWork, r: &LinkageReview) -> StoreResult<()>;

    // --- reads of personal data, within the reader's scope ---
    /// A source person by its source key (within scope: linked ones where their registry
    /// person lives, unlinked ones by their area).
    async fn source_person(
        &self,
        scope: &AreaScope,
        source_system: &str,
        source_id: &str,
    ) -> StoreResult<Option<SourcePerson>>;
    async fn source_person_by_id(
        &self,
        scope: &AreaScope,
        id: Uuid,
    ) -> StoreResult<Option<SourcePerson>>;
    /// Every fact about registry persons `person_ids` (within scope), by person.
    async fn facts_of_people(
        &self,
        scope: &AreaScope,
        person_ids: &[Uuid],
    ) -> StoreResult<Vec<(Uuid, PersonFacts)>>;
    /// Every fact received with the source person `id`, linked or not.
    async fn facts_of_source_person(&self, scope: &AreaScope, id: Uuid)
        -> StoreResult<PersonFacts>;
    /// The feed facts of `kind` about registry person `person_id` (empty when the person is
    /// not visible in scope), oldest first. The caller checks the reader may see that kind.
    async fn restricted_facts(
        &self,
        scope: &AreaScope,
        person_id: Uuid,
        kind: FeedKind,
    ) -> StoreResult<Vec<FeedFact>>;
    /// Open reviews of `kind` within scope, oldest first.
    async fn open_reviews(
        &self,
        scope: &AreaScope,
        kind: &str,
        limit: u32,
    ) -> StoreResult<Vec<LinkageReview>>;
}
