//! The writer thread: the only connection that writes. It takes deliveries from a queue in
//! batches and journals each batch in one transaction (group commit: a burst of a thousand
//! webhooks costs a handful of fsyncs), then answers every waiting request. When nothing was
//! waiting to be projected, the same transaction projects the batch (at least one delivery,
//! more within the projection's share of the batch's time): a lone webhook is in the reports
//! when its 200 goes out. During a burst the backlog (`store::backlog`) is projected in slices
//! of their own, paced to an eighth of the writer's time, and whenever the writer is idle: the
//! burst is acknowledged at the journal's speed and projected moments later.
//!
//! Deliveries acknowledged from the receipt log (`store::receipts`: a burst's requests are
//! answered once their record is synced there, without waiting for this thread) are imported
//! here: read back in order, prepared, and journaled in batches like requests, with the log's
//! last imported number written in the same transaction. Their commits need no fsync, since the
//! log is their durable copy; a segment of it is retired only after the write-ahead log is
//! synced. Receipts are imported once they stop arriving for a moment, or once the oldest has
//! waited ten seconds (a flood that never pauses): during a burst the cores are its senders'.
//! A task imports everything first, so it sees every delivery acknowledged before it.
//!
//! A delivery authenticated from the receiver's memory of sources is journaled only if its
//! source still has the revision it was authenticated against, checked in the batch's own
//! transaction, so a source changed by any process holds from the next delivery.
//!
//! A request journaled here is answered only after its batch is committed and the write-ahead log
//! fsynced, so its 200 means the raw delivery is on disk. The fsync is the syncer's
//! (`store::syncer`): the writer commits without it and goes on with the next batch while the disk
//! works. Tasks commit with the fsync, as any other writer does. When a commit fails (disk full,
//! database locked by another process), every request of the batch gets a transient error and its
//! sender retries; nothing was half-written, because the transaction rolled back. A failed fsync is
//! different: it is final until a restart (`store::syncer`). From then on the writer writes
//! nothing: deliveries are refused with the reason, the backlog waits for the restart, tasks run on
//! a read-only connection (what only reads still works; a change is refused rather than committed
//! behind the gap), and the connection is sealed so that closing it copies nothing into the
//! database file.

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::backlog::{Backlog, Budget, Slice};
use super::checkpoint::{self, CheckpointThread, Checkpoints};
use super::journal::{self, Prepared, Receipt, Status};
use super::receipts::{self, Imports, ReceiptLog, ReceiptThread};
use super::sources::{self, Rejection, SourceCheck};
use super::syncer::{self, wal_path, Failed, Syncer, SyncerThread};
use super::{open_writer, Result, StoreError, StoreOptions};

/// Requests waiting beyond this apply backpressure to the HTTP handlers.
const QUEUE_CAPACITY: usize = 4096;
/// Deliveries per transaction, at most: bounds the time a batch holds the write lock.
const MAX_BATCH: usize = 1024;
/// Body bytes per transaction, at most: a few huge attendee lists go in batches of their own.
const MAX_BATCH_BYTES: usize = 64 << 20;
/// While webhooks keep the writer busy, the projection gets an eighth of the time spent
/// journaling them: answers come first, and a load that never pauses still gets projected.
const PROJECTION_SHARE: u32 = 8;
/// That time is taken in slices of at least this long, each a transaction of its own. A commit
/// writes every page its projection touched, and a burst's deliveries touch mostly the same few
/// (their webinar's counts and summary rows). A slice in every batch's transaction (a quarter
/// of its time) wrote those again at every commit: TagMango at 64 connections cost the writer
/// 31 µs a delivery, against 15 µs with no projection during the load. Paced this way it costs
/// 21 µs and projects as much during the load (3,500 deliveries in 5 s, against 4,000).
const PROJECTION_SLICE: Duration = Duration::from_millis(5);
/// The queue must stay empty this long before the writer projects on its own.
const IDLE_AFTER: Duration = Duration::from_millis(1);
/// A projection transaction of its own lasts this long at most (the stop waits for one, and the
/// statement journal grows with it); when the writer was idle, it stops at the first webhook.
const IDLE_SLICE: Duration = Duration::from_millis(50);
/// Receipts are imported once none has arrived for this long: while a burst lasts the cores are
/// its senders'. Importing a quarter of the time during it cost the burst 8 points of the
/// `/healthz` share (42.6 % against 50.4 % with none, `bench/run --only compare`).
const QUIET_AFTER: Duration = Duration::from_millis(10);
/// A flood that never pauses is imported once its oldest receipt has waited this long: the
/// reports lag it by this much, and the catch-up. No webinar platform floods for that long (a
/// 10,000-person TagMango webinar's end is 10,000 webhooks, seconds at this machine's rate),
/// and at two seconds a five-second flood paid its import twice during the load.
const MAX_LAG: Duration = Duration::from_secs(10);
/// After a projection failure (disk full), the backlog waits this long before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Meanwhile the writer looks at the backlog again this often (a job wakes it at once).
const RETRY_POLL: Duration = Duration::from_millis(20);
/// On stop, the backlog is projected for this long at most; the rest is at the next start.
const STOP_DRAIN: Duration = Duration::from_secs(5);

type Reply<T> = oneshot::Sender<Result<T>>;
type Task = Box<dyn FnOnce(&mut Connection) + Send>;

