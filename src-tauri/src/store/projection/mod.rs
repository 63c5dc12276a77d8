//! The projection: folding each projected delivery's facts into webinars, sessions, people,
//! registrations and attendance (plus the `facts` table the timeline and replay views read).
//!
//! Folding is order-independent (see `merge`), so a join that arrives before its registration,
//! an end before its start, or a replay days later give the same tables, and [`rebuild`] after
//! a parser fix reproduces exactly what incremental projection would have built. Removing a
//! delivery's facts ([`retract`]) refolds the entities it touched from the facts that remain.
//!
//! This module reads no payloads and decides no statuses: the journal does.

mod audience;
mod entities;
mod fact_rows;
mod figures;
mod merge;
pub mod participants;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

pub use entities::PersonAtWebinar;
use entities::{AttendanceFold, PersonFold, RegistrationFold, SessionFold, WebinarFold};
use fact_rows::{Carried, FactRow, FactsOut};
pub use merge::Version;

use super::{format_time, Result, StoreError};
use crate::facts::{Fact, TimeBasis};

/// The key of a session row: the webinar's key and the platform's session id.
pub fn session_uid(webinar_uid: &str, session: &str) -> String {
    format!("{webinar_uid}/{session}")
}

/// Projects one delivery's facts. `observed_at` is when the platform says the event happened
/// (else when it was received); with `identity` it orders conflicting facts.
pub fn apply(
    conn: &Connection,
    delivery_id: i64,
    identity: &str,
    observed_at: DateTime<Utc>,
    facts: &[Fact],
) -> Result<()> {
    let mut work = WorkSet::default();
    let delivery = (delivery_id, identity, observed_at);
    work.fold_in(conn, delivery, facts, &mut FactsOut::Insert)?;
    work.save(conn, true)?;
    audience::refresh(conn, &work.pairs())?;
    participants::refresh(conn, &participants::pairs(facts)?)?;
    advance_revision(conn)
}

/// Marks the projected tables as changed, inside the transaction that changes them: reports
/// kept in memory are keyed by this revision (`report::memo`).
fn advance_revision(conn: &Connection) -> Result<()> {
    conn.prepare_cached("UPDATE projection_revision SET revision = revision + 1")?
        .execute([])?;
    Ok(())
}

/// The revision of the projected tables: any change to them increases it.
pub fn revision(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT revision FROM projection_revision")?
        .query_row([], |row| row.get(0))?)
}

/// The tables the projection builds from the journal: everything else is the journal and the
/// organizer's settings.
pub const PROJECTED_TABLES: [&str; 11] = [
    "facts",
    "webinars",
    "sessions",
    "people",
    "people_search",
    "registrations",
    "attendance",
    "audience",
    "webinar_counts",
    "person_counts",
    "participants",
];

/// Deliveries a rebuild folds between two writes of the registrations and attendance they touch.
const REBUILD_CHUNK: usize = 20_000;

/// Webinars, sessions and people a rebuild holds in memory across chunks (about 600 bytes
/// each) before it writes them out too.
const REBUILD_HELD: usize = 250_000;

/// A rebuild of every projected table from the journal (`journal::reindex`). Registrations and
/// attendance stay in memory across a chunk of deliveries and are written once per chunk;
/// webinars, sessions and people across the whole journal, up to [`REBUILD_HELD`]; a row is
/// looked for only if an earlier chunk wrote it. Secondary indexes are dropped while it runs and
/// built again at the end; the audience and participants summaries are computed once from the
/// finished tables. Facts the table already holds are kept where they are still right
/// ([`fact_rows`]). The result is the one [`apply`] builds delivery by delivery.
pub struct Rebuild {
    work: WorkSet,
    unsaved: usize,
    indexes: Vec<String>,
    facts: FactsOut,
}

