//! The syncer: makes the writer's commits durable on a thread of its own, then answers the
//! requests they carried. The writer's connection commits without waiting for the disk
//! (`synchronous=NORMAL`: SQLite writes the commit's frames to the write-ahead log but does not
//! fsync it) and goes on with the next batch; this thread fsyncs the log and only then runs what
//! waited for the commit, the 200s among it. One fsync covers every commit made before it
//! started. While one runs, the writer keeps its next transaction open and adds to it what
//! arrives ([`Syncer::busy`]), and commits once told the sync is done: a commit then costs one
//! fsync however small the batches, and the disk's time is the writer's time for the next batch.
//!
//! With the fsync in each commit, the writer spent a third of its time in it (the fsync, and
//! waiting for the disk), and every sender waited for both. It must never run SQL: it only
//! fsyncs the log file, which SQLite keeps (same inode, appended or overwritten in place) for
//! as long as the writer's connection is open. SQLite's own ordering still holds: a checkpoint
//! fsyncs the log before copying it, and a crash loses at most a suffix of the commits, none of
//! which was answered.
//!
//! A failed fsync is final for this run ([`Failed`]). The kernel may have dropped the pages it
//! could not write, and a later fsync that succeeds says nothing about them; a commit made after
//! them is behind a gap in the log, where SQLite's recovery stops after a crash. So from the
//! first failure on, nothing is answered as stored and nothing is copied into the database file
//! (`store::checkpoint`) until a restart, whose recovery reads what is really on disk
//! (PostgreSQL stops for the same reason). Senders are told to retry.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Result, StoreError};

/// What waits for a commit to be on disk: told whether it is.
pub type Durable = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// Why a sync did not make what waited for it durable.
#[derive(Debug)]
pub enum SyncFailure {
    /// It could not be written (a full disk), and nothing else was lost: the next sync may
    /// succeed, and the store goes on.
    Unwritten(io::Error),
    /// The fsync failed: final until a restart ([`Failed`]).
    Fsync(io::Error),
}

/// Set once an fsync of the store failed: shared by the syncer, the checkpointer and the writer,
/// which from then on neither vouch for a commit nor copy the log into the database file, and
/// watched by the dashboard, which says so.
#[derive(Clone)]
pub struct Failed(Arc<watch::Sender<Option<String>>>);

impl Default for Failed {
    fn default() -> Self {
        Failed(Arc::new(watch::channel(None).0))
    }
}

impl Failed {
    /// Records the first failure; later ones change nothing.
    pub fn set(&self, what: impl std::fmt::Display) {
        let first = self.0.send_if_modified(|reason| {
            if reason.is_some() {
                return false;
            }
            *reason = Some(format!(
                "an earlier write to disk failed ({what}): deliveries are refused until Rollcall \
                 is restarted"
            ));
            true
        });
        if first {
            tracing::error!(error = %what, "a write to disk failed: deliveries are refused until Rollcall is restarted");
        }
    }

    /// Why the store refuses, once it does.
    pub fn reason(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// Whether the store refuses.
    pub fn is_set(&self) -> bool {
        self.0.borrow().is_some()
    }

    /// Sees the failure when it happens.
    pub fn watch(&self) -> watch::Receiver<Option<String>> {
        self.0.subscribe()
    }
}

/// Keeps SQLite from copying the log into the database file when `conn` closes, as the last
/// connection otherwise does: after a failed fsync that copy could put pages from beyond the gap
/// into the database file.
pub fn seal(conn: &rusqlite::Connection) {
    use rusqlite::config::DbConfig;
    if let Err(error) = conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true) {
        tracing::error!(%error, "could not keep the connection from checkpointing on close");
    }
}

/// The writer's side: hands over what waits for the commit just made.
pub struct Syncer {
    waiting: Sender<Durable>,
    /// Commits handed over and not yet answered.
    outstanding: Arc<AtomicUsize>,
}

/// The running syncer; it answers what is left and stops once its [`Syncer`] is dropped.
pub struct SyncerThread(JoinHandle<()>);

impl SyncerThread {
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the syncer thread panicked");
        }
    }
}

