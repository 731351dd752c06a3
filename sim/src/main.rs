//! `firmflow-sim`: serve a simulated iDRAC fleet, or write packages and catalogs.
//!
//! ```text
//! firmflow-sim --hosts 3 --http --speed 1000 --seed 7 --faults fail_job:p=0.1
//! firmflow-sim package --system-ids 1814 --component-id 159 --name BIOS --version 2.19.1 --kind bios --reboot-required -o BIOS.EXE
//! firmflow-sim catalog -o Catalog.xml --base-location 127.0.0.1:8080/repo BIOS.EXE
//! ```

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use firmflow_sim::catalog::{self, CatalogEntry, CatalogOptions, Encoding};
use firmflow_sim::{FaultSpec, Flavor, Fleet, Package, PackageKind};

#[derive(Debug, Parser)]
#[command(
    name = "firmflow-sim",
    version,
    about = "Simulated Dell iDRAC fleet (Redfish)"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Number of simulated iDRACs.
    #[arg(long, default_value_t = 1)]
    hosts: usize,
    /// Plain HTTP instead of HTTPS.
    #[arg(long)]
    http: bool,
    /// idrac9, idrac10 or generic.
    #[arg(long, default_value = "idrac9")]
    flavor: String,
    /// Time speed factor (1000 = a 10-minute update takes 0.6 s).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fault spec, e.g. `fail_job:p=0.1,5xx_burst:host=idrac-003:n=3`.
    #[arg(long, default_value = "")]
    faults: String,
    /// One listener for all hosts, routed by the Host header.
    #[arg(long)]
    virtual_hosts: bool,
    /// Redfish user name.
    #[arg(long, default_value = "root")]
    username: String,
    /// Redfish password.
    #[arg(long, default_value = "calvin")]
    password: String,
    /// Drop iDRAC quirks that violate the DMTF schemas (for validators).
    #[arg(long)]
    strict_redfish: bool,
    /// Write the fleet's self-signed certificate (PEM) to this file.
    #[arg(long)]
    cert_out: Option<PathBuf>,
    /// Maximum sessions per iDRAC.
    #[arg(long, default_value_t = 8)]
    max_sessions: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a simulator firmware package.
    Package(PackageArgs),
    /// Write a Dell-format Catalog.xml describing package files.
    Catalog(CatalogArgs),
}

#[derive(Debug, Args)]
struct PackageArgs {
    /// Supported Dell SystemIDs, decimal, comma-separated (empty = any).
    #[arg(long, value_delimiter = ',')]
    system_ids: Vec<u32>,
    /// Dell ComponentID (or PCI identity VVVV:DDDD:SSSS:SSSS).
    #[arg(long)]
    component_id: String,
    /// Component name.
    #[arg(long)]
    name: String,
    /// Version after install.
    #[arg(long)]
    version: String,
    /// bios, idrac, nic, raid, cpld, psu, disk, diagnostics, firmware.
    #[arg(long, default_value = "firmware")]
    kind: String,
    /// The host must reboot to apply it.
    #[arg(long)]
    reboot_required: bool,
    /// Filler payload size in bytes.
    #[arg(long, default_value_t = 0)]
    payload_size: usize,
    /// Output file (default: a Dell-like file name in the current directory).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct CatalogArgs {
    /// Package files to describe (their file names become the catalog paths).
    packages: Vec<PathBuf>,
    /// Output file.
    #[arg(short, long, default_value = "Catalog.xml")]
    output: PathBuf,
    /// baseLocation (host[/path], no scheme; empty = relative to the catalog).
    #[arg(long, default_value = "")]
    base_location: String,
    /// baseLocationAccessProtocols.
    #[arg(long, default_value = "HTTP")]
    protocols: String,
    /// Write UTF-8 instead of UTF-16LE with BOM.
    #[arg(long)]
    utf8: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Package(a)) => package(a),
        Some(Command::Catalog(a)) => write_catalog(a),
        None => {
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "warn".into()),
                )
                .init();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(serve(cli.serve))
        }
    }
}

fn package(a: PackageArgs) -> anyhow::Result<()> {
    let kind: PackageKind = a.kind.parse().context("bad --kind")?;
    let p = Package {
        system_ids: a.system_ids,
        component_id: a.component_id,
        name: a.name,
        version: a.version,
        reboot_required: a.reboot_required,
        kind,
    };
    let out = a.output.unwrap_or_else(|| PathBuf::from(p.file_name()));
    std::fs::write(&out, p.to_bytes_padded(a.payload_size))
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}

fn write_catalog(a: CatalogArgs) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    for path in &a.packages {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let p = Package::parse(&bytes)
            .with_context(|| format!("{} is not a package", path.display()))?;
        let mut e = CatalogEntry::new(p, bytes);
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            e.path = name.to_string();
        }
        entries.push(e);
    }
    let opts = CatalogOptions {
        base_location: a.base_location,
        protocols: a.protocols,
        encoding: if a.utf8 {
            Encoding::Utf8
        } else {
            Encoding::Utf16Le
        },
        ..CatalogOptions::default()
    };
    let bytes = catalog::write(&entries, &opts)?;
    std::fs::write(&a.output, bytes)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    println!("{}", a.output.display());
    Ok(())
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let flavor: Flavor = a.flavor.parse()?;
    let faults = FaultSpec::parse(&a.faults)?;
    let fleet = Fleet::builder()
        .hosts(a.hosts)
        .flavor(flavor)
        .http(a.http)
        .virtual_hosts(a.virtual_hosts)
        .speed(a.speed)
        .seed(a.seed)
        .faults(faults)
        .username(&a.username)
        .password(&a.password)
        .max_sessions(a.max_sessions)
        .strict_redfish(a.strict_redfish)
        .start()
        .await?;
    if let (Some(path), Some(pem)) = (&a.cert_out, fleet.ca_cert_pem()) {
        std::fs::write(path, pem).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let control = fleet.control_url();
    {
        use std::io::Write as _;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for h in fleet.hosts() {
            let line = serde_json::json!({
                "name": h.name,
                "url": h.url,
                "username": h.username,
                "password": h.password,
                "control_url": control,
                "service_tag": h.service_tag,
                "system_id": h.system_id,
                "model": h.model,
                "flavor": h.flavor.as_str(),
                "addr": h.addr.to_string(),
            });
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    wait_for_signal().await;
    fleet.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
