//! A simulated fleet in a child process, for benches that measure the
//! firmflow side alone (`fleet_10k` with `SIM=process`).
//!
//! The bench binary runs itself again as the child (environment
//! [`CHILD_ENV`] set), which starts the fleet a [`SimWorldBuilder`]
//! describes, serves the packages and speaks one JSON or word line at a time
//! over its stdin and stdout: a [`Ready`] line once it listens; `start`
//! marks its CPU clock; `report` answers with a [`FleetReport`] (the
//! simulator's per-host counters, its own peak RSS and CPU since `start`);
//! end of stdin stops it. The parent attaches the firmflow side to the
//! fleet with [`SimWorldBuilder::attach`], so the two processes' memory and
//! CPU are measured apart.

use crate::sim_world::{SimWorldBuilder, serve_artifact};
use firmflow_core::model::Artifact;
use firmflow_sim::{Flavor, Fleet, Package, SimHostInfo};
use serde::{Deserialize, Serialize};
use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Set (to anything) in the child's environment: run as the simulator.
pub const CHILD_ENV: &str = "FIRMFLOW_SIM_CHILD";

/// One simulated iDRAC as the child describes it ([`SimHostInfo`] on the
/// wire).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireHost {
    name: String,
    url: String,
    username: String,
    password: String,
    service_tag: String,
    system_id: u32,
    model: String,
    flavor: String,
    addr: SocketAddr,
    host_header: String,
}

impl WireHost {
    fn of(i: &SimHostInfo) -> WireHost {
        WireHost {
            name: i.name.clone(),
            url: i.url.clone(),
            username: i.username.clone(),
            password: i.password.clone(),
            service_tag: i.service_tag.clone(),
            system_id: i.system_id,
            model: i.model.clone(),
            flavor: i.flavor.as_str().to_string(),
            addr: i.addr,
            host_header: i.host_header.clone(),
        }
    }

    fn info(&self) -> Result<SimHostInfo, String> {
        Ok(SimHostInfo {
            name: self.name.clone(),
            url: self.url.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            service_tag: self.service_tag.clone(),
            system_id: self.system_id,
            model: self.model.clone(),
            flavor: self
                .flavor
                .parse::<Flavor>()
                .map_err(|e| format!("host {}: {e}", self.name))?,
            addr: self.addr,
            host_header: self.host_header.clone(),
        })
    }
}

/// The child's first line: where its fleet listens and what it serves.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    /// The hosts, in fleet order.
    pub hosts: Vec<WireHost>,
    /// The fleet's certificate (`None` over plain HTTP).
    pub ca_pem: Option<String>,
    /// One artifact per package given to the child, in that order.
    pub artifacts: Vec<Artifact>,
}

impl Ready {
    /// The hosts as [`SimHostInfo`]s.
    pub fn infos(&self) -> Result<Vec<SimHostInfo>, String> {
        self.hosts.iter().map(WireHost::info).collect()
    }
}

/// What the simulator counted on one host.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HostReport {
    /// Simulated host name.
    pub name: String,
    /// Requests in all.
    pub total: u64,
    /// Requests per (method, path template).
    pub by_endpoint: Vec<(String, String, u64)>,
    /// Completed installs of each component asked about, in that order.
    pub installs: Vec<usize>,
    /// Sessions alive now.
    pub live_sessions: usize,
    /// Most sessions alive at once.
    pub peak_sessions: usize,
}

/// What the simulator counted on every host, and what it cost.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FleetReport {
    /// Per host, in fleet order.
    pub hosts: Vec<HostReport>,
    /// Connections the fleet accepted.
    pub connections_accepted: u64,
    /// Peak RSS of the simulator's process in MB (`None` in process: it is
    /// the caller's own).
    pub peak_rss_mb: Option<f64>,
    /// CPU seconds of the simulator's process since `start` (`None` in
    /// process).
    pub cpu_secs: Option<f64>,
}

