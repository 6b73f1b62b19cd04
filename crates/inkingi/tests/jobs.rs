//! The job queue through the real binary: worker processes, `inkingi jobs …`, crashes.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use inkingi_domain::jobs::{JobName, JobStatus};
use inkingi_interop::probe::ProbeJob;
use inkingi_store::jobs::{Failure, JobId, NewJob};
use inkingi_store::Store;
use inkingi_testkit::{databases, TestDb, PG_ENV};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod common;

/// `inkingi` on `url`, with fast polling and quiet logs; the caller's `INKINGI_*` settings are
/// cleared so the test sees only what it sets.
fn inkingi(url: &str) -> Command {
    let mut cmd = Command::new(common::BIN);
    for key in common::inherited_settings() {
        cmd.env_remove(key);
    }
    cmd.arg("--database-url")
        .arg(url)
        .env("INKINGI_LOG_LEVEL", "warn")
        .env("INKINGI_WORKER__POLL_INTERVAL_MS", "50")
        .env("INKINGI_WORKER__RETRY_BASE_MS", "20")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

struct Worker {
    child: Child,
    log: PathBuf,
}

/// Starts `inkingi worker` and waits (at most 30 s) until it says it started. Its log goes to a
/// file in `dir`, shown when an assertion about it fails.
async fn start_worker(db: &TestDb, dir: &Path, name: &str, env: &[(&str, &str)]) -> Worker {
    let log = dir.join(format!("{name}.log"));
    let mut cmd = inkingi(&db.url);
    cmd.arg("worker")
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    match first {
        Ok(Ok(Some(line))) if line.contains("worker started") => {}
        other => panic!("{name} did not start: {other:?}\n{}", log_text()),
    }
    // Keep draining stdout so the worker never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Worker { child, log }
}

impl Worker {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait (at most 30 s) for a graceful exit.
    async fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("worker ignored SIGTERM for 30 s\n{}", self.log()),
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, Fut>(what: &str, limit: Duration, mut check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_worker_processes_never_run_a_job_twice_on_postgres() {
    let Some(admin) = std::env::var(PG_ENV).ok().filter(|u| !u.trim().is_empty()) else {
        eprintln!("skipped: set {PG_ENV} to run the two-process PostgreSQL test");
        return;
    };
    let db = inkingi_testkit::postgres(&admin).await;
    let store = db.store().await; // migrated before the workers start
    let dir = tempfile::tempdir().unwrap();
    let env = [("INKINGI_WORKER__CONCURRENCY", "8")];
    let w1 = start_worker(&db, dir.path(), "w1", &env).await;
    let w2 = start_worker(&db, dir.path(), "w2", &env).await;

    let out = tokio::time::timeout(
        Duration::from_secs(300),
        inkingi(&db.url)
            .args(["jobs", "probe", "--count", "1000", "--sleep-ms", "2"])
            .args(["--wait", "240"])
            .output(),
    )
    .await
    .expect("jobs probe --wait ends")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stdout}\n{stderr}\n{}\n{}",
        w1.log(),
        w2.log()
    );
    assert!(
        stdout.contains("1000 succeeded, 0 dead, 0 unfinished")
            && stdout.contains("1000 run(s) by 2 worker(s), 0 duplicate run(s)"),
        "{stdout}"
    );

    // Counted again straight from the tables, independently of the report above.
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let (runs, jobs_run, workers): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT job_id), count(DISTINCT worker_id) FROM job_probe_runs",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(runs, 1000, "exactly one run per job");
    assert_eq!(jobs_run, 1000, "no job id twice");
    assert_eq!(workers, 2, "both worker processes took part");
    let states: Vec<(String, i32, i64)> =
        sqlx::query_as("SELECT status, attempts, count(*) FROM jobs GROUP BY status, attempts")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(states, [("succeeded".to_string(), 1, 1000)]);
    pool.close().await;

    for w in [w1, w2] {
        let status = w.terminate().await;
        assert!(status.success(), "graceful exit: {status}");
    }
    store.close().await;
}

