//! The job queue port, on every configured backend.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use inkingi_domain::jobs::{IdempotencyKey, JobName, JobStatus};
use inkingi_store::jobs::{Failure, JobFilter, JobLease, LeaseCheck, NewJob};
use inkingi_store::{Store, StoreError};
use inkingi_testkit::databases;
use serde_json::json;

const LEASE: Duration = Duration::from_secs(60);

fn name(s: &str) -> JobName {
    JobName::parse(s).unwrap()
}

fn job(kind: &str) -> NewJob {
    NewJob::new(name(kind), json!({"n": 1}))
}

async fn claim_one(store: &Store, worker: &str) -> Option<JobLease> {
    let mut got = store.jobs().claim(worker, 1, LEASE).await.unwrap();
    assert!(got.len() <= 1);
    got.pop().map(|c| c.lease)
}

#[tokio::test]
async fn claims_by_priority_then_completes() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let low = jobs.enqueue_now(job("t.low").priority(-1)).await.unwrap();
        let high = jobs.enqueue_now(job("t.high").priority(5)).await.unwrap();
        let mid = jobs.enqueue_now(job("t.mid")).await.unwrap();

        let claimed = jobs.claim("w1", 2, LEASE).await.unwrap();
        let ids: Vec<_> = claimed.iter().map(|c| c.lease.id).collect();
        assert_eq!(ids, [high, mid], "[{db:?}] highest priority first");
        assert_eq!(claimed[0].kind, "t.high");
        assert_eq!(claimed[0].queue, "default");
        assert_eq!(claimed[0].payload, json!({"n": 1}));
        assert_eq!(claimed[0].lease.attempt, 1);

        let rec = jobs.get(high).await.unwrap().unwrap();
        assert_eq!(rec.status, JobStatus::Running);
        assert_eq!(rec.locked_by.as_deref(), Some("w1"));
        assert!(rec.lease_until.unwrap() > rec.run_at);

        assert_eq!(
            jobs.complete(&claimed[0].lease).await.unwrap(),
            LeaseCheck::Held
        );
        let rec = jobs.get(high).await.unwrap().unwrap();
        assert_eq!(rec.status, JobStatus::Succeeded);
        assert!(rec.finished_at.is_some() && rec.lease_until.is_none());
        // Completing twice is refused: the job is no longer running.
        assert_eq!(
            jobs.complete(&claimed[0].lease).await.unwrap(),
            LeaseCheck::Lost
        );

        let next = claim_one(&store, "w2").await.unwrap();
        assert_eq!(next.id, low);
        assert!(
            claim_one(&store, "w2").await.is_none(),
            "[{db:?}] queue empty"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn failures_back_off_then_die() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let id = jobs
            .enqueue_now(job("t.flaky").max_attempts(3))
            .await
            .unwrap();

        let l1 = claim_one(&store, "w").await.unwrap();
        let check = jobs
            .fail(
                &l1,
                "timeout",
                Failure::RetryAfter(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
        assert_eq!(check, LeaseCheck::Held);
        let rec = jobs.get(id).await.unwrap().unwrap();
        assert_eq!(
            (rec.status, rec.attempts, rec.last_error.as_deref()),
            (JobStatus::Queued, 1, Some("timeout"))
        );
        assert!(rec.run_at > rec.updated_at + chrono::Duration::minutes(59));
        assert!(rec.locked_by.is_none() && rec.lease_until.is_none());
        assert!(
            claim_one(&store, "w").await.is_none(),
            "[{db:?}] backing off"
        );

        // An operator's retry makes a queued job due now, keeping its attempts.
        let rec = jobs.retry(id).await.unwrap();
        assert_eq!((rec.status, rec.attempts), (JobStatus::Queued, 1));
        let l2 = claim_one(&store, "w").await.unwrap();
        assert_eq!(l2.attempt, 2);
        jobs.fail(&l2, "timeout again", Failure::RetryAfter(Duration::ZERO))
            .await
            .unwrap();
        let l3 = claim_one(&store, "w").await.unwrap();
        assert_eq!(l3.attempt, 3);
        // Out of attempts: a retry request parks it as dead.
        jobs.fail(&l3, "still down", Failure::RetryAfter(Duration::ZERO))
            .await
            .unwrap();
        let rec = jobs.get(id).await.unwrap().unwrap();
        assert_eq!(rec.status, JobStatus::Dead, "[{db:?}]");
        assert_eq!(rec.attempts, 3);
        assert_eq!(rec.last_error.as_deref(), Some("still down"));
        assert_eq!(rec.locked_by.as_deref(), Some("w"));
        assert!(rec.finished_at.is_some());
        assert!(claim_one(&store, "w").await.is_none());
        store.close().await;
    }
}

#[tokio::test]
async fn permanent_failure_is_dead_at_once_and_can_be_replayed() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let a = jobs.enqueue_now(job("t.bad")).await.unwrap();
        let b = jobs
            .enqueue_now(job("t.bad").queue(name("other")))
            .await
            .unwrap();
        let ok = jobs.enqueue_now(job("t.good")).await.unwrap();
        for _ in 0..3 {
            let lease = claim_one(&store, "w").await.unwrap();
            if lease.id == ok {
                jobs.complete(&lease).await.unwrap();
            } else {
                jobs.fail(&lease, "payload rejected", Failure::Dead)
                    .await
                    .unwrap();
            }
        }
        for id in [a, b] {
            let rec = jobs.get(id).await.unwrap().unwrap();
            assert_eq!((rec.status, rec.attempts), (JobStatus::Dead, 1), "[{db:?}]");
        }
        let dead = jobs
            .list(&JobFilter {
                status: Some(JobStatus::Dead),
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), [b, a]);

        // Replay one by id: back to queued, attempts reset, the error kept for the record.
        let rec = jobs.retry(a).await.unwrap();
        assert_eq!((rec.status, rec.attempts), (JobStatus::Queued, 0));
        assert_eq!(rec.last_error.as_deref(), Some("payload rejected"));
        assert!(rec.finished_at.is_none());
        // Only dead or queued jobs can be retried.
        match jobs.retry(ok).await {
            Err(StoreError::Conflict(m)) => assert!(m.contains("succeeded"), "{m}"),
            other => panic!("[{db:?}] expected a conflict, got {other:?}"),
        }
        let unknown = "0190f1c2-7a3b-7c4d-8e5f-0123456789ab".parse().unwrap();
        assert!(matches!(
            jobs.retry(unknown).await,
            Err(StoreError::NotFound(_))
        ));

        // Replay every dead job of one queue, then of all.
        jobs.fail(
            &claim_one(&store, "w").await.unwrap(),
            "again",
            Failure::Dead,
        )
        .await
        .unwrap();
        assert_eq!(jobs.retry_dead(Some("other")).await.unwrap(), 1);
        assert_eq!(jobs.retry_dead(None).await.unwrap(), 1);
        assert_eq!(jobs.retry_dead(None).await.unwrap(), 0);
        let queued = jobs
            .list(&JobFilter {
                status: Some(JobStatus::Queued),
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(queued.len(), 2);
        assert!(queued.iter().all(|j| j.attempts == 0));
        store.close().await;
    }
}

#[tokio::test]
async fn idempotency_key_makes_one_job_per_queue() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let key = IdempotencyKey::parse("msg-42").unwrap();
        let first = jobs
            .enqueue_now(job("t.sms").idempotency_key(key.clone()))
            .await
            .unwrap();
        let again = NewJob::new(name("t.sms"), json!({"n": 2}))
            .priority(9)
            .idempotency_key(key.clone());
        assert_eq!(jobs.enqueue_now(again.clone()).await.unwrap(), first);
        // The same key inside a unit of work also finds the existing job.
        let mut uow = store.begin().await.unwrap();
        assert_eq!(jobs.enqueue(&mut uow, again).await.unwrap(), first);
        uow.commit().await.unwrap();
        let rec = jobs.get(first).await.unwrap().unwrap();
        assert_eq!(
            (rec.payload, rec.priority),
            (json!({"n": 1}), 0),
            "[{db:?}] unchanged"
        );
        // Another queue, or no key, is another job.
        let other = jobs
            .enqueue_now(job("t.sms").queue(name("q2")).idempotency_key(key))
            .await
            .unwrap();
        assert_ne!(other, first);
        let plain = jobs.enqueue_now(job("t.sms")).await.unwrap();
        let plain2 = jobs.enqueue_now(job("t.sms")).await.unwrap();
        assert_ne!(plain, plain2);
        let all = jobs.list(&JobFilter::default()).await.unwrap();
        assert_eq!(all.len(), 4, "[{db:?}]");
        store.close().await;
    }
}

