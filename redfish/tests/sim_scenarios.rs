//! Driver scenario suite against the simulated iDRAC fleet (`firmflow-sim`):
//! iDRAC9, iDRAC10 and generic flavours, and every fault the sim injects.
//! The loop in [`update`] plays the executor's part (submit, poll with
//! backoff, reboot when the job waits for one, verify by inventory).

mod common;

use common::*;
use firmflow_core::bmc::{
    ApplyTime, BmcConnector, BmcDriver, BmcJobState, ErrorKind, Health, JobQuery, JobStatus,
    PowerState, ResetKind, UpdateOptions, UpdateStart,
};
use firmflow_core::model::{ComponentKind, Host, MgmtKind, Package, PackageSource};
use firmflow_sim::{Fault, FaultRule, Flavor as SimFlavor, Fleet, PackageKind};
use std::sync::Arc;
use std::time::Duration;

const SPEED: f64 = 20_000.0;

async fn fleet(flavor: SimFlavor) -> Fleet {
    Fleet::builder()
        .hosts(1)
        .flavor(flavor)
        .http(true)
        .speed(SPEED)
        .seed(7)
        .start()
        .await
        .unwrap()
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

fn package(
    cid: &str,
    name: &str,
    kind: ComponentKind,
    version: &str,
    source: PackageSource,
) -> Package {
    Package {
        component_id: cid.into(),
        name: name.into(),
        kind,
        target_version: version.into(),
        installed_version: None,
        source,
        checksum: None,
        size_bytes: None,
        reboot_required: kind != ComponentKind::Bmc,
        criticality: None,
    }
}

async fn connect(
    fleet: &Fleet,
    kind: MgmtKind,
) -> (Host, Arc<dyn BmcDriver>, firmflow_redfish::Connector) {
    let h = &fleet.hosts()[0];
    let c = connector(&h.username, &h.password, config("http"), None);
    let host = host(&h.url, kind);
    let d = c.connect(&host).await.unwrap();
    (host, d, c)
}

fn kind_for(flavor: SimFlavor) -> MgmtKind {
    match flavor {
        SimFlavor::Generic => MgmtKind::Redfish,
        _ => MgmtKind::Idrac,
    }
}

/// Retries transient errors (what the executor's retry policy does).
async fn retry<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, firmflow_core::bmc::Error>>,
{
    for _ in 0..200 {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.is_transient() => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("terminal error: {e}"),
        }
    }
    panic!("still failing after retries")
}

/// Submit, poll with backoff until final (rebooting once when the job waits
/// for it); returns the last status and the number of polls.
async fn update(d: &dyn BmcDriver, p: &Package) -> (JobStatus, u32) {
    let opts = UpdateOptions {
        apply: ApplyTime::Immediate,
        force: false,
        known_jobs: Vec::new(),
    };
    let h = match d.start_update(p, &opts).await.unwrap() {
        UpdateStart::Submitted(h) => h,
        UpdateStart::AlreadyInstalled => panic!("unexpected no-op"),
    };
    let mut delay = Duration::from_millis(5);
    let mut rebooted = false;
    let mut polls = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "job never finished");
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_millis(100));
        polls += 1;
        let st = match d.poll_job(&h).await {
            Ok(st) => st,
            Err(e) if e.is_transient() => continue,
            Err(e) => panic!("poll: {e}"),
        };
        if st.state == BmcJobState::AwaitingReboot && !rebooted {
            d.reset(ResetKind::ForceRestart).await.unwrap();
            rebooted = true;
            continue;
        }
        if st.state.is_final() {
            return (st, polls);
        }
    }
}

async fn installed(d: &dyn BmcDriver, cid: &str) -> String {
    let inv = retry(|| d.inventory()).await;
    inv.installed_for(cid)
        .map(|c| c.version.clone())
        .unwrap_or_default()
}

