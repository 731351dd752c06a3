//! Following a Dell repository update (`InstallFromRepository`) to the end.
//!
//! The iDRAC answers `InstallFromRepository` with one `RepositoryUpdate` job.
//! That job reads `Completed` as soon as it has compared the catalog and
//! created (and downloaded) one `FirmwareUpdate` child job per applicable
//! package; the children then install, wait for a host reboot, or — for the
//! iDRAC itself — are only created once every staged job has run. The
//! repository job's own state therefore says nothing about whether a given
//! package is installed.
//!
//! A [`RepoHandle`] records the repository job and the package it stands for
//! (component id, version, name, kind) inside `JobHandle.location`, after a
//! `#firmflow-repository?` fragment, so that it survives a checkpoint and a
//! process restart. The driver resolves the package's child job from
//! `GetRepoBasedUpdateList` (its `JobID` per package, parsed here by
//! [`parse_package_list`]) or, failing that, from the job queue entries
//! created after the repository job, and reports the child's state.

use firmflow_core::model::{ComponentKind, JobHandle, Package};
use quick_xml::Reader;
use quick_xml::events::Event;

/// Separates the iDRAC's own location from firmflow's fields. A fragment:
/// whatever reads the location as a URI still finds the job.
const MARK: &str = "#firmflow-repository?";

/// A repository job followed for one package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoHandle {
    /// JID of the `RepositoryUpdate` job (empty when only the child is known).
    pub repo: String,
    /// The location the iDRAC gave for the repository job, if any.
    pub base: Option<String>,
    /// JID of the package's own `FirmwareUpdate` child, once known.
    pub child: Option<String>,
    /// The package's component id.
    pub component_id: String,
    /// The version the package installs.
    pub version: String,
    /// The package's component name.
    pub name: String,
    /// The package's component kind.
    pub kind: ComponentKind,
}

impl RepoHandle {
    /// A handle on repository job `repo` for `package`.
    pub fn for_package(
        repo: impl Into<String>,
        base: Option<String>,
        child: Option<String>,
        package: &Package,
    ) -> Self {
        Self {
            repo: repo.into(),
            base,
            child,
            component_id: package.component_id.clone(),
            version: package.target_version.clone(),
            name: package.name.clone(),
            kind: package.kind,
        }
    }

    /// The core's handle: id is the repository job (the child when the
    /// repository job is unknown); the rest is encoded in the location.
    pub fn to_job(&self) -> JobHandle {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("repo", &self.repo);
        if let Some(c) = &self.child {
            q.append_pair("child", c);
        }
        q.append_pair("cid", &self.component_id);
        q.append_pair("ver", &self.version);
        q.append_pair("name", &self.name);
        q.append_pair("kind", kind_name(self.kind));
        let id = if self.repo.is_empty() {
            self.child.clone().unwrap_or_default()
        } else {
            self.repo.clone()
        };
        JobHandle {
            id,
            location: Some(format!(
                "{}{MARK}{}",
                self.base.as_deref().unwrap_or(""),
                q.finish()
            )),
        }
    }

    /// Reads a handle written by [`RepoHandle::to_job`]; `None` for any
    /// other handle (a plain job or task).
    pub fn parse(job: &JobHandle) -> Option<Self> {
        let loc = job.location.as_deref()?;
        let (base, query) = loc.split_once(MARK)?;
        let mut h = RepoHandle {
            repo: String::new(),
            base: (!base.is_empty()).then(|| base.to_string()),
            child: None,
            component_id: String::new(),
            version: String::new(),
            name: String::new(),
            kind: ComponentKind::Other,
        };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "repo" => h.repo = v.into_owned(),
                "child" if !v.is_empty() => h.child = Some(v.into_owned()),
                "cid" => h.component_id = v.into_owned(),
                "ver" => h.version = v.into_owned(),
                "name" => h.name = v.into_owned(),
                "kind" => h.kind = kind_from(&v),
                _ => {}
            }
        }
        if h.repo.is_empty() && h.child.is_none() {
            return None;
        }
        Some(h)
    }

    /// Whether a `GetRepoBasedUpdateList` entry is this package: the same
    /// component id, or (Dell lists PCI-matched devices with id `0`) the
    /// same name and version.
    pub fn entry_matches(&self, e: &RepoEntry) -> bool {
        let cid = self.component_id.trim();
        if !cid.is_empty() && cid != "0" && e.component_id.trim() == cid {
            return true;
        }
        let same_version = e.version.trim() == self.version.trim();
        let dn = e.display_name.to_ascii_lowercase();
        let pn = self.name.to_ascii_lowercase();
        let by_name = !pn.is_empty() && (dn == pn || dn.starts_with(&format!("{pn} - ")));
        same_version && by_name
    }
}

