//! The receipt log: deliveries acknowledged during a burst, on disk before their 200 and ahead
//! of the journal. A hook request that arrives while others are in flight appends a framed,
//! checksummed record here from its own task ([`ReceiptLog::receive`]) and is answered once a
//! sync covers the record; the writer imports the records into the journal at its own pace
//! ([`Imports`], driven by `store::writer`), and a segment is retired (deleted, or kept for
//! reuse) only once the journal's copy of every record in it is on disk.
//!
//! Why a second file: with the writer's commit on the acknowledgement path, a burst was
//! answered at 42–45 % of the machine's HTTP ceiling, and handing each delivery to the writer
//! thread alone, with no SQL at all, capped it below 50 %. A record written by the request's own
//! task and synced by a thread that does nothing else reached 53–62 % (bench/results/README.md,
//! twenty-second round).
//!
//! It must not run SQL or parse payloads: it keeps bytes and their order. The journal keeps the
//! last sequence number it imported (`receipt_log.imported`, written in the importing
//! transaction); at start every record past it is imported again, so a record is never lost and
//! never imported twice. Only synced records are imported, so the journal never holds a record
//! the log could lose. After a crash the last segment may end in a torn record (short, or
//! failing its checksum): nothing from it on was answered, and it is cut off.
//!
//! Requests copy their record into the current segment's buffer; the sync thread writes every
//! buffer and fdatasyncs, then answers them all. A failed fsync is final until a restart, as
//! for the journal (`store::syncer`): the shared [`Failed`] refuses every later append. A failed
//! write (a full disk) loses only the records it carried, none of them answered.
//!
//! The log is read again only by the import, once, so it stays out of the page cache: records
//! are written with direct I/O (copied into a page-aligned buffer, written from the start of
//! the page the last write ended in, that page's earlier bytes included), and spares are
//! zero-filled the same way. Cached, a burst of attendee lists grew the page cache by 300 MB a
//! second, and on this VM a page never used before costs ten times as much to fill as one used
//! moments ago (2.4 against 0.23 ms a MiB); writing a burst's records into the page cache took
//! the sync thread 0.8-2 ms a MB, a direct write 0.3 (bench/results/README.md, twenty-seventh
//! round). Where the filesystem has no direct I/O (tmpfs), records are written through the
//! page cache and synced pages leave it a chunk at a time (all but a segment's first page and
//! the chunk being written). Either way a write ends at a page's end, so that the kernel never
//! reads a page from disk to complete it.
//!
//! Layout: `<data dir>/receipts/<first sequence number, 20 digits>.log`, written over in full
//! before its first record (zero-filled ahead of time, or recycled: see [`Spares`]) and starting
//! with [`MAGIC`], then records: payload length (u32 LE), CRC-32 of sequence number and payload
//! (u32 LE), sequence number (u64 LE), payload. The payload is the delivery's metadata as JSON
//! (its time in nanoseconds since the epoch; earlier versions wrote RFC 3339 text, still read),
//! its length first (u32 LE), then the body. A header of zeros is where nothing was written yet;
//! every write ends in one, and zeros to the end of its page. A record is numbered above the
//! record before it, and at least as its segment is named, so what a recycled segment held
//! before (numbered below) is never read as a record. Numbers are not always consecutive: a
//! failed write loses its records' numbers.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::journal::{NewDelivery, Via};
use super::relay::Home;
use super::syncer::{self, Failed, SyncFailure, Syncer, SyncerThread};
use super::{Result, StoreError};

/// The first bytes of every segment.
pub const MAGIC: &[u8; 8] = b"RCRCPT1\n";
/// The directory inside a data directory.
pub const DIRECTORY: &str = "receipts";
/// A segment past this size is closed and a new one started: segments are the unit of reuse.
const SEGMENT_BYTES: u64 = 16 << 20;
/// Payload length, checksum, sequence number.
const HEADER: usize = 16;
/// No record is larger: the body limit is 64 MiB, and only small bodies come here.
const MAX_PAYLOAD: u32 = 256 << 20;

/// Where the receipt log of the database at `database` lives.
pub fn directory(database: &Path) -> PathBuf {
    database
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(DIRECTORY)
}

/// A position in the log: the segment (its first sequence number), the offset just past the
/// record, and that record's sequence number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Position {
    segment: u64,
    end: u64,
    seq: u64,
}

/// A record read back: its sequence number and the delivery as it was received, with the
/// source it was authenticated against.
#[derive(Debug)]
pub struct Received {
    pub seq: u64,
    pub delivery: NewDelivery,
}

/// The append side, shared by every hook request; cheap to clone.
#[derive(Clone)]
pub struct ReceiptLog {
    log: Arc<Log>,
    syncer: Arc<Syncer>,
}

/// The files, shared by the appenders, the sync thread and the importer.
struct Log {
    dir: PathBuf,
    tail: Mutex<Tail>,
    /// Everything up to here is on disk and may be imported.
    synced: Mutex<Position>,
    /// Its sequence number, read by every hook request without taking the lock.
    synced_seq: AtomicU64,
    /// Requests appending or waiting for their sync right now.
    receiving: AtomicUsize,
    /// The last sequence number the journal holds.
    imported: AtomicU64,
    failed: Failed,
    spares: Spares,
    /// The sync thread's buffer for direct writes, aligned to a page once sliced.
    aligned: Mutex<Vec<u8>>,
}

/// Files ready to become the next segment, written over in full before: segments the journal
/// holds every record of, kept for reuse, and a spare zero-filled and synced by a thread of its
/// own. Reuse spares the zero-filling (a sixth of the server's CPU time in a burst's profile)
/// and the disk its writes, as PostgreSQL recycles its log segments.
struct Spares {
    dir: PathBuf,
    size: u64,
    path: PathBuf,
    spare: Arc<(Mutex<Spare>, Condvar)>,
    /// Asks the thread for one; it stops once this is dropped.
    want: Mutex<std::sync::mpsc::Sender<()>>,
    /// Retired segments waiting for reuse, named `<first sequence number>.recycled`.
    recycled: Mutex<Vec<PathBuf>>,
}

/// Retired segments kept for reuse; more are deleted.
const KEEP_RECYCLED: usize = 4;

/// The spare's state: a segment is waited for while its spare is being made.
enum Spare {
    /// None ready or being made: just taken, the disk lacks room, or zero-filling failed.
    Missing,
    Making,
    Ready(File),
}

/// Longest wait for a spare being made before a segment is made from nothing.
const SPARE_WAIT: Duration = Duration::from_secs(2);

/// The thread that zero-fills spares.
struct SpareThread(std::thread::JoinHandle<()>);

impl Spares {
    fn start(dir: &Path, size: u64) -> Result<(Spares, SpareThread)> {
        let path = dir.join("spare");
        clear_spares(dir)
            .map_err(|e| unavailable("could not clear the receipt log's spares", &e))?;
        let spare = Arc::new((Mutex::new(Spare::Missing), Condvar::new()));
        let (want, wanted) = std::sync::mpsc::channel::<()>();
        let (made, at) = (spare.clone(), path.clone());
        let thread = std::thread::Builder::new()
            .name("rollcall-spare".into())
            .spawn(move || {
                while wanted.recv().is_ok() {
                    let outcome = zero_filled(&at, size);
                    let (state, done) = &*made;
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    *state = match outcome {
                        Ok(file) => Spare::Ready(file),
                        Err(error) => {
                            // A full disk: the next segment is made as it is needed.
                            tracing::debug!(%error, "could not prepare a segment of the receipt log");
                            let _ = std::fs::remove_file(&at);
                            Spare::Missing
                        }
                    };
                    done.notify_all();
                }
            })
            .map_err(|e| unavailable("could not start the receipt log", &e))?;
        let spares = Spares {
            dir: dir.to_owned(),
            size,
            path,
            spare,
            want: Mutex::new(want),
            recycled: Mutex::new(Vec::new()),
        };
        spares.want();
        Ok((spares, SpareThread(thread)))
    }

    /// The next segment's file, renamed to `path`: a recycled segment if one is kept, else the
    /// spare if it is ready, else a new file.
    fn take(&self, path: &Path) -> io::Result<File> {
        let recycled = self
            .recycled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        if let Some(old) = recycled {
            match std::fs::rename(&old, path)
                .and_then(|()| OpenOptions::new().read(true).write(true).open(path))
            {
                Ok(file) => return Ok(file),
                Err(error) => {
                    tracing::debug!(%error, "could not reuse a segment of the receipt log")
                }
            }
        }
        let file = match self.wait_for_spare() {
            Some(spare) => {
                std::fs::rename(&self.path, path)?;
                spare
            }
            None => OpenOptions::new()
                .create_new(true)
                .read(true)
                .write(true)
                .open(path)?,
        };
        self.want();
        Ok(file)
    }

