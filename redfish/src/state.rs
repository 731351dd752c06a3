//! Reading a BMC job or task into the core's [`BmcJobState`], every vendor
//! spelling mapped explicitly.
//!
//! The rules that keep a false success out (anchors-features §3 #1):
//! - `Completed` alone is not success: a Dell job whose message id is a
//!   failure (or whose text says so), or a DMTF Job/Task whose status is
//!   Warning/Critical, is `CompletedWithErrors`/`Failed`.
//! - `UserIntervention` with a message about a reboot (or a virtual AC
//!   cycle) is `AwaitingReboot`, not a failure and not a success.
//! - A state the driver does not know is never final: it reads as `Running`
//!   (with a warning), so the caller keeps polling until its own timeout.

use crate::error::{BmcMessage, Outcome, classify_message_id, message_of, message_suffix};
use firmflow_core::bmc::{BmcJobState, JobStatus};
use serde_json::Value;

/// Lower-case, without spaces, dashes or underscores: `Completed with Errors`
/// and `CompletedWithErrors` read the same.
fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Message ids that report success or normal progress.
const SUCCESS_IDS: &[&str] = &[
    "RED001",
    "JCP007",
    "PR19",
    "RED063",
    "RED092",
    "SUP0518",
    "RED030",
    "SYS413",
    "JCP000",
    "Success",
    "TaskCompletedOK",
];

/// Whether a message says the work failed: its id is a known failure, its
/// severity is Warning/Critical on a completion, or its text uses the words
/// Dell's own scripts look for.
fn message_says_failure(m: &BmcMessage) -> bool {
    if let Some(id) = m.message_id.as_deref() {
        let suffix = message_suffix(id);
        if SUCCESS_IDS.contains(&suffix) {
            return false;
        }
        if matches!(classify_message_id(id), Some(Outcome::Error(_))) {
            return true;
        }
        if suffix == "TaskCompletedWarning" || suffix == "TaskAborted" || suffix == "TaskCancelled"
        {
            return true;
        }
    }
    if m.severity.as_deref().is_some_and(|s| norm(s) == "critical") {
        return true;
    }
    m.message.as_deref().is_some_and(text_says_failure)
}

/// The words Dell's scripts scan a completed job's message for.
pub fn text_says_failure(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    [
        "fail",
        "failed",
        "failure",
        "error",
        "errors",
        "unable",
        "invalid",
        "not",
        "cannot",
        "cancelled",
        "canceled",
    ]
    .iter()
    .any(|w| has(w))
        || t.contains("already present")
}

/// Whether a message asks for a host reboot or an AC cycle.
fn mentions_reboot(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("reboot")
        || t.contains("restart")
        || t.contains("virtual")
        || t.contains("power cycle")
}

fn waits_for_reboot(m: &BmcMessage) -> bool {
    m.message_id.as_deref().map(message_suffix) == Some("JCP001")
        || m.message.as_deref().is_some_and(|t| {
            mentions_reboot(t) || t.to_ascii_lowercase().contains("successfully scheduled")
        })
}

/// A Dell `JobState` (DellJob, `Oem.Dell` of a Task, racadm `Status=`).
pub fn dell_job_state(job_state: &str, messages: &[BmcMessage]) -> BmcJobState {
    let failed_msg = messages.iter().any(message_says_failure);
    match norm(job_state).as_str() {
        "new" => BmcJobState::New,
        "scheduling" | "waiting" | "readyforexecution" | "paused" | "queued" => {
            BmcJobState::Scheduled
        }
        // Staged: runs on the next host reboot (JCP001 "Task successfully scheduled.").
        "scheduled" | "pendingactivation" | "rebootpending" | "pendingreboot" => {
            BmcJobState::AwaitingReboot
        }
        "downloading" => BmcJobState::Downloading,
        "downloaded" => BmcJobState::Downloaded,
        "running" | "inprogress" | "installing" | "started" => BmcJobState::Running,
        // For an update job the reboot was only a step: the install goes on.
        "rebootcompleted" => BmcJobState::Running,
        "rebootfailed" | "failed" => BmcJobState::Failed,
        "completed" if failed_msg => BmcJobState::CompletedWithErrors,
        "completed" => BmcJobState::Completed,
        "completedwitherrors" => BmcJobState::CompletedWithErrors,
        "cancelled" | "canceled" => BmcJobState::Cancelled,
        "userintervention" => user_intervention(messages),
        other => unknown(other),
    }
}

fn user_intervention(messages: &[BmcMessage]) -> BmcJobState {
    if messages
        .iter()
        .any(|m| m.message.as_deref().is_some_and(mentions_reboot))
    {
        BmcJobState::AwaitingReboot
    } else {
        BmcJobState::UserIntervention
    }
}

