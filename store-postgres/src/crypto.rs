//! Secrets at rest: AES-256-GCM (RustCrypto `aes-gcm`).
//!
//! A sealed value is `nonce (12 bytes) || ciphertext+tag`. The associated data
//! binds each ciphertext to its row and field (`credential:<id>:secret`), so
//! a sealed secret copied into another row or column does not open. A key
//! comes from a key file or an environment variable and carries an id given
//! by the operator (stored beside what it sealed); it is never logged and
//! `Debug` shows only its id.
//!
//! Rotation: a [`KeyRing`] holds several keys; the first seals, every one
//! opens what its id names. Key material is zeroized when dropped (the AES
//! key schedule by `aes`'s `zeroize` feature, the buffers it was read
//! through by `zeroize::Zeroizing`).

use crate::error::PgStoreError;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use std::fmt;
use std::path::Path;
use zeroize::{Zeroize as _, Zeroizing};

const NONCE_LEN: usize = 12;

/// The key that seals credentials and session tokens.
#[derive(Clone)]
pub struct SecretKey {
    cipher: Aes256Gcm,
    id: String,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl SecretKey {
    /// A key from exactly 32 bytes. `id` names it in stored rows (key
    /// rotation): `[A-Za-z0-9._:-]`, 1 to 64 characters.
    pub fn from_bytes(bytes: &[u8], id: impl Into<String>) -> Result<Self, PgStoreError> {
        let id = id.into();
        validate_key_id(&id)?;
        if bytes.len() != 32 {
            return Err(PgStoreError::Key(format!(
                "an AES-256 key is 32 bytes, got {}",
                bytes.len()
            )));
        }
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| PgStoreError::Key("key of invalid length".into()))?;
        Ok(Self { cipher, id })
    }

    /// A key written as 64 hex digits or as base64 of 32 bytes.
    pub fn parse(text: &str, id: impl Into<String>) -> Result<Self, PgStoreError> {
        let t = text.trim();
        if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut out = Zeroizing::new([0u8; 32]);
            for (byte, chunk) in out.iter_mut().zip(t.as_bytes().chunks(2)) {
                let s = std::str::from_utf8(chunk).map_err(|_| bad_text())?;
                *byte = u8::from_str_radix(s, 16).map_err(|_| bad_text())?;
            }
            return Self::from_bytes(out.as_slice(), id);
        }
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| bad_text())?,
        );
        Self::from_bytes(&bytes, id)
    }

    /// Key `id` from a file holding 32 raw bytes, 64 hex digits or base64.
    /// On Unix the file must not be readable by group or others. The id is
    /// the caller's, not the path: moving the file does not orphan the rows
    /// it sealed. (Rows sealed before ids were explicit name the key
    /// `file:<path>`; load it under that id to read them.)
    pub fn from_file(id: impl Into<String>, path: &Path) -> Result<Self, PgStoreError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let meta = std::fs::metadata(path).map_err(|e| {
                PgStoreError::Key(format!("cannot read key file {}: {e}", path.display()))
            })?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(PgStoreError::Key(format!(
                    "key file {} is readable by group or others (chmod 600 it)",
                    path.display()
                )));
            }
        }
        let data = Zeroizing::new(std::fs::read(path).map_err(|e| {
            PgStoreError::Key(format!("cannot read key file {}: {e}", path.display()))
        })?);
        if data.len() == 32 {
            return Self::from_bytes(&data, id);
        }
        let text = std::str::from_utf8(&data).map_err(|_| {
            PgStoreError::Key(format!(
                "key file {} holds neither 32 raw bytes nor hex/base64 text",
                path.display()
            ))
        })?;
        Self::parse(text, id).map_err(|e| match e {
            PgStoreError::Key(m) => PgStoreError::Key(format!("key file {}: {m}", path.display())),
            other => other,
        })
    }

    /// Key `id` from an environment variable (hex or base64).
    pub fn from_env(id: impl Into<String>, var: &str) -> Result<Self, PgStoreError> {
        let v =
            Zeroizing::new(std::env::var(var).map_err(|_| {
                PgStoreError::Key(format!("environment variable {var} is not set"))
            })?);
        Self::parse(&v, id).map_err(|e| match e {
            PgStoreError::Key(m) => PgStoreError::Key(format!("environment variable {var}: {m}")),
            other => other,
        })
    }

    /// A fresh random key (for session tokens when no key is configured:
    /// they are a cache, and a restart simply logs in again).
    pub fn generate(id: impl Into<String>) -> Self {
        let mut key = Aes256Gcm::generate_key(OsRng);
        let cipher = Aes256Gcm::new(&key);
        key.as_mut_slice().zeroize();
        Self {
            cipher,
            id: id.into(),
        }
    }

    /// The key's id, as stored beside what it sealed.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plain`, bound to `aad`.
    pub(crate) fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, PgStoreError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .map_err(|_| PgStoreError::Key("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens what [`Self::seal`] produced with the same `aad`.
    pub(crate) fn open(
        &self,
        sealed: &[u8],
        aad: &[u8],
        what: &str,
    ) -> Result<Vec<u8>, PgStoreError> {
        let fail = || PgStoreError::Decrypt {
            what: what.to_string(),
        };
        if sealed.len() < NONCE_LEN + 16 {
            return Err(fail());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| fail())
    }
}

fn validate_key_id(id: &str) -> Result<(), PgStoreError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'/'));
    if ok {
        Ok(())
    } else {
        Err(PgStoreError::Key(format!(
            "key id {id:?} must be 1 to 64 of [A-Za-z0-9._:/-]"
        )))
    }
}

