//! Host configuration a simulated iDRAC keeps besides firmware: BIOS
//! attributes (current and pending), the one-time boot override, and the
//! iDRAC's own attributes (`DellAttributes/iDRAC.Embedded.1`).
//!
//! BIOS changes follow the real two-step flow: a PATCH of `Bios/Settings`
//! only stages values (pending); they become current when the host boots
//! while a `BIOSConfiguration` job for them is scheduled. Without such a job
//! the pending values stay pending across reboots, as on a real iDRAC.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use crate::fleet::Inner;
use crate::host::{self, Host, HostState, JobState, NewJob, Refusal};
use crate::messages;

/// Dell `JobType` of a BIOS configuration job.
pub(crate) const CONFIG_JOB: &str = "BIOSConfiguration";
/// Dell `Name` of a BIOS configuration job.
const CONFIG_JOB_NAME: &str = "ConfigBIOS:BIOS.Setup.1-1";
/// Dell seconds a config job runs during POST.
const CONFIG_SECS: f64 = 30.0;

/// What values a BIOS or iDRAC attribute accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AttrKind {
    /// One of these strings.
    Enum(&'static [&'static str]),
    /// An integer in this range.
    Int(i64, i64),
    /// Any string up to this length.
    Text(usize),
    /// Reported, never writable.
    ReadOnly,
}

