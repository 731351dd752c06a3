//! API under load: 1,000 simulated iDRACs in a running campaign driven by
//! a `firmflowd` child process (memory store), 50 clients polling
//! `GET /api/v1/plans/{id}` (each once a second, as a dashboard does;
//! `POLL_EVERY_MS=0` polls in a closed loop) and 10 SSE subscribers
//! following the plan.
//! Prints the GET latency percentiles and, per subscriber, the events it
//! missed or received twice against the audit trail read afterwards.
//!
//! `cargo bench -p firmflowd --bench api_load` (figures in BENCHMARKS.md).
#![allow(missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::*;

const HOSTS: usize = 1000;
const POLLERS: usize = 50;
const SUBSCRIBERS: usize = 10;
const WINDOW: Duration = Duration::from_secs(20);

/// Each poller's period (`POLL_EVERY_MS`, default 1000; 0: back to back).
fn poll_every() -> Duration {
    let ms = std::env::var("POLL_EVERY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000u64);
    Duration::from_millis(ms)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let w = world(HOSTS).await;
    let cfg = w.config("kind = \"memory\"");
    // More slots than the plan admits: the plan's maxConcurrent is the bound.
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text = text.replace("[executor]\n", "[executor]\nslots = 128\n");
    std::fs::write(&cfg, text).expect("config");
    let d = start(&cfg);
    let admin = d.client(Some("admin-token"));
    let op = d.client(Some("operator-token"));
    let csv = std::fs::read_to_string(&w.lab.hosts_csv).expect("hosts");
    let (code, body) = admin
        .post_raw("/api/v1/hosts/import", "text/csv", csv)
        .await;
    assert_eq!(code, 200, "{body}");
    let mut plan_body = w.plan_body("load");
    plan_body["policy"]["maxConcurrent"] = json!(100);
    let (code, created) = op.post("/api/v1/plans", &plan_body).await;
    assert_eq!(code, 201, "{created}");
    let plan = created["plan"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        op.post(&format!("/api/v1/plans/{plan}/approve"), &json!({}))
            .await
            .0,
        200
    );
    let mut subs = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut s = op.stream(&format!("?plan={plan}"), None).await;
        subs.push(tokio::spawn(async move {
            let evs = s.until_plan_final(Duration::from_secs(900)).await;
            evs.into_iter().map(|e| e.id).collect::<Vec<i64>>()
        }));
    }
    let started = Instant::now();
    assert_eq!(
        op.post(&format!("/api/v1/plans/{plan}/start"), &json!({}))
            .await
            .0,
        200
    );
    let mut pollers = Vec::new();
    let every = poll_every();
    for i in 0..POLLERS {
        let api = op.clone();
        let path = format!("/api/v1/plans/{plan}");
        pollers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut running_seen = 0usize;
            // Spread the pollers over the period, as independent clients are.
            tokio::time::sleep(every * i as u32 / POLLERS as u32).await;
            let mut tick = tokio::time::interval(every.max(Duration::from_micros(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let end = Instant::now() + WINDOW;
            while Instant::now() < end {
                if !every.is_zero() {
                    tick.tick().await;
                }
                let t = Instant::now();
                let (code, body) = api.get(&path).await;
                lat.push(t.elapsed());
                assert_eq!(code, 200);
                if body["counts"]["running"].as_u64().unwrap_or(0) > 0 {
                    running_seen += 1;
                }
            }
            (lat, running_seen)
        }));
    }
    let mut lat = Vec::new();
    let mut running_seen = 0;
    for p in pollers {
        let (l, r) = p.await.expect("poller");
        lat.extend(l);
        running_seen += r;
    }
    lat.sort_unstable();
    let mut received = Vec::new();
    for s in subs {
        received.push(s.await.expect("subscriber"));
    }
    let campaign = started.elapsed();
    // The truth: the plan's audit trail, paged.
    let mut truth = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/events?plan={plan}&limit=1000&cursor={c}"),
            None => format!("/api/v1/events?plan={plan}&limit=1000"),
        };
        let (_, page) = op.get(&q).await;
        for e in page["items"].as_array().expect("items") {
            truth.push(e["seq"].as_i64().expect("seq"));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let (_, p) = op.get(&format!("/api/v1/plans/{plan}")).await;
    let truth_set: BTreeSet<i64> = truth.iter().copied().collect();
    println!(
        "firmflowd api_load: {HOSTS} hosts, {POLLERS} pollers of GET plan (every {every:?}) for {WINDOW:?}, {SUBSCRIBERS} SSE subscribers"
    );
    println!(
        "campaign: status {} in {:.1?}, counts {}",
        p["plan"]["status"], campaign, p["counts"]
    );
    println!(
        "GET plan: {} requests ({} saw runs in flight), p50 {:.1?}, p90 {:.1?}, p99 {:.1?}, max {:.1?}",
        lat.len(),
        running_seen,
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or_default()
    );
    // Why runs failed, most frequent first (the first 100 characters).
    let mut why: std::collections::BTreeMap<String, usize> = Default::default();
    for h in p["hosts"].as_array().into_iter().flatten() {
        if h["state"] == "failed" {
            let e = h["last_error"].as_str().unwrap_or("?");
            *why.entry(e.chars().take(100).collect()).or_default() += 1;
        }
    }
    let mut why: Vec<_> = why.into_iter().collect();
    why.sort_by_key(|w| std::cmp::Reverse(w.1));
    for (e, n) in why.iter().take(5) {
        println!("failed runs: {n} × {e}");
    }
    println!("audit trail of the plan: {} events", truth.len());
    for (i, r) in received.iter().enumerate() {
        let got: BTreeSet<i64> = r.iter().copied().collect();
        let lost = truth_set.difference(&got).count();
        let dup = r.len() - got.len();
        let extra = got.difference(&truth_set).count();
        println!(
            "subscriber {i}: received {}, lost {lost}, repeated {dup}, not in trail {extra}",
            r.len()
        );
    }
    let code = tokio::task::spawn_blocking(move || d.terminate())
        .await
        .expect("join");
    println!("daemon exit after SIGTERM: {code}");
}
