//! `/metrics` reports the job queue's depth and lag, on every configured backend.

#![allow(clippy::unwrap_used)]

use inkingi_domain::jobs::JobName;
use inkingi_store::jobs::NewJob;
use inkingi_testkit::{databases, TestApp};
use serde_json::json;
use std::time::Duration;

/// The value of the one sample of `metric` whose labels include every `labels` pair.
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn metrics_report_queue_depth_and_oldest_due_age() {
    for db in databases().await {
        let app = TestApp::start(&db).await;
        // Gauges are process-wide: a queue per backend keeps the runs apart.
        let queue = format!("metrics-{}", db.kind.as_str());
        let job = NewJob::new(JobName::parse("t.metrics").unwrap(), json!({}))
            .queue(JobName::parse(&queue).unwrap());
        for _ in 0..3 {
            app.store.jobs().enqueue_now(job.clone()).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let text = app.get("/metrics").await.text().await.unwrap();
        let depth = |text: &str, status| {
            sample(
                text,
                "job_queue_depth",
                &[("queue", &queue), ("status", status)],
            )
        };
        assert_eq!(depth(&text, "queued"), Some(3.0), "[{db:?}] {text}");
        let age = sample(&text, "job_oldest_due_age_seconds", &[("queue", &queue)]).unwrap();
        assert!((0.3..120.0).contains(&age), "[{db:?}] age {age}");

        let claimed = app
            .store
            .jobs()
            .claim("w", 10, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        app.store.jobs().complete(&claimed[0].lease).await.unwrap();
        let text = app.get("/metrics").await.text().await.unwrap();
        // A drained state reads 0, not its last value.
        assert_eq!(depth(&text, "queued"), Some(0.0), "[{db:?}] {text}");
        assert_eq!(depth(&text, "running"), Some(2.0));
        // Succeeded jobs are history, not backlog: not counted at scrape time.
        assert_eq!(depth(&text, "succeeded"), None);
        assert_eq!(
            sample(&text, "job_oldest_due_age_seconds", &[("queue", &queue)]),
            Some(0.0)
        );
        app.stop().await;
    }
}
