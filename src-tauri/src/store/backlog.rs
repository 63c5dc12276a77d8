//! The projection backlog: deliveries journaled and acknowledged but not yet folded into the
//! reports, in journal order. The writer thread projects from its front, in the same
//! transaction as the next batch when it has time and in slices of their own when idle; a
//! burst of webhooks is thus acknowledged at the speed of the journal and projected moments
//! later. After a crash the backlog is read back from the journal's `pending` rows.
//!
//! It also finds a waiting delivery by identity for the journal: waiting deliveries are not in
//! the identity index (migration 16), so duplicates of them are recognised from here.
//!
//! It owns no transaction and no thread: the writer decides when to commit.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::journal::{self, Containment, Prepared, Receipt, Status};
use super::Result;

/// Bodies kept in memory with their parse for projection, at most (the parse takes two to
/// three times the body's size); beyond it they are read back from the journal when their turn
/// comes, so a long burst cannot grow the process without bound.
const KEPT_BYTES: usize = 16 << 20;

struct Pending {
    id: i64,
    body_len: usize,
    identity: Arc<str>,
    /// The waiting delivery `by_identity` gave for this identity before this one came: a copy
    /// received earlier takes the original's place, and a rollback gives it back.
    replaced: Option<i64>,
    /// The parse done on arrival, when kept.
    prepared: Option<Arc<Prepared>>,
}

#[derive(Default)]
pub struct Backlog {
    pending: VecDeque<Pending>,
    /// The newest waiting delivery of each identity.
    by_identity: HashMap<Arc<str>, i64>,
    kept_bytes: usize,
    /// Entries added since the last commit, dropped again if that commit fails.
    uncommitted: usize,
    /// After a failure, projecting waits until then.
    retry_at: Option<Instant>,
    /// A delivery whose projection failed for a reason other than the store's condition, in a
    /// transaction rolled back since: it is projected again inside a savepoint, which
    /// quarantines it if it fails again. The others are projected without one.
    suspect: Option<i64>,
}

/// How much projecting one transaction may do.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop starting new deliveries after this (at least one is always projected, but for the
    /// suspect outside a guarded transaction).
    pub until: Instant,
    /// Whether the suspect may be projected: the transaction keeps SQLite's statement journal
    /// in a file (see `writer::choose_temp_store`).
    pub guarded: bool,
}

/// What a projection slice did.
#[derive(Debug, Default)]
pub struct Slice {
    /// Deliveries taken from the front of the backlog.
    pub taken: usize,
    /// The final status of each delivery projected.
    pub receipts: Vec<Receipt>,
    /// Webinars whose reports changed.
    pub webinars: Vec<String>,
}

const RECOVER: &str =
    "SELECT id, length(body), identity FROM deliveries WHERE status = 'pending' ORDER BY id";

