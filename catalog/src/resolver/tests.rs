//! Resolver tests: catalogs and packages served by wiremock, the real 2025
//! excerpt for PCI matching and Dell's host move.

use super::*;
use crate::testutil::*;
use crate::verify::digest_bytes;
use chrono::Utc;
use firmflow_core::bmc::Inventory;
use firmflow_core::model::{ArtifactId, Host, NewHost, Plan, PlanId, PlanStatus, Policy};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn host() -> Host {
    NewHost::idrac("r640-01.example", "10.0.0.1").into_host(Utc::now())
}

fn plan(policy: Policy) -> Plan {
    Plan {
        id: PlanId::new(),
        name: "p".into(),
        policy,
        status: PlanStatus::Running,
        maintenance_window: None,
        approval_required: false,
        approved_by: None,
        created_by: None,
        idempotency_key: None,
        status_reason: None,
        created_at: Utc::now(),
    }
}

fn cache(dir: &tempfile::TempDir) -> Arc<PackageCache> {
    Arc::new(PackageCache::with_default_client(dir.path().join("cache")).expect("client"))
}

/// A small catalog in Dell's shape: an iDRAC and a BIOS Windows DUP, their
/// Linux twins, for system 0x08FC, `baseLocation` = the mock server.
fn catalog_xml(base: &str, idrac_md5: &str, bios_md5: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Manifest baseLocation="{base}" baseLocationAccessProtocols="HTTP" dateTime="2025-04-22T01:46:12+05:30" version="25.04.28">
  <SoftwareComponent path="FOLDER1/1/iDRAC-with-Lifecycle-Controller_Firmware_Y0CWW_WN64_7.10.50.00_A00.EXE" vendorVersion="7.10.50.00" dellVersion="A00" packageType="LW64" hashMD5="{idrac_md5}" size="5" rebootRequired="false" dateTime="2025-03-13T04:09:54Z">
    <Name><Display lang="en">iDRAC with Lifecycle Controller</Display></Name>
    <ComponentType value="FRMW"/><Category value="iDRAC with Lifecycle Controller"/>
    <Criticality value="2"><Display lang="en">Urgent</Display></Criticality>
    <SupportedDevices><Device componentID="25227" embedded="1"/></SupportedDevices>
    <SupportedSystems><Brand key="3" prefix="PE"><Model systemID="08FC"><Display lang="en">R6515</Display></Model></Brand></SupportedSystems>
  </SoftwareComponent>
  <SoftwareComponent path="FOLDER2/1/BIOS_ABCDE_WN64_2.19.1.EXE" vendorVersion="2.19.1" dellVersion="2.19.1" packageType="LW64" hashMD5="{bios_md5}" size="4" rebootRequired="true">
    <Name><Display lang="en">BIOS</Display></Name>
    <ComponentType value="BIOS"/><Category value="BI"/>
    <Criticality value="1"><Display lang="en">Recommended</Display></Criticality>
    <SupportedDevices><Device componentID="159" embedded="1"/></SupportedDevices>
    <SupportedSystems><Brand key="3" prefix="PE"><Model systemID="08FC"/></Brand></SupportedSystems>
  </SoftwareComponent>
  <SoftwareComponent path="FOLDER2/1/BIOS_ABCDE_LN64_2.19.1.BIN" vendorVersion="2.19.1" packageType="LLXP" hashMD5="00000000000000000000000000000000" rebootRequired="true">
    <ComponentType value="BIOS"/>
    <SupportedDevices><Device componentID="159"/></SupportedDevices>
    <SupportedSystems><Brand key="3"><Model systemID="08FC"/></Brand></SupportedSystems>
  </SoftwareComponent>
</Manifest>"#
    )
}

fn inventory() -> Inventory {
    Inventory {
        components: vec![
            member("BIOS", Some("159"), "2.10.2", ComponentKind::Bios),
            member("iDRAC", Some("25227"), "6.10.30.20", ComponentKind::Bmc),
        ],
    }
}

async fn serve_catalog(server: &MockServer, bios_body: &[u8]) -> String {
    let base = server.uri().trim_start_matches("http://").to_string();
    let xml = catalog_xml(
        &base,
        &digest_bytes(b"idrac").md5,
        &digest_bytes(b"bios").md5,
    );
    Mock::given(method("GET"))
        .and(path("/catalog/Catalog.xml"))
        .respond_with(ResponseTemplate::new(200).set_body_string(xml))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/FOLDER1/1/iDRAC-with-Lifecycle-Controller_Firmware_Y0CWW_WN64_7.10.50.00_A00.EXE",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"idrac".to_vec()))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/FOLDER2/1/BIOS_ABCDE_WN64_2.19.1.EXE"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(bios_body.to_vec()))
        .mount(server)
        .await;
    format!("{}/catalog/Catalog.xml", server.uri())
}

