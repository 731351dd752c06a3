//! `Snapshot`: one look at a BMC shared by the steps that judge it together.
//!
//! A pass of checks asks the same BMC the same questions: `connectivity`
//! and `system_health` both read the system, `firmware_version` reads the
//! inventory the verification of the last package has just read. A
//! `Snapshot` answers each of the three read-outs (`system`, `readiness`,
//! `inventory`) from the BMC once and then from memory, so the checks judge
//! one consistent picture and the BMC is asked once. Anything that changes
//! the BMC (an update, a reset, a rollback, clearing the queue) forgets
//! every read-out; job queries and polls always go to the BMC. Failed reads
//! are not kept: the next caller asks again.
//!
//! A snapshot lives for one step (a check pass, the resolution right after
//! preflight); [`Reads`] carries its read-outs to the step that follows.

use super::{
    BmcDriver, Error, FirmwareComponent, Inventory, JobQuery, JobSearch, JobStatus, PowerState,
    Readiness, ResetKind, SystemInfo, UpdateOptions, UpdateStart,
};
use crate::model::{JobHandle, Package};
use async_trait::async_trait;
use std::sync::{Arc, Mutex, MutexGuard};

/// Read-outs already taken from a BMC, with nothing done to it since.
#[derive(Clone, Debug, Default)]
pub struct Reads {
    /// The system, as `system()` answered.
    pub system: Option<SystemInfo>,
    /// Readiness, as `readiness()` answered.
    pub readiness: Option<Readiness>,
    /// The inventory, as `inventory()` answered.
    pub inventory: Option<Inventory>,
}

impl Reads {
    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.system.is_none() && self.readiness.is_none() && self.inventory.is_none()
    }
}

/// A driver that answers read-outs from memory after the first read; see
/// the module docs.
pub struct Snapshot {
    inner: Arc<dyn BmcDriver>,
    reads: Mutex<Reads>,
}

impl Snapshot {
    /// A snapshot of `inner`, starting from `reads` (taken just before, with
    /// nothing done to the BMC since).
    pub fn new(inner: Arc<dyn BmcDriver>, reads: Reads) -> Self {
        Self {
            inner,
            reads: Mutex::new(reads),
        }
    }

    /// What the snapshot holds now, to hand to the next step.
    pub fn into_reads(self) -> Reads {
        self.reads
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn reads(&self) -> MutexGuard<'_, Reads> {
        // Plain data: a panic elsewhere cannot leave it half-written.
        self.reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn forget(&self) {
        *self.reads() = Reads::default();
    }
}

#[async_trait]
impl BmcDriver for Snapshot {
    async fn system(&self) -> Result<SystemInfo, Error> {
        if let Some(s) = self.reads().system.clone() {
            return Ok(s);
        }
        let s = self.inner.system().await?;
        self.reads().system = Some(s.clone());
        Ok(s)
    }

    async fn inventory(&self) -> Result<Inventory, Error> {
        if let Some(i) = self.reads().inventory.clone() {
            return Ok(i);
        }
        let i = self.inner.inventory().await?;
        self.reads().inventory = Some(i.clone());
        Ok(i)
    }

    async fn readiness(&self) -> Result<Readiness, Error> {
        if let Some(r) = self.reads().readiness.clone() {
            return Ok(r);
        }
        let r = self.inner.readiness().await?;
        self.reads().readiness = Some(r.clone());
        Ok(r)
    }

    async fn power(&self) -> Result<PowerState, Error> {
        let known = self.reads().system.as_ref().map(|s| s.power);
        match known {
            Some(p) => Ok(p),
            None => self.inner.power().await,
        }
    }

    async fn start_update(
        &self,
        package: &Package,
        options: &UpdateOptions,
    ) -> Result<UpdateStart, Error> {
        self.forget();
        self.inner.start_update(package, options).await
    }

    async fn job_ids(&self) -> Result<Option<Vec<String>>, Error> {
        self.inner.job_ids().await
    }

    async fn find_job(&self, query: &JobQuery<'_>) -> Result<JobSearch, Error> {
        self.inner.find_job(query).await
    }

    async fn poll_job(&self, job: &JobHandle) -> Result<JobStatus, Error> {
        self.inner.poll_job(job).await
    }

    async fn reset(&self, kind: ResetKind) -> Result<(), Error> {
        self.forget();
        self.inner.reset(kind).await
    }

    async fn rollback(&self, component: &FirmwareComponent) -> Result<Option<JobHandle>, Error> {
        self.forget();
        self.inner.rollback(component).await
    }

