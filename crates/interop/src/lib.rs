//! Everything that leaves the process: the background worker that runs queued jobs, connectors
//! to outside systems, and simulators of those systems for demos and tests.

pub mod breaker;
pub mod crvs;
pub mod dci;
pub mod dhis2;
pub mod national_id;
pub mod probe;
pub mod programmes;
pub mod registry_io;
pub mod simulate;
pub mod sms;
pub mod targeting;
pub mod worker;
