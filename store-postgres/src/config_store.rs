//! `ConfigStore`: `system_config`, each change with its audit event in the
//! same transaction.

use crate::error::db_err;
use crate::rows;
use crate::{PgStore, with_conn};
use async_trait::async_trait;
use firmflow_core::model::*;
use firmflow_core::store::{ConfigStore, Result};
use serde_json::json;

#[async_trait]
impl ConfigStore for PgStore {
    async fn get_config(&self, key: &str) -> Result<Option<ConfigEntry>> {
        with_conn!(self, c => {
            let row = sqlx::query(
                "SELECT key, value, description, created_at, updated_at FROM system_config WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err)?;
            row.as_ref().map(rows::config_entry).transpose()
        })
    }

    async fn set_config(
        &self,
        key: &str,
        value: serde_json::Value,
        description: Option<&str>,
    ) -> Result<ConfigEntry> {
        let now = self.now_param();
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "INSERT INTO system_config (key, value, description, created_at, updated_at) \
             VALUES ($1, $2, $3, coalesce($4, now()), coalesce($4, now())) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, \
               description = coalesce(EXCLUDED.description, system_config.description), \
               updated_at = EXCLUDED.updated_at \
             RETURNING key, value, description, created_at, updated_at",
        )
        .bind(key)
        .bind(&value)
        .bind(description)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let entry = rows::config_entry(&row)?;
        crate::events::insert_event(
            &mut tx,
            &NewEvent::info(
                EventType::ConfigurationChanged,
                format!("configuration {key} changed"),
            )
            .details(json!({ "key": key })),
            now,
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(entry)
    }

    async fn list_config(&self) -> Result<Vec<ConfigEntry>> {
        with_conn!(self, c => {
            let rs = sqlx::query(
                "SELECT key, value, description, created_at, updated_at FROM system_config ORDER BY key",
            )
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
            rs.iter().map(rows::config_entry).collect::<Result<Vec<_>>>()
        })
    }
}
