//! Schedule efficiency (issue 13, benchmark 3): how close the executor's
//! rollout comes to the shortest schedule its limits allow.
//!
//! The engine runs a plan over fake iDRACs (core's testkit `FakeFleet`) and
//! a fake vCenter on paused tokio time, with realistic durations drawn per
//! host from a seed: update jobs 10–15 min, reboots 3–8 min, entering
//! maintenance mode 2 min; limits `maxConcurrent`, `minHostsOnline` per
//! cluster, priorities and a maintenance window that opens an hour after
//! the plan starts. The executor's own settings are its defaults (job polls
//! adaptive 5–30 s, readiness polls 15 s, admission every 5 s).
//!
//! The ideal is computed here, independently of the engine, by a simple
//! event-driven model of the same limits: a host's run takes
//! `enter + install + max(install, reboot)` (maintenance mode; the iDRAC
//! job; the BIOS job staged for the reboot, which it runs during — the
//! fake's physics, one job at a time per BMC), and at each instant hosts
//! are admitted greedily in claim order (priority descending, then target
//! order) while fewer than `maxConcurrent` run and the host's cluster keeps
//! `minHostsOnline` online; a host blocked by its cluster does not block
//! the others. Makespan is measured from the window's opening to the last
//! run's completion, for the engine and for the model. Also printed: a
//! lower bound no schedule can beat (total work ÷ capacity, per cluster and
//! overall, and the longest host).
//!
//! `cargo bench -p firmflow-tests --bench schedule`. Environment: `HOSTS`
//! (48), `CLUSTERS` (3), `MAX_CONCURRENT` (8), `MIN_ONLINE` (13), `SEED` (1).

use firmflow_core::TokioClock;
use firmflow_core::checks::CheckRegistry;
use firmflow_core::executor::{Executor, ExecutorConfig, Services};
use firmflow_core::model::*;
use firmflow_core::store::{HostStore as _, RunStore as _};
use firmflow_core::testkit::fakes::{ArtifactListResolver, FakeCluster, FakeFleet, HostScript};
use firmflow_store_memory::MemoryStore;
use firmflow_tests::{VC, bios, cluster_key, idrac, plan, t0};
use std::sync::Arc;
use std::time::Duration;