/// Starts the thread that fsyncs the write-ahead log of the database at `database`;
/// `synced` is called after each sync, once what waited for it is answered.
pub fn start(
    database: &std::path::Path,
    synced: impl Fn() + Send + 'static,
    failed: Failed,
) -> Result<(Syncer, SyncerThread)> {
    let mut log = Log::new(database);
    start_with(
        "the write-ahead log",
        move || log.sync().map_err(SyncFailure::Fsync),
        synced,
        failed,
    )
}

/// [`start`] with any way of making writes durable: `what` names the files it syncs (the receipt
/// log has a syncer of its own; tests make one that waits or fails).
pub fn start_with(
    what: &'static str,
    sync: impl FnMut() -> Result<(), SyncFailure> + Send + 'static,
    synced: impl Fn() + Send + 'static,
    failed: Failed,
) -> Result<(Syncer, SyncerThread)> {
    let (waiting, queue) = channel();
    let outstanding = Arc::new(AtomicUsize::new(0));
    let answered = outstanding.clone();
    // At the default policy its wake-ups preempt whatever runs, an ingest thread most often.
    // At SCHED_BATCH the ingest threads were preempted less than half as often, but each sync
    // started later and the cores were less busy (bench/results/README.md, thirty-fourth round).
    let thread = std::thread::Builder::new()
        .name("rollcall-syncer".into())
        .spawn(move || run(what, &queue, sync, &answered, synced, &failed))
        .map_err(|e| StoreError::Unavailable(format!("could not start the syncer: {e}")))?;
    let syncer = Syncer {
        waiting,
        outstanding,
    };
    Ok((syncer, SyncerThread(thread)))
}

impl Syncer {
    /// Runs `then` once everything committed so far is on disk. Call it after the commit.
    pub fn after_sync(&self, then: Durable) {
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        if let Err(unsent) = self.waiting.send(then) {
            // Only after the thread died: nothing is answered that is not known to be on disk.
            self.outstanding.fetch_sub(1, Ordering::SeqCst);
            let error = StoreError::Unavailable("the syncer has stopped".into());
            (unsent.0)(Err(&error));
        }
    }

    /// Whether a commit handed over is still waiting for its sync: one made now would wait for
    /// the next sync anyway.
    pub fn busy(&self) -> bool {
        self.outstanding.load(Ordering::SeqCst) > 0
    }
}

/// While a burst is on (the last sync answered at least [`BURST`]), a sync starts no sooner than
/// this after the previous one ended, and covers what arrived meanwhile. Each sync costs the
/// cores VM exits and wake-ups: at 64 connections, syncs of 13 webhooks each (3,200 a second)
/// were a sixth of the server's CPU. Since a sync's answers go through relays (`store::relay`)
/// and cost less, 100 µs keeps the cores busier than 200 did (82 against 78 %) for 0.3 µs more
/// CPU per webhook, and answers 4.5 % more webhooks a second; 50 µs costs more CPU than it wins
/// (`bench/results/README.md`, thirty-third round), and 75 µs was no different (thirty-fourth).
/// Ending it once every ingest thread has parked lost 3.7 points (thirty-fourth), most likely
/// because they park before the senders' next requests are in. A lone delivery never waits.
const GATHER: Duration = Duration::from_micros(100);
const BURST: usize = 8;

fn run(
    what: &str,
    queue: &Receiver<Durable>,
    mut sync: impl FnMut() -> Result<(), SyncFailure>,
    outstanding: &AtomicUsize,
    synced: impl Fn(),
    failed: &Failed,
) {
    let mut previous: Option<(Instant, usize)> = None;
    while let Ok(first) = queue.recv() {
        if let Some((ended, _)) = previous.filter(|(_, answered)| *answered >= BURST) {
            let left = (ended + GATHER).saturating_duration_since(Instant::now());
            if !left.is_zero() {
                std::thread::sleep(left);
            }
        }
        let mut waiting = vec![first];
        waiting.extend(queue.try_iter());
        let outcome = match failed.reason() {
            Some(reason) => Err(StoreError::Unavailable(reason)),
            None => sync().map_err(|failure| match failure {
                SyncFailure::Unwritten(e) => StoreError::Unavailable(format!(
                    "the delivery could not be written to disk: {e}"
                )),
                SyncFailure::Fsync(e) => {
                    failed.set(format!("fsync of {what}: {e}"));
                    StoreError::Unavailable(format!(
                        "the delivery could not be written to disk: {e}"
                    ))
                }
            }),
        };
        let answered = waiting.len();
        for then in waiting {
            then(outcome.as_ref().map(|_| ()));
        }
        outstanding.fetch_sub(answered, Ordering::SeqCst);
        synced();
        previous = Some((Instant::now(), answered));
    }
}

