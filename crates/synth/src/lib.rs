//! Synthetic registry data: realistic households, people and injected duplicate registrations
//! in the registry CSV format (`households.csv`, `members.csv`) plus the ground truth of the
//! duplicates (`truth.csv`), at national scale and deterministic per seed.
//!
//! Households are generated in fixed-size chunks. Each chunk draws from its own random stream
//! (the seed and the chunk's index), so the output does not depend on how many threads run or
//! in which order chunks finish: chunks are generated in parallel and written in order.
//! Identifiers that must be unique across the whole output (national IDs, registry numbers,
//! birth registration numbers) are derived from a chunk-local counter through a bijection, so
//! they are unique by construction without a shared set.

mod answers;
mod chunk;
mod duplicates;
mod household;
mod numbers;
mod output;
mod reference;
mod stats;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use chrono::NaiveDate;
use rayon::prelude::*;

pub use output::{HOUSEHOLD_FIXED_COLUMNS, MEMBER_FIXED_COLUMNS, TRUTH_COLUMNS};

/// Households per chunk: each chunk has its own random stream and identifier ranges.
pub const CHUNK_HOUSEHOLDS: u64 = 1024;
/// Chunks generated in parallel before their output is handed to the writer; bounds memory.
const CHUNKS_PER_BATCH: usize = 32;
/// The most households one run generates: the identifier ranges reserved per chunk
/// (see `numbers`) fit national IDs' ten free digits up to this size.
pub const MAX_HOUSEHOLDS: u64 = 10_000_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Households to generate, not counting re-registered (duplicate) households.
    pub households: u64,
    pub seed: u64,
    /// Share of people registered a second time (0 to 0.5).
    pub duplicate_share: f64,
    /// Share of children under 16 with a birth registration number (0 to 1).
    pub child_id_share: f64,
    /// The day the registration describes: ages are counted to it and no birth is after it.
    /// Fixed rather than "today" so that a seed gives the same files on any day.
    pub as_of: NaiveDate,
}

impl GenerateConfig {
    /// The default reference day of the generated registry.
    pub fn default_as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or(NaiveDate::MIN)
    }

    pub fn new(households: u64, seed: u64) -> GenerateConfig {
        GenerateConfig {
            households,
            seed,
            duplicate_share: 0.02,
            child_id_share: 0.3,
            as_of: Self::default_as_of(),
        }
    }

    fn check(&self) -> Result<(), Error> {
        if !(1..=MAX_HOUSEHOLDS).contains(&self.households) {
            return Err(Error::Config(format!(
                "households must be 1 to {MAX_HOUSEHOLDS}, not {}",
                self.households
            )));
        }
        if !(0.0..=0.5).contains(&self.duplicate_share) {
            return Err(Error::Config(format!(
                "duplicate share must be 0 to 0.5, not {}",
                self.duplicate_share
            )));
        }
        if !(0.0..=1.0).contains(&self.child_id_share) {
            return Err(Error::Config(format!(
                "child ID share must be 0 to 1, not {}",
                self.child_id_share
            )));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("the writer stopped unexpectedly")]
    WriterGone,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Rows of households.csv (re-registered households included).
    pub households: u64,
    /// Rows of members.csv (duplicates included).
    pub people: u64,
    /// Rows of members.csv that are injected duplicates.
    pub duplicates: u64,
    /// Bytes written, all three files together.
    pub bytes: u64,
}

/// The three output files in `dir`.
pub fn output_paths(dir: &Path) -> [PathBuf; 3] {
    ["households.csv", "members.csv", "truth.csv"].map(|f| dir.join(f))
}

/// Generates `config.households` households into `out_dir` (created if missing), calling
/// `progress` with the number of households written so far after each batch.
pub fn generate(
    config: &GenerateConfig,
    out_dir: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Summary, Error> {
    config.check()?;
    std::fs::create_dir_all(out_dir).map_err(|source| Error::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let reference = reference::Reference::load();
    let mut files = output::Files::create(out_dir, &reference.form)?;
    let chunks: Vec<u64> = (0..config.households.div_ceil(CHUNK_HOUSEHOLDS)).collect();
    let (tx, rx) = mpsc::sync_channel::<Vec<chunk::ChunkOutput>>(1);
    // Writing overlaps with generating the next batch.
    let written = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<Summary, Error> {
            let mut summary = Summary::default();
            for batch in rx {
                for out in batch {
                    files.append(&out)?;
                    summary.households += out.households;
                    summary.people += out.people;
                    summary.duplicates += out.duplicates;
                }
                progress(summary.households.min(config.households));
            }
            summary.bytes = files.finish()?;
            Ok(summary)
        });
        let sent = chunks.chunks(CHUNKS_PER_BATCH).try_for_each(|batch| {
            let outputs = batch
                .par_iter()
                .map(|&c| chunk::generate_chunk(config, &reference, c))
                .collect::<Result<Vec<_>, Error>>()?;
            tx.send(outputs).map_err(|_| Error::WriterGone)
        });
        drop(tx);
        let summary = writer.join().map_err(|_| Error::WriterGone)?;
        // A writer failure explains a failed send better than the send itself.
        let summary = summary?;
        sent.map(|()| summary)
    })?;
    Ok(written)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn buffered(path: &Path) -> Result<BufWriter<File>, Error> {
    let file = File::create(path).map_err(io_error(path))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

fn flush(writer: BufWriter<File>, path: &Path) -> Result<(), Error> {
    writer
        .into_inner()
        .map_err(|e| io_error(path)(e.into_error()))?;
    Ok(())
}
