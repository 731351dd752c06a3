//! The generic Redfish driver against small wiremock BMCs that are not
//! iDRACs, each reproducing one deviation real services show: Basic-only
//! auth, bodiless session answers, required SimpleUpdate `Targets`, no
//! FirmwareInventory, dangling links, and a CA:TRUE self-signed
//! certificate given as CA file.

mod common;

use common::*;
use firmflow_core::bmc::{ApplyTime, BmcDriver, ErrorKind, UpdateOptions, UpdateStart};
use firmflow_core::model::{ComponentKind, MgmtKind, Package, PackageSource};
use firmflow_redfish::{Flavor, RedfishDriver, TlsMode};
use serde_json::{Value, json};
use std::sync::Arc;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SYS: &str = "/redfish/v1/Systems/1";
const MGR: &str = "/redfish/v1/Managers/1";
const FI: &str = "/redfish/v1/UpdateService/FirmwareInventory";
const SESSIONS: &str = "/redfish/v1/SessionService/Sessions";
const SIMPLE_UPDATE: &str = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate";
const TOKEN: &str = "0f3c1d2e4b5a69788796a5b4c3d2e1f0";
/// `root:calvin`.
const BASIC: &str = "Basic cm9vdDpjYWx2aW4=";

/// How the simulated service deviates.
#[derive(Clone, Copy, Default)]
struct Bmc {
    /// The service root names a SessionService.
    session_service: bool,
    /// UpdateService links a FirmwareInventory.
    firmware_inventory: bool,
    /// SimpleUpdate links an ActionInfo that requires Targets.
    targets_in_action_info: bool,
}

fn ok(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

/// Mounts the documents of a non-Dell service; authenticated GETs require `auth`.
async fn serve(server: &MockServer, bmc: Bmc, auth: (&'static str, &'static str)) {
    let mut root = json!({
        "@odata.id": "/redfish/v1",
        "Id": "RootService",
        "Name": "Root Service",
        "RedfishVersion": "1.11.0",
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Managers": {"@odata.id": "/redfish/v1/Managers"},
        "UpdateService": {"@odata.id": "/redfish/v1/UpdateService"},
        "TaskService": {"@odata.id": "/redfish/v1/TaskService"},
    });
    if bmc.session_service {
        root["SessionService"] = json!({"@odata.id": "/redfish/v1/SessionService"});
        root["Links"] = json!({"Sessions": {"@odata.id": SESSIONS}});
    }
    Mock::given(method("GET"))
        .and(path("/redfish/v1"))
        .respond_with(ok(root))
        .mount(server)
        .await;
    let mut su = json!({"target": SIMPLE_UPDATE});
    if bmc.targets_in_action_info {
        su["@Redfish.ActionInfo"] = json!("/redfish/v1/UpdateService/SimpleUpdateActionInfo");
    }
    let mut us = json!({
        "@odata.id": "/redfish/v1/UpdateService",
        "Id": "UpdateService",
        "Actions": {"#UpdateService.SimpleUpdate": su},
    });
    if bmc.firmware_inventory {
        us["FirmwareInventory"] = json!({"@odata.id": FI});
    }
    let bios = json!({
        "@odata.id": format!("{FI}/BIOS"), "@odata.type": "#SoftwareInventory.v1_2_0.SoftwareInventory",
        "Id": "BIOS", "Name": "BIOS", "Version": "1.4a", "Updateable": true, "SoftwareId": "bios-fw",
    });
    let bmcfw = json!({
        "@odata.id": format!("{FI}/BMC"), "@odata.type": "#SoftwareInventory.v1_2_0.SoftwareInventory",
        "Id": "BMC", "Name": "BMC", "Version": "3.2", "Updateable": true, "SoftwareId": "bmc-fw",
    });
    let docs = [
        (
            "/redfish/v1/Systems",
            json!({"Members": [{"@odata.id": SYS}], "Members@odata.count": 1}),
        ),
        (
            SYS,
            json!({
                "@odata.id": SYS, "Id": "1", "Manufacturer": "Supermicro", "Model": "SYS-1029U",
                "SerialNumber": "S123", "BiosVersion": "1.4a", "PowerState": "On",
                "Status": {"State": "Enabled", "Health": "OK"},
                "Links": {"ManagedBy": [{"@odata.id": MGR}]},
            }),
        ),
        (
            MGR,
            json!({"@odata.id": MGR, "Id": "1", "FirmwareVersion": "3.2", "Model": "ASPEED"}),
        ),
        ("/redfish/v1/UpdateService", us),
        (
            FI,
            json!({"Members": [{"@odata.id": format!("{FI}/BIOS")}, {"@odata.id": format!("{FI}/BMC")}]}),
        ),
        ("/redfish/v1/UpdateService/FirmwareInventory/BIOS", bios),
        ("/redfish/v1/UpdateService/FirmwareInventory/BMC", bmcfw),
        (
            "/redfish/v1/UpdateService/SimpleUpdateActionInfo",
            json!({"Id": "SimpleUpdateActionInfo", "Parameters": [
                {"Name": "ImageURI", "Required": true, "DataType": "String"},
                {"Name": "Targets", "Required": true, "DataType": "StringArray"},
            ]}),
        ),
    ];
    for (p, doc) in docs {
        if p == FI && !bmc.firmware_inventory {
            continue;
        }
        Mock::given(method("GET"))
            .and(path(p))
            .and(header(auth.0, auth.1))
            .respond_with(ok(doc))
            .mount(server)
            .await;
    }
}

async fn driver(server: &MockServer) -> RedfishDriver {
    let c = connector("root", "calvin", config("http"), None);
    c.redfish_driver(&host(&server.uri(), MgmtKind::Redfish), Flavor::Generic)
        .await
        .unwrap()
}

fn bios_package() -> Package {
    Package {
        component_id: "bios-fw".into(),
        name: "BIOS".into(),
        kind: ComponentKind::Bios,
        target_version: "1.5".into(),
        installed_version: None,
        source: PackageSource::ImageUri {
            uri: "http://10.0.0.5/bios-1.5.bin".into(),
        },
        checksum: None,
        size_bytes: None,
        reboot_required: true,
        criticality: None,
    }
}

fn opts() -> UpdateOptions {
    UpdateOptions {
        apply: ApplyTime::Immediate,
        force: false,
        known_jobs: Vec::new(),
    }
}

fn task_accepted() -> ResponseTemplate {
    ResponseTemplate::new(202).insert_header("Location", "/redfish/v1/TaskService/Tasks/7")
}

#[tokio::test]
async fn session_refused_with_www_authenticate_basic_falls_back_to_basic() {
    let server = MockServer::start().await;
    serve(
        &server,
        Bmc {
            session_service: true,
            firmware_inventory: true,
            ..Bmc::default()
        },
        ("Authorization", BASIC),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(SESSIONS))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", "Basic realm=\"BMC\""),
        )
        .expect(1)
        .mount(&server)
        .await;
    let d = driver(&server).await;
    let sys = d.system().await.unwrap();
    assert_eq!(sys.bios_version.as_deref(), Some("1.4a"));
    assert!(!d.client().has_session().await);
    d.close().await.unwrap();
}

