//! Following a racadm repository update (`racadm update -f Catalog.xml -t
//! … -l share`) to the package's own job.
//!
//! racadm answers with one `Repository Update` job, which reads `Completed`
//! as soon as the iDRAC has compared the catalog and created one `Firmware
//! Update: <component>` job per applicable package. Its state is therefore
//! not any package's (the defect that let a campaign record a BIOS as
//! installed while the old version ran). The driver hands the executor a
//! [`RepoHandle`] (repository job + package) and reads the package's state
//! from `jobqueue view` with [`read`]: the child job when there is one,
//! else what the repository job and its other children say.

use crate::racadm::RacadmJob;
use crate::repo::RepoHandle;
use firmflow_core::bmc::BmcJobState;
use firmflow_core::model::ComponentKind;

/// Whether a racadm job name is a repository update.
pub fn is_repository_job(job: &RacadmJob) -> bool {
    job.name.to_ascii_lowercase().contains("repository update")
}

/// Whether a racadm job name (`Firmware Update: BIOS`) names the component
/// `name` of `kind`.
pub fn names_component(job_name: &str, name: &str, kind: ComponentKind) -> bool {
    let n = job_name.to_ascii_lowercase();
    if !n.starts_with("firmware update") {
        return false;
    }
    let target = n
        .strip_prefix("firmware update:")
        .unwrap_or(&n)
        .trim()
        .to_string();
    let want = name.to_ascii_lowercase();
    !target.is_empty()
        && (want.contains(&target)
            || target.contains(&want)
            || (kind == ComponentKind::Bmc && target.contains("idrac"))
            || (kind == ComponentKind::Bios && target.contains("bios")))
}

/// What `jobqueue view` says about one package of a repository job.
#[derive(Debug, PartialEq)]
pub enum Reading<'a> {
    /// The package's own child job.
    Child(&'a RacadmJob),
    /// No child yet; the repository job is still working, failed, or gone
    /// (`None`): its state is the package's.
    Repository(Option<&'a RacadmJob>),
    /// The repository job finished and other packages' jobs still run
    /// (`awaiting_reboot`: some wait for a host reboot); this package's
    /// job comes after them (the iDRAC's own update is created last).
    OthersFirst {
        /// Some sibling waits for a host reboot.
        awaiting_reboot: bool,
    },
    /// The repository job finished, every sibling is final, and no job was
    /// made for the package: not applicable, or already installed; the
    /// inventory decides.
    NoChild(&'a RacadmJob),
}

/// Reads the state of `h`'s package from the job queue `jobs`.
pub fn read<'a>(jobs: &'a [RacadmJob], h: &RepoHandle) -> Reading<'a> {
    if let Some(child) = h
        .child
        .as_deref()
        .and_then(|c| jobs.iter().find(|j| j.id == c))
    {
        return Reading::Child(child);
    }
    // `jobqueue view` lists the queue in creation order: the repository
    // job's children come after it. (JIDs are not compared: their digits
    // need not grow with time.)
    let at = jobs.iter().position(|j| j.id == h.repo);
    let repo = at.and_then(|i| jobs.get(i));
    let children: Vec<&RacadmJob> = jobs
        .iter()
        .skip(at.map_or(jobs.len(), |i| i + 1))
        .filter(|j| !is_repository_job(j))
        .filter(|j| j.name.to_ascii_lowercase().starts_with("firmware update"))
        .collect();
    if let Some(child) = children
        .iter()
        .find(|j| names_component(&j.name, &h.name, h.kind))
    {
        return Reading::Child(child);
    }
    let Some(repo) = repo else {
        return Reading::Repository(None);
    };
    match repo.status().state {
        BmcJobState::Completed | BmcJobState::CompletedWithErrors => {}
        _ => return Reading::Repository(Some(repo)),
    }
    let states: Vec<BmcJobState> = children.iter().map(|j| j.status().state).collect();
    if states.contains(&BmcJobState::AwaitingReboot) {
        return Reading::OthersFirst {
            awaiting_reboot: true,
        };
    }
    if states.iter().any(|s| !s.is_final()) {
        return Reading::OthersFirst {
            awaiting_reboot: false,
        };
    }
    Reading::NoChild(repo)
}

