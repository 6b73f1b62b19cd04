//! The three CSV files of the registry format (CSV_FORMAT in the docs): headers once, then
//! each chunk's rows in chunk order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use inkingi_domain::registry::form::{FormSchema, Section};
use serde_json::Value;

use crate::chunk::ChunkOutput;
use crate::household::Household;
use crate::numbers::Numbering;
use crate::reference::Reference;
use crate::{buffered, flush, io_error, output_paths, Error};

pub const HOUSEHOLD_FIXED_COLUMNS: [&str; 6] = [
    "household_key",
    "registry_number",
    "village_code",
    "address",
    "gps_lat",
    "gps_lon",
];

pub const MEMBER_FIXED_COLUMNS: [&str; 15] = [
    "household_key",
    "member_key",
    "role",
    "given_name",
    "family_name",
    "sex",
    "birth_date",
    "national_id",
    "birth_registration",
    "refugee_id",
    "passport",
    "phones",
    "mother_key",
    "father_key",
    "guardian_key",
];

pub const TRUTH_COLUMNS: [&str; 4] = ["member_key", "entity_id", "duplicate_of", "errors"];

/// The open output files.
pub(crate) struct Files {
    writers: Vec<(PathBuf, BufWriter<File>)>,
    bytes: u64,
}

fn header(fixed: &[&str], form: &FormSchema, section: Section) -> Vec<u8> {
    let mut cols: Vec<String> = fixed.iter().map(|c| c.to_string()).collect();
    cols.extend(
        form.questions(section)
            .iter()
            .map(|q| format!("q_{}", q.key)),
    );
    let mut line = cols.join(",").into_bytes();
    line.push(b'\n');
    line
}

impl Files {
    pub fn create(dir: &Path, form: &FormSchema) -> Result<Files, Error> {
        let headers = [
            header(&HOUSEHOLD_FIXED_COLUMNS, form, Section::Household),
            header(&MEMBER_FIXED_COLUMNS, form, Section::Member),
            format!("{}\n", TRUTH_COLUMNS.join(",")).into_bytes(),
        ];
        let mut files = Files {
            writers: Vec::new(),
            bytes: 0,
        };
        for (path, head) in output_paths(dir).into_iter().zip(headers) {
            let mut w = buffered(&path)?;
            w.write_all(&head).map_err(io_error(&path))?;
            files.bytes += head.len() as u64;
            files.writers.push((path, w));
        }
        Ok(files)
    }

    pub fn append(&mut self, out: &ChunkOutput) -> Result<(), Error> {
        let parts = [&out.households_csv, &out.members_csv, &out.truth_csv];
        for ((path, w), bytes) in self.writers.iter_mut().zip(parts) {
            w.write_all(bytes).map_err(io_error(path))?;
            self.bytes += bytes.len() as u64;
        }
        Ok(())
    }

    /// Flushes and syncs the files; returns the bytes written.
    pub fn finish(self) -> Result<u64, Error> {
        for (path, w) in self.writers {
            flush(w, &path)?;
        }
        Ok(self.bytes)
    }
}

fn csv_buffer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(1 << 18))
}

/// Writes an answer cell without allocating for the common text and yes/no cases.
fn answer_field(w: &mut csv::Writer<Vec<u8>>, v: Option<&Value>) -> csv::Result<()> {
    match v {
        None => w.write_field(""),
        Some(Value::String(s)) => w.write_field(s),
        Some(Value::Bool(b)) => w.write_field(if *b { "yes" } else { "no" }),
        Some(other) => w.write_field(FormSchema::to_text(other)),
    }
}

fn end_record(w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
    w.write_record(None::<&[u8]>)
}

pub(crate) fn household_key(chunk: u64, position: usize) -> String {
    format!("H{chunk:05}-{position:04}")
}

pub(crate) fn member_key(household_key: &str, index: usize) -> String {
    format!("{household_key}-{:02}", index + 1)
}

