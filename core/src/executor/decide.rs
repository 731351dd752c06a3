//! The run's safety decisions as pure functions: no I/O, no clock, no
//! randomness. The run driver gathers the observations (a job search, an
//! inventory, the checkpoint) and performs what these return, so each rule
//! is tested here over every input class, apart from any BMC.
//!
//! - [`adopt`]: after a crash between an intent and the job id it would
//!   have recorded, follow a job, call it installed, resubmit, or park.
//! - [`rollback_step`]: which components to roll back, and to what: only
//!   those whose installed version differs from the version recorded when
//!   the run started, and only to that version.

use crate::bmc::{FirmwareComponent, Inventory, JobSearch};
use crate::model::{JobHandle, Package, PackageProgress, PackageStatus};

/// What to do about an intent whose outcome was not journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Adoption {
    /// A job created after the intent for this package: follow it.
    Follow(JobHandle),
    /// The inventory shows the target version: done, verified by inventory.
    AlreadyThere,
    /// The BMC lists its jobs, none is ours, the version is unchanged: the
    /// submission never reached the BMC, so submitting is safe.
    Resubmit,
    /// The BMC cannot tell and the inventory does not prove anything: stop
    /// for an operator with this reason.
    Park(String),
}

/// Decides an interrupted submission (or rollback) from the job search and
/// the version installed now. `target` is the version the intent was to
/// reach.
pub(crate) fn adopt(search: &JobSearch, installed_now: Option<&str>, target: &str) -> Adoption {
    let at_target = installed_now.map(str::trim) == Some(target.trim());
    match search {
        JobSearch::Found(job) => Adoption::Follow(job.clone()),
        _ if at_target => Adoption::AlreadyThere,
        JobSearch::NotFound => Adoption::Resubmit,
        JobSearch::Unknowable { reason } => Adoption::Park(format!(
            "cannot tell whether the BMC took the update ({reason}); the installed version is {}, \
             the target {target}: not resubmitting",
            installed_now.unwrap_or("unknown")
        )),
    }
}

/// One component's rollback decision.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RollbackStep {
    /// Roll back to this previous image (its version is the start version).
    RollBack(FirmwareComponent),
    /// Already at the start version (or never changed): nothing to do.
    Untouched,
    /// A rollback is needed but impossible; say why.
    Impossible(String),
}

/// Whether a package's status means the run may have changed the component.
/// Whether the run may have changed the package's component (a rollback
/// needs to look at it at all).
pub(crate) fn touched(status: &PackageStatus) -> bool {
    !matches!(
        status,
        PackageStatus::Pending
            | PackageStatus::Skipped { .. }
            | PackageStatus::Staged { .. }
            | PackageStatus::RolledBack
            | PackageStatus::RollbackFailed { .. }
    )
}

