//! Parsing of credential references (`<scheme>:<location>`); the syntax is
//! documented at the crate root.

use crate::{Error, err};
use std::path::PathBuf;

/// A parsed credential reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// `env:NAME`.
    Env(EnvRef),
    /// `file:/path.toml#entry`.
    File(FileRef),
    /// `vault:mount/path#field`.
    Vault(VaultRef),
}

/// `env:NAME`: the credential is in `NAME<username suffix>` / `NAME<secret suffix>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvRef {
    /// The variable name stem, e.g. `IDRAC`.
    pub name: String,
}

/// `file:PATH[#ENTRY]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// The file, as written in the reference.
    pub path: PathBuf,
    /// Its format, from the extension.
    pub format: FileFormat,
    /// The top-level entry holding the credential; `None`: the whole file.
    pub entry: Option<String>,
}

/// Formats a credentials file may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// `.toml`.
    Toml,
    /// `.json`.
    Json,
}

/// `vault:MOUNT/PATH[#FIELD]`, a HashiCorp Vault KV v2 secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultRef {
    /// The KV v2 mount, e.g. `secret`.
    pub mount: String,
    /// Path segments below the mount (without the API's `data`).
    pub path: Vec<String>,
    /// Field holding the password, overriding the configured one.
    pub field: Option<String>,
}

impl VaultRef {
    /// The path below the mount, `/`-joined.
    pub fn path_string(&self) -> String {
        self.path.join("/")
    }
}

const EXAMPLES: &str = "expected <scheme>:<location>, e.g. env:IDRAC, \
     file:/etc/firmflow/creds.toml#idrac-prod or vault:secret/firmflow/idrac";

/// Splits `scheme:rest`, checking the scheme is a lowercase word.
pub(crate) fn split_scheme(reference: &str) -> Result<(&str, &str), Error> {
    let Some((scheme, rest)) = reference.split_once(':') else {
        return Err(err::invalid(reference, format!("no scheme; {EXAMPLES}")));
    };
    let well_formed = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !well_formed {
        return Err(err::invalid(
            reference,
            format!("scheme `{scheme}` is not a lowercase word; {EXAMPLES}"),
        ));
    }
    Ok((scheme, rest))
}

impl Reference {
    /// Parses a reference, refusing anything ambiguous with a message that
    /// says what was expected.
    pub fn parse(reference: &str) -> Result<Self, Error> {
        // A trailing newline from a config file or a stray space would
        // otherwise surface later as a baffling "not found".
        if reference.trim() != reference || reference.chars().any(char::is_control) {
            return Err(err::invalid(
                reference,
                "contains leading/trailing whitespace or control characters",
            ));
        }
        let (scheme, rest) = split_scheme(reference)?;
        match scheme {
            "env" => parse_env(reference, rest).map(Self::Env),
            "file" => parse_file(reference, rest).map(Self::File),
            "vault" => parse_vault(reference, rest).map(Self::Vault),
            other => Err(err::invalid(
                reference,
                format!("unknown scheme `{other}`; {EXAMPLES}"),
            )),
        }
    }

    /// The scheme this reference was written with.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Env(_) => "env",
            Self::File(_) => "file",
            Self::Vault(_) => "vault",
        }
    }
}

fn parse_env(reference: &str, name: &str) -> Result<EnvRef, Error> {
    let mut bytes = name.bytes();
    let valid = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(err::invalid(
            reference,
            "env: needs a variable name stem like IDRAC ([A-Za-z_][A-Za-z0-9_]*)",
        ));
    }
    Ok(EnvRef {
        name: name.to_owned(),
    })
}

/// Splits an optional `#fragment`, refusing an empty one.
fn split_fragment<'a>(
    reference: &str,
    rest: &'a str,
    what: &str,
) -> Result<(&'a str, Option<String>), Error> {
    match rest.split_once('#') {
        None => Ok((rest, None)),
        Some((_, "")) => Err(err::invalid(reference, format!("empty {what} after `#`"))),
        Some((_, frag)) if frag.contains('#') => Err(err::invalid(reference, "more than one `#`")),
        Some((head, frag)) => Ok((head, Some(frag.to_owned()))),
    }
}

fn parse_file(reference: &str, rest: &str) -> Result<FileRef, Error> {
    let (path, entry) = split_fragment(reference, rest, "entry name")?;
    if path.is_empty() {
        return Err(err::invalid(reference, "file: needs a path"));
    }
    let path = PathBuf::from(path);
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("toml") => FileFormat::Toml,
        Some(ext) if ext.eq_ignore_ascii_case("json") => FileFormat::Json,
        _ => {
            return Err(err::invalid(
                reference,
                format!("{} must end in .toml or .json", path.display()),
            ));
        }
    };
    Ok(FileRef {
        path,
        format,
        entry,
    })
}

