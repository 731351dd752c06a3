//! Firmware updates, jobs, tasks, reboots, iDRAC restarts, repository updates.

mod common;

use std::time::Duration;

use common::*;
use firmflow_sim::catalog::{self, CatalogEntry, CatalogOptions};
use firmflow_sim::{Flavor, Fleet, PackageKind};
use serde_json::{Value, json};

#[tokio::test]
async fn bios_update_waits_for_reboot_then_installs_once() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let old = version_of(&fleet, &h.name, "159");
    let url = fleet.serve_file("BIOS.EXE", bios("9.9.9").to_bytes_padded(1000));
    let jid = api.simple_update(&url).await;
    assert!(jid.starts_with("JID_") && jid.len() == 16, "{jid}");
    // Task right after creation.
    let t = api
        .get_json(&format!("/redfish/v1/TaskService/Tasks/{jid}"))
        .await;
    assert_eq!(t["Oem"]["Dell"]["JobType"], "FirmwareUpdate");
    let job = api.wait_job(&jid, &["Scheduled"]).await;
    assert_eq!(job["MessageId"], "JCP001");
    assert_eq!(job["Name"], "Firmware Update: BIOS");
    let t = api
        .get_json(&format!("/redfish/v1/TaskService/Tasks/{jid}"))
        .await;
    assert_eq!(t["TaskState"], "Starting");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        api.get_json(&format!(
            "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/{jid}"
        ))
        .await["JobState"],
        "Scheduled"
    );
    assert_eq!(
        version_of(&fleet, &h.name, "159"),
        old,
        "no change before reboot"
    );
    // Same job under the 3.x path and the DMTF JobService.
    let j3 = api
        .get_json(&format!("/redfish/v1/Managers/iDRAC.Embedded.1/Jobs/{jid}"))
        .await;
    assert_eq!(
        j3["@odata.id"],
        format!("/redfish/v1/Managers/iDRAC.Embedded.1/Jobs/{jid}")
    );
    let dj = api
        .get_json(&format!("/redfish/v1/JobService/Jobs/{jid}"))
        .await;
    assert_eq!(dj["JobState"], "Starting");
    // Reboot.
    let r = api
        .post(
            "/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset",
            json!({"ResetType": "ForceRestart"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let job = api.wait_job(&jid, &["Completed", "Failed"]).await;
    assert_eq!(job["JobState"], "Completed");
    assert_eq!(job["PercentComplete"], 100);
    assert_eq!(version_of(&fleet, &h.name, "159"), "9.9.9");
    assert_eq!(fleet.install_count(&h.name, "159"), 1);
    let rec = &fleet.installs(&h.name)[0];
    assert_eq!(
        (rec.from_version.as_str(), rec.to_version.as_str()),
        (old.as_str(), "9.9.9")
    );
    // Old version is Previous-.
    let inv = api
        .get_json("/redfish/v1/UpdateService/FirmwareInventory")
        .await;
    let ids: Vec<String> = inv["Members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["@odata.id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ids.iter()
            .any(|i| i.ends_with(&format!("Previous-159-{old}__BIOS.Setup.1-1"))),
        "{ids:?}"
    );
    assert!(
        ids.iter()
            .any(|i| i.ends_with("Installed-159-9.9.9__BIOS.Setup.1-1"))
    );
    // The reset produced a reboot job that completes.
    let jobs = api
        .get_json("/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs?$expand=*($levels=1)")
        .await;
    let rid = jobs["Members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["Id"].as_str().unwrap().starts_with("RID_"))
        .unwrap()
        .clone();
    assert_eq!(rid["JobType"], "RebootForce");
    // Task is purged a while after completion, the job stays.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        api.get(&format!("/redfish/v1/TaskService/Tasks/{jid}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        api.get(&format!(
            "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/{jid}"
        ))
        .await
        .status(),
        200
    );
    // Stats count per endpoint template.
    let stats = fleet.requests(&h.name);
    assert!(stats.count("GET", "/redfish/v1/Managers/{id}/Oem/Dell/Jobs/{id}") >= 2);
    assert_eq!(
        stats.count(
            "POST",
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"
        ),
        1
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn no_reboot_component_applies_immediately_and_rollback_works() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let p = pkg(
        "25806",
        "Dell 64 Bit uEFI Diagnostics",
        "4301A89",
        PackageKind::Diagnostics,
        vec![],
    );
    let url = fleet.serve_file("diag.exe", p.to_bytes());
    let jid = api.simple_update(&url).await;
    let job = api.wait_job(&jid, &["Completed", "Failed"]).await;
    assert_eq!(job["JobState"], "Completed", "{job}");
    assert_eq!(version_of(&fleet, &h.name, "25806"), "4301A89");
    // Roll the BIOS back through its Previous- image.
    let inv = api
        .get_json("/redfish/v1/UpdateService/FirmwareInventory")
        .await;
    let prev = inv["Members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["@odata.id"].as_str().unwrap().to_string())
        .find(|i| i.contains("Previous-159-"))
        .unwrap();
    let before = version_of(&fleet, &h.name, "159");
    let r = api
        .post(
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            json!({"ImageURI": prev}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let jid = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let job = api.wait_job(&jid, &["Scheduled"]).await;
    assert_eq!(job["Name"], "Firmware Rollback: BIOS");
    api.post(
        "/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset",
        json!({"ResetType": "GracefulRestart"}),
    )
    .await;
    let job = api.wait_job(&jid, &["Completed", "Failed"]).await;
    assert_eq!(job["MessageId"], "PR19");
    let after = version_of(&fleet, &h.name, "159");
    assert_ne!(after, before);
    assert!(prev.contains(&after));
    // Unknown inventory id -> SUP024.
    let r = api
        .post(
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            json!({"ImageURI": "/redfish/v1/UpdateService/FirmwareInventory/Previous-1-1"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "IDRAC.2.8.SUP024"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn bad_packages_fail_with_idrac_message_ids() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let wrong_system = bios("9.0.0");
    let mut wrong_system = wrong_system;
    wrong_system.system_ids = vec![1];
    let wrong_component = pkg("99999", "Tape", "1.0", PackageKind::Firmware, vec![]);
    let mut tampered = bios("9.0.1").to_bytes_padded(100);
    tampered[60] ^= 0x20;
    let cases: Vec<(&str, Option<Vec<u8>>, &str)> = vec![
        ("sys.exe", Some(wrong_system.to_bytes()), "RED017"),
        ("comp.exe", Some(wrong_component.to_bytes()), "RED097"),
        (
            "garbage.exe",
            Some(b"MZ\x90\x00 not a package".to_vec()),
            "RED008",
        ),
        ("tampered.exe", Some(tampered), "RED007"),
        ("missing.exe", None, "RED006"),
    ];
    for (name, bytes, id) in cases {
        let url = match bytes {
            Some(b) => fleet.serve_file(name, b),
            None => format!("{}/files/{name}", fleet.control_url()),
        };
        let jid = api.simple_update(&url).await;
        let job = api.wait_job(&jid, &["Failed", "Completed"]).await;
        assert_eq!(job["JobState"], "Failed", "{name}");
        assert_eq!(job["MessageId"], id, "{name}");
        let t = api
            .get_json(&format!("/redfish/v1/JobService/Jobs/{jid}"))
            .await;
        assert_eq!(t["JobState"], "Exception");
        assert_eq!(t["Messages"][0]["MessageId"], format!("IDRAC.2.8.{id}"));
    }
    assert!(fleet.installs(&h.name).is_empty());
    fleet.shutdown().await;
}

#[tokio::test]
async fn idrac_update_restarts_the_idrac() {
    let fleet = http_fleet(1, 2_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let c = client();
    let r = c
        .post(format!("{}/redfish/v1/SessionService/Sessions", h.url))
        .json(&json!({"UserName": "root", "Password": "calvin"}))
        .send()
        .await
        .unwrap();
    let token = r.headers()["x-auth-token"].to_str().unwrap().to_string();
    let p = pkg(
        "25227",
        "Integrated Dell Remote Access Controller",
        "7.00.00.00",
        PackageKind::Idrac,
        vec![],
    );
    let url = fleet.serve_file("idrac.exe", p.to_bytes());
    let jid = api.simple_update(&url).await;
    let running = api.wait_job(&jid, &["Running"]).await;
    assert_eq!(running["MessageId"], "RAC0608");
    api.wait_job(&jid, &["Completed"]).await;
    // Quirk: the LC still says Ready for a while after the job completed.
    let lc = api.post("/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellLCService/Actions/DellLCService.GetRemoteServicesAPIStatus", json!({})).await;
    let lc: Value = lc.json().await.unwrap();
    assert_eq!(lc["LCStatus"], "Ready");
    // Then the connection is refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if api.try_get("/redfish/v1").await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "iDRAC never went down"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!fleet.bmc_up(&h.name));
    // Back up: old session dropped, task lost, LC not ready for a while, version changed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.try_get("/redfish/v1").await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "iDRAC never came back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = c
        .get(format!("{}/redfish/v1/Systems", h.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        api.get(&format!("/redfish/v1/TaskService/Tasks/{jid}"))
            .await
            .status(),
        404
    );
    let job = api
        .get_json(&format!("/redfish/v1/JobService/Jobs/{jid}"))
        .await;
    assert_eq!(job["JobState"], "Completed");
    let lc: Value = api.post("/redfish/v1/Dell/Managers/iDRAC.Embedded.1/DellLCService/Actions/DellLCService.GetRemoteServicesAPIStatus", json!({})).await.json().await.unwrap();
    assert_eq!(lc["LCStatus"], "NotReady");
    let mgr = api.get_json("/redfish/v1/Managers/iDRAC.Embedded.1").await;
    assert_eq!(mgr["FirmwareVersion"], "7.00.00.00");
    fleet.shutdown().await;
}

#[tokio::test]
async fn manager_reset_refuses_connections_then_recovers() {
    let fleet = http_fleet(1, 2_000.0).await;
    let api = Api::new(&fleet.hosts()[0]);
    let r = api
        .post(
            "/redfish/v1/Managers/iDRAC.Embedded.1/Actions/Manager.Reset",
            json!({"ResetType": "GracefulRestart"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = api
        .post(
            "/redfish/v1/Managers/iDRAC.Embedded.1/Actions/Manager.Reset",
            json!({"ResetType": "ForceRestart"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.try_get("/redfish/v1").await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    while api.try_get("/redfish/v1").await.is_err() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fleet.shutdown().await;
}

fn multipart_body(boundary: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"UpdateParameters\"\r\nContent-Type: application/json\r\n\r\n{{\"Targets\":[],\"@Redfish.OperationApplyTime\":\"Immediate\",\"Oem\":{{}}}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"UpdateFile\"; filename=\"BIOS.EXE\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn multipart_upload_and_chunked_rejection() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let body = multipart_body("sim0123", &bios("9.1.0").to_bytes());
    let r = api
        .c
        .post(format!(
            "{}/redfish/v1/UpdateService/MultipartUpload",
            h.url
        ))
        .basic_auth("root", Some("calvin"))
        .header("Content-Type", "multipart/form-data; boundary=sim0123")
        .header("If-Match", "*")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let jid = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let job = api.wait_job(&jid, &["Scheduled"]).await;
    assert_eq!(job["Name"], "Firmware Update: BIOS");
    // The same upload sent chunked (no Content-Length) is refused.
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(body)]);
    let r = api
        .c
        .post(format!(
            "{}/redfish/v1/UpdateService/MultipartUpload",
            h.url
        ))
        .basic_auth("root", Some("calvin"))
        .header("Content-Type", "multipart/form-data; boundary=sim0123")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["@Message.ExtendedInfo"][0]["MessageId"].is_string());
    // Not multipart at all.
    let r = api
        .c
        .post(format!(
            "{}/redfish/v1/UpdateService/MultipartUpload",
            h.url
        ))
        .basic_auth("root", Some("calvin"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    fleet.shutdown().await;
}

#[tokio::test]
async fn http_push_uri_then_dell_install_now_and_reboot() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let r = api.get("/redfish/v1/UpdateService/FirmwareInventory").await;
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let form = |bytes: Vec<u8>| {
        reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("BIOS.EXE"),
        )
    };
    let r = api
        .c
        .post(format!(
            "{}/redfish/v1/UpdateService/FirmwareInventory",
            h.url
        ))
        .basic_auth("root", Some("calvin"))
        .multipart(form(bios("9.2.0").to_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "IDRAC.2.8.SYS404"
    );
    let r = api
        .c
        .post(format!(
            "{}/redfish/v1/UpdateService/FirmwareInventory",
            h.url
        ))
        .basic_auth("root", Some("calvin"))
        .header("If-Match", etag)
        .multipart(form(bios("9.2.0").to_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        loc.contains("/FirmwareInventory/Available-159-9.2.0"),
        "{loc}"
    );
    let r = api
        .post(
            "/redfish/v1/UpdateService/Actions/Oem/DellUpdateService.Install",
            json!({"SoftwareIdentityURIs": [loc], "InstallUpon": "NowAndReboot"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let jid = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let job = api.wait_job(&jid, &["Completed", "Failed"]).await;
    assert_eq!(job["JobState"], "Completed");
    assert_eq!(version_of(&fleet, &h.name, "159"), "9.2.0");
    fleet.shutdown().await;
}

#[tokio::test]
async fn idrac10_task_monitor_and_job_queue_management() {
    let fleet = Fleet::builder()
        .http(true)
        .flavor(Flavor::Idrac10)
        .speed(20_000.0)
        .start()
        .await
        .unwrap();
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let p = pkg(
        "25806",
        "Diagnostics",
        "4301A90",
        PackageKind::Diagnostics,
        vec![],
    );
    let url = fleet.serve_file("d.exe", p.to_bytes());
    let r = api
        .post(
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            json!({"ImageURI": url}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("/redfish/v1/TaskService/TaskMonitors/JID_"));
    assert!(r.bytes().await.unwrap().is_empty());
    let m = api.get(&loc).await;
    assert_eq!(m.status(), 202);
    assert!(m.bytes().await.unwrap().is_empty());
    let jid = loc.rsplit('/').next().unwrap().to_string();
    let job = api.wait_job(&jid, &["Completed"]).await;
    assert_eq!(job["@odata.type"], "#DellJob.v1_6_0.DellJob");
    assert!(job["EndTime"].is_null());
    // A second job, then clear the queue.
    let url = fleet.serve_file("b.exe", bios("3.0.0").to_bytes());
    let mut bad = bios("3.0.0");
    bad.system_ids = vec![3290];
    let url2 = fleet.serve_file("b2.exe", bad.to_bytes());
    let jid2 = api.simple_update(&url).await;
    let jid3 = api.simple_update(&url2).await;
    api.wait_job(&jid2, &["Failed"]).await;
    api.wait_job(&jid3, &["Scheduled"]).await;
    let r = api
        .c
        .delete(format!(
            "{}/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/{jid2}",
            h.url
        ))
        .basic_auth("root", Some("calvin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["@Message.ExtendedInfo"][1]["MessageId"],
        "IDRAC.2.9.SYS413"
    );
    let r = api.post("/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellJobService/Actions/DellJobService.DeleteJobQueue", json!({"JobID": "JID_CLEARALL"})).await;
    assert_eq!(r.status(), 200);
    let jobs = api
        .get_json("/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs")
        .await;
    assert_eq!(jobs["Members@odata.count"], 0);
    fleet.shutdown().await;
}

#[tokio::test]
async fn install_from_repository_with_catalog() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let sw = "/redfish/v1/Systems/System.Embedded.1/Oem/Dell/DellSoftwareInstallationService";
    // Nothing compared yet.
    let r = api
        .post(
            &format!("{sw}/Actions/DellSoftwareInstallationService.GetRepoBasedUpdateList"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "IDRAC.2.8.SUP029"
    );
    let pkgs = vec![
        bios("9.5.0"),
        pkg(
            "25806",
            "Diagnostics",
            "4301A99",
            PackageKind::Diagnostics,
            vec![h.system_id],
        ),
        pkg(
            "15B3:101D:15B3:0016",
            "Mellanox ConnectX-6",
            "99.0.0",
            PackageKind::Nic,
            vec![h.system_id],
        ),
        pkg("159", "BIOS", "1.0.0", PackageKind::Bios, vec![h.system_id]), // older: skipped
    ];
    let mut entries = Vec::new();
    for p in pkgs {
        let bytes = p.to_bytes();
        let e = CatalogEntry::new(p, bytes.clone());
        fleet.serve_file(&format!("repo/{}", e.path), bytes);
        entries.push(e);
    }
    let cat = catalog::write(&entries, &CatalogOptions::default()).unwrap();
    let url = fleet.serve_file("repo/Catalog.xml", cat);
    let ip = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let body = json!({"IPAddress": ip, "ShareType": "HTTP", "ShareName": "files/repo", "CatalogFile": "Catalog.xml",
        "ApplyUpdate": "False", "RebootNeeded": false});
    let r = api
        .post(
            &format!("{sw}/Actions/DellSoftwareInstallationService.InstallFromRepository"),
            body.clone(),
        )
        .await;
    assert_eq!(r.status(), 202);
    let jid = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let job = api.wait_job(&jid, &["Completed", "Failed"]).await;
    assert_eq!(job["JobState"], "Completed", "{job}");
    assert_eq!(job["JobType"], "RepositoryUpdate");
    let list: Value = api
        .post(
            &format!("{sw}/Actions/DellSoftwareInstallationService.GetRepoBasedUpdateList"),
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let xml = list["PackageList"].as_str().unwrap();
    assert_eq!(xml.matches("DCIM_RepoUpdateSWID").count(), 3, "{xml}");
    assert!(
        xml.contains("<VALUE>9.5.0</VALUE>")
            && xml.contains("<VALUE>HOST</VALUE>")
            && xml.contains("<VALUE>NONE</VALUE>")
    );
    assert!(fleet.installs(&h.name).is_empty());
    // Apply with reboot.
    let mut body = body;
    body["ApplyUpdate"] = json!("True");
    body["RebootNeeded"] = json!(true);
    let r = api
        .post(
            &format!("{sw}/Actions/DellSoftwareInstallationService.InstallFromRepository"),
            body.clone(),
        )
        .await;
    let jid = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let job = api
        .wait_job(&jid, &["Completed", "CompletedWithErrors", "Failed"])
        .await;
    assert_eq!(
        job["JobState"],
        "Completed",
        "{job} {:?}",
        fleet.jobs(&h.name)
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fleet.installs(&h.name).len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            fleet.jobs(&h.name)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(version_of(&fleet, &h.name, "159"), "9.5.0");
    assert_eq!(version_of(&fleet, &h.name, "0"), "99.0.0");
    // Up to date now: the next comparison finds nothing (SUP029).
    let r = api
        .post(
            &format!("{sw}/Actions/DellSoftwareInstallationService.InstallFromRepository"),
            body,
        )
        .await;
    let jid = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let job = api.wait_job(&jid, &["Completed"]).await;
    assert_eq!(job["MessageId"], "SUP029");
    // Legacy 3.x path serves the same service.
    assert_eq!(
        api.get("/redfish/v1/Dell/Systems/System.Embedded.1/DellSoftwareInstallationService")
            .await
            .status(),
        200
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn generic_flavour_update_via_dmtf_task() {
    let fleet = Fleet::builder()
        .http(true)
        .flavor(Flavor::Generic)
        .speed(20_000.0)
        .start()
        .await
        .unwrap();
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    let p = pkg(
        "25806",
        "Diagnostics",
        "4301A91",
        PackageKind::Diagnostics,
        vec![],
    );
    let url = fleet.serve_file("d.exe", p.to_bytes());
    let r = api
        .post(
            "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            json!({"ImageURI": url, "TransferProtocol": "HTTP"}),
        )
        .await;
    assert_eq!(r.status(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(loc, "/redfish/v1/TaskService/Tasks/1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let t = api.get_json(&loc).await;
        assert!(t.get("Oem").is_none());
        if t["TaskState"] == "Completed" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(version_of(&fleet, &h.name, "25806"), "4301A91");
    fleet.shutdown().await;
}
