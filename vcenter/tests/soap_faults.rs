//! Faults vcsim cannot produce, replayed from captured or hand-built vim25
//! answers (see `tests/fixtures/SOURCES.md`) by a mock vCenter.

use async_trait::async_trait;
use firmflow_core::cluster::{ClusterManager, ErrorKind};
use firmflow_core::credentials::{self, Credential, CredentialProvider};
use firmflow_core::model::{ClusterKey, Host, HostId, MgmtKind};
use firmflow_vcenter::{Auth, VcenterClusterManager, VcenterConfig, VimClient, VimError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HOST_MOID: &str = "host-1001";
const PASSWORD: &str = "Sup3r-S3cret/pw";

fn fixture(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn xml(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("content-type", "text/xml; charset=utf-8")
        .set_body_string(fixture(name))
}

fn login_ok() -> ResponseTemplate {
    xml(200, "vcsim_login.xml").insert_header(
        "set-cookie",
        "vmware_soap_session=\"52e1f7b4-0f6a-4a55\"; Path=/; HttpOnly; Secure;",
    )
}

/// A mock vCenter that answers RetrieveServiceContent and Login.
async fn vcenter() -> MockServer {
    let s = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("<RetrieveServiceContent"))
        .respond_with(xml(200, "vcsim_service_content.xml"))
        .mount(&s)
        .await;
    s
}

async fn mount_login(s: &MockServer, times: u64) {
    Mock::given(method("POST"))
        .and(body_string_contains("<Login "))
        .respond_with(login_ok())
        .expect(times)
        .mount(s)
        .await;
}

async fn on(s: &MockServer, needle: &str, resp: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(body_string_contains(needle))
        .respond_with(resp)
        .mount(s)
        .await;
}

/// Host state reads (`<type>HostSystem</type>`) say "not in maintenance".
async fn host_is_out_of_mm(s: &MockServer) {
    on(
        s,
        "<type>HostSystem</type>",
        xml(200, "host_state_out_of_mm.xml"),
    )
    .await;
}

fn config(s: &MockServer) -> VcenterConfig {
    VcenterConfig::new(
        s.uri(),
        Auth::Credential(Credential::new("firmflow@vsphere.local", PASSWORD)),
    )
    .with_task_poll(Duration::from_millis(5), Duration::from_millis(20))
}

fn manager(s: &MockServer) -> VcenterClusterManager {
    VcenterClusterManager::from_configs([config(s)]).expect("manager")
}

fn host(s: &MockServer) -> Host {
    let now = chrono::Utc::now();
    Host {
        id: HostId::new(),
        fqdn: "esx1.lab.example".into(),
        mgmt_ip: "192.0.2.11".into(),
        model: None,
        service_tag: Some("7XK9F33".into()),
        mgmt_kind: MgmtKind::Idrac,
        vcenter_url: Some(s.uri()),
        cluster_moid: Some("domain-c7".into()),
        host_moid: Some(HOST_MOID.into()),
        tags: vec![],
        datacenter_id: None,
        created_at: now,
        updated_at: now,
    }
}

fn assert_no_secret(e: &impl std::fmt::Debug) {
    let s = format!("{e:?}");
    assert!(!s.contains(PASSWORD), "secret leaked: {s}");
    assert!(!s.contains("52e1f7b4"), "session cookie leaked: {s}");
}

#[tokio::test]
async fn no_permission_is_an_authentication_error_naming_the_host() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    host_is_out_of_mm(&s).await;
    on(
        &s,
        "<EnterMaintenanceMode_Task",
        xml(500, "fault_no_permission.xml"),
    )
    .await;
    let e = manager(&s)
        .enter_maintenance(&host(&s), Duration::from_secs(5))
        .await
        .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Authentication, "{e}");
    assert_eq!(e.target, "esx1.lab.example (host-1001)");
    assert!(
        e.message.contains("NoPermission") && e.message.contains("denied"),
        "{e}"
    );
    assert_no_secret(&e);
}

