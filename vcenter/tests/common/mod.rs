//! The vcsim harness shared by the vCenter tests: builds (through
//! `tests/vcsim/prepare.sh`) and starts govmomi's vCenter simulator with a
//! control endpoint, so tests can read and change the simulated world
//! behind the client's back.

// Each test binary uses part of the harness.
#![allow(dead_code, unreachable_pub)]

use firmflow_core::credentials::Credential;
use firmflow_core::model::{ClusterKey, Host, HostId, MgmtKind};
use firmflow_vcenter::{Auth, TlsOptions, VcenterClusterManager, VcenterConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct SimHost {
    pub moid: String,
    pub name: String,
    #[serde(default)]
    pub cluster: String,
    pub service_tag: String,
    pub connection: String,
    pub in_maintenance: bool,
    pub online: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SimCluster {
    pub moid: String,
    pub name: String,
    pub hosts: Vec<SimHost>,
}

#[derive(Debug, Deserialize)]
pub struct Hello {
    pub url: String,
    pub username: String,
    pub password: String,
    pub control: String,
    pub ca_file: String,
    pub clusters: Vec<SimCluster>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transition {
    pub host: String,
    pub maintenance: bool,
}

#[derive(Debug, Deserialize)]
pub struct SimState {
    pub clusters: Vec<SimCluster>,
    pub low_water: BTreeMap<String, usize>,
    pub transitions: Option<Vec<Transition>>,
}

impl SimState {
    pub fn host(&self, moid: &str) -> &SimHost {
        self.clusters
            .iter()
            .flat_map(|c| &c.hosts)
            .find(|h| h.moid == moid)
            .unwrap_or_else(|| panic!("vcsim has no host {moid}"))
    }
    pub fn online(&self, cluster: &str) -> usize {
        self.clusters
            .iter()
            .filter(|c| c.moid == cluster)
            .flat_map(|c| &c.hosts)
            .filter(|h| h.online)
            .count()
    }
}

/// The launcher, built once per test process by prepare.sh.
pub fn launcher() -> &'static PathBuf {
    static LAUNCHER: OnceLock<PathBuf> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vcsim/prepare.sh");
        // prepare.sh installs the Debian packages if needed and rebuilds only
        // when main.go is newer than the binary; it prints the binary's path.
        let out = Command::new("sh")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}); the vcsim tests need golang-go and golang-github-vmware-govmomi-dev",
            script.display(),
            out.status
        );
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
        assert!(
            path.is_file(),
            "prepare.sh reported {path:?}, which is not a file"
        );
        path
    })
}

pub struct Vcsim {
    child: Child,
    _stdin: ChildStdin,
    pub hello: Hello,
    http: reqwest::Client,
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vcsim {
    pub fn start(clusters: u32, hosts: u32) -> Vcsim {
        // The simulator's log goes to a file, shown if the launcher fails.
        let log = tempfile_path("vcsim-launcher", "log");
        let mut child = Command::new(launcher())
            .args([
                "-cluster",
                &clusters.to_string(),
                "-host",
                &hosts.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("launcher log file"))
            .spawn()
            .expect("start vcsim launcher");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the launcher's hello line");
        let hello: Hello = serde_json::from_str(&line).unwrap_or_else(|e| {
            let err = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("launcher hello {line:?}: {e}\nlauncher stderr:\n{err}")
        });
        let _ = std::fs::remove_file(&log);
        Vcsim {
            child,
            _stdin: stdin,
            hello,
            http: reqwest::Client::new(),
        }
    }

    pub fn credential(&self) -> Credential {
        Credential::new(&self.hello.username, &self.hello.password)
    }

    pub fn config_with(&self, cred: Credential) -> VcenterConfig {
        VcenterConfig::new(&self.hello.url, Auth::Credential(cred))
            .with_tls(TlsOptions {
                ca_file: Some(self.hello.ca_file.clone().into()),
                accept_invalid_certs: false,
            })
            .with_task_poll(Duration::from_millis(20), Duration::from_millis(100))
    }

    pub fn config(&self) -> VcenterConfig {
        self.config_with(self.credential())
    }

    pub fn manager(&self) -> VcenterClusterManager {
        VcenterClusterManager::from_configs([self.config()]).expect("manager")
    }

    pub async fn ctl(&self, path: &str) -> serde_json::Value {
        let r = self
            .http
            .post(format!("{}{path}", self.hello.control))
            .send()
            .await
            .expect("control endpoint");
        assert!(r.status().is_success(), "control {path}: {}", r.status());
        r.json().await.expect("control json")
    }

    pub async fn state(&self) -> SimState {
        self.http
            .get(format!("{}/state", self.hello.control))
            .send()
            .await
            .expect("state")
            .json()
            .await
            .expect("state json")
    }

    pub fn cluster(&self, i: usize) -> &SimCluster {
        &self.hello.clusters[i]
    }

    pub fn key(&self, i: usize) -> ClusterKey {
        ClusterKey {
            vcenter_url: self.hello.url.clone(),
            cluster_moid: self.cluster(i).moid.clone(),
        }
    }

    /// A firmflow host record already mapped to a simulated host.
    pub fn mapped_host(&self, h: &SimHost) -> Host {
        let mut host = unmapped(&h.name, Some(&h.service_tag));
        host.vcenter_url = Some(self.hello.url.clone());
        host.cluster_moid = Some(h.cluster.clone());
        host.host_moid = Some(h.moid.clone());
        host
    }
}

pub fn tempfile_path(stem: &str, ext: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::env::temp_dir().join(format!("{stem}-{}-{n}.{ext}", std::process::id()))
}

pub fn unmapped(fqdn: &str, tag: Option<&str>) -> Host {
    let now = chrono::Utc::now();
    Host {
        id: HostId::new(),
        fqdn: fqdn.into(),
        mgmt_ip: "192.0.2.10".into(),
        model: Some("PowerEdge R650".into()),
        service_tag: tag.map(Into::into),
        mgmt_kind: MgmtKind::Idrac,
        vcenter_url: None,
        cluster_moid: None,
        host_moid: None,
        tags: vec![],
        datacenter_id: None,
        created_at: now,
        updated_at: now,
    }
}
