//! The worker against a real database, on every configured backend.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use inkingi_domain::jobs::{JobName, JobStatus, RetryPolicy};
use inkingi_interop::probe::ProbeJob;
use inkingi_interop::worker::{
    run_with, JobContext, JobError, JobHandler, Registry, WorkerSettings,
};
use inkingi_store::jobs::{JobId, JobRecord, NewJob};
use inkingi_store::Store;
use inkingi_testkit::databases;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn fast() -> WorkerSettings {
    WorkerSettings {
        concurrency: 3,
        poll_interval: Duration::from_millis(20),
        lease: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
        },
        retain_succeeded: None,
    }
}

struct Running {
    shutdown: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
}

fn start(store: &Store, settings: WorkerSettings, registry: Registry) -> Running {
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(run_with(
        store.clone(),
        settings,
        registry,
        shutdown.clone(),
    ));
    Running { shutdown, handle }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("worker stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

async fn probe(store: &Store, p: ProbeJob, max_attempts: u32) -> JobId {
    store
        .jobs()
        .enqueue_now(NewJob::of(&p).unwrap().max_attempts(max_attempts))
        .await
        .unwrap()
}

/// Polls `check` every 20 ms until it returns `Some`, for at most 20 seconds.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after 20 s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn finished(store: &Store, id: JobId) -> JobRecord {
    eventually("the job to finish", || async {
        let job = store.jobs().get(id).await.unwrap().unwrap();
        job.status.is_final().then_some(job)
    })
    .await
}

#[tokio::test]
async fn probe_retries_with_backoff_then_succeeds() {
    for db in databases().await {
        let store = db.store().await;
        let worker = start(&store, fast(), Registry::with_builtins());
        let id = probe(
            &store,
            ProbeJob {
                sleep_ms: 0,
                fail_times: 2,
            },
            5,
        )
        .await;
        let job = finished(&store, id).await;
        assert_eq!(job.status, JobStatus::Succeeded, "[{db:?}] {job:?}");
        assert_eq!(job.attempts, 3);
        assert_eq!(
            job.last_error.as_deref(),
            Some("planned probe failure 2 of 2")
        );
        let runs = store.jobs().probe_runs(id).await.unwrap();
        let attempts: Vec<u32> = runs.iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, [1, 2, 3], "[{db:?}]");
        // Backoff: each retry waited at least the policy's floor (a tenth of the base).
        for pair in runs.windows(2) {
            let gap = (pair[1].ran_at - pair[0].ran_at).num_milliseconds();
            assert!(gap >= 2, "{gap} ms between attempts");
        }
        worker.stop().await;
        store.close().await;
    }
}

#[tokio::test]
async fn out_of_attempts_unknown_kinds_and_bad_payloads_are_dead() {
    for db in databases().await {
        let store = db.store().await;
        let worker = start(&store, fast(), Registry::with_builtins());
        let exhausted = probe(
            &store,
            ProbeJob {
                sleep_ms: 0,
                fail_times: 9,
            },
            2,
        )
        .await;
        let unknown = store
            .jobs()
            .enqueue_now(NewJob::new(
                JobName::parse("no.such.kind").unwrap(),
                json!({}),
            ))
            .await
            .unwrap();
        let bad = store
            .jobs()
            .enqueue_now(NewJob::new(
                JobName::parse(ProbeJob::KIND).unwrap(),
                json!({"sleep_ms": "long"}),
            ))
            .await
            .unwrap();

        let job = finished(&store, exhausted).await;
        assert_eq!((job.status, job.attempts), (JobStatus::Dead, 2), "[{db:?}]");
        let error = job.last_error.unwrap();
        assert!(
            error.contains("gave up after 2 attempt(s)")
                && error.contains("planned probe failure 2"),
            "{error}"
        );

        let job = finished(&store, unknown).await;
        assert_eq!((job.status, job.attempts), (JobStatus::Dead, 1), "[{db:?}]");
        let error = job.last_error.unwrap();
        assert!(
            error.contains("no handler for job kind 'no.such.kind'")
                && error.contains("system.probe"),
            "{error}"
        );

        let job = finished(&store, bad).await;
        assert_eq!((job.status, job.attempts), (JobStatus::Dead, 1), "[{db:?}]");
        let error = job.last_error.unwrap();
        assert!(error.contains("bad system.probe payload"), "{error}");
        assert!(
            store.jobs().probe_runs(bad).await.unwrap().is_empty(),
            "a payload that does not parse never runs"
        );
        worker.stop().await;
        store.close().await;
    }
}

/// Counts how many of its jobs run at once.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl JobHandler for Gauge {
    fn kind(&self) -> &'static str {
        "test.gauge"
    }

    async fn run(&self, _ctx: &JobContext, payload: serde_json::Value) -> Result<(), JobError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        let ms = payload["ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
        match payload["fail"].as_str() {
            Some("permanent") => Err(JobError::permanent("rejected by the far end")),
            Some("panic") => panic!("handler bug"),
            _ => Ok(()),
        }
    }
}

fn gauge_job(payload: serde_json::Value) -> NewJob {
    NewJob::new(JobName::parse("test.gauge").unwrap(), payload).max_attempts(2)
}

