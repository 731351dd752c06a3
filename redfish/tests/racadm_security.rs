//! How racadm is invoked (issue 14): the TLS mode is honoured and the
//! password never reaches a command line unless the operator opted in.
//!
//! The fake `racadm` records its own argv and environment, and plays a BMC
//! with a self-signed certificate: given `-S` (stop on certificate errors)
//! it refuses the way racadm does.

use firmflow_core::bmc::{BmcDriver, ErrorKind};
use firmflow_core::credentials::Credential;
use firmflow_redfish::{RacadmConfig, RacadmDriver, TlsMode};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PASSWORD: &str = "Rac-s3cret-PASSWORD";

/// A fake racadm on a self-signed BMC; logs argv (one line per call) to
/// `args.log` and its environment to `env.log`.
fn fake(dir: &Path) -> PathBuf {
    let args = dir.join("args.log");
    let env = dir.join("env.log");
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> "{args}"
env >> "{env}"
for a in "$@"; do
  if [ "$a" = "-S" ]; then
    echo "Security Alert: Certificate is invalid - self signed certificate"
    echo "ERROR: Unable to connect to RAC at specified IP address (certificate verification failed)."
    exit 1
  fi
done
printf 'Bios Version                    = 2.10.2\niDRAC Version                   = 5.10.00.00\n'
echo "Server power status: ON"
"#,
        args = args.display(),
        env = env.display()
    );
    let path = dir.join("racadm");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn driver(dir: &Path, opt_in: bool, tls: TlsMode) -> RacadmDriver {
    RacadmDriver::new(
        RacadmConfig {
            binary: fake(dir),
            timeout: Duration::from_secs(10),
            password_on_command_line: opt_in,
        },
        "10.0.0.5".into(),
        Credential::new("root", PASSWORD),
    )
    .with_tls(tls)
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[tokio::test]
async fn without_the_opt_in_racadm_never_runs_and_the_password_goes_nowhere() {
    for tls in [TlsMode::Verify, TlsMode::AcceptInvalid] {
        let dir = tempfile::tempdir().unwrap();
        let d = driver(dir.path(), false, tls);
        let e = d.system().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotSupported, "{e}");
        assert!(e.message.contains("password_on_command_line"), "{e}");
        assert!(!e.to_string().contains(PASSWORD));
        // The child was never started: no argv, no environment recorded.
        assert!(!dir.path().join("args.log").exists());
        assert!(!dir.path().join("env.log").exists());
    }
}

#[tokio::test]
async fn verification_on_passes_dash_s_and_a_self_signed_bmc_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(dir.path(), true, TlsMode::Verify);
    let e = d.system().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert!(!e.to_string().contains(PASSWORD), "{e}");
    let argv = log(dir.path(), "args.log");
    assert!(argv.contains(" -S "), "{argv}");
    assert!(!argv.contains("--nocertwarn"), "{argv}");
    // The password is in no environment variable the driver sets either.
    assert!(!log(dir.path(), "env.log").contains(PASSWORD));
}

#[tokio::test]
async fn accept_invalid_is_the_only_mode_that_passes_nocertwarn() {
    let dir = tempfile::tempdir().unwrap();
    let d = driver(dir.path(), true, TlsMode::AcceptInvalid);
    let s = d.system().await.unwrap();
    assert_eq!(s.bios_version.as_deref(), Some("2.10.2"));
    let argv = log(dir.path(), "args.log");
    assert!(argv.lines().all(|l| l.contains("--nocertwarn")), "{argv}");
    assert!(!argv.contains(" -S "), "{argv}");
}

#[tokio::test]
async fn modes_racadm_cannot_check_are_refused_before_it_runs() {
    for tls in [
        TlsMode::CaFile("/etc/firmflow/bmc-ca.pem".into()),
        TlsMode::PinnedSha256("ab".repeat(32)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = driver(dir.path(), true, tls.clone());
        let e = d.system().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Tls, "{tls:?}: {e}");
        assert!(e.message.contains(tls.name()), "{e}");
        assert!(
            !dir.path().join("args.log").exists(),
            "racadm ran for {tls:?}"
        );
    }
}
