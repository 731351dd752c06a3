//! Request budget of the Redfish drivers against the simulated fleet:
//! requests per single-component update (login + discovery, submit, polls
//! with backoff, reboot, verification, logout) and per reboot wait, counted
//! by the driver and cross-checked with the simulator's inspection API.
//!
//! Run: `cargo run -p firmflow-redfish --example request_budget`

use chrono::Utc;
use firmflow_core::bmc::{
    ApplyTime, BmcDriver, BmcJobState, PowerState, ResetKind, UpdateOptions, UpdateStart,
};
use firmflow_core::credentials::{self, Credential, CredentialProvider};
use firmflow_core::model::{ComponentKind, MgmtKind, NewHost, Package, PackageSource};
use firmflow_redfish::{Connector, ConnectorConfig, Flavor};
use firmflow_sim::{Flavor as SimFlavor, Fleet, PackageKind};
use std::sync::Arc;
use std::time::Duration;

struct Creds(String, String);

#[async_trait::async_trait]
impl CredentialProvider for Creds {
    async fn resolve(&self, _: &str) -> Result<Credential, credentials::Error> {
        Ok(Credential::new(&self.0, &self.1))
    }
}

/// Poll interval: start small, grow 1.5x, cap (real time; the sim runs 20000x).
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(100);

#[tokio::main]
async fn main() {
    println!(
        "| flavour | login+discovery | submit | polls (GETs) | reboot | verify | logout | driver total | sim-counted total | reboot wait (requests, 3 stable reads) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (sf, df, kind) in [
        (SimFlavor::Idrac9, Flavor::Idrac, MgmtKind::Idrac),
        (SimFlavor::Idrac10, Flavor::Idrac, MgmtKind::Idrac),
        (SimFlavor::Generic, Flavor::Generic, MgmtKind::Redfish),
    ] {
        let fleet = Fleet::builder()
            .hosts(1)
            .flavor(sf)
            .http(true)
            .speed(20_000.0)
            .seed(1)
            .start()
            .await
            .unwrap();
        let h = fleet.hosts()[0].clone();
        let cfg = ConnectorConfig {
            scheme: "http".into(),
            default_credential: Some("x".into()),
            lc_settle: Duration::ZERO,
            ..ConnectorConfig::default()
        };
        let c = Connector::new(cfg, Arc::new(Creds(h.username.clone(), h.password.clone())));
        let mut host = NewHost::idrac("bench", &h.url).into_host(Utc::now());
        host.mgmt_kind = kind;
        let d = c.redfish_driver(&host, df).await.unwrap();
        let url = fleet.serve_file(
            "BIOS.EXE",
            firmflow_sim::Package {
                system_ids: vec![],
                component_id: "159".into(),
                name: "BIOS".into(),
                version: "9.9.9".into(),
                reboot_required: true,
                kind: PackageKind::Bios,
            }
            .to_bytes(),
        );
        let p = Package {
            component_id: "159".into(),
            name: "BIOS".into(),
            kind: ComponentKind::Bios,
            target_version: "9.9.9".into(),
            installed_version: None,
            source: PackageSource::ImageUri { uri: url },
            checksum: None,
            size_bytes: None,
            reboot_required: true,
            criticality: None,
        };
        let t0 = d.requests().total();
        d.services().await.unwrap();
        let discovery = d.requests().total() - t0;
        let opts = UpdateOptions {
            apply: ApplyTime::Immediate,
            force: false,
            known_jobs: Vec::new(),
        };
        let UpdateStart::Submitted(job) = d.start_update(&p, &opts).await.unwrap() else {
            panic!("no-op")
        };
        let submit = d.requests().total() - t0 - discovery;
        let (mut polls, mut reboot, mut delay, mut rebooted) = (0u64, 0u64, FIRST_POLL, false);
        loop {
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(MAX_POLL);
            polls += 1;
            let st = d.poll_job(&job).await.unwrap();
            if st.state == BmcJobState::AwaitingReboot && !rebooted {
                let b = d.requests().total();
                d.reset(ResetKind::ForceRestart).await.unwrap();
                reboot += d.requests().total() - b;
                rebooted = true;
            } else if st.state.is_final() {
                assert_eq!(st.state, BmcJobState::Completed, "{st:?}");
                break;
            }
        }
        let b = d.requests().total();
        let inv = d.inventory().await.unwrap();
        assert_eq!(inv.installed_for("159").unwrap().version, "9.9.9");
        let verify = d.requests().total() - b;
        // Reboot wait: reset, then power On + LC ready on 3 consecutive reads.
        let b = d.requests().total();
        d.reset(ResetKind::ForceRestart).await.unwrap();
        let (mut stable, mut delay) = (0, FIRST_POLL);
        while stable < 3 {
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(MAX_POLL);
            match d.readiness().await {
                Ok(r) if r.ready && r.power == PowerState::On => stable += 1,
                _ => stable = 0,
            }
        }
        let reboot_wait = d.requests().total() - b;
        let b = d.requests().total();
        d.close().await.unwrap();
        let logout = d.requests().total() - b;
        let total = d.requests().total() - reboot_wait;
        let sim_total = fleet.requests(&h.name).total;
        println!(
            "| {sf:?} | {discovery} | {submit} | {polls} | {reboot} | {verify} | {logout} | {total} | {} | {reboot_wait} |",
            sim_total - reboot_wait
        );
        fleet.shutdown().await;
    }
}
