//! A webinar's timeline: every dated thing that happened to it, in order (created, changed,
//! published, each registration, waiting room, start, each join, end, each replay view,
//! deletion), and the series its charts draw: registrations accumulating, attendees present.

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

/// The timeline of a webinar or one of its sessions, oldest first.
pub fn timeline(conn: &Connection, scope: &Scope, zone: Zone) -> Result<Timeline> {
    check_scope(conn, scope)?;
    let session_uid = scope.session_uid();
    let mut stmt = conn.prepare_cached(
        "SELECT t.at, t.kind, s.external_id, t.person_uid, p.email,
            coalesce(p.name, nullif(trim(coalesce(p.first_name, '') || ' ' || coalesce(p.last_name, '')), '')),
            t.at_basis, t.delivery_id
         FROM timeline t
         LEFT JOIN sessions s ON s.uid = t.session_uid
         LEFT JOIN people p ON p.uid = t.person_uid
         WHERE t.webinar_uid = ?1 AND (?2 IS NULL OR t.session_uid = ?2 OR t.session_uid IS NULL)
         ORDER BY t.at, t.kind, t.person_uid",
    )?;
    let rows = stmt.query_map(rusqlite::params![scope.webinar, session_uid], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Option<String>>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, Option<String>>(4)?,
            row.get::<_, Option<String>>(5)?,
            row.get::<_, Option<String>>(6)?,
            row.get::<_, i64>(7)?,
        ))
    })?;
    let mut rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.retain(|row| kind_name(&row.1).is_some());
    let about_people = rows.iter().filter(|row| row.3.is_some()).count();
    let mut skip = about_people.saturating_sub(PERSON_ENTRIES);
    let entries_total = rows.len() as u64;
    let mut entries = Vec::new();
    for (at, kind, session, person_uid, email, name, basis, delivery_id) in rows {
        if person_uid.is_some() && skip > 0 {
            skip -= 1;
            continue;
        }
        let (Some(kind), Some(at)) = (kind_name(&kind), zone.local(Some(&at))) else {
            continue;
        };
        entries.push(Entry {
            at,
            kind,
            session,
            person_uid,
            person: person_label(email, name),
            basis,
            delivery_id,
        });
    }
    let registrations = registration_series(conn, scope, zone)?;
    let (presence, presence_known, attendance_records) = presence_series(conn, scope, zone)?;
    Ok(Timeline {
        time_zone: zone.name(),
        entries,
        entries_total,
        registrations: thin(registrations, SERIES_POINTS),
        presence: thin(presence, SERIES_POINTS),
        presence_known,
        attendance_records,
    })
}

/// A step series cut down to about `max` points: of each run of consecutive points, the highest
/// and the last, so that peaks and the level each run ends at stay drawn.
fn thin(points: Vec<Point>, max: usize) -> Vec<Point> {
    if points.len() <= max {
        return points;
    }
    let run = points.len().div_ceil(max / 2);
    let mut kept = Vec::with_capacity(max);
    for chunk in points.chunks(run) {
        let last = chunk.len() - 1;
        let peak = (0..chunk.len())
            .max_by_key(|&i| (chunk[i].value, i))
            .unwrap_or(last);
        if peak != last {
            kept.push(chunk[peak].clone());
        }
        kept.push(chunk[last].clone());
    }
    kept
}

fn registration_series(conn: &Connection, scope: &Scope, zone: Zone) -> Result<Vec<Point>> {
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
        .filter_map(|(i, at)| {
            Some(Point {
                at: zone.local(Some(at))?,
                value: i as i64 + 1,
            })
        })
        .collect())
}

fn presence_series(conn: &Connection, scope: &Scope, zone: Zone) -> Result<(Vec<Point>, u64, u64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.first_joined_at, a.last_left_at FROM attendance a
         JOIN audience_attendees USING (webinar_uid, person_uid)
         WHERE a.webinar_uid = ?1 AND (?2 IS NULL OR a.session_uid = ?2) AND a.attended",
    )?;
    let rows = stmt
        .query_map(
            rusqlite::params![scope.webinar, scope.session_uid()],
            |row| {
                Ok((
                    row.get::<_, Option<String>>(0)?,
                    row.get::<_, Option<String>>(1)?,
                ))
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let records = rows.len() as u64;
    let mut edges: Vec<(chrono::DateTime<chrono::Utc>, i64)> = Vec::new();
    for (join, leave) in &rows {
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
    let mut points: Vec<Point> = Vec::new();
    let mut present = 0;
    for (at, change) in edges {
        present += change;
        let at = zone.format(&at);
        match points.last_mut() {
            Some(last) if last.at == at => last.value = present,
            _ => points.push(Point { at, value: present }),
        }
    }
    Ok((points, known, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[i64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Point {
                at: format!("{i:05}"),
                value,
            })
            .collect()
    }

    #[test]
    fn thinning_keeps_peaks_and_the_level_each_run_ends_at() {
        assert_eq!(thin(series(&[1, 2, 3]), 10), series(&[1, 2, 3]));
        let mut values: Vec<i64> = (0..10_000).map(|i| i % 7).collect();
        values[4321] = 99;
        let thinned = thin(series(&values), 1000);
        assert!(thinned.len() <= 1000, "{}", thinned.len());
        assert!(thinned.iter().any(|p| p.value == 99), "the peak is kept");
        assert_eq!(
            thinned.last(),
            series(&values).last(),
            "the final level is kept"
        );
        assert!(
            thinned.windows(2).all(|w| w[0].at < w[1].at),
            "still in time order"
        );
    }
}
