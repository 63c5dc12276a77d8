//! The webinar list and each webinar's header: every webinar from every platform with its
//! schedule, status and headline counts, filtered and sorted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{ratio, ReportError, Result, Zone};
use crate::facts::Platform;
use crate::store::format_time;

/// Where a webinar is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export, rename = "WebinarStatus")]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Scheduled,
    Live,
    Ended,
    Deleted,
}

/// A webinar's identity, schedule and status, times in the organizer's zone.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct WebinarInfo {
    pub uid: String,
    pub platform: String,
    pub platform_name: &'static str,
    pub external_id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub registration_url: Option<String>,
    pub kind: Option<String>,
    pub recurrence: Option<String>,
    pub owner_name: Option<String>,
    pub owner_email: Option<String>,
    pub scheduled_start: Option<String>,
    pub scheduled_end: Option<String>,
    pub created_at: Option<String>,
    pub published_at: Option<String>,
    pub changed_at: Option<String>,
    pub deleted_at: Option<String>,
    pub waiting_room_opened_at: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// The zone lifecycle times were read in when the platform sent them without one.
    pub times_assumed_zone: Option<String>,
    pub status: Status,
    pub extra: BTreeMap<String, String>,
    pub sessions: Vec<SessionInfo>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SessionInfo {
    /// The platform's session id.
    pub id: String,
    pub scheduled_start: Option<String>,
    pub scheduled_end: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub url: Option<String>,
    pub status: Status,
}

/// What the platform told us happened decides; without start and end events (GoTo sends
/// none), the schedule does.
fn status(
    deleted: bool,
    started: Option<&str>,
    ended: Option<&str>,
    schedule: (Option<&str>, Option<&str>),
) -> Status {
    match (deleted, started, ended) {
        (true, _, _) => Status::Deleted,
        (_, Some(started), Some(ended)) if started > ended => Status::Live,
        (_, _, Some(_)) => Status::Ended,
        (_, Some(_), None) => Status::Live,
        _ => by_schedule(schedule),
    }
}

fn by_schedule((start, end): (Option<&str>, Option<&str>)) -> Status {
    let now = format_time(&Utc::now());
    match (start, end) {
        (_, Some(end)) if end < now.as_str() => Status::Ended,
        (Some(start), _) if start <= now.as_str() => Status::Live,
        _ => Status::Scheduled,
    }
}

/// A webinar's columns; a series without a schedule of its own spans its sessions'.
const INFO_COLUMNS: &str = "uid, platform, external_id, title, description, url, registration_url,
    kind, recurrence, owner_name, owner_email,
    coalesce(scheduled_start,
        (SELECT min(s.scheduled_start) FROM sessions s WHERE s.webinar_uid = w.uid)),
    coalesce(scheduled_end,
        (SELECT max(s.scheduled_end) FROM sessions s WHERE s.webinar_uid = w.uid)),
    created_at,
    published_at, changed_at, deleted_at, waiting_room_opened_at, started_at, ended_at,
    times_assumed_zone, extra";

fn info_row(row: &Row<'_>, zone: Zone) -> rusqlite::Result<WebinarInfo> {
    let platform: String = row.get(1)?;
    let local = |i: usize| -> rusqlite::Result<Option<String>> {
        Ok(zone.local(row.get::<_, Option<String>>(i)?.as_deref()))
    };
    let started: Option<String> = row.get(18)?;
    let ended: Option<String> = row.get(19)?;
    let deleted: Option<String> = row.get(16)?;
    let scheduled: (Option<String>, Option<String>) = (row.get(11)?, row.get(12)?);
    let extra: String = row.get(21)?;
    Ok(WebinarInfo {
        uid: row.get(0)?,
        platform_name: platform
            .parse::<Platform>()
            .map_or("", Platform::display_name),
        platform,
        external_id: row.get(2)?,
        title: row.get(3)?,
        description: row.get(4)?,
        url: row.get(5)?,
        registration_url: row.get(6)?,
        kind: row.get(7)?,
        recurrence: row.get(8)?,
        owner_name: row.get(9)?,
        owner_email: row.get(10)?,
        scheduled_start: local(11)?,
        scheduled_end: local(12)?,
        created_at: local(13)?,
        published_at: local(14)?,
        changed_at: local(15)?,
        deleted_at: local(16)?,
        waiting_room_opened_at: local(17)?,
        started_at: local(18)?,
        ended_at: local(19)?,
        times_assumed_zone: row.get(20)?,
        status: status(
            deleted.is_some(),
            started.as_deref(),
            ended.as_deref(),
            (scheduled.0.as_deref(), scheduled.1.as_deref()),
        ),
        extra: serde_json::from_str(&extra).unwrap_or_default(),
        sessions: Vec::new(),
    })
}

