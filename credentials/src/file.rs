//! `file:` references: a TOML or JSON file of named credentials, refused
//! unless only its owner can read and write it and no stranger can swap it.

use crate::fields::{credential_from, kind};
use crate::reference::{FileFormat, FileRef, Reference};
use crate::{Credential, CredentialProvider, Error, err};
use async_trait::async_trait;
use serde_json::Value;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// Files larger than this are not credentials files; refusing them keeps a
/// wrong path (a log, a device) from being read into memory.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Resolves `file:/path/creds.toml#entry` and `file:/path/creds.json[#entry]`.
///
/// ```toml
/// [idrac-prod]
/// username = "root"
/// password = "..."
/// ```
///
/// On unix the file must have no group or other permission bits (`chmod 600`)
/// and neither the directory holding it nor, through a symlink, the one
/// holding its target may be world-writable. The mode is checked on the
/// opened file, so it cannot be swapped between check and read.
#[derive(Clone, Debug)]
pub struct FileProvider {
    username_field: String,
    password_field: String,
}

impl Default for FileProvider {
    fn default() -> Self {
        Self {
            username_field: "username".into(),
            password_field: "password".into(),
        }
    }
}

impl FileProvider {
    /// Reads fields `username` and `password`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads other field names.
    pub fn with_fields(
        mut self,
        username_field: impl Into<String>,
        password_field: impl Into<String>,
    ) -> Self {
        self.username_field = username_field.into();
        self.password_field = password_field.into();
        self
    }

    fn load(&self, reference: &str, file: &FileRef) -> Result<Credential, Error> {
        let path = file.path.as_path();
        let shown = path.display();
        let mut handle = fs::File::open(path).map_err(|e| io_error(reference, path, &e))?;
        let meta = handle
            .metadata()
            .map_err(|e| io_error(reference, path, &e))?;
        if !meta.is_file() {
            return Err(err::invalid(
                reference,
                format!("{shown} is not a regular file"),
            ));
        }
        check_permissions(reference, path, &meta)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(err::invalid(
                reference,
                format!(
                    "{shown} is {} bytes, more than a credentials file (1 MiB)",
                    meta.len()
                ),
            ));
        }
        let mut text = String::new();
        handle
            .read_to_string(&mut text)
            .map_err(|e| io_error(reference, path, &e))?;
        let document = parse(reference, path, file.format, &text)?;
        let object = match &file.entry {
            None => &document,
            Some(entry) => document.get(entry).ok_or_else(|| {
                let names = match &document {
                    Value::Object(map) => map
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => String::new(),
                };
                err::not_found(
                    reference,
                    format!("{shown} has no entry `{entry}` (entries: {names})"),
                )
            })?,
        };
        let place = match &file.entry {
            Some(entry) => format!("entry `{entry}` of {shown}"),
            None => format!("{shown} (top level; name an entry with #<entry>)"),
        };
        credential_from(object, &self.username_field, &self.password_field)
            .map_err(|message| err::not_found(reference, format!("{place}: {message}")))
    }
}

#[async_trait]
impl CredentialProvider for FileProvider {
    async fn resolve(&self, reference: &str) -> Result<Credential, Error> {
        let Reference::File(file) = Reference::parse(reference)? else {
            return Err(err::invalid(
                reference,
                "FileProvider resolves only file: references",
            ));
        };
        let this = self.clone();
        let owned = reference.to_owned();
        // File system calls block; keep them off the async workers.
        tokio::task::spawn_blocking(move || this.load(&owned, &file))
            .await
            .map_err(|e| err::unavailable(reference, format!("file reader task failed: {e}")))?
    }
}

fn io_error(reference: &str, path: &Path, e: &io::Error) -> Error {
    let message = format!("{}: {e}", path.display());
    match e.kind() {
        io::ErrorKind::NotFound => err::not_found(reference, message),
        io::ErrorKind::PermissionDenied => err::refused(reference, message),
        io::ErrorKind::InvalidData => {
            err::invalid(reference, format!("{} is not UTF-8", path.display()))
        }
        _ => err::unavailable(reference, message),
    }
}