fn parse_vault(reference: &str, rest: &str) -> Result<VaultRef, Error> {
    let (path, field) = split_fragment(reference, rest, "field name")?;
    let segments: Vec<&str> = path.split('/').collect();
    if let Some(bad) = segments
        .iter()
        .find(|s| s.is_empty() || **s == "." || **s == "..")
    {
        return Err(err::invalid(
            reference,
            format!("vault: path segment `{bad}` is empty, `.` or `..`"),
        ));
    }
    let (mount, mut tail) = match segments.as_slice() {
        [mount, tail @ ..] if !tail.is_empty() => (*mount, tail),
        _ => {
            return Err(err::invalid(
                reference,
                "vault: needs <mount>/<path>, e.g. vault:secret/firmflow/idrac",
            ));
        }
    };
    // `mount/data/path` is the KV v2 API form of `mount/path`.
    if let [first, rest @ ..] = tail
        && *first == "data"
        && !rest.is_empty()
    {
        tail = rest;
    }
    Ok(VaultRef {
        mount: mount.to_owned(),
        path: tail.iter().map(|s| (*s).to_owned()).collect(),
        field,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(s: &str) -> VaultRef {
        match Reference::parse(s) {
            Ok(Reference::Vault(v)) => v,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn invalid(s: &str) -> String {
        match Reference::parse(s) {
            Err(Error::InvalidReference { reference, message }) => {
                assert_eq!(reference, s);
                message
            }
            other => panic!("{s}: expected InvalidReference, got {other:?}"),
        }
    }

    #[test]
    fn env_reference() {
        let r = Reference::parse("env:IDRAC_prod2").unwrap();
        assert_eq!(r.scheme(), "env");
        assert_eq!(
            r,
            Reference::Env(EnvRef {
                name: "IDRAC_prod2".into()
            })
        );
        assert!(invalid("env:").contains("variable name"));
        invalid("env:2IDRAC");
        invalid("env:IDRAC-PROD");
        invalid("env:A=B");
    }

    #[test]
    fn file_reference() {
        let r = Reference::parse("file:/etc/firmflow/creds.toml#idrac-prod").unwrap();
        assert_eq!(
            r,
            Reference::File(FileRef {
                path: "/etc/firmflow/creds.toml".into(),
                format: FileFormat::Toml,
                entry: Some("idrac-prod".into()),
            })
        );
        let Reference::File(f) = Reference::parse("file:creds.JSON").unwrap() else {
            panic!()
        };
        assert_eq!((f.format, f.entry), (FileFormat::Json, None));
        assert!(invalid("file:/etc/creds.yaml#x").contains(".toml or .json"));
        assert!(invalid("file:/etc/creds#x").contains(".toml or .json"));
        assert!(invalid("file:/etc/creds.toml#").contains("empty entry"));
        assert!(invalid("file:/etc/creds.toml#a#b").contains("more than one"));
        assert!(invalid("file:#x").contains("needs a path"));
    }

    #[test]
    fn vault_reference_forms() {
        let short = vault("vault:secret/firmflow/idrac-r640-01");
        assert_eq!(short.mount, "secret");
        assert_eq!(short.path_string(), "firmflow/idrac-r640-01");
        assert_eq!(short.field, None);
        // The API form names the same secret.
        assert_eq!(vault("vault:secret/data/firmflow/idrac-r640-01"), short);
        let with_field = vault("vault:kv/firmflow/idrac#field");
        assert_eq!(with_field.mount, "kv");
        assert_eq!(with_field.path, ["firmflow", "idrac"]);
        assert_eq!(with_field.field.as_deref(), Some("field"));
        // A secret literally called `data`, and one under `data/`.
        assert_eq!(vault("vault:kv/data").path, ["data"]);
        assert_eq!(vault("vault:kv/data/data/x").path, ["data", "x"]);
    }

    #[test]
    fn vault_reference_rejects() {
        assert!(invalid("vault:secret").contains("<mount>/<path>"));
        assert!(invalid("vault:/secret/x").contains("empty"));
        assert!(invalid("vault:secret//x").contains("empty"));
        assert!(invalid("vault:secret/x/").contains("empty"));
        assert!(invalid("vault:secret/../sys/x").contains("`..`"));
        assert!(invalid("vault:secret/x#").contains("empty field"));
    }

    #[test]
    fn scheme_errors() {
        assert!(invalid("IDRAC").contains("no scheme"));
        assert!(invalid("aws:foo").contains("unknown scheme `aws`"));
        assert!(invalid("ENV:IDRAC").contains("not a lowercase word"));
        assert!(invalid(":IDRAC").contains("not a lowercase word"));
        assert!(invalid("env:IDRAC\n").contains("whitespace"));
        assert!(invalid(" env:IDRAC").contains("whitespace"));
    }
}
