//! Reports kept in memory while the projection they were computed from is current. A
//! 100,000-person webinar's report or timeline takes about a second to compute and a few
//! kilobytes to keep; the dashboard asks for it again on every visit and every live refresh.
//!
//! An entry is keyed by what was asked (report, webinar, session, zone) and stamped with the
//! projection's revision, which every write to the projected tables increases in its own
//! transaction. A request reads the revision and computes in one read transaction, so an entry
//! always holds what its revision's tables say. The memo keeps responses ready to send; it
//! never decides what a report contains and never writes the store.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use rusqlite::Connection;

use super::Result;
use crate::store::projection;

/// Bytes kept at most, over all entries. A timeline of the largest webinar is about 220 KB.
const MAX_BYTES: usize = 16 << 20;

#[derive(Default)]
pub struct Memo {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    revision: i64,
    responses: HashMap<String, Bytes>,
    bytes: usize,
}

impl Memo {
    /// The response kept for `key` at the current revision, or `compute`d now (in the same
    /// read transaction as the revision it is kept under) and kept.
    pub fn get_or_compute(
        &self,
        conn: &Connection,
        key: String,
        compute: impl FnOnce(&Connection) -> Result<Vec<u8>>,
    ) -> Result<Bytes> {
        let tx = conn.unchecked_transaction()?;
        let revision = projection::revision(&tx)?;
        if let Some(kept) = self.kept(revision, &key) {
            return Ok(kept);
        }
        let response = Bytes::from(compute(&tx)?);
        tx.finish()?;
        self.keep(revision, key, response.clone());
        Ok(response)
    }

    fn kept(&self, revision: i64, key: &str) -> Option<Bytes> {
        let entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (entries.revision == revision)
            .then(|| entries.responses.get(key).cloned())
            .flatten()
    }

    fn keep(&self, revision: i64, key: String, response: Bytes) {
        let mut entries = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if revision < entries.revision || response.len() > MAX_BYTES / 4 {
            return;
        }
        if revision > entries.revision {
            *entries = Entries {
                revision,
                ..Entries::default()
            };
        }
        while entries.bytes + response.len() > MAX_BYTES {
            let Some(victim) = entries.responses.keys().next().cloned() else {
                break;
            };
            if let Some(gone) = entries.responses.remove(&victim) {
                entries.bytes -= gone.len();
            }
        }
        entries.bytes += response.len();
        if let Some(replaced) = entries.responses.insert(key, response) {
            entries.bytes -= replaced.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memo.sqlite3");
        let conn = crate::store::open_writer(&path, &Default::default()).unwrap();
        (dir, conn)
    }

    fn bump(conn: &Connection) {
        conn.execute("UPDATE projection_revision SET revision = revision + 1", [])
            .unwrap();
    }

    #[test]
    fn a_kept_response_is_served_until_the_revision_changes() {
        let (_dir, conn) = store();
        let memo = Memo::default();
        let mut computed = 0;
        let mut ask = |conn: &Connection| {
            memo.get_or_compute(conn, "report".into(), |_| {
                computed += 1;
                Ok(format!("computed {computed}").into_bytes())
            })
            .unwrap()
        };
        assert_eq!(ask(&conn), "computed 1");
        assert_eq!(ask(&conn), "computed 1", "served from memory");
        bump(&conn);
        assert_eq!(
            ask(&conn),
            "computed 2",
            "a projection write invalidates it"
        );
        assert_eq!(ask(&conn), "computed 2");
    }

    #[test]
    fn an_older_revision_never_replaces_a_newer_one_and_errors_are_not_kept() {
        let memo = Memo::default();
        memo.keep(5, "a".into(), Bytes::from_static(b"new"));
        memo.keep(4, "a".into(), Bytes::from_static(b"old"));
        assert_eq!(memo.kept(5, "a").unwrap(), "new");
        assert!(memo.kept(4, "a").is_none());

        let (_dir, conn) = store();
        let failed = memo.get_or_compute(&conn, "b".into(), |_| {
            Err(crate::report::ReportError::UnknownWebinar("w".into()))
        });
        assert!(failed.is_err());
        let revision = projection::revision(&conn).unwrap();
        assert!(memo.kept(revision, "b").is_none());
    }

    #[test]
    fn memory_stays_bounded() {
        let memo = Memo::default();
        let big = Bytes::from(vec![b'x'; MAX_BYTES / 4]);
        for i in 0..20 {
            memo.keep(1, format!("k{i}"), big.clone());
        }
        let entries = memo.inner.lock().unwrap();
        assert!(entries.bytes <= MAX_BYTES, "{}", entries.bytes);
        assert_eq!(
            entries.bytes,
            entries.responses.values().map(Bytes::len).sum::<usize>()
        );
    }
}