async fn bios_update_via_uri(flavor: SimFlavor) {
    let fleet = fleet(flavor).await;
    let name = fleet.hosts()[0].name.clone();
    let (_, d, _) = connect(&fleet, kind_for(flavor)).await;
    let info = d.system().await.unwrap();
    assert!(info.model.is_some());
    let url = fleet.serve_file(
        "BIOS_9.EXE",
        sim_pkg("159", "BIOS", "9.9.9", PackageKind::Bios).to_bytes(),
    );
    let p = package(
        "159",
        "BIOS",
        ComponentKind::Bios,
        "9.9.9",
        PackageSource::ImageUri { uri: url },
    );
    let (st, _) = update(d.as_ref(), &p).await;
    assert_eq!(st.state, BmcJobState::Completed, "{st:?}");
    assert_eq!(installed(d.as_ref(), "159").await, "9.9.9");
    assert_eq!(fleet.install_count(&name, "159"), 1, "flashed exactly once");
    d.close().await.unwrap();
    assert_eq!(fleet.live_sessions(&name), 0, "logged out");
    fleet.shutdown().await;
}

#[tokio::test]
async fn idrac9_bios_update_reboot_verify() {
    bios_update_via_uri(SimFlavor::Idrac9).await;
}

#[tokio::test]
async fn idrac10_bios_update_reboot_verify() {
    bios_update_via_uri(SimFlavor::Idrac10).await;
}

#[tokio::test]
async fn generic_bios_update_reboot_verify() {
    bios_update_via_uri(SimFlavor::Generic).await;
}

async fn multipart_update(flavor: SimFlavor) {
    let fleet = fleet(flavor).await;
    let (_, d, _) = connect(&fleet, kind_for(flavor)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Diag.exe");
    std::fs::write(
        &file,
        sim_pkg(
            "25806",
            "Dell 64 Bit uEFI Diagnostics",
            "4.5.6",
            PackageKind::Diagnostics,
        )
        .to_bytes(),
    )
    .unwrap();
    let p = package(
        "25806",
        "Dell 64 Bit uEFI Diagnostics",
        ComponentKind::Other,
        "4.5.6",
        PackageSource::LocalFile {
            path: file.to_string_lossy().into(),
        },
    );
    let (st, _) = update(d.as_ref(), &p).await;
    assert_eq!(st.state, BmcJobState::Completed, "{st:?}");
    d.close().await.unwrap();
    fleet.shutdown().await;
}

#[tokio::test]
async fn idrac9_multipart_upload() {
    multipart_update(SimFlavor::Idrac9).await;
}

#[tokio::test]
async fn idrac10_multipart_upload_task_monitor() {
    multipart_update(SimFlavor::Idrac10).await;
}

#[tokio::test]
async fn generic_multipart_upload() {
    multipart_update(SimFlavor::Generic).await;
}

#[tokio::test]
async fn idrac_self_update_survives_restart_and_changes_manager_version() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let (_, d, _) = connect(&fleet, MgmtKind::Idrac).await;
    let url = fleet.serve_file(
        "iDRAC.exe",
        sim_pkg(
            "25227",
            "Integrated Dell Remote Access Controller",
            "7.00.00.00",
            PackageKind::Idrac,
        )
        .to_bytes(),
    );
    let p = package(
        "25227",
        "Integrated Dell Remote Access Controller",
        ComponentKind::Bmc,
        "7.00.00.00",
        PackageSource::ImageUri { uri: url },
    );
    let (st, _) = update(d.as_ref(), &p).await;
    assert!(
        matches!(st.state, BmcJobState::Completed | BmcJobState::Missing),
        "never a false failure or success: {st:?}"
    );
    // Success is the manager's version, read after the restart (re-login happens inside).
    let info = retry(|| d.system()).await;
    assert_eq!(info.bmc_version.as_deref(), Some("7.00.00.00"));
    d.close().await.unwrap();
    fleet.shutdown().await;
}

