//! `firmflow-sim`: a stateful simulated fleet of Dell iDRAC BMCs speaking Redfish.
//!
//! One process serves many simulated iDRACs, either one HTTPS (or plain HTTP)
//! listener per iDRAC on `127.0.0.1` or one shared listener that routes by the
//! `Host` header ("virtual hosts"). Every simulated iDRAC keeps its own state:
//! firmware inventory (`Installed-`/`Previous-` members), sessions, Dell jobs,
//! DMTF tasks, power state, Lifecycle Controller readiness. Firmware updates
//! really download their image (over HTTP(S)), validate it (see [`package`]),
//! go through Dell's job states and change the installed version only when the
//! install succeeds. Faults ([`Fault`], [`FaultSpec`]) can be injected at start
//! or at run time, and a control API (not under `/redfish`) exposes inspection
//! data (installs, request counts, live sessions) and serves image files.
//!
//! The crate shares no types with the firmflow drivers on purpose: from the
//! outside it must look like a real iDRAC.
//!
//! ```no_run
//! # async fn demo() -> Result<(), firmflow_sim::SimError> {
//! use firmflow_sim::{Fleet, Flavor};
//! let fleet = Fleet::builder().hosts(3).flavor(Flavor::Idrac9).speed(1000.0).seed(7).start().await?;
//! for host in fleet.hosts() {
//!     println!("{} {} {}", host.name, host.url, host.service_tag);
//! }
//! fleet.shutdown().await;
//! # Ok(()) }
//! ```

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod catalog;
mod clock;
mod control;
pub mod faults;
pub mod fleet;
mod host;
mod http;
mod inventory;
mod json;
mod messages;
mod multipart;
pub mod package;
mod redfish;
mod settings;
mod tls;

pub use faults::{Fault, FaultRule, FaultSpec, FaultSpecError};
pub use fleet::{Flavor, Fleet, FleetBuilder, InstallRecord, RequestStats, SimHostInfo};
pub use package::{Package, PackageError, PackageKind};

/// Errors returned by the simulator's library API.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A listener could not be bound.
    #[error("cannot bind {what}: {source}")]
    Bind {
        /// Which listener.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The self-signed TLS certificate could not be generated or loaded.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The builder was given an invalid setting.
    #[error("invalid fleet configuration: {0}")]
    Config(String),
    /// The HTTP client used to fetch images could not be built.
    #[error("HTTP client setup failed: {0}")]
    Client(String),
}
