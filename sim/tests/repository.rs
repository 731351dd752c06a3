//! Repository updates by model: `InstallFromRepository` compares the catalog
//! with the host's inventory for the host's SystemID only,
//! `GetRepoBasedUpdateList` answers the comparison in the CIM `PackageList`
//! shape of a real iDRAC9 (checked against a captured answer), and applying
//! it changes the inventory.

mod common;

use std::time::Duration;

use common::*;
use firmflow_sim::catalog::{self, CatalogEntry, CatalogOptions};
use firmflow_sim::{Fleet, Package, PackageKind};
use quick_xml::events::Event;
use serde_json::{Value, json};

const SW: &str = "/redfish/v1/Systems/System.Embedded.1/Oem/Dell/DellSoftwareInstallationService";

/// A real iDRAC9 6.10 `PackageList` (see tests/fixtures/SOURCES.md).
const REAL_PACKAGE_LIST: &str =
    include_str!("fixtures/repo_based_update_list_packagelist_idrac9_6.10.xml");

/// Per `DCIM_RepoUpdateSWID` instance: its property names in order, and the
/// name → values map.
type Instance = (Vec<String>, std::collections::BTreeMap<String, Vec<String>>);

fn instances(xml: &str) -> Vec<Instance> {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut out: Vec<Instance> = Vec::new();
    let mut prop: Option<String> = None;
    loop {
        match r.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name();
                let attr = |k: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == k)
                        .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                };
                match name.as_ref() {
                    b"INSTANCENAME" => {
                        assert_eq!(attr(b"CLASSNAME").as_deref(), Some("DCIM_RepoUpdateSWID"));
                        out.push(Default::default());
                    }
                    b"PROPERTY" | b"PROPERTY.ARRAY" => {
                        let n = attr(b"NAME").unwrap();
                        assert_eq!(attr(b"TYPE").as_deref(), Some("string"), "{n}");
                        let inst = out.last_mut().unwrap();
                        inst.0.push(n.clone());
                        inst.1.insert(n.clone(), Vec::new());
                        prop = Some(n);
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                let text = t.decode().unwrap().trim().to_string();
                if let (Some(p), false) = (&prop, text.is_empty()) {
                    out.last_mut().unwrap().1.get_mut(p).unwrap().push(text);
                }
            }
            Event::End(e) if matches!(e.name().as_ref(), b"PROPERTY" | b"PROPERTY.ARRAY") => {
                prop = None;
            }
            _ => {}
        }
    }
    out
}

async fn repo_action(api: &Api, action: &str, body: Value) -> reqwest::Response {
    api.post(
        &format!("{SW}/Actions/DellSoftwareInstallationService.{action}"),
        body,
    )
    .await
}

/// Runs InstallFromRepository and waits for the RepositoryUpdate job.
async fn install_from_repository(api: &Api, share: &Value, apply: bool) -> Value {
    let mut body = share.clone();
    body["ApplyUpdate"] = json!(if apply { "True" } else { "False" });
    body["RebootNeeded"] = json!(apply);
    let r = repo_action(api, "InstallFromRepository", body).await;
    assert_eq!(r.status(), 202);
    let jid = r.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let job = api
        .wait_job(&jid, &["Completed", "CompletedWithErrors", "Failed"])
        .await;
    assert_eq!(job["JobType"], "RepositoryUpdate");
    job
}

fn serve_catalog(fleet: &Fleet, packages: Vec<Package>) -> Value {
    let mut entries = Vec::new();
    for p in packages {
        let bytes = p.to_bytes();
        let e = CatalogEntry::new(p, bytes.clone());
        fleet.serve_file(&format!("models/{}", e.path), bytes);
        entries.push(e);
    }
    let url = fleet.serve_file(
        "models/Catalog.xml",
        catalog::write(&entries, &CatalogOptions::default()).unwrap(),
    );
    let ip = url.trim_start_matches("http://").split('/').next().unwrap();
    json!({"IPAddress": ip, "ShareType": "HTTP", "ShareName": "files/models", "CatalogFile": "Catalog.xml"})
}

