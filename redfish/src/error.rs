//! Turning what a BMC answered into the core's typed [`bmc::Error`].
//!
//! iDRAC error bodies carry `@Message.ExtendedInfo[].MessageId` such as
//! `IDRAC.2.8.RAC0679`; the registry prefix changes with the firmware
//! (`IDRAC.2.1.` … `IDRAC.2.9.`) and job objects use bare ids (`JCP001`), so
//! every decision is made on the id's last segment. A MessageId decides the
//! class when the driver knows it; otherwise the HTTP status does.

use firmflow_core::bmc::{self, ErrorKind};
use serde_json::Value;

/// What a classified BMC message means for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An error of this kind.
    Error(ErrorKind),
    /// `SUP029`: the firmware already matches: a no-op success.
    AlreadyInstalled,
}

/// The last segment of a MessageId (`IDRAC.2.8.RAC0679` → `RAC0679`).
pub fn message_suffix(message_id: &str) -> &str {
    message_id.rsplit('.').next().unwrap_or(message_id)
}

/// The class of a MessageId the driver knows, `None` otherwise.
///
/// Sources: Dell EEMI registry (omsdk `idracmsgdb.py`), Dell scripts, sushy;
/// see `shared/research/redfish-idrac.md` §8.
pub fn classify_message_id(message_id: &str) -> Option<Outcome> {
    let suffix = message_suffix(message_id);
    let kind = match suffix {
        "SUP029" => return Some(Outcome::AlreadyInstalled),
        // Another update or job holds the Lifecycle Controller: retry later.
        "SUP0108" | "RAC0679" | "RED014" | "LC068" | "LC060" | "JCP024" | "RED023" | "SWC0700"
        | "ResourceInUse" => ErrorKind::Busy,
        // The job queue is full: clearing it helps, waiting may.
        "JCP017" | "JCP014" => ErrorKind::Busy,
        // iDRAC data sources unavailable (returned with 500): retry.
        "SYS518" | "ServiceTemporarilyUnavailable" => ErrorKind::ServiceUnavailable,
        "RAC0218" | "SessionLimitExceeded" => ErrorKind::SessionLimit,
        "SYS415" | "SYS416" | "NoValidSession" | "InsufficientPrivilege" => {
            ErrorKind::Authentication
        }
        "SYS402" | "ActionNotSupported" | "OperationNotAllowed" => ErrorKind::NotSupported,
        // Download, signature, extraction, wrong device or platform, validation.
        "RED006" | "RED007" | "RED008" | "RED013" | "RED017" | "RED097" | "RED098" | "RED106"
        | "SUP0515" | "SUP0519" | "SUP0538" | "SUP024" => ErrorKind::PackageRejected,
        _ if is_red_failure(suffix) => ErrorKind::PackageRejected,
        "ResourceNotFound" | "ResourceMissingAtURI" => ErrorKind::NotFound,
        _ => return None,
    };
    Some(Outcome::Error(kind))
}

/// `RED0xx`/`RED1xx` ids that report progress or success; every other `RED`
/// id the update service returns as an error is a package refusal.
fn is_red_failure(suffix: &str) -> bool {
    const PROGRESS_OR_SUCCESS: &[&str] =
        &["RED001", "RED002", "RED003", "RED030", "RED063", "RED092"];
    suffix.starts_with("RED")
        && suffix[3..].chars().all(|c| c.is_ascii_digit())
        && suffix.len() > 3
        && !PROGRESS_OR_SUCCESS.contains(&suffix)
}

/// One message out of a Redfish error body or a `Messages` array.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BmcMessage {
    /// Full MessageId as sent.
    pub message_id: Option<String>,
    /// Human text.
    pub message: Option<String>,
    /// `Severity` / `MessageSeverity` when given.
    pub severity: Option<String>,
}

