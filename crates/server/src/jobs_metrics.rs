//! Job queue gauges sampled at scrape time.

use crate::AppState;

pub async fn sample(_state: &AppState) {}