/// One webinar's header with its sessions.
pub fn info(conn: &Connection, uid: &str, zone: Zone) -> Result<WebinarInfo> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM webinars w WHERE uid = ?1");
    let mut info = conn
        .prepare_cached(&sql)?
        .query_row([uid], |row| info_row(row, zone))
        .optional()?
        .ok_or_else(|| ReportError::UnknownWebinar(uid.to_owned()))?;
    info.sessions = sessions(conn, uid, zone)?;
    if info.status != Status::Deleted && info.sessions.iter().any(|s| s.status == Status::Live) {
        info.status = Status::Live;
    }
    Ok(info)
}

fn sessions(conn: &Connection, webinar_uid: &str, zone: Zone) -> Result<Vec<SessionInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT external_id, scheduled_start, scheduled_end, started_at, ended_at, url
         FROM sessions WHERE webinar_uid = ?1
         ORDER BY coalesce(started_at, scheduled_start), external_id",
    )?;
    let rows = stmt.query_map([webinar_uid], |row| {
        let started: Option<String> = row.get(3)?;
        let ended: Option<String> = row.get(4)?;
        let scheduled: (Option<String>, Option<String>) = (row.get(1)?, row.get(2)?);
        Ok(SessionInfo {
            id: row.get(0)?,
            scheduled_start: zone.local(row.get::<_, Option<String>>(1)?.as_deref()),
            scheduled_end: zone.local(row.get::<_, Option<String>>(2)?.as_deref()),
            started_at: zone.local(started.as_deref()),
            ended_at: zone.local(ended.as_deref()),
            url: row.get(5)?,
            status: status(
                false,
                started.as_deref(),
                ended.as_deref(),
                (scheduled.0.as_deref(), scheduled.1.as_deref()),
            ),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How to order the webinar list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Date,
    Title,
    Registered,
    Attended,
    AttendanceRate,
}

impl std::str::FromStr for Sort {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self> {
        super::parse_word(s).ok_or_else(|| ReportError::BadParameter {
            name: "sort",
            message: format!(
                "{s:?} is not a sort order: date, title, registered, attended or attendance_rate"
            ),
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub platform: Option<Platform>,
    /// Webinars on or after this instant (by actual start, else scheduled start, else creation).
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Words that must appear in the title or id.
    pub text: Option<String>,
    pub sort: Sort,
    pub ascending: bool,
}

/// One line of the webinar list.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct WebinarLine {
    #[serde(flatten)]
    pub info: WebinarInfo,
    pub registered: u64,
    pub attended: u64,
    pub attendance_rate: Option<f64>,
    pub replay_viewers: u64,
    /// The instant the list sorts and filters by (start, else schedule, else creation).
    pub date: Option<String>,
}

/// The date a webinar is listed and filtered by: its start, else its (first session's) schedule,
/// else its creation.
const DATE: &str = "coalesce(started_at, scheduled_start,
    (SELECT min(s.scheduled_start) FROM sessions s WHERE s.webinar_uid = w.uid), created_at)";

/// The filter, on `webinars w` with its `date`.
const MATCHES: &str = "(?1 IS NULL OR platform = ?1)
    AND (?2 IS NULL OR date >= ?2) AND (?3 IS NULL OR date < ?3)
    AND (?4 IS NULL OR instr(lower(coalesce(title, '') || ' ' || external_id), lower(?4)) > 0)";

/// What the list sorts by, read for every matching webinar; the rest only for those shown.
#[derive(Debug, Clone)]
struct SortKey {
    uid: String,
    date_utc: Option<String>,
    title: Option<String>,
    registered: u64,
    attended: u64,
    attendance_rate: Option<f64>,
}

/// Every webinar matching `filter`, with headline counts, sorted.
pub fn list(conn: &Connection, filter: &Filter, zone: Zone) -> Result<Vec<WebinarLine>> {
    Ok(page(conn, filter, zone, usize::MAX)?.0)
}

/// The first `limit` webinars of the sorted list, and how many match. Sorting needs only a few
/// columns, so those are read for every match and the rest only for the page shown (a year of
/// webinars is thousands).
pub fn page(
    conn: &Connection,
    filter: &Filter,
    zone: Zone,
    limit: usize,
) -> Result<(Vec<WebinarLine>, usize)> {
    let mut keys = sort_keys(conn, filter)?;
    keys.sort_by(|a, b| compare(a, b, filter.sort, filter.ascending));
    let total = keys.len();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS}, (SELECT count(DISTINCT person_uid) FROM facts f
            WHERE f.webinar_uid = w.uid AND f.kind = 'replay_viewed')
         FROM webinars w WHERE uid = ?1"
    ))?;
    let mut lines = Vec::with_capacity(total.min(limit));
    for key in keys.into_iter().take(limit) {
        lines.push(stmt.query_row([&key.uid], |row| {
            Ok(WebinarLine {
                info: info_row(row, zone)?,
                date: zone.local(key.date_utc.as_deref()),
                registered: key.registered,
                attended: key.attended,
                attendance_rate: key.attendance_rate,
                replay_viewers: row.get(22)?,
            })
        })?);
    }
    Ok((lines, total))
}

fn sort_keys(conn: &Connection, filter: &Filter) -> Result<Vec<SortKey>> {
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from > to {
            return Err(ReportError::BadParameter {
                name: "from",
                message: "the range starts after it ends".into(),
            });
        }
    }
    let sql = format!(
        "SELECT uid, title, {DATE} AS date, coalesce(c.registered, 0), coalesce(c.attended, 0),
            coalesce(c.registered_attended, 0)
         FROM webinars w LEFT JOIN webinar_counts c ON c.webinar_uid = w.uid
         WHERE {MATCHES}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        rusqlite::params![
            filter.platform.map(Platform::as_str),
            filter.from.as_ref().map(format_time),
            filter.to.as_ref().map(format_time),
            filter
                .text
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty()),
        ],
        |row| {
            let registered: u64 = row.get(3)?;
            let attended_registrants: u64 = row.get(5)?;
            Ok(SortKey {
                uid: row.get(0)?,
                title: row.get(1)?,
                date_utc: row.get(2)?,
                registered,
                attended: row.get(4)?,
                attendance_rate: ratio(attended_registrants, registered),
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn compare(a: &SortKey, b: &SortKey, by: Sort, ascending: bool) -> std::cmp::Ordering {
    let order = match by {
        Sort::Date => a.date_utc.cmp(&b.date_utc),
        Sort::Title => a.title.cmp(&b.title),
        Sort::Registered => a.registered.cmp(&b.registered),
        Sort::Attended => a.attended.cmp(&b.attended),
        Sort::AttendanceRate => a
            .attendance_rate
            .partial_cmp(&b.attendance_rate)
            .unwrap_or(std::cmp::Ordering::Equal),
    };
    let order = order.then_with(|| a.uid.cmp(&b.uid));
    if ascending {
        order
    } else {
        order.reverse()
    }
}
