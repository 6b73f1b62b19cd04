//! Bulk import and export of the registry in the CSV format shared by `inkingi generate`,
//! `inkingi import` and `inkingi export` (docs/CSV_FORMAT.md). A library, so that the command
//! line and the API's upload job run the same code: callers pass readers and writers and a
//! progress callback.

pub mod csv_in;
pub mod export;
pub mod import;
pub mod upload_job;
pub mod validate;

/// One problem with one cell of an input file, as written to the error report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// `households.csv` or `members.csv`.
    pub file: &'static str,
    /// Line number in the file (the header is line 1).
    pub line: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// The error report's header.
pub const REPORT_HEADER: [&str; 5] = ["file", "row", "column", "value", "reason"];
