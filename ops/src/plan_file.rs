//! Plan files: a campaign written by an operator, in TOML or JSON, turned
//! into the core's [`NewPlan`] once its targets are matched against the
//! registered hosts. Every problem names the line to fix.
//!
//! ```toml
//! name = "BIOS and iDRAC, cluster A"
//! mode = "LATEST_FROM_CATALOG"          # or SPECIFIC_PACKAGE, MULTIPART_FILE
//! catalog = "https://downloads.dell.com/catalog/Catalog.xml.gz"
//! approval_required = true              # the default in a plan file
//! # idempotency_key = "change-4711"     # default: a fingerprint of this file
//!
//! [targets]                             # kinds combine with AND, values with OR
//! clusters = ["domain-c7"]
//! tags = ["rack-a"]
//! # hosts = ["esx01.lab", "10.0.0.12"]  # fqdn, mgmt_ip or host id
//! # datacenters = ["dc1"]
//! # all = true
//! exclude = ["esx09.lab"]
//! priority = { "esx01.lab" = 10 }       # higher first: a canary
//!
//! [window]                              # optional maintenance window (UTC)
//! start = 2025-01-18T22:00:00Z
//! end = 2025-01-19T06:00:00Z
//!
//! [policy]                              # the seed's policy, camelCase
//! maxConcurrent = 2
//! minHostsOnline = 2
//! requireMaintenanceMode = true
//! rollbackOnFailure = true
//! preflightChecks = ["connectivity", "compatibility", "cluster_health"]
//! postUpdateValidation = ["firmware_version", "system_health"]
//!
//! # SPECIFIC_PACKAGE / MULTIPART_FILE instead of a catalog:
//! # [[packages]]
//! # component = "159"
//! # image_uri = "https://repo.lab/BIOS_XYZ.EXE"   # MULTIPART_FILE: a local path
//! # version = "2.19.1"
//! # checksum = "sha256:…"
//! ```
//!
//! `mode` may be left out: a `catalog` means `LATEST_FROM_CATALOG`,
//! `packages` mean `SPECIFIC_PACKAGE`. `mode` and `catalog` may also be
//! written inside `[policy]` as `updateMode` / `catalogUrl`. A relative
//! `MULTIPART_FILE` path is relative to the plan file.

use crate::doc::{self, Entry, Node, Val};
use crate::hosts::datacenter_id;
use chrono::{DateTime, Utc};
use firmflow_core::model::{
    Artifact, ArtifactId, ClusterKey, Host, MaintenanceWindow, NewPlan, PlanTarget, Policy,
    UpdateMode,
};
use firmflow_core::policy::{InvalidPlan, ValidationContext, validate_plan};
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The formats of a plan file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanFormat {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl PlanFormat {
    /// The format from a file name (`.toml`, `.json`), if it says.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("toml") => Some(Self::Toml),
            Some("json") => Some(Self::Json),
            _ => None,
        }
    }
}

/// One problem in a plan file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProblem {
    /// 1-based line, when the problem sits somewhere in particular.
    pub line: Option<usize>,
    /// The field (`policy.maxConcurrent`, `targets.tags[1]`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a plan file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file name says neither TOML nor JSON.
    #[error("{}: cannot tell the format; name the file .toml or .json", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The plan is wrong; every problem is listed.
    #[error("{}", render(file, problems))]
    Invalid {
        /// The file (as given).
        file: String,
        /// Every problem, in line order.
        problems: Vec<FileProblem>,
    },
}

