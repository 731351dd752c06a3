//! The whole flow over HTTPS at fleet scale (issue 13, benchmark 1): `HOSTS`
//! simulated iDRAC9s (default 10,000) on one virtual-host listener of
//! `firmflow-sim`, driven by the real executor on the memory store through
//! the real Redfish connector, no faults. Every host goes through login,
//! discovery, inventory, package resolution, two updates (BIOS, which needs
//! a host reboot, and iDRAC, which restarts the BMC), job polling, the
//! reboot, verification by inventory and logout.
//!
//! Prints the wall time from plan start to plan final, runs by final state,
//! peak RSS (VmHWM: the simulator runs in this process too, so it counts),
//! requests per host as the simulator counted them (mean and max, by
//! method, the busiest endpoints) and the most sessions alive at once on
//! one host (the simulator's own peak, counted at every login).
//!
//! `cargo bench -p firmflow-tests --features mimalloc --bench fleet_10k`
//! (the allocator firmflowd ships with; without the feature: glibc's);
//! `STORE=postgres` runs
//! it on PostgreSQL (a schema of its own at `FIRMFLOW_BENCH_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`, pool `POOL`
//! connections, 16), dropped at the end; `LEASES=engine` uses the engine's
//! default leases instead of the tests' 3 s ones. Environment: `HOSTS`
//! (10000), `MAX_CONCURRENT` (1000, also the executor's slots), `SPEED`
//! (simulator speed factor, 4000), `SEED` (13), `TIMEOUT_SECS` (900),
//! `TRANSPORT` (`https`; `http` runs simulator and connector over plain
//! HTTP, to tell the engine's cost from TLS's — real iDRACs are HTTPS only).

