//! A fake remote `racadm` for the racadm driver's conformance run: it takes
//! racadm's command line (`-r <bmc> -u <user> -p <pass> [--nocertwarn]
//! <command>…`), performs the command against the simulated iDRAC's Redfish
//! API (so state, jobs and install counters are the simulator's) and prints
//! what real racadm prints (the shapes of `redfish/tests/fixtures/racadm_*`).
//! `-r` takes the simulator's base URL. Exit status 1 with an `ERROR:` line
//! on failure, as racadm does.

// A test double: a broken expectation ends the process with a message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::{Value, json};
use std::process::ExitCode;

const SYSTEM: &str = "/redfish/v1/Systems/System.Embedded.1";
const JOBS: &str = "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs";
const OEM: &str = "/redfish/v1/Dell/Managers/iDRAC.Embedded.1";
const SW: &str = "/redfish/v1/Dell/Systems/System.Embedded.1/DellSoftwareInstallationService";

struct Bmc {
    base: String,
    user: String,
    password: String,
    http: reqwest::Client,
}

impl Bmc {
    async fn get(&self, path: &str) -> Result<Value, String> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| format!("Unable to connect to RAC at specified IP address: {e}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(dell_error(&body, status))
        }
    }

    /// POSTs an action; returns the job id of the `Location` header, if any.
    async fn post(&self, path: &str, body: Value) -> Result<Option<String>, String> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("Unable to connect to RAC at specified IP address: {e}"))?;
        let status = r.status();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| l.rsplit('/').next().unwrap_or(l).to_string());
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(location.or_else(|| body["Id"].as_str().map(str::to_owned)))
        } else {
            Err(dell_error(&body, status))
        }
    }
}

/// `SUP029: text` from a Redfish error body's first extended message.
fn dell_error(body: &Value, status: reqwest::StatusCode) -> String {
    let m = &body["error"]["@Message.ExtendedInfo"][0];
    match (m["MessageId"].as_str(), m["Message"].as_str()) {
        (Some(id), Some(text)) => {
            let short = id.rsplit('.').next().unwrap_or(id);
            format!("{short}: {text}")
        }
        _ => format!("HTTP {status}"),
    }
}

fn job_block(j: &Value) -> String {
    let msg_id = j["MessageId"]
        .as_str()
        .map(|i| i.rsplit('.').next().unwrap_or(i))
        .unwrap_or("");
    let pct = j["PercentComplete"]
        .as_u64()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "NA".into());
    format!(
        "---------------------------- JOB -------------------------\n\
         [Job ID={}]\nJob Name={}\nStatus={}\n\
         Scheduled Start Time=[Not Applicable]\nExpiration Time=[Not Applicable]\n\
         Actual Start Time=[Not Applicable]\nActual Completion Time=[Not Applicable]\n\
         Message=[{}: {}]\nPercent Complete=[{}]\n\
         ----------------------------------------------------------\n",
        j["Id"].as_str().unwrap_or(""),
        j["Name"].as_str().unwrap_or(""),
        j["JobState"].as_str().unwrap_or("Unknown"),
        msg_id,
        j["Message"].as_str().unwrap_or(""),
        pct
    )
}

async fn jobs(bmc: &Bmc) -> Result<Vec<Value>, String> {
    let coll = bmc.get(JOBS).await?;
    let mut out = Vec::new();
    for m in coll["Members"].as_array().cloned().unwrap_or_default() {
        if m.get("Id").is_some() {
            out.push(m);
        } else if let Some(l) = m["@odata.id"].as_str() {
            out.push(bmc.get(l).await?);
        }
    }
    Ok(out)
}

fn job_created(jid: &str) -> String {
    format!(
        "RAC987: Firmware update job for the file is initiated.\n\
         This firmware update job may take several minutes to complete depending on the \
         component or firmware being updated. To view the progress of the job, use the \
         \"racadm jobqueue view -i {jid}\" command.\n"
    )
}

