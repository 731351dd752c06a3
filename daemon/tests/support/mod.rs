//! What the daemon's process tests share: a simulated fleet over HTTPS in
//! this process (with the lab folder the CLI's `firmflow sim` writes), a
//! `firmflowd` child process configured for it, an HTTP client with the
//! test's tokens, an SSE reader, and a PostgreSQL database per test.
#![allow(dead_code, unreachable_pub)]

use firmflow_cli::sim_cmd::{Lab, write_lab};
use firmflow_sim::{Flavor, Fleet};
use firmflowd::config::hash_token;
use serde_json::{Value, json};
use sqlx::Executor as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// A 10-minute Dell install takes 0.15 s.
pub const SPEED: f64 = 4000.0;

/// Tokens of the test daemon: name, token, role, datacenter.
pub const TOKENS: &[(&str, &str, &str, Option<&str>)] = &[
    ("root", "admin-token", "admin", None),
    ("olga", "operator-token", "operator", None),
    ("vic", "viewer-token", "viewer", None),
    ("lab-ops", "lab-token", "operator", Some("lab")),
    ("far-ops", "far-token", "operator", Some("faraway")),
];

/// The fleet and its lab folder.
pub struct World {
    pub fleet: Fleet,
    pub lab: Lab,
    pub dir: tempfile::TempDir,
}

pub async fn world(hosts: usize) -> World {
    world_with(hosts, 0, SPEED).await
}

/// A fleet of `hosts` at `speed`, spread over `clusters` vSphere clusters
/// in the lab's hosts file (0: standalone hosts `srvNN.lab`; else
/// `esxNN.lab` in `domain-c7`, `domain-c8`, …).
pub async fn world_with(hosts: usize, clusters: usize, speed: f64) -> World {
    world_with_login(hosts, clusters, speed, "root", "calvin").await
}

/// As [`world_with`], with the fleet's own BMC account (also written to
/// the lab's credentials file, entry `sim`).
pub async fn world_with_login(
    hosts: usize,
    clusters: usize,
    speed: f64,
    username: &str,
    password: &str,
) -> World {
    let fleet = Fleet::builder()
        .hosts(hosts)
        .flavor(Flavor::Idrac9)
        .speed(speed)
        .seed(11)
        .username(username)
        .password(password)
        .start()
        .await
        .expect("fleet");
    let dir = tempfile::tempdir().expect("dir");
    let lab = write_lab(
        &fleet,
        &dir.path().join("lab"),
        clusters,
        username,
        password,
    )
    .expect("lab");
    World { fleet, lab, dir }
}

impl World {
    /// The daemon's config for this lab; `store` is a `[store]` body.
    pub fn config(&self, store: &str) -> PathBuf {
        let mut tokens = String::new();
        for (name, token, role, dc) in TOKENS {
            tokens.push_str(&format!(
                "\n[[api.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nrole = \"{role}\"\n",
                hash_token(token)
            ));
            if let Some(d) = dc {
                tokens.push_str(&format!("datacenter = \"{d}\"\n"));
            }
        }
        let text = format!(
            "[store]\n{store}\n\n\
             [executor]\ntiming = \"sim\"\nlease_ttl_secs = 3\nheartbeat_secs = 1\ngrace_secs = 30\n\n\
             [bmc]\ncredential = \"file:{lab}/idrac.toml#sim\"\n[bmc.tls]\nca_file = \"{lab}/fleet-ca.pem\"\n\n\
             [artifacts]\ncatalog = \"{catalog}\"\n\n\
             [api]\nlisten = \"127.0.0.1:0\"\n{tokens}",
            lab = self.lab.dir.display(),
            catalog = self.lab.catalog_url,
        );
        let p = self.dir.path().join("firmflowd.toml");
        std::fs::write(&p, text).expect("config");
        p
    }

    /// The lab's plan as the API's JSON body.
    pub fn plan_body(&self, name: &str) -> Value {
        json!({
            "name": name,
            "catalog": self.lab.catalog_url,
            "approval_required": true,
            "targets": {"all": true},
            "policy": {
                "maxConcurrent": 4,
                "minHostsOnline": 0,
                "requireMaintenanceMode": false,
                "allowDowntime": true,
                "rollbackOnFailure": true,
                "preflightChecks": ["connectivity", "compatibility"],
                "postUpdateValidation": ["firmware_version", "system_health"],
                "retry": {"maxAttempts": 3, "initialBackoffSecs": 1, "maxBackoffSecs": 4, "jitter": 0.0}
            }
        })
    }