impl Rebuild {
    /// Empties the projected tables and drops their secondary indexes, but for the facts
    /// table, which is made right delivery by delivery if it holds any (a reindex copies it).
    pub fn start(conn: &Connection) -> Result<Rebuild> {
        let carried: bool =
            conn.query_row("SELECT EXISTS (SELECT 1 FROM facts)", [], |row| row.get(0))?;
        let emptied: Vec<&str> = PROJECTED_TABLES
            .into_iter()
            .filter(|table| !(carried && *table == "facts"))
            .collect();
        let indexes = secondary_indexes(conn, &emptied)?;
        for (name, _) in &indexes {
            conn.execute_batch(&format!("DROP INDEX \"{name}\""))?;
        }
        for table in emptied {
            conn.execute_batch(&format!("DELETE FROM \"{table}\""))?;
        }
        Ok(Rebuild {
            work: WorkSet {
                mode: Mode::Rebuild(Written::default()),
                ..WorkSet::default()
            },
            unsaved: 0,
            indexes: indexes.into_iter().map(|(_, sql)| sql).collect(),
            facts: match carried {
                true => FactsOut::Reconcile(Carried::new(secondary_indexes(conn, &["facts"])?)),
                false => FactsOut::Insert,
            },
        })
    }

    /// Folds one delivery's facts in. A fact naming a person with no email and no id is refused
    /// before anything is written, as [`apply`] refuses it.
    pub fn apply(
        &mut self,
        conn: &Connection,
        delivery_id: i64,
        identity: &str,
        observed_at: DateTime<Utc>,
        facts: &[Fact],
    ) -> Result<()> {
        let delivery = (delivery_id, identity, observed_at);
        self.work.fold_in(conn, delivery, facts, &mut self.facts)?;
        self.unsaved += 1;
        if self.unsaved >= REBUILD_CHUNK {
            self.work.write_out(conn, false)?;
            self.unsaved = 0;
        }
        Ok(())
    }

    /// Writes what is left, computes the audience and participants summaries and builds the
    /// indexes again. The summaries are computed first: they group whole tables, which no
    /// secondary index helps, and an index built once over the finished summary is a sort where
    /// one kept up row by row was a third of the participants summary's time.
    pub fn finish(mut self, conn: &Connection) -> Result<()> {
        self.work.write_out(conn, true)?;
        let dropped = self.facts.finish(conn)?;
        self.indexes.extend(dropped);
        let started = std::time::Instant::now();
        participants::rebuild(conn)?;
        audience::rebuild(conn)?;
        tracing::info!(
            secs = started.elapsed().as_secs_f64(),
            "computed the audience and participants summaries"
        );
        let started = std::time::Instant::now();
        for sql in &self.indexes {
            conn.execute_batch(sql)?;
        }
        tracing::info!(
            secs = started.elapsed().as_secs_f64(),
            "built the indexes again"
        );
        advance_revision(conn)
    }
}

