//! Job queue gauges sampled at scrape time: `job_queue_depth{queue,status}` (jobs per queue and
//! state) and `job_oldest_due_age_seconds{queue}` (how long the oldest due job has waited: the
//! number to alert on when workers fall behind or stop).

use std::collections::BTreeSet;
use std::sync::Mutex;

use inkingi_store::jobs::JobStats;

use crate::AppState;

/// Label sets reported before. A gauge keeps its last value, so a queue that drained must be
/// set back to 0 explicitly rather than left showing its old depth.
static SEEN: Mutex<Seen> = Mutex::new(Seen {
    depth: BTreeSet::new(),
    age: BTreeSet::new(),
});

struct Seen {
    depth: BTreeSet<(String, &'static str)>,
    age: BTreeSet<String>,
}

pub async fn sample(state: &AppState) {
    match state.store.jobs().stats().await {
        Ok(stats) => publish(&stats),
        // The scrape still succeeds with the other metrics; the failure is visible in the log
        // and in `/readyz`.
        Err(e) => tracing::warn!(error = %e, "cannot sample job queue metrics"),
    }
}

fn publish(stats: &JobStats) {
    let Ok(mut seen) = SEEN.lock() else {
        return;
    };
    let mut depth_now = BTreeSet::new();
    for c in &stats.counts {
        metrics::gauge!("job_queue_depth", "queue" => c.queue.clone(), "status" => c.status.as_str())
            .set(c.count as f64);
        depth_now.insert((c.queue.clone(), c.status.as_str()));
    }
    for (queue, status) in seen.depth.difference(&depth_now) {
        metrics::gauge!("job_queue_depth", "queue" => queue.clone(), "status" => *status).set(0.0);
    }
    // Every state of every queue ever seen stays a series, at 0 when empty.
    seen.depth.extend(depth_now);

    let mut age_now = BTreeSet::new();
    for (queue, age) in &stats.oldest_due {
        metrics::gauge!("job_oldest_due_age_seconds", "queue" => queue.clone())
            .set(age.as_secs_f64());
        age_now.insert(queue.clone());
    }
    for queue in seen.age.difference(&age_now) {
        metrics::gauge!("job_oldest_due_age_seconds", "queue" => queue.clone()).set(0.0);
    }
    seen.age.extend(age_now);
}
