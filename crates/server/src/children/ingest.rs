//! Storing what a health system sent: persons linked to the registry (or queued for review),
//! and facts about them, each with its provenance, idempotent by (source system, source id).
//! One call handles one transaction: every resource is checked and written in the caller's
//! unit of work, so a refusal anywhere leaves nothing written.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::children::growth::{self, AgeDays, GrowthError, ZScore};
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::BirthDate;
use inkingi_store::children::{
    Encounter, FeedFact, FeedKind, Immunization, LinkageReview, Measurement, MeasurementKind,
    Pregnancy, Provenance, SourcePerson, Subject, Written,
};
use inkingi_store::registry::PersonRecord;
use inkingi_store::{Store, UnitOfWork};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::fhir::parse::{
    Body, EncounterIn, HivExposure, ImmunizationIn, Incoming, Issue, ObservationCode,
    ObservationIn, PersonIn,
};
use super::link::{self, Decision};
use super::sealed::FieldKeys;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::AppState;

/// Days from the last menstrual period to the expected delivery (Naegele's rule).
const GESTATION_DAYS: u64 = 280;

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub resource_type: &'static str,
    pub written: Written,
}

/// What is known about a subject a fact refers to.
#[derive(Debug, Clone)]
struct Known {
    subject: Subject,
    birth: Option<NaiveDate>,
    sex: Option<growth::Sex>,
    area: Option<AreaCode>,
    /// The registry person, when linked.
    person: Option<PersonRecord>,
}

pub struct Ingest<'a> {
    store: &'a Store,
    principal: Principal,
    /// Who is sending: `fhir` or `dhis2`; names audit actions and review kinds.
    channel: &'static str,
    /// Where an unlinked person is filed when the sender's scope does not say (DHIS2: the
    /// organisation unit's area).
    area: Option<AreaCode>,
    today: NaiveDate,
    now: DateTime<Utc>,
    /// Persons of this request, by `Patient/<source id>` and by fullUrl.
    refs: HashMap<String, Known>,
    /// Keys sealing sensitive facts; without them such facts are refused.
    keys: Option<std::sync::Arc<FieldKeys>>,
}

type Outcome<T> = ApiResult<Result<T, Vec<Issue>>>;

impl<'a> Ingest<'a> {
    pub fn new(state: &'a AppState, principal: &Principal) -> Self {
        let mut ingest = Ingest::on(&state.store, principal.clone(), "fhir");
        ingest.keys = state.settings.children.field_keys.clone();
        ingest
    }

    /// Stores for `principal` arriving through `channel` (`fhir`, `dhis2`).
    pub fn on(store: &'a Store, principal: Principal, channel: &'static str) -> Self {
        let now = Utc::now();
        Ingest {
            store,
            principal,
            channel,
            area: None,
            today: now.date_naive(),
            now,
            refs: HashMap::new(),
            keys: None,
        }
    }

    pub fn today(&self) -> NaiveDate {
        self.today
    }

    /// Whether a person of this request is known by `reference` (`Patient/<source id>`).
    pub fn knows(&self, reference: &str) -> bool {
        self.refs.contains_key(reference)
    }

    /// Whether `system` sent a person with `source_id` before (stored and committed).
    pub async fn source_person_exists(&self, system: &str, source_id: &str) -> ApiResult<bool> {
        Ok(self
            .store
            .children()
            .source_person(&AreaScope::national(), system, source_id)
            .await?
            .is_some())
    }

    /// Links within `scope` from now on, filing unlinked persons under `area`.
    pub fn place(&mut self, scope: AreaScope, area: Option<AreaCode>) {
        self.principal.scope = scope;
        self.area = area;
    }

    /// Stores a person named by a feed (school, child protection) like a FHIR Patient: linked
    /// to a registry person when certain, else unlinked, filed under the area given to
    /// [`Ingest::place`] and queued for review. A person this source sent before is not stored
    /// again. Returns whom the person's facts are about, and the area their audit records name.
    pub async fn feed_person(
        &mut self,
        uow: &mut UnitOfWork,
        source: (&str, &str),
        at: &str,
        p: &PersonIn,
    ) -> Outcome<(Subject, Option<AreaCode>)> {
        let inc = Incoming {
            resource_type: "Patient",
            source_id: source.1.to_string(),
            source_system: Some(source.0.to_string()),
            body: Body::Patient(p.clone()),
            at: at.to_string(),
        };
        if let Err(issues) = self.person(uow, &inc, p, None).await? {
            return Ok(Err(issues));
        }
        let known = self
            .refs
            .get(&format!("Patient/{}", inc.source_id))
            .ok_or_else(|| crate::error::ApiError::internal("feed person not remembered"))?;
        Ok(Ok((known.subject, known.area.clone())))
    }

