//! The daemon's configuration: one TOML file (`--config`), overridden key by
//! key from the environment (`FIRMFLOWD_STORE__URL` sets `store.url`: the
//! prefix, then the key path with `__` between levels), with the embedded
//! default (memory store, 127.0.0.1:8080) when there is no file.
//!
//! Loading never stops at the first problem: every problem is collected
//! with its key path (`api.tokens[1].role: unknown variant ...`) so that
//! `firmflowd check-config` can list them all. Unknown keys are problems.

use firmflow_ops::{BmcSettings, VaultSettings};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The embedded default configuration (what runs without `--config`).
pub const DEFAULT_CONFIG: &str = "# firmflowd's embedded default: memory store, loopback API.\n\
[store]\nkind = \"memory\"\n\n[api]\nlisten = \"127.0.0.1:8080\"\n";

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "FIRMFLOWD_";

/// One problem in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Key path (`store.url`, `api.tokens[0].sha256`); `(file)` for the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
    }
}

/// The configuration could not be used; every problem is listed.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {} problem(s)\n{}", problems.len(), render(problems))]
pub struct ConfigError {
    /// The file (or `embedded default`).
    pub source_name: String,
    /// Every problem.
    pub problems: Vec<Problem>,
}

fn render(ps: &[Problem]) -> String {
    ps.iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which store holds the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In this process: state ends with it.
    #[default]
    Memory,
    /// PostgreSQL: shared by every daemon on the same database.
    Postgres,
}

/// `[store]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `memory` or `postgres`.
    #[serde(default)]
    pub kind: StoreKind,
    /// PostgreSQL URL (`postgres://user@host:5432/db`).
    #[serde(default)]
    pub url: Option<String>,
    /// Connections in the pool.
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    /// Schema of the firmflow tables.
    #[serde(default = "default_schema")]
    pub schema: String,
}

fn default_pool() -> u32 {
    8
}
fn default_schema() -> String {
    "firmflow".into()
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            url: None,
            pool_size: default_pool(),
            schema: default_schema(),
        }
    }
}

/// Polling profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Timing {
    /// Real BMCs: polls every few seconds.
    #[default]
    Real,
    /// The simulated fleet: polls in milliseconds.
    Sim,
}

/// `[executor]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSettings {
    /// Worker id prefix (a fresh suffix is added per process).
    #[serde(default = "default_worker")]
    pub worker_id: String,
    /// Runs this daemon drives at once.
    #[serde(default = "default_slots")]
    pub slots: usize,
    /// Lease time to live, seconds.
    #[serde(default = "default_lease")]
    pub lease_ttl_secs: u64,
    /// Heartbeat period, seconds.
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
    /// Polling profile.
    #[serde(default)]
    pub timing: Timing,
    /// Graceful shutdown: seconds to bring runs to safe points.
    #[serde(default = "default_grace")]
    pub grace_secs: u64,
}

fn default_worker() -> String {
    "firmflowd".into()
}
fn default_slots() -> usize {
    64
}
fn default_lease() -> u64 {
    60
}
fn default_heartbeat() -> u64 {
    10
}
fn default_grace() -> u64 {
    60
}

impl Default for ExecutorSettings {
    fn default() -> Self {
        Self {
            worker_id: default_worker(),
            slots: default_slots(),
            lease_ttl_secs: default_lease(),
            heartbeat_secs: default_heartbeat(),
            timing: Timing::Real,
            grace_secs: default_grace(),
        }
    }
}

/// `[credentials]`: `env:` and `file:` references always work; Vault when set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSettings {
    /// Vault for `vault:` references.
    #[serde(default)]
    pub vault: Option<VaultSettings>,
}

/// One vCenter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VcenterEndpoint {
    /// `https://vcenter.lab` (as the hosts' `vcenter_url` says).
    pub url: String,
    /// Credential reference (`env:VCENTER`, `file:…#entry`, `vault:…`).
    pub credential: String,
    /// Trust only these CAs.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate.
    #[serde(default)]
    pub insecure: bool,
}

/// `[vcenter]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VcenterSettings {
    /// The vCenters; none means no maintenance mode.
    #[serde(default)]
    pub endpoints: Vec<VcenterEndpoint>,
}

/// `[artifacts]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSettings {
    /// Default catalog for compliance (URL or file).
    #[serde(default)]
    pub catalog: Option<String>,
    /// Host replacing Dell's download hosts (a mirror or proxy).
    #[serde(default)]
    pub mirror: Option<String>,
    /// Package cache folder (default: a temporary folder per process).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

/// A role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads, creates and drives plans.
    Operator,
    /// Everything, hosts and credentials included.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        })
    }
}

