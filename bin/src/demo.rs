//! `firmflow demo`: the whole main job on the embedded default, with no
//! setup. An in-process simulated fleet (HTTPS iDRACs on 127.0.0.1, the
//! fleet's certificate as the only trust anchor), the memory store, two
//! fake vSphere clusters, the real Redfish connector and the real catalog
//! resolver: register hosts, read their inventory, assess compliance
//! against a generated Dell-format catalog, run an approved rolling plan
//! with live progress bars from the executor's progress stream, and print
//! what changed on every host.

use crate::setup;
use crate::table::Table;
use anyhow::{Context, bail};
use firmflow_catalog::{CatalogIndex, CatalogSource, HostCompliance, assess_host};
use firmflow_core::SystemClock;
use firmflow_core::bmc::{BmcConnector as _, Inventory, SystemInfo};
use firmflow_core::checks::CheckRegistry;
use firmflow_core::credentials::Credential;
use firmflow_core::executor::{Executor, ExecutorConfig, ProgressEvent, Services};
use firmflow_core::model::*;
use firmflow_core::store::{HostStore as _, RunStore as _};
use firmflow_core::testkit::fakes::FakeCluster;
use firmflow_redfish::{Connector, TlsMode};
use firmflow_sim::catalog::{CatalogEntry, CatalogOptions};
use firmflow_sim::{FaultSpec, Flavor, Fleet, PackageKind};
use firmflow_store_memory::MemoryStore;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// The fake vCenter of the demo.
const VCENTER: &str = "https://vcenter.demo.invalid";
/// Its two clusters.
const CLUSTERS: [&str; 2] = ["domain-c7", "domain-c8"];
/// BIOS the demo catalog offers, per Dell SystemID (the simulator's models).
const BIOS_TARGETS: [(u32, &str); 4] = [
    (1814, "2.19.1"),
    (2300, "2.16.0"),
    (2973, "1.9.2"),
    (3290, "1.4.0"),
];
/// iDRAC firmware the demo catalog offers: iDRAC9 systems, then iDRAC10.
const IDRAC9_TARGET: &str = "7.10.50.00";
const IDRAC10_TARGET: &str = "1.30.10.05";

/// What the demo runs.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Simulated hosts (1 to 64). From 4 on they sit in two vSphere clusters.
    pub hosts: usize,
    /// Simulator speed factor (2000: a 10-minute Dell update takes 0.3 s).
    pub speed: f64,
    /// Simulator seed (service tags, job ids, install durations).
    pub seed: u64,
    /// Draw live progress bars on stderr.
    pub progress: bool,
    /// Simulator faults injected when the rollout starts (after inventory
    /// and compliance), e.g. `5xx_burst:host=idrac-002:n=2`.
    pub faults: Option<String>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            hosts: 8,
            speed: 2000.0,
            seed: 42,
            progress: true,
            faults: None,
        }
    }
}

/// One component change on one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Component name.
    pub component: String,
    /// Version before.
    pub from: Option<String>,
    /// Version after, read back from the BMC (none when not installed).
    pub to: Option<String>,
    /// `installed`, `failed`, `rolled_back`, ...
    pub outcome: String,
}

/// One line of the summary.
#[derive(Clone, Debug)]
pub struct SummaryRow {
    /// Host fqdn.
    pub host: String,
    /// Simulated iDRAC name.
    pub bmc: String,
    /// vSphere cluster, if any.
    pub cluster: Option<String>,
    /// What changed.
    pub changes: Vec<Change>,
    /// Installs the simulated iDRAC performed (flashes), all components.
    pub flashes: usize,
    /// Run duration.
    pub duration: Option<Duration>,
    /// Failed attempts (transient faults retried).
    pub attempts: u32,
    /// Final run state.
    pub outcome: RunState,
    /// Last error, if the run failed.
    pub error: Option<String>,
}