struct Record {
    prepared: Arc<Prepared>,
    origin: Origin,
}

/// Who waits for a delivery's commit.
enum Origin {
    /// A hook request, answered once the commit is on disk. The delivery is journaled only if
    /// its source still has the revision it was authenticated against (`check`), confirmed in
    /// the batch's transaction.
    Request {
        check: SourceCheck,
        reply: Reply<Receipt>,
    },
    /// Nobody: the receipt log acknowledged it under this sequence number, authenticated
    /// against the source as it was then.
    Receipt(u64),
}

impl Record {
    /// Answers the request waiting for this delivery, if one is.
    fn reply(self, answer: Result<Receipt>) {
        if let Origin::Request { reply, .. } = self.origin {
            let _ = reply.send(answer);
        }
    }
}

enum Job {
    Record(Record),
    Reject(Rejection, String),
    Run(Task),
    /// From the syncer: the last sync is done, so a transaction kept open for it commits.
    Synced,
}

/// What the writer committed, announced to whoever listens (the dashboard's live stream).
#[derive(Debug, Clone)]
pub struct Committed {
    /// Deliveries journaled by this commit, each with the status it has after it.
    pub receipts: Vec<Receipt>,
    /// Deliveries journaled before that this commit projected, with their final status.
    pub projected: Vec<Receipt>,
    /// The webinars whose reports this commit changed.
    pub webinars: Vec<String>,
}

/// A handle to the writer thread; cheap to clone. The thread stops when every handle is gone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    committed: broadcast::Sender<Committed>,
    failed: Failed,
    receipts: ReceiptLog,
}

/// The running thread, to be joined on shutdown once every [`Writer`] handle is dropped.
pub struct WriterThread {
    writer: JoinHandle<()>,
    checkpoints: CheckpointThread,
    syncer: SyncerThread,
    receipts: ReceiptThread,
}

impl WriterThread {
    /// Waits until the queue is drained and the last batch is committed and answered.
    pub fn join(self) {
        if self.writer.join().is_err() {
            tracing::error!("the writer thread panicked while stopping");
        }
        self.syncer.join();
        self.receipts.join();
        self.checkpoints.join();
    }
}

impl Writer {
    /// Opens the database (creating and migrating it) and starts the writer thread.
    pub fn start(path: &Path, options: &StoreOptions) -> Result<(Writer, WriterThread)> {
        let conn = open_writer(path, options)?;
        let backlog = Backlog::recover(&conn)?;
        let failed = Failed::default();
        let watched = failed.clone();
        let (checkpoints, checkpoint_thread) = checkpoint::start(&conn, path, failed.clone())?;
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let imported: i64 =
            conn.query_row("SELECT imported FROM receipt_log", [], |row| row.get(0))?;
        let asleep = Arc::new(AtomicBool::new(false));
        let (wake, sleeper) = (jobs.downgrade(), asleep.clone());
        let (receipts, imports, receipt_thread) = ReceiptLog::open(
            &receipts::directory(path),
            imported as u64,
            move || {
                if sleeper.swap(false, Ordering::SeqCst) {
                    if let Some(jobs) = wake.upgrade() {
                        let _ = jobs.try_send(Job::Synced);
                    }
                }
            },
            failed.clone(),
        )?;
        let mut importing = Importing::new(imports, wal_path(path), asleep, failed.clone());
        // Nothing is appended yet: a log the journal holds all of goes.
        importing.retire(true);
        // Weak: the queue closes, and the writer stops, once the handles are gone.
        let tell = jobs.downgrade();
        let (syncer, syncer_thread) = syncer::start(
            path,
            move || {
                // A full queue wakes the writer anyway.
                if let Some(jobs) = tell.upgrade() {
                    let _ = jobs.try_send(Job::Synced);
                }
            },
            failed.clone(),
        )?;
        set_durable(&conn, false)?;
        let (committed, _) = broadcast::channel(256);
        let announcer = committed.clone();
        let thread = std::thread::Builder::new()
            .name("rollcall-writer".into())
            .spawn(move || {
                let around = Around {
                    announcer: &announcer,
                    checkpoints: &checkpoints,
                    syncer: &syncer,
                    failed: &failed,
                };
                run(conn, queue, backlog, importing, &around)
            })
            .map_err(|e| StoreError::Unavailable(format!("could not start the writer: {e}")))?;
        let thread = WriterThread {
            writer: thread,
            checkpoints: checkpoint_thread,
            syncer: syncer_thread,
            receipts: receipt_thread,
        };
        let writer = Writer {
            jobs,
            committed,
            failed: watched,
            receipts,
        };
        Ok((writer, thread))
    }

    /// Journals one delivery if its source still has the revision it was authenticated
    /// against when the batch's transaction runs; otherwise stores nothing and answers
    /// [`StoreError::SourceChanged`].
    pub async fn record_checked(
        &self,
        prepared: Arc<Prepared>,
        check: SourceCheck,
    ) -> Result<Receipt> {
        let (reply, receipt) = oneshot::channel();
        let record = Record {
            prepared,
            origin: Origin::Request { check, reply },
        };
        self.send(Job::Record(record)).await?;
        receipt.await.map_err(|_| stopped())?
    }

