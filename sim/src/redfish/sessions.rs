//! SessionService, login/logout and the session collection.

use super::*;

pub(super) fn session_service(ctx: &Ctx<'_>) -> Value {
    let st = ctx.host.lock();
    json!({
        "@odata.context": "/redfish/v1/$metadata#SessionService.SessionService",
        "@odata.id": "/redfish/v1/SessionService",
        "@odata.type": "#SessionService.v1_1_8.SessionService",
        "Description": "Session Service",
        "Id": "SessionService",
        "Name": "Session Service",
        "ServiceEnabled": true,
        "SessionTimeout": st.session_timeout,
        "Sessions": odata_id("/redfish/v1/SessionService/Sessions"),
        "Status": {"Health": "OK", "State": "Enabled"},
    })
}

pub(super) fn patch_session_service(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    for (k, v) in &body {
        match k.as_str() {
            "SessionTimeout" => match v.as_u64() {
                Some(t) if (60..=10800).contains(&t) => {}
                _ => {
                    return error(
                        host,
                        StatusCode::BAD_REQUEST,
                        base::PROPERTY_VALUE_TYPE,
                        &[v.to_string(), k.clone()],
                    );
                }
            },
            "Id" | "Name" | "Description" | "Sessions" | "Status" | "ServiceEnabled" => {
                return error(
                    host,
                    StatusCode::BAD_REQUEST,
                    base::PROPERTY_NOT_WRITABLE,
                    std::slice::from_ref(k),
                );
            }
            k if k.starts_with('@') => {}
            _ => {
                return error(
                    host,
                    StatusCode::BAD_REQUEST,
                    base::PROPERTY_UNKNOWN,
                    std::slice::from_ref(k),
                );
            }
        }
    }
    if let Some(t) = body.get("SessionTimeout").and_then(Value::as_u64) {
        ctx.host.lock().session_timeout = t;
    }
    Reply::ok(&session_service(ctx))
}

pub(super) fn session_json(host: &Host, s: &Session) -> Value {
    let _ = host;
    json!({
        "@odata.context": "/redfish/v1/$metadata#Session.Session",
        "@odata.id": format!("/redfish/v1/SessionService/Sessions/{}", s.id),
        "@odata.type": "#Session.v1_3_0.Session",
        "ClientOriginIPAddress": "127.0.0.1",
        "CreatedTime": s.created,
        "Description": "User Session",
        "Id": s.id,
        "Name": "User Session",
        "Password": null,
        "SessionType": "Redfish",
        "UserName": s.user,
    })
}

pub(super) fn sessions(ctx: &Ctx<'_>) -> Reply {
    let mut st = ctx.host.lock();
    st.purge_sessions(ctx.inner);
    let id = "/redfish/v1/SessionService/Sessions";
    let ty = "#SessionCollection.SessionCollection";
    if ctx.expand() {
        let m = st
            .sessions
            .iter()
            .map(|s| session_json(ctx.host, s))
            .collect();
        Reply::ok(&expanded_collection(id, ty, "Session Collection", m))
    } else {
        let m = st
            .sessions
            .iter()
            .map(|s| format!("{id}/{}", s.id))
            .collect();
        Reply::ok(&collection(id, ty, "Session Collection", m))
    }
}

pub(super) fn login(ctx: &Ctx<'_>) -> Reply {
    let host = ctx.host;
    let body = match ctx.json_body() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let user = body.get("UserName").and_then(Value::as_str);
    let pass = body.get("Password").and_then(Value::as_str);
    let (Some(user), Some(pass)) = (user, pass) else {
        let missing = if user.is_none() {
            "UserName"
        } else {
            "Password"
        };
        return error(
            host,
            StatusCode::BAD_REQUEST,
            base::ACTION_PARAM_MISSING,
            &["Session".into(), missing.into()],
        );
    };
    if user != host.username || pass != host.password {
        return error(host, StatusCode::UNAUTHORIZED, messages::SYS415, &[])
            .with(header::WWW_AUTHENTICATE, "Basic realm=\"RedfishService\"");
    }
    let mut st = host.lock();
    st.purge_sessions(ctx.inner);
    if st.sessions.len() >= ctx.inner.max_sessions {
        return error(
            host,
            StatusCode::SERVICE_UNAVAILABLE,
            messages::RAC0218,
            &[],
        );
    }
    let id = st.next_session.to_string();
    st.next_session += 1;
    let token = format!("{:016x}{:016x}", st.rng.u64(..), st.rng.u64(..));
    let s = Session {
        id: id.clone(),
        token: token.clone(),
        user: user.to_string(),
        created: ctx.inner.clock.now_iso(),
        last_used: tokio::time::Instant::now(),
    };
    let mut v = session_json(host, &s);
    st.sessions.push(s);
    st.peak_sessions = st.peak_sessions.max(st.sessions.len());
    v.set(
        &["@Message.ExtendedInfo"],
        if host.is_dell() {
            json!([
                ext(host, &base::CREATED, &[]),
                ext(host, &messages::SYS414, &[])
            ])
        } else {
            json!([ext(host, &base::CREATED, &[])])
        },
    );
    let location = format!("/redfish/v1/SessionService/Sessions/{id}");
    Reply::json(StatusCode::CREATED, &v)
        .with(header::LOCATION, location)
        .with(header::HeaderName::from_static("x-auth-token"), token)
}

pub(super) fn session_get(ctx: &Ctx<'_>, id: &str) -> Reply {
    let mut st = ctx.host.lock();
    st.purge_sessions(ctx.inner);
    match st.sessions.iter().find(|s| s.id == id) {
        Some(s) => Reply::ok(&session_json(ctx.host, s)),
        None => not_found(ctx.host, ctx.path),
    }
}

pub(super) fn logout(ctx: &Ctx<'_>, id: &str) -> Reply {
    let mut st = ctx.host.lock();
    let before = st.sessions.len();
    st.sessions.retain(|s| s.id != id);
    if st.sessions.len() == before {
        return not_found(ctx.host, ctx.path);
    }
    if st.sessions.is_empty() {
        // Nobody is reading this iDRAC now: its rendered documents would
        // only hold memory (a fleet of 10,000 kept ~60 MB of them after
        // every host was done). The next read renders them again.
        st.render_cache = Vec::new();
    }
    let _ = &ctx.session;
    Reply::ok(&success_info(ctx.host))
}
