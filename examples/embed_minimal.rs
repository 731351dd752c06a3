//! The README's embedding snippet, made real: the memory store, the
//! Redfish connector and the catalog resolver under one executor, one
//! approved plan over a simulated fleet, run to its end.
//!
//! `cargo run -p firmflow-examples --example embed_minimal`

use firmflow_core::SystemClock;
use firmflow_core::executor::{Executor, Services};
use firmflow_core::model::{NewPlan, PlanStatus, UserId};
use firmflow_examples as lab;
use firmflow_store_memory::MemoryStore;
use std::sync::Arc;
use std::time::Duration;

async fn run() -> anyhow::Result<()> {
    let (fleet, catalog) = lab::fleet(2).await?;
    let scratch = tempfile::tempdir()?;
    let store = Arc::new(MemoryStore::default());
    let exec = Executor::new(
        Services {
            store: store.clone(),
            bmc: Arc::new(lab::connector()),
            cluster: None, // standalone hosts: no vCenter
            resolver: lab::resolver(scratch.path())?,
            checks: Default::default(),
            clock: Arc::new(SystemClock),
        },
        lab::fast("embed-minimal"),
    );
    let handle = exec.spawn();
    let operator = UserId::new();
    let new_plan = NewPlan {
        name: "BIOS to the catalog".into(),
        policy: lab::policy(&catalog),
        maintenance_window: None,
        approval_required: true,
        targets: lab::register(store.as_ref(), &fleet).await?,
        artifacts: vec![],
        created_by: Some(operator),
        idempotency_key: None,
    };
    let plan = exec.create_plan(new_plan).await?.plan; // refused with every problem listed
    exec.approve(plan.id, operator).await?;
    exec.start(plan.id, Some(operator)).await?;
    let status = handle.wait_plan(plan.id, Duration::from_secs(60)).await;
    handle.shutdown().await; // releases leases at safe points
    println!("plan {}: {status:?}", plan.id);
    anyhow::ensure!(
        status == Some(PlanStatus::Completed),
        "plan ended {status:?}"
    );
    lab::assert_bios_flashes(&fleet, 1)?;
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
async fn embed_minimal_runs() {
    run().await.expect("embed_minimal");
}