/// The keys a store holds: the first seals every new value, each of them
/// opens what was sealed under its id. Rotating is: put the new key first,
/// keep the old ones after it, run [`crate::PgStore::reencrypt_credentials`],
/// then drop the old keys.
#[derive(Clone)]
pub struct KeyRing {
    sealing: SecretKey,
    older: Vec<SecretKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

impl From<SecretKey> for KeyRing {
    fn from(key: SecretKey) -> Self {
        Self {
            sealing: key,
            older: Vec::new(),
        }
    }
}

impl KeyRing {
    /// A ring of `keys`, the sealing (newest) key first. Refuses an empty
    /// ring and two keys of one id.
    pub fn new(keys: Vec<SecretKey>) -> Result<Self, PgStoreError> {
        for (i, k) in keys.iter().enumerate() {
            if keys.iter().skip(i + 1).any(|o| o.id == k.id) {
                return Err(PgStoreError::Key(format!(
                    "key id {:?} is given twice",
                    k.id
                )));
            }
        }
        let mut keys = keys.into_iter();
        let sealing = keys
            .next()
            .ok_or_else(|| PgStoreError::Key("a key ring needs at least one key".into()))?;
        Ok(Self {
            sealing,
            older: keys.collect(),
        })
    }

    /// Reads a ring from its textual form: comma-separated `id=file:PATH`
    /// or `id=env:VAR` entries, the sealing key first (e.g.
    /// `2026-12=file:/etc/firmflow/k2,2026-01=file:/etc/firmflow/k1`).
    pub fn parse_spec(spec: &str) -> Result<Self, PgStoreError> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, source) = entry.split_once('=').ok_or_else(|| {
                PgStoreError::Key(format!(
                    "key ring entry {entry:?} is not id=file:PATH or id=env:VAR"
                ))
            })?;
            let key = if let Some(path) = source.strip_prefix("file:") {
                SecretKey::from_file(id.trim(), Path::new(path))?
            } else if let Some(var) = source.strip_prefix("env:") {
                SecretKey::from_env(id.trim(), var)?
            } else {
                return Err(PgStoreError::Key(format!(
                    "key ring entry {entry:?}: the source is file:PATH or env:VAR"
                )));
            };
            keys.push(key);
        }
        Self::new(keys)
    }

    /// The key new values are sealed with.
    pub fn sealing(&self) -> &SecretKey {
        &self.sealing
    }

    /// The key of id `id`, if loaded.
    pub fn get(&self, id: &str) -> Option<&SecretKey> {
        self.keys().find(|k| k.id == id)
    }

    /// The ids, sealing key first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys().map(|k| k.id.as_str())
    }

    fn keys(&self) -> impl Iterator<Item = &SecretKey> {
        std::iter::once(&self.sealing).chain(self.older.iter())
    }
}

