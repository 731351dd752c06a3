//! Secrets at rest: AES-256-GCM (RustCrypto `aes-gcm`).
//!
//! A sealed value is `nonce (12 bytes) || ciphertext+tag`. The associated data
//! binds each ciphertext to its row and field (`credential:<id>:secret`), so
//! a sealed secret copied into another row or column does not open. The key
//! comes from a key file or an environment variable; it is never logged and
//! `Debug` shows only its id.

use crate::error::PgStoreError;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use std::fmt;
use std::path::Path;

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
    /// A key from exactly 32 bytes. `id` names it in stored rows (key rotation).
    pub fn from_bytes(bytes: &[u8], id: impl Into<String>) -> Result<Self, PgStoreError> {
        if bytes.len() != 32 {
            return Err(PgStoreError::Key(format!(
                "an AES-256 key is 32 bytes, got {}",
                bytes.len()
            )));
        }
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| PgStoreError::Key("key of invalid length".into()))?;
        Ok(Self {
            cipher,
            id: id.into(),
        })
    }

    /// A key written as 64 hex digits or as base64 of 32 bytes.
    pub fn parse(text: &str, id: impl Into<String>) -> Result<Self, PgStoreError> {
        let t = text.trim();
        if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut out = [0u8; 32];
            for (byte, chunk) in out.iter_mut().zip(t.as_bytes().chunks(2)) {
                let s = std::str::from_utf8(chunk).map_err(|_| bad_text())?;
                *byte = u8::from_str_radix(s, 16).map_err(|_| bad_text())?;
            }
            return Self::from_bytes(&out, id);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(t)
            .map_err(|_| bad_text())?;
        Self::from_bytes(&bytes, id)
    }

    /// A key from a file holding 32 raw bytes, 64 hex digits or base64. On
    /// Unix the file must not be readable by group or others.
    pub fn from_file(path: &Path) -> Result<Self, PgStoreError> {
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
        let data = std::fs::read(path).map_err(|e| {
            PgStoreError::Key(format!("cannot read key file {}: {e}", path.display()))
        })?;
        let id = format!("file:{}", path.display());
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

    /// A key from an environment variable (hex or base64).
    pub fn from_env(var: &str) -> Result<Self, PgStoreError> {
        let v = std::env::var(var)
            .map_err(|_| PgStoreError::Key(format!("environment variable {var} is not set")))?;
        Self::parse(&v, format!("env:{var}")).map_err(|e| match e {
            PgStoreError::Key(m) => PgStoreError::Key(format!("environment variable {var}: {m}")),
            other => other,
        })
    }

    /// A fresh random key (for session tokens when no key is configured:
    /// they are a cache, and a restart simply logs in again).
    pub fn generate(id: impl Into<String>) -> Self {
        let key = Aes256Gcm::generate_key(OsRng);
        Self {
            cipher: Aes256Gcm::new(&key),
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
    fn key_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("ffkey-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("key");
        std::fs::write(&path, HEX).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(SecretKey::from_file(&path).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(SecretKey::from_file(&path).is_ok());
        std::fs::write(&path, [9u8; 32]).unwrap_or_else(|e| panic!("{e}"));
        assert!(SecretKey::from_file(&path).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