fn unknown(state: &str) -> BmcJobState {
    tracing::warn!(state, "unknown BMC job state; treated as still running");
    BmcJobState::Running
}

/// A DMTF `TaskState` plus `TaskStatus`, or a DMTF `JobState` plus
/// `JobStatus` (the two enums share their values).
pub fn dmtf_state(state: &str, status: Option<&str>, messages: &[BmcMessage]) -> BmcJobState {
    let status = status.map(norm);
    let failed_msg = messages.iter().any(message_says_failure);
    match norm(state).as_str() {
        "new" => BmcJobState::New,
        // A task that waits with Dell's JCP001 ("Task successfully
        // scheduled.") or a message about a reboot is staged for the next reboot.
        "starting" | "pending" if messages.iter().any(waits_for_reboot) => {
            BmcJobState::AwaitingReboot
        }
        "starting" | "pending" | "suspended" | "interrupted" => BmcJobState::Scheduled,
        "running" | "stopping" | "cancelling" | "service" | "continue" => BmcJobState::Running,
        "completed" => match status.as_deref() {
            Some("critical") => BmcJobState::Failed,
            Some("warning") => BmcJobState::CompletedWithErrors,
            _ if failed_msg => BmcJobState::CompletedWithErrors,
            _ => BmcJobState::Completed,
        },
        "killed" | "exception" | "failed" => BmcJobState::Failed,
        "cancelled" | "canceled" => BmcJobState::Cancelled,
        // Older iDRAC9 returned Dell spellings as TaskState.
        "completedwitherrors" => BmcJobState::CompletedWithErrors,
        "userintervention" => user_intervention(messages),
        "scheduled" => BmcJobState::AwaitingReboot,
        other => unknown(other),
    }
}

/// `PercentComplete` as a number 0–100; iDRAC sometimes says `"[NA]"`.
pub fn percent(v: Option<&Value>) -> Option<u8> {
    let v = v?;
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s
            .trim_matches(|c| c == '[' || c == ']' || c == '%')
            .trim()
            .parse()
            .ok()?,
        _ => return None,
    };
    (0.0..=100.0).contains(&n).then_some(n as u8)
}

fn str_field<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// A DellJob document (or a Task's `Oem.Dell`).
pub fn from_dell_job(job: &Value) -> Option<JobStatus> {
    let state = str_field(job, "JobState")?;
    let msg = BmcMessage {
        message_id: str_field(job, "MessageId").map(str::to_owned),
        message: str_field(job, "Message").map(str::to_owned),
        severity: None,
    };
    let st = dell_job_state(state, std::slice::from_ref(&msg));
    Some(JobStatus {
        state: st,
        percent: percent(job.get("PercentComplete")),
        message: msg.message,
        message_id: msg.message_id,
    })
}

/// A DMTF Task; its `Oem.Dell` DellJob wins when present (more precise).
pub fn from_task(task: &Value) -> Option<JobStatus> {
    if let Some(dell) = task
        .pointer("/Oem/Dell")
        .filter(|d| d.get("JobState").is_some())
    {
        let mut st = from_dell_job(dell)?;
        // The Task may know more (TaskStatus Critical while the DellJob says Completed).
        let task_state = from_dmtf(task, "TaskState", "TaskStatus");
        if let Some(t) = task_state
            && st.state == BmcJobState::Completed
            && t.state != BmcJobState::Completed
            && t.state.is_final()
        {
            st.state = t.state;
        }
        return Some(st);
    }
    from_dmtf(task, "TaskState", "TaskStatus")
}

/// A DMTF Job (`/redfish/v1/JobService/Jobs/<id>`).
pub fn from_job(job: &Value) -> Option<JobStatus> {
    from_dmtf(job, "JobState", "JobStatus")
}