    /// Runs `task` on the writer's connection, between batches, once every delivery journaled
    /// before it is projected (so it also serves to wait until the reports are up to date).
    pub async fn run<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, result) = oneshot::channel();
        let failed = self.failed.clone();
        let job = Job::Run(Box::new(move |conn| {
            let outcome = task(conn).map_err(|error| match failed.reason() {
                Some(reason) if error.is_read_only() => StoreError::Unavailable(reason),
                _ => error,
            });
            let _ = reply.send(outcome);
        }));
        self.send(job).await?;
        result.await.map_err(|_| stopped())?
    }

    /// Counts a refused request. Best effort: under a flood the count may fall behind, which
    /// is better than letting refused requests slow accepted ones.
    pub fn reject(&self, reason: Rejection, platform: &str) {
        let _ = self.jobs.try_send(Job::Reject(reason, platform.to_owned()));
    }

    /// The receipt log, where hook requests that arrive together are acknowledged.
    pub fn receipts(&self) -> &ReceiptLog {
        &self.receipts
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.committed.subscribe()
    }

    /// Why deliveries are refused until a restart (a failed write to disk), once they are.
    pub fn failure(&self) -> watch::Receiver<Option<String>> {
        self.failed.watch()
    }

    async fn send(&self, job: Job) -> Result<()> {
        self.jobs.send(job).await.map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the writer has stopped".into())
}

/// What the writer's loop works with besides its connection, queue and backlog.
struct Around<'a> {
    announcer: &'a broadcast::Sender<Committed>,
    checkpoints: &'a Checkpoints,
    syncer: &'a Syncer,
    failed: &'a Failed,
}

fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Job>,
    mut backlog: Backlog,
    mut importing: Importing,
    around: &Around<'_>,
) {
    let Around {
        announcer,
        checkpoints,
        syncer,
        failed,
    } = *around;
    let mut pace = Pace::default();
    let mut carried = None;
    loop {
        if carried.is_none() && importing.due() {
            let quiet = backlog.is_empty();
            let took = import(&mut conn, &mut importing, &mut backlog, announcer);
            checkpoints.committed(&conn);
            pay_projection(&mut conn, &mut backlog, &mut pace, quiet, took, around);
            continue;
        }
        let first = match carried.take().map_or_else(
            || next(&mut queue, &backlog, &mut importing, failed),
            Next::Batch,
        ) {
            Next::Batch(job) => job,
            Next::Project => {
                project_alone(&mut conn, &mut backlog, IDLE_SLICE, Some(&queue), announcer);
                pace.settled();
                checkpoints.committed(&conn);
                continue;
            }
            Next::Again => continue,
            Next::Stop => break,
        };
        let batch = fill_batch(first, &mut queue);
        if let Some(reason) = failed.reason() {
            refuse(&mut conn, batch, &reason);
            continue;
        }
        let quiet = backlog.is_empty();
        let started = Instant::now();
        let mut arrivals = Arrivals::new(&mut queue, syncer, batch.iter().map(job_bytes).sum());
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            process(
                &mut conn,
                batch,
                &mut arrivals,
                &mut backlog,
                &mut importing,
                quiet,
                announcer,
            )
        }));
        if outcome.is_err() {
            // Waiting requests see their reply dropped and answer 503; the thread goes on.
            backlog.rolled_back();
            importing.imports.rewind();
            tracing::error!("a batch panicked in the writer; its requests were refused");
        }
        let worked = started.elapsed().saturating_sub(arrivals.waited);
        carried = arrivals.carried.take();
        checkpoints.committed(&conn);
        pay_projection(&mut conn, &mut backlog, &mut pace, quiet, worked, around);
    }
    // Every handle is gone and the queue is drained; the connection closes here.
    if failed.is_set() {
        syncer::seal(&conn);
        return;
    }
    // What is left of the receipt log after the deadline is journaled at the next start.
    let deadline = Instant::now() + STOP_DRAIN;
    import_all(
        &mut conn,
        &mut importing,
        &mut backlog,
        Some(deadline),
        announcer,
    );
    drain(&mut conn, &mut backlog, Some(deadline), announcer);
    // Nothing is appended any more: a log wholly imported goes.
    importing.retire(true);
}

/// After `worked` journaling while deliveries waited to be projected, projects a slice of them
/// if one is due (an eighth of that time, see [`Pace`]).
fn pay_projection(
    conn: &mut Connection,
    backlog: &mut Backlog,
    pace: &mut Pace,
    quiet: bool,
    worked: Duration,
    around: &Around<'_>,
) {
    if backlog.is_empty() {
        // Nothing waits (a task drained it, or the batch projected itself): nothing is owed.
        pace.settled();
    } else if !quiet {
        pace.earned(worked);
        let ready = backlog.ready() && !around.failed.is_set();
        if let Some(slice) = ready.then(|| pace.due()).flatten() {
            project_alone(conn, backlog, slice, None, around.announcer);
            around.checkpoints.committed(conn);
        }
    }
}

/// The receipt log's side of the writer: what waits to be imported into the journal, and when
/// the next import may run.
struct Importing {
    imports: Imports,
    /// The write-ahead log, synced before a segment of the receipt log is deleted.
    wal: PathBuf,
    /// The writer sleeps on its queue: a sync of the receipt log must wake it.
    asleep: Arc<AtomicBool>,
    /// The last synced receipt seen, and when receipts were last seen arriving: for as long as
    /// it changes, or requests wait for their sync (a sync that stalls for milliseconds is no
    /// pause of the burst).
    seen: (u64, Instant),
    /// Since when receipts have been waiting; none once all are imported.
    waiting_since: Option<Instant>,
    /// After a failed import, the next waits until then.
    retry_at: Option<Instant>,
    failed: Failed,
}

