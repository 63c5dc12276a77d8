//! The journal: every accepted delivery, raw, with the status the store gave it. It is the
//! source of truth; the projection is rebuilt from it ([`reindex`]).
//!
//! [`append`] records a delivery and judges whether it duplicates another; for a request
//! journaled before its answer, that commit is what its 200 stands for (a burst's 200 stands for
//! its record in `store::receipts`, journaled here moments later). [`project_pending`] then folds it into the reports, in the same
//! transaction when the writer has time, otherwise in a later one (see `store::backlog`).
//! Deliveries with the same identity are duplicates: the earliest received one (ties broken by
//! body hash) is the one projected, whatever order they arrive in.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rusqlite::types::Type;
use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{format_time, parse_time, projection, Result, StoreError};
use crate::facts::Platform;
use crate::platforms::{self, Delivery, ParseError, Understanding};

/// How a delivery reached the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Webhook,
    Import,
    /// Sent by Rollcall itself through the tunnel ("Send a test delivery"): journaled and
    /// shown, never counted in reports.
    SelfTest,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Webhook => "webhook",
            Via::Import => "import",
            Via::SelfTest => "self_test",
        }
    }

    pub fn parse(text: &str) -> Option<Via> {
        [Via::Webhook, Via::Import, Via::SelfTest]
            .into_iter()
            .find(|via| via.as_str() == text)
    }
}

/// A delivery as received, before the store has seen it.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub platform: Platform,
    pub source_id: Option<i64>,
    pub trigger: Option<String>,
    pub received_at: DateTime<Utc>,
    pub via: Via,
    pub content_type: Option<String>,
    /// Selected request headers (never credentials).
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
    pub time_zone: Tz,
}

impl NewDelivery {
    fn as_parser_input(&self) -> Delivery<'_> {
        Delivery {
            platform: self.platform,
            trigger: self.trigger.as_deref(),
            content_type: self.content_type.as_deref(),
            body: &self.body,
            received_at: self.received_at,
            source_zone: self.time_zone,
        }
    }
}

/// A delivery with everything the writer needs computed outside it: hashes, identity, and the
/// parse (pure, so it runs on the request's thread, not the writer's).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub delivery: NewDelivery,
    pub body_sha256: String,
    pub identity: String,
    pub understanding: Result<Understanding, ParseError>,
}

impl Prepared {
    pub fn new(delivery: NewDelivery) -> Prepared {
        let input = delivery.as_parser_input();
        // `{:x}` on the digest writes through a table; `hex::encode` collects chars one by one.
        let body_sha256 = format!("{:x}", Sha256::digest(&delivery.body));
        // A test delivery never shares an identity with a real one, so it can neither be taken
        // for a duplicate of a real delivery nor displace one.
        let identity = match delivery.via {
            Via::SelfTest => format!(
                "{}:self-test:{body_sha256}:{}",
                delivery.platform,
                format_time(&delivery.received_at)
            ),
            _ => identity(&input),
        };
        let understanding = platforms::parse(&input);
        Prepared {
            delivery,
            body_sha256,
            identity,
            understanding,
        }
    }
}

impl Prepared {
    /// The webinars this delivery's facts are about.
    pub fn webinars(&self) -> Vec<String> {
        match &self.understanding {
            Ok(Understanding::Facts { facts, .. }) => {
                facts.iter().map(|fact| fact.webinar().uid()).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The identity of a delivery: the platform's event id, or a hash of platform, trigger and
/// body. Retries of one event share it.
pub fn identity(delivery: &Delivery<'_>) -> String {
    if let Some(event) = platforms::event_id(delivery) {
        return format!("{}:event:{event}", delivery.platform);
    }
    let mut hash = Sha256::new();
    hash.update(delivery.platform.as_str());
    hash.update([0]);
    hash.update(delivery.trigger.unwrap_or_default());
    hash.update([0]);
    hash.update(delivery.body);
    format!("{}:sha256:{:x}", delivery.platform, hash.finalize())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ts_rs::TS)]
#[ts(export, rename = "DeliveryStatus")]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Journaled and acknowledged; its facts are not in the reports yet (the writer projects
    /// it within moments, or at the next start after a crash).
    Pending,
    /// Understood and folded into the reports.
    Projected,
    /// The same event as an earlier delivery: kept, not applied again.
    Duplicate,
    /// Kept, but could not be understood; `detail` says why.
    Quarantined,
    /// A known event Rollcall does not use (reminders): kept.
    Ignored,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Projected => "projected",
            Status::Duplicate => "duplicate",
            Status::Quarantined => "quarantined",
            Status::Ignored => "ignored",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "pending" => Status::Pending,
            "projected" => Status::Projected,
            "duplicate" => Status::Duplicate,
            "quarantined" => Status::Quarantined,
            "ignored" => Status::Ignored,
            _ => return None,
        })
    }
}

