//! `inkingi import`: streams households.csv and members.csv into the registry.
//!
//! Two threads: a reader thread parses and validates rows and assembles households, a writer
//! (the caller's task) writes batches through [`inkingi_store::registry_bulk::RegistryBulk`],
//! so parsing and the database work overlap. A bounded channel of two batches keeps memory
//! flat whatever the file size.
//!
//! Members are matched to households by a merge join: both files list households in the same
//! order (as `inkingi generate` and `inkingi export` write them), members of a household on
//! consecutive rows. Households read ahead wait in a window of at most [`WINDOW`] households,
//! which absorbs households without members and member rows with a mistyped household key.
//! Files in a different order are refused with a clear message once [`MAX_MISSES`]
//! consecutive member groups match no household, instead of sorting them (which would need
//! disk space proportional to the file).
//!
//! Every batch is one transaction and households whose source key is stored are skipped: the
//! same command run again, also after a kill mid-import, ends in the state of one
//! uninterrupted import.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use inkingi_domain::areas::AreaLevel;
use inkingi_domain::registry::form::{FormSchema, Section};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::RegistryNumber;
use inkingi_store::areas::AreaQuery;
use inkingi_store::registry::{EventMeta, NewHousehold, NewMember};
use inkingi_store::registry_bulk::{BatchConflict, BulkLoad, RegistryBulk};
use inkingi_store::{Store, StoreError};
use rand::SeedableRng;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::csv_in::{Header, Row};
use super::validate::{self, Columns, HouseholdRow, MemberRow};
use super::{RowError, REPORT_HEADER};

/// Households read ahead while looking for the household of a member group.
pub const WINDOW: usize = 10_000;
/// Consecutive member groups without a household after which the files are taken to be in
/// different orders.
pub const MAX_MISSES: usize = 1_000;
/// Most member rows one household may have.
pub const MAX_MEMBERS: usize = 200;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Name of the source system; stored keys are `<source>:<key>`.
    pub source: String,
    /// Households per transaction.
    pub batch: usize,
    /// The day ages and dates are checked against (and memberships start).
    pub today: NaiveDate,
    /// Who runs the import, for the events.
    pub actor: String,
    /// On an empty registry, drop the indexes rows would reach in random order and rebuild
    /// them at the end (see [`RegistryBulk::begin_bulk_load`]). For an operator's load while
    /// no one else writes the registry (`inkingi import`), not for a live server's uploads.
    pub defer_indexes: bool,
}

impl ImportOptions {
    pub fn new(source: impl Into<String>) -> ImportOptions {
        ImportOptions {
            source: source.into(),
            batch: 2_000,
            today: Utc::now().date_naive(),
            actor: "import".into(),
            defer_indexes: false,
        }
    }
}

/// How far an import has come.
#[derive(Debug, Clone, Default)]
pub struct ImportProgress {
    /// Bytes of households.csv consumed.
    pub bytes: u64,
    pub households_written: u64,
    pub people_written: u64,
    pub households_rejected: u64,
}

/// The result of an import.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportSummary {
    pub households_written: u64,
    pub people_written: u64,
    /// Households skipped because an earlier run stored them.
    pub already_present: u64,
    pub households_rejected: u64,
    /// Lines written to the error report.
    pub error_rows: u64,
    /// Rows of either file read as Windows-1252 because they were not valid UTF-8.
    pub transcoded_rows: u64,
    /// Data rows read from both files.
    pub rows_read: u64,
    pub seconds: f64,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = self.rows_read as f64 / self.seconds.max(1e-9);
        write!(
            f,
            "imported {} households and {} people; {} already present; {} households rejected \
             ({} error rows); {} rows in {:.1} s ({:.0} rows/s)",
            self.households_written,
            self.people_written,
            self.already_present,
            self.households_rejected,
            self.error_rows,
            self.rows_read,
            self.seconds,
            rate
        )?;
        if self.transcoded_rows > 0 {
            write!(
                f,
                "; {} rows were not UTF-8 and were read as Windows-1252",
                self.transcoded_rows
            )?;
        }
        Ok(())
    }
}

