//! TaskService tasks, the DMTF JobService view and the Dell job queue.

use super::*;

pub(super) fn task_service(ctx: &Ctx<'_>) -> Value {
    json!({
        "@odata.context": "/redfish/v1/$metadata#TaskService.TaskService",
        "@odata.id": "/redfish/v1/TaskService",
        "@odata.type": "#TaskService.v1_1_5.TaskService",
        "CompletedTaskOverWritePolicy": "Oldest",
        "DateTime": ctx.inner.clock.now_iso(),
        "Description": "Represents the properties for the service",
        "Id": "TaskService",
        "LifeCycleEventOnTaskStateChange": true,
        "Name": "Task Service",
        "ServiceEnabled": true,
        "Status": {"Health": "OK", "State": "Enabled"},
        "Tasks": odata_id("/redfish/v1/TaskService/Tasks"),
    })
}

/// Whether the task view of a job is still there (purged after a while, lost on restart).
pub(super) fn task_visible(ctx: &Ctx<'_>, j: &Job) -> bool {
    if j.task_lost {
        return false;
    }
    if ctx.host.is_dell()
        && let Some(t) = j.finished_at
    {
        return t.elapsed() < ctx.inner.clock.dell(durations::TASK_PURGE);
    }
    true
}

pub(super) fn dell_job(host: &Host, j: &Job, base: Option<&str>) -> Value {
    let idrac10 = host.flavor == Flavor::Idrac10;
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#DellJob.DellJob",
        "@odata.type": if idrac10 { "#DellJob.v1_6_0.DellJob" } else { "#DellJob.v1_4_0.DellJob" },
        "ActualRunningStartTime": j.actual_start,
        "ActualRunningStopTime": j.actual_stop,
        "CompletionTime": j.completion,
        "Description": "Job Instance",
        "EndTime": if idrac10 { Value::Null } else { json!("TIME_NA") },
        "Id": j.id,
        "JobState": j.state.dell(),
        "JobType": j.job_type,
        "Message": render(j.msg.message, &j.msg_args),
        "MessageArgs": j.msg_args,
        "MessageArgs@odata.count": j.msg_args.len(),
        "MessageId": j.msg.id,
        "Name": j.name,
        "PercentComplete": j.percent,
        "StartTime": j.start_time,
        "TargetSettingsURI": null,
    });
    if let Some(b) = base {
        v.set(&["@odata.id"], json!(format!("{b}/{}", j.id)));
    }
    if idrac10 {
        v.set(
            &["@odata.etag"],
            json!(format!("W/\"generation-{}\"", j.generation)),
        );
    }
    v
}

pub(super) fn task_json(ctx: &Ctx<'_>, j: &Job) -> Value {
    let host = ctx.host;
    let msg = ext(host, &j.msg, &j.msg_args);
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#Task.Task",
        "@odata.id": format!("/redfish/v1/TaskService/Tasks/{}", j.id),
        "@odata.type": "#Task.v1_4_3.Task",
        "Description": "Server Configuration and other Tasks running on iDRAC are listed here",
        "Id": j.id,
        "Messages": [{
            "Message": msg.at(&["Message"]),
            "MessageArgs": msg.at(&["MessageArgs"]),
            "MessageArgs@odata.count": msg.at(&["MessageArgs@odata.count"]),
            "MessageId": msg.at(&["MessageId"]),
        }],
        "Messages@odata.count": 1,
        "Name": j.name,
        "PercentComplete": j.percent,
        "TaskMonitor": format!("/redfish/v1/TaskService/TaskMonitors/{}", j.id),
        "TaskState": j.state.task(),
        "TaskStatus": j.state.status(),
    });
    if host.is_dell() {
        v.set(&["Oem"], json!({"Dell": dell_job(host, j, None)}));
    } else {
        v.set(&["Description"], json!("Task"));
    }
    v
}

pub(super) fn tasks(ctx: &Ctx<'_>) -> Reply {
    let st = ctx.host.lock();
    let visible: Vec<&Job> = st.jobs.iter().filter(|j| task_visible(ctx, j)).collect();
    let id = "/redfish/v1/TaskService/Tasks";
    let ty = "#TaskCollection.TaskCollection";
    if ctx.expand() {
        let m = visible.iter().map(|j| task_json(ctx, j)).collect();
        Reply::ok(&expanded_collection(id, ty, "Task Collection", m))
    } else {
        let m = visible.iter().map(|j| format!("{id}/{}", j.id)).collect();
        Reply::ok(&collection(id, ty, "Task Collection", m))
    }
}

