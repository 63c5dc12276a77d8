//! Opening the database: the one place that sets PRAGMAs, runs migrations and refuses files it
//! must not touch (a newer schema, a foreign file). Read connections come from a small pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use include_dir::{include_dir, Dir};
use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{HookResult, Migrations, MigrationsBuilder};

use super::{Result, StoreError};

static MIGRATIONS_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/store/migrations");

/// The schema migrations, embedded from `store/migrations/*.sql` at build time.
pub fn migrations() -> Migrations<'static> {
    MigrationsBuilder::from_directory(&MIGRATIONS_DIR)
        .expect("migrations directory is well-formed")
        .edit(6, |m| m.set_up_hook(widen_status_check))
        .edit(12, |m| m.set_up_hook(fill_participants))
        .edit(18, |m| m.set_up_hook(status_check_as_comparisons))
        .finalize()
}

/// Migration 12: the participants summary (made in 11, stored by name since 12), computed from
/// the tables as they stand by the same code that rebuilds it after a reindex. Migration 11's
/// table is dropped by 12 unfilled or filled, so 11 needs no hook of its own.
///
/// The hook adds the summary's SQL function itself: migrations also run on connections that
/// `open_writer` did not configure (`validate`, tests migrating step by step).
fn fill_participants(tx: &rusqlite::Transaction) -> HookResult {
    super::projection::participants::register(tx)?;
    super::projection::participants::rebuild(tx)
        .map_err(|e| rusqlite_migration::HookError::Hook(e.to_string()))
}

/// Migration 6: lets `deliveries.status` be 'pending'. Every existing row stays valid, so the
/// table's SQL is edited in place and the schema cookie bumped, as SQLite documents for
/// loosening a constraint, instead of copying the whole journal into a new table.
fn widen_status_check(tx: &rusqlite::Transaction) -> HookResult {
    edit_deliveries_sql(
        tx,
        "CHECK (status IN ('projected',",
        "CHECK (status IN ('pending', 'projected',",
    )
}

/// Migration 18: the same constraint as comparisons, which SQLite checks without building a
/// temporary index for the IN list each time (see the migration).
fn status_check_as_comparisons(tx: &rusqlite::Transaction) -> HookResult {
    edit_deliveries_sql(
        tx,
        "CHECK (status IN ('pending', 'projected', 'duplicate', 'quarantined', 'ignored'))",
        concat!(
            "CHECK (status = 'pending' OR status = 'projected' OR status = 'duplicate' ",
            "OR status = 'quarantined' OR status = 'ignored')"
        ),
    )
}

/// Replaces `old` with `new` in the deliveries table's SQL, which must hold one of them once
/// (holding `new` already, it is left as it is); `new` may only allow what `old` allowed and
/// more, since no row is checked again.
fn edit_deliveries_sql(tx: &rusqlite::Transaction, old: &str, new: &str) -> HookResult {
    let done: bool = tx.query_row(
        "SELECT instr(sql, ?1) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'deliveries'",
        [new],
        |row| row.get(0),
    )?;
    if done {
        return Ok(());
    }
    let cookie: i64 = tx.pragma_query_value(None, "schema_version", |row| row.get(0))?;
    tx.pragma_update(None, "writable_schema", true)?;
    let edited = tx.execute(
        "UPDATE sqlite_schema SET sql = replace(sql, ?1, ?2)
         WHERE type = 'table' AND name = 'deliveries' AND instr(sql, ?1) > 0",
        [old, new],
    )?;
    tx.pragma_update(None, "schema_version", cookie + 1)?;
    tx.pragma_update(None, "writable_schema", false)?;
    if edited != 1 {
        return Err(rusqlite_migration::HookError::Hook(
            "the deliveries table does not have the expected status constraint".into(),
        ));
    }
    Ok(())
}

/// Settings for connections to one database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a write waits for a lock held by another process before giving up (then the
    /// sender gets a 503 and retries).
    pub busy_timeout: Duration,
    /// Caps the file size in pages; only tests set it, to make the disk "full".
    pub max_page_count: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_page_count: None,
        }
    }
}

