//! `Systems/System.Embedded.1/Bios` (current attributes), `Bios/Settings`
//! (pending attributes, PATCH stages) and the Dell config job that applies
//! them at the next boot (`POST …/Jobs {"TargetSettingsURI": …/Bios/Settings}`
//! or `@Redfish.SettingsApplyTime` on the PATCH, as iDRAC9 4.x and later
//! accept).

use super::*;
use crate::settings::{AttrError, Config, ConfigRefusal, create_config_job};

/// `ApplyTime` values a BIOS change accepts here.
const APPLY_TIMES: &[&str] = &["OnReset", "Immediate"];

pub(super) fn bios_path(host: &Host) -> String {
    format!("/redfish/v1/Systems/{}/Bios", host.system_path())
}

fn settings_path(host: &Host) -> String {
    format!("{}/Settings", bios_path(host))
}

/// Current BIOS attributes, with the live `SystemBiosVersion`.
pub(super) fn bios(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let st = host.lock();
    let bios_fw = st.components.iter().find(|c| c.component_id == "159");
    let mut attrs = st.config.bios.to_map();
    let version = bios_fw.map(|c| c.version.clone()).unwrap_or_default();
    attrs.insert("SystemBiosVersion".into(), json!(version));
    let mut images = Vec::new();
    if let Some(c) = bios_fw {
        let id = |which: &str, v: &str| {
            if host.is_dell() {
                c.dell_id(which, v)
            } else if which == "Previous" {
                format!("{}-Previous", c.generic_id)
            } else {
                c.generic_id.clone()
            }
        };
        images.push(id("Installed", &c.version));
        if let Some(p) = c.previous.as_deref() {
            images.push(id("Previous", p));
        }
    }
    let inv = "/redfish/v1/UpdateService/FirmwareInventory";
    let links: Vec<Value> = images
        .iter()
        .map(|i| odata_id(format!("{inv}/{i}")))
        .collect();
    json!({
        "@Redfish.Settings": {
            "@odata.context": "/redfish/v1/$metadata#Settings.Settings",
            "@odata.type": "#Settings.v1_3_0.Settings",
            "SettingsObject": odata_id(settings_path(host)),
            "SupportedApplyTimes": ["OnReset", "Immediate"],
        },
        "@odata.context": "/redfish/v1/$metadata#Bios.Bios",
        "@odata.id": bios_path(host),
        "@odata.type": "#Bios.v1_1_0.Bios",
        "AttributeRegistry": "BiosAttributeRegistry.v1_0_3",
        "Attributes": attrs,
        "Description": "BIOS Configuration Current Settings",
        "Id": "Bios",
        "Links": {
            "ActiveSoftwareImage": images.first().map(|i| odata_id(format!("{inv}/{i}"))),
            "SoftwareImages@odata.count": links.len(),
            "SoftwareImages": links,
        },
        "Name": "BIOS Configuration Current Settings",
    })
}

/// Staged (pending) BIOS attributes.
pub(super) fn bios_settings(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let st = host.lock();
    json!({
        "@odata.context": "/redfish/v1/$metadata#Bios.Bios",
        "@odata.id": settings_path(host),
        "@odata.type": "#Bios.v1_1_0.Bios",
        "AttributeRegistry": "BiosAttributeRegistry.v1_0_3",
        "Attributes": st.config.bios_pending,
        "Description": "BIOS Configuration Pending Settings",
        "Id": "Settings",
        "Name": "BIOS Configuration Pending Settings",
    })
}

/// The 400 for a refused attribute value.
pub(super) fn attr_error(host: &Host, e: AttrError) -> Reply {
    let bad = StatusCode::BAD_REQUEST;
    match e {
        AttrError::Unknown(n) => error(host, bad, base::PROPERTY_UNKNOWN, &[n]),
        AttrError::ReadOnly(n) => error(host, bad, base::PROPERTY_NOT_WRITABLE, &[n]),
        AttrError::Type(v, n) => error(host, bad, base::PROPERTY_VALUE_TYPE, &[v, n]),
        AttrError::NotInList(v, n) => error(host, bad, base::PROPERTY_VALUE_NOT_IN_LIST, &[v, n]),
    }
}