impl FleetReport {
    /// The counters of every host of `fleet`, installs of `components`.
    pub fn of(fleet: &Fleet, components: &[String]) -> FleetReport {
        let hosts = fleet
            .hosts()
            .iter()
            .map(|h| {
                let st = fleet.requests(&h.name);
                HostReport {
                    name: h.name.clone(),
                    total: st.total,
                    by_endpoint: st
                        .by_endpoint
                        .into_iter()
                        .map(|((m, t), n)| (m, t, n))
                        .collect(),
                    installs: components
                        .iter()
                        .map(|c| fleet.install_count(&h.name, c))
                        .collect(),
                    live_sessions: fleet.live_sessions(&h.name),
                    peak_sessions: fleet.peak_sessions(&h.name),
                }
            })
            .collect();
        FleetReport {
            hosts,
            connections_accepted: fleet.connections_accepted(),
            peak_rss_mb: None,
            cpu_secs: None,
        }
    }
}

/// A `/proc/self/status` field in MB (`VmHWM:` peak RSS, `VmRSS:` now).
pub fn status_mb(field: &str) -> f64 {
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
pub fn cpu_secs() -> f64 {
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

/// The child's whole life: start the fleet of `builder` (two tokio workers,
/// as the in-process bench gives the world), serve `packages`, answer the
/// parent until its stdin ends. Installs are reported for `components`.
pub fn child_main(builder: SimWorldBuilder, packages: &[Package], components: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("simulator runtime");
    let fleet = rt
        .block_on(builder.fleet_builder().start())
        .expect("start the simulated fleet");
    let ready = Ready {
        hosts: fleet.hosts().iter().map(WireHost::of).collect(),
        ca_pem: fleet.ca_cert_pem(),
        artifacts: packages.iter().map(|p| serve_artifact(&fleet, p)).collect(),
    };
    let mut out = std::io::stdout().lock();
    let line = serde_json::to_string(&ready).expect("encode the ready line");
    writeln!(out, "{line}").expect("write the ready line");
    out.flush().expect("flush the ready line");
    // The fleet is served by the runtime's workers; this thread only reads
    // the parent's words.
    let mut cpu0 = cpu_secs();
    for word in std::io::stdin().lock().lines() {
        let Ok(word) = word else { break };
        match word.trim() {
            "start" => cpu0 = cpu_secs(),
            "report" => {
                let mut r = FleetReport::of(&fleet, components);
                r.peak_rss_mb = Some(status_mb("VmHWM:"));
                r.cpu_secs = Some(cpu_secs() - cpu0);
                let line = serde_json::to_string(&r).expect("encode the report");
                writeln!(out, "{line}").expect("write the report");
                out.flush().expect("flush the report");
            }
            other => eprintln!("simulator child: unknown word {other:?}"),
        }
    }
    rt.block_on(fleet.shutdown());
}

/// The parent's end of a simulator child.
pub struct SimProcess {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl SimProcess {
    /// Runs `exe` (the calling bench itself) as the child with `args`, the
    /// caller's environment and [`CHILD_ENV`]; waits for its ready line.
    pub async fn spawn(exe: &Path, args: &[String]) -> Result<(SimProcess, Ready), String> {
        let mut child = tokio::process::Command::new(exe)
            .args(args)
            .env(CHILD_ENV, "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("run {}: {e}", exe.display()))?;
        let stdin = child.stdin.take().ok_or("the child has no stdin")?;
        let stdout = child.stdout.take().ok_or("the child has no stdout")?;
        let mut p = SimProcess {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        let ready = p.read_line().await?;
        let ready: Ready =
            serde_json::from_str(&ready).map_err(|e| format!("the child's ready line: {e}"))?;
        Ok((p, ready))
    }

    async fn read_line(&mut self) -> Result<String, String> {
        self.lines
            .next_line()
            .await
            .map_err(|e| format!("read the child: {e}"))?
            .ok_or_else(|| "the simulator child ended".to_string())
    }

    async fn say(&mut self, word: &str) -> Result<(), String> {
        self.stdin
            .write_all(format!("{word}\n").as_bytes())
            .await
            .map_err(|e| format!("write to the child: {e}"))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| format!("write to the child: {e}"))
    }

    /// Marks the start of the measured part in the child (its CPU clock).
    pub async fn start(&mut self) -> Result<(), String> {
        self.say("start").await
    }

    /// The child's counters and costs so far.
    pub async fn report(&mut self) -> Result<FleetReport, String> {
        self.say("report").await?;
        let line = self.read_line().await?;
        serde_json::from_str(&line).map_err(|e| format!("the child's report: {e}"))
    }

    /// Ends the child (closes its stdin) and waits for it.
    pub async fn shutdown(self) {
        let SimProcess {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let _ = child.wait().await;
    }
}