/// The secondary indexes of `tables`: each one's name and statement.
fn secondary_indexes(conn: &Connection, tables: &[&str]) -> Result<Vec<(String, String)>> {
    Ok(conn
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL
             AND tbl_name IN (SELECT value FROM json_each(?1))",
        )?
        .query_map([serde_json::to_string(tables)?], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// Removes one delivery's facts and refolds everything they touched from the facts that
/// remain (used when a delivery turns out to be a duplicate, or is reprocessed).
pub fn retract(conn: &Connection, delivery_id: i64) -> Result<()> {
    let facts = facts_where(conn, "delivery_id = ?1", &delivery_id)?;
    if facts.is_empty() {
        return Ok(());
    }
    let mut touched = Touched::default();
    for (_, _, fact) in &facts {
        touched.add(fact)?;
    }
    let pairs = participants::pairs(facts.iter().map(|(_, _, fact)| fact))?;
    conn.prepare_cached("DELETE FROM facts WHERE delivery_id = ?1")?
        .execute([delivery_id])?;
    refold(conn, touched)?;
    participants::refresh(conn, &pairs)?;
    advance_revision(conn)
}

/// Where a fact sits on the timeline: its own moment, the creation time a webinar's details
/// carry, or the join time an attendance summary reports.
fn timeline_position(fact: &Fact) -> (Option<String>, Option<String>) {
    if let Some(moment) = fact.moment() {
        let basis = match &moment.basis {
            TimeBasis::Exact => "exact".to_owned(),
            TimeBasis::ReceivedAt => "received_at".to_owned(),
            TimeBasis::AssumedZone { zone } => zone.clone(),
        };
        return (Some(format_time(&moment.at)), Some(basis));
    }
    match fact {
        Fact::WebinarSeen { details, .. } => (
            details.created_at.as_ref().map(format_time),
            Some("exact".to_owned()),
        ),
        Fact::AttendanceSummary { joined_at, .. } => (
            joined_at.as_ref().map(format_time),
            Some("exact".to_owned()),
        ),
        _ => (None, None),
    }
}

fn person_uid(fact: &Fact, person: &crate::facts::Person) -> Result<String> {
    person.uid(fact.webinar().platform).ok_or_else(|| {
        StoreError::Invalid(format!(
            "a {} fact names a person with no email and no id",
            fact.kind()
        ))
    })
}

type StoredFact = (i64, Version, Fact);

fn facts_where(
    conn: &Connection,
    condition: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<Vec<StoredFact>> {
    let sql = format!("SELECT delivery_id, version, body FROM facts WHERE {condition}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([value], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut facts = Vec::new();
    for row in rows {
        let (delivery_id, version, body) = row?;
        facts.push((
            delivery_id,
            serde_json::from_str(&version)?,
            serde_json::from_str(&body)?,
        ));
    }
    Ok(facts)
}

/// A delivery as the projection needs it: its id, its identity and when it was observed.
type Delivery<'a> = (i64, &'a str, DateTime<Utc>);

/// Entity keys a set of facts touches.
#[derive(Debug, Default)]
struct Touched {
    webinars: BTreeSet<String>,
    sessions: BTreeSet<String>,
    people: BTreeSet<String>,
    registrations: BTreeSet<PersonAtWebinar>,
    attendance: BTreeSet<PersonAtWebinar>,
}

impl Touched {
    fn add(&mut self, fact: &Fact) -> Result<()> {
        let keys = Keys::of(fact)?;
        self.webinars.insert(keys.webinar);
        self.sessions.extend(keys.session);
        self.people.extend(keys.person);
        self.registrations.extend(keys.registration);
        self.attendance.extend(keys.attendance);
        Ok(())
    }
}

/// The entity keys of one fact.
struct Keys {
    webinar: String,
    session: Option<String>,
    person: Option<String>,
    registration: Option<PersonAtWebinar>,
    attendance: Option<PersonAtWebinar>,
}

impl Keys {
    fn of(fact: &Fact) -> Result<Keys> {
        let webinar = fact.webinar().uid();
        let session = fact.session().map(|s| session_uid(&webinar, s));
        let person = fact.person().map(|p| person_uid(fact, p)).transpose()?;
        let at_webinar = person.as_ref().map(|person_uid| PersonAtWebinar {
            webinar_uid: webinar.clone(),
            session_uid: session.clone().unwrap_or_default(),
            person_uid: person_uid.clone(),
        });
        let (registration, attendance) = match fact {
            Fact::Registered { .. } => (at_webinar, None),
            Fact::Joined { .. } | Fact::AttendanceSummary { .. } => (None, at_webinar),
            _ => (None, None),
        };
        Ok(Keys {
            webinar,
            session,
            person,
            registration,
            attendance,
        })
    }
}

/// The entities being folded, each loaded once and saved once per delivery (per chunk, in a
/// rebuild).
#[derive(Default)]
struct WorkSet {
    webinars: HashMap<String, WebinarFold>,
    sessions: HashMap<String, SessionFold>,
    people: HashMap<String, PersonFold>,
    registrations: HashMap<PersonAtWebinar, RegistrationFold>,
    attendance: HashMap<PersonAtWebinar, AttendanceFold>,
    mode: Mode,
}

/// Where a work set finds the folds it does not hold yet.
#[derive(Default)]
enum Mode {
    /// New facts fold into what each row holds.
    #[default]
    Apply,
    /// Refolding from the facts that remain: folds start empty, and only these keys are folded.
    Refold(Touched),
    /// A rebuild into emptied tables: only rows an earlier chunk wrote exist.
    Rebuild(Written),
}

/// The rows a rebuild has written so far, table by table. A key not here has no row, so a
/// rebuild does not look for it: most keys are new when first met, and each lookup was a
/// descent through a B-tree that holds nothing for them.
#[derive(Default)]
struct Written {
    webinars: KeySet,
    sessions: KeySet,
    people: KeySet,
    registrations: KeySet,
    attendance: KeySet,
}

impl Written {
    fn record(&mut self, work: &WorkSet) {
        self.webinars.extend(work.webinars.keys());
        self.sessions.extend(work.sessions.keys());
        self.people.extend(work.people.keys());
        self.registrations.extend(work.registrations.keys());
        self.attendance.extend(work.attendance.keys());
    }
}

/// Keys by their hashes: 8 bytes each, whatever the key. A collision only costs a lookup.
#[derive(Default)]
struct KeySet {
    hasher: std::hash::RandomState,
    hashes: HashSet<u64>,
}

impl KeySet {
    fn extend<'a, K: Hash + 'a>(&mut self, keys: impl Iterator<Item = &'a K>) {
        use std::hash::BuildHasher;
        self.hashes
            .extend(keys.map(|key| self.hasher.hash_one(key)));
    }

    fn may_hold<K: Hash>(&self, key: &K) -> bool {
        use std::hash::BuildHasher;
        self.hashes.contains(&self.hasher.hash_one(key))
    }
}

/// Loads a fold from its row, unless a rebuild's `written` says there is none yet.
fn load_unless_new<K: Hash, F>(
    written: Option<&KeySet>,
    key: &K,
    load: impl FnOnce() -> Result<Option<F>>,
) -> Result<Option<F>> {
    match written {
        Some(written) if !written.may_hold(key) => Ok(None),
        _ => load(),
    }
}

fn fold_for<K: Eq + Hash + Clone, F: Default>(
    map: &mut HashMap<K, F>,
    key: K,
    from_scratch: bool,
    load: impl FnOnce(&K) -> Result<Option<F>>,
) -> Result<&mut F> {
    use std::collections::hash_map::Entry;
    Ok(match map.entry(key) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => {
            let fold = if from_scratch {
                None
            } else {
                load(entry.key())?
            };
            entry.insert(fold.unwrap_or_default())
        }
    })
}

impl WorkSet {
    /// Records one delivery's facts (their rows go to `out`) and folds them in.
    fn fold_in(
        &mut self,
        conn: &Connection,
        (delivery_id, identity, observed_at): Delivery,
        facts: &[Fact],
        out: &mut FactsOut,
    ) -> Result<()> {
        // Every fact's keys first: a fact naming a person with no email and no id refuses the
        // delivery before anything is written.
        let keys = facts.iter().map(Keys::of).collect::<Result<Vec<_>>>()?;
        let delivery = Version::new(observed_at, identity);
        let ordinals = (0..).map(|o: usize| u32::try_from(o).unwrap_or(u32::MAX));
        let rows = facts
            .iter()
            .zip(&keys)
            .zip(ordinals.clone())
            .map(|((fact, keys), o)| FactRow::new(o, fact, keys, delivery.of_fact(o)))
            .collect::<Result<Vec<_>>>()?;
        out.write(conn, delivery_id, &rows)?;
        drop(rows);
        for ((fact, keys), ordinal) in facts.iter().zip(keys).zip(ordinals) {
            self.merge(conn, fact, keys, delivery.of_fact(ordinal), delivery_id)?;
        }
        Ok(())
    }

    fn merge(
        &mut self,
        conn: &Connection,
        fact: &Fact,
        keys: Keys,
        v: Version,
        delivery_id: i64,
    ) -> Result<()> {
        let (only, written) = match &self.mode {
            Mode::Apply => (None, None),
            Mode::Refold(touched) => (Some(touched), None),
            Mode::Rebuild(written) => (None, Some(written)),
        };
        let scratch = only.is_some();
        if only.is_none_or(|t| t.webinars.contains(&keys.webinar)) {
            fold_for(&mut self.webinars, keys.webinar, scratch, |k| {
                load_unless_new(written.map(|w| &w.webinars), k, || {
                    WebinarFold::load(conn, k)
                })
            })?
            .merge(fact, v, delivery_id);
        }
        if let Some(key) = keys
            .session
            .filter(|k| only.is_none_or(|t| t.sessions.contains(k)))
        {
            fold_for(&mut self.sessions, key, scratch, |k| {
                load_unless_new(written.map(|w| &w.sessions), k, || {
                    SessionFold::load(conn, k)
                })
            })?
            .merge(fact, v, delivery_id);
        }
        if let (Some(key), Some(person)) = (keys.person, fact.person()) {
            if only.is_none_or(|t| t.people.contains(&key)) {
                fold_for(&mut self.people, key, scratch, |k| {
                    load_unless_new(written.map(|w| &w.people), k, || PersonFold::load(conn, k))
                })?
                .merge(fact, person, v, delivery_id);
            }
        }
        if let Some(key) = keys
            .registration
            .filter(|k| only.is_none_or(|t| t.registrations.contains(k)))
        {
            fold_for(&mut self.registrations, key, scratch, |k| {
                load_unless_new(written.map(|w| &w.registrations), k, || {
                    RegistrationFold::load(conn, k)
                })
            })?
            .merge(fact, v, delivery_id);
        }
        if let Some(key) = keys
            .attendance
            .filter(|k| only.is_none_or(|t| t.attendance.contains(k)))
        {
            fold_for(&mut self.attendance, key, scratch, |k| {
                load_unless_new(written.map(|w| &w.attendance), k, || {
                    AttendanceFold::load(conn, k)
                })
            })?
            .merge(fact, v, delivery_id);
        }
        Ok(())
    }

    /// The (webinar, person) pairs whose registrations or attendance this work writes.
    fn pairs(&self) -> BTreeSet<audience::Pair> {
        pairs_of(self.registrations.keys().chain(self.attendance.keys()))
    }

    /// Writes every entity, each table in key order: B-tree pages then fill up one after
    /// another instead of splitting at random (a rebuild's registrations filled half of each
    /// page in random order).
    /// `follow_names` moves people's participants rows to where their names now sort (not in
    /// a rebuild, which computes that summary once it is done).
    fn save(&self, conn: &Connection, follow_names: bool) -> Result<()> {
        for (uid, fold) in in_key_order(&self.webinars) {
            fold.save(conn, uid)?;
        }
        for (uid, fold) in in_key_order(&self.sessions) {
            fold.save(conn, uid)?;
        }
        for (uid, fold) in in_key_order(&self.people) {
            fold.save(conn, uid)?;
            if follow_names {
                participants::follow_name(conn, uid)?;
            }
        }
        for (key, fold) in in_key_order(&self.registrations) {
            fold.save(conn, key)?;
        }
        for (key, fold) in in_key_order(&self.attendance) {
            fold.save(conn, key)?;
        }
        Ok(())
    }

    /// A rebuild's chunk: writes the registrations and attendance and lets them go, and the
    /// webinars, sessions and people too when `everything` or when more of them are held than
    /// [`REBUILD_HELD`]. Those are touched again and again over the whole journal (a person is
    /// in many webinars), so each is then written once instead of once per chunk, and never
    /// read back.
    fn write_out(&mut self, conn: &Connection, everything: bool) -> Result<()> {
        let held = self.webinars.len() + self.sessions.len() + self.people.len();
        let mut out = WorkSet {
            registrations: std::mem::take(&mut self.registrations),
            attendance: std::mem::take(&mut self.attendance),
            ..WorkSet::default()
        };
        if everything || held > REBUILD_HELD {
            out.webinars = std::mem::take(&mut self.webinars);
            out.sessions = std::mem::take(&mut self.sessions);
            out.people = std::mem::take(&mut self.people);
        }
        out.save(conn, false)?;
        if let Mode::Rebuild(written) = &mut self.mode {
            written.record(&out);
        }
        Ok(())
    }
}

fn in_key_order<K: Ord, V>(map: &HashMap<K, V>) -> Vec<(&K, &V)> {
    let mut entries: Vec<(&K, &V)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

/// Rebuilds the touched entities from the facts that remain, deleting those no fact mentions.
fn refold(conn: &Connection, touched: Touched) -> Result<()> {
    let mut facts: Vec<StoredFact> = Vec::new();
    for uid in &touched.webinars {
        facts.extend(facts_where(conn, "webinar_uid = ?1", uid)?);
    }
    for uid in &touched.people {
        facts.extend(facts_where(conn, "person_uid = ?1", uid)?);
    }
    let pairs = pairs_of(touched.registrations.iter().chain(&touched.attendance));
    let mut seen = HashSet::new();
    let mut work = WorkSet {
        mode: Mode::Refold(touched),
        ..WorkSet::default()
    };
    for (delivery_id, version, fact) in &facts {
        if seen.insert((*delivery_id, *version)) {
            work.merge(conn, fact, Keys::of(fact)?, *version, *delivery_id)?;
        }
    }
    delete_unmentioned(conn, &work)?;
    work.save(conn, true)?;
    audience::refresh(conn, &pairs)
}

fn pairs_of<'a>(keys: impl Iterator<Item = &'a PersonAtWebinar>) -> BTreeSet<audience::Pair> {
    keys.map(|k| (k.webinar_uid.clone(), k.person_uid.clone()))
        .collect()
}

fn delete_unmentioned(conn: &Connection, work: &WorkSet) -> Result<()> {
    let Mode::Refold(touched) = &work.mode else {
        return Ok(());
    };
    for uid in touched
        .webinars
        .iter()
        .filter(|k| !work.webinars.contains_key(*k))
    {
        conn.execute("DELETE FROM webinars WHERE uid = ?1", [uid])?;
    }
    for uid in touched
        .sessions
        .iter()
        .filter(|k| !work.sessions.contains_key(*k))
    {
        conn.execute("DELETE FROM sessions WHERE uid = ?1", [uid])?;
    }
    for uid in touched
        .people
        .iter()
        .filter(|k| !work.people.contains_key(*k))
    {
        conn.execute("DELETE FROM people WHERE uid = ?1", [uid])?;
        conn.execute("DELETE FROM people_search WHERE uid = ?1", [uid])?;
    }
    let by_key = "WHERE webinar_uid = ?1 AND session_uid = ?2 AND person_uid = ?3";
    for key in touched
        .registrations
        .iter()
        .filter(|k| !work.registrations.contains_key(*k))
    {
        conn.execute(
            &format!("DELETE FROM registrations {by_key}"),
            params![key.webinar_uid, key.session_uid, key.person_uid],
        )?;
    }
    for key in touched
        .attendance
        .iter()
        .filter(|k| !work.attendance.contains_key(*k))
    {
        conn.execute(
            &format!("DELETE FROM attendance {by_key}"),
            params![key.webinar_uid, key.session_uid, key.person_uid],
        )?;
    }
    Ok(())
}
