//! `inkingi match …`: deduplicate one CSV file, link two, or evaluate clusters against truth.
//!
//! The engine is `inkingi-linkage`; this module reads and writes the files and reports.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use inkingi_linkage::config::FieldKind;
use inkingi_linkage::dataset::{date, MISSING};
use inkingi_linkage::evaluate::{dense_ids, febrl_entity, Evaluation, Metrics};
use inkingi_linkage::model::probability;
use inkingi_linkage::{run, Dataset, LinkageConfig, Progress, Run, TrainedModel};

use inkingi_domain::areas::AreaCode;
use inkingi_store::registry_bulk::ExportMember;
use inkingi_store::Store;

use crate::cli::{
    EvaluateArgs, MatchCommand, MatchRunArgs, RegistryId, RegistryMatchArgs, TruthFormat,
};

/// Rows standardised per parallel batch while reading.
const BATCH: usize = 100_000;

pub fn run_command(cmd: MatchCommand, config: Option<&Path>) -> anyhow::Result<()> {
    match cmd {
        MatchCommand::Dedupe(args) => {
            let config = config.ok_or_else(|| {
                anyhow!("match dedupe needs --config FILE (the linkage configuration)")
            })?;
            let input = args
                .input
                .clone()
                .ok_or_else(|| anyhow!("match dedupe needs --input FILE"))?;
            match_files(&args, config, &[input])
        }
        MatchCommand::Link(args) => {
            let config = config.ok_or_else(|| {
                anyhow!("match link needs --config FILE (the linkage configuration)")
            })?;
            let (Some(left), Some(right)) = (args.left.clone(), args.right.clone()) else {
                bail!("match link needs --left FILE and --right FILE");
            };
            match_files(&args, config, &[left, right])
        }
        MatchCommand::Evaluate(args) => evaluate_files(&args),
        MatchCommand::Run(_) => bail!("match run needs the database: it runs asynchronously"),
        MatchCommand::LookupBench(args) => super::lookup_bench::run(&args),
    }
}

/// The linkage configuration of registry people, built in so that `match run` works from the
/// binary alone.
const REGISTRY_CONFIG: &str = include_str!("../../../../config/linkage/registry.toml");

/// Households read per page while loading the registry.
const PAGE: u32 = 5_000;