#[tokio::test]
async fn a_task_that_times_out_in_vcenter_is_a_timeout() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    host_is_out_of_mm(&s).await;
    on(&s, "<EnterMaintenanceMode_Task", xml(200, "enter_task.xml")).await;
    on(
        &s,
        "<type>Task</type>",
        xml(200, "task_info_error_timedout.xml"),
    )
    .await;
    let e = manager(&s)
        .enter_maintenance(&host(&s), Duration::from_secs(5))
        .await
        .expect_err("timed out");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.message.contains("Operation timed out."), "{e}");
    assert!(e.is_transient());
}

#[tokio::test]
async fn invalid_state_with_the_host_still_serving_is_invalid_state() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    host_is_out_of_mm(&s).await;
    on(&s, "<EnterMaintenanceMode_Task", xml(200, "enter_task.xml")).await;
    on(
        &s,
        "<type>Task</type>",
        xml(200, "task_info_error_invalid_state.xml"),
    )
    .await;
    let e = manager(&s)
        .enter_maintenance(&host(&s), Duration::from_secs(5))
        .await
        .expect_err("invalid state");
    assert_eq!(e.kind, ErrorKind::InvalidState, "{e}");
    assert!(
        e.message.contains("not allowed in the current state"),
        "{e}"
    );
}

#[tokio::test]
async fn invalid_state_fault_on_the_call_is_invalid_state() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    host_is_out_of_mm(&s).await;
    // The call itself faults (no task), and a re-read shows the host still
    // serving, so the fault stands.
    on(
        &s,
        "<EnterMaintenanceMode_Task",
        xml(500, "fault_invalid_state.xml"),
    )
    .await;
    let e = manager(&s)
        .enter_maintenance(&host(&s), Duration::from_secs(5))
        .await
        .expect_err("invalid state");
    assert_eq!(e.kind, ErrorKind::InvalidState, "{e}");
}

#[tokio::test]
async fn another_task_in_progress_is_transient() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    host_is_out_of_mm(&s).await;
    on(
        &s,
        "<EnterMaintenanceMode_Task",
        xml(500, "fault_task_in_progress.xml"),
    )
    .await;
    let e = manager(&s)
        .enter_maintenance(&host(&s), Duration::from_secs(5))
        .await
        .expect_err("busy");
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.is_transient());
}

#[tokio::test]
async fn progress_is_polled_until_success() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    host_is_out_of_mm(&s).await;
    on(&s, "<EnterMaintenanceMode_Task", xml(200, "enter_task.xml")).await;
    Mock::given(method("POST"))
        .and(body_string_contains("<type>Task</type>"))
        .respond_with(xml(200, "task_info_running_progress.xml"))
        .up_to_n_times(3)
        .expect(3)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("<type>Task</type>"))
        .respond_with(xml(200, "task_info_success.xml"))
        .expect(1)
        .mount(&s)
        .await;
    manager(&s)
        .enter_maintenance(&host(&s), Duration::from_secs(5))
        .await
        .expect("entered");
}

#[tokio::test]
async fn local_timeout_cancels_the_task() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    host_is_out_of_mm(&s).await;
    on(&s, "<EnterMaintenanceMode_Task", xml(200, "enter_task.xml")).await;
    on(
        &s,
        "<type>Task</type>",
        xml(200, "task_info_running_progress.xml"),
    )
    .await;
    Mock::given(method("POST"))
        .and(body_string_contains("<CancelTask"))
        .respond_with(xml(200, "cancel_task.xml"))
        .expect(1)
        .mount(&s)
        .await;
    let e = manager(&s)
        .enter_maintenance(&host(&s), Duration::from_millis(200))
        .await
        .expect_err("timeout");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
}

