//! A webinar's timeline: every dated thing that happened to it, in order (created, changed,
//! published, each registration, waiting room, start, each join, end, each replay view,
//! deletion), and the series its charts draw: registrations accumulating, attendees present.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use super::{check_scope, Result, Scope, Zone};
use crate::store::parse_time;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export, rename = "TimelineEntry")]
pub struct Entry {
    pub at: String,
    /// `created`, `changed`, `published`, `registered`, `waiting_room_opened`, `started`,
    /// `joined`, `ended`, `replay_viewed` or `deleted`.
    pub kind: &'static str,
    /// The platform's session id, when the entry belongs to one session.
    pub session: Option<String>,
    pub person_uid: Option<String>,
    pub person: Option<String>,
    /// How the time is known: `exact`, `received_at` (when Rollcall received it; the platform
    /// sent none) or the zone a zone-less time was read in.
    pub basis: Option<String>,
    pub delivery_id: i64,
}

/// A point of a step series: from `at` on, the value is `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Point {
    pub at: String,
    pub value: i64,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Timeline {
    pub time_zone: &'static str,
    /// Every entry about the webinar itself, and the latest [`PERSON_ENTRIES`] about people.
    pub entries: Vec<Entry>,
    /// Entries in all, people's included.
    pub entries_total: u64,
    /// Registrants (audience) accumulating over time.
    pub registrations: Vec<Point>,
    /// Attendees present over time, from attendance with both a join and a leave time.
    pub presence: Vec<Point>,
    /// Attendance records whose presence could be drawn, of `attendance_records`: GoTo and
    /// TagMango send no leave times, so their presence is unknown rather than drawn wrong.
    pub presence_known: u64,
    pub attendance_records: u64,
}

fn kind_name(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "webinar_seen" => "created",
        "webinar_changed" => "changed",
        "webinar_published" => "published",
        "webinar_deleted" => "deleted",
        "registered" => "registered",
        "waiting_room_opened" => "waiting_room_opened",
        "started" => "started",
        "joined" | "attendance_summary" => "joined",
        "ended" => "ended",
        "replay_viewed" => "replay_viewed",
        _ => return None,
    })
}

fn person_label(email: Option<String>, name: Option<String>) -> Option<String> {
    match (name, email) {
        (Some(name), Some(email)) => Some(format!("{name} <{email}>")),
        (name, email) => name.or(email),
    }
}

/// Entries about people (registrations, joins, replay views) sent at most: a webinar of 100,000
/// registrants made a response of 23 MB for a list that shows the latest dozen.
pub const PERSON_ENTRIES: usize = 1000;
/// Points per chart series at most; the chart is a few hundred pixels wide.
pub const SERIES_POINTS: usize = 1000;