/// `inkingi match run`: loads the current people of the registry (or of one area), runs the
/// linkage and writes the same files as `match dedupe`, with person ids as record ids.
pub async fn run_registry(
    config: &crate::config::Config,
    args: &RegistryMatchArgs,
    linkage: Option<&Path>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let lc = match linkage {
        Some(p) => load_config(p)?,
        None => {
            let c: LinkageConfig =
                toml::from_str(REGISTRY_CONFIG).context("built-in registry linkage config")?;
            c.validate().context("built-in registry linkage config")?;
            c
        }
    };
    let area = match &args.area {
        None => String::new(),
        Some(a) => AreaCode::parse(a)
            .map_err(|e| anyhow!("--area: {e}"))?
            .as_str()
            .to_string(),
    };
    let model = read_model(args.model.as_deref())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let store = super::connect_and_migrate(config).await?;
    let progress = bar();
    progress.set_message("reading registry");
    let mut data = Dataset::new(&lc);
    let read = read_registry(&store, &area, &lc, &mut data, &progress, args.id).await;
    let (ids, people) = match read {
        Ok(r) => r,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    let out = match run(&lc, &data, model, &Bar(progress.clone())).context("linkage") {
        Ok(out) => out,
        Err(e) => {
            store.close().await;
            return Err(e);
        }
    };
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let written = write_outputs(&args.out, &data, &out, &ids, &[], None);
    let queued = match (&written, args.no_queue) {
        (Ok(()), false) => {
            progress.set_message("queueing reviews");
            Some(super::review_queue::queue(&store, &lc, &data, &out, &people).await)
        }
        _ => None,
    };
    store.close().await;
    written?;
    progress.finish_and_clear();
    summarise(&data, &out, None, started);
    if let Some(q) = queued {
        let q = q?;
        println!(
            "review queue: {} pairs queued ({} above the auto-link threshold), {} already there",
            q.created, q.auto_link, q.existing
        );
    }
    Ok(())
}

/// A registry person's value for a configured column.
fn registry_value(m: &ExportMember, village: &str, column: &str) -> Option<String> {
    Some(match column {
        "person_id" => m.id.to_string(),
        "given_name" => m.given_name.clone(),
        "family_name" => m.family_name.clone(),
        "sex" => m.sex.clone(),
        "birth_date" => m.birth_date.clone().unwrap_or_default(),
        "national_id" => m.national_id.clone().unwrap_or_default(),
        "birth_registration" => m.birth_registration.clone().unwrap_or_default(),
        "phone" => m.phone.clone().unwrap_or_default(),
        "village" => village.to_string(),
        _ => return None,
    })
}

fn record_id(m: &ExportMember, id: RegistryId) -> String {
    let key = m.source_key.as_deref().and_then(|k| k.split_once(':'));
    match (id, key) {
        (RegistryId::SourceKey, Some((_, key))) => key.to_string(),
        _ => m.id.to_string(),
    }
}

/// The columns [`registry_value`] knows.
const REGISTRY_COLUMNS: &[&str] = &[
    "person_id",
    "given_name",
    "family_name",
    "sex",
    "birth_date",
    "national_id",
    "birth_registration",
    "phone",
    "village",
];

async fn read_registry(
    store: &Store,
    area: &str,
    config: &LinkageConfig,
    data: &mut Dataset,
    bar: &ProgressBar,
    id: RegistryId,
) -> anyhow::Result<(Vec<String>, Vec<super::review_queue::RegistryPerson>)> {
    if let Some(f) = config
        .fields
        .iter()
        .find(|f| !REGISTRY_COLUMNS.contains(&f.column()))
    {
        bail!(
            "field {}: the registry has no column {:?}; it has {}",
            f.name,
            f.column(),
            REGISTRY_COLUMNS.join(", ")
        );
    }
    let bulk = store.registry_bulk();
    let mut ids = Vec::new();
    let mut people = Vec::new();
    let mut after = None;
    loop {
        let households = bulk.export_households(area, after.clone(), PAGE).await?;
        let Some(last) = households.last() else { break };
        after = Some((last.village_code.clone(), last.id));
        let villages: HashMap<_, _> = households
            .iter()
            .map(|h| (h.id, h.village_code.as_str()))
            .collect();
        let hh_ids: Vec<_> = households.iter().map(|h| h.id).collect();
        let members = bulk.export_members(&hh_ids).await?;
        let rows: Vec<Vec<String>> = members
            .iter()
            .map(|m| {
                let village = villages.get(&m.household_id).copied().unwrap_or_default();
                config
                    .fields
                    .iter()
                    .map(|f| registry_value(m, village, f.column()).unwrap_or_default())
                    .collect()
            })
            .collect();
        data.push_rows(config, &rows, ids.len())?;
        ids.extend(members.iter().map(|m| record_id(m, id)));
        people.extend(members.iter().map(|m| {
            super::review_queue::RegistryPerson {
                id: m.id,
                village: villages
                    .get(&m.household_id)
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
            }
        }));
        bar.inc(rows.len() as u64);
    }
    Ok((ids, people))
}

fn load_config(path: &Path) -> anyhow::Result<LinkageConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading linkage configuration {}", path.display()))?;
    let config: LinkageConfig = toml::from_str(&text)
        .with_context(|| format!("linkage configuration {}", path.display()))?;
    config
        .validate()
        .with_context(|| format!("linkage configuration {}", path.display()))?;
    Ok(config)
}

/// One input file's record ids and (when asked) truth labels.
struct Input {
    ids: Vec<String>,
    truth: Vec<Option<String>>,
}

