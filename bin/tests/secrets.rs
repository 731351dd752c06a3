//! No secret in any output (issue 13, "Secrets"): the demo and the CLI run
//! as child processes against the simulated iDRAC fleet with a known
//! password and every log line at debug level (`RUST_LOG=debug`, all
//! crates), and every byte they print — logs, events, `--json` documents,
//! error messages — is searched for the password, for the `user:password`
//! pair in Base64 (a Basic auth header) and for the password percent-encoded.
//! The count must be 0. Also the wrong-password path: a refused login's
//! error names the host but not the password that was tried.
//!
//! This lives in the `firmflow-bin` package (not `firmflow-tests`) because
//! only a package's own tests get `CARGO_BIN_EXE_firmflow`.

use base64::Engine as _;
use firmflow_cli::sim_cmd::{Lab, write_lab};
use firmflow_sim::{Flavor, Fleet};
use sqlx::Executor as _;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A 10-minute Dell install takes 0.15 s.
const SPEED: f64 = 4000.0;
const USER: &str = "fleetadmin";
/// The fleet's password: unusual enough that any hit is a leak.
const PASSWORD: &str = "Kn0wn-Pa55w0rd_q7Zx";
/// A password the BMCs refuse, handed to the CLI for the error path.
const WRONG: &str = "Wr0ng-Pa55w0rd_k3Vy";

/// Every spelling of `password` a leak could take.
fn spellings(user: &str, password: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        password.to_string(),
        b64.encode(format!("{user}:{password}")),
        b64.encode(password),
        url::form_urlencoded::byte_serialize(password.as_bytes()).collect(),
    ]
}

/// Everything a command printed, kept for one search at the end.
#[derive(Default)]
struct Transcript {
    text: String,
    commands: usize,
}

impl Transcript {
    fn add(&mut self, what: &str, o: &Output) -> i32 {
        self.commands += 1;
        self.text.push_str(&format!(
            "\n### {what}: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
        o.status.code().unwrap_or(-1)
    }

    /// Lines of the transcript holding any spelling of `password`.
    fn leaks(&self, user: &str, password: &str) -> Vec<String> {
        let s = spellings(user, password);
        self.text
            .lines()
            .filter(|l| s.iter().any(|w| l.contains(w.as_str())))
            .map(str::to_owned)
            .collect()
    }
}

struct World {
    fleet: Fleet,
    lab: Lab,
    _dir: tempfile::TempDir,
}

async fn world(hosts: usize) -> World {
    let fleet = Fleet::builder()
        .hosts(hosts)
        .flavor(Flavor::Idrac9)
        .speed(SPEED)
        .seed(13)
        .username(USER)
        .password(PASSWORD)
        .start()
        .await
        .expect("fleet");
    let dir = tempfile::tempdir().expect("dir");
    let lab = write_lab(&fleet, &dir.path().join("lab"), 2, USER, PASSWORD).expect("lab");
    World {
        fleet,
        lab,
        _dir: dir,
    }
}

impl World {
    fn cmd(&self, db: Option<&str>, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_firmflow"));
        c.args(args)
            .env_remove("FIRMFLOW_DATABASE_URL")
            .env_remove("FIRMFLOW_CREDENTIAL")
            .env_remove("FIRMFLOW_TIMING")
            .env("FIRMFLOW_CONFIG", &self.lab.config)
            .env("FIRMFLOW_OPERATOR", "tester")
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1");
        if let Some(u) = db {
            c.env("FIRMFLOW_DATABASE_URL", u);
        }
        c
    }
}

async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("run firmflow"))
        .await
        .expect("join")
}

fn file(p: &Path) -> String {
    p.display().to_string()
}

/// A database of the test's own on 127.0.0.1:5432, dropped at the end.
struct Db {
    name: String,
}