impl Backlog {
    /// The deliveries a previous run journaled but did not project (an index lookup, no scan).
    pub fn recover(conn: &Connection) -> Result<Backlog> {
        let mut backlog = Backlog::default();
        let mut stmt = conn.prepare(RECOVER)?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
        })?;
        for row in rows {
            let (id, body_len, identity) = row?;
            let body_len = usize::try_from(body_len).unwrap_or(usize::MAX);
            backlog.add(id, body_len, identity.into(), None);
        }
        if !backlog.is_empty() {
            tracing::info!(
                deliveries = backlog.len(),
                "projecting deliveries journaled before the last stop"
            );
        }
        Ok(backlog)
    }

    /// Whether there is something to project and no failure to wait out.
    pub fn ready(&self) -> bool {
        !self.is_empty() && self.retry_at.is_none_or(|at| Instant::now() >= at)
    }

    /// Projecting failed: wait `delay` before trying again.
    pub fn pause(&mut self, delay: Duration) {
        self.retry_at = Some(Instant::now() + delay);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// The newest delivery waiting to be projected with this identity, if any.
    pub fn waiting_with(&self, identity: &str) -> Option<i64> {
        self.by_identity.get(identity).copied()
    }

    /// Adds a delivery journaled in the transaction under way.
    pub fn push(&mut self, id: i64, prepared: Arc<Prepared>) {
        let body_len = prepared.delivery.body.len();
        // The first is always kept: a lone large body is projected at once, not parsed twice.
        let keep = self.kept_bytes == 0 || self.kept_bytes + body_len <= KEPT_BYTES;
        if keep {
            self.kept_bytes += body_len;
        }
        let identity = prepared.identity.as_str().into();
        self.add(id, body_len, identity, keep.then_some(prepared));
        self.uncommitted += 1;
    }

    fn add(
        &mut self,
        id: i64,
        body_len: usize,
        identity: Arc<str>,
        prepared: Option<Arc<Prepared>>,
    ) {
        let replaced = self.by_identity.insert(identity.clone(), id);
        self.pending.push_back(Pending {
            id,
            body_len,
            identity,
            replaced,
            prepared,
        });
    }

    /// Whether the next delivery to project is the suspect.
    pub fn front_is_suspect(&self) -> bool {
        self.pending
            .front()
            .is_some_and(|p| Some(p.id) == self.suspect)
    }

    /// Projects from the front, inside the caller's transaction, until the budget is spent or
    /// `interrupted` says other work is waiting (at least one delivery either way). Nothing
    /// leaves the backlog until [`Backlog::committed`] says the transaction held. An error
    /// means the transaction must be rolled back: it may hold part of a delivery's projection.
    pub fn project(
        &mut self,
        conn: &Connection,
        budget: Budget,
        interrupted: impl Fn() -> bool,
    ) -> Result<Slice> {
        let mut slice = Slice::default();
        for pending in &self.pending {
            let stop = slice.taken > 0 && (Instant::now() >= budget.until || interrupted());
            let suspect = Some(pending.id) == self.suspect;
            if stop || (suspect && !budget.guarded) {
                break;
            }
            let containment = match suspect {
                true => Containment::Quarantine,
                false => Containment::RollBack,
            };
            if let Err(error) = project_one(conn, pending, containment, &mut slice) {
                if !error.is_transient() {
                    self.suspect = Some(pending.id);
                }
                return Err(error);
            }
            slice.taken += 1;
        }
        slice.webinars.sort();
        slice.webinars.dedup();
        Ok(slice)
    }

    /// The transaction committed: `taken` deliveries at the front are projected.
    pub fn committed(&mut self, taken: usize) {
        for pending in self.pending.drain(..taken.min(self.pending.len())) {
            if pending.prepared.is_some() {
                self.kept_bytes -= pending.body_len;
            }
            // Projected, its identity is in the index now. A newer copy keeps its own entry.
            if self.by_identity.get(&pending.identity) == Some(&pending.id) {
                self.by_identity.remove(&pending.identity);
            }
            if self.suspect == Some(pending.id) {
                self.suspect = None;
            }
        }
        self.uncommitted = 0;
    }

    /// The transaction rolled back: what it journaled does not exist, and nothing was projected.
    pub fn rolled_back(&mut self) {
        for _ in 0..self.uncommitted {
            if let Some(pending) = self.pending.pop_back() {
                if pending.prepared.is_some() {
                    self.kept_bytes -= pending.body_len;
                }
                match pending.replaced {
                    Some(earlier) => self.by_identity.insert(pending.identity, earlier),
                    None => self.by_identity.remove(&pending.identity),
                };
            }
        }
        self.uncommitted = 0;
    }
}

