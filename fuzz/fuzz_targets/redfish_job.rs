//! Fuzz target: any bytes as a BMC response body through the Redfish/Dell
//! job and task readers, the message readers and the HTTP error classifier.
//! Properties: nothing panics; a percentage is 0–100; a Dell job read as
//! `Completed` never carries a message whose words say it failed (the rule
//! that keeps a false success out, `firmflow_redfish::state`).

#![no_main]

use firmflow_core::bmc::BmcJobState;
use firmflow_redfish::error::{classify_http, message_of, messages_of};
use firmflow_redfish::state::{from_dell_job, from_job, from_task, percent, text_says_failure};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick the HTTP status the body came with.
    let (status, body) = match data {
        [a, b, rest @ ..] => (100 + u16::from_le_bytes([*a, *b]) % 500, rest),
        _ => (200, data),
    };
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = classify_http("bmc.fuzz", status, text);
        let _ = text_says_failure(text);
    }
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let _ = messages_of(&doc);
    let _ = message_of(&doc);
    let pct = percent(doc.get("PercentComplete"));
    assert!(
        pct.is_none_or(|p| p <= 100),
        "percent out of range: {pct:?}"
    );
    if let Some(st) = from_dell_job(&doc) {
        assert!(st.percent.is_none_or(|p| p <= 100));
        if st.state == BmcJobState::Completed {
            assert!(
                !st.message.as_deref().is_some_and(text_says_failure),
                "a Dell job whose message says it failed read as Completed: {doc}"
            );
        }
    }
    for st in [from_task(&doc), from_job(&doc)].into_iter().flatten() {
        assert!(st.percent.is_none_or(|p| p <= 100));
    }
    // Members of a collection are read one by one, as the drivers do.
    if let Some(members) = doc.get("Members").and_then(Value::as_array) {
        for m in members {
            let _ = from_dell_job(m);
            let _ = from_task(m);
            let _ = from_job(m);
        }
    }
});
