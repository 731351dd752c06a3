//! Pure policy: admission, retry and plan validation. No I/O, no clocks
//! read; every input arrives as a value.

pub mod admission;
pub mod retry;
pub mod validate;

pub use admission::{
    AdmissionDecision, AdmissionPolicy, AdmissionSnapshot, CLEANUP_RESUMES, Candidate, ClusterView,
    Deferral, PlanView, RunCounts, StandardAdmission,
};
pub use retry::RetryPolicy;
pub use validate::{InvalidPlan, Problem, ValidationContext, validate_plan};