fn catalog_policy(url: &str) -> Policy {
    let mut p = Policy::new(UpdateMode::LatestFromCatalog);
    p.catalog_url = Some(url.into());
    p
}

#[tokio::test]
async fn latest_from_catalog_verifies_and_orders() {
    let server = MockServer::start().await;
    let url = serve_catalog(&server, b"bios").await;
    let dir = tempfile::tempdir().expect("tmp");
    let r = ModeResolver::new(Arc::new(CatalogSource::new().expect("src")), cache(&dir));
    let plan = plan(catalog_policy(&url));
    let h = host();
    let sys = system(Some(0x08FC), Some("PowerEdge R6515"));
    let inv = inventory();
    let pkgs = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &[],
        })
        .await
        .expect("resolve");
    assert_eq!(pkgs.len(), 2);
    assert_eq!(pkgs[0].kind, ComponentKind::Bmc, "iDRAC first");
    assert_eq!(pkgs[0].target_version, "7.10.50.00");
    assert_eq!(pkgs[0].criticality.as_deref(), Some("Urgent"));
    assert!(!pkgs[0].reboot_required);
    assert_eq!(pkgs[1].kind, ComponentKind::Bios);
    assert!(pkgs[1].reboot_required);
    match &pkgs[1].source {
        PackageSource::ImageUri { uri } => {
            assert!(
                uri.ends_with("/FOLDER2/1/BIOS_ABCDE_WN64_2.19.1.EXE"),
                "{uri}"
            );
            assert!(
                uri.starts_with("http://"),
                "baseLocationAccessProtocols=HTTP: {uri}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_corrupt_download_never_reaches_the_bmc() {
    let server = MockServer::start().await;
    let url = serve_catalog(&server, b"evil").await;
    let dir = tempfile::tempdir().expect("tmp");
    let r = CatalogResolver::new(Arc::new(CatalogSource::new().expect("src")), cache(&dir));
    let plan = plan(catalog_policy(&url));
    let (h, sys, inv) = (host(), system(Some(0x08FC), None), inventory());
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &[],
        })
        .await
        .expect_err("md5 mismatch");
    assert!(matches!(err, Error::Verification { .. }), "{err}");
    assert!(
        err.to_string().contains("BIOS_ABCDE_WN64_2.19.1.EXE"),
        "{err}"
    );
}

#[tokio::test]
async fn upload_and_repository_delivery() {
    let server = MockServer::start().await;
    let url = serve_catalog(&server, b"bios").await;
    let dir = tempfile::tempdir().expect("tmp");
    let src = Arc::new(CatalogSource::new().expect("src"));
    let up = CatalogResolver::with_options(
        src.clone(),
        cache(&dir),
        CatalogResolverOptions {
            delivery: Delivery::Upload,
            verify: true,
            ..Default::default()
        },
    );
    let plan = plan(catalog_policy(&url));
    let (h, sys, inv) = (host(), system(Some(0x08FC), None), inventory());
    let req = ResolveRequest {
        host: &h,
        system: &sys,
        inventory: &inv,
        plan: &plan,
        artifacts: &[],
    };
    let pkgs = up.resolve(req).await.expect("upload");
    for p in &pkgs {
        match &p.source {
            PackageSource::LocalFile { path } => assert!(std::path::Path::new(path).exists()),
            other => panic!("{other:?}"),
        }
    }
    let repo = CatalogResolver::with_options(
        src,
        cache(&dir),
        CatalogResolverOptions {
            delivery: Delivery::Repository {
                repository_uri: "https://mirror.example/repo".into(),
                catalog_file: "Catalog.xml".into(),
            },
            ..Default::default()
        },
    );
    let pkgs = repo.resolve(req).await.expect("repo");
    assert!(
        pkgs.iter()
            .all(|p| matches!(p.source, PackageSource::Repository { .. }))
    );
}

