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
//! HTTP, to tell the engine's cost from TLS's — real iDRACs are HTTPS only),
//! `SIM` (`process` runs the simulator in a child process, this same binary
//! run again, so that the peak RSS and CPU printed for firmflow are its own
//! and the simulator's are printed apart; default: in this process).

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
use firmflow_redfish::Connector;
use firmflow_sim::{Package, PackageKind};
use firmflow_store_postgres::{PgConfig, PgStore};
use firmflow_tests::sim_process::{self, CHILD_ENV, FleetReport, SimProcess, cpu_secs, status_mb};
use firmflow_tests::sim_world::{
    AttachedWorld, SimHost, SimWorld, SimWorldBuilder, realtime_config, realtime_plan, sim_package,
};
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

/// The fleet the environment asks for (`HOSTS`, `SPEED`, `SEED`,
/// `TRANSPORT`), the same in the parent and in a simulator child.
fn world_builder() -> SimWorldBuilder {
    SimWorld::builder()
        .hosts(env_u64("HOSTS", 10_000) as usize)
        .virtual_hosts(true)
        .plain_http(std::env::var("TRANSPORT").is_ok_and(|t| t == "http"))
        .speed(env_f64("SPEED", firmflow_tests::sim_world::SIM_SPEED))
        .seed(env_u64("SEED", 13))
}

/// The two packages every host gets: BIOS (host reboot), then iDRAC (BMC
/// restart).
fn packages() -> Vec<Package> {
    vec![
        sim_package(BIOS, "BIOS", "3.0.0", PackageKind::Bios, &[]),
        sim_package(
            IDRAC,
            "Integrated Dell Remote Access Controller",
            "7.00.00.00",
            PackageKind::Idrac,
            &[],
        ),
    ]
}

/// Where the simulated fleet runs.
enum Sim {
    /// In this process (`SimWorld`).
    InProcess(SimWorld),
    /// In a child process; the firmflow side attached to it.
    Child(Box<SimProcess>, AttachedWorld),
}

impl Sim {
    fn parts(
        &self,
    ) -> (
        Arc<dyn Store>,
        Arc<Connector>,
        Arc<firmflow_catalog::ModeResolver>,
        &[SimHost],
    ) {
        match self {
            Sim::InProcess(w) => (
                w.store.clone(),
                w.connector.clone(),
                w.resolver.clone(),
                &w.hosts,
            ),
            Sim::Child(_, a) => (
                a.store.clone(),
                a.connector.clone(),
                a.resolver.clone(),
                &a.hosts,
            ),
        }
    }
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        sim_process::child_main(world_builder(), &packages(), &[BIOS.into(), IDRAC.into()]);
        return;
    }
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
    let sim_in_child = std::env::var("SIM").is_ok_and(|s| s == "process");
    println!(
        "fleet_10k: {hosts} hosts, maxConcurrent {max_concurrent}, sim speed {speed}x, seed {seed}, store {}, transport {}, simulator {}, allocator {}",
        if postgres { "postgres" } else { "memory" },
        if plain_http { "http" } else { "https" },
        if sim_in_child {
            "in a child process"
        } else {
            "in this process"
        },
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
    let builder = world_builder();
    let (mut sim, artifacts) = if sim_in_child {
        let exe = std::env::current_exe().expect("this bench's own path");
        let args: Vec<String> = std::env::args().skip(1).collect();
        let (child, ready) = SimProcess::spawn(&exe, &args)
            .await
            .expect("the simulator child");
        let infos = ready.infos().expect("the child's hosts");
        let attached = builder.attach(&infos, ready.ca_pem.as_deref()).await;
        (Sim::Child(Box::new(child), attached), ready.artifacts)
    } else {
        let w = builder.start().await;
        let artifacts = packages().iter().map(|p| w.artifact(p)).collect();
        (Sim::InProcess(w), artifacts)
    };
    let (world_store, connector, resolver, sim_hosts) = sim.parts();
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
        None => world_store,
    };
    let registered: Vec<Host> = match &pg {
        None => sim_hosts.iter().map(|h| h.host.clone()).collect(),
        Some(pg) => {
            let news = sim_hosts.iter().map(|h| {
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
            bmc: connector,
            cluster: None,
            resolver,
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

    let handle = exec.spawn();
    if let Sim::Child(child, _) = &mut sim {
        child
            .start()
            .await
            .expect("mark the simulator child's start");
    }
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
    let report = match &mut sim {
        Sim::InProcess(w) => FleetReport::of(&w.fleet, &[BIOS.into(), IDRAC.into()]),
        Sim::Child(child, _) => child.report().await.expect("the simulator child's report"),
    };
    let mut totals = Vec::with_capacity(report.hosts.len());
    let mut by_method: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_endpoint: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut logins_max = 0;
    let mut flashed_once = 0;
    let mut live_at_end = 0;
    let mut peak_sessions = Vec::with_capacity(report.hosts.len());
    for h in &report.hosts {
        totals.push(h.total);
        for (m, t, n) in &h.by_endpoint {
            if m == "POST" && t == "/redfish/v1/SessionService/Sessions" {
                logins_max = logins_max.max(*n);
            }
            *by_method.entry(m.clone()).or_default() += n;
            *by_endpoint.entry((m.clone(), t.clone())).or_default() += n;
        }
        flashed_once += usize::from(h.installs == [1, 1]);
        live_at_end += h.live_sessions;
        peak_sessions.push(h.peak_sessions);
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
        report.hosts.len()
    );
    let cores = |c: f64| c / wall.as_secs_f64().max(1e-9);
    match (report.peak_rss_mb, report.cpu_secs) {
        (Some(sim_rss), Some(sim_cpu)) => {
            println!(
                "peak RSS (VmHWM) of the firmflow process (executor + store + connector): {:.1} MB (target <= 300 MB); of the simulator process: {sim_rss:.1} MB",
                status_mb("VmHWM:")
            );
            println!(
                "CPU (user+sys) during the plan: firmflow {cpu:.1} s = {:.2} cores; simulator {sim_cpu:.1} s = {:.2} cores",
                cores(cpu),
                cores(sim_cpu)
            );
        }
        _ => {
            println!(
                "peak RSS (VmHWM, executor + store + simulator): {:.1} MB (target <= 300 MB)",
                status_mb("VmHWM:")
            );
            println!(
                "CPU (user+sys) during the plan: {cpu:.1} s = {:.2} cores",
                cores(cpu)
            );
        }
    }
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
        report.connections_accepted as f64 / n
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
    match sim {
        Sim::InProcess(w) => w.shutdown().await,
        Sim::Child(child, attached) => {
            (*child).shutdown().await;
            drop(attached);
        }
    }
}