/// Why an import stopped (bad rows never stop it).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: wrong header: {problems}")]
    Header {
        file: &'static str,
        problems: String,
    },
    #[error("{file}: cannot read line {line}: {reason}")]
    Read {
        file: &'static str,
        line: u64,
        reason: String,
    },
    #[error(
        "members.csv line {line}: {misses} household groups in a row match no household of \
         households.csv; members.csv must list the members of each household on consecutive \
         rows, in the order of households.csv (as `inkingi generate` and `inkingi export` \
         write them)"
    )]
    OutOfOrder { line: u64, misses: usize },
    #[error("source name '{0}': expected 1 to 32 characters of A-Z, a-z, 0-9, '.', '_', '-'")]
    Source(String),
    #[error("writing the error report: {0}")]
    Report(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Imports `households` and `members` (CSV readers) into `store`, writing rejected rows to
/// `report` (CSV: file, row, column, value, reason) and calling `progress` after every batch.
pub async fn import_registry<H, M, W>(
    store: &Store,
    households: H,
    members: M,
    report: W,
    opts: &ImportOptions,
    progress: &mut (dyn FnMut(&ImportProgress) + Send),
) -> Result<ImportSummary, ImportError>
where
    H: Read + Send + 'static,
    M: Read + Send + 'static,
    W: Write,
{
    let started = Instant::now();
    check_source(&opts.source)?;
    let villages = village_codes(store).await?;
    let mut report = csv::Writer::from_writer(report);
    report
        .write_record(REPORT_HEADER)
        .map_err(|e| ImportError::Report(e.to_string()))?;
    let bulk = store.registry_bulk();
    let mut load = bulk.begin_bulk_load(opts.defer_indexes).await?;
    let (tx, mut rx) = mpsc::channel::<Result<Batch, ImportError>>(2);
    let reader_opts = opts.clone();
    let reader = std::thread::spawn(move || {
        let result =
            Reader::start(households, members, villages, reader_opts).and_then(|mut r| r.run(&tx));
        if let Err(e) = result {
            // The writer may have stopped already; then nobody needs the error.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let mut summary = ImportSummary::default();
    let mut shown = ImportProgress::default();
    let outcome = async {
        while let Some(msg) = rx.recv().await {
            let batch = msg?;
            write_batch(
                bulk,
                &mut load,
                batch,
                opts,
                &mut report,
                &mut summary,
                &mut shown,
            )
            .await?;
            progress(&shown);
        }
        Ok::<(), ImportError>(())
    }
    .await;
    drop(rx);
    let _ = reader.join();
    // Also after an error: indexes dropped for this load are rebuilt now, not at the next start.
    let finished = bulk.finish_bulk_load(load).await;
    outcome?;
    finished?;
    report
        .flush()
        .map_err(|e| ImportError::Report(e.to_string()))?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn check_source(s: &str) -> Result<(), ImportError> {
    let ok = (1..=32).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ImportError::Source(s.chars().take(40).collect()))
    }
}

async fn village_codes(store: &Store) -> Result<HashSet<String>, ImportError> {
    let mut out = HashSet::new();
    let mut after = None;
    loop {
        let page = store
            .areas()
            .list_areas(&AreaQuery {
                level: Some(AreaLevel::Village),
                after: after.clone(),
                limit: 5_000,
                ..AreaQuery::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.code.clone());
        out.extend(page.iter().map(|a| a.code.as_str().to_string()));
    }
    Ok(out)
}

/// Which rows a household of a batch came from, to report store conflicts against them.
struct HouseholdRows {
    line: u64,
    key: String,
    member_lines: Vec<u64>,
    /// The registry number was assigned here (the file left it empty): on a collision a new
    /// one is drawn instead of rejecting the household.
    assigned_number: bool,
}

#[derive(Default)]
struct Batch {
    households: Vec<NewHousehold>,
    rows: Vec<HouseholdRows>,
    errors: Vec<RowError>,
    rejected: u64,
    transcoded: u64,
    rows_read: u64,
    bytes: u64,
}

async fn write_batch<W: Write>(
    bulk: &dyn RegistryBulk,
    load: &mut BulkLoad,
    batch: Batch,
    opts: &ImportOptions,
    report: &mut csv::Writer<W>,
    summary: &mut ImportSummary,
    shown: &mut ImportProgress,
) -> Result<(), ImportError> {
    let mut errors = batch.errors;
    let mut rejected = batch.rejected;
    let mut todo: Vec<(NewHousehold, HouseholdRows)> =
        batch.households.into_iter().zip(batch.rows).collect();
    let mut rng = rand::rngs::StdRng::from_os_rng();
    // Assigned registry numbers can collide (rarely); those households go round again.
    for attempt in 0..5 {
        if todo.is_empty() {
            break;
        }
        let (households, rows): (Vec<_>, Vec<_>) = todo.into_iter().unzip();
        let meta = EventMeta {
            actor: opts.actor.clone(),
            channel: Channel::Import,
            reason: Some(format!("bulk import from source {}", opts.source)),
            change_request_id: None,
            at: Utc::now(),
        };
        let outcome = bulk.import_batch(&households, &meta, load).await?;
        summary.households_written += outcome.households_written;
        summary.people_written += outcome.people_written;
        summary.already_present += outcome.already_present;
        let mut by_household: HashMap<usize, Vec<BatchConflict>> = HashMap::new();
        for c in outcome.conflicts {
            by_household.entry(c.household).or_default().push(c);
        }
        todo = Vec::new();
        for (i, (mut h, r)) in households.into_iter().zip(rows).enumerate() {
            let Some(conflicts) = by_household.remove(&i) else {
                continue;
            };
            let renumber = r.assigned_number
                && attempt < 4
                && conflicts.iter().all(|c| c.field == "registry_number");
            if renumber {
                h.registry_number = RegistryNumber::generate(&mut rng);
                todo.push((h, r));
            } else {
                rejected += 1;
                errors.extend(conflict_errors(&r, &conflicts));
            }
        }
    }
    for e in &errors {
        report
            .write_record([e.file, &e.line.to_string(), &e.column, &e.value, &e.reason])
            .map_err(|e| ImportError::Report(e.to_string()))?;
    }
    summary.error_rows += errors.len() as u64;
    summary.households_rejected += rejected;
    summary.transcoded_rows += batch.transcoded;
    summary.rows_read += batch.rows_read;
    shown.bytes = batch.bytes;
    shown.households_written = summary.households_written;
    shown.people_written = summary.people_written;
    shown.households_rejected = summary.households_rejected;
    Ok(())
}

fn conflict_errors(r: &HouseholdRows, conflicts: &[BatchConflict]) -> Vec<RowError> {
    let mut out: Vec<RowError> = conflicts
        .iter()
        .map(|c| match c.member {
            Some(j) => RowError {
                file: "members.csv",
                line: r.member_lines.get(j).copied().unwrap_or(0),
                column: c.field.to_string(),
                value: c.value.clone(),
                reason: c.reason.clone(),
            },
            None => RowError {
                file: "households.csv",
                line: r.line,
                column: c.field.to_string(),
                value: c.value.clone(),
                reason: c.reason.clone(),
            },
        })
        .collect();
    out.push(household_rejected(
        r.line,
        &r.key,
        "of a conflict with data already stored",
    ));
    out
}

fn household_rejected(line: u64, key: &str, why: &str) -> RowError {
    RowError {
        file: "households.csv",
        line,
        column: "household_key".into(),
        value: key.to_string(),
        reason: format!("household not imported because {why}"),
    }
}

/// A household row read into the window, waiting for its members.
enum Pending {
    Valid(HouseholdRow),
    /// Already reported; its members are consumed and their own errors reported.
    Invalid {
        key: Option<String>,
    },
}

impl Pending {
    fn key(&self) -> Option<&str> {
        match self {
            Pending::Valid(h) => Some(&h.key),
            Pending::Invalid { key, .. } => key.as_deref(),
        }
    }
}

struct Reader<H: Read, M: Read> {
    hh: csv::Reader<H>,
    hh_cols: Columns,
    mem: csv::Reader<M>,
    mem_cols: Columns,
    form: FormSchema,
    villages: HashSet<String>,
    opts: ImportOptions,
    window: VecDeque<Pending>,
    hh_done: bool,
    peeked: Option<Row>,
    record: csv::ByteRecord,
    batch: Batch,
    rng: rand::rngs::StdRng,
    misses: usize,
}

fn csv_reader<R: Read>(r: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(r)
}

fn read_header<R: Read>(
    r: &mut csv::Reader<R>,
    file: &'static str,
    form: &FormSchema,
    section: Section,
) -> Result<Header, ImportError> {
    let rec = r.byte_headers().map_err(|e| ImportError::Read {
        file,
        line: 1,
        reason: e.to_string(),
    })?;
    let header = Header::from_record(rec);
    let (missing, unknown) = header.check(
        &validate::required_columns(form, section),
        &validate::known_columns(form, section),
    );
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing columns: {}", missing.join(", ")));
    }
    if !unknown.is_empty() {
        problems.push(format!("unknown columns: {}", unknown.join(", ")));
    }
    if problems.is_empty() {
        Ok(header)
    } else {
        Err(ImportError::Header {
            file,
            problems: problems.join("; "),
        })
    }
}

impl<H: Read, M: Read> Reader<H, M> {
    fn start(
        households: H,
        members: M,
        villages: HashSet<String>,
        opts: ImportOptions,
    ) -> Result<Self, ImportError> {
        let form = FormSchema::default_form();
        let mut hh = csv_reader(households);
        let mut mem = csv_reader(members);
        let hh_header = read_header(&mut hh, "households.csv", &form, Section::Household)?;
        let mem_header = read_header(&mut mem, "members.csv", &form, Section::Member)?;
        Ok(Reader {
            hh_cols: Columns::new(&hh_header, &form, Section::Household),
            mem_cols: Columns::new(&mem_header, &form, Section::Member),
            hh,
            mem,
            form,
            villages,
            opts,
            window: VecDeque::new(),
            hh_done: false,
            peeked: None,
            record: csv::ByteRecord::new(),
            batch: Batch::default(),
            rng: rand::rngs::StdRng::from_os_rng(),
            misses: 0,
        })
    }

    fn run(&mut self, tx: &mpsc::Sender<Result<Batch, ImportError>>) -> Result<(), ImportError> {
        while let Some((key, rows)) = self.next_group()? {
            match self.find(&key)? {
                Some(pos) => {
                    self.misses = 0;
                    for p in self.window.drain(..pos).collect::<Vec<_>>() {
                        self.without_members(p);
                    }
                    if let Some(p) = self.window.pop_front() {
                        self.assemble(p, rows);
                    }
                }
                None => {
                    self.misses += 1;
                    if self.misses >= MAX_MISSES {
                        return Err(ImportError::OutOfOrder {
                            line: rows.first().map_or(0, |r| r.line),
                            misses: self.misses,
                        });
                    }
                    self.unknown_household(&key, &rows);
                }
            }
            if self.batch.households.len() >= self.opts.batch
                || self.batch.errors.len() >= self.opts.batch * 4
            {
                self.send(tx)?;
            }
        }
        while let Some(p) = self.next_pending()? {
            self.without_members(p);
            if self.batch.errors.len() >= self.opts.batch * 4 {
                self.send(tx)?;
            }
        }
        self.send(tx)
    }

    fn send(&mut self, tx: &mpsc::Sender<Result<Batch, ImportError>>) -> Result<(), ImportError> {
        let mut batch = std::mem::take(&mut self.batch);
        batch.bytes = self.hh.position().byte();
        // A closed channel means the writer stopped with its own error, which it reports.
        let _ = tx.blocking_send(Ok(batch));
        Ok(())
    }

    fn read_row<R: Read>(
        reader: &mut csv::Reader<R>,
        record: &mut csv::ByteRecord,
        file: &'static str,
    ) -> Result<Option<Row>, ImportError> {
        match reader.read_byte_record(record) {
            Ok(true) => Ok(Some(Row::from_record(record))),
            Ok(false) => Ok(None),
            Err(e) => Err(ImportError::Read {
                file,
                line: e.position().map_or(0, |p| p.line()),
                reason: e.to_string(),
            }),
        }
    }

    fn read_member(&mut self) -> Result<Option<Row>, ImportError> {
        let row = Self::read_row(&mut self.mem, &mut self.record, "members.csv")?;
        if let Some(r) = &row {
            self.batch.rows_read += 1;
            self.batch.transcoded += r.transcoded as u64;
        }
        Ok(row)
    }

    /// The next run of member rows with the same household key.
    fn next_group(&mut self) -> Result<Option<(String, Vec<Row>)>, ImportError> {
        let first = match self.peeked.take() {
            Some(r) => r,
            None => match self.read_member()? {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        let key = validate::member_household_key(&first, &self.mem_cols).to_string();
        let mut rows = vec![first];
        while let Some(r) = self.read_member()? {
            if validate::member_household_key(&r, &self.mem_cols) != key {
                self.peeked = Some(r);
                break;
            }
            rows.push(r);
        }
        Ok(Some((key, rows)))
    }

    /// Reads the next household row into a pending entry.
    fn next_pending(&mut self) -> Result<Option<Pending>, ImportError> {
        if let Some(p) = self.window.pop_front() {
            return Ok(Some(p));
        }
        self.read_household()
    }

    fn read_household(&mut self) -> Result<Option<Pending>, ImportError> {
        if self.hh_done {
            return Ok(None);
        }
        let Some(row) = Self::read_row(&mut self.hh, &mut self.record, "households.csv")? else {
            self.hh_done = true;
            return Ok(None);
        };
        self.batch.rows_read += 1;
        self.batch.transcoded += row.transcoded as u64;
        let (key, result) =
            validate::household_row(&row, &self.hh_cols, &self.form, &self.villages);
        Ok(Some(match result {
            Ok(h) => Pending::Valid(h),
            Err(errors) => {
                self.batch.errors.extend(errors);
                self.batch.rejected += 1;
                Pending::Invalid { key }
            }
        }))
    }

    /// Position in the window of the household `key`, reading ahead up to [`WINDOW`].
    fn find(&mut self, key: &str) -> Result<Option<usize>, ImportError> {
        if key.is_empty() {
            return Ok(None);
        }
        if let Some(i) = self.window.iter().position(|p| p.key() == Some(key)) {
            return Ok(Some(i));
        }
        while self.window.len() < WINDOW {
            let Some(p) = self.read_household()? else {
                break;
            };
            let hit = p.key() == Some(key);
            self.window.push_back(p);
            if hit {
                return Ok(Some(self.window.len() - 1));
            }
        }
        Ok(None)
    }

    fn without_members(&mut self, p: Pending) {
        if let Pending::Valid(h) = p {
            self.batch.errors.push(RowError {
                file: "households.csv",
                line: h.line,
                column: "household_key".into(),
                value: h.key.clone(),
                reason: "no member rows for this household in members.csv (members must follow \
                         the order of households.csv)"
                    .into(),
            });
            self.batch.rejected += 1;
        }
    }

    fn unknown_household(&mut self, key: &str, rows: &[Row]) {
        let reason = if key.is_empty() {
            "is required".to_string()
        } else {
            format!(
                "no household with this key in households.csv at this position (within {WINDOW} \
                 households of the previous match); members must follow the order of \
                 households.csv"
            )
        };
        for r in rows {
            self.batch.errors.push(RowError {
                file: "members.csv",
                line: r.line,
                column: "household_key".into(),
                value: key.chars().take(100).collect(),
                reason: reason.clone(),
            });
        }
    }

    fn assemble(&mut self, p: Pending, rows: Vec<Row>) {
        let mut errors = Vec::new();
        let mut members = Vec::with_capacity(rows.len());
        if rows.len() > MAX_MEMBERS {
            errors.push(RowError {
                file: "members.csv",
                line: rows[MAX_MEMBERS].line,
                column: "household_key".into(),
                value: validate::member_household_key(&rows[0], &self.mem_cols).to_string(),
                reason: format!("a household may have at most {MAX_MEMBERS} members"),
            });
        }
        for r in rows.iter().take(MAX_MEMBERS) {
            match validate::member_row(r, &self.mem_cols, &self.form, self.opts.today) {
                Ok(m) => members.push(m),
                Err(e) => errors.extend(e),
            }
        }
        let Pending::Valid(h) = p else {
            // The household row's own errors are reported; its members go with it.
            self.batch.errors.extend(errors);
            return;
        };
        if errors.is_empty() {
            errors = validate::household_members(h.line, &members);
        }
        if !errors.is_empty() {
            let n = errors.len();
            self.batch.errors.extend(errors);
            self.batch.errors.push(household_rejected(
                h.line,
                &h.key,
                &format!("{n} problem(s) in its member rows"),
            ));
            self.batch.rejected += 1;
            return;
        }
        let (household, rows) = self.build(h, members);
        self.batch.households.push(household);
        self.batch.rows.push(rows);
    }

    fn build(&mut self, h: HouseholdRow, members: Vec<MemberRow>) -> (NewHousehold, HouseholdRows) {
        let source = &self.opts.source;
        let ids: HashMap<&str, Uuid> = members
            .iter()
            .map(|m| (m.key.as_str(), Uuid::now_v7()))
            .collect();
        let id_of = |k: &Option<String>| k.as_deref().and_then(|k| ids.get(k).copied());
        let new_members: Vec<NewMember> = members
            .iter()
            .map(|m| NewMember {
                id: ids[m.key.as_str()],
                person: m.person.clone(),
                role: m.role,
                since: self.opts.today,
                mother_id: id_of(&m.mother_key),
                father_id: id_of(&m.father_key),
                guardian_id: id_of(&m.guardian_key),
                source_key: Some(format!("{source}:{}", m.key)),
            })
            .collect();
        let assigned_number = h.registry_number.is_none();
        let registry_number = h
            .registry_number
            .unwrap_or_else(|| RegistryNumber::generate(&mut self.rng));
        let form = &self.form;
        let rows = HouseholdRows {
            line: h.line,
            key: h.key.clone(),
            member_lines: members.iter().map(|m| m.line).collect(),
            assigned_number,
        };
        let household = NewHousehold {
            id: Uuid::now_v7(),
            registry_number,
            input: h.input,
            form_id: form.id.clone(),
            form_version: form.version,
            source_key: Some(format!("{source}:{}", h.key)),
            members: new_members,
        };
        (household, rows)
    }
}