impl Importing {
    fn new(imports: Imports, wal: PathBuf, asleep: Arc<AtomicBool>, failed: Failed) -> Importing {
        let seen = (imports.synced(), Instant::now());
        Importing {
            imports,
            wal,
            asleep,
            seen,
            waiting_since: None,
            retry_at: None,
            failed,
        }
    }

    fn due(&mut self) -> bool {
        self.wait().is_some_and(|wait| wait.is_zero())
    }

    /// How long until the next import, if receipts wait for one: once they stop arriving for
    /// [`QUIET_AFTER`], or once they have waited [`MAX_LAG`]. None after a failed sync: the
    /// restart imports them.
    fn wait(&mut self) -> Option<Duration> {
        if self.failed.is_set() || !self.imports.waiting() {
            self.waiting_since = None;
            return None;
        }
        let now = Instant::now();
        let synced = self.imports.synced();
        if synced != self.seen.0 || self.imports.receiving() {
            self.seen = (synced, now);
        }
        let since = *self.waiting_since.get_or_insert(now);
        let due = (self.seen.1 + QUIET_AFTER).min(since + MAX_LAG);
        let due = self.retry_at.map_or(due, |retry| due.max(retry));
        Some(due.saturating_duration_since(now))
    }

    /// Retires the receipt log's segments the journal holds all of (kept for reuse or
    /// deleted), once the write-ahead log is synced. A failed fsync of it is final, as the
    /// syncer's (`store::syncer`): the segments stay, and nothing more is written until a
    /// restart.
    fn retire(&mut self, all: bool) {
        let wal = &self.wal;
        let mut unsynced = None;
        let outcome = self.imports.retire(all, || {
            sync_file(wal).inspect_err(|error| unsynced = Some(error.to_string()))
        });
        if let Some(error) = unsynced {
            self.failed
                .set(format!("fsync of the write-ahead log: {error}"));
        } else if let Err(error) = outcome {
            tracing::warn!(%error, "could not retire imported segments of the receipt log");
        }
    }
}