/// One API token (`[[api.tokens]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Who holds it (the audit trail's actor).
    pub name: String,
    /// SHA-256 of the token, hex (`firmflowd hash-token`).
    pub sha256: String,
    /// Its role.
    pub role: Role,
    /// Only this datacenter's hosts (name or UUID).
    #[serde(default)]
    pub datacenter: Option<String>,
}

/// `[api.tls]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTls {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// `[api]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Listen address.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// HTTPS for the API.
    #[serde(default)]
    pub tls: Option<ApiTls>,
    /// Bearer tokens. None: anonymous admin, allowed on loopback only.
    #[serde(default)]
    pub tokens: Vec<TokenSettings>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            tls: None,
            tokens: Vec::new(),
        }
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Store.
    #[serde(default)]
    pub store: StoreSettings,
    /// Executor.
    #[serde(default)]
    pub executor: ExecutorSettings,
    /// BMCs (firmflow-ops' settings, shared with the CLI).
    #[serde(default)]
    pub bmc: BmcSettings,
    /// Credential providers.
    #[serde(default)]
    pub credentials: CredentialSettings,
    /// vCenters.
    #[serde(default)]
    pub vcenter: VcenterSettings,
    /// Artifact sources.
    #[serde(default)]
    pub artifacts: ArtifactSettings,
    /// HTTP API.
    #[serde(default)]
    pub api: ApiSettings,
}

impl Config {
    /// The listen address (validated by [`load`]).
    pub fn listen_addr(&self) -> Result<SocketAddr, Problem> {
        self.api
            .listen
            .parse()
            .map_err(|e| problem("api.listen", format!("{e}: expected IP:PORT")))
    }
}

/// SHA-256 hex of a token, as `[[api.tokens]] sha256` wants it.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Loads `path` (or the embedded default), applies `env` overrides and
/// `listen`, and validates; every problem is returned at once.
pub fn load(
    path: Option<&Path>,
    env: &[(String, String)],
    listen: Option<&str>,
) -> Result<Config, ConfigError> {
    let (name, text) = match path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (p.display().to_string(), t),
            Err(e) => {
                return Err(ConfigError {
                    source_name: p.display().to_string(),
                    problems: vec![problem("(file)", format!("cannot read: {e}"))],
                });
            }
        },
        None => ("embedded default".to_string(), DEFAULT_CONFIG.to_string()),
    };
    let fail = |problems| ConfigError {
        source_name: name.clone(),
        problems,
    };
    let mut table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let e: toml::de::Error = e;
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            return Err(fail(vec![problem(
                line.map(|l| format!("(line {l})"))
                    .unwrap_or_else(|| "(file)".into()),
                e.message().trim().to_string(),
            )]));
        }
    };
    let mut problems = Vec::new();
    apply_env(&mut table, env, &mut problems);
    if let Some(l) = listen {
        if let Some(api) = table
            .entry("api")
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
        {
            api.insert("listen".into(), toml::Value::String(l.to_string()));
        } else {
            problems.push(problem("api", "must be a table"));
        }
    }
    let config = deserialize_collecting(table, &mut problems);
    if let Some(c) = &config {
        let base = path.and_then(Path::parent).map(Path::to_path_buf);
        validate(c, base.as_deref(), &mut problems);
    }
    match config {
        Some(mut c) if problems.is_empty() => {
            anchor_paths(&mut c, path.and_then(Path::parent));
            Ok(c)
        }
        _ => Err(fail(problems)),
    }
}

/// The `FIRMFLOWD_*` variables of this process.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect()
}

fn apply_env(table: &mut toml::Table, env: &[(String, String)], problems: &mut Vec<Problem>) {
    for (k, raw) in env {
        let Some(rest) = k.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // FIRMFLOWD_LOG and friends are read elsewhere, not config keys.
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let key = path.join(".");
        let value = parse_env_value(raw);
        if let Err(seg) = set_path(table, &path, value) {
            problems.push(problem(
                format!("{key} (from {k})"),
                format!("{seg} is not a table"),
            ));
        }
    }
}

/// Sets `path` in `table`, making tables on the way; `Err(segment)` when a
/// segment on the way holds a value that is not a table.
fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            match entry.as_table_mut() {
                Some(next) => set_path(next, rest, value),
                None => Err(first.clone()),
            }
        }
    }
}

