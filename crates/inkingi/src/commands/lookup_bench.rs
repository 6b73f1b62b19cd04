//! `inkingi match lookup-bench`: how fast the server's registration-time lookup index answers
//! at national scale, measured on generated files rather than a loaded database (building from
//! the database adds only the reading; the index and the lookups are the same code).
//!
//! Reads households.csv (village of each household) and members.csv, encodes every member as
//! the lookup service does, builds the index with the service's provisional model, then times
//! lookups of people drawn from the file (seeded) with the noise of a repeat registration: a
//! typo in the given name, a birth date known only to the year, no national ID or phone.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, Context};
use inkingi_linkage::compare::Comparison;
use inkingi_linkage::index::LinkIndex;
use inkingi_linkage::Dataset;
use inkingi_server::lookup::{provisional_model, registry_config, MAX_CANDIDATES_PER_KEY};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cli::LookupBenchArgs;

const BATCH: usize = 100_000;
/// The registry configuration's fields, in the order the rows below are written.
const FIELDS: [&str; 7] = [
    "national_id",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "village",
    "phone",
];

pub fn run(args: &LookupBenchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = registry_config();
    let names: Vec<&str> = config.fields.iter().map(|f| f.name.as_str()).collect();
    anyhow::ensure!(
        names == FIELDS,
        "the registry linkage configuration's fields are {names:?}; this benchmark writes {FIELDS:?}"
    );
    let villages = read_villages(&args.dir.join("households.csv"))?;
    eprintln!(
        "{} households read in {:.1} s",
        villages.len(),
        started.elapsed().as_secs_f64()
    );
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut data = Dataset::new(&config);
    let sample = read_members(
        &args.dir.join("members.csv"),
        &villages,
        &config,
        &mut data,
        args.queries as usize,
        &mut rng,
    )?;
    drop(villages);
    let read_secs = started.elapsed().as_secs_f64();
    let people = data.len();
    let comparisons = Comparison::from_config(&config)?;
    let model = provisional_model(&comparisons, 0.05, people);
    let t = Instant::now();
    let mut index = LinkIndex::build(&config, data, &model, MAX_CANDIDATES_PER_KEY)?;
    let build_secs = t.elapsed().as_secs_f64();
    let heap = index.heap_bytes();
    println!(
        "people {people} read_s {read_secs:.1} build_s {build_secs:.1} index_heap_MiB {:.0} bytes_per_person {:.0} rss_MiB {}",
        heap as f64 / 1048576.0,
        heap as f64 / people.max(1) as f64,
        rss_mib().map_or("?".into(), |m| m.to_string())
    );
    time_lookups(&mut index, sample, &mut rng)
}

/// One query: the person's record number and their noisy values.
type Query = (u32, Vec<String>);

fn time_lookups(index: &mut LinkIndex, sample: Vec<Query>, rng: &mut StdRng) -> anyhow::Result<()> {
    let mut times = Vec::with_capacity(sample.len());
    let (mut top1, mut found_any, mut candidates) = (0u64, 0u64, 0u64);
    for (record, row) in sample {
        let row = noisy(row, rng);
        let t = Instant::now();
        let found = index.lookup(row)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        candidates += found.len() as u64;
        top1 += u64::from(found.first().is_some_and(|c| c.record == record));
        found_any += u64::from(found.iter().any(|c| c.record == record));
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let at = |q: f64| times[((n as f64 * q) as usize).min(n - 1)];
    println!(
        "lookups {n} p50_ms {:.3} p95_ms {:.3} p99_ms {:.3} max_ms {:.3} mean_candidates {:.1} original_first {:.3} original_found {:.3}",
        at(0.50),
        at(0.95),
        at(0.99),
        times[n - 1],
        candidates as f64 / n as f64,
        top1 as f64 / n as f64,
        found_any as f64 / n as f64,
    );
    Ok(())
}

/// A repeat registration's errors: a typo in the given name (half), the birth date known only
/// to its year (a third), no national ID (seven in ten), no phone (half).
fn noisy(mut row: Vec<String>, rng: &mut StdRng) -> Vec<String> {
    // Field order of the registry configuration: national_id, given_name, family_name,
    // birth_date, sex, village, phone.
    if rng.random_bool(0.7) {
        row[0].clear();
    }
    if rng.random_bool(0.5) {
        row[1] = typo(&row[1], rng);
    }
    if rng.random_bool(0.3) {
        row[3].truncate(4);
    }
    if rng.random_bool(0.5) {
        row[6].clear();
    }
    row
}

fn typo(name: &str, rng: &mut StdRng) -> String {
    let mut c: Vec<char> = name.chars().collect();
    if c.len() > 2 {
        let i = rng.random_range(1..c.len() - 1);
        c.swap(i, i + 1);
    }
    c.into_iter().collect()
}

fn csv_reader(path: &Path) -> anyhow::Result<csv::Reader<File>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(csv::ReaderBuilder::new().from_reader(file))
}

