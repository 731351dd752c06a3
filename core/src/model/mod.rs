//! The domain model: every entity of the seed schema, in Rust types whose
//! serde forms match the seed's JSON.

pub mod event;
pub mod host;
pub mod ids;
pub mod misc;
pub mod package;
pub mod plan;
pub mod run;

pub use event::{EventType, NewEvent, Severity, SystemEvent};
pub use host::{CredentialKind, CredentialRecord, Host, MgmtKind, NewHost};
pub use ids::{
    ArtifactId, ClusterKey, CredentialId, DatacenterId, EventId, HostId, JobId, PlanId, RunId,
    UserId, WorkerId,
};
pub use misc::{BackgroundJob, ConfigEntry, JobStatus, NewJob, RedfishSession};
pub use package::{ComponentKind, JobHandle, Package, PackageSource};
pub use plan::{
    Artifact, FailureBudget, MaintenanceWindow, NewPlan, PhaseTimeouts, Plan, PlanStatus,
    PlanTarget, Policy, RebootType, RetrySettings, UpdateMode, check_names,
};
pub use run::{
    Attention, Checkpoint, ComponentResult, HostRun, Intent, Lease, MaintenanceState,
    PackageProgress, PackageStatus, Phase, Progress, RunCtx, RunErrorRecord, RunResults, RunState,
    Stage, Timing,
};

#[cfg(test)]
mod seed_round_trip {
    //! The seed's own JSON examples must survive a trip through the types.
    use super::*;
    use serde_json::{Value, json};

    fn seed_policy() -> Value {
        json!({
          "updateMode": "LATEST_FROM_CATALOG",
          "catalogUrl": "https://downloads.dell.com/catalog/Catalog.xml.gz",
          "maxConcurrent": 1,
          "minHostsOnline": 1,
          "requireMaintenanceMode": true,
          "allowDowntime": false,
          "rollbackOnFailure": true,
          "preflightChecks": ["connectivity", "compatibility", "cluster_health"],
          "postUpdateValidation": ["firmware_version", "system_health", "network_connectivity"]
        })
    }

    fn seed_ctx() -> Value {
        json!({
          "progress": {"phase": "install", "percentage": 75, "message": "Installing firmware update..."},
          "results": {"firmwareVersion": "2.8.1", "updateDuration": 480, "rebootRequired": true, "errors": []},
          "timing": {
            "startTime": "2024-01-15T10:30:00Z",
            "endTime": "2024-01-15T10:38:00Z",
            "phases": {"download": 120, "install": 300, "reboot": 60}
          }
        })
    }

    #[test]
    fn seed_policy_round_trips_exactly() {
        let p: Policy = serde_json::from_value(seed_policy()).expect("seed policy parses");
        assert_eq!(p.update_mode, UpdateMode::LatestFromCatalog);
        assert!(p.rollback_on_failure && p.require_maintenance_mode && !p.allow_downtime);
        assert_eq!(p.preflight_checks.len(), 3);
        assert_eq!(serde_json::to_value(&p).expect("ser"), seed_policy());
    }

    #[test]
    fn every_mode_parses_and_unknown_modes_are_kept() {
        for (s, m) in [
            ("SPECIFIC_PACKAGE", UpdateMode::SpecificPackage),
            ("MULTIPART_FILE", UpdateMode::MultipartFile),
            ("FLASH_ALL", UpdateMode::Unknown("FLASH_ALL".into())),
        ] {
            let p: Policy = serde_json::from_value(json!({ "updateMode": s })).expect("parse");
            assert_eq!(p.update_mode, m);
            assert_eq!(
                serde_json::to_value(&p).expect("ser")["updateMode"],
                json!(s)
            );
        }
    }

