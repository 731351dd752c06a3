//! The web view in a real browser: headless Chromium driven over WebDriver
//! (chromedriver on a free loopback port, `fantoccini`), against the real
//! `firmflowd` binary and the simulated fleet over HTTPS. An operator signs
//! in, approves and starts a plan (confirming the start), watches host rows
//! change phase live without a reload and the plan reach `completed`; a
//! host whose update job the simulator fails shows its error in its row; a
//! viewer sees no action button; errors read as plain words.
//!
//! Every wait is a bounded poll of a DOM condition, never a fixed sleep.
//! Without chromedriver or chromium the tests fail (CI installs them:
//! `scripts/test.sh`); `CHROMEDRIVER` and `CHROMIUM` override the paths.
//! Screenshots go to `$CARGO_TARGET_TMPDIR/browser-screenshots/`.

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use firmflow_sim::faults::Fault;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const WAIT: Duration = Duration::from_secs(30);
/// The simulator's pace for runs a browser can watch: a 10-minute Dell
/// install takes 1.5 s, so a plan of 5 hosts runs for several seconds.
const WATCHABLE_SPEED: f64 = 400.0;

fn find_exe(name: &str, env: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A chromedriver child process.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chromedriver() -> ChromeDriver {
    let Some(exe) = find_exe("chromedriver", "CHROMEDRIVER") else {
        panic!(
            "chromedriver not found (PATH, /usr/bin, or CHROMEDRIVER): install Debian's \
             `chromium` and `chromium-driver` (scripts/test.sh does). The web view is \
             tested in a real browser; this test does not pass without one."
        );
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(&exe)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
    let driver = ChromeDriver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let ready = match http.get(format!("{}/status", driver.url)).send().await {
            Ok(r) => r
                .json::<Value>()
                .await
                .is_ok_and(|v| v["value"]["ready"] == true),
            Err(_) => false,
        };
        if ready {
            return driver;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer /status"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver: &ChromeDriver) -> Client {
    let Some(chromium) = find_exe("chromium", "CHROMIUM") else {
        panic!("chromium not found (PATH, /usr/bin, or CHROMIUM): scripts/test.sh installs it");
    };
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1400,1000", "--disable-dev-shm-usage"],
        }),
    );
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session from chromedriver")
}

/// Polls `probe` until it gives a value, for at most `timeout`.
async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn js(c: &Client, script: &str, args: Vec<Value>) -> Value {
    c.execute(script, args).await.expect("script runs")
}

/// The text of the first element matching `css`, if any.
async fn text(c: &Client, css: &str) -> Option<String> {
    js(
        c,
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
        vec![json!(css)],
    )
    .await
    .as_str()
    .map(str::to_string)
}

async fn wait_text(c: &Client, css: &str, want: &str) {
    wait_for(&format!("{css} to read {want:?}"), WAIT, async || {
        text(c, css).await.filter(|t| t.contains(want))
    })
    .await;
}

async fn click(c: &Client, css: &str) {
    let el = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} appears: {e}"));
    el.click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// A host row as the page shows it.
#[derive(Debug, Clone)]
struct Row {
    host: String,
    state: String,
    phase: String,
    error: String,
}