/// What the sender is told: the delivery's id and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Receipt {
    pub delivery: i64,
    pub status: Status,
}

/// Records one delivery and projects it, inside the caller's transaction; a projection that
/// fails quarantines it.
pub fn record(conn: &Connection, prepared: &Prepared) -> Result<Receipt> {
    let receipt = append(conn, prepared)?;
    if receipt.status != Status::Pending {
        return Ok(receipt);
    }
    Ok(Receipt {
        delivery: receipt.delivery,
        status: project(conn, receipt.delivery, prepared, Containment::Quarantine)?,
    })
}

/// Records one delivery in the journal, inside the caller's transaction, and judges it: a
/// duplicate, a body that cannot be used (quarantined or ignored), or `Pending` until
/// [`project_pending`] folds it into the reports.
pub fn append(conn: &Connection, prepared: &Prepared) -> Result<Receipt> {
    let waiting = waiting_with_identity(conn, &prepared.identity)?;
    append_beside(conn, prepared, waiting)
}

/// [`append`] for a caller that knows which delivery waiting to be projected, if any, has this
/// delivery's identity (the writer keeps them in its backlog). Waiting deliveries are not in
/// the identity index, so that journaling one writes no index page; see migration 16.
pub fn append_beside(
    conn: &Connection,
    prepared: &Prepared,
    waiting: Option<i64>,
) -> Result<Receipt> {
    let mut appender = Appender::new(conn)?;
    let receipt = appender.append(prepared, waiting)?;
    appender.finish()?;
    Ok(receipt)
}

/// Journals deliveries one after another inside the caller's transaction: the writer appends
/// a whole batch through one. Its statements are prepared once for all of them (a cached
/// statement hashes its SQL when taken and again when put back: a tenth of the instructions
/// of journaling a delivery), and
/// each source's last delivery is written once, by [`Appender::finish`], instead of once per
/// delivery. Nothing it appended is complete until `finish` has run.
pub struct Appender<'c> {
    conn: &'c Connection,
    insert: CachedStatement<'c>,
    by_identity: CachedStatement<'c>,
    /// The newest `received_at` appended for each source.
    last_delivery: HashMap<i64, String>,
}

