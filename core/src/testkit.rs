//! Test helpers for implementers and for firmflow's own scenario tests: the
//! store and cluster-manager conformance suites, a manual clock, and in-process fakes of the BMC,
//! cluster and resolver ports whose behaviour is scripted per host and
//! whose side effects are counted (to prove exactly-once installs).

// Test support: a failed expectation here is a failed test, so it panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod bmc_conformance;
pub mod cluster_conformance;
pub mod fakes;

pub use crate::ManualClock;
pub use crate::store::conformance;
