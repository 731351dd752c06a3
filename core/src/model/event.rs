//! Audit events (`system_events` in the seed). Every run transition is one.

use super::ids::{EventId, HostId, PlanId, RunId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Event types: the seed's list plus firmflow's run and plan events. An
/// unknown type read from a store is kept verbatim (`Other`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Seed: a host update started.
    UpdateStarted,
    /// Seed: a host update completed.
    UpdateCompleted,
    /// Seed: a host update failed.
    UpdateFailed,
    /// Seed.
    HostDiscovered,
    /// Seed.
    HostDisconnected,
    /// Seed.
    HostReconnected,
    /// Seed.
    MaintenanceWindowStarted,
    /// Seed.
    MaintenanceWindowEnded,
    /// Seed.
    UserLogin,
    /// Seed.
    UserLogout,
    /// Seed.
    PermissionChanged,
    /// Seed.
    SystemError,
    /// Seed.
    IntegrationFailure,
    /// Seed.
    ConfigurationChanged,
    /// A run changed state (details: from, to, epoch).
    RunTransition,
    /// A run was claimed (details: epoch, worker).
    RunClaimed,
    /// An expired lease was taken over (a resume).
    RunReclaimed,
    /// A run was released at a safe point (shutdown).
    RunReleased,
    /// A checkpointed step of a run (phase, package, job id).
    RunStep,
    /// A plan changed status.
    PlanStatusChanged,
    /// A plan was created.
    PlanCreated,
    /// Maintenance mode entered / left.
    MaintenanceMode,
    /// TLS verification was disabled for a host (audit).
    TlsVerificationDisabled,
    /// Any other type.
    Other(String),
}

impl EventType {
    /// Stored text.
    pub fn as_str(&self) -> &str {
        use EventType::*;
        match self {
            UpdateStarted => "update_started",
            UpdateCompleted => "update_completed",
            UpdateFailed => "update_failed",
            HostDiscovered => "host_discovered",
            HostDisconnected => "host_disconnected",
            HostReconnected => "host_reconnected",
            MaintenanceWindowStarted => "maintenance_window_started",
            MaintenanceWindowEnded => "maintenance_window_ended",
            UserLogin => "user_login",
            UserLogout => "user_logout",
            PermissionChanged => "permission_changed",
            SystemError => "system_error",
            IntegrationFailure => "integration_failure",
            ConfigurationChanged => "configuration_changed",
            RunTransition => "run_transition",
            RunClaimed => "run_claimed",
            RunReclaimed => "run_reclaimed",
            RunReleased => "run_released",
            RunStep => "run_step",
            PlanStatusChanged => "plan_status_changed",
            PlanCreated => "plan_created",
            MaintenanceMode => "maintenance_mode",
            TlsVerificationDisabled => "tls_verification_disabled",
            Other(s) => s,
        }
    }
}

impl From<&str> for EventType {
    fn from(s: &str) -> Self {
        use EventType::*;
        match s {
            "update_started" => UpdateStarted,
            "update_completed" => UpdateCompleted,
            "update_failed" => UpdateFailed,
            "host_discovered" => HostDiscovered,
            "host_disconnected" => HostDisconnected,
            "host_reconnected" => HostReconnected,
            "maintenance_window_started" => MaintenanceWindowStarted,
            "maintenance_window_ended" => MaintenanceWindowEnded,
            "user_login" => UserLogin,
            "user_logout" => UserLogout,
            "permission_changed" => PermissionChanged,
            "system_error" => SystemError,
            "integration_failure" => IntegrationFailure,
            "configuration_changed" => ConfigurationChanged,
            "run_transition" => RunTransition,
            "run_claimed" => RunClaimed,
            "run_reclaimed" => RunReclaimed,
            "run_released" => RunReleased,
            "run_step" => RunStep,
            "plan_status_changed" => PlanStatusChanged,
            "plan_created" => PlanCreated,
            "maintenance_mode" => MaintenanceMode,
            "tls_verification_disabled" => TlsVerificationDisabled,
            other => Other(other.to_string()),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(EventType::from(s.as_str()))
    }
}

/// Event severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Routine.
    Info,
    /// Needs a look.
    Warning,
    /// Something failed.
    Error,
    /// Something failed that may have damaged a host or a cluster.
    Critical,
}

impl Severity {
    /// Stored text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// An event to record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Type.
    pub event_type: EventType,
    /// Severity.
    pub severity: Severity,
    /// For people.
    pub message: String,
    /// Structured details.
    pub details: serde_json::Value,
    /// Who caused it.
    pub user_id: Option<UserId>,
    /// Host concerned.
    pub host_id: Option<HostId>,
    /// Plan concerned.
    pub plan_id: Option<PlanId>,
    /// Run concerned.
    pub run_id: Option<RunId>,
}

impl NewEvent {
    /// An info event of `event_type`.
    pub fn info(event_type: EventType, message: impl Into<String>) -> Self {
        Self {
            event_type,
            severity: Severity::Info,
            message: message.into(),
            details: serde_json::Value::Object(Default::default()),
            user_id: None,
            host_id: None,
            plan_id: None,
            run_id: None,
        }
    }
    /// Sets the severity.
    pub fn severity(mut self, s: Severity) -> Self {
        self.severity = s;
        self
    }
    /// Sets details.
    pub fn details(mut self, d: serde_json::Value) -> Self {
        self.details = d;
        self
    }
    /// Sets the run, plan and host.
    pub fn for_run(mut self, run: RunId, plan: PlanId, host: HostId) -> Self {
        self.run_id = Some(run);
        self.plan_id = Some(plan);
        self.host_id = Some(host);
        self
    }
    /// Sets the plan.
    pub fn for_plan(mut self, plan: PlanId) -> Self {
        self.plan_id = Some(plan);
        self
    }
    /// Sets the user.
    pub fn by(mut self, user: Option<UserId>) -> Self {
        self.user_id = user;
        self
    }
}

/// A recorded event. `seq` orders events totally within one store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemEvent {
    /// Identity.
    pub id: EventId,
    /// Store-wide order.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: NewEvent,
    /// When.
    pub created_at: DateTime<Utc>,
}
