//! Runs core's store conformance suite against PostgreSQL. The run gets a
//! fresh database (copied from the migrated template) that is dropped at
//! the end; every case starts on an empty store: a new `PgStore` with the
//! case's clock on that database after every row of the previous case was
//! deleted (the cases run one after another).

mod common;

use async_trait::async_trait;
use firmflow_core::ManualClock;
use firmflow_core::store::conformance::{StoreFactory, run_all};
use firmflow_store_postgres::{PgConfig, PgStore};
use std::sync::Arc;
use tokio::sync::Mutex;

#[derive(Default)]
struct Factory {
    /// The database (and its guard), and the previous case's store.
    state: Mutex<Option<(String, common::DbGuard, Option<PgStore>)>>,
}

#[async_trait]
impl StoreFactory for Factory {
    type Store = PgStore;
    async fn fresh(&self, clock: Arc<ManualClock>) -> PgStore {
        let mut st = self.state.lock().await;
        if st.is_none() {
            let (db, guard) = common::fresh_db("conf").await;
            *st = Some((db, guard, None));
        }
        let Some((db, _guard, previous)) = st.as_mut() else {
            unreachable!("set above")
        };
        if let Some(prev) = previous.take() {
            common::wipe(&prev).await;
            prev.close().await;
        }
        let store = PgStore::connect(
            PgConfig::new(common::db_url(db))
                .max_connections(4)
                .secret_key(common::key()),
            clock,
        )
        .await
        .unwrap_or_else(|e| panic!("connect {db}: {e}"));
        *previous = Some(store.clone());
        store
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    let factory = Factory::default();
    run_all(&factory).await;
    if let Some((_db, guard, previous)) = factory.state.lock().await.take() {
        if let Some(p) = previous {
            p.close().await;
        }
        drop(guard);
    }
}
