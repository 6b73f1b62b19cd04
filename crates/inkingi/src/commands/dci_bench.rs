//! `inkingi dci-bench` (hidden): the load generator of the DCI benchmarks (docs/BENCHMARKS.md,
//! bench/dci.sh). `search` runs concurrent clients against `/dci/registry/sync/search` with
//! national IDs or predicates drawn from generated registry files and reports latency
//! percentiles; `subscribe` subscribes simulator subscribers to every registry event;
//! `wait` polls simulator subscribers until they have taken a number of events.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cli::{DciBenchCommand, DciSearchArgs};

pub async fn run(cmd: DciBenchCommand) -> anyhow::Result<()> {
    match cmd {
        DciBenchCommand::Search(args) => search(&args).await,
        DciBenchCommand::Subscribe {
            url,
            token,
            sender_uri,
        } => subscribe(&url, &token, &sender_uri).await,
        DciBenchCommand::Wait {
            subscribers,
            expect,
            timeout_secs,
        } => wait(&subscribers, expect, Duration::from_secs(timeout_secs)).await,
    }
}

fn header(action: &str, count: usize, sender_uri: &str) -> Value {
    json!({
        "version": "1.0.0",
        "message_id": Uuid::now_v7().to_string(),
        "message_ts": Utc::now().to_rfc3339(),
        "action": action,
        "sender_id": "dci-bench",
        "sender_uri": sender_uri,
        "receiver_id": "inkingi",
        "total_count": count,
        "is_msg_encrypted": false,
    })
}

/// What the searches ask for: national IDs, and sector codes for the predicate searches.
struct Pool {
    ids: Vec<String>,
    sectors: Vec<String>,
}

fn column(path: &Path, name: &str) -> anyhow::Result<Vec<String>> {
    let mut r =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let at = r
        .headers()?
        .iter()
        .position(|h| h == name)
        .with_context(|| format!("{}: no column {name}", path.display()))?;
    let mut out = Vec::new();
    for row in r.records() {
        let row = row?;
        if let Some(v) = row.get(at).filter(|v| !v.is_empty()) {
            out.push(v.to_string());
        }
    }
    Ok(out)
}

fn pool(dir: &Path) -> anyhow::Result<Pool> {
    let ids = column(&dir.join("members.csv"), "national_id")?;
    let mut sectors: Vec<String> = column(&dir.join("households.csv"), "village_code")?
        .into_iter()
        .map(|v| v.chars().take(4).collect())
        .collect();
    sectors.sort();
    sectors.dedup();
    if ids.is_empty() || sectors.is_empty() {
        bail!("{}: no national IDs or villages to ask for", dir.display());
    }
    Ok(Pool { ids, sectors })
}

fn criteria(predicate: bool, pool: &Pool, rng: &mut StdRng) -> Value {
    if !predicate {
        let id = &pool.ids[rng.random_range(0..pool.ids.len())];
        return json!({"query_type": "idtype-value", "query": {"type": "UIN", "value": id}});
    }
    let sector = &pool.sectors[rng.random_range(0..pool.sectors.len())];
    let year = rng.random_range(1950..2015);
    json!({"query_type": "predicate", "query": [
        {"seq_num": 1, "expression1": {"attribute_name": "location", "operator": "eq", "attribute_value": sector}},
        {"seq_num": 2, "expression1": {"attribute_name": "YOB", "operator": "ge", "attribute_value": year},
         "condition": "and", "expression2": {"attribute_name": "sex", "operator": "eq", "attribute_value": "female"}}
    ], "pagination": {"page_size": 20, "page_number": 1}})
}

