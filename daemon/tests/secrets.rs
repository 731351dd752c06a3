//! No secret in anything the daemon says (issue 13, "Secrets"): `firmflowd`
//! runs as a child process at debug level for every crate, against the
//! simulated iDRAC fleet whose BMCs take a known password, and one host
//! whose credential reference holds a wrong password. Everything it prints
//! (stdout and stderr), every API answer an operator can ask for (hosts,
//! compliance, inventory refresh, plans, runs, events page by page,
//! metrics, OpenAPI) and the live stream are searched for both passwords,
//! the `user:password` pairs in Base64 (a Basic auth header), the bare
//! passwords in Base64 and percent-encoded. The count must be 0, while the
//! wrong-password host's error still says what was wrong.
//!
//! The CLI and the demo have the same test in `bin/tests/secrets.rs`.

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

const USER: &str = "fleetadmin";
/// The fleet's password: unusual enough that any hit is a leak.
const PASSWORD: &str = "Kn0wn-Pa55w0rd_d4Em";
/// A password the BMCs refuse, given to one host.
const WRONG: &str = "Wr0ng-Pa55w0rd_m9Qs";

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

/// Everything the daemon said, kept for one search at the end.
#[derive(Default)]
struct Transcript {
    text: String,
    answers: usize,
}

impl Transcript {
    fn add(&mut self, what: &str, body: &Value) {
        self.answers += 1;
        self.text.push_str(&format!("\n### {what}\n{body}\n"));
    }

    /// Lines holding any spelling of either password.
    fn leaks(&self) -> Vec<String> {
        let mut words = spellings(USER, PASSWORD);
        words.extend(spellings(USER, WRONG));
        self.text
            .lines()
            .filter(|l| words.iter().any(|w| l.contains(w.as_str())))
            .map(str::to_owned)
            .collect()
    }
}

