//! The integrated child record, ages 0–6: growth assessment against the WHO standards and the
//! services due to children and their mothers.

pub mod growth;
pub mod indicators;
pub mod schedule;
