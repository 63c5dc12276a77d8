//! The `facts` table's rows: the row each projected fact is stored as ([`FactRow`]), written
//! as it comes, or, in a rebuild, compared with the row a carried-over table already holds.
//!
//! A reindex copies the `facts` table into its fresh file with the journal, as it is (SQLite
//! appends each row and index entry in order), then makes each delivery's rows exactly the
//! ones today's parsers give: a delivery whose rows differ is written again, and the rows of
//! deliveries no longer projected are removed ([`Carried`]). Writing all 1,800,000 rows of the
//! benchmark's 1,000,000 deliveries again and building their three indexes was a quarter of a
//! reindex; after a parser fix, only the deliveries it changes are written.
//!
//! It folds nothing and decides nothing: each row says what its fact says.

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};

use super::{timeline_position, Keys, Version};
use crate::facts::Fact;
use crate::store::Result;

/// One fact's row, but for the delivery it belongs to.
pub(super) struct FactRow<'a> {
    ordinal: u32,
    kind: &'static str,
    webinar: &'a str,
    session: Option<&'a str>,
    person: Option<&'a str>,
    at: Option<String>,
    basis: Option<String>,
    version: String,
    body: String,
}

impl<'a> FactRow<'a> {
    /// The row of the delivery's fact at `ordinal`, whose keys are `keys`.
    pub fn new(ordinal: u32, fact: &Fact, keys: &'a Keys, version: Version) -> Result<Self> {
        let (at, basis) = timeline_position(fact);
        Ok(FactRow {
            ordinal,
            kind: fact.kind(),
            webinar: &keys.webinar,
            session: keys.session.as_deref(),
            person: keys.person.as_deref(),
            at,
            basis,
            version: serde_json::to_string(&version)?,
            body: serde_json::to_string(fact)?,
        })
    }

    fn insert(&self, conn: &Connection, delivery_id: i64) -> Result<()> {
        conn.prepare_cached(
            "INSERT INTO facts (delivery_id, ordinal, kind, webinar_uid, session_uid, person_uid,
                at, at_basis, version, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            delivery_id,
            self.ordinal,
            self.kind,
            self.webinar,
            self.session,
            self.person,
            self.at,
            self.basis,
            self.version,
            self.body,
        ])?;
        Ok(())
    }

    /// Whether a row of [`STORED`] holds exactly this row, compared where it lies.
    fn is_stored_as(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<bool> {
        // `Some(None)` for NULL, `Some(Some(text))` for text, `None` for anything else, which
        // no row of ours holds: it matches nothing.
        let text = |index: usize| -> rusqlite::Result<Option<Option<&str>>> {
            Ok(match row.get_ref(index)? {
                ValueRef::Null => Some(None),
                ValueRef::Text(text) => std::str::from_utf8(text).ok().map(Some),
                _ => None,
            })
        };
        let ordinal = row.get_ref(0)?;
        Ok(ordinal == ValueRef::Integer(i64::from(self.ordinal))
            && text(1)? == Some(Some(self.kind))
            && text(2)? == Some(Some(self.webinar))
            && text(3)? == Some(self.session)
            && text(4)? == Some(self.person)
            && text(5)? == Some(self.at.as_deref())
            && text(6)? == Some(self.basis.as_deref())
            && text(7)? == Some(Some(self.version.as_str()))
            && text(8)? == Some(Some(self.body.as_str())))
    }
}

/// A delivery's stored rows, in the order of [`FactRow::is_stored_as`]'s columns.
const STORED: &str = "SELECT ordinal, kind, webinar_uid, session_uid, person_uid, at, at_basis,
        version, body
    FROM facts WHERE delivery_id = ?1 ORDER BY ordinal";

/// Where a delivery's rows go.
pub(super) enum FactsOut {
    /// Into the table, which holds none of the delivery's rows.
    Insert,
    /// Over a table carried over from before a rebuild.
    Reconcile(Carried),
}

impl FactsOut {
    pub fn write(&mut self, conn: &Connection, delivery_id: i64, rows: &[FactRow]) -> Result<()> {
        match self {
            FactsOut::Insert => rows
                .iter()
                .try_for_each(|row| row.insert(conn, delivery_id)),
            FactsOut::Reconcile(carried) => carried.reconcile(conn, delivery_id, rows),
        }
    }

    /// Removes what a carried-over table still holds after the last delivery projected, and
    /// gives the statements of the table's indexes it dropped, to be built again.
    pub fn finish(self, conn: &Connection) -> Result<Vec<String>> {
        match self {
            FactsOut::Insert => Ok(Vec::new()),
            FactsOut::Reconcile(mut carried) => {
                carried.removed += conn
                    .prepare_cached("DELETE FROM facts WHERE delivery_id > ?1")?
                    .execute([carried.done])?;
                tracing::info!(
                    kept = carried.kept,
                    written_again = carried.written,
                    rows_removed = carried.removed,
                    "made the facts right, delivery by delivery"
                );
                Ok(match carried.indexes {
                    Indexes::Dropped(statements) => statements,
                    Indexes::Kept(_) => Vec::new(),
                })
            }
        }
    }
}

/// A facts table carried over from before a rebuild, made right delivery by delivery, in
/// increasing order of delivery id. `done` is the last delivery made right; the counts are
/// for the log.
pub(super) struct Carried {
    done: i64,
    kept: usize,
    written: usize,
    removed: usize,
    indexes: Indexes,
}