/// The write-ahead log of the database at `database`.
pub fn wal_path(database: &std::path::Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push("-wal");
    path.into()
}

/// The write-ahead log file, opened on first use.
struct Log {
    path: PathBuf,
    file: Option<File>,
}

impl Log {
    fn new(database: &std::path::Path) -> Log {
        Log {
            path: wal_path(database),
            file: None,
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        // SQLite deletes the log only when the last connection closes, after copying all of it
        // into the database file; a deleted log's commits are safe there. Reopening then is
        // for a writer that outlived that (another process's last close), not for durability.
        if self.file.as_ref().is_none_or(unlinked) {
            self.file = Some(File::open(&self.path)?);
        }
        self.file.as_ref().map_or(Ok(()), File::sync_data)
    }
}

fn unlinked(file: &File) -> bool {
    file.metadata().is_ok_and(|m| m.nlink() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{sync_channel, RecvTimeoutError};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const PATIENCE: Duration = Duration::from_secs(10);

    /// A sync that says when it starts and waits until the test lets it finish, counting the
    /// syncs.
    struct Gated {
        started: Receiver<()>,
        open: Sender<()>,
        syncs: Arc<Mutex<u32>>,
    }

    fn gated() -> (Gated, Syncer, SyncerThread) {
        let (open, gate) = channel::<()>();
        let (starting, started) = channel::<()>();
        let syncs = Arc::new(Mutex::new(0));
        let counted = syncs.clone();
        let (syncer, thread) = start_with(
            "a test",
            move || {
                starting.send(()).ok();
                gate.recv().ok();
                *counted.lock().unwrap() += 1;
                Ok(())
            },
            || {},
            Failed::default(),
        )
        .unwrap();
        let gated = Gated {
            started,
            open,
            syncs,
        };
        (gated, syncer, thread)
    }

    fn answer_to(told: &std::sync::mpsc::SyncSender<bool>) -> Durable {
        let told = told.clone();
        Box::new(move |synced| told.send(synced.is_ok()).unwrap())
    }

    #[test]
    fn nothing_is_answered_before_the_sync_finishes() {
        let (gate, syncer, thread) = gated();
        let (told, answers) = sync_channel(8);
        syncer.after_sync(answer_to(&told));
        gate.started.recv_timeout(PATIENCE).unwrap();
        assert_eq!(
            answers.recv_timeout(Duration::from_millis(200)),
            Err(RecvTimeoutError::Timeout),
            "answered while the sync was still running"
        );
        gate.open.send(()).unwrap();
        assert_eq!(answers.recv_timeout(PATIENCE), Ok(true));
        assert_eq!(*gate.syncs.lock().unwrap(), 1);
        drop(syncer);
        thread.join();
    }

    #[test]
    fn the_syncer_is_busy_from_the_hand_over_until_the_answer_and_then_says_so() {
        let (done, told_done) = channel();
        let (open, gate) = channel::<()>();
        let (syncer, thread) = start_with(
            "a test",
            move || {
                gate.recv()
                    .map_err(|e| SyncFailure::Fsync(io::Error::other(e)))
            },
            move || done.send(()).unwrap(),
            Failed::default(),
        )
        .unwrap();
        assert!(!syncer.busy());
        let (told, answers) = sync_channel(8);
        syncer.after_sync(answer_to(&told));
        assert!(syncer.busy(), "a commit waits for its sync");
        open.send(()).unwrap();
        told_done.recv_timeout(PATIENCE).unwrap();
        assert_eq!(
            answers.try_recv(),
            Ok(true),
            "answered before the writer is told"
        );
        assert!(!syncer.busy());
        drop(syncer);
        thread.join();
    }

    #[test]
    fn one_sync_covers_every_commit_made_while_the_previous_one_ran() {
        let (gate, syncer, thread) = gated();
        let (told, answers) = sync_channel(8);
        syncer.after_sync(answer_to(&told));
        gate.started.recv_timeout(PATIENCE).unwrap();
        for _ in 0..3 {
            syncer.after_sync(answer_to(&told));
        }
        gate.open.send(()).unwrap();
        gate.open.send(()).unwrap();
        for _ in 0..4 {
            assert_eq!(answers.recv_timeout(PATIENCE), Ok(true));
        }
        drop(syncer);
        thread.join();
        assert_eq!(*gate.syncs.lock().unwrap(), 2, "four commits, two syncs");
    }

    #[test]
    fn after_a_failed_sync_nothing_is_answered_as_stored_even_when_a_later_sync_succeeds() {
        let failed = Failed::default();
        let syncs = Arc::new(Mutex::new(0));
        let counted = syncs.clone();
        let (syncer, thread) = start_with(
            "a test",
            move || {
                let mut syncs = counted.lock().unwrap();
                *syncs += 1;
                match *syncs {
                    1 => Ok(()),
                    2 => Err(SyncFailure::Fsync(io::Error::other("EIO"))),
                    _ => Ok(()),
                }
            },
            || {},
            failed.clone(),
        )
        .unwrap();
        let (told, answers) = sync_channel(8);
        let told_why = Arc::new(Mutex::new(Vec::new()));
        let answer = |syncer: &Syncer| {
            let (told, why) = (told.clone(), told_why.clone());
            syncer.after_sync(Box::new(move |synced| {
                if let Err(error) = synced {
                    why.lock().unwrap().push(error.to_string());
                }
                told.send(synced.is_ok()).unwrap();
            }));
            answers.recv_timeout(PATIENCE).unwrap()
        };
        assert!(answer(&syncer), "before the failure");
        assert!(!answer(&syncer), "the failed sync");
        assert!(!answer(&syncer), "after it");
        assert!(!answer(&syncer), "still after it");
        drop(syncer);
        thread.join();
        assert_eq!(
            *syncs.lock().unwrap(),
            2,
            "no sync is tried after a failure"
        );
        let why = told_why.lock().unwrap();
        assert!(why[0].contains("EIO"), "{why:?}");
        assert!(why[1].contains("restart"), "{why:?}");
        assert!(failed.reason().is_some_and(|r| r.contains("EIO")));
    }

    #[test]
    fn a_write_that_failed_is_refused_and_the_next_sync_still_vouches() {
        let failed = Failed::default();
        let mut syncs = 0;
        let (syncer, thread) = start_with(
            "a test",
            move || {
                syncs += 1;
                match syncs {
                    1 => Err(SyncFailure::Unwritten(io::Error::other("ENOSPC"))),
                    _ => Ok(()),
                }
            },
            || {},
            failed.clone(),
        )
        .unwrap();
        let (told, answers) = sync_channel(8);
        syncer.after_sync(answer_to(&told));
        assert_eq!(answers.recv_timeout(PATIENCE), Ok(false), "not written");
        syncer.after_sync(answer_to(&told));
        assert_eq!(answers.recv_timeout(PATIENCE), Ok(true), "space came back");
        assert!(!failed.is_set(), "a full disk is no failed fsync");
        drop(syncer);
        thread.join();
    }

    #[test]
    fn what_is_waiting_when_the_writer_stops_is_still_synced_and_answered() {
        let (gate, syncer, thread) = gated();
        let (told, answers) = sync_channel(8);
        syncer.after_sync(answer_to(&told));
        drop(syncer);
        gate.open.send(()).unwrap();
        thread.join();
        assert_eq!(answers.try_recv(), Ok(true));
    }

    #[test]
    fn the_log_is_opened_again_once_sqlite_made_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("db.sqlite3");
        let wal = dir.path().join("db.sqlite3-wal");
        let mut log = Log::new(&database);
        assert!(
            log.sync().is_err(),
            "no log yet: nothing can be made durable"
        );
        std::fs::write(&wal, b"first").unwrap();
        log.sync().unwrap();
        let first = log.file.as_ref().unwrap().metadata().unwrap().ino();
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, b"second").unwrap();
        log.sync().unwrap();
        // The old file is still open here, so the new one cannot have its inode.
        let now = log.file.as_ref().unwrap().metadata().unwrap().ino();
        assert_ne!(now, first);
        assert_eq!(now, std::fs::metadata(&wal).unwrap().ino());
    }
}
