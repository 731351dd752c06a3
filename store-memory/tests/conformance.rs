//! The memory store runs core's store conformance suite.

use async_trait::async_trait;
use firmflow_core::ManualClock;
use firmflow_core::store::conformance::{StoreFactory, run_all};
use firmflow_store_memory::MemoryStore;
use std::sync::Arc;

struct Factory;

#[async_trait]
impl StoreFactory for Factory {
    type Store = MemoryStore;
    async fn fresh(&self, clock: Arc<ManualClock>) -> MemoryStore {
        MemoryStore::new(clock)
    }
}

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    run_all(&Factory).await;
}