impl<'c> Appender<'c> {
    pub fn new(conn: &'c Connection) -> Result<Appender<'c>> {
        Ok(Appender {
            conn,
            insert: conn.prepare_cached(INSERT_DELIVERY)?,
            by_identity: conn.prepare_cached(ORIGINAL_BY_IDENTITY)?,
            last_delivery: HashMap::new(),
        })
    }

    /// Journals `prepared`; `waiting` as for [`append_beside`].
    pub fn append(&mut self, prepared: &Prepared, waiting: Option<i64>) -> Result<Receipt> {
        self.append_received(prepared, waiting, None)
    }

    /// [`Appender::append`] for a delivery acknowledged from the receipt log as `receipt`.
    pub fn append_received(
        &mut self,
        prepared: &Prepared,
        waiting: Option<i64>,
        receipt: Option<u64>,
    ) -> Result<Receipt> {
        let conn = self.conn;
        let received_at = format_time(&prepared.delivery.received_at);
        let canonical = self.find_canonical(&prepared.identity, waiting)?;
        let earlier = canonical.as_ref().is_some_and(|c| {
            (received_at.as_str(), prepared.body_sha256.as_str())
                < (c.received_at.as_str(), c.body_sha256.as_str())
        });
        let duplicate_of = canonical.as_ref().filter(|_| !earlier).map(|c| c.id);
        let (status, detail) = match (duplicate_of, judge(prepared)) {
            (Some(_), _) => (Status::Duplicate, None),
            (None, Judgement::Final(status, detail)) => (status, detail),
            (None, Judgement::Facts(_)) => (Status::Pending, None),
        };
        let id = self.insert(
            prepared,
            &received_at,
            (status, detail.as_deref()),
            duplicate_of,
            receipt,
        )?;
        if let Some(source_id) = prepared.delivery.source_id {
            self.note_last_delivery(source_id, received_at);
        }
        if let Some(displaced) = canonical.filter(|_| earlier) {
            // This copy was received before the one kept so far: it becomes the original.
            projection::retract(conn, displaced.id)?;
            conn.prepare_cached("UPDATE deliveries SET duplicate_of = ?1 WHERE duplicate_of = ?2")?
                .execute([id, displaced.id])?;
            set_status(conn, displaced.id, Status::Duplicate, None, Some(id))?;
        }
        Ok(Receipt {
            delivery: id,
            status,
        })
    }

    /// Writes each source's last delivery.
    pub fn finish(self) -> Result<()> {
        let mut upsert = self.conn.prepare_cached(
            "INSERT INTO source_last_delivery (source_id, received_at) VALUES (?1, ?2)
             ON CONFLICT (source_id) DO UPDATE SET received_at = excluded.received_at
             WHERE excluded.received_at > received_at",
        )?;
        for (source_id, received_at) in &self.last_delivery {
            upsert.execute(params![source_id, received_at])?;
        }
        Ok(())
    }

    /// The original delivery with this identity: `waiting` if it still is one (a copy received
    /// earlier may have taken its place), else the one the identity index has.
    fn find_canonical(
        &mut self,
        identity: &str,
        waiting: Option<i64>,
    ) -> Result<Option<Canonical>> {
        if let Some(id) = waiting {
            let original = self
                .conn
                .prepare_cached(
                    "SELECT id, received_at, body_sha256 FROM deliveries
                     WHERE id = ?1 AND duplicate_of IS NULL",
                )?
                .query_row([id], canonical)
                .optional()?;
            if original.is_some() {
                return Ok(original);
            }
        }
        Ok(self
            .by_identity
            .query_row([identity], canonical)
            .optional()?)
    }

    fn insert(
        &mut self,
        prepared: &Prepared,
        received_at: &str,
        (status, detail): (Status, Option<&str>),
        duplicate_of: Option<i64>,
        receipt: Option<u64>,
    ) -> Result<i64> {
        let d = &prepared.delivery;
        self.insert.execute(params![
            d.platform.as_str(),
            d.source_id,
            d.trigger,
            received_at,
            d.via.as_str(),
            d.content_type,
            serde_json::to_string(&d.headers)?,
            &d.body[..],
            prepared.body_sha256,
            d.time_zone.name(),
            prepared.identity,
            status.as_str(),
            detail,
            duplicate_of,
            receipt.map(|n| n as i64),
        ])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Keeps a source's "last delivery" (an index on `(source_id, received_at)` took each new
    /// delivery in the middle of the index, which cost a commit two pages more: migration 17).
    fn note_last_delivery(&mut self, source_id: i64, received_at: String) {
        let newest = self.last_delivery.entry(source_id).or_default();
        if received_at > *newest {
            *newest = received_at;
        }
    }
}

const INSERT_DELIVERY: &str = "INSERT INTO deliveries (platform, source_id, trigger,
    received_at, via, content_type, headers, body, body_sha256, time_zone, identity, status,
    detail, duplicate_of, receipt)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

/// Projects a journaled delivery if it is still pending (a copy received earlier may have
/// made it a duplicate since), inside the caller's transaction. `None`: nothing to do.
pub fn project_pending(
    conn: &Connection,
    id: i64,
    prepared: &Prepared,
    containment: Containment,
) -> Result<Option<Status>> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM deliveries WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    if status.as_deref() != Some(Status::Pending.as_str()) {
        return Ok(None);
    }
    project(conn, id, prepared, containment).map(Some)
}

struct Canonical {
    id: i64,
    received_at: String,
    body_sha256: String,
}

/// `status != 'pending'` is written as in the index's definition: SQLite uses a partial index
/// only when the query's terms imply its WHERE clause.
const ORIGINAL_BY_IDENTITY: &str = "SELECT id, received_at, body_sha256 FROM deliveries
    WHERE identity = ?1 AND status != 'pending' AND duplicate_of IS NULL LIMIT 1";