fn read_input(
    path: &Path,
    config: &LinkageConfig,
    data: &mut Dataset,
    id_column: &str,
    truth: Option<(&str, TruthFormat)>,
    bar: &ProgressBar,
) -> anyhow::Result<Input> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(file);
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: reading the header", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let find = |name: &str, what: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            anyhow!(
                "{}: no column {name:?} ({what}); the columns are {}",
                path.display(),
                headers.join(", ")
            )
        })
    };
    let id_at = find(id_column, "the record id")?;
    let field_at: Vec<usize> = config
        .fields
        .iter()
        .map(|f| find(f.column(), &format!("field {}", f.name)))
        .collect::<anyhow::Result<_>>()?;
    let truth_at = match truth {
        Some((col, _)) => Some(find(col, "the truth")?),
        None => None,
    };
    let mut input = Input {
        ids: Vec::new(),
        truth: Vec::new(),
    };
    let mut batch: Vec<Vec<String>> = Vec::with_capacity(BATCH);
    let mut first_row = 0usize;
    for (i, record) in reader.records().enumerate() {
        // Row numbers in messages count the header as line 1, as a spreadsheet does.
        let record = record.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        input
            .ids
            .push(record.get(id_at).unwrap_or_default().to_string());
        if let (Some(at), Some((_, format))) = (truth_at, truth) {
            let label = record.get(at).unwrap_or_default();
            let label = match format {
                TruthFormat::Plain => label,
                TruthFormat::Febrl => febrl_entity(label),
            };
            input
                .truth
                .push((!label.is_empty()).then(|| label.to_string()));
        }
        batch.push(
            field_at
                .iter()
                .map(|&c| record.get(c).unwrap_or_default().to_string())
                .collect(),
        );
        if batch.len() == BATCH {
            data.push_rows(config, &batch, first_row)?;
            first_row += batch.len();
            bar.inc(batch.len() as u64);
            batch.clear();
        }
    }
    data.push_rows(config, &batch, first_row)?;
    bar.inc(batch.len() as u64);
    Ok(input)
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn stage(&self, name: &str, total: u64) {
        self.0.set_message(name.to_string());
        self.0.set_position(0);
        self.0.set_length(total);
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>20} {bar:40} {human_pos}/{human_len} ({per_sec}, {eta} left)",
    ) {
        bar.set_style(style);
    }
    bar
}

fn match_files(args: &MatchRunArgs, config_path: &Path, files: &[PathBuf]) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = load_config(config_path)?;
    let model = read_model(args.model.as_deref())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let progress = bar();
    progress.set_message("reading");
    let truth = args.truth_column.as_deref().map(|c| (c, args.truth_format));
    let mut data = Dataset::new(&config);
    let mut inputs = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if i == 1 {
            data.start_right();
        }
        inputs.push(read_input(
            file,
            &config,
            &mut data,
            &args.id_column,
            truth,
            &progress,
        )?);
    }
    let out = run(&config, &data, model, &Bar(progress.clone())).context("linkage")?;
    progress.set_message("writing");
    let sources: Vec<&str> = if files.len() == 2 {
        vec!["left", "right"]
    } else {
        vec![]
    };
    let ids: Vec<&str> = inputs
        .iter()
        .flat_map(|i| i.ids.iter().map(String::as_str))
        .collect();
    let evaluation = truth.map(|_| evaluate_inline(&config, &data, &out, &inputs));
    write_outputs(&args.out, &data, &out, &ids, &sources, evaluation.as_ref())?;
    progress.finish_and_clear();
    summarise(&data, &out, evaluation.as_ref(), started);
    Ok(())
}

fn read_model(path: Option<&Path>) -> anyhow::Result<Option<TrainedModel>> {
    let Some(p) = path else { return Ok(None) };
    let text =
        std::fs::read_to_string(p).with_context(|| format!("reading model {}", p.display()))?;
    let model = serde_json::from_str::<TrainedModel>(&text)
        .with_context(|| format!("model {}", p.display()))?;
    Ok(Some(model))
}

