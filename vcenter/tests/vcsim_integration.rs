//! firmflow-vcenter against govmomi's vCenter simulator (vcsim), run through
//! the launcher in `tests/vcsim/` (built by `tests/vcsim/prepare.sh`, which
//! these tests run themselves when the launcher is missing or stale; a
//! missing simulator fails the tests, it never skips them).
//!
//! Assertions about the world read the simulator's own state through its
//! control endpoint, not through the client under test.

mod common;

use common::{SimState, Vcsim, unmapped};
use firmflow_core::cluster::{ClusterManager, Connection, ErrorKind, Status};
use firmflow_core::credentials::Credential;
use firmflow_core::model::{ClusterKey, Host, PlanId, PlanStatus, RunId, RunState};
use firmflow_core::policy::{
    AdmissionPolicy, AdmissionSnapshot, Candidate, ClusterView, PlanView, RunCounts,
    StandardAdmission,
};
use firmflow_vcenter::{
    Auth, MatchedBy, TlsOptions, VcenterClusterManager, VcenterConfig, VimClient, discover,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn login_reads_service_content_and_logout_is_idempotent() {
    let sim = Vcsim::start(1, 2);
    let client = VimClient::new(sim.config()).expect("client");
    client.login().await.expect("login");
    let sc = client.service_content().await.expect("service content");
    assert_eq!(sc.api_type, "VirtualCenter");
    assert!(!sc.api_version.is_empty());
    // One session exists in vcsim (ours): dropping sessions ends exactly it.
    client.logout().await.expect("logout");
    client.logout().await.expect("second logout is a no-op");
    assert_eq!(
        sim.ctl("/drop-sessions").await,
        0,
        "logout left a session behind"
    );
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error_without_the_secret() {
    let sim = Vcsim::start(1, 2);
    let bad = Credential::new(&sim.hello.username, "Wr0ng-Secret-42");
    let m = VcenterClusterManager::from_configs([sim.config_with(bad)]).expect("manager");
    let e = m
        .cluster_hosts(&sim.key(0))
        .await
        .expect_err("login refused");
    assert_eq!(e.kind, ErrorKind::Authentication, "{e}");
    assert!(e.message.contains("InvalidLogin"), "{e}");
    assert!(e.target.contains(&sim.cluster(0).moid), "{e}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("Wr0ng-Secret-42"), "secret leaked: {shown}");
}

#[tokio::test]
async fn lists_the_hosts_of_a_cluster_with_live_state() {
    let sim = Vcsim::start(2, 3);
    let m = sim.manager();
    let hosts = m.cluster_hosts(&sim.key(1)).await.expect("hosts");
    let mut expected: Vec<_> = sim
        .cluster(1)
        .hosts
        .iter()
        .map(|h| (h.moid.clone(), h.name.clone()))
        .collect();
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    let got: Vec<_> = hosts
        .iter()
        .map(|h| (h.host_moid.clone(), h.name.clone()))
        .collect();
    assert_eq!(got, expected);
    assert!(
        hosts
            .iter()
            .all(|h| h.is_online() && h.overall_status == Status::Green)
    );

    // Change the world behind the client's back; the next read shows it.
    let target = &sim.cluster(1).hosts[0].moid;
    sim.ctl(&format!(
        "/host?moid={target}&connection=notResponding&status=red"
    ))
    .await;
    let hosts = m.cluster_hosts(&sim.key(1)).await.expect("hosts");
    let h = hosts.iter().find(|h| &h.host_moid == target).expect("host");
    assert_eq!(h.connection, Connection::NotResponding);
    assert_eq!(h.overall_status, Status::Red);
    assert!(!h.is_online());

    let missing = ClusterKey {
        vcenter_url: sim.hello.url.clone(),
        cluster_moid: "domain-c404".into(),
    };
    let e = m
        .cluster_hosts(&missing)
        .await
        .expect_err("no such cluster");
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn cluster_health_reads_drs_ha_and_names_problems() {
    let sim = Vcsim::start(1, 3);
    let m = sim.manager();
    let h = m.cluster_health(&sim.key(0)).await.expect("health");
    assert!(
        h.drs_enabled && h.drs_fully_automated && h.ha_enabled,
        "{h:?}"
    );
    assert_eq!(h.overall_status, Status::Green);
    assert!(h.problems(true).is_empty(), "{:?}", h.problems(true));

    let c = &sim.cluster(0).moid;
    let host = &sim.cluster(0).hosts[2].moid;
    sim.ctl(&format!("/cluster?moid={c}&drs=false&ha=false&status=red"))
        .await;
    sim.ctl(&format!("/host?moid={host}&connection=disconnected"))
        .await;
    let h = m.cluster_health(&sim.key(0)).await.expect("health");
    assert!(
        !h.drs_enabled && !h.drs_fully_automated && !h.ha_enabled,
        "{h:?}"
    );
    let p = h.problems(true);
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p.iter().any(|s| s.contains("disconnected")), "{p:?}");
    assert!(p.iter().any(|s| s.contains("DRS")), "{p:?}");

    sim.ctl(&format!(
        "/cluster?moid={c}&drs=true&drs_behavior=partiallyAutomated"
    ))
    .await;
    let h = m.cluster_health(&sim.key(0)).await.expect("health");
    assert!(h.drs_enabled && !h.drs_fully_automated, "{h:?}");
}

#[tokio::test]
async fn enters_and_exits_maintenance_mode() {
    let sim = Vcsim::start(1, 3);
    let m = sim.manager();
    let sh = sim.cluster(0).hosts[1].clone();
    let host = sim.mapped_host(&sh);

    assert!(!m.in_maintenance(&host).await.expect("read"));
    m.enter_maintenance(&host, Duration::from_secs(30))
        .await
        .expect("enter");
    assert!(
        sim.state().await.host(&sh.moid).in_maintenance,
        "vcsim: not in MM"
    );
    assert!(m.in_maintenance(&host).await.expect("read"));
    // Asking again (a resumed run) is not an error and changes nothing.
    m.enter_maintenance(&host, Duration::from_secs(30))
        .await
        .expect("enter again");

    m.exit_maintenance(&host, Duration::from_secs(30))
        .await
        .expect("exit");
    let st = sim.state().await;
    assert!(!st.host(&sh.moid).in_maintenance, "vcsim: still in MM");
    let t: Vec<_> = st
        .transitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.host, t.maintenance))
        .collect();
    assert_eq!(t, vec![(sh.moid.clone(), true), (sh.moid.clone(), false)]);
    m.exit_maintenance(&host, Duration::from_secs(30))
        .await
        .expect("exit again");

    let mut ghost = host.clone();
    ghost.host_moid = Some("host-404".into());
    let e = m
        .enter_maintenance(&ghost, Duration::from_secs(5))
        .await
        .expect_err("no such host");
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.target.contains("host-404"), "{e}");
}