/// Projects one delivery of the backlog into `slice`; one whose body cannot be read back from
/// the journal is quarantined.
fn project_one(
    conn: &Connection,
    pending: &Pending,
    containment: Containment,
    slice: &mut Slice,
) -> Result<()> {
    let loaded;
    let prepared = match &pending.prepared {
        Some(prepared) => prepared.as_ref(),
        None => match journal::reparse(conn, pending.id) {
            Ok(prepared) => {
                loaded = prepared;
                &loaded
            }
            Err(error) if !error.is_transient() => {
                let detail = format!("could not be read back from the journal: {error}");
                journal::quarantine(conn, pending.id, &detail)?;
                slice.receipts.push(Receipt {
                    delivery: pending.id,
                    status: Status::Quarantined,
                });
                return Ok(());
            }
            Err(error) => return Err(error),
        },
    };
    if let Some(status) = journal::project_pending(conn, pending.id, prepared, containment)? {
        if status == Status::Projected {
            slice.webinars.extend(prepared.webinars());
        }
        slice.receipts.push(Receipt {
            delivery: pending.id,
            status,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Platform;
    use crate::store::journal::{NewDelivery, Via};
    use crate::store::{open_writer, StoreOptions};

    #[test]
    fn a_restart_finds_the_waiting_deliveries_through_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {RECOVER}"))
            .unwrap()
            .query_map([], |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(plan, ["SCAN deliveries USING INDEX deliveries_pending"]);
    }

    fn registrant(n: u32) -> Arc<Prepared> {
        let body = format!(
            r#"{{"name":"P{n}","email":"p{n}@example.com","webinar":"W","webinarId":"w1"}}"#
        );
        Arc::new(Prepared::new(NewDelivery {
            platform: Platform::Tagmango,
            source_id: None,
            trigger: Some("webinar.completed.all".into()),
            received_at: chrono::Utc::now(),
            via: Via::Webhook,
            content_type: Some("application/json".into()),
            headers: Default::default(),
            body: body.into_bytes().into(),
            time_zone: chrono_tz::UTC,
        }))
    }

    fn statuses(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT status FROM deliveries ORDER BY id")
            .unwrap();
        let rows = stmt.query_map([], |row| row.get(0)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn a_spent_budget_projects_one_delivery_and_the_rest_waits_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let mut backlog = Backlog::default();
        for n in 0..3 {
            let prepared = registrant(n);
            let receipt = journal::append(&conn, &prepared).unwrap();
            assert_eq!(receipt.status, Status::Pending);
            backlog.push(receipt.delivery, prepared);
        }
        let spent = Budget {
            until: Instant::now(),
            guarded: false,
        };
        let slice = backlog.project(&conn, spent, || false).unwrap();
        assert_eq!(slice.taken, 1);
        assert_eq!(slice.webinars, vec!["tagmango:w1".to_owned()]);
        backlog.committed(slice.taken);
        assert_eq!(statuses(&conn), ["projected", "pending", "pending"]);

        // After a crash, the journal alone says what is left.
        let mut recovered = Backlog::recover(&conn).unwrap();
        assert_eq!(recovered.len(), 2);
        let ample = Budget {
            until: Instant::now() + Duration::from_secs(60),
            guarded: false,
        };
        // Other work waiting interrupts a slice after one delivery, whatever the budget.
        let slice = recovered.project(&conn, ample, || true).unwrap();
        assert_eq!(slice.taken, 1);
        recovered.committed(slice.taken);
        let slice = recovered.project(&conn, ample, || false).unwrap();
        assert_eq!(slice.taken, 1);
        recovered.committed(slice.taken);
        assert!(recovered.is_empty());
        assert_eq!(statuses(&conn), ["projected", "projected", "projected"]);
    }

    /// Makes the projection of `p{n}@example.com`'s attendance fail, after the delivery's
    /// facts, webinar and person are written: a defect, not the store's condition.
    fn break_projection_of(conn: &Connection, n: u32) {
        conn.execute_batch(&format!(
            "CREATE TRIGGER defect BEFORE INSERT ON attendance
             WHEN NEW.person_uid = 'p{n}@example.com'
             BEGIN SELECT RAISE(ABORT, 'an injected defect'); END"
        ))
        .unwrap();
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    #[test]
    fn a_projection_failing_part_way_rolls_back_then_quarantines_its_delivery_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        break_projection_of(&conn, 1);
        let mut backlog = Backlog::default();
        for n in 0..3 {
            let prepared = registrant(n);
            let receipt = journal::append(&conn, &prepared).unwrap();
            backlog.push(receipt.delivery, prepared);
        }
        backlog.committed(0);
        let ample = |guarded| Budget {
            until: Instant::now() + Duration::from_secs(60),
            guarded,
        };

        // Without a savepoint the failure leaves writes behind: the caller rolls back.
        let tx = conn.transaction().unwrap();
        let error = backlog.project(&tx, ample(false), || false).unwrap_err();
        assert!(error.to_string().contains("an injected defect"), "{error}");
        let left = "SELECT count(*) FROM facts WHERE delivery_id = 2";
        assert!(
            count(&tx, left) > 0,
            "the failed projection wrote part of itself"
        );
        drop(tx);
        backlog.rolled_back();
        assert_eq!(statuses(&conn), ["pending", "pending", "pending"]);
        assert_eq!(count(&conn, "SELECT count(*) FROM facts"), 0);

        // The deliveries before the suspect go on without it...
        assert!(!backlog.front_is_suspect());
        let tx = conn.transaction().unwrap();
        let slice = backlog.project(&tx, ample(false), || false).unwrap();
        tx.commit().unwrap();
        backlog.committed(slice.taken);
        assert_eq!(slice.taken, 1);

        // ...and it is projected again inside a savepoint, which quarantines it alone.
        assert!(backlog.front_is_suspect());
        let tx = conn.transaction().unwrap();
        let slice = backlog.project(&tx, ample(true), || false).unwrap();
        tx.commit().unwrap();
        backlog.committed(slice.taken);
        assert!(backlog.is_empty() && backlog.suspect.is_none());
        assert_eq!(statuses(&conn), ["projected", "quarantined", "projected"]);
        let detail: String = conn
            .query_row("SELECT detail FROM deliveries WHERE id = 2", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert!(
            detail.starts_with("understood, but could not be projected")
                && detail.contains("an injected defect"),
            "{detail}"
        );
        assert_eq!(
            count(&conn, "SELECT count(*) FROM facts WHERE delivery_id = 2"),
            0
        );
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM people WHERE uid = 'p1@example.com'"
            ),
            0
        );
        assert_eq!(count(&conn, "SELECT count(*) FROM attendance"), 2);
    }

    #[test]
    fn a_delivery_that_became_a_duplicate_while_waiting_is_not_projected() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let mut backlog = Backlog::default();
        let later = registrant(1);
        let receipt = journal::append(&conn, &later).unwrap();
        backlog.push(receipt.delivery, later.clone());
        // The same body received earlier: it becomes the original, the waiting one a duplicate.
        let mut earlier = (*later).clone();
        earlier.delivery.received_at -= chrono::Duration::seconds(5);
        let original = journal::append(&conn, &earlier).unwrap();
        backlog.push(original.delivery, Arc::new(earlier));
        let ample = Budget {
            until: Instant::now() + Duration::from_secs(60),
            guarded: false,
        };
        let slice = backlog.project(&conn, ample, || false).unwrap();
        assert_eq!(slice.taken, 2);
        assert_eq!(
            slice.receipts,
            vec![Receipt {
                delivery: original.delivery,
                status: Status::Projected
            }]
        );
        assert_eq!(statuses(&conn), ["duplicate", "projected"]);
    }

    /// Entries in the identity index, counted in its pages (SQLite's `dbstat`).
    fn identity_index_entries(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT coalesce(sum(ncell), 0) FROM dbstat
             WHERE name = 'deliveries_identity' AND pagetype = 'leaf'",
            [],
            |row| row.get(0),
        )
        .unwrap()
    }

    #[test]
    fn a_copy_of_a_waiting_delivery_is_a_duplicate_though_the_index_has_neither_yet() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let mut backlog = Backlog::default();
        let original = registrant(1);
        let waiting = backlog.waiting_with(&original.identity);
        let first = journal::append_beside(&conn, &original, waiting).unwrap();
        backlog.push(first.delivery, original.clone());
        backlog.committed(0);
        assert_eq!(identity_index_entries(&conn), 0);

        let waiting = backlog.waiting_with(&original.identity);
        assert_eq!(waiting, Some(first.delivery));
        let copy = journal::append_beside(&conn, &original, waiting).unwrap();
        assert_eq!(copy.status, Status::Duplicate);
        assert_eq!(identity_index_entries(&conn), 1, "the duplicate is final");

        let ample = Budget {
            until: Instant::now() + Duration::from_secs(60),
            guarded: false,
        };
        let slice = backlog.project(&conn, ample, || false).unwrap();
        backlog.committed(slice.taken);
        assert_eq!(
            identity_index_entries(&conn),
            2,
            "projected, the original too"
        );
        assert_eq!(backlog.waiting_with(&original.identity), None);
        // Once projected, the index finds it.
        let again = journal::append_beside(&conn, &original, None).unwrap();
        assert_eq!(again.status, Status::Duplicate);
    }

    #[test]
    fn a_rolled_back_earlier_copy_gives_the_waiting_original_its_place_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let mut backlog = Backlog::default();
        let later = registrant(1);
        let receipt = journal::append_beside(&conn, &later, None).unwrap();
        backlog.push(receipt.delivery, later.clone());
        backlog.committed(0);

        let mut earlier = (*later).clone();
        earlier.delivery.received_at -= chrono::Duration::seconds(5);
        let tx = conn.transaction().unwrap();
        let waiting = backlog.waiting_with(&earlier.identity);
        let displacing = journal::append_beside(&tx, &earlier, waiting).unwrap();
        backlog.push(displacing.delivery, Arc::new(earlier));
        assert_eq!(
            backlog.waiting_with(&later.identity),
            Some(displacing.delivery)
        );
        drop(tx);
        backlog.rolled_back();

        assert_eq!(
            backlog.waiting_with(&later.identity),
            Some(receipt.delivery)
        );
        let copy = journal::append_beside(&conn, &later, backlog.waiting_with(&later.identity));
        assert_eq!(copy.unwrap().status, Status::Duplicate);
    }

    #[test]
    fn a_recovered_backlog_knows_its_identities() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let waiting = registrant(1);
        let receipt = journal::append(&conn, &waiting).unwrap();
        assert_eq!(receipt.status, Status::Pending);
        assert_eq!(
            journal::waiting_with_identity(&conn, &waiting.identity).unwrap(),
            Some(receipt.delivery)
        );
        let recovered = Backlog::recover(&conn).unwrap();
        assert_eq!(
            recovered.waiting_with(&waiting.identity),
            Some(receipt.delivery)
        );
        assert_eq!(recovered.waiting_with(&registrant(2).identity), None);
    }

    #[test]
    fn a_rolled_back_batch_leaves_nothing_behind() {
        let mut backlog = Backlog::default();
        backlog.push(1, registrant(1));
        backlog.committed(0);
        backlog.push(2, registrant(2));
        backlog.rolled_back();
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog.kept_bytes, registrant(1).delivery.body.len());
    }
}
