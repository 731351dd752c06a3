//! Executor scenarios on the memory store with fake BMCs and a fake vCenter,
//! on paused tokio time: hours of Dell update time run in milliseconds.

use firmflow_core::bmc::ResetKind;
use firmflow_core::executor::PlanError;
use firmflow_core::model::*;
use firmflow_core::store::{
    EventFilter, EventStore as _, HostStore as _, PlanStore as _, RunStore as _,
};
use firmflow_core::testkit::fakes::HostScript;
use firmflow_tests::*;
use std::time::Duration;

fn script() -> HostScript {
    HostScript::default()
}

async fn runs_by_host(w: &World, plan: PlanId) -> std::collections::BTreeMap<HostId, HostRun> {
    w.store
        .list_runs(plan)
        .await
        .expect("runs")
        .into_iter()
        .map(|r| (r.host_id, r))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn rolling_update_completes_and_verifies_every_host() {
    let mut w = World::new();
    let mut hs = Vec::new();
    for i in 0..6 {
        hs.push(w.clustered(&format!("esx{i}"), "c1", script()).await);
    }
    let targets: Vec<(&Host, i32)> = hs.iter().map(|h| (h, 0)).collect();
    let mut np = plan(&targets, vec![idrac("7.10.50.00"), bios("2.19.1")]);
    np.policy.max_concurrent = 3;
    np.policy.min_hosts_online = 4;
    let exec = w.executor("e1", 16);
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(finish(&handle, pid).await, PlanStatus::Completed);
    for h in &hs {
        assert_eq!(w.fleet.version(&h.fqdn, "159").as_deref(), Some("2.19.1"));
        assert_eq!(
            w.fleet.version(&h.fqdn, "25227").as_deref(),
            Some("7.10.50.00")
        );
        // BMC first, then BIOS; each exactly once.
        assert_eq!(
            w.fleet.installs(&h.fqdn),
            vec![
                ("25227".to_string(), "7.10.50.00".to_string()),
                ("159".to_string(), "2.19.1".to_string())
            ]
        );
        assert_eq!(w.fleet.resets(&h.fqdn), vec![ResetKind::GracefulRestart]);
    }
    // minHostsOnline=4 of 6: never more than 2 down at once, and the cap held.
    assert!(
        w.cluster
            .min_online_seen(&cluster_key("c1"))
            .expect("entered")
            >= 4
    );
    assert!(max_in_flight(w.store.as_ref(), pid).await <= 2);
    let (enters, exits) = w.cluster.counts();
    assert_eq!((enters, exits), (6, 6));
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
    let r = &runs_by_host(&w, pid).await[&hs[0].id];
    assert_eq!(r.state, RunState::Completed);
    assert_eq!(r.ctx.progress.percentage, 100);
    assert_eq!(r.ctx.results.components.len(), 2);
    assert!(r.ctx.timing.phases.contains_key("install"));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_is_never_exceeded_and_priority_is_honoured() {
    let mut w = World::new();
    let mut hs = Vec::new();
    for i in 0..8 {
        hs.push(w.host(&format!("h{i}"), script()).await);
    }
    // Priority = index: h7 first.
    let targets: Vec<(&Host, i32)> = hs.iter().enumerate().map(|(i, h)| (h, i as i32)).collect();
    let mut np = plan(&targets, vec![bios("2.19.1")]);
    np.policy.max_concurrent = 2;
    let exec = w.executor("e1", 64);
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(finish(&handle, pid).await, PlanStatus::Completed);
    assert_eq!(max_in_flight(w.store.as_ref(), pid).await, 2);
    let order = claim_order(w.store.as_ref(), pid).await;
    let expected: Vec<HostId> = hs.iter().rev().map(|h| h.id).collect();
    assert_eq!(order, expected, "claimed in priority order");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn min_hosts_online_holds_across_two_plans() {
    let mut w = World::new();
    let mut hs = Vec::new();
    for i in 0..4 {
        hs.push(w.clustered(&format!("esx{i}"), "c1", script()).await);
    }
    let exec = w.executor("e1", 64);
    let handle = exec.spawn();
    let mut a = plan(&[(&hs[0], 0), (&hs[1], 0)], vec![bios("2.19.1")]);
    a.policy.max_concurrent = 2;
    a.policy.min_hosts_online = 3;
    let mut b = plan(&[(&hs[2], 0), (&hs[3], 0)], vec![bios("2.19.1")]);
    b.policy.max_concurrent = 2;
    b.policy.min_hosts_online = 3;
    let pa = start(&exec, a).await;
    let pb = start(&exec, b).await;
    assert_eq!(finish(&handle, pa).await, PlanStatus::Completed);
    assert_eq!(finish(&handle, pb).await, PlanStatus::Completed);
    assert_eq!(
        w.cluster.min_online_seen(&cluster_key("c1")),
        Some(3),
        "one host at a time across both plans"
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn nothing_starts_outside_the_window_or_without_approval() {
    let mut w = World::new();
    let h = w.host("h0", script()).await;
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let mut np = plan(&[(&h, 0)], vec![bios("2.19.1")]);
    np.approval_required = true;
    np.policy.expected_host_duration_secs = Some(3600);
    np.maintenance_window = Some(MaintenanceWindow {
        start: t0() + chrono::Duration::hours(2),
        end: t0() + chrono::Duration::hours(6),
    });
    let p = exec.create_plan(np).await.expect("create").plan;
    assert!(matches!(
        exec.start(p.id, None).await,
        Err(PlanError::NotApproved(_))
    ));
    exec.approve(p.id, UserId::new()).await.expect("approve");
    exec.start(p.id, None).await.expect("start");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(w.fleet.submits(&h.fqdn).is_empty(), "window not open yet");
    assert_eq!(w.fleet.calls(&h.fqdn), 0, "not even a preflight");
    assert_eq!(finish(&handle, p.id).await, PlanStatus::Completed);
    let r = w.store.list_runs(p.id).await.expect("runs").remove(0);
    assert!(r.started_at.expect("started") >= t0() + chrono::Duration::hours(2));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn transient_errors_retry_with_backoff_then_succeed() {
    let mut w = World::new();
    let h = w
        .host(
            "h0",
            HostScript {
                transient_submit_failures: 2,
                ..script()
            },
        )
        .await;
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let pid = start(&exec, plan(&[(&h, 0)], vec![bios("2.19.1")])).await;
    assert_eq!(finish(&handle, pid).await, PlanStatus::Completed);
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(r.state, RunState::Completed);
    assert_eq!(r.attempts, 2, "two failed attempts before success");
    assert_eq!(r.ctx.results.errors.len(), 2);
    assert!(r.ctx.results.errors[0].message.contains("RAC0679"));
    assert_eq!(w.fleet.installs(&h.fqdn).len(), 1);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn terminal_failure_fails_the_run_and_leaves_maintenance() {
    let mut w = World::new();
    let h = w
        .clustered(
            "esx0",
            "c1",
            HostScript {
                failing_components: vec!["159".into()],
                ..script()
            },
        )
        .await;
    let _spare = w.clustered("esx1", "c1", script()).await;
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let pid = start(&exec, plan(&[(&h, 0)], vec![bios("2.19.1")])).await;
    assert_eq!(finish(&handle, pid).await, PlanStatus::Failed);
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(r.state, RunState::Failed);
    assert_eq!(r.attempts, 1, "terminal: no retry");
    assert!(
        r.last_error.as_deref().unwrap_or("").contains("RED063"),
        "{:?}",
        r.last_error
    );
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
    assert_eq!(w.fleet.version(&h.fqdn, "159").as_deref(), Some("2.10.0"));
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn failure_budget_halts_admission_and_fails_the_plan() {
    let mut w = World::new();
    let bad = HostScript {
        failing_components: vec!["159".into()],
        ..script()
    };
    let mut hs = Vec::new();
    for i in 0..5 {
        hs.push(w.host(&format!("h{i}"), bad.clone()).await);
    }
    let targets: Vec<(&Host, i32)> = hs.iter().map(|h| (h, 0)).collect();
    let mut np = plan(&targets, vec![bios("2.19.1")]);
    np.policy.failure_budget = Some(FailureBudget {
        max_failures: Some(2),
        max_failure_percent: None,
    });
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(finish(&handle, pid).await, PlanStatus::Failed);
    let counts = w.store.run_counts(pid).await.expect("counts");
    assert_eq!((counts.failed, counts.cancelled), (2, 3));
    let p = w.store.get_plan(pid).await.expect("plan");
    assert!(
        p.status_reason
            .unwrap_or_default()
            .contains("failure budget")
    );
    let touched = hs
        .iter()
        .filter(|h| !w.fleet.submits(&h.fqdn).is_empty())
        .count();
    assert_eq!(touched, 2, "no host touched after the budget ran out");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn wrong_version_after_install_rolls_back_and_leaves_maintenance() {
    let mut w = World::new();
    let h = w
        .clustered(
            "esx0",
            "c1",
            HostScript {
                wrong_version_after_install: Some("2.18.9".into()),
                ..script()
            },
        )
        .await;
    let _spare = w.clustered("esx1", "c1", script()).await;
    let mut np = plan(&[(&h, 0)], vec![bios("2.19.1")]);
    np.policy.rollback_on_failure = true;
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(finish(&handle, pid).await, PlanStatus::Failed);
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert!(
        r.last_error
            .as_deref()
            .unwrap_or("")
            .contains("installed version is 2.18.9"),
        "{:?}",
        r.last_error
    );
    assert_eq!(
        w.fleet.version(&h.fqdn, "159").as_deref(),
        Some("2.10.0"),
        "rolled back to the previous image"
    );
    assert_eq!(r.ctx.results.components[0].outcome, "rolled_back");
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn cancel_waits_for_the_install_in_flight_then_stops() {
    let mut w = World::new();
    let a = w.clustered("esx0", "c1", script()).await;
    let b = w.clustered("esx1", "c1", script()).await;
    let _c = w.clustered("esx2", "c1", script()).await;
    let mut np = plan(
        &[(&a, 2), (&b, 1)],
        vec![idrac("7.10.50.00"), bios("2.19.1")],
    );
    np.policy.max_concurrent = 1;
    np.policy.rollback_on_failure = false;
    let exec = w.executor("e1", 4);
    let mut progress = exec.subscribe();
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    // Wait until a's iDRAC job (first in order) is installing.
    loop {
        let ev = progress.recv().await.expect("progress");
        if ev.host_id == a.id && ev.phase == Phase::Install && ev.message.contains("Running") {
            break;
        }
    }
    exec.cancel(pid, None).await.expect("cancel");
    assert_eq!(finish(&handle, pid).await, PlanStatus::Cancelled);
    // Give the run time to wind down.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let runs = runs_by_host(&w, pid).await;
    assert_eq!(runs[&a.id].state, RunState::Cancelled);
    assert_eq!(runs[&b.id].state, RunState::Cancelled);
    assert_eq!(
        w.fleet.installs(&a.fqdn),
        vec![("25227".to_string(), "7.10.50.00".to_string())],
        "the install in flight finished; the next package never started"
    );
    assert_eq!(w.fleet.version(&a.fqdn, "159").as_deref(), Some("2.10.0"));
    assert!(w.fleet.submits(&b.fqdn).is_empty());
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn pause_lets_hosts_in_flight_finish_and_resume_continues() {
    let mut w = World::new();
    let mut hs = Vec::new();
    for i in 0..3 {
        hs.push(w.host(&format!("h{i}"), script()).await);
    }
    let targets: Vec<(&Host, i32)> = hs
        .iter()
        .enumerate()
        .map(|(i, h)| (h, 10 - i as i32))
        .collect();
    let mut np = plan(&targets, vec![bios("2.19.1")]);
    np.policy.max_concurrent = 1;
    let exec = w.executor("e1", 4);
    let mut progress = exec.subscribe();
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    loop {
        let ev = progress.recv().await.expect("progress");
        if ev.host_id == hs[0].id && ev.phase == Phase::Download {
            break;
        }
    }
    exec.pause(pid, None).await.expect("pause");
    tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
    let runs = runs_by_host(&w, pid).await;
    assert_eq!(
        runs[&hs[0].id].state,
        RunState::Completed,
        "in flight finished"
    );
    assert_eq!(
        runs[&hs[1].id].state,
        RunState::Pending,
        "nothing new started"
    );
    assert_eq!(
        w.store.get_plan(pid).await.expect("plan").status,
        PlanStatus::Paused
    );
    exec.resume(pid, None).await.expect("resume");
    assert_eq!(finish(&handle, pid).await, PlanStatus::Completed);
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn crash_after_submit_resumes_by_polling_never_resubmits() {
    let mut w = World::new();
    let h = w.host("h0", script()).await;
    let exec_a = w.executor("a", 4);
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, plan(&[(&h, 0)], vec![bios("2.19.1")])).await;
    // Wait for the job id to be checkpointed (submitted, or staged for the reboot).
    let mut waited = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += 1;
        assert!(waited < 3600, "the job id was never checkpointed");
        let r = w.store.list_runs(pid).await.expect("runs").remove(0);
        if r.ctx.checkpoint.packages.iter().any(|p| {
            matches!(
                p.status,
                PackageStatus::Submitted { .. } | PackageStatus::AwaitingReboot { .. }
            )
        }) {
            break;
        }
    }
    assert_eq!(w.fleet.submits(&h.fqdn).len(), 1);
    handle_a.abort(); // the process dies: no release, no more heartbeats
    let exec_b = w.executor("b", 4);
    let handle_b = exec_b.spawn();
    assert_eq!(finish(&handle_b, pid).await, PlanStatus::Completed);
    assert_eq!(w.fleet.submits(&h.fqdn).len(), 1, "never submitted again");
    assert_eq!(w.fleet.installs(&h.fqdn).len(), 1);
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(
        (r.resumes, r.attempts),
        (1, 0),
        "a takeover is a resume, not a failure"
    );
    assert!(r.lease_epoch >= 2);
    handle_b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn crash_between_intent_and_job_id_adopts_the_bmc_job() {
    // The run journaled "submitting", the BMC took the job, and the process
    // died before the job id was recorded: the successor must find the job.
    let mut w = World::new();
    let h = w.host("h0", script()).await;
    let exec_a = w.executor("a", 4);
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, plan(&[(&h, 0)], vec![bios("2.19.1")])).await;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !w.fleet.submits(&h.fqdn).is_empty() {
            break;
        }
    }
    handle_a.abort();
    // Rewind the checkpoint to the intent only, as if the crash came first.
    // (Done through a fresh claim by a helper worker so writes stay fenced.)
    tokio::time::sleep(Duration::from_secs(120)).await;
    let claimed = w
        .store
        .claim(firmflow_core::store::ClaimRequest {
            worker: &WorkerId("surgeon".into()),
            plan: pid,
            slots: 1,
            lease_ttl: Duration::from_secs(60),
            reclaim_delay: Duration::from_secs(30),
            live_online: &Default::default(),
            admission: &firmflow_core::policy::StandardAdmission,
        })
        .await
        .expect("claim")
        .remove(0);
    let mut ctx = claimed.run.ctx.clone();
    let mut rewound = 0;
    for p in &mut ctx.checkpoint.packages {
        // The intent as it was journaled: the BMC's queue was empty then.
        let intent = match &p.status {
            PackageStatus::Submitted {
                intent: Some(i), ..
            } => Some(i.clone()),
            PackageStatus::Submitted { .. } | PackageStatus::AwaitingReboot { .. } => {
                Some(Intent {
                    token: uuid::Uuid::new_v4(),
                    at: chrono::Utc::now(),
                    known_jobs: Some(Vec::new()),
                })
            }
            _ => None,
        };
        if let Some(intent) = intent {
            p.status = PackageStatus::Submitting {
                intent: Some(intent),
            };
            rewound += 1;
        }
    }
    assert_eq!(
        rewound, 1,
        "the job id had been recorded: {:?}",
        ctx.checkpoint
    );
    ctx.checkpoint.stage = Stage::Installing;
    w.store.release(&claimed.lease, ctx).await.expect("release");
    let exec_b = w.executor("b", 4);
    let handle_b = exec_b.spawn();
    let status = finish(&handle_b, pid).await;
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(
        status,
        PlanStatus::Completed,
        "{:?} {:?}",
        r.last_error,
        r.ctx.results.errors
    );
    assert_eq!(
        w.fleet.submits(&h.fqdn).len(),
        1,
        "the BMC's job was adopted"
    );
    assert_eq!(w.fleet.installs(&h.fqdn).len(), 1);
    handle_b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn takeover_after_lost_heartbeats_finishes_once() {
    let mut w = World::new();
    let mut hs = Vec::new();
    for i in 0..4 {
        hs.push(w.host(&format!("h{i}"), script()).await);
    }
    let targets: Vec<(&Host, i32)> = hs.iter().map(|h| (h, 0)).collect();
    let mut np = plan(&targets, vec![bios("2.19.1")]);
    np.policy.max_concurrent = 4;
    let exec_a = w.executor("a", 4);
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, np).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(handle_a.active_runs(), 4);
    handle_a.suspend_heartbeats();
    let exec_b = w.executor("b", 4);
    let handle_b = exec_b.spawn();
    assert_eq!(finish(&handle_b, pid).await, PlanStatus::Completed);
    for h in &hs {
        assert_eq!(w.fleet.installs(&h.fqdn).len(), 1, "{}", h.fqdn);
        assert!(w.fleet.submits(&h.fqdn).len() <= 1, "{}", h.fqdn);
    }
    let runs = w.store.list_runs(pid).await.expect("runs");
    assert!(runs.iter().all(|r| r.resumes == 1 && r.lease_epoch == 2));
    // Every event after the takeover of a run comes from the new epoch.
    let ev = w
        .store
        .list_events(&EventFilter {
            plan_id: Some(pid),
            ..Default::default()
        })
        .await
        .expect("events");
    for r in &runs {
        let mut taken = false;
        for e in ev.iter().filter(|e| e.event.run_id == Some(r.id)) {
            if e.event.event_type == EventType::RunReclaimed {
                taken = true;
            } else if taken && let Some(epoch) = e.event.details.get("epoch") {
                assert_eq!(epoch.as_u64(), Some(2));
            }
        }
    }
    handle_a.shutdown().await;
    handle_b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn graceful_shutdown_releases_and_another_executor_resumes() {
    let mut w = World::new();
    let h = w.host("h0", script()).await;
    let exec_a = w.executor("a", 4);
    let handle_a = exec_a.spawn();
    let pid = start(&exec_a, plan(&[(&h, 0)], vec![bios("2.19.1")])).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    handle_a.shutdown().await;
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(r.state, RunState::Retrying, "released at a safe point");
    assert_eq!(r.attempts, 0);
    let exec_b = w.executor("b", 4);
    let handle_b = exec_b.spawn();
    assert_eq!(finish(&handle_b, pid).await, PlanStatus::Completed);
    assert_eq!(w.fleet.submits(&h.fqdn).len(), 1);
    handle_b.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn no_downtime_and_no_maintenance_stages_for_next_reboot() {
    let mut w = World::new();
    let h = w.host("h0", script()).await;
    let mut np = plan(&[(&h, 0)], vec![bios("2.19.1")]);
    np.policy.allow_downtime = false;
    np.policy.post_update_validation = vec![];
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    assert_eq!(finish(&handle, pid).await, PlanStatus::Completed);
    assert!(w.fleet.resets(&h.fqdn).is_empty(), "never rebooted");
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(r.ctx.results.components[0].outcome, "staged");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn graceful_restart_falls_back_to_forced() {
    let mut w = World::new();
    let h = w
        .host(
            "h0",
            HostScript {
                ignore_graceful: true,
                ..script()
            },
        )
        .await;
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let pid = start(&exec, plan(&[(&h, 0)], vec![bios("2.19.1")])).await;
    assert_eq!(finish(&handle, pid).await, PlanStatus::Completed);
    assert_eq!(
        w.fleet.resets(&h.fqdn),
        vec![ResetKind::GracefulRestart, ResetKind::ForceRestart]
    );
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn host_that_never_comes_back_is_parked_without_update_retries() {
    let mut w = World::new();
    let h = w
        .host(
            "h0",
            HostScript {
                never_back: true,
                ..script()
            },
        )
        .await;
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let pid = start(&exec, plan(&[(&h, 0)], vec![bios("2.19.1")])).await;
    assert_eq!(finish(&handle, pid).await, PlanStatus::Failed);
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    // The failure is terminal (no update retry), but its staged job cannot
    // be deleted from a BMC that never answers again: the run is parked
    // for an operator instead of being called clean.
    assert_eq!(r.state, RunState::NeedsAttention, "{:?}", r.last_error);
    assert!(
        r.ctx.results.errors[0]
            .message
            .contains("did not come back"),
        "{:?}",
        r.ctx.results.errors
    );
    assert!(
        r.last_error
            .unwrap_or_default()
            .contains("still holds staged jobs")
    );
    assert_eq!(w.fleet.submits(&h.fqdn).len(), 1, "never resubmitted");
    handle.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn invalid_plan_is_refused_with_every_problem() {
    let mut w = World::new();
    let a = w.clustered("esx0", "c1", script()).await;
    let _b = w.clustered("esx1", "c1", script()).await;
    let exec = w.executor("e1", 4);
    let mut np = plan(&[(&a, 0)], vec![]);
    np.policy.max_concurrent = 0;
    np.policy.min_hosts_online = 2;
    np.policy.preflight_checks.push("astrology".into());
    np.maintenance_window = Some(MaintenanceWindow {
        start: t0(),
        end: t0() - chrono::Duration::minutes(1),
    });
    let err = exec.create_plan(np).await.expect_err("refused");
    let PlanError::Invalid(inv) = err else {
        panic!("expected Invalid, got {err}");
    };
    let fields: Vec<&str> = inv.0.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "artifacts",
            "policy.maxConcurrent",
            "policy.minHostsOnline",
            "policy.preflightChecks[3]",
            "maintenanceWindow"
        ],
        "{inv}"
    );
    assert!(w.store.list_plans().await.expect("plans").is_empty());
    assert_eq!(w.store.list_hosts().await.expect("hosts").len(), 2);
}

/// A one-host BIOS campaign in a two-host cluster whose vCenter refuses the
/// next `failing_exits` maintenance exits; returns when the plan is final.
async fn campaign_with_refused_exits(failing_exits: u64) -> (World, Host, PlanId, PlanStatus) {
    let mut w = World::new();
    let h = w.clustered("esx0", "c1", script()).await;
    let _spare = w.clustered("esx1", "c1", script()).await;
    w.cluster.fail_next_exits(failing_exits);
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let pid = start(&exec, plan(&[(&h, 0)], vec![bios("2.19.1")])).await;
    let status = finish(&handle, pid).await;
    handle.shutdown().await;
    (w, h, pid, status)
}

#[tokio::test(start_paused = true)]
async fn a_refused_maintenance_exit_is_retried_until_the_host_is_back() {
    let (w, h, pid, status) = campaign_with_refused_exits(2).await;
    assert_eq!(status, PlanStatus::Completed);
    assert_eq!(w.cluster.in_maintenance_now(&cluster_key("c1")), 0);
    let r = w.store.list_runs(pid).await.expect("runs").remove(0);
    assert_eq!(r.attempts, 0, "not a failed update");
    assert_eq!(
        r.ctx
            .results
            .errors
            .iter()
            .filter(|e| e.phase == Phase::ExitMaintenance)
            .count(),
        2
    );
    assert_eq!(w.fleet.installs(&h.fqdn).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_host_stuck_in_maintenance_fails_loudly() {
    let (w, _h, pid, status) = campaign_with_refused_exits(1000).await;
    assert_eq!(status, PlanStatus::Failed);
    let ev = w
        .store
        .list_events(&EventFilter {
            plan_id: Some(pid),
            ..Default::default()
        })
        .await
        .expect("events");
    assert!(ev.iter().any(|e| e.event.severity == Severity::Critical
        && e.event.message.contains("still in maintenance mode")));
}

/// A shutdown asked for before the scheduler's task has first run is not
/// lost: on a current-thread runtime nothing spawned runs until the test
/// awaits, so the scheduler subscribes to the shutdown signal only after it
/// was sent. (With `watch::Sender::send` the signal was dropped for want of
/// a receiver and `shutdown` waited for ever: the hang crash_points_sim hit
/// when a takeover executor found its plan already finished.)
#[tokio::test(start_paused = true)]
async fn shutdown_right_after_spawn_stops_the_executor() {
    let w = World::new();
    let handle = w.executor("w", 4).spawn();
    tokio::time::timeout(Duration::from_secs(600), handle.shutdown())
        .await
        .expect("the executor stopped");
}

/// A graceful shutdown while a run follows a long BMC job stops at once:
/// the pause between job polls (up to 45 s) is cut short, the run releases
/// its lease with the job id journaled, and a successor finishes the job
/// without submitting it again.
#[tokio::test(start_paused = true)]
async fn shutdown_while_following_a_job_does_not_wait_out_the_poll_pause() {
    let mut w = World::new();
    let h = w
        .clustered(
            "esx0",
            "c1",
            HostScript {
                install_time: Duration::from_secs(900),
                ..script()
            },
        )
        .await;
    let _other = w.clustered("esx1", "c1", script()).await;
    let np = plan(&[(&h, 0)], vec![idrac("7.10.50.00")]);
    let exec = w.executor("e1", 4);
    let handle = exec.spawn();
    let pid = start(&exec, np).await;
    // Well into the 15-minute job: polls are far apart by now.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(w.fleet.submits(&h.fqdn).len(), 1, "the job is running");
    let asked = tokio::time::Instant::now();
    handle.shutdown().await;
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    let next = w.executor("e2", 4).spawn();
    assert_eq!(finish(&next, pid).await, PlanStatus::Completed);
    assert_eq!(w.fleet.submits(&h.fqdn).len(), 1, "never submitted again");
    assert_eq!(w.fleet.installs(&h.fqdn).len(), 1);
    next.shutdown().await;
}