/// A number, boolean or array when it reads as one; else a string.
fn parse_env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_)),
            )
            | Some(v @ toml::Value::Array(_)) => v,
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Deserializes, recording each error with its path and removing the key to
/// blame, then trying again, so every unknown key and bad value is listed.
fn deserialize_collecting(mut table: toml::Table, problems: &mut Vec<Problem>) -> Option<Config> {
    for _ in 0..64 {
        let value = toml::Value::Table(table.clone());
        match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(c) => return Some(c),
            Err(e) => {
                let path = e.path().to_string();
                // toml appends "in `a.b`" on a second line: the key path says it.
                let message = e
                    .inner()
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let segs = segments(&path);
                let unknown = unknown_field_name(&message);
                // An unknown field is reported at its container or at itself.
                let mut target = segs.clone();
                if let Some(u) = &unknown
                    && target.last().map(|s| s != u).unwrap_or(true)
                {
                    target.push(u.clone());
                }
                let key = render_path(&target);
                let message = match &unknown {
                    Some(_) => format!("unknown key ({})", message.trim()),
                    None => message.trim().to_string(),
                };
                // A value removed for its own problem leaves its table
                // missing a field: already said, not said again.
                let consequence = message.starts_with("missing field")
                    && problems
                        .iter()
                        .any(|p| !key.is_empty() && p.key.starts_with(&key));
                if !consequence {
                    problems.push(problem(
                        if key.is_empty() { "(file)".into() } else { key },
                        message,
                    ));
                }
                if target.is_empty() || !remove_at(&mut table, &target) {
                    return None;
                }
            }
        }
    }
    None
}

fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next().map(str::to_string)
}

/// `api.tokens[1].role` → ["api", "tokens", "[1]", "role"].
fn segments(path: &str) -> Vec<String> {
    if path == "." || path.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut p = part;
        while let Some(i) = p.find('[') {
            let (head, tail) = p.split_at(i);
            if !head.is_empty() {
                out.push(head.to_string());
            }
            let end = tail.find(']').map(|e| e + 1).unwrap_or(tail.len());
            let (idx, rest) = tail.split_at(end);
            out.push(idx.to_string());
            p = rest;
        }
        if !p.is_empty() {
            out.push(p.to_string());
        }
    }
    out
}

fn render_path(segs: &[String]) -> String {
    let mut s = String::new();
    for seg in segs {
        if seg.starts_with('[') || s.is_empty() {
            s.push_str(seg);
        } else {
            s.push('.');
            s.push_str(seg);
        }
    }
    s
}