/// The messages of a Redfish error body (`error.@Message.ExtendedInfo`,
/// then `error.code`/`error.message`) or of a success body carrying
/// top-level `@Message.ExtendedInfo`. Tolerates `MessageArgs: "[]"` and any
/// missing field; never fails.
pub fn messages_of(body: &Value) -> Vec<BmcMessage> {
    let mut out = Vec::new();
    let err = body.get("error").unwrap_or(body);
    if let Some(infos) = err.get("@Message.ExtendedInfo").and_then(Value::as_array) {
        out.extend(infos.iter().map(message_of));
    }
    let code = err.get("code").and_then(Value::as_str);
    let text = err.get("message").and_then(Value::as_str);
    if code.is_some() || text.is_some() {
        out.push(BmcMessage {
            message_id: code.map(str::to_owned),
            message: text.map(str::to_owned),
            severity: None,
        });
    }
    out
}

/// One `Message` object.
pub fn message_of(v: &Value) -> BmcMessage {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    BmcMessage {
        message_id: s("MessageId"),
        message: s("Message"),
        severity: s("Severity").or_else(|| s("MessageSeverity")),
    }
}

/// The most telling message: the first whose id the driver knows, else the
/// first with an id that is not the generic `Base.*.GeneralError`, else the first.
fn pick(messages: &[BmcMessage]) -> Option<&BmcMessage> {
    messages
        .iter()
        .find(|m| {
            m.message_id
                .as_deref()
                .and_then(classify_message_id)
                .is_some()
        })
        .or_else(|| {
            messages.iter().find(|m| {
                m.message_id
                    .as_deref()
                    .is_some_and(|id| message_suffix(id) != "GeneralError")
            })
        })
        .or_else(|| messages.first())
}

/// The kind an HTTP status means when no MessageId decides.
pub fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::Authentication,
        // Licence missing or privilege too low: retrying will not help.
        403 | 405 | 501 => ErrorKind::NotSupported,
        404 | 410 => ErrorKind::NotFound,
        408 | 504 => ErrorKind::Timeout,
        409 | 423 => ErrorKind::Busy,
        // 500 is what a busy iDRAC answers (SYS518, "iDRAC is not ready").
        429 | 500 | 502 | 503 => ErrorKind::ServiceUnavailable,
        _ => ErrorKind::Other,
    }
}

/// The classified outcome of an HTTP error response.
pub fn classify_http(host: &str, status: u16, body: &str) -> (Outcome, bmc::Error) {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let messages = parsed.as_ref().map(messages_of).unwrap_or_default();
    let chosen = pick(&messages);
    let known = chosen
        .and_then(|m| m.message_id.as_deref())
        .and_then(classify_message_id);
    let outcome = known.unwrap_or_else(|| Outcome::Error(kind_for_status(status)));
    let kind = match &outcome {
        Outcome::Error(k) => k.clone(),
        Outcome::AlreadyInstalled => ErrorKind::Other,
    };
    let text = chosen.and_then(|m| m.message.clone()).unwrap_or_else(|| {
        if parsed.is_none() && !body.trim().is_empty() {
            // Not JSON (an HTML error page, a proxy): keep a short excerpt.
            let excerpt: String = body.chars().take(200).collect();
            format!("HTTP {status}: {excerpt}")
        } else {
            format!("HTTP {status}")
        }
    });
    let mut err = bmc::Error::new(host, kind, format!("{text} (HTTP {status})"));
    if let Some(id) = chosen.and_then(|m| m.message_id.clone()) {
        err = err.with_message_id(id);
    }
    (outcome, err)
}

/// Whether a transport error looks like a TLS verification failure.
pub fn looks_like_tls(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "certificate",
        "unknownissuer",
        "tls handshake",
        "invalidcertificate",
        "pinned",
    ]
    .iter()
    .any(|k| t.contains(k))
}

/// The full source chain of an error as one line (reqwest hides the cause).
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}