#[tokio::test]
async fn no_entry_for_the_model_and_missing_catalog_url() {
    let server = MockServer::start().await;
    let url = serve_catalog(&server, b"bios").await;
    let dir = tempfile::tempdir().expect("tmp");
    let r = CatalogResolver::new(Arc::new(CatalogSource::new().expect("src")), cache(&dir));
    let plan1 = plan(catalog_policy(&url));
    let (h, sys, inv) = (
        host(),
        system(Some(0x0600), Some("PowerEdge R730")),
        inventory(),
    );
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan1,
            artifacts: &[],
        })
        .await
        .expect_err("no model");
    match &err {
        Error::NoMatch { host, message } => {
            assert_eq!(host, "r640-01.example");
            assert!(
                message.contains("0600") && message.contains("Catalog.xml"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let plan2 = plan(Policy::new(UpdateMode::LatestFromCatalog));
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan2,
            artifacts: &[],
        })
        .await
        .expect_err("no url");
    assert!(err.to_string().contains("catalogUrl"));
}

#[tokio::test]
async fn real_2025_catalog_pci_match_and_dell_host_move() {
    let dir = tempfile::tempdir().expect("tmp");
    let r = CatalogResolver::with_options(
        Arc::new(CatalogSource::new().expect("src")),
        cache(&dir),
        CatalogResolverOptions {
            verify: false,
            ..Default::default()
        },
    );
    let plan = plan(catalog_policy(F25));
    let h = host();
    let sys = system(Some(0x08FC), Some("PowerEdge R6515"));
    let inv = Inventory {
        components: vec![pci_member(
            "Disk.Bay.0",
            "1.0.1",
            ["1e0f", "0025", "1028", "2235"],
        )],
    };
    let pkgs = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &[],
        })
        .await
        .expect("resolve");
    assert_eq!(pkgs.len(), 1);
    let p = &pkgs[0];
    assert_eq!(
        p.component_id, "112163",
        "catalog component id of the PCI match"
    );
    assert_eq!(p.kind, ComponentKind::Drive);
    assert_eq!(p.size_bytes, Some(18_553_112));
    assert_eq!(
        p.source,
        PackageSource::ImageUri {
            uri: "https://dl.dell.com/FOLDER11615172M/1/Express-Flash-PCIe-SSD_Firmware_5JJFF_WN64_2.0.0_A00.EXE".into()
        }
    );
}

fn artifact(component: &str, uri: &str, version: Option<&str>, body: &[u8]) -> Artifact {
    Artifact {
        id: ArtifactId::new(),
        component: component.into(),
        image_uri: uri.into(),
        version: version.map(str::to_string),
        checksum: Some(format!("sha256:{}", digest_bytes(body).sha256)),
        size_bytes: Some(body.len() as i64),
        metadata: serde_json::json!({"criticality": "Urgent"}),
    }
}

#[tokio::test]
async fn specific_package_verifies_before_handing_out() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/bios.exe"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"bios-2.19".to_vec()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tmp");
    let r = ModeResolver::new(Arc::new(CatalogSource::new().expect("src")), cache(&dir));
    let plan = plan(Policy::new(UpdateMode::SpecificPackage));
    let (h, sys, inv) = (host(), system(Some(0x08FC), None), inventory());
    let uri = format!("{}/bios.exe", server.uri());
    let good = vec![
        artifact("159", &uri, Some("2.19.1"), b"bios-2.19"),
        artifact("NoSuchComponent", &uri, Some("1.0"), b"bios-2.19"),
    ];
    let pkgs = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &good,
        })
        .await
        .expect("resolve");
    assert_eq!(pkgs.len(), 1);
    assert_eq!(pkgs[0].component_id, "159");
    assert_eq!(pkgs[0].source, PackageSource::ImageUri { uri: uri.clone() });
    assert_eq!(pkgs[0].criticality.as_deref(), Some("Urgent"));
    assert!(
        pkgs[0]
            .checksum
            .as_deref()
            .unwrap_or("")
            .starts_with("sha256:")
    );

    let mut bad = good.clone();
    bad[0].checksum = Some(format!("md5:{}", "0".repeat(32)));
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &bad,
        })
        .await
        .expect_err("bad md5");
    assert!(matches!(err, Error::Verification { .. }), "{err}");

    let mut wrong_size = good.clone();
    wrong_size[0].size_bytes = Some(3);
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &wrong_size,
        })
        .await
        .expect_err("size");
    assert!(matches!(err, Error::Verification { .. }), "{err}");

    let mut none = good.clone();
    none[0].checksum = None;
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &none,
        })
        .await
        .expect_err("no checksum");
    assert!(err.to_string().contains("no checksum"), "{err}");

    let nfs = vec![artifact(
        "159",
        "nfs://share/bios.exe",
        Some("2.19.1"),
        b"x",
    )];
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &nfs,
        })
        .await
        .expect_err("nfs");
    assert!(matches!(err, Error::Verification { .. }), "{err}");

    let nothing = vec![artifact("NoSuchComponent", &uri, Some("1.0"), b"x")];
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &nothing,
        })
        .await
        .expect_err("no match");
    assert!(matches!(err, Error::NoMatch { .. }), "{err}");
}