/// Makes a file's data durable; a file that is gone has nothing to make durable (SQLite removes
/// its write-ahead log only after copying all of it into the database file, synced).
fn sync_file(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Imports a batch of receipts into the journal, in one transaction that also projects it if
/// nothing else waited (as a batch of requests does). Returns the time it took.
fn import(
    conn: &mut Connection,
    importing: &mut Importing,
    backlog: &mut Backlog,
    announcer: &broadcast::Sender<Committed>,
) -> Duration {
    let started = Instant::now();
    let quiet = backlog.is_empty();
    let mut jobs = Jobs::default();
    let outcome = read_receipts(&mut importing.imports, &mut jobs)
        .and_then(|()| commit(conn, &mut jobs, None, backlog, quiet));
    match outcome {
        Ok((mut outcomes, slice)) => {
            importing.imports.imported();
            importing.retry_at = None;
            let fresh = final_statuses(&mut outcomes, &slice);
            announce_commit(announcer, outcomes, slice, &fresh);
            importing.retire(false);
        }
        Err(error) => {
            importing.imports.rewind();
            tracing::error!(%error, "could not import the receipt log; retrying shortly");
            importing.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
    }
    started.elapsed()
}

/// Reads the next batch of receipts into `jobs`, each prepared (hashed and parsed) here.
fn read_receipts(imports: &mut Imports, jobs: &mut Jobs) -> Result<()> {
    let mut bytes = 0;
    while jobs.records.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        let Some(received) = imports.next_record()? else {
            break;
        };
        bytes += received.delivery.body.len();
        jobs.records.push(Record {
            prepared: Arc::new(Prepared::new(received.delivery)),
            origin: Origin::Receipt(received.seq),
        });
    }
    Ok(())
}

/// Imports every receipt synced so far (before a task, and on stop until `deadline`).
fn import_all(
    conn: &mut Connection,
    importing: &mut Importing,
    backlog: &mut Backlog,
    deadline: Option<Instant>,
    announcer: &broadcast::Sender<Committed>,
) {
    importing.retry_at = None;
    while importing.imports.waiting() && deadline.is_none_or(|d| Instant::now() < d) {
        import(conn, importing, backlog, announcer);
        if importing.retry_at.is_some() {
            // It failed, and is logged; the next one retries.
            return;
        }
    }
}

/// After a failed fsync: answers deliveries with `reason` and runs tasks read-only, writing
/// nothing, since a commit now would sit behind the gap in the log.
fn refuse(conn: &mut Connection, batch: Vec<Job>, reason: &str) {
    if let Err(error) = conn.pragma_update(None, "query_only", true) {
        tracing::error!(%error, "could not make the writer's connection read-only");
    }
    for job in batch {
        match job {
            Job::Record(record) => {
                record.reply(Err(StoreError::Unavailable(reason.to_owned())));
            }
            Job::Run(task) => task(conn),
            Job::Reject(..) | Job::Synced => {}
        }
    }
}

/// How much projecting the writer owes the backlog while webhooks keep it busy.
#[derive(Debug, Default)]
struct Pace {
    owed: Duration,
}

impl Pace {
    /// A batch took `took` while deliveries waited to be projected.
    fn earned(&mut self, took: Duration) {
        self.owed += took / PROJECTION_SHARE;
    }

    /// The slice to project now, if one is due. A batch that took long (a huge attendee list)
    /// earns no longer a wait for the next one than an idle slice.
    fn due(&mut self) -> Option<Duration> {
        (self.owed >= PROJECTION_SLICE).then(|| std::mem::take(&mut self.owed).min(IDLE_SLICE))
    }

    /// The writer projected while idle, or nothing waits: nothing is owed.
    fn settled(&mut self) {
        self.owed = Duration::ZERO;
    }
}

/// What the writer does next.
enum Next {
    Batch(Job),
    /// Nothing is waiting: project on its own.
    Project,
    /// Nothing to do yet (the backlog waits out a failure): look again.
    Again,
    /// Every handle is gone and the queue is drained.
    Stop,
}

fn next(
    queue: &mut mpsc::Receiver<Job>,
    backlog: &Backlog,
    importing: &mut Importing,
    failed: &Failed,
) -> Next {
    if let Some(wait) = importing.wait() {
        // Receipts are arriving: not idle, whatever the queue says. They are imported when due.
        return match wait_for(queue, wait) {
            Ok(job) => Next::Batch(job),
            Err(TryRecvError::Empty) => Next::Again,
            Err(TryRecvError::Disconnected) => Next::Stop,
        };
    }
    // After a failure the backlog waits for the restart, which projects it.
    if backlog.is_empty() || failed.is_set() {
        importing.asleep.store(true, Ordering::SeqCst);
        // A receipt synced before the flag was up found no one to wake.
        if importing.wait().is_some() {
            importing.asleep.store(false, Ordering::SeqCst);
            return Next::Again;
        }
        let job = queue.blocking_recv();
        importing.asleep.store(false, Ordering::SeqCst);
        return job.map_or(Next::Stop, Next::Batch);
    }
    // Senders waiting on their answers post again within a fraction of IDLE_AFTER, and a
    // projection slice started in between would make them wait for its commit.
    let ready = backlog.ready();
    match wait_for(queue, if ready { IDLE_AFTER } else { RETRY_POLL }) {
        Ok(job) => Next::Batch(job),
        Err(TryRecvError::Empty) if ready => Next::Project,
        Err(TryRecvError::Empty) => Next::Again,
        Err(TryRecvError::Disconnected) => Next::Stop,
    }
}

/// The next job if one arrives within `patience`: the thread sleeps until a job wakes it or
/// the time is up. Looking at the queue every millisecond instead woke the writer 930 times a
/// second while a burst's receipts waited for their import, though nothing comes on the queue
/// then; each wake took a core from the cycle of syncs and answers every sender waits on, and
/// without them webhooks at 64 connections came 8.5 % faster (`bench/results/README.md`,
/// thirty-fifth round). tokio's timer, the other way to wait on this queue, counts in whole
/// milliseconds, and [`IDLE_AFTER`] is one.
fn wait_for(queue: &mut mpsc::Receiver<Job>, patience: Duration) -> Result<Job, TryRecvError> {
    let until = Instant::now() + patience;
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        match queue.poll_recv(&mut context) {
            Poll::Ready(Some(job)) => return Ok(job),
            Poll::Ready(None) => return Err(TryRecvError::Disconnected),
            Poll::Pending => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(TryRecvError::Empty);
                }
                // Returns early when woken, and now and then for no reason: the loop looks again.
                std::thread::park_timeout(left);
            }
        }
    }
}

/// Wakes the writer thread when a job arrives on the queue it waits on.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

fn fill_batch(first: Job, queue: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut bytes = job_bytes(&first);
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        match queue.try_recv() {
            Ok(job) => {
                bytes += job_bytes(&job);
                batch.push(job);
            }
            Err(_) => break,
        }
    }
    batch
}

fn job_bytes(job: &Job) -> usize {
    match job {
        Job::Record(record) => record.prepared.delivery.body.len(),
        _ => 0,
    }
}

/// Where a batch's open transaction takes more deliveries from while the syncer is busy with
/// the previous commit: those would wait for the next sync whenever they were committed.
struct Arrivals<'a> {
    queue: &'a mut mpsc::Receiver<Job>,
    syncer: &'a Syncer,
    /// A job that ends the batch (a task runs between batches), first of the next one.
    carried: Option<Job>,
    /// Time spent waiting for jobs, which is not the batch's work.
    waited: Duration,
    bytes: usize,
}

