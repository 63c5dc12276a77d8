//! The projection backlog: deliveries journaled and acknowledged but not yet folded into the
//! reports, in journal order. The writer thread projects from its front, in the same
//! transaction as the next batch when it has time and in slices of their own when idle; a
//! burst of webhooks is thus acknowledged at the speed of the journal and projected moments
//! later. After a crash the backlog is read back from the journal's `pending` rows.
//!
//! It owns no transaction and no thread: the writer decides when to commit.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::journal::{self, Prepared, Receipt, Status};
use super::Result;

/// Bodies kept in memory with their parse for projection, at most (the parse takes two to
/// three times the body's size); beyond it they are read back from the journal when their turn
/// comes, so a long burst cannot grow the process without bound.
const KEPT_BYTES: usize = 16 << 20;

/// Bodies above this are projected with SQLite's statement journal in a file (see
/// `writer::choose_temp_store`).
pub const LARGE_BODY: usize = 256 << 10;

struct Pending {
    id: i64,
    body_len: usize,
    /// The parse done on arrival, when kept.
    prepared: Option<Arc<Prepared>>,
}

#[derive(Default)]
pub struct Backlog {
    pending: VecDeque<Pending>,
    kept_bytes: usize,
    /// Entries added since the last commit, dropped again if that commit fails.
    uncommitted: usize,
    /// After a failure, projecting waits until then.
    retry_at: Option<Instant>,
}

/// How much projecting one transaction may do.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop starting new deliveries after this (at least one is always projected).
    pub until: Instant,
    /// Whether a large body may be projected: the transaction keeps its statement journal in a
    /// file.
    pub large: bool,
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

impl Backlog {
    /// The deliveries a previous run journaled but did not project (an index lookup, no scan).
    pub fn recover(conn: &Connection) -> Result<Backlog> {
        let mut backlog = Backlog::default();
        let mut stmt = conn.prepare(
            "SELECT id, length(body) FROM deliveries WHERE status = 'pending' ORDER BY id",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)?)))?;
        for row in rows {
            let (id, body_len) = row?;
            backlog.pending.push_back(Pending {
                id,
                body_len: usize::try_from(body_len).unwrap_or(usize::MAX),
                prepared: None,
            });
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

    /// Adds a delivery journaled in the transaction under way.
    pub fn push(&mut self, id: i64, prepared: Arc<Prepared>) {
        let body_len = prepared.delivery.body.len();
        // The first is always kept: a lone large body is projected at once, not parsed twice.
        let keep = self.kept_bytes == 0 || self.kept_bytes + body_len <= KEPT_BYTES;
        if keep {
            self.kept_bytes += body_len;
        }
        self.pending.push_back(Pending {
            id,
            body_len,
            prepared: keep.then_some(prepared),
        });
        self.uncommitted += 1;
    }

    /// Whether the next delivery to project has a large body.
    pub fn front_is_large(&self) -> bool {
        self.pending
            .front()
            .is_some_and(|p| p.body_len > LARGE_BODY)
    }

    /// Projects from the front, inside the caller's transaction, until the budget is spent or
    /// `interrupted` says other work is waiting (at least one delivery either way). Nothing
    /// leaves the backlog until [`Backlog::committed`] says the transaction held.
    pub fn project(
        &self,
        conn: &Connection,
        budget: Budget,
        interrupted: impl Fn() -> bool,
    ) -> Result<Slice> {
        let mut slice = Slice::default();
        for pending in &self.pending {
            let stop = slice.taken > 0 && (Instant::now() >= budget.until || interrupted());
            if stop || (pending.body_len > LARGE_BODY && !budget.large) {
                break;
            }
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
                        slice.taken += 1;
                        continue;
                    }
                    Err(error) => return Err(error),
                },
            };
            if let Some(status) = journal::project_pending(conn, pending.id, prepared)? {
                if status == Status::Projected {
                    slice.webinars.extend(prepared.webinars());
                }
                slice.receipts.push(Receipt {
                    delivery: pending.id,
                    status,
                });
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
            }
        }
        self.uncommitted = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Platform;
    use crate::store::journal::{NewDelivery, Via};
    use crate::store::{open_writer, StoreOptions};

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
            large: false,
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
            large: false,
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
            large: false,
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
