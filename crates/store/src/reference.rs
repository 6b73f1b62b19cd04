//! Reference data embedded in the binary and loaded into the database by `migrate`.
//!
//! Each data set carries a version made of its source release and a hash of the embedded file,
//! recorded in `reference_data` when loaded. `migrate` compares the two and reloads only when
//! they differ, so starting a node is cheap and a binary with corrected data fixes the
//! database on its first start.

use std::sync::OnceLock;

use inkingi_domain::areas::parse_area_data;
use sha2::{Digest, Sha256};

use crate::areas::AREAS_DATASET;
use crate::{Store, StoreError, StoreResult};

/// `data/areas/rwanda-areas.csv`: NISR's list of villages, 2019-07 (see its README).
const AREAS_CSV: &str = include_str!("../../../data/areas/rwanda-areas.csv");

/// The release of the source the area data comes from.
const AREAS_SOURCE: &str = "nisr-2019-07";

/// The version of the embedded area data, e.g. `nisr-2019-07+3f2a9c01b7de`.
pub fn areas_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let digest = Sha256::digest(AREAS_CSV.as_bytes());
        let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("{AREAS_SOURCE}+{short}")
    })
}

/// Every embedded data set with its version, for readiness checks and diagnostics.
pub fn embedded_versions() -> Vec<(&'static str, &'static str)> {
    vec![(AREAS_DATASET, areas_version())]
}

/// Loads every embedded reference data set whose version differs from the database's.
pub(crate) async fn ensure_loaded(store: &Store) -> StoreResult<()> {
    let version = areas_version();
    let loaded = store.system().reference_version(AREAS_DATASET).await?;
    if loaded.as_deref() == Some(version) {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let areas = parse_area_data(AREAS_CSV)
        .map_err(|e| StoreError::Invalid(format!("embedded data/areas/rwanda-areas.csv: {e}")))?;
    store.areas().replace_areas(version, &areas).await?;
    tracing::info!(
        dataset = AREAS_DATASET,
        from = loaded.as_deref().unwrap_or("none"),
        to = version,
        rows = areas.len(),
        seconds = started.elapsed().as_secs_f64(),
        "reference data loaded"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use inkingi_domain::areas::AreaLevel;

    #[test]
    fn embedded_areas_parse_with_nisr_counts() {
        let areas = parse_area_data(AREAS_CSV).expect("embedded data is valid");
        let count = |level| areas.iter().filter(|a| a.level == level).count();
        let counts: Vec<usize> = AreaLevel::ALL.into_iter().map(count).collect();
        assert_eq!(counts, [5, 30, 416, 2148, 14816]);
        let provinces: Vec<(&str, &str)> = areas
            .iter()
            .filter(|a| a.level == AreaLevel::Province)
            .map(|a| (a.code.as_str(), a.name.as_str()))
            .collect();
        assert_eq!(
            provinces,
            [
                ("1", "Umujyi wa Kigali"),
                ("2", "Amajyepfo"),
                ("3", "Iburengerazuba"),
                ("4", "Amajyaruguru"),
                ("5", "Iburasirazuba"),
            ]
        );
    }

    #[test]
    fn version_names_source_and_content() {
        let v = areas_version();
        let hash = v.strip_prefix("nisr-2019-07+").expect("source prefix");
        assert_eq!(hash.len(), 12);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
