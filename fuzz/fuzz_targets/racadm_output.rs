//! Fuzz target: any text as racadm output through the job queue, `key =
//! value`, job id and message id parsers.
//! Properties: nothing panics; a job id found is `JID_` and 12 digits and
//! occurs in the text; every message id and key found occurs in the text;
//! a job's percentage is 0–100.

#![no_main]

use firmflow_redfish::racadm::{find_jid, message_ids, parse_jobqueue, parse_kv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for job in parse_jobqueue(&text) {
        assert!(job.percent.is_none_or(|p| p <= 100), "percent {job:?}");
        let _ = job.status();
    }
    if let Some(jid) = find_jid(&text) {
        assert_eq!(jid.len(), 16, "job id {jid:?}");
        assert!(jid.starts_with("JID_"), "job id {jid:?}");
        assert!(
            jid[4..].bytes().all(|b| b.is_ascii_digit()),
            "job id {jid:?}"
        );
        assert!(text.contains(&jid), "job id {jid:?} not in the text");
    }
    for (key, _) in parse_kv(&text) {
        assert!(!key.is_empty() && text.contains(&key), "key {key:?}");
    }
    for id in message_ids(&text) {
        assert!(text.contains(&id), "message id {id:?} not in the text");
    }
});