#[tokio::test]
async fn a_lost_session_is_replaced_once_and_the_call_retried() {
    let s = vcenter().await;
    mount_login(&s, 2).await;
    host_is_out_of_mm(&s).await;
    Mock::given(method("POST"))
        .and(body_string_contains("<EnterMaintenanceMode_Task"))
        .respond_with(xml(500, "fault_not_authenticated_session.xml"))
        .up_to_n_times(1)
        .mount(&s)
        .await;
    on(&s, "<EnterMaintenanceMode_Task", xml(200, "enter_task.xml")).await;
    on(&s, "<type>Task</type>", xml(200, "task_info_success.xml")).await;
    manager(&s)
        .enter_maintenance(&host(&s), Duration::from_secs(5))
        .await
        .expect("entered after re-login");
}

#[tokio::test]
async fn a_session_that_keeps_failing_gives_up_after_one_relogin() {
    let s = vcenter().await;
    mount_login(&s, 2).await;
    on(
        &s,
        "<type>HostSystem</type>",
        xml(500, "vcsim_fault_not_authenticated.xml"),
    )
    .await;
    let e = manager(&s)
        .in_maintenance(&host(&s))
        .await
        .expect_err("not authenticated");
    assert_eq!(e.kind, ErrorKind::Authentication, "{e}");
    assert!(e.message.contains("NotAuthenticated"), "{e}");
}

#[tokio::test]
async fn a_read_that_reports_not_authenticated_in_missing_set_relogs_in() {
    let s = vcenter().await;
    mount_login(&s, 2).await;
    Mock::given(method("POST"))
        .and(body_string_contains("<type>HostSystem</type>"))
        .respond_with(xml(200, "vcsim_retrieve_not_authenticated.xml"))
        .up_to_n_times(1)
        .mount(&s)
        .await;
    host_is_out_of_mm(&s).await;
    assert!(!manager(&s).in_maintenance(&host(&s)).await.expect("read"));
}

#[tokio::test]
async fn invalid_login_is_authentication_and_never_shows_the_password() {
    let s = vcenter().await;
    on(&s, "<Login ", xml(500, "vcsim_fault_invalid_login.xml")).await;
    let e = manager(&s)
        .in_maintenance(&host(&s))
        .await
        .expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Authentication, "{e}");
    assert!(e.message.contains("InvalidLogin"), "{e}");
    assert_no_secret(&e);
    assert!(!e.to_string().contains(PASSWORD));
}

#[tokio::test]
async fn login_without_a_session_cookie_is_a_protocol_error() {
    let s = vcenter().await;
    on(&s, "<Login ", xml(200, "vcsim_login.xml")).await;
    let e = VimClient::new(config(&s))
        .expect("client")
        .login()
        .await
        .expect_err("no cookie");
    assert!(matches!(e, VimError::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("vmware_soap_session"), "{e}");
}

#[tokio::test]
async fn http_503_from_a_proxy_is_transient() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    on(
        &s,
        "<type>HostSystem</type>",
        ResponseTemplate::new(503)
            .insert_header("content-type", "text/html")
            .set_body_string(fixture("http_503.html")),
    )
    .await;
    let e = manager(&s)
        .in_maintenance(&host(&s))
        .await
        .expect_err("503");
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains("503"), "{e}");
}

#[tokio::test]
async fn garbage_is_an_error_not_a_panic() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    on(
        &s,
        "<type>HostSystem</type>",
        ResponseTemplate::new(200)
            .set_body_string("<RetrievePropertiesExResponse><returnval><objects>"),
    )
    .await;
    on(
        &s,
        "<type>ClusterComputeResource</type>",
        ResponseTemplate::new(200).set_body_string("\u{0}\u{1}not xml at all"),
    )
    .await;
    let m = manager(&s);
    let e = m.in_maintenance(&host(&s)).await.expect_err("truncated");
    assert_eq!(e.kind, ErrorKind::Other, "{e}");
    let key = ClusterKey {
        vcenter_url: s.uri(),
        cluster_moid: "domain-c7".into(),
    };
    let e = m.cluster_health(&key).await.expect_err("garbage");
    assert_eq!(e.kind, ErrorKind::Other, "{e}");
    assert!(e.target.contains("domain-c7"), "{e}");
}