impl PlanFileError {
    /// The problems, when the plan itself is wrong.
    pub fn problems(&self) -> &[FileProblem] {
        match self {
            PlanFileError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render(file: &str, problems: &[FileProblem]) -> String {
    let mut s = format!(
        "{file}: {} problem{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  ");
        s.push_str(file);
        if let Some(l) = p.line {
            s.push_str(&format!(":{l}"));
        }
        s.push_str(&format!(": {}: {}", p.field, p.message));
    }
    s
}

/// Which hosts a plan targets. Kinds given together must all match (AND);
/// the values of one kind are alternatives (OR); `exclude` removes hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetSpec {
    /// Every registered host.
    pub all: bool,
    /// Hosts by fqdn, management address or host id.
    pub hosts: Vec<String>,
    /// Hosts carrying one of these tags.
    pub tags: Vec<String>,
    /// Hosts in one of these clusters (`domain-c7` or `https://vc#domain-c7`).
    pub clusters: Vec<String>,
    /// Hosts in one of these datacenters (name or UUID).
    pub datacenters: Vec<String>,
    /// Hosts left out.
    pub exclude: Vec<String>,
    /// Priorities by host (higher runs first); others get 0.
    pub priority: BTreeMap<String, i32>,
}

/// A parsed plan file, before its targets are matched to hosts.
#[derive(Clone, Debug)]
pub struct PlanFile {
    /// The file name as given (for messages).
    pub source: String,
    /// Plan name.
    pub name: String,
    /// Policy, mode and catalog included.
    pub policy: Policy,
    /// Maintenance window.
    pub window: Option<MaintenanceWindow>,
    /// Whether `approve` is needed before `start` (default `true`).
    pub approval_required: bool,
    /// As written; see [`PlanFile::idempotency_key`] for the effective one.
    pub idempotency_key: Option<String>,
    /// Targets.
    pub targets: TargetSpec,
    /// Packages (`SPECIFIC_PACKAGE` / `MULTIPART_FILE`).
    pub artifacts: Vec<Artifact>,
    fingerprint: String,
    root: Node,
}

/// Reads and parses a plan file (format from its extension).
pub fn read(path: &Path) -> Result<PlanFile, PlanFileError> {
    let format = PlanFormat::from_path(path).ok_or_else(|| PlanFileError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let text = std::fs::read_to_string(path).map_err(|source| PlanFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, format, &path.display().to_string(), path.parent())
}

/// Parses a plan from text. `source` names it in messages; `base_dir`
/// anchors relative `MULTIPART_FILE` paths.
pub fn parse(
    text: &str,
    format: PlanFormat,
    source: &str,
    base_dir: Option<&Path>,
) -> Result<PlanFile, PlanFileError> {
    let root = match format {
        PlanFormat::Toml => doc::parse_toml(text),
        PlanFormat::Json => doc::parse_json(text),
    }
    .map_err(|e| invalid(source, vec![prob(e.line, "syntax", e.message)]))?;
    let mut ps = Vec::new();
    let Some(entries) = root.entries() else {
        return Err(invalid(
            source,
            vec![prob(
                Some(root.line),
                "plan",
                format!(
                    "expected a table of plan fields, found {}",
                    root.type_name()
                ),
            )],
        ));
    };
    let mut fields = Fields::default();
    for e in entries {
        match e.key.as_str() {
            "name" => fields.name = Some(e),
            "mode" => fields.mode = Some(e),
            "catalog" => fields.catalog = Some(e),
            "approval_required" | "approvalRequired" => fields.approval = Some(e),
            "idempotency_key" | "idempotencyKey" => fields.key = Some(e),
            "targets" => fields.targets = Some(e),
            "packages" | "artifacts" => fields.packages = Some(e),
            "policy" => fields.policy = Some(e),
            "window" | "maintenance_window" | "maintenanceWindow" => fields.window = Some(e),
            other => ps.push(prob(
                Some(e.line),
                other,
                "unknown field; expected name, mode, catalog, approval_required, \
                 idempotency_key, targets, packages, policy, window",
            )),
        }
    }
    let name = match fields.name {
        Some(e) => string(e, "name", &mut ps).unwrap_or_default(),
        None => {
            ps.push(prob(Some(root.line), "name", "missing (required)"));
            String::new()
        }
    };
    let approval_required = fields
        .approval
        .and_then(|e| boolean(e, "approval_required", &mut ps))
        .unwrap_or(true);
    let idempotency_key = fields
        .key
        .and_then(|e| string(e, "idempotency_key", &mut ps));
    let window = fields.window.and_then(|e| parse_window(e, &mut ps));
    let targets = match fields.targets {
        Some(e) => parse_targets(e, &mut ps),
        None => {
            ps.push(prob(
                Some(root.line),
                "targets",
                "missing: say which hosts (hosts, tags, clusters, datacenters or all = true)",
            ));
            TargetSpec::default()
        }
    };
    let artifacts = fields
        .packages
        .map(|e| parse_packages(e, &mut ps))
        .unwrap_or_default();
    let policy = parse_policy(&fields, !artifacts.is_empty(), &mut ps);
    let mut artifacts = artifacts;
    if let (Some(p), Some(dir)) = (&policy, base_dir)
        && p.update_mode == UpdateMode::MultipartFile
    {
        for a in &mut artifacts {
            let path = Path::new(&a.image_uri);
            if path.is_relative() && !a.image_uri.contains("://") {
                a.image_uri = dir.join(path).display().to_string();
            }
        }
    }
    if !ps.is_empty() {
        return Err(invalid(source, ps));
    }
    let fingerprint = hex_prefix(&Sha256::digest(text.as_bytes()), 16);
    Ok(PlanFile {
        source: source.to_string(),
        name,
        policy: policy.unwrap_or_else(|| Policy::new(UpdateMode::LatestFromCatalog)),
        window,
        approval_required,
        idempotency_key,
        targets,
        artifacts,
        fingerprint,
        root,
    })
}

impl PlanFile {
    /// The idempotency key the plan is created with: the file's own, or
    /// `plan-file:<name>:<fingerprint of the text>`, so running the same
    /// file again finds the plan it created (and resumes it) instead of
    /// starting a second campaign, while an edited file is a new plan.
    pub fn idempotency_key(&self) -> String {
        self.idempotency_key
            .clone()
            .unwrap_or_else(|| format!("plan-file:{}:{}", self.name, self.fingerprint))
    }

    /// Matches the targets against `hosts` and builds the plan, then
    /// validates it as the executor will (cluster sizes from the
    /// registered hosts; `extra_checks` are custom check names). Every
    /// problem is returned at once.
    pub fn check(&self, hosts: &[Host], extra_checks: &[String]) -> Result<NewPlan, PlanFileError> {
        let (plan, mut ps) = self.build(hosts);
        let cx = validation_context(&plan, hosts, extra_checks);
        if let Err(inv) = validate_plan(&plan, &cx) {
            // Resolution already said why targets are empty.
            let targets_reported = ps.iter().any(|p| p.field.starts_with("targets"));
            ps.extend(
                self.locate(&inv)
                    .into_iter()
                    .filter(|p| !(targets_reported && p.field == "targets")),
            );
        }
        if ps.is_empty() {
            Ok(plan)
        } else {
            Err(invalid(&self.source, ps))
        }
    }

    /// The core's validation problems (from `Executor::create_plan`, which
    /// also asks vCenter for cluster sizes) with the lines of this file.
    pub fn explain(&self, invalid_plan: &InvalidPlan) -> PlanFileError {
        invalid(&self.source, self.locate(invalid_plan))
    }

    fn locate(&self, inv: &InvalidPlan) -> Vec<FileProblem> {
        inv.0
            .iter()
            .map(|p| {
                let mut message = p.message.clone();
                if message == "unknown policy key"
                    && let Some(k) = p.field.strip_prefix("policy.")
                    && let Some(known) = suggest_policy_key(k)
                {
                    message = format!("unknown policy key; did you mean {known}?");
                }
                FileProblem {
                    line: self.line_of(&p.field),
                    field: p.field.clone(),
                    message,
                }
            })
            .collect()
    }

    /// Line of a core field path (`policy.retry.maxAttempts`, `artifacts[0].imageUri`).
    fn line_of(&self, field: &str) -> Option<usize> {
        let top = |k: &[&str]| k.iter().find_map(|k| self.root.get(k));
        let policy = top(&["policy"]);
        let in_policy = |path: &str| -> Option<usize> {
            let mut node = &policy?.node;
            let mut line = policy?.line;
            for seg in path.split('.') {
                let (key, idx) = split_index(seg);
                let e = node.get(key)?;
                line = e.line;
                node = &e.node;
                if let Some(i) = idx
                    && let Val::Array(items) = &node.value
                    && let Some(item) = items.get(i)
                {
                    line = item.line;
                    node = item;
                }
            }
            Some(line)
        };
        match field {
            "name" => top(&["name"]).map(|e| e.line),
            "targets" => top(&["targets"]).map(|e| e.line),
            "maintenanceWindow" => {
                top(&["window", "maintenance_window", "maintenanceWindow"]).map(|e| e.line)
            }
            "artifacts" => top(&["packages", "artifacts"])
                .map(|e| e.line)
                .or_else(|| top(&["mode"]).map(|e| e.line)),
            "policy.updateMode" => top(&["mode"])
                .map(|e| e.line)
                .or_else(|| in_policy("updateMode")),
            "policy.catalogUrl" => top(&["catalog"])
                .map(|e| e.line)
                .or_else(|| in_policy("catalogUrl"))
                .or_else(|| top(&["mode"]).map(|e| e.line)),
            f if f.starts_with("policy.") => {
                let path = &f["policy.".len()..];
                in_policy(path).or_else(|| policy.map(|p| p.line))
            }
            f if f.starts_with("artifacts[") => {
                let (head, rest) = f.split_once('.').unwrap_or((f, ""));
                let (_, idx) = split_index(head);
                let pk = top(&["packages", "artifacts"])?;
                let Val::Array(items) = &pk.node.value else {
                    return Some(pk.line);
                };
                let item = items.get(idx?)?;
                let keys: &[&str] = match rest {
                    "imageUri" => &["image_uri", "imageUri", "uri"],
                    "sizeBytes" => &["size_bytes", "sizeBytes"],
                    "component" => &["component"],
                    "checksum" => &["checksum"],
                    _ => &[],
                };
                keys.iter()
                    .find_map(|k| item.get(k))
                    .map(|e| e.line)
                    .or(Some(item.line))
            }
            _ => None,
        }
    }

    fn build(&self, hosts: &[Host]) -> (NewPlan, Vec<FileProblem>) {
        let mut ps = Vec::new();
        let t = &self.targets;
        let tline = |path: &str, i: usize| self.target_line(path, Some(i));
        let matches_ref = |h: &Host, r: &str| {
            h.fqdn.eq_ignore_ascii_case(r)
                || h.mgmt_ip.eq_ignore_ascii_case(r)
                || h.id.to_string().eq_ignore_ascii_case(r)
        };
        let in_cluster = |h: &Host, c: &str| {
            h.cluster_moid.as_deref() == Some(c)
                || h.cluster_key().is_some_and(|k| k.to_string() == c)
        };
        let in_dc = |h: &Host, d: &str| h.datacenter_id == Some(datacenter_id(d));
        // Each value must name something that exists: a typo would
        // otherwise silently shrink (or, with exclude, grow) the campaign.
        let mut check_values = |kind: &str, values: &[String], f: &dyn Fn(&Host, &str) -> bool| {
            for (i, v) in values.iter().enumerate() {
                if !hosts.iter().any(|h| f(h, v)) {
                    ps.push(prob(
                        tline(kind, i),
                        &format!("targets.{kind}[{i}]"),
                        format!("{v:?} matches no registered host"),
                    ));
                }
            }
        };
        check_values("hosts", &t.hosts, &matches_ref);
        check_values("tags", &t.tags, &|h, v| h.tags.iter().any(|x| x == v));
        check_values("clusters", &t.clusters, &in_cluster);
        check_values("datacenters", &t.datacenters, &in_dc);
        check_values("exclude", &t.exclude, &matches_ref);
        let selected: Vec<&Host> = hosts
            .iter()
            .filter(|h| {
                (t.hosts.is_empty() || t.hosts.iter().any(|r| matches_ref(h, r)))
                    && (t.tags.is_empty() || t.tags.iter().any(|x| h.tags.contains(x)))
                    && (t.clusters.is_empty() || t.clusters.iter().any(|c| in_cluster(h, c)))
                    && (t.datacenters.is_empty() || t.datacenters.iter().any(|d| in_dc(h, d)))
                    && !t.exclude.iter().any(|r| matches_ref(h, r))
            })
            .collect();
        if selected.is_empty() && ps.is_empty() {
            ps.push(prob(
                self.root.get("targets").map(|e| e.line),
                "targets",
                format!(
                    "the selectors together match none of the {} registered host(s)",
                    hosts.len()
                ),
            ));
        }
        let mut prio: BTreeMap<_, i32> = BTreeMap::new();
        for (r, p) in &t.priority {
            match selected.iter().find(|h| matches_ref(h, r)) {
                Some(h) => {
                    prio.insert(h.id, *p);
                }
                None => ps.push(prob(
                    self.target_key_line("priority", r),
                    &format!("targets.priority.{r}"),
                    format!("{r:?} is not one of the plan's hosts"),
                )),
            }
        }
        let mut selected = selected;
        selected.sort_by(|a, b| a.fqdn.cmp(&b.fqdn));
        let plan = NewPlan {
            name: self.name.clone(),
            policy: self.policy.clone(),
            maintenance_window: self.window.clone(),
            approval_required: self.approval_required,
            targets: selected
                .iter()
                .map(|h| PlanTarget {
                    host_id: h.id,
                    priority: prio.get(&h.id).copied().unwrap_or(0),
                    conditions: json!({}),
                })
                .collect(),
            artifacts: self.artifacts.clone(),
            created_by: None,
            idempotency_key: Some(self.idempotency_key()),
        };
        (plan, ps)
    }

    fn target_line(&self, kind: &str, index: Option<usize>) -> Option<usize> {
        let t = self.root.get("targets")?;
        let e = t.node.get(kind)?;
        match (index, &e.node.value) {
            (Some(i), Val::Array(items)) => items.get(i).map(|n| n.line).or(Some(e.line)),
            _ => Some(e.line),
        }
    }

    fn target_key_line(&self, kind: &str, key: &str) -> Option<usize> {
        let t = self.root.get("targets")?;
        let e = t.node.get(kind)?;
        e.node.get(key).map(|k| k.line).or(Some(e.line))
    }
}

/// What validation needs to know of the fleet: the size of each cluster
/// the plan's hosts are in (registered hosts), the hosts it does not know.
pub fn validation_context(
    plan: &NewPlan,
    hosts: &[Host],
    extra_checks: &[String],
) -> ValidationContext {
    let mut cx = ValidationContext {
        extra_checks: extra_checks.to_vec(),
        ..Default::default()
    };
    let mut registered: BTreeMap<ClusterKey, usize> = BTreeMap::new();
    for h in hosts {
        if let Some(k) = h.cluster_key() {
            *registered.entry(k).or_default() += 1;
        }
    }
    for t in &plan.targets {
        match hosts.iter().find(|h| h.id == t.host_id) {
            None => cx.unknown_hosts.push(t.host_id.to_string()),
            Some(h) => {
                if let Some(k) = h.cluster_key() {
                    let n = registered.get(&k).copied().unwrap_or(0);
                    cx.cluster_sizes.insert(k, n);
                }
            }
        }
    }
    cx
}

#[derive(Default)]
struct Fields<'a> {
    name: Option<&'a Entry>,
    mode: Option<&'a Entry>,
    catalog: Option<&'a Entry>,
    approval: Option<&'a Entry>,
    key: Option<&'a Entry>,
    targets: Option<&'a Entry>,
    packages: Option<&'a Entry>,
    policy: Option<&'a Entry>,
    window: Option<&'a Entry>,
}

fn prob(line: Option<usize>, field: &str, message: impl Into<String>) -> FileProblem {
    FileProblem {
        line,
        field: field.to_string(),
        message: message.into(),
    }
}

fn invalid(file: &str, mut problems: Vec<FileProblem>) -> PlanFileError {
    problems.sort_by_key(|p| p.line);
    PlanFileError::Invalid {
        file: file.to_string(),
        problems,
    }
}

fn hex_prefix(bytes: &[u8], n: usize) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(n)
        .collect()
}