impl<'a> Arrivals<'a> {
    /// `bytes`: the body bytes the batch has so far.
    fn new(queue: &'a mut mpsc::Receiver<Job>, syncer: &'a Syncer, bytes: usize) -> Arrivals<'a> {
        Arrivals {
            queue,
            syncer,
            carried: None,
            waited: Duration::ZERO,
            bytes,
        }
    }

    /// The next job to add to a transaction of `taken` deliveries, or `None` when it should
    /// commit: the syncer is idle (a commit now is synced at once), the batch is full, a task
    /// is waiting, or the writer is stopping. Rejections come along to be counted.
    fn next(&mut self, taken: usize) -> Option<Job> {
        loop {
            if taken >= MAX_BATCH || self.bytes >= MAX_BATCH_BYTES || self.carried.is_some() {
                return None;
            }
            let job = match self.queue.try_recv() {
                Ok(job) => job,
                Err(TryRecvError::Empty) if self.syncer.busy() => {
                    let waiting = Instant::now();
                    let job = self.queue.blocking_recv();
                    self.waited += waiting.elapsed();
                    job?
                }
                Err(_) => return None,
            };
            match job {
                Job::Synced => {}
                // A task runs between batches.
                Job::Run(_) => self.carried = Some(job),
                Job::Record(_) | Job::Reject(..) => {
                    self.bytes += job_bytes(&job);
                    return Some(job);
                }
            }
        }
    }
}

/// `quiet`: nothing was waiting to be projected before this batch, so its transaction
/// projects the batch too.
fn process(
    conn: &mut Connection,
    batch: Vec<Job>,
    arrivals: &mut Arrivals<'_>,
    backlog: &mut Backlog,
    importing: &mut Importing,
    quiet: bool,
    announcer: &broadcast::Sender<Committed>,
) {
    let mut jobs = Jobs::default();
    let mut tasks = Vec::new();
    for job in batch {
        match job {
            Job::Run(task) => tasks.push(task),
            other => jobs.add(other),
        }
    }
    if !jobs.is_empty() {
        let syncer = arrivals.syncer;
        commit_records(
            conn,
            jobs,
            Some(arrivals),
            syncer,
            backlog,
            quiet,
            announcer,
        );
    }
    if !tasks.is_empty() {
        import_all(conn, importing, backlog, None, announcer);
        drain(conn, backlog, None, announcer);
        run_durably(conn, tasks);
    }
}

/// Tasks answer their callers themselves, as soon as they return, so their commits fsync.
fn run_durably(conn: &mut Connection, tasks: Vec<Task>) {
    // Reprocessing projects inside savepoints.
    if let Err(error) = set_durable(conn, true).and_then(|()| choose_temp_store(conn, true)) {
        tracing::error!(%error, "could not make the tasks' commits durable; they are refused");
        return;
    }
    for task in tasks {
        task(conn);
    }
    if let Err(error) = set_durable(conn, false) {
        tracing::warn!(%error, "batches go on committing with their own fsync");
    }
}

/// Whether each commit on the writer's connection fsyncs the log (`FULL`) or leaves that to the
/// syncer (`NORMAL`: in WAL mode SQLite then syncs only around checkpoints).
fn set_durable(conn: &Connection, durable: bool) -> Result<()> {
    let level = if durable { "FULL" } else { "NORMAL" };
    conn.pragma_update(None, "synchronous", level)?;
    Ok(())
}

/// A batch's deliveries and refused requests.
#[derive(Default)]
struct Jobs {
    records: Vec<Record>,
    rejections: BTreeMap<(Rejection, String), u64>,
}