#[tokio::test]
async fn rollback_installs_previous_image() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let name = fleet.hosts()[0].name.clone();
    let (_, d, _) = connect(&fleet, MgmtKind::Idrac).await;
    let before = installed(d.as_ref(), "159").await;
    let url = fleet.serve_file(
        "B.EXE",
        sim_pkg("159", "BIOS", "9.9.9", PackageKind::Bios).to_bytes(),
    );
    let p = package(
        "159",
        "BIOS",
        ComponentKind::Bios,
        "9.9.9",
        PackageSource::ImageUri { uri: url },
    );
    update(d.as_ref(), &p).await;
    let inv = d.inventory().await.unwrap();
    let prev = inv.previous_for("159").expect("Previous- image").clone();
    assert_eq!(prev.version, before);
    let h = d.rollback(&prev).await.unwrap().expect("a rollback job");
    let mut rebooted = false;
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let Ok(st) = d.poll_job(&h).await else {
            continue;
        };
        if st.state == BmcJobState::AwaitingReboot && !rebooted {
            d.reset(ResetKind::ForceRestart).await.unwrap();
            rebooted = true;
        }
        if st.state.is_final() {
            assert_eq!(st.state, BmcJobState::Completed, "{st:?}");
            break;
        }
    }
    assert_eq!(installed(d.as_ref(), "159").await, before);
    assert_eq!(fleet.install_count(&name, "159"), 2);
    d.close().await.unwrap();
    fleet.shutdown().await;
}

#[tokio::test]
async fn fault_fail_job_is_never_success() {
    for flavor in [SimFlavor::Idrac9, SimFlavor::Idrac10, SimFlavor::Generic] {
        let fleet = fleet(flavor).await;
        let name = fleet.hosts()[0].name.clone();
        let (_, d, _) = connect(&fleet, kind_for(flavor)).await;
        let before = installed(d.as_ref(), "159").await;
        fleet.inject(&name, Fault::FailJob);
        let url = fleet.serve_file(
            "B.EXE",
            sim_pkg("159", "BIOS", "9.9.9", PackageKind::Bios).to_bytes(),
        );
        let p = package(
            "159",
            "BIOS",
            ComponentKind::Bios,
            "9.9.9",
            PackageSource::ImageUri { uri: url },
        );
        let (st, _) = update(d.as_ref(), &p).await;
        assert!(
            matches!(
                st.state,
                BmcJobState::Failed | BmcJobState::CompletedWithErrors
            ),
            "{flavor:?}: {st:?}"
        );
        assert_eq!(installed(d.as_ref(), "159").await, before);
        d.close().await.unwrap();
        fleet.shutdown().await;
    }
}

#[tokio::test]
async fn fault_stuck_job_never_reads_final() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let name = fleet.hosts()[0].name.clone();
    let (_, d, _) = connect(&fleet, MgmtKind::Idrac).await;
    fleet.inject(&name, Fault::StuckJob);
    let url = fleet.serve_file(
        "D.EXE",
        sim_pkg("25806", "Diagnostics", "4.5.6", PackageKind::Diagnostics).to_bytes(),
    );
    let p = package(
        "25806",
        "Diagnostics",
        ComponentKind::Other,
        "4.5.6",
        PackageSource::ImageUri { uri: url },
    );
    let UpdateStart::Submitted(h) = d
        .start_update(
            &p,
            &UpdateOptions {
                apply: ApplyTime::Immediate,
                force: false,
                known_jobs: Vec::new(),
            },
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let st = d.poll_job(&h).await.unwrap();
        assert!(!st.state.is_final(), "{st:?}");
    }
    d.close().await.unwrap();
    fleet.shutdown().await;
}

#[tokio::test]
async fn faults_transient_http_errors_resets_latency_and_session_expiry() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let name = fleet.hosts()[0].name.clone();
    let (_, d, _) = connect(&fleet, MgmtKind::Idrac).await;
    d.system().await.unwrap();

    fleet.inject(&name, Fault::ServerErrorBurst { count: 1 });
    let e = d.system().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{e}");
    assert!(
        e.message_id.as_deref().unwrap_or("").ends_with("SYS518"),
        "{e:?}"
    );
    d.system().await.unwrap();

    // One dropped connection under a read: the read is sent once more and
    // succeeds. Two in a row: a transient error the run retries.
    let systems_reads = || {
        fleet
            .requests(&name)
            .count("GET", "/redfish/v1/Systems/{id}")
    };
    let before = systems_reads();
    fleet.inject(&name, Fault::ConnectionReset { count: 1 });
    d.system().await.unwrap();
    assert!(
        systems_reads() >= before + 2,
        "the dropped read was sent again"
    );
    fleet.inject(&name, Fault::ConnectionReset { count: 2 });
    let e = d.system().await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    retry(|| d.system()).await;

    fleet.inject(&name, Fault::Latency { ms: 20 });
    d.system().await.unwrap();
    fleet.clear_faults(&name);

    let logins = || {
        fleet
            .requests(&name)
            .count("POST", "/redfish/v1/SessionService/Sessions")
    };
    let before = logins();
    fleet.inject(&name, Fault::SessionExpiry);
    d.system().await.unwrap();
    assert_eq!(logins(), before + 1, "one transparent re-login");
    d.close().await.unwrap();
    assert_eq!(fleet.live_sessions(&name), 0);
    fleet.shutdown().await;
}