pub(super) fn task(ctx: &Ctx<'_>, id: &str) -> Reply {
    let st = ctx.host.lock();
    match st.job(id).filter(|j| task_visible(ctx, j)) {
        Some(j) => Reply::ok(&task_json(ctx, j)),
        None => not_found(ctx.host, ctx.path),
    }
}

pub(super) fn task_monitor(ctx: &Ctx<'_>, id: &str) -> Reply {
    let st = ctx.host.lock();
    match st.job(id).filter(|j| task_visible(ctx, j)) {
        Some(j) if j.state.finished() => Reply::empty(StatusCode::NO_CONTENT),
        Some(_) => Reply::empty(StatusCode::ACCEPTED).with(header::LOCATION, ctx.path.to_string()),
        None => not_found(ctx.host, ctx.path),
    }
}

pub(super) fn dmtf_job(ctx: &Ctx<'_>, j: &Job) -> Value {
    let msg = ext(ctx.host, &j.msg, &j.msg_args);
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#Job.Job",
        "@odata.id": format!("/redfish/v1/JobService/Jobs/{}", j.id),
        "@odata.type": "#Job.v1_0_5.Job",
        "Description": "Job Instance",
        "Id": j.id,
        "JobState": j.state.task(),
        "JobStatus": j.state.status(),
        "Messages": [{"Message": msg.at(&["Message"]), "MessageArgs": msg.at(&["MessageArgs"]), "MessageId": msg.at(&["MessageId"])}],
        "Name": j.name,
        "PercentComplete": j.percent,
    });
    if let Some(t) = &j.completion {
        v.set(&["EndTime"], json!(format!("{t}-05:00")));
    }
    v
}

pub(super) fn job_service_jobs(ctx: &Ctx<'_>) -> Reply {
    let st = ctx.host.lock();
    let id = "/redfish/v1/JobService/Jobs";
    let ty = "#JobCollection.JobCollection";
    if ctx.expand() {
        let m = st.jobs.iter().map(|j| dmtf_job(ctx, j)).collect();
        Reply::ok(&expanded_collection(id, ty, "Job Collection", m))
    } else {
        let m = st.jobs.iter().map(|j| format!("{id}/{}", j.id)).collect();
        Reply::ok(&collection(id, ty, "Job Collection", m))
    }
}

pub(super) fn dell_jobs(ctx: &Ctx<'_>, base: &str) -> Reply {
    let st = ctx.host.lock();
    let ty = "#DellJobCollection.DellJobCollection";
    let mut v = if ctx.expand() {
        let m = st
            .jobs
            .iter()
            .map(|j| dell_job(ctx.host, j, Some(base)))
            .collect();
        expanded_collection(base, ty, "Collection of Job Instances", m)
    } else {
        let m = st.jobs.iter().map(|j| format!("{base}/{}", j.id)).collect();
        collection(base, ty, "Collection of Job Instances", m)
    };
    v.set(&["Id"], json!("JobQueue"));
    v.set(&["Name"], json!("JobQueue"));
    Reply::ok(&v)
}

pub(super) fn delete_job(ctx: &Ctx<'_>, id: &str) -> Reply {
    let mut st = ctx.host.lock();
    match st.jobs.iter().position(|j| j.id == id) {
        Some(i) => {
            if st.jobs.get(i).is_some_and(|j| j.state == JobState::Running) {
                return error(
                    ctx.host,
                    StatusCode::BAD_REQUEST,
                    crate::messages::Msg {
                        id: "SUP0108",
                        message: "A firmware update operation is already in progress.",
                        resolution: "Wait for the update operation to conclude and then re-try.",
                        severity: "Warning",
                    },
                    &[],
                );
            }
            st.jobs.remove(i);
            Reply::ok(&success_info(ctx.host))
        }
        None => error(ctx.host, StatusCode::BAD_REQUEST, messages::SUP024, &[]),
    }
}

pub(super) fn delete_job_queue(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(jid) = body.get("JobID").and_then(Value::as_str) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["DeleteJobQueue".into(), "JobID".into()],
        );
    };
    let mut st = host.lock();
    match jid {
        "JID_CLEARALL" => st.jobs.retain(|j| j.state == JobState::Running),
        "JID_CLEARALL_FORCE" => {
            st.jobs.clear();
            st.lc_settle_until = Some(ctx.inner.clock.deadline(durations::LC_SETTLE));
        }
        one => {
            let before = st.jobs.len();
            st.jobs.retain(|j| j.id != one);
            if st.jobs.len() == before {
                return error(host, StatusCode::BAD_REQUEST, messages::SUP024, &[]);
            }
        }
    }
    Reply::ok(&success_info(host))
}
