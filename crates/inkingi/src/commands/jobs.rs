//! `inkingi jobs …`: inspect and replay background jobs, and self-test the pipeline.

use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use inkingi_interop::probe::ProbeJob;
use inkingi_store::jobs::{JobFilter, JobId, JobRecord, NewJob, ProbeReport};
use inkingi_store::Store;

use crate::cli::{JobsCommand, JobsListArgs, JobsProbeArgs, JobsPruneArgs, JobsRetryArgs};
use crate::config::Config;

pub async fn run(config: &Config, cmd: JobsCommand) -> anyhow::Result<()> {
    let store = super::connect_and_migrate(config).await?;
    let result = match cmd {
        JobsCommand::List(args) => list(&store, args).await,
        JobsCommand::Retry(args) => retry(&store, args).await,
        JobsCommand::Probe(args) => probe(&store, args).await,
        JobsCommand::Prune(args) => prune(&store, args).await,
    };
    store.close().await;
    result
}

async fn list(store: &Store, args: JobsListArgs) -> anyhow::Result<()> {
    let filter = JobFilter {
        status: args.status,
        queue: args.queue.map(|q| q.as_str().to_string()),
        limit: args.limit,
    };
    let jobs = store.jobs().list(&filter).await?;
    if jobs.is_empty() {
        println!("no jobs");
    } else {
        print!("{}", table(&jobs));
    }
    Ok(())
}

const ERROR_WIDTH: usize = 70;

/// A plain-text table, columns padded to their widest cell.
fn table(jobs: &[JobRecord]) -> String {
    let header = [
        "ID",
        "QUEUE",
        "KIND",
        "STATUS",
        "TRIES",
        "RUN AT (UTC)",
        "WORKER",
        "LAST ERROR",
    ];
    let rows: Vec<[String; 8]> = jobs
        .iter()
        .map(|j| {
            [
                j.id.to_string(),
                j.queue.clone(),
                j.kind.clone(),
                j.status.to_string(),
                format!("{}/{}", j.attempts, j.max_attempts),
                j.run_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                j.locked_by.clone().unwrap_or_else(|| "-".into()),
                j.last_error.as_deref().map_or_else(|| "-".into(), one_line),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// An error message on one line, cut to fit a table column.
fn one_line(error: &str) -> String {
    let flat = error.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(ERROR_WIDTH) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

async fn retry(store: &Store, args: JobsRetryArgs) -> anyhow::Result<()> {
    if args.dead {
        let queue = args.queue.as_ref().map(|q| q.as_str());
        let n = store.jobs().retry_dead(queue).await?;
        let scope = queue.map_or_else(String::new, |q| format!(" of queue {q}"));
        println!("{n} dead job(s){scope} queued again from their first attempt");
        return Ok(());
    }
    let id = args
        .id
        .context("give a job id or --dead (see `inkingi jobs list`)")?;
    let job = store.jobs().retry(id).await?;
    println!(
        "job {} ({}, queue {}) queued to run now, attempt {} of {}",
        job.id,
        job.kind,
        job.queue,
        job.attempts + 1,
        job.max_attempts
    );
    Ok(())
}

async fn prune(store: &Store, args: JobsPruneArgs) -> anyhow::Result<()> {
    let cutoff = chrono::Duration::from_std(args.older_than)
        .ok()
        .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
        .context("--older-than reaches before the start of the calendar")?;
    let n = inkingi_store::jobs::prune_succeeded(store.jobs(), cutoff, || false).await?;
    println!(
        "{n} succeeded job(s) finished before {} deleted",
        cutoff.format("%Y-%m-%d %H:%M:%S UTC")
    );
    Ok(())
}

/// Probes enqueued per transaction.
const ENQUEUE_BATCH: usize = 1000;

async fn probe(store: &Store, args: JobsProbeArgs) -> anyhow::Result<()> {
    let payload = ProbeJob {
        sleep_ms: args.sleep_ms,
        fail_times: args.fail_times,
    };
    // By default: room for the planned failures plus one success, and one more for a crash.
    let max_attempts = args
        .max_attempts
        .unwrap_or_else(|| args.fail_times.saturating_add(2));
    let job = NewJob::of(&payload)?.max_attempts(max_attempts);
    let started = Instant::now();
    let ids = enqueue(store, &job, args.count as usize).await?;
    println!(
        "enqueued {} {} job(s) ({} ms sleep, {} planned failure(s) each)",
        ids.len(),
        ProbeJob::KIND,
        args.sleep_ms,
        args.fail_times
    );
    let Some(wait) = args.wait else {
        return Ok(());
    };
    // A probe runs once per planned failure plus once to succeed, unless it dies first.
    let expected_runs = args.fail_times.saturating_add(1).min(max_attempts);
    let report = wait_for(store, &ids, expected_runs, Duration::from_secs(wait)).await?;
    let secs = started.elapsed().as_secs_f64();
    println!("{}", summary(&report, secs));
    if report.duplicate_runs > 0 {
        anyhow::bail!(
            "{} duplicate run(s): probe jobs ran more often than planned (a job claimed twice, \
             or run again after its worker died mid-run)",
            report.duplicate_runs
        );
    }
    if report.unfinished > 0 {
        anyhow::bail!(
            "timed out after {wait} s: {} of {} probe job(s) unfinished (is a worker running? \
             start one with `inkingi worker`)",
            report.unfinished,
            report.jobs
        );
    }
    Ok(())
}

async fn enqueue(store: &Store, job: &NewJob, count: usize) -> anyhow::Result<Vec<JobId>> {
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let n = (count - ids.len()).min(ENQUEUE_BATCH);
        let mut uow = store.begin().await?;
        for _ in 0..n {
            ids.push(store.jobs().enqueue(&mut uow, job.clone()).await?);
        }
        uow.commit().await?;
    }
    Ok(ids)
}

/// Polls until every probe finished or `limit` passed; returns the last report.
async fn wait_for(
    store: &Store,
    ids: &[JobId],
    expected_runs: u32,
    limit: Duration,
) -> anyhow::Result<ProbeReport> {
    let bar = ProgressBar::new(ids.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} probe jobs finished ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let deadline = Instant::now() + limit;
    let report = loop {
        let report = store.jobs().probe_report(ids, expected_runs).await?;
        bar.set_position(report.succeeded + report.dead);
        if report.unfinished == 0 || Instant::now() >= deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    Ok(report)
}

fn summary(r: &ProbeReport, secs: f64) -> String {
    format!(
        "probe: {} job(s): {} succeeded, {} dead, {} unfinished; {} run(s) by {} worker(s), \
         {} duplicate run(s); {secs:.2} s ({:.0} jobs/s)",
        r.jobs,
        r.succeeded,
        r.dead,
        r.unfinished,
        r.runs,
        r.workers,
        r.duplicate_runs,
        (r.succeeded + r.dead) as f64 / secs.max(0.001)
    )
}