/// Rows of the timeline in scope: the webinar's own entries, or the latest people's entries
/// (with how many there are in all, counted before the limit).
const ENTRIES: &str = "
SELECT t.at, t.kind, s.external_id, t.person_uid, p.email,
    coalesce(p.name, nullif(trim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')), '')),
    t.at_basis, t.delivery_id, t.total
FROM (
    SELECT *, count(*) OVER () AS total FROM timeline
    WHERE webinar_uid = ?1 AND (?2 IS NULL OR session_uid = ?2 OR session_uid IS NULL)
      AND (person_uid IS NOT NULL) = ?3 AND kind IN (KINDS)
    ORDER BY at DESC, kind DESC, person_uid DESC
    LIMIT ?4
) t
LEFT JOIN sessions s ON s.uid = t.session_uid
LEFT JOIN people p ON p.uid = t.person_uid";

/// The stored fact kinds the timeline shows, as SQL.
const KINDS: &str = "'webinar_seen', 'webinar_changed', 'webinar_published', 'webinar_deleted',
    'registered', 'waiting_room_opened', 'started', 'joined', 'attendance_summary', 'ended',
    'replay_viewed'";

type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// The webinar's own entries (`people` false, all of them) or the latest `limit` entries about
/// people, newest first, with how many there are.
fn entry_rows(
    conn: &Connection,
    scope: &Scope,
    people: bool,
    limit: usize,
) -> Result<(Vec<Row>, u64)> {
    let mut stmt = conn.prepare_cached(&ENTRIES.replace("KINDS", KINDS))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut total = 0;
    let rows = stmt
        .query_map(
            rusqlite::params![scope.webinar, scope.session_uid(), people, limit],
            |row| {
                Ok((
                    (
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, Option<String>>(4)?,
                        row.get::<_, Option<String>>(5)?,
                        row.get::<_, Option<String>>(6)?,
                        row.get::<_, i64>(7)?,
                    ),
                    row.get::<_, i64>(8)?,
                ))
            },
        )?
        .map(|row| {
            row.map(|(row, count)| {
                total = u64::try_from(count).unwrap_or_default();
                row
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}

/// The timeline of a webinar or one of its sessions, oldest first.
pub fn timeline(conn: &Connection, scope: &Scope, zone: Zone) -> Result<Timeline> {
    check_scope(conn, scope)?;
    let (mut rows, own) = entry_rows(conn, scope, false, usize::MAX)?;
    let (people, about_people) = entry_rows(conn, scope, true, PERSON_ENTRIES)?;
    rows.extend(people);
    rows.sort_by(|a, b| (&a.0, &a.1, &a.3).cmp(&(&b.0, &b.1, &b.3)));
    let entries = rows
        .into_iter()
        .filter_map(
            |(at, kind, session, person_uid, email, name, basis, delivery_id)| {
                Some(Entry {
                    at: zone.local(Some(&at))?,
                    kind: kind_name(&kind)?,
                    session,
                    person_uid,
                    person: person_label(email, name),
                    basis,
                    delivery_id,
                })
            },
        )
        .collect();
    let registrations = registration_series(conn, scope)?;
    let (presence, presence_known, attendance_records) = presence_series(conn, scope)?;
    Ok(Timeline {
        time_zone: zone.name(),
        entries,
        entries_total: own + about_people,
        registrations: points(thin(registrations, SERIES_POINTS), zone),
        presence: points(thin(presence, SERIES_POINTS), zone),
        presence_known,
        attendance_records,
    })
}

/// A step of a series before it is written in the organizer's zone.
type Step = (DateTime<Utc>, i64);

fn points(steps: Vec<Step>, zone: Zone) -> Vec<Point> {
    steps
        .into_iter()
        .map(|(at, value)| Point {
            at: zone.format(&at),
            value,
        })
        .collect()
}

/// A step series cut down to about `max` points: of each run of consecutive points, the highest
/// and the last, so that peaks and the level each run ends at stay drawn.
fn thin(steps: Vec<Step>, max: usize) -> Vec<Step> {
    if steps.len() <= max {
        return steps;
    }
    let run = steps.len().div_ceil(max / 2);
    let mut kept = Vec::with_capacity(max);
    for chunk in steps.chunks(run) {
        let last = chunk.len() - 1;
        let peak = (0..chunk.len())
            .max_by_key(|&i| (chunk[i].1, i))
            .unwrap_or(last);
        if peak != last {
            kept.push(chunk[peak]);
        }
        kept.push(chunk[last]);
    }
    kept
}

fn registration_series(conn: &Connection, scope: &Scope) -> Result<Vec<Step>> {
    let mut stmt = conn.prepare_cached(
        "SELECT min(r.registered_at) AS at FROM registrations r
         JOIN audience_registrants a USING (webinar_uid, person_uid)
         WHERE r.webinar_uid = ?1 AND (?2 IS NULL OR r.session_uid IN (?2, ''))
           AND r.registered_at IS NOT NULL
         GROUP BY r.person_uid ORDER BY at",
    )?;
    let times = stmt
        .query_map(
            rusqlite::params![scope.webinar, scope.session_uid()],
            |row| row.get::<_, String>(0),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(times
        .iter()
        .enumerate()
        .filter_map(|(i, at)| Some((parse_time(at)?, i as i64 + 1)))
        .collect())
}

/// Attendees present over time: each change of the count, one step per second (a join and a
/// leave in the same second make one step, as they are written to the second).
fn presence_series(conn: &Connection, scope: &Scope) -> Result<(Vec<Step>, u64, u64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.first_joined_at, a.last_left_at FROM attendance a
         JOIN audience_attendees USING (webinar_uid, person_uid)
         WHERE a.webinar_uid = ?1 AND (?2 IS NULL OR a.session_uid = ?2) AND a.attended",
    )?;
    let mut records = 0;
    let mut edges: Vec<(DateTime<Utc>, i64)> = Vec::new();
    let rows = stmt.query_map(
        rusqlite::params![scope.webinar, scope.session_uid()],
        |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, Option<String>>(1)?,
            ))
        },
    )?;
    for row in rows {
        let (join, leave) = row?;
        records += 1;
        if let (Some(join), Some(leave)) = (
            join.as_deref().and_then(parse_time),
            leave.as_deref().and_then(parse_time),
        ) {
            edges.push((join, 1));
            edges.push((leave, -1));
        }
    }
    let known = edges.len() as u64 / 2;
    edges.sort();
    let mut steps: Vec<Step> = Vec::new();
    let mut present = 0;
    for (at, change) in edges {
        present += change;
        match steps.last_mut() {
            Some(last) if last.0.timestamp() == at.timestamp() => last.1 = present,
            _ => steps.push((at, present)),
        }
    }
    Ok((steps, known, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[i64]) -> Vec<Step> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| (DateTime::from_timestamp(i as i64, 0).unwrap(), value))
            .collect()
    }

    #[test]
    fn thinning_keeps_peaks_and_the_level_each_run_ends_at() {
        assert_eq!(thin(series(&[1, 2, 3]), 10), series(&[1, 2, 3]));
        let mut values: Vec<i64> = (0..10_000).map(|i| i % 7).collect();
        values[4321] = 99;
        let thinned = thin(series(&values), 1000);
        assert!(thinned.len() <= 1000, "{}", thinned.len());
        assert!(thinned.iter().any(|p| p.1 == 99), "the peak is kept");
        assert_eq!(
            thinned.last(),
            series(&values).last(),
            "the final level is kept"
        );
        assert!(
            thinned.windows(2).all(|w| w[0].0 < w[1].0),
            "still in time order"
        );
    }
}