fn split_index(seg: &str) -> (&str, Option<usize>) {
    match seg.split_once('[') {
        Some((k, rest)) => (k, rest.trim_end_matches(']').parse().ok()),
        None => (seg, None),
    }
}

fn string(e: &Entry, field: &str, ps: &mut Vec<FileProblem>) -> Option<String> {
    match &e.node.value {
        Val::Str(s) => Some(s.clone()),
        _ => {
            ps.push(prob(
                Some(e.line),
                field,
                format!("expected a string, found {}", e.node.type_name()),
            ));
            None
        }
    }
}

fn boolean(e: &Entry, field: &str, ps: &mut Vec<FileProblem>) -> Option<bool> {
    match &e.node.value {
        Val::Bool(b) => Some(*b),
        _ => {
            ps.push(prob(
                Some(e.line),
                field,
                format!("expected true or false, found {}", e.node.type_name()),
            ));
            None
        }
    }
}

fn strings(e: &Entry, field: &str, ps: &mut Vec<FileProblem>) -> Vec<String> {
    match &e.node.value {
        Val::Str(s) => vec![s.clone()],
        Val::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match &n.value {
                Val::Str(s) => Some(s.clone()),
                _ => {
                    ps.push(prob(
                        Some(n.line),
                        &format!("{field}[{i}]"),
                        format!("expected a string, found {}", n.type_name()),
                    ));
                    None
                }
            })
            .collect(),
        _ => {
            ps.push(prob(
                Some(e.line),
                field,
                format!("expected a list of strings, found {}", e.node.type_name()),
            ));
            Vec::new()
        }
    }
}