fn remove_at(table: &mut toml::Table, segs: &[String]) -> bool {
    let Some((last, parents)) = segs.split_last() else {
        return false;
    };
    let mut cur: &mut toml::Value = match parents.first() {
        Some(first) => match table.get_mut(first) {
            Some(v) => v,
            None => return false,
        },
        None => return table.remove(last).is_some(),
    };
    for seg in parents.iter().skip(1) {
        let next = match (seg.strip_prefix('['), cur) {
            (Some(idx), toml::Value::Array(a)) => {
                let Ok(i) = idx.trim_end_matches(']').parse::<usize>() else {
                    return false;
                };
                a.get_mut(i)
            }
            (None, toml::Value::Table(t)) => t.get_mut(seg),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (last.strip_prefix('['), cur) {
        (Some(idx), toml::Value::Array(a)) => match idx.trim_end_matches(']').parse::<usize>() {
            Ok(i) if i < a.len() => {
                a.remove(i);
                true
            }
            _ => false,
        },
        (None, toml::Value::Table(t)) => t.remove(last).is_some(),
        _ => false,
    }
}

fn validate(c: &Config, base: Option<&Path>, ps: &mut Vec<Problem>) {
    let resolve = |p: &Path| -> PathBuf {
        match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.to_path_buf(),
        }
    };
    let file_exists = |key: &str, p: &Path, ps: &mut Vec<Problem>| {
        let full = resolve(p);
        if !full.is_file() {
            ps.push(problem(
                key,
                format!("{} does not exist or is not a file", full.display()),
            ));
        }
    };
    // store
    match (c.store.kind, &c.store.url) {
        (StoreKind::Postgres, None) => ps.push(problem(
            "store.url",
            "required with kind = \"postgres\" (postgres://user@host:5432/db)",
        )),
        (StoreKind::Postgres, Some(u)) => match url::Url::parse(u) {
            Ok(parsed) if matches!(parsed.scheme(), "postgres" | "postgresql") => {}
            Ok(parsed) => ps.push(problem(
                "store.url",
                format!(
                    "scheme {:?}: expected postgres:// or postgresql://",
                    parsed.scheme()
                ),
            )),
            Err(e) => ps.push(problem("store.url", format!("not a URL: {e}"))),
        },
        (StoreKind::Memory, Some(_)) => ps.push(problem(
            "store.url",
            "set, but store.kind is \"memory\": set kind = \"postgres\" or remove the URL",
        )),
        (StoreKind::Memory, None) => {}
    }
    if c.store.pool_size == 0 {
        ps.push(problem("store.pool_size", "must be at least 1"));
    }
    let schema_ok = !c.store.schema.is_empty()
        && c.store
            .schema
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !c.store.schema.starts_with(|ch: char| ch.is_ascii_digit());
    if !schema_ok {
        ps.push(problem(
            "store.schema",
            "must be a plain SQL identifier (letters, digits, _)",
        ));
    }
    // executor
    let e = &c.executor;
    if e.slots == 0 {
        ps.push(problem("executor.slots", "must be at least 1"));
    }
    if e.lease_ttl_secs < 3 {
        ps.push(problem("executor.lease_ttl_secs", "must be at least 3"));
    }
    if e.heartbeat_secs == 0 || e.heartbeat_secs.saturating_mul(2) >= e.lease_ttl_secs {
        ps.push(problem(
            "executor.heartbeat_secs",
            format!(
                "must be at least 1 and less than half of lease_ttl_secs ({})",
                e.lease_ttl_secs
            ),
        ));
    }
    if e.worker_id.trim().is_empty() {
        ps.push(problem("executor.worker_id", "must not be empty"));
    }
    // bmc
    if let Err(err) = c.bmc.validate() {
        ps.push(problem("bmc", err.to_string()));
    }
    if let Some(f) = &c.bmc.tls.ca_file {
        file_exists("bmc.tls.ca_file", f, ps);
    }
    for (h, s) in &c.bmc.hosts {
        if let Some(f) = s.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
            file_exists(&format!("bmc.hosts.\"{h}\".tls.ca_file"), f, ps);
        }
    }
    if let Some(r) = &c.bmc.credential
        && let Err(err) = firmflow_ops::bmc::check_reference(r)
    {
        ps.push(problem("bmc.credential", err.to_string()));
    }
    // credentials
    if let Some(v) = &c.credentials.vault {
        if let Some(a) = &v.address
            && url::Url::parse(a).is_err()
        {
            ps.push(problem("credentials.vault.address", "not a URL"));
        }
        if let Some(f) = &v.ca_file {
            file_exists("credentials.vault.ca_file", f, ps);
        }
    }
    // vcenter
    let mut urls = BTreeSet::new();
    for (i, ep) in c.vcenter.endpoints.iter().enumerate() {
        let k = format!("vcenter.endpoints[{i}]");
        match url::Url::parse(&ep.url) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => ps.push(problem(format!("{k}.url"), "expected https://vcenter.host")),
        }
        if !urls.insert(ep.url.trim_end_matches('/').to_string()) {
            ps.push(problem(format!("{k}.url"), "listed twice"));
        }
        if let Err(err) = firmflow_ops::bmc::check_reference(&ep.credential) {
            ps.push(problem(format!("{k}.credential"), err.to_string()));
        }
        if let Some(f) = &ep.ca_file {
            file_exists(&format!("{k}.ca_file"), f, ps);
        }
        if ep.ca_file.is_some() && ep.insecure {
            ps.push(problem(
                format!("{k}.insecure"),
                "choose one of ca_file and insecure",
            ));
        }
    }
    // api
    let listen = c.listen_addr();
    if let Err(p) = &listen {
        ps.push(p.clone());
    }
    if let Some(tls) = &c.api.tls {
        // Relative files are read from the config file's folder, as at start.
        let at = |f: &PathBuf| match base {
            Some(b) if f.is_relative() => b.join(f),
            _ => f.clone(),
        };
        let tls = ApiTls {
            cert_file: at(&tls.cert_file),
            key_file: at(&tls.key_file),
        };
        if let Err(e) = crate::tls::server_config(&tls) {
            ps.push(problem(e.key(), e.detail()));
        }
    }
    let mut names = BTreeSet::new();
    let mut hashes = BTreeSet::new();
    for (i, t) in c.api.tokens.iter().enumerate() {
        let k = format!("api.tokens[{i}]");
        if t.name.trim().is_empty() {
            ps.push(problem(format!("{k}.name"), "must not be empty"));
        } else if !names.insert(t.name.clone()) {
            ps.push(problem(
                format!("{k}.name"),
                format!("{:?} is used twice", t.name),
            ));
        }
        let h = t.sha256.to_ascii_lowercase();
        if h.len() != 64 || !h.chars().all(|ch| ch.is_ascii_hexdigit()) {
            ps.push(problem(
                format!("{k}.sha256"),
                "must be 64 hex digits: the SHA-256 of the token (`firmflowd hash-token`)",
            ));
        } else if !hashes.insert(h) {
            ps.push(problem(format!("{k}.sha256"), "the same token twice"));
        }
        if let Some(d) = &t.datacenter
            && d.trim().is_empty()
        {
            ps.push(problem(format!("{k}.datacenter"), "must not be empty"));
        }
    }
    let tokens_refused = ps.iter().any(|p| p.key.starts_with("api.tokens"));
    if c.api.tokens.is_empty()
        && !tokens_refused
        && let Ok(addr) = listen
        && !addr.ip().is_loopback()
    {
        ps.push(problem(
            "api.tokens",
            format!(
                "none configured while listening on {addr}: without tokens the API is open \
                 (anonymous admin), which firmflowd allows on loopback only"
            ),
        ));
    }
}

