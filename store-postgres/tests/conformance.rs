//! Runs core's store conformance suite against PostgreSQL: every case on a
//! fresh database (copied from a migrated template), dropped after the case.

mod common;

use async_trait::async_trait;
use firmflow_core::ManualClock;
use firmflow_core::store::conformance::{StoreFactory, run_all};
use firmflow_store_postgres::PgStore;
use std::sync::{Arc, Mutex};

/// A fresh database per case; the previous case's pool is closed and its
/// database dropped when the next one starts (cases run one after another),
/// the last one when the factory goes.
#[derive(Default)]
struct Factory {
    previous: Mutex<Option<(PgStore, common::DbGuard)>>,
}

#[async_trait]
impl StoreFactory for Factory {
    type Store = PgStore;
    async fn fresh(&self, clock: Arc<ManualClock>) -> PgStore {
        let old = self.previous.lock().map(|mut g| g.take()).unwrap_or(None);
        if let Some((store, guard)) = old {
            store.close().await;
            drop(guard);
        }
        let (store, guard) = common::store_with(clock, "conf", 4).await;
        if let Ok(mut g) = self.previous.lock() {
            *g = Some((store.clone(), guard));
        }
        store
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    let factory = Factory::default();
    run_all(&factory).await;
    let last = factory
        .previous
        .lock()
        .map(|mut g| g.take())
        .unwrap_or(None);
    if let Some((store, guard)) = last {
        store.close().await;
        drop(guard);
    }
}