    /// Stores a feed fact (idempotent by its source key) and audits it as `action`.
    pub async fn feed_fact(
        &self,
        uow: &mut UnitOfWork,
        f: &FeedFact,
        area: Option<AreaCode>,
        action: &str,
    ) -> ApiResult<Written> {
        let w = self.store.children().put_feed_fact(uow, f).await?;
        let subject = match f.subject.person_id {
            Some(p) => ("person", p),
            None => (
                "source_person",
                f.subject.source_person_id.unwrap_or(w.id()),
            ),
        };
        let fields = vec![f.kind.as_str().to_string(), format!("fact:{}", w.id())];
        self.audit_in(uow, action, subject, area, fields).await?;
        Ok(w)
    }

    /// The provenance of a fact a feed sent now.
    pub fn feed_provenance(&self, source_system: &str, source_id: String) -> Provenance {
        Provenance {
            source_system: source_system.to_string(),
            source_id,
            received_at: self.now,
            received_by: self.principal.username.as_str().to_string(),
        }
    }

    /// Stores one resource (with its Bundle entry's fullUrl, if any).
    pub async fn one(
        &mut self,
        uow: &mut UnitOfWork,
        inc: &Incoming,
        full_url: Option<&str>,
    ) -> Outcome<Stored> {
        let written = match &inc.body {
            Body::Patient(p) | Body::RelatedPerson(p) => self.person(uow, inc, p, full_url).await?,
            Body::Immunization(i) => self.immunization(uow, inc, i).await?,
            Body::Observation(o) => self.observation(uow, inc, o).await?,
            Body::Encounter(e) => self.encounter(uow, inc, e).await?,
        };
        Ok(written.map(|written| Stored {
            resource_type: inc.resource_type,
            written,
        }))
    }

    fn provenance(&self, inc: &Incoming) -> Provenance {
        Provenance {
            source_system: self.source_system(inc),
            source_id: inc.source_id.clone(),
            received_at: self.now,
            received_by: self.principal.username.as_str().to_string(),
        }
    }

    /// `meta.source`, else the sending account: the system a source id belongs to.
    fn source_system(&self, inc: &Incoming) -> String {
        inc.source_system
            .clone()
            .unwrap_or_else(|| self.principal.username.as_str().to_string())
    }