/// One attribute of the table: name, kind, default value.
type AttrDef = (&'static str, AttrKind, Init);

/// A default value (or where it comes from).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Init {
    Str(&'static str),
    Int(i64),
    /// The host's model name.
    Model,
    /// The host's service tag.
    ServiceTag,
}

const ENABLED: &[&str] = &["Enabled", "Disabled"];

/// A realistic iDRAC9 (14G–16G) BIOS attribute set (names and values as
/// Dell's BIOS attribute registry spells them). `SystemBiosVersion` is
/// added at render time from the BIOS firmware component.
const BIOS_ATTRS: &[AttrDef] = &[
    (
        "AcPwrRcvry",
        AttrKind::Enum(&["Last", "On", "Off"]),
        Init::Str("Last"),
    ),
    (
        "AcPwrRcvryDelay",
        AttrKind::Enum(&["Immediate", "Random", "User"]),
        Init::Str("Immediate"),
    ),
    (
        "BootMode",
        AttrKind::Enum(&["Uefi", "Bios"]),
        Init::Str("Uefi"),
    ),
    (
        "BootSeqRetry",
        AttrKind::Enum(ENABLED),
        Init::Str("Enabled"),
    ),
    (
        "EmbSata",
        AttrKind::Enum(&["AhciMode", "RaidMode", "Off"]),
        Init::Str("AhciMode"),
    ),
    (
        "HddFailover",
        AttrKind::Enum(ENABLED),
        Init::Str("Disabled"),
    ),
    ("LogicalProc", AttrKind::Enum(ENABLED), Init::Str("Enabled")),
    ("MemTest", AttrKind::Enum(ENABLED), Init::Str("Disabled")),
    (
        "NodeInterleave",
        AttrKind::Enum(ENABLED),
        Init::Str("Disabled"),
    ),
    (
        "OsWatchdogTimer",
        AttrKind::Enum(ENABLED),
        Init::Str("Disabled"),
    ),
    ("ProcCStates", AttrKind::Enum(ENABLED), Init::Str("Enabled")),
    (
        "ProcTurboMode",
        AttrKind::Enum(ENABLED),
        Init::Str("Enabled"),
    ),
    (
        "ProcVirtualization",
        AttrKind::Enum(ENABLED),
        Init::Str("Enabled"),
    ),
    (
        "PxeDev1EnDis",
        AttrKind::Enum(ENABLED),
        Init::Str("Disabled"),
    ),
    ("SecureBoot", AttrKind::Enum(ENABLED), Init::Str("Disabled")),
    (
        "SerialComm",
        AttrKind::Enum(&["OnNoConRedir", "OnConRedirCom1", "OnConRedirCom2", "Off"]),
        Init::Str("OnNoConRedir"),
    ),
    (
        "SriovGlobalEnable",
        AttrKind::Enum(ENABLED),
        Init::Str("Disabled"),
    ),
    (
        "SysProfile",
        AttrKind::Enum(&[
            "PerfPerWattOptimizedDapc",
            "PerfPerWattOptimizedOs",
            "PerfOptimized",
            "DenseCfgOptimized",
            "Custom",
        ]),
        Init::Str("PerfPerWattOptimizedDapc"),
    ),
    ("SystemModelName", AttrKind::ReadOnly, Init::Model),
    ("SystemServiceTag", AttrKind::ReadOnly, Init::ServiceTag),
    (
        "TpmSecurity",
        AttrKind::Enum(&["Off", "On", "OnPbm", "OnNoPbm"]),
        Init::Str("On"),
    ),
    (
        "UefiVariableAccess",
        AttrKind::Enum(&["Standard", "Controlled"]),
        Init::Str("Standard"),
    ),
    (
        "WorkloadProfile",
        AttrKind::Enum(&["NotAvailable", "VtOptimized", "DbOptimized"]),
        Init::Str("NotAvailable"),
    ),
];

/// iDRAC attributes (`Group.Index.Name`, as `racadm get iDRAC.*` and the
/// DellAttributes resource spell them).
const IDRAC_ATTRS: &[AttrDef] = &[
    (
        "IPMILan.1.Enable",
        AttrKind::Enum(ENABLED),
        Init::Str("Disabled"),
    ),
    (
        "Info.1.Product",
        AttrKind::ReadOnly,
        Init::Str("Integrated Dell Remote Access Controller"),
    ),
    (
        "Info.1.Type",
        AttrKind::ReadOnly,
        Init::Str("14G Monolithic"),
    ),
    (
        "Lockdown.1.SystemLockdown",
        AttrKind::Enum(ENABLED),
        Init::Str("Disabled"),
    ),
    ("NTPConfigGroup.1.NTP1", AttrKind::Text(254), Init::Str("")),
    (
        "NTPConfigGroup.1.NTPEnable",
        AttrKind::Enum(ENABLED),
        Init::Str("Disabled"),
    ),
    (
        "Redfish.1.Enable",
        AttrKind::Enum(ENABLED),
        Init::Str("Enabled"),
    ),
    (
        "SNMP.1.AgentEnable",
        AttrKind::Enum(ENABLED),
        Init::Str("Enabled"),
    ),
    (
        "SSH.1.Enable",
        AttrKind::Enum(ENABLED),
        Init::Str("Enabled"),
    ),
    (
        "ServerPwr.1.PSRapidOn",
        AttrKind::Enum(ENABLED),
        Init::Str("Enabled"),
    ),
    ("Time.1.Timezone", AttrKind::Text(64), Init::Str("CST6CDT")),
    (
        "Users.2.Enable",
        AttrKind::Enum(ENABLED),
        Init::Str("Enabled"),
    ),
    ("Users.2.Privilege", AttrKind::Int(0, 511), Init::Int(511)),
    (
        "WebServer.1.Enable",
        AttrKind::Enum(ENABLED),
        Init::Str("Enabled"),
    ),
    (
        "WebServer.1.SessionTimeout",
        AttrKind::Int(60, 10800),
        Init::Int(1800),
    ),
];

/// `Boot.BootSourceOverrideTarget@Redfish.AllowableValues` of an iDRAC9.
pub(crate) const BOOT_TARGETS: &[&str] = &[
    "None",
    "Pxe",
    "Floppy",
    "Cd",
    "Hdd",
    "BiosSetup",
    "Utilities",
    "UefiTarget",
    "SDCard",
    "UefiHttp",
];
/// Values of `Boot.BootSourceOverrideEnabled`.
pub(crate) const BOOT_ENABLED: &[&str] = &["Once", "Continuous", "Disabled"];
/// Values of `Boot.BootSourceOverrideMode`.
pub(crate) const BOOT_MODES: &[&str] = &["UEFI", "Legacy"];
/// Values of `PowerRestorePolicy`, each with the BIOS `AcPwrRcvry` value it maps to.
pub(crate) const POWER_RESTORE: &[(&str, &str)] = &[
    ("AlwaysOn", "On"),
    ("AlwaysOff", "Off"),
    ("LastState", "Last"),
];

/// Why an attribute value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttrError {
    /// No such attribute.
    Unknown(String),
    /// The attribute is read-only.
    ReadOnly(String),
    /// The value has the wrong JSON type.
    Type(String, String),
    /// The value is not one the attribute accepts.
    NotInList(String, String),
}