fn bad_text() -> PgStoreError {
    PgStoreError::Key("expected 64 hex digits or base64 of 32 bytes".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = SecretKey::parse(HEX, "t").unwrap_or_else(|e| panic!("{e}"));
        let sealed = k
            .seal(b"calvin", b"credential:1:secret")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!sealed.windows(6).any(|w| w == b"calvin"));
        let plain = k
            .open(&sealed, b"credential:1:secret", "c")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plain, b"calvin");
        // Another row's associated data does not open it.
        assert!(k.open(&sealed, b"credential:2:secret", "c").is_err());
        // Nor does another key.
        let other = SecretKey::generate("o");
        assert!(other.open(&sealed, b"credential:1:secret", "c").is_err());
        // Two seals of one value differ (fresh nonce).
        let again = k
            .seal(b"calvin", b"credential:1:secret")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(sealed, again);
    }

    #[test]
    fn parses_hex_and_base64_and_refuses_bad_keys() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(SecretKey::parse(&b64, "b").is_ok());
        assert!(SecretKey::parse(HEX, "h").is_ok());
        assert!(SecretKey::parse("abc", "x").is_err());
        assert!(SecretKey::from_bytes(&[1u8; 16], "x").is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = SecretKey::parse(HEX, "my-key").unwrap_or_else(|e| panic!("{e}"));
        let s = format!("{k:?}");
        assert!(s.contains("my-key") && s.contains("REDACTED"), "{s}");
        assert!(!s.contains("0001020304"), "{s}");
    }

    #[test]
    fn ring_seals_with_the_first_key_and_finds_each_by_id() {
        let k1 = SecretKey::parse(HEX, "k1").unwrap_or_else(|e| panic!("{e}"));
        let k2 = SecretKey::generate("k2");
        let ring = KeyRing::new(vec![k2, k1.clone()]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ring.sealing().id(), "k2");
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        let sealed = k1.seal(b"x", b"a").unwrap_or_else(|e| panic!("{e}"));
        let by_id = ring.get("k1").unwrap_or_else(|| panic!("k1 loaded"));
        assert_eq!(
            by_id.open(&sealed, b"a", "c").ok().as_deref(),
            Some(&b"x"[..])
        );
        assert!(ring.get("k3").is_none());
        assert!(KeyRing::new(vec![]).is_err());
        assert!(KeyRing::new(vec![k1.clone(), k1]).is_err(), "one id twice");
        assert!(format!("{ring:?}").contains("k2"));
    }

    #[test]
    fn key_ids_are_checked() {
        assert!(SecretKey::parse(HEX, "").is_err());
        assert!(SecretKey::parse(HEX, "has space").is_err());
        assert!(SecretKey::parse(HEX, "x".repeat(65)).is_err());
        assert!(SecretKey::parse(HEX, "2026-12.primary").is_ok());
    }

    #[test]
    fn ring_spec_reads_files_and_environment_with_explicit_ids() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("ffring-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("k");
        std::fs::write(&path, HEX).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{e}"));
        let spec = format!("new=file:{}", path.display());
        let ring = KeyRing::parse_spec(&spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ring.sealing().id(),
            "new",
            "the id is the one given, not the path"
        );
        assert!(KeyRing::parse_spec("nokey").is_err());
        assert!(KeyRing::parse_spec("a=ftp:x").is_err());
        assert!(KeyRing::parse_spec("").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn key_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("ffkey-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("key");
        std::fs::write(&path, HEX).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(SecretKey::from_file("k1", &path).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(SecretKey::from_file("k1", &path).is_ok());
        std::fs::write(&path, [9u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert!(SecretKey::from_file("k1", &path).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