fn parse_targets(e: &Entry, ps: &mut Vec<FileProblem>) -> TargetSpec {
    let mut t = TargetSpec::default();
    let Some(entries) = e.node.entries() else {
        ps.push(prob(
            Some(e.line),
            "targets",
            format!(
                "expected a table (hosts, tags, clusters, datacenters, all, exclude, priority), found {}",
                e.node.type_name()
            ),
        ));
        return t;
    };
    for x in entries {
        let f = format!("targets.{}", x.key);
        match x.key.as_str() {
            "all" => t.all = boolean(x, &f, ps).unwrap_or(false),
            "hosts" => t.hosts = strings(x, &f, ps),
            "tags" => t.tags = strings(x, &f, ps),
            "clusters" => t.clusters = strings(x, &f, ps),
            "datacenters" => t.datacenters = strings(x, &f, ps),
            "exclude" => t.exclude = strings(x, &f, ps),
            "priority" => match x.node.entries() {
                Some(ps_entries) => {
                    for p in ps_entries {
                        match &p.node.value {
                            Val::Int(n) if i32::try_from(*n).is_ok() => {
                                t.priority.insert(p.key.clone(), *n as i32);
                            }
                            _ => ps.push(prob(
                                Some(p.line),
                                &format!("{f}.{}", p.key),
                                "expected a whole number",
                            )),
                        }
                    }
                }
                None => ps.push(prob(
                    Some(x.line),
                    &f,
                    "expected a table of host = priority",
                )),
            },
            _ => ps.push(prob(
                Some(x.line),
                &f,
                "unknown target selector; expected hosts, tags, clusters, datacenters, all, exclude, priority",
            )),
        }
    }
    let selects = t.all
        || !t.hosts.is_empty()
        || !t.tags.is_empty()
        || !t.clusters.is_empty()
        || !t.datacenters.is_empty();
    if !selects {
        ps.push(prob(
            Some(e.line),
            "targets",
            "selects no host: give hosts, tags, clusters or datacenters (or all = true for the whole fleet)",
        ));
    }
    t
}