pub(crate) fn write_chunk(
    chunk: u64,
    households: &[Household],
    reference: &Reference,
    numbering: &Numbering,
) -> Result<ChunkOutput, Error> {
    let mut position_of = vec![0usize; households.len()];
    for (pos, h) in households.iter().enumerate() {
        position_of[h.id] = pos;
    }
    let mut out = ChunkOutput {
        households_csv: Vec::new(),
        members_csv: Vec::new(),
        truth_csv: Vec::new(),
        households: households.len() as u64,
        people: 0,
        duplicates: 0,
    };
    let (mut hw, mut mw, mut tw) = (csv_buffer(), csv_buffer(), csv_buffer());
    for (pos, h) in households.iter().enumerate() {
        let key = household_key(chunk, pos);
        let registry = numbering.registry_number(Numbering::household_slot(chunk, pos as u64));
        write_household(&mut hw, &key, registry.as_str(), h, reference)?;
        for (i, p) in h.members.iter().enumerate() {
            let mkey = member_key(&key, i);
            write_member(&mut mw, &key, &mkey, h, i, reference)?;
            tw.write_field(&mkey)?;
            tw.write_field(format!("E{}", p.entity))?;
            match p.original {
                Some((hid, m)) => {
                    out.duplicates += 1;
                    let okey = household_key(chunk, position_of[hid]);
                    tw.write_field(member_key(&okey, m))?;
                }
                None => tw.write_field("")?,
            }
            tw.write_field(p.errors.join(";"))?;
            end_record(&mut tw)?;
            out.people += 1;
        }
    }
    out.households_csv = into_bytes(hw)?;
    out.members_csv = into_bytes(mw)?;
    out.truth_csv = into_bytes(tw)?;
    Ok(out)
}

fn into_bytes(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, Error> {
    w.into_inner()
        .map_err(|e| Error::Csv(csv::Error::from(e.into_error())))
}

fn write_household(
    w: &mut csv::Writer<Vec<u8>>,
    key: &str,
    registry: &str,
    h: &Household,
    reference: &Reference,
) -> csv::Result<()> {
    w.write_field(key)?;
    w.write_field(registry)?;
    w.write_field(&reference.villages[h.village].code)?;
    w.write_field(h.address.as_deref().unwrap_or(""))?;
    match h.gps {
        Some((lat, lon)) => {
            w.write_field(format!("{lat:.5}"))?;
            w.write_field(format!("{lon:.5}"))?;
        }
        None => {
            w.write_field("")?;
            w.write_field("")?;
        }
    }
    for q in reference.form.questions(Section::Household) {
        answer_field(w, h.answers.get(&q.key))?;
    }
    end_record(w)
}

fn write_member(
    w: &mut csv::Writer<Vec<u8>>,
    household_key: &str,
    key: &str,
    h: &Household,
    index: usize,
    reference: &Reference,
) -> csv::Result<()> {
    let p = &h.members[index];
    let link = |i: Option<usize>| i.map(|i| member_key(household_key, i)).unwrap_or_default();
    w.write_field(household_key)?;
    w.write_field(key)?;
    w.write_field(p.role.as_str())?;
    w.write_field(&p.given)?;
    w.write_field(&p.family)?;
    w.write_field(p.sex.as_str())?;
    w.write_field(p.birth.to_string())?;
    w.write_field(p.national_id.as_ref().map_or("", |n| n.as_str()))?;
    w.write_field(p.birth_registration.as_deref().unwrap_or(""))?;
    w.write_field("")?;
    w.write_field(p.passport.as_deref().unwrap_or(""))?;
    let phones: Vec<&str> = p.phones.iter().map(|n| n.as_str()).collect();
    w.write_field(phones.join(";"))?;
    w.write_field(link(p.mother))?;
    w.write_field(link(p.father))?;
    w.write_field(link(p.guardian))?;
    for q in reference.form.questions(Section::Member) {
        answer_field(w, p.answers.get(&q.key))?;
    }
    end_record(w)
}
