//! Fuzz target: any text as a hosts file (CSV, then JSON), as `firmflow
//! hosts import` reads it.
//! Properties: nothing panics; a file that reads has a host per entry,
//! each with a non-empty FQDN and BMC address.

#![no_main]

use firmflow_ops::HostsFormat;
use firmflow_ops::hosts::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [HostsFormat::Csv, HostsFormat::Json] {
        match parse(text, format) {
            Ok(hosts) => {
                for h in hosts {
                    assert!(!h.host.fqdn.trim().is_empty(), "empty fqdn: {text:?}");
                    assert!(!h.host.mgmt_ip.trim().is_empty(), "empty mgmt_ip: {text:?}");
                }
            }
            Err(errors) => assert!(!errors.is_empty(), "an error without a row error"),
        }
    }
});
