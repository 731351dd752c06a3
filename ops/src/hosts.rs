//! Hosts files: the fleet an operator registers, as CSV (a header row, one
//! host per line) or JSON (an array of objects with the same fields).
//!
//! Fields, as in the seed's `hosts` table plus the credential reference:
//!
//! | field | required | meaning |
//! |---|---|---|
//! | `fqdn` | yes | the server's name (OS side) |
//! | `mgmt_ip` | yes | BMC address: IP or name, optional `:port`, or an `https://` URL |
//! | `model`, `service_tag` | no | as known; refreshed from the BMC by inventory |
//! | `mgmt_kind` | no | `idrac` (default), `redfish`, `racadm`, `ipmi` |
//! | `vcenter_url`, `cluster_moid`, `host_moid` | no | the vSphere ids; a cluster needs the host moid |
//! | `datacenter` | no | a UUID, or a name mapped to a stable id ([`datacenter_id`]) |
//! | `tags` | no | separated by `;` or `,` in CSV (quote the cell), an array or string in JSON |
//! | `credential` | no | a reference (`env:IDRAC`, `file:/etc/firmflow/creds.toml#prod`, `vault:secret/idrac`), never a password |
//!
//! Header names are matched without case, and spaces or dashes count as
//! underscores (`Service Tag` is `service_tag`). Blank lines and lines
//! starting with `#` are skipped in CSV.
//!
//! Parsing is all or nothing: every bad row is reported with its line and
//! field, and no host is returned when any row is bad, so an import never
//! registers half a file.

use crate::doc::{self, Node, Val};
use firmflow_core::model::{DatacenterId, MgmtKind, NewHost};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One host read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct HostEntry {
    /// The host to register.
    pub host: NewHost,
    /// Its credential reference (kind `idrac`), when the file gives one.
    pub credential: Option<String>,
    /// Line of the row (CSV) or of the object's opening brace (JSON).
    pub line: usize,
}

/// The formats of a hosts file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostsFormat {
    /// Comma-separated, header row first.
    Csv,
    /// A JSON array of objects.
    Json,
}

impl HostsFormat {
    /// The format from a file name (`.csv`, `.json`), if it says.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Some(Self::Csv),
            Some("json") => Some(Self::Json),
            _ => None,
        }
    }
}

/// One problem in a hosts file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line; `None` when the file as a whole is wrong.
    pub line: Option<usize>,
    /// The field, when one is to blame.
    pub field: Option<String>,
    /// What is wrong (never a secret: values of the credential column are not echoed).
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why a hosts file was refused.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file name says neither CSV nor JSON.
    #[error("{}: cannot tell the format; name the file .csv or .json", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// Rows are wrong; nothing was read.
    #[error("{}", render_errors(file, errors))]
    Invalid {
        /// The file (as given).
        file: String,
        /// Every problem, in line order.
        errors: Vec<RowError>,
    },
}

fn render_errors(file: &str, errors: &[RowError]) -> String {
    let mut s = format!(
        "{file}: {} problem{}, nothing imported",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        s.push_str("\n  ");
        s.push_str(file);
        if let Some(l) = e.line {
            s.push_str(&format!(":{l}"));
        }
        s.push_str(": ");
        if let Some(f) = &e.field {
            s.push_str(f);
            s.push_str(": ");
        }
        s.push_str(&e.message);
    }
    s
}