/// The configuration state of one host.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Current BIOS attributes.
    pub(crate) bios: Attributes,
    /// Staged BIOS attributes (`Bios/Settings`), applied by a config job.
    pub(crate) bios_pending: BTreeMap<String, Value>,
    /// The scheduled `BIOSConfiguration` job, if any.
    pub(crate) bios_job: Option<String>,
    /// `Boot.BootSourceOverrideTarget`.
    pub(crate) boot_target: String,
    /// `Boot.BootSourceOverrideEnabled`.
    pub(crate) boot_enabled: String,
    /// `Boot.BootSourceOverrideMode`.
    pub(crate) boot_mode: String,
    /// iDRAC attributes.
    pub(crate) idrac: Attributes,
    /// Bumped on every change (render-cache key).
    pub(crate) generation: u64,
}

/// Attribute values: the factory defaults, shared by every host of the same
/// model and generation, under what this host holds of its own (its service
/// tag, and every value changed since). A fleet of 10,000 would otherwise
/// keep ~4 KB of identical defaults per host.
#[derive(Debug, Clone)]
pub(crate) struct Attributes {
    defaults: Arc<BTreeMap<String, Value>>,
    own: BTreeMap<String, Value>,
}

impl Attributes {
    /// Factory values of `table` for a host of `model` with `service_tag`;
    /// `extra` adds defaults of the table's model (the iDRAC's generation).
    fn factory(
        table: &'static [AttrDef],
        model: &str,
        service_tag: &str,
        extra: &[(&str, &str)],
    ) -> Attributes {
        type Key = (usize, String, Vec<(String, String)>);
        type Values = Arc<BTreeMap<String, Value>>;
        static SHARED: OnceLock<Mutex<HashMap<Key, Values>>> = OnceLock::new();
        let key: Key = (
            table.as_ptr() as usize,
            model.to_string(),
            extra
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        );
        let build = || {
            let mut d: BTreeMap<String, Value> = table
                .iter()
                .filter_map(|(name, _, init)| {
                    let v = match init {
                        Init::Str(s) => json!(s),
                        Init::Int(i) => json!(i),
                        Init::Model => json!(model),
                        Init::ServiceTag => return None,
                    };
                    Some(((*name).to_string(), v))
                })
                .collect();
            for (k, v) in extra {
                d.insert((*k).to_string(), json!(v));
            }
            Arc::new(d)
        };
        let defaults = SHARED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_insert_with(build)
            .clone();
        let own = table
            .iter()
            .filter(|(_, _, init)| matches!(init, Init::ServiceTag))
            .map(|(name, _, _)| ((*name).to_string(), json!(service_tag)))
            .collect();
        Attributes { defaults, own }
    }

    /// The current value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.own.get(name).or_else(|| self.defaults.get(name))
    }

    /// Sets `name` on this host.
    pub(crate) fn insert(&mut self, name: String, value: Value) {
        self.own.insert(name, value);
    }

    /// Sets each of `values` on this host.
    pub(crate) fn extend(&mut self, values: impl IntoIterator<Item = (String, Value)>) {
        self.own.extend(values);
    }

    /// Every current value, for a rendered document.
    pub(crate) fn to_map(&self) -> BTreeMap<String, Value> {
        let mut all = (*self.defaults).clone();
        all.extend(self.own.iter().map(|(k, v)| (k.clone(), v.clone())));
        all
    }
}

impl Config {
    /// Factory defaults for a host of `model` (name, generation) with `service_tag`.
    pub(crate) fn new(model: &str, generation: &str, service_tag: &str) -> Config {
        Config {
            bios: Attributes::factory(BIOS_ATTRS, model, service_tag, &[]),
            bios_pending: BTreeMap::new(),
            bios_job: None,
            boot_target: "None".into(),
            boot_enabled: "Disabled".into(),
            boot_mode: "UEFI".into(),
            idrac: Attributes::factory(
                IDRAC_ATTRS,
                model,
                service_tag,
                &[("Info.1.Type", generation)],
            ),
            generation: 1,
        }
    }