fn canonical(row: &Row<'_>) -> rusqlite::Result<Canonical> {
    Ok(Canonical {
        id: row.get(0)?,
        received_at: row.get(1)?,
        body_sha256: row.get(2)?,
    })
}

/// The newest delivery waiting to be projected with this identity, found by reading every
/// waiting one: for writers other than the writer thread (imports, tests), which do not know
/// its backlog. There are few waiting deliveries but during a burst of webhooks.
pub fn waiting_with_identity(conn: &Connection, identity: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(WAITING_WITH_IDENTITY)?
        .query_row([identity], |row| row.get(0))
        .optional()?)
}

const WAITING_WITH_IDENTITY: &str = "SELECT id FROM deliveries INDEXED BY deliveries_pending
    WHERE status = 'pending' AND identity = ?1 AND duplicate_of IS NULL
    ORDER BY id DESC LIMIT 1";

fn set_status(
    conn: &Connection,
    id: i64,
    status: Status,
    detail: Option<&str>,
    duplicate_of: Option<i64>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE deliveries SET status = ?2, detail = ?3, duplicate_of = ?4 WHERE id = ?1",
    )?
    .execute(params![id, status.as_str(), detail, duplicate_of])?;
    Ok(())
}

/// What the parse alone says about a delivery.
enum Judgement<'a> {
    /// It will not be projected: this status, with this detail.
    Final(Status, Option<String>),
    Facts(ToProject<'a>),
}

/// A delivery's facts, to be projected.
struct ToProject<'a> {
    facts: &'a [crate::facts::Fact],
    /// When the platform says the event happened, else when it was received.
    observed_at: DateTime<Utc>,
    warnings: &'a [String],
}

impl ToProject<'_> {
    /// The status detail of the delivery once projected: what had to be skipped.
    fn detail(&self) -> Option<String> {
        (!self.warnings.is_empty()).then(|| self.warnings.join("; "))
    }
}

/// The detail of a delivery understood but refused by the projection.
fn not_projected(error: &StoreError) -> String {
    format!("understood, but could not be projected: {error}")
}

fn judge(prepared: &Prepared) -> Judgement<'_> {
    if prepared.delivery.via == Via::SelfTest {
        return Judgement::Final(Status::Ignored, Some(SELF_TEST_DETAIL.to_owned()));
    }
    match &prepared.understanding {
        Err(error) => Judgement::Final(Status::Quarantined, Some(error.to_string())),
        Ok(Understanding::Ignored { reason }) => {
            Judgement::Final(Status::Ignored, Some(reason.clone()))
        }
        Ok(Understanding::Facts {
            facts,
            observed_at,
            warnings,
        }) => Judgement::Facts(ToProject {
            facts,
            observed_at: observed_at.unwrap_or(prepared.delivery.received_at),
            warnings,
        }),
    }
}

/// Sets aside a delivery that cannot be projected, saying why.
pub fn quarantine(conn: &Connection, id: i64, detail: &str) -> Result<()> {
    set_status(conn, id, Status::Quarantined, Some(detail), None)
}

/// Why a test delivery is not in the reports.
pub const SELF_TEST_DETAIL: &str =
    "a test delivery sent through the tunnel by \"Send a test delivery\": not counted in reports";

/// What a projection that fails part-way leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Containment {
    /// Its writes, in the caller's transaction, which must then be rolled back: the error is
    /// returned. No savepoint is opened, so SQLite keeps no journal of the delivery's pages
    /// (walking it was a sixth of the writer's time on BigMarker lists).
    RollBack,
    /// Nothing: it runs inside a savepoint, which is rolled back, and the delivery is
    /// quarantined with the reason.
    Quarantine,
}