/// An iDRAC restarting after its own update drops the session it has just
/// granted: that is transient (the credential logged in fine), never the
/// terminal authentication failure a refused login is.
#[tokio::test]
async fn sessions_dropped_right_after_login_are_transient_not_authentication() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let name = fleet.hosts()[0].name.clone();
    let (_, d, _) = connect(&fleet, MgmtKind::Idrac).await;
    d.system().await.unwrap();
    let logins = || {
        fleet
            .requests(&name)
            .count("POST", "/redfish/v1/SessionService/Sessions")
    };

    // The old session and the first fresh one are both dropped: survived.
    let before = logins();
    fleet.inject_rule(FaultRule::new(Fault::SessionExpiry).times(2).on_host(&name));
    d.system().await.unwrap();
    assert_eq!(logins(), before + 2, "two transparent re-logins");

    // Dropped every time: a transient error naming why, after two re-logins.
    let before = logins();
    fleet.inject_rule(FaultRule::new(Fault::SessionExpiry).times(3).on_host(&name));
    let e = d.system().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{e}");
    assert!(e.is_transient(), "{e:?}");
    assert!(e.message.contains("just granted"), "{e}");
    assert_eq!(logins(), before + 2);
    d.system().await.unwrap();
    d.close().await.unwrap();
    fleet.shutdown().await;
}

#[tokio::test]
async fn fault_lc_not_ready_and_queue_full_are_busy() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let name = fleet.hosts()[0].name.clone();
    let (_, d, _) = connect(&fleet, MgmtKind::Idrac).await;
    assert!(d.readiness().await.unwrap().ready);
    let url = fleet.serve_file(
        "B.EXE",
        sim_pkg("159", "BIOS", "9.9.9", PackageKind::Bios).to_bytes(),
    );
    let p = package(
        "159",
        "BIOS",
        ComponentKind::Bios,
        "9.9.9",
        PackageSource::ImageUri { uri: url },
    );
    let opts = UpdateOptions {
        apply: ApplyTime::Immediate,
        force: false,
        known_jobs: Vec::new(),
    };

    fleet.inject(&name, Fault::LcNotReady { secs: 1_000_000 });
    assert!(!d.readiness().await.unwrap().ready);
    let e = d.start_update(&p, &opts).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy, "{e}");
    fleet.clear_faults(&name);

    fleet.inject(&name, Fault::JobQueueFull);
    let e = d.start_update(&p, &opts).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy, "{e}");
    assert!(
        e.message_id.as_deref().unwrap_or("").ends_with("JCP017"),
        "{e:?}"
    );
    fleet.clear_faults(&name);
    d.clear_job_queue().await.unwrap();
    assert!(matches!(
        d.start_update(&p, &opts).await.unwrap(),
        UpdateStart::Submitted(_)
    ));
    d.close().await.unwrap();
    fleet.shutdown().await;
}

#[tokio::test]
async fn fault_wrong_version_is_caught_by_inventory() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let name = fleet.hosts()[0].name.clone();
    let (_, d, _) = connect(&fleet, MgmtKind::Idrac).await;
    fleet.inject(&name, Fault::WrongVersion { version: None });
    let url = fleet.serve_file(
        "B.EXE",
        sim_pkg("159", "BIOS", "9.9.9", PackageKind::Bios).to_bytes(),
    );
    let p = package(
        "159",
        "BIOS",
        ComponentKind::Bios,
        "9.9.9",
        PackageSource::ImageUri { uri: url },
    );
    let (_st, _) = update(d.as_ref(), &p).await;
    // Whatever the job says, the inventory does not show the target: the
    // executor's verification step fails the run.
    assert_ne!(installed(d.as_ref(), "159").await, "9.9.9");
    d.close().await.unwrap();
    fleet.shutdown().await;
}

