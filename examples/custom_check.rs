//! A preflight check of your own: only servers whose service tag is on an
//! allow list (say, the ones a change ticket names) may be updated. The
//! check is registered with the executor under a name, and plans ask for
//! it by that name next to the seed's checks; a host that fails it is
//! never touched.
//!
//! `cargo run -p firmflow-examples --example custom_check`

use async_trait::async_trait;
use firmflow_core::SystemClock;
use firmflow_core::checks::{Check, CheckContext, CheckOutcome, CheckRegistry};
use firmflow_core::executor::{Executor, Services};
use firmflow_core::model::{NewPlan, PlanStatus, RunState, UserId};
use firmflow_core::store::RunStore as _;
use firmflow_examples as lab;
use firmflow_store_memory::MemoryStore;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Passes only hosts whose BMC reports an allowed service tag.
struct ServiceTagAllowList {
    allowed: BTreeSet<String>,
}

#[async_trait]
impl Check for ServiceTagAllowList {
    fn name(&self) -> &str {
        "change_ticket"
    }

    async fn run(&self, cx: CheckContext<'_>) -> CheckOutcome {
        match cx.bmc.system().await {
            Ok(s)
                if s.service_tag
                    .as_ref()
                    .is_some_and(|t| self.allowed.contains(t)) =>
            {
                CheckOutcome::Pass
            }
            Ok(s) => CheckOutcome::Fail {
                reason: format!(
                    "service tag {} is not in the change ticket",
                    s.service_tag.as_deref().unwrap_or("(none)")
                ),
                transient: false, // waiting will not change the ticket
            },
            // The BMC did not answer: worth another attempt.
            Err(e) => CheckOutcome::Fail {
                reason: e.to_string(),
                transient: true,
            },
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let (fleet, catalog) = lab::fleet(2).await?;
    let allowed = fleet.hosts()[0].service_tag.clone();
    let mut checks = CheckRegistry::builtin();
    checks.register(Arc::new(ServiceTagAllowList {
        allowed: BTreeSet::from([allowed]),
    }));
    let scratch = tempfile::tempdir()?;
    let store = Arc::new(MemoryStore::default());
    let exec = Executor::new(
        Services {
            store: store.clone(),
            bmc: Arc::new(lab::connector()),
            cluster: None,
            resolver: lab::resolver(scratch.path())?,
            checks,
            clock: Arc::new(SystemClock),
        },
        lab::fast("custom-check"),
    );
    let mut policy = lab::policy(&catalog);
    policy.preflight_checks.push("change_ticket".into());
    let handle = exec.spawn();
    let plan = exec
        .create_plan(NewPlan {
            name: "BIOS, ticketed hosts only".into(),
            policy,
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
    let runs = store.list_runs(plan.id).await?;
    for r in &runs {
        println!(
            "{}: {} {}",
            r.host_id,
            r.state,
            r.last_error.as_deref().unwrap_or("")
        );
    }
    // One host passed and was updated; the other was refused before any change.
    anyhow::ensure!(status == Some(PlanStatus::Failed), "plan ended {status:?}");
    let states: Vec<RunState> = runs.iter().map(|r| r.state).collect();
    anyhow::ensure!(
        states.contains(&RunState::Completed) && states.contains(&RunState::Failed),
        "{states:?}"
    );
    let [a, b] = [&fleet.hosts()[0].name, &fleet.hosts()[1].name];
    anyhow::ensure!(
        fleet.install_count(a, "159") == 1,
        "the ticketed host is updated"
    );
    anyhow::ensure!(
        fleet.install_count(b, "159") == 0,
        "the other is never touched"
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
async fn custom_check_runs() {
    run().await.expect("custom_check");
}
