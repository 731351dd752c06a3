//! The `firmflow-sim` binary: serve, package and catalog subcommands.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use firmflow_sim::Package;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_firmflow-sim");

#[tokio::test]
async fn serves_and_prints_one_json_line_per_host() {
    let mut child = Command::new(BIN)
        .args([
            "--hosts",
            "2",
            "--http",
            "--speed",
            "1000",
            "--seed",
            "1",
            "--faults",
            "latency:ms=1",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut hosts = Vec::new();
    for _ in 0..2 {
        let line = lines.next().unwrap().unwrap();
        hosts.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert_eq!(hosts[1]["name"], "idrac-002");
    for key in ["url", "username", "password", "control_url"] {
        assert!(hosts[0][key].is_string(), "{key}");
    }
    let url = hosts[0]["url"].as_str().unwrap();
    let v: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{url}/redfish/v1/Systems/System.Embedded.1"))
        .basic_auth("root", Some("calvin"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["Id"], "System.Embedded.1");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
}

#[test]
fn package_and_catalog_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("BIOS.EXE");
    let out = Command::new(BIN)
        .args([
            "package",
            "--system-ids",
            "1814,2300",
            "--component-id",
            "159",
            "--name",
            "BIOS",
            "--version",
            "2.19.1",
            "--kind",
            "bios",
            "--reboot-required",
            "--payload-size",
            "128",
            "-o",
        ])
        .arg(&pkg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = Package::parse(&std::fs::read(&pkg).unwrap()).unwrap();
    assert_eq!(p.system_ids, vec![1814, 2300]);
    assert!(p.reboot_required);
    let cat = dir.path().join("Catalog.xml");
    let out = Command::new(BIN)
        .args(["catalog", "--base-location", "127.0.0.1:8080/repo", "-o"])
        .arg(&cat)
        .arg(&pkg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&cat).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
    let c = firmflow_sim::catalog::parse(&bytes).unwrap();
    assert_eq!(c.components[0].path, "BIOS.EXE");
    assert_eq!(c.components[0].system_ids, vec![1814, 2300]);
    assert_eq!(c.base_location.as_deref(), Some("127.0.0.1:8080/repo"));
    // A non-package is refused.
    let out = Command::new(BIN)
        .args(["catalog", "-o"])
        .arg(&cat)
        .arg(&cat)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
