//! `firmflow`: firmware-update campaigns for Dell PowerEdge fleets.
//!
//! `firmflow demo` runs a whole campaign on an in-process simulated fleet;
//! `firmflow compliance` assesses one iDRAC against a Dell catalog.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use firmflow_cli::compliance::{self, ComplianceArgs};
use firmflow_cli::demo::{self, DemoOptions};
use firmflow_core::credentials::Credential;
use firmflow_core::model::{MgmtKind, PlanStatus};
use firmflow_redfish::TlsMode;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "firmflow",
    version,
    about = "Firmware-update campaigns for Dell PowerEdge fleets via iDRAC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole campaign on an in-process simulated fleet: inventory,
    /// compliance, a rolling plan with live progress, a summary.
    Demo {
        /// Simulated hosts (from 4 on, in two vSphere clusters).
        #[arg(long, default_value_t = 8)]
        hosts: usize,
        /// Simulator speed factor (2000: a 10-minute Dell update takes 0.3 s).
        #[arg(long, default_value_t = 2000.0)]
        speed: f64,
        /// Simulator seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// No progress bars (also when stderr is not a terminal).
        #[arg(long)]
        no_progress: bool,
        /// Simulator faults injected when the rollout starts, e.g.
        /// `5xx_burst:host=idrac-002:n=2,lc_not_ready:host=idrac-003:secs=600`.
        #[arg(long, value_name = "SPEC")]
        faults: Option<String>,
    },
    /// Compare one iDRAC's firmware with a Dell catalog (changes nothing).
    Compliance {
        /// Catalog.xml, Catalog.xml.gz, or an http(s) URL.
        #[arg(long)]
        catalog: String,
        /// BMC address: https://host[:port] or a bare host.
        #[arg(long)]
        host: String,
        /// BMC user.
        #[arg(long, default_value = "root")]
        user: String,
        /// Environment variable holding the BMC password.
        #[arg(long, value_name = "VAR")]
        password_env: String,
        /// Trust only the CA certificates in this PEM file.
        #[arg(long, conflicts_with_all = ["pin_sha256", "insecure"])]
        ca_file: Option<PathBuf>,
        /// Accept exactly the certificate with this SHA-256 fingerprint.
        #[arg(long, conflicts_with = "insecure")]
        pin_sha256: Option<String>,
        /// Accept any certificate (logged as insecure).
        #[arg(long)]
        insecure: bool,
        /// BMC kind.
        #[arg(long, value_enum, default_value_t = Kind::Idrac)]
        kind: Kind,
        /// Count downgrades as installable.
        #[arg(long)]
        allow_downgrade: bool,
        /// Count same versions as installable.
        #[arg(long)]
        force: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Dell iDRAC (Redfish with Dell OEM).
    Idrac,
    /// Any DMTF Redfish BMC.
    Redfish,
}

fn init_logs(default: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| default.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("firmflow: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo {
            hosts,
            speed,
            seed,
            no_progress,
            faults,
        } => {
            // Warnings (retries, BMC restarts) would tear the progress bars.
            init_logs("error");
            let opts = DemoOptions {
                hosts,
                speed,
                seed,
                progress: !no_progress && std::io::stderr().is_terminal(),
                faults,
            };
            let mut out = std::io::stdout();
            let report = demo::run(&opts, &mut out).await?;
            out.flush()?;
            Ok(if report.plan_status == PlanStatus::Completed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Compliance {
            catalog,
            host,
            user,
            password_env,
            ca_file,
            pin_sha256,
            insecure,
            kind,
            allow_downgrade,
            force,
            json,
        } => {
            init_logs("warn");
            let Some(password) = std::env::var_os(&password_env) else {
                bail!("environment variable {password_env} (--password-env) is not set");
            };
            let password = password
                .into_string()
                .map_err(|_| anyhow::anyhow!("{password_env} is not valid UTF-8"))?;
            let tls = match (ca_file, pin_sha256, insecure) {
                (Some(f), _, _) => TlsMode::CaFile(f),
                (None, Some(p), _) => TlsMode::PinnedSha256(p),
                (None, None, true) => TlsMode::AcceptInvalid,
                (None, None, false) => TlsMode::Verify,
            };
            let args = ComplianceArgs {
                catalog,
                host,
                kind: match kind {
                    Kind::Idrac => MgmtKind::Idrac,
                    Kind::Redfish => MgmtKind::Redfish,
                },
                credential: Credential::new(user, password),
                tls,
                allow_downgrade,
                force,
            };
            let report = compliance::run(&args).await?;
            let mut out = std::io::stdout();
            if json {
                serde_json::to_writer_pretty(&mut out, &report).context("writing JSON")?;
                writeln!(out)?;
            } else {
                write!(
                    out,
                    "{}",
                    firmflow_catalog::render_table(std::slice::from_ref(&report))
                )?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
