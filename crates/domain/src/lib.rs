//! Pure domain types and rules of Inkingi. Nothing here performs I/O, so everything here is
//! unit-testable and shared by the store, the server and the CLI.
//!
//! Modules carry the bounded-context names of `ARCHITECTURE.md`.

pub mod areas;
pub mod audit;
pub mod children;
pub mod identity;
pub mod jobs;
pub mod programmes;
pub mod registry;
pub mod targeting;
pub mod text;