    /// Asks for a spare, unless one is ready or being made, or the disk lacks room for it.
    fn want(&self) {
        let mut state = self.spare.0.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, Spare::Missing) && room_for(&self.path, self.size) {
            *state = Spare::Making;
            let _ = self.want.lock().unwrap_or_else(|e| e.into_inner()).send(());
        }
    }

    /// The spare, waiting for it while it is being made. A segment made from nothing instead
    /// would take its records into blocks never written: the failing disk of tests/faults.rs
    /// lost such a record that its fdatasync had vouched for, the first burst after a start.
    fn wait_for_spare(&self) -> Option<File> {
        let (state, done) = &*self.spare;
        let state = state.lock().unwrap_or_else(|e| e.into_inner());
        let (mut state, _) = done
            .wait_timeout_while(state, SPARE_WAIT, |s| matches!(s, Spare::Making))
            .unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *state, Spare::Missing) {
            Spare::Ready(file) => Some(file),
            Spare::Making => {
                *state = Spare::Making;
                None
            }
            Spare::Missing => None,
        }
    }

    /// Keeps the retired segment `first` for reuse, or deletes it when enough are kept or it is
    /// shorter than a segment (cut short by a failed write, or made when no spare was ready):
    /// it would grow into blocks never written.
    fn recycle(&self, first: u64) -> io::Result<()> {
        let path = segment_path(&self.dir, first);
        let mut recycled = self.recycled.lock().unwrap_or_else(|e| e.into_inner());
        if recycled.len() < KEEP_RECYCLED && std::fs::metadata(&path)?.len() >= self.size {
            let kept = self.dir.join(format!("{first:020}.recycled"));
            std::fs::rename(&path, &kept)?;
            recycled.push(kept);
            return Ok(());
        }
        std::fs::remove_file(&path)
    }
}

/// Deletes the spare and the recycled segments an earlier run left: the spare may not be whole,
/// and a recycled segment holds records numbered before a restored journal's.
fn clear_spares(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name == "spare" || name.ends_with(".recycled") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Whether the disk holding `spare` has room for a spare of `size` and as much again. Filling a
/// nearly full disk to its last block, even for the moment before the spare is deleted again,
/// would fail the journal's writes meanwhile; segments are then made as they are needed.
fn room_for(spare: &Path, size: u64) -> bool {
    let dir = spare.parent().unwrap_or(spare);
    nix::sys::statvfs::statvfs(dir).map_or(true, |disk| {
        #[allow(clippy::useless_conversion, reason = "a u32 on some unix systems")]
        let free = u64::from(disk.blocks_available()).saturating_mul(disk.fragment_size());
        free >= size.saturating_mul(2)
    })
}

/// The page size writes are aligned to.
const PAGE: u64 = 4096;
/// Synced pages leave the page cache in chunks of this size.
const DROP_CHUNK: u64 = 256 << 10;

/// Drops the cached pages of `file` in `[from, to)`: written and synced, and read again only by
/// the import, if at all.
fn drop_cached(file: &File, from: u64, to: u64) {
    #[cfg(target_os = "linux")]
    if to > from {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
        let (from, len) = (from as i64, (to - from) as i64);
        let _ = posix_fadvise(file, from, len, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    }
}

/// A file of `size` bytes at `path` that starts with [`MAGIC`], zeros after, synced, its first
/// page in the page cache and no other.
fn zero_filled(path: &Path, size: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)?;
    const CHUNK: usize = 1 << 20;
    // Aligned for direct I/O: a slice of a larger buffer, at the first page boundary in it.
    let mut buffer = vec![0; CHUNK + PAGE as usize];
    let start = buffer.as_ptr().align_offset(PAGE as usize);
    let zeros = &mut buffer[start..start + CHUNK];
    zeros[..MAGIC.len()].copy_from_slice(MAGIC);
    let direct = direct_writer(path, size);
    let writer = direct.as_ref().unwrap_or(&file);
    let mut at = 0;
    while at < size {
        let len = (size - at).min(CHUNK as u64);
        writer.write_all_at(&zeros[..len as usize], at)?;
        zeros[..MAGIC.len()].fill(0);
        at += len;
    }
    file.sync_all()?;
    if direct.is_none() {
        drop_cached(&file, PAGE, size);
    }
    file.read_exact_at(&mut [0; MAGIC.len()], 0)?;
    Ok(file)
}

/// `path` opened for direct I/O, which writes from the buffer to the disk without the page
/// cache (and so without filling pages only to drop them): where the system and the filesystem
/// support it (not tmpfs), for files of whole pages.
fn direct_writer(path: &Path, size: u64) -> Option<File> {
    #[cfg(target_os = "linux")]
    if size.is_multiple_of(PAGE) {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = nix::fcntl::OFlag::O_DIRECT.bits();
        return OpenOptions::new()
            .write(true)
            .custom_flags(direct)
            .open(path)
            .ok();
    }
    let _ = (path, size);
    None
}

/// The segment appended to, and what the next sync must write and cover.
struct Tail {
    /// `None` until the first append of this run: a run always starts a segment of its own, so
    /// it never appends behind a torn record.
    current: Option<Segment>,
    next_seq: u64,
    /// Closed segments whose last records are not yet written and synced.
    closed: Vec<Segment>,
    /// A segment was created since the last sync: its directory entry must be synced too.
    directory_unsynced: bool,
    segment_bytes: u64,
    /// Whether segments are written with direct I/O where the filesystem has it (tests turn it
    /// off to exercise the other way).
    direct_io: bool,
}

/// A segment and the records appended to it that the next sync writes. Requests add their
/// framed record under the lock, and the sync thread writes all of them at once: a write per
/// request cost the HTTP workers a system call each and held the lock through it. Records are
/// written from the buffers they were framed in: copied into one buffer under the lock, a
/// burst of attendee lists spent a sixth of the HTTP workers' time copying and growing it.
struct Segment {
    first: u64,
    file: Arc<File>,
    /// The file opened for direct I/O, when it is a whole segment on a filesystem that has it.
    direct: Option<Arc<File>>,
    /// With direct I/O: what the page `written` falls in holds before it. A direct write starts
    /// at a page's start, so it writes these bytes again before its records.
    head: Vec<u8>,
    /// Where the next write goes: the end of what is written.
    written: u64,
    /// Records appended since the last write, and their bytes.
    records: Vec<Vec<u8>>,
    buffered: u64,
    /// The sequence number of the last record in `records`.
    buffered_seq: u64,
}

impl Segment {
    /// Its size once its records are written.
    fn size(&self) -> u64 {
        self.written + self.buffered
    }
}

/// Records taken from a segment, to be written at `offset`.
struct Pending {
    segment: u64,
    file: Arc<File>,
    /// The segment's file opened for direct I/O, if it is written that way.
    direct: Option<Arc<File>>,
    /// The bytes before `offset` in its page, written again before the records (direct I/O).
    head: Vec<u8>,
    offset: u64,
    records: Vec<Vec<u8>>,
    /// Zeros written after the records: a header (the end mark, written over by the next
    /// write), then to the end of the page.
    padding: usize,
    /// Just past the last record.
    end: u64,
    last_seq: u64,
}

/// The running sync thread; it answers what is left and stops once every [`ReceiptLog`] is
/// gone.
pub struct ReceiptThread(SyncerThread, SpareThread);

impl ReceiptThread {
    /// Call once every [`ReceiptLog`] and the [`Imports`] are gone: the spare thread stops
    /// with the log.
    pub fn join(self) {
        self.0.join();
        if (self.1).0.join().is_err() {
            tracing::error!("the receipt log's spare thread panicked");
        }
    }
}

impl ReceiptLog {
    /// Opens the log in `dir`, cutting off a torn tail, with `imported` the last sequence number
    /// the journal holds. `synced` is called after every sync (the writer's wake-up).
    pub fn open(
        dir: &Path,
        imported: u64,
        synced: impl Fn() + Send + 'static,
        failed: Failed,
    ) -> Result<(ReceiptLog, Imports, ReceiptThread)> {
        Self::open_with(dir, imported, synced, failed, SEGMENT_BYTES)
    }

    fn open_with(
        dir: &Path,
        imported: u64,
        synced: impl Fn() + Send + 'static,
        failed: Failed,
        segment_bytes: u64,
    ) -> Result<(ReceiptLog, Imports, ReceiptThread)> {
        create_directory(dir).map_err(|e| unavailable("could not create the receipt log", &e))?;
        let last = recover(dir).map_err(|e| unavailable("could not read the receipt log", &e))?;
        let (spares, spare_thread) = Spares::start(dir, segment_bytes)?;
        let log = Arc::new(Log {
            dir: dir.to_owned(),
            tail: Mutex::new(Tail {
                current: None,
                next_seq: last.seq.max(imported) + 1,
                closed: Vec::new(),
                directory_unsynced: false,
                segment_bytes,
                direct_io: true,
            }),
            synced: Mutex::new(last),
            synced_seq: AtomicU64::new(last.seq),
            receiving: AtomicUsize::new(0),
            imported: AtomicU64::new(imported),
            failed: failed.clone(),
            spares,
            aligned: Mutex::new(Vec::new()),
        });
        let syncing = log.clone();
        let (syncer, thread) =
            syncer::start_with("the receipt log", move || syncing.sync(), synced, failed)?;
        let imports = Imports::new(log.clone(), imported);
        let receipts = ReceiptLog {
            log,
            syncer: Arc::new(syncer),
        };
        Ok((receipts, imports, ReceiptThread(thread, spare_thread)))
    }

    /// Whether a burst is on: requests are appending or waiting for their sync, or receipts
    /// wait to be journaled. A request that finds itself alone then still comes here: answers
    /// are sent to a burst's senders together, after each sync, and the first of their next
    /// requests is alone for a moment (at 64 connections, one a sync went to the writer, whose
    /// commits and fsyncs then took the cores and the disk from the burst).
    pub fn busy(&self) -> bool {
        self.log.receiving.load(Ordering::SeqCst) > 0
            || self.log.synced_seq.load(Ordering::SeqCst) > self.log.imported.load(Ordering::SeqCst)
    }

    /// Appends `delivery` and waits until it is on disk: its sequence number. Refused once a
    /// sync has failed (until a restart), and when the record cannot be written (disk full):
    /// nothing is then answered as received.
    pub async fn receive(&self, delivery: &NewDelivery) -> Result<u64> {
        // Counted until dropped: a request whose sender hung up is dropped while it waits.
        let _receiving = Receiving::enter(&self.log);
        let frame = Frame::of(delivery)?;
        let seq = self.log.append(frame)?;
        let (told, synced) = oneshot::channel();
        let home = Home::here();
        self.syncer.after_sync(Box::new(move |outcome| {
            home.send(
                told,
                outcome.map_err(|e| StoreError::Unavailable(e.to_string())),
            );
        }));
        synced
            .await
            .map_err(|_| StoreError::Unavailable("the receipt log has stopped".into()))??;
        Ok(seq)
    }
}

/// A request counted in [`Log::receiving`] for as long as it lives.
struct Receiving<'a>(&'a Log);

