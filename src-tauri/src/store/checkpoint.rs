//! The checkpointer: copies committed pages from the write-ahead log into the database file on
//! a thread and connection of its own, so that the writer's commits do not wait for it. With
//! SQLite's automatic checkpoint, every thousandth page made one commit copy the whole log and
//! fsync the database file while every sender of that batch waited: a tenth of the writer's
//! time under load, and its slowest answers.
//!
//! A checkpoint that runs beside the writer never empties the log while deliveries keep
//! coming (the writer appends as it copies), and SQLite starts the log over only once all of
//! it is copied. So when the log passes [`LOG_LIMIT`], the writer itself checkpoints between
//! two batches: by then nearly everything is copied, so that takes little, and the log starts
//! over. It must not write anything but checkpoints, and never holds a transaction.
//!
//! Once a write to disk has failed ([`Failed`]) neither copies anything again: a checkpoint
//! fsyncs the log first, but after a failed fsync a later one can succeed without the pages the
//! kernel dropped, and copying the frames beyond them would mix their pages into the database
//! file with older ones from the log. A checkpoint's own failed fsync counts as such a failure.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::syncer::{self, Failed};
use super::{Result, StoreError};

/// Checkpoints at most this often: each one fsyncs the database file.
const EVERY: Duration = Duration::from_millis(100);
/// Frames in the log beyond which the writer checkpoints itself (32 MiB of a new store's 8 KiB
/// pages), so that a long burst cannot grow the log without bound. Small, because the log is
/// cheaper to write once it has stopped growing: SQLite then writes it over in place. Growing,
/// each commit's pages needed new page-cache pages and blocks, and its fsync the file's new size
/// too (an fsync of 60 KiB into a file grown by it: 160 µs and 62 µs of CPU here; into blocks
/// already written: 92 µs and 39 µs). At 256 MiB the log grew for the first 4,000 commits of a
/// burst; at 32 MiB the writer, the syncer and the checkpointer took about a fifth less CPU
/// beside the same HTTP work (TagMango @64). The price is a checkpoint by the writer every
/// 500 or so commits of a burst, of what the checkpointer had not copied yet.
pub const LOG_LIMIT: i64 = 4 * 1024;
/// How long the checkpointer waits for a lock before trying again at its next turn.
const BUSY_TIMEOUT: Duration = Duration::from_millis(10);

/// The writer's side: nudges after commits, and the log size the checkpointer last saw.
pub struct Checkpoints {
    nudge: SyncSender<()>,
    log_frames: Arc<AtomicI64>,
    failed: Failed,
}

/// The running checkpointer thread; it stops once its [`Checkpoints`] is dropped.
pub struct CheckpointThread(JoinHandle<()>);

impl CheckpointThread {
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the checkpoint thread panicked");
        }
    }
}

/// Turns off SQLite's automatic checkpoints on the writer's connection and starts the thread
/// that does them instead.
pub fn start(
    writer: &Connection,
    path: &Path,
    failed: Failed,
) -> Result<(Checkpoints, CheckpointThread)> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A checkpoint fsyncs the log before copying it and the database file after.
    conn.pragma_update(None, "synchronous", "FULL")?;
    writer.pragma_update(None, "wal_autocheckpoint", 0)?;
    let (nudge, nudges) = sync_channel(1);
    let log_frames = Arc::new(AtomicI64::new(0));
    let seen = log_frames.clone();
    let refused = failed.clone();
    let thread = std::thread::Builder::new()
        .name("rollcall-checkpoint".into())
        .spawn(move || run(&conn, &nudges, &seen, &refused))
        .map_err(|e| StoreError::Unavailable(format!("could not start the checkpointer: {e}")))?;
    let checkpoints = Checkpoints {
        nudge,
        log_frames,
        failed,
    };
    Ok((checkpoints, CheckpointThread(thread)))
}

impl Checkpoints {
    /// Called by the writer after each commit, between batches.
    pub fn committed(&self, writer: &Connection) {
        if self.failed.is_set() {
            return;
        }
        if self.log_frames.load(Ordering::Relaxed) >= LOG_LIMIT {
            match checkpoint(writer, &self.failed) {
                Ok(frames) => self.log_frames.store(frames, Ordering::Relaxed),
                // The checkpointer is at it: the next commit looks again.
                Err(error) if error.is_transient() => {}
                Err(error) => tracing::warn!(%error, "the writer could not checkpoint"),
            }
        }
        match self.nudge.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => {
                tracing::error!("the checkpointer has stopped; the log will grow until restart")
            }
        }
    }
}

fn run(conn: &Connection, nudges: &Receiver<()>, log_frames: &AtomicI64, failed: &Failed) {
    let mut last = Instant::now() - EVERY;
    loop {
        match nudges.recv_timeout(Duration::from_secs(1)) {
            Ok(()) => {}
            // Nothing committed for a while; nothing to copy either.
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        }
        std::thread::sleep(EVERY.saturating_sub(last.elapsed()));
        last = Instant::now();
        if failed.is_set() {
            syncer::seal(conn);
            continue;
        }
        match checkpoint(conn, failed) {
            Ok(frames) => log_frames.store(frames, Ordering::Relaxed),
            // Busy or locked: the next commit nudges again.
            Err(error) if error.is_transient() => {}
            Err(error) => tracing::warn!(%error, "could not checkpoint the write-ahead log"),
        }
    }
    // The last connection to close checkpoints, and this one usually is.
    if failed.is_set() {
        syncer::seal(conn);
    }
}

/// [`passive`], recording a failed fsync.
fn checkpoint(conn: &Connection, failed: &Failed) -> Result<i64> {
    passive(conn).inspect_err(|error| {
        if error.is_failed_fsync() {
            failed.set(format!("checkpoint: {error}"));
            syncer::seal(conn);
        }
    })
}

/// Copies what it can of the log into the database file without blocking anyone; returns how
/// many frames the log holds.
fn passive(conn: &Connection) -> Result<i64> {
    let (busy, log, _copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    if busy != 0 {
        return Err(StoreError::Unavailable("the log is busy".into()));
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_pages(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len()) / 4096
    }

    /// With SQLite's automatic checkpoint off, pages reach the database file only through the
    /// checkpointer; it stops once the writer's side is dropped.
    #[test]
    fn committed_pages_are_copied_into_the_database_file_off_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let writer = Connection::open(&path).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer
            .execute_batch("CREATE TABLE t (v BLOB); PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        let (checkpoints, thread) = start(&writer, &path, Failed::default()).unwrap();
        let before = file_pages(&path);
        for _ in 0..50 {
            writer
                .execute("INSERT INTO t VALUES (randomblob(8000))", [])
                .unwrap();
            checkpoints.committed(&writer);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while file_pages(&path) < before + 50 && Instant::now() < deadline {
            checkpoints.committed(&writer);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            file_pages(&path) >= before + 50,
            "the database file has {} pages, {before} before 50 rows of two pages each",
            file_pages(&path)
        );
        drop(checkpoints);
        thread.join();
    }
}