/// Every page of a cursor-paged list, each answer recorded.
async fn all_pages(api: &Api, path: &str, t: &mut Transcript) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=50&cursor={c}"),
            None => format!("{path}{sep}limit=50"),
        };
        let (code, body) = api.get(&url).await;
        assert_eq!(code, 200, "GET {url}: {body}");
        t.add(&format!("GET {url}"), &body);
        items.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return items,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firmflowd_never_says_a_bmc_password() {
    let w = world_with_login(4, 0, SPEED, USER, PASSWORD).await;
    // The last host's credential reference names an entry with a password
    // the BMCs refuse.
    let creds = w.lab.dir.join("idrac.toml");
    let mut text = std::fs::read_to_string(&creds).expect("credentials file");
    text.push_str(&format!(
        "\n[wrong]\nusername = \"{USER}\"\npassword = \"{WRONG}\"\n"
    ));
    std::fs::write(&creds, text).expect("credentials file");
    let csv = std::fs::read_to_string(&w.lab.hosts_csv).expect("hosts.csv");
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let last = lines.last_mut().expect("a host row");
    assert!(last.ends_with(','), "the credential column is last: {last}");
    last.push_str(&format!("file:{}#wrong", creds.display()));
    let wrong_fqdn = last.split(',').next().expect("fqdn").to_string();

    let d = start_logging(&w.config("kind = \"memory\""), "debug", true);
    let admin = d.client(Some("admin-token"));
    let op = d.client(Some("operator-token"));
    let mut t = Transcript::default();

    let (code, body) = admin
        .post_raw("/api/v1/hosts/import", "text/csv", lines.join("\n"))
        .await;
    assert_eq!(code, 200, "{body}");
    t.add("POST hosts/import", &body);
    let hosts = all_pages(&admin, "/api/v1/hosts", &mut t).await;
    assert_eq!(hosts.len(), 4);
    let wrong_id = hosts
        .iter()
        .find(|h| h["fqdn"] == wrong_fqdn.as_str())
        .and_then(|h| h["id"].as_str())
        .expect("the wrong-password host")
        .to_string();
    for h in &hosts {
        let id = h["id"].as_str().expect("id");
        let (_, body) = admin.get(&format!("/api/v1/hosts/{id}")).await;
        t.add("GET host", &body);
        let (_, body) = admin
            .post(&format!("/api/v1/hosts/{id}/refresh"), &json!({}))
            .await;
        t.add("POST host refresh", &body);
    }
    // The wrong password is refused, and the answer says so.
    let (code, body) = admin
        .post(&format!("/api/v1/hosts/{wrong_id}/refresh"), &json!({}))
        .await;
    t.add("POST refresh (wrong password)", &body);
    assert!(code >= 400, "a refused login is an error: {code} {body}");
    let said = body.to_string().to_ascii_lowercase();
    assert!(
        said.contains("auth") || said.contains("401") || said.contains("credential"),
        "the error says the login was refused: {body}"
    );
    let (_, body) = op.post("/api/v1/compliance", &json!({})).await;
    t.add("POST compliance", &body);

    // A campaign: three hosts complete, the fourth fails at its login.
    let (code, body) = op.post("/api/v1/plans", &w.plan_body("secrets")).await;
    assert_eq!(code, 201, "{body}");
    t.add("POST plans", &body);
    let plan = body["plan"]["id"].as_str().expect("plan id").to_string();
    let (_, body) = op
        .post(&format!("/api/v1/plans/{plan}/dry-run"), &json!({}))
        .await;
    t.add("POST dry-run", &body);
    let (code, body) = op
        .post(&format!("/api/v1/plans/{plan}/approve"), &json!({}))
        .await;
    assert_eq!(code, 200, "{body}");
    let mut sse = op.stream(&format!("?plan={plan}"), None).await;
    let (code, body) = op
        .post(&format!("/api/v1/plans/{plan}/start"), &json!({}))
        .await;
    assert_eq!(code, 200, "{body}");
    let streamed = sse.until_plan_final(Duration::from_secs(120)).await;
    assert!(
        streamed
            .last()
            .is_some_and(|e| e.data["event_type"] == "plan_status_changed"),
        "the plan ended on the stream"
    );
    for e in &streamed {
        t.add("stream event", &e.data);
    }
    let (_, body) = op.get(&format!("/api/v1/plans/{plan}")).await;
    t.add("GET plan", &body);
    let runs = all_pages(&op, &format!("/api/v1/plans/{plan}/runs"), &mut t).await;
    assert_eq!(runs.len(), 4, "one run per host");
    let mut failed = 0;
    for r in &runs {
        let id = r["id"].as_str().expect("run id");
        let (_, body) = op.get(&format!("/api/v1/runs/{id}")).await;
        t.add("GET run", &body);
        if body.to_string().contains("\"failed\"") {
            failed += 1;
        }
    }
    assert!(failed >= 1, "the wrong-password host's run failed");
    let events = all_pages(&op, &format!("/api/v1/events?plan={plan}"), &mut t).await;
    assert!(events.len() >= streamed.len());
    let _ = all_pages(&admin, "/api/v1/events", &mut t).await;
    for path in ["/metrics", "/api/v1/openapi.json", "/api/v1/me", "/readyz"] {
        let (_, body) = admin.get(path).await;
        t.add(path, &body);
    }

    let (code, logs) = d.terminate_collecting_logs();
    assert_eq!(code, 0, "firmflowd exits 0 on SIGTERM");
    assert!(
        logs.iter()
            .any(|l| l.contains("\"DEBUG\"") || l.contains("DEBUG")),
        "the daemon logged at debug level"
    );
    t.text.push_str(&logs.join("\n"));
    eprintln!(
        "secrets: {} API answers, {} stream events, {} log lines, {} run(s) failed, 0 leaks expected",
        t.answers,
        streamed.len(),
        logs.len(),
        failed
    );
    let leaks = t.leaks();
    assert!(
        leaks.is_empty(),
        "{} lines of {} answers and {} log lines hold a password:\n{}",
        leaks.len(),
        t.answers,
        logs.len(),
        leaks.join("\n")
    );
}

/// The search itself finds each spelling (so a 0 above means something).
#[test]
fn every_spelling_of_a_leak_is_found() {
    for w in spellings(USER, PASSWORD)
        .into_iter()
        .chain(spellings(USER, WRONG))
    {
        let mut t = Transcript::default();
        t.add("clean", &json!({"ok": true}));
        assert!(t.leaks().is_empty());
        t.add("leak", &json!({ "authorization": format!("Basic {w}") }));
        assert_eq!(t.leaks().len(), 1, "{w} is found");
    }
}