    /// `PowerRestorePolicy` as the BIOS `AcPwrRcvry` attribute sets it.
    pub(crate) fn power_restore_policy(&self) -> &'static str {
        let ac = self.bios.get("AcPwrRcvry").and_then(Value::as_str);
        POWER_RESTORE
            .iter()
            .find(|(_, bios)| Some(*bios) == ac)
            .map_or("LastState", |(policy, _)| policy)
    }

    /// Checks BIOS attribute changes against the attribute table.
    pub(crate) fn check_bios(changes: &serde_json::Map<String, Value>) -> Result<(), AttrError> {
        check(BIOS_ATTRS, changes)
    }

    /// Checks iDRAC attribute changes against the attribute table.
    pub(crate) fn check_idrac(changes: &serde_json::Map<String, Value>) -> Result<(), AttrError> {
        check(IDRAC_ATTRS, changes)
    }

    /// Applies the staged BIOS values (the config job runs at boot).
    pub(crate) fn apply_pending_bios(&mut self) {
        let pending = std::mem::take(&mut self.bios_pending);
        self.bios.extend(pending);
        self.bios_job = None;
        self.generation += 1;
    }

    /// At boot a one-time override is consumed.
    pub(crate) fn consume_boot_once(&mut self) {
        if self.boot_enabled == "Once" {
            self.boot_enabled = "Disabled".into();
            self.boot_target = "None".into();
            self.generation += 1;
        }
    }
}

/// Why a config job could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigRefusal {
    /// Nothing is staged.
    NothingPending,
    /// A config job for the staged values is already scheduled.
    AlreadyScheduled,
    /// The job queue refused it.
    Queue(Refusal),
}

impl HostState {
    /// Whether a BIOS config job is scheduled or running.
    pub(crate) fn bios_job_active(&self) -> bool {
        self.config
            .bios_job
            .as_deref()
            .and_then(|id| self.job(id))
            .is_some_and(|j| !j.state.finished())
    }
}

/// Creates the `BIOSConfiguration` job that applies the staged values at
/// the next boot (state `Scheduled`, `JCP001`).
pub(crate) fn create_config_job(
    host: &Host,
    inner: &Inner,
    st: &mut HostState,
) -> Result<String, ConfigRefusal> {
    if st.config.bios_pending.is_empty() {
        return Err(ConfigRefusal::NothingPending);
    }
    if st.bios_job_active() {
        return Err(ConfigRefusal::AlreadyScheduled);
    }
    let id = host::create_job(
        host,
        inner,
        st,
        NewJob {
            name: CONFIG_JOB_NAME.into(),
            job_type: CONFIG_JOB,
        },
    )
    .map_err(ConfigRefusal::Queue)?;
    let generation = st.bump();
    if let Some(j) = st.job_mut(&id) {
        j.state = JobState::Scheduled;
        j.msg = messages::JCP001;
        j.generation = generation;
    }
    st.config.bios_job = Some(id.clone());
    Ok(id)
}

/// Runs the scheduled config jobs during POST: the staged BIOS values become
/// current; a one-time boot override is consumed by this boot.
pub(crate) async fn run_config_jobs(inner: &Arc<Inner>, host: &Arc<Host>) {
    let jobs: Vec<String> = {
        let mut st = host.lock();
        st.config.consume_boot_once();
        st.jobs
            .iter()
            .filter(|j| j.job_type == CONFIG_JOB && j.state == JobState::Scheduled)
            .map(|j| j.id.clone())
            .collect()
    };
    for id in jobs {
        let now = inner.clock.now_job();
        let running = host::with_job(host, &id, |j| {
            j.state = JobState::Running;
            j.msg = messages::PR20;
            j.percent = 50;
            j.actual_start = Some(now);
        });
        if !running {
            continue;
        }
        inner.clock.sleep(CONFIG_SECS).await;
        {
            let mut st = host.lock();
            if st.config.bios_job.as_deref() == Some(id.as_str()) {
                st.config.apply_pending_bios();
            }
        }
        host::finish(
            host,
            inner,
            &id,
            JobState::Completed,
            messages::PR19,
            Vec::new(),
        );
    }
}