/// Parses the document without ever quoting it: parser messages can echo the
/// offending text, which may be the secret, so only the position is kept.
fn parse(reference: &str, path: &Path, format: FileFormat, text: &str) -> Result<Value, Error> {
    let shown = path.display();
    let document = match format {
        FileFormat::Json => serde_json::from_str::<Value>(text).map_err(|e| {
            err::invalid(
                reference,
                format!(
                    "{shown} is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?,
        FileFormat::Toml => {
            let table: toml::Table = toml::from_str(text).map_err(|e| {
                // Byte-wise, so an odd span can never split a character.
                let line = e.span().map_or(0, |s| {
                    let before = text.as_bytes().iter().take(s.start);
                    before.filter(|b| **b == b'\n').count() + 1
                });
                err::invalid(
                    reference,
                    format!("{shown} is not valid TOML (near line {line})"),
                )
            })?;
            serde_json::to_value(table).map_err(|_| {
                err::invalid(
                    reference,
                    format!("{shown} holds TOML values that have no JSON form"),
                )
            })?
        }
    };
    match document {
        Value::Object(_) => Ok(document),
        other => Err(err::invalid(
            reference,
            format!("{shown} holds {}, expected a table/object", kind(&other)),
        )),
    }
}

#[cfg(unix)]
fn check_permissions(reference: &str, path: &Path, meta: &fs::Metadata) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(err::refused(
            reference,
            format!(
                "{} has mode {mode:04o}: group or others may access it; run `chmod 600 {}`",
                path.display(),
                path.display()
            ),
        ));
    }
    // A world-writable directory lets anyone replace the file (or the symlink
    // to it), even with the sticky bit: the name can be claimed before us.
    let lexical = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let mut dirs = vec![lexical];
    if let Some(real) = fs::canonicalize(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        && !dirs.contains(&real)
    {
        dirs.push(real);
    }
    for dir in dirs {
        let dir_mode = fs::metadata(&dir)
            .map_err(|e| io_error(reference, &dir, &e))?
            .permissions()
            .mode()
            & 0o7777;
        if dir_mode & 0o002 != 0 {
            return Err(err::refused(
                reference,
                format!(
                    "directory {} holding {} is world-writable (mode {dir_mode:04o}); move the file or run `chmod o-w {}`",
                    dir.display(),
                    path.display(),
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &str, _: &Path, _: &fs::Metadata) -> Result<(), Error> {
    // No portable mode bits; ACLs are the administrator's business there.
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tempfile::TempDir;

    const SECRET: &str = "s3cr3t-file-value";

    fn write(dir: &TempDir, name: &str, body: &str, mode: u32) -> String {
        let path = dir.path().join(name);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path.display().to_string()
    }

    fn toml_body() -> String {
        format!(
            "[idrac-prod]\nusername = \"root\"\npassword = \"{SECRET}\"\n\n\
             [vcenter]\nuser = \"administrator@vsphere.local\"\npass = \"{SECRET}\"\n\n\
             [broken]\nusername = \"root\"\npassword = 12345\n"
        )
    }

    async fn resolve(p: &FileProvider, reference: &str) -> Result<Credential, Error> {
        let result = p.resolve(reference).await;
        if let Err(e) = &result {
            assert!(!e.to_string().contains(SECRET), "{e}");
            assert!(!format!("{e:?}").contains(SECRET), "{e:?}");
        }
        result
    }

    #[tokio::test]
    async fn toml_entry_with_0600_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "creds.toml", &toml_body(), 0o600);
        let c = resolve(&FileProvider::new(), &format!("file:{path}#idrac-prod"))
            .await
            .unwrap();
        assert_eq!((c.username.as_str(), c.expose()), ("root", SECRET));
        assert!(!format!("{c:?}").contains(SECRET));
        let c = resolve(
            &FileProvider::new().with_fields("user", "pass"),
            &format!("file:{path}#vcenter"),
        )
        .await
        .unwrap();
        assert_eq!(c.username, "administrator@vsphere.local");
    }

    #[tokio::test]
    async fn json_top_level_and_entry_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let one = write(
            &dir,
            "one.json",
            &format!(r#"{{"username":"root","password":"{SECRET}"}}"#),
            0o400,
        );
        let c = resolve(&FileProvider::new(), &format!("file:{one}"))
            .await
            .unwrap();
        assert_eq!(c.expose(), SECRET);
        let many = write(
            &dir,
            "many.json",
            &format!(r#"{{"a":{{"username":"u","password":"{SECRET}"}}}}"#),
            0o600,
        );
        let c = resolve(&FileProvider::new(), &format!("file:{many}#a"))
            .await
            .unwrap();
        assert_eq!(c.username, "u");
    }

    #[tokio::test]
    async fn group_or_world_access_is_refused_naming_path_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o610] {
            let path = write(&dir, "creds.toml", &toml_body(), mode);
            match resolve(&FileProvider::new(), &format!("file:{path}#idrac-prod")).await {
                Err(Error::Refused { message, .. }) => {
                    assert!(message.contains(&path), "{message}");
                    assert!(message.contains(&format!("{mode:04o}")), "{message}");
                }
                other => panic!("mode {mode:o}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn world_writable_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "creds.toml", &toml_body(), 0o600);
        for mode in [0o777, 0o1777] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
            match resolve(&FileProvider::new(), &format!("file:{path}#idrac-prod")).await {
                Err(Error::Refused { message, .. }) => {
                    assert!(message.contains("world-writable"), "{message}");
                    assert!(
                        message.contains(&dir.path().display().to_string()),
                        "{message}"
                    );
                }
                other => panic!("dir mode {mode:o}: {other:?}"),
            }
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        resolve(&FileProvider::new(), &format!("file:{path}#idrac-prod"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn symlink_target_in_world_writable_directory_is_refused() {
        let safe = tempfile::tempdir().unwrap();
        let open = tempfile::tempdir().unwrap();
        let target = write(&open, "creds.toml", &toml_body(), 0o600);
        fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let link = safe.path().join("link.toml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = resolve(
            &FileProvider::new(),
            &format!("file:{}#idrac-prod", link.display()),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, Error::Refused { .. }) && e.to_string().contains("world-writable"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn missing_things_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "creds.toml", &toml_body(), 0o600);
        let p = FileProvider::new();
        let cases = [
            (
                format!("file:{}/absent.toml#x", dir.path().display()),
                "absent.toml",
            ),
            (
                format!("file:{path}#nope"),
                "no entry `nope` (entries: broken, idrac-prod, vcenter)",
            ),
            (format!("file:{path}#broken"), "entry `broken`"),
            (format!("file:{path}#vcenter"), "no field `username`"),
            (format!("file:{path}"), "name an entry"),
        ];
        for (reference, expected) in cases {
            match resolve(&p, &reference).await {
                Err(Error::NotFound { message, .. }) => {
                    assert!(message.contains(expected), "{message}")
                }
                other => panic!("{reference}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn malformed_files_are_reported_without_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = FileProvider::new();
        let toml = write(
            &dir,
            "bad.toml",
            &format!("[a]\nusername = \"root\"\npassword = {SECRET}\n"),
            0o600,
        );
        let e = resolve(&p, &format!("file:{toml}#a")).await.unwrap_err();
        assert!(
            e.to_string().contains("not valid TOML (near line 3)"),
            "{e}"
        );
        let json = write(
            &dir,
            "bad.json",
            &format!("{{\"password\": {SECRET}}}"),
            0o600,
        );
        let e = resolve(&p, &format!("file:{json}")).await.unwrap_err();
        assert!(e.to_string().contains("not valid JSON (line 1"), "{e}");
        let array = write(&dir, "array.json", &format!("[\"{SECRET}\"]"), 0o600);
        let e = resolve(&p, &format!("file:{array}")).await.unwrap_err();
        assert!(e.to_string().contains("holds an array"), "{e}");
        let binary = dir.path().join("bin.json");
        fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        fs::set_permissions(&binary, fs::Permissions::from_mode(0o600)).unwrap();
        let e = resolve(&p, &format!("file:{}", binary.display()))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }

    #[tokio::test]
    async fn directories_and_oversized_files_are_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("d.toml");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
        let e = resolve(&FileProvider::new(), &format!("file:{}", sub.display()))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let big = write(
            &dir,
            "big.toml",
            &"#".repeat(MAX_FILE_BYTES as usize + 1),
            0o600,
        );
        let e = resolve(&FileProvider::new(), &format!("file:{big}"))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("more than a credentials file"),
            "{e}"
        );
    }
}