#[tokio::test]
async fn enqueue_joins_the_callers_transaction() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let mut uow = store.begin().await.unwrap();
        let gone = jobs.enqueue(&mut uow, job("t.cause")).await.unwrap();
        uow.rollback().await.unwrap();
        assert!(jobs.get(gone).await.unwrap().is_none(), "[{db:?}]");

        // Dropping an uncommitted unit of work rolls back too.
        {
            let mut uow = store.begin().await.unwrap();
            jobs.enqueue(&mut uow, job("t.cause")).await.unwrap();
        }
        assert!(jobs.list(&JobFilter::default()).await.unwrap().is_empty());
        assert!(claim_one(&store, "w").await.is_none());

        let mut uow = store.begin().await.unwrap();
        let kept = jobs.enqueue(&mut uow, job("t.cause")).await.unwrap();
        uow.commit().await.unwrap();
        assert_eq!(claim_one(&store, "w").await.unwrap().id, kept);
        store.close().await;
    }
}

#[tokio::test]
async fn a_lapsed_lease_is_claimed_again_and_fences_the_old_worker() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let id = jobs.enqueue_now(job("t.slow")).await.unwrap();
        let short = Duration::from_millis(300);
        let old = jobs.claim("w-old", 1, short).await.unwrap().remove(0).lease;
        assert!(
            jobs.claim("w-new", 1, LEASE).await.unwrap().is_empty(),
            "[{db:?}] a live lease is respected"
        );
        wait_until_claimed(&store, "w-new").await;
        let rec = jobs.get(id).await.unwrap().unwrap();
        assert_eq!(rec.attempts, 2);
        assert_eq!(rec.locked_by.as_deref(), Some("w-new"));
        let why = rec.last_error.unwrap();
        assert!(
            why.contains("attempt 1") && why.contains("w-old"),
            "[{db:?}] {why}"
        );

        // The old worker wakes up: whatever it reports is refused.
        assert_eq!(jobs.complete(&old).await.unwrap(), LeaseCheck::Lost);
        assert_eq!(
            jobs.fail(&old, "late", Failure::Dead).await.unwrap(),
            LeaseCheck::Lost
        );
        assert_eq!(
            jobs.extend_lease(&old, LEASE).await.unwrap(),
            LeaseCheck::Lost
        );
        // Even with the same worker id, the attempt number fences an older run off.
        let stale_same_worker = JobLease {
            worker_id: "w-new".into(),
            ..old.clone()
        };
        assert_eq!(
            jobs.complete(&stale_same_worker).await.unwrap(),
            LeaseCheck::Lost
        );
        let new = JobLease {
            id,
            worker_id: "w-new".into(),
            attempt: 2,
        };
        assert_eq!(jobs.complete(&new).await.unwrap(), LeaseCheck::Held);
        let rec = jobs.get(id).await.unwrap().unwrap();
        assert_eq!(rec.status, JobStatus::Succeeded, "[{db:?}]");
        store.close().await;
    }
}

