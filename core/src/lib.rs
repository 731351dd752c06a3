//! firmflow-core: the domain model, the ports (small traits) that drivers
//! and stores implement, the pure admission/retry/validation policy, and the
//! durable plan executor.
//!
//! Architecture invariants:
//! - `core` does no I/O of its own: every BMC, cluster, credential, artifact
//!   and store access goes through a port.
//! - A run changes only by a fenced compare-and-set carrying its lease.
//! - Intent is checkpointed before every side effect on a BMC or cluster,
//!   and the BMC job id right after; a resume polls, never resubmits.
//! - Admission is a pure function over a snapshot taken atomically by the store.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
pub mod artifacts;
pub mod bmc;
pub mod checks;
pub mod clock;
pub mod cluster;
pub mod credentials;
pub mod executor;
pub mod model;
pub mod policy;
pub mod store;
// Core's own unit tests run the testkit's suites against its fakes.
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