#[tokio::test]
async fn a_missing_cluster_is_not_found() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    on(
        &s,
        "<type>ClusterComputeResource</type>",
        xml(500, "vcsim_retrieve_missing_object.xml"),
    )
    .await;
    let key = ClusterKey {
        vcenter_url: s.uri(),
        cluster_moid: "domain-c999".into(),
    };
    let e = manager(&s).cluster_hosts(&key).await.expect_err("missing");
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn the_captured_cluster_snapshot_reads_hosts_and_config() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    on(
        &s,
        "<type>ClusterComputeResource</type>",
        xml(200, "vcsim_cluster_snapshot.xml"),
    )
    .await;
    let key = ClusterKey {
        vcenter_url: s.uri(),
        cluster_moid: "clustercomputeresource-16".into(),
    };
    let h = manager(&s).cluster_health(&key).await.expect("health");
    assert!(h.drs_enabled && h.drs_fully_automated && h.ha_enabled);
    assert_eq!(h.hosts.len(), 2);
    assert_eq!(h.hosts[0].name, "dc0-c0-h0.vcsim.test");
    assert!(h.hosts.iter().all(|x| x.is_online()));
}

/// A provider that counts resolutions and can be made to fail.
struct CountingProvider {
    calls: AtomicU32,
    fail: bool,
}

#[async_trait]
impl CredentialProvider for CountingProvider {
    async fn resolve(&self, reference: &str) -> Result<Credential, credentials::Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(credentials::Error::Unavailable {
                reference: reference.into(),
                message: "vault sealed".into(),
            });
        }
        Ok(Credential::new("svc-firmflow@vsphere.local", PASSWORD))
    }
}

#[tokio::test]
async fn credentials_come_from_the_provider_at_each_login() {
    let s = vcenter().await;
    Mock::given(method("POST"))
        .and(body_string_contains(
            "<userName>svc-firmflow@vsphere.local</userName>",
        ))
        .respond_with(login_ok())
        .expect(2)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("<type>HostSystem</type>"))
        .respond_with(xml(500, "fault_not_authenticated_session.xml"))
        .up_to_n_times(1)
        .mount(&s)
        .await;
    host_is_out_of_mm(&s).await;
    let provider = Arc::new(CountingProvider {
        calls: AtomicU32::new(0),
        fail: false,
    });
    let mut cfg = config(&s);
    cfg.auth = Auth::Provider {
        provider: provider.clone(),
        reference: "vault:secret/vcenter/prod".into(),
    };
    let m = VcenterClusterManager::from_configs([cfg]).expect("manager");
    assert!(!m.in_maintenance(&host(&s)).await.expect("read"));
    // First login, then the re-login after NotAuthenticated.
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unavailable_provider_is_transient() {
    let s = vcenter().await;
    let mut cfg = config(&s);
    cfg.auth = Auth::Provider {
        provider: Arc::new(CountingProvider {
            calls: AtomicU32::new(0),
            fail: true,
        }),
        reference: "vault:secret/vcenter/prod".into(),
    };
    let m = VcenterClusterManager::from_configs([cfg]).expect("manager");
    let e = m
        .in_maintenance(&host(&s))
        .await
        .expect_err("no credential");
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains("vault sealed"), "{e}");
}

#[tokio::test]
async fn concurrent_callers_share_one_login() {
    let s = vcenter().await;
    mount_login(&s, 1).await;
    host_is_out_of_mm(&s).await;
    let m = Arc::new(manager(&s));
    let h = host(&s);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let m = m.clone();
            let h = h.clone();
            tokio::spawn(async move { m.in_maintenance(&h).await })
        })
        .collect();
    for handle in handles {
        assert!(!handle.await.expect("join").expect("read"));
    }
}
