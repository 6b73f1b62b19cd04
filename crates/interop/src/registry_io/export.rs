//! `inkingi export`: writes an area's households and members in the import format, streaming
//! pages of households in (village, id) order so memory stays flat for any area.

use std::collections::HashMap;
use std::io::Write;

use inkingi_domain::registry::form::{FormSchema, Section};
use inkingi_store::registry_bulk::{ExportHousehold, ExportMember};
use inkingi_store::{Store, StoreError};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::validate::{HOUSEHOLD_COLUMNS, MEMBER_COLUMNS};

/// Households per page read from the store.
const PAGE: u32 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing {file}: {reason}")]
    Write { file: &'static str, reason: String },
    #[error("stored answers of household {0} are not a JSON object")]
    Answers(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub households: u64,
    pub people: u64,
}

/// The key part of a `<source>:<key>` source key.
fn key_part(source_key: Option<&str>) -> Option<&str> {
    source_key.and_then(|s| s.split_once(':').map(|(_, k)| k))
}

fn answers_of(text: &str, id: Uuid) -> Result<Map<String, Value>, ExportError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ExportError::Answers(id)),
    }
}

fn question_cells(
    form: &FormSchema,
    section: Section,
    answers: &Map<String, Value>,
) -> Vec<String> {
    form.questions(section)
        .iter()
        .map(|q| {
            answers
                .get(&q.key)
                .map(FormSchema::to_text)
                .unwrap_or_default()
        })
        .collect()
}

fn header(fixed: &[&str], form: &FormSchema, section: Section) -> Vec<String> {
    fixed
        .iter()
        .map(|s| s.to_string())
        .chain(
            form.questions(section)
                .iter()
                .map(|q| format!("q_{}", q.key)),
        )
        .collect()
}

/// Writes the households of `area` (a NISR code prefix; empty for the whole country) and their
/// members. `progress` is called with the households written so far after every page.
pub async fn export_area<H: Write, M: Write>(
    store: &Store,
    area: &str,
    households: H,
    members: M,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ExportSummary, ExportError> {
    let form = FormSchema::default_form();
    let werr = |file: &'static str| {
        move |e: csv::Error| ExportError::Write {
            file,
            reason: e.to_string(),
        }
    };
    let mut hw = csv::Writer::from_writer(households);
    let mut mw = csv::Writer::from_writer(members);
    hw.write_record(header(HOUSEHOLD_COLUMNS, &form, Section::Household))
        .map_err(werr("households.csv"))?;
    mw.write_record(header(MEMBER_COLUMNS, &form, Section::Member))
        .map_err(werr("members.csv"))?;
    let bulk = store.registry_bulk();
    let mut summary = ExportSummary::default();
    let mut after = None;
    loop {
        let page = bulk.export_households(area, after.clone(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.village_code.clone(), last.id));
        let ids: Vec<Uuid> = page.iter().map(|h| h.id).collect();
        let people = bulk.export_members(&ids).await?;
        let keys = member_keys(store, &people).await?;
        let mut by_household: HashMap<Uuid, Vec<&ExportMember>> = HashMap::new();
        for p in &people {
            by_household.entry(p.household_id).or_default().push(p);
        }
        for h in &page {
            let key = key_part(h.source_key.as_deref())
                .unwrap_or(&h.registry_number)
                .to_string();
            hw.write_record(household_record(h, &key, &form)?)
                .map_err(werr("households.csv"))?;
            for m in by_household
                .get(&h.id)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                mw.write_record(member_record(m, &key, &keys, &form)?)
                    .map_err(werr("members.csv"))?;
                summary.people += 1;
            }
            summary.households += 1;
        }
        progress(summary.households);
    }
    hw.flush().map_err(|e| ExportError::Write {
        file: "households.csv",
        reason: e.to_string(),
    })?;
    mw.flush().map_err(|e| ExportError::Write {
        file: "members.csv",
        reason: e.to_string(),
    })?;
    Ok(summary)
}

/// The member key of every person of the page and of the relatives they point to.
async fn member_keys(
    store: &Store,
    people: &[ExportMember],
) -> Result<HashMap<Uuid, String>, ExportError> {
    let key_of = |id: Uuid, source: Option<&str>| {
        key_part(source).map_or_else(|| id.to_string(), str::to_string)
    };
    let mut keys: HashMap<Uuid, String> = people
        .iter()
        .map(|p| (p.id, key_of(p.id, p.source_key.as_deref())))
        .collect();
    let outside: Vec<Uuid> = people
        .iter()
        .flat_map(|p| [p.mother_id, p.father_id, p.guardian_id])
        .flatten()
        .filter(|id| !keys.contains_key(id))
        .collect();
    for (id, source) in store.registry_bulk().people_source_keys(&outside).await? {
        keys.insert(id, key_of(id, source.as_deref()));
    }
    Ok(keys)
}

fn household_record(
    h: &ExportHousehold,
    key: &str,
    form: &FormSchema,
) -> Result<Vec<String>, ExportError> {
    let answers = answers_of(&h.answers, h.id)?;
    let num = |v: Option<f64>| v.map(|f| f.to_string()).unwrap_or_default();
    let mut rec = vec![
        key.to_string(),
        h.registry_number.clone(),
        h.village_code.clone(),
        h.address.clone().unwrap_or_default(),
        num(h.gps_lat),
        num(h.gps_lon),
    ];
    rec.extend(question_cells(form, Section::Household, &answers));
    Ok(rec)
}

fn member_record(
    m: &ExportMember,
    household_key: &str,
    keys: &HashMap<Uuid, String>,
    form: &FormSchema,
) -> Result<Vec<String>, ExportError> {
    let answers = answers_of(&m.answers, m.id)?;
    let rel = |id: Option<Uuid>| id.and_then(|i| keys.get(&i).cloned()).unwrap_or_default();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let phones: Vec<&str> = m
        .phone
        .iter()
        .chain(m.other_phones.iter())
        .map(String::as_str)
        .collect();
    let mut rec = vec![
        household_key.to_string(),
        keys.get(&m.id).cloned().unwrap_or_else(|| m.id.to_string()),
        opt(&m.role),
        m.given_name.clone(),
        m.family_name.clone(),
        m.sex.clone(),
        opt(&m.birth_date),
        opt(&m.national_id),
        opt(&m.birth_registration),
        opt(&m.refugee_id),
        opt(&m.passport),
        phones.join(";"),
        rel(m.mother_id),
        rel(m.father_id),
        rel(m.guardian_id),
    ];
    rec.extend(question_cells(form, Section::Member, &answers));
    Ok(rec)
}