/// The `Attributes` object of a PATCH body; other keys are refused.
pub(super) fn attributes_of(
    host: &Host,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, Reply> {
    for k in body.keys() {
        if k != "Attributes" && k != "@Redfish.SettingsApplyTime" && !k.starts_with("@odata") {
            return Err(error(
                host,
                StatusCode::BAD_REQUEST,
                base::PROPERTY_UNKNOWN,
                std::slice::from_ref(k),
            ));
        }
    }
    match body.get("Attributes") {
        Some(Value::Object(m)) if !m.is_empty() => Ok(m.clone()),
        Some(Value::Object(_)) | None => Err(error(
            host,
            StatusCode::BAD_REQUEST,
            base::NO_OPERATION,
            &[],
        )),
        Some(v) => Err(error(
            host,
            StatusCode::BAD_REQUEST,
            base::PROPERTY_VALUE_TYPE,
            &[v.to_string(), "Attributes".into()],
        )),
    }
}

fn config_refusal(host: &Host, r: ConfigRefusal) -> Reply {
    match r {
        ConfigRefusal::NothingPending => {
            error(host, StatusCode::BAD_REQUEST, base::NO_OPERATION, &[])
        }
        ConfigRefusal::AlreadyScheduled => {
            error(host, StatusCode::BAD_REQUEST, messages::LC068, &[])
        }
        ConfigRefusal::Queue(q) => refusal(host, q),
    }
}

/// Where a config job is polled.
fn job_location(host: &Host, jobs_base: &str, id: &str) -> String {
    if host.is_dell() {
        format!("{jobs_base}/{id}")
    } else {
        format!("/redfish/v1/TaskService/Tasks/{id}")
    }
}

/// Restarts the host now (the `Immediate` apply time, `RebootJobType`).
fn reboot_now(ctx: &Ctx<'_>) {
    let host = ctx.host;
    {
        let mut st = host.lock();
        host::create_reboot_job(host, &mut st);
    }
    let (i2, h2) = (ctx.inner.clone(), host.clone());
    ctx.inner
        .spawn(async move { host::reset_host(i2, h2, ResetKind::Restart).await });
}

/// `PATCH Bios/Settings`: stages attributes; with `@Redfish.SettingsApplyTime`
/// it also schedules the config job (202 + job `Location`). A generic
/// Redfish BMC always schedules (DMTF settings apply on reset).
pub(super) fn patch_bios_settings(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = if_match(ctx, &bios_settings(ctx)) {
        return r;
    }
    let attrs = match attributes_of(host, &body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let apply = match body.get("@Redfish.SettingsApplyTime") {
        None => None,
        Some(v) => match v.at(&["ApplyTime"]).as_str() {
            Some(t) if APPLY_TIMES.contains(&t) => Some(t.to_string()),
            _ => {
                return error(
                    host,
                    StatusCode::BAD_REQUEST,
                    base::PROPERTY_VALUE_NOT_IN_LIST,
                    &[
                        v.at(&["ApplyTime"]).to_string(),
                        "@Redfish.SettingsApplyTime/ApplyTime".into(),
                    ],
                );
            }
        },
    };
    if let Err(e) = Config::check_bios(&attrs) {
        return attr_error(host, e);
    }
    let apply = apply.or_else(|| (!host.is_dell()).then(|| "OnReset".to_string()));
    let job = {
        let mut st = host.lock();
        if st.bios_job_active() {
            return error(host, StatusCode::BAD_REQUEST, messages::LC068, &[]);
        }
        st.config.bios_pending.extend(attrs);
        st.config.generation += 1;
        match apply {
            None => None,
            Some(t) => match create_config_job(host, ctx.inner, &mut st) {
                Ok(id) => Some((id, t)),
                Err(r) => return config_refusal(host, r),
            },
        }
    };
    match job {
        None => Reply::ok(&success_info(host)),
        Some((id, t)) => {
            if t == "Immediate" {
                reboot_now(ctx);
            }
            Reply::json(StatusCode::ACCEPTED, &success_info(host))
                .with(header::LOCATION, job_location(host, JOBS_3X, &id))
        }
    }
}

/// `POST …/Jobs {"TargetSettingsURI": "…/Bios/Settings"}`: the Dell config
/// job for the staged BIOS values (200 + `Location`).
pub(super) fn post_config_job(ctx: &Ctx<'_>, jobs_base: &str) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(target) = body.get("TargetSettingsURI").and_then(Value::as_str) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["CreateJob".into(), "TargetSettingsURI".into()],
        );
    };
    if target.trim_end_matches('/') != settings_path(host) {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::PROPERTY_VALUE_NOT_IN_LIST,
            &[target.into(), "TargetSettingsURI".into()],
        );
    }
    let id = {
        let mut st = host.lock();
        match create_config_job(host, ctx.inner, &mut st) {
            Ok(id) => id,
            Err(r) => return config_refusal(host, r),
        }
    };
    if body.contains_key("RebootJobType") {
        reboot_now(ctx);
    }
    Reply::ok(&success_info(host)).with(header::LOCATION, job_location(host, jobs_base, &id))
}