fn column(headers: &csv::StringRecord, name: &str, path: &Path) -> anyhow::Result<usize> {
    headers
        .iter()
        .position(|h| h.eq_ignore_ascii_case(name))
        .ok_or_else(|| anyhow!("{}: no column {name:?}", path.display()))
}

fn read_villages(path: &Path) -> anyhow::Result<HashMap<Box<str>, u32>> {
    let mut r = csv_reader(path)?;
    let h = r.headers()?.clone();
    let (key, village) = (
        column(&h, "household_key", path)?,
        column(&h, "village_code", path)?,
    );
    let mut out = HashMap::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        let code: u32 = rec[village].parse().with_context(|| {
            format!(
                "{}: line {}: village_code {:?}",
                path.display(),
                i + 2,
                &rec[village]
            )
        })?;
        out.insert(rec[key].into(), code);
    }
    Ok(out)
}

/// Encodes every member into `data` in batches; keeps a seeded uniform sample of `want`
/// members (reservoir sampling) as queries.
fn read_members(
    path: &Path,
    villages: &HashMap<Box<str>, u32>,
    config: &inkingi_linkage::LinkageConfig,
    data: &mut Dataset,
    want: usize,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<Query>> {
    let mut r = csv_reader(path)?;
    let h = r.headers()?.clone();
    let at = |c: &str| column(&h, c, path);
    let cols = [
        at("national_id")?,
        at("given_name")?,
        at("family_name")?,
        at("birth_date")?,
        at("sex")?,
        at("household_key")?,
        at("phones")?,
    ];
    let mut sample: Vec<Query> = Vec::with_capacity(want);
    let mut batch: Vec<Vec<String>> = Vec::with_capacity(BATCH);
    let mut seen = 0usize;
    for (i, rec) in r.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        let village = villages
            .get(&rec[cols[5]])
            .map(|v| format!("{v:08}"))
            .unwrap_or_default();
        let phone = rec[cols[6]].split(';').next().unwrap_or("").to_string();
        let row = vec![
            rec[cols[0]].to_string(),
            rec[cols[1]].to_string(),
            rec[cols[2]].to_string(),
            rec[cols[3]].to_string(),
            rec[cols[4]].to_string(),
            village,
            phone,
        ];
        if sample.len() < want {
            sample.push((seen as u32, row.clone()));
        } else {
            let j = rng.random_range(0..=seen);
            if j < want {
                sample[j] = (seen as u32, row.clone());
            }
        }
        seen += 1;
        batch.push(row);
        if batch.len() == BATCH {
            data.push_rows(config, &batch, seen - batch.len())?;
            batch.clear();
        }
    }
    data.push_rows(config, &batch, seen - batch.len())?;
    Ok(sample)
}

/// The resident set size of this process now, in MiB (Linux).
fn rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}