#[tokio::test]
async fn session_refused_without_basic_offer_is_an_authentication_error() {
    let server = MockServer::start().await;
    serve(
        &server,
        Bmc {
            session_service: true,
            ..Bmc::default()
        },
        ("Authorization", BASIC),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(SESSIONS))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let e = driver(&server).await.system().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Authentication, "{e}");
}

#[tokio::test]
async fn no_session_service_means_basic_without_a_login_post() {
    let server = MockServer::start().await;
    serve(&server, Bmc::default(), ("Authorization", BASIC)).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let d = driver(&server).await;
    assert_eq!(
        d.system().await.unwrap().model.as_deref(),
        Some("SYS-1029U")
    );
    assert!(!d.client().has_session().await);
}

#[tokio::test]
async fn bodiless_session_answers_are_sessions() {
    for status in [201u16, 204] {
        let server = MockServer::start().await;
        serve(
            &server,
            Bmc {
                session_service: true,
                ..Bmc::default()
            },
            ("X-Auth-Token", TOKEN),
        )
        .await;
        Mock::given(method("POST"))
            .and(path(SESSIONS))
            .and(body_partial_json(
                json!({"UserName": "root", "Password": "calvin"}),
            ))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("X-Auth-Token", TOKEN)
                    .insert_header("Location", format!("{SESSIONS}/42")),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path(format!("{SESSIONS}/42")))
            .and(header("X-Auth-Token", TOKEN))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let d = driver(&server).await;
        d.system().await.unwrap();
        assert!(d.client().has_session().await, "HTTP {status}");
        d.close().await.unwrap();
        server.verify().await;
    }
}

