//! `firmflow`: firmware-update campaigns for Dell PowerEdge fleets.
//!
//! The fleet commands (hosts, inventory, compliance, plan, events, run)
//! work over a store: PostgreSQL with `--database-url`, else an in-memory
//! store that ends with the command. `firmflow sim` serves a simulated
//! fleet with a lab folder; `firmflow demo` runs everything in one process.

/// mimalloc instead of glibc's malloc: a campaign's many small, short-lived
/// allocations (JSON trees, HTTP and TLS buffers) from many threads contend
/// on glibc's arenas; fleet_10k spent half its CPU there (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand, ValueEnum};
use firmflow_cli::compliance::{self, ComplianceArgs};
use firmflow_cli::context::{Ctx, Global};
use firmflow_cli::demo::{self, DemoOptions};
use firmflow_cli::exit::{self, usage};
use firmflow_cli::inventory::{Selection, Verdicts};
use firmflow_cli::sim_cmd::SimArgs;
use firmflow_cli::{events, hosts_cmd, inventory, plans, sim_cmd};
use firmflow_core::credentials::Credential;
use firmflow_core::model::{MgmtKind, PlanStatus};
use firmflow_redfish::TlsMode;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Where state lives:
  With --database-url (or FIRMFLOW_DATABASE_URL) state is in PostgreSQL: it survives
  the process, and `firmflow run` killed mid-campaign and started again resumes without
  flashing anything twice. Without it firmflow uses an in-memory store: STATE IS LOST
  WHEN THE COMMAND ENDS, so only one-shot commands make sense (run --hosts, inventory
  --hosts-file, compliance --hosts-file, plan validate, sim, demo).

Credentials are references, never passwords on the command line:
  env:IDRAC (IDRAC_USERNAME/IDRAC_PASSWORD), file:/etc/firmflow/idrac.toml#prod (chmod 600),
  vault:secret/firmflow/idrac (VAULT_ADDR, VAULT_TOKEN), or --password-env VAR with --user.

Exit codes:
  0  done; for campaigns: every host completed
  1  a failure on some host (or a BMC, store or network error)
  2  usage or configuration error (bad flag, file, line, reference)
  3  refused by policy (approval missing, wrong plan status)
  4  compliance: every BMC read, and updates are pending (the catalog has packages to install)";

#[derive(Parser)]
#[command(
    name = "firmflow",
    version,
    about = "Firmware-update campaigns for Dell PowerEdge fleets via iDRAC",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register, list, show and remove hosts.
    #[command(subcommand)]
    Hosts(HostsCmd),
    /// Read firmware inventory live from the BMCs (in parallel).
    Inventory {
        #[command(flatten)]
        sel: Selection,
    },
    /// Compare firmware with a Dell catalog, fleet-wide (changes nothing).
    /// Exit 0: compliant; 4: updates pending; 1: a BMC could not be read.
    Compliance {
        /// Catalog.xml, Catalog.xml.gz, or an http(s) URL.
        #[arg(long)]
        catalog: String,
        #[command(flatten)]
        sel: Selection,
        /// One unregistered BMC instead (https://host[:port] or a bare host).
        #[arg(long, conflicts_with_all = ["hosts", "hosts_file"])]
        host: Option<String>,
        /// BMC kind for --host.
        #[arg(long, value_enum, default_value_t = Kind::Idrac, requires = "host")]
        kind: Kind,
        #[command(flatten)]
        verdicts: Verdicts,
    },
    /// Create, check, approve and drive update plans.
    #[command(subcommand)]
    Plan(PlanCmd),
    /// The audit trail, oldest first.
    Events {
        /// Only this plan (id, id prefix or name).
        #[arg(long)]
        plan: Option<String>,
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Only the last N.
        #[arg(long)]
        limit: Option<usize>,
        /// Keep printing new events until Ctrl-C.
        #[arg(long, short)]
        follow: bool,
    },
    /// Create, approve (--yes), start and watch one campaign in the
    /// foreground; exit 0 only if every host completed. Ctrl-C pauses.
    Run {
        /// Plan file (TOML or JSON).
        plan: PathBuf,
        /// Register the hosts of this CSV/JSON file first.
        #[arg(long, value_name = "FILE")]
        hosts: Option<PathBuf>,
        /// Approve the plan as the operator when it needs approval.
        #[arg(long, short)]
        yes: bool,
    },
    /// Serve a simulated iDRAC fleet and write a lab folder for it.
    Sim(SimArgs),
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
        /// Simulator faults injected when the rollout starts, e.g.
        /// `5xx_burst:host=idrac-002:n=2,lc_not_ready:host=idrac-003:secs=600`.
        #[arg(long, value_name = "SPEC")]
        faults: Option<String>,
    },
}

