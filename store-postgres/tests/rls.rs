//! Row-level security: operators see and change only their datacenters'
//! hosts, plans and runs; viewers change nothing; admins see everything.

mod common;

use firmflow_core::model::*;
use firmflow_core::store::{Error, EventFilter, EventStore, HostStore, PlanStore, RunStore};
use firmflow_store_postgres::{PgStore, UserRole};

struct World {
    store: PgStore,
    dc1: DatacenterId,
    dc2: DatacenterId,
    h1: Host,
    h2: Host,
    p1: Plan,
    p2: Plan,
    admin: UserId,
    op1: UserId,
    viewer1: UserId,
    _guard: common::DbGuard,
}

async fn world() -> World {
    let (store, _clock, guard) = common::store("rls").await;
    let dc1 = store.create_datacenter("dc1").await.expect("dc1");
    let dc2 = store.create_datacenter("dc2").await.expect("dc2");
    let admin = store
        .create_user("alice", UserRole::Admin)
        .await
        .expect("u");
    let op1 = store
        .create_user("olga", UserRole::Operator)
        .await
        .expect("u");
    let viewer1 = store
        .create_user("victor", UserRole::Viewer)
        .await
        .expect("u");
    store.grant_datacenter(op1, dc1).await.expect("grant");
    store.grant_datacenter(viewer1, dc1).await.expect("grant");
    let mut n1 = NewHost::idrac("h1.dc1.example.net", "10.1.0.1");
    n1.datacenter_id = Some(dc1);
    let mut n2 = NewHost::idrac("h2.dc2.example.net", "10.2.0.1");
    n2.datacenter_id = Some(dc2);
    let h1 = store.add_host(n1).await.expect("h1");
    let h2 = store.add_host(n2).await.expect("h2");
    let plan = |h: &Host| NewPlan {
        name: format!("plan {}", h.fqdn),
        policy: Policy::new(UpdateMode::SpecificPackage),
        maintenance_window: None,
        approval_required: false,
        targets: vec![PlanTarget {
            host_id: h.id,
            priority: 0,
            conditions: serde_json::json!({}),
        }],
        artifacts: vec![],
        created_by: None,
        idempotency_key: None,
    };
    let p1 = store.create_plan(plan(&h1)).await.expect("p1").plan;
    let p2 = store.create_plan(plan(&h2)).await.expect("p2").plan;
    World {
        store,
        dc1,
        dc2,
        h1,
        h2,
        p1,
        p2,
        admin,
        op1,
        viewer1,
        _guard: guard,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_reads_nothing_of_another_datacenter() {
    let w = world().await;
    let op = w.store.scoped(w.op1);
    let hosts = op.list_hosts().await.expect("hosts");
    assert_eq!(
        hosts.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![w.h1.id]
    );
    assert!(matches!(
        op.get_host(w.h2.id).await,
        Err(Error::NotFound { .. })
    ));
    let plans = op.list_plans().await.expect("plans");
    assert_eq!(
        plans.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![w.p1.id]
    );
    assert!(matches!(
        op.get_plan(w.p2.id).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        op.list_runs(w.p2.id).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(op.list_runs(w.p1.id).await.expect("runs").len(), 1);
    let run2 = w.store.list_runs(w.p2.id).await.expect("runs").remove(0);
    assert!(matches!(
        op.get_run(run2.id).await,
        Err(Error::NotFound { .. })
    ));
    let ev = op
        .list_events(&EventFilter {
            plan_id: Some(w.p2.id),
            ..Default::default()
        })
        .await
        .expect("events");
    assert!(ev.is_empty(), "no event of another datacenter");
    assert!(
        !op.list_events(&EventFilter {
            plan_id: Some(w.p1.id),
            ..Default::default()
        })
        .await
        .expect("events")
        .is_empty()
    );

    // And in raw SQL, as the operator's own database role: 0 rows.
    let mut tx = w.store.pool().begin().await.expect("tx");
    sqlx::query("SELECT set_config('role', $1, true)")
        .bind(firmflow_store_postgres::user_role_name(w.op1))
        .execute(&mut *tx)
        .await
        .expect("identity");
    for (table, col) in [
        ("hosts", "datacenter_id"),
        ("update_plans", "datacenter_id"),
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {col} = $1"
        )))
        .bind(w.dc2.0)
        .fetch_one(&mut *tx)
        .await
        .expect("count");
        assert_eq!(n, 0, "{table} rows of dc2 visible to the dc1 operator");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM host_runs WHERE plan_id = $1")
        .bind(w.p2.id.0)
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(n, 0);
    // Writing them changes nothing.
    let moved = sqlx::query("UPDATE hosts SET fqdn = 'pwned' WHERE datacenter_id = $1")
        .bind(w.dc2.0)
        .execute(&mut *tx)
        .await
        .expect("update");
    assert_eq!(moved.rows_affected(), 0);
    tx.rollback().await.expect("rollback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_cannot_write_another_datacenter() {
    let w = world().await;
    let op = w.store.scoped(w.op1);
    // Update a host of dc2: refused, nothing changed.
    let mut h2 = w.h2.clone();
    h2.fqdn = "pwned.example.net".into();
    assert!(op.update_host(&h2).await.is_err());
    assert_eq!(
        w.store.get_host(w.h2.id).await.expect("h2").fqdn,
        "h2.dc2.example.net"
    );
    // Register a host into dc2: refused by the policy's WITH CHECK.
    let mut n = NewHost::idrac("sneaky.dc2.example.net", "10.2.0.9");
    n.datacenter_id = Some(w.dc2);
    assert!(matches!(
        op.add_host(n).await,
        Err(Error::PermissionDenied(_))
    ));
    // Moving an own host into dc2 is refused too.
    let mut h1 = w.h1.clone();
    h1.datacenter_id = Some(w.dc2);
    assert!(op.update_host(&h1).await.is_err());
    // Plan and run writes of dc2: nothing happens.
    assert!(
        op.set_plan_status(w.p2.id, PlanStatus::Draft, PlanStatus::Running, None, None)
            .await
            .is_err()
    );
    assert_eq!(
        w.store.get_plan(w.p2.id).await.expect("p2").status,
        PlanStatus::Draft
    );
    let run2 = w.store.list_runs(w.p2.id).await.expect("runs").remove(0);
    assert!(op.request_cancel(run2.id).await.is_err());
    assert_eq!(
        w.store.get_run(run2.id).await.expect("run").state,
        RunState::Pending
    );
    // A plan over both datacenters' hosts cannot be created either.
    let both = NewPlan {
        name: "both".into(),
        policy: Policy::new(UpdateMode::SpecificPackage),
        maintenance_window: None,
        approval_required: false,
        targets: [w.h1.id, w.h2.id]
            .into_iter()
            .map(|host_id| PlanTarget {
                host_id,
                priority: 0,
                conditions: serde_json::json!({}),
            })
            .collect(),
        artifacts: vec![],
        created_by: Some(w.op1),
        idempotency_key: None,
    };
    assert!(op.create_plan(both).await.is_err());
    // Its own datacenter it can change.
    let mut own = w.h1.clone();
    own.service_tag = Some("OWN1234".into());
    op.update_host(&own).await.expect("own host");
    assert!(
        op.set_plan_status(
            w.p1.id,
            PlanStatus::Draft,
            PlanStatus::Running,
            None,
            Some(w.op1)
        )
        .await
        .expect("own plan")
    );
    let mut n = NewHost::idrac("new.dc1.example.net", "10.1.0.2");
    n.datacenter_id = Some(w.dc1);
    op.add_host(n).await.expect("own datacenter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_reads_but_never_writes_and_admin_sees_all() {
    let w = world().await;
    let viewer = w.store.scoped(w.viewer1);
    assert_eq!(viewer.list_hosts().await.expect("hosts").len(), 1);
    let mut h1 = w.h1.clone();
    h1.model = Some("PowerEdge R750".into());
    assert!(matches!(
        viewer.update_host(&h1).await,
        Err(Error::PermissionDenied(_))
    ));
    let mut n = NewHost::idrac("v.dc1.example.net", "10.1.0.3");
    n.datacenter_id = Some(w.dc1);
    assert!(matches!(
        viewer.add_host(n).await,
        Err(Error::PermissionDenied(_))
    ));
    assert_eq!(w.store.get_host(w.h1.id).await.expect("h1").model, None);

    let admin = w.store.scoped(w.admin);
    assert_eq!(admin.list_hosts().await.expect("hosts").len(), 2);
    assert_eq!(admin.list_plans().await.expect("plans").len(), 2);
    let mut h2 = w.h2.clone();
    h2.model = Some("PowerEdge R650".into());
    admin.update_host(&h2).await.expect("admin writes anywhere");

    // Someone unknown sees nothing at all.
    let nobody = w.store.scoped(UserId::new());
    assert!(nobody.list_hosts().await.expect("hosts").is_empty());
    assert!(nobody.list_plans().await.expect("plans").is_empty());
}

/// A daemon provisions its API tokens as users at every start: the same
/// call converges (run twice, nothing breaks), creates datacenters its
/// hosts name by id, and revokes grants the configuration no longer has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_a_token_user_converges_on_its_datacenters() {
    let w = world().await;
    let dc3 = DatacenterId::new();
    let mut n3 = NewHost::idrac("h3.dc3.example.net", "10.3.0.1");
    n3.datacenter_id = Some(dc3);
    let h3 = w.store.add_host(n3).await.expect("h3");
    let token = UserId::new();
    for _ in 0..2 {
        w.store
            .provision_user(token, "ops-dc3", UserRole::Operator, &[(dc3, "dc3")])
            .await
            .expect("provision");
    }
    let scoped = w.store.scoped(token);
    let ids = |hs: Vec<Host>| hs.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(ids(scoped.list_hosts().await.expect("hosts")), vec![h3.id]);
    // Moved to dc1 in the config: dc3 is revoked, dc1 granted.
    w.store
        .provision_user(token, "ops-dc3", UserRole::Operator, &[(w.dc1, "dc1")])
        .await
        .expect("re-provision");
    assert_eq!(
        ids(scoped.list_hosts().await.expect("hosts")),
        vec![w.h1.id]
    );
    // A name already used by another id is refused, naming it.
    let e = w
        .store
        .provision_user(
            token,
            "ops-dc3",
            UserRole::Operator,
            &[(DatacenterId::new(), "dc2")],
        )
        .await
        .expect_err("name clash");
    assert!(e.to_string().contains("dc2"), "{e}");
}
