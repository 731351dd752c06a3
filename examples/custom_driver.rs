//! A `BmcDriver` of your own, plugged in through a `BmcConnector`: here a
//! driver that wraps firmflow's iDRAC driver, keeps a change log of every
//! action that touches a server, and refuses to power a host off (a house
//! rule), while reads pass straight through. A driver for another vendor
//! implements the same methods against its own API.
//!
//! `cargo run -p firmflow-examples --example custom_driver`

use async_trait::async_trait;
use firmflow_core::SystemClock;
use firmflow_core::bmc::{
    BmcConnector, BmcDriver, Error, ErrorKind, FirmwareComponent, Inventory, JobQuery, JobSearch,
    JobStatus, PowerState, Readiness, ResetKind, SystemInfo, UpdateOptions, UpdateStart,
};
use firmflow_core::executor::{Executor, Services};
use firmflow_core::model::{Host, JobHandle, NewPlan, Package, PlanStatus, UserId};
use firmflow_examples as lab;
use firmflow_redfish::Connector;
use firmflow_store_memory::MemoryStore;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type ChangeLog = Arc<Mutex<Vec<String>>>;

/// The driver: the real one inside, a log and a rule around it.
struct AuditedDriver {
    host: String,
    inner: Arc<dyn BmcDriver>,
    log: ChangeLog,
}

impl AuditedDriver {
    fn note(&self, what: String) {
        if let Ok(mut l) = self.log.lock() {
            l.push(format!("{}: {what}", self.host));
        }
    }
}

#[async_trait]
impl BmcDriver for AuditedDriver {
    async fn system(&self) -> Result<SystemInfo, Error> {
        self.inner.system().await
    }
    async fn inventory(&self) -> Result<Inventory, Error> {
        self.inner.inventory().await
    }
    async fn readiness(&self) -> Result<Readiness, Error> {
        self.inner.readiness().await
    }
    async fn power(&self) -> Result<PowerState, Error> {
        self.inner.power().await
    }
    async fn start_update(
        &self,
        package: &Package,
        options: &UpdateOptions,
    ) -> Result<UpdateStart, Error> {
        self.note(format!(
            "install {} {}",
            package.name, package.target_version
        ));
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
        if matches!(kind, ResetKind::ForceOff | ResetKind::GracefulShutdown) {
            return Err(Error::new(
                &self.host,
                ErrorKind::NotSupported,
                "house rule: firmflow never powers a host off",
            ));
        }
        self.note(format!("reset {kind:?}"));
        self.inner.reset(kind).await
    }
    async fn rollback(&self, component: &FirmwareComponent) -> Result<Option<JobHandle>, Error> {
        self.note(format!("roll back {}", component.name));
        self.inner.rollback(component).await
    }
    async fn clear_job_queue(&self) -> Result<(), Error> {
        self.note("clear the job queue".into());
        self.inner.clear_job_queue().await
    }
    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}

/// The connector the executor asks for a driver per host.
struct AuditedConnector {
    inner: Connector,
    log: ChangeLog,
}

#[async_trait]
impl BmcConnector for AuditedConnector {
    async fn connect(&self, host: &Host) -> Result<Arc<dyn BmcDriver>, Error> {
        Ok(Arc::new(AuditedDriver {
            host: host.fqdn.clone(),
            inner: self.inner.connect(host).await?,
            log: self.log.clone(),
        }))
    }
}

async fn run() -> anyhow::Result<()> {
    let (fleet, catalog) = lab::fleet(2).await?;
    let scratch = tempfile::tempdir()?;
    let store = Arc::new(MemoryStore::default());
    let log = ChangeLog::default();
    let exec = Executor::new(
        Services {
            store: store.clone(),
            bmc: Arc::new(AuditedConnector {
                inner: lab::connector(),
                log: log.clone(),
            }),
            cluster: None,
            resolver: lab::resolver(scratch.path())?,
            checks: Default::default(),
            clock: Arc::new(SystemClock),
        },
        lab::fast("custom-driver"),
    );
    let handle = exec.spawn();
    let plan = exec
        .create_plan(NewPlan {
            name: "BIOS through the audited driver".into(),
            policy: lab::policy(&catalog),
            maintenance_window: None,
            approval_required: false,
            targets: lab::register(store.as_ref(), &fleet).await?,
            artifacts: vec![],
            created_by: None,
            idempotency_key: None,
        })
        .await?
        .plan;
    exec.start(plan.id, Some(UserId::new())).await?;
    let status = handle.wait_plan(plan.id, Duration::from_secs(60)).await;
    handle.shutdown().await;
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    for line in &log {
        println!("{line}");
    }
    anyhow::ensure!(
        status == Some(PlanStatus::Completed),
        "plan ended {status:?}"
    );
    lab::assert_bios_flashes(&fleet, 1)?;
    let installs = log.iter().filter(|l| l.contains(": install BIOS")).count();
    anyhow::ensure!(
        installs == 2,
        "every install went through the driver: {log:?}"
    );
    fleet.shutdown().await;
    Ok(())
}

#[cfg_attr(test, allow(dead_code))]
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run().await
}

#[cfg(test)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_driver_runs() {
    run().await.expect("custom_driver");
}
