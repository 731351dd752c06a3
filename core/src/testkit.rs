//! Test helpers for implementers and for firmflow's own scenario tests:
//! the store conformance suite and a manual clock (more fakes in `fakes`).

pub use crate::ManualClock;
pub use crate::store::conformance;