impl Jobs {
    /// Tasks never come here: `process` takes them out of the batch, and [`Arrivals`] ends a
    /// batch at one.
    fn add(&mut self, job: Job) {
        match job {
            Job::Record(record) => self.records.push(record),
            Job::Reject(reason, platform) => {
                *self.rejections.entry((reason, platform)).or_default() += 1
            }
            Job::Run(_) | Job::Synced => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.rejections.is_empty()
    }

    /// The last receipt of the log among the records: what their commit has imported.
    fn last_receipt(&self) -> Option<u64> {
        self.records
            .iter()
            .filter_map(|r| match r.origin {
                Origin::Receipt(seq) => Some(seq),
                Origin::Request { .. } => None,
            })
            .max()
    }
}

/// Commits a batch, with what else arrives while the syncer is busy; if that fails and the
/// batch has several deliveries, retries each alone so one bad delivery cannot cost the others
/// their answer.
fn commit_records(
    conn: &mut Connection,
    mut jobs: Jobs,
    arrivals: Option<&mut Arrivals<'_>>,
    syncer: &Syncer,
    backlog: &mut Backlog,
    quiet: bool,
    announcer: &broadcast::Sender<Committed>,
) {
    match commit(conn, &mut jobs, arrivals, backlog, quiet) {
        Ok((mut outcomes, slice)) => {
            let fresh = final_statuses(&mut outcomes, &slice);
            let answers: Vec<_> = jobs
                .records
                .into_iter()
                .zip(&outcomes)
                .filter_map(|(record, outcome)| match record.origin {
                    Origin::Request { reply, .. } => {
                        Some((reply, outcome.ok_or(StoreError::SourceChanged)))
                    }
                    Origin::Receipt(_) => None,
                })
                .collect();
            syncer.after_sync(Box::new(move |synced| answer_synced(answers, synced)));
            announce_commit(announcer, outcomes, slice, &fresh);
        }
        Err(error) if jobs.records.len() > 1 && !error.is_transient() => {
            tracing::warn!(%error, "a batch failed to commit; committing its deliveries one by one");
            for record in jobs.records {
                let alone = Jobs {
                    records: vec![record],
                    rejections: BTreeMap::new(),
                };
                commit_records(conn, alone, None, syncer, backlog, quiet, announcer);
            }
        }
        Err(error) => {
            let deliveries = jobs.records.len();
            tracing::error!(%error, deliveries, "could not commit deliveries");
            let message = error.to_string();
            for record in jobs.records {
                record.reply(Err(StoreError::Unavailable(message.clone())));
            }
        }
    }
}

/// Gives the deliveries a commit journaled the status its projection gave them; returns the
/// statuses of the deliveries journaled before that it projected.
fn final_statuses(outcomes: &mut [Option<Receipt>], slice: &Slice) -> HashMap<i64, Status> {
    let mut fresh: HashMap<i64, Status> = slice
        .receipts
        .iter()
        .map(|r| (r.delivery, r.status))
        .collect();
    for receipt in outcomes.iter_mut().flatten() {
        if let Some(status) = fresh.remove(&receipt.delivery) {
            receipt.status = status;
        }
    }
    fresh
}

/// Announces what a commit journaled and projected; `earlier`: see [`final_statuses`].
fn announce_commit(
    announcer: &broadcast::Sender<Committed>,
    outcomes: Vec<Option<Receipt>>,
    slice: Slice,
    earlier: &HashMap<i64, Status>,
) {
    let receipts = outcomes.into_iter().flatten().collect();
    let projected = slice
        .receipts
        .into_iter()
        .filter(|r| earlier.contains_key(&r.delivery))
        .collect();
    announce(announcer, receipts, projected, slice.webinars);
}

/// Answers a committed batch's requests once the syncer has fsynced it: a commit that did not
/// reach the disk is a transient failure, and its senders retry.
fn answer_synced(answers: Vec<(Reply<Receipt>, Result<Receipt>)>, synced: Result<(), &StoreError>) {
    for (reply, answer) in answers {
        let answer = match synced {
            Ok(()) => answer,
            Err(error) => Err(StoreError::Unavailable(error.to_string())),
        };
        let _ = reply.send(answer);
    }
}

fn announce(
    announcer: &broadcast::Sender<Committed>,
    receipts: Vec<Receipt>,
    projected: Vec<Receipt>,
    webinars: Vec<String>,
) {
    if receipts.is_empty() && projected.is_empty() {
        return;
    }
    let _ = announcer.send(Committed {
        receipts,
        projected,
        webinars,
    });
}

/// Journals a batch and, if `quiet`, projects it, in one transaction. While the syncer is busy
/// the transaction stays open and takes in what arrives (`arrivals`, into `jobs`). A projection
/// that fails for a reason other than the store's condition pauses the backlog, and the batch
/// is journaled again without it: a defect in the projection never costs a sender its answer.
/// A delivery whose source changed since it was authenticated is left out (`None`).
fn commit(
    conn: &mut Connection,
    jobs: &mut Jobs,
    mut arrivals: Option<&mut Arrivals<'_>>,
    backlog: &mut Backlog,
    quiet: bool,
) -> Result<(Vec<Option<Receipt>>, Slice)> {
    let started = Instant::now();
    let guarded = backlog.front_is_suspect();
    choose_temp_store(conn, guarded)?;
    let mut projection_failed = false;
    let outcome = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut receipts = Vec::with_capacity(jobs.records.len());
        let mut revisions = HashMap::new();
        let mut appender = journal::Appender::new(&tx)?;
        let mut appended = 0;
        loop {
            for record in &jobs.records[appended..] {
                let receipt = append(&tx, &mut appender, record, backlog, &mut revisions)?;
                receipts.push(receipt);
            }
            appended = jobs.records.len();
            match arrivals.as_mut().and_then(|a| a.next(appended)) {
                Some(job) => jobs.add(job),
                None => break,
            }
        }
        appender.finish()?;
        if let Some(seq) = jobs.last_receipt() {
            tx.prepare_cached("UPDATE receipt_log SET imported = ?1 WHERE id = 1")?
                .execute([seq as i64])?;
        }
        let waited = arrivals.as_ref().map_or(Duration::ZERO, |a| a.waited);
        let rejections: Vec<_> = jobs
            .rejections
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        sources::count_rejections(&tx, &rejections)?;
        let mut slice = Slice::default();
        if quiet && backlog.ready() {
            let budget = Budget {
                until: Instant::now() + started.elapsed().saturating_sub(waited) / PROJECTION_SHARE,
                guarded,
            };
            slice = backlog
                .project(&tx, budget, || false)
                .inspect_err(|error| {
                    projection_failed = !error.is_transient();
                })?;
        }
        tx.commit()?;
        Ok((receipts, slice))
    })();
    match &outcome {
        Ok((_, slice)) => backlog.committed(slice.taken),
        Err(_) => backlog.rolled_back(),
    }
    if let (Err(error), true) = (&outcome, projection_failed) {
        tracing::error!(%error, "could not project the backlog; retrying shortly");
        backlog.pause(RETRY_AFTER);
        return commit(conn, jobs, None, backlog, quiet);
    }
    outcome
}

/// Journals one delivery inside the batch's transaction, unless its source changed.
fn append(
    tx: &Connection,
    appender: &mut journal::Appender<'_>,
    record: &Record,
    backlog: &mut Backlog,
    revisions: &mut HashMap<i64, Option<i64>>,
) -> Result<Option<Receipt>> {
    let prepared = &record.prepared;
    if let Origin::Request { check, .. } = record.origin {
        if !source_unchanged(tx, check, revisions)? {
            return Ok(None);
        }
    }
    let waiting = backlog.waiting_with(&prepared.identity);
    let from_log = match record.origin {
        Origin::Receipt(seq) => Some(seq),
        Origin::Request { .. } => None,
    };
    let receipt = appender.append_received(prepared, waiting, from_log)?;
    if receipt.status == Status::Pending {
        backlog.push(receipt.delivery, prepared.clone());
    }
    Ok(Some(receipt))
}