    #[test]
    fn firmflow_additions_round_trip() {
        let mut v = seed_policy();
        v["failureBudget"] = json!({"maxFailures": 2, "maxFailurePercent": 10.0});
        v["retry"] = json!({"maxAttempts": 5, "initialBackoffSecs": 60, "multiplier": 2.0, "maxBackoffSecs": 900, "jitter": 0.1});
        v["rebootType"] = json!("FORCED");
        v["force"] = json!(true);
        v["allowDowngrade"] = json!(false);
        let p: Policy = serde_json::from_value(v.clone()).expect("parse");
        assert_eq!(p.reboot_type(), RebootType::Forced);
        assert_eq!(p.retry().max_attempts, 5);
        assert_eq!(serde_json::to_value(&p).expect("ser"), v);
    }

    #[test]
    fn seed_ctx_round_trips_exactly() {
        let c: RunCtx = serde_json::from_value(seed_ctx()).expect("seed ctx parses");
        assert_eq!(c.progress.phase, Phase::Install);
        assert_eq!(c.progress.percentage, 75);
        assert_eq!(c.results.update_duration, Some(480));
        assert_eq!(c.timing.phases["install"], 300);
        assert_eq!(serde_json::to_value(&c).expect("ser"), seed_ctx());
    }

    #[test]
    fn ctx_with_checkpoint_round_trips() {
        let mut c: RunCtx = serde_json::from_value(seed_ctx()).expect("parse");
        c.checkpoint.stage = Stage::Installing;
        c.checkpoint.maintenance = MaintenanceState::EnteredByUs;
        c.checkpoint.packages.push(PackageProgress {
            package: Package {
                component_id: "159".into(),
                name: "BIOS".into(),
                kind: ComponentKind::Bios,
                target_version: "2.19.1".into(),
                installed_version: Some("2.10.0".into()),
                source: PackageSource::ImageUri {
                    uri: "https://repo/BIOS.EXE".into(),
                },
                checksum: None,
                size_bytes: None,
                reboot_required: true,
                criticality: Some("Recommended".into()),
            },
            status: PackageStatus::Submitted {
                intent: None,
                job: JobHandle::new("JID_123456789012"),
            },
        });
        let v = serde_json::to_value(&c).expect("ser");
        assert_eq!(v["checkpoint"]["packages"][0]["status"], json!("submitted"));
        assert_eq!(
            v["checkpoint"]["packages"][0]["job"]["id"],
            json!("JID_123456789012")
        );
        let back: RunCtx = serde_json::from_value(v).expect("parse back");
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_ctx_keys_and_event_types_survive() {
        let mut v = seed_ctx();
        v["operatorNote"] = json!("ticket CHG-1234");
        let c: RunCtx = serde_json::from_value(v.clone()).expect("parse");
        assert_eq!(serde_json::to_value(&c).expect("ser"), v);
        for t in [
            "update_started",
            "update_completed",
            "update_failed",
            "host_discovered",
            "host_disconnected",
            "host_reconnected",
            "maintenance_window_started",
            "maintenance_window_ended",
            "user_login",
            "user_logout",
            "permission_changed",
            "system_error",
            "integration_failure",
            "configuration_changed",
            "brand_new_type",
        ] {
            let e: EventType = serde_json::from_value(json!(t)).expect("event type");
            assert_eq!(serde_json::to_value(&e).expect("ser"), json!(t));
        }
        assert!(matches!(
            EventType::from("brand_new_type"),
            EventType::Other(_)
        ));
    }

    #[test]
    fn states_parse_their_stored_form() {
        for s in [
            "pending",
            "running",
            "completed",
            "failed",
            "cancelled",
            "retrying",
            "needs_attention",
        ] {
            assert_eq!(RunState::parse(s).map(|x| x.as_str()), Some(s));
            let st = RunState::parse(s).expect("known");
            assert_eq!(serde_json::to_value(st).expect("ser"), serde_json::json!(s));
        }
        for s in [
            "draft",
            "approved",
            "running",
            "paused",
            "completed",
            "failed",
            "cancelled",
        ] {
            assert_eq!(PlanStatus::parse(s).map(|x| x.as_str()), Some(s));
        }
        assert!(PlanStatus::Draft.can_move_to(PlanStatus::Approved));
        assert!(!PlanStatus::Completed.can_move_to(PlanStatus::Running));
    }
}
