//! Waiting for a vCenter task (`Task.info`) with tokio time, so waits are
//! testable under paused time and never block a thread.

use crate::error::VimError;
use crate::soap::Fault;
use crate::xml::Element;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// `TaskInfo.state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting to run.
    Queued,
    /// Running.
    Running,
    /// Done.
    Success,
    /// Failed; see the fault.
    Error,
}

/// The parts of `TaskInfo` firmflow reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// State.
    pub state: TaskState,
    /// Percent done, when the server reports it.
    pub progress: Option<i32>,
    /// The fault of a failed task.
    pub error: Option<Fault>,
}

impl TaskInfo {
    /// Reads a `TaskInfo` value element.
    pub(crate) fn from_element(info: &Element) -> Option<Self> {
        let state = match info.text_at(&["state"])? {
            "queued" => TaskState::Queued,
            "running" => TaskState::Running,
            "success" => TaskState::Success,
            "error" => TaskState::Error,
            _ => return None,
        };
        Some(Self {
            state,
            progress: info.text_at(&["progress"]).and_then(|p| p.parse().ok()),
            error: info.child("error").map(Fault::from_localized),
        })
    }
}

/// Polls `poll` until the task succeeds or fails, or `deadline` passes.
/// Waits `initial` between polls, doubling up to `max`.
pub(crate) async fn wait_for_task<F, Fut>(
    what: &str,
    mut poll: F,
    deadline: Instant,
    allowance: Duration,
    initial: Duration,
    max: Duration,
) -> Result<TaskInfo, VimError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<TaskInfo, VimError>>,
{
    let timeout = || VimError::Timeout {
        what: what.to_string(),
        secs: allowance.as_secs_f64(),
    };
    let mut interval = initial.max(Duration::from_millis(1));
    loop {
        let info = tokio::time::timeout_at(deadline, poll())
            .await
            .map_err(|_| timeout())??;
        match info.state {
            TaskState::Success => return Ok(info),
            TaskState::Error => {
                return Err(VimError::Fault {
                    method: what.to_string(),
                    fault: info.error.unwrap_or(Fault {
                        kind: "MethodFault".into(),
                        message: "task failed without a fault".into(),
                    }),
                });
            }
            TaskState::Queued | TaskState::Running => {
                tracing::debug!(task = what, progress = ?info.progress, "task still running");
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(timeout());
        }
        tokio::time::sleep_until((now + interval).min(deadline)).await;
        interval = (interval * 2).min(max.max(interval));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn info(state: TaskState) -> TaskInfo {
        TaskInfo {
            state,
            progress: None,
            error: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn polls_with_backoff_until_success() {
        let polls = Arc::new(AtomicU32::new(0));
        let p = polls.clone();
        let start = Instant::now();
        let out = wait_for_task(
            "enter",
            move || {
                let n = p.fetch_add(1, Ordering::SeqCst);
                async move {
                    Ok(info(if n < 4 {
                        TaskState::Running
                    } else {
                        TaskState::Success
                    }))
                }
            },
            start + Duration::from_secs(600),
            Duration::from_secs(600),
            Duration::from_secs(1),
            Duration::from_secs(4),
        )
        .await
        .expect("success");
        assert_eq!(out.state, TaskState::Success);
        assert_eq!(polls.load(Ordering::SeqCst), 5);
        // 1 + 2 + 4 + 4 seconds between the five polls.
        assert_eq!(start.elapsed(), Duration::from_secs(11));
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_never_ends_times_out_at_the_deadline() {
        let start = Instant::now();
        let err = wait_for_task(
            "enter",
            || async { Ok(info(TaskState::Running)) },
            start + Duration::from_secs(30),
            Duration::from_secs(30),
            Duration::from_secs(1),
            Duration::from_secs(8),
        )
        .await
        .expect_err("times out");
        assert!(matches!(err, VimError::Timeout { .. }), "{err}");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_poll_is_cut_at_the_deadline() {
        let start = Instant::now();
        let err = wait_for_task(
            "enter",
            std::future::pending,
            start + Duration::from_secs(5),
            Duration::from_secs(5),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .await
        .expect_err("times out");
        assert!(matches!(err, VimError::Timeout { .. }));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_task_returns_its_fault() {
        let err = wait_for_task(
            "enter",
            || async {
                Ok(TaskInfo {
                    state: TaskState::Error,
                    progress: Some(40),
                    error: Some(Fault {
                        kind: "Timedout".into(),
                        message: "Operation timed out.".into(),
                    }),
                })
            },
            Instant::now() + Duration::from_secs(5),
            Duration::from_secs(5),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .await
        .expect_err("fails");
        assert_eq!(err.fault_type(), Some("Timedout"));
    }

    #[test]
    fn reads_task_info() {
        let e = crate::xml::parse(
            r#"<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><key>task-1</key><state>error</state><progress>30</progress><error><fault xsi:type="InvalidState"/><localizedMessage>The operation is not allowed in the current state.</localizedMessage></error></val>"#,
        )
        .expect("xml");
        let i = TaskInfo::from_element(&e).expect("info");
        assert_eq!(i.state, TaskState::Error);
        assert_eq!(i.progress, Some(30));
        assert_eq!(i.error.map(|f| f.kind).as_deref(), Some("InvalidState"));
        let bad = crate::xml::parse("<val><state>exploded</state></val>").expect("xml");
        assert!(TaskInfo::from_element(&bad).is_none());
    }
}