fn parse_window(e: &Entry, ps: &mut Vec<FileProblem>) -> Option<MaintenanceWindow> {
    let Some(entries) = e.node.entries() else {
        ps.push(prob(
            Some(e.line),
            "window",
            "expected a table with start and end",
        ));
        return None;
    };
    let mut start = None;
    let mut end = None;
    for x in entries {
        let slot = match x.key.as_str() {
            "start" => &mut start,
            "end" => &mut end,
            other => {
                ps.push(prob(
                    Some(x.line),
                    &format!("window.{other}"),
                    "unknown field; expected start, end",
                ));
                continue;
            }
        };
        let f = format!("window.{}", x.key);
        if let Some(s) = string(x, &f, ps) {
            match DateTime::parse_from_rfc3339(&s) {
                Ok(t) => *slot = Some(t.with_timezone(&Utc)),
                Err(_) => ps.push(prob(
                    Some(x.line),
                    &f,
                    format!("{s:?} is not a time like 2025-01-18T22:00:00Z"),
                )),
            }
        }
    }
    match (start, end) {
        (Some(start), Some(end)) => Some(MaintenanceWindow { start, end }),
        _ => {
            if !ps.iter().any(|p| p.field.starts_with("window")) {
                ps.push(prob(Some(e.line), "window", "needs both start and end"));
            }
            None
        }
    }
}

