//! `Systems/System.Embedded.1`, its Chassis and the host power actions.

use super::*;
use crate::settings::{self, POWER_RESTORE};

/// UEFI boot options: id (= `BootOptionReference`), display name, device path.
const BOOT_OPTIONS: &[(&str, &str, &str)] = &[
    (
        "Boot0001",
        "Integrated RAID Controller 1: Linux Boot Manager",
        "HD(1,GPT,8A3C1B2E-5D4F-4E6A-9B7C-0D1E2F3A4B5C,0x800,0x100000)/\\EFI\\BOOT\\BOOTX64.EFI",
    ),
    (
        "Boot0002",
        "PXE Device 1: Embedded NIC 1 Port 1 Partition 1",
        "VenHw(3A191845-5F86-4E78-8FCE-C4CFF59F9DAA)",
    ),
    (
        "Boot0003",
        "Unavailable: Virtual Optical Drive",
        "PciRoot(0x0)/Pci(0x14,0x0)/USB(0xD,0x0)/USB(0x0,0x0)/Unit(0x0)",
    ),
];

/// `Systems/…/BootOptions` (`$expand` gives the members inline).
pub(super) fn boot_options(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let id = format!("/redfish/v1/Systems/{}/BootOptions", host.system_path());
    let ty = "#BootOptionCollection.BootOptionCollection";
    let name = "Boot Options Collection";
    if ctx.expand() {
        let m = BOOT_OPTIONS
            .iter()
            .filter_map(|(b, _, _)| boot_option(host, b))
            .collect();
        Reply::ok(&expanded_collection(&id, ty, name, m))
    } else {
        let m = BOOT_OPTIONS
            .iter()
            .map(|(b, _, _)| format!("{id}/{b}"))
            .collect();
        Reply::ok(&collection(&id, ty, name, m))
    }
}

/// One UEFI boot option.
pub(super) fn boot_option(host: &Host, id: &str) -> Option<Value> {
    let (b, name, path) = BOOT_OPTIONS.iter().find(|(b, _, _)| *b == id)?;
    Some(json!({
        "@odata.context": "/redfish/v1/$metadata#BootOption.BootOption",
        "@odata.id": format!("/redfish/v1/Systems/{}/BootOptions/{b}", host.system_path()),
        "@odata.type": "#BootOption.v1_0_4.BootOption",
        "BootOptionEnabled": !name.starts_with("Unavailable"),
        "BootOptionReference": b,
        "Description": "Current settings of the UEFI Boot option",
        "DisplayName": name,
        "Id": b,
        "Name": "Uefi Boot Option",
        "UefiDevicePath": path,
    }))
}

/// One enumerated value of a PATCH body (`PropertyValueNotInList` otherwise).
fn one_of(host: &Host, name: &str, v: &Value, allowed: &[&str]) -> Result<String, Reply> {
    let Some(s) = v.as_str() else {
        return Err(error(
            host,
            StatusCode::BAD_REQUEST,
            base::PROPERTY_VALUE_TYPE,
            &[v.to_string(), name.into()],
        ));
    };
    if allowed.contains(&s) {
        Ok(s.to_string())
    } else {
        Err(error(
            host,
            StatusCode::BAD_REQUEST,
            base::PROPERTY_VALUE_NOT_IN_LIST,
            &[s.into(), name.into()],
        ))
    }
}