fn anchor_paths(c: &mut Config, base: Option<&Path>) {
    let Some(base) = base else { return };
    let anchor = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
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
    if let Some(v) = c.credentials.vault.as_mut()
        && let Some(f) = v.ca_file.as_mut()
    {
        anchor(f);
    }
    for ep in &mut c.vcenter.endpoints {
        if let Some(f) = ep.ca_file.as_mut() {
            anchor(f);
        }
        anchor_file_ref(&mut ep.credential, base);
    }
    if let Some(t) = c.api.tls.as_mut() {
        anchor(&mut t.cert_file);
        anchor(&mut t.key_file);
    }
    if let Some(d) = c.artifacts.cache_dir.as_mut() {
        anchor(d);
    }
    if let Some(r) = c.bmc.credential.as_mut() {
        anchor_file_ref(r, base);
    }
}

/// `file:relative.toml#x` becomes `file:<dir>/relative.toml#x`.
fn anchor_file_ref(reference: &mut String, dir: &Path) {
    if let Some(rest) = reference.strip_prefix("file:")
        && !rest.starts_with('/')
    {
        *reference = format!("file:{}", dir.join(rest).display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("firmflowd.toml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn embedded_default_is_memory_on_loopback() {
        let c = load(None, &[], None).unwrap();
        assert_eq!(c.store.kind, StoreKind::Memory);
        assert_eq!(c.listen_addr().unwrap().to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let (_d, p) = write(
            "[store]\nkind = \"postgres\"\npool_size = \"many\"\ncolour = 1\n\
             [executor]\nslots = 0\n[api]\nlisten = \"nowhere\"\nbogus = true\n\
             [[api.tokens]]\nname = \"ci\"\nsha256 = \"abc\"\nrole = \"root\"\n",
        );
        let e = load(Some(&p), &[], None).unwrap_err();
        let keys: Vec<&str> = e.problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "store.pool_size",
            "store.colour",
            "api.bogus",
            "api.tokens[0].role",
        ] {
            assert!(keys.contains(&k), "{k} missing in {e}");
        }
        // The semantic problems need a parsed file; the type errors come first.
        assert!(e.problems.len() >= 4, "{e}");
    }

    #[test]
    fn semantic_problems_are_all_listed() {
        let (_d, p) = write(
            "[store]\nkind = \"postgres\"\n[executor]\nslots = 0\nlease_ttl_secs = 10\nheartbeat_secs = 6\n\
             [api]\nlisten = \"0.0.0.0:80\"\n",
        );
        let e = load(Some(&p), &[], None).unwrap_err();
        let keys: Vec<&str> = e.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "store.url",
                "executor.slots",
                "executor.heartbeat_secs",
                "api.tokens"
            ],
            "{e}"
        );
    }

    #[test]
    fn environment_overrides_keys_and_listen_wins() {
        let env = vec![
            ("FIRMFLOWD_EXECUTOR__SLOTS".to_string(), "7".to_string()),
            (
                "FIRMFLOWD_API__LISTEN".to_string(),
                "127.0.0.1:9999".to_string(),
            ),
        ];
        let c = load(None, &env, None).unwrap();
        assert_eq!(c.executor.slots, 7);
        assert_eq!(c.api.listen, "127.0.0.1:9999");
        let c = load(None, &env, Some("127.0.0.1:1234")).unwrap();
        assert_eq!(c.api.listen, "127.0.0.1:1234");
        let bad = vec![("FIRMFLOWD_STORE__KIND".to_string(), "oracle".to_string())];
        let e = load(None, &bad, None).unwrap_err();
        assert_eq!(e.problems[0].key, "store.kind", "{e}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let (_d, p) = write("[store]\nkind = \n");
        let e = load(Some(&p), &[], None).unwrap_err();
        assert!(e.problems[0].key.contains("line 2"), "{e}");
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            hash_token("secret"),
            "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
    }
}