/// Claims for `worker` until a job comes back, for at most 10 seconds.
async fn wait_until_claimed(store: &Store, worker: &str) -> JobLease {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(lease) = claim_one(store, worker).await {
            return lease;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no job claimable in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_lapsed_last_attempt_is_dead_and_a_renewed_lease_holds() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let short = Duration::from_millis(300);
        let once = jobs
            .enqueue_now(job("t.once").max_attempts(1))
            .await
            .unwrap();
        let lease = jobs.claim("w", 1, short).await.unwrap().remove(0).lease;
        assert_eq!(lease.id, once);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(jobs.claim("w2", 1, LEASE).await.unwrap().is_empty());
        let rec = jobs.get(once).await.unwrap().unwrap();
        assert_eq!(rec.status, JobStatus::Dead, "[{db:?}]");
        assert!(rec.last_error.unwrap().contains("lapsed"));

        // A worker that renews its lease keeps the job past the original lease.
        let kept = jobs.enqueue_now(job("t.long")).await.unwrap();
        let lease = jobs.claim("w", 1, short).await.unwrap().remove(0).lease;
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            assert_eq!(
                jobs.extend_lease(&lease, short).await.unwrap(),
                LeaseCheck::Held
            );
            assert!(jobs.claim("w2", 1, LEASE).await.unwrap().is_empty());
        }
        assert_eq!(jobs.complete(&lease).await.unwrap(), LeaseCheck::Held);
        assert_eq!(
            jobs.get(kept).await.unwrap().unwrap().status,
            JobStatus::Succeeded
        );
        store.close().await;
    }
}