#[tokio::test]
async fn concurrency_is_bounded_and_failures_are_classified() {
    for db in databases().await {
        let store = db.store().await;
        let gauge = Gauge::default();
        let mut uow = store.begin().await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..9 {
            ids.push(
                store
                    .jobs()
                    .enqueue(&mut uow, gauge_job(json!({"ms": 150})))
                    .await
                    .unwrap(),
            );
        }
        uow.commit().await.unwrap();
        let worker = start(
            &store,
            fast(),
            Registry::with_builtins().register(gauge.clone()),
        );
        for id in &ids {
            assert_eq!(finished(&store, *id).await.status, JobStatus::Succeeded);
        }
        assert_eq!(
            gauge.max.load(Ordering::SeqCst),
            3,
            "[{db:?}] runs exactly `concurrency` jobs at once"
        );

        let permanent = store
            .jobs()
            .enqueue_now(gauge_job(json!({"fail": "permanent"})))
            .await
            .unwrap();
        let panics = store
            .jobs()
            .enqueue_now(gauge_job(json!({"fail": "panic"})))
            .await
            .unwrap();
        let job = finished(&store, permanent).await;
        assert_eq!((job.status, job.attempts), (JobStatus::Dead, 1), "[{db:?}]");
        assert_eq!(job.last_error.as_deref(), Some("rejected by the far end"));
        // A panicking handler fails its attempt (retryable), not the worker.
        let job = finished(&store, panics).await;
        assert_eq!((job.status, job.attempts), (JobStatus::Dead, 2), "[{db:?}]");
        assert!(job.last_error.unwrap().contains("panicked"));
        let after = store
            .jobs()
            .enqueue_now(gauge_job(json!({})))
            .await
            .unwrap();
        assert_eq!(finished(&store, after).await.status, JobStatus::Succeeded);
        worker.stop().await;
        store.close().await;
    }
}

#[tokio::test]
async fn shutdown_finishes_the_jobs_in_hand_and_claims_no_more() {
    for db in databases().await {
        let store = db.store().await;
        let worker = start(
            &store,
            WorkerSettings {
                concurrency: 1,
                ..fast()
            },
            Registry::with_builtins(),
        );
        let slow = ProbeJob {
            sleep_ms: 700,
            fail_times: 0,
        };
        let first = probe(&store, slow, 3).await;
        let second = probe(&store, slow, 3).await;
        eventually("the first probe to start", || async {
            let runs = store.jobs().probe_runs(first).await.unwrap();
            (!runs.is_empty()).then_some(())
        })
        .await;
        worker.stop().await;
        let job = store.jobs().get(first).await.unwrap().unwrap();
        assert_eq!(
            job.status,
            JobStatus::Succeeded,
            "[{db:?}] finished in hand"
        );
        let job = store.jobs().get(second).await.unwrap().unwrap();
        assert_eq!(
            (job.status, job.attempts),
            (JobStatus::Queued, 0),
            "[{db:?}] not claimed after shutdown"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn a_running_job_keeps_its_lease_past_the_lease_length() {
    for db in databases().await {
        let store = db.store().await;
        // Two workers with a short lease; the job runs for several lease lengths. Renewals keep
        // the other worker (and this one) from claiming it again.
        let settings = WorkerSettings {
            lease: Duration::from_millis(400),
            ..fast()
        };
        let a = start(&store, settings.clone(), Registry::with_builtins());
        let b = start(&store, settings, Registry::with_builtins());
        let id = probe(
            &store,
            ProbeJob {
                sleep_ms: 1500,
                fail_times: 0,
            },
            3,
        )
        .await;
        let job = finished(&store, id).await;
        assert_eq!(
            (job.status, job.attempts),
            (JobStatus::Succeeded, 1),
            "[{db:?}]"
        );
        assert_eq!(store.jobs().probe_runs(id).await.unwrap().len(), 1);
        a.stop().await;
        b.stop().await;
        store.close().await;
    }
}

#[tokio::test]
async fn the_worker_prunes_old_succeeded_jobs_but_never_dead_ones() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let old = jobs.enqueue_now(job_of("t.old")).await.unwrap();
        let lease = jobs.claim("w", 1, Duration::from_secs(60)).await.unwrap();
        jobs.complete(&lease[0].lease).await.unwrap();
        let dead = jobs.enqueue_now(job_of("t.dead")).await.unwrap();
        let lease = jobs.claim("w", 1, Duration::from_secs(60)).await.unwrap();
        jobs.fail(&lease[0].lease, "boom", inkingi_store::jobs::Failure::Dead)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;

        // A retention of 10 ms: the first prune, at start, finds the old job past it.
        let worker = start(
            &store,
            WorkerSettings {
                retain_succeeded: Some(Duration::from_millis(10)),
                ..fast()
            },
            Registry::with_builtins(),
        );
        eventually("the old succeeded job pruned", || async {
            jobs.get(old).await.unwrap().is_none().then_some(())
        })
        .await;
        // Later successes wait for the next hourly prune.
        let fresh = probe(
            &store,
            ProbeJob {
                sleep_ms: 0,
                fail_times: 0,
            },
            1,
        )
        .await;
        eventually("the probe succeeded", || async {
            let rec = jobs.get(fresh).await.unwrap()?;
            (rec.status == JobStatus::Succeeded).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        worker.stop().await;
        assert!(jobs.get(fresh).await.unwrap().is_some(), "[{db:?}]");
        let dead = jobs.get(dead).await.unwrap().map(|r| r.status);
        assert_eq!(dead, Some(JobStatus::Dead), "[{db:?}] dead jobs are kept");
        store.close().await;
    }
}

fn job_of(kind: &str) -> NewJob {
    NewJob::new(JobName::parse(kind).unwrap(), json!({}))
}