fn check(table: &[AttrDef], changes: &serde_json::Map<String, Value>) -> Result<(), AttrError> {
    for (name, value) in changes {
        let Some((_, kind, _)) = table.iter().find(|(n, _, _)| n == name) else {
            return Err(AttrError::Unknown(name.clone()));
        };
        let type_err = || AttrError::Type(value.to_string(), name.clone());
        let list_err = || AttrError::NotInList(value.to_string(), name.clone());
        match kind {
            AttrKind::ReadOnly => return Err(AttrError::ReadOnly(name.clone())),
            AttrKind::Enum(values) => {
                let s = value.as_str().ok_or_else(type_err)?;
                if !values.contains(&s) {
                    return Err(list_err());
                }
            }
            AttrKind::Int(lo, hi) => {
                let i = value.as_i64().ok_or_else(type_err)?;
                if i < *lo || i > *hi {
                    return Err(list_err());
                }
            }
            AttrKind::Text(max) => {
                let s = value.as_str().ok_or_else(type_err)?;
                if s.len() > *max {
                    return Err(list_err());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn attribute_checks() {
        assert_eq!(
            Config::check_bios(&map(json!({"BootMode": "Bios"}))),
            Ok(())
        );
        assert_eq!(
            Config::check_bios(&map(json!({"BootMode": "Floppy"}))),
            Err(AttrError::NotInList("\"Floppy\"".into(), "BootMode".into()))
        );
        assert_eq!(
            Config::check_bios(&map(json!({"NoSuch": "x"}))),
            Err(AttrError::Unknown("NoSuch".into()))
        );
        assert_eq!(
            Config::check_bios(&map(json!({"SystemServiceTag": "x"}))),
            Err(AttrError::ReadOnly("SystemServiceTag".into()))
        );
        assert_eq!(
            Config::check_idrac(&map(json!({"Users.2.Privilege": "x"}))),
            Err(AttrError::Type("\"x\"".into(), "Users.2.Privilege".into()))
        );
        assert_eq!(
            Config::check_idrac(&map(json!({"WebServer.1.SessionTimeout": 10}))),
            Err(AttrError::NotInList(
                "10".into(),
                "WebServer.1.SessionTimeout".into()
            ))
        );
    }

    #[test]
    fn pending_applies_and_power_policy_follows_bios() {
        let mut c = Config::new("PowerEdge R640", "14G Monolithic", "ABC1234");
        assert_eq!(c.power_restore_policy(), "LastState");
        c.bios_pending.insert("AcPwrRcvry".into(), json!("On"));
        assert_eq!(c.power_restore_policy(), "LastState");
        c.apply_pending_bios();
        assert_eq!(c.power_restore_policy(), "AlwaysOn");
        assert!(c.bios_pending.is_empty());
        c.boot_enabled = "Once".into();
        c.boot_target = "Pxe".into();
        c.consume_boot_once();
        assert_eq!(
            (c.boot_enabled.as_str(), c.boot_target.as_str()),
            ("Disabled", "None")
        );
    }

    #[test]
    fn hosts_of_a_model_share_defaults_and_keep_their_own_changes() {
        let mut a = Config::new("PowerEdge R650", "15G Monolithic", "AAA0001");
        let b = Config::new("PowerEdge R650", "15G Monolithic", "BBB0002");
        assert!(Arc::ptr_eq(&a.bios.defaults, &b.bios.defaults));
        assert!(Arc::ptr_eq(&a.idrac.defaults, &b.idrac.defaults));
        let other = Config::new("PowerEdge R750", "15G Monolithic", "CCC0003");
        assert!(!Arc::ptr_eq(&a.bios.defaults, &other.bios.defaults));

        assert_eq!(a.bios.get("SystemServiceTag"), Some(&json!("AAA0001")));
        assert_eq!(b.bios.get("SystemServiceTag"), Some(&json!("BBB0002")));
        assert_eq!(
            a.bios.get("SystemModelName"),
            Some(&json!("PowerEdge R650"))
        );
        assert_eq!(a.idrac.get("Info.1.Type"), Some(&json!("15G Monolithic")));

        a.bios.insert("AcPwrRcvry".into(), json!("On"));
        assert_eq!(a.bios.get("AcPwrRcvry"), Some(&json!("On")));
        assert_eq!(b.bios.get("AcPwrRcvry"), Some(&json!("Last")));
        let all = a.bios.to_map();
        assert_eq!(all.get("AcPwrRcvry"), Some(&json!("On")));
        assert_eq!(all.len(), BIOS_ATTRS.len());
    }
}