#[tokio::test]
async fn action_info_requiring_targets_gets_the_package_member() {
    let server = MockServer::start().await;
    serve(
        &server,
        Bmc {
            firmware_inventory: true,
            targets_in_action_info: true,
            ..Bmc::default()
        },
        ("Authorization", BASIC),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(SIMPLE_UPDATE))
        .and(body_partial_json(json!({
            "ImageURI": "http://10.0.0.5/bios-1.5.bin",
            "Targets": [format!("{FI}/BIOS")],
        })))
        .respond_with(task_accepted())
        .expect(1)
        .mount(&server)
        .await;
    let d = driver(&server).await;
    match d.start_update(&bios_package(), &opts()).await.unwrap() {
        UpdateStart::Submitted(job) => assert_eq!(job.id, "7"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_400_naming_targets_is_retried_once_with_targets() {
    let server = MockServer::start().await;
    serve(
        &server,
        Bmc {
            firmware_inventory: true,
            ..Bmc::default()
        },
        ("Authorization", BASIC),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(SIMPLE_UPDATE))
        .and(body_partial_json(
            json!({"Targets": [format!("{FI}/BIOS")]}),
        ))
        .respond_with(task_accepted())
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(SIMPLE_UPDATE))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": "Base.1.8.PropertyMissing",
            "message": "A required property is missing.",
            "@Message.ExtendedInfo": [{
                "MessageId": "Base.1.8.PropertyMissing",
                "Message": "The property Targets is a required property and must be included in the request.",
                "MessageArgs": ["Targets"],
            }],
        }})))
        .with_priority(5)
        .expect(1)
        .mount(&server)
        .await;
    let d = driver(&server).await;
    let start = d.start_update(&bios_package(), &opts()).await.unwrap();
    assert!(matches!(start, UpdateStart::Submitted(_)), "{start:?}");
}

#[tokio::test]
async fn without_firmware_inventory_versions_come_from_systems_and_managers() {
    let server = MockServer::start().await;
    serve(
        &server,
        Bmc {
            targets_in_action_info: true,
            ..Bmc::default()
        },
        ("Authorization", BASIC),
    )
    .await;
    let d = driver(&server).await;
    let inv = d.inventory().await.unwrap();
    let found: Vec<(&str, ComponentKind, &str)> = inv
        .components
        .iter()
        .map(|c| (c.id.as_str(), c.kind, c.version.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (SYS, ComponentKind::Bios, "1.4a"),
            (MGR, ComponentKind::Bmc, "3.2")
        ]
    );
    assert!(inv.components.iter().all(|c| c.updateable && c.installed));
    // The update targets the resource the version was read from.
    Mock::given(method("POST"))
        .and(path(SIMPLE_UPDATE))
        .and(body_partial_json(json!({"Targets": [SYS]})))
        .respond_with(task_accepted())
        .expect(1)
        .mount(&server)
        .await;
    d.start_update(&bios_package(), &opts()).await.unwrap();
}

#[tokio::test]
async fn a_dangling_link_names_the_missing_resource() {
    let server = MockServer::start().await;
    // Only the service root is served: its Systems link leads nowhere
    // (wiremock answers 404 to a request no mock matches).
    serve(&server, Bmc::default(), ("Authorization", "Basic not-this")).await;
    let e = driver(&server).await.system().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("/redfish/v1/Systems not found"), "{e}");
}

#[tokio::test]
async fn a_firmware_inventory_that_404s_is_named() {
    let server = MockServer::start().await;
    serve(&server, Bmc::default(), ("Authorization", BASIC)).await;
    // Only the UpdateService document differs: it links a collection that is not there.
    Mock::given(method("GET"))
        .and(path("/redfish/v1/UpdateService"))
        .respond_with(ok(json!({
            "Id": "UpdateService",
            "FirmwareInventory": {"@odata.id": FI},
            "Actions": {"#UpdateService.SimpleUpdate": {"target": SIMPLE_UPDATE}},
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    let e = driver(&server).await.inventory().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains(&format!("{FI} not found")), "{e}");
}

/// A TLS server whose self-signed certificate has CA:TRUE; it only shakes hands.
async fn ca_true_tls_server() -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // The client aborts the handshake; nothing to serve.
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    (format!("127.0.0.1:{}", addr.port()), pem)
}

#[tokio::test]
async fn a_ca_file_holding_the_servers_own_ca_certificate_is_explained() {
    let (addr, pem) = ca_true_tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("bmc.pem");
    std::fs::write(&ca, pem).unwrap();
    let mut cfg = config("https");
    cfg.default_tls = TlsMode::CaFile(ca);
    let c = connector("root", "calvin", cfg, None);
    let d = c
        .redfish_driver(&host(&addr, MgmtKind::Redfish), Flavor::Generic)
        .await
        .unwrap();
    let e = d.system().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert!(e.message.contains("CaUsedAsEndEntity"), "{e}");
    assert!(
        e.message
            .contains("the CA file holds the server's own certificate"),
        "{e}"
    );
    assert!(e.message.contains("pin"), "{e}");
}

#[tokio::test]
async fn the_manufacturer_is_read_from_the_system() {
    let server = MockServer::start().await;
    serve(&server, Bmc::default(), ("Authorization", BASIC)).await;
    let d = driver(&server).await;
    assert_eq!(
        d.manufacturer().await.unwrap().as_deref(),
        Some("Supermicro")
    );
}