/// Projects a recorded delivery and sets its status; a failure is handled as `containment`
/// says, so that a defect in the projection never loses a delivery or fails the deliveries
/// journaled with it.
fn project(
    conn: &Connection,
    id: i64,
    prepared: &Prepared,
    containment: Containment,
) -> Result<Status> {
    let to = match judge(prepared) {
        Judgement::Final(status, detail) => {
            set_status(conn, id, status, detail.as_deref(), None)?;
            return Ok(status);
        }
        Judgement::Facts(to) => to,
    };
    let guarded = containment == Containment::Quarantine;
    if guarded {
        // Cached statements: parsing them each time showed up when every delivery ran here.
        conn.prepare_cached("SAVEPOINT project")?.execute([])?;
    }
    match projection::apply(conn, id, &prepared.identity, to.observed_at, to.facts) {
        Ok(()) => {
            if guarded {
                conn.prepare_cached("RELEASE project")?.execute([])?;
            }
            set_status(conn, id, Status::Projected, to.detail().as_deref(), None)?;
            Ok(Status::Projected)
        }
        Err(error) if guarded && !error.is_transient() => {
            conn.execute_batch("ROLLBACK TO project; RELEASE project")?;
            let detail = not_projected(&error);
            set_status(conn, id, Status::Quarantined, Some(&detail), None)?;
            Ok(Status::Quarantined)
        }
        Err(error) => Err(error),
    }
}

/// One journal entry, without its body.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct DeliverySummary {
    pub id: i64,
    pub platform: String,
    pub source_id: Option<i64>,
    pub trigger: Option<String>,
    pub received_at: String,
    pub via: String,
    pub content_type: Option<String>,
    pub body_bytes: i64,
    pub identity: String,
    pub status: Status,
    pub detail: Option<String>,
    pub duplicate_of: Option<i64>,
}

const SUMMARY_COLUMNS: &str = "id, platform, source_id, trigger, received_at, via, content_type,
    length(body), identity, status, detail, duplicate_of";

fn summary(row: &Row<'_>) -> rusqlite::Result<DeliverySummary> {
    let status: String = row.get(9)?;
    Ok(DeliverySummary {
        id: row.get(0)?,
        platform: row.get(1)?,
        source_id: row.get(2)?,
        trigger: row.get(3)?,
        received_at: row.get(4)?,
        via: row.get(5)?,
        content_type: row.get(6)?,
        body_bytes: row.get(7)?,
        identity: row.get(8)?,
        status: Status::parse(&status).unwrap_or(Status::Quarantined),
        detail: row.get(10)?,
        duplicate_of: row.get(11)?,
    })
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<Status>,
    pub platform: Option<Platform>,
    pub source_id: Option<i64>,
    /// Only deliveries older than this id (for paging back).
    pub before: Option<i64>,
    pub limit: u32,
}

/// The most recent deliveries matching `filter`, newest first.
pub fn list(conn: &Connection, filter: &DeliveryFilter) -> Result<Vec<DeliverySummary>> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM deliveries
         WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR platform = ?2)
           AND (?3 IS NULL OR source_id = ?3) AND (?5 IS NULL OR id < ?5)
         ORDER BY id DESC LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            filter.status.map(Status::as_str),
            filter.platform.map(Platform::as_str),
            filter.source_id,
            filter.limit,
            filter.before
        ],
        summary,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Each half is written as its partial index's definition, so that both count from an index.
const COUNTS: &str = "SELECT status, count(*) FROM deliveries WHERE status != 'pending'
        GROUP BY status
    UNION ALL
    SELECT 'pending', count(*) FROM deliveries WHERE status = 'pending' HAVING count(*) > 0";

/// Counts of deliveries by status.
pub fn counts(conn: &Connection) -> Result<BTreeMap<String, i64>> {
    let mut stmt = conn.prepare_cached(COUNTS)?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Reads a stored delivery back as it was received.
pub fn load(conn: &Connection, id: i64) -> Result<Option<NewDelivery>> {
    conn.prepare_cached(
        "SELECT platform, source_id, trigger, received_at, via, content_type, headers, body,
            time_zone FROM deliveries WHERE id = ?1",
    )?
    .query_row([id], stored_delivery)
    .optional()?
    .transpose()
}

/// A journaled delivery parsed again with today's parsers, keeping the identity it was given
/// on arrival (duplicates were judged by it).
pub fn reparse(conn: &Connection, id: i64) -> Result<Prepared> {
    let missing = || StoreError::Invalid(format!("there is no delivery {id}"));
    let identity: String = conn
        .prepare_cached("SELECT identity FROM deliveries WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .ok_or_else(missing)?;
    let mut prepared = Prepared::new(load(conn, id)?.ok_or_else(missing)?);
    prepared.identity = identity;
    Ok(prepared)
}

fn stored_delivery(row: &Row<'_>) -> rusqlite::Result<Result<NewDelivery>> {
    // Text read where it lies in the row: a reindex reads 1,000,000 of them.
    let text = |index: usize| -> rusqlite::Result<&str> {
        row.get_ref(index)?
            .as_str()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, e.into()))
    };
    let (platform, received_at, via) = (text(0)?, text(3)?, text(4)?);
    let (headers, zone) = (text(6)?, text(8)?);
    let body: Vec<u8> = row.get(7)?;
    let trigger = row.get(2)?;
    let source_id = row.get(1)?;
    let content_type = row.get(5)?;
    Ok((|| {
        let corrupt = |what: &str| StoreError::Invalid(format!("stored delivery has a bad {what}"));
        Ok(NewDelivery {
            platform: platform.parse().map_err(|_| corrupt("platform"))?,
            source_id,
            trigger,
            received_at: parse_time(received_at).ok_or_else(|| corrupt("received_at"))?,
            via: match via {
                "import" => Via::Import,
                "self_test" => Via::SelfTest,
                _ => Via::Webhook,
            },
            content_type,
            headers: serde_json::from_str(headers)?,
            body: Bytes::from(body),
            time_zone: zone.parse().map_err(|_| corrupt("time zone"))?,
        })
    })())
}