/// The error for a request that got no usable response.
pub fn transport_error(host: &str, err: &reqwest::Error) -> bmc::Error {
    let mut text = chain(err);
    if let Some(why) = crate::tls::explain_failure(&text) {
        text = format!("{text}: {why}");
    }
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if looks_like_tls(&text) {
        ErrorKind::Tls
    } else {
        // Refused, reset, closed mid-response: what a restarting iDRAC does.
        ErrorKind::Unreachable
    };
    bmc::Error::new(host, kind, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_ignores_registry_version() {
        assert_eq!(message_suffix("IDRAC.2.8.RAC0679"), "RAC0679");
        assert_eq!(message_suffix("JCP001"), "JCP001");
        assert_eq!(message_suffix("Base.1.12.GeneralError"), "GeneralError");
    }

    #[test]
    fn known_ids_map_to_classes() {
        use ErrorKind::*;
        let k = |id: &str| classify_message_id(id);
        assert_eq!(k("IDRAC.2.8.SUP0108"), Some(Outcome::Error(Busy)));
        assert_eq!(k("IDRAC.2.8.RAC0679"), Some(Outcome::Error(Busy)));
        assert_eq!(
            k("IDRAC.2.8.SYS518"),
            Some(Outcome::Error(ServiceUnavailable))
        );
        assert_eq!(k("IDRAC.2.9.SYS415"), Some(Outcome::Error(Authentication)));
        assert_eq!(k("IDRAC.2.8.RAC0218"), Some(Outcome::Error(SessionLimit)));
        assert_eq!(k("RED006"), Some(Outcome::Error(PackageRejected)));
        assert_eq!(k("IDRAC.2.8.RED099"), Some(Outcome::Error(PackageRejected)));
        assert_eq!(k("IDRAC.2.8.SUP029"), Some(Outcome::AlreadyInstalled));
        assert_eq!(k("RED001"), None);
        assert_eq!(k("IDRAC.2.8.JCP017"), Some(Outcome::Error(Busy)));
        assert_eq!(k("Base.1.12.GeneralError"), None);
        assert_eq!(k("REDX"), None);
    }

    #[test]
    fn transient_and_terminal_classes() {
        for id in ["SUP0108", "RAC0679", "SYS518"] {
            let Some(Outcome::Error(kind)) = classify_message_id(id) else {
                panic!("{id} unclassified")
            };
            assert_eq!(kind.class(), bmc::ErrorClass::Transient, "{id}");
        }
        for id in ["SYS415", "RED007", "SUP0538"] {
            let Some(Outcome::Error(kind)) = classify_message_id(id) else {
                panic!("{id} unclassified")
            };
            assert_eq!(kind.class(), bmc::ErrorClass::Terminal, "{id}");
        }
    }

    #[test]
    fn status_fallback() {
        assert_eq!(kind_for_status(503), ErrorKind::ServiceUnavailable);
        assert!(kind_for_status(500).class() == bmc::ErrorClass::Transient);
        assert_eq!(kind_for_status(401), ErrorKind::Authentication);
        assert_eq!(kind_for_status(404), ErrorKind::NotFound);
        assert_eq!(kind_for_status(400), ErrorKind::Other);
    }

    #[test]
    fn non_json_body_is_kept_short() {
        let body = "<html>".to_string() + &"x".repeat(1000);
        let (o, e) = classify_http("h", 502, &body);
        assert_eq!(o, Outcome::Error(ErrorKind::ServiceUnavailable));
        assert!(e.message.len() < 300, "{}", e.message);
        assert!(e.message_id.is_none());
    }

    #[test]
    fn string_message_args_do_not_matter() {
        let body = r#"{"error":{"@Message.ExtendedInfo":[{"Message":"busy","MessageArgs":"[]","MessageId":"IDRAC.2.8.RAC0679"}],"code":"IDRAC.2.8.RAC0679","message":"wait"}}"#;
        let (o, e) = classify_http("idrac-1", 400, body);
        assert_eq!(o, Outcome::Error(ErrorKind::Busy));
        assert_eq!(e.message_id.as_deref(), Some("IDRAC.2.8.RAC0679"));
        assert!(e.message.contains("busy"));
        assert_eq!(e.host, "idrac-1");
    }
}