    /// The area an unlinked person is filed under: the sender's, when it has exactly one.
    fn sender_area(&self) -> Option<AreaCode> {
        if let Some(a) = &self.area {
            return Some(a.clone());
        }
        match self.principal.scope.codes().as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        }
    }

    async fn person(
        &mut self,
        uow: &mut UnitOfWork,
        inc: &Incoming,
        p: &PersonIn,
        full_url: Option<&str>,
    ) -> Outcome<Written> {
        let prov = self.provenance(inc);
        let related = matches!(inc.body, Body::RelatedPerson(_));
        let store = self.store.children();
        // Already received (committed earlier): keep it as it is, linked or not.
        let existing = store
            .source_person(&AreaScope::national(), &prov.source_system, &prov.source_id)
            .await?;
        if let Some(sp) = existing {
            let known = self.known_source(&sp).await?;
            self.remember(inc, full_url, known);
            return Ok(Ok(Written::Existing(sp.id)));
        }
        let related_to = match &p.patient {
            Some(r) => match self
                .resolve(r, &format!("{}.patient", inc.at), &prov.source_system)
                .await?
            {
                Ok(k) => Some(k),
                Err(e) => return Ok(Err(e)),
            },
            None => None,
        };
        let decision = match link::link(self.store, &self.principal.scope, p, &inc.at).await? {
            Err(issues) => return Ok(Err(issues)),
            // A mother, father or guardian named on a linked child's registry record.
            Ok(d @ Decision::Review { .. }) if related => {
                match self.by_relationship(p, related_to.as_ref()).await? {
                    Some(linked) => linked,
                    None => d,
                }
            }
            Ok(d) => d,
        };
        let (person, method, review) = match decision {
            Decision::Linked { person, method } => (Some(*person), Some(method), None),
            Decision::Review {
                candidate,
                weight,
                explanation,
            } => (None, None, Some((candidate, weight, explanation))),
        };
        let area = person
            .as_ref()
            .and_then(|x| x.person.village.clone())
            .or_else(|| self.sender_area());
        let sp = SourcePerson {
            id: Uuid::now_v7(),
            kind: if related { "related_person" } else { "patient" }.into(),
            person_id: person.as_ref().map(|x| x.person.id),
            link_method: method.map(str::to_string),
            area_code: area.as_ref().map(|a| a.as_str().to_string()),
            given_name: p.given.clone(),
            family_name: p.family.clone(),
            sex: p.sex.clone(),
            birth_date: p.birth_date.clone(),
            identifiers: Value::Array(
                p.identifiers
                    .iter()
                    .map(|(s, v)| json!({"system": s, "value": v}))
                    .collect(),
            ),
            related_to: related_to.and_then(|k| k.subject.source_person_id),
            relationship: p.relationship.clone(),
            provenance: prov.clone(),
        };
        let written = store.put_source_person(uow, &sp).await?;
        if let (Some((candidate, weight, explanation)), Written::Created(_)) = (review, written) {
            let r = LinkageReview {
                id: Uuid::now_v7(),
                kind: format!(
                    "{}_{}",
                    self.channel,
                    if related { "related_person" } else { "patient" }
                ),
                source_system: prov.source_system.clone(),
                source_id: prov.source_id.clone(),
                candidate_person_id: candidate,
                weight,
                explanation,
                status: "open".into(),
                area_code: sp.area_code.clone(),
                created_at: self.now,
                decided_at: None,
                decided_by: None,
            };
            store.add_review(uow, &r).await?;
        }
        let action = format!(
            "{}.{}.create",
            self.channel,
            inc.resource_type.to_ascii_lowercase()
        );
        let fields = vec![
            "name".into(),
            "gender".into(),
            "birthDate".into(),
            "identifier".into(),
            format!("link:{}", sp.link_method.as_deref().unwrap_or("review")),
        ];
        self.audit_in(
            uow,
            &action,
            ("source_person", written.id()),
            area.clone(),
            fields,
        )
        .await?;
        let known = Known {
            subject: Subject {
                person_id: sp.person_id,
                source_person_id: Some(written.id()),
            },
            birth: birth_of(person.as_ref(), sp.birth_date.as_deref()),
            sex: sex_of(person.as_ref(), sp.sex.as_deref()),
            area,
            person,
        };
        self.remember(inc, full_url, known);
        Ok(Ok(written))
    }

    async fn by_relationship(
        &self,
        p: &PersonIn,
        child: Option<&Known>,
    ) -> ApiResult<Option<Decision>> {
        let Some(record) = child.and_then(|c| c.person.as_ref()) else {
            return Ok(None);
        };
        let id = match p.relationship.as_deref() {
            Some("mother") => record.mother_id,
            Some("father") => record.father_id,
            Some("guardian") => record.guardian_id,
            _ => None,
        };
        let Some(id) = id else { return Ok(None) };
        Ok(self
            .store
            .registry()
            .person(&self.principal.scope, id)
            .await?
            .map(|person| Decision::Linked {
                person: Box::new(person),
                method: "registry_relationship",
            }))
    }

    fn remember(&mut self, inc: &Incoming, full_url: Option<&str>, known: Known) {
        if let Some(u) = full_url {
            self.refs.insert(u.to_string(), known.clone());
        }
        if inc.resource_type == "Patient" {
            self.refs
                .insert(format!("Patient/{}", inc.source_id), known);
        }
    }

    async fn known_source(&self, sp: &SourcePerson) -> ApiResult<Known> {
        let person = match sp.person_id {
            Some(id) => {
                self.store
                    .registry()
                    .person(&self.principal.scope, id)
                    .await?
            }
            None => None,
        };
        Ok(Known {
            subject: Subject {
                person_id: sp.person_id,
                source_person_id: Some(sp.id),
            },
            birth: birth_of(person.as_ref(), sp.birth_date.as_deref()),
            sex: sex_of(person.as_ref(), sp.sex.as_deref()),
            area: person
                .as_ref()
                .and_then(|p| p.person.village.clone())
                .or_else(|| {
                    sp.area_code
                        .as_deref()
                        .and_then(|a| AreaCode::parse(a).ok())
                }),
            person,
        })
    }

    /// The subject of a reference: a person of this request, a registry person or source
    /// person id, or a Patient this source sent before.
    async fn resolve(&self, reference: &str, at: &str, system: &str) -> Outcome<Known> {
        if let Some(k) = self.refs.get(reference) {
            return Ok(Ok(k.clone()));
        }
        let scope = &self.principal.scope;
        let id = reference.strip_prefix("Patient/").unwrap_or(reference);
        if let Ok(uuid) = Uuid::parse_str(id) {
            if let Some(person) = self.store.registry().person(scope, uuid).await? {
                return Ok(Ok(Known {
                    subject: Subject {
                        person_id: Some(uuid),
                        source_person_id: None,
                    },
                    birth: birth_of(Some(&person), None),
                    sex: sex_of(Some(&person), None),
                    area: person.person.village.clone(),
                    person: Some(person),
                }));
            }
            if let Some(sp) = self
                .store
                .children()
                .source_person_by_id(scope, uuid)
                .await?
            {
                return Ok(Ok(self.known_source(&sp).await?));
            }
        }
        if let Some(sp) = self
            .store
            .children()
            .source_person(scope, system, id)
            .await?
        {
            return Ok(Ok(self.known_source(&sp).await?));
        }
        Ok(Err(vec![Issue::new(
            "not-found",
            format!("{at}.reference"),
            format!(
                "{reference} is not known: send the Patient first or in the same Bundle, or \
                 refer to a registry person id in your area scope"
            ),
        )]))
    }

    /// The subject of a fact, checking that the fact is not dated before the birth.
    async fn subject(
        &self,
        inc: &Incoming,
        reference: &str,
        at: &str,
        date: NaiveDate,
        date_path: String,
    ) -> Outcome<Known> {
        let k = match self
            .resolve(reference, at, &self.source_system(inc))
            .await?
        {
            Ok(k) => k,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(b) = k.birth.filter(|b| date < *b) {
            return Ok(Err(vec![Issue::new(
                "value",
                date_path,
                format!("{date} is before the person's birth date {b}"),
            )]));
        }
        Ok(Ok(k))
    }

    async fn immunization(
        &self,
        uow: &mut UnitOfWork,
        inc: &Incoming,
        i: &ImmunizationIn,
    ) -> Outcome<Written> {
        let at = format!("{}.patient", inc.at);
        let k = match self
            .subject(
                inc,
                &i.patient,
                &at,
                i.date,
                format!("{}.occurrenceDateTime", inc.at),
            )
            .await?
        {
            Ok(k) => k,
            Err(e) => return Ok(Err(e)),
        };
        let f = Immunization {
            id: Uuid::now_v7(),
            subject: k.subject,
            vaccine_system: i.vaccine_system.clone(),
            vaccine_code: i.vaccine_code.clone(),
            vaccine: i.vaccine.clone(),
            needs_mapping: i.vaccine.is_none(),
            dose_number: i.dose,
            occurred_on: i.date,
            provenance: self.provenance(inc),
        };
        let w = self.store.children().put_immunization(uow, &f).await?;
        self.audit(
            uow,
            &format!("{}.immunization.create", self.channel),
            &k,
            w,
            &["vaccineCode", "doseNumber", "occurrence"],
        )
        .await?;
        Ok(Ok(w))
    }

    async fn observation(
        &self,
        uow: &mut UnitOfWork,
        inc: &Incoming,
        o: &ObservationIn,
    ) -> Outcome<Written> {
        let at = format!("{}.subject", inc.at);
        let date_path = format!("{}.effectiveDateTime", inc.at);
        let measured = match o.code {
            ObservationCode::Measure(_) | ObservationCode::HivExposure(_) => o.date,
            // LMP/EDD: the dates are about a pregnancy, not bounded by the mother's birth here.
            _ => self.today,
        };
        let k = match self
            .subject(inc, &o.subject, &at, measured, date_path)
            .await?
        {
            Ok(k) => k,
            Err(e) => return Ok(Err(e)),
        };
        let store = self.store.children();
        let w = match (o.code, o.value) {
            (ObservationCode::HivExposure(status), _) => {
                match self.hiv_exposure(uow, inc, o, status, &k).await? {
                    Ok(w) => w,
                    Err(issue) => return Ok(Err(vec![issue])),
                }
            }
            (ObservationCode::Measure(kind), Some(value)) => {
                let zscores = match plausible(kind, value, o.date, &k, &o.value_path) {
                    Ok(z) => z,
                    Err(issue) => return Ok(Err(vec![issue])),
                };
                let f = Measurement {
                    id: Uuid::now_v7(),
                    subject: k.subject,
                    kind,
                    loinc: o.loinc.clone(),
                    value,
                    unit: o.unit.to_string(),
                    measured_on: o.date,
                    zscores: Value::Object(zscores),
                    provenance: self.provenance(inc),
                };
                store.put_measurement(uow, &f).await?
            }
            (code, _) => {
                let days = chrono::Days::new(GESTATION_DAYS);
                let (lmp, edd) = match code {
                    ObservationCode::LastMenstrualPeriod => {
                        (Some(o.date), o.date.checked_add_days(days))
                    }
                    _ => (o.date.checked_sub_days(days), Some(o.date)),
                };
                let f = Pregnancy {
                    id: Uuid::now_v7(),
                    subject: k.subject,
                    lmp,
                    edd,
                    outcome: None,
                    outcome_on: None,
                    provenance: self.provenance(inc),
                };
                store.put_pregnancy(uow, &f).await?
            }
        };
        self.audit(
            uow,
            &format!("{}.observation.create", self.channel),
            &k,
            w,
            &["code", "value", "effective"],
        )
        .await?;
        Ok(Ok(w))
    }

    /// Seals HIV exposure with the active field key; refused (never stored in clear) when no
    /// key is configured.
    async fn hiv_exposure(
        &self,
        uow: &mut UnitOfWork,
        inc: &Incoming,
        o: &ObservationIn,
        status: HivExposure,
        k: &Known,
    ) -> ApiResult<Result<Written, Issue>> {
        let Some(keys) = &self.keys else {
            return Ok(Err(Issue::new(
                "processing",
                o.value_path.clone(),
                "HIV exposure is sealed per field and no field key is configured \
                 ([children] field_key_file): it is refused rather than stored in clear",
            )));
        };
        let id = Uuid::now_v7();
        let sealed = keys
            .seal(
                &sealed_context(FeedKind::HivExposure, id),
                status.as_str().as_bytes(),
            )
            .map_err(crate::error::ApiError::internal)?;
        let f = FeedFact {
            id,
            subject: k.subject,
            kind: FeedKind::HivExposure,
            occurred_on: o.date,
            ended_on: None,
            details: json!({"code": o.loinc}),
            sealed: Some(sealed),
            provenance: self.provenance(inc),
        };
        Ok(Ok(self.store.children().put_feed_fact(uow, &f).await?))
    }

    async fn encounter(
        &self,
        uow: &mut UnitOfWork,
        inc: &Incoming,
        e: &EncounterIn,
    ) -> Outcome<Written> {
        let at = format!("{}.subject", inc.at);
        let k = match self
            .subject(
                inc,
                &e.subject,
                &at,
                e.date,
                format!("{}.period.start", inc.at),
            )
            .await?
        {
            Ok(k) => k,
            Err(x) => return Ok(Err(x)),
        };
        let f = Encounter {
            id: Uuid::now_v7(),
            subject: k.subject,
            kind: e.kind.clone(),
            pregnancy_id: None,
            occurred_on: e.date,
            provenance: self.provenance(inc),
        };
        let w = self.store.children().put_encounter(uow, &f).await?;
        self.audit(
            uow,
            &format!("{}.encounter.create", self.channel),
            &k,
            w,
            &["type", "period"],
        )
        .await?;
        Ok(Ok(w))
    }

    async fn audit(
        &self,
        uow: &mut UnitOfWork,
        action: &str,
        k: &Known,
        w: Written,
        fields: &[&str],
    ) -> ApiResult<()> {
        let subject = match k.subject.person_id {
            Some(p) => ("person", p),
            None => (
                "source_person",
                k.subject.source_person_id.unwrap_or(w.id()),
            ),
        };
        // A new fact about a registry person changes what is due to them.
        if let (Written::Created(_), Some(person)) = (w, k.subject.person_id) {
            super::status::services_changed(self.store, uow, person).await?;
        }
        let mut fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        fields.push(format!("fact:{}", w.id()));
        self.audit_in(uow, action, subject, k.area.clone(), fields)
            .await
    }

    /// Records a change in the audit log inside the change's unit of work.
    async fn audit_in(
        &self,
        uow: &mut UnitOfWork,
        action: &str,
        subject: (&str, Uuid),
        area: Option<AreaCode>,
        fields: Vec<String>,
    ) -> ApiResult<()> {
        let mut rec = self.principal.audit_record(action, subject.0);
        rec.subject_id = Some(subject.1.to_string());
        rec.area = area;
        rec.fields = fields;
        self.store.audit().append_in(uow, vec![rec]).await?;
        Ok(())
    }
}

