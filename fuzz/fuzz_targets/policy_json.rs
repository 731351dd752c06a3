//! Fuzz target: any bytes as a plan (`NewPlan`) or a policy (`Policy`) in
//! JSON, as the API and the daemon read them, then validation.
//! Properties: nothing panics; a policy that reads writes back to JSON that
//! reads to the same policy; validation returns a result (problems or ok).

#![no_main]

use firmflow_core::model::plan::{NewPlan, Policy};
use firmflow_core::policy::{ValidationContext, validate_plan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(policy) = serde_json::from_slice::<Policy>(data) {
        let _ = policy.retry();
        let _ = policy.timeouts();
        let _ = policy.expected_host_duration();
        let json = serde_json::to_string(&policy).expect("a policy that read serialises");
        let back: Policy = serde_json::from_str(&json).expect("a written policy reads back");
        assert_eq!(back, policy, "policy changed by a JSON round trip: {json}");
    }
    if let Ok(plan) = serde_json::from_slice::<NewPlan>(data) {
        let _ = validate_plan(&plan, &ValidationContext::default());
    }
});
