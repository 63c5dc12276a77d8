//! Consistent copies of the database while webhooks keep arriving. `VACUUM INTO` writes the
//! database as one read transaction sees it, so the copy is whole and compact and the writer is
//! never paused. A backup never overwrites a file. Restoring is not done here: it is stopping
//! Rollcall and putting the copy in place (README, "Back up and restore").

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{open_read_only, StoreError, StoreOptions};

/// A backup written.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Backup {
    /// Where the copy is.
    pub file: String,
    /// Deliveries in the copy (read back from it).
    pub deliveries: i64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no Rollcall database at {0}")]
    NoDatabase(PathBuf),
    #[error("{0} already exists; Rollcall never overwrites a file with a backup")]
    Exists(PathBuf),
    #[error("the backup file's name {0} is not valid UTF-8")]
    NotUtf8(PathBuf),
    #[error("could not write the backup to {file}: {source}")]
    Write { file: PathBuf, source: StoreError },
    #[error("could not create the folder {dir} for backups: {source}")]
    Folder {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Copies the database at `database` to `file`, which must not exist yet.
pub fn backup(database: &Path, file: &Path) -> Result<Backup, BackupError> {
    if !database.exists() {
        return Err(BackupError::NoDatabase(database.to_owned()));
    }
    if file.exists() {
        return Err(BackupError::Exists(file.to_owned()));
    }
    let target = file
        .to_str()
        .ok_or_else(|| BackupError::NotUtf8(file.to_owned()))?;
    let write_error = |source: StoreError| BackupError::Write {
        file: file.to_owned(),
        source,
    };
    let conn = open_read_only(database, &StoreOptions::default()).map_err(write_error)?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(|e| write_error(e.into()))?;
    let copy = open_read_only(file, &StoreOptions::default()).map_err(write_error)?;
    let deliveries = copy
        .query_row("SELECT count(*) FROM deliveries", [], |row| row.get(0))
        .map_err(|e| write_error(e.into()))?;
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    Ok(Backup {
        file: file.display().to_string(),
        deliveries,
        bytes,
    })
}

/// A new backup in the data directory's `backups/` folder, named by the time it is taken.
pub fn backup_into_data_dir(data_dir: &Path) -> Result<Backup, BackupError> {
    let dir = data_dir.join("backups");
    std::fs::create_dir_all(&dir).map_err(|source| BackupError::Folder {
        dir: dir.clone(),
        source,
    })?;
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f");
    let file = dir.join(format!("rollcall-{stamp}.sqlite3"));
    backup(&super::database_path(data_dir), &file)
}
