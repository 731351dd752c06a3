//! Exit codes, as documented in `firmflow --help`:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; for campaigns: every host completed |
//! | 1 | a failure on some host (or a BMC, store or network error) |
//! | 2 | usage or configuration error (bad file, flag, reference) |
//! | 3 | refused by policy (approval missing, wrong plan status, window) |
//! | 4 | `compliance`: readable, but updates are pending |
//!
//! Commands return `anyhow` errors; a [`Usage`] or [`Refused`] anywhere in
//! the chain picks the code, anything else is 1.

use firmflow_core::executor::PlanError;
use std::fmt;
use std::process::ExitCode;

/// Success.
pub const OK: u8 = 0;
/// A host (or the machinery) failed.
pub const FAILURE: u8 = 1;
/// Bad usage or configuration.
pub const USAGE: u8 = 2;
/// Refused by policy.
pub const REFUSED: u8 = 3;

/// `compliance`: every host read, and the catalog calls for installs.
pub const PENDING: u8 = 4;

/// A usage or configuration error (exit 2).
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Usage {}

/// Refused by policy (exit 3).
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Refused {}

/// A usage error as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

/// A policy refusal as an `anyhow::Error`.
pub fn refused(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Refused(msg.into()))
}

/// The exit code for an error.
pub fn code_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<Usage>()
            || cause.is::<firmflow_ops::PlanFileError>()
            || cause.is::<firmflow_ops::HostsError>()
            || cause.is::<firmflow_ops::bmc::SettingsError>()
            || cause.is::<clap::Error>()
        {
            return USAGE;
        }
        if cause.is::<Refused>() {
            return REFUSED;
        }
        if let Some(p) = cause.downcast_ref::<PlanError>() {
            return match p {
                PlanError::Invalid(_) => USAGE,
                PlanError::WrongStatus { .. } | PlanError::NotApproved(_) => REFUSED,
                _ => FAILURE,
            };
        }
    }
    FAILURE
}

/// Converts a code to an `ExitCode`.
pub fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn codes_follow_the_chain() {
        let e = Err::<(), _>(usage("bad flag"))
            .context("while parsing")
            .unwrap_err();
        assert_eq!(code_of(&e), USAGE);
        assert_eq!(code_of(&refused("needs approval")), REFUSED);
        assert_eq!(code_of(&anyhow::anyhow!("BMC said no")), FAILURE);
        let p = PlanError::NotApproved(firmflow_core::model::PlanId::new());
        assert_eq!(code_of(&anyhow::Error::new(p)), REFUSED);
    }
}
