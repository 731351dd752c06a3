//! `firmflowd` as an operator runs it: the real binary as a child process,
//! the simulated iDRAC fleet over HTTPS in this process, PostgreSQL in a
//! database of the test's own (or the memory store). Campaigns are driven
//! over the API and followed on the live stream; the simulator's own
//! counters say that every component was flashed exactly once, also across
//! a SIGTERM and a restart.

mod support;

use firmflow_core::SystemClock;
use firmflow_core::store::HostStore as _;
use firmflow_store_postgres::{PgConfig, PgStore};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::*;

async fn import_hosts(api: &Api, w: &World) {
    let csv = std::fs::read_to_string(&w.lab.hosts_csv).expect("hosts.csv");
    let (code, body) = api.post_raw("/api/v1/hosts/import", "text/csv", csv).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["added"].as_array().map(Vec::len),
        Some(w.fleet.hosts().len())
    );
}

async fn create_plan(api: &Api, w: &World, name: &str) -> String {
    let (code, body) = api.post("/api/v1/plans", &w.plan_body(name)).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["plan"]["status"], "draft");
    body["plan"]["id"].as_str().expect("plan id").to_string()
}

fn assert_each_flashed_once(w: &World) {
    for (host, cid, n) in w.flashes() {
        assert_eq!(n, 1, "{host} component {cid} flashed {n} times");
    }
}

fn assert_strictly_increasing(ids: &[i64]) {
    assert!(
        ids.windows(2).all(|p| p[0] < p[1]),
        "ids repeat or go back: {ids:?}"
    );
}

