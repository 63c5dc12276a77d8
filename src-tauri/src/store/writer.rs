//! The writer thread: the only connection that writes. It takes deliveries from a queue in
//! batches and commits each batch in one transaction (group commit: a burst of a thousand
//! webhooks costs a handful of fsyncs), then answers every waiting request.
//!
//! A request is answered only after its batch is committed, so a 200 always means the raw
//! delivery is on disk. When a commit fails (disk full, database locked by another process),
//! every request of the batch gets a transient error and its sender retries; nothing was
//! half-written, because the transaction rolled back.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::journal::{self, Prepared, Receipt};
use super::sources::{self, Rejection};
use super::{open_writer, Result, StoreError, StoreOptions};

/// Requests waiting beyond this apply backpressure to the HTTP handlers.
const QUEUE_CAPACITY: usize = 4096;
/// Deliveries per transaction, at most: bounds the time a batch holds the write lock.
const MAX_BATCH: usize = 1024;
/// Body bytes per transaction, at most: a few huge attendee lists go in batches of their own.
const MAX_BATCH_BYTES: usize = 64 << 20;

type Reply<T> = oneshot::Sender<Result<T>>;
type Task = Box<dyn FnOnce(&mut Connection) + Send>;

enum Job {
    Record(Box<Prepared>, Reply<Receipt>),
    Reject(Rejection, String),
    Run(Task),
}

/// What the writer committed, announced to whoever listens (the dashboard's live stream).
#[derive(Debug, Clone)]
pub struct Committed {
    pub receipts: Vec<Receipt>,
    /// The webinars whose reports these deliveries changed.
    pub webinars: Vec<String>,
}

/// The webinars a batch's projected deliveries touched.
fn touched_webinars(records: &[&Prepared], receipts: &[Receipt]) -> Vec<String> {
    let mut webinars: Vec<String> = records
        .iter()
        .zip(receipts)
        .filter(|(_, receipt)| receipt.status == super::journal::Status::Projected)
        .filter_map(|(prepared, _)| match &prepared.understanding {
            Ok(crate::platforms::Understanding::Facts { facts, .. }) => Some(facts),
            _ => None,
        })
        .flatten()
        .map(|fact| fact.webinar().uid())
        .collect();
    webinars.sort();
    webinars.dedup();
    webinars
}

/// A handle to the writer thread; cheap to clone. The thread stops when every handle is gone.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    committed: broadcast::Sender<Committed>,
}

/// The running thread, to be joined on shutdown once every [`Writer`] handle is dropped.
pub struct WriterThread(JoinHandle<()>);

impl WriterThread {
    /// Waits until the queue is drained and the last batch is committed.
    pub fn join(self) {
        if self.0.join().is_err() {
            tracing::error!("the writer thread panicked while stopping");
        }
    }
}

impl Writer {
    /// Opens the database (creating and migrating it) and starts the writer thread.
    pub fn start(path: &Path, options: &StoreOptions) -> Result<(Writer, WriterThread)> {
        let conn = open_writer(path, options)?;
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let (committed, _) = broadcast::channel(256);
        let announcer = committed.clone();
        let thread = std::thread::Builder::new()
            .name("rollcall-writer".into())
            .spawn(move || run(conn, queue, &announcer))
            .map_err(|e| StoreError::Unavailable(format!("could not start the writer: {e}")))?;
        Ok((Writer { jobs, committed }, WriterThread(thread)))
    }

    /// Journals and projects one delivery; resolves once it is committed.
    pub async fn record(&self, prepared: Prepared) -> Result<Receipt> {
        let (reply, receipt) = oneshot::channel();
        self.send(Job::Record(Box::new(prepared), reply)).await?;
        receipt.await.map_err(|_| stopped())?
    }

    /// Runs `task` on the writer's connection, between batches.
    pub async fn run<T: Send + 'static>(
        &self,
        task: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (reply, result) = oneshot::channel();
        let job = Job::Run(Box::new(move |conn| {
            let _ = reply.send(task(conn));
        }));
        self.send(job).await?;
        result.await.map_err(|_| stopped())?
    }

    /// Counts a refused request. Best effort: under a flood the count may fall behind, which
    /// is better than letting refused requests slow accepted ones.
    pub fn reject(&self, reason: Rejection, platform: &str) {
        let _ = self.jobs.try_send(Job::Reject(reason, platform.to_owned()));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.committed.subscribe()
    }

    async fn send(&self, job: Job) -> Result<()> {
        self.jobs.send(job).await.map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the writer has stopped".into())
}

fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Job>,
    announcer: &broadcast::Sender<Committed>,
) {
    while let Some(first) = queue.blocking_recv() {
        let batch = fill_batch(first, &mut queue);
        let outcome = catch_unwind(AssertUnwindSafe(|| process(&mut conn, batch, announcer)));
        if outcome.is_err() {
            // Waiting requests see their reply dropped and answer 503; the thread goes on.
            tracing::error!("a batch panicked in the writer; its requests were refused");
        }
    }
    // Every handle is gone: the queue is drained, and the connection closes here.
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
        Job::Record(prepared, _) => prepared.delivery.body.len(),
        _ => 0,
    }
}

fn process(conn: &mut Connection, batch: Vec<Job>, announcer: &broadcast::Sender<Committed>) {
    let mut records = Vec::new();
    let mut rejections: BTreeMap<(Rejection, String), u64> = BTreeMap::new();
    let mut tasks = Vec::new();
    for job in batch {
        match job {
            Job::Record(prepared, reply) => records.push((prepared, reply)),
            Job::Reject(reason, platform) => {
                *rejections.entry((reason, platform)).or_default() += 1
            }
            Job::Run(task) => tasks.push(task),
        }
    }
    if !records.is_empty() || !rejections.is_empty() {
        let rejections: Vec<_> = rejections.into_iter().collect();
        commit_records(conn, records, &rejections, announcer);
    }
    for task in tasks {
        task(conn);
    }
}

/// Commits a batch; if that fails and the batch has several deliveries, retries each alone so
/// one bad delivery cannot cost the others their answer.
fn commit_records(
    conn: &mut Connection,
    records: Vec<(Box<Prepared>, Reply<Receipt>)>,
    rejections: &[((Rejection, String), u64)],
    announcer: &broadcast::Sender<Committed>,
) {
    let prepared: Vec<&Prepared> = records.iter().map(|(p, _)| p.as_ref()).collect();
    match commit(conn, &prepared, rejections) {
        Ok(receipts) => {
            let webinars = touched_webinars(&prepared, &receipts);
            drop(prepared);
            for ((_, reply), receipt) in records.into_iter().zip(&receipts) {
                let _ = reply.send(Ok(*receipt));
            }
            if !receipts.is_empty() {
                let _ = announcer.send(Committed { receipts, webinars });
            }
        }
        Err(error) if records.len() > 1 && !error.is_transient() => {
            tracing::warn!(%error, "a batch failed to commit; committing its deliveries one by one");
            for record in records {
                commit_records(conn, vec![record], &[], announcer);
            }
        }
        Err(error) => {
            tracing::error!(%error, deliveries = records.len(), "could not commit deliveries");
            let message = error.to_string();
            for (_, reply) in records {
                let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
            }
        }
    }
}

/// Deliveries above this size are committed with SQLite's statement journal on disk.
const MEMORY_JOURNAL_LIMIT: usize = 256 << 10;

/// Each delivery is projected inside a savepoint, whose statement journal copies every page
/// the projection touches: in memory that saves a file write per page (a fifth of the writer's
/// time under load). But SQLite truncates an in-memory statement journal by walking it from
/// the start, which is quadratic for one huge delivery (a 50,000-attendee list took 90 s instead
/// of 5), so a batch holding a large body keeps the journal in a temporary file.
fn choose_temp_store(conn: &Connection, records: &[&Prepared]) -> Result<()> {
    let large = records
        .iter()
        .any(|p| p.delivery.body.len() > MEMORY_JOURNAL_LIMIT);
    let wanted = if large { "FILE" } else { "MEMORY" };
    let current: i64 = conn.pragma_query_value(None, "temp_store", |row| row.get(0))?;
    // 1 is FILE, 2 is MEMORY.
    if (current == 2) != (wanted == "MEMORY") {
        conn.pragma_update(None, "temp_store", wanted)?;
    }
    Ok(())
}

fn commit(
    conn: &mut Connection,
    records: &[&Prepared],
    rejections: &[((Rejection, String), u64)],
) -> Result<Vec<Receipt>> {
    choose_temp_store(conn, records)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let receipts = records
        .iter()
        .map(|prepared| journal::record(&tx, prepared))
        .collect::<Result<Vec<_>>>()?;
    sources::count_rejections(&tx, rejections)?;
    tx.commit()?;
    Ok(receipts)
}
