//! Every `BmcDriver` runs core's conformance suite
//! (`firmflow_core::testkit::bmc_conformance`): the scripted FakeBmc the
//! executor tests use, and the real drivers on the simulated fleet over
//! HTTP — iDRAC9 (image URI and repository delivery), iDRAC10, the generic
//! Redfish driver, and racadm through the fake racadm that speaks to the
//! simulator (`src/bin/fake_racadm.rs`).

use async_trait::async_trait;
use chrono::Utc;
use firmflow_core::bmc::{BmcConnector, BmcDriver};
use firmflow_core::credentials::{self, Credential, CredentialProvider};
use firmflow_core::model::{ComponentKind, MgmtKind, NewHost, Package, PackageSource};
use firmflow_core::testkit::bmc_conformance::{BmcControl, BmcFactory, BmcSubject, run_all};
use firmflow_core::testkit::fakes::{FakeFleet, HostScript};
use firmflow_redfish::{Connector, ConnectorConfig, RacadmConfig, RacadmDriver};
use firmflow_sim::{Fault, Flavor, Fleet, PackageKind};
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------- FakeBmc

struct FakeControl {
    fleet: FakeFleet,
    host: String,
}

#[async_trait]
impl BmcControl for FakeControl {
    async fn set_version(&self, component_id: &str, version: &str) {
        self.fleet.set_version(&self.host, component_id, version);
    }
    async fn fail_jobs(&self, failing: bool) {
        self.fleet.set_failing(&self.host, "159", failing);
    }
    async fn restart_bmc(&self) {
        // The fake's job queue is durable, like a Dell job queue across an
        // iDRAC restart: nothing it models is lost.
    }
    fn install_count(&self, component_id: &str) -> usize {
        self.fleet
            .installs(&self.host)
            .iter()
            .filter(|(c, _)| c == component_id)
            .count()
    }
}

struct FakeFactory {
    job_listing: bool,
}

fn fake_package(cid: &str, name: &str, kind: ComponentKind, version: &str) -> Package {
    Package {
        component_id: cid.into(),
        name: name.into(),
        kind,
        target_version: version.into(),
        installed_version: None,
        source: PackageSource::ImageUri {
            uri: format!("http://repo.example/{cid}-{version}.exe"),
        },
        checksum: None,
        size_bytes: None,
        reboot_required: kind != ComponentKind::Bmc,
        criticality: None,
    }
}