fn from_dmtf(doc: &Value, state_key: &str, status_key: &str) -> Option<JobStatus> {
    let state = str_field(doc, state_key)?;
    let messages: Vec<BmcMessage> = doc
        .get("Messages")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(message_of).collect())
        .unwrap_or_default();
    let st = dmtf_state(state, str_field(doc, status_key), &messages);
    let last = messages.last().cloned().unwrap_or_default();
    Some(JobStatus {
        state: st,
        percent: percent(doc.get("PercentComplete")),
        message: last.message,
        message_id: last.message_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(id: &str, text: &str) -> BmcMessage {
        BmcMessage {
            message_id: Some(id.into()),
            message: Some(text.into()),
            severity: None,
        }
    }

    #[test]
    fn every_dell_state_is_mapped() {
        use BmcJobState::*;
        let ok = [m("RED001", "Job completed successfully.")];
        let cases = [
            ("New", New),
            ("Scheduling", Scheduled),
            ("Scheduled", AwaitingReboot),
            ("Downloading", Downloading),
            ("Downloaded", Downloaded),
            ("Waiting", Scheduled),
            ("ReadyForExecution", Scheduled),
            ("Running", Running),
            ("Paused", Scheduled),
            ("PendingActivation", AwaitingReboot),
            ("RebootPending", AwaitingReboot),
            ("RebootCompleted", Running),
            ("RebootFailed", Failed),
            ("Completed", Completed),
            ("CompletedWithErrors", CompletedWithErrors),
            ("Completed with Errors", CompletedWithErrors),
            ("Failed", Failed),
            ("Unknown", Running),
        ];
        for (s, want) in cases {
            assert_eq!(dell_job_state(s, &ok), want, "{s}");
        }
    }

    #[test]
    fn completed_with_a_failure_message_is_not_success() {
        let st = dell_job_state(
            "Completed",
            &[m("RED007", "Unable to verify Update Package signature.")],
        );
        assert_eq!(st, BmcJobState::CompletedWithErrors);
        let st = dell_job_state("Completed", &[m("XYZ123", "Update failed for component")]);
        assert_eq!(st, BmcJobState::CompletedWithErrors);
        let st = dell_job_state("Completed", &[m("PR19", "Job completed successfully.")]);
        assert_eq!(st, BmcJobState::Completed);
    }

    #[test]
    fn every_dmtf_state_is_mapped() {
        use BmcJobState::*;
        let cases = [
            ("New", None, New),
            ("Starting", None, Scheduled),
            ("Pending", None, Scheduled),
            ("Suspended", None, Scheduled),
            ("Interrupted", None, Scheduled),
            ("Running", None, Running),
            ("Stopping", None, Running),
            ("Cancelling", None, Running),
            ("Service", None, Running),
            ("Completed", Some("OK"), Completed),
            ("Completed", Some("Warning"), CompletedWithErrors),
            ("Completed", Some("Critical"), Failed),
            ("Killed", None, Failed),
            ("Exception", None, Failed),
            ("Cancelled", None, Cancelled),
            ("UserIntervention", None, UserIntervention),
            ("Completed with Errors", None, CompletedWithErrors),
            ("Failed", None, Failed),
            ("SomethingNew", None, Running),
        ];
        for (s, status, want) in cases {
            assert_eq!(dmtf_state(s, status, &[]), want, "{s} {status:?}");
        }
    }

    #[test]
    fn staged_dmtf_task_awaits_reboot() {
        let msgs = [m("IDRAC.2.5.JCP001", "Task successfully scheduled.")];
        assert_eq!(
            dmtf_state("Starting", Some("OK"), &msgs),
            BmcJobState::AwaitingReboot
        );
        assert_eq!(
            dmtf_state("Starting", Some("OK"), &[]),
            BmcJobState::Scheduled
        );
    }

    #[test]
    fn user_intervention_asking_for_reboot_awaits_reboot() {
        let msgs = [m(
            "SUP0516",
            "The system must be rebooted to apply the update.",
        )];
        assert_eq!(
            dmtf_state("UserIntervention", None, &msgs),
            BmcJobState::AwaitingReboot
        );
        let msgs = [m("X", "Virtual AC cycle required")];
        assert_eq!(
            dell_job_state("UserIntervention", &msgs),
            BmcJobState::AwaitingReboot
        );
    }

    #[test]
    fn percent_tolerates_na() {
        assert_eq!(percent(Some(&json!(50))), Some(50));
        assert_eq!(percent(Some(&json!("[NA]"))), None);
        assert_eq!(percent(Some(&json!("[40]"))), Some(40));
        assert_eq!(percent(Some(&json!(150))), None);
        assert_eq!(percent(None), None);
    }

    #[test]
    fn task_with_dell_oem_uses_job_state() {
        let t: Value = serde_json::from_str(include_str!(
            "../tests/fixtures/task_dell_job_raid_scheduled_taskstate_starting.json"
        ))
        .unwrap();
        let st = from_task(&t).unwrap();
        assert_eq!(st.state, BmcJobState::AwaitingReboot);
        assert_eq!(st.percent, Some(0));
        assert_eq!(st.message_id.as_deref(), Some("IDRAC.2.5.JCP001"));
    }

    #[test]
    fn dmtf_task_example_completed() {
        let t: Value = serde_json::from_str(include_str!(
            "../tests/fixtures/dmtf_task_completed_example.json"
        ))
        .unwrap();
        let st = from_task(&t).unwrap();
        // Completed, but its message says a property "cannot be assigned".
        assert_eq!(st.state, BmcJobState::CompletedWithErrors, "{st:?}");
    }

    #[test]
    fn text_scan_words() {
        assert!(text_says_failure("Unable to transfer"));
        assert!(text_says_failure("Job for this device is already present."));
        assert!(!text_says_failure("Job completed successfully."));
        assert!(!text_says_failure("The Notification was sent"));
    }
}
