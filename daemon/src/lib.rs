//! firmflowd: the firmflow daemon. It composes the engine from the
//! workspace's libraries ([`engine`]), configured by one TOML file
//! ([`config`]), and serves the HTTP API with its OpenAPI document, the
//! live event stream and metrics ([`api`], [`metrics`]) to callers holding
//! bearer tokens with roles ([`auth`]), over HTTPS when `[api.tls]` is
//! set ([`tls`]), and a live web view of campaigns at `/` ([`ui`]).
//! [`daemon`] runs it until SIGTERM.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod api;
pub mod auth;
pub mod bmc_metrics;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod metrics;
pub mod rls;
pub mod store_metrics;
pub mod tls;
pub mod ui;