/// pairs.csv, clusters.csv, model.json and report.json in `dir`.
fn write_outputs(
    dir: &Path,
    data: &Dataset,
    out: &Run,
    ids: &[&str],
    sources: &[&str],
    evaluation: Option<&Report>,
) -> anyhow::Result<()> {
    write_pairs(&dir.join("pairs.csv"), data, out, ids)?;
    write_clusters(&dir.join("clusters.csv"), data, out, ids, sources)?;
    std::fs::write(dir.join("model.json"), out.model.to_json()).context("writing model.json")?;
    write_report(&dir.join("report.json"), data, out, evaluation)
}

/// Warnings, metrics and the one-line summary on the terminal.
fn summarise(data: &Dataset, out: &Run, evaluation: Option<&Report>, started: Instant) {
    print_warnings(data);
    for o in &out.blocker.report.oversized {
        eprintln!(
            "warning: blocking rule {:?} skipped a block of {} records ({} pairs): {}",
            o.rule, o.records, o.pairs, o.example
        );
    }
    if let Some(e) = evaluation {
        print_metrics(e);
    }
    let secs = started.elapsed().as_secs_f64();
    let linked = out
        .clustering
        .status
        .iter()
        .filter(|s| s.as_str() == "linked")
        .count();
    let review = out.pairs.len() - linked;
    let clusters = distinct(&out.clustering.cluster);
    println!(
        "{} records, {} candidate pairs, {linked} linked, {review} for review, {clusters} clusters, {secs:.1} s, {:.0} records/s",
        data.len(),
        out.candidate_pairs,
        data.len() as f64 / secs.max(1e-9)
    );
}

fn distinct(v: &[u32]) -> usize {
    v.iter().copied().max().map_or(0, |m| m as usize + 1)
}