/// How a cluster fared during the rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSafety {
    /// Cluster moid.
    pub cluster: String,
    /// Hosts in it.
    pub hosts: usize,
    /// Fewest hosts online right after any host entered maintenance.
    pub min_online_seen: Option<usize>,
    /// The plan's `minHostsOnline`.
    pub min_hosts_online: u32,
}

/// What the demo did.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// Final plan status.
    pub plan_status: PlanStatus,
    /// One row per host, in fleet order.
    pub rows: Vec<SummaryRow>,
    /// Packages the compliance step said would be installed.
    pub planned_installs: usize,
    /// Per vSphere cluster: how many hosts stayed online.
    pub clusters: Vec<ClusterSafety>,
    /// Wall-clock time of the whole demo.
    pub elapsed: Duration,
}

/// Executor tuning for the simulator in real time: short polls, a short
/// lease renewed often.
fn executor_config() -> ExecutorConfig {
    let mut c = ExecutorConfig::new("demo");
    c.slots = 16;
    c.lease_ttl = Duration::from_secs(5);
    c.heartbeat_interval = Duration::from_secs(1);
    c.safety_margin = Duration::from_secs(1);
    c.reclaim_delay = Duration::from_millis(500);
    c.poll_interval = Duration::from_millis(50);
    c.job_poll_initial = Duration::from_millis(25);
    c.job_poll_max = Duration::from_millis(150);
    c.ready_poll_interval = Duration::from_millis(30);
    c.ready_stable_reads = 2;
    c
}

fn sim_package(
    cid: &str,
    name: &str,
    version: &str,
    kind: PackageKind,
    systems: &[u32],
) -> firmflow_sim::Package {
    firmflow_sim::Package {
        system_ids: systems.to_vec(),
        component_id: cid.into(),
        name: name.into(),
        version: version.into(),
        reboot_required: kind != PackageKind::Idrac,
        kind,
    }
}

/// The demo catalog's packages: a BIOS per model, an iDRAC per generation.
pub(crate) fn catalog_packages() -> Vec<firmflow_sim::Package> {
    let mut v: Vec<firmflow_sim::Package> = BIOS_TARGETS
        .iter()
        .map(|(sid, ver)| sim_package("159", "BIOS", ver, PackageKind::Bios, &[*sid]))
        .collect();
    v.push(sim_package(
        "25227",
        "iDRAC with Lifecycle Controller",
        IDRAC9_TARGET,
        PackageKind::Idrac,
        &[1814, 2300, 2973],
    ));
    v.push(sim_package(
        "25227",
        "iDRAC with Lifecycle Controller",
        IDRAC10_TARGET,
        PackageKind::Idrac,
        &[3290],
    ));
    v
}

struct Registered {
    host: Host,
    bmc: String,
    system: SystemInfo,
    inventory: Inventory,
}

/// Runs the demo, writing tables to `out` and progress bars to stderr.
pub async fn run(opts: &DemoOptions, out: &mut dyn Write) -> anyhow::Result<DemoReport> {
    if opts.hosts == 0 || opts.hosts > 64 {
        bail!("--hosts must be between 1 and 64 (got {})", opts.hosts);
    }
    if !(opts.speed.is_finite() && opts.speed >= 1.0) {
        bail!("--speed must be at least 1 (got {})", opts.speed);
    }
    let faults: Option<FaultSpec> = opts
        .faults
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--faults")?;
    let began = Instant::now();
    let n = opts.hosts;
    let clustered = n >= 4;

    // 1. The fleet: iDRAC9s of three models, and an iDRAC10 when there are
    //    enough hosts to show both generations.
    let mut fb = Fleet::builder()
        .hosts(n)
        .flavor(Flavor::Idrac9)
        .speed(opts.speed)
        .seed(opts.seed);
    if n >= 3 {
        fb = fb.flavor_for(n - 1, Flavor::Idrac10);
    }
    let fleet = fb.start().await.context("starting the simulated fleet")?;
    writeln!(
        out,
        "firmflow demo: {n} simulated iDRACs on 127.0.0.1 over HTTPS (speed x{}, seed {})\n",
        opts.speed, opts.seed
    )?;
    let result = campaign(opts, faults, &fleet, clustered, out).await;
    fleet.shutdown().await;
    let mut report = result?;
    report.elapsed = began.elapsed();
    writeln!(
        out,
        "\nplan {} in {:.1} s",
        report.plan_status,
        report.elapsed.as_secs_f64()
    )?;
    Ok(report)
}

