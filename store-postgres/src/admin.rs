//! Administration beyond the store ports: users, datacenters and access
//! grants for row-level security, and upkeep of the `system_events`
//! partitions (creation ahead of time, retention by dropping partitions).

use crate::error::{PgStoreError, db_err};
use crate::{PgStore, with_conn};
use firmflow_core::model::{DatacenterId, UserId};
use sqlx::AssertSqlSafe;
use std::time::Duration;

/// Application roles read by the row-level security policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserRole {
    /// Sees and changes everything.
    Admin,
    /// Sees and changes hosts, plans and runs of granted datacenters.
    Operator,
    /// Sees what an operator would, changes nothing.
    Viewer,
}

impl UserRole {
    /// Stored text.
    pub fn as_str(&self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::Operator => "operator",
            UserRole::Viewer => "viewer",
        }
    }
}

/// What a partition upkeep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionReport {
    /// Monthly partitions created.
    pub created: u32,
    /// Monthly partitions dropped by retention.
    pub dropped: u32,
    /// Whether another instance held the upkeep lock (nothing done).
    pub skipped: bool,
}

impl PgStore {
    /// Creates a datacenter.
    pub async fn create_datacenter(&self, name: &str) -> Result<DatacenterId, PgStoreError> {
        let id = DatacenterId::new();
        with_conn!(self, c => {
            sqlx::query("INSERT INTO datacenters (id, name) VALUES ($1, $2)")
                .bind(id.0)
                .bind(name)
                .execute(&mut *c)
                .await
                .map_err(db_err)
        })?;
        Ok(id)
    }

