//! Supporting entities: `system_config`, `background_jobs` and
//! `redfish_sessions` from the seed.

use super::ids::{HostId, JobId, WorkerId};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// One configuration entry (`system_config`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigEntry {
    /// Key, e.g. `maintenance_windows`.
    pub key: String,
    /// Value.
    pub value: serde_json::Value,
    /// For people.
    pub description: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Background job status (`background_jobs.status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting (possibly until `scheduled_for`).
    Queued,
    /// Claimed by a worker.
    Running,
    /// Done.
    Completed,
    /// Out of attempts.
    Failed,
}

impl JobStatus {
    /// Stored text.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }
    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "completed" => JobStatus::Completed,
            "failed" => JobStatus::Failed,
            _ => return None,
        })
    }
}

/// A job to enqueue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// Type, e.g. `inventory_refresh`, `catalog_download`.
    pub job_type: String,
    /// Payload.
    pub payload: serde_json::Value,
    /// Attempts allowed (seed default 3).
    pub max_attempts: u32,
    /// Not before.
    pub scheduled_for: Option<DateTime<Utc>>,
}

/// A stored background job (`background_jobs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackgroundJob {
    /// Identity.
    pub id: JobId,
    /// Type.
    pub job_type: String,
    /// Status.
    pub status: JobStatus,
    /// Payload.
    pub payload: serde_json::Value,
    /// Result, once completed.
    pub result: Option<serde_json::Value>,
    /// Last error.
    pub error_message: Option<String>,
    /// Attempts made (claims).
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// Not before.
    pub scheduled_for: DateTime<Utc>,
    /// Claimed by.
    pub locked_by: Option<WorkerId>,
    /// Claim expiry.
    pub locked_until: Option<DateTime<Utc>>,
    /// First claim.
    pub started_at: Option<DateTime<Utc>>,
    /// Final.
    pub completed_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A cached Redfish session (`redfish_sessions`). The token is a secret.
#[derive(Clone, Debug)]
pub struct RedfishSession {
    /// Host.
    pub host_id: HostId,
    /// `X-Auth-Token` value.
    pub session_token: SecretString,
    /// Session resource URI (for logout).
    pub session_uri: String,
    /// Expiry (idle timeout as seen at creation or last use).
    pub expires_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
}
