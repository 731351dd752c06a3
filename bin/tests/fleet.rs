//! The fleet commands as an operator runs them: the real `firmflow` binary
//! as a child process against a simulated fleet (in this process, with the
//! lab folder `firmflow sim` writes), with PostgreSQL in a database of its
//! own per test, or the embedded store. Checked on the simulator's own
//! counters: every component flashed exactly once, also across a SIGKILL.

use firmflow_cli::sim_cmd::{Lab, write_lab};
use firmflow_sim::{Flavor, Fleet};
use sqlx::Executor as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A 10-minute Dell install takes 0.15 s.
const SPEED: f64 = 4000.0;

struct World {
    fleet: Fleet,
    lab: Lab,
    _dir: tempfile::TempDir,
}

async fn world(hosts: usize, speed: f64) -> World {
    let fleet = Fleet::builder()
        .hosts(hosts)
        .flavor(Flavor::Idrac9)
        .speed(speed)
        .seed(11)
        .start()
        .await
        .expect("fleet");
    let dir = tempfile::tempdir().expect("dir");
    let lab = write_lab(&fleet, &dir.path().join("lab"), 2, "root", "calvin").expect("lab");
    // Short leases: a killed run is taken over within seconds.
    let mut cfg = std::fs::read_to_string(&lab.config).expect("config");
    cfg.push_str("\n[executor]\nlease_secs = 3\n");
    std::fs::write(&lab.config, cfg).expect("config");
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
            .env("NO_COLOR", "1");
        if let Some(u) = db {
            c.env("FIRMFLOW_DATABASE_URL", u);
        }
        c
    }

    async fn run(&self, db: Option<&str>, args: &[&str]) -> Out {
        let mut c = self.cmd(db, args);
        let o = tokio::task::spawn_blocking(move || c.output().expect("run firmflow"))
            .await
            .expect("join");
        Out::from(o)
    }

    /// Flashes per (host, component) from the simulator's records.
    fn flashes(&self) -> Vec<(String, String, usize)> {
        let mut v = Vec::new();
        for h in self.fleet.hosts() {
            for cid in ["159", "25227"] {
                v.push((
                    h.name.clone(),
                    cid.into(),
                    self.fleet.install_count(&h.name, cid),
                ));
            }
        }
        v
    }

    fn total_flashes(&self) -> usize {
        self.flashes().iter().map(|f| f.2).sum()
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
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
    async fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ff_cli_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        admin(format!("CREATE DATABASE {name}")).await;
        Self { name }
    }
    fn url(&self) -> String {
        let mut u = url_parse(&admin_url());
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

fn url_parse(s: &str) -> url::Url {
    url::Url::parse(s).expect("FIRMFLOW_TEST_DATABASE_URL")
}

fn file(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walk_through_on_postgres_updates_every_host_once() {
    let w = world(6, SPEED).await;
    let db = Db::new("walk").await;
    let url = db.url();
    let u = Some(url.as_str());
    let hosts = file(&w.lab.hosts_csv);
    let plan = file(&w.lab.plan);

    let o = w.run(u, &["hosts", "import", &hosts]).await;
    assert_eq!(o.code, 0, "{o}");
    assert!(o.stdout.contains("6 added"), "{o}");
    let o = w
        .run(u, &["hosts", "list", "--filter", "cluster=domain-c8"])
        .await;
    assert_eq!(o.stdout.matches(".lab").count(), 3, "{o}");

    let o = w.run(u, &["inventory"]).await;
    assert_eq!(o.code, 0, "{o}");
    assert!(
        o.stdout.contains("6 of 6 BMCs read; inventory stored"),
        "{o}"
    );
    let o = w.run(u, &["hosts", "show", "esx01.lab"]).await;
    assert!(
        o.stdout.contains("BIOS"),
        "the stored inventory is shown: {o}"
    );

    let o = w
        .run(
            u,
            &["compliance", "--catalog", &w.lab.catalog_url, "--json"],
        )
        .await;
    // Exit 4: every BMC read, updates pending.
    assert_eq!(o.code, 4, "{o}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["summary"]["hosts"], 6, "{v}");
    assert_eq!(v["summary"]["compliant"], 0, "{v}");
    assert_eq!(v["summary"]["upgrades"], 12, "{v}");

    let o = w.run(u, &["plan", "validate", &plan]).await;
    assert_eq!(o.code, 0, "{o}");
    let o = w.run(u, &["plan", "create", &plan]).await;
    assert_eq!(o.code, 0, "{o}");
    let id = o
        .stdout
        .split_whitespace()
        .nth(2)
        .expect("plan id")
        .to_string();
    // Creating the same file again finds the same plan.
    let o = w.run(u, &["plan", "create", &plan]).await;
    assert!(o.stdout.contains("already exists"), "{o}");

    let o = w.run(u, &["plan", "dry-run", &id]).await;
    assert_eq!(o.code, 0, "{o}");
    assert!(o.stdout.contains("wave 1"), "{o}");
    assert!(o.stdout.contains("nothing was changed"), "{o}");
    assert_eq!(w.total_flashes(), 0, "a dry run flashes nothing");

    // The approval gate: refused (exit 3) until approved.
    let o = w.run(u, &["plan", "start", &id]).await;
    assert_eq!(o.code, 3, "{o}");
    assert!(o.stderr.contains("requires approval"), "{o}");
    let o = w.run(u, &["plan", "approve", &id]).await;
    assert_eq!(o.code, 0, "{o}");
    let o = w.run(u, &["plan", "start", &id]).await;
    assert_eq!(o.code, 0, "{o}");
    assert!(o.stdout.contains("6 completed, 0 failed, 0 need"), "{o}");

    let o = w.run(u, &["plan", "status", &id, "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["plan"]["status"], "completed", "{v}");
    let o = w.run(u, &["plan", "status", &id, "--watch"]).await;
    assert_eq!(o.code, 0, "a finished plan: --watch returns at once: {o}");
    let o = w.run(u, &["plan", "list"]).await;
    assert!(o.stdout.contains("completed"), "{o}");
    let o = w.run(u, &["events", "--plan", &id]).await;
    assert!(o.stdout.contains("plan_status_changed"), "{o}");
    assert!(o.stdout.contains("maintenance_mode"), "{o}");

    for (h, c, n) in w.flashes() {
        assert_eq!(n, 1, "{h} component {c} flashed {n} times");
    }
    // A host of a finished plan may go; an unknown one is a usage error.
    let o = w.run(u, &["hosts", "remove", "esx06.lab"]).await;
    assert_eq!(o.code, 0, "{o}");
    let o = w.run(u, &["hosts", "show", "esx06.lab"]).await;
    assert_eq!(o.code, 2, "{o}");
    db.drop_db().await;
    w.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_killed_with_sigkill_resumes_without_flashing_twice() {
    // Slower, so the kill lands mid-campaign.
    let w = world(6, 1000.0).await;
    let db = Db::new("kill").await;
    let url = db.url();
    let hosts = file(&w.lab.hosts_csv);
    let plan = file(&w.lab.plan);
    let args = ["run", plan.as_str(), "--hosts", hosts.as_str(), "--yes"];
    let mut child = w
        .cmd(Some(&url), &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let began = Instant::now();
    while w.total_flashes() < 2 {
        assert!(began.elapsed() < Duration::from_secs(60), "no flash came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on unix
    let _ = child.wait();
    let at_kill = w.total_flashes();
    assert!(
        at_kill < 12,
        "killed mid-campaign ({at_kill} of 12 flashes)"
    );

    let o = w.run(Some(&url), &args).await;
    assert_eq!(o.code, 0, "{o}");
    assert!(o.stderr.contains("continuing it"), "{o}");
    assert!(o.stdout.contains("6 completed, 0 failed, 0 need"), "{o}");
    for (h, c, n) in w.flashes() {
        assert_eq!(n, 1, "{h} component {c} flashed {n} times across the kill");
    }
    // And once more: the plan is over, nothing happens, exit 0.
    let o = w.run(Some(&url), &args).await;
    assert_eq!(o.code, 0, "{o}");
    assert!(o.stderr.contains("already ended"), "{o}");
    assert_eq!(w.total_flashes(), 12);
    db.drop_db().await;
    w.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_run_needs_yes_and_then_updates_the_fleet() {
    let w = world(4, SPEED).await;
    let hosts = file(&w.lab.hosts_csv);
    let plan = file(&w.lab.plan);
    let o = w.run(None, &["run", &plan, "--hosts", &hosts]).await;
    assert_eq!(o.code, 3, "{o}");
    assert!(o.stderr.contains("--yes"), "{o}");
    let o = w
        .run(None, &["run", &plan, "--hosts", &hosts, "--yes"])
        .await;
    assert_eq!(o.code, 0, "{o}");
    assert!(o.stdout.contains("4 completed"), "{o}");
    assert_eq!(w.total_flashes(), 8);
    // State is not kept without a database, and the commands say so.
    let o = w.run(None, &["hosts", "import", &hosts]).await;
    assert_eq!(o.code, 2, "{o}");
    assert!(o.stderr.contains("--database-url"), "{o}");
    let o = w.run(None, &["plan", "list"]).await;
    assert!(o.stdout.contains("no plans"), "{o}");
    w.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_hosts_rows_are_all_named_and_nothing_is_imported() {
    let w = world(1, SPEED).await;
    let db = Db::new("badcsv").await;
    let url = db.url();
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("hosts.csv");
    std::fs::write(
        &bad,
        "fqdn,mgmt_ip,mgmt_kind,cluster_moid,host_moid,credential\n\
         ok.lab,10.0.0.1,idrac,,,env:IDRAC\n\
         ,10.0.0.2,idrac,,,\n\
         c.lab,10.0.0.3,ilo,domain-c7,,\n\
         d.lab,10.0.0.4,,,,hunter2\n",
    )
    .expect("write");
    let o = w.run(Some(&url), &["hosts", "import", &file(&bad)]).await;
    assert_eq!(o.code, 2, "{o}");
    for want in [
        "hosts.csv:3: fqdn: missing",
        "hosts.csv:4: mgmt_kind: unknown kind \"ilo\"",
        "hosts.csv:4: host_moid",
        "hosts.csv:5: credential: not a credential reference",
        "nothing imported",
    ] {
        assert!(o.stderr.contains(want), "{want:?} missing:\n{o}");
    }
    assert!(
        !o.stderr.contains("hunter2") && !o.stdout.contains("hunter2"),
        "{o}"
    );
    assert!(!o.stderr.contains("panicked"), "{o}");
    let o = w.run(Some(&url), &["hosts", "list"]).await;
    assert!(o.stdout.contains("no hosts"), "nothing half-imported: {o}");
    db.drop_db().await;
    w.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plan_file_names_every_line() {
    let w = world(2, SPEED).await;
    let dir = tempfile::tempdir().expect("dir");
    let p = dir.path().join("plan.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"bad\"\ncatalog = \"{}\"\n\n[targets]\nhosts = [\"esx01.lab\", \"esx77.lab\"]\n\n[policy]\nmaxConcurrent = 0\nmax_resumes = 2\n",
            w.lab.catalog_url
        ),
    )
    .expect("write");
    let hosts = file(&w.lab.hosts_csv);
    let o = w
        .run(None, &["run", &file(&p), "--hosts", &hosts, "--yes"])
        .await;
    assert_eq!(o.code, 2, "{o}");
    for want in [
        "plan.toml:5: targets.hosts[1]: \"esx77.lab\" matches no registered host",
        "plan.toml:8: policy.maxConcurrent: must be at least 1",
        "plan.toml:9: policy.max_resumes: unknown policy key; did you mean maxResumes?",
    ] {
        assert!(o.stderr.contains(want), "{want:?} missing:\n{o}");
    }
    // A syntax error names its line too.
    std::fs::write(&p, "name = \"x\"\n[targets\n").expect("write");
    let o = w.run(None, &["plan", "validate", &file(&p)]).await;
    assert_eq!(o.code, 2, "{o}");
    assert!(o.stderr.contains("plan.toml:2: syntax"), "{o}");
    assert_eq!(w.total_flashes(), 0);
    w.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_clear_error_and_never_printed() {
    let w = world(2, SPEED).await;
    let hosts = file(&w.lab.hosts_csv);
    let secret = "Wr0ng-Secret-9931";
    let mut c = w.cmd(
        None,
        &[
            "inventory",
            "--hosts-file",
            &hosts,
            "--credential",
            "env:FFTEST_IDRAC",
        ],
    );
    c.env("FFTEST_IDRAC_USERNAME", "root")
        .env("FFTEST_IDRAC_PASSWORD", secret);
    let o: Out = tokio::task::spawn_blocking(move || c.output().expect("run"))
        .await
        .expect("join")
        .into();
    assert_eq!(o.code, 1, "{o}");
    assert!(o.stdout.contains("0 of 2 BMCs read"), "{o}");
    assert!(
        o.stdout.to_lowercase().contains("auth") || o.stdout.contains("401"),
        "says the login was refused: {o}"
    );
    assert!(o.stdout.contains("esx01.lab"), "names the host: {o}");
    assert!(
        !o.stdout.contains(secret) && !o.stderr.contains(secret),
        "{o}"
    );
    // --password-env names a variable, never a value; an unset one is exit 2.
    let o = w
        .run(
            None,
            &[
                "inventory",
                "--hosts-file",
                &hosts,
                "--password-env",
                "FFTEST_UNSET_VAR",
            ],
        )
        .await;
    assert_eq!(o.code, 2, "{o}");
    assert!(o.stderr.contains("FFTEST_UNSET_VAR"), "{o}");
    w.fleet.shutdown().await;
}

#[test]
fn help_documents_exit_codes_and_where_state_lives() {
    let o: Out = Command::new(env!("CARGO_BIN_EXE_firmflow"))
        .arg("--help")
        .output()
        .expect("run")
        .into();
    assert_eq!(o.code, 0, "{o}");
    for want in [
        "0  done",
        "1  a failure on some host",
        "2  usage or configuration error",
        "3  refused by policy",
        "STATE IS LOST",
    ] {
        assert!(o.stdout.contains(want), "{want:?} missing:\n{o}");
    }
    let o: Out = Command::new(env!("CARGO_BIN_EXE_firmflow"))
        .args(["plan", "frobnicate"])
        .output()
        .expect("run")
        .into();
    assert_eq!(o.code, 2, "{o}");
}

#[test]
fn sim_command_serves_the_lab_until_stopped() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("lab");
    let mut child = Command::new(env!("CARGO_BIN_EXE_firmflow"))
        .args(["sim", "--hosts", "2", "--speed", "4000", "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut seen = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("ready") {
            break;
        }
    }
    assert!(seen.contains("serving 2 simulated iDRACs"), "{seen}");
    for f in [
        "hosts.csv",
        "firmflow.toml",
        "plan.toml",
        "fleet-ca.pem",
        "idrac.toml",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out.join("idrac.toml"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the credentials file is private");
    }
    let o: Out = Command::new(env!("CARGO_BIN_EXE_firmflow"))
        .args(["inventory", "--hosts-file"])
        .arg(out.join("hosts.csv"))
        .env("FIRMFLOW_CONFIG", out.join("firmflow.toml"))
        .env_remove("FIRMFLOW_DATABASE_URL")
        .output()
        .expect("run")
        .into();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(o.code, 0, "{o}");
    assert!(o.stdout.contains("2 of 2 BMCs read"), "{o}");
    assert!(!o.stdout.contains("calvin"), "{o}");
}
