//! `reindex` into a fresh file: the journal and settings are copied into a new database, the
//! projection is built there from the journal, and the new file replaces the old one in one
//! rename. The old file stays whole until that rename, so a crash or an error at any point
//! leaves the store as it was (and a half-built file that the next reindex replaces).
//!
//! Rebuilt in place, 1,000,000 deliveries took 6 minutes: the transaction's 5 GB of pages went
//! through the WAL twice (spilled, read back through its index, then checkpointed), and the old
//! projection's pages were freed only to be read back as they were reused. A file that nobody
//! else can see needs neither a WAL nor a rollback journal nor an fsync until it is complete.
//!
//! The caller holds the data directory's lock: no receiver may write the store meanwhile.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior};

use super::journal::{self, ReindexReport};
use super::projection::PROJECTED_TABLES;
use super::{database_path, open_writer, Result, StoreError, StoreOptions, REINDEX_CACHE_KIB};

/// Where the new database is built, beside the old one (a rename must not cross file systems).
pub fn fresh_path(data_dir: &Path) -> PathBuf {
    data_dir.join("rollcall.reindex.sqlite3")
}

/// Rebuilds every projected table from the journal into a fresh file and swaps it in.
pub fn reindex(data_dir: &Path, options: &StoreOptions) -> Result<ReindexReport> {
    let path = database_path(data_dir);
    let fresh = fresh_path(data_dir);
    remove_with_companions(&fresh)?;
    // Brings the old file to the current schema, and the new one gets the same schema.
    drop(open_writer(&path, options)?);
    drop(open_writer(&fresh, options)?);
    let report = build(&path, &fresh)?;
    swap_in(&path, &fresh)?;
    Ok(report)
}

/// Copies what is not projection from `old` into `fresh`, with the facts, then projects the
/// journal there.
fn build(old: &Path, fresh: &Path) -> Result<ReindexReport> {
    let mut conn = Connection::open(fresh)?;
    // Nothing else can see this file until it is complete: no WAL, no rollback journal, no
    // fsync per commit. A crash leaves a file the next reindex deletes.
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", REINDEX_CACHE_KIB)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    super::projection::participants::register(&conn)?;
    conn.execute("ATTACH DATABASE ?1 AS old", [old.to_string_lossy()])?;
    // The rows were consistent where they came from; copied table by table, a delivery would
    // otherwise be refused for naming a source not copied yet.
    conn.pragma_update(None, "foreign_keys", false)?;
    let started = Instant::now();
    copy_journal(&conn)?;
    conn.execute_batch("DETACH DATABASE old")?;
    forget_cached_pages(old);
    tracing::info!(secs = started.elapsed().as_secs_f64(), "copied the journal");
    // Foreign keys stay off for the projection too: every row it writes names a delivery it
    // has just read from the copied journal, and checking that again for each of 3,000,000
    // rows was about 3 % of the rebuild (one pair of runs). Incremental projection keeps them on.
    let started = Instant::now();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let report = journal::reindex(&tx)?;
    tx.commit()?;
    tracing::info!(
        secs = started.elapsed().as_secs_f64(),
        "projected the journal"
    );
    conn.pragma_update(None, "journal_mode", "WAL")?;
    drop(conn);
    std::fs::File::open(fresh)
        .and_then(|file| file.sync_all())
        .map_err(|e| io_error("could not write the rebuilt store to disk", fresh, &e))?;
    Ok(report)
}

/// Every table but the projected ones, row for row, and the facts, which the projection then
/// corrects where today's parsers read a delivery differently (`projection::Rebuild`).
fn copy_journal(conn: &Connection) -> Result<()> {
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM old.sqlite_schema
             WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let tx = conn.unchecked_transaction()?;
    for table in tables
        .iter()
        .filter(|t| *t == "facts" || !PROJECTED_TABLES.contains(&t.as_str()))
    {
        let old = columns(&tx, "old", table)?;
        if old != columns(&tx, "main", table)? {
            return Err(StoreError::Unavailable(format!(
                "the journal's table {table} does not have the columns of the current schema \
                 ({}); the store is left as it was",
                old.join(", ")
            )));
        }
        // In this exact form, with both tables alike, their indexes alike and foreign keys
        // off, SQLite copies each row's record and each index entry as it is, in order (its
        // transfer optimization): a third of the time of decoding every row of 1,000,000
        // deliveries and building the indexes again from the copied table, which read each
        // row's body again for the columns after it.
        tx.execute_batch(&format!(
            "DELETE FROM main.\"{table}\";
             INSERT INTO main.\"{table}\" SELECT * FROM old.\"{table}\";"
        ))?;
    }
    tx.commit()?;
    Ok(())
}

/// Asks the OS to drop the old file's pages from its cache: nothing reads them again, and the
/// memory they free is then what the new file's pages and the fold take first. On the benchmark
/// VM, memory the host has taken back costs several times more to touch again (the harness's
/// `write_floor`), and a reindex touches about 5 GiB. Only advice: a failure changes nothing.
fn forget_cached_pages(path: &Path) {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
        let dropped = std::fs::File::open(path)
            .map_err(|e| e.to_string())
            .and_then(|file| {
                posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
                    .map_err(|e| e.to_string())
            });
        if let Err(error) = dropped {
            tracing::debug!(%error, "could not drop the old store's cached pages");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = path;
}

/// A table's column names in their order (`SELECT *` copies by position).
fn columns(conn: &Connection, schema: &str, table: &str) -> Result<Vec<String>> {
    Ok(conn
        .prepare("SELECT name FROM pragma_table_info(?1, ?2) ORDER BY cid")?
        .query_map([table, schema], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Replaces the old file with the new one. The old file's connections are all closed, so its
/// WAL has been checkpointed into it and removed; a WAL left beside it would be applied to the
/// new file, so its absence is checked, not assumed.
fn swap_in(path: &Path, fresh: &Path) -> Result<()> {
    let wal = companion(path, "-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Err(StoreError::Unavailable(format!(
            "{} still has unwritten changes (is Rollcall running on it?); the store is left as it was",
            wal.display()
        )));
    }
    remove_with_companions_except_main(path)?;
    std::fs::rename(fresh, path)
        .map_err(|e| io_error("could not put the rebuilt store in place", path, &e))?;
    if let Some(dir) = path.parent() {
        // The rename itself is durable only once the directory is written.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("could not write the data directory", dir, &e))?;
    }
    remove_with_companions_except_main(fresh)
}

fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_with_companions(path: &Path) -> Result<()> {
    remove(path)?;
    remove_with_companions_except_main(path)
}

fn remove_with_companions_except_main(path: &Path) -> Result<()> {
    for suffix in ["-wal", "-shm", "-journal"] {
        remove(&companion(path, suffix))?;
    }
    Ok(())
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error("could not remove", path, &e))
        }
        _ => Ok(()),
    }
}

fn io_error(what: &str, path: &Path, error: &std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {error}", path.display()))
}