/// Opens (creating if needed) the database for writing and brings its schema up to date.
pub fn open_writer(path: &Path, options: &StoreOptions) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let mut conn = Connection::open(path)?;
    check_is_ours(&conn, path)?;
    // Takes effect only when this creates the file (a reindex creates a fresh one); an
    // existing store keeps the page size it was made with.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    configure(&conn, options)?;
    migrate(&mut conn, path)?;
    if let Some(pages) = options.max_page_count {
        conn.pragma_update(
            None,
            "max_page_count",
            i64::try_from(pages).unwrap_or(i64::MAX),
        )?;
    }
    Ok(conn)
}

/// Opens an existing database for reading only.
pub fn open_read_only(path: &Path, options: &StoreOptions) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(options.busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", READER_CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn configure(conn: &Connection, options: &StoreOptions) -> Result<()> {
    conn.busy_timeout(options.busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a delivery acknowledged with 200 survives power loss, not only a crash. Group
    // commit makes the extra fsync per batch, not per delivery.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // A page cache big enough for the hot index pages of a large store: with SQLite's 2 MiB
    // default, a batch (or a reindex) rereads and respills the same pages to the WAL.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    // rusqlite keeps 16 prepared statements by default; journal + projection use more than
    // that per delivery, so each was parsed again every time (a third of the writer's time).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    super::projection::participants::register(conn)?;
    // No `temp_store = MEMORY`: SQLite truncates an in-memory statement journal by walking it
    // from the start, so a 50,000-attendee delivery (one savepoint, many statements) went
    // quadratic (90 s instead of seconds).
    Ok(())
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;
/// Bytes per database page for a new store. At SQLite's 4,096, a `WITHOUT ROWID` row keeps at
/// most about 1,000 bytes in its page: on the 1,000,000-delivery benchmark store each of the
/// largest webinar's 100,000 registrations and registration facts took an overflow page of its
/// own, and `facts` and `registrations` were 68 % and 62 % full (1,294 and 909 MiB). At 8,192
/// nothing overflows, both are 92 % full (952 and 614 MiB), a reindex writes 3.60 GiB instead
/// of 4.25 and took 85-90 s instead of 93-101 s (three pairs).
const PAGE_SIZE: i64 = 8192;

/// Page cache of the writer, in KiB (negative: SQLite reads it as KiB, not pages).
const WRITER_CACHE_KIB: i64 = -32 * 1024;
/// Page cache of each reader, in KiB: reports on a large webinar read its index pages again
/// and again.
const READER_CACHE_KIB: i64 = -16 * 1024;
/// Page cache for a rebuild of every projected table, in KiB. The rebuild is one transaction:
/// pages that do not fit are spilled to the WAL and read back through its index, which was a
/// third of a 1,000,000-delivery rebuild's time with 256 MiB.
pub const REINDEX_CACHE_KIB: i64 = -1024 * 1024;

/// Refuses a file that is not SQLite, or an SQLite database some other program made.
fn check_is_ours(conn: &Connection, path: &Path) -> Result<()> {
    let foreign = |reason: String| StoreError::Foreign {
        path: path.to_owned(),
        reason,
    };
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .map_err(|e| foreign(e.to_string()))?;
    if !tables.is_empty() && !tables.iter().any(|t| t == "deliveries") {
        return Err(foreign(format!(
            "it has tables {} but no journal",
            tables.join(", ")
        )));
    }
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let migrations = migrations();
    let known = migrations_count();
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let found = usize::try_from(found).unwrap_or(usize::MAX);
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    migrations.to_latest(conn)?;
    Ok(())
}

fn migrations_count() -> usize {
    MIGRATIONS_DIR.dirs().count()
}

/// A few read-only connections, reused across requests. At most [`MAX_READERS`] are open: a
/// read beyond that waits for one to come back (reads are short) rather than opening another,
/// which costs a schema parse and an empty statement cache, and under a burst of webhooks
/// happened for most of them.
#[derive(Clone)]
pub struct ReadPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    path: PathBuf,
    options: StoreOptions,
    state: Mutex<PoolState>,
    returned: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Connection>,
    open: usize,
}

/// Read connections open at most.
const MAX_READERS: usize = 8;

impl ReadPool {
    pub fn new(path: &Path, options: StoreOptions) -> Self {
        let inner = PoolInner {
            path: path.to_owned(),
            options,
            state: Mutex::new(PoolState::default()),
            returned: Condvar::new(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Runs `read` on a pooled connection. Blocking: call from a blocking thread.
    pub fn with<T, E: From<StoreError>>(
        &self,
        read: impl FnOnce(&Connection) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let conn = self.take()?;
        let result = read(&conn);
        let mut state = self.lock();
        state.idle.push(conn);
        drop(state);
        self.inner.returned.notify_one();
        result
    }

    /// Runs `read` on an idle pooled connection if one is waiting, without opening one or
    /// waiting for one: for a short read on an async thread, where handing it to a blocking
    /// thread would cost more than the read. `None` when every connection is busy.
    pub fn with_idle<T>(&self, read: impl FnOnce(&Connection) -> T) -> Option<T> {
        let conn = self.lock().idle.pop()?;
        let result = read(&conn);
        self.lock().idle.push(conn);
        self.inner.returned.notify_one();
        Some(result)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self) -> Result<Connection> {
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(conn);
            }
            if state.open < MAX_READERS {
                state.open += 1;
                drop(state);
                let opened = open_read_only(&self.inner.path, &self.inner.options);
                if opened.is_err() {
                    self.lock().open -= 1;
                }
                return opened;
            }
            state = self
                .inner
                .returned
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn every_earlier_schema_version_migrates_to_the_latest() {
        let known = migrations_count();
        for version in 1..known {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db.sqlite3");
            let mut old = Connection::open(&path).unwrap();
            migrations().to_version(&mut old, version).unwrap();
            old.execute(
                "INSERT INTO sources (platform, label, token, token_sha256, time_zone, created_at)
                 VALUES ('tagmango', 'old', 't', 'h', 'UTC', '2024-01-01T00:00:00.000Z')",
                [],
            )
            .unwrap();
            drop(old);
            let conn = open_writer(&path, &StoreOptions::default()).unwrap();
            let now: i64 = conn
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .unwrap();
            assert_eq!(now as usize, known, "from version {version}");
            let kept: i64 = conn
                .query_row("SELECT count(*) FROM sources", [], |r| r.get(0))
                .unwrap();
            assert_eq!(kept, 1, "data written at version {version} survives");
            conn.query_row("SELECT count(*) FROM audience_registrants", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
        }
    }

    /// The reindex copies the journal with SQLite's transfer optimization only between tables
    /// alike, constraints included; and a journal migrated from the first version must check
    /// exactly what a new one does.
    #[test]
    fn a_migrated_journal_has_the_schema_of_a_new_one() {
        let schema = |conn: &Connection| -> Vec<(String, String)> {
            conn.prepare(
                "SELECT name, sql FROM sqlite_schema
                 WHERE tbl_name IN ('deliveries', 'source_last_delivery') ORDER BY name",
            )
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let fresh = open_writer(&dir.path().join("new.sqlite3"), &StoreOptions::default()).unwrap();
        let old = dir.path().join("old.sqlite3");
        migrations()
            .to_version(&mut Connection::open(&old).unwrap(), 1)
            .unwrap();
        let migrated = open_writer(&old, &StoreOptions::default()).unwrap();
        assert_eq!(schema(&migrated), schema(&fresh));
        let sql = &schema(&fresh)[0];
        assert_eq!(sql.0, "deliveries");
        assert!(
            sql.1.contains("status = 'pending' OR status = 'projected'"),
            "{}",
            sql.1
        );
    }

    /// An `IN (...)` list of more than two values in the CHECK made SQLite build a temporary
    /// index every time a delivery was journaled (migration 18).
    #[test]
    fn journaling_builds_no_temporary_index_and_still_refuses_an_unknown_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        drop(open_writer(&path, &StoreOptions::default()).unwrap());
        // A connection of its own: the one that migrated compiles with the schema it had
        // cached until its next transaction notices the change.
        let conn = Connection::open(&path).unwrap();
        let insert = "INSERT INTO deliveries (platform, received_at, via, headers, body,
                body_sha256, time_zone, identity, status)
             VALUES ('tagmango', '2026-01-01T00:00:00.000Z', 'webhook', '{}', x'00', 'h', 'UTC',
                'i', ?1)";
        let opcodes: Vec<String> = conn
            .prepare(&format!("EXPLAIN {insert}"))
            .unwrap()
            .query_map(["pending"], |row| row.get(1))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(opcodes.iter().any(|op| op == "Insert"), "{opcodes:?}");
        assert!(
            !opcodes.iter().any(|op| op == "OpenEphemeral"),
            "{opcodes:?}"
        );
        for status in [
            "pending",
            "projected",
            "duplicate",
            "quarantined",
            "ignored",
        ] {
            conn.execute(insert, [status]).unwrap();
        }
        let refused = conn.execute(insert, ["lost"]).unwrap_err();
        assert!(
            refused.to_string().contains("CHECK constraint failed"),
            "{refused}"
        );
    }

    #[test]
    fn migration_17_keeps_each_sources_last_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let mut old = Connection::open(&path).unwrap();
        migrations().to_version(&mut old, 16).unwrap();
        old.execute_batch(
            "INSERT INTO sources (id, platform, label, token, token_sha256, time_zone, created_at)
             VALUES (1, 'tagmango', 'a', 't1', 'h1', 'UTC', '2026-01-01T00:00:00.000Z'),
                    (2, 'bigmarker', 'b', 't2', 'h2', 'UTC', '2026-01-01T00:00:00.000Z'),
                    (3, 'livestorm', 'c', 't3', 'h3', 'UTC', '2026-01-01T00:00:00.000Z');
             INSERT INTO deliveries (platform, source_id, received_at, via, headers, body,
                body_sha256, time_zone, identity, status)
             VALUES ('tagmango', 1, '2026-01-02T00:00:00.000Z', 'webhook', '{}', x'', 'h', 'UTC', 'a', 'pending'),
                    ('tagmango', 1, '2026-01-03T00:00:00.000Z', 'webhook', '{}', x'', 'h', 'UTC', 'b', 'projected'),
                    ('tagmango', 1, '2026-01-01T12:00:00.000Z', 'import', '{}', x'', 'h', 'UTC', 'c', 'projected'),
                    ('bigmarker', 2, '2026-01-05T00:00:00.000Z', 'webhook', '{}', x'', 'h', 'UTC', 'd', 'quarantined'),
                    ('bigmarker', NULL, '2026-01-09T00:00:00.000Z', 'import', '{}', x'', 'h', 'UTC', 'e', 'projected');",
        )
        .unwrap();
        drop(old);
        let conn = open_writer(&path, &StoreOptions::default()).unwrap();
        let last = |source| super::super::subscriptions::last_delivery(&conn, source).unwrap();
        assert_eq!(last(1).as_deref(), Some("2026-01-03T00:00:00.000Z"));
        assert_eq!(last(2).as_deref(), Some("2026-01-05T00:00:00.000Z"));
        assert_eq!(last(3), None, "a source that never received anything");
    }

    #[test]
    fn a_new_store_gets_the_page_size_and_an_existing_one_keeps_its_own() {
        let page_size = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "page_size", |row| row.get(0))
                .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.sqlite3");
        assert_eq!(
            page_size(&open_writer(&new, &StoreOptions::default()).unwrap()),
            PAGE_SIZE
        );
        let old = dir.path().join("old.sqlite3");
        let mut conn = Connection::open(&old).unwrap();
        conn.pragma_update(None, "page_size", 4096).unwrap();
        migrations().to_version(&mut conn, 3).unwrap();
        drop(conn);
        let conn = open_writer(&old, &StoreOptions::default()).unwrap();
        assert_eq!(page_size(&conn), 4096);
        conn.query_row("SELECT count(*) FROM participants", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    }

    #[test]
    fn refuses_a_newer_schema_and_a_foreign_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        drop(open_writer(&path, &StoreOptions::default()).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = open_writer(&path, &StoreOptions::default()).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");

        let foreign = dir.path().join("foreign.sqlite3");
        Connection::open(&foreign)
            .unwrap()
            .execute("CREATE TABLE notes (x)", [])
            .unwrap();
        let err = open_writer(&foreign, &StoreOptions::default()).unwrap_err();
        assert!(err.to_string().contains("not a Rollcall database"), "{err}");
    }

    #[test]
    fn refuses_a_file_that_is_not_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        std::fs::write(
            &path,
            b"this is a text file, not a database at all, honestly",
        )
        .unwrap();
        let err = open_writer(&path, &StoreOptions::default()).unwrap_err();
        assert!(err.to_string().contains("not a Rollcall database"), "{err}");
        assert!(std::fs::read(&path)
            .unwrap()
            .starts_with(b"this is a text file"));
    }
}
