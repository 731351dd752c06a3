//! `firmflow sim`: the simulated fleet (`firmflow-sim`'s options) plus a lab
//! folder that points every other command at it: a hosts file in vSphere
//! clusters, a config file (CA file, credentials file, simulated vCenter,
//! sim timing), a Dell-format catalog served next to its packages, and a
//! rolling plan. Serves until Ctrl-C or SIGTERM.

use crate::demo::catalog_packages;
use anyhow::Context as _;
use firmflow_sim::catalog::{CatalogEntry, CatalogOptions};
use firmflow_sim::{FaultSpec, Flavor, Fleet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The fake vCenter URL the lab's hosts name.
pub const LAB_VCENTER: &str = "https://vcenter.sim.invalid";

/// `firmflow sim` options: the simulator's, and the lab's.
#[derive(clap::Args, Clone, Debug)]
pub struct SimArgs {
    /// Number of simulated iDRACs.
    #[arg(long, default_value_t = 20)]
    pub hosts: usize,
    /// vSphere clusters the hosts are spread over (0: standalone hosts).
    #[arg(long, default_value_t = 2)]
    pub clusters: usize,
    /// Folder for the lab files (hosts.csv, firmflow.toml, plan.toml, …).
    #[arg(long, default_value = "firmflow-lab")]
    pub out: PathBuf,
    /// Plain HTTP instead of HTTPS.
    #[arg(long)]
    pub http: bool,
    /// idrac9, idrac10 or generic.
    #[arg(long, default_value = "idrac9")]
    pub flavor: String,
    /// Time speed factor (2000: a 10-minute Dell update takes 0.3 s).
    #[arg(long, default_value_t = 2000.0)]
    pub speed: f64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fault spec, e.g. `fail_job:p=0.1,5xx_burst:host=idrac-003:n=3`.
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Redfish user name.
    #[arg(long, default_value = "root")]
    pub username: String,
    /// Redfish password (written to the lab's 0600 credentials file only).
    #[arg(long, default_value = "calvin")]
    pub password: String,
    /// Maximum sessions per iDRAC.
    #[arg(long, default_value_t = 8)]
    pub max_sessions: usize,
    /// Drop iDRAC quirks that violate the DMTF schemas.
    #[arg(long)]
    pub strict_redfish: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Lab {
    /// The folder.
    pub dir: PathBuf,
    /// Hosts file.
    pub hosts_csv: PathBuf,
    /// Config file.
    pub config: PathBuf,
    /// Plan file.
    pub plan: PathBuf,
    /// Catalog URL (served by the fleet).
    pub catalog_url: String,
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Writes the lab folder for a running fleet.
pub fn write_lab(
    fleet: &Fleet,
    dir: &Path,
    clusters: usize,
    username: &str,
    password: &str,
) -> anyhow::Result<Lab> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let tls = match fleet.ca_cert_pem() {
        Some(pem) => {
            std::fs::write(dir.join("fleet-ca.pem"), pem)?;
            "[bmc.tls]\nca_file = \"fleet-ca.pem\"   # the fleet's self-signed certificate\n"
        }
        None => "",
    };
    // The login lives in a file only its owner can read; everything else
    // names it by reference.
    write_private(
        &dir.join("idrac.toml"),
        &format!(
            "[sim]\nusername = {}\npassword = {}\n",
            toml_str(username),
            toml_str(password)
        ),
    )?;
    std::fs::write(
        dir.join("firmflow.toml"),
        format!(
            "# firmflow configuration for the simulated fleet (written by `firmflow sim`).\n\
             timing = \"sim\"\n\n\
             [bmc]\ncredential = \"file:idrac.toml#sim\"\n\n{tls}\n\
             [vcenter]\n# The lab has no vCenter: an in-process stand-in enters and leaves\n\
             # maintenance mode. Real fleets: credential = \"env:VCENTER\".\nsimulated = true\n"
        ),
    )?;
    // Hosts in clusters.
    let mut csv = String::from(
        "fqdn,mgmt_ip,model,service_tag,mgmt_kind,vcenter_url,cluster_moid,host_moid,datacenter,tags,credential\n",
    );
    let per = if clusters == 0 {
        fleet.hosts().len()
    } else {
        fleet.hosts().len().div_ceil(clusters)
    };
    let mut cluster_names = Vec::new();
    for (i, h) in fleet.hosts().iter().enumerate() {
        let (fqdn, vc, cl, moid) = if clusters == 0 {
            (
                format!("srv{:02}.lab", i + 1),
                "",
                String::new(),
                String::new(),
            )
        } else {
            let c = format!("domain-c{}", 7 + i / per);
            if !cluster_names.contains(&c) {
                cluster_names.push(c.clone());
            }
            (
                format!("esx{:02}.lab", i + 1),
                LAB_VCENTER,
                c,
                format!("host-{}", 101 + i),
            )
        };
        csv.push_str(&format!(
            "{fqdn},{},{},{},idrac,{vc},{cl},{moid},lab,\"sim;{}\",\n",
            h.url,
            h.model,
            h.service_tag,
            h.flavor.as_str()
        ));
    }
    let hosts_csv = dir.join("hosts.csv");
    std::fs::write(&hosts_csv, csv)?;
    // The catalog and its packages, served by the fleet.
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
        .context("writing the lab catalog")?;
    std::fs::write(dir.join("Catalog.xml"), &xml)?;
    let catalog_url = fleet.serve_file("repo/Catalog.xml", xml);
    // A rolling plan: per cluster, all but two hosts stay online.
    let min_online = per.saturating_sub(2).max(1);
    let targets = if clusters == 0 {
        "all = true".to_string()
    } else {
        format!(
            "clusters = [{}]",
            cluster_names
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let plan = dir.join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "# A rolling update of the simulated fleet (written by `firmflow sim`).\n\
             name = \"lab: latest from catalog\"\n\
             catalog = \"{catalog_url}\"\n\
             approval_required = true\n\n\
             [targets]\n{targets}\n\
             priority = {{ \"{}\" = 10 }}   # a canary: it goes first\n\n\
             [policy]\n\
             maxConcurrent = 4\n\
             minHostsOnline = {min_online}\n\
             requireMaintenanceMode = {}\n\
             allowDowntime = {}\n\
             rollbackOnFailure = true\n\
             preflightChecks = [\"connectivity\", \"compatibility\", \"cluster_health\"]\n\
             postUpdateValidation = [\"firmware_version\", \"system_health\", \"network_connectivity\"]\n\
             retry = {{ maxAttempts = 3, initialBackoffSecs = 1, maxBackoffSecs = 4, jitter = 0.0 }}\n",
            if clusters == 0 {
                "srv01.lab"
            } else {
                "esx01.lab"
            },
            clusters > 0,
            clusters == 0,
        ),
    )?;
    Ok(Lab {
        config: dir.join("firmflow.toml"),
        dir,
        hosts_csv,
        plan,
        catalog_url,
    })
}

fn toml_str(s: &str) -> String {
    // A JSON string is a valid TOML basic string (same escapes).
    serde_json::Value::String(s.to_string()).to_string()
}

/// Starts the fleet.
pub async fn start(a: &SimArgs) -> anyhow::Result<Fleet> {
    if a.hosts == 0 || a.hosts > 1000 {
        return Err(crate::exit::usage(format!(
            "--hosts must be between 1 and 1000 (got {})",
            a.hosts
        )));
    }
    let flavor: Flavor = a
        .flavor
        .parse()
        .map_err(|e| crate::exit::usage(format!("--flavor: {e}")))?;
    let faults =
        FaultSpec::parse(&a.faults).map_err(|e| crate::exit::usage(format!("--faults: {e}")))?;
    Fleet::builder()
        .hosts(a.hosts)
        .flavor(flavor)
        .http(a.http)
        .speed(a.speed)
        .seed(a.seed)
        .faults(faults)
        .username(&a.username)
        .password(&a.password)
        .max_sessions(a.max_sessions)
        .strict_redfish(a.strict_redfish)
        .start()
        .await
        .context("starting the simulated fleet")
}

/// `firmflow sim`: serve until a signal.
pub async fn run(a: &SimArgs, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let fleet = start(a).await?;
    let lab = write_lab(&fleet, &a.out, a.clusters, &a.username, &a.password)?;
    if json {
        for h in fleet.hosts() {
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "name": h.name, "url": h.url, "control_url": fleet.control_url(),
                    "service_tag": h.service_tag, "system_id": h.system_id, "model": h.model,
                    "flavor": h.flavor.as_str(),
                })
            )?;
        }
    } else {
        writeln!(
            out,
            "serving {} simulated iDRACs on 127.0.0.1 over {} (speed x{}, seed {}); control API {}",
            fleet.hosts().len(),
            if a.http { "HTTP" } else { "HTTPS" },
            a.speed,
            a.seed,
            fleet.control_url()
        )?;
        writeln!(out, "lab files in {}:", lab.dir.display())?;
        writeln!(
            out,
            "  hosts.csv      {} hosts{}",
            fleet.hosts().len(),
            if a.clusters > 0 {
                format!(" in {} vSphere clusters", a.clusters)
            } else {
                String::new()
            }
        )?;
        writeln!(
            out,
            "  firmflow.toml  CA file, credentials file (idrac.toml, 0600), simulated vCenter"
        )?;
        writeln!(
            out,
            "  plan.toml      a rolling update to the catalog {}",
            lab.catalog_url
        )?;
        writeln!(
            out,
            "next, in another shell:\n  export FIRMFLOW_CONFIG={}\n  firmflow compliance --catalog {} --hosts-file {}\n  firmflow run {} --hosts {} --yes",
            lab.config.display(),
            lab.catalog_url,
            lab.hosts_csv.display(),
            lab.plan.display(),
            lab.hosts_csv.display()
        )?;
    }
    writeln!(out, "ready (Ctrl-C stops the fleet)")?;
    out.flush()?;
    wait_for_signal().await;
    fleet.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