#[tokio::test]
async fn a_running_task_is_followed_until_it_completes() {
    let sim = Vcsim::start(1, 2);
    let m = sim.manager();
    let sh = sim.cluster(0).hosts[0].clone();
    let host = sim.mapped_host(&sh);
    sim.ctl("/task-delay?ms=400").await;
    let t0 = Instant::now();
    m.enter_maintenance(&host, Duration::from_secs(20))
        .await
        .expect("enter");
    assert!(
        t0.elapsed() >= Duration::from_millis(400),
        "returned before the task ended"
    );
    assert!(sim.state().await.host(&sh.moid).in_maintenance);
}

#[tokio::test]
async fn a_disabled_enter_maintenance_method_is_a_typed_error_naming_the_host() {
    let sim = Vcsim::start(1, 2);
    let m = sim.manager();
    let sh = sim.cluster(0).hosts[0].clone();
    let host = sim.mapped_host(&sh);
    sim.ctl(&format!(
        "/disable?host={}&method=EnterMaintenanceMode_Task",
        sh.moid
    ))
    .await;
    let e = m
        .enter_maintenance(&host, Duration::from_secs(10))
        .await
        .expect_err("disabled");
    assert_eq!(e.kind, ErrorKind::MethodDisabled, "{e}");
    assert!(
        e.target.contains(&sh.name) && e.target.contains(&sh.moid),
        "{e}"
    );
    assert!(!e.is_transient());
    assert!(!sim.state().await.host(&sh.moid).in_maintenance);

    // Other hosts are unaffected, and re-enabling restores the method.
    let other = sim.mapped_host(&sim.cluster(0).hosts[1]);
    m.enter_maintenance(&other, Duration::from_secs(10))
        .await
        .expect("other host");
    sim.ctl(&format!(
        "/enable?host={}&method=EnterMaintenanceMode_Task",
        sh.moid
    ))
    .await;
    m.enter_maintenance(&host, Duration::from_secs(10))
        .await
        .expect("enabled again");
}

