//! iDRAC-shaped error and success bodies (`@Message.ExtendedInfo`).

use super::*;

pub(super) fn ext(host: &Host, msg: &Msg, args: &[String]) -> Value {
    let id = if msg.id.contains('.') || is_base(msg) {
        format!("Base.1.12.{}", msg.id)
    } else if host.is_dell() {
        format!("{}{}", host.registry(), msg.id)
    } else {
        format!("Base.1.12.{}", generic_id(msg))
    };
    json!({
        "Message": render(msg.message, args),
        "MessageArgs": args,
        "MessageArgs@odata.count": args.len(),
        "MessageId": id,
        "RelatedProperties": [],
        "RelatedProperties@odata.count": 0,
        "Resolution": msg.resolution,
        "Severity": msg.severity,
    })
}

pub(super) fn is_base(msg: &Msg) -> bool {
    msg.id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase())
        && msg.id.chars().any(|c| c.is_ascii_lowercase())
}

pub(super) fn generic_id(msg: &Msg) -> &'static str {
    match msg.id {
        "RAC0218" => "SessionLimitExceeded",
        "SYS518" | "LC060" => "ServiceTemporarilyUnavailable",
        "JCP017" => "CreateLimitReachedForResource",
        "SYS415" => "NoValidSession",
        "SYS402" => "OperationNotAllowed",
        "SYS403" => "ResourceMissingAtURI",
        _ => "GeneralError",
    }
}

pub(super) fn error(host: &Host, status: StatusCode, msg: Msg, args: &[String]) -> Reply {
    let info = ext(host, &msg, args);
    let code = if is_base(&msg) {
        format!("Base.1.12.{}", msg.id)
    } else {
        "Base.1.12.GeneralError".to_string()
    };
    Reply::json(
        status,
        &json!({"error": {
            "@Message.ExtendedInfo": [info],
            "code": code,
            "message": "A general error has occurred. See ExtendedInfo for more information",
        }}),
    )
}

pub(super) fn success_info(host: &Host) -> Value {
    if host.is_dell() {
        json!({"@Message.ExtendedInfo": [ext(host, &base::SUCCESS, &[]), ext(host, &messages::SYS413, &[])]})
    } else {
        json!({"@Message.ExtendedInfo": [ext(host, &base::SUCCESS, &[])]})
    }
}

pub(super) fn not_found(host: &Host, path: &str) -> Reply {
    if host.is_dell() {
        error(
            host,
            StatusCode::NOT_FOUND,
            messages::SYS403,
            &[path.to_string()],
        )
    } else {
        error(
            host,
            StatusCode::NOT_FOUND,
            base::RESOURCE_MISSING,
            &[path.to_string()],
        )
    }
}

pub(super) fn bad_json(host: &Host) -> Reply {
    error(host, StatusCode::BAD_REQUEST, base::MALFORMED_JSON, &[])
}

pub(super) fn refusal(host: &Host, r: Refusal) -> Reply {
    match r {
        Refusal::QueueFull => error(host, StatusCode::BAD_REQUEST, messages::JCP017, &[]),
        Refusal::LcNotReady => error(host, StatusCode::SERVICE_UNAVAILABLE, messages::LC060, &[])
            .with(header::RETRY_AFTER, "30"),
    }
}
