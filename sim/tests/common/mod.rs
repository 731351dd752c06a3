//! Helpers shared by the simulator's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use firmflow_sim::{Fleet, Package, PackageKind, SimHostInfo};
use serde_json::Value;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub struct Api {
    pub c: reqwest::Client,
    pub base: String,
    pub user: String,
    pub pass: String,
}

impl Api {
    pub fn new(h: &SimHostInfo) -> Api {
        Api {
            c: client(),
            base: h.url.clone(),
            user: h.username.clone(),
            pass: h.password.clone(),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.c
            .get(format!("{}{}", self.base, path))
            .basic_auth(&self.user, Some(&self.pass))
            .send()
            .await
            .unwrap()
    }

    pub async fn try_get(&self, path: &str) -> reqwest::Result<reqwest::Response> {
        self.c
            .get(format!("{}{}", self.base, path))
            .basic_auth(&self.user, Some(&self.pass))
            .send()
            .await
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.c
            .post(format!("{}{}", self.base, path))
            .basic_auth(&self.user, Some(&self.pass))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Polls a Dell job until `done(JobState)` or panics after 20 s.
    pub async fn wait_job(&self, jid: &str, done: &[&str]) -> Value {
        let path = format!("/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/{jid}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self.try_get(&path).await
                && r.status().is_success()
            {
                let v: Value = r.json().await.unwrap();
                if done.iter().any(|d| v["JobState"] == *d) {
                    return v;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {jid} never reached {done:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn simple_update(&self, uri: &str) -> String {
        let r = self
            .post(
                "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
                serde_json::json!({"ImageURI": uri, "TransferProtocol": "HTTP"}),
            )
            .await;
        assert_eq!(r.status(), 202, "{:?}", r.text().await);
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        loc.rsplit('/').next().unwrap().to_string()
    }
}

pub fn pkg(
    component_id: &str,
    name: &str,
    version: &str,
    kind: PackageKind,
    systems: Vec<u32>,
) -> Package {
    Package {
        system_ids: systems,
        component_id: component_id.into(),
        name: name.into(),
        version: version.into(),
        reboot_required: !matches!(kind, PackageKind::Idrac | PackageKind::Diagnostics),
        kind,
    }
}

pub fn bios(version: &str) -> Package {
    pkg(
        "159",
        "BIOS",
        version,
        PackageKind::Bios,
        vec![1814, 2300, 2973],
    )
}

pub fn version_of(fleet: &Fleet, host: &str, component: &str) -> String {
    fleet
        .firmware(host)
        .into_iter()
        .find(|(c, _, _)| c == component)
        .map(|(_, _, v)| v)
        .unwrap()
}

pub async fn http_fleet(n: usize, speed: f64) -> Fleet {
    Fleet::builder()
        .hosts(n)
        .http(true)
        .speed(speed)
        .seed(42)
        .start()
        .await
        .unwrap()
}