/// Decides the rollback of one package from the inventory now. A component
/// is rolled back only when the run may have touched it, its installed
/// version differs from the version recorded at the start of the run, and
/// the BMC's previous image is exactly that start version.
pub(crate) fn rollback_step(p: &PackageProgress, inventory: &Inventory) -> RollbackStep {
    if !touched(&p.status) {
        return RollbackStep::Untouched;
    }
    let pkg: &Package = &p.package;
    let Some(start) = pkg.installed_version.as_deref().map(str::trim) else {
        return RollbackStep::Impossible(format!(
            "{}: the version at the start of the run is unknown; not rolling back",
            pkg.name
        ));
    };
    let now = inventory
        .installed_for_package(pkg)
        .map(|c| c.version.trim().to_string());
    if now.as_deref() == Some(start) {
        return RollbackStep::Untouched;
    }
    match inventory.previous_for_package(pkg) {
        Some(prev) if prev.version.trim() == start => RollbackStep::RollBack(prev.clone()),
        Some(prev) => RollbackStep::Impossible(format!(
            "{}: the previous image is {}, not {start} (the version before this run)",
            pkg.name, prev.version
        )),
        None => RollbackStep::Impossible(format!(
            "{}: no previous image to roll back to {start}",
            pkg.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ComponentKind, PackageSource};

    fn pkg(start: Option<&str>) -> Package {
        Package {
            component_id: "159".into(),
            name: "BIOS".into(),
            kind: ComponentKind::Bios,
            target_version: "2.19.1".into(),
            installed_version: start.map(Into::into),
            source: PackageSource::ImageUri {
                uri: "http://repo/BIOS.EXE".into(),
            },
            checksum: None,
            size_bytes: None,
            reboot_required: true,
            criticality: None,
        }
    }

    fn comp(version: &str, installed: bool) -> FirmwareComponent {
        FirmwareComponent {
            id: format!(
                "{}-159-{version}",
                if installed { "Installed" } else { "Previous" }
            ),
            name: "BIOS".into(),
            version: version.into(),
            component_id: Some("159".into()),
            kind: ComponentKind::Bios,
            updateable: true,
            installed,
            pci: None,
            release_date: None,
        }
    }

    fn inv(now: &str, prev: Option<&str>) -> Inventory {
        let mut components = vec![comp(now, true)];
        if let Some(p) = prev {
            components.push(comp(p, false));
        }
        Inventory { components }
    }

    #[test]
    fn a_found_job_is_followed_whatever_the_version() {
        let j = JobHandle::new("JID_1");
        let s = JobSearch::Found(j.clone());
        assert_eq!(
            adopt(&s, Some("2.10.0"), "2.19.1"),
            Adoption::Follow(j.clone())
        );
        assert_eq!(adopt(&s, Some("2.19.1"), "2.19.1"), Adoption::Follow(j));
    }

    #[test]
    fn the_target_version_installed_is_done_even_if_the_bmc_cannot_list_jobs() {
        for s in [
            JobSearch::NotFound,
            JobSearch::Unknowable {
                reason: "no task service".into(),
            },
        ] {
            assert_eq!(
                adopt(&s, Some(" 2.19.1 "), "2.19.1"),
                Adoption::AlreadyThere
            );
        }
    }

    #[test]
    fn resubmits_only_when_the_bmc_lists_its_jobs_and_none_is_ours() {
        assert_eq!(
            adopt(&JobSearch::NotFound, Some("2.10.0"), "2.19.1"),
            Adoption::Resubmit
        );
        let unknowable = JobSearch::Unknowable {
            reason: "no task service".into(),
        };
        assert!(
            matches!(adopt(&unknowable, Some("2.10.0"), "2.19.1"), Adoption::Park(r) if r.contains("no task service"))
        );
        assert!(matches!(
            adopt(&unknowable, None, "2.19.1"),
            Adoption::Park(_)
        ));
    }

    fn progress(status: PackageStatus, start: Option<&str>) -> PackageProgress {
        PackageProgress {
            package: pkg(start),
            status,
        }
    }

    #[test]
    fn rolls_back_only_a_changed_component_to_its_start_version() {
        let installed = PackageStatus::Installed {
            version: "2.19.1".into(),
        };
        let p = progress(installed.clone(), Some("2.10.0"));
        assert_eq!(
            rollback_step(&p, &inv("2.19.1", Some("2.10.0"))),
            RollbackStep::RollBack(comp("2.10.0", false))
        );
        // Never changed (a failed job left the start version): untouched.
        let failed = progress(
            PackageStatus::Failed {
                reason: "job failed".into(),
            },
            Some("2.10.0"),
        );
        assert_eq!(
            rollback_step(&failed, &inv("2.10.0", Some("1.0.0"))),
            RollbackStep::Untouched
        );
        // Changed, but the previous image is some other version: refuse.
        assert!(matches!(
            rollback_step(&p, &inv("2.19.1", Some("1.0.0"))),
            RollbackStep::Impossible(r) if r.contains("1.0.0")
        ));
        assert!(matches!(
            rollback_step(&p, &inv("2.19.1", None)),
            RollbackStep::Impossible(_)
        ));
        // Start version unknown: refuse rather than guess.
        let unknown = progress(installed, None);
        assert!(matches!(
            rollback_step(&unknown, &inv("2.19.1", Some("2.10.0"))),
            RollbackStep::Impossible(_)
        ));
    }

    #[test]
    fn packages_the_run_never_touched_are_never_rolled_back() {
        for st in [
            PackageStatus::Pending,
            PackageStatus::Skipped {
                reason: "current".into(),
            },
            PackageStatus::RolledBack,
            PackageStatus::RollbackFailed { reason: "x".into() },
        ] {
            let p = progress(st, Some("2.10.0"));
            assert_eq!(
                rollback_step(&p, &inv("2.19.1", Some("2.10.0"))),
                RollbackStep::Untouched
            );
        }
    }
}
