//! `children …`: the school feed from a CSV file (through the same checks, linkage and
//! storage as its API), the batch recompute of services due, indicators, and the benchmark
//! helpers.

use std::time::Instant;

use chrono::Utc;
use indicatif::ProgressBar;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::children::indicators::RefMonth;
use inkingi_domain::identity::{AreaScope, Username};
use inkingi_server::auth::Principal;
use inkingi_server::children::feeds::{read_csv, receive, Feed};
use inkingi_server::children::indicators::table;
use inkingi_server::children::status::{recompute_all, refresh};
use inkingi_store::children::{Measurement, MeasurementKind, Provenance, Subject};
use inkingi_store::Store;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::cli::ChildrenCommand;
use crate::config::Config;

async fn import_school(
    config: &Config,
    file: std::path::PathBuf,
    source: String,
) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let records = read_csv(Feed::School, &bytes).map_err(refusal)?;
    let store = super::connect_and_migrate(config).await?;
    // Acts nationally, like an import; audit entries say `token:connector:school-import`.
    let principal = Principal::connector(Username::parse("school-import")?);
    let result = receive(&store, &principal, Feed::School, Some(&source), &records).await;
    store.close().await;
    let s = result.map_err(refusal)?;
    println!(
        "{} row(s): {} enrolment(s) stored, {} already stored; {} child(ren) linked to \
         the registry, {} in the review queue",
        s.records, s.created, s.existing, s.linked, s.in_review
    );
    Ok(())
}

/// A refusal with every row, field and reason, one per line.
fn refusal(e: inkingi_server::error::ApiError) -> anyhow::Error {
    let mut text = format!("refused, nothing stored: {}", e.detail);
    for f in &e.errors {
        text.push_str(&format!("\n  {}: {}", f.field, f.reason));
    }
    anyhow::anyhow!(text)
}

fn api(e: inkingi_server::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn run(config: &Config, cmd: ChildrenCommand) -> anyhow::Result<()> {
    if let ChildrenCommand::ImportSchool { file, source } = cmd {
        return import_school(config, file, source).await;
    }
    let store = super::connect_and_migrate(config).await?;
    let result = match cmd {
        ChildrenCommand::Recompute { page } => recompute(&store, page).await,
        ChildrenCommand::Indicators { area, month } => indicators(&store, area, month).await,
        ChildrenCommand::SeedSynthetic { children } => {
            let secs = inkingi_store::synthetic_children::seed_children(&store, children).await?;
            println!("seeded {children} synthetic children in {secs:.1} s");
            Ok(())
        }
        ChildrenCommand::BenchIncremental { events } => bench_incremental(&store, events).await,
        // Handled above: the file is read and checked before connecting.
        ChildrenCommand::ImportSchool { .. } => Ok(()),
    };
    store.close().await;
    result
}

async fn recompute(store: &Store, page: u32) -> anyhow::Result<()> {
    let bar = ProgressBar::new_spinner();
    let today = Utc::now().date_naive();
    let sum = recompute_all(store, today, page, |n| {
        bar.set_message(format!("{n} children evaluated"));
        bar.tick();
    })
    .await
    .map_err(api)?;
    bar.finish_and_clear();
    println!(
        "evaluated {} children and {} mothers on {today}: {} occurrences stored, {} rows \
         written (new or changed), {} removed, in {:.1} s ({:.0} children/s)",
        sum.children,
        sum.mothers,
        sum.rows,
        sum.written,
        sum.removed,
        sum.seconds,
        sum.children as f64 / sum.seconds.max(1e-9)
    );
    Ok(())
}

async fn indicators(
    store: &Store,
    area: Option<String>,
    month: Option<String>,
) -> anyhow::Result<()> {
    let area = area
        .map(|a| AreaCode::parse(&a))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--area: {e}"))?;
    let month = match month {
        Some(m) => RefMonth::parse(&m).map_err(|e| anyhow::anyhow!("--month: {e}"))?,
        None => RefMonth::of(Utc::now().date_naive()),
    };
    let started = Instant::now();
    let t = table(store, &AreaScope::national(), area.as_ref(), month)
        .await
        .map_err(api)?;
    let secs = started.elapsed().as_secs_f64();
    println!("{}", serde_json::to_string_pretty(&t)?);
    eprintln!("{} area(s) counted in {secs:.3} s", t.areas.len());
    Ok(())
}

/// Stores a weighing of a random registry child and re-evaluates the child, `events` times.
async fn bench_incremental(store: &Store, events: u32) -> anyhow::Result<()> {
    let today = Utc::now().date_naive();
    let born_from = today
        .checked_sub_months(chrono::Months::new(60))
        .unwrap_or(today)
        .to_string();
    let kids = store
        .child_status()
        .children_page(&born_from, None, 100_000)
        .await?;
    anyhow::ensure!(
        !kids.is_empty(),
        "no child under five in the registry: seed first"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut write_ms = Vec::with_capacity(events as usize);
    let mut eval_ms = Vec::with_capacity(events as usize);
    for i in 0..events {
        let kid = &kids[rng.random_range(0..kids.len())];
        let started = Instant::now();
        let m = Measurement {
            id: Uuid::now_v7(),
            subject: Subject {
                person_id: Some(kid.id),
                source_person_id: None,
            },
            kind: MeasurementKind::Weight,
            loinc: "29463-7".into(),
            value: 9.0 + f64::from(i % 10) / 10.0,
            unit: "kg".into(),
            measured_on: today,
            zscores: serde_json::json!({}),
            provenance: Provenance {
                source_system: "bench".into(),
                source_id: format!("{}/{i}", Uuid::now_v7()),
                received_at: Utc::now(),
                received_by: "bench".into(),
            },
        };
        let mut uow = store.begin().await?;
        store.children().put_measurement(&mut uow, &m).await?;
        uow.commit().await?;
        let written = Instant::now();
        refresh(store, &[kid.id], today).await.map_err(api)?;
        write_ms.push((written - started).as_secs_f64() * 1e3);
        eval_ms.push(written.elapsed().as_secs_f64() * 1e3);
    }
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    };
    println!(
        "{events} events: re-evaluation p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms; \
         fact write p50 {:.2} ms, p95 {:.2} ms",
        pct(&mut eval_ms, 0.5),
        pct(&mut eval_ms, 0.95),
        pct(&mut eval_ms, 1.0),
        pct(&mut write_ms, 0.5),
        pct(&mut write_ms, 0.95)
    );
    Ok(())
}
