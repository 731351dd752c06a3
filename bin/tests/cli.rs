//! The `firmflow` commands end to end: the demo in-process and as the real
//! binary, and `compliance` as the real binary against a simulated iDRAC
//! (the password handed over through the environment of the child only).

use firmflow_cli::demo::{self, DemoOptions};
use firmflow_core::model::{PlanStatus, RunState};
use firmflow_sim::catalog::{CatalogEntry, CatalogOptions, Encoding};
use firmflow_sim::{Fleet, PackageKind};
use std::process::Command;

/// The rows of the SUMMARY table (after its header and rule).
fn summary_rows(text: &str) -> Vec<String> {
    text.split("SUMMARY\n")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .skip(2)
        .take_while(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_updates_every_host_once_and_reports_it() {
    let opts = DemoOptions {
        hosts: 4,
        speed: 4000.0,
        seed: 7,
        progress: false,
        // Transient trouble on two hosts once the rollout starts.
        faults: Some("5xx_burst:host=idrac-002:n=2,lc_not_ready:host=idrac-001:secs=2000".into()),
    };
    let mut out = Vec::new();
    let report = demo::run(&opts, &mut out).await.expect("demo");
    let text = String::from_utf8(out).expect("utf-8");
    assert_eq!(report.plan_status, PlanStatus::Completed, "{text}");
    assert_eq!(report.rows.len(), 4);
    // Every host gets its model's BIOS and its generation's iDRAC: two
    // packages, each flashed exactly once.
    assert_eq!(report.planned_installs, 8, "{text}");
    for row in &report.rows {
        assert_eq!(
            row.outcome,
            RunState::Completed,
            "{}: {:?}",
            row.host,
            row.error
        );
        assert_eq!(row.changes.len(), 2, "{}: {:?}", row.host, row.changes);
        assert!(
            row.changes
                .iter()
                .all(|c| c.outcome == "installed" && c.to.is_some() && c.from != c.to),
            "{:?}",
            row.changes
        );
        assert_eq!(row.flashes, 2, "{}", row.host);
        assert!(row.cluster.is_some(), "4 hosts sit in two clusters");
        assert!(row.duration.is_some());
        let faulted = row.bmc == "idrac-001" || row.bmc == "idrac-002";
        assert_eq!(row.attempts >= 1, faulted, "{}: {}", row.bmc, row.attempts);
    }
    assert_eq!(report.clusters.len(), 2);
    for c in &report.clusters {
        assert_eq!(c.hosts, 2);
        assert_eq!(c.min_hosts_online, 1);
        assert_eq!(c.min_online_seen, Some(1), "{c:?}: one host down at a time");
    }
    let idrac10 = &report.rows[3];
    assert!(
        idrac10
            .changes
            .iter()
            .any(|c| c.to.as_deref() == Some("1.30.10.05")),
        "the iDRAC10 host gets the iDRAC10 firmware: {:?}",
        idrac10.changes
    );
    for heading in [
        "INVENTORY",
        "COMPLIANCE",
        "ROLLOUT",
        "injecting simulator faults",
        "SUMMARY",
        "never fewer than 1 online",
    ] {
        assert!(text.contains(heading), "{heading} missing:\n{text}");
    }
    let summary = summary_rows(&text);
    assert_eq!(summary.len(), 4, "{text}");
    assert!(summary.iter().all(|l| l.ends_with(" completed")), "{text}");
    assert!(
        summary[0].contains("BIOS 2.10.2 → 2.19.1"),
        "{}",
        summary[0]
    );
    assert!(text.contains("plan completed"), "{text}");
}

#[test]
fn demo_binary_exits_zero_with_a_summary() {
    let out = Command::new(env!("CARGO_BIN_EXE_firmflow"))
        .args([
            "demo",
            "--hosts",
            "2",
            "--speed",
            "4000",
            "--seed",
            "3",
            "--no-progress",
        ])
        .output()
        .expect("run firmflow");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("(standalone)"), "{stdout}");
    let summary = summary_rows(&stdout);
    assert_eq!(summary.len(), 2, "{stdout}");
    assert!(summary[0].starts_with("srv01.demo.lab"), "{stdout}");
    assert!(summary[1].starts_with("srv02.demo.lab"), "{stdout}");
    assert!(
        summary.iter().all(|l| l.ends_with(" completed")),
        "{stdout}"
    );
    assert!(stdout.contains("plan completed"), "{stdout}");
}

#[test]
fn demo_binary_refuses_bad_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_firmflow"))
        .args(["demo", "--hosts", "0", "--no-progress"])
        .output()
        .expect("run firmflow");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--hosts must be between 1 and 64"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_binary_against_a_simulated_idrac() {
    let fleet = Fleet::builder()
        .hosts(1)
        .speed(1000.0)
        .seed(5)
        .start()
        .await
        .expect("fleet");
    let h = fleet.hosts()[0].clone();
    let dir = tempfile::tempdir().expect("dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, fleet.ca_cert_pem().expect("cert")).expect("write ca");
    let bios = firmflow_sim::Package {
        system_ids: vec![h.system_id],
        component_id: "159".into(),
        name: "BIOS".into(),
        version: "9.9.9".into(),
        reboot_required: true,
        kind: PackageKind::Bios,
    };
    let b = bios.to_bytes();
    let xml = firmflow_sim::catalog::write(
        &[CatalogEntry::new(bios, b)],
        &CatalogOptions {
            base_location: "downloads.example.invalid/repo".into(),
            encoding: Encoding::Utf16Le,
            ..CatalogOptions::default()
        },
    )
    .expect("catalog");
    let catalog = dir.path().join("Catalog.xml");
    std::fs::write(&catalog, xml).expect("write catalog");
    let run = |extra: Vec<String>| {
        let mut args = vec![
            "compliance".to_string(),
            "--catalog".into(),
            catalog.display().to_string(),
            "--host".into(),
            h.url.clone(),
            "--user".into(),
            h.username.clone(),
            "--password-env".into(),
            "FIRMFLOW_TEST_BMC_PASSWORD".into(),
        ];
        args.extend(extra);
        let password = h.password.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_firmflow"))
                .args(args)
                .env("FIRMFLOW_TEST_BMC_PASSWORD", password)
                .output()
                .expect("run firmflow")
        })
    };
    let out = run(vec!["--ca-file".into(), ca.display().to_string()])
        .await
        .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exit 4: read fine, and the catalog's BIOS is pending.
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    let bios_line = stdout
        .lines()
        .find(|l| l.contains("9.9.9"))
        .unwrap_or_else(|| panic!("no BIOS line:\n{stdout}"));
    assert!(bios_line.contains("upgrade"), "{bios_line}");
    assert!(stdout.contains(&h.service_tag), "{stdout}");
    assert!(!stdout.contains(&h.password) && !stderr.contains(&h.password));

    // JSON, and the default (web PKI) verification refusing the fleet's certificate.
    let out = run(vec![
        "--ca-file".into(),
        ca.display().to_string(),
        "--json".into(),
    ])
    .await
    .expect("join");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["summary"]["upgrade"], 1, "{v}");
    assert_eq!(out.status.code(), Some(4), "{v}");
    let out = run(vec![]).await.expect("join");
    assert!(!out.status.success(), "unverifiable certificate refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&h.url) || stderr.contains("127.0.0.1"),
        "{stderr}"
    );
    // The BMC sessions were closed every time.
    assert_eq!(fleet.live_sessions(&h.name), 0);
    fleet.shutdown().await;
}

#[test]
fn compliance_reports_a_bad_catalog_before_touching_the_bmc() {
    // Nothing listens on port 1: reaching the BMC first would fail differently.
    let out = Command::new(env!("CARGO_BIN_EXE_firmflow"))
        .args([
            "compliance",
            "--catalog",
            "/nonexistent/Catalog.xml",
            "--host",
            "https://127.0.0.1:1",
            "--kind",
            "redfish",
            "--user",
            "root",
            "--password-env",
            "FIRMFLOW_TEST_BMC_PASSWORD",
        ])
        .env("FIRMFLOW_TEST_BMC_PASSWORD", "calvin")
        .output()
        .expect("run firmflow");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("loading catalog /nonexistent/Catalog.xml"),
        "{stderr}"
    );
    assert!(!stderr.contains("connecting to"), "{stderr}");
    assert!(!stderr.contains("reading https://127.0.0.1:1"), "{stderr}");
}

#[test]
fn help_documents_the_pending_updates_exit_code() {
    let out = Command::new(env!("CARGO_BIN_EXE_firmflow"))
        .arg("--help")
        .output()
        .expect("run firmflow");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("4  compliance: every BMC read, and updates are pending"),
        "{stdout}"
    );
}
