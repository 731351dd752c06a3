//! Resources, auth and sessions over real HTTP.

mod common;

use common::*;
use firmflow_sim::{Flavor, Fleet};
use serde_json::{Value, json};

#[tokio::test]
async fn service_root_auth_and_errors() {
    let fleet = http_fleet(1, 1000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    // Service root needs no auth.
    let root: Value = api
        .c
        .get(format!("{}/redfish/v1", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["Product"], "Integrated Dell Remote Access Controller");
    assert_eq!(root["Oem"]["Dell"]["ServiceTag"], h.service_tag.as_str());
    assert_eq!(
        root["Links"]["Sessions"]["@odata.id"],
        "/redfish/v1/SessionService/Sessions"
    );
    // Everything else does.
    let r = api
        .c
        .get(format!("{}/redfish/v1/Systems", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = api
        .c
        .get(format!("{}/redfish/v1/Systems", h.url))
        .basic_auth("root", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "IDRAC.2.8.SYS415"
    );
    // System.
    let sys = api.get_json("/redfish/v1/Systems/System.Embedded.1").await;
    assert_eq!(sys["SKU"], h.service_tag.as_str());
    assert_eq!(sys["Oem"]["Dell"]["DellSystem"]["SystemID"], h.system_id);
    assert_eq!(sys["PowerState"], "On");
    assert_eq!(sys["Status"]["Health"], "OK");
    assert_eq!(
        sys["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"],
        json!([
            "On",
            "ForceOff",
            "ForceRestart",
            "GracefulRestart",
            "GracefulShutdown",
            "PushPowerButton",
            "Nmi",
            "PowerCycle"
        ])
    );
    assert_eq!(sys["BiosVersion"], version_of(&fleet, &h.name, "159"));
    // Manager.
    let mgr = api.get_json("/redfish/v1/Managers/iDRAC.Embedded.1").await;
    assert_eq!(mgr["Model"], "14G Monolithic");
    assert_eq!(mgr["FirmwareVersion"], version_of(&fleet, &h.name, "25227"));
    assert!(mgr["ServiceEntryPointUUID"].is_string());
    assert_eq!(
        mgr["Links"]["Oem"]["Dell"]["Jobs"]["@odata.id"],
        "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs"
    );
    // 404 and 405 with iDRAC-shaped errors.
    let r = api.get("/redfish/v1/Nope").await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["@Message.ExtendedInfo"][0]["MessageId"]
            .as_str()
            .unwrap()
            .ends_with("SYS403")
    );
    let r = api
        .c
        .delete(format!("{}/redfish/v1/Systems/System.Embedded.1", h.url))
        .basic_auth("root", Some("calvin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // Malformed JSON never panics.
    let r = api
        .c
        .post(format!(
            "{}/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
            h.url
        ))
        .basic_auth("root", Some("calvin"))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // $select.
    let v = api
        .get_json("/redfish/v1/Systems/System.Embedded.1?$select=PowerState")
        .await;
    assert_eq!(v["PowerState"], "On");
    assert!(v.get("Model").is_none());
    // ETag + If-None-Match.
    let r = api.get("/redfish/v1/Managers").await;
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = api
        .c
        .get(format!("{}/redfish/v1/Managers", h.url))
        .basic_auth("root", Some("calvin"))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    fleet.shutdown().await;
}

#[tokio::test]
async fn inventory_shape() {
    let fleet = http_fleet(1, 1000.0).await;
    let api = Api::new(&fleet.hosts()[0]);
    let inv = api
        .get_json("/redfish/v1/UpdateService/FirmwareInventory?$expand=*($levels=1)")
        .await;
    let members = inv["Members"].as_array().unwrap();
    let ids: Vec<&str> = members.iter().map(|m| m["Id"].as_str().unwrap()).collect();
    assert!(ids.iter().any(|i| i.starts_with("Installed-25227-")));
    assert!(ids.iter().any(|i| i.starts_with("Previous-159-")));
    let nic0 = members.iter().find(|m| m["SoftwareId"] == "0").unwrap();
    assert_eq!(nic0["ReleaseDate"], "00:00:00Z");
    assert!(
        nic0["Name"]
            .as_str()
            .unwrap()
            .starts_with("Mellanox Network Adapter - ")
    );
    let idrac = members.iter().find(|m| m["SoftwareId"] == "25227").unwrap();
    assert_eq!(idrac["Name"], "Integrated Dell Remote Access Controller");
    assert_eq!(idrac["Updateable"], true);
    let prev = members
        .iter()
        .find(|m| m["Id"].as_str().unwrap().starts_with("Previous-25227"))
        .unwrap();
    assert_eq!(
        prev["Oem"]["Dell"]["DellSoftwareInventory"]["Status"],
        "AvailableForInstallation"
    );
    // Unexpanded collection + member.
    let inv = api
        .get_json("/redfish/v1/UpdateService/FirmwareInventory")
        .await;
    let first = inv["Members"][0]["@odata.id"].as_str().unwrap().to_string();
    let m = api.get_json(&first).await;
    assert_eq!(m["@odata.id"], first.as_str());
    let us = api.get_json("/redfish/v1/UpdateService").await;
    assert_eq!(
        us["HttpPushUri"],
        "/redfish/v1/UpdateService/FirmwareInventory"
    );
    assert_eq!(
        us["MultipartHttpPushUri"],
        "/redfish/v1/UpdateService/MultipartUpload"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn sessions_login_logout_and_cap() {
    let fleet = Fleet::builder()
        .http(true)
        .max_sessions(2)
        .start()
        .await
        .unwrap();
    let h = &fleet.hosts()[0];
    let c = client();
    let login = || async {
        c.post(format!("{}/redfish/v1/SessionService/Sessions", h.url))
            .json(&json!({"UserName": "root", "Password": "calvin"}))
            .send()
            .await
            .unwrap()
    };
    let r = login().await;
    assert_eq!(r.status(), 201);
    let token = r.headers()["x-auth-token"].to_str().unwrap().to_string();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["@Message.ExtendedInfo"][1]["MessageId"],
        "IDRAC.2.8.SYS414"
    );
    assert_eq!(fleet.live_sessions(&h.name), 1);
    let r = c
        .get(format!("{}/redfish/v1/Systems", h.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Old path works too.
    let r = c
        .get(format!("{}/redfish/v1/Sessions", h.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(login().await.status(), 201);
    let r = login().await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "IDRAC.2.8.RAC0218"
    );
    // Bad credentials.
    let r = c
        .post(format!("{}/redfish/v1/SessionService/Sessions", h.url))
        .json(&json!({"UserName": "root", "Password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Logout.
    let r = c
        .delete(format!("{}{}", h.url, loc))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/redfish/v1/Systems", h.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(fleet.live_sessions(&h.name), 1);
    // The peak counts the two sessions alive at once, not the refused third,
    // and stays after the logout.
    assert_eq!(fleet.peak_sessions(&h.name), 2);
    fleet.shutdown().await;
}

#[tokio::test]
async fn session_idle_timeout() {
    // 1800 Dell seconds at speed 100000 = 18 ms.
    let fleet = Fleet::builder()
        .http(true)
        .speed(100_000.0)
        .start()
        .await
        .unwrap();
    let h = &fleet.hosts()[0];
    let c = client();
    let r = c
        .post(format!("{}/redfish/v1/SessionService/Sessions", h.url))
        .json(&json!({"UserName": "root", "Password": "calvin"}))
        .send()
        .await
        .unwrap();
    let token = r.headers()["x-auth-token"].to_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let r = c
        .get(format!("{}/redfish/v1/Systems", h.url))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(fleet.live_sessions(&h.name), 0);
    fleet.shutdown().await;
}

#[tokio::test]
async fn https_with_self_signed_cert() {
    let fleet = Fleet::builder().hosts(1).seed(3).start().await.unwrap();
    let h = &fleet.hosts()[0];
    assert!(h.url.starts_with("https://127.0.0.1:"));
    let pem = fleet.ca_cert_pem().unwrap();
    // Pinned certificate, full verification.
    let c = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let pinned = c
        .get(format!("https://localhost:{}/redfish/v1", h.addr.port()))
        .send()
        .await;
    // Accept-invalid mode (what most BMC clients do).
    let v: Value = client()
        .get(format!("{}/redfish/v1/Systems/System.Embedded.1", h.url))
        .basic_auth("root", Some("calvin"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["Id"], "System.Embedded.1");
    // Plain HTTP to an HTTPS port fails.
    assert!(
        client()
            .get(format!("http://{}/redfish/v1", h.addr))
            .send()
            .await
            .is_err()
            || pinned.is_ok()
    );
    let r = pinned.expect("pinned self-signed certificate verifies");
    assert_eq!(r.status(), 200);
    fleet.shutdown().await;
}

#[tokio::test]
async fn virtual_host_mode_routes_by_host_header() {
    let fleet = Fleet::builder()
        .hosts(3)
        .http(true)
        .virtual_hosts(true)
        .seed(9)
        .start()
        .await
        .unwrap();
    let hosts = fleet.hosts();
    assert_eq!(hosts[0].addr, hosts[2].addr);
    let mut b = reqwest::Client::builder().no_proxy();
    for h in hosts {
        b = b.resolve(&format!("{}.localhost", h.name), h.addr);
    }
    let c = b.build().unwrap();
    for h in hosts {
        let v: Value = c
            .get(format!("{}/redfish/v1/Systems/System.Embedded.1", h.url))
            .basic_auth("root", Some("calvin"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["SKU"], h.service_tag.as_str(), "{}", h.name);
    }
    // Raw Host header on the shared address.
    let v: Value = c
        .get(format!("http://{}/redfish/v1", hosts[1].addr))
        .header("Host", &hosts[1].host_header)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["Oem"]["Dell"]["ServiceTag"],
        hosts[1].service_tag.as_str()
    );
    let r = c
        .get(format!("http://{}/redfish/v1", hosts[1].addr))
        .header("Host", "nobody.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        fleet
            .requests(&hosts[0].name)
            .count("GET", "/redfish/v1/Systems/{id}"),
        1
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn flavours_idrac10_and_generic() {
    let fleet = Fleet::builder()
        .hosts(2)
        .http(true)
        .flavor(Flavor::Idrac10)
        .flavor_for(1, Flavor::Generic)
        .start()
        .await
        .unwrap();
    let (a, b) = (Api::new(&fleet.hosts()[0]), Api::new(&fleet.hosts()[1]));
    let mgr = a.get_json("/redfish/v1/Managers/iDRAC.Embedded.1").await;
    assert_eq!(mgr["Model"], "17G Monolithic");
    let us = a.get_json("/redfish/v1/UpdateService").await;
    assert!(us.get("HttpPushUri").is_none());
    assert_eq!(
        a.post("/redfish/v1/UpdateService/FirmwareInventory", json!({}))
            .await
            .status(),
        405
    );
    // Generic: no Dell OEM anywhere, DMTF ids.
    let root = b.get_json("/redfish/v1").await;
    assert!(root.get("Oem").is_none());
    assert!(root.get("JobService").is_none());
    let systems = b.get_json("/redfish/v1/Systems").await;
    let sys_path = systems["Members"][0]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sys_path, "/redfish/v1/Systems/1");
    let sys = b.get_json(&sys_path).await;
    assert!(sys.get("Oem").is_none());
    assert_eq!(
        b.get("/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs")
            .await
            .status(),
        404
    );
    let inv = b
        .get_json("/redfish/v1/UpdateService/FirmwareInventory?$expand=.")
        .await;
    assert!(
        inv["Members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("Oem").is_none())
    );
    fleet.shutdown().await;
}
