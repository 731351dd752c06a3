//! The racadm driver against a fake `racadm` executable that replays the
//! captured outputs (`tests/fixtures/racadm_*.txt`) and records its arguments.

use firmflow_core::bmc::{
    ApplyTime, BmcDriver, BmcJobState, ErrorKind, JobQuery, JobSearch, PowerState, ResetKind,
    UpdateOptions, UpdateStart,
};
use firmflow_core::credentials::Credential;
use firmflow_core::model::{ComponentKind, JobHandle, Package, PackageSource};
use firmflow_redfish::{RacadmConfig, RacadmDriver, TlsMode};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

fn fake(dir: &std::path::Path) -> PathBuf {
    let fx = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let log = dir.join("args.log");
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> "{log}"
# drop "-r host -u user -p pass --nocertwarn"
shift 7
case "$*" in
  "getversion") printf 'Bios Version                    = 2.10.2\niDRAC Version                   = 5.10.00.00\nLifecycle Controller Version    = 5.10.00.00\n' ;;
  "serveraction powerstatus") echo "Server power status: ON" ;;
  serveraction*) echo "Server power operation successful" ;;
  "jobqueue view -i JID_378288740486") cat "{fx}/racadm_jobqueue_view_completed.txt" ;;
  "jobqueue view -i JID_000123456789") cat "{fx}/racadm_jobqueue_view_running.txt" ;;
  "jobqueue view") cat "{fx}/racadm_jobqueue_view_running.txt" "{fx}/racadm_jobqueue_view_completed.txt" ;;
  "jobqueue delete -i JID_CLEARALL") echo "RAC1032: JID_CLEARALL deleted successfully." ;;
  "update -f Catalog.xml"*) echo "ERROR: SUP029: Firmware versions on server match catalog, applicable updates are not present in the repository."; exit 1 ;;
  "update -f busy.exe") echo "ERROR: RAC0679: A job operation is already running."; exit 1 ;;
  update*) cat "{fx}/racadm_set_xml_import_job_created.txt" ;;
  "getremoteservicesstatus") printf 'Server Status              : Out of POST\nLifecycle Controller Status: Ready\nReal-time Status           : Ready\nOverall Status             : Ready\n' ;;
  *) echo "ERROR: unknown command $*"; exit 2 ;;
esac
"#,
        log = log.display()
    );
    let path = dir.join("racadm");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

// The replays run with the opt-in and without verification (the fake has
// no certificate); racadm_security.rs tests both.
fn driver(dir: &std::path::Path) -> RacadmDriver {
    RacadmDriver::new(
        RacadmConfig {
            binary: fake(dir),
            timeout: Duration::from_secs(10),
            password_on_command_line: true,
        },
        "10.0.0.5".into(),
        Credential::new("root", "calvin"),
    )
    .with_tls(TlsMode::AcceptInvalid)
}

fn pkg(source: PackageSource) -> Package {
    Package {
        component_id: "159".into(),
        name: "BIOS".into(),
        kind: ComponentKind::Bios,
        target_version: "2.12.2".into(),
        installed_version: None,
        source,
        checksum: None,
        size_bytes: None,
        reboot_required: true,
        criticality: None,
    }
}

const OPTS: UpdateOptions = UpdateOptions {
    apply: ApplyTime::OnReset,
    force: false,
    known_jobs: Vec::new(),
};

#[tokio::test]
async fn versions_power_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(dir.path());
    let s = d.system().await.unwrap();
    assert_eq!(s.bios_version.as_deref(), Some("2.10.2"));
    assert_eq!(s.bmc_version.as_deref(), Some("5.10.00.00"));
    assert_eq!(s.power, PowerState::On);
    let inv = d.inventory().await.unwrap();
    assert_eq!(inv.installed_for("25227").unwrap().version, "5.10.00.00");
    assert_eq!(inv.installed_for("159").unwrap().kind, ComponentKind::Bios);
    assert!(d.readiness().await.unwrap().ready);
    let log = std::fs::read_to_string(dir.path().join("args.log")).unwrap();
    assert!(
        log.starts_with("-r 10.0.0.5 -u root -p calvin --nocertwarn getversion"),
        "{log}"
    );
}

#[tokio::test]
async fn update_poll_find_reset_clear() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(dir.path());
    let r = d
        .start_update(
            &pkg(PackageSource::ImageUri {
                uri: "http://10.0.0.1/fw/BIOS_X.EXE".into(),
            }),
            &OPTS,
        )
        .await
        .unwrap();
    assert_eq!(
        r,
        UpdateStart::Submitted(JobHandle::new("JID_000000000000"))
    );
    let st = d
        .poll_job(&JobHandle::new("JID_378288740486"))
        .await
        .unwrap();
    assert_eq!(st.state, BmcJobState::Completed);
    assert_eq!(st.message_id.as_deref(), Some("PR19"));
    let st = d
        .poll_job(&JobHandle::new("JID_000123456789"))
        .await
        .unwrap();
    assert_eq!(st.state, BmcJobState::Running);
    assert_eq!(st.percent, Some(20));
    d.reset(ResetKind::PowerCycle).await.unwrap();
    d.clear_job_queue().await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("args.log")).unwrap();
    assert!(
        log.contains("update -f BIOS_X.EXE -l http://10.0.0.1/fw"),
        "{log}"
    );
    assert!(log.contains("serveraction powercycle"));
    assert!(log.contains("jobqueue delete -i JID_CLEARALL"));
    // No job matches a BIOS update in the replayed queue (RAID/SCP jobs only).
    assert_eq!(
        d.find_job(&JobQuery::new(
            &pkg(PackageSource::ImageUri { uri: "x/y".into() }),
            chrono::Utc::now(),
            &[]
        ))
        .await
        .unwrap(),
        JobSearch::NotFound
    );
}

#[tokio::test]
async fn sup029_is_already_installed_and_busy_is_transient() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(dir.path());
    let repo = pkg(PackageSource::Repository {
        repository_uri: "http://10.0.0.1/repo".into(),
        catalog_file: "Catalog.xml".into(),
    });
    assert_eq!(
        d.start_update(&repo, &OPTS).await.unwrap(),
        UpdateStart::AlreadyInstalled
    );
    let e = d
        .start_update(
            &pkg(PackageSource::LocalFile {
                path: "busy.exe".into(),
            }),
            &OPTS,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy);
    assert_eq!(e.message_id.as_deref(), Some("RAC0679"));
    assert!(!e.message.contains("calvin"), "no secret in errors");
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let d = RacadmDriver::new(
        RacadmConfig {
            binary: "/nonexistent/racadm".into(),
            timeout: Duration::from_secs(1),
            password_on_command_line: true,
        },
        "10.0.0.5".into(),
        Credential::new("root", "calvin"),
    );
    let e = d.system().await.unwrap_err();
    assert!(e.message.contains("/nonexistent/racadm"), "{e}");
    assert_eq!(e.host, "10.0.0.5");
}
