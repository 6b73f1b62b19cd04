//! Simulators of outside systems, speaking their protocols over HTTP with faults injected on
//! demand, so demos and tests run the real client code.

pub mod crvs;
pub mod dhis2;
pub mod faults;
pub mod national_id;
pub mod sms;
pub mod subscriber;
