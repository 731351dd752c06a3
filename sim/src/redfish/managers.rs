//! `Managers/iDRAC.Embedded.1`, iDRAC resets and the Lifecycle Controller status.

use super::*;
use crate::settings::Config;

/// `DellAttributes/iDRAC.Embedded.1` (5.x path).
const IDRAC_ATTRS: &str =
    "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellAttributes/iDRAC.Embedded.1";

/// Manager schema version: `ServiceIdentification` needs v1_15_0; iDRAC10
/// reports v1_20_0 (fx:manager_idrac10_17g_1.20.50.52_trimmed.json).
pub(super) fn manager_version(host: &Host) -> &'static str {
    match host.flavor {
        Flavor::Idrac10 => "v1_20_0",
        Flavor::Idrac9 => "v1_15_0",
        Flavor::Generic => "v1_9_0",
    }
}

/// The iDRAC's own attributes (`racadm get iDRAC.*` as Redfish).
pub(super) fn idrac_attributes(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let st = host.lock();
    let mut attrs = st.config.idrac.to_map();
    attrs.insert("Info.1.Version".into(), json!(idrac_version(&st)));
    attrs.insert("Users.2.UserName".into(), json!(host.username));
    attrs.insert("Users.2.Password".into(), Value::Null);
    json!({
        "@odata.context": "/redfish/v1/$metadata#DellAttributes.DellAttributes",
        "@odata.id": IDRAC_ATTRS,
        "@odata.type": "#DellAttributes.v1_0_0.DellAttributes",
        "AttributeRegistry": "ManagerAttributeRegistry.v1_0_0",
        "Attributes": attrs,
        "Description": "This schema provides the oem attributes",
        "Id": "iDRACAttributes",
        "Name": "OEMAttributeRegistry",
    })
}

/// `PATCH DellAttributes/iDRAC.Embedded.1`: iDRAC attributes apply at once.
pub(super) fn patch_idrac_attributes(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = if_match(ctx, &idrac_attributes(ctx)) {
        return r;
    }
    let attrs = match attributes_of(host, &body) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(e) = Config::check_idrac(&attrs) {
        return attr_error(host, e);
    }
    let mut st = host.lock();
    st.config.idrac.extend(attrs);
    st.config.generation += 1;
    Reply::ok(&success_info(host))
}

pub(super) fn idrac_version(st: &HostState) -> String {
    st.components
        .iter()
        .find(|c| c.component_id == "25227")
        .map(|c| c.version.clone())
        .unwrap_or_default()
}

pub(super) fn manager(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let st = host.lock();
    let mgr = host.manager_path();
    let sys = host.system_path();
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#Manager.Manager",
        "@odata.id": format!("/redfish/v1/Managers/{mgr}"),
        "@odata.type": format!("#Manager.{}.Manager", manager_version(host)),
        "Actions": {"#Manager.Reset": {
            "ResetType@Redfish.AllowableValues": ["GracefulRestart"],
            "target": format!("/redfish/v1/Managers/{mgr}/Actions/Manager.Reset"),
        }},
        "DateTime": ctx.inner.clock.now_iso(),
        "DateTimeLocalOffset": "-05:00",
        "Description": "BMC",
        "FirmwareVersion": idrac_version(&st),
        "Id": mgr,
        "Links": {
            "ManagerForChassis": [odata_id(format!("/redfish/v1/Chassis/{sys}"))],
            "ManagerForChassis@odata.count": 1,
            "ManagerForServers": [odata_id(format!("/redfish/v1/Systems/{sys}"))],
            "ManagerForServers@odata.count": 1,
            "ManagerInChassis": odata_id(format!("/redfish/v1/Chassis/{sys}")),
        },
        "ManagerType": "BMC",
        "Model": host.model.generation,
        "Name": "Manager",
        "PowerState": "On",
        "ServiceEntryPointUUID": uuid(host),
        "Status": {"Health": "OK", "State": "Enabled"},
        "UUID": uuid(host),
    });
    if host.is_dell() {
        v.set(
            &["Links", "Oem"],
            json!({"Dell": {
                "@odata.type": "#DellOem.v1_1_0.DellOemLinks",
                "DellJobService": odata_id(format!("{OEM_5X}/DellJobService")),
                "DellLCService": odata_id(format!("{OEM_5X}/DellLCService")),
                "DellAttributes": [odata_id(IDRAC_ATTRS)],
                "DellAttributes@odata.count": 1,
                "DelliDRACCardService": odata_id(format!("{OEM_5X}/DelliDRACCardService")),
                "Jobs": odata_id(JOBS_5X),
            }}),
        );
        // Recent iDRAC firmware names the service by the service tag.
        v.set(&["ServiceIdentification"], json!(host.service_tag));
    } else {
        v.set(&["Model"], json!("Simulated BMC"));
    }
    v
}

pub(super) fn lc_status(ctx: &Ctx<'_>) -> Reply {
    let mut st = ctx.host.lock();
    let lc = st.lc_ready();
    let server = match st.server {
        ServerStatus::OutOfPost => "OutOfPOST",
        ServerStatus::InPost => "InPOST",
        ServerStatus::PoweredOff => "PoweredOff",
    };
    let rt = lc && st.server != ServerStatus::InPost;
    let ready = |b: bool| if b { "Ready" } else { "NotReady" };
    let mut v = json!({
        "LCStatus": ready(lc),
        "RTStatus": ready(rt),
        "ServerStatus": server,
        "Status": ready(lc && rt),
        "TelemetryStatus": "Ready",
    });
    v.set(
        &["@Message.ExtendedInfo"],
        json!([ext(ctx.host, &messages::SYS413, &[])]),
    );
    Reply::ok(&v)
}

pub(super) fn manager_reset(ctx: &Ctx<'_>, oem: bool) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    if !oem {
        match body.get("ResetType").and_then(Value::as_str) {
            Some("GracefulRestart") => {}
            Some(other) => {
                return error(
                    host,
                    StatusCode::BAD_REQUEST,
                    base::ACTION_PARAM_NOT_IN_LIST,
                    &[other.into(), "ResetType".into(), "Manager.Reset".into()],
                );
            }
            None => {
                return error(
                    host,
                    StatusCode::BAD_REQUEST,
                    base::ACTION_PARAM_MISSING,
                    &["Manager.Reset".into(), "ResetType".into()],
                );
            }
        }
    }
    let (i2, h2) = (ctx.inner.clone(), host.clone());
    ctx.inner
        .spawn(async move { host::restart_bmc(i2, h2, durations::BMC_PENDING).await });
    if oem {
        Reply::ok(&success_info(host))
    } else {
        Reply::empty(StatusCode::NO_CONTENT)
    }
}
