//! Datacenter-scoped tokens on PostgreSQL go through the database's own
//! row-level security, not only the daemon's filters.
//!
//! At start the daemon makes every scoped token a store user
//! ([`PgStore::provision_user`]): an operator (or viewer) with access to its
//! one datacenter. A scoped caller's reads then run on
//! [`PgStore::scoped`], where PostgreSQL itself hides the other
//! datacenters' hosts, plans, runs and events: a bug in a handler's filter
//! cannot show them. The daemon's own filters stay (the memory store has
//! no RLS). Unscoped tokens read unscoped, as the daemon does.

use crate::auth::{Caller, user_id};
use crate::config::{Role, TokenSettings};
use anyhow::Context as _;
use firmflow_core::store::Store;
use firmflow_store_postgres::{PgStore, UserRole};
use std::sync::Arc;

/// The store role of a scoped token: a scoped admin is an operator of its
/// datacenter (the database's admin role sees every datacenter).
fn store_role(role: Role) -> UserRole {
    match role {
        Role::Admin | Role::Operator => UserRole::Operator,
        Role::Viewer => UserRole::Viewer,
    }
}

/// Makes every datacenter-scoped token a store user with access to its
/// datacenter alone. Converges on the config at every start.
pub async fn provision(pg: &PgStore, tokens: &[TokenSettings]) -> anyhow::Result<usize> {
    let mut n = 0;
    for t in tokens {
        let Some(dc) = t.datacenter.as_deref() else {
            continue;
        };
        let id = firmflow_ops::hosts::datacenter_id(dc);
        pg.provision_user(user_id(&t.name), &t.name, store_role(t.role), &[(id, dc)])
            .await
            .with_context(|| {
                format!(
                    "api.tokens {:?}: making it a row-level-security user of datacenter {dc:?} \
                     (the store's login role needs CREATEROLE)",
                    t.name
                )
            })?;
        n += 1;
    }
    Ok(n)
}

/// The store a caller reads through: under row-level security for a
/// scoped caller on PostgreSQL, else the daemon's store.
pub fn reader(store: &Arc<dyn Store>, pg: Option<&PgStore>, caller: &Caller) -> Arc<dyn Store> {
    match (pg, caller.datacenter) {
        (Some(pg), Some(_)) => Arc::new(pg.scoped(caller.user_id)),
        _ => store.clone(),
    }
}
