//! The `firmflow` command line, as a library so tests (and other tools)
//! can run its commands in-process:
//!
//! - [`demo`]: the whole main job on an in-process simulated fleet;
//! - [`compliance`]: one BMC against a Dell catalog.

pub mod compliance;
pub mod demo;
pub mod setup;
pub mod table;