#[tokio::test]
async fn downgrade_same_and_incomparable_follow_the_policy() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/old.exe"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"old".to_vec()))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tmp");
    let r = SpecificPackageResolver::new(cache(&dir));
    let uri = format!("{}/old.exe", server.uri());
    let (h, sys, inv) = (host(), system(Some(0x08FC), None), inventory());
    let run = |policy: Policy, arts: Vec<Artifact>| {
        let r = &r;
        let (h, sys, inv) = (&h, &sys, &inv);
        async move {
            let plan = plan(policy);
            r.resolve(ResolveRequest {
                host: h,
                system: sys,
                inventory: inv,
                plan: &plan,
                artifacts: &arts,
            })
            .await
        }
    };
    let base = Policy::new(UpdateMode::SpecificPackage);
    let older = vec![artifact("159", &uri, Some("2.9.0"), b"old")];
    let err = run(base.clone(), older.clone())
        .await
        .expect_err("downgrade");
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    let mut allow = base.clone();
    allow.allow_downgrade = Some(true);
    assert_eq!(run(allow, older).await.expect("allowed").len(), 1);

    let same = vec![artifact("159", &uri, Some("2.10.2"), b"old")];
    assert!(
        run(base.clone(), same.clone())
            .await
            .expect("skipped")
            .is_empty()
    );
    let mut force = base.clone();
    force.force = Some(true);
    assert_eq!(run(force.clone(), same).await.expect("forced").len(), 1);

    let odd = vec![artifact("159", &uri, Some("OSC_1.1"), b"old")];
    let err = run(base.clone(), odd.clone())
        .await
        .expect_err("incomparable");
    assert!(err.to_string().contains("cannot be compared"), "{err}");
    assert_eq!(run(force, odd).await.expect("forced").len(), 1);
}

#[tokio::test]
async fn multipart_file_verifies_local_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("iDRAC_7.10.50.00.EXE");
    std::fs::write(&file, b"idrac-image").expect("write");
    let r = ModeResolver::new(Arc::new(CatalogSource::new().expect("src")), cache(&dir));
    let plan = plan(Policy::new(UpdateMode::MultipartFile));
    let (h, sys, inv) = (host(), system(Some(0x08FC), None), inventory());
    let path_str = file.display().to_string();
    let arts = vec![artifact(
        "25227",
        &path_str,
        Some("7.10.50.00"),
        b"idrac-image",
    )];
    let pkgs = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &arts,
        })
        .await
        .expect("resolve");
    let PackageSource::LocalFile { path: uploaded } = &pkgs[0].source else {
        panic!("{:?}", pkgs[0].source);
    };
    assert!(uploaded.starts_with(&dir.path().join("cache").display().to_string()));
    assert_eq!(std::fs::read(uploaded).expect("copy"), b"idrac-image");
    assert_eq!(pkgs[0].kind, ComponentKind::Bmc);
    assert!(!pkgs[0].reboot_required);

    // A file that does not match its checksum is refused.
    let fresh = ModeResolver::new(Arc::new(CatalogSource::new().expect("src")), cache(&dir));
    std::fs::write(&file, b"tampered!!!").expect("write");
    let other = vec![artifact(
        "25227",
        &path_str,
        Some("7.10.50.00"),
        b"something else",
    )];
    let err = fresh
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &other,
        })
        .await
        .expect_err("tampered");
    assert!(matches!(err, Error::Verification { .. }), "{err}");

    let url_arts = vec![artifact(
        "25227",
        "https://x.example/a.exe",
        Some("7.10.50.00"),
        b"x",
    )];
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &plan,
            artifacts: &url_arts,
        })
        .await
        .expect_err("url for multipart");
    assert!(err.to_string().contains("local file"), "{err}");

    let unknown = plan_with_mode("FIRMWARE_BY_PIGEON");
    let err = r
        .resolve(ResolveRequest {
            host: &h,
            system: &sys,
            inventory: &inv,
            plan: &unknown,
            artifacts: &arts,
        })
        .await
        .expect_err("unknown mode");
    assert!(err.to_string().contains("FIRMWARE_BY_PIGEON"));
}

fn plan_with_mode(mode: &str) -> Plan {
    plan(Policy::new(UpdateMode::Unknown(mode.into())))
}
