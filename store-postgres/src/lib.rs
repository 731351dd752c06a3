//! firmflow-store-postgres: the seed's schema on PostgreSQL, shared by many
//! daemons. PostgreSQL is the coordination engine: a worker claims host runs
//! in one admission transaction, holds them under leases it renews in
//! batches, and writes them only through compare-and-set statements fenced by
//! the lease epoch, each writing its audit event in the same statement.
//!
//! - [`PgStore`] implements every store port of `firmflow-core`
//!   ([`firmflow_core::store::Store`]).
//! - [`PgStore::scoped`] gives a handle that runs as one user under
//!   row-level security (admin / operator / viewer by datacenter).
//! - [`PgWaker`] turns `LISTEN/NOTIFY` into debounced wake-ups; polling
//!   stays the correctness path.
//! - [`SecretKey`]s in a [`KeyRing`] seal credentials and Redfish session
//!   tokens at rest (AES-256-GCM, keys rotated by
//!   [`PgStore::reencrypt_credentials`]); [`PgCredentialProvider`] resolves
//!   `pg:<id>` references.
//!
//! All objects live in one configurable schema (default `firmflow`); the
//! embedded migrations ([`MIGRATOR`]) create them.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
mod admin;
mod config_store;
mod credentials;
mod crypto;
mod error;
mod events;
mod group_commit;
mod hosts;
mod jobs;
mod notify;
mod plans;
mod rows;
mod runs;
mod sessions;

pub use admin::{PartitionReport, UserRole};
pub use credentials::ReencryptReport;
pub use credentials::{PgCredentialProvider, REFERENCE_PREFIX};
pub use crypto::{KeyRing, SecretKey};
pub use error::PgStoreError;
pub use notify::{PgWaker, Wake};

use firmflow_core::Clock;
use firmflow_core::model::UserId;
use firmflow_core::store::{Error as StoreError, Result as StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor as _, Postgres, Transaction};
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The embedded migrations. They create unqualified objects: run them on a
/// connection whose `search_path` is the target schema (as [`PgStore::connect`] does).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The NOLOGIN role holding the table grants of scoped sessions. It is no
/// user: a session running as it sees nothing.
pub const SCOPED_ROLE: &str = "firmflow_scoped";

/// The database role of a firmflow user (`ff_u_<32 hex digits of the id>`):
/// a scoped handle runs each transaction as it, and the row-level security
/// policies take the user from the role the statement runs as, which a
/// session cannot change to another user's (see ARCHITECTURE.md, "Tenancy").
pub fn user_role_name(user: UserId) -> String {
    format!("ff_u_{}", user.0.simple())
}

/// How to reach and set up the database.
#[derive(Clone)]
pub struct PgConfig {
    /// `postgres://user@host:port/db` (a password in it is never logged).
    pub url: String,
    /// Schema holding every firmflow object (`[a-z_][a-z0-9_]*`, ≤ 50 chars).
    pub schema: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a pooled connection before `Unavailable`.
    pub acquire_timeout: Duration,
    /// Apply the embedded migrations at connect (under sqlx's advisory lock,
    /// so several daemons may start at once).
    pub migrate: bool,
    /// Keys for credentials at rest (the first seals, each opens what names
    /// its id); `None` refuses to store or read sealed credentials (session
    /// tokens then use a per-process key).
    pub keys: Option<KeyRing>,
    /// Candidates read per claim beyond the worker's slots (bounded scan).
    pub claim_scan_limit: usize,
    /// Work notifications of this store go out at most once per this
    /// interval (the first at once, the rest gathered).
    pub notify_debounce: Duration,
    /// Connections kept for lease renewals alone (at least 1), so heartbeats
    /// never queue behind run traffic for a connection of the main pool:
    /// a renewal that waited longer than the lease's margin would let every
    /// lease of the worker lapse while its runs are healthy.
    pub lease_connections: u32,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &redact_url(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("migrate", &self.migrate)
            .field("keys", &self.keys)
            .finish()
    }
}

impl PgConfig {
    /// Defaults: schema `firmflow`, 10 connections, 10 s acquire timeout,
    /// migrations on, no credential key.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "firmflow".into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            migrate: true,
            keys: None,
            claim_scan_limit: 1024,
            notify_debounce: Duration::from_millis(250),
            lease_connections: 2,
        }
    }
    /// Sets the schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }
    /// Sets the pool size.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }
    /// Sets one credential key (a ring of one).
    pub fn secret_key(mut self, key: SecretKey) -> Self {
        self.keys = Some(KeyRing::from(key));
        self
    }
    /// Sets the credential key ring (rotation: the new key first, the old
    /// ones after it until [`PgStore::reencrypt_credentials`] has run).
    pub fn key_ring(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }
}

/// Removes a password from a connection URL for display.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("REDACTED"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable url>".into(),
    }
}