fn write_pairs(path: &Path, data: &Dataset, out: &Run, ids: &[&str]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(BufWriter::new(
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ));
    let mut header = vec![
        "left_id".to_string(),
        "right_id".into(),
        "weight".into(),
        "probability".into(),
        "status".into(),
    ];
    for c in &out.scorer.comparisons {
        header.push(format!("{}_level", c.name));
        header.push(format!("{}_weight", c.name));
    }
    w.write_record(&header)?;
    let mut order: Vec<usize> = (0..out.pairs.len()).collect();
    order.sort_by(|&x, &y| out.pairs[y].weight.total_cmp(&out.pairs[x].weight));
    for i in order {
        let p = out.pairs[i];
        let mut row = vec![
            ids[p.a as usize].to_string(),
            ids[p.b as usize].to_string(),
            format!("{:.3}", p.weight),
            format!("{:.6}", probability(f64::from(p.weight))),
            out.clustering.status[i].as_str().to_string(),
        ];
        for f in out.scorer.explain(data, p.a as usize, p.b as usize) {
            row.push(f.level);
            row.push(format!("{:.3}", f.weight));
        }
        w.write_record(&row)?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn write_clusters(
    path: &Path,
    data: &Dataset,
    out: &Run,
    ids: &[&str],
    sources: &[&str],
) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(BufWriter::new(
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ));
    if sources.is_empty() {
        w.write_record(["record_id", "cluster_id"])?;
    } else {
        w.write_record(["source", "record_id", "cluster_id"])?;
    }
    for (r, id) in ids.iter().enumerate() {
        let cluster = format!("c{}", out.clustering.cluster[r]);
        if sources.is_empty() {
            w.write_record([*id, cluster.as_str()])?;
        } else {
            let source = if r < data.left_len {
                sources[0]
            } else {
                sources[1]
            };
            w.write_record([source, *id, cluster.as_str()])?;
        }
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Overall and per-subgroup metrics.
type Report = Vec<(String, Metrics)>;

fn evaluate_inline(config: &LinkageConfig, data: &Dataset, out: &Run, inputs: &[Input]) -> Report {
    let entity = dense_ids(
        inputs
            .iter()
            .flat_map(|i| i.truth.iter().map(Option::as_deref)),
    );
    let left: Vec<bool> = (0..data.len()).map(|r| r < data.left_len).collect();
    let eval = Evaluation {
        entity: &entity,
        cluster: &out.clustering.cluster,
        left: data.is_link().then_some(left.as_slice()),
    };
    let generated = |a: usize, b: usize| out.blocker.would_generate(a, b);
    let mut report = vec![("all".to_string(), eval.metrics(None, Some(&generated)))];
    for (name, group) in builtin_subgroups(config, data) {
        if group.iter().any(|&g| g) {
            report.push((name, eval.metrics(Some(&group), Some(&generated))));
        }
    }
    report
}

/// Subgroups the data itself reveals: people without a national ID, birth dates known only
/// to the year, and twins (same mother and birth date, different given names).
fn builtin_subgroups(config: &LinkageConfig, data: &Dataset) -> Vec<(String, Vec<bool>)> {
    let mut groups = Vec::new();
    for c in &data.columns {
        match c.kind {
            FieldKind::NationalId => groups.push((
                format!("no {}", c.name),
                c.values.iter().map(|&v| v == MISSING).collect(),
            )),
            FieldKind::Date => groups.push((
                format!("{} known only to the year", c.name),
                c.values
                    .iter()
                    .map(|&v| v != MISSING && date::month(v) == 0)
                    .collect(),
            )),
            _ => {}
        }
    }
    if config.constraints.twins.is_some() {
        let constraints = inkingi_linkage::cluster::Constraints::new(config, data);
        if let Some(t) = &config.constraints.twins {
            if let (Some(m), Some(d)) = (data.column(&t.mother), data.column(&t.date_of_birth)) {
                let mut by_key: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
                for r in 0..data.len() {
                    let key = (data.columns[m].values[r], data.columns[d].values[r]);
                    if key.0 != MISSING && key.1 != MISSING {
                        by_key.entry(key).or_default().push(r);
                    }
                }
                let mut twin = vec![false; data.len()];
                for members in by_key.values().filter(|m| m.len() > 1 && m.len() < 50) {
                    for (i, &a) in members.iter().enumerate() {
                        for &b in &members[i + 1..] {
                            if constraints.twins(data, a, b) {
                                twin[a] = true;
                                twin[b] = true;
                            }
                        }
                    }
                }
                groups.push(("twins".to_string(), twin));
            }
        }
    }
    groups
}

fn write_report(
    path: &Path,
    data: &Dataset,
    out: &Run,
    evaluation: Option<&Report>,
) -> anyhow::Result<()> {
    let warnings: Vec<serde_json::Value> = data
        .warnings
        .counts
        .iter()
        .map(|((field, reason), n)| serde_json::json!({"field": field, "reason": reason, "count": n}))
        .collect();
    let report = serde_json::json!({
        "records": data.len(),
        "candidate_pairs": out.candidate_pairs,
        "kept_pairs": out.pairs.len(),
        "blocking": out.blocker.report,
        "training": out.model.training,
        "warnings": warnings,
        "evaluation": evaluation.map(|e| e.iter().map(|(n, m)| serde_json::json!({"subgroup": n, "metrics": m})).collect::<Vec<_>>()),
    });
    let mut f =
        BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
    serde_json::to_writer_pretty(&mut f, &report)?;
    f.flush()?;
    Ok(())
}

fn print_warnings(data: &Dataset) {
    for ((field, reason), n) in &data.warnings.counts {
        let example = data
            .warnings
            .examples
            .iter()
            .find(|w| &w.field == field && &w.reason == reason);
        let at = example
            .map(|w| format!(" (first at data row {})", w.row + 1))
            .unwrap_or_default();
        eprintln!("warning: {n} × {field}: {reason}{at}");
    }
}

fn print_metrics(report: &Report) {
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "subgroup", "pairs", "precision", "recall", "F1", "B3 F1", "blocking"
    );
    for (name, m) in report {
        let pc = m
            .pair_completeness
            .map_or("-".to_string(), |p| format!("{p:.4}"));
        println!(
            "{:<36} {:>9} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>9}",
            name, m.true_pairs, m.precision, m.recall, m.f1, m.bcubed_f1, pc
        );
    }
}

fn evaluate_files(args: &EvaluateArgs) -> anyhow::Result<()> {
    // Truth: record id -> entity label, and subgroup values.
    let mut truth: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for path in &args.truth {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let headers = reader.headers()?.clone();
        let find = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| anyhow!("{}: no column {name:?}", path.display()))
        };
        let id_at = find(&args.id_column)?;
        let entity_at = match (&args.entity_column, args.truth_format) {
            (Some(c), _) => find(c)?,
            (None, TruthFormat::Febrl) => id_at,
            (None, TruthFormat::Plain) => {
                bail!("give --entity-column, or --truth-format febrl to read entities from the ids")
            }
        };
        let groups_at: Vec<usize> = args
            .subgroup
            .iter()
            .map(|c| find(c))
            .collect::<anyhow::Result<_>>()?;
        for (i, rec) in reader.records().enumerate() {
            let rec = rec.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
            let id = rec.get(id_at).unwrap_or_default().to_string();
            let raw = rec.get(entity_at).unwrap_or_default();
            let entity = match args.truth_format {
                TruthFormat::Febrl => febrl_entity(raw).to_string(),
                TruthFormat::Plain => raw.to_string(),
            };
            let groups = groups_at
                .iter()
                .map(|&g| rec.get(g).unwrap_or_default().to_string())
                .collect();
            if truth.insert(id.clone(), (entity, groups)).is_some() {
                bail!(
                    "{}: line {}: record id {id:?} appears twice in the truth",
                    path.display(),
                    i + 2
                );
            }
        }
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(&args.clusters)
        .with_context(|| format!("opening {}", args.clusters.display()))?;
    let headers = reader.headers()?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(id_at), Some(cluster_at)) = (col("record_id"), col("cluster_id")) else {
        bail!(
            "{}: expected columns record_id and cluster_id",
            args.clusters.display()
        );
    };
    let source_at = col("source");
    let (mut ids, mut clusters, mut left) = (Vec::new(), Vec::new(), Vec::new());
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: line {}", args.clusters.display(), i + 2))?;
        ids.push(rec.get(id_at).unwrap_or_default().to_string());
        clusters.push(rec.get(cluster_at).unwrap_or_default().to_string());
        left.push(source_at.is_none_or(|s| rec.get(s) == Some("left")));
    }
    let entity = dense_ids(ids.iter().map(|id| truth.get(id).map(|t| t.0.as_str())));
    let cluster = dense_ids(clusters.iter().map(|c| Some(c.as_str())));
    let eval = Evaluation {
        entity: &entity,
        cluster: &cluster,
        left: source_at.is_some().then_some(left.as_slice()),
    };
    let mut report = vec![("all".to_string(), eval.metrics(None, None))];
    for (g, name) in args.subgroup.iter().enumerate() {
        let mut values: Vec<&str> = truth
            .values()
            .map(|t| t.1[g].as_str())
            .filter(|v| !v.is_empty())
            .collect();
        values.sort_unstable();
        values.dedup();
        for v in values {
            let mask: Vec<bool> = ids
                .iter()
                .map(|id| truth.get(id).is_some_and(|t| t.1[g] == v))
                .collect();
            report.push((format!("{name}={v}"), eval.metrics(Some(&mask), None)));
        }
    }
    let unknown = entity
        .iter()
        .filter(|&&e| e == inkingi_linkage::evaluate::UNKNOWN)
        .count();
    if unknown > 0 {
        eprintln!("warning: {unknown} clustered records are not in the truth and were left out");
    }
    print_metrics(&report);
    println!("(pair completeness of blocking needs the blocking: run `match dedupe` or `match link` with --truth-column)");
    Ok(())
}