#[tokio::test]
async fn fault_host_never_returns_and_degraded_health() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let name = fleet.hosts()[0].name.clone();
    let (_, d, _) = connect(&fleet, MgmtKind::Idrac).await;
    fleet.inject(
        &name,
        Fault::DegradedHealth {
            health: "Critical".into(),
        },
    );
    assert_eq!(d.system().await.unwrap().health, Health::Critical);
    fleet.inject(&name, Fault::HostNeverReturns);
    d.reset(ResetKind::ForceRestart).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(retry(|| d.system()).await.power, PowerState::Off);
    d.close().await.unwrap();
    fleet.shutdown().await;
}

#[tokio::test]
async fn find_job_recovers_the_crash_window() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let (_, d, _) = connect(&fleet, MgmtKind::Idrac).await;
    let url = fleet.serve_file(
        "B.EXE",
        sim_pkg("159", "BIOS", "9.9.9", PackageKind::Bios).to_bytes(),
    );
    let p = package(
        "159",
        "BIOS",
        ComponentKind::Bios,
        "9.9.9",
        PackageSource::ImageUri { uri: url },
    );
    let UpdateStart::Submitted(h) = d
        .start_update(
            &p,
            &UpdateOptions {
                apply: ApplyTime::OnReset,
                force: false,
                known_jobs: Vec::new(),
            },
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let found = d
        .find_job(&JobQuery::new(&p, chrono::Utc::now(), &[]))
        .await
        .unwrap()
        .into_job()
        .expect("job found in the queue");
    assert_eq!(found.id, h.id);
    d.close().await.unwrap();
    fleet.shutdown().await;
}

/// Serves a catalog of `packages` (and the packages) from the fleet's file
/// server; returns the repository base URI.
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

fn repo_jobs(fleet: &Fleet, host: &str) -> usize {
    fleet
        .jobs(host)
        .iter()
        .filter(|(_, name, _, _)| name == "Repository Update")
        .count()
}

