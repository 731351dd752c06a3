//! Every fault kind, injected at start (spec), through `Fleet::inject`, and
//! through the control API over HTTP.

mod common;

use std::time::{Duration, Instant};

use common::*;
use firmflow_sim::{Fault, FaultRule, FaultSpec, Fleet, PackageKind};
use serde_json::{Value, json};

const LC: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellLCService/Actions/DellLCService.GetRemoteServicesAPIStatus";
const SIMPLE: &str = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate";
const RESET: &str = "/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset";

fn diag(v: &str) -> firmflow_sim::Package {
    pkg("25806", "Diagnostics", v, PackageKind::Diagnostics, vec![])
}

fn msg_id(v: &Value) -> String {
    v["error"]["@Message.ExtendedInfo"][0]["MessageId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn fail_and_stuck_jobs() {
    let fleet = http_fleet(2, 20_000.0).await;
    let (a, b) = (&fleet.hosts()[0], &fleet.hosts()[1]);
    fleet.inject(&a.name, Fault::FailJob);
    fleet.inject(&b.name, Fault::StuckJob);
    let url = fleet.serve_file("d.exe", diag("4301A95").to_bytes());
    let (api_a, api_b) = (Api::new(a), Api::new(b));
    let ja = api_a.simple_update(&url).await;
    let jb = api_b.simple_update(&url).await;
    let job = api_a.wait_job(&ja, &["Failed", "Completed"]).await;
    assert_eq!(job["JobState"], "Failed");
    assert_eq!(job["MessageId"], "SUP0538");
    let job = api_b.wait_job(&jb, &["Running"]).await;
    assert_eq!(job["JobState"], "Running");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let job = api_b
        .get_json(&format!(
            "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/{jb}"
        ))
        .await;
    assert_eq!(job["JobState"], "Running");
    assert_eq!(job["PercentComplete"], 35);
    assert_eq!(fleet.install_count(&a.name, "25806"), 0);
    assert_eq!(fleet.install_count(&b.name, "25806"), 0);
    // Cleared: the next job succeeds.
    fleet.clear_faults(&a.name);
    let ja = api_a.simple_update(&url).await;
    assert_eq!(
        api_a.wait_job(&ja, &["Failed", "Completed"]).await["JobState"],
        "Completed"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn server_error_burst_latency_and_resets() {
    let spec = FaultSpec::parse(
        "5xx_burst:host=idrac-001:n=2,latency:host=idrac-002:ms=40,conn_reset:host=idrac-003:n=1",
    )
    .unwrap();
    let fleet = Fleet::builder()
        .hosts(3)
        .http(true)
        .faults(spec)
        .start()
        .await
        .unwrap();
    let hs = fleet.hosts();
    let a = Api::new(&hs[0]);
    for _ in 0..2 {
        let r = a.get("/redfish/v1/Systems").await;
        assert_eq!(r.status(), 500);
        let v: Value = r.json().await.unwrap();
        assert_eq!(msg_id(&v), "IDRAC.2.8.SYS518");
    }
    assert_eq!(a.get("/redfish/v1/Systems").await.status(), 200);
    let b = Api::new(&hs[1]);
    let t = Instant::now();
    assert_eq!(b.get("/redfish/v1").await.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(40));
    let c = Api::new(&hs[2]);
    assert!(c.try_get("/redfish/v1").await.is_err(), "connection reset");
    assert_eq!(c.get("/redfish/v1").await.status(), 200);
    fleet.shutdown().await;
}

#[tokio::test]
async fn session_expiry() {
    let fleet = http_fleet(1, 1.0).await;
    let h = &fleet.hosts()[0];
    let c = client();
    let r = c
        .post(format!("{}/redfish/v1/SessionService/Sessions", h.url))
        .json(&json!({"UserName": "root", "Password": "calvin"}))
        .send()
        .await
        .unwrap();
    let token = r.headers()["x-auth-token"].to_str().unwrap().to_string();
    fleet.inject(&h.name, Fault::SessionExpiry);
    assert_eq!(fleet.live_sessions(&h.name), 0);
    let r = c
        .get(format!("{}/redfish/v1/Systems", h.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Probabilistic variant: p=1 with n=1 on the next token use.
    let r = c
        .post(format!("{}/redfish/v1/SessionService/Sessions", h.url))
        .json(&json!({"UserName": "root", "Password": "calvin"}))
        .send()
        .await
        .unwrap();
    let token = r.headers()["x-auth-token"].to_str().unwrap().to_string();
    fleet.inject_rule(
        FaultRule::new(Fault::SessionExpiry)
            .on_host(&h.name)
            .with_probability(0.999)
            .times(1),
    );
    let r = c
        .get(format!("{}/redfish/v1/Systems", h.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    fleet.shutdown().await;
}

#[tokio::test]
async fn lc_not_ready_and_queue_full() {
    let fleet = http_fleet(1, 10_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let url = fleet.serve_file("d.exe", diag("4301A96").to_bytes());
    // 1000 Dell seconds = 100 ms.
    fleet.inject(&h.name, Fault::LcNotReady { secs: 1000 });
    let lc: Value = api.post(LC, json!({})).await.json().await.unwrap();
    assert_eq!(lc["LCStatus"], "NotReady");
    let r = api.post(SIMPLE, json!({"ImageURI": url})).await;
    assert_eq!(r.status(), 503);
    assert_eq!(msg_id(&r.json().await.unwrap()), "IDRAC.2.8.LC060");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let lc: Value = api.post(LC, json!({})).await.json().await.unwrap();
    assert_eq!(lc["LCStatus"], "Ready");
    assert_eq!(lc["Status"], "Ready");
    fleet.inject(&h.name, Fault::JobQueueFull);
    let r = api.post(SIMPLE, json!({"ImageURI": url})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(msg_id(&r.json().await.unwrap()), "IDRAC.2.8.JCP017");
    fleet.clear_faults(&h.name);
    assert_eq!(
        api.post(SIMPLE, json!({"ImageURI": url})).await.status(),
        202
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn host_never_returns_wrong_version_degraded_health() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    fleet.inject(
        &h.name,
        Fault::DegradedHealth {
            health: "Critical".into(),
        },
    );
    let sys = api.get_json("/redfish/v1/Systems/System.Embedded.1").await;
    assert_eq!(sys["Status"]["Health"], "Critical");
    // Wrong version: the job completes, the version does not change.
    fleet.inject(&h.name, Fault::WrongVersion { version: None });
    let old = version_of(&fleet, &h.name, "25806");
    let url = fleet.serve_file("d.exe", diag("4301A97").to_bytes());
    let jid = api.simple_update(&url).await;
    assert_eq!(
        api.wait_job(&jid, &["Completed", "Failed"]).await["JobState"],
        "Completed"
    );
    assert_eq!(version_of(&fleet, &h.name, "25806"), old);
    assert_eq!(fleet.install_count(&h.name, "25806"), 1);
    // Host never comes back after a reboot.
    fleet.inject(&h.name, Fault::HostNeverReturns);
    let url = fleet.serve_file("b.exe", bios("9.9.1").to_bytes());
    let jid = api.simple_update(&url).await;
    api.wait_job(&jid, &["Scheduled"]).await;
    assert_eq!(
        api.post(RESET, json!({"ResetType": "ForceRestart"}))
            .await
            .status(),
        204
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fleet.power_state(&h.name).as_deref(), Some("Off"));
    let sys = api.get_json("/redfish/v1/Systems/System.Embedded.1").await;
    assert_eq!(sys["PowerState"], "Off");
    assert_eq!(
        api.get_json(&format!("/redfish/v1/JobService/Jobs/{jid}"))
            .await["JobState"],
        "Starting"
    );
    let lc: Value = api.post(LC, json!({})).await.json().await.unwrap();
    assert_eq!(lc["ServerStatus"], "PoweredOff");
    // Cleared and powered on: the scheduled update applies.
    fleet.clear_faults(&h.name);
    assert_eq!(
        api.post(RESET, json!({"ResetType": "On"})).await.status(),
        204
    );
    assert_eq!(
        api.wait_job(&jid, &["Completed", "Failed"]).await["JobState"],
        "Completed"
    );
    assert_eq!(version_of(&fleet, &h.name, "159"), "9.9.1");
    assert_eq!(fleet.power_state(&h.name).as_deref(), Some("On"));
    // Bad reset type.
    let r = api.post(RESET, json!({"ResetType": "Explode"})).await;
    assert_eq!(r.status(), 400);
    fleet.shutdown().await;
}

#[tokio::test]
async fn probabilistic_faults_are_deterministic_per_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let fleet = Fleet::builder()
            .http(true)
            .seed(seed)
            .faults(FaultSpec::parse("5xx_burst:p=0.5:n=1000").unwrap())
            .start()
            .await
            .unwrap();
        let api = Api::new(&fleet.hosts()[0]);
        let mut out = Vec::new();
        for _ in 0..32 {
            out.push(api.get("/redfish/v1").await.status().as_u16());
        }
        fleet.shutdown().await;
        out
    }
    let (x, y) = (run(5).await, run(5).await);
    assert_eq!(x, y);
    assert!(x.contains(&500) && x.contains(&200));
}

#[tokio::test]
async fn control_api_over_http() {
    let fleet = http_fleet(2, 20_000.0).await;
    let ctl = fleet.control_url();
    let c = client();
    let h = &fleet.hosts()[1];
    let hosts: Value = c
        .get(format!("{ctl}/hosts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hosts.as_array().unwrap().len(), 2);
    // Inject a 5xx burst over HTTP.
    let r = c
        .post(format!("{ctl}/hosts/{}/faults", h.name))
        .body("5xx_burst:n=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let api = Api::new(h);
    assert_eq!(api.get("/redfish/v1/Systems").await.status(), 500);
    assert_eq!(api.get("/redfish/v1/Systems").await.status(), 200);
    let r = c
        .post(format!("{ctl}/faults"))
        .body("fail_job:host=idrac-002")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let detail: Value = c
        .get(format!("{ctl}/hosts/{}", h.name))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["faults"], json!(["fail_job"]));
    let r = c
        .delete(format!("{ctl}/hosts/{}/faults", h.name))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        c.post(format!("{ctl}/faults"))
            .body("bogus")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    // Serve a file, install it, inspect.
    let r: Value = c
        .put(format!("{ctl}/files/d.exe"))
        .body(diag("4301A98").to_bytes())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = r["url"].as_str().unwrap();
    let jid = api.simple_update(url).await;
    api.wait_job(&jid, &["Completed"]).await;
    let installs: Value = c
        .get(format!("{ctl}/hosts/{}/installs", h.name))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(installs[0]["component_id"], "25806");
    assert_eq!(installs[0]["to_version"], "4301A98");
    let reqs: Value = c
        .get(format!("{ctl}/hosts/{}/requests", h.name))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(reqs["total"].as_u64().unwrap() >= 4);
    let sessions: Value = c
        .get(format!("{ctl}/hosts/{}/sessions", h.name))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["live"], 0);
    let r = c
        .put(format!("{ctl}/hosts/{}/firmware/159", h.name))
        .body("0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(version_of(&fleet, &h.name, "159"), "0.0.1");
    assert!(fleet.set_component_version(&h.name, "NIC.Slot.3-1-1", "1.2.3"));
    assert_eq!(version_of(&fleet, &h.name, "0"), "1.2.3");
    assert_eq!(
        c.get(format!("{ctl}/hosts/nobody"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    fleet.shutdown().await;
}