async fn campaign(
    opts: &DemoOptions,
    faults: Option<FaultSpec>,
    fleet: &Fleet,
    clustered: bool,
    out: &mut dyn Write,
) -> anyhow::Result<DemoReport> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let ca = dir.path().join("fleet-ca.pem");
    std::fs::write(
        &ca,
        fleet
            .ca_cert_pem()
            .context("the simulated fleet has no certificate")?,
    )
    .with_context(|| format!("writing {}", ca.display()))?;
    let first = fleet.hosts().first().context("empty fleet")?;
    let store = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
    let connector: Arc<Connector> = Arc::new(setup::connector(
        Credential::new(first.username.clone(), first.password.clone()),
        TlsMode::CaFile(ca),
        Default::default(),
        Duration::ZERO,
        Some(store.clone()),
    ));
    let vcenter = FakeCluster::new(Duration::from_millis(100));

    // 2. Register the hosts (two clusters from 4 hosts on).
    let mut hosts = Vec::new();
    for (i, info) in fleet.hosts().iter().enumerate() {
        let mut nh = if clustered {
            let c = CLUSTERS[i % 2];
            let moid = format!("host-{}", 100 + i);
            vcenter.add_host(
                &ClusterKey {
                    vcenter_url: VCENTER.into(),
                    cluster_moid: c.into(),
                },
                &moid,
            );
            NewHost::idrac(format!("esx{:02}.{c}.demo.lab", i + 1), info.url.clone())
                .in_cluster(VCENTER, c, moid)
        } else {
            NewHost::idrac(format!("srv{:02}.demo.lab", i + 1), info.url.clone())
        };
        nh.tags = vec!["demo".into(), info.flavor.as_str().into()];
        let host = store.add_host(nh).await.context("registering a host")?;
        hosts.push((host, info.name.clone()));
    }
    writeln!(
        out,
        "registered {} hosts{}",
        hosts.len(),
        if clustered {
            format!(" in vSphere clusters {} and {}", CLUSTERS[0], CLUSTERS[1])
        } else {
            " (standalone)".into()
        }
    )?;

    // 3. Inventory, read through the real driver.
    let mut registered = Vec::new();
    for (host, bmc) in hosts {
        let d = connector
            .connect(&host)
            .await
            .with_context(|| format!("connecting to {}", host.fqdn))?;
        let system = d
            .system()
            .await
            .with_context(|| format!("{}: system", host.fqdn))?;
        let inventory = d
            .inventory()
            .await
            .with_context(|| format!("{}: firmware inventory", host.fqdn))?;
        let _ = d.close().await;
        registered.push(Registered {
            host,
            bmc,
            system,
            inventory,
        });
    }
    let mut t = Table::new(&[
        "HOST", "BMC", "CLUSTER", "MODEL", "TAG", "BIOS", "IDRAC", "POWER", "HEALTH",
    ]);
    for r in &registered {
        t.row(vec![
            r.host.fqdn.clone(),
            r.bmc.clone(),
            r.host.cluster_moid.clone().unwrap_or_else(|| "-".into()),
            r.system.model.clone().unwrap_or_default(),
            r.system.service_tag.clone().unwrap_or_default(),
            version_of(&r.inventory, "159"),
            version_of(&r.inventory, "25227"),
            format!("{:?}", r.system.power).to_lowercase(),
            format!("{:?}", r.system.health).to_lowercase(),
        ]);
    }
    writeln!(out, "\nINVENTORY\n{}", t.render())?;

    // 4. A Dell-format catalog (written by the simulator's catalog writer,
    //    served next to its packages) and compliance against it.
    let entries: Vec<CatalogEntry> = catalog_packages()
        .into_iter()
        .map(|p| {
            let b = p.to_bytes();
            CatalogEntry::new(p, b)
        })
        .collect();
    for e in &entries {
        fleet.serve_file(&format!("repo/{}", e.path), e.bytes.clone());
    }
    let xml = firmflow_sim::catalog::write(&entries, &CatalogOptions::default())
        .context("writing the demo catalog")?;
    let catalog_url = fleet.serve_file("repo/Catalog.xml", xml);
    let mut policy = Policy::new(UpdateMode::LatestFromCatalog);
    policy.catalog_url = Some(catalog_url.clone());
    let loaded = CatalogSource::new()?
        .load(&catalog_url)
        .await
        .context("loading the demo catalog")?;
    let index = CatalogIndex::new(loaded.catalog.clone());
    let mut reports: Vec<HostCompliance> = Vec::new();
    for r in &registered {
        reports.push(
            assess_host(&index, &r.host.fqdn, &r.system, &r.inventory, &policy)
                .with_context(|| format!("{}: compliance", r.host.fqdn))?,
        );
    }
    let planned: usize = reports.iter().map(|r| r.summary.to_install).sum();
    let mut t = Table::new(&["HOST", "COMPONENTS", "UPGRADES", "REBOOT", "WOULD INSTALL"]);
    for rep in &reports {
        let installs: Vec<String> = rep
            .components
            .iter()
            .filter(|c| c.will_install)
            .map(|c| {
                format!(
                    "{} {} → {}",
                    short_name(&c.name),
                    c.installed,
                    c.target.as_deref().unwrap_or("?")
                )
            })
            .collect();
        t.row(vec![
            rep.host.clone(),
            rep.summary.components.to_string(),
            rep.summary.upgrade.to_string(),
            if rep.summary.reboot_required {
                "host"
            } else {
                "no"
            }
            .into(),
            if installs.is_empty() {
                "-".into()
            } else {
                installs.join(", ")
            },
        ]);
    }
    writeln!(
        out,
        "COMPLIANCE (catalog {}, {} packages)\n{}",
        catalog_url,
        entries.len(),
        t.render()
    )?;

    // 5. The plan: approved, rolling, cluster-aware.
    let cache = firmflow_catalog::PackageCache::with_default_client(dir.path().join("packages"))?;
    let resolver = Arc::new(firmflow_catalog::ModeResolver::new(
        Arc::new(CatalogSource::new()?),
        Arc::new(cache),
    ));
    let exec = Executor::new(
        Services {
            store: store.clone(),
            bmc: connector.clone(),
            cluster: clustered.then(|| {
                Arc::new(vcenter.clone()) as Arc<dyn firmflow_core::cluster::ClusterManager>
            }),
            resolver,
            checks: CheckRegistry::builtin(),
            clock: Arc::new(SystemClock),
        },
        executor_config(),
    );
    policy.max_concurrent = 2;
    policy.min_hosts_online = if clustered {
        // Every cluster keeps all but one host online.
        let smallest = registered.len() / 2;
        (smallest as u32).saturating_sub(1).max(1)
    } else {
        1
    };
    policy.require_maintenance_mode = clustered;
    policy.allow_downtime = !clustered;
    policy.rollback_on_failure = true;
    policy.preflight_checks = vec![
        "connectivity".into(),
        "compatibility".into(),
        "cluster_health".into(),
    ];
    policy.post_update_validation = vec![
        "firmware_version".into(),
        "system_health".into(),
        "network_connectivity".into(),
    ];
    policy.retry = Some(RetrySettings {
        max_attempts: 3,
        initial_backoff_secs: 1,
        multiplier: 2.0,
        max_backoff_secs: 4,
        jitter: 0.0,
    });
    let operator = UserId::new();
    let created = exec
        .create_plan(NewPlan {
            name: "demo: latest from catalog".into(),
            policy,
            maintenance_window: None,
            approval_required: true,
            targets: registered
                .iter()
                .map(|r| PlanTarget {
                    host_id: r.host.id,
                    priority: 0,
                    conditions: serde_json::json!({}),
                })
                .collect(),
            artifacts: vec![],
            created_by: Some(operator),
            idempotency_key: None,
        })
        .await
        .context("creating the plan")?;
    let plan = created.plan;
    exec.approve(plan.id, operator).await?;
    if let Some(spec) = faults {
        writeln!(
            out,
            "injecting simulator faults: {}",
            opts.faults.as_deref().unwrap_or_default()
        )?;
        for rule in spec.rules {
            fleet.inject_rule(rule);
        }
    }
    let progress = exec.subscribe();
    let handle = exec.spawn();
    exec.start(plan.id, Some(operator)).await?;
    writeln!(
        out,
        "ROLLOUT plan {} (maxConcurrent {}, minHostsOnline {}, approved)",
        plan.id, plan.policy.max_concurrent, plan.policy.min_hosts_online
    )?;
    out.flush()?;

    let bars = Bars::new(&registered, opts.progress);
    let watcher = tokio::spawn(bars.clone().follow(progress));
    let status = handle.wait_plan(plan.id, Duration::from_secs(600)).await;
    watcher.abort();
    let runs = store.list_runs(plan.id).await?;
    bars.finish(&runs);
    handle.shutdown().await;
    let Some(status) = status else {
        bail!("the demo plan did not finish within 10 minutes");
    };

    // 6. Summary: what the BMCs now say, per host.
    let by_host: BTreeMap<HostId, HostRun> = runs.into_iter().map(|r| (r.host_id, r)).collect();
    let mut rows = Vec::new();
    for r in &registered {
        let Some(run) = by_host.get(&r.host.id) else {
            continue;
        };
        rows.push(SummaryRow {
            host: r.host.fqdn.clone(),
            bmc: r.bmc.clone(),
            cluster: r.host.cluster_moid.clone(),
            changes: run
                .ctx
                .results
                .components
                .iter()
                .map(|c| Change {
                    component: short_name(&c.name),
                    from: c.from_version.clone(),
                    to: c.to_version.clone(),
                    outcome: c.outcome.clone(),
                })
                .collect(),
            flashes: fleet.installs(&r.bmc).len(),
            duration: run
                .started_at
                .zip(run.completed_at)
                .and_then(|(a, b)| (b - a).to_std().ok()),
            attempts: run.attempts,
            outcome: run.state,
            error: run.last_error.clone(),
        });
    }
    let mut t = Table::new(&[
        "HOST", "CHANGES", "FLASHES", "RETRIES", "DURATION", "OUTCOME",
    ]);
    for row in &rows {
        let changes: Vec<String> = row
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} → {}{}",
                    c.component,
                    c.from.as_deref().unwrap_or("?"),
                    c.to.as_deref().unwrap_or("-"),
                    if c.outcome == "installed" {
                        String::new()
                    } else {
                        format!(" ({})", c.outcome)
                    }
                )
            })
            .collect();
        t.row(vec![
            row.host.clone(),
            if changes.is_empty() {
                "-".into()
            } else {
                changes.join(", ")
            },
            row.flashes.to_string(),
            row.attempts.to_string(),
            row.duration
                .map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or_else(|| "-".into()),
            match &row.error {
                Some(e) if row.outcome != RunState::Completed => format!("{}: {e}", row.outcome),
                _ => row.outcome.to_string(),
            },
        ]);
    }
    write!(out, "\nSUMMARY\n{}", t.render())?;

    // 7. Cluster safety, from the fake vCenter's own records.
    let mut clusters = Vec::new();
    if clustered {
        writeln!(out)?;
        for c in CLUSTERS {
            let key = ClusterKey {
                vcenter_url: VCENTER.into(),
                cluster_moid: c.into(),
            };
            let safety = ClusterSafety {
                cluster: c.into(),
                hosts: registered
                    .iter()
                    .filter(|r| r.host.cluster_moid.as_deref() == Some(c))
                    .count(),
                min_online_seen: vcenter.min_online_seen(&key),
                min_hosts_online: plan.policy.min_hosts_online,
            };
            writeln!(
                out,
                "cluster {}: {} hosts, never fewer than {} online (minHostsOnline {}), {} in maintenance now",
                safety.cluster,
                safety.hosts,
                safety
                    .min_online_seen
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-".into()),
                safety.min_hosts_online,
                vcenter.in_maintenance_now(&key)
            )?;
            clusters.push(safety);
        }
    }
    Ok(DemoReport {
        plan_status: status,
        rows,
        planned_installs: planned,
        clusters,
        elapsed: Duration::ZERO,
    })
}

