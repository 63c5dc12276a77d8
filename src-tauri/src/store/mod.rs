//! The store: one SQLite file holding the journal of raw deliveries and the projection built
//! from it.
//!
//! Writes to the database go through the single [`writer::Writer`] thread (group commit: many
//! concurrent webhooks cost one fsync); reads use separate read-only connections
//! ([`ReadPool`]). A burst's deliveries are first kept in the receipt log ([`receipts`]), a file
//! of its own that hook requests append to, and journaled by the writer moments later. Nothing
//! here parses a platform payload: it calls `platforms::parse` and records the outcome.

mod backlog;
pub mod backup;
mod checkpoint;
mod connection;
pub mod journal;
pub mod projection;
pub mod rebuild;
pub mod receipts;
pub mod relay;
pub mod sources;
pub mod subscriptions;
mod syncer;
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

    /// Whether SQLite failed to fsync a file: unlike other I/O errors, that one leaves no way
    /// to know what reached the disk (see `store::syncer`).
    /// SQLite refused to write: the connection is read-only (`query_only`, after a failed fsync).
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ReadOnly
        )
    }

    pub fn is_failed_fsync(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.extended_code,
                    rusqlite::ffi::SQLITE_IOERR_FSYNC | rusqlite::ffi::SQLITE_IOERR_DIR_FSYNC
                )
        )
    }
}

/// UTC instants as stored: fixed width, so text order is time order
/// (`%Y-%m-%dT%H:%M:%S%.3fZ`). chrono's RFC 3339 writer gives that text without interpreting
/// a format string at each call, which was 2 % of a reindex's instructions.
pub fn format_time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reads a stored instant back.
pub fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};
    use proptest::prelude::*;

    use super::{format_time, parse_time};

    proptest! {
        /// Every instant of years 0 to 9999 is stored as the format string wrote it before
        /// (stores written then are compared with text written now), and reads back to the
        /// millisecond.
        #[test]
        fn stored_instants_are_the_fixed_width_form_and_read_back(
            millis in -62_167_219_200_000_i64..253_402_300_800_000,
            sub_millis in 0_u32..1_000_000,
        ) {
            let at: DateTime<Utc> = Utc.timestamp_millis_opt(millis).unwrap()
                + chrono::Duration::nanoseconds(i64::from(sub_millis));
            let text = format_time(&at);
            prop_assert_eq!(&text, &at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            prop_assert_eq!(text.len(), 24);
            prop_assert_eq!(parse_time(&text).map(|t| t.timestamp_millis()), Some(millis));
        }
    }
}
