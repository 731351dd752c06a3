//! `firmflowd`: the firmflow daemon.
//!
//! ```text
//! firmflowd [--config FILE] [--listen ADDR]      run (embedded default without --config)
//! firmflowd check-config [--config FILE]         list every problem, exit 2 if any
//! firmflowd hash-token < token                   the sha256 for [[api.tokens]]
//! firmflowd openapi                              print the OpenAPI document
//! ```

/// mimalloc instead of glibc's malloc: a campaign's many small, short-lived
/// allocations (JSON trees, HTTP and TLS buffers) from many threads contend
/// on glibc's arenas; fleet_10k spent half its CPU there (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use firmflowd::config;
use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "firmflowd",
    version,
    about = "The firmflow daemon: HTTP API, live events, metrics"
)]
struct Cli {
    /// Configuration file (TOML). Without it: the embedded default.
    #[arg(long, global = true, env = "FIRMFLOWD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen address, whatever the config says.
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the daemon (the default).
    Run,
    /// Validates the configuration: every problem with its key path.
    CheckConfig,
    /// Reads a token on stdin and prints its SHA-256 for `[[api.tokens]] sha256`.
    HashToken,
    /// Prints the OpenAPI document.
    Openapi,
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIRMFLOWD_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt().with_env_filter(filter);
    if std::io::stdout().is_terminal() {
        b.init();
    } else {
        // Structured logs for journald and log shippers.
        b.json().with_current_span(false).flatten_event(true).init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = config::process_env();
    match cli.command.unwrap_or(Command::Run) {
        Command::HashToken => {
            let mut t = String::new();
            if std::io::stdin().read_to_string(&mut t).is_err() || t.trim().is_empty() {
                eprintln!("firmflowd hash-token: give the token on stdin");
                return ExitCode::from(2);
            }
            println!("{}", config::hash_token(&t));
            ExitCode::SUCCESS
        }
        Command::Openapi => {
            use utoipa::OpenApi as _;
            match firmflowd::api::ApiDoc::openapi().to_pretty_json() {
                Ok(s) => {
                    println!("{s}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("firmflowd openapi: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig => {
            match config::load(cli.config.as_deref(), &env, cli.listen.as_deref()) {
                Ok(c) => {
                    println!(
                        "{}: ok (store {:?}, listen {}, {} token(s))",
                        cli.config
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| "embedded default".into()),
                        c.store.kind,
                        c.api.listen,
                        c.api.tokens.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run => {
            let c = match config::load(cli.config.as_deref(), &env, cli.listen.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            init_logs();
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("firmflowd: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(firmflowd::daemon::run(c, firmflowd::daemon::signal())) {
                Ok(firmflowd::daemon::Exit::Clean) => ExitCode::SUCCESS,
                Ok(firmflowd::daemon::Exit::GraceExceeded) => ExitCode::from(1),
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "firmflowd failed");
                    eprintln!("firmflowd: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
