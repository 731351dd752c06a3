//! firmflow-redfish: the BMC drivers that touch real servers.
//!
//! - [`driver::RedfishDriver`] in flavour [`driver::Flavor::Idrac`]: Dell
//!   iDRAC over Redfish with Dell OEM (jobs, LC service, repository installs,
//!   rollback from `Previous-` images, job-queue clearing);
//! - the same type in flavour [`driver::Flavor::Generic`]: any DMTF Redfish
//!   BMC (SimpleUpdate, multipart push, TaskService, ComputerSystem.Reset);
//! - [`racadm::RacadmDriver`]: Dell remote racadm;
//! - [`repo`]: following an InstallFromRepository job to its per-package
//!   child jobs;
//! - [`connector::Connector`]: the core's `BmcConnector`, picking one by the
//!   host's management kind, with credentials, session cache and TLS per host.
//!
//! Transport and typed model come from NVIDIA's `nv-redfish` (pinned 0.22):
//! HTTP, per-BMC concurrency cap, session creation, actions, multipart
//! upload with Content-Length, typed `SoftwareInventory`. Written beside it:
//! the session manager ([`client`]), the request counter ([`transport`]),
//! iDRAC repair rules ([`repair`]), the job/task poller with its state
//! mapping ([`state`], [`driver`]), MessageId classification ([`error`]) and
//! the TLS client builder ([`tls`]).

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod client;
pub mod connector;
pub mod driver;
pub mod error;
pub mod racadm;
pub mod racadm_repo;
pub mod repair;
pub mod repo;
pub mod state;
pub mod tls;
pub mod transport;

pub use connector::{Connector, ConnectorConfig, InsecureTls};
pub use driver::{DriverConfig, Flavor, RedfishDriver};
/// The Dell catalog reader (`firmflow-catalog`), re-exported so one
/// dependency brings every Dell-facing piece.
pub use firmflow_catalog as catalog;
pub use racadm::{RacadmConfig, RacadmDriver};
pub use tls::TlsMode;