fn admin_url() -> String {
    std::env::var("FIRMFLOW_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn admin(sql: String) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url())
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (scripts/test.sh starts it)");
    pool.execute(sqlx::AssertSqlSafe(sql))
        .await
        .expect("admin sql");
    pool.close().await;
}

impl Db {
    async fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ff_secrets_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        admin(format!("CREATE DATABASE {name}")).await;
        Self { name }
    }
    fn url(&self) -> String {
        let mut u = url::Url::parse(&admin_url()).expect("FIRMFLOW_TEST_DATABASE_URL");
        u.set_path(&format!("/{}", self.name));
        u.to_string()
    }
    async fn drop_db(self) {
        admin(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_never_prints_the_bmc_password() {
    let w = world(4).await;
    let db = Db::new().await;
    let url = db.url();
    let u = Some(url.as_str());
    let hosts = file(&w.lab.hosts_csv);
    let plan = file(&w.lab.plan);
    let mut t = Transcript::default();

    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("hosts import", vec!["hosts", "import", &hosts]),
        ("hosts list", vec!["hosts", "list", "--json"]),
        ("inventory", vec!["inventory"]),
        ("hosts show", vec!["hosts", "show", "esx01.lab", "--json"]),
        (
            "compliance",
            vec!["compliance", "--catalog", &w.lab.catalog_url, "--json"],
        ),
        ("plan validate", vec!["plan", "validate", &plan]),
    ];
    for (what, args) in &steps {
        let code = t.add(what, &output(w.cmd(u, args)).await);
        // compliance exits 4 when updates are pending (the lab's are).
        let want = if *what == "compliance" { 4 } else { 0 };
        assert_eq!(code, want, "{what}:{}", t.text);
    }
    let o = output(w.cmd(u, &["plan", "create", &plan])).await;
    let id = String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .nth(2)
        .expect("plan id")
        .to_string();
    assert_eq!(t.add("plan create", &o), 0, "{}", t.text);
    for (what, args) in [
        ("plan approve", vec!["plan", "approve", &id]),
        ("plan start", vec!["plan", "start", &id]),
        ("plan status", vec!["plan", "status", &id, "--json"]),
        ("events", vec!["events", "--plan", &id]),
        ("events json", vec!["events", "--plan", &id, "--json"]),
    ] {
        let code = t.add(what, &output(w.cmd(u, &args)).await);
        assert_eq!(code, 0, "{what}:{}", t.text);
    }
    assert!(
        t.text.contains("4 completed, 0 failed"),
        "the campaign ran:{}",
        t.text
    );
    // The embedded store: a whole `run`.
    let o = output(w.cmd(None, &["run", &plan, "--hosts", &hosts, "--yes"])).await;
    assert_eq!(t.add("run (embedded)", &o), 0, "{}", t.text);

    // The refused login: a wrong password from the environment.
    let mut c = w.cmd(
        None,
        &[
            "inventory",
            "--hosts-file",
            &hosts,
            "--credential",
            "env:FFSECRET_IDRAC",
        ],
    );
    c.env("FFSECRET_IDRAC_USERNAME", USER)
        .env("FFSECRET_IDRAC_PASSWORD", WRONG);
    let code = t.add("inventory (wrong password)", &output(c).await);
    assert_eq!(code, 1, "a refused login fails the command:{}", t.text);

    // Debug logs were on: the search covered something.
    assert!(
        t.text.contains("DEBUG"),
        "RUST_LOG=debug gave no debug line:{}",
        t.text
    );
    let leaks = t.leaks(USER, PASSWORD);
    assert!(leaks.is_empty(), "the password was printed: {leaks:#?}");
    let leaks = t.leaks(USER, WRONG);
    assert!(
        leaks.is_empty(),
        "the wrong password was printed: {leaks:#?}"
    );
    assert_eq!(t.commands, 14);
    db.drop_db().await;
    w.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_never_prints_the_bmc_password() {
    // The demo's fleet has the simulator's default login.
    let mut t = Transcript::default();
    let mut c = Command::new(env!("CARGO_BIN_EXE_firmflow"));
    c.args([
        "demo",
        "--hosts",
        "4",
        "--speed",
        "4000",
        "--faults",
        "5xx_burst:host=idrac-002:n=2",
    ])
    .env("RUST_LOG", "debug")
    .env("NO_COLOR", "1");
    let code = t.add("demo", &output(c).await);
    assert_eq!(code, 0, "{}", t.text);
    assert!(t.text.contains("DEBUG"), "no debug line:{}", t.text);
    let leaks = t.leaks("root", "calvin");
    assert!(
        leaks.is_empty(),
        "the demo printed the password: {leaks:#?}"
    );
}

#[test]
fn the_search_finds_every_spelling() {
    for leak in spellings(USER, PASSWORD) {
        let t = Transcript {
            text: format!("DEBUG header: Basic {leak} sent\nclean line"),
            commands: 1,
        };
        assert_eq!(t.leaks(USER, PASSWORD).len(), 1, "{leak}");
    }
    let clean = Transcript {
        text: "DEBUG login as fleetadmin".into(),
        commands: 1,
    };
    assert!(clean.leaks(USER, PASSWORD).is_empty());
}