/// The repository job (not among `known`) that a package's update should
/// follow instead of creating another, or that an interrupted submission
/// created: the newest one (the last listed).
/// `None` when every repository job on the queue is known (older than the
/// run's baseline).
pub fn unknown_repository_job<'a>(
    jobs: &'a [RacadmJob],
    known: &[String],
) -> Option<&'a RacadmJob> {
    jobs.iter()
        .rev()
        .find(|j| is_repository_job(j) && !known.contains(&j.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmflow_core::model::{JobHandle, Package, PackageSource};

    fn job(id: &str, name: &str, status: &str) -> RacadmJob {
        RacadmJob {
            id: id.into(),
            name: name.into(),
            status: status.into(),
            ..RacadmJob::default()
        }
    }

    fn handle(repo: &str) -> RepoHandle {
        let p = Package {
            component_id: "159".into(),
            name: "BIOS".into(),
            kind: ComponentKind::Bios,
            target_version: "2.12.0".into(),
            installed_version: None,
            source: PackageSource::Repository {
                repository_uri: "http://repo/x".into(),
                catalog_file: "Catalog.xml".into(),
            },
            checksum: None,
            size_bytes: None,
            reboot_required: true,
            criticality: None,
        };
        RepoHandle::for_package(repo, None, None, &p)
    }

    const REPO: &str = "JID_000000000200";

    #[test]
    fn a_completed_repository_job_is_not_the_packages_outcome() {
        let jobs = [job(REPO, "Repository Update", "Completed")];
        assert_eq!(read(&jobs, &handle(REPO)), Reading::NoChild(&jobs[0]));
        let jobs = [
            job(REPO, "Repository Update", "Completed"),
            job("JID_000000000201", "Firmware Update: BIOS", "Scheduled"),
        ];
        assert_eq!(read(&jobs, &handle(REPO)), Reading::Child(&jobs[1]));
    }

    #[test]
    fn an_older_bios_job_is_not_the_child() {
        // Listed before the repository job, though its digits are greater.
        let jobs = [
            job("JID_000000000900", "Firmware Update: BIOS", "Completed"),
            job(REPO, "Repository Update", "Running"),
        ];
        assert_eq!(
            read(&jobs, &handle(REPO)),
            Reading::Repository(Some(&jobs[1]))
        );
    }

    #[test]
    fn siblings_first() {
        let jobs = [
            job(REPO, "Repository Update", "Completed"),
            job("JID_000000000201", "Firmware Update: NIC", "Scheduled"),
        ];
        let mut h = handle(REPO);
        h.name = "Integrated Dell Remote Access Controller".into();
        h.kind = ComponentKind::Bmc;
        assert_eq!(
            read(&jobs, &h),
            Reading::OthersFirst {
                awaiting_reboot: true
            }
        );
    }

    #[test]
    fn only_unknown_repository_jobs_are_followed() {
        let jobs = [
            job(REPO, "Repository Update", "Running"),
            job("JID_000000000100", "Repository Update", "Completed"),
        ];
        assert_eq!(
            unknown_repository_job(&jobs, &[]).map(|j| j.id.as_str()),
            Some("JID_000000000100"),
            "the last listed is the newest, whatever its digits"
        );
        let known = vec!["JID_000000000100".to_string()];
        assert_eq!(
            unknown_repository_job(&jobs, &known).map(|j| j.id.as_str()),
            Some(REPO)
        );
        let known = vec![REPO.to_string(), "JID_000000000100".to_string()];
        assert_eq!(unknown_repository_job(&jobs, &known), None);
        let _ = JobHandle::new("x");
    }
}
