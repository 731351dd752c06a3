//! The `firmflow` command line, as a library so tests (and other tools)
//! can run its commands in-process. Thin over the libraries: the executor,
//! the stores, the Redfish connector, the catalog crate, firmflow-ops.
//!
//! - [`demo`]: the whole main job on an in-process simulated fleet;
//! - [`compliance`]: one unregistered BMC against a Dell catalog;
//! - [`hosts_cmd`], [`inventory`], [`plans`], [`events`], [`watch`]: the
//!   fleet commands; [`sim_cmd`]: the simulated lab;
//! - [`context`], [`config`], [`exit`]: what they are built from.

pub mod compliance;
pub mod config;
pub mod context;
pub mod demo;
pub mod events;
pub mod exit;
pub mod hosts_cmd;
pub mod inventory;
pub mod plans;
pub mod setup;
pub mod sim_cmd;
pub mod table;
pub mod watch;
