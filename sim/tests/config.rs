//! BIOS attributes (current, pending, config job applied at reboot), the
//! boot override, PowerRestorePolicy, Manager ServiceIdentification, the
//! iDRAC's DellAttributes, `$select` into them, ETag / If-Match — all over
//! real HTTP against one simulated iDRAC.

mod common;

use std::time::Duration;

use common::*;
use firmflow_sim::{Flavor, Fleet};
use serde_json::{Value, json};

const SYS: &str = "/redfish/v1/Systems/System.Embedded.1";
const BIOS: &str = "/redfish/v1/Systems/System.Embedded.1/Bios";
const SETTINGS: &str = "/redfish/v1/Systems/System.Embedded.1/Bios/Settings";
const GENERIC_SYS: &str = "/redfish/v1/Systems/1";
const GENERIC_BIOS: &str = "/redfish/v1/Systems/1/Bios";
const GENERIC_SETTINGS: &str = "/redfish/v1/Systems/1/Bios/Settings";
const JOBS: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Jobs";
const ATTRS: &str =
    "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/DellAttributes/iDRAC.Embedded.1";

async fn patch(api: &Api, path: &str, body: Value, if_match: Option<&str>) -> reqwest::Response {
    let mut req = api
        .c
        .patch(format!("{}{}", api.base, path))
        .basic_auth(&api.user, Some(&api.pass))
        .json(&body);
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    req.send().await.unwrap()
}