#[async_trait]
impl BmcFactory for FakeFactory {
    async fn fresh(&self) -> BmcSubject {
        let fleet = FakeFleet::new();
        let host = NewHost::idrac("fake-1.example", "10.0.0.1").into_host(Utc::now());
        fleet.add_host(
            &host.fqdn,
            HostScript {
                job_listing: self.job_listing,
                ..HostScript::default()
            },
        );
        let driver = fleet.connect(&host).await.unwrap();
        BmcSubject {
            driver,
            control: Arc::new(FakeControl {
                fleet,
                host: host.fqdn.clone(),
            }),
            package: fake_package("159", "BIOS", ComponentKind::Bios, "2.12.0"),
            other_package: Some(fake_package(
                "25227",
                "Integrated Dell Remote Access Controller",
                ComponentKind::Bmc,
                "7.00.00.00",
            )),
            installed_version: "2.10.0".into(),
            lists_jobs: self.job_listing,
            pause: Duration::from_secs(10),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn fake_bmc_passes_the_conformance_suite() {
    run_all(&FakeFactory { job_listing: true }).await;
}

#[tokio::test(start_paused = true)]
async fn fake_bmc_without_job_listing_passes_the_conformance_suite() {
    run_all(&FakeFactory { job_listing: false }).await;
}

// ------------------------------------------------------ the simulated fleet

/// Dell minutes become tens of microseconds: a case takes milliseconds.
const SPEED: f64 = 20_000.0;
const POLL: Duration = Duration::from_millis(5);

struct StaticCreds(String, String);

#[async_trait]
impl CredentialProvider for StaticCreds {
    async fn resolve(&self, _reference: &str) -> Result<Credential, credentials::Error> {
        Ok(Credential::new(&self.0, &self.1))
    }
}

struct SimControl {
    fleet: Fleet,
    host: String,
    url: String,
    user: String,
    password: String,
}

#[async_trait]
impl BmcControl for SimControl {
    async fn set_version(&self, component_id: &str, version: &str) {
        assert!(
            self.fleet
                .set_component_version(&self.host, component_id, version),
            "sim has component {component_id}"
        );
    }
    async fn fail_jobs(&self, failing: bool) {
        if failing {
            self.fleet.inject(&self.host, Fault::FailJob);
        } else {
            self.fleet.clear_faults(&self.host);
        }
    }
    async fn restart_bmc(&self) {
        // What an operator's `racadm racreset` or a watchdog does: the
        // Manager.Reset action of the BMC's own manager.
        let http = reqwest::Client::new();
        let managers: serde_json::Value = http
            .get(format!("{}/redfish/v1/Managers", self.url))
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let manager = managers["Members"][0]["@odata.id"].as_str().unwrap();
        let r = http
            .post(format!("{}{manager}/Actions/Manager.Reset", self.url))
            .basic_auth(&self.user, Some(&self.password))
            .json(&serde_json::json!({"ResetType": "GracefulRestart"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "manager reset: {}", r.status());
    }
    fn install_count(&self, component_id: &str) -> usize {
        self.fleet.install_count(&self.host, component_id)
    }
}

#[derive(Clone, Copy)]
enum Delivery {
    ImageUri,
    Repository,
}

#[derive(Clone)]
enum Driver {
    Redfish(MgmtKind),
    Racadm,
}

struct SimFactory {
    flavor: Flavor,
    delivery: Delivery,
    driver: Driver,
}

fn sim_pkg(cid: &str, name: &str, version: &str, kind: PackageKind) -> firmflow_sim::Package {
    firmflow_sim::Package {
        system_ids: vec![],
        component_id: cid.into(),
        name: name.into(),
        version: version.into(),
        reboot_required: !matches!(kind, PackageKind::Idrac | PackageKind::Diagnostics),
        kind,
    }
}

fn package(p: &firmflow_sim::Package, kind: ComponentKind, source: PackageSource) -> Package {
    Package {
        component_id: p.component_id.clone(),
        name: p.name.clone(),
        kind,
        target_version: p.version.clone(),
        installed_version: None,
        source,
        checksum: None,
        size_bytes: None,
        reboot_required: p.reboot_required,
        criticality: None,
    }
}

/// A catalog share holding `packages`, as an iDRAC's InstallFromRepository reads it.
fn serve_repository(fleet: &Fleet, packages: &[firmflow_sim::Package]) -> String {
    let entries: Vec<firmflow_sim::catalog::CatalogEntry> = packages
        .iter()
        .map(|p| firmflow_sim::catalog::CatalogEntry::new(p.clone(), p.to_bytes()))
        .collect();
    for e in &entries {
        fleet.serve_file(&format!("repo/{}", e.path), e.bytes.clone());
    }
    let xml =
        firmflow_sim::catalog::write(&entries, &firmflow_sim::catalog::CatalogOptions::default())
            .unwrap();
    let url = fleet.serve_file("repo/Catalog.xml", xml);
    url.trim_end_matches("/Catalog.xml").to_string()
}

#[async_trait]
impl BmcFactory for SimFactory {
    async fn fresh(&self) -> BmcSubject {
        let fleet = Fleet::builder()
            .hosts(1)
            .flavor(self.flavor)
            .http(true)
            .speed(SPEED)
            .seed(11)
            .start()
            .await
            .unwrap();
        let info = fleet.hosts()[0].clone();
        let installed_version = fleet
            .firmware(&info.name)
            .into_iter()
            .find(|(cid, _, _)| cid == "159")
            .map(|(_, _, v)| v)
            .expect("the sim host has a BIOS");
        let bios = sim_pkg("159", "BIOS", "9.9.9", PackageKind::Bios);
        let diag = sim_pkg(
            "25806",
            "Dell 64 Bit uEFI Diagnostics",
            "4.5.6",
            PackageKind::Diagnostics,
        );
        let (package, other_package) = match self.delivery {
            Delivery::ImageUri => {
                let b = fleet.serve_file("BIOS_999.EXE", bios.to_bytes());
                let d = fleet.serve_file("DIAG_456.EXE", diag.to_bytes());
                (
                    package(
                        &bios,
                        ComponentKind::Bios,
                        PackageSource::ImageUri { uri: b },
                    ),
                    Some(package(
                        &diag,
                        ComponentKind::Other,
                        PackageSource::ImageUri { uri: d },
                    )),
                )
            }
            Delivery::Repository => {
                let repo = serve_repository(&fleet, std::slice::from_ref(&bios));
                (
                    package(
                        &bios,
                        ComponentKind::Bios,
                        PackageSource::Repository {
                            repository_uri: repo,
                            catalog_file: "Catalog.xml".into(),
                        },
                    ),
                    None,
                )
            }
        };
        let driver: Arc<dyn BmcDriver> = match &self.driver {
            Driver::Redfish(kind) => {
                let connector = Connector::new(
                    ConnectorConfig {
                        scheme: "http".into(),
                        default_credential: Some("sim".into()),
                        lc_settle: Duration::ZERO,
                        ..ConnectorConfig::default()
                    },
                    Arc::new(StaticCreds(info.username.clone(), info.password.clone())),
                );
                let mut host = NewHost::idrac("server-1.example", &info.url);
                host.mgmt_kind = kind.clone();
                connector
                    .connect(&host.into_host(Utc::now()))
                    .await
                    .unwrap()
            }
            Driver::Racadm => Arc::new(RacadmDriver::new(
                RacadmConfig {
                    binary: env!("CARGO_BIN_EXE_fake_racadm").into(),
                    timeout: Duration::from_secs(20),
                    password_on_command_line: true,
                },
                info.url.clone(),
                Credential::new(&info.username, &info.password),
            )),
        };
        BmcSubject {
            driver,
            control: Arc::new(SimControl {
                host: info.name.clone(),
                url: info.url.clone(),
                user: info.username.clone(),
                password: info.password.clone(),
                fleet,
            }),
            package,
            other_package,
            installed_version,
            lists_jobs: true,
            pause: POLL,
        }
    }
}

#[tokio::test]
async fn idrac9_driver_passes_the_conformance_suite() {
    run_all(&SimFactory {
        flavor: Flavor::Idrac9,
        delivery: Delivery::ImageUri,
        driver: Driver::Redfish(MgmtKind::Idrac),
    })
    .await;
}

#[tokio::test]
async fn idrac9_repository_delivery_passes_the_conformance_suite() {
    run_all(&SimFactory {
        flavor: Flavor::Idrac9,
        delivery: Delivery::Repository,
        driver: Driver::Redfish(MgmtKind::Idrac),
    })
    .await;
}

#[tokio::test]
async fn idrac10_driver_passes_the_conformance_suite() {
    run_all(&SimFactory {
        flavor: Flavor::Idrac10,
        delivery: Delivery::ImageUri,
        driver: Driver::Redfish(MgmtKind::Idrac),
    })
    .await;
}

#[tokio::test]
async fn generic_redfish_driver_passes_the_conformance_suite() {
    run_all(&SimFactory {
        flavor: Flavor::Generic,
        delivery: Delivery::ImageUri,
        driver: Driver::Redfish(MgmtKind::Redfish),
    })
    .await;
}

#[tokio::test]
async fn racadm_driver_passes_the_conformance_suite() {
    run_all(&SimFactory {
        flavor: Flavor::Idrac9,
        delivery: Delivery::ImageUri,
        driver: Driver::Racadm,
    })
    .await;
}

#[tokio::test]
async fn racadm_repository_delivery_passes_the_conformance_suite() {
    run_all(&SimFactory {
        flavor: Flavor::Idrac9,
        delivery: Delivery::Repository,
        driver: Driver::Racadm,
    })
    .await;
}