pub(crate) fn validate_schema(schema: &str) -> Result<(), PgStoreError> {
    let ok = !schema.is_empty()
        && schema.len() <= 50
        && schema
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(PgStoreError::Config(format!(
            "schema name {schema:?} must match [a-z_][a-z0-9_]* (at most 50 characters, not pg_*)"
        )))
    }
}

pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    /// Lease renewals only ([`PgConfig::lease_connections`]).
    pub(crate) lease_pool: PgPool,
    pub(crate) schema: String,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keys: Option<KeyRing>,
    pub(crate) session_key: SecretKey,
    pub(crate) scan_limit: usize,
    pub(crate) notifier: notify::WorkNotifier,
    pub(crate) metrics: Metrics,
    /// Run writes of this store, committed in groups.
    pub(crate) group_commit: group_commit::GroupCommit,
}

/// Counters of one store (all its handles), for benchmarks and metrics.
#[derive(Default)]
pub(crate) struct Metrics {
    pub(crate) fenced_writes: AtomicU64,
    /// Claim latencies in microseconds (the first million).
    pub(crate) claim_micros: std::sync::Mutex<Vec<u32>>,
}

/// A snapshot of a store's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreMetrics {
    /// Fenced writes applied (transitions, checkpoints, releases).
    pub fenced_writes: u64,
    /// Claim calls.
    pub claims: u64,
    /// Median claim latency.
    pub claim_p50: Duration,
    /// 99th percentile claim latency.
    pub claim_p99: Duration,
    /// Statements that carried run writes (group commit): with
    /// `fenced_writes` this gives the writes per commit.
    pub write_batches: u64,
    /// The most run writes one of those statements carried.
    pub largest_batch: u64,
}

/// The PostgreSQL store. Cheap to clone (one shared pool).
#[derive(Clone)]
pub struct PgStore {
    pub(crate) inner: Arc<Inner>,
    /// `Some` for a handle scoped to one user under row-level security.
    pub(crate) identity: Option<UserId>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.inner.schema)
            .field("identity", &self.identity)
            .finish()
    }
}

impl PgStore {
    /// Connects, creates the schema if needed and applies the migrations.
    /// `clock.db_now()` is the time every statement uses (`None`: the
    /// database's `now()`), so tests drive lease expiry with a manual clock.
    pub async fn connect(config: PgConfig, clock: Arc<dyn Clock>) -> Result<Self, PgStoreError> {
        validate_schema(&config.schema)?;
        let opts = PgConnectOptions::from_str(&config.url)
            .map_err(|e| PgStoreError::Config(format!("database url: {e}")))?
            .application_name("firmflow");
        // Create the schema first, on a pool of its own without the
        // search_path hook (migrations need the schema to exist).
        let schema = config.schema.clone();
        let setup = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(opts.clone())
            .await
            .map_err(|e| PgStoreError::Connect(e.to_string()))?;
        let created = setup
            .execute(AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .await;
        if let Err(e) = created {
            // Two daemons creating the schema at once: one loses the race
            // on the catalog's unique index, and the schema exists.
            let raced = matches!(&e, sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("23505") | Some("42P06")));
            if !raced {
                return Err(PgStoreError::Migrate {
                    schema,
                    message: e.to_string(),
                });
            }
        }
        setup.close().await;

        let set_path = format!("SET search_path TO \"{schema}\"; SET TIME ZONE 'UTC'");
        let pool_of = |size: u32| {
            let set_path = set_path.clone();
            PgPoolOptions::new()
                .max_connections(size.max(1))
                .acquire_timeout(config.acquire_timeout)
                .after_connect(move |conn, _meta| {
                    let sql = set_path.clone();
                    Box::pin(async move {
                        conn.execute(AssertSqlSafe(sql)).await?;
                        Ok(())
                    })
                })
        };
        let pool = pool_of(config.max_connections)
            .connect_with(opts.clone())
            .await
            .map_err(|e| PgStoreError::Connect(e.to_string()))?;
        // Opened lazily: the schema may not be migrated yet.
        let lease_pool = pool_of(config.lease_connections).connect_lazy_with(opts);
        if config.migrate {
            MIGRATOR
                .run(&pool)
                .await
                .map_err(|e| PgStoreError::Migrate {
                    schema: schema.clone(),
                    message: e.to_string(),
                })?;
        }
        let store = Self {
            inner: Arc::new(Inner {
                pool: pool.clone(),
                lease_pool,
                schema: schema.clone(),
                clock,
                keys: config.keys,
                session_key: SecretKey::generate("process"),
                scan_limit: config.claim_scan_limit.max(1),
                metrics: Metrics::default(),
                notifier: notify::WorkNotifier::start(
                    pool.clone(),
                    &schema,
                    config.notify_debounce,
                ),
                group_commit: group_commit::GroupCommit::start(pool.clone()),
            }),
            identity: None,
        };
        if config.migrate {
            // Partitions for this month and the next two, in case the
            // migration ran long ago.
            store.ensure_event_partitions(2).await?;
        }
        Ok(store)
    }