/// The table's secondary indexes: kept up while few deliveries are written again, dropped
/// (and built again at the end) once many are. With every delivery written again, keeping
/// them up made a reindex 14 % slower than writing the table from scratch.
enum Indexes {
    /// Each index's name and statement.
    Kept(Vec<(String, String)>),
    Dropped(Vec<String>),
}

/// Deliveries seen before the share written again decides on the indexes.
const INDEX_SAMPLE: usize = 10_000;

impl Carried {
    /// Starts on a carried-over table whose secondary indexes are `indexes` (name, statement).
    pub fn new(indexes: Vec<(String, String)>) -> Carried {
        Carried {
            done: 0,
            kept: 0,
            written: 0,
            removed: 0,
            indexes: Indexes::Kept(indexes),
        }
    }

    /// Makes the delivery's rows exactly `rows`, after removing those of the deliveries since
    /// the last one (they are not projected any more: quarantined, ignored, duplicates).
    fn reconcile(&mut self, conn: &Connection, delivery_id: i64, rows: &[FactRow]) -> Result<()> {
        self.remove_between(conn, delivery_id)?;
        if Self::holds(conn, delivery_id, rows)? {
            self.kept += 1;
        } else {
            self.removed += conn
                .prepare_cached("DELETE FROM facts WHERE delivery_id = ?1")?
                .execute([delivery_id])?;
            for row in rows {
                row.insert(conn, delivery_id)?;
            }
            self.written += 1;
        }
        self.done = delivery_id;
        self.drop_indexes_if_many_written(conn)
    }

    /// Drops the indexes once a quarter of the deliveries seen (after [`INDEX_SAMPLE`]) were
    /// written again.
    fn drop_indexes_if_many_written(&mut self, conn: &Connection) -> Result<()> {
        let seen = self.kept + self.written;
        let Indexes::Kept(indexes) = &mut self.indexes else {
            return Ok(());
        };
        if seen < INDEX_SAMPLE || self.written * 4 < seen {
            return Ok(());
        }
        for (name, _) in indexes.iter() {
            conn.execute_batch(&format!("DROP INDEX \"{name}\""))?;
        }
        let statements = std::mem::take(indexes).into_iter().map(|(_, sql)| sql);
        self.indexes = Indexes::Dropped(statements.collect());
        Ok(())
    }

    /// Whether the table holds exactly `rows` for the delivery.
    fn holds(conn: &Connection, delivery_id: i64, rows: &[FactRow]) -> Result<bool> {
        let mut statement = conn.prepare_cached(STORED)?;
        let mut stored = statement.query([delivery_id])?;
        for row in rows {
            match stored.next()? {
                Some(stored) if row.is_stored_as(stored)? => {}
                _ => return Ok(false),
            }
        }
        Ok(stored.next()?.is_none())
    }

    /// Removes the rows of deliveries after the last one made right and before `until`.
    fn remove_between(&mut self, conn: &Connection, until: i64) -> Result<()> {
        // Most deliveries follow the one before: no statement for an empty range.
        if until > self.done.saturating_add(1) {
            self.removed += conn
                .prepare_cached("DELETE FROM facts WHERE delivery_id > ?1 AND delivery_id < ?2")?
                .execute([self.done, until])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(old_body: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE facts (delivery_id INTEGER NOT NULL, ordinal INTEGER NOT NULL,
                kind TEXT NOT NULL, webinar_uid TEXT NOT NULL, session_uid TEXT,
                person_uid TEXT, at TEXT, at_basis TEXT, version TEXT NOT NULL,
                body TEXT NOT NULL, PRIMARY KEY (delivery_id, ordinal)) WITHOUT ROWID;
             CREATE INDEX facts_webinar ON facts (webinar_uid, kind);",
        )
        .unwrap();
        for delivery in 1..=INDEX_SAMPLE as i64 {
            row(old_body).insert(&conn, delivery).unwrap();
        }
        conn
    }

    fn row(body: &str) -> FactRow<'static> {
        FactRow {
            ordinal: 0,
            kind: "webinar_seen",
            webinar: "tagmango:w",
            session: None,
            person: None,
            at: None,
            basis: None,
            version: "[0,0,0]".into(),
            body: body.into(),
        }
    }

    /// Makes every delivery's row the one with `body`, and says which index statements to
    /// build again and how many indexes the table has left.
    fn reconcile_all(conn: &Connection, body: &str) -> (Vec<String>, i64) {
        let indexes = super::super::secondary_indexes(conn, &["facts"]).unwrap();
        let mut out = FactsOut::Reconcile(Carried::new(indexes));
        for delivery in 1..=INDEX_SAMPLE as i64 {
            out.write(conn, delivery, &[row(body)]).unwrap();
        }
        let rebuild = out.finish(conn).unwrap();
        let left = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (rebuild, left)
    }

    #[test]
    fn the_indexes_are_kept_up_while_few_deliveries_are_written_again() {
        let conn = table("{}");
        assert_eq!(reconcile_all(&conn, "{}"), (Vec::new(), 1));
    }

    #[test]
    fn the_indexes_are_dropped_and_given_back_once_many_are() {
        let conn = table("{\"old\":1}");
        let (rebuild, left) = reconcile_all(&conn, "{}");
        assert_eq!(left, 0);
        assert_eq!(
            rebuild,
            ["CREATE INDEX facts_webinar ON facts (webinar_uid, kind)"]
        );
        let old: i64 = conn
            .query_row("SELECT count(*) FROM facts WHERE body <> '{}'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(old, 0);
    }
}