/// Rebuilds every projected table from the journal, re-parsing each original delivery with
/// today's parsers (a delivery quarantined yesterday may be projected today). Runs in the
/// caller's transaction, so readers see the old tables or the new ones, never a mix.
pub fn reindex(conn: &Connection) -> Result<ReindexReport> {
    // Foreign keys are checked once at commit rather than by every insert, which otherwise
    // keeps a statement journal for each (SQLite resets this when the transaction ends).
    conn.pragma_update(None, "defer_foreign_keys", true)?;
    let mut rebuild = projection::Rebuild::start(conn)?;
    let mut report = ReindexReport::default();
    let mut after = 0;
    loop {
        let page = originals_after(conn, after)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for original in page {
            let understanding = platforms::parse(&original.delivery.as_parser_input());
            let prepared = Prepared {
                delivery: original.delivery,
                body_sha256: original.body_sha256,
                // The identity given on arrival stands: duplicates were judged by it.
                identity: original.identity,
                understanding,
            };
            let (status, detail) = rebuild_one(conn, &mut rebuild, original.id, &prepared)?;
            if (status, &detail) != (original.status, &original.detail) {
                set_status(conn, original.id, status, detail.as_deref(), None)?;
            }
            report.count(status);
        }
    }
    rebuild.finish(conn)?;
    Ok(report)
}

/// An original (not duplicate) delivery as the journal holds it.
struct Original {
    id: i64,
    identity: String,
    body_sha256: String,
    status: Status,
    detail: Option<String>,
    delivery: NewDelivery,
}

/// Originals read per query during a rebuild (by id, so that status updates cannot disturb a
/// running scan).
const REINDEX_PAGE: i64 = 1000;

