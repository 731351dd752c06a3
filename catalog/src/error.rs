//! Errors of the catalog crate. Every variant names the file or URL it is
//! about and, for content errors, the place (line, column, byte offset), so
//! an operator can open the file at the right spot. Nothing read from outside
//! panics: it ends up here.

use firmflow_core::artifacts;
use std::fmt;

/// Where in a catalog something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line in the decoded text, when known.
    pub line: Option<u64>,
    /// 1-based column (in bytes of the decoded UTF-8 text), when known.
    pub column: Option<u64>,
    /// Byte offset: in the decoded UTF-8 text for XML errors, in the
    /// (compressed or raw) file for gzip and encoding errors; see the message.
    pub offset: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c} (byte offset {})", self.offset),
            (Some(l), None) => write!(f, "line {l} (byte offset {})", self.offset),
            _ => write!(f, "byte offset {}", self.offset),
        }
    }
}

/// Everything that can go wrong reading, fetching or using a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read: {message}")]
    Io {
        /// File or URL.
        file: String,
        /// The OS error text.
        message: String,
    },
    /// A `.cab` catalog (Dell's old `Catalog.cab`).
    #[error(
        "{file}: .cab catalogs are not supported; use Catalog.xml.gz (https://dl.dell.com/catalog/Catalog.xml.gz) or an extracted Catalog.xml"
    )]
    CabNotSupported {
        /// File or URL.
        file: String,
    },
    /// The gzip stream is corrupt or truncated.
    #[error("{file}: corrupt or truncated gzip data at {position}: {message}")]
    Gzip {
        /// File or URL.
        file: String,
        /// Offset in the compressed file.
        position: Position,
        /// What the decompressor said.
        message: String,
    },
    /// The bytes are not valid in the detected encoding.
    #[error("{file}: invalid {encoding} at {position}: {message}")]
    Encoding {
        /// File or URL.
        file: String,
        /// The encoding the reader decoded with.
        encoding: String,
        /// Offset in the decompressed file bytes.
        position: Position,
        /// Details.
        message: String,
    },
    /// The XML is not well-formed.
    #[error("{file}: malformed XML at {position}: {message}")]
    Xml {
        /// File or URL.
        file: String,
        /// Place in the decoded text.
        position: Position,
        /// What the parser said.
        message: String,
    },
    /// Well-formed XML, but not a Dell catalog (wrong root, missing
    /// mandatory attribute, ...).
    #[error("{file}: not a usable Dell catalog at {position}: {message}")]
    Structure {
        /// File or URL.
        file: String,
        /// Place in the decoded text.
        position: Position,
        /// What was wrong.
        message: String,
    },
    /// The server is not a Dell system: a Dell catalog says nothing about it.
    #[error("{file}: not a Dell system (Manufacturer: {manufacturer}), catalog does not apply")]
    NotDell {
        /// File or URL.
        file: String,
        /// The system's `Manufacturer`.
        manufacturer: String,
    },
    /// The catalog lists nothing for the server's model.
    #[error("{file}: no entry for system id {system_id} ({model}) in the catalog")]
    NoModel {
        /// File or URL.
        file: String,
        /// The 4-hex system id looked for.
        system_id: String,
        /// Model name if known.
        model: String,
    },
    /// An HTTP(S) fetch failed.
    #[error("{url}: {message}")]
    Http {
        /// URL (never with credentials: URLs with a password are redacted).
        url: String,
        /// What happened.
        message: String,
        /// Whether retrying may help (5xx, connection errors).
        transient: bool,
    },
    /// A downloaded file does not match its checksum or size.
    #[error("{file}: verification failed: {message}")]
    Verification {
        /// File or URL.
        file: String,
        /// What did not match.
        message: String,
    },
}

impl CatalogError {
    /// The file or URL the error is about.
    pub fn file(&self) -> &str {
        match self {
            CatalogError::Io { file, .. }
            | CatalogError::CabNotSupported { file }
            | CatalogError::Gzip { file, .. }
            | CatalogError::Encoding { file, .. }
            | CatalogError::Xml { file, .. }
            | CatalogError::Structure { file, .. }
            | CatalogError::NoModel { file, .. }
            | CatalogError::NotDell { file, .. }
            | CatalogError::Verification { file, .. } => file,
            CatalogError::Http { url, .. } => url,
        }
    }

    /// Whether retrying may help (network trouble only; a corrupt file stays corrupt).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CatalogError::Http {
                transient: true,
                ..
            }
        )
    }
}

impl From<CatalogError> for artifacts::Error {
    fn from(e: CatalogError) -> Self {
        match &e {
            CatalogError::Verification { file, message } => artifacts::Error::Verification {
                package: file.clone(),
                message: message.clone(),
            },
            CatalogError::NoModel { file, .. } => artifacts::Error::NoMatch {
                host: String::new(),
                message: format!("{e} ({file})"),
            },
            _ => artifacts::Error::Source {
                source_name: e.file().to_string(),
                message: e.to_string(),
                transient: e.is_transient(),
            },
        }
    }
}

/// Removes a password from a URL before it is shown anywhere.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() || !u.username().is_empty() => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_display_names_line_and_offset() {
        let p = Position {
            line: Some(3),
            column: Some(7),
            offset: 120,
        };
        assert_eq!(p.to_string(), "line 3, column 7 (byte offset 120)");
        let p = Position {
            line: None,
            column: None,
            offset: 9,
        };
        assert_eq!(p.to_string(), "byte offset 9");
    }

    #[test]
    fn maps_to_core_errors() {
        let e: artifacts::Error = CatalogError::Http {
            url: "https://x/c.xml".into(),
            message: "503".into(),
            transient: true,
        }
        .into();
        assert!(e.is_transient());
        let e: artifacts::Error = CatalogError::Verification {
            file: "p.exe".into(),
            message: "sha256 mismatch".into(),
        }
        .into();
        assert!(matches!(e, artifacts::Error::Verification { .. }));
        let e: artifacts::Error = CatalogError::Xml {
            file: "c.xml".into(),
            position: Position::default(),
            message: "x".into(),
        }
        .into();
        assert!(matches!(
            e,
            artifacts::Error::Source {
                transient: false,
                ..
            }
        ));
    }

    #[test]
    fn redacts_url_credentials() {
        assert_eq!(
            redact_url("https://user:secret@mirror.example/c.xml"),
            "https://mirror.example/c.xml"
        );
        assert_eq!(redact_url("/tmp/c.xml"), "/tmp/c.xml");
    }
}
