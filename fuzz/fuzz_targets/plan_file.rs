//! Fuzz target: any text as a plan file (TOML if it does not start with
//! `{`, JSON if it does), then the plan it builds against no hosts.
//! Properties: nothing panics; a plan file that reads has an idempotency
//! key and checks to a plan or to problems.

#![no_main]

use firmflow_ops::PlanFormat;
use firmflow_ops::plan_file::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let format = if text.trim_start().starts_with('{') {
        PlanFormat::Json
    } else {
        PlanFormat::Toml
    };
    let file = match parse(text, format, "fuzz.plan", None) {
        Ok(f) => f,
        Err(e) => {
            // Every refusal can be told: its problems and its message.
            let _ = e.problems();
            let _ = e.to_string();
            return;
        }
    };
    assert!(!file.idempotency_key().is_empty());
    if let Err(e) = file.check(&[], &[]) {
        let _ = e.problems();
        let _ = e.to_string();
    }
});