fn message_id(v: &Value) -> String {
    v["error"]["@Message.ExtendedInfo"][0]["MessageId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Restarts the host and waits until its `RID_` reboot job completed.
async fn reboot(api: &Api, fleet: &Fleet, host: &str) {
    let before: Vec<String> = fleet.jobs(host).into_iter().map(|j| j.0).collect();
    let r = api
        .post(
            &format!("{SYS}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceRestart"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let rid = fleet
        .jobs(host)
        .into_iter()
        .map(|j| j.0)
        .find(|id| id.starts_with("RID_") && !before.contains(id))
        .expect("a reboot job");
    api.wait_job(&rid, &["RebootCompleted"]).await;
}

fn job_id(r: &reqwest::Response) -> String {
    r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn bios_attribute_staged_then_applied_at_reboot_by_config_job() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);

    let sys = api.get_json(SYS).await;
    assert_eq!(sys["Bios"]["@odata.id"], BIOS);
    let bios = api.get_json(BIOS).await;
    assert_eq!(bios["@odata.type"], "#Bios.v1_1_0.Bios");
    assert_eq!(
        bios["@Redfish.Settings"]["SettingsObject"]["@odata.id"],
        SETTINGS
    );
    let attrs = &bios["Attributes"];
    assert_eq!(attrs["BootMode"], "Uefi");
    assert_eq!(attrs["SriovGlobalEnable"], "Disabled");
    assert_eq!(attrs["ProcVirtualization"], "Enabled");
    assert_eq!(attrs["SysProfile"], "PerfPerWattOptimizedDapc");
    assert_eq!(attrs["SystemServiceTag"], h.service_tag.as_str());
    assert_eq!(attrs["SystemBiosVersion"], sys["BiosVersion"]);

    // Stage: the current value is unchanged, the pending one shows in Settings.
    let r = patch(
        &api,
        SETTINGS,
        json!({"Attributes": {"SriovGlobalEnable": "Enabled"}}),
        None,
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(
        api.get_json(BIOS).await["Attributes"]["SriovGlobalEnable"],
        "Disabled"
    );
    let pending = api.get_json(SETTINGS).await;
    assert_eq!(
        pending["Attributes"],
        json!({"SriovGlobalEnable": "Enabled"})
    );

    // A reboot without a config job does not apply it (two-step Dell flow).
    reboot(&api, &fleet, &h.name).await;
    assert_eq!(
        api.get_json(BIOS).await["Attributes"]["SriovGlobalEnable"],
        "Disabled"
    );
    assert_eq!(
        api.get_json(SETTINGS).await["Attributes"]["SriovGlobalEnable"],
        "Enabled"
    );

    // The config job, then a reboot, applies it.
    let r = api.post(JOBS, json!({"TargetSettingsURI": SETTINGS})).await;
    assert_eq!(r.status(), 200);
    let jid = job_id(&r);
    assert!(jid.starts_with("JID_"), "{jid}");
    let job = api.get_json(&format!("{JOBS}/{jid}")).await;
    assert_eq!(job["JobType"], "BIOSConfiguration");
    assert_eq!(job["JobState"], "Scheduled");
    assert_eq!(job["MessageId"], "JCP001");
    assert_eq!(job["Name"], "ConfigBIOS:BIOS.Setup.1-1");
    // One config job at a time; no staging while it is scheduled.
    let r = api.post(JOBS, json!({"TargetSettingsURI": SETTINGS})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(message_id(&r.json().await.unwrap()), "IDRAC.2.8.LC068");
    let r = patch(
        &api,
        SETTINGS,
        json!({"Attributes": {"BootMode": "Bios"}}),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);

    reboot(&api, &fleet, &h.name).await;
    let job = api.wait_job(&jid, &["Completed", "Failed"]).await;
    assert_eq!(job["JobState"], "Completed");
    assert_eq!(job["MessageId"], "PR19");
    assert_eq!(
        api.get_json(BIOS).await["Attributes"]["SriovGlobalEnable"],
        "Enabled"
    );
    assert_eq!(api.get_json(SETTINGS).await["Attributes"], json!({}));
    // Nothing staged any more: no job to create.
    let r = api.post(JOBS, json!({"TargetSettingsURI": SETTINGS})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        message_id(&r.json().await.unwrap()),
        "Base.1.12.NoOperation"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn bios_settings_apply_time_validation_and_if_match() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);

    for (body, id) in [
        (
            json!({"Attributes": {"NoSuchAttr": "x"}}),
            "Base.1.12.PropertyUnknown",
        ),
        (
            json!({"Attributes": {"BootMode": "Floppy"}}),
            "Base.1.12.PropertyValueNotInList",
        ),
        (
            json!({"Attributes": {"SystemServiceTag": "X"}}),
            "Base.1.12.PropertyNotWritable",
        ),
        (
            json!({"Attributes": {"BootMode": 1}}),
            "Base.1.12.PropertyValueTypeError",
        ),
        (json!({"Attributes": {}}), "Base.1.12.NoOperation"),
        (
            json!({"Attributes": {"BootMode": "Bios"}, "@Redfish.SettingsApplyTime": {"ApplyTime": "Never"}}),
            "Base.1.12.PropertyValueNotInList",
        ),
    ] {
        let r = patch(&api, SETTINGS, body.clone(), None).await;
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(message_id(&r.json().await.unwrap()), id, "{body}");
    }
    assert_eq!(api.get_json(SETTINGS).await["Attributes"], json!({}));

    // ETag on GET, 304 on If-None-Match, 412 on a stale If-Match.
    let r = api.get(SETTINGS).await;
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = api
        .c
        .get(format!("{}{SETTINGS}", api.base))
        .basic_auth(&api.user, Some(&api.pass))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = patch(
        &api,
        SETTINGS,
        json!({"Attributes": {"MemTest": "Enabled"}}),
        Some("W/\"stale\""),
    )
    .await;
    assert_eq!(r.status(), 412);
    assert_eq!(
        message_id(&r.json().await.unwrap()),
        "Base.1.12.PreconditionFailed"
    );

    // Current ETag + ApplyTime OnReset: staged and the job scheduled (202 + Location).
    let r = patch(
        &api,
        SETTINGS,
        json!({"Attributes": {"BootMode": "Bios", "ProcVirtualization": "Disabled"},
               "@Redfish.SettingsApplyTime": {"ApplyTime": "OnReset"}}),
        Some(&etag),
    )
    .await;
    assert_eq!(r.status(), 202);
    let jid = job_id(&r);
    let job = api.wait_job(&jid, &["Scheduled"]).await;
    assert_eq!(job["JobType"], "BIOSConfiguration");
    assert_eq!(api.get_json(BIOS).await["Attributes"]["BootMode"], "Uefi");
    reboot(&api, &fleet, &h.name).await;
    api.wait_job(&jid, &["Completed"]).await;
    let bios = api.get_json(BIOS).await;
    assert_eq!(bios["Attributes"]["BootMode"], "Bios");
    assert_eq!(bios["Attributes"]["ProcVirtualization"], "Disabled");

    // Immediate: the iDRAC reboots the host itself.
    let r = patch(
        &api,
        SETTINGS,
        json!({"Attributes": {"LogicalProc": "Disabled"}, "@Redfish.SettingsApplyTime": {"ApplyTime": "Immediate"}}),
        None,
    )
    .await;
    assert_eq!(r.status(), 202);
    let jid = job_id(&r);
    api.wait_job(&jid, &["Completed"]).await;
    assert_eq!(
        api.get_json(BIOS).await["Attributes"]["LogicalProc"],
        "Disabled"
    );
    fleet.shutdown().await;
}

#[tokio::test]
async fn boot_override_and_power_restore_policy() {
    let fleet = http_fleet(1, 20_000.0).await;
    let h = &fleet.hosts()[0];
    let api = Api::new(h);

    let sys = api.get_json(SYS).await;
    let boot = &sys["Boot"];
    assert_eq!(boot["BootSourceOverrideEnabled"], "Disabled");
    assert_eq!(boot["BootSourceOverrideTarget"], "None");
    assert_eq!(boot["BootSourceOverrideMode"], "UEFI");
    let allowed = boot["BootSourceOverrideTarget@Redfish.AllowableValues"]
        .as_array()
        .unwrap();
    assert!(allowed.contains(&json!("Pxe")) && allowed.contains(&json!("BiosSetup")));
    assert_eq!(sys["PowerRestorePolicy"], "LastState");
    let opts = api
        .get_json(boot["BootOptions"]["@odata.id"].as_str().unwrap())
        .await;
    assert_eq!(opts["Members@odata.count"], boot["BootOrder@odata.count"]);
    for (member, reference) in opts["Members"]
        .as_array()
        .unwrap()
        .iter()
        .zip(boot["BootOrder"].as_array().unwrap())
    {
        let o = api.get_json(member["@odata.id"].as_str().unwrap()).await;
        assert_eq!(&o["BootOptionReference"], reference);
        assert_eq!(o["@odata.type"], "#BootOption.v1_0_4.BootOption");
    }

    let r = patch(
        &api,
        SYS,
        json!({"Boot": {"BootSourceOverrideTarget": "Tape"}}),
        None,
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        message_id(&r.json().await.unwrap()),
        "Base.1.12.PropertyValueNotInList"
    );
    let r = patch(&api, SYS, json!({"Boot": {"BootOrder": []}}), None).await;
    assert_eq!(r.status(), 400);
    let r = patch(&api, SYS, json!({"PowerState": "Off"}), None).await;
    assert_eq!(r.status(), 400);
    // A stale If-Match is refused; the System's current ETag is accepted.
    let r = patch(
        &api,
        SYS,
        json!({"PowerRestorePolicy": "AlwaysOn"}),
        Some("W/\"0\""),
    )
    .await;
    assert_eq!(r.status(), 412);

    let r = patch(
        &api,
        SYS,
        json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"},
               "PowerRestorePolicy": "AlwaysOn"}),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let sys = api.get_json(SYS).await;
    assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "Pxe");
    assert_eq!(sys["Boot"]["BootSourceOverrideEnabled"], "Once");
    assert_eq!(sys["PowerRestorePolicy"], "AlwaysOn");
    // The iDRAC keeps the policy as the BIOS AcPwrRcvry attribute.
    assert_eq!(api.get_json(BIOS).await["Attributes"]["AcPwrRcvry"], "On");
    let sel = api
        .get_json(&format!(
            "{SYS}?$select=PowerRestorePolicy,Boot/BootSourceOverrideTarget"
        ))
        .await;
    assert_eq!(sel["PowerRestorePolicy"], "AlwaysOn");
    assert_eq!(sel["Boot"], json!({"BootSourceOverrideTarget": "Pxe"}));
    assert!(sel.get("PowerState").is_none());

    // A one-time override is consumed by the next boot.
    reboot(&api, &fleet, &h.name).await;
    let sys = api.get_json(SYS).await;
    assert_eq!(sys["Boot"]["BootSourceOverrideEnabled"], "Disabled");
    assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "None");
    assert_eq!(sys["PowerRestorePolicy"], "AlwaysOn");
    fleet.shutdown().await;
}

#[tokio::test]
async fn manager_service_identification_and_idrac_attributes() {
    let fleet = Fleet::builder()
        .hosts(2)
        .flavor_for(1, Flavor::Idrac10)
        .http(true)
        .speed(20_000.0)
        .seed(7)
        .start()
        .await
        .unwrap();
    for h in fleet.hosts() {
        let api = Api::new(h);
        let mgr = api.get_json("/redfish/v1/Managers/iDRAC.Embedded.1").await;
        assert_eq!(
            mgr["ServiceIdentification"],
            h.service_tag.as_str(),
            "{}",
            h.name
        );
        assert_eq!(
            mgr["Links"]["Oem"]["Dell"]["DellAttributes"][0]["@odata.id"],
            ATTRS
        );
        let ty = mgr["@odata.type"].as_str().unwrap();
        assert!(
            ty == "#Manager.v1_15_0.Manager" || ty == "#Manager.v1_20_0.Manager",
            "{ty}"
        );

        let a = api.get_json(ATTRS).await;
        assert_eq!(a["@odata.type"], "#DellAttributes.v1_0_0.DellAttributes");
        assert_eq!(a["Attributes"]["Redfish.1.Enable"], "Enabled");
        assert_eq!(a["Attributes"]["Info.1.Version"], mgr["FirmwareVersion"]);
        assert_eq!(a["Attributes"]["Info.1.Type"], mgr["Model"]);
        assert_eq!(a["Attributes"]["Users.2.UserName"], h.username.as_str());
        assert!(a["Attributes"]["Users.2.Password"].is_null());

        let r = patch(
            &api,
            ATTRS,
            json!({"Attributes": {"Users.2.Privilege": 9999}}),
            None,
        )
        .await;
        assert_eq!(r.status(), 400);
        let r = patch(
            &api,
            ATTRS,
            json!({"Attributes": {"Info.1.Version": "1"}}),
            None,
        )
        .await;
        assert_eq!(r.status(), 400);
        // iDRAC attributes apply at once (no job, no reboot).
        let r = patch(
            &api,
            ATTRS,
            json!({"Attributes": {"NTPConfigGroup.1.NTPEnable": "Enabled", "NTPConfigGroup.1.NTP1": "pool.ntp.org"}}),
            None,
        )
        .await;
        assert_eq!(r.status(), 200);
        let sel = api
            .get_json(&format!("{ATTRS}?$select=Attributes/NTPConfigGroup.1.NTPEnable,Attributes/NTPConfigGroup.1.NTP1"))
            .await;
        assert_eq!(
            sel["Attributes"],
            json!({"NTPConfigGroup.1.NTPEnable": "Enabled", "NTPConfigGroup.1.NTP1": "pool.ntp.org"})
        );
        assert_eq!(sel["@odata.id"], ATTRS);
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn generic_bmc_bios_settings_apply_on_reset() {
    let fleet = Fleet::builder()
        .hosts(1)
        .flavor(Flavor::Generic)
        .http(true)
        .speed(20_000.0)
        .seed(3)
        .start()
        .await
        .unwrap();
    let h = &fleet.hosts()[0];
    let api = Api::new(h);
    assert!(api.get_json(GENERIC_BIOS).await["Attributes"].is_object());
    let r = patch(
        &api,
        GENERIC_SETTINGS,
        json!({"Attributes": {"MemTest": "Enabled"}}),
        None,
    )
    .await;
    assert_eq!(r.status(), 202);
    let r = api
        .post(
            &format!("{GENERIC_SYS}/Actions/ComputerSystem.Reset"),
            json!({"ResetType": "ForceRestart"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if api.get_json(GENERIC_BIOS).await["Attributes"]["MemTest"] == "Enabled" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pending BIOS value never applied"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fleet.shutdown().await;
}