    /// A handle acting as `user` under row-level security: each transaction
    /// switches to the user's own database role ([`user_role_name`]) for that
    /// transaction only. Claims, heartbeats and fenced writes are meant
    /// for the unscoped (daemon) handle.
    pub fn scoped(&self, user: UserId) -> PgStore {
        PgStore {
            inner: self.inner.clone(),
            identity: Some(user),
        }
    }

    /// The unscoped handle (the daemon's identity; not subject to RLS).
    pub fn unscoped(&self) -> PgStore {
        PgStore {
            inner: self.inner.clone(),
            identity: None,
        }
    }

    /// The user this handle acts as, if scoped.
    pub fn identity(&self) -> Option<UserId> {
        self.identity
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The pool (for callers that need raw SQL, e.g. tests and tools).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Counters since connect: fenced writes applied, claims and their
    /// latency percentiles.
    pub fn metrics(&self) -> StoreMetrics {
        let mut lat = self
            .inner
            .metrics
            .claim_micros
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        lat.sort_unstable();
        let pct = |p: f64| -> Duration {
            if lat.is_empty() {
                return Duration::ZERO;
            }
            let i = ((lat.len() - 1) as f64 * p).round() as usize;
            let at = lat.get(i.min(lat.len() - 1)).copied().unwrap_or(0);
            Duration::from_micros(u64::from(at))
        };
        StoreMetrics {
            fenced_writes: self.inner.metrics.fenced_writes.load(Ordering::Relaxed),
            claims: lat.len() as u64,
            claim_p50: pct(0.5),
            claim_p99: pct(0.99),
            write_batches: self.inner.group_commit.batches(),
            largest_batch: self.inner.group_commit.largest(),
        }
    }

    pub(crate) fn count_fenced_write(&self) {
        self.inner
            .metrics
            .fenced_writes
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_claim(&self, took: Duration) {
        if let Ok(mut v) = self.inner.metrics.claim_micros.lock()
            && v.len() < 1_000_000
        {
            v.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.inner.pool.close().await;
        self.inner.lease_pool.close().await;
    }

    /// Drops the schema with everything in it (test cleanup).
    pub async fn drop_schema(self) -> Result<(), PgStoreError> {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.inner.schema);
        self.inner
            .pool
            .execute(AssertSqlSafe(sql))
            .await
            .map_err(|e| PgStoreError::Store(error::db_err(e)))?;
        self.inner.pool.close().await;
        self.inner.lease_pool.close().await;
        Ok(())
    }

    /// The injected time to pass as `$now` (`None`: database time).
    pub(crate) fn now_param(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.inner.clock.db_now()
    }

    /// Begins a transaction, switching to the scoped role and identity when
    /// this handle is scoped.
    pub(crate) async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        let mut tx = self.inner.pool.begin().await.map_err(error::db_err)?;
        if let Some(user) = self.identity {
            // The identity is the role itself (migration 0007): a user
            // without one (never created through `create_user`) runs as
            // `firmflow_scoped`, which is nobody and sees nothing.
            sqlx::query(
                "SELECT set_config('role', \
                   CASE WHEN to_regrole($1) IS NOT NULL THEN $1 ELSE $2 END, true)",
            )
            .bind(user_role_name(user))
            .bind(SCOPED_ROLE)
            .execute(&mut *tx)
            .await
            .map_err(error::db_err)?;
        }
        Ok(tx)
    }

    pub(crate) fn key_ring(&self) -> StoreResult<&KeyRing> {
        self.inner.keys.as_ref().ok_or_else(|| {
            StoreError::Unavailable(
                "no credential encryption key configured (PgConfig::secret_key)".into(),
            )
        })
    }
}

/// Runs `$body` with `$conn: &mut PgConnection`: straight on a pooled
/// connection for the unscoped handle (one round trip for one statement),
/// inside a transaction carrying the identity for a scoped one.
macro_rules! with_conn {
    ($store:expr, $conn:ident => $body:expr) => {
        $crate::with_conn!($store, pool, $conn => $body)
    };
    // `$pool`: which of the store's pools an unscoped handle takes from.
    ($store:expr, $pool:ident, $conn:ident => $body:expr) => {{
        if $store.identity.is_none() {
            let mut pooled = $store
                .inner
                .$pool
                .acquire()
                .await
                .map_err($crate::error::db_err)?;
            let $conn: &mut sqlx::PgConnection = &mut *pooled;
            $body
        } else {
            let mut tx = $store.begin().await?;
            let r = {
                let $conn: &mut sqlx::PgConnection = &mut *tx;
                $body
            };
            if r.is_ok() {
                tx.commit().await.map_err($crate::error::db_err)?;
            }
            r
        }
    }};
}
pub(crate) use with_conn;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        assert!(validate_schema("firmflow").is_ok());
        assert!(validate_schema("ff_test_01").is_ok());
        for bad in ["", "Firmflow", "a-b", "a;drop", "pg_x", "1abc", "a\"b"] {
            assert!(validate_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_debug_hides_password() {
        let c = PgConfig::new("postgres://u:hunter2@127.0.0.1:5432/db");
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
    }
}