    /// Installs per (host, component) of the two components the catalog updates.
    pub fn flashes(&self) -> Vec<(String, String, usize)> {
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
}

/// A running `firmflowd`.
pub struct Daemon {
    pub child: Child,
    pub base: String,
    pub logs: mpsc::Receiver<String>,
    /// The executor's worker id (the lease owner of its runs).
    pub worker: String,
}

/// Starts `firmflowd --config config` and waits for its "ready" log line.
pub fn start(config: &Path) -> Daemon {
    start_logging(config, "info", false)
}

/// Starts `firmflowd` with the log filter `filter` (`FIRMFLOWD_LOG`); with
/// `capture_stderr` its standard error joins the log lines in
/// [`Daemon::logs`] (otherwise it is the test's own).
pub fn start_logging(config: &Path, filter: &str, capture_stderr: bool) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_firmflowd"))
        .arg("--config")
        .arg(config)
        .env_remove("FIRMFLOWD_CONFIG")
        .env("FIRMFLOWD_LOG", filter)
        .stdout(Stdio::piped())
        .stderr(if capture_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .spawn()
        .expect("spawn firmflowd");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    forward_lines(out, tx.clone());
    if let Some(err) = child.stderr.take() {
        forward_lines(err, tx);
    }
    let (base, worker) = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("firmflowd logs 'firmflowd ready'");
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["message"] == "firmflowd ready" {
            break (
                format!("http://{}", v["listen"].as_str().expect("listen")),
                v["worker"].as_str().unwrap_or_default().to_string(),
            );
        }
    };
    Daemon {
        child,
        base,
        logs: rx,
        worker,
    }
}

/// Sends every line `from` prints to `to`, from a thread of its own.
fn forward_lines(from: impl std::io::Read + Send + 'static, to: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if to.send(line).is_err() {
                break;
            }
        }
    });
}

impl Daemon {
    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> i32 {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        let status = self.child.wait().expect("wait");
        status.code().unwrap_or(-1)
    }

    /// Sends SIGTERM, waits for the exit code and returns it with every
    /// line the daemon printed that the test has not read yet.
    pub fn terminate_collecting_logs(mut self) -> (i32, Vec<String>) {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
        let code = self.child.wait().expect("wait").code().unwrap_or(-1);
        // The forwarding threads end at EOF and drop their senders.
        let mut lines = Vec::new();
        while let Ok(l) = self.logs.recv_timeout(Duration::from_secs(10)) {
            lines.push(l);
        }
        (code, lines)
    }

    /// SIGKILL: no shutdown, no lease released, no last heartbeat; the
    /// process is reaped before this returns.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL firmflowd");
        let _ = self.child.wait();
    }

    pub fn client(&self, token: Option<&str>) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: self.base.clone(),
            token: token.map(str::to_string),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An API client holding one token.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Api {
    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(m, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }
    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::GET, path)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::DELETE, path)).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        send(self.req(reqwest::Method::POST, path).json(body)).await
    }
    pub async fn post_raw(&self, path: &str, content_type: &str, body: String) -> (u16, Value) {
        send(
            self.req(reqwest::Method::POST, path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }
    /// Opens the live stream (after `last` when given).
    pub async fn stream(&self, query: &str, last: Option<i64>) -> Sse {
        let mut r = self.req(
            reqwest::Method::GET,
            &format!("/api/v1/events/stream{query}"),
        );
        if let Some(l) = last {
            r = r.header("Last-Event-ID", l.to_string());
        }
        let resp = r.send().await.expect("stream");
        assert_eq!(resp.status(), 200, "stream opens");
        Sse {
            resp,
            buf: String::new(),
        }
    }
}

async fn send(r: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.expect("request");
    let code = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A Server-Sent Events reader.
pub struct Sse {
    resp: reqwest::Response,
    buf: String,
}

/// One SSE message: id (the seq) and the event JSON.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: i64,
    pub data: Value,
}

impl Sse {
    /// The next event (keep-alive comments skipped); `None` at the end.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if let Some(id) = id {
                    return Some(SseEvent {
                        id,
                        data: serde_json::from_str(&data).expect("event JSON"),
                    });
                }
                continue;
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                _ => return None,
            }
        }
    }

    /// Reads until the plan's status becomes final; every event read.
    pub async fn until_plan_final(&mut self, timeout: Duration) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let fut = async {
            while let Some(e) = self.next().await {
                let fin = e.data["event_type"] == "plan_status_changed"
                    && matches!(
                        e.data["details"]["to"].as_str(),
                        Some("completed" | "failed" | "cancelled")
                    );
                out.push(e);
                if fin {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, fut).await;
        out
    }
}

/// A database of the test's own on 127.0.0.1:5432, dropped at the end.
pub struct Db {
    pub name: String,
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
    pub async fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ff_daemon_{tag}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        admin(format!("CREATE DATABASE {name}")).await;
        Self { name }
    }
    pub fn url(&self) -> String {
        let mut u = url::Url::parse(&admin_url()).expect("database URL");
        u.set_path(&format!("/{}", self.name));
        u.to_string()
    }
    pub async fn drop_db(self) {
        admin(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await;
    }
}
