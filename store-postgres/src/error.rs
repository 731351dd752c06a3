//! Error types and the mapping of database errors onto the store port's
//! [`firmflow_core::store::Error`]. No message here ever carries a secret:
//! database errors are described by their SQLSTATE, constraint and message,
//! never by bound parameter values.

use firmflow_core::store::Error as StoreError;

/// Errors of the PostgreSQL store outside the store port: connecting,
/// migrating, configuration, keys and encryption.
#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    /// A store-port error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is unusable (schema name, URL, key).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Connecting to the database failed.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// Applying the embedded migrations failed.
    #[error("migrating schema {schema} failed: {message}")]
    Migrate {
        /// The schema.
        schema: String,
        /// What went wrong.
        message: String,
    },
    /// The encryption key is missing or malformed (the key never appears here).
    #[error("encryption key: {0}")]
    Key(String),
    /// Sealing or opening a secret failed (wrong key, tampered data).
    #[error("cannot decrypt {what}: wrong key or tampered data")]
    Decrypt {
        /// What was being opened (`credential 0195…`).
        what: String,
    },
}

/// Maps a sqlx error onto the store port's error, naming `what` was being done.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::not_found("row"),
        sqlx::Error::Database(d) => {
            let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
            let constraint = d.constraint().map(str::to_owned);
            let msg = d.message().to_owned();
            let described = match &constraint {
                Some(c) => format!("{msg} (constraint {c}, SQLSTATE {code})"),
                None => format!("{msg} (SQLSTATE {code})"),
            };
            match code.as_str() {
                // unique_violation, exclusion_violation, check_violation
                "23505" | "23P01" | "23514" => StoreError::Conflict(described),
                // foreign_key_violation: the referenced entity does not exist
                "23503" => StoreError::NotFound { what: described },
                // insufficient_privilege (includes row-level security refusals)
                "42501" => StoreError::PermissionDenied(described),
                // serialization_failure, deadlock_detected, lock_not_available,
                // query_canceled, admin_shutdown, cannot_connect_now, too_many_connections
                "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P03" | "53300" => {
                    StoreError::Unavailable(described)
                }
                // invalid_text_representation / datetime overflow etc. on stored data
                "22P02" | "22008" | "22003" => StoreError::Corrupt(described),
                _ => StoreError::Unavailable(described),
            }
        }
        sqlx::Error::ColumnDecode { index, source } => {
            StoreError::Corrupt(format!("column {index}: {source}"))
        }
        sqlx::Error::Decode(e) => StoreError::Corrupt(e.to_string()),
        sqlx::Error::ColumnNotFound(c) => StoreError::Corrupt(format!("column {c} missing")),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Whether a store error is the "one running run per host" backstop.
pub(crate) fn is_host_busy_conflict(e: &StoreError) -> bool {
    matches!(e, StoreError::Conflict(m) if m.contains("host_runs_one_running_per_host"))
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_are_transient() {
        let e = db_err(sqlx::Error::PoolTimedOut);
        assert!(e.is_transient(), "{e}");
        let e = db_err(sqlx::Error::RowNotFound);
        assert!(matches!(e, StoreError::NotFound { .. }));
    }

    #[test]
    fn host_busy_conflict_is_recognised() {
        let e = StoreError::Conflict(
            "duplicate key (constraint host_runs_one_running_per_host, SQLSTATE 23505)".into(),
        );
        assert!(is_host_busy_conflict(&e));
        assert!(!is_host_busy_conflict(&StoreError::Conflict(
            "other".into()
        )));
    }
}