async fn rows(c: &Client) -> Vec<Row> {
    let v = js(
        c,
        "return [...document.querySelectorAll('.vt-rows .vt-row')].map(r => [r.dataset.key, \
         r.querySelector('.c-state').textContent, r.querySelector('.c-phase').textContent, \
         r.querySelector('.c-error').textContent]);",
        vec![],
    )
    .await;
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|r| Row {
                    host: r[0].as_str().unwrap_or_default().into(),
                    state: r[1].as_str().unwrap_or_default().into(),
                    phase: r[2].as_str().unwrap_or_default().into(),
                    error: r[3].as_str().unwrap_or_default().into(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn shots_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots");
    std::fs::create_dir_all(&d).expect("screenshot dir");
    d
}

async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.expect("screenshot");
    let p = shots_dir().join(name);
    std::fs::write(&p, png).expect("write screenshot");
    eprintln!("screenshot: {}", p.display());
    p
}

async fn sign_in(c: &Client, base: &str, token: &str, role: &str) {
    c.goto(&format!("{base}/")).await.expect("open the page");
    let field = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#token"))
        .await
        .expect("the sign-in form");
    field.send_keys(token).await.expect("type the token");
    click(c, "#signin").await;
    wait_text(c, "#role", role).await;
}

async fn import(w: &World, d: &Daemon) {
    let csv = std::fs::read_to_string(&w.lab.hosts_csv).expect("hosts.csv");
    let (code, body) = d
        .client(Some("admin-token"))
        .post_raw("/api/v1/hosts/import", "text/csv", csv)
        .await;
    assert_eq!(code, 200, "{body}");
}

async fn create(d: &Daemon, body: &Value) -> String {
    let (code, created) = d
        .client(Some("operator-token"))
        .post("/api/v1/plans", body)
        .await;
    assert_eq!(code, 201, "{created}");
    created["plan"]["id"].as_str().expect("plan id").to_string()
}

/// Starts the plan shown from the page: the start button asks first.
async fn start_from_page(c: &Client) {
    click(c, "#action-start").await;
    wait_for("the confirmation dialog", WAIT, async || {
        js(c, "return document.getElementById('confirm').open;", vec![])
            .await
            .as_bool()
            .filter(|o| *o)
    })
    .await;
    click(c, "#confirm-yes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_watches_a_plan_live_to_completed_and_a_failing_host_shows_its_error() {
    let driver = chromedriver().await;
    let w = world_with(6, 2, WATCHABLE_SPEED).await;
    // esx06.lab's update jobs fail every time: its own plan shows the error.
    let faulty = w.fleet.hosts()[5].name.clone();
    w.fleet.inject(&faulty, Fault::FailJob);
    let d = start(&w.config("kind = \"memory\""));
    import(&w, &d).await;
    let mut body = w.plan_body("rolling BIOS and iDRAC");
    body["targets"] = json!({"all": true, "exclude": ["esx06.lab"]});
    body["policy"]["maxConcurrent"] = json!(2);
    body["policy"]["minHostsOnline"] = json!(1);
    let plan = create(&d, &body).await;

    let c = browser(&driver).await;
    sign_in(&c, &d.base, "operator-token", "operator").await;
    // The list shows the plan; its page opens from it.
    wait_text(&c, &format!("tr[data-plan='{plan}'] .pill"), "draft").await;
    click(&c, &format!("tr[data-plan='{plan}'] a.plan-name")).await;
    wait_text(&c, "#plan-status", "draft").await;
    wait_for("5 host rows", WAIT, async || {
        Some(rows(&c).await).filter(|r| r.len() == 5)
    })
    .await;
    let strips = js(
        &c,
        "return document.querySelectorAll('#clusters .cluster').length;",
        vec![],
    )
    .await;
    assert_eq!(strips, json!(2), "one strip per vSphere cluster");
    click(&c, "#action-approve").await;
    wait_text(&c, "#plan-status", "approved").await;
    // The dry run's waves: 5 hosts, 2 at a time.
    click(&c, "#dry-run").await;
    wait_text(&c, "#waves", "Wave 3").await;
    // A marker that a reload would lose: the page must update in place.
    js(&c, "window.__sameDocument = 42; return true;", vec![]).await;
    start_from_page(&c).await;
    wait_text(&c, "#plan-status", "running").await;

    // Follow the rows until the plan completes; remember what was seen.
    let mut phases: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut mid_run_shot = None;
    let t0 = Instant::now();
    wait_for(
        "the plan to complete",
        Duration::from_secs(180),
        async || {
            let now = rows(&c).await;
            for r in &now {
                phases
                    .entry(r.host.clone())
                    .or_default()
                    .insert(format!("{}/{}", r.state, r.phase));
            }
            let done = now.iter().filter(|r| r.state == "completed").count();
            let working = now.iter().any(|r| {
                r.state == "running" && !["queued", "preflight"].contains(&r.phase.as_str())
            });
            if mid_run_shot.is_none() && working && done > 0 {
                mid_run_shot = Some(screenshot(&c, "plan-running.png").await);
            }
            text(&c, "#plan-status").await.filter(|s| s == "completed")
        },
    )
    .await;
    eprintln!("plan completed in the page after {:?}", t0.elapsed());
    // The last rows of the last read may land a frame after the status.
    wait_for("every row completed", WAIT, async || {
        Some(rows(&c).await).filter(|r| r.len() == 5 && r.iter().all(|r| r.state == "completed"))
    })
    .await;
    screenshot(&c, "plan-completed.png").await;
    assert!(
        mid_run_shot.is_some(),
        "a moment with hosts running and done was seen: {phases:?}"
    );
    let live_phases: BTreeSet<&str> = phases
        .values()
        .flatten()
        .filter_map(|s| s.strip_prefix("running/"))
        .collect();
    assert!(
        live_phases.iter().any(|p| !["queued", "done"].contains(p)),
        "rows showed work phases while running: {phases:?}"
    );
    let hosts_seen_running = phases
        .values()
        .filter(|s| s.iter().any(|p| p.starts_with("running/")))
        .count();
    assert!(
        hosts_seen_running >= 2,
        "rows changed live, not only at the end: {phases:?}"
    );
    assert_eq!(
        js(&c, "return window.__sameDocument;", vec![]).await,
        json!(42),
        "the page updated without a reload"
    );
    // The audit feed names the operator.
    wait_text(&c, "#feed", "start by olga (operator)").await;
    // The token never went into a URL.
    let urls = js(
        &c,
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);",
        vec![],
    )
    .await;
    assert!(!urls.to_string().contains("operator-token"), "{urls}");

    // The failing host, in a plan of its own without approval.
    let mut body = w.plan_body("esx06 alone");
    body["targets"] = json!({"hosts": ["esx06.lab"]});
    body["approval_required"] = json!(false);
    body["policy"]["retry"] =
        json!({"maxAttempts": 2, "initialBackoffSecs": 1, "maxBackoffSecs": 1, "jitter": 0.0});
    let failing = create(&d, &body).await;
    c.goto(&format!("{}/#/plans/{failing}", d.base))
        .await
        .expect("open the plan");
    wait_text(&c, "#plan-name", "esx06 alone").await;
    wait_text(&c, "#plan-status", "draft").await;
    start_from_page(&c).await;
    let row = wait_for(
        "esx06's row to fail with its error",
        Duration::from_secs(120),
        async || {
            rows(&c)
                .await
                .into_iter()
                .find(|r| r.host == "esx06.lab" && r.state == "failed" && !r.error.is_empty())
        },
    )
    .await;
    eprintln!("esx06.lab row error: {}", row.error);
    wait_text(&c, "#plan-status", "failed").await;
    screenshot(&c, "plan-failed.png").await;
    c.close().await.expect("close the browser");
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_actions_and_errors_read_as_plain_words() {
    let driver = chromedriver().await;
    let w = world_with(2, 0, WATCHABLE_SPEED).await;
    let d = start(&w.config("kind = \"memory\""));
    import(&w, &d).await;
    let plan = create(&d, &w.plan_body("for viewers")).await;

    // The page's files need no token and carry their type and the CSP.
    let http = reqwest::Client::new();
    for (path, ty) in [
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let r = http
            .get(format!("{}{path}", d.base))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with(ty),
            "{path}: {h:?}"
        );
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap_or_default()
                .starts_with("default-src 'self'"),
            "{path}: {h:?}"
        );
    }
    let r = http
        .get(format!("{}/ui/missing.js", d.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    let (code, me) = d.client(Some("viewer-token")).get("/api/v1/me").await;
    assert_eq!(code, 200, "{me}");
    assert_eq!(
        (
            me["name"].as_str(),
            me["role"].as_str(),
            me["can_operate"].as_bool()
        ),
        (Some("vic"), Some("viewer"), Some(false))
    );
    assert_eq!(d.client(None).get("/api/v1/me").await.0, 401);

    let c = browser(&driver).await;
    // A wrong token is refused in words.
    c.goto(&format!("{}/", d.base)).await.expect("open");
    let field = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#token"))
        .await
        .expect("form");
    field.send_keys("not-a-token").await.expect("type");
    click(&c, "#signin").await;
    wait_text(&c, "#signin-error", "not accepted").await;
    // The viewer sees the plan and no button to act on it.
    sign_in(&c, &d.base, "viewer-token", "viewer").await;
    c.goto(&format!("{}/#/plans/{plan}", d.base))
        .await
        .expect("open the plan");
    wait_text(&c, "#plan-status", "draft").await;
    wait_for("2 host rows", WAIT, async || {
        Some(rows(&c).await).filter(|r| r.len() == 2)
    })
    .await;
    let buttons = js(
        &c,
        "return document.querySelectorAll('#actions button, #dry-run').length;",
        vec![],
    )
    .await;
    assert_eq!(buttons, json!(0), "a viewer has no action buttons");
    // The audit trail says who created the plan.
    c.goto(&format!("{}/#/events?plan={plan}", d.base))
        .await
        .expect("open events");
    wait_text(&c, "#events-list", "create by olga (operator)").await;
    // Compliance needs operator: the refusal is explained.
    c.goto(&format!("{}/#/compliance", d.base))
        .await
        .expect("open compliance");
    click(&c, "#compliance-run").await;
    wait_text(&c, "#compliance-summary", "your role does not allow this").await;

    // An operator's malformed or invalid plan: the API's words, with the field.
    click(&c, "#signout").await;
    wait_for("the sign-in form", WAIT, async || text(&c, "#signin").await).await;
    sign_in(&c, &d.base, "operator-token", "operator").await;
    c.goto(&format!("{}/#/plans", d.base)).await.expect("plans");
    click(&c, ".card details summary").await;
    let area = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#plan-json"))
        .await
        .expect("form");
    area.clear().await.expect("clear");
    area.send_keys("{\"name\": ").await.expect("type");
    click(&c, "#create-plan").await;
    wait_text(&c, "#plan-error", "malformed JSON").await;
    area.clear().await.expect("clear");
    let bad =
        json!({"name": "x", "catalog": w.lab.catalog_url, "targets": {"hosts": ["nowhere.lab"]}});
    area.send_keys(&bad.to_string()).await.expect("type");
    click(&c, "#create-plan").await;
    wait_text(&c, "#plan-error", "targets.hosts").await;
    // Compliance for an operator: a row per component with its verdict.
    c.goto(&format!("{}/#/compliance", d.base))
        .await
        .expect("open compliance");
    click(&c, "#compliance-run").await;
    wait_text(&c, "#compliance-summary", "2 host(s) against").await;
    wait_for("compliance rows", WAIT, async || {
        js(
            &c,
            "return document.querySelectorAll('.vt-rows .vt-row').length;",
            vec![],
        )
        .await
        .as_u64()
        .filter(|n| *n > 2)
    })
    .await;
    screenshot(&c, "compliance.png").await;
    c.close().await.expect("close the browser");
}

/// The plan page at 1,000 hosts: time to first render, and the rate of row
/// updates it applies while 100 hosts run at once. Prints the figures of
/// BENCHMARKS.md:
/// `cargo test -p firmflowd --test browser -- --ignored --nocapture plan_page_at_1000_hosts`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: 1,000 simulated iDRACs, about a minute"]
async fn plan_page_at_1000_hosts() {
    const HOSTS: usize = 1000;
    let driver = chromedriver().await;
    let w = world(HOSTS).await;
    let cfg = w.config("kind = \"memory\"");
    let text_cfg = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text_cfg.replace("[executor]\n", "[executor]\nslots = 128\n"),
    )
    .expect("config");
    let d = start(&cfg);
    import(&w, &d).await;
    let mut body = w.plan_body("a thousand");
    body["policy"]["maxConcurrent"] = json!(100);
    body["approval_required"] = json!(false);
    let plan = create(&d, &body).await;
    let c = browser(&driver).await;
    sign_in(&c, &d.base, "operator-token", "operator").await;
    let t = Instant::now();
    c.goto(&format!("{}/#/plans/{plan}", d.base))
        .await
        .expect("open");
    let first = wait_for("the first render", WAIT, async || {
        js(
            &c,
            "return window.firmflowStats && window.firmflowStats.firstRender;",
            vec![],
        )
        .await
        .as_f64()
    })
    .await;
    let wall = t.elapsed();
    let shown = text(&c, "#shown").await.unwrap_or_default();
    assert!(shown.contains(&format!("of {HOSTS}")), "{shown}");
    // Frames per second the page keeps while it updates (rAF callbacks).
    js(&c, "window.__fps = []; let n = 0, t0 = performance.now(); \
            (function f(now) { n++; if (now - t0 >= 1000) { window.__fps.push(n); n = 0; t0 = now; } \
            requestAnimationFrame(f); })(performance.now()); return true;", vec![]).await;
    let run_t = Instant::now();
    let (code, started) = d
        .client(Some("operator-token"))
        .post(&format!("/api/v1/plans/{plan}/start"), &json!({}))
        .await;
    assert_eq!(code, 200, "{started}");
    wait_for(
        "the page to show the plan completed",
        Duration::from_secs(600),
        async || text(&c, "#plan-status").await.filter(|s| s == "completed"),
    )
    .await;
    let secs = run_t.elapsed().as_secs_f64();
    let stats = js(
        &c,
        "return Object.assign({fps: window.__fps}, window.firmflowStats);",
        vec![],
    )
    .await;
    let updates = stats["rowUpdates"].as_f64().unwrap_or(0.0);
    let events = stats["events"].as_f64().unwrap_or(0.0);
    let fps: Vec<f64> = stats["fps"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let min_fps = fps.iter().copied().fold(f64::INFINITY, f64::min);
    let mean_fps = fps.iter().sum::<f64>() / fps.len().max(1) as f64;
    println!("hosts: {HOSTS}");
    println!(
        "first render (in page, read + draw): {first:.0} ms; from navigation: {} ms",
        wall.as_millis()
    );
    println!(
        "campaign: {secs:.1} s; stream events: {events} ({:.0}/s)",
        events / secs
    );
    println!(
        "row updates applied: {updates} ({:.0}/s) in {} reads, {} frames",
        updates / secs,
        stats["reads"],
        stats["frames"]
    );
    println!("frames per second while running: mean {mean_fps:.0}, min {min_fps:.0}");
    screenshot(&c, "plan-1000-completed.png").await;
    c.close().await.expect("close the browser");
}
