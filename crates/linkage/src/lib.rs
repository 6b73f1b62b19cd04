//! Inkingi's record-linkage engine: which records are the same person, inside one dataset
//! (deduplication) or across two (linkage).
//!
//! Pure and parallel (rayon); no files, no database. The pipeline is:
//! [`dataset`] standardises and integer-encodes records ([`standardise`]), [`blocking`]
//! chooses candidate pairs, [`compare`] turns a pair into comparison levels, [`model`] is the
//! Fellegi–Sunter model (u from a seeded sample, m by EM over patterns, λ from deterministic
//! rules) that weighs them, [`cluster`] joins records above the auto-link threshold under
//! cannot-link constraints, and [`evaluate`] measures the result against known truth.
//! [`index`] answers one-record lookups against a prebuilt index.

pub mod blocking;
pub mod cluster;
pub mod compare;
pub mod config;
pub mod dataset;
pub mod evaluate;
pub mod index;
pub mod model;
pub mod pipeline;
pub mod standardise;

pub use config::LinkageConfig;
pub use dataset::Dataset;
pub use model::TrainedModel;
pub use pipeline::{run, Progress, Run, Silent};

/// What can go wrong; every message says what and where.
#[derive(Debug, thiserror::Error)]
pub enum LinkageError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("input: {0}")]
    Input(String),
    #[error("spelling-variant table, line {line}: {reason}")]
    Variants { line: usize, reason: String },
    #[error("model: {0}")]
    Model(String),
}