#[derive(Subcommand)]
enum HostsCmd {
    /// Register the hosts of a CSV (header row) or JSON file; every bad
    /// row is reported with its line, and nothing is imported then.
    Import {
        /// hosts.csv or hosts.json.
        file: PathBuf,
        /// Only check the file; store nothing.
        #[arg(long)]
        check: bool,
    },
    /// List registered hosts.
    List {
        /// tag=X, cluster=X, datacenter=X, kind=X, model=X, or text of the name.
        #[arg(long, short)]
        filter: Vec<String>,
    },
    /// One host: its fields, credential reference and last inventory.
    Show {
        /// fqdn, mgmt_ip or id.
        host: String,
    },
    /// Remove hosts (refused while a plan that has not finished targets them).
    Remove {
        /// fqdn, mgmt_ip or id.
        #[arg(required = true)]
        hosts: Vec<String>,
    },
}

#[derive(Subcommand)]
enum PlanCmd {
    /// Create a plan from a file (status draft).
    Create {
        /// Plan file (TOML or JSON).
        file: PathBuf,
    },
    /// Check a plan file: every problem with its line.
    Validate {
        /// Plan file.
        file: PathBuf,
    },
    /// What a plan would do: waves, reboots, maintenance windows, ETA.
    /// Reads the BMCs, changes nothing.
    DryRun {
        /// Plan file, or a stored plan (id, id prefix or name).
        plan: String,
        /// BMCs read at once.
        #[arg(long, default_value_t = 16)]
        parallel: usize,
    },
    /// Approve a draft plan.
    Approve {
        /// Plan id, id prefix or name.
        plan: String,
    },
    /// Start a plan and drive it here until it ends (Ctrl-C pauses).
    Start {
        /// Plan id, id prefix or name.
        plan: String,
        /// Only mark it running (for firmflowd or another firmflow to drive).
        #[arg(long)]
        detach: bool,
    },
    /// No new host starts; hosts in flight finish.
    Pause {
        /// Plan id, id prefix or name.
        plan: String,
    },
    /// Resume a paused plan and drive it here.
    Resume {
        /// Plan id, id prefix or name.
        plan: String,
        /// Only mark it running.
        #[arg(long)]
        detach: bool,
    },
    /// Cancel: pending hosts at once, running ones at their next safe point.
    Cancel {
        /// Plan id, id prefix or name.
        plan: String,
    },
    /// Per-host state, phase and retries; --watch follows it live.
    Status {
        /// Plan id, id prefix or name.
        plan: String,
        /// Follow until the plan ends (Ctrl-C stops watching, not the plan).
        #[arg(long, short)]
        watch: bool,
    },
    /// Every plan, newest first.
    List,
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
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version are not errors.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return exit::exit(code);
        }
    };
    match run(cli).await {
        Ok(code) => exit::exit(code),
        Err(e) => {
            eprintln!("firmflow: {e:#}");
            exit::exit(exit::code_of(&e))
        }
    }
}