/// Catalog names read "BIOS,2.19.1"; the version shows in the change.
fn short_name(name: &str) -> String {
    name.split(',').next().unwrap_or(name).trim().to_string()
}

fn version_of(inv: &Inventory, component_id: &str) -> String {
    inv.installed_for(component_id)
        .map(|c| c.version.clone())
        .unwrap_or_else(|| "-".into())
}

/// One progress bar per host, fed by the executor's progress stream.
#[derive(Clone)]
struct Bars {
    _multi: MultiProgress,
    by_host: Arc<BTreeMap<HostId, ProgressBar>>,
}

impl Bars {
    fn new(hosts: &[Registered], visible: bool) -> Self {
        let multi = MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = ProgressStyle::with_template(
            "{prefix:<24} [{bar:30.cyan/blue}] {pos:>3}% {elapsed:>4} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let by_host = hosts
            .iter()
            .map(|r| {
                let b = multi.add(ProgressBar::new(100));
                b.set_style(style.clone());
                b.set_prefix(r.host.fqdn.clone());
                b.set_message("queued");
                (r.host.id, b)
            })
            .collect();
        Self {
            _multi: multi,
            by_host: Arc::new(by_host),
        }
    }

    async fn follow(self, mut rx: tokio::sync::broadcast::Receiver<ProgressEvent>) {
        loop {
            match rx.recv().await {
                Ok(ev) => self.show(&ev),
                // A slow terminal skips old messages; the next one is current.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    }

    fn show(&self, ev: &ProgressEvent) {
        let Some(b) = self.by_host.get(&ev.host_id) else {
            return;
        };
        if b.is_finished() {
            return;
        }
        if b.message() == "queued" {
            // The bar's clock shows this run's time, not the wait for admission.
            b.reset_elapsed();
        }
        b.set_position(u64::from(ev.percentage));
        match ev.state {
            RunState::Completed => b.finish_with_message("completed"),
            RunState::Failed | RunState::Cancelled => {
                b.abandon_with_message(format!("{}: {}", ev.state, ev.message));
            }
            RunState::Retrying => b.set_message(format!("retrying: {}", ev.message)),
            _ => b.set_message(format!("{}: {}", ev.phase.as_str(), ev.message)),
        }
    }

    /// Final state of every bar from the runs (the stream may have been cut).
    fn finish(&self, runs: &[HostRun]) {
        for r in runs {
            if let Some(b) = self.by_host.get(&r.host_id)
                && !b.is_finished()
            {
                b.set_position(u64::from(r.ctx.progress.percentage));
                if r.state == RunState::Completed {
                    b.finish_with_message("completed");
                } else {
                    b.abandon_with_message(r.state.to_string());
                }
            }
        }
    }
}
