//! Errors of the vim25 client, and how they become core's `cluster::Error`.

use crate::soap::Fault;
use firmflow_core::cluster::{Error as ClusterError, ErrorKind};
use firmflow_core::credentials::Error as CredentialError;

/// What went wrong talking to a vCenter. Never contains a secret: request
/// bodies (which carry the password) and session cookies are never included.
#[derive(Debug, thiserror::Error)]
pub enum VimError {
    /// The server answered with a vim25 fault (SOAP fault or failed task).
    #[error("{method}: {fault}")]
    Fault {
        /// The call (or `task` for a failed task).
        method: String,
        /// The fault.
        fault: Fault,
    },
    /// HTTP status without a readable SOAP fault.
    #[error("{method}: HTTP {status}: {excerpt}")]
    Http {
        /// The call.
        method: String,
        /// Status code.
        status: u16,
        /// Start of the body.
        excerpt: String,
    },
    /// Could not connect, or the connection broke.
    #[error("{method}: {message}")]
    Transport {
        /// The call.
        method: String,
        /// Details.
        message: String,
    },
    /// The server's certificate was not trusted.
    #[error("{method}: TLS verification failed: {message}")]
    Tls {
        /// The call.
        method: String,
        /// Details.
        message: String,
    },
    /// The answer could not be understood.
    #[error("{method}: unexpected answer: {message}")]
    Protocol {
        /// The call.
        method: String,
        /// Details.
        message: String,
    },
    /// The credential could not be resolved.
    #[error("vCenter credential: {0}")]
    Credential(#[from] CredentialError),
    /// A wait ran out of time on our side.
    #[error("{what}: no answer within {secs:.1} s")]
    Timeout {
        /// What was waited for.
        what: String,
        /// The allowance.
        secs: f64,
    },
    /// The configuration is unusable (bad URL, unreadable CA file).
    #[error("vCenter configuration: {0}")]
    Config(String),
}

/// Classifies a vim25 fault type. Subtypes that matter are listed by name
/// because SOAP faults carry only the most derived type.
pub(crate) fn fault_kind(kind: &str) -> ErrorKind {
    match kind {
        "InvalidLogin"
        | "NotAuthenticated"
        | "NoPermission"
        | "InvalidPrivilege"
        | "NoClientCertificate"
        | "PasswordExpired"
        | "InvalidCertificate" => ErrorKind::Authentication,
        "InvalidState"
        | "InvalidHostState"
        | "InvalidPowerState"
        | "InvalidHostConnectionState"
        | "HostInMaintenanceMode"
        | "InvalidDatastoreState" => ErrorKind::InvalidState,
        "Timedout" => ErrorKind::Timeout,
        "MethodDisabled" => ErrorKind::MethodDisabled,
        "ManagedObjectNotFound" | "NotFound" => ErrorKind::NotFound,
        // Busy or unreachable for now: another task holds the host, vCenter
        // lost the host agent, or vCenter itself is struggling.
        "TaskInProgress" | "HostCommunication" | "HostNotConnected" | "HostNotReachable"
        | "SystemError" | "ServerNotReady" => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

impl VimError {
    /// The fault type when this is a vim25 fault.
    pub fn fault_type(&self) -> Option<&str> {
        match self {
            VimError::Fault { fault, .. } => Some(&fault.kind),
            _ => None,
        }
    }

    /// Whether the session is gone (log in again and retry once).
    pub(crate) fn is_not_authenticated(&self) -> bool {
        self.fault_type() == Some("NotAuthenticated")
    }

    /// core's classification.
    pub fn kind(&self) -> ErrorKind {
        match self {
            VimError::Fault { fault, .. } => fault_kind(&fault.kind),
            VimError::Http { status, .. } => match status {
                401 | 403 => ErrorKind::Authentication,
                404 => ErrorKind::NotFound,
                500..=599 => ErrorKind::Transient,
                _ => ErrorKind::Other,
            },
            VimError::Transport { .. } => ErrorKind::Transient,
            VimError::Tls { .. } | VimError::Protocol { .. } | VimError::Config(_) => {
                ErrorKind::Other
            }
            VimError::Credential(e) => match e {
                CredentialError::Unavailable { .. } => ErrorKind::Transient,
                _ => ErrorKind::Authentication,
            },
            VimError::Timeout { .. } => ErrorKind::Timeout,
        }
    }

    /// core's error, naming `target` (a host or cluster).
    pub fn into_cluster_error(self, target: impl Into<String>) -> ClusterError {
        ClusterError::new(target, self.kind(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: &str) -> VimError {
        VimError::Fault {
            method: "EnterMaintenanceMode_Task".into(),
            fault: Fault {
                kind: kind.into(),
                message: "m".into(),
            },
        }
    }

    #[test]
    fn faults_map_to_core_kinds() {
        for (f, k) in [
            ("InvalidLogin", ErrorKind::Authentication),
            ("NoPermission", ErrorKind::Authentication),
            ("InvalidState", ErrorKind::InvalidState),
            ("InvalidHostState", ErrorKind::InvalidState),
            ("Timedout", ErrorKind::Timeout),
            ("MethodDisabled", ErrorKind::MethodDisabled),
            ("ManagedObjectNotFound", ErrorKind::NotFound),
            ("TaskInProgress", ErrorKind::Transient),
            ("HostNotConnected", ErrorKind::Transient),
            ("VimFault", ErrorKind::Other),
        ] {
            assert_eq!(fault(f).kind(), k, "{f}");
        }
    }

    #[test]
    fn cluster_error_names_the_target_and_the_fault() {
        let e = fault("MethodDisabled").into_cluster_error("esx1.example.com (host-23)");
        assert_eq!(e.target, "esx1.example.com (host-23)");
        assert_eq!(e.kind, ErrorKind::MethodDisabled);
        assert!(e.message.contains("EnterMaintenanceMode_Task"), "{e}");
        assert!(!e.is_transient());
    }

    #[test]
    fn http_status_classes() {
        let h = |status| VimError::Http {
            method: "m".into(),
            status,
            excerpt: String::new(),
        };
        assert_eq!(h(503).kind(), ErrorKind::Transient);
        assert_eq!(h(401).kind(), ErrorKind::Authentication);
        assert_eq!(h(400).kind(), ErrorKind::Other);
    }
}