/// Reads and parses a hosts file (format from its extension).
pub fn read_file(path: &Path) -> Result<Vec<HostEntry>, HostsError> {
    let format = HostsFormat::from_path(path).ok_or_else(|| HostsError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let text = std::fs::read_to_string(path).map_err(|source| HostsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, format).map_err(|errors| HostsError::Invalid {
        file: path.display().to_string(),
        errors,
    })
}

/// Parses hosts from text; every problem, or every host.
pub fn parse(text: &str, format: HostsFormat) -> Result<Vec<HostEntry>, Vec<RowError>> {
    // Rows with a structural problem are reported and left out; the
    // others are still checked, so one pass shows every problem.
    let (rows, mut errors) = match format {
        HostsFormat::Csv => csv_rows(text)?,
        HostsFormat::Json => json_rows(text)?,
    };
    let mut out = Vec::new();
    let mut seen_fqdn: HashMap<String, usize> = HashMap::new();
    let mut seen_addr: HashMap<String, usize> = HashMap::new();
    for row in rows {
        match build(&row) {
            Ok(entry) => {
                let fq = entry.host.fqdn.to_ascii_lowercase();
                if let Some(first) = seen_fqdn.insert(fq, row.line) {
                    errors.push(err(
                        row.line,
                        "fqdn",
                        format!("{} is already on line {first}", entry.host.fqdn),
                    ));
                }
                let addr = entry.host.mgmt_ip.to_ascii_lowercase();
                if let Some(first) = seen_addr.insert(addr, row.line) {
                    errors.push(err(
                        row.line,
                        "mgmt_ip",
                        format!("{} is already on line {first}", entry.host.mgmt_ip),
                    ));
                }
                out.push(entry);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(RowError {
            line: None,
            field: None,
            message: "no hosts in the file".into(),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// The datacenter id for a datacenter column: a UUID as written, or a
/// name mapped to a stable id (the same name always gives the same id, in
/// every file and process), so plan targets can name datacenters.
pub fn datacenter_id(name_or_uuid: &str) -> DatacenterId {
    let s = name_or_uuid.trim();
    if let Ok(u) = uuid::Uuid::parse_str(s) {
        return DatacenterId(u);
    }
    let digest = Sha256::digest(format!("firmflow-datacenter:{}", s.to_ascii_lowercase()));
    // The first 16 bytes of the 32-byte digest.
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(digest.iter()) {
        *b = *d;
    }
    DatacenterId(uuid::Uuid::new_v8(bytes))
}

/// The fields a row may have, with their accepted spellings.
const FIELDS: &[(&str, &[&str])] = &[
    ("fqdn", &["fqdn", "name", "hostname"]),
    ("mgmt_ip", &["mgmt_ip", "mgmt_address", "bmc", "idrac"]),
    ("model", &["model"]),
    ("service_tag", &["service_tag"]),
    ("mgmt_kind", &["mgmt_kind", "kind", "driver"]),
    ("vcenter_url", &["vcenter_url", "vcenter"]),
    ("cluster_moid", &["cluster_moid", "cluster"]),
    ("host_moid", &["host_moid"]),
    ("datacenter", &["datacenter", "datacenter_id"]),
    ("tags", &["tags", "tag"]),
    (
        "credential",
        &[
            "credential",
            "credential_ref",
            "credential_reference",
            "vault_path",
        ],
    ),
];

fn canonical(name: &str) -> Option<&'static str> {
    let n: String = name
        .trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    FIELDS
        .iter()
        .find(|(_, spellings)| spellings.contains(&n.as_str()))
        .map(|(f, _)| *f)
}

/// One row, field by canonical name.
struct Row {
    line: usize,
    fields: HashMap<&'static str, FieldValue>,
}

enum FieldValue {
    Text(String),
    List(Vec<String>),
}

fn err(line: usize, field: &str, message: impl Into<String>) -> RowError {
    RowError {
        line: Some(line),
        field: Some(field.to_string()),
        message: message.into(),
    }
}

/// A line the operator commented out (the csv crate's own comment
/// support does not count those lines, which would shift line numbers).
fn is_comment(rec: &csv::StringRecord) -> bool {
    rec.get(0).is_some_and(|f| f.starts_with('#'))
}

fn csv_rows(text: &str) -> Result<(Vec<Row>, Vec<RowError>), Vec<RowError>> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = rdr.records();
    let headers = loop {
        match records.next() {
            None => {
                return Err(vec![RowError {
                    line: None,
                    field: None,
                    message: "empty file: expected a header row (fqdn,mgmt_ip,...)".into(),
                }]);
            }
            Some(Err(e)) => return Err(vec![csv_error(text, &e, 1)]),
            Some(Ok(r)) if is_comment(&r) || r.iter().all(str::is_empty) => continue,
            Some(Ok(r)) => break r,
        }
    };
    // Lines from byte offsets: the csv crate's own line count skips blank lines.
    let line_at = |p: Option<&csv::Position>| p.map(|p| record_line(text, p)).unwrap_or(1);
    let header_line = line_at(headers.position());
    let mut errors = Vec::new();
    let mut columns: Vec<&'static str> = Vec::new();
    for h in headers.iter() {
        match canonical(h) {
            Some(f) if columns.contains(&f) => {
                errors.push(err(header_line, h, format!("column {f} appears twice")))
            }
            Some(f) => columns.push(f),
            None => errors.push(err(
                header_line,
                h,
                format!(
                    "unknown column; expected {}",
                    FIELDS.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
    for required in ["fqdn", "mgmt_ip"] {
        if !columns.contains(&required) {
            errors.push(err(header_line, required, "the header has no such column"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(csv_error(text, &e, header_line));
                continue;
            }
        };
        let line = line_at(rec.position());
        if rec.iter().all(str::is_empty) || is_comment(&rec) {
            continue;
        }
        if rec.len() != columns.len() {
            errors.push(RowError {
                line: Some(line),
                field: None,
                message: format!(
                    "{} fields, but the header has {} columns",
                    rec.len(),
                    columns.len()
                ),
            });
            continue;
        }
        let fields = columns
            .iter()
            .zip(rec.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| (*c, FieldValue::Text(v.to_string())))
            .collect();
        rows.push(Row { line, fields });
    }
    Ok((rows, errors))
}

/// The line a record starts on: its byte offset may still point at the
/// blank lines the reader skipped before it.
fn record_line(text: &str, p: &csv::Position) -> usize {
    let mut at = (p.byte() as usize).min(text.len());
    while matches!(text.as_bytes().get(at), Some(b'\n' | b'\r')) {
        at += 1;
    }
    doc::line_of(text, at)
}

fn csv_error(text: &str, e: &csv::Error, fallback_line: usize) -> RowError {
    let line = e
        .position()
        .map(|p| record_line(text, p))
        .unwrap_or(fallback_line);
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    };
    RowError {
        line: Some(line),
        field: None,
        message,
    }
}

fn json_rows(text: &str) -> Result<(Vec<Row>, Vec<RowError>), Vec<RowError>> {
    let root = doc::parse_json(text).map_err(|e| {
        vec![RowError {
            line: e.line,
            field: None,
            message: e.message,
        }]
    })?;
    let Val::Array(items) = &root.value else {
        return Err(vec![RowError {
            line: Some(root.line),
            field: None,
            message: format!("expected an array of hosts, found {}", root.type_name()),
        }]);
    };
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for item in items {
        let Some(entries) = item.entries() else {
            errors.push(RowError {
                line: Some(item.line),
                field: None,
                message: format!("expected a host object, found {}", item.type_name()),
            });
            continue;
        };
        let mut fields = HashMap::new();
        for e in entries {
            let Some(f) = canonical(&e.key) else {
                errors.push(err(e.line, &e.key, "unknown field"));
                continue;
            };
            match json_field(f, &e.node) {
                Ok(Some(v)) => {
                    fields.insert(f, v);
                }
                Ok(None) => {}
                Err(m) => errors.push(err(e.line, f, m)),
            }
        }
        rows.push(Row {
            line: item.line,
            fields,
        });
    }
    Ok((rows, errors))
}

fn json_field(field: &str, node: &Node) -> Result<Option<FieldValue>, String> {
    match (&node.value, field) {
        (Val::Null, _) => Ok(None),
        (Val::Str(s), _) => Ok(Some(FieldValue::Text(s.trim().to_string()))),
        (Val::Array(items), "tags") => items
            .iter()
            .map(|i| match &i.value {
                Val::Str(s) => Ok(s.trim().to_string()),
                _ => Err(format!("tags must be strings, found {}", i.type_name())),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Some(FieldValue::List(v))),
        _ => Err(format!("expected a string, found {}", node.type_name())),
    }
}

fn build(row: &Row) -> Result<HostEntry, Vec<RowError>> {
    let line = row.line;
    let mut errors = Vec::new();
    let text = |f: &str| match row.fields.get(f) {
        Some(FieldValue::Text(s)) if !s.is_empty() => Some(s.clone()),
        Some(FieldValue::List(v)) => Some(v.join(",")),
        _ => None,
    };
    let mut required = |f: &str| match text(f) {
        Some(v) => v,
        None => {
            errors.push(err(line, f, "missing (required)"));
            String::new()
        }
    };
    let fqdn = required("fqdn");
    let mgmt_ip = required("mgmt_ip");
    if !fqdn.is_empty() && !valid_name(&fqdn) {
        errors.push(err(
            line,
            "fqdn",
            format!("{fqdn:?} is not a host name (letters, digits, '-', '.', '_')"),
        ));
    }
    if !mgmt_ip.is_empty()
        && let Err(m) = check_address(&mgmt_ip)
    {
        errors.push(err(line, "mgmt_ip", m));
    }
    let mgmt_kind = match text("mgmt_kind") {
        None => MgmtKind::Idrac,
        Some(k) => match MgmtKind::from(k.as_str()) {
            MgmtKind::Other(o) => {
                errors.push(err(
                    line,
                    "mgmt_kind",
                    format!("unknown kind {o:?}; expected idrac, redfish, racadm or ipmi"),
                ));
                MgmtKind::Idrac
            }
            known => known,
        },
    };
    let vcenter_url = text("vcenter_url");
    if let Some(u) = &vcenter_url {
        match url::Url::parse(u) {
            Ok(p) if matches!(p.scheme(), "https" | "http") && p.host_str().is_some() => {}
            _ => errors.push(err(
                line,
                "vcenter_url",
                format!("{u:?} is not an https:// URL"),
            )),
        }
    }
    let cluster_moid = text("cluster_moid");
    let host_moid = text("host_moid");
    if cluster_moid.is_some() && host_moid.is_none() {
        errors.push(err(
            line,
            "host_moid",
            "a host in a cluster needs its host moid (e.g. host-123) for maintenance mode",
        ));
    }
    if host_moid.is_some() && cluster_moid.is_none() {
        errors.push(err(
            line,
            "cluster_moid",
            "host_moid is given but not the cluster it belongs to",
        ));
    }
    for (f, v) in [("cluster_moid", &cluster_moid), ("host_moid", &host_moid)] {
        if let Some(v) = v
            && v.chars().any(char::is_whitespace)
        {
            errors.push(err(line, f, format!("{v:?} contains spaces")));
        }
    }
    let tags = match row.fields.get("tags") {
        Some(FieldValue::List(v)) => v.clone(),
        Some(FieldValue::Text(s)) => s
            .split([';', ','])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        None => Vec::new(),
    };
    let credential = text("credential");
    if let Some(c) = &credential
        && let Err(e) = firmflow_credentials::Reference::parse(c)
    {
        // The reference parser names the reference; a reference is a
        // path, not a secret, but a password pasted into the column would
        // be one, so the message is reduced to what was expected.
        let hint = match e {
            firmflow_credentials::Error::InvalidReference { message, .. } => message,
            other => other.to_string(),
        };
        errors.push(err(
            line,
            "credential",
            format!("not a credential reference: {hint}"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(HostEntry {
        host: NewHost {
            fqdn,
            mgmt_ip,
            model: text("model"),
            service_tag: text("service_tag"),
            mgmt_kind,
            vcenter_url,
            cluster_moid,
            host_moid,
            tags,
            datacenter_id: text("datacenter").map(|d| datacenter_id(&d)),
        },
        credential,
        line,
    })
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// A BMC address: `host`, `host:port`, `[v6]:port`, or an http(s) URL.
fn check_address(addr: &str) -> Result<(), String> {
    if addr.contains("://") {
        return match url::Url::parse(addr) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => Ok(()),
            _ => Err(format!("{addr:?} is not an https:// URL")),
        };
    }
    if addr.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    match url::Url::parse(&format!("https://{addr}")) {
        Ok(u) if u.host_str().is_some() && u.path() == "/" && !addr.contains(' ') => Ok(()),
        _ => Err(format!(
            "{addr:?} is not an address (IP, name, name:port or https:// URL)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
fqdn,mgmt_ip,model,service_tag,mgmt_kind,vcenter_url,cluster_moid,host_moid,datacenter,tags,credential
# two clusters in dc1
esx01.lab,10.0.0.11,PowerEdge R640,ABC1234,idrac,https://vc.lab,domain-c7,host-101,dc1,\"rack-a;canary\",env:IDRAC
esx02.lab,10.0.0.12:8443,,,,https://vc.lab,domain-c7,host-102,dc1,rack-a,file:/etc/firmflow/creds.toml#prod

srv03.lab,https://10.0.0.13,,,redfish,,,,,,
";

    #[test]
    fn csv_reads_every_field() {
        let hosts = parse(GOOD, HostsFormat::Csv).unwrap();
        assert_eq!(hosts.len(), 3);
        let h = &hosts[0];
        assert_eq!(h.line, 3);
        assert_eq!(h.host.fqdn, "esx01.lab");
        assert_eq!(h.host.model.as_deref(), Some("PowerEdge R640"));
        assert_eq!(h.host.tags, ["rack-a", "canary"]);
        assert_eq!(h.host.cluster_moid.as_deref(), Some("domain-c7"));
        assert_eq!(h.host.datacenter_id, Some(datacenter_id("DC1")));
        assert_eq!(h.credential.as_deref(), Some("env:IDRAC"));
        assert_eq!(hosts[1].host.mgmt_ip, "10.0.0.12:8443");
        assert_eq!(hosts[1].host.mgmt_kind, MgmtKind::Idrac);
        assert_eq!(hosts[2].line, 6);
        assert_eq!(hosts[2].host.mgmt_kind, MgmtKind::Redfish);
        assert_eq!(hosts[2].credential, None);
        assert!(hosts[2].host.tags.is_empty());
    }

    #[test]
    fn header_spellings_are_forgiving() {
        let text = "FQDN,Mgmt IP,Service-Tag\na.lab,10.0.0.1,XYZ\n";
        let hosts = parse(text, HostsFormat::Csv).unwrap();
        assert_eq!(hosts[0].host.service_tag.as_deref(), Some("XYZ"));
    }

    #[test]
    fn every_bad_row_is_reported_and_nothing_returned() {
        let text = "\
fqdn,mgmt_ip,mgmt_kind,cluster_moid,host_moid,credential
ok.lab,10.0.0.1,idrac,,,
,10.0.0.2,idrac,,,
bad.lab,10.0.0.3,ilo,,,
c.lab,10.0.0.4,,domain-c7,,
d.lab,10.0.0.5,,,,hunter2
ok.lab,10.0.0.6,,,,
e.lab,not an address,,,,
f.lab,10.0.0.7
";
        let errors = parse(text, HostsFormat::Csv).unwrap_err();
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let has = |line: usize, field: &str| {
            errors
                .iter()
                .any(|e| e.line == Some(line) && e.field.as_deref() == Some(field))
        };
        assert!(has(3, "fqdn"), "{shown:#?}");
        assert!(has(4, "mgmt_kind"), "{shown:#?}");
        assert!(has(5, "host_moid"), "{shown:#?}");
        assert!(has(6, "credential"), "{shown:#?}");
        assert!(has(7, "fqdn"), "{shown:#?}");
        assert!(has(8, "mgmt_ip"), "{shown:#?}");
        assert!(
            errors
                .iter()
                .any(|e| e.line == Some(9) && e.message.contains("2 fields")),
            "{shown:#?}"
        );
        // A password typed into the credential column is not echoed.
        assert!(!shown.iter().any(|s| s.contains("hunter2")), "{shown:#?}");
        // Sorted by line.
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(lines, sorted);
    }

    #[test]
    fn bad_headers_are_refused_up_front() {
        let errors = parse("fqdn,address,colour\na,b,c\n", HostsFormat::Csv).unwrap_err();
        assert!(errors.iter().any(|e| e.field.as_deref() == Some("colour")));
        assert!(errors.iter().any(|e| e.field.as_deref() == Some("mgmt_ip")));
        assert!(errors.iter().all(|e| e.line == Some(1)));
        assert!(parse("", HostsFormat::Csv).is_err());
        let only_header = parse("fqdn,mgmt_ip\n", HostsFormat::Csv).unwrap_err();
        assert_eq!(only_header[0].message, "no hosts in the file");
    }

    #[test]
    fn json_array_with_lines() {
        let text = r#"[
  {"fqdn": "esx01.lab", "mgmt_ip": "10.0.0.11", "tags": ["a", "b"],
   "cluster_moid": "domain-c7", "host_moid": "host-1", "vcenter_url": "https://vc.lab"},
  {"fqdn": "esx02.lab", "mgmt_ip": "10.0.0.12", "credential": "vault:secret/idrac"}
]"#;
        let hosts = parse(text, HostsFormat::Json).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].host.tags, ["a", "b"]);
        assert_eq!(hosts[1].line, 4);
        assert_eq!(hosts[1].credential.as_deref(), Some("vault:secret/idrac"));

        let bad = r#"[
  {"fqdn": "a.lab", "mgmt_ip": "10.0.0.1"},
  {"fqdn": "b.lab", "mgmt_ip": 7,
   "colour": "red"},
  "c.lab"
]"#;
        let errors = parse(bad, HostsFormat::Json).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.line == Some(3) && e.field.as_deref() == Some("mgmt_ip"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.line == Some(4) && e.field.as_deref() == Some("colour"))
        );
        assert!(errors.iter().any(|e| e.line == Some(5)));
        let syntax = parse("[\n{\"fqdn\": }\n]", HostsFormat::Json).unwrap_err();
        assert_eq!(syntax[0].line, Some(2));
    }

    #[test]
    fn read_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fleet.csv");
        std::fs::write(&p, "fqdn,mgmt_ip\na.lab,\n").unwrap();
        let e = read_file(&p).unwrap_err().to_string();
        assert!(e.contains("fleet.csv:2: mgmt_ip: missing"), "{e}");
        assert!(e.contains("nothing imported"), "{e}");
        let e = read_file(&dir.path().join("fleet.txt")).unwrap_err();
        assert!(matches!(e, HostsError::UnknownFormat { .. }));
    }

    #[test]
    fn datacenter_names_map_to_stable_ids() {
        assert_eq!(datacenter_id("dc1"), datacenter_id(" DC1 "));
        assert_ne!(datacenter_id("dc1"), datacenter_id("dc2"));
        let u = "0195a3c4-0000-7000-8000-000000000001";
        assert_eq!(datacenter_id(u).to_string(), u);
    }

    #[test]
    fn datacenter_ids_are_the_first_16_digest_bytes_as_before() {
        // Stored ids must not change: the id is the first half of the digest.
        for name in ["dc1", "Frankfurt-2", "ünïcode"] {
            let digest =
                Sha256::digest(format!("firmflow-datacenter:{}", name.to_ascii_lowercase()));
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest[..16]);
            assert_eq!(
                datacenter_id(name),
                DatacenterId(uuid::Uuid::new_v8(bytes)),
                "{name}"
            );
        }
    }
}