fn originals_after(conn: &Connection, after: i64) -> Result<Vec<Original>> {
    let mut stmt = conn.prepare_cached(
        "SELECT platform, source_id, trigger, received_at, via, content_type, headers, body,
            time_zone, id, identity, body_sha256, status, detail
         FROM deliveries WHERE id > ?1 AND duplicate_of IS NULL ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map([after, REINDEX_PAGE], |row| {
        let status: String = row.get(12)?;
        let (id, identity, body_sha256, detail) =
            (row.get(9)?, row.get(10)?, row.get(11)?, row.get(13)?);
        Ok(stored_delivery(row)?.map(|delivery| Original {
            id,
            identity,
            body_sha256,
            status: Status::parse(&status).unwrap_or(Status::Quarantined),
            detail,
            delivery,
        }))
    })?;
    let mut originals = Vec::new();
    for row in rows {
        originals.push(row??);
    }
    Ok(originals)
}

/// What [`project`] decides for a delivery, folded into a rebuild instead.
fn rebuild_one(
    conn: &Connection,
    rebuild: &mut projection::Rebuild,
    id: i64,
    prepared: &Prepared,
) -> Result<(Status, Option<String>)> {
    let to = match judge(prepared) {
        Judgement::Final(status, detail) => return Ok((status, detail)),
        Judgement::Facts(to) => to,
    };
    match rebuild.apply(conn, id, &prepared.identity, to.observed_at, to.facts) {
        Ok(()) => Ok((Status::Projected, to.detail())),
        // Refused before anything was written (a person with no email and no id).
        Err(error @ StoreError::Invalid(_)) => {
            Ok((Status::Quarantined, Some(not_projected(&error))))
        }
        Err(error) => Err(error),
    }
}

/// Parses one original delivery again with today's parsers and replaces what it projected
/// (after a parser fix). A duplicate is refused: its original is the one to reprocess.
pub fn reprocess(conn: &Connection, id: i64) -> Result<Receipt> {
    let duplicate_of: Option<i64> = conn
        .prepare_cached("SELECT duplicate_of FROM deliveries WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .ok_or_else(|| StoreError::Invalid(format!("there is no delivery {id}")))?;
    if let Some(original) = duplicate_of {
        return Err(StoreError::Invalid(format!(
            "delivery {id} is a duplicate of delivery {original}: reprocess that one"
        )));
    }
    projection::retract(conn, id)?;
    let status = project(conn, id, &reparse(conn, id)?, Containment::Quarantine)?;
    Ok(Receipt {
        delivery: id,
        status,
    })
}

/// Reprocesses every quarantined delivery.
pub fn reprocess_quarantined(conn: &Connection) -> Result<ReindexReport> {
    let ids: Vec<i64> = conn
        // `status != 'pending'` restates the status index's condition, so SQLite may use it.
        .prepare(
            "SELECT id FROM deliveries
             WHERE status = 'quarantined' AND status != 'pending' AND duplicate_of IS NULL
             ORDER BY id",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut report = ReindexReport::default();
    for id in ids {
        report.count(reprocess(conn, id)?.status);
    }
    Ok(report)
}

/// A stored delivery in full: its summary, the headers kept and the raw body.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub summary: DeliverySummary,
    pub headers: BTreeMap<String, String>,
    pub time_zone: String,
    /// The body as text (invalid UTF-8 replaced), exactly as received otherwise.
    pub body: String,
    pub body_is_utf8: bool,
}

pub fn detail(conn: &Connection, id: i64) -> Result<Option<DeliveryDetail>> {
    let sql =
        format!("SELECT {SUMMARY_COLUMNS}, headers, time_zone, body FROM deliveries WHERE id = ?1");
    let row = conn
        .prepare_cached(&sql)?
        .query_row([id], |row| {
            let headers: String = row.get(12)?;
            let body: Vec<u8> = row.get(14)?;
            Ok((summary(row)?, headers, row.get::<_, String>(13)?, body))
        })
        .optional()?;
    let Some((summary, headers, time_zone, body)) = row else {
        return Ok(None);
    };
    let body_is_utf8 = std::str::from_utf8(&body).is_ok();
    Ok(Some(DeliveryDetail {
        summary,
        headers: serde_json::from_str(&headers)?,
        time_zone,
        body: String::from_utf8_lossy(&body).into_owned(),
        body_is_utf8,
    }))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ReindexReport {
    pub projected: u64,
    pub quarantined: u64,
    pub ignored: u64,
}

impl ReindexReport {
    fn count(&mut self, status: Status) {
        match status {
            Status::Projected => self.projected += 1,
            Status::Quarantined => self.quarantined += 1,
            Status::Ignored => self.ignored += 1,
            Status::Duplicate | Status::Pending => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_writer, StoreOptions};

    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params = vec!["x"; stmt.parameter_count()];
        stmt.query_map(rusqlite::params_from_iter(params), |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn delivery(source_id: Option<i64>, received_at: &str, n: u32) -> Prepared {
        Prepared::new(NewDelivery {
            platform: Platform::Tagmango,
            source_id,
            trigger: Some("webinar.completed.all".into()),
            received_at: parse_time(received_at).unwrap(),
            via: Via::Webhook,
            content_type: Some("application/json".into()),
            headers: BTreeMap::new(),
            body: format!(
                r#"{{"name":"P{n}","email":"p{n}@example.com","webinar":"W","webinarId":"w1"}}"#
            )
            .into(),
            time_zone: chrono_tz::UTC,
        })
    }

    /// Waiting deliveries are in an index of their own (migration 17): the counts read both.
    #[test]
    fn waiting_deliveries_and_the_counts_come_from_the_partial_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let counts = plan(&conn, COUNTS);
        for index in ["deliveries_status", "deliveries_pending"] {
            assert!(
                counts
                    .iter()
                    .any(|step| step.contains(&format!("COVERING INDEX {index}"))),
                "{counts:?}"
            );
        }
        assert_eq!(
            plan(&conn, WAITING_WITH_IDENTITY),
            ["SCAN deliveries USING INDEX deliveries_pending"]
        );
        let first = append(&conn, &delivery(None, "2026-01-01T10:00:00.000Z", 1)).unwrap();
        append(&conn, &delivery(None, "2026-01-01T10:00:01.000Z", 2)).unwrap();
        set_status(
            &conn,
            first.delivery,
            Status::Quarantined,
            Some("test"),
            None,
        )
        .unwrap();
        let expected = BTreeMap::from([("pending".to_owned(), 1), ("quarantined".to_owned(), 1)]);
        assert_eq!(counts_of(&conn), expected);
        set_status(&conn, first.delivery + 1, Status::Ignored, None, None).unwrap();
        assert!(
            !counts_of(&conn).contains_key("pending"),
            "none waiting, none counted"
        );
    }

    fn counts_of(conn: &Connection) -> BTreeMap<String, i64> {
        counts(conn).unwrap()
    }

    #[test]
    fn a_source_keeps_its_newest_delivery_whatever_order_they_are_journaled_in() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let source =
            crate::store::sources::add(&conn, Platform::Tagmango, "t", chrono_tz::UTC, &[])
                .unwrap()
                .id;
        let last = || crate::store::subscriptions::last_delivery(&conn, source).unwrap();
        assert_eq!(last(), None);
        append(
            &conn,
            &delivery(Some(source), "2026-01-01T10:00:05.000Z", 1),
        )
        .unwrap();
        append(
            &conn,
            &delivery(Some(source), "2026-01-01T10:00:02.000Z", 2),
        )
        .unwrap();
        assert_eq!(last().as_deref(), Some("2026-01-01T10:00:05.000Z"));
        append(
            &conn,
            &delivery(Some(source), "2026-01-01T10:00:09.000Z", 3),
        )
        .unwrap();
        assert_eq!(last().as_deref(), Some("2026-01-01T10:00:09.000Z"));
        append(&conn, &delivery(None, "2026-01-01T11:00:00.000Z", 4)).unwrap();
        assert_eq!(last().as_deref(), Some("2026-01-01T10:00:09.000Z"));
    }

    #[test]
    fn a_batch_writes_each_sources_newest_delivery_when_it_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let add = |label| {
            crate::store::sources::add(&conn, Platform::Tagmango, label, chrono_tz::UTC, &[])
                .unwrap()
                .id
        };
        let (one, two) = (add("one"), add("two"));
        let last = |source| crate::store::subscriptions::last_delivery(&conn, source).unwrap();
        let mut appender = Appender::new(&conn).unwrap();
        let times = [
            (one, "2026-01-01T10:00:05.000Z"),
            (two, "2026-01-01T09:00:00.000Z"),
            (one, "2026-01-01T10:00:02.000Z"),
            (one, "2026-01-01T10:00:07.000Z"),
        ];
        for (n, (source, at)) in (1..).zip(times) {
            let receipt = appender
                .append(&delivery(Some(source), at, n), None)
                .unwrap();
            assert_eq!(receipt.status, Status::Pending);
        }
        assert_eq!(last(one), None, "written once, when the batch finishes");
        appender.finish().unwrap();
        assert_eq!(last(one).as_deref(), Some("2026-01-01T10:00:07.000Z"));
        assert_eq!(last(two).as_deref(), Some("2026-01-01T09:00:00.000Z"));
        // A later batch with an older delivery leaves the newest in place.
        append_beside(
            &conn,
            &delivery(Some(one), "2026-01-01T08:00:00.000Z", 9),
            None,
        )
        .unwrap();
        assert_eq!(last(one).as_deref(), Some("2026-01-01T10:00:07.000Z"));
    }

    #[test]
    fn originals_are_found_through_the_identity_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        assert_eq!(
            plan(&conn, ORIGINAL_BY_IDENTITY),
            ["SEARCH deliveries USING INDEX deliveries_identity (identity=?)"]
        );
    }
}