fn verdict(ok: bool) -> u8 {
    if ok { exit::OK } else { exit::FAILURE }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = cli.global;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    // Warnings (retries, BMC restarts) would tear progress bars; the
    // outcome of each host is printed anyway. RUST_LOG overrides.
    let quiet = !g.no_progress && std::io::stderr().is_terminal();
    match cli.command {
        Command::Demo {
            hosts,
            speed,
            seed,
            faults,
        } => {
            init_logs("error");
            let opts = DemoOptions {
                hosts,
                speed,
                seed,
                progress: !g.no_progress && std::io::stderr().is_terminal(),
                faults,
            };
            let report = demo::run(&opts, &mut out).await?;
            out.flush()?;
            return Ok(verdict(report.plan_status == PlanStatus::Completed));
        }
        Command::Sim(a) => {
            init_logs("warn");
            sim_cmd::run(&a, g.json, &mut out).await?;
            return Ok(exit::OK);
        }
        Command::Compliance {
            catalog,
            host: Some(host),
            kind,
            verdicts,
            ..
        } => {
            init_logs("warn");
            // One unregistered BMC: the login comes from --password-env.
            let Some(var) = &g.password_env else {
                return Err(usage("--host needs --password-env VAR (and --user)"));
            };
            let password = std::env::var(var).map_err(|_| {
                usage(format!(
                    "environment variable {var} (--password-env) is not set"
                ))
            })?;
            let tls = match (&g.ca_file, &g.pin_sha256, g.insecure) {
                (Some(f), _, _) => TlsMode::CaFile(f.clone()),
                (None, Some(p), _) => TlsMode::PinnedSha256(p.clone()),
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
                credential: Credential::new(g.user.clone(), password),
                tls,
                allow_downgrade: verdicts.allow_downgrade,
                force: verdicts.force,
            };
            let report = compliance::run(&args).await?;
            if g.json {
                serde_json::to_writer_pretty(&mut out, &report)?;
                writeln!(out)?;
            } else {
                write!(
                    out,
                    "{}",
                    firmflow_catalog::render_table(std::slice::from_ref(&report))
                )?;
            }
            out.flush()?;
            return Ok(compliance::exit_code(&report));
        }
        _ => {}
    }
    init_logs(if quiet { "error" } else { "warn" });
    let ctx = Ctx::open(&g).await?;
    let r = fleet_command(&ctx, cli.command, &mut out, &mut err).await;
    out.flush()?;
    ctx.close().await;
    r
}

async fn fleet_command(
    ctx: &Ctx,
    command: Command,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<u8> {
    Ok(match command {
        Command::Hosts(h) => {
            match h {
                HostsCmd::Import { file, check } => {
                    hosts_cmd::import(ctx, &file, check, out).await?
                }
                HostsCmd::List { filter } => hosts_cmd::list(ctx, &filter, out).await?,
                HostsCmd::Show { host } => hosts_cmd::show(ctx, &host, out).await?,
                HostsCmd::Remove { hosts } => hosts_cmd::remove(ctx, &hosts, out).await?,
            }
            exit::OK
        }
        Command::Inventory { sel } => verdict(inventory::inventory(ctx, &sel, out).await?),
        Command::Compliance {
            catalog,
            sel,
            verdicts,
            ..
        } => inventory::compliance(ctx, &catalog, &sel, &verdicts, out).await?,
        Command::Plan(p) => match p {
            PlanCmd::Create { file } => {
                plans::cmd_create(ctx, &file, out).await?;
                exit::OK
            }
            PlanCmd::Validate { file } => {
                plans::cmd_validate(ctx, &file, out).await?;
                exit::OK
            }
            PlanCmd::DryRun { plan, parallel } => {
                verdict(plans::cmd_dry_run(ctx, &plan, parallel, out).await?)
            }
            PlanCmd::Approve { plan } => {
                plans::cmd_move(ctx, &plan, "approve", out).await?;
                exit::OK
            }
            PlanCmd::Pause { plan } => {
                plans::cmd_move(ctx, &plan, "pause", out).await?;
                exit::OK
            }
            PlanCmd::Cancel { plan } => {
                plans::cmd_move(ctx, &plan, "cancel", out).await?;
                exit::OK
            }
            PlanCmd::Start { plan, detach } => {
                verdict(plans::cmd_start(ctx, &plan, false, detach, out, err).await?)
            }
            PlanCmd::Resume { plan, detach } => {
                verdict(plans::cmd_start(ctx, &plan, true, detach, out, err).await?)
            }
            PlanCmd::Status { plan, watch } => {
                verdict(plans::cmd_status(ctx, &plan, watch, out, err).await?)
            }
            PlanCmd::List => {
                plans::cmd_list(ctx, out).await?;
                exit::OK
            }
        },
        Command::Events {
            plan,
            host,
            limit,
            follow,
        } => {
            events::cmd_events(ctx, plan.as_deref(), host.as_deref(), limit, follow, out).await?;
            exit::OK
        }
        Command::Run { plan, hosts, yes } => {
            verdict(plans::cmd_run(ctx, &plan, hosts.as_deref(), yes, out, err).await?)
        }
        Command::Sim(_) | Command::Demo { .. } => exit::OK,
    })
}