#[tokio::test]
async fn a_slow_evacuation_times_out_and_leaves_the_host_serving() {
    let sim = Vcsim::start(1, 2);
    let m = sim.manager();
    let sh = sim.cluster(0).hosts[0].clone();
    let host = sim.mapped_host(&sh);
    // The evacuation would take 20 s; we allow 1 s (vCenter's own `timeout`
    // argument is 1 s too, so the simulated vCenter gives up as well).
    sim.ctl("/task-delay?ms=20000").await;
    let t0 = Instant::now();
    let e = m
        .enter_maintenance(&host, Duration::from_secs(1))
        .await
        .expect_err("too slow");
    let took = t0.elapsed();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(e.is_transient());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // Whatever raced (our deadline or vCenter's Timedout), vCenter gave up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = sim.state().await;
    assert!(
        !st.host(&sh.moid).in_maintenance,
        "host entered MM after the timeout"
    );
    assert!(st.transitions.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn a_slow_soap_answer_is_cut_at_the_timeout() {
    let sim = Vcsim::start(1, 2);
    let m = sim.manager();
    let host = sim.mapped_host(&sim.cluster(0).hosts[1]);
    // vcsim's own delay knob: the call itself answers after 3 s.
    sim.ctl("/method-delay?method=EnterMaintenanceMode_Task&ms=3000")
        .await;
    let t0 = Instant::now();
    let e = m
        .enter_maintenance(&host, Duration::from_millis(600))
        .await
        .expect_err("too slow");
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn a_lost_session_logs_in_again_once() {
    let sim = Vcsim::start(1, 2);
    let m = sim.manager();
    let sh = sim.cluster(0).hosts[0].clone();
    let host = sim.mapped_host(&sh);
    assert!(!m.in_maintenance(&host).await.expect("first read"));
    assert_eq!(sim.ctl("/drop-sessions").await, 1);
    // A read: vCenter answers with NotAuthenticated in missingSet.
    let hosts = m
        .cluster_hosts(&sim.key(0))
        .await
        .expect("read after session loss");
    assert_eq!(hosts.len(), 2);
    assert_eq!(
        sim.ctl("/drop-sessions").await,
        1,
        "no new session was made"
    );
    // A method: vCenter answers with a NotAuthenticated fault.
    m.enter_maintenance(&host, Duration::from_secs(10))
        .await
        .expect("enter after session loss");
    assert!(sim.state().await.host(&sh.moid).in_maintenance);
}

#[tokio::test]
async fn a_transient_http_error_is_reported_as_transient() {
    let sim = Vcsim::start(1, 1);
    let m = sim.manager();
    m.cluster_hosts(&sim.key(0)).await.expect("warm up");
    sim.ctl("/sdk-status?code=503").await;
    let e = m.cluster_hosts(&sim.key(0)).await.expect_err("503");
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    m.cluster_hosts(&sim.key(0)).await.expect("recovered");
}

#[tokio::test]
async fn tls_is_verified_unless_told_otherwise() {
    let sim = Vcsim::start(1, 1);
    let auth = Auth::Credential(sim.credential());
    // Web PKI roots only: the simulator's private CA is not trusted.
    let strict =
        VcenterClusterManager::from_configs([VcenterConfig::new(&sim.hello.url, auth.clone())])
            .expect("manager");
    let e = strict
        .cluster_hosts(&sim.key(0))
        .await
        .expect_err("untrusted");
    assert!(e.message.contains("TLS"), "{e}");
    assert_ne!(
        e.kind,
        ErrorKind::Transient,
        "a certificate problem does not heal by retrying"
    );
    // Explicitly accepting any certificate works.
    let lax = VcenterClusterManager::from_configs([VcenterConfig::new(&sim.hello.url, auth)
        .with_tls(TlsOptions {
            ca_file: None,
            accept_invalid_certs: true,
        })])
    .expect("manager");
    assert_eq!(
        lax.cluster_hosts(&sim.key(0))
            .await
            .expect("accepted")
            .len(),
        1
    );
}

#[tokio::test]
async fn discovery_maps_hosts_by_service_tag_then_name() {
    let sim = Vcsim::start(2, 2);
    let client = VimClient::new(sim.config()).expect("client");
    let c0 = sim.cluster(0).hosts.clone();
    let c1 = sim.cluster(1).hosts.clone();
    // By tag (lower case, a different fqdn than vCenter's name).
    let by_tag = unmapped("r650-a.dc.example", Some(&c0[0].service_tag.to_lowercase()));
    // By name (no tag known yet).
    let by_name = unmapped(&c1[1].name.to_uppercase(), None);
    let unknown = unmapped("esx-99.dc.example", Some("NOPE999"));
    let d = discover(&client, &[by_tag.clone(), by_name.clone(), unknown.clone()])
        .await
        .expect("discover");
    assert_eq!(d.unmatched, vec![unknown.id]);
    assert!(d.ambiguous.is_empty(), "{d:?}");
    let m: BTreeMap<_, _> = d.mapped.iter().map(|m| (m.host_id, m)).collect();
    let a = m[&by_tag.id];
    assert_eq!(a.matched_by, MatchedBy::ServiceTag);
    assert_eq!(a.host_moid, c0[0].moid);
    assert_eq!(
        a.cluster_moid.as_deref(),
        Some(sim.cluster(0).moid.as_str())
    );
    assert_eq!(a.vcenter_url, sim.hello.url);
    let b = m[&by_name.id];
    assert_eq!(b.matched_by, MatchedBy::Fqdn);
    assert_eq!(b.host_moid, c1[1].moid);
    assert_eq!(
        b.cluster_moid.as_deref(),
        Some(sim.cluster(1).moid.as_str())
    );

    // The filled record drives maintenance mode directly.
    let mut host = by_tag.clone();
    a.apply_to(&mut host);
    let mgr = VcenterClusterManager::new([client]);
    mgr.enter_maintenance(&host, Duration::from_secs(10))
        .await
        .expect("enter");
    assert!(sim.state().await.host(&c0[0].moid).in_maintenance);
}

/// A rolling update of a whole cluster, admitted by core's StandardAdmission
/// from vCenter's live state: 6 hosts, one already in maintenance by someone
/// else (not in the plan), minHostsOnline 3, maxConcurrent 3. The simulator
/// records the fewest hosts online at every transition (exact, not sampled),
/// and a watcher also samples during the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_never_drops_below_min_hosts_online() {
    const MIN_ONLINE: u32 = 3;
    let sim = Vcsim::start(1, 6);
    let mgr = Arc::new(sim.manager());
    let key = sim.key(0);
    let cluster = sim.cluster(0).clone();
    // Another admin's host, already in maintenance.
    let foreign = cluster.hosts[5].moid.clone();
    sim.ctl(&format!("/host?moid={foreign}&maintenance=true"))
        .await;
    sim.ctl("/reset-watermark").await;
    sim.ctl("/task-delay?ms=120").await;

    let plan_hosts: Vec<Host> = cluster.hosts[..5]
        .iter()
        .map(|h| sim.mapped_host(h))
        .collect();
    let plan = PlanView {
        id: PlanId::new(),
        status: PlanStatus::Running,
        max_concurrent: 3,
        min_hosts_online: MIN_ONLINE,
        failure_budget: None,
        window: None,
        expected_run_duration: Duration::from_secs(60),
        max_resumes: 3,
    };
    let runs: BTreeMap<RunId, Host> = plan_hosts
        .iter()
        .map(|h| (RunId::new(), h.clone()))
        .collect();

    // Watcher: samples vcsim's state until told to stop.
    let stop = Arc::new(tokio::sync::Notify::new());
    let watcher = {
        let http = reqwest::Client::new();
        let url = format!("{}/state", sim.hello.control);
        let cluster_moid = cluster.moid.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut min_seen = usize::MAX;
            let mut samples = 0;
            loop {
                let st: SimState = http
                    .get(&url)
                    .send()
                    .await
                    .expect("state")
                    .json()
                    .await
                    .expect("json");
                min_seen = min_seen.min(st.online(&cluster_moid));
                samples += 1;
                tokio::select! {
                    _ = stop.notified() => return (min_seen, samples),
                    _ = tokio::time::sleep(Duration::from_millis(15)) => {}
                }
            }
        })
    };

    let mut pending: BTreeSet<RunId> = runs.keys().copied().collect();
    let mut in_flight: BTreeMap<String, RunId> = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut max_parallel = 0;
    let t0 = Instant::now();
    while !pending.is_empty() || !tasks.is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "rolling update stalled"
        );
        if !pending.is_empty() {
            // Admission re-reads vCenter's live state every time.
            let live = mgr.cluster_hosts(&key).await.expect("live state");
            let live_online: BTreeSet<String> = live
                .iter()
                .filter(|h| h.is_online())
                .map(|h| h.host_moid.clone())
                .collect();
            let members: BTreeSet<String> = live.iter().map(|h| h.host_moid.clone()).collect();
            let candidates: Vec<Candidate> = pending
                .iter()
                .map(|id| {
                    let h = &runs[id];
                    Candidate {
                        run_id: *id,
                        host_id: h.id,
                        cluster: h.cluster_key(),
                        member_key: h.host_moid.clone().unwrap_or_default(),
                        priority: 0,
                        run_at: chrono::Utc::now(),
                        state: RunState::Pending,
                        resumes: 0,
                        cleanup: false,
                        dirty: false,
                    }
                })
                .collect();
            let snapshot = AdmissionSnapshot {
                now: chrono::Utc::now(),
                plan: plan.clone(),
                counts: RunCounts {
                    pending: pending.len() as u32,
                    running: in_flight.len() as u32,
                    completed: (runs.len() - pending.len() - in_flight.len()) as u32,
                    ..Default::default()
                },
                candidates,
                clusters: [(
                    key.clone(),
                    ClusterView {
                        members,
                        in_flight: in_flight.keys().cloned().collect(),
                        live_online: Some(live_online),
                    },
                )]
                .into(),
                slots: 10,
            };
            let decision = StandardAdmission.select(&snapshot);
            for id in decision.admit {
                pending.remove(&id);
                let host = runs[&id].clone();
                in_flight.insert(host.host_moid.clone().unwrap_or_default(), id);
                let mgr = mgr.clone();
                tasks.spawn(async move {
                    mgr.enter_maintenance(&host, Duration::from_secs(10))
                        .await?;
                    // "Flash and reboot".
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    mgr.exit_maintenance(&host, Duration::from_secs(10)).await?;
                    Ok::<_, firmflow_core::cluster::Error>(
                        host.host_moid.clone().unwrap_or_default(),
                    )
                });
            }
            max_parallel = max_parallel.max(in_flight.len());
        }
        if let Some(done) = tasks.join_next().await {
            let moid = done.expect("join").expect("update of one host");
            in_flight.remove(&moid);
        }
    }
    stop.notify_one();
    let (sampled_min, samples) = watcher.await.expect("watcher");

    let st = sim.state().await;
    let exact_min = st.low_water[&cluster.moid];
    assert!(
        exact_min >= MIN_ONLINE as usize,
        "vcsim saw {exact_min} hosts online in {}",
        cluster.name
    );
    assert!(
        sampled_min >= MIN_ONLINE as usize,
        "sampled {sampled_min} online"
    );
    // 5 online at the start, 3 kept: two at a time, so the limit was reached.
    assert_eq!(exact_min, MIN_ONLINE as usize);
    assert_eq!(max_parallel, 2);
    assert!(samples > 3, "watcher sampled only {samples} times");
    // Every plan host went in and out once; the foreign host was untouched.
    let transitions = st.transitions.clone().unwrap_or_default();
    assert_eq!(transitions.len(), 10);
    for h in &cluster.hosts[..5] {
        let mine: Vec<bool> = transitions
            .iter()
            .filter(|t| t.host == h.moid)
            .map(|t| t.maintenance)
            .collect();
        assert_eq!(mine, vec![true, false], "{}", h.moid);
        assert!(st.host(&h.moid).online);
    }
    assert!(st.host(&foreign).in_maintenance);
    assert_eq!(st.host(&foreign).connection, "connected");
}
