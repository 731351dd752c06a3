//! Fuzz target: any bytes as a vCenter SOAP response through the client's
//! answer reader (envelope, fault, HTTP error, protocol error) and every
//! reader of what an answer holds (service content, property-collector
//! objects and host states, task info, "not authenticated").
//! Properties: nothing panics; an error names the method and stays short
//! (excerpts are capped, so a huge body is never echoed whole into a log).

#![no_main]

use firmflow_vcenter::fuzz_read_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the HTTP status the body came with.
    let (status, body) = match data {
        [s, rest @ ..] => (
            match s % 4 {
                0 => 200,
                1 => 500,
                2 => 401,
                _ => 100 + u16::from(*s),
            },
            rest,
        ),
        _ => (200, data),
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    if let Err(e) = fuzz_read_response(status, text) {
        let shown = e.to_string();
        assert!(shown.contains("Fuzz"), "error does not name the method: {shown}");
        // Fault messages come from the document itself; only excerpts of
        // bodies that are not faults are bounded.
        if !matches!(e, firmflow_vcenter::VimError::Fault { .. }) {
            assert!(shown.len() < 1024, "error echoes {} bytes", shown.len());
        }
    }
});
