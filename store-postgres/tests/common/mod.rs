//! Shared test harness: every test (and every conformance case) gets a
//! fresh database copied from a template that holds the migrated schema,
//! and drops it again when its guard goes, even when the test panics.
//!
//! Copying a template (`CREATE DATABASE … TEMPLATE`, WAL_LOG strategy) takes
//! well under a second, where migrating a fresh schema takes over one on
//! this machine. The template's name carries a hash of the migrations, so a
//! changed migration builds a new one.
//!
//! The server comes from `FIRMFLOW_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, prepared by
//! `scripts/ensure-postgres.sh`); its role needs CREATEDB.

#![allow(dead_code, unreachable_pub)]

use firmflow_core::{Clock, ManualClock};
use firmflow_store_postgres::{MIGRATOR, PgConfig, PgStore, SecretKey};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, Executor as _};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The server's admin URL.
pub fn admin_url() -> String {
    std::env::var("FIRMFLOW_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The URL of database `db` on the test server.
pub fn db_url(db: &str) -> String {
    let mut u =
        url::Url::parse(&admin_url()).unwrap_or_else(|e| panic!("FIRMFLOW_TEST_DATABASE_URL: {e}"));
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// A test key (never a real one).
pub fn key() -> SecretKey {
    SecretKey::parse(
        "6a1f0c3e9b7d4a2f8e5c1b0d9a8f7e6d5c4b3a2918273645f0e1d2c3b4a59687",
        "test",
    )
    .unwrap_or_else(|e| panic!("test key: {e}"))
}

async fn admin_exec(sql: String) -> Result<(), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url())
        .await?;
    let r = pool.execute(AssertSqlSafe(sql)).await.map(|_| ());
    pool.close().await;
    r
}

fn migrations_hash() -> String {
    // FNV-1a over the migrations' versions and checksums.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for m in MIGRATOR.iter() {
        for b in m.version.to_le_bytes().iter().chain(m.checksum.iter()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")[..12].to_string()
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// The migrated template database (built once per migration set).
async fn template() -> String {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("fft_tmpl_{}", migrations_hash());
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect(&admin_url())
                .await
                .unwrap_or_else(|e| panic!("test database server ({}): {e}", admin_url()));
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                    .bind(&name)
                    .fetch_optional(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            if exists.is_none() {
                // Build under a private name, then rename: another test
                // process building the same template at once loses the
                // rename and throws its copy away.
                let building = format!(
                    "fft_build_{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                admin
                    .execute(AssertSqlSafe(format!("CREATE DATABASE \"{building}\"")))
                    .await
                    .unwrap_or_else(|e| panic!("create template: {e}"));
                let clock: Arc<dyn Clock> = Arc::new(firmflow_core::SystemClock);
                let store = PgStore::connect(PgConfig::new(db_url(&building)), clock)
                    .await
                    .unwrap_or_else(|e| panic!("migrate template: {e}"));
                store.close().await;
                let renamed = admin
                    .execute(AssertSqlSafe(format!(
                        "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
                    )))
                    .await;
                if renamed.is_err() {
                    let _ = admin
                        .execute(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
                        )))
                        .await;
                }
            }
            // Templates of older migration sets are of no further use.
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT datname::text FROM pg_database WHERE datname LIKE 'fft\\_tmpl\\_%' AND datname <> $1",
            )
            .bind(&name)
            .fetch_all(&admin)
            .await
            .unwrap_or_default();
            for db in stale {
                let _ = admin
                    .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{db}\"")))
                    .await;
            }
            admin.close().await;
            name
        })
        .await
        .clone()
}

/// Drops its database on drop (from a thread of its own, so it also works
/// while a panicking test unwinds inside a runtime), and the database roles
/// of the users it held (roles belong to the cluster, not the database).
pub struct DbGuard(pub String);

/// The database roles of the users of every firmflow schema in `db`.
async fn user_roles_of(db: &str) -> Vec<String> {
    let Ok(pool) = PgPoolOptions::new()
        .max_connections(1)
        .connect(&db_url(db))
        .await
    else {
        return Vec::new();
    };
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'users'",
    )
    .fetch_all(&pool)
    .await
    .unwrap_or_default();
    let mut roles = Vec::new();
    for schema in schemas {
        let sql = format!("SELECT 'ff_u_' || replace(id::text, '-', '') FROM \"{schema}\".users");
        let mut r: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
        roles.append(&mut r);
    }
    pool.close().await;
    roles
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        let db = self.0.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let roles = user_roles_of(&db).await;
                    let _ =
                        admin_exec(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)")).await;
                    for role in roles {
                        let _ = admin_exec(format!("DROP ROLE IF EXISTS \"{role}\"")).await;
                    }
                });
            }
        })
        .join();
    }
}

/// A fresh database copied from the template; returns its name.
pub async fn fresh_db(tag: &str) -> (String, DbGuard) {
    let tmpl = template().await;
    let db = format!(
        "fft_{tag}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let mut last = None;
    // The template is briefly busy while another test copies it.
    for _ in 0..50 {
        match admin_exec(format!(
            "CREATE DATABASE \"{db}\" TEMPLATE \"{tmpl}\" STRATEGY WAL_LOG"
        ))
        .await
        {
            Ok(()) => return (db.clone(), DbGuard(db)),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    panic!("cannot copy the template database: {last:?}");
}

/// A store on a fresh database, with the test key.
pub async fn store_with(clock: Arc<dyn Clock>, tag: &str, pool: u32) -> (PgStore, DbGuard) {
    let (db, guard) = fresh_db(tag).await;
    let store = PgStore::connect(
        PgConfig::new(db_url(&db))
            .max_connections(pool)
            .secret_key(key()),
        clock,
    )
    .await
    .unwrap_or_else(|e| panic!("connect to the test database {db}: {e}"));
    (store, guard)
}

/// A store on a fresh database driven by a manual clock at the suite's t0.
pub async fn store(tag: &str) -> (PgStore, Arc<ManualClock>, DbGuard) {
    let clock = Arc::new(ManualClock::new(firmflow_core::store::conformance::t0()));
    let (s, g) = store_with(clock.clone(), tag, 4).await;
    (s, clock, g)
}

/// Another store (its own pool, like a second daemon) on the same database.
pub async fn second_store(first: &PgStore, db: &str, clock: Arc<dyn Clock>) -> PgStore {
    PgStore::connect(
        PgConfig::new(db_url(db))
            .schema(first.schema())
            .max_connections(4)
            .secret_key(key()),
        clock,
    )
    .await
    .unwrap_or_else(|e| panic!("second connect: {e}"))
}

/// Deletes every row of every firmflow table: an empty store again, in a
/// few milliseconds (a database copy takes about a second on a busy disk).
pub async fn wipe(store: &PgStore) {
    sqlx::raw_sql(
        "BEGIN; \
         DELETE FROM user_datacenter_access; DELETE FROM users; DELETE FROM datacenters; \
         DELETE FROM redfish_sessions; DELETE FROM credentials; DELETE FROM update_plans; \
         DELETE FROM hosts; DELETE FROM workers; DELETE FROM system_config; \
         DELETE FROM system_events; DELETE FROM background_jobs; DELETE FROM task_queue; \
         COMMIT;",
    )
    .execute(store.pool())
    .await
    .unwrap_or_else(|e| panic!("wipe: {e}"));
}

/// The database a store is connected to.
pub fn db_of(s: &PgStore) -> String {
    s.pool()
        .connect_options()
        .get_database()
        .unwrap_or_default()
        .to_string()
}