    async fn clear_job_queue(&self) -> Result<(), Error> {
        self.forget();
        self.inner.clear_job_queue().await
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bmc::ErrorKind;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Counts reads; the inventory fails while `fail_inventory` is set.
    #[derive(Default)]
    struct Counting {
        system: AtomicU32,
        readiness: AtomicU32,
        inventory: AtomicU32,
        fail_inventory: std::sync::atomic::AtomicBool,
    }

    fn info() -> SystemInfo {
        SystemInfo {
            model: Some("PowerEdge R650".into()),
            service_tag: None,
            system_id: None,
            power: PowerState::On,
            health: crate::bmc::Health::Ok,
            bios_version: None,
            bmc_version: None,
            bmc_model: None,
            manufacturer: None,
        }
    }

    #[async_trait]
    impl BmcDriver for Counting {
        async fn system(&self) -> Result<SystemInfo, Error> {
            self.system.fetch_add(1, Ordering::SeqCst);
            Ok(info())
        }
        async fn inventory(&self) -> Result<Inventory, Error> {
            self.inventory.fetch_add(1, Ordering::SeqCst);
            if self.fail_inventory.load(Ordering::SeqCst) {
                return Err(Error::new(
                    "bmc",
                    ErrorKind::ServiceUnavailable,
                    "restarting",
                ));
            }
            Ok(Inventory::default())
        }
        async fn readiness(&self) -> Result<Readiness, Error> {
            self.readiness.fetch_add(1, Ordering::SeqCst);
            Ok(Readiness {
                ready: true,
                power: PowerState::On,
                detail: None,
            })
        }
        async fn start_update(&self, _: &Package, _: &UpdateOptions) -> Result<UpdateStart, Error> {
            Err(Error::new("bmc", ErrorKind::NotSupported, "no"))
        }
        async fn job_ids(&self) -> Result<Option<Vec<String>>, Error> {
            Ok(None)
        }
        async fn find_job(&self, _: &JobQuery<'_>) -> Result<JobSearch, Error> {
            Ok(JobSearch::NotFound)
        }
        async fn poll_job(&self, _: &JobHandle) -> Result<JobStatus, Error> {
            Err(Error::new("bmc", ErrorKind::NotFound, "no job"))
        }
        async fn reset(&self, _: ResetKind) -> Result<(), Error> {
            Ok(())
        }
        async fn rollback(&self, _: &FirmwareComponent) -> Result<Option<JobHandle>, Error> {
            Ok(None)
        }
        async fn clear_job_queue(&self) -> Result<(), Error> {
            Ok(())
        }
        async fn close(&self) -> Result<(), Error> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn each_read_out_is_read_once_until_the_bmc_is_changed() {
        let bmc = Arc::new(Counting::default());
        let snap = Snapshot::new(bmc.clone(), Reads::default());
        for _ in 0..3 {
            snap.system().await.unwrap();
            snap.readiness().await.unwrap();
            snap.inventory().await.unwrap();
            assert_eq!(snap.power().await.unwrap(), PowerState::On);
        }
        assert_eq!(bmc.system.load(Ordering::SeqCst), 1);
        assert_eq!(bmc.readiness.load(Ordering::SeqCst), 1);
        assert_eq!(bmc.inventory.load(Ordering::SeqCst), 1);
        // A reset changes the BMC: everything is read again.
        snap.reset(ResetKind::GracefulRestart).await.unwrap();
        snap.system().await.unwrap();
        snap.inventory().await.unwrap();
        assert_eq!(bmc.system.load(Ordering::SeqCst), 2);
        assert_eq!(bmc.inventory.load(Ordering::SeqCst), 2);
        // So does a failed update: it may have queued a job all the same.
        let package = Package {
            component_id: "159".into(),
            name: "BIOS".into(),
            kind: crate::model::ComponentKind::Bios,
            target_version: "2.19.1".into(),
            installed_version: None,
            source: crate::model::PackageSource::ImageUri {
                uri: "http://repo/BIOS.EXE".into(),
            },
            checksum: None,
            size_bytes: None,
            reboot_required: true,
            criticality: None,
        };
        let options = UpdateOptions {
            apply: crate::bmc::ApplyTime::OnReset,
            force: false,
            known_jobs: Vec::new(),
        };
        let _ = snap.start_update(&package, &options).await;
        assert!(snap.into_reads().is_empty());
    }

    #[tokio::test]
    async fn carried_reads_are_answered_and_failures_are_not_kept() {
        let bmc = Arc::new(Counting::default());
        let carried = Reads {
            inventory: Some(Inventory::default()),
            ..Reads::default()
        };
        let snap = Snapshot::new(bmc.clone(), carried);
        snap.inventory().await.unwrap();
        assert_eq!(bmc.inventory.load(Ordering::SeqCst), 0, "carried in");
        let bmc = Arc::new(Counting::default());
        bmc.fail_inventory.store(true, Ordering::SeqCst);
        let snap = Snapshot::new(bmc.clone(), Reads::default());
        assert!(snap.inventory().await.is_err());
        bmc.fail_inventory.store(false, Ordering::SeqCst);
        snap.inventory().await.unwrap();
        assert_eq!(
            bmc.inventory.load(Ordering::SeqCst),
            2,
            "the failure was asked again"
        );
        let reads = snap.into_reads();
        assert!(reads.inventory.is_some() && reads.system.is_none());
    }
}
