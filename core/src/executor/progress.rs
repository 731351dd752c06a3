//! The live progress stream: one message per checkpoint or state change,
//! carried on a broadcast channel so any number of watchers (CLI progress
//! bars, SSE, metrics) can follow a campaign. Slow watchers lose old
//! messages, never block the executor.

use crate::model::{HostId, Phase, PlanId, RunId, RunState};
use serde::{Deserialize, Serialize};

/// A progress update for one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    /// Run.
    pub run_id: RunId,
    /// Plan.
    pub plan_id: PlanId,
    /// Host.
    pub host_id: HostId,
    /// Run state.
    pub state: RunState,
    /// Phase.
    pub phase: Phase,
    /// 0–100.
    pub percentage: u8,
    /// What is going on.
    pub message: String,
}