/// Whether the source a delivery was authenticated against still has that revision, asked once
/// per source and batch.
fn source_unchanged(
    conn: &Connection,
    check: SourceCheck,
    revisions: &mut HashMap<i64, Option<i64>>,
) -> Result<bool> {
    let current = match revisions.get(&check.id) {
        Some(current) => *current,
        None => {
            let current = sources::revision(conn, check.id)?;
            revisions.insert(check.id, current);
            current
        }
    };
    Ok(current == Some(check.revision))
}

/// One transaction that only projects, for `slice` or until a job is waiting in `queue` (if
/// given).
fn project_alone(
    conn: &mut Connection,
    backlog: &mut Backlog,
    slice: Duration,
    queue: Option<&mpsc::Receiver<Job>>,
    announcer: &broadcast::Sender<Committed>,
) {
    let guarded = backlog.front_is_suspect();
    let budget = Budget {
        until: Instant::now() + slice,
        guarded,
    };
    let waiting = || queue.is_some_and(|q| !q.is_empty());
    let outcome = choose_temp_store(conn, guarded).and_then(|()| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let slice = backlog.project(&tx, budget, waiting)?;
        tx.commit()?;
        Ok(slice)
    });
    match outcome {
        Ok(slice) => {
            backlog.committed(slice.taken);
            announce(announcer, Vec::new(), slice.receipts, slice.webinars);
        }
        Err(error) => {
            tracing::warn!(%error, "could not project the backlog; retrying shortly");
            backlog.pause(RETRY_AFTER);
        }
    }
}

/// Projects the whole backlog (before a task, or on stop until `deadline`).
fn drain(
    conn: &mut Connection,
    backlog: &mut Backlog,
    deadline: Option<Instant>,
    announcer: &broadcast::Sender<Committed>,
) {
    while backlog.ready() && deadline.is_none_or(|d| Instant::now() < d) {
        project_alone(conn, backlog, IDLE_SLICE, None, announcer);
    }
}

/// Where SQLite keeps the journal of a statement's pages, which it needs to undo a statement
/// that fails part-way. In memory that saves a file write per page (a fifth of the writer's
/// time under load). But SQLite truncates an in-memory journal by walking it from the start,
/// and inside a savepoint the journal holds every page the savepoint touched: a 50,000-attendee
/// list projected in one took 90 s instead of 5. So a transaction that opens savepoints
/// (`guarded`: the backlog's suspect, or a task) keeps the journal in a temporary file.
fn choose_temp_store(conn: &Connection, guarded: bool) -> Result<()> {
    let current: i64 = conn
        .prepare_cached("PRAGMA temp_store")?
        .query_row([], |row| row.get(0))?;
    // 1 is FILE, 2 is MEMORY.
    if (current == 2) == guarded {
        conn.pragma_update(None, "temp_store", if guarded { "FILE" } else { "MEMORY" })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_writer_owes_the_backlog_an_eighth_of_its_time_in_slices() {
        let mut pace = Pace::default();
        pace.earned(Duration::from_millis(32));
        assert_eq!(pace.due(), None, "4 ms owed is less than a slice");
        pace.earned(Duration::from_millis(8));
        assert_eq!(pace.due(), Some(Duration::from_millis(5)));
        assert_eq!(pace.due(), None, "a slice pays what was owed");
    }

    #[test]
    fn a_long_batch_earns_no_longer_slice_than_an_idle_one() {
        let mut pace = Pace::default();
        pace.earned(Duration::from_secs(4));
        assert_eq!(pace.due(), Some(IDLE_SLICE));
        assert_eq!(pace.due(), None);
    }

    #[test]
    fn a_job_sent_while_the_writer_waits_wakes_it_before_its_patience_is_out() {
        let (jobs, mut queue) = mpsc::channel(1);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            jobs.blocking_send(Job::Synced).unwrap();
            jobs
        });
        let started = Instant::now();
        let patience = Duration::from_secs(60);
        assert!(matches!(wait_for(&mut queue, patience), Ok(Job::Synced)));
        // Unwoken, it would have taken the job only once the minute was up.
        assert!(started.elapsed() < patience / 2, "{:?}", started.elapsed());
        drop(sender.join().unwrap());
    }

    #[test]
    fn a_wait_that_no_job_ends_is_empty_once_its_patience_is_out() {
        let (jobs, mut queue) = mpsc::channel::<Job>(1);
        let started = Instant::now();
        let patience = Duration::from_millis(30);
        assert!(matches!(
            wait_for(&mut queue, patience),
            Err(TryRecvError::Empty)
        ));
        assert!(started.elapsed() >= patience);
        drop(jobs);
        assert!(matches!(
            wait_for(&mut queue, patience),
            Err(TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn projecting_while_idle_settles_what_was_owed() {
        let mut pace = Pace::default();
        pace.earned(Duration::from_millis(39));
        pace.settled();
        pace.earned(Duration::from_millis(8));
        assert_eq!(pace.due(), None);
    }
}