/// `PATCH Systems/System.Embedded.1`: the boot override (`Boot.BootSourceOverride*`)
/// and `PowerRestorePolicy` (which the iDRAC keeps as the BIOS `AcPwrRcvry`).
/// Every value is checked before anything changes.
pub(super) fn patch_system(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = if_match(ctx, &system(ctx)) {
        return r;
    }
    let bad = |k: &str, msg| error(host, StatusCode::BAD_REQUEST, msg, &[k.to_string()]);
    let (mut target, mut enabled, mut mode, mut restore) = (None, None, None, None);
    for (k, v) in &body {
        match k.as_str() {
            "Boot" => {
                let Some(boot) = v.as_object() else {
                    return error(
                        host,
                        StatusCode::BAD_REQUEST,
                        base::PROPERTY_VALUE_TYPE,
                        &[v.to_string(), "Boot".into()],
                    );
                };
                for (bk, bv) in boot {
                    let r = match bk.as_str() {
                        "BootSourceOverrideTarget" => {
                            one_of(host, bk, bv, settings::BOOT_TARGETS).map(|s| target = Some(s))
                        }
                        "BootSourceOverrideEnabled" => {
                            one_of(host, bk, bv, settings::BOOT_ENABLED).map(|s| enabled = Some(s))
                        }
                        "BootSourceOverrideMode" => {
                            one_of(host, bk, bv, settings::BOOT_MODES).map(|s| mode = Some(s))
                        }
                        "BootOrder" | "BootOptions" | "UefiTargetBootSourceOverride" => {
                            Err(bad(bk, base::PROPERTY_NOT_WRITABLE))
                        }
                        _ => Err(bad(bk, base::PROPERTY_UNKNOWN)),
                    };
                    if let Err(r) = r {
                        return r;
                    }
                }
            }
            "PowerRestorePolicy" => {
                let names: Vec<&str> = POWER_RESTORE.iter().map(|(p, _)| *p).collect();
                match one_of(host, k, v, &names) {
                    Ok(s) => restore = Some(s),
                    Err(r) => return r,
                }
            }
            k if k.starts_with("@odata") => {}
            "Id" | "Name" | "Model" | "PowerState" | "BiosVersion" | "Status" | "UUID" => {
                return bad(k, base::PROPERTY_NOT_WRITABLE);
            }
            _ => return bad(k, base::PROPERTY_UNKNOWN),
        }
    }
    if body.keys().all(|k| k.starts_with("@odata")) {
        return error(host, StatusCode::BAD_REQUEST, base::NO_OPERATION, &[]);
    }
    let mut st = host.lock();
    let cfg = &mut st.config;
    if let Some(t) = target {
        cfg.boot_target = t;
    }
    if let Some(e) = enabled {
        cfg.boot_enabled = e;
    }
    if let Some(m) = mode {
        cfg.boot_mode = m;
    }
    if let Some(p) = restore
        && let Some((_, ac)) = POWER_RESTORE.iter().find(|(name, _)| *name == p)
    {
        cfg.bios.insert("AcPwrRcvry".into(), json!(ac));
    }
    cfg.generation += 1;
    Reply::ok(&success_info(host))
}

pub(super) fn power_str(st: &HostState) -> &'static str {
    if st.power_on { "On" } else { "Off" }
}

pub(super) fn system(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let st = host.lock();
    let sys = host.system_path();
    let bios = st
        .components
        .iter()
        .find(|c| c.component_id == "159")
        .map(|c| c.version.clone())
        .unwrap_or_default();
    let health = st.health().to_string();
    let mut v = json!({
        "@odata.context": "/redfish/v1/$metadata#ComputerSystem.ComputerSystem",
        "@odata.id": format!("/redfish/v1/Systems/{sys}"),
        "@odata.type": "#ComputerSystem.v1_10_0.ComputerSystem",
        "Actions": {"#ComputerSystem.Reset": {
            "target": format!("/redfish/v1/Systems/{sys}/Actions/ComputerSystem.Reset"),
            "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "ForceRestart", "GracefulRestart", "GracefulShutdown", "PushPowerButton", "Nmi", "PowerCycle"],
        }},
        "AssetTag": "",
        "Bios": odata_id(bios_path(host)),
        "BiosVersion": bios,
        "Boot": {
            "BootOptions": odata_id(format!("/redfish/v1/Systems/{sys}/BootOptions")),
            "BootOrder": BOOT_OPTIONS.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
            "BootOrder@odata.count": BOOT_OPTIONS.len(),
            "BootSourceOverrideEnabled": st.config.boot_enabled,
            "BootSourceOverrideMode": st.config.boot_mode,
            "BootSourceOverrideTarget": st.config.boot_target,
            "BootSourceOverrideTarget@Redfish.AllowableValues": settings::BOOT_TARGETS,
            "UefiTargetBootSourceOverride": null,
        },
        "Description": "Computer System which represents a machine (physical or virtual) and the local resources such as memory, cpu and other devices that can be accessed from that machine.",
        "HostName": "",
        "Id": sys,
        "IndicatorLED": "Off",
        "Links": {
            "Chassis": [odata_id(format!("/redfish/v1/Chassis/{sys}"))],
            "Chassis@odata.count": 1,
            "ManagedBy": [odata_id(format!("/redfish/v1/Managers/{}", host.manager_path()))],
            "ManagedBy@odata.count": 1,
        },
        "Manufacturer": if host.is_dell() { "Dell Inc." } else { "Contoso" },
        "MemorySummary": {"MemoryMirroring": "System", "Status": {"Health": "OK", "HealthRollup": "OK", "State": "Enabled"}, "TotalSystemMemoryGiB": 192},
        "Model": host.model.name,
        "Name": "System",
        "PartNumber": "0H28RRA02",
        "PowerRestorePolicy": st.config.power_restore_policy(),
        "PowerState": power_str(&st),
        "ProcessorSummary": {"Count": 2, "Model": "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz", "Status": {"Health": "OK", "HealthRollup": "OK", "State": "Enabled"}},
        "SKU": host.service_tag,
        "SerialNumber": format!("CN7475{}", &host.service_tag),
        "Status": {"Health": health, "HealthRollup": health, "State": "Enabled"},
        "SystemType": "Physical",
        "UUID": uuid(host),
    });
    if host.is_dell() {
        v.set(
            &["Links", "Oem"],
            json!({"Dell": {
                "@odata.type": "#DellOem.v1_1_0.DellOemLinks",
                "DellSoftwareInstallationService": odata_id(SW_5X),
            }}),
        );
        v.set(&["Oem"], json!({"Dell": {
            "@odata.type": "#DellOem.v1_1_0.DellOemResources",
            "DellSystem": {
                "@odata.context": "/redfish/v1/$metadata#DellSystem.DellSystem",
                "@odata.id": "/redfish/v1/Systems/System.Embedded.1/Oem/Dell/DellSystem/System.Embedded.1",
                "@odata.type": "#DellSystem.v1_2_0.DellSystem",
                "BIOSReleaseDate": "11/02/2023",
                "ChassisServiceTag": host.service_tag,
                "CurrentRollupStatus": health,
                "ExpressServiceCode": "18197565051",
                "Id": "System.Embedded.1",
                "LastSystemInventoryTime": ctx.inner.clock.now_iso(),
                "Name": "DellSystem",
                "NodeID": host.service_tag,
                "SystemGeneration": host.model.generation,
                "SystemID": host.model.system_id,
                "SystemRevision": "I",
            }
        }}));
    }
    v
}