#[tokio::test]
async fn delayed_jobs_wait_and_stats_count() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        jobs.enqueue_now(job("t.later").run_after(Duration::from_secs(3600)))
            .await
            .unwrap();
        assert!(claim_one(&store, "w").await.is_none(), "[{db:?}] not due");
        for _ in 0..3 {
            jobs.enqueue_now(job("t.sms").queue(name("sms")))
                .await
                .unwrap();
        }
        let lease = claim_one(&store, "w").await.unwrap();
        jobs.fail(&lease, "x", Failure::Dead).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;

        let stats = jobs.stats().await.unwrap();
        let count = |queue: &str, status: JobStatus| {
            stats
                .counts
                .iter()
                .find(|c| c.queue == queue && c.status == status)
                .map(|c| c.count)
        };
        assert_eq!(count("default", JobStatus::Queued), Some(1), "[{db:?}]");
        assert_eq!(count("sms", JobStatus::Queued), Some(2));
        assert_eq!(count("sms", JobStatus::Dead), Some(1));
        assert_eq!(count("sms", JobStatus::Running), None);
        // Only the sms queue has due jobs; they have waited at least the second slept.
        assert_eq!(stats.oldest_due.len(), 1, "{stats:?}");
        let (queue, age) = &stats.oldest_due[0];
        assert_eq!(queue, "sms");
        assert!(
            *age >= Duration::from_secs(1) && *age < Duration::from_secs(120),
            "{age:?}"
        );

        let sms = jobs
            .list(&JobFilter {
                queue: Some("sms".into()),
                limit: 2,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(sms.len(), 2);
        assert!(sms[0].id > sms[1].id, "newest first");
        store.close().await;
    }
}

#[tokio::test]
async fn concurrent_claims_never_share_a_job() {
    for db in databases().await {
        let store = db.store().await;
        let mut uow = store.begin().await.unwrap();
        let mut all = HashSet::new();
        for _ in 0..200 {
            all.insert(store.jobs().enqueue(&mut uow, job("t.many")).await.unwrap());
        }
        uow.commit().await.unwrap();

        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..6 {
            let store = store.clone();
            tasks.spawn(async move {
                let worker = format!("w{w}");
                let mut mine = Vec::new();
                loop {
                    let got = store.jobs().claim(&worker, 7, LEASE).await.unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    for c in got {
                        store.jobs().complete(&c.lease).await.unwrap();
                        mine.push(c.lease.id);
                    }
                }
            });
        }
        let mut seen = Vec::new();
        let joined = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(r) = tasks.join_next().await {
                seen.extend(r.unwrap());
            }
        })
        .await;
        assert!(joined.is_ok(), "[{db:?}] claims did not finish in 60 s");
        let distinct: HashSet<_> = seen.iter().copied().collect();
        assert_eq!(seen.len(), 200, "[{db:?}] each job claimed exactly once");
        assert_eq!(distinct, all);
        store.close().await;
    }
}