impl<'a> Receiving<'a> {
    fn enter(log: &'a Log) -> Receiving<'a> {
        log.receiving.fetch_add(1, Ordering::SeqCst);
        Receiving(log)
    }
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.0.receiving.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Log {
    fn tail(&self) -> MutexGuard<'_, Tail> {
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn synced(&self) -> Position {
        *self.synced.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append(&self, mut frame: Frame) -> Result<u64> {
        if let Some(reason) = self.failed.reason() {
            return Err(StoreError::Unavailable(reason));
        }
        let mut tail = self.tail();
        let full = tail
            .current
            .as_ref()
            .is_none_or(|s| s.size() >= tail.segment_bytes);
        if full {
            tail.start_segment(&self.dir, &self.spares)
                .map_err(|e| unavailable("the delivery could not be written to disk", &e))?;
        }
        let seq = tail.next_seq;
        frame.seal(seq);
        let segment = tail.current.as_mut().expect("a segment was just started");
        segment.buffered += frame.bytes.len() as u64;
        segment.records.push(frame.bytes);
        segment.buffered_seq = seq;
        tail.next_seq += 1;
        Ok(seq)
    }

    /// Writes what was appended since the last sync and makes it durable, then lets the writer
    /// import it. A write that fails (a full disk) loses only the records it carried, none of
    /// them answered, and the next write goes where it would have: the store goes on. A failed
    /// fsync is final ([`SyncFailure::Fsync`]).
    fn sync(&self) -> Result<(), SyncFailure> {
        let (writes, files, directory) = self.take_writes();
        let mut aligned = self.aligned.lock().unwrap_or_else(|e| e.into_inner());
        for (n, write) in writes.iter().enumerate() {
            let written = match &write.direct {
                Some(direct) => write_direct(direct, &mut aligned, write),
                None => write_records(&write.file, &write.records, write.padding, write.offset),
            };
            if let Err(error) = written {
                self.unwrite(&writes[n..]);
                return Err(SyncFailure::Unwritten(error));
            }
        }
        for file in files {
            file.sync_data().map_err(SyncFailure::Fsync)?;
        }
        drop(aligned);
        for write in writes.iter().filter(|w| w.direct.is_none()) {
            // A chunk at a time: a system call per sync would cost the small webhooks of a
            // burst more than it saves them. The segment's first page stays.
            let from = (write.offset / DROP_CHUNK * DROP_CHUNK).max(PAGE);
            drop_cached(&write.file, from, write.end / DROP_CHUNK * DROP_CHUNK);
        }
        if directory {
            File::open(&self.dir)
                .and_then(|dir| dir.sync_all())
                .map_err(SyncFailure::Fsync)?;
        }
        if let Some(last) = writes.last() {
            *self.synced.lock().unwrap_or_else(|e| e.into_inner()) = Position {
                segment: last.segment,
                end: last.end,
                seq: last.last_seq,
            };
            self.synced_seq.store(last.last_seq, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Takes the records to write, the files to sync after, and whether the directory too.
    fn take_writes(&self) -> (Vec<Pending>, Vec<Arc<File>>, bool) {
        let mut guard = self.tail();
        let tail = &mut *guard;
        let closed = std::mem::take(&mut tail.closed);
        let mut writes = Vec::new();
        let mut files = Vec::new();
        for segment in closed.into_iter().map(Some).chain([None]) {
            let segment = match segment {
                Some(mut closed) => {
                    writes.extend(take_records(&mut closed));
                    files.push(closed.file);
                    continue;
                }
                None => tail.current.as_mut(),
            };
            if let Some(current) = segment {
                if let Some(write) = take_records(current) {
                    files.push(current.file.clone());
                    writes.push(write);
                }
            }
        }
        let directory = std::mem::take(&mut tail.directory_unsynced);
        (writes, files, directory)
    }

    /// After `failed[0]` could not be written: the current segment's next write goes where it
    /// would have, over whatever part of it reached the file.
    fn unwrite(&self, failed: &[Pending]) {
        let mut tail = self.tail();
        for write in failed {
            let _ = write.file.set_len(write.offset);
            if let Some(current) = tail.current.as_mut().filter(|s| s.first == write.segment) {
                if write.offset < current.written {
                    current.written = write.offset;
                    current.head = write.head.clone();
                }
            }
        }
    }
}

fn take_records(segment: &mut Segment) -> Option<Pending> {
    if segment.records.is_empty() {
        return None;
    }
    let offset = segment.written;
    segment.written += std::mem::take(&mut segment.buffered);
    // A recycled segment holds earlier records past the last one: reading stops at the mark.
    let padded = (segment.written + HEADER as u64).next_multiple_of(PAGE);
    let records = std::mem::take(&mut segment.records);
    let head = match segment.direct {
        Some(_) => {
            let next = tail_of(&segment.head, &records, (segment.written % PAGE) as usize);
            std::mem::replace(&mut segment.head, next)
        }
        None => Vec::new(),
    };
    Some(Pending {
        segment: segment.first,
        file: segment.file.clone(),
        direct: segment.direct.clone(),
        head,
        offset,
        records,
        padding: (padded - segment.written) as usize,
        end: segment.written,
        last_seq: segment.buffered_seq,
    })
}

/// The last `len` bytes of `head` followed by `records`.
fn tail_of(head: &[u8], records: &[Vec<u8>], len: usize) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let mut left = len;
    for part in records.iter().map(Vec::as_slice).rev().chain([head]) {
        if left == 0 {
            break;
        }
        let take = part.len().min(left);
        parts.push(&part[part.len() - take..]);
        left -= take;
    }
    // A slice at a time: collected a byte at a time, this copy of up to a page was 6 % of the
    // sync thread's samples at 64 connections, and it is made under the log's lock.
    parts.reverse();
    parts.concat()
}

/// Direct writes go out in pieces of this size at most: the buffer they are copied into stays
/// small however large a burst's sync.
const DIRECT_CHUNK: usize = 4 << 20;
/// Zeros enough for any write's padding.
static ZEROS: [u8; PAGE as usize + HEADER] = [0; PAGE as usize + HEADER];

/// Writes `head`, the records and the padding from the start of the page `offset` falls in,
/// with direct writes from a page-aligned copy: the page cache never sees them.
fn write_direct(file: &File, buffer: &mut Vec<u8>, write: &Pending) -> io::Result<()> {
    if buffer.is_empty() {
        buffer.resize(DIRECT_CHUNK + PAGE as usize, 0);
    }
    let aligned = buffer.as_ptr().align_offset(PAGE as usize);
    let chunk = &mut buffer[aligned..aligned + DIRECT_CHUNK];
    let mut at = write.offset - write.head.len() as u64;
    let mut filled = 0;
    let parts = std::iter::once(&write.head[..])
        .chain(write.records.iter().map(Vec::as_slice))
        .chain([&ZEROS[..write.padding]]);
    for mut part in parts {
        while !part.is_empty() {
            let n = part.len().min(DIRECT_CHUNK - filled);
            chunk[filled..filled + n].copy_from_slice(&part[..n]);
            (filled, part) = (filled + n, &part[n..]);
            if filled == DIRECT_CHUNK {
                file.write_all_at(chunk, at)?;
                (at, filled) = (at + DIRECT_CHUNK as u64, 0);
            }
        }
    }
    // Whole pages: the write starts at a page's start and its padding ends at one.
    file.write_all_at(&chunk[..filled], at)
}

/// Writes `records`, then `padding` zeros, at `offset`: in one system call for up to [`IOV_MAX`]
/// records.
fn write_records(file: &File, records: &[Vec<u8>], padding: usize, offset: u64) -> io::Result<()> {
    let mut slices: Vec<IoSlice> = records.iter().map(|r| IoSlice::new(r)).collect();
    slices.push(IoSlice::new(&ZEROS[..padding]));
    let (mut slices, mut at) = (&mut slices[..], offset);
    while !slices.is_empty() {
        let batch = &slices[..slices.len().min(IOV_MAX)];
        match nix::sys::uio::pwritev(file, batch, at as i64) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                at += n as u64;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(())
}

/// Buffers per `pwritev` call, at most: `IOV_MAX` on Linux, macOS and the BSDs.
const IOV_MAX: usize = 1024;

impl Tail {
    /// Starts the segment of `next_seq` in a file written over in full before, if [`Spares`] has
    /// one. Records then overwrite blocks already written, so a sync writes only them, never the
    /// file's size or its block map (PostgreSQL zero-fills and recycles its log segments for the
    /// same reason). On a disk failing under the filesystem, a first fdatasync into blocks never
    /// written before returned success for data that was not there after a remount
    /// (tests/faults.rs); overwritten blocks kept every record.
    fn start_segment(&mut self, dir: &Path, spares: &Spares) -> io::Result<()> {
        let first = self.next_seq;
        let path = segment_path(dir, first);
        let file = spares.take(&path)?;
        // A segment made from nothing (no spare was ready) grows as it is written: buffered.
        let whole = self.direct_io && file.metadata()?.len() >= self.segment_bytes;
        let direct = whole
            .then(|| direct_writer(&path, self.segment_bytes))
            .flatten();
        // A whole segment (a spare or a recycled one) starts with MAGIC already, and the first
        // direct write writes it again from `head`: written here too, through the page cache,
        // the page would have to be flushed before that write could go past it.
        if direct.is_none() {
            file.write_all_at(MAGIC, 0)?;
        }
        if let Some(closed) = self.current.take() {
            self.closed.push(closed);
        }
        self.current = Some(Segment {
            first,
            file: Arc::new(file),
            direct: direct.map(Arc::new),
            head: MAGIC.to_vec(),
            written: MAGIC.len() as u64,
            records: Vec::new(),
            buffered: 0,
            buffered_seq: 0,
        });
        self.directory_unsynced = true;
        Ok(())
    }
}

/// One record, framed before it has a sequence number, which the checksum covers first.
struct Frame {
    bytes: Vec<u8>,
    /// A large payload's checksum, taken outside the lock and combined with the number's under
    /// it; a small one is checksummed after the number under the lock, which is quicker than
    /// combining (0.02 against 0.13 µs for a TagMango webhook).
    payload: Option<crc32fast::Hasher>,
}

/// Payloads above this size are checksummed outside the lock ([`Frame::payload`]): at about
/// 19 GB/s, checksumming 2 KiB takes as long as combining two checksums.
const COMBINE_ABOVE: usize = 2 << 10;

/// The metadata as written. The time is written as nanoseconds since the epoch: as RFC 3339
/// text it was 0.2 µs of the 0.63 µs that framing a TagMango webhook took (chrono formats it a
/// character at a time, and serde_json checks each piece for escapes).
#[derive(Serialize)]
struct MetaOut<'a> {
    platform: &'a str,
    source_id: Option<i64>,
    trigger: Option<&'a str>,
    #[serde(serialize_with = "nanoseconds")]
    received_at: DateTime<Utc>,
    via: &'a str,
    content_type: Option<&'a str>,
    headers: &'a BTreeMap<String, String>,
    time_zone: &'a str,
}

/// `chrono::serde::ts_nanoseconds`, without its cost: it builds the error for a time out of
/// range before it knows whether there is one (a formatted message, boxed, for every record).
fn nanoseconds<S: serde::Serializer>(at: &DateTime<Utc>, out: S) -> Result<S::Ok, S::Error> {
    let nanos = at.timestamp_nanos_opt().ok_or_else(|| {
        serde::ser::Error::custom("the time is out of range for nanoseconds since 1970")
    })?;
    out.serialize_i64(nanos)
}

/// The metadata as read back.
#[derive(Deserialize)]
struct MetaIn {
    platform: String,
    source_id: Option<i64>,
    trigger: Option<String>,
    received_at: ReceivedAt,
    via: String,
    content_type: Option<String>,
    headers: BTreeMap<String, String>,
    time_zone: String,
}

/// The time a record was received, as written: nanoseconds since the epoch, or RFC 3339 text in
/// records written before that (a log left by an earlier version is imported at start).
#[derive(Deserialize)]
#[serde(untagged)]
enum ReceivedAt {
    Nanoseconds(i64),
    Text(DateTime<Utc>),
}

impl From<ReceivedAt> for DateTime<Utc> {
    fn from(at: ReceivedAt) -> Self {
        match at {
            ReceivedAt::Nanoseconds(nanos) => DateTime::from_timestamp_nanos(nanos),
            ReceivedAt::Text(at) => at,
        }
    }
}

impl Frame {
    fn of(delivery: &NewDelivery) -> Result<Frame> {
        // The metadata is written in place: one allocation per record.
        const META_AT: usize = HEADER + 4;
        let mut bytes = Vec::with_capacity(META_AT + 512 + delivery.body.len());
        bytes.extend_from_slice(&[0; META_AT]);
        serde_json::to_writer(
            &mut bytes,
            &MetaOut {
                platform: delivery.platform.as_str(),
                source_id: delivery.source_id,
                trigger: delivery.trigger.as_deref(),
                received_at: delivery.received_at,
                via: delivery.via.as_str(),
                content_type: delivery.content_type.as_deref(),
                headers: &delivery.headers,
                time_zone: delivery.time_zone.name(),
            },
        )?;
        let meta_len = bytes.len() - META_AT;
        bytes.extend_from_slice(&delivery.body);
        let payload_len = bytes.len() - HEADER;
        if payload_len > MAX_PAYLOAD as usize {
            return Err(StoreError::Invalid(
                "the delivery is too large for the receipt log".into(),
            ));
        }
        bytes[0..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        bytes[HEADER..META_AT].copy_from_slice(&(meta_len as u32).to_le_bytes());
        let payload = (payload_len > COMBINE_ABOVE).then(|| {
            let mut payload = crc32fast::Hasher::new();
            payload.update(&bytes[HEADER..]);
            payload
        });
        Ok(Frame { bytes, payload })
    }

    fn seal(&mut self, seq: u64) {
        self.bytes[8..16].copy_from_slice(&seq.to_le_bytes());
        let sum = match &self.payload {
            Some(payload) => combined(seq, payload),
            None => checksum(seq, &self.bytes[HEADER..]),
        };
        self.bytes[4..8].copy_from_slice(&sum.to_le_bytes());
    }
}

/// The CRC-32 of the sequence number and then the payload.
fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut sum = crc32fast::Hasher::new();
    sum.update(&seq.to_le_bytes());
    sum.update(payload);
    sum.finalize()
}

/// [`checksum`], from the payload's own.
fn combined(seq: u64, payload: &crc32fast::Hasher) -> u32 {
    let mut sum = crc32fast::Hasher::new();
    sum.update(&seq.to_le_bytes());
    sum.combine(payload);
    sum.finalize()
}

/// Frames and seals `delivery` as record `seq`, as [`ReceiptLog::receive`] does, and gives the
/// record's length: for the criterion benchmark of what a delivery costs the receiver.
#[doc(hidden)]
pub fn frame(delivery: &NewDelivery, seq: u64) -> Result<usize> {
    let mut frame = Frame::of(delivery)?;
    frame.seal(seq);
    Ok(frame.bytes.len())
}

/// What reading at an offset found.
enum Read {
    Record {
        seq: u64,
        payload: Vec<u8>,
        end: u64,
    },
    /// Short, or failing its checksum: the end of what was written whole.
    Torn,
    /// Nothing was written here: the end of the file, zeros, or a record numbered below
    /// `least`, left from a recycled segment's earlier use.
    End,
}

/// Reads the record at `offset`, which must be numbered `least` or above to be one.
fn read_at(file: &File, offset: u64, len: u64, least: u64) -> io::Result<Read> {
    if offset >= len {
        return Ok(Read::End);
    }
    if len - offset < HEADER as u64 {
        return Ok(Read::Torn);
    }
    let mut header = [0; HEADER];
    file.read_exact_at(&mut header, offset)?;
    if header == [0; HEADER] {
        // The zeros of a segment filled ahead of time: nothing was written here.
        return Ok(Read::End);
    }
    let payload_len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
    let sum = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let end = offset + HEADER as u64 + u64::from(payload_len);
    if payload_len > MAX_PAYLOAD || end > len {
        return Ok(Read::Torn);
    }
    let mut payload = vec![0; payload_len as usize];
    file.read_exact_at(&mut payload, offset + HEADER as u64)?;
    if checksum(seq, &payload) != sum {
        return Ok(Read::Torn);
    }
    if seq < least {
        return Ok(Read::End);
    }
    Ok(Read::Record { seq, payload, end })
}

fn decode(seq: u64, payload: &[u8]) -> Result<Received> {
    let corrupt = |what: &str| StoreError::Invalid(format!("receipt {seq} is unreadable: {what}"));
    let meta_len = payload
        .get(0..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| corrupt("no metadata"))?;
    let meta: MetaIn = serde_json::from_slice(
        payload
            .get(4..4 + meta_len)
            .ok_or_else(|| corrupt("short metadata"))?,
    )?;
    let body = Bytes::copy_from_slice(&payload[4 + meta_len..]);
    let delivery = NewDelivery {
        platform: meta.platform.parse().map_err(|_| corrupt("platform"))?,
        source_id: meta.source_id,
        trigger: meta.trigger,
        received_at: meta.received_at.into(),
        via: Via::parse(&meta.via).ok_or_else(|| corrupt("via"))?,
        content_type: meta.content_type,
        headers: meta.headers,
        body,
        time_zone: meta.time_zone.parse().map_err(|_| corrupt("time zone"))?,
    };
    Ok(Received { seq, delivery })
}

/// The writer's side: reads synced records in order, and deletes segments once the journal
/// holds all of theirs.
pub struct Imports {
    log: Arc<Log>,
    /// The last record read, and where it ended; `segment` 0 before the first.
    read: Position,
    /// The last record in the journal: reading goes back here if an import fails.
    committed: Position,
    file: Option<File>,
    /// Reading moved on to a later segment since segments were last retired.
    moved_on: bool,
}

impl Imports {
    fn new(log: Arc<Log>, imported: u64) -> Imports {
        let start = Position {
            segment: 0,
            end: 0,
            seq: imported,
        };
        Imports {
            log,
            read: start,
            committed: start,
            file: None,
            moved_on: true,
        }
    }

    /// Whether synced records wait to be imported.
    pub fn waiting(&self) -> bool {
        self.log.synced().seq > self.read.seq
    }

    /// The sequence number of the last record synced.
    pub fn synced(&self) -> u64 {
        self.log.synced().seq
    }

    /// Whether requests are appending or waiting for their sync right now: receipts are still
    /// arriving, even while a slow sync keeps `synced` where it is.
    pub fn receiving(&self) -> bool {
        self.log.receiving.load(Ordering::SeqCst) > 0
    }

    /// The next synced record past those read. A damaged record inside what was synced, or one
    /// that cannot be decoded although its checksum held (written by another version), is an
    /// error: the import stops there rather than skip what was acknowledged.
    pub fn next_record(&mut self) -> Result<Option<Received>> {
        let io = |e| unavailable("could not read the receipt log", &e);
        loop {
            let synced = self.log.synced();
            if self.read.seq >= synced.seq {
                return Ok(None);
            }
            if !self.open().map_err(io)? {
                return Ok(None);
            }
            let file = self.file.as_ref().expect("just opened");
            let len = if self.read.segment == synced.segment {
                synced.end
            } else {
                file.metadata().map_err(io)?.len()
            };
            match read_at(file, self.read.end, len, self.least()).map_err(io)? {
                Read::Record { seq, payload, end } => {
                    self.read.end = end;
                    self.read.seq = seq;
                    if seq > self.committed.seq {
                        return decode(seq, &payload).map(Some);
                    }
                }
                found => {
                    let next = match self.read.segment != synced.segment {
                        true => self.next_segment().map_err(io)?,
                        false => None,
                    };
                    let Some(next) = next else {
                        return Err(StoreError::Invalid(format!(
                            "the receipt log is damaged or cut short after receipt {}, before \
                             receipt {}",
                            self.read.seq, synced.seq
                        )));
                    };
                    if matches!(found, Read::Torn) {
                        // A start cuts off the torn tail of the last segment: a segment before
                        // it was damaged since. What follows the damage cannot be read.
                        tracing::error!(
                            segment = self.read.segment,
                            after = self.read.seq,
                            "the receipt log is damaged; going on with its next segment"
                        );
                    }
                    self.move_to(next);
                }
            }
        }
    }

    /// The segment being read, opened; at first the one holding the record after the last
    /// imported.
    fn open(&mut self) -> io::Result<bool> {
        if self.file.is_none() {
            if self.read.segment == 0 {
                let segments = list_segments(&self.log.dir)?;
                let after = self.read.seq + 1;
                let Some(first) = segments
                    .iter()
                    .rev()
                    .find(|first| **first <= after)
                    .or(segments.first())
                else {
                    return Ok(false);
                };
                self.read.segment = *first;
                self.read.end = MAGIC.len() as u64;
            }
            self.file = Some(File::open(segment_path(&self.log.dir, self.read.segment))?);
        }
        Ok(true)
    }

    /// The least number the next record read may have: a segment's first is its name.
    fn least(&self) -> u64 {
        match self.read.end == MAGIC.len() as u64 {
            true => self.read.segment,
            false => self.read.seq + 1,
        }
    }

    /// The segment after the one being read, if there is one.
    fn next_segment(&self) -> io::Result<Option<u64>> {
        let segments = list_segments(&self.log.dir)?;
        Ok(segments
            .into_iter()
            .find(|first| *first > self.read.segment))
    }

    /// Goes on to segment `next`, the one being read read to its end.
    fn move_to(&mut self, next: u64) {
        self.read.segment = next;
        self.read.end = MAGIC.len() as u64;
        self.file = None;
        self.moved_on = true;
    }

    /// Every record read so far is committed to the journal.
    pub fn imported(&mut self) {
        self.committed = self.read;
        self.log.imported.store(self.read.seq, Ordering::SeqCst);
    }

    /// The last sequence number read: what the importing transaction records as imported.
    pub fn last_read(&self) -> u64 {
        self.read.seq
    }

    /// The import of what was read failed: read it again.
    pub fn rewind(&mut self) {
        self.read = self.committed;
        self.file = None;
    }

    /// Retires the segments whose every record is in the journal (see [`Spares::recycle`]), once
    /// `sync_journal` made the journal's copy durable. With `all`, the segment being appended to
    /// goes too (nothing is appended any more, or yet).
    pub fn retire(
        &mut self,
        all: bool,
        sync_journal: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<()> {
        if !self.moved_on && !all {
            return Ok(());
        }
        let segments = list_segments(&self.log.dir)?;
        let imported = self.committed.seq;
        let everything = all && self.log.synced().seq <= imported;
        let done: Vec<u64> = segments
            .iter()
            .enumerate()
            .filter(|(i, _)| match segments.get(i + 1) {
                Some(next) => *next <= imported + 1,
                None => everything,
            })
            .map(|(_, first)| *first)
            .collect();
        if !done.is_empty() {
            sync_journal()?;
            for first in &done {
                self.log.spares.recycle(*first)?;
            }
        }
        // Segments read past but not yet imported wait for a later call.
        self.moved_on = segments
            .iter()
            .any(|first| *first < self.read.segment && !done.contains(first));
        Ok(())
    }
}

/// Records in the receipt log of the database at `database` that its journal (`conn`) does not
/// hold yet: acknowledged, journaled moments later. Reads the whole log, so it is for tools and
/// tests, not for the running app.
pub fn unimported(conn: &rusqlite::Connection, database: &Path) -> Result<u64> {
    let has_log: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE name = 'receipt_log'",
        [],
        |r| r.get(0),
    )?;
    if !has_log {
        return Ok(0); // Written by a version before the receipt log (benchmarks compare them).
    }
    let imported: i64 = conn.query_row("SELECT imported FROM receipt_log", [], |r| r.get(0))?;
    let dir = directory(database);
    let io = |e| unavailable("could not read the receipt log", &e);
    let segments = match list_segments(&dir) {
        Ok(segments) => segments,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(io(error)),
    };
    let mut count = 0;
    for (i, &first) in segments.iter().enumerate() {
        let Ok(file) = File::open(segment_path(&dir, first)) else {
            continue; // Retired meanwhile: imported.
        };
        // Retired and reused meanwhile by a running app: its new records are counted under the
        // segment's new name.
        let before = segments.get(i + 1).copied().unwrap_or(u64::MAX);
        let len = file.metadata().map_err(io)?.len();
        let (mut offset, mut least) = (MAGIC.len() as u64, first);
        while let Read::Record { seq, end, .. } = read_at(&file, offset, len, least).map_err(io)? {
            if seq >= before {
                break;
            }
            count += u64::from(seq > imported as u64);
            (offset, least) = (end, seq + 1);
        }
    }
    Ok(count)
}

/// Finds the end of the log, and cuts off a torn record at the end of the last segment (nothing
/// from it on was answered). Only the last segment is read.
fn recover(dir: &Path) -> io::Result<Position> {
    let segments = list_segments(dir)?;
    let Some(&first) = segments.last() else {
        return Ok(Position::default());
    };
    let path = segment_path(dir, first);
    let file = OpenOptions::new().read(true).write(true).open(&path)?;
    let len = file.metadata()?.len();
    let mut magic = [0; 8];
    let whole = len >= MAGIC.len() as u64 && {
        file.read_exact_at(&mut magic, 0)?;
        &magic == MAGIC
    };
    if !whole {
        return remove_empty(file, &path, dir);
    }
    let mut last = Position {
        segment: first,
        end: MAGIC.len() as u64,
        seq: first.saturating_sub(1),
    };
    loop {
        match read_at(&file, last.end, len, last.seq + 1)? {
            Read::Record { seq, end, .. } => {
                last = Position {
                    segment: first,
                    end,
                    seq,
                }
            }
            Read::End => break,
            Read::Torn => {
                tracing::warn!(
                    segment = %path.display(),
                    at = last.end,
                    "the receipt log ends in a torn record, never answered: cut off"
                );
                file.set_len(last.end)?;
                file.sync_all()?;
                break;
            }
        }
    }
    if last.end == MAGIC.len() as u64 {
        return remove_empty(file, &path, dir);
    }
    Ok(last)
}

/// The last segment was started, and the machine stopped before a sync covered its first
/// record: nothing in it was answered, and the next segment takes its name.
fn remove_empty(file: File, path: &Path, dir: &Path) -> io::Result<Position> {
    drop(file);
    std::fs::remove_file(path)?;
    recover(dir)
}

fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(first) = name
            .strip_suffix(".log")
            .and_then(|n| n.parse::<u64>().ok())
        {
            segments.push(first);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

fn create_directory(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    if let Some(parent) = dir.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn unavailable(what: &str, error: &io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Platform;

    fn delivery(n: u32) -> NewDelivery {
        NewDelivery {
            platform: Platform::Tagmango,
            source_id: Some(7),
            trigger: Some("registration".into()),
            received_at: Utc::now(),
            via: Via::Webhook,
            content_type: Some("application/json".into()),
            headers: BTreeMap::from([("user-agent".into(), format!("test {n}"))]),
            body: Bytes::from(format!("{{\"n\": {n}}}")),
            time_zone: chrono_tz::Asia::Kolkata,
        }
    }

    fn open(dir: &Path, imported: u64, segment_bytes: u64) -> (ReceiptLog, Imports, ReceiptThread) {
        ReceiptLog::open_with(dir, imported, || {}, Failed::default(), segment_bytes).unwrap()
    }

    /// [`open`], with segments written with direct I/O (where the filesystem has it) or not.
    fn open_as(
        dir: &Path,
        segment_bytes: u64,
        direct_io: bool,
    ) -> (ReceiptLog, Imports, ReceiptThread) {
        let opened = open(dir, 0, segment_bytes);
        opened.0.log.tail().direct_io = direct_io;
        opened
    }

    /// Runs `test` with direct I/O, then through the page cache.
    fn both_ways(test: fn(bool)) {
        test(true);
        test(false);
    }

    fn read_all(imports: &mut Imports) -> Vec<Received> {
        std::iter::from_fn(|| imports.next_record().unwrap()).collect()
    }

    fn stop(log: ReceiptLog, imports: Imports, thread: ReceiptThread) {
        drop((log, imports));
        thread.join();
    }

    /// Small segments: every open zero-fills a spare.
    const SEGMENT: u64 = 1 << 20;

    #[tokio::test]
    async fn a_received_delivery_reads_back_as_it_was_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open(dir.path(), 0, SEGMENT);
        let sent: Vec<_> = (0..3).map(delivery).collect();
        for (n, d) in sent.iter().enumerate() {
            assert_eq!(log.receive(d).await.unwrap(), n as u64 + 1);
        }
        let read = read_all(&mut imports);
        assert_eq!(read.len(), 3);
        for (got, sent) in read.iter().zip(&sent) {
            let d = &got.delivery;
            assert_eq!(d.platform, sent.platform);
            assert_eq!(d.source_id, sent.source_id);
            assert_eq!(d.trigger, sent.trigger);
            assert_eq!(d.received_at, sent.received_at);
            assert_eq!(d.via, sent.via);
            assert_eq!(d.content_type, sent.content_type);
            assert_eq!(d.headers, sent.headers);
            assert_eq!(d.body, sent.body);
            assert_eq!(d.time_zone, sent.time_zone);
        }
        assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(!imports.waiting());
        stop(log, imports, thread);
    }

    #[test]
    fn a_record_from_an_earlier_version_with_its_time_as_text_reads_back_the_same() {
        let sent = delivery(1);
        let frame = Frame::of(&sent).unwrap();
        let payload = &frame.bytes[HEADER..];
        let meta_len = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
        let mut meta: serde_json::Value =
            serde_json::from_slice(&payload[4..4 + meta_len]).unwrap();
        let nanos = sent.received_at.timestamp_nanos_opt().unwrap();
        assert_eq!(meta["received_at"], nanos, "written as nanoseconds");
        // chrono's RFC 3339 text, as earlier versions wrote it.
        meta["received_at"] = serde_json::json!(sent.received_at);
        assert!(meta["received_at"].is_string());
        let meta = serde_json::to_vec(&meta).unwrap();
        let mut earlier = (meta.len() as u32).to_le_bytes().to_vec();
        earlier.extend_from_slice(&meta);
        earlier.extend_from_slice(&sent.body);
        let read = decode(1, &earlier).unwrap().delivery;
        assert_eq!(read.received_at, sent.received_at);
        assert_eq!(read.body, sent.body);
        assert_eq!(read.headers, sent.headers);
    }

    #[test]
    fn a_time_past_what_nanoseconds_since_1970_hold_is_refused_not_written() {
        let mut sent = delivery(1);
        sent.received_at = "2263-01-01T00:00:00Z".parse().unwrap();
        let refused = Frame::of(&sent).err().expect("out of range");
        assert!(refused.to_string().contains("out of range"), "{refused}");
        sent.received_at = "2262-04-11T00:00:00Z".parse().unwrap();
        let frame = Frame::of(&sent).unwrap();
        let read = decode(1, &frame.bytes[HEADER..]).unwrap().delivery;
        assert_eq!(read.received_at, sent.received_at);
    }

    #[test]
    fn a_record_is_checksummed_the_same_whole_under_the_lock_or_combined() {
        for size in [
            0,
            1,
            COMBINE_ABOVE - 1,
            COMBINE_ABOVE,
            COMBINE_ABOVE + 1,
            100 << 10,
        ] {
            let payload: Vec<u8> = (0..size).map(|i| (i * 7 + 3) as u8).collect();
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&payload);
            for seq in [1, 42, u64::MAX] {
                assert_eq!(
                    checksum(seq, &payload),
                    combined(seq, &hasher),
                    "{size} bytes"
                );
            }
        }
        assert!(Frame::of(&delivery(1)).unwrap().payload.is_none());
        assert!(Frame::of(&with_body(1, COMBINE_ABOVE))
            .unwrap()
            .payload
            .is_some());
    }

    #[test]
    fn nothing_is_imported_before_a_sync_covers_it() {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open(dir.path(), 0, SEGMENT);
        log.log.append(Frame::of(&delivery(1)).unwrap()).unwrap();
        assert!(!imports.waiting());
        assert!(imports.next_record().unwrap().is_none());
        log.log.sync().unwrap();
        assert!(imports.waiting());
        assert_eq!(read_all(&mut imports).len(), 1);
        stop(log, imports, thread);
    }

    #[tokio::test]
    async fn a_burst_is_on_until_the_journal_holds_its_last_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open(dir.path(), 0, SEGMENT);
        assert!(!log.busy());
        {
            let _receiving = Receiving::enter(&log.log);
            assert!(log.busy(), "a request appending or waiting for its sync");
        }
        assert!(!log.busy());
        log.receive(&delivery(1)).await.unwrap();
        log.receive(&delivery(2)).await.unwrap();
        assert!(log.busy(), "synced, not yet journaled");
        assert_eq!(read_all(&mut imports).len(), 2);
        assert!(log.busy(), "read, not yet committed");
        imports.imported();
        assert!(!log.busy());
        stop(log, imports, thread);
    }

    /// The last record was being written when the machine stopped: it was never answered.
    #[tokio::test]
    async fn a_torn_tail_is_cut_off_and_the_numbering_goes_on_after_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let (log, imports, thread) = open(dir.path(), 0, SEGMENT);
        for n in 0..3 {
            log.receive(&delivery(n)).await.unwrap();
        }
        let len = log.log.synced().end;
        stop(log, imports, thread);
        let segment = segment_path(dir.path(), 1);
        let file = OpenOptions::new().write(true).open(&segment).unwrap();
        file.set_len(len - 5).unwrap();
        drop(file);

        let (log, mut imports, thread) = open(dir.path(), 0, SEGMENT);
        let read = read_all(&mut imports);
        assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
        assert!(
            std::fs::metadata(&segment).unwrap().len() < len - 5,
            "cut off"
        );
        assert_eq!(log.receive(&delivery(9)).await.unwrap(), 3);
        let read = read_all(&mut imports);
        assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), [3]);
        assert_eq!(&read[0].delivery.body[..], b"{\"n\": 9}");
        stop(log, imports, thread);
    }

    #[tokio::test]
    async fn a_flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let (log, imports, thread) = open(dir.path(), 0, SEGMENT);
        for n in 0..2 {
            log.receive(&delivery(n)).await.unwrap();
        }
        let last = log.log.synced().end as usize - 2;
        stop(log, imports, thread);
        let segment = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[last] ^= 1;
        std::fs::write(&segment, bytes).unwrap();
        let (log, mut imports, thread) = open(dir.path(), 0, SEGMENT);
        assert_eq!(read_all(&mut imports).len(), 1);
        stop(log, imports, thread);
    }