// The allocator firmflowd and firmflow ship with (`--features mimalloc`);
// without it the bench measures glibc's malloc.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use firmflow_core::SystemClock;
use firmflow_core::checks::CheckRegistry;
use firmflow_core::executor::{Executor, Services};
use firmflow_core::model::*;
use firmflow_core::store::{HostStore as _, Store};
use firmflow_sim::PackageKind;
use firmflow_store_postgres::{PgConfig, PgStore};
use firmflow_tests::sim_world::{SimWorld, realtime_config, realtime_plan, sim_package};
use futures::StreamExt as _;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIOS: &str = "159";
const IDRAC: &str = "25227";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/self/status` field in MB (`VmHWM`: peak RSS; `VmRSS`: now).
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// User + system CPU seconds of this process so far (`/proc/self/stat`).
fn cpu_secs() -> f64 {
    // Clock ticks are 100 a second on Linux (USER_HZ), whatever the kernel HZ.
    const TICKS: f64 = 100.0;
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime
            // are the 14th and 15th fields of the whole line.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let k: f64 = f.get(12)?.parse().ok()?;
            Some((u + k) / TICKS)
        })
        .unwrap_or(f64::NAN)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let hosts = env_u64("HOSTS", 10_000) as usize;
    let max_concurrent = env_u64("MAX_CONCURRENT", 1000) as u32;
    let speed = env_f64("SPEED", firmflow_tests::sim_world::SIM_SPEED);
    let seed = env_u64("SEED", 13);
    let timeout = Duration::from_secs(env_u64("TIMEOUT_SECS", 900));
    let postgres = std::env::var("STORE").is_ok_and(|s| s == "postgres");
    let plain_http = std::env::var("TRANSPORT").is_ok_and(|t| t == "http");
    println!(
        "fleet_10k: {hosts} hosts, maxConcurrent {max_concurrent}, sim speed {speed}x, seed {seed}, store {}, transport {}, allocator {}",
        if postgres { "postgres" } else { "memory" },
        if plain_http { "http" } else { "https" },
        if cfg!(feature = "mimalloc") {
            "mimalloc (as firmflowd)"
        } else {
            "glibc malloc"
        }
    );
    // Warnings by default would print thousands of expected lines (every
    // iDRAC restart after its own update drops its connections) and spend
    // the CPU being measured; `RUST_LOG` still chooses. Set before the
    // world's own subscriber, which then stays out of the way.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "error".to_string()))
        .try_init();
    let setup = Instant::now();
    let w = SimWorld::builder()
        .hosts(hosts)
        .virtual_hosts(true)
        .plain_http(plain_http)
        .speed(speed)
        .seed(seed)
        .start()
        .await;
    let artifacts = vec![
        w.artifact(&sim_package(BIOS, "BIOS", "3.0.0", PackageKind::Bios, &[])),
        w.artifact(&sim_package(
            IDRAC,
            "Integrated Dell Remote Access Controller",
            "7.00.00.00",
            PackageKind::Idrac,
            &[],
        )),
    ];
    // The store: the world's memory store, or a PostgreSQL schema of its own
    // with the same hosts registered in it.
    let pg = if postgres {
        let url = std::env::var("FIRMFLOW_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let schema = format!(
            "ffbench_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let pool = u32::try_from(env_u64("POOL", 16)).unwrap_or(16);
        let pg = PgStore::connect(
            PgConfig::new(url).schema(schema).max_connections(pool),
            Arc::new(SystemClock),
        )
        .await
        .expect("PostgreSQL store (FIRMFLOW_BENCH_DATABASE_URL)");
        Some(pg)
    } else {
        None
    };
    let store: Arc<dyn Store> = match &pg {
        Some(pg) => Arc::new(pg.clone()),
        None => w.store.clone(),
    };
    let registered: Vec<Host> = match &pg {
        None => w.hosts.iter().map(|h| h.host.clone()).collect(),
        Some(pg) => {
            let news = w.hosts.iter().map(|h| {
                let mut nh = NewHost::idrac(h.host.fqdn.clone(), h.host.mgmt_ip.clone());
                nh.mgmt_kind = h.host.mgmt_kind.clone();
                nh.model = h.host.model.clone();
                nh.service_tag = h.host.service_tag.clone();
                async move { pg.add_host(nh).await.expect("register host") }
            });
            futures::stream::iter(news).buffered(32).collect().await
        }
    };
    let targets: Vec<&Host> = registered.iter().collect();
    let mut np = realtime_plan(&targets, UpdateMode::SpecificPackage, artifacts);
    np.policy.max_concurrent = max_concurrent;
    let mut xc = realtime_config("fleet_10k");
    xc.slots = max_concurrent as usize;
    // `LEASES=engine`: the engine's default leases (60 s, renewed every
    // 10 s) instead of the tests' 3 s ones, which exist to make takeovers
    // quick in tests, not for a loaded database.
    let engine_leases = std::env::var("LEASES").is_ok_and(|v| v == "engine");
    if engine_leases {
        let d = firmflow_core::executor::ExecutorConfig::new("defaults");
        xc.lease_ttl = d.lease_ttl;
        xc.heartbeat_interval = d.heartbeat_interval;
        xc.safety_margin = d.safety_margin;
        xc.reclaim_delay = d.reclaim_delay;
    }
    println!(
        "leases: {} s, renewed every {} ms",
        xc.lease_ttl.as_secs_f64(),
        xc.heartbeat_interval.as_millis()
    );
    let exec = Executor::new(
        Services {
            store: store.clone(),
            bmc: w.connector.clone(),
            cluster: None,
            resolver: w.resolver.clone(),
            checks: CheckRegistry::builtin(),
            clock: Arc::new(SystemClock),
        },
        xc,
    );
    let pid = exec.create_plan(np).await.expect("create plan").plan.id;
    println!(
        "setup: {:.1} s, RSS {:.1} MB (fleet started, hosts registered, plan created)",
        setup.elapsed().as_secs_f64(),
        status_mb("VmRSS:")
    );

    let w = Arc::new(w);

    let handle = exec.spawn();
    let cpu0 = cpu_secs();
    let began = Instant::now();
    exec.start(pid, None).await.expect("start plan");
    let status = handle.wait_plan(pid, timeout).await;
    let wall = began.elapsed();
    let cpu = cpu_secs() - cpu0;

    let mut states: BTreeMap<&'static str, usize> = BTreeMap::new();
    // A clean fleet should need neither: retries and takeovers here are the
    // cost of load (a lease not renewed in time, a request timing out).
    let (mut resumes, mut retried, mut errors) = (0u32, 0u32, 0usize);
    let mut samples: Vec<String> = Vec::new();
    for r in store.list_runs(pid).await.expect("runs") {
        *states.entry(r.state.as_str()).or_default() += 1;
        resumes += r.resumes;
        retried += r.attempts;
        errors += r.ctx.results.errors.len();
        for e in r
            .ctx
            .results
            .errors
            .iter()
            .take(5usize.saturating_sub(samples.len()))
        {
            samples.push(format!("{:?} {}: {}", e.phase, e.class, e.message));
        }
    }
    let completed = states.get("completed").copied().unwrap_or(0);
    let failed = states.get("failed").copied().unwrap_or(0);

    // Requests as the simulator saw them.
    let mut totals = Vec::with_capacity(w.hosts.len());
    let mut by_method: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_endpoint: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut logins_max = 0;
    let mut flashed_once = 0;
    let mut live_at_end = 0;
    let mut peak_sessions = Vec::with_capacity(w.hosts.len());
    for h in &w.hosts {
        let name = &h.sim.name;
        let st = w.fleet.requests(name);
        totals.push(st.total);
        logins_max = logins_max.max(st.count("POST", "/redfish/v1/SessionService/Sessions"));
        for ((m, t), n) in st.by_endpoint {
            *by_method.entry(m.clone()).or_default() += n;
            *by_endpoint.entry((m, t)).or_default() += n;
        }
        let once =
            w.fleet.install_count(name, BIOS) == 1 && w.fleet.install_count(name, IDRAC) == 1;
        flashed_once += usize::from(once);
        live_at_end += w.fleet.live_sessions(name);
        peak_sessions.push(w.fleet.peak_sessions(name));
    }
    let n = totals.len().max(1) as f64;
    let all: u64 = totals.iter().sum();
    let max = totals.iter().copied().max().unwrap_or(0);
    let peak_max = peak_sessions.iter().copied().max().unwrap_or(0);
    let peak_mean = peak_sessions.iter().sum::<usize>() as f64 / n;

    println!("--- fleet_10k results ---");
    println!(
        "plan status: {status:?} | wall time, plan start to final: {:.2} s (target <= 15 s)",
        wall.as_secs_f64()
    );
    println!("runs: completed {completed}, failed {failed}, by state {states:?}");
    println!(
        "resumes after a lost lease: {resumes}; failed attempts: {retried}; errors recorded: {errors}"
    );
    for e in &samples {
        println!("  error: {e}");
    }
    println!(
        "hosts with BIOS and iDRAC each flashed exactly once: {flashed_once} of {}",
        w.hosts.len()
    );
    println!(
        "peak RSS (VmHWM, executor + store + simulator): {:.1} MB (target <= 300 MB)",
        status_mb("VmHWM:")
    );
    println!(
        "CPU (user+sys) during the plan: {cpu:.1} s = {:.2} cores",
        cpu / wall.as_secs_f64().max(1e-9)
    );
    println!(
        "requests: {all} in all, {:.0}/s; per host mean {:.1}, max {max}",
        all as f64 / wall.as_secs_f64().max(1e-9),
        all as f64 / n
    );
    for (m, c) in &by_method {
        println!("  {m:<6} per host mean {:.2}", *c as f64 / n);
    }
    let mut busiest: Vec<_> = by_endpoint.into_iter().collect();
    busiest.sort_by_key(|b| std::cmp::Reverse(b.1));
    println!("  endpoints, per host mean:");
    for ((m, t), c) in busiest.iter().take(16) {
        println!("    {:>6.2}  {m} {t}", *c as f64 / n);
    }
    println!("logins (POST Sessions) per host: max {logins_max}");
    println!(
        "connections accepted (TLS handshakes on HTTPS) per host, mean: {:.2}",
        w.fleet.connections_accepted() as f64 / n
    );
    println!(
        "sessions alive at once per host (the simulator's peak): max {peak_max} (target 1), \
         mean {peak_mean:.2}; alive at the end (all hosts): {live_at_end}"
    );
    handle.shutdown().await;
    if let Some(pg) = pg {
        let m = pg.metrics();
        println!(
            "postgres: run writes in {} statements, largest group {}",
            m.write_batches, m.largest_batch
        );
        drop(store);
        drop(exec);
        if let Err(e) = pg.drop_schema().await {
            println!("postgres: the bench schema was not dropped: {e}");
        }
    }
    if let Ok(w) = Arc::try_unwrap(w) {
        w.shutdown().await;
    }
}