async fn command(bmc: &Bmc, args: &[String]) -> Result<String, String> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["getversion"] => {
            let inv = bmc
                .get("/redfish/v1/UpdateService/FirmwareInventory")
                .await?;
            let mut bios = String::new();
            let mut idrac = String::new();
            for m in inv["Members"].as_array().cloned().unwrap_or_default() {
                let id = m["@odata.id"].as_str().unwrap_or("");
                if !id.contains("Installed-") {
                    continue;
                }
                let c = bmc.get(id).await?;
                let v = c["Version"].as_str().unwrap_or("").to_string();
                if id.contains("Installed-159-") {
                    bios = v;
                } else if id.contains("Installed-25227-") {
                    idrac = v;
                }
            }
            Ok(format!(
                "Bios Version                    = {bios}\n\
                 iDRAC Version                   = {idrac}\n\
                 Lifecycle Controller Version    = {idrac}\n"
            ))
        }
        ["serveraction", "powerstatus"] => {
            let s = bmc.get(SYSTEM).await?;
            Ok(format!(
                "Server power status: {}\n",
                s["PowerState"].as_str().unwrap_or("Unknown").to_uppercase()
            ))
        }
        ["serveraction", action] => {
            let reset = match *action {
                "gracereboot" => "GracefulRestart",
                "hardreset" => "ForceRestart",
                "powercycle" => "PowerCycle",
                "powerup" => "On",
                "graceshutdown" => "GracefulShutdown",
                "powerdown" => "ForceOff",
                other => return Err(format!("Invalid action {other}")),
            };
            bmc.post(
                &format!("{SYSTEM}/Actions/ComputerSystem.Reset"),
                json!({ "ResetType": reset }),
            )
            .await?;
            Ok("Server power operation successful\n".into())
        }
        ["getremoteservicesstatus"] => {
            let s = bmc
                .post_json(&format!(
                    "{OEM}/DellLCService/Actions/DellLCService.GetRemoteServicesAPIStatus"
                ))
                .await?;
            Ok(format!(
                "Server Status              : {}\nLifecycle Controller Status: {}\n\
                 Real-time Status           : {}\nOverall Status             : {}\n",
                s["ServerStatus"].as_str().unwrap_or("Unknown"),
                s["LCStatus"].as_str().unwrap_or("Unknown"),
                s["RTStatus"].as_str().unwrap_or("Unknown"),
                s["Status"].as_str().unwrap_or("Unknown"),
            ))
        }
        ["jobqueue", "view"] => Ok(jobs(bmc).await?.iter().map(job_block).collect()),
        ["jobqueue", "view", "-i", jid] => match bmc.get(&format!("{JOBS}/{jid}")).await {
            Ok(j) => Ok(job_block(&j)),
            Err(_) => Err(format!("SUP024: Invalid Job ID {jid}")),
        },
        ["jobqueue", "delete", "-i", "JID_CLEARALL"] => {
            bmc.post(
                &format!("{OEM}/DellJobService/Actions/DellJobService.DeleteJobQueue"),
                json!({ "JobID": "JID_CLEARALL" }),
            )
            .await?;
            Ok("RAC1032: JID_CLEARALL deleted successfully.\n".into())
        }
        ["racreset"] => {
            bmc.post(
                "/redfish/v1/Managers/iDRAC.Embedded.1/Actions/Manager.Reset",
                json!({ "ResetType": "GracefulRestart" }),
            )
            .await?;
            Ok("RAC1006: iDRAC reset operation initiated successfully.\n".into())
        }
        [
            "update",
            "-f",
            catalog,
            "-t",
            kind,
            "-l",
            share,
            "-a",
            apply,
        ] => {
            let (host, path) = share
                .split_once("://")
                .map(|(_, rest)| rest.split_once('/').unwrap_or((rest, "")))
                .unwrap_or((share, ""));
            let jid = bmc
                .post(
                    &format!("{SW}/Actions/DellSoftwareInstallationService.InstallFromRepository"),
                    json!({
                        "IPAddress": host,
                        "ShareName": path,
                        "ShareType": kind,
                        "CatalogFile": catalog,
                        "ApplyUpdate": "True",
                        "RebootNeeded": *apply == "TRUE",
                    }),
                )
                .await?
                .ok_or("the iDRAC named no job")?;
            Ok(format!(
                "RAC1118: Update from repository operation has been initiated. Check the \
                 progress of the operation using \"racadm jobqueue view -i {jid}\" command.\n"
            ))
        }
        ["update", "-f", file, "-l", dir] => {
            let jid = bmc
                .post(
                    "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
                    json!({ "ImageURI": format!("{dir}/{file}") }),
                )
                .await?
                .ok_or("the iDRAC named no job")?;
            Ok(job_created(&jid))
        }
        other => Err(format!("unsupported command {}", other.join(" "))),
    }
}

impl Bmc {
    async fn post_json(&self, path: &str) -> Result<Value, String> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password))
            .json(&json!({}))
            .send()
            .await
            .map_err(|e| format!("Unable to connect to RAC at specified IP address: {e}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(dell_error(&body, status))
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut base, mut user, mut password) = (String::new(), String::new(), String::new());
    let mut rest = Vec::new();
    let mut no_cert_check = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-r" => base = args.next().unwrap_or_default(),
            "-u" => user = args.next().unwrap_or_default(),
            "-p" => password = args.next().unwrap_or_default(),
            "--nocertwarn" => no_cert_check = true,
            // Stop on certificate errors (the default here as well).
            "-S" => no_cert_check = false,
            _ => rest.push(a),
        }
    }
    if password.is_empty() {
        password = std::env::var("RACADM_PASSWORD").unwrap_or_default();
    }
    let bmc = Bmc {
        base: base.trim_end_matches('/').to_string(),
        user,
        password,
        // Like racadm: the BMC's certificate is checked unless told not to.
        http: reqwest::Client::builder()
            .danger_accept_invalid_certs(no_cert_check)
            .build()
            .expect("HTTP client"),
    };
    match command(&bmc, &rest).await {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}
