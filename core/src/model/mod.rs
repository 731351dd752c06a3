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
    Checkpoint, ComponentResult, HostRun, Lease, MaintenanceState, PackageProgress, PackageStatus,
    Phase, Progress, RunCtx, RunErrorRecord, RunResults, RunState, Stage, Timing,
};