fn parse_packages(e: &Entry, ps: &mut Vec<FileProblem>) -> Vec<Artifact> {
    let Val::Array(items) = &e.node.value else {
        ps.push(prob(
            Some(e.line),
            "packages",
            "expected a list of packages ([[packages]] in TOML)",
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let base = format!("packages[{i}]");
        let Some(entries) = item.entries() else {
            ps.push(prob(
                Some(item.line),
                &base,
                format!("expected a package table, found {}", item.type_name()),
            ));
            continue;
        };
        let mut a = Artifact {
            id: ArtifactId::new(),
            component: String::new(),
            image_uri: String::new(),
            version: None,
            checksum: None,
            size_bytes: None,
            metadata: json!({}),
        };
        for x in entries {
            let f = format!("{base}.{}", x.key);
            match x.key.as_str() {
                "component" => a.component = string(x, &f, ps).unwrap_or_default(),
                "image_uri" | "imageUri" | "uri" | "path" => {
                    a.image_uri = string(x, &f, ps).unwrap_or_default()
                }
                "version" => a.version = string(x, &f, ps),
                "checksum" => a.checksum = string(x, &f, ps),
                "size_bytes" | "sizeBytes" => match x.node.value {
                    Val::Int(n) => a.size_bytes = Some(n),
                    _ => ps.push(prob(Some(x.line), &f, "expected a whole number")),
                },
                "metadata" => a.metadata = x.node.to_json(),
                _ => ps.push(prob(
                    Some(x.line),
                    &f,
                    "unknown field; expected component, image_uri, version, checksum, size_bytes, metadata",
                )),
            }
        }
        for (v, name) in [(&a.component, "component"), (&a.image_uri, "image_uri")] {
            if v.trim().is_empty() && !ps.iter().any(|p| p.field == format!("{base}.{name}")) {
                ps.push(prob(
                    Some(item.line),
                    &format!("{base}.{name}"),
                    "missing (required)",
                ));
            }
        }
        out.push(a);
    }
    out
}

/// The policy keys this version knows, for "did you mean".
const POLICY_KEYS: &[&str] = &[
    "updateMode",
    "catalogUrl",
    "maxConcurrent",
    "minHostsOnline",
    "requireMaintenanceMode",
    "allowDowntime",
    "rollbackOnFailure",
    "preflightChecks",
    "postUpdateValidation",
    "failureBudget",
    "retry",
    "timeouts",
    "rebootType",
    "force",
    "allowDowngrade",
    "expectedHostDurationSecs",
    "maxResumes",
];

fn suggest_policy_key(k: &str) -> Option<&'static str> {
    let flat = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let want = flat(k);
    POLICY_KEYS.iter().copied().find(|p| flat(p) == want)
}

fn parse_policy(
    fields: &Fields<'_>,
    has_packages: bool,
    ps: &mut Vec<FileProblem>,
) -> Option<Policy> {
    let mut obj = serde_json::Map::new();
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    let policy_line = fields.policy.map(|e| e.line);
    if let Some(e) = fields.policy {
        match e.node.entries() {
            Some(entries) => {
                for x in entries {
                    lines.insert(x.key.clone(), x.line);
                    obj.insert(x.key.clone(), x.node.to_json());
                }
            }
            None => {
                ps.push(prob(
                    Some(e.line),
                    "policy",
                    format!("expected a table, found {}", e.node.type_name()),
                ));
                return None;
            }
        }
    }
    for (entry, key, top) in [
        (fields.mode, "updateMode", "mode"),
        (fields.catalog, "catalogUrl", "catalog"),
    ] {
        if let Some(e) = entry {
            if obj.contains_key(key) {
                ps.push(prob(
                    Some(e.line),
                    top,
                    format!("given twice: here and as policy.{key}"),
                ));
                continue;
            }
            lines.insert(key.into(), e.line);
            obj.insert(key.into(), e.node.to_json());
        }
    }
    if !obj.contains_key("updateMode") {
        let inferred = if obj.contains_key("catalogUrl") {
            Some("LATEST_FROM_CATALOG")
        } else if has_packages {
            Some("SPECIFIC_PACKAGE")
        } else {
            None
        };
        match inferred {
            Some(m) => {
                obj.insert("updateMode".into(), Json::from(m));
            }
            None => {
                ps.push(prob(
                    policy_line.or(Some(1)),
                    "mode",
                    "missing: give a catalog, packages, or mode = LATEST_FROM_CATALOG | SPECIFIC_PACKAGE | MULTIPART_FILE",
                ));
                return None;
            }
        }
    }
    let value = Json::Object(obj);
    match serde_path_to_error::deserialize::<_, Policy>(&value) {
        Ok(p) => Some(p),
        Err(e) => {
            let path = e.path().to_string();
            let top = path
                .split(['.', '['])
                .next()
                .unwrap_or_default()
                .to_string();
            let field = match top.as_str() {
                "updateMode" if fields.mode.is_some() => "mode".to_string(),
                "catalogUrl" if fields.catalog.is_some() => "catalog".to_string(),
                _ => format!("policy.{path}"),
            };
            ps.push(prob(
                lines.get(&top).copied().or(policy_line),
                &field,
                e.into_inner().to_string(),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests;