/// The serde (snake_case) spelling of a kind.
fn kind_name(k: ComponentKind) -> &'static str {
    match k {
        ComponentKind::Bmc => "bmc",
        ComponentKind::Bios => "bios",
        ComponentKind::Cpld => "cpld",
        ComponentKind::Storage => "storage",
        ComponentKind::Nic => "nic",
        ComponentKind::Drive => "drive",
        ComponentKind::PowerSupply => "power_supply",
        ComponentKind::Other => "other",
    }
}

fn kind_from(s: &str) -> ComponentKind {
    match s {
        "bmc" => ComponentKind::Bmc,
        "bios" => ComponentKind::Bios,
        "cpld" => ComponentKind::Cpld,
        "storage" => ComponentKind::Storage,
        "nic" => ComponentKind::Nic,
        "drive" => ComponentKind::Drive,
        "power_supply" => ComponentKind::PowerSupply,
        _ => ComponentKind::Other,
    }
}

/// One `DCIM_RepoUpdateSWID` of a `GetRepoBasedUpdateList` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoEntry {
    /// `DisplayName`.
    pub display_name: String,
    /// `ComponentID` (`0` for PCI-matched devices).
    pub component_id: String,
    /// `ComponentType` (`BIOS`, `FRMW`, …).
    pub component_type: String,
    /// `PackageVersion`.
    pub version: String,
    /// `RebootType` (`NONE`, `HOST`, `IDRAC`).
    pub reboot_type: String,
    /// `JobID` of the child job (empty when the list was only compared).
    pub job_id: String,
}