    /// Creates a user with an application role, and the user's database
    /// role ([`crate::user_role_name`]): a NOLOGIN member of
    /// `firmflow_scoped` that the store's login role may switch to. Needs a
    /// login role with CREATEROLE (run it on the unscoped handle).
    pub async fn create_user(&self, name: &str, role: UserRole) -> Result<UserId, PgStoreError> {
        let id = UserId::new();
        let db_role = crate::user_role_name(id);
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO users (id, name, role) VALUES ($1, $2, $3)")
            .bind(id.0)
            .bind(name)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // The name is ff_u_ and hex digits only: safe to splice.
        for sql in [
            format!("CREATE ROLE \"{db_role}\" NOLOGIN"),
            format!("GRANT {} TO \"{db_role}\"", crate::SCOPED_ROLE),
            format!("GRANT \"{db_role}\" TO CURRENT_USER"),
        ] {
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(id)
    }

    /// Deletes a user (its access grants go with it) and drops its database
    /// role. Dropping a role that does not exist is no error.
    pub async fn delete_user(&self, user: UserId) -> Result<(), PgStoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let sql = format!("DROP ROLE IF EXISTS \"{}\"", crate::user_role_name(user));
        sqlx::query(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    /// Grants a user access to a datacenter.
    pub async fn grant_datacenter(
        &self,
        user: UserId,
        datacenter: DatacenterId,
    ) -> Result<(), PgStoreError> {
        with_conn!(self, c => {
            sqlx::query(
                "INSERT INTO user_datacenter_access (user_id, datacenter_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(user.0)
            .bind(datacenter.0)
            .execute(&mut *c)
            .await
            .map_err(db_err)
        })?;
        Ok(())
    }

    /// Makes sure a user exists with this id, name and role, with access to
    /// exactly `datacenters` (each created under its id and name when
    /// missing), and its database role ([`crate::user_role_name`]). For a
    /// daemon whose API tokens are the users: run at every start, by every
    /// daemon, it converges on the configuration (a role or datacenter
    /// changed in the config is changed here; grants not in it are revoked).
    /// Needs a login role with CREATEROLE (the unscoped handle).
    pub async fn provision_user(
        &self,
        id: UserId,
        name: &str,
        role: UserRole,
        datacenters: &[(DatacenterId, &str)],
    ) -> Result<(), PgStoreError> {
        let db_role = crate::user_role_name(id);
        let mut tx = self.begin().await?;
        // Two daemons starting together must not race on CREATE ROLE.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('firmflow.provision_user'))")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO users (id, name, role) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role, \
             updated_at = now()",
        )
        .bind(id.0)
        .bind(name)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&db_role)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        let mut ddl = Vec::new();
        if !exists {
            ddl.push(format!("CREATE ROLE \"{db_role}\" NOLOGIN"));
        }
        // Granting again is a notice, not an error.
        ddl.push(format!("GRANT {} TO \"{db_role}\"", crate::SCOPED_ROLE));
        ddl.push(format!("GRANT \"{db_role}\" TO CURRENT_USER"));
        // The name is ff_u_ and hex digits only: safe to splice.
        for sql in ddl {
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let mut granted = Vec::with_capacity(datacenters.len());
        for (dc, dc_name) in datacenters {
            sqlx::query(
                "INSERT INTO datacenters (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(dc.0)
            .bind(dc_name)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let named: Option<uuid::Uuid> =
                sqlx::query_scalar("SELECT id FROM datacenters WHERE name = $1")
                    .bind(dc_name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if named.is_some_and(|n| n != dc.0) {
                return Err(PgStoreError::Store(firmflow_core::store::Error::Conflict(
                    format!(
                        "datacenter {dc_name:?} exists under another id than the one its hosts carry ({dc})"
                    ),
                )));
            }
            sqlx::query(
                "INSERT INTO user_datacenter_access (user_id, datacenter_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id.0)
            .bind(dc.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            granted.push(dc.0);
        }
        sqlx::query(
            "DELETE FROM user_datacenter_access WHERE user_id = $1 AND NOT (datacenter_id = ANY($2))",
        )
        .bind(id.0)
        .bind(&granted)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    /// Makes sure the partitions of this month and the next `months_ahead`
    /// exist (by the store's clock).
    pub async fn ensure_event_partitions(&self, months_ahead: u32) -> Result<u32, PgStoreError> {
        let now = self.now_param();
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE made) FROM ( \
               SELECT firmflow_ensure_event_partition(coalesce($1, now()) + make_interval(months => m)) AS made \
               FROM generate_series(0, $2) AS m) AS s",
        )
        .bind(now)
        .bind(i32::try_from(months_ahead).unwrap_or(i32::MAX))
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        Ok(u32::try_from(n).unwrap_or(0))
    }

    /// Partition upkeep, run by whichever instance takes the upkeep lock:
    /// creates the coming months' partitions (moving rows that landed in the
    /// default partition), and drops every partition that ended more than
    /// `retention` ago.
    pub async fn maintain_events(
        &self,
        months_ahead: u32,
        retention: Duration,
    ) -> Result<PartitionReport, PgStoreError> {
        let now = self.now_param();
        let mut tx = self.inner.pool.begin().await.map_err(db_err)?;
        let lock_key = format!("firmflow.events_upkeep:{}", self.schema());
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(&lock_key)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        if !got {
            return Ok(PartitionReport {
                skipped: true,
                ..PartitionReport::default()
            });
        }
        // Months with rows stranded in the default partition get theirs too.
        let created: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE made) FROM ( \
               SELECT firmflow_ensure_event_partition(t) AS made FROM ( \
                 SELECT coalesce($1, now()) + make_interval(months => m) AS t \
                 FROM generate_series(0, $2) AS m \
                 UNION \
                 SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' \
                 FROM system_events_default \
                 WHERE created_at >= coalesce($1, now()) - make_interval(secs => $3)) AS months \
               ) AS s",
        )
        .bind(now)
        .bind(i32::try_from(months_ahead).unwrap_or(i32::MAX))
        .bind(retention.as_secs_f64())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let dropped: i32 = sqlx::query_scalar(
            "SELECT firmflow_drop_event_partitions(coalesce($1, now()) - make_interval(secs => $2))",
        )
        .bind(now)
        .bind(retention.as_secs_f64())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(PartitionReport {
            created: u32::try_from(created).unwrap_or(0),
            dropped: u32::try_from(dropped).unwrap_or(0),
            skipped: false,
        })
    }

    /// The monthly partitions of `system_events`, oldest first.
    pub async fn event_partitions(&self) -> Result<Vec<String>, PgStoreError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'system_events'::regclass \
               AND c.relname ~ '^system_events_p[0-9]{6}$' ORDER BY 1",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(names)
    }
}
