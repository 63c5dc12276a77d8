//! The store: one SQLite file holding the journal of raw deliveries and the projection built
//! from it.
//!
//! Writes go through the single [`writer::Writer`] thread (group commit: many concurrent
//! webhooks cost one fsync); reads use separate read-only connections ([`ReadPool`]). Nothing
//! here parses a platform payload: it calls `platforms::parse` and records the outcome.

mod backlog;
pub mod backup;
mod checkpoint;
mod connection;
pub mod journal;
pub mod projection;
pub mod rebuild;
pub mod sources;
pub mod subscriptions;
pub mod tunnel_urls;
pub mod writer;

use std::path::{Path, PathBuf};

pub use connection::{open_read_only, open_writer, ReadPool, StoreOptions, REINDEX_CACHE_KIB};

/// The database file inside a data directory.
pub const DATABASE_FILE: &str = "rollcall.sqlite3";

/// Where a data directory keeps its database.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DATABASE_FILE)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database could not be used: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database schema could not be brought up to date: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error(
        "the database at {path} was written by a newer Rollcall (schema version {found}, this \
         version knows {known}); it is left untouched"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    #[error("{path} is not a Rollcall database ({reason}); it is left untouched")]
    Foreign { path: PathBuf, reason: String },
    #[error("could not create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the store is not accepting writes: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Invalid(String),
    /// The source a delivery was authenticated against changed before the delivery could be
    /// journaled; nothing was stored, and the receiver authenticates it again.
    #[error("the source of this delivery changed while it was received; nothing was stored")]
    SourceChanged,
    #[error("stored data could not be read back: {0}")]
    Corrupt(#[from] serde_json::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether the failure is the store's condition (disk full, locked, I/O) rather than a
    /// defect: the sender should retry later and will find the store working again.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                DatabaseBusy
                    | DatabaseLocked
                    | DiskFull
                    | SystemIoFailure
                    | CannotOpen
                    | OutOfMemory
            ),
            _ => false,
        }
    }
}

/// UTC instants as stored: fixed width, so text order is time order.
pub fn format_time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Reads a stored instant back.
pub fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}