pub(super) fn chassis(ctx: &Ctx<'_>) -> Value {
    let host = ctx.host;
    let st = host.lock();
    let sys = host.system_path();
    json!({
        "@odata.context": "/redfish/v1/$metadata#Chassis.Chassis",
        "@odata.id": format!("/redfish/v1/Chassis/{sys}"),
        "@odata.type": "#Chassis.v1_10_0.Chassis",
        "ChassisType": "RackMount",
        "Description": "It represents the properties for physical components for any system.",
        "Id": sys,
        "Links": {
            "ComputerSystems": [odata_id(format!("/redfish/v1/Systems/{sys}"))],
            "ComputerSystems@odata.count": 1,
            "ManagedBy": [odata_id(format!("/redfish/v1/Managers/{}", host.manager_path()))],
            "ManagedBy@odata.count": 1,
        },
        "Manufacturer": if host.is_dell() { "Dell Inc." } else { "Contoso" },
        "Model": host.model.name,
        "Name": "Computer System Chassis",
        "PowerState": power_str(&st),
        "SKU": host.service_tag,
        "SerialNumber": format!("CN7475{}", &host.service_tag),
        "Status": {"Health": st.health(), "HealthRollup": st.health(), "State": "Enabled"},
    })
}

pub(super) fn system_reset(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(t) = body.get("ResetType").and_then(Value::as_str) else {
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["ComputerSystem.Reset".into(), "ResetType".into()],
        );
    };
    let on = host.lock().power_on;
    let kind = match t {
        "On" if on => None,
        "On" => Some(ResetKind::On),
        "ForceOff" => Some(ResetKind::ForceOff),
        "GracefulShutdown" if on => Some(ResetKind::GracefulShutdown),
        "GracefulShutdown" => None,
        "ForceRestart" | "GracefulRestart" | "PowerCycle" => Some(ResetKind::Restart),
        "PushPowerButton" if on => Some(ResetKind::GracefulShutdown),
        "PushPowerButton" => Some(ResetKind::On),
        "Nmi" => None,
        other => {
            return error(
                host,
                StatusCode::BAD_REQUEST,
                base::ACTION_PARAM_NOT_IN_LIST,
                &[
                    other.into(),
                    "ResetType".into(),
                    "ComputerSystem.Reset".into(),
                ],
            );
        }
    };
    if let Some(kind) = kind {
        let (i2, h2) = (ctx.inner.clone(), host.clone());
        if kind == ResetKind::ForceOff || kind == ResetKind::Restart || kind == ResetKind::On {
            // Power state changes before the response, like the real one.
            let mut st = host.lock();
            if kind == ResetKind::ForceOff {
                st.power_on = false;
                st.server = ServerStatus::PoweredOff;
            } else if kind == ResetKind::Restart {
                host::create_reboot_job(host, &mut st);
            }
        }
        ctx.inner
            .spawn(async move { host::reset_host(i2, h2, kind).await });
    }
    Reply::empty(StatusCode::NO_CONTENT)
}