#[tokio::test]
async fn probe_runs_are_recorded_and_reported() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let a = jobs.enqueue_now(job("system.probe")).await.unwrap();
        let b = jobs.enqueue_now(job("system.probe")).await.unwrap();
        let la = claim_one(&store, "w1").await.unwrap();
        let lb = claim_one(&store, "w2").await.unwrap();
        jobs.record_probe_run(a, "w1", 1).await.unwrap();
        jobs.record_probe_run(b, "w2", 1).await.unwrap();
        jobs.complete(&la).await.unwrap();
        let report = jobs.probe_report(&[a, b], 1).await.unwrap();
        assert_eq!(
            (
                report.jobs,
                report.succeeded,
                report.unfinished,
                report.runs,
                report.duplicate_runs,
                report.workers
            ),
            (2, 1, 1, 2, 0, 2),
            "[{db:?}]"
        );
        // Runs beyond the expected number per job are duplicates.
        jobs.record_probe_run(b, "w3", 1).await.unwrap();
        jobs.record_probe_run(b, "w3", 2).await.unwrap();
        jobs.fail(&lb, "x", Failure::Dead).await.unwrap();
        let report = jobs.probe_report(&[a, b], 1).await.unwrap();
        assert_eq!(
            (
                report.dead,
                report.runs,
                report.duplicate_runs,
                report.workers
            ),
            (1, 4, 2, 3)
        );
        let report = jobs.probe_report(&[a, b], 2).await.unwrap();
        assert_eq!(
            report.duplicate_runs, 1,
            "[{db:?}] b ran 3 times, 2 expected"
        );
        let runs = jobs.probe_runs(b).await.unwrap();
        let got: Vec<_> = runs
            .iter()
            .map(|r| (r.worker_id.as_str(), r.attempt))
            .collect();
        assert_eq!(got, [("w2", 1), ("w3", 1), ("w3", 2)]);
        assert!(runs.windows(2).all(|w| w[0].ran_at <= w[1].ran_at));
        assert_eq!(jobs.probe_report(&[], 1).await.unwrap(), Default::default());
        store.close().await;
    }
}

#[tokio::test]
async fn pruning_deletes_only_old_succeeded_jobs_in_batches() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        let mut done = Vec::new();
        for _ in 0..5 {
            jobs.enqueue_now(job("t.done")).await.unwrap();
            let lease = claim_one(&store, "w").await.unwrap();
            jobs.record_probe_run(lease.id, "w", lease.attempt)
                .await
                .unwrap();
            jobs.complete(&lease).await.unwrap();
            done.push(lease.id);
        }
        let dead = jobs.enqueue_now(job("t.dead")).await.unwrap();
        let lease = claim_one(&store, "w").await.unwrap();
        jobs.fail(&lease, "boom", Failure::Dead).await.unwrap();
        let running = jobs.enqueue_now(job("t.running")).await.unwrap();
        let _held = claim_one(&store, "w").await.unwrap();
        let queued = jobs.enqueue_now(job("t.queued")).await.unwrap();

        // None finished an hour ago: nothing to prune.
        let hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
        assert_eq!(jobs.prune_succeeded_batch(hour_ago, 100).await.unwrap(), 0);

        let cutoff = chrono::Utc::now() + chrono::Duration::seconds(1);
        assert_eq!(
            jobs.prune_succeeded_batch(cutoff, 2).await.unwrap(),
            2,
            "[{db:?}] one batch"
        );
        let rest = inkingi_store::jobs::prune_succeeded(jobs, cutoff, || false)
            .await
            .unwrap();
        assert_eq!(rest, 3, "[{db:?}] the remaining batches");
        for id in &done {
            assert!(jobs.get(*id).await.unwrap().is_none(), "[{db:?}] {id}");
            assert!(jobs.probe_runs(*id).await.unwrap().is_empty());
        }
        for (id, status) in [
            (dead, JobStatus::Dead),
            (running, JobStatus::Running),
            (queued, JobStatus::Queued),
        ] {
            let rec = jobs.get(id).await.unwrap();
            assert_eq!(rec.map(|r| r.status), Some(status), "[{db:?}] kept");
        }
        // A stop request ends the loop before any batch.
        jobs.enqueue_now(job("t.late")).await.unwrap();
        let late = claim_one(&store, "w").await.unwrap();
        jobs.complete(&late).await.unwrap();
        let later = chrono::Utc::now() + chrono::Duration::seconds(1);
        let stopped = inkingi_store::jobs::prune_succeeded(jobs, later, || true)
            .await
            .unwrap();
        assert_eq!(stopped, 0);
        assert!(jobs.get(late.id).await.unwrap().is_some());
        store.close().await;
    }
}

#[tokio::test]
async fn stats_leave_succeeded_history_out() {
    for db in databases().await {
        let store = db.store().await;
        let jobs = store.jobs();
        jobs.enqueue_now(job("t.a")).await.unwrap();
        let lease = claim_one(&store, "w").await.unwrap();
        jobs.complete(&lease).await.unwrap();
        jobs.enqueue_now(job("t.b")).await.unwrap();
        let stats = jobs.stats().await.unwrap();
        let statuses: Vec<_> = stats.counts.iter().map(|c| c.status).collect();
        assert_eq!(statuses, [JobStatus::Queued], "[{db:?}] {stats:?}");
        store.close().await;
    }
}