/// What a sealed value is bound to: its kind and fact id.
pub fn sealed_context(kind: FeedKind, fact: Uuid) -> String {
    format!("{}:{fact}", kind.as_str())
}

/// The date used for ages: the registry's birth date (its midpoint when imprecise), else the
/// one received.
fn birth_of(person: Option<&PersonRecord>, received: Option<&str>) -> Option<NaiveDate> {
    person
        .and_then(|p| p.person.data.birth_date)
        .or_else(|| received.and_then(|s| BirthDate::parse(s).ok()))
        .map(|b| b.midpoint())
}

fn sex_of(person: Option<&PersonRecord>, received: Option<&str>) -> Option<growth::Sex> {
    let code = person
        .map(|p| p.person.data.sex.to_string())
        .or_else(|| received.map(str::to_string))?;
    match code.as_str() {
        "F" => Some(growth::Sex::Female),
        "M" => Some(growth::Sex::Male),
        _ => None,
    }
}

/// Checks a measurement against the WHO standards: the value must be in the plausible range
/// and, when the child's age and sex are known, its z-score must not be WHO's "biologically
/// implausible". Returns the z-scores of the indicators that need only this measurement.
fn plausible(
    kind: MeasurementKind,
    value: f64,
    on: NaiveDate,
    k: &Known,
    path: &str,
) -> Result<Map<String, Value>, Issue> {
    let bad = |why: String| Issue::new("value", path.to_string(), why);
    let range = |e: GrowthError| bad(e.to_string());
    use growth::{
        HeadCircumferenceCm, LengthCm, LengthMeasurement, MeasuredPosition, MuacCm, WeightKg,
    };
    // Range first (whatever the age): a negative or absurd value never passes.
    match kind {
        MeasurementKind::Weight => WeightKg::new(value).map(|_| ()),
        MeasurementKind::Height | MeasurementKind::Length => LengthCm::new(value).map(|_| ()),
        MeasurementKind::HeadCircumference => HeadCircumferenceCm::new(value).map(|_| ()),
        MeasurementKind::Muac => MuacCm::new(value).map(|_| ()),
    }
    .map_err(range)?;
    let mut out = Map::new();
    let (Some(birth), Some(sex)) = (k.birth, k.sex) else {
        return Ok(out);
    };
    let Ok(age) = AgeDays::between(birth, on) else {
        // Older than the standards (over five): nothing to compare with.
        return Ok(out);
    };
    let z: Result<ZScore, GrowthError> = match kind {
        MeasurementKind::Weight => {
            growth::weight_for_age(sex, age, WeightKg::new(value).map_err(range)?)
        }
        MeasurementKind::Height | MeasurementKind::Length => {
            let position = if kind == MeasurementKind::Length {
                MeasuredPosition::Lying
            } else {
                MeasuredPosition::Standing
            };
            growth::length_for_age(
                sex,
                age,
                LengthMeasurement::new(LengthCm::new(value).map_err(range)?, position),
            )
        }
        MeasurementKind::HeadCircumference => growth::head_circumference_for_age(
            sex,
            age,
            HeadCircumferenceCm::new(value).map_err(range)?,
        ),
        MeasurementKind::Muac => growth::muac_for_age(sex, age, MuacCm::new(value).map_err(range)?),
    };
    // An indicator not defined at this age (MUAC under 3 months) just has no z-score.
    if let Ok(z) = z {
        if z.is_implausible() {
            return Err(bad(format!(
                "{value} {} is not plausible for a child aged {} days: {} z-score {:.1} is \
                 beyond WHO's limit for a real measurement",
                if kind == MeasurementKind::Weight {
                    "kg"
                } else {
                    "cm"
                },
                age.days(),
                z.indicator().as_str(),
                z.value()
            )));
        }
        out.insert(z.indicator().as_str().to_string(), json!(z.rounded()));
    }
    Ok(out)
}