const ENTER_MAINTENANCE: Duration = Duration::from_secs(120);
const WINDOW_OPENS_AFTER: Duration = Duration::from_secs(3600);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: reproducible durations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi` seconds.
    fn secs(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// One host as the model sees it.
#[derive(Clone, Debug)]
struct Job {
    cluster: usize,
    priority: i32,
    /// Whole run, seconds.
    secs: u64,
}

/// The model: greedy admission in claim order under the plan's limits.
/// Returns the makespan in seconds from the window's opening.
fn model_makespan(
    jobs: &[Job],
    clusters: &[usize],
    max_concurrent: usize,
    min_online: usize,
) -> u64 {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(jobs[i].priority), i));
    let mut pending = order;
    // (finish time, job)
    let mut running: Vec<(u64, usize)> = Vec::new();
    let mut now = 0u64;
    let mut makespan = 0u64;
    loop {
        running.retain(|&(end, _)| end > now);
        let mut down = vec![0usize; clusters.len()];
        for &(_, j) in &running {
            down[jobs[j].cluster] += 1;
        }
        let mut rest = Vec::new();
        for j in pending {
            let c = jobs[j].cluster;
            if running.len() < max_concurrent && clusters[c] - down[c] > min_online {
                down[c] += 1;
                running.push((now + jobs[j].secs, j));
                makespan = makespan.max(now + jobs[j].secs);
            } else {
                rest.push(j);
            }
        }
        pending = rest;
        if pending.is_empty() {
            return makespan;
        }
        now = running
            .iter()
            .map(|&(end, _)| end)
            .min()
            .expect("a pending host waits for a running one");
    }
}

/// No schedule under these limits is shorter than this.
fn lower_bound(jobs: &[Job], clusters: &[usize], max_concurrent: usize, min_online: usize) -> u64 {
    let total: u64 = jobs.iter().map(|j| j.secs).sum();
    let mut lb = total.div_ceil(max_concurrent as u64);
    for (c, &size) in clusters.iter().enumerate() {
        let work: u64 = jobs.iter().filter(|j| j.cluster == c).map(|j| j.secs).sum();
        lb = lb.max(work.div_ceil((size - min_online) as u64));
    }
    lb.max(jobs.iter().map(|j| j.secs).max().unwrap_or(0))
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let hosts = env_usize("HOSTS", 48);
    let n_clusters = env_usize("CLUSTERS", 3).max(1);
    let max_concurrent = env_usize("MAX_CONCURRENT", 8);
    let min_online = env_usize("MIN_ONLINE", 13);
    let seed = env_usize("SEED", 1) as u64;
    let mut rng = Rng(seed);

    let clock = Arc::new(TokioClock::starting_at(t0()));
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let fleet = FakeFleet::new();
    let cluster = FakeCluster::new(ENTER_MAINTENANCE);
    let mut clusters = vec![0usize; n_clusters];
    let mut jobs = Vec::new();
    let mut added = Vec::new();
    for i in 0..hosts {
        let c = i % n_clusters;
        clusters[c] += 1;
        let install = rng.secs(600, 900);
        let reboot = rng.secs(180, 480);
        let priority = (rng.next() % 3) as i32;
        let fqdn = format!("esx{i:03}.bench");
        let moid = format!("host-{i}");
        let script = HostScript {
            install_time: Duration::from_secs(install),
            reboot_time: Duration::from_secs(reboot),
            ..HostScript::default()
        };
        fleet.add_host(&fqdn, script);
        let cl = format!("domain-c{c}");
        cluster.add_host(&cluster_key(&cl), &moid);
        let h = store
            .add_host(NewHost::idrac(&fqdn, format!("192.0.2.{}", i + 1)).in_cluster(VC, &cl, moid))
            .await
            .expect("host");
        jobs.push(Job {
            cluster: c,
            priority,
            secs: ENTER_MAINTENANCE.as_secs() + install + install.max(reboot),
        });
        added.push((h, priority));
    }
    assert!(
        clusters.iter().all(|&s| s > min_online),
        "every cluster needs more than MIN_ONLINE={min_online} hosts: {clusters:?}"
    );

    let targets: Vec<(&Host, i32)> = added.iter().map(|(h, p)| (h, *p)).collect();
    let mut np = plan(&targets, vec![idrac("7.10.50.00"), bios("2.19.1")]);
    np.policy.max_concurrent = max_concurrent as u32;
    np.policy.min_hosts_online = min_online as u32;
    np.policy.expected_host_duration_secs = Some(45 * 60);
    let opens = t0() + chrono::Duration::from_std(WINDOW_OPENS_AFTER).expect("window");
    np.maintenance_window = Some(MaintenanceWindow {
        start: opens,
        end: opens + chrono::Duration::hours(48),
    });

    let mut cfg = ExecutorConfig::new("bench");
    cfg.slots = max_concurrent;
    let exec = Executor::new(
        Services {
            store: store.clone(),
            bmc: Arc::new(fleet.clone()),
            cluster: Some(Arc::new(cluster.clone())),
            resolver: Arc::new(ArtifactListResolver),
            checks: CheckRegistry::builtin(),
            clock: clock.clone(),
        },
        cfg,
    );
    let handle = exec.spawn();
    let plan_id = exec.create_plan(np).await.expect("create plan").plan.id;
    exec.start(plan_id, None).await.expect("start plan");
    let status = handle
        .wait_plan(plan_id, Duration::from_secs(7 * 24 * 3600))
        .await
        .expect("the plan ends within a simulated week");
    let runs = store.list_runs(plan_id).await.expect("runs");
    handle.shutdown().await;
    assert_eq!(status, PlanStatus::Completed, "every host updated");
    for (h, _) in &added {
        assert_eq!(
            fleet.installs(&h.fqdn).len(),
            2,
            "{}: each component installed exactly once",
            h.fqdn
        );
    }
    for c in 0..n_clusters {
        let seen = cluster
            .min_online_seen(&cluster_key(&format!("domain-c{c}")))
            .expect("entered");
        assert!(seen >= min_online, "cluster {c} fell to {seen} online");
    }

    let first_start = runs
        .iter()
        .filter_map(|r| r.started_at)
        .min()
        .expect("started");
    assert!(first_start >= opens, "a run started before the window");
    let last_end = runs
        .iter()
        .filter_map(|r| r.completed_at)
        .max()
        .expect("completed");
    let engine = (last_end - opens).num_milliseconds() as f64 / 1000.0;
    let ideal = model_makespan(&jobs, &clusters, max_concurrent, min_online) as f64;
    let bound = lower_bound(&jobs, &clusters, max_concurrent, min_online) as f64;
    let mean_run: f64 = runs
        .iter()
        .filter_map(|r| Some((r.completed_at? - r.started_at?).num_milliseconds() as f64 / 1000.0))
        .sum::<f64>()
        / runs.len() as f64;
    let mean_model = jobs.iter().map(|j| j.secs as f64).sum::<f64>() / jobs.len() as f64;
    println!(
        "schedule: hosts={hosts} clusters={clusters:?} maxConcurrent={max_concurrent} minHostsOnline={min_online} priorities=0..2 seed={seed}"
    );
    println!(
        "schedule: durations      update 10-15 min, reboot 3-8 min, enter maintenance 2 min; window opens +1 h"
    );
    println!(
        "schedule: engine makespan {:.0} s ({:.1} min) from the window's opening",
        engine,
        engine / 60.0
    );
    println!(
        "schedule: model makespan  {:.0} s ({:.1} min)",
        ideal,
        ideal / 60.0
    );
    println!(
        "schedule: lower bound     {:.0} s ({:.1} min)",
        bound,
        bound / 60.0
    );
    println!(
        "schedule: mean host run   engine {mean_run:.0} s, model {mean_model:.0} s (+{:.1} %)",
        (mean_run / mean_model - 1.0) * 100.0
    );
    println!(
        "schedule: makespan / ideal {:.4} (target <= 1.01)",
        engine / ideal
    );
    println!("schedule: makespan / lower bound {:.4}", engine / bound);

    // BMC load (issue 13 benchmark 4): polls of each running update job per
    // minute after its first two minutes, and how late its end was seen.
    let mut per_minute = Vec::new();
    let mut late = Vec::new();
    for (h, _) in &added {
        for t in fleet.job_traces(&h.fqdn) {
            let (Some(start), Some(end)) = (t.started, t.ended) else {
                continue;
            };
            let steady_from = start + Duration::from_secs(120);
            if end > steady_from {
                let polls = t
                    .polls
                    .iter()
                    .filter(|p| **p >= steady_from && **p < end)
                    .count();
                per_minute.push(polls as f64 / ((end - steady_from).as_secs_f64() / 60.0));
            }
            if let Some(n) = t.noticed {
                late.push(n.saturating_duration_since(end).as_secs_f64());
            }
        }
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        (mean, v.last().copied().unwrap_or(0.0), v.len())
    };
    let (pm_mean, pm_max, pm_n) = stats(&mut per_minute);
    let (late_mean, late_max, late_n) = stats(&mut late);
    println!(
        "schedule: job polls       {pm_mean:.2}/min mean, {pm_max:.2}/min max over {pm_n} running jobs after their first 2 min (target <= 2)"
    );
    println!(
        "schedule: job end seen    {late_mean:.1} s late mean, {late_max:.1} s max over {late_n} jobs (target <= 15 s)"
    );
}