async fn campaign(store: &str, w: &World) {
    let cfg = w.config(store);
    let d = start(&cfg);
    let admin = d.client(Some("admin-token"));
    let op = d.client(Some("operator-token"));
    import_hosts(&admin, w).await;
    let plan = create_plan(&op, w, "e2e").await;
    let (code, body) = op
        .post(&format!("/api/v1/plans/{plan}/approve"), &json!({}))
        .await;
    assert_eq!(code, 200, "{body}");
    let mut sse = op.stream(&format!("?plan={plan}"), None).await;
    let (code, body) = op
        .post(&format!("/api/v1/plans/{plan}/start"), &json!({}))
        .await;
    assert_eq!(code, 200, "{body}");
    let events = sse.until_plan_final(Duration::from_secs(120)).await;
    let last = events.last().expect("events");
    assert_eq!(last.data["details"]["to"], "completed", "{:?}", last.data);
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    assert_strictly_increasing(&ids);
    assert!(events.iter().all(|e| e.data["plan_id"] == plan.as_str()));
    assert_each_flashed_once(w);
    // Resuming after the 3rd event gives exactly what followed, once.
    let mut again = op.stream(&format!("?plan={plan}"), Some(ids[2])).await;
    let mut tail = Vec::new();
    while tail.len() < ids.len() - 3 {
        match tokio::time::timeout(Duration::from_secs(10), again.next()).await {
            Ok(Some(e)) => tail.push(e.id),
            _ => break,
        }
    }
    assert_eq!(tail, ids[3..].to_vec(), "resume with Last-Event-ID");
    // Per-host progress and the audit trail's actors.
    let (code, body) = op.get(&format!("/api/v1/plans/{plan}")).await;
    assert_eq!(code, 200);
    assert_eq!(body["counts"]["completed"], w.fleet.hosts().len());
    assert!(
        body["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .all(|h| h["state"] == "completed")
    );
    let (_, ev) = op
        .get(&format!(
            "/api/v1/events?plan={plan}&type=api_action&limit=10"
        ))
        .await;
    let actions: Vec<(String, String)> = ev["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["details"]["action"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["details"]["actor"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    for a in ["create", "approve", "start"] {
        assert!(
            actions.contains(&(a.to_string(), "olga".to_string())),
            "{actions:?}"
        );
    }
    // Runs list and one run with ctx.
    let (code, runs) = op.get(&format!("/api/v1/plans/{plan}/runs?limit=1")).await;
    assert_eq!(code, 200);
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(1));
    let cursor = runs["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, page2) = op
        .get(&format!(
            "/api/v1/plans/{plan}/runs?limit=100&cursor={cursor}"
        ))
        .await;
    assert_eq!(
        page2["items"].as_array().map(Vec::len),
        Some(w.fleet.hosts().len() - 1)
    );
    let run = runs["items"][0]["id"].as_str().expect("run id");
    let (code, r) = op.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(code, 200);
    assert_eq!(r["state"], "completed");
    assert!(r["ctx"]["timing"].is_object(), "{r}");
    // The BMC series: every submission counted, every session logged out.
    let (_, m) = op.get("/metrics").await;
    let m = m.as_str().unwrap_or_default().to_string();
    let submitted: usize = w.flashes().iter().map(|(_, _, n)| n).sum();
    assert!(
        m.contains(&format!(
            "firmflowd_bmc_operations_total{{host_kind=\"idrac\",operation=\"start_update\",outcome=\"ok\"}} {submitted}"
        )),
        "{m}"
    );
    assert!(
        m.contains("firmflowd_bmc_sessions_open{host_kind=\"idrac\"} 0"),
        "{m}"
    );
    // Store writes are timed: the runs' checkpoints and claims among them.
    let writes = |op: &str| -> u64 {
        let key = format!("firmflowd_store_write_duration_seconds_count{{operation=\"{op}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(key.as_str()))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(writes("checkpoint") >= w.fleet.hosts().len() as u64, "{m}");
    assert!(writes("claim") >= 1 && writes("transition") >= 1, "{m}");
    // Datacenter scope (on PostgreSQL, by its row-level security): the
    // lab's token sees the lab's hosts, plan and runs; another sees nothing.
    let lab = d.client(Some("lab-token"));
    let far = d.client(Some("far-token"));
    let (_, hosts) = lab.get("/api/v1/hosts").await;
    assert_eq!(
        hosts["items"].as_array().map(Vec::len),
        Some(w.fleet.hosts().len())
    );
    let (code, _) = lab.get(&format!("/api/v1/plans/{plan}")).await;
    assert_eq!(code, 200);
    let (_, hosts) = far.get("/api/v1/hosts").await;
    assert_eq!(hosts["items"], json!([]));
    let (_, plans) = far.get("/api/v1/plans").await;
    assert_eq!(plans["items"], json!([]));
    let (_, events) = far.get("/api/v1/events").await;
    assert_eq!(events["items"], json!([]));
    assert_eq!(far.get(&format!("/api/v1/plans/{plan}")).await.0, 404);
    assert_eq!(far.get(&format!("/api/v1/runs/{run}")).await.0, 404);
    assert_eq!(d.terminate(), 0, "SIGTERM on an idle daemon exits 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_campaign_over_the_api() {
    let w = world(3).await;
    campaign("kind = \"memory\"", &w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_campaign_over_the_api() {
    let w = world(4).await;
    let db = Db::new("e2e").await;
    campaign(&format!("kind = \"postgres\"\nurl = \"{}\"", db.url()), &w).await;
    // The scoped tokens are users of the database's row-level security:
    // read as them, straight from the store, the database itself hides
    // every other datacenter (no daemon filter in between).
    let pg = PgStore::connect(
        PgConfig::new(db.url()).schema("firmflow"),
        Arc::new(SystemClock),
    )
    .await
    .expect("store");
    let seen = |name: &str| {
        let scoped = pg.scoped(firmflowd::auth::user_id(name));
        async move { scoped.list_hosts().await.expect("scoped read").len() }
    };
    assert_eq!(seen("lab-ops").await, w.fleet.hosts().len());
    assert_eq!(seen("far-ops").await, 0);
    pg.close().await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_campaign_then_restart_finishes_with_nothing_installed_twice() {
    // Slower installs so the SIGTERM lands mid-campaign.
    let w = world(6).await;
    let db = Db::new("sigterm").await;
    let cfg = w.config(&format!("kind = \"postgres\"\nurl = \"{}\"", db.url()));
    let d = start(&cfg);
    let admin = d.client(Some("admin-token"));
    let op = d.client(Some("operator-token"));
    import_hosts(&admin, &w).await;
    let mut body = w.plan_body("sigterm");
    body["policy"]["maxConcurrent"] = json!(2);
    let (code, created) = op.post("/api/v1/plans", &body).await;
    assert_eq!(code, 201, "{created}");
    let plan = created["plan"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        op.post(&format!("/api/v1/plans/{plan}/approve"), &json!({}))
            .await
            .0,
        200
    );
    let mut sse = op.stream(&format!("?plan={plan}"), None).await;
    assert_eq!(
        op.post(&format!("/api/v1/plans/{plan}/start"), &json!({}))
            .await
            .0,
        200
    );
    // Wait until the first host finished, with others still to do.
    let mut seen = Vec::new();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(60), sse.next())
            .await
            .expect("events")
            .expect("stream open");
        let done = e.data["event_type"] == "update_completed";
        seen.push(e.id);
        if done {
            break;
        }
    }
    drop(sse);
    let code = tokio::task::spawn_blocking(move || d.terminate())
        .await
        .expect("join");
    assert_eq!(code, 0, "graceful stop within the grace");
    let (_, mid) = {
        let d2 = start(&cfg);
        let op2 = d2.client(Some("operator-token"));
        let (c, p) = op2.get(&format!("/api/v1/plans/{plan}")).await;
        assert_eq!(c, 200);
        let completed_before = p["counts"]["completed"].as_u64().unwrap_or(0);
        assert!(
            (completed_before as usize) < w.fleet.hosts().len(),
            "the stop came before the end: {p}"
        );
        // The restarted daemon takes the released runs and finishes.
        let mut sse = op2
            .stream(&format!("?plan={plan}"), seen.last().copied())
            .await;
        let rest = sse.until_plan_final(Duration::from_secs(120)).await;
        let last = rest.last().expect("events after restart");
        assert_eq!(last.data["details"]["to"], "completed", "{:?}", last.data);
        let mut all = seen.clone();
        all.extend(rest.iter().map(|e| e.id));
        assert_strictly_increasing(&all);
        assert_eq!(
            tokio::task::spawn_blocking(move || d2.terminate())
                .await
                .expect("join"),
            0
        );
        (c, p)
    };
    let _ = mid;
    assert_each_flashed_once(&w);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named_and_roles_and_datacenters_are_enforced() {
    let w = world(2).await;
    let d = start(&w.config("kind = \"memory\""));
    let admin = d.client(Some("admin-token"));
    let op = d.client(Some("operator-token"));
    let viewer = d.client(Some("viewer-token"));
    import_hosts(&admin, &w).await;
    // Malformed JSON: 400 with serde's message.
    let (code, e) = op
        .post_raw("/api/v1/plans", "application/json", "{\"name\": ".into())
        .await;
    assert_eq!(code, 400, "{e}");
    assert_eq!(e["error"], "malformed_json");
    assert!(
        e["message"].as_str().unwrap_or_default().contains("line 1"),
        "{e}"
    );
    // Unknown host: 422 naming the target.
    let mut body = w.plan_body("bad");
    body["targets"] = json!({"hosts": ["no-such-host.lab"]});
    let (code, e) = op.post("/api/v1/plans", &body).await;
    assert_eq!(code, 422, "{e}");
    assert!(
        e["field"]
            .as_str()
            .unwrap_or_default()
            .starts_with("targets.hosts"),
        "{e}"
    );
    // Invalid policy: 422 naming the policy field.
    let mut body = w.plan_body("bad policy");
    body["policy"]["maxConcurrent"] = json!("two");
    let (code, e) = op.post("/api/v1/plans", &body).await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["field"], "policy.maxConcurrent", "{e}");
    // A clustered host needs maintenance mode, and this daemon has no
    // vCenter: refused at creation, not failed at run time.
    let (code, e) = admin
        .post_raw(
            "/api/v1/hosts/import",
            "text/csv",
            "fqdn,mgmt_ip,vcenter_url,cluster_moid,host_moid\n\
             esx-clustered.lab,10.9.9.9,https://vc.lab,domain-c7,host-9\n"
                .into(),
        )
        .await;
    assert_eq!(code, 200, "{e}");
    let mut body = w.plan_body("needs vcenter");
    body["targets"] = json!({"hosts": ["esx-clustered.lab"]});
    body["policy"]["requireMaintenanceMode"] = json!(true);
    let (code, e) = op.post("/api/v1/plans", &body).await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["field"], "policy.requireMaintenanceMode", "{e}");
    let (_, hosts) = admin.get("/api/v1/hosts?limit=100").await;
    let id = hosts["items"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["fqdn"] == "esx-clustered.lab"))
        .and_then(|h| h["id"].as_str())
        .expect("the clustered host")
        .to_string();
    assert_eq!(admin.delete(&format!("/api/v1/hosts/{id}")).await.0, 204);
    // A bad hosts row: 422 with line and field; unknown host id: 404.
    let (code, e) = admin
        .post_raw(
            "/api/v1/hosts/import",
            "text/csv",
            "fqdn,mgmt_ip\n,10.1.1.1\n".into(),
        )
        .await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(e["problems"][0]["line"], 2, "{e}");
    assert_eq!(e["problems"][0]["field"], "fqdn", "{e}");
    let (code, _) = op
        .get("/api/v1/hosts/0195f0aa-0000-7000-8000-000000000000")
        .await;
    assert_eq!(code, 404);
    let (code, e) = op.get("/api/v1/hosts/not-a-uuid").await;
    assert_eq!(code, 400, "{e}");
    assert_eq!(e["field"], "id");
    // 401 without a token or with a wrong one.
    assert_eq!(d.client(None).get("/api/v1/plans").await.0, 401);
    assert_eq!(d.client(Some("guess")).get("/api/v1/plans").await.0, 401);
    // 403: a viewer starting a plan, an operator adding a host.
    let plan = create_plan(&op, &w, "roles").await;
    let (code, e) = viewer
        .post(&format!("/api/v1/plans/{plan}/start"), &json!({}))
        .await;
    assert_eq!(code, 403, "{e}");
    assert_eq!(viewer.get(&format!("/api/v1/plans/{plan}")).await.0, 200);
    let (code, _) = op
        .post(
            "/api/v1/hosts",
            &json!({"fqdn": "x.lab", "mgmt_ip": "10.9.9.9"}),
        )
        .await;
    assert_eq!(code, 403);
    // 409: start before approval.
    let (code, e) = op
        .post(&format!("/api/v1/plans/{plan}/start"), &json!({}))
        .await;
    assert_eq!(code, 409, "{e}");
    // Datacenter scope: the lab's token sees the lab, another sees nothing.
    let lab = d.client(Some("lab-token"));
    let far = d.client(Some("far-token"));
    let (_, hosts) = lab.get("/api/v1/hosts").await;
    assert_eq!(hosts["items"].as_array().map(Vec::len), Some(2));
    let (_, hosts) = far.get("/api/v1/hosts").await;
    assert_eq!(hosts["items"], json!([]));
    let (_, plans) = far.get("/api/v1/plans").await;
    assert_eq!(plans["items"], json!([]));
    let (_, events) = far.get("/api/v1/events").await;
    assert_eq!(events["items"], json!([]));
    assert_eq!(far.get(&format!("/api/v1/plans/{plan}")).await.0, 404);
    assert_eq!(
        far.post(&format!("/api/v1/plans/{plan}/cancel"), &json!({}))
            .await
            .0,
        404
    );
    let (_, plans) = lab.get("/api/v1/plans").await;
    assert_eq!(plans["items"].as_array().map(Vec::len), Some(1));
    // Unknown routes are JSON 404s; the document is served.
    let (code, e) = op.get("/api/v1/nothing").await;
    assert_eq!(code, 404);
    assert_eq!(e["error"], "not_found");
    let (code, doc) = op.get("/api/v1/openapi.json").await;
    assert_eq!(code, 200);
    assert!(doc["paths"]["/api/v1/plans/{id}/start"]["post"].is_object());
    let ids: BTreeSet<&str> = ["healthz", "readyz"].into_iter().collect();
    for p in ids {
        assert_eq!(op.get(&format!("/{p}")).await.0, 200);
    }
    let (code, m) = op.get("/metrics").await;
    assert_eq!(code, 200);
    let m = m.as_str().unwrap_or_default().to_string();
    assert!(m.contains("firmflowd_runs{state=\"pending\"} 2"), "{m}");
    assert!(m.contains("firmflowd_http_requests_total"), "{m}");
    let _: Value = doc;
}