#[tokio::test]
async fn a_job_survives_a_worker_killed_mid_run() {
    for db in databases().await {
        let store = db.store().await;
        let dir = tempfile::tempdir().unwrap();
        let env = [("INKINGI_WORKER__LEASE_SECS", "2")];
        let id = store
            .jobs()
            .enqueue_now(
                NewJob::of(&ProbeJob {
                    sleep_ms: 1500,
                    fail_times: 0,
                })
                .unwrap(),
            )
            .await
            .unwrap();

        let mut w1 = start_worker(&db, dir.path(), "w1", &env).await;
        let first = eventually("the first run", Duration::from_secs(30), || async {
            store.jobs().probe_runs(id).await.unwrap().pop()
        })
        .await;
        w1.child.kill().await.unwrap(); // SIGKILL, mid-sleep: no chance to report
        let job = store.jobs().get(id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Running, "[{db:?}] {}", w1.log());
        assert_eq!(job.locked_by.as_deref(), Some(first.worker_id.as_str()));

        let w2 = start_worker(&db, dir.path(), "w2", &env).await;
        let job = eventually("the job to finish", Duration::from_secs(30), || async {
            let job = store.jobs().get(id).await.unwrap().unwrap();
            job.status.is_final().then_some(job)
        })
        .await;
        assert_eq!(
            (job.status, job.attempts),
            (JobStatus::Succeeded, 2),
            "[{db:?}] {job:?}\n{}",
            w2.log()
        );
        let error = job.last_error.unwrap();
        assert!(
            error.contains("lapsed") && error.contains(&first.worker_id),
            "{error}"
        );
        let runs = store.jobs().probe_runs(id).await.unwrap();
        assert_eq!(runs.len(), 2, "[{db:?}] {runs:?}");
        assert_eq!((runs[0].attempt, runs[1].attempt), (1, 2));
        assert_ne!(runs[0].worker_id, runs[1].worker_id, "taken over by w2");
        // Not before the dead worker's lease ran out.
        let gap_ms = (runs[1].ran_at - runs[0].ran_at).num_milliseconds();
        assert!(gap_ms >= 1500, "[{db:?}] retried after {gap_ms} ms");

        assert!(w2.terminate().await.success());
        store.close().await;
    }
}

async fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), inkingi(url).args(args).output())
        .await
        .expect("command ends within 60 s")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn dead_job(store: &Store, kind: &str, queue: &str) -> JobId {
    let job =
        NewJob::new(JobName::parse(kind).unwrap(), json!({})).queue(JobName::parse(queue).unwrap());
    let id = store.jobs().enqueue_now(job).await.unwrap();
    let lease = store
        .jobs()
        .claim("w-test", 1, Duration::from_secs(60))
        .await
        .unwrap()
        .remove(0)
        .lease;
    assert_eq!(lease.id, id);
    store
        .jobs()
        .fail(&lease, "connection refused by the gateway", Failure::Dead)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn list_and_retry_from_the_command_line() {
    for db in databases().await {
        let store = db.store().await;
        let url = db.url.as_str();
        let (code, out, _) = cli(url, &["jobs", "list"]).await;
        assert_eq!((code, out.trim()), (0, "no jobs"), "[{db:?}]");

        let sms = dead_job(&store, "sms.send", "sms").await;
        let push = dead_job(&store, "dhis2.push", "dhis2").await;
        let (code, out, err) = cli(url, &["jobs", "list", "--status", "dead"]).await;
        assert_eq!(code, 0, "[{db:?}] {err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("ID") && lines[0].contains("LAST ERROR"));
        assert!(
            lines[1].starts_with(&push.to_string()),
            "newest first:\n{out}"
        );
        for needle in ["dhis2.push", "dead", "1/10", "w-test", "connection refused"] {
            assert!(lines[1].contains(needle), "{needle} missing:\n{out}");
        }
        let (_, out, _) = cli(url, &["jobs", "list", "--queue", "sms"]).await;
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains(&sms.to_string()));

        let (code, out, err) = cli(url, &["jobs", "retry", &sms.to_string()]).await;
        assert_eq!(code, 0, "[{db:?}] {err}");
        assert!(out.contains("queued to run now, attempt 1 of 10"), "{out}");
        let (code, out, _) = cli(url, &["jobs", "retry", "--dead", "--queue", "sms"]).await;
        assert_eq!(
            (code, out.trim()),
            (
                0,
                "0 dead job(s) of queue sms queued again from their first attempt"
            )
        );
        let (code, out, _) = cli(url, &["jobs", "retry", "--dead"]).await;
        assert_eq!(
            (code, out.trim()),
            (0, "1 dead job(s) queued again from their first attempt")
        );
        for id in [sms, push] {
            let job = store.jobs().get(id).await.unwrap().unwrap();
            assert_eq!((job.status, job.attempts), (JobStatus::Queued, 0));
        }

        // Mistakes are named.
        let (code, _, err) = cli(url, &["jobs", "list", "--status", "done"]).await;
        assert_eq!(code, 2);
        assert!(
            err.contains("--status") && err.contains("queued, running, succeeded, dead"),
            "{err}"
        );
        let (code, _, err) = cli(url, &["jobs", "retry", "42"]).await;
        assert_eq!(code, 2);
        assert!(err.contains("invalid job id '42'"), "{err}");
        let (code, _, err) = cli(url, &["jobs", "retry"]).await;
        assert_eq!(code, 2, "{err}");
        let unknown = "0190f1c2-7a3b-7c4d-8e5f-0123456789ab";
        let (code, _, err) = cli(url, &["jobs", "retry", unknown]).await;
        assert_eq!(code, 1);
        assert!(err.contains(&format!("no job with id {unknown}")), "{err}");
        let claimed = store
            .jobs()
            .claim("w", 1, Duration::from_secs(60))
            .await
            .unwrap();
        store.jobs().complete(&claimed[0].lease).await.unwrap();
        let done = claimed[0].lease.id.to_string();
        let (code, _, err) = cli(url, &["jobs", "retry", &done]).await;
        assert_eq!(code, 1);
        assert!(
            err.contains("is succeeded; only dead or queued jobs can be retried"),
            "{err}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn probe_command_reports_retries_dead_jobs_and_timeouts() {
    for db in databases().await {
        let store = db.store().await;
        let dir = tempfile::tempdir().unwrap();
        let url = db.url.as_str();
        // No worker yet: the wait times out, non-zero.
        let (code, out, err) = cli(url, &["jobs", "probe", "--count", "3", "--wait", "1"]).await;
        assert_eq!(code, 1, "[{db:?}] {out}{err}");
        assert!(out.contains("3 unfinished"), "{out}");
        assert!(
            err.contains("timed out after 1 s: 3 of 3 probe job(s) unfinished"),
            "{err}"
        );

        let worker = start_worker(&db, dir.path(), "w", &[]).await;
        let (code, out, err) = cli(
            url,
            &[
                "jobs",
                "probe",
                "--count",
                "20",
                "--fail-times",
                "1",
                "--wait",
                "60",
            ],
        )
        .await;
        assert_eq!(code, 0, "[{db:?}] {out}{err}\n{}", worker.log());
        // The 3 earlier probes ran too, but the report covers this batch only.
        assert!(
            out.contains("20 job(s): 20 succeeded, 0 dead, 0 unfinished; 40 run(s) by 1 worker(s), 0 duplicate run(s)"),
            "{out}"
        );
        let (code, out, err) = cli(
            url,
            &[
                "jobs",
                "probe",
                "--count",
                "2",
                "--fail-times",
                "5",
                "--max-attempts",
                "2",
                "--wait",
                "60",
            ],
        )
        .await;
        assert_eq!(code, 0, "[{db:?}] {out}{err}");
        assert!(
            out.contains("2 job(s): 0 succeeded, 2 dead, 0 unfinished; 4 run(s)"),
            "{out}"
        );
        let (_, out, _) = cli(url, &["jobs", "list", "--status", "dead"]).await;
        assert!(out.contains("gave up after 2 attempt(s)"), "{out}");

        let (code, _, err) = cli(url, &["jobs", "probe", "--count", "0"]).await;
        assert_eq!(code, 2);
        assert!(err.contains("--count"), "{err}");
        assert!(worker.terminate().await.success());
        store.close().await;
    }
}

/// Starts `inkingi worker --listen 127.0.0.1:0` and returns it with the address it printed.
async fn start_listening_worker(db: &TestDb, dir: &Path) -> (Worker, String) {
    let log = dir.join("worker.log");
    let mut child = inkingi(&db.url)
        .args(["worker", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let prefix = "inkingi worker listening on http://";
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    let addr = match first {
        Ok(Ok(Some(line))) if line.starts_with(prefix) => line[prefix.len()..].to_string(),
        other => panic!(
            "worker did not print its address: {other:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ),
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (Worker { child, log }, addr)
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn a_listening_worker_is_probed_and_scraped_then_stops_on_sigterm() {
    for db in databases().await {
        let store = db.store().await;
        let dir = tempfile::tempdir().unwrap();
        let (worker, addr) = start_listening_worker(&db, dir.path()).await;
        let http = reqwest::Client::new();
        let get = |path: &str| http.get(format!("http://{addr}{path}")).send();

        let health = get("/healthz").await.unwrap();
        assert_eq!(health.status(), 200, "[{db:?}]");
        let ready = get("/readyz").await.unwrap();
        assert_eq!(ready.status(), 200, "[{db:?}]");
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "ready", "{body}");
        assert_eq!(get("/api/v1/areas").await.unwrap().status(), 404, "no API");

        let probe = ProbeJob {
            sleep_ms: 0,
            fail_times: 0,
        };
        let id = store
            .jobs()
            .enqueue_now(NewJob::of(&probe).unwrap())
            .await
            .unwrap();
        eventually(
            "the probe job succeeded",
            Duration::from_secs(30),
            || async {
                let rec = store.jobs().get(id).await.unwrap()?;
                (rec.status == JobStatus::Succeeded).then_some(())
            },
        )
        .await;
        let text = get("/metrics").await.unwrap().text().await.unwrap();
        let runs = sample(
            &text,
            "jobs_run_total",
            &[r#"kind="system.probe""#, r#"outcome="succeeded""#],
        );
        assert_eq!(runs, Some(1.0), "[{db:?}] {text}");
        let timed = sample(
            &text,
            "job_duration_seconds_count",
            &[r#"kind="system.probe""#],
        );
        assert_eq!(timed, Some(1.0), "[{db:?}] {text}");
        assert!(text.contains("db_pool_max_connections"), "{text}");

        let log = worker.log();
        let status = worker.terminate().await;
        assert_eq!(status.code(), Some(0), "[{db:?}]\n{log}");
        assert!(get("/healthz").await.is_err(), "the listener is closed");
        store.close().await;
    }
}

#[tokio::test]
async fn worker_listen_address_is_checked() {
    let db = &databases().await[0];
    let mut cmd = inkingi(&db.url);
    cmd.env("INKINGI_WORKER_LISTEN", "port-eighty")
        .arg("worker");
    let out = cmd.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("port-eighty") && stderr.contains("--listen"),
        "{stderr}"
    );
}

#[tokio::test]
async fn prune_deletes_old_successes_and_refuses_vague_durations() {
    for db in databases().await {
        let store = db.store().await;
        for bad in ["7x", "0d", "7", "d7", "1.5h", "7 d", "-1h", "99999w"] {
            let arg = format!("--older-than={bad}");
            let (code, _, stderr) = cli(&db.url, &["jobs", "prune", &arg]).await;
            assert_eq!(code, 2, "[{db:?}] {bad}: {stderr}");
            assert!(
                stderr.contains("--older-than") && stderr.contains(bad),
                "{bad}: {stderr}"
            );
        }
        let (_, _, stderr) = cli(&db.url, &["jobs", "prune", "--older-than", "7x"]).await;
        assert!(stderr.contains("e.g. 7d or 12h"), "{stderr}");

        let mut done = Vec::new();
        for _ in 0..2 {
            let id = store
                .jobs()
                .enqueue_now(NewJob::new(JobName::parse("t.done").unwrap(), json!({})))
                .await
                .unwrap();
            let lease = store
                .jobs()
                .claim("w-test", 1, Duration::from_secs(60))
                .await
                .unwrap()
                .remove(0)
                .lease;
            store.jobs().complete(&lease).await.unwrap();
            done.push(id);
        }
        let dead = dead_job(&store, "t.dead", "default").await;
        let (code, stdout, stderr) = cli(&db.url, &["jobs", "prune", "--older-than", "7d"]).await;
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.starts_with("0 succeeded job(s)"),
            "[{db:?}] {stdout}"
        );

        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (code, stdout, stderr) = cli(&db.url, &["jobs", "prune", "--older-than", "1s"]).await;
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.starts_with("2 succeeded job(s)"),
            "[{db:?}] {stdout}"
        );
        for id in done {
            assert!(store.jobs().get(id).await.unwrap().is_none());
        }
        let dead = store.jobs().get(dead).await.unwrap().map(|r| r.status);
        assert_eq!(dead, Some(JobStatus::Dead), "[{db:?}] dead jobs are kept");
        store.close().await;
    }
}