/// Parses the `PackageList` CIM XML. Unknown properties are ignored; a
/// document that is not XML is an error (named by the caller).
pub fn parse_package_list(xml: &str) -> Result<Vec<RepoEntry>, String> {
    let mut r = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut cur: Option<RepoEntry> = None;
    // The PROPERTY being read and its text so far (PROPERTY.ARRAY is skipped).
    let mut prop: Option<String> = None;
    let mut text = String::new();
    loop {
        let ev = r
            .read_event()
            .map_err(|e| format!("PackageList is not XML at byte {}: {e}", r.error_position()))?;
        match ev {
            Event::Start(e) => match e.local_name().as_ref() {
                b"INSTANCENAME" | b"INSTANCE" => cur = Some(RepoEntry::default()),
                b"PROPERTY" => {
                    prop = e
                        .try_get_attribute("NAME")
                        .ok()
                        .flatten()
                        .and_then(|a| a.unescape_value().ok())
                        .map(|v| v.into_owned());
                    text.clear();
                }
                _ => {}
            },
            Event::Text(t) if prop.is_some() => {
                text.push_str(&t.decode().map_err(|e| format!("PackageList text: {e}"))?);
            }
            Event::GeneralRef(g) if prop.is_some() => {
                if let Ok(Some(c)) = g.resolve_char_ref() {
                    text.push(c);
                } else {
                    let name = g.decode().map_err(|e| format!("PackageList text: {e}"))?;
                    text.push_str(match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"PROPERTY" => {
                    if let (Some(p), Some(c)) = (prop.take(), cur.as_mut()) {
                        let v = text.trim().to_string();
                        match p.as_str() {
                            "DisplayName" => c.display_name = v,
                            "ComponentID" => c.component_id = v,
                            "ComponentType" => c.component_type = v,
                            "PackageVersion" => c.version = v,
                            "RebootType" => c.reboot_type = v,
                            "JobID" => c.job_id = v,
                            _ => {}
                        }
                    }
                    text.clear();
                }
                b"INSTANCENAME" | b"INSTANCE" => {
                    if let Some(c) = cur.take() {
                        out.push(c);
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmflow_core::model::PackageSource;

    fn pkg(cid: &str, name: &str, kind: ComponentKind, ver: &str) -> Package {
        Package {
            component_id: cid.into(),
            name: name.into(),
            kind,
            target_version: ver.into(),
            installed_version: None,
            source: PackageSource::Repository {
                repository_uri: "https://downloads.dell.com/catalog".into(),
                catalog_file: "Catalog.xml".into(),
            },
            checksum: None,
            size_bytes: None,
            reboot_required: true,
            criticality: None,
        }
    }

    #[test]
    fn handle_round_trips_through_the_location() {
        let p = pkg("0", "Broadcom Gigabit & 10G", ComponentKind::Nic, "22.1");
        let h = RepoHandle::for_package(
            "JID_000000000001",
            Some("/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/JID_000000000001".into()),
            None,
            &p,
        );
        let j = h.to_job();
        assert_eq!(j.id, "JID_000000000001");
        assert!(
            j.location.as_deref().unwrap().starts_with(
                "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/JID_000000000001#"
            )
        );
        // Through the checkpoint's JSON and back.
        let back: JobHandle = serde_json::from_str(&serde_json::to_string(&j).unwrap()).unwrap();
        assert_eq!(RepoHandle::parse(&back), Some(h.clone()));
        let with_child = RepoHandle {
            child: Some("JID_000000000002".into()),
            base: None,
            ..h
        };
        assert_eq!(RepoHandle::parse(&with_child.to_job()), Some(with_child));
    }

    #[test]
    fn plain_handles_are_not_repository_handles() {
        assert_eq!(RepoHandle::parse(&JobHandle::new("JID_1")), None);
        let task = JobHandle {
            id: "JID_1".into(),
            location: Some("/redfish/v1/TaskService/Tasks/JID_1".into()),
        };
        assert_eq!(RepoHandle::parse(&task), None);
        let empty = JobHandle {
            id: "x".into(),
            location: Some("#firmflow-repository?cid=159".into()),
        };
        assert_eq!(RepoHandle::parse(&empty), None, "names no job");
    }

    #[test]
    fn parses_the_idrac9_package_list() {
        let xml =
            include_str!("../tests/fixtures/repo_based_update_list_packagelist_idrac9_6.10.xml");
        let list = parse_package_list(xml).unwrap();
        assert!(list.len() >= 2, "{list:?}");
        let bios = list.iter().find(|e| e.component_id == "159").unwrap();
        assert_eq!(bios.display_name, "BIOS");
        assert_eq!(bios.version, "1.10.2");
        assert_eq!(bios.reboot_type, "HOST");
        assert_eq!(bios.component_type, "BIOS");
        assert_eq!(bios.job_id, "", "a compare-only list names no job");
        let nic = &list[0];
        assert_eq!(nic.component_id, "105399");
        assert!(nic.display_name.starts_with("Mellanox ConnectX-6"));
    }

    #[test]
    fn entities_are_unescaped_and_garbage_is_an_error() {
        let xml = r#"<CIM><INSTANCENAME CLASSNAME="DCIM_RepoUpdateSWID"><PROPERTY NAME="DisplayName"><VALUE>A &amp; B &#65;</VALUE></PROPERTY><PROPERTY NAME="JobID"><VALUE>JID_1</VALUE></PROPERTY></INSTANCENAME></CIM>"#;
        let l = parse_package_list(xml).unwrap();
        assert_eq!(l[0].display_name, "A & B A");
        assert_eq!(l[0].job_id, "JID_1");
        assert!(parse_package_list("<CIM><INSTANCENAME></CIM>").is_err());
    }

    #[test]
    fn entries_match_by_component_id_or_by_name_and_version() {
        let bios = RepoHandle::for_package(
            "R",
            None,
            None,
            &pkg("159", "BIOS", ComponentKind::Bios, "1.10.2"),
        );
        let e = |cid: &str, name: &str, ver: &str| RepoEntry {
            component_id: cid.into(),
            display_name: name.into(),
            version: ver.into(),
            ..Default::default()
        };
        assert!(bios.entry_matches(&e("159", "BIOS", "1.10.2")));
        assert!(!bios.entry_matches(&e(
            "25227",
            "Integrated Dell Remote Access Controller",
            "1.10.2"
        )));
        let nic = RepoHandle::for_package(
            "R",
            None,
            None,
            &pkg("0", "Broadcom NetXtreme", ComponentKind::Nic, "22.1"),
        );
        assert!(nic.entry_matches(&e("0", "Broadcom NetXtreme - 00:11:22:33:44:55", "22.1")));
        assert!(!nic.entry_matches(&e("0", "Broadcom NetXtreme - 00:11:22:33:44:55", "21.0")));
        assert!(!nic.entry_matches(&e("0", "Intel X710", "22.1")));
    }
}