#[tokio::test]
async fn repository_update_is_followed_to_each_packages_child_job() {
    let fleet = fleet(SimFlavor::Idrac9).await;
    let name = fleet.hosts()[0].name.clone();
    let (_, d, c) = connect(&fleet, MgmtKind::Idrac).await;
    let repo = serve_repository(
        &fleet,
        &[
            sim_pkg("159", "BIOS", "3.0.0", PackageKind::Bios),
            sim_pkg(
                "25227",
                "Integrated Dell Remote Access Controller",
                "7.10.50.00",
                PackageKind::Idrac,
            ),
        ],
    );
    let source = PackageSource::Repository {
        repository_uri: repo,
        catalog_file: "Catalog.xml".into(),
    };
    let bios = package("159", "BIOS", ComponentKind::Bios, "3.0.0", source.clone());
    let idrac = package(
        "25227",
        "Integrated Dell Remote Access Controller",
        ComponentKind::Bmc,
        "7.10.50.00",
        source,
    );
    let old_bios = installed(d.as_ref(), "159").await;
    let opts = UpdateOptions {
        apply: ApplyTime::OnReset,
        force: false,
        known_jobs: Vec::new(),
    };
    let UpdateStart::Submitted(hb) = d.start_update(&bios, &opts).await.unwrap() else {
        panic!("submitted")
    };
    // The BIOS child waits for a reboot: never Completed before it ran.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "never staged");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let Ok(st) = d.poll_job(&hb).await else {
            continue;
        };
        assert!(
            !st.state.is_final(),
            "final before the BIOS child ran: {st:?}"
        );
        if st.state == BmcJobState::AwaitingReboot {
            break;
        }
    }
    assert_eq!(installed(d.as_ref(), "159").await, old_bios);
    // The iDRAC package is covered by the same repository job: no second one.
    let UpdateStart::Submitted(hi) = retry(|| d.start_update(&idrac, &opts)).await else {
        panic!("submitted")
    };
    assert_eq!(repo_jobs(&fleet, &name), 1, "{:?}", fleet.jobs(&name));
    let st = loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        match d.poll_job(&hi).await {
            Ok(st) if st.state.is_final() => break st,
            _ => {}
        }
    };
    assert_eq!(st.state, BmcJobState::Completed, "{st:?}");
    assert_eq!(installed(d.as_ref(), "25227").await, "7.10.50.00");
    // After a process restart (a fresh connection), the persisted handle and
    // find_job both lead to the BIOS child.
    let hb: firmflow_core::model::JobHandle =
        serde_json::from_str(&serde_json::to_string(&hb).unwrap()).unwrap();
    // The iDRAC package just installed restarts the iDRAC, so the logout may
    // meet a closed connection: that is the restart, not a failure here.
    let _ = d.close().await;
    let h = &fleet.hosts()[0];
    let c2 = connector(&h.username, &h.password, config("http"), None);
    let target = host(&h.url, MgmtKind::Idrac);
    let d = retry(|| c2.connect(&target)).await;
    drop(c);
    assert_eq!(
        retry(|| d.poll_job(&hb)).await.state,
        BmcJobState::AwaitingReboot
    );
    let found = retry(|| async {
        d.find_job(&JobQuery::new(&bios, chrono::Utc::now(), &[]))
            .await
    })
    .await
    .into_job()
    .expect("found");
    assert_eq!(
        retry(|| d.poll_job(&found)).await.state,
        BmcJobState::AwaitingReboot
    );
    retry(|| d.reset(ResetKind::ForceRestart)).await;
    let st = loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        match d.poll_job(&hb).await {
            Ok(st) if st.state.is_final() => break st,
            _ => {}
        }
    };
    assert_eq!(st.state, BmcJobState::Completed, "{st:?}");
    assert_eq!(installed(d.as_ref(), "159").await, "3.0.0");
    assert_eq!(fleet.install_count(&name, "159"), 1);
    assert_eq!(fleet.install_count(&name, "25227"), 1);
    assert_eq!(repo_jobs(&fleet, &name), 1);
    d.close().await.unwrap();
    fleet.shutdown().await;
}

/// `ConnectorConfig::resolve`: virtual-host iDRACs (one listener, named
/// `idrac-NNN.localhost`, which this machine's resolver need not know) are
/// reached at the listener's address, the TLS certificate pinned, and each
/// request lands on the host its name selects (SNI and `Host` carry the
/// name). Pinned, not a CA file: the fleet certificate's `*.localhost`
/// wildcard covers a single label under a TLD, which webpki refuses.
#[tokio::test]
async fn resolve_reaches_virtual_hosts_by_name() {
    let fleet = Fleet::builder()
        .hosts(3)
        .virtual_hosts(true)
        .speed(SPEED)
        .seed(7)
        .start()
        .await
        .unwrap();
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    use sha2::Digest as _;
    let pem = fleet.ca_cert_pem().unwrap();
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let pin = hex::encode(sha2::Sha256::digest(der.as_ref()));
    let mut cfg = config("https");
    cfg.default_tls = firmflow_redfish::TlsMode::PinnedSha256(pin);
    for h in fleet.hosts() {
        let name = h.host_header.rsplit_once(':').unwrap().0.to_string();
        assert!(h.url.contains(&name), "{h:?}");
        cfg.resolve.insert(name, h.addr);
    }
    let first = &fleet.hosts()[0];
    let c = connector(&first.username, &first.password, cfg, None);
    for h in &fleet.hosts()[1..] {
        let d = c.connect(&host(&h.url, MgmtKind::Idrac)).await.unwrap();
        let sys = d.system().await.unwrap();
        assert_eq!(sys.service_tag.as_deref(), Some(h.service_tag.as_str()));
        assert_eq!(fleet.live_sessions(&h.name), 1);
        d.close().await.unwrap();
        assert_eq!(fleet.live_sessions(&h.name), 0);
    }
    // Nothing was sent to the host no name selected.
    assert_eq!(fleet.requests(&first.name).total, 0);
    assert!(fleet.requests(&fleet.hosts()[2].name).total > 0);
    fleet.shutdown().await;
}
