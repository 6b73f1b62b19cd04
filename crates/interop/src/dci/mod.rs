//! DCI (Digital Convergence Initiative) social registry messages: the envelope, search
//! requests and their translation to registry queries, registry records as DCI data objects,
//! transaction status, and the job that delivers asynchronous answers to the caller.
//!
//! Interface contract: the DCI Social Registry and Registry Core API specifications, v1.0.0.

pub mod callback;
pub mod envelope;
pub mod ibr;
pub mod notify;
pub mod records;
pub mod search;
pub mod signing;
pub mod txn;
pub mod webhook;