#[tokio::test]
async fn repository_list_follows_the_hosts_model_and_install_changes_inventory() {
    // Host 0 is a PowerEdge R640 (SystemID 1814), host 1 an R6515 (2300).
    let fleet = http_fleet(2, 20_000.0).await;
    let (outdated, compliant) = (&fleet.hosts()[0], &fleet.hosts()[1]);
    assert_ne!(outdated.system_id, compliant.system_id);
    let installed_bios = version_of(&fleet, &outdated.name, "159");
    let share = serve_catalog(
        &fleet,
        vec![
            // Newer BIOS, but only for the R640.
            pkg(
                "159",
                "BIOS",
                "9.9.9",
                PackageKind::Bios,
                vec![outdated.system_id],
            ),
            // Older BIOS for the R6515: never applicable.
            pkg(
                "159",
                "BIOS",
                "1.0.0",
                PackageKind::Bios,
                vec![compliant.system_id],
            ),
        ],
    );

    // Outdated host: the comparison names the BIOS package.
    let api = Api::new(outdated);
    let job = install_from_repository(&api, &share, false).await;
    assert_eq!(job["JobState"], "Completed", "{job}");
    let r = repo_action(&api, "GetRepoBasedUpdateList", json!({})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let list = instances(v["PackageList"].as_str().unwrap());
    assert_eq!(list.len(), 1, "{v}");
    let (names, props) = &list[0];
    let one = |k: &str| props[k].first().cloned().unwrap_or_default();
    assert_eq!(one("PackageVersion"), "9.9.9");
    assert_eq!(one("ComponentID"), "159");
    assert_eq!(one("ComponentType"), "BIOS");
    assert_eq!(one("DisplayName"), "BIOS");
    assert_eq!(one("RebootType"), "HOST");
    assert_eq!(one("Target"), "DCIM:INSTALLED#741__BIOS.Setup.1-1");
    assert_eq!(
        props["ComponentInstalledVersion"],
        vec![installed_bios.clone()]
    );
    assert!(one("PackagePath").ends_with(&one("PackageName")));
    // Same properties, same order, as the real iDRAC9's BIOS entry.
    let real = instances(REAL_PACKAGE_LIST);
    let (real_names, real_props) = real
        .iter()
        .find(|(_, p)| p["ComponentType"] == ["BIOS"])
        .unwrap();
    assert_eq!(names, real_names);
    assert_eq!(
        props["Target"], real_props["Target"],
        "same FQDD and class prefix"
    );
    assert!(
        fleet.installs(&outdated.name).is_empty(),
        "ApplyUpdate False installs nothing"
    );

    // Compliant host (its model has no newer package): nothing applicable.
    let api_c = Api::new(compliant);
    let job = install_from_repository(&api_c, &share, false).await;
    assert_eq!(job["MessageId"], "SUP029", "{job}");
    let r = repo_action(&api_c, "GetRepoBasedUpdateList", json!({})).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "IDRAC.2.8.SUP029"
    );
    assert!(v.get("PackageList").is_none());

    // Installing from the repository changes the outdated host's inventory.
    let job = install_from_repository(&api, &share, true).await;
    assert_eq!(job["JobState"], "Completed", "{job}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while version_of(&fleet, &outdated.name, "159") != "9.9.9" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            fleet.jobs(&outdated.name)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let inv = api
        .get_json("/redfish/v1/UpdateService/FirmwareInventory")
        .await;
    let ids: Vec<&str> = inv["Members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["@odata.id"].as_str())
        .collect();
    assert!(
        ids.iter()
            .any(|i| i.ends_with("/Installed-159-9.9.9__BIOS.Setup.1-1")),
        "{ids:?}"
    );
    assert!(
        ids.iter()
            .any(|i| i.ends_with(&format!("/Previous-159-{installed_bios}__BIOS.Setup.1-1"))),
        "{ids:?}"
    );
    let bios = api
        .get_json("/redfish/v1/Systems/System.Embedded.1/Bios")
        .await;
    assert_eq!(bios["Attributes"]["SystemBiosVersion"], "9.9.9");
    assert_eq!(fleet.install_count(&compliant.name, "159"), 0);

    // Now compliant too: the next comparison finds nothing.
    let job = install_from_repository(&api, &share, false).await;
    assert_eq!(job["MessageId"], "SUP029");
    fleet.shutdown().await;
}