/// One client: searches until `until`; returns each request's latency (µs) and its errors.
async fn client(
    http: reqwest::Client,
    args: DciSearchArgs,
    pool: std::sync::Arc<Pool>,
    seed: u64,
    until: Instant,
) -> (Vec<u64>, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let url = format!(
        "{}/dci/registry/sync/search",
        args.url.trim_end_matches('/')
    );
    let mut times = Vec::new();
    let mut errors = 0;
    // With a fixed rate each client sends every `interval`, from a start offset of its own so
    // that the clients do not send in lockstep.
    let interval = args
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(f64::from(args.clients) / r));
    let mut next = Instant::now() + interval.map_or(Duration::ZERO, |i| i.mul_f64(rng.random()));
    while Instant::now() < until {
        if interval.is_some() {
            tokio::time::sleep_until(next.into()).await;
        }
        let body = json!({"signature": "", "header": header("search", 1, ""),
            "message": {"transaction_id": Uuid::now_v7().to_string(), "search_request": [{
                "reference_id": "1", "timestamp": Utc::now().to_rfc3339(),
                "search_criteria": criteria(args.predicate, &pool, &mut rng)}]}});
        // Paced: from when the request was due, however late it went out.
        let started = if interval.is_some() {
            next
        } else {
            Instant::now()
        };
        if let Some(every) = interval {
            next += every;
        }
        let res = http
            .post(&url)
            .bearer_auth(&args.token)
            .header("x-purpose-of-use", &args.purpose)
            .json(&body)
            .send()
            .await;
        let ok = match res {
            Ok(r) if r.status().is_success() => r
                .json::<Value>()
                .await
                .is_ok_and(|b| b["message"]["search_response"][0]["status"] == "succ"),
            _ => false,
        };
        times.push(started.elapsed().as_micros() as u64);
        if !ok {
            errors += 1;
        }
    }
    (times, errors)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

async fn search(args: &DciSearchArgs) -> anyhow::Result<()> {
    let pool = std::sync::Arc::new(pool(&args.dir)?);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients as usize)
        .build()?;
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration_secs);
    let tasks: Vec<_> = (0..args.clients)
        .map(|i| {
            tokio::spawn(client(
                http.clone(),
                args.clone(),
                pool.clone(),
                args.seed + u64::from(i),
                until,
            ))
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (times, e) = t.await?;
        all.extend(times);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let report = json!({
        "query": if args.predicate { "predicate" } else { "idtype-value" },
        "clients": args.clients,
        "rate": args.rate,
        "requests": all.len(),
        "errors": errors,
        "seconds": (elapsed * 10.0).round() / 10.0,
        "requests_per_second": (all.len() as f64 / elapsed).round(),
        "p50_ms": percentile(&all, 0.50),
        "p95_ms": percentile(&all, 0.95),
        "p99_ms": percentile(&all, 0.99),
        "max_ms": percentile(&all, 1.0),
    });
    println!("{report}");
    Ok(())
}

/// Subscribes `sender_uri` to every registry event of the token's area.
async fn subscribe(url: &str, token: &str, sender_uri: &str) -> anyhow::Result<()> {
    let body = json!({"signature": "", "header": header("subscribe", 1, sender_uri),
        "message": {"transaction_id": Uuid::now_v7().to_string(), "subscribe_request": [{
            "reference_id": "all", "timestamp": Utc::now().to_rfc3339(),
            "subscribe_criteria": {"version": "1.0.0",
                "reg_event_type": ["household_registered", "household_updated", "member_added",
                    "member_removed", "live_birth", "death"],
                "notify_record_type": "Group"}}]}});
    let res = reqwest::Client::new()
        .post(format!(
            "{}/dci/registry/subscribe",
            url.trim_end_matches('/')
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = res.status();
    let text = res.text().await?;
    if status != reqwest::StatusCode::ACCEPTED {
        bail!("subscribe {sender_uri}: HTTP {status}: {text}");
    }
    println!("subscribed {sender_uri}");
    Ok(())
}

/// Polls every subscriber's `/stats` until each has taken `expect` events.
async fn wait(subscribers: &[String], expect: u64, timeout: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let mut stats = Vec::new();
        for s in subscribers {
            let v: Value = http
                .get(format!("{}/stats", s.trim_end_matches('/')))
                .send()
                .await?
                .json()
                .await?;
            stats.push(v);
        }
        let taken: u64 = stats
            .iter()
            .map(|s| s["effects"].as_u64().unwrap_or(0))
            .sum();
        let done = stats
            .iter()
            .all(|s| s["effects"].as_u64().unwrap_or(0) >= expect);
        if done || started.elapsed() > timeout {
            let sum = |k: &str| -> u64 { stats.iter().map(|s| s[k].as_u64().unwrap_or(0)).sum() };
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}",
                json!({"done": done, "seconds": (secs * 10.0).round() / 10.0, "taken": taken,
                    "per_second": (taken as f64 / secs).round(),
                    "duplicates": sum("duplicates"), "out_of_order": sum("out_of_order"),
                    "requests": sum("requests")})
            );
            if !done {
                bail!("subscribers have {taken} events after {secs:.0} s, expected {expect} each");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
