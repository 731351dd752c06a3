//! The `firmflow` configuration file (`--config`, `FIRMFLOW_CONFIG`): BMC
//! settings (firmflow-ops' [`BmcSettings`]), Vault, vCenter, and executor
//! timing. Every key is optional; unknown keys are refused (usually a typo).
//!
//! ```toml
//! timing = "real"                 # or "sim": short polls for `firmflow sim`
//!
//! [bmc]                           # see firmflow_ops::bmc
//! credential = "file:/etc/firmflow/idrac.toml#prod"
//! [bmc.tls]
//! ca_file = "/etc/firmflow/idrac-ca.pem"
//!
//! [vault]
//! address = "https://vault.lab:8200"
//!
//! [vcenter]
//! credential = "env:VCENTER"      # VCENTER_USERNAME / VCENTER_PASSWORD
//! # ca_file = "/etc/firmflow/vcenter-ca.pem"
//! # insecure = false
//! # simulated = true              # an in-process stand-in (for `firmflow sim` only)
//!
//! [executor]
//! # lease_secs = 60
//! # slots = 64
//! ```

use anyhow::Context as _;
use firmflow_ops::{BmcSettings, VaultSettings};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Polling and lease timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Timing {
    /// Real BMCs: polls every few seconds, 60 s leases.
    #[default]
    Real,
    /// The simulated fleet (`firmflow sim`): polls in milliseconds, 5 s leases.
    Sim,
}

/// vCenter settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VcenterSettings {
    /// Credential reference (kind vcenter) for every vCenter.
    #[serde(default)]
    pub credential: Option<String>,
    /// Per vCenter URL: its own credential reference.
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
    /// Trust only these CAs.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (logged).
    #[serde(default)]
    pub insecure: bool,
    /// Use an in-process simulated vCenter (for the simulated fleet only:
    /// it knows nothing of real clusters and forgets everything at exit).
    #[serde(default)]
    pub simulated: bool,
}

/// Executor settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSettings {
    /// Lease time to live, seconds.
    #[serde(default)]
    pub lease_secs: Option<u64>,
    /// Runs driven at once by this process.
    #[serde(default)]
    pub slots: Option<usize>,
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Timing profile.
    #[serde(default)]
    pub timing: Option<Timing>,
    /// BMCs.
    #[serde(default)]
    pub bmc: BmcSettings,
    /// Vault for `vault:` references.
    #[serde(default)]
    pub vault: Option<VaultSettings>,
    /// vCenter.
    #[serde(default)]
    pub vcenter: Option<VcenterSettings>,
    /// Executor.
    #[serde(default)]
    pub executor: ExecutorSettings,
    /// Where the file was (relative paths in it are relative to its folder).
    #[serde(skip)]
    pub dir: Option<PathBuf>,
}

impl Config {
    /// Reads the file; relative paths inside are anchored at its folder.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut c: Config = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map(|l| format!(":{l}")).unwrap_or_default();
            anyhow::anyhow!("{}{at}: {}", path.display(), e.message().trim())
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let anchor = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(f) = c.bmc.tls.ca_file.as_mut() {
            anchor(f);
        }
        for h in c.bmc.hosts.values_mut() {
            if let Some(f) = h.tls.as_mut().and_then(|t| t.ca_file.as_mut()) {
                anchor(f);
            }
        }
        if let Some(v) = c.vcenter.as_mut()
            && let Some(f) = v.ca_file.as_mut()
        {
            anchor(f);
        }
        if let Some(v) = c.vault.as_mut()
            && let Some(f) = v.ca_file.as_mut()
        {
            anchor(f);
        }
        // `file:` credential references relative to the config's folder.
        if let Some(r) = c.bmc.credential.as_mut() {
            anchor_file_ref(r, &dir);
        }
        if let Some(v) = c.vcenter.as_mut() {
            if let Some(r) = v.credential.as_mut() {
                anchor_file_ref(r, &dir);
            }
            for r in v.credentials.values_mut() {
                anchor_file_ref(r, &dir);
            }
        }
        c.dir = Some(dir);
        c.bmc
            .validate()
            .with_context(|| format!("config {}", path.display()))?;
        Ok(c)
    }
}

/// `file:relative.toml#x` becomes `file:<dir>/relative.toml#x`.
pub fn anchor_file_ref(reference: &mut String, dir: &Path) {
    if let Some(rest) = reference.strip_prefix("file:")
        && !rest.starts_with('/')
        && !dir.as_os_str().is_empty()
    {
        *reference = format!("file:{}", dir.join(rest).display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("firmflow.toml");
        std::fs::write(
            &p,
            "timing = \"sim\"\n[bmc]\ncredential = \"file:idrac.toml#lab\"\n[bmc.tls]\nca_file = \"ca.pem\"\n[vcenter]\nsimulated = true\n",
        )
        .unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.timing, Some(Timing::Sim));
        assert_eq!(c.bmc.tls.ca_file, Some(dir.path().join("ca.pem")));
        assert_eq!(
            c.bmc.credential,
            Some(format!(
                "file:{}#lab",
                dir.path().join("idrac.toml").display()
            ))
        );
        assert!(c.vcenter.unwrap().simulated);
    }

    #[test]
    fn typos_are_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("firmflow.toml");
        std::fs::write(&p, "[bmc]\ncredentail = \"env:X\"\n").unwrap();
        let e = format!("{:#}", Config::load(&p).unwrap_err());
        assert!(e.contains("firmflow.toml:2"), "{e}");
        assert!(e.contains("credentail"), "{e}");
    }
}
