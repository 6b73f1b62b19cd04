//! The integrated child record, ages 0–6: growth assessment against the WHO standards.

pub mod growth;