    #[tokio::test]
    async fn after_a_restart_only_what_the_journal_lacks_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let (log, imports, thread) = open(dir.path(), 0, SEGMENT);
        for n in 0..5 {
            log.receive(&delivery(n)).await.unwrap();
        }
        stop(log, imports, thread);
        let (log, mut imports, thread) = open(dir.path(), 3, SEGMENT);
        let read = read_all(&mut imports);
        assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(log.receive(&delivery(5)).await.unwrap(), 6);
        stop(log, imports, thread);
    }

    /// A journal ahead of the log's last whole record (which was cut off) never sees a number
    /// again.
    #[tokio::test]
    async fn numbering_goes_on_after_the_journal_when_the_log_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open(dir.path(), 41, SEGMENT);
        assert!(read_all(&mut imports).is_empty());
        assert_eq!(log.receive(&delivery(0)).await.unwrap(), 42);
        assert_eq!(read_all(&mut imports)[0].seq, 42);
        stop(log, imports, thread);
    }

    #[tokio::test]
    async fn segments_roll_over_and_go_only_once_the_journal_holds_them_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        // Every record fills a segment.
        let (log, mut imports, thread) = open(dir.path(), 0, 64);
        for n in 0..4 {
            log.receive(&delivery(n)).await.unwrap();
        }
        assert_eq!(list_segments(dir.path()).unwrap(), [1, 2, 3, 4]);
        imports.next_record().unwrap().unwrap();
        imports.next_record().unwrap().unwrap();
        let mut synced = 0;
        imports
            .retire(false, || {
                synced += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(synced, 0, "nothing was imported yet");
        assert_eq!(list_segments(dir.path()).unwrap(), [1, 2, 3, 4]);
        imports.imported();
        imports
            .retire(false, || {
                synced += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(synced, 1, "the journal was synced first");
        assert_eq!(list_segments(dir.path()).unwrap(), [3, 4]);
        assert_eq!(read_all(&mut imports).len(), 2);
        imports.imported();
        imports.retire(true, || Ok(())).unwrap();
        assert!(list_segments(dir.path()).unwrap().is_empty());
        stop(log, imports, thread);
    }

    #[tokio::test]
    async fn an_import_that_failed_reads_the_same_records_again() {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open(dir.path(), 0, 64);
        for n in 0..3 {
            log.receive(&delivery(n)).await.unwrap();
        }
        imports.next_record().unwrap().unwrap();
        imports.imported();
        assert_eq!(read_all(&mut imports).len(), 2);
        imports.rewind();
        let again = read_all(&mut imports);
        assert_eq!(again.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
        stop(log, imports, thread);
    }

    #[tokio::test]
    async fn once_the_store_has_failed_nothing_is_received() {
        let dir = tempfile::tempdir().unwrap();
        let failed = Failed::default();
        let (log, mut imports, thread) =
            ReceiptLog::open_with(dir.path(), 0, || {}, failed.clone(), SEGMENT).unwrap();
        failed.set("EIO");
        let refused = log.receive(&delivery(0)).await.unwrap_err();
        assert!(refused.to_string().contains("restarted"), "{refused}");
        assert!(read_all(&mut imports).is_empty());
        stop(log, imports, thread);
    }

    /// A full disk: the records of a write that failed are lost, none of them answered, and the
    /// next write takes their place.
    #[test]
    fn a_write_that_failed_loses_only_its_records_and_the_next_takes_their_place() {
        both_ways(a_write_that_failed_loses_only_its_records_and_the_next_takes_their_place_with);
    }

    fn a_write_that_failed_loses_only_its_records_and_the_next_takes_their_place_with(
        direct_io: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open_as(dir.path(), SEGMENT, direct_io);
        log.log.append(Frame::of(&delivery(1)).unwrap()).unwrap();
        let path = segment_path(dir.path(), 1);
        let writable = {
            let mut tail = log.log.tail();
            let current = tail.current.as_mut().unwrap();
            // Handles that cannot write stand for the disk that cannot.
            let unwritable = || Arc::new(File::open(&path).unwrap());
            let direct = current.direct.as_ref().map(|_| unwritable());
            (
                std::mem::replace(&mut current.file, unwritable()),
                std::mem::replace(&mut current.direct, direct),
            )
        };
        assert!(matches!(log.log.sync(), Err(SyncFailure::Unwritten(_))));
        assert!(!imports.waiting());
        if let Some(current) = log.log.tail().current.as_mut() {
            (current.file, current.direct) = writable;
        }
        log.log.append(Frame::of(&delivery(2)).unwrap()).unwrap();
        log.log.sync().unwrap();
        let read = read_all(&mut imports);
        assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), [2]);
        assert_eq!(&read[0].delivery.body[..], b"{\"n\": 2}");
        stop(log, imports, thread);
        let (log, mut imports, thread) = open(dir.path(), 0, SEGMENT);
        assert_eq!(read_all(&mut imports).len(), 1, "after a restart too");
        stop(log, imports, thread);
    }

    fn wait_for_spare(log: &ReceiptLog) {
        let ready = std::time::Instant::now();
        while !matches!(*log.log.spares.spare.0.lock().unwrap(), Spare::Ready(_)) {
            assert!(ready.elapsed().as_secs() < 10, "no spare was prepared");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn segments_are_zero_filled_ahead_and_end_at_their_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open(dir.path(), 0, SEGMENT);
        wait_for_spare(&log);
        log.log.append(Frame::of(&delivery(1)).unwrap()).unwrap();
        log.log.sync().unwrap();
        let segment = segment_path(dir.path(), 1);
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), SEGMENT);
        assert_eq!(read_all(&mut imports).len(), 1);
        stop(log, imports, thread);
        let (log, mut imports, thread) = open(dir.path(), 0, SEGMENT);
        assert_eq!(read_all(&mut imports).len(), 1);
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            SEGMENT,
            "the zeros are no torn record"
        );
        stop(log, imports, thread);
    }

    /// Direct I/O for whole pages (on this filesystem), the page cache otherwise: the same file.
    #[test]
    fn a_spare_holds_the_magic_then_zeros_made_either_way() {
        let dir = tempfile::tempdir().unwrap();
        for size in [3 * PAGE + (1 << 20), 3 * PAGE + 100] {
            let path = dir.path().join(format!("spare-{size}"));
            std::fs::write(&path, vec![0xAB; size as usize + 10]).unwrap();
            assert_eq!(direct_writer(&path, size).is_some(), size % PAGE == 0);
            drop(zero_filled(&path, size).unwrap());
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.len() as u64, size);
            assert_eq!(&bytes[..MAGIC.len()], MAGIC);
            assert!(bytes[MAGIC.len()..].iter().all(|b| *b == 0));
        }
    }

    #[test]
    fn a_sync_of_more_records_than_one_system_call_takes_writes_them_all_in_order() {
        both_ways(a_sync_of_more_records_than_one_system_call_takes_writes_them_all_in_order_with);
    }

    fn a_sync_of_more_records_than_one_system_call_takes_writes_them_all_in_order_with(
        direct_io: bool,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open_as(dir.path(), SEGMENT, direct_io);
        let count = 2 * IOV_MAX as u32 + 10;
        for n in 1..=count {
            log.log.append(Frame::of(&delivery(n)).unwrap()).unwrap();
        }
        log.log.sync().unwrap();
        let read = read_all(&mut imports);
        assert_eq!(read.len(), count as usize);
        for (n, record) in (1..=count).zip(&read) {
            assert_eq!(record.seq, u64::from(n));
            assert_eq!(record.delivery.body, format!("{{\"n\": {n}}}").as_bytes());
        }
        stop(log, imports, thread);
    }

    /// A write ends at a page's end: past the end mark it zeroes the rest of its last page, over
    /// whatever an earlier use of the file left there, and nothing beyond.
    #[test]
    fn a_write_zeroes_the_rest_of_its_last_page() {
        both_ways(a_write_zeroes_the_rest_of_its_last_page_with);
    }

    fn a_write_zeroes_the_rest_of_its_last_page_with(direct_io: bool) {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open_as(dir.path(), SEGMENT, direct_io);
        wait_for_spare(&log);
        let page = PAGE as usize;
        let spare = dir.path().join("spare");
        let earlier = vec![0xAB; 2 * page - MAGIC.len()];
        OpenOptions::new()
            .write(true)
            .open(&spare)
            .unwrap()
            .write_all_at(&earlier, MAGIC.len() as u64)
            .unwrap();
        log.log.append(Frame::of(&delivery(1)).unwrap()).unwrap();
        log.log.sync().unwrap();
        let bytes = std::fs::read(segment_path(dir.path(), 1)).unwrap();
        let end = log.log.synced().end as usize;
        assert!(end < page);
        assert!(
            bytes[end..page].iter().all(|b| *b == 0),
            "zeroed to the page's end"
        );
        assert!(
            bytes[page..2 * page].iter().all(|b| *b == 0xAB),
            "and no further"
        );
        assert_eq!(read_all(&mut imports).len(), 1);
        stop(log, imports, thread);
    }

    #[test]
    fn the_head_of_a_direct_write_is_what_its_page_held_before_the_records() {
        let records = [b"abc".to_vec(), b"defg".to_vec()];
        assert_eq!(tail_of(b"12345", &records, 0), b"");
        assert_eq!(tail_of(b"12345", &records, 3), b"efg");
        assert_eq!(tail_of(b"12345", &records, 6), b"bcdefg");
        assert_eq!(tail_of(b"12345", &records, 9), b"45abcdefg");
        assert_eq!(tail_of(b"", &records, 7), b"abcdefg");
    }

    /// Syncs that end within a page, on a page's end, and across the direct writes' pieces: every
    /// record reads back, after a restart too, whichever way the segments were written.
    #[test]
    fn records_of_every_size_synced_in_every_grouping_read_back_in_order() {
        both_ways(records_of_every_size_synced_in_every_grouping_read_back_in_order_with);
    }

    fn records_of_every_size_synced_in_every_grouping_read_back_in_order_with(direct_io: bool) {
        const LARGE: u64 = 16 << 20;
        let dir = tempfile::tempdir().unwrap();
        let (log, mut imports, thread) = open_as(dir.path(), LARGE, direct_io);
        wait_for_spare(&log);
        let sizes = [1, 4000, 4096, 10, 8191, 300 << 10, 0, 2];
        let mut lengths = Vec::new();
        let mut n = 0;
        for round in 0..30usize {
            for size in sizes.iter().cycle().skip(round).take(1 + round % 5) {
                n += 1;
                log.log
                    .append(Frame::of(&with_body(n, *size)).unwrap())
                    .unwrap();
                lengths.push(*size);
            }
            log.log.sync().unwrap();
        }
        // One sync larger than a direct write's piece.
        for _ in 0..20 {
            n += 1;
            log.log
                .append(Frame::of(&with_body(n, 300 << 10)).unwrap())
                .unwrap();
            lengths.push(300 << 10);
        }
        log.log.sync().unwrap();
        let uses_direct_io = log.log.tail().current.as_ref().unwrap().direct.is_some();
        assert_eq!(uses_direct_io, direct_io && direct_io_here(dir.path()));
        let check = |read: Vec<Received>| {
            assert_eq!(read.len(), lengths.len());
            for ((seq, len), record) in (1..).zip(&lengths).zip(&read) {
                assert_eq!(record.seq, seq);
                assert_eq!(record.delivery.body.len(), *len);
            }
        };
        check(read_all(&mut imports));
        stop(log, imports, thread);
        let (log, mut imports, thread) = open(dir.path(), 0, LARGE);
        check(read_all(&mut imports));
        stop(log, imports, thread);
    }

    /// Whether the filesystem of `dir` takes direct I/O.
    fn direct_io_here(dir: &Path) -> bool {
        let probe = dir.join("probe");
        std::fs::write(&probe, [0; PAGE as usize]).unwrap();
        let here = direct_writer(&probe, PAGE).is_some();
        std::fs::remove_file(probe).unwrap();
        here
    }

    fn with_body(n: u32, len: usize) -> NewDelivery {
        NewDelivery {
            body: Bytes::from(vec![b'x'; len]),
            ..delivery(n)
        }
    }

    fn recycled(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("recycled".as_ref()))
            .count()
    }

    #[tokio::test]
    async fn recycled_segments_are_read_only_for_what_was_written_since() {
        let tmp = tempfile::tempdir().unwrap();
        let (database, dir) = (tmp.path().join("rollcall.db"), tmp.path().join(DIRECTORY));
        // Every record fills a segment; the first seven are long.
        let (log, mut imports, thread) = open(&dir, 0, 64);
        for n in 1..=7 {
            log.receive(&with_body(n, 2000)).await.unwrap();
        }
        assert_eq!(read_all(&mut imports).len(), 7);
        imports.imported();
        imports.retire(false, || Ok(())).unwrap();
        assert_eq!(list_segments(&dir).unwrap(), [7]);
        assert_eq!(
            recycled(&dir),
            KEEP_RECYCLED,
            "six retired, the rest deleted"
        );

        for n in 8..=10 {
            log.receive(&with_body(n, 10)).await.unwrap();
        }
        assert_eq!(list_segments(&dir).unwrap(), [7, 8, 9, 10]);
        assert_eq!(recycled(&dir), KEEP_RECYCLED - 3);
        let size = std::fs::metadata(segment_path(&dir, 10)).unwrap().len();
        assert!(
            size > 2000,
            "a recycled segment, long records behind the short one"
        );
        let read = read_all(&mut imports);
        assert_eq!(read.iter().map(|r| r.seq).collect::<Vec<_>>(), [8, 9, 10]);
        assert!(read.iter().all(|r| r.delivery.body.len() == 10));
        stop(log, imports, thread);

        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE receipt_log(id, imported); INSERT INTO receipt_log VALUES (1, 7);",
        )
        .unwrap();
        assert_eq!(unimported(&conn, &database).unwrap(), 3);
        let (log, mut imports, thread) = open(&dir, 7, 64);
        assert_eq!(
            recycled(&dir),
            0,
            "a start deletes those an earlier run kept"
        );
        assert_eq!(
            std::fs::metadata(segment_path(&dir, 10)).unwrap().len(),
            size,
            "the earlier records are no torn tail"
        );
        let again = read_all(&mut imports);
        assert_eq!(again.iter().map(|r| r.seq).collect::<Vec<_>>(), [8, 9, 10]);
        stop(log, imports, thread);
    }

    /// A recycled segment started, and the machine stopped before its first sync.
    #[tokio::test]
    async fn a_segment_holding_only_an_earlier_use_of_its_file_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (log, imports, thread) = open(dir.path(), 0, 64);
        for n in 1..=2 {
            log.receive(&delivery(n)).await.unwrap();
        }
        stop(log, imports, thread);
        std::fs::rename(segment_path(dir.path(), 2), segment_path(dir.path(), 3)).unwrap();
        let (log, mut imports, thread) = open(dir.path(), 2, 64);
        assert_eq!(
            list_segments(dir.path()).unwrap(),
            [1],
            "no record: removed"
        );
        assert!(read_all(&mut imports).is_empty());
        assert_eq!(
            log.receive(&delivery(3)).await.unwrap(),
            3,
            "numbered on after the journal"
        );
        stop(log, imports, thread);
    }

    #[test]
    fn a_segment_torn_before_its_first_record_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(segment_path(dir.path(), 5), &MAGIC[..3]).unwrap();
        let (log, mut imports, thread) = open(dir.path(), 4, SEGMENT);
        assert!(list_segments(dir.path()).unwrap().is_empty());
        assert!(read_all(&mut imports).is_empty());
        stop(log, imports, thread);
    }
}
