//! firmflow-ops: the operator's building blocks that the `firmflow` command
//! and the `firmflowd` daemon share, so both read the same files the same
//! way and reach BMCs with the same settings.
//!
//! - [`hosts`]: hosts files (CSV or JSON) into [`firmflow_core::model::NewHost`]s
//!   with their credential references; every bad row reported with its
//!   line and field, nothing returned when any row is bad.
//! - [`plan_file`]: plan files (TOML or JSON, the seed's shape) into a
//!   [`firmflow_core::model::NewPlan`] once targets are matched to hosts;
//!   every problem names its line.
//! - [`bmc`]: BMC settings (driver, TLS per fleet or host, request cap) and
//!   the Redfish connector built from them with a credential provider
//!   (environment, file, Vault).
//! - [`register`]: hosts entries into a store (add or update, credential references).
//!
//! The API is kept small and additive: items are added, not renamed.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod doc;

pub mod bmc;
pub mod hosts;
pub mod plan_file;
pub mod register;

pub use bmc::{BmcSettings, ConnectorDeps, DriverKind, FleetConnector, TlsSettings, VaultSettings};
pub use hosts::{HostEntry, HostsError, HostsFormat, RowError};
pub use plan_file::{FileProblem, PlanFile, PlanFileError, PlanFormat, TargetSpec};
