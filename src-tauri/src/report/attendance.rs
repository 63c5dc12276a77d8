//! The attendance report of one webinar, or of one of its sessions: who registered, who came,
//! for how long, who watched the replay, where registrants came from, and the per-person rows
//! the tables and CSV exports list.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use rusqlite::{Connection, Row};
use serde::Serialize;

use super::webinars::{self, WebinarInfo};
use super::{check_scope, ratio, Result, Scope, Zone};
use crate::store::projection::participants;

/// One person's part in a webinar (or session): registration, attendance, replay.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Participant {
    pub person_uid: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The full name, as sent or made from first and last names.
    pub name: Option<String>,
    pub phone: Option<String>,
    pub organization: Option<String>,
    pub job_title: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// `audience`, `host` or `guest_speaker`.
    pub role: &'static str,
    /// Registered, and not cancelled or denied.
    pub registered: bool,
    pub registration_status: Option<String>,
    pub registered_at: Option<String>,
    /// True when the registration time is when Rollcall received it (the platform sent none).
    pub registered_at_is_receipt: bool,
    pub source: Option<String>,
    pub referrer: Option<String>,
    pub tracking_code: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub join_url: Option<String>,
    pub custom_fields: BTreeMap<String, String>,
    pub attended: bool,
    pub first_joined_at: Option<String>,
    pub last_left_at: Option<String>,
    pub join_count: u64,
    /// Seconds in session; `None` when the platform does not say (never guessed).
    pub time_in_session_secs: Option<u64>,
    pub engaged_secs: Option<u64>,
    /// The platform's own attendance rate, percent (Livestorm).
    pub platform_attendance_rate: Option<f64>,
    pub replay_views: u64,
    pub replay_secs: Option<u64>,
    #[serde(skip)]
    rate_sum: f64,
    #[serde(skip)]
    rate_count: u64,
}

impl Participant {
    pub fn is_audience(&self) -> bool {
        self.role == "audience"
    }

    /// Registered audience that did not come.
    pub fn is_no_show(&self) -> bool {
        self.is_audience() && self.registered && !self.attended
    }
}

/// The columns `participant` reads: a person's figures (`e`, see
/// `store::projection::participants::FIGURES`) and their details (`p`).
const PARTICIPANT_COLUMNS: &str = "e.person_uid, p.email, p.first_name, p.last_name, p.name,
    p.phone, p.organization, p.job_title, p.city, p.country,
    e.rank, e.registered, e.status, e.registered_at, e.at_receipt, e.source, e.referrer,
    e.tracking_code, e.utm_source, e.utm_medium, e.utm_campaign, e.utm_term, e.utm_content,
    e.join_url, e.custom_fields,
    e.attended, e.first_joined_at, e.last_left_at, e.join_count, e.secs, e.engaged,
    e.rate_sum, e.rate_count, e.replay_views, e.replay_secs";

/// Lists and exports go by name: the summary is stored in this order (its primary key), rows
/// grouped on request are sorted by the same key computed from `people`.
const BY_NAME: &str = "ORDER BY e.sort_key, e.person_uid";
static BY_NAME_FROM_ROWS: LazyLock<String> =
    LazyLock::new(|| format!("ORDER BY {}, e.person_uid", participants::SORT_KEY));

/// Where a webinar's per-person figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Figures {
    /// The summary the projection keeps (a whole webinar).
    Summary,
    /// Grouped from the registration, attendance and replay rows on each request (a session,
    /// which the summary does not split; and the check that the summary is right).
    Rows,
}

/// The per-person rows of a webinar or session, by name when `ordered`. One query serves the
/// report's numbers, the tables and the CSV exports, so they always agree.
fn participants_sql(figures: Figures, session: bool, ordered: bool) -> String {
    let columns = PARTICIPANT_COLUMNS;
    if figures == Figures::Summary {
        let order = if ordered { BY_NAME } else { "" };
        return format!(
            "SELECT {columns} FROM participants e JOIN people p ON p.uid = e.person_uid
             WHERE e.webinar_uid = ?1 {order}"
        );
    }
    // A session's registrations include those for the whole webinar (session ''); replay
    // views belong to the webinar.
    let (registrations, attendance) = if session {
        (
            "webinar_uid = ?1 AND session_uid IN (?2, '')",
            "webinar_uid = ?1 AND session_uid = ?2",
        )
    } else {
        ("webinar_uid = ?1", "webinar_uid = ?1")
    };
    let order = if ordered {
        BY_NAME_FROM_ROWS.as_str()
    } else {
        ""
    };
    format!(
        "WITH rows AS ({}),
         e AS (SELECT person_uid, {} FROM rows GROUP BY person_uid)
         SELECT {columns} FROM e JOIN people p ON p.uid = e.person_uid {order}",
        participants::rows(registrations, attendance, "webinar_uid = ?1"),
        participants::FIGURES,
    )
}

fn role_name(rank: i64) -> &'static str {
    match rank {
        2 => "host",
        1 => "guest_speaker",
        _ => "audience",
    }
}

fn custom_fields(raw: Option<String>) -> BTreeMap<String, String> {
    let maps: Vec<BTreeMap<String, String>> = raw
        .and_then(|r| serde_json::from_str(&r).ok())
        .unwrap_or_default();
    maps.into_iter().flatten().collect()
}

fn full_name(first: Option<&str>, last: Option<&str>, name: Option<&str>) -> Option<String> {
    let joined = [first, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    name.map(str::to_owned)
        .or((!joined.is_empty()).then_some(joined))
}

fn participant(row: &Row<'_>, zone: Zone) -> rusqlite::Result<Participant> {
    let local = |i: usize| -> rusqlite::Result<Option<String>> {
        Ok(zone.local(row.get::<_, Option<String>>(i)?.as_deref()))
    };
    let secs = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row
            .get::<_, Option<i64>>(i)?
            .and_then(|s| u64::try_from(s).ok()))
    };
    let first_name: Option<String> = row.get(2)?;
    let last_name: Option<String> = row.get(3)?;
    let name: Option<String> = row.get(4)?;
    let rate_sum: f64 = row.get(31)?;
    let rate_count: u64 = row.get(32)?;
    Ok(Participant {
        person_uid: row.get(0)?,
        email: row.get(1)?,
        name: full_name(first_name.as_deref(), last_name.as_deref(), name.as_deref()),
        first_name,
        last_name,
        phone: row.get(5)?,
        organization: row.get(6)?,
        job_title: row.get(7)?,
        city: row.get(8)?,
        country: row.get(9)?,
        role: role_name(row.get(10)?),
        registered: row.get(11)?,
        registration_status: row.get(12)?,
        registered_at: local(13)?,
        registered_at_is_receipt: row.get(14)?,
        source: row.get(15)?,
        referrer: row.get(16)?,
        tracking_code: row.get(17)?,
        utm_source: row.get(18)?,
        utm_medium: row.get(19)?,
        utm_campaign: row.get(20)?,
        utm_term: row.get(21)?,
        utm_content: row.get(22)?,
        join_url: row.get(23)?,
        custom_fields: custom_fields(row.get(24)?),
        attended: row.get(25)?,
        first_joined_at: local(26)?,
        last_left_at: local(27)?,
        join_count: row.get(28)?,
        time_in_session_secs: secs(29)?,
        engaged_secs: secs(30)?,
        platform_attendance_rate: (rate_count > 0)
            .then(|| (rate_sum / rate_count as f64 * 100.0).round() / 100.0),
        rate_sum,
        rate_count,
        replay_views: row.get(33)?,
        replay_secs: secs(34)?,
    })
}

/// Calls `visit` with each participant in turn, by name, holding one row at a time (exports
/// of a 100,000-person webinar stream).
pub fn each_participant(
    conn: &Connection,
    scope: &Scope,
    zone: Zone,
    visit: impl FnMut(Participant) -> Result<()>,
) -> Result<()> {
    visit_participants(conn, scope, zone, Figures::Summary, true, visit)
}

/// [`each_participant`] with every figure grouped afresh from the rows it summarizes, for the
/// tests that check the summary.
#[doc(hidden)]
pub fn each_participant_from_rows(
    conn: &Connection,
    scope: &Scope,
    zone: Zone,
    visit: impl FnMut(Participant) -> Result<()>,
) -> Result<()> {
    visit_participants(conn, scope, zone, Figures::Rows, true, visit)
}

fn visit_participants(
    conn: &Connection,
    scope: &Scope,
    zone: Zone,
    figures: Figures,
    ordered: bool,
    mut visit: impl FnMut(Participant) -> Result<()>,
) -> Result<()> {
    check_scope(conn, scope)?;
    let session = scope.session_uid();
    let figures = if session.is_some() {
        Figures::Rows
    } else {
        figures
    };
    let mut stmt = conn.prepare_cached(&participants_sql(figures, session.is_some(), ordered))?;
    let mut rows = match &session {
        Some(session) => stmt.query(rusqlite::params![scope.webinar, session])?,
        None => stmt.query([&scope.webinar])?,
    };
    while let Some(row) = rows.next()? {
        visit(participant(row, zone)?)?;
    }
    Ok(())
}

/// The first `limit` people of `audience` in scope, by name, and how many there are: a list of
/// 100,000 attendees was a response of 80 MB for a table that shows a screenful. For a whole
/// webinar the summary is filtered and counted in SQL, so only the page is read in full.
pub fn audience_page(
    conn: &Connection,
    scope: &Scope,
    zone: Zone,
    audience: Audience,
    limit: usize,
) -> Result<(Vec<Participant>, u64)> {
    if scope.session.is_some() {
        return audience_page_from_rows(conn, scope, zone, audience, limit);
    }
    check_scope(conn, scope)?;
    let condition = audience.condition();
    let total: u64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM participants e WHERE e.webinar_uid = ?1 AND {condition}"
        ))?
        .query_row([&scope.webinar], |row| row.get(0))?;
    let sql = format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM participants e JOIN people p ON p.uid = e.person_uid
         WHERE e.webinar_uid = ?1 AND {condition} {BY_NAME} LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query(rusqlite::params![scope.webinar, limit])?;
    let mut page = Vec::new();
    while let Some(row) = rows.next()? {
        page.push(participant(row, zone)?);
    }
    Ok((page, total))
}

/// [`audience_page`] filtering every participant grouped afresh (a session's lists, and the
/// tests that check the summary).
#[doc(hidden)]
pub fn audience_page_from_rows(
    conn: &Connection,
    scope: &Scope,
    zone: Zone,
    audience: Audience,
    limit: usize,
) -> Result<(Vec<Participant>, u64)> {
    let (mut page, mut total) = (Vec::new(), 0);
    each_participant_from_rows(conn, scope, zone, |p| {
        if audience.includes(&p) {
            total += 1;
            if page.len() < limit {
                page.push(p);
            }
        }
        Ok(())
    })?;
    Ok((page, total))
}

/// The custom registration fields seen in scope, sorted: the extra columns of an export. A
/// whole webinar's come from the names the participants summary keeps per person: reading
/// every person's fields took a sixth of an export of 100,000 people.
pub fn custom_field_names(conn: &Connection, scope: &Scope) -> Result<Vec<String>> {
    let Some(session) = scope.session_uid() else {
        let sets: Vec<String> = conn
            .prepare_cached(
                "SELECT DISTINCT custom_field_keys FROM participants WHERE webinar_uid = ?1",
            )?
            .query_map([&scope.webinar], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut names = std::collections::BTreeSet::new();
        for set in sets {
            names.extend(
                serde_json::from_str::<Vec<String>>(&set)
                    .map_err(crate::store::StoreError::Corrupt)?,
            );
        }
        return Ok(names.into_iter().collect());
    };
    Ok(conn
        .prepare_cached(
            "SELECT DISTINCT f.key FROM registrations r, json_each(r.custom_fields) f
             WHERE r.webinar_uid = ?1 AND r.session_uid IN (?2, '') ORDER BY 1",
        )?
        .query_map([&scope.webinar, &session], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Which people a list or export is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Audience {
    Attendees,
    Registrants,
    NoShows,
    ReplayViewers,
    /// Hosts and guest speakers.
    Staff,
}

impl Audience {
    /// [`Audience::includes`] on the participants summary's columns (`e`; rank 0 is audience).
    fn condition(self) -> &'static str {
        match self {
            Audience::Attendees => "e.rank = 0 AND e.attended",
            Audience::Registrants => "e.rank = 0 AND e.registered",
            Audience::NoShows => "e.rank = 0 AND e.registered AND NOT e.attended",
            Audience::ReplayViewers => "e.replay_views > 0",
            Audience::Staff => "e.rank > 0",
        }
    }

    pub fn includes(self, p: &Participant) -> bool {
        match self {
            Audience::Attendees => p.is_audience() && p.attended,
            Audience::Registrants => p.is_audience() && p.registered,
            Audience::NoShows => p.is_no_show(),
            Audience::ReplayViewers => p.replay_views > 0,
            Audience::Staff => !p.is_audience(),
        }
    }
}

/// Time statistics over the attendees whose time is known.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct TimeStats {
    pub total_secs: u64,
    pub average_secs: u64,
    pub median_secs: u64,
    /// Attendees whose time is known.
    pub known: u64,
    /// `known` / attended.
    pub known_share: Option<f64>,
}

fn time_stats(mut known: Vec<u64>, attended: u64) -> Option<TimeStats> {
    if known.is_empty() {
        return None;
    }
    known.sort_unstable();
    let n = known.len();
    let total: u64 = known.iter().sum();
    let median = if n % 2 == 1 {
        known[n / 2]
    } else {
        (known[n / 2 - 1] + known[n / 2]) / 2
    };
    Some(TimeStats {
        total_secs: total,
        average_secs: total / n as u64,
        median_secs: median,
        known: n as u64,
        known_share: ratio(n as u64, attended),
    })
}

/// The headline numbers of a webinar or session. Hosts and guest speakers are not counted.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Numbers {
    pub registered: u64,
    pub attended: u64,
    /// Registrants who attended.
    pub attended_registrants: u64,
    /// Attendees with no registration.
    pub walk_ins: u64,
    pub no_shows: u64,
    /// Registrants who attended / registrants.
    pub attendance_rate: Option<f64>,
    /// `None` when no attendee's time is known (GoTo and TagMango send none).
    pub time_in_session: Option<TimeStats>,
    /// BigMarker's engaged time.
    pub engaged: Option<TimeStats>,
    /// Mean of the platform's own per-attendee rate, percent (Livestorm).
    pub platform_attendance_rate: Option<f64>,
    /// Most attendees present at once, where joins and leaves are known.
    pub peak_concurrent: Option<u64>,
    /// Webinar-level only: replays are not tied to a session.
    pub replay_viewers: Option<u64>,
    pub replay_secs: Option<u64>,
}

/// The report's figures, gathered one participant at a time: a webinar of 100,000 people is
/// never held in memory at once.
#[derive(Default)]
struct Tally {
    registered: u64,
    attended: u64,
    attended_registrants: u64,
    times: Vec<u64>,
    engaged: Vec<u64>,
    rate_sum: f64,
    rate_count: u64,
    replay_viewers: u64,
    replay_secs: Option<u64>,
    sources: BTreeMap<&'static str, BTreeMap<String, u64>>,
    staff: HashSet<String>,
    hosts: Vec<String>,
    guest_speakers: Vec<String>,
}

impl Tally {
    fn add(&mut self, p: Participant) {
        if !p.is_audience() {
            let named = p.email.clone().unwrap_or_else(|| p.person_uid.clone());
            match p.role {
                "host" => self.hosts.push(named),
                _ => self.guest_speakers.push(named),
            }
            self.staff.insert(p.person_uid);
            return;
        }
        self.registered += u64::from(p.registered);
        self.attended += u64::from(p.attended);
        self.attended_registrants += u64::from(p.registered && p.attended);
        if p.attended {
            self.times.extend(p.time_in_session_secs);
            self.engaged.extend(p.engaged_secs);
            self.rate_sum += p.rate_sum;
            self.rate_count += p.rate_count;
        }
        if p.replay_views > 0 {
            self.replay_viewers += 1;
            if let Some(secs) = p.replay_secs {
                *self.replay_secs.get_or_insert(0) += secs;
            }
        }
        if p.registered {
            self.count_sources(p);
        }
    }

    /// Registrants by each origin field that has a value.
    fn count_sources(&mut self, p: Participant) {
        let fields = [
            ("source", p.source),
            ("referrer", p.referrer),
            ("tracking_code", p.tracking_code),
            ("utm_source", p.utm_source),
            ("utm_medium", p.utm_medium),
            ("utm_campaign", p.utm_campaign),
            ("utm_term", p.utm_term),
            ("utm_content", p.utm_content),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                *self
                    .sources
                    .entry(field)
                    .or_default()
                    .entry(value)
                    .or_default() += 1;
            }
        }
    }

    fn numbers(self, intervals: &[(i64, i64)], whole_webinar: bool) -> Numbers {
        let (registered, attended, both) =
            (self.registered, self.attended, self.attended_registrants);
        Numbers {
            registered,
            attended,
            attended_registrants: both,
            walk_ins: attended - both,
            no_shows: registered - both,
            attendance_rate: ratio(both, registered),
            time_in_session: time_stats(self.times, attended),
            engaged: time_stats(self.engaged, attended),
            platform_attendance_rate: (self.rate_count > 0)
                .then(|| (self.rate_sum / self.rate_count as f64 * 100.0).round() / 100.0),
            peak_concurrent: peak(intervals),
            replay_viewers: whole_webinar.then_some(self.replay_viewers),
            replay_secs: self.replay_secs.filter(|_| whole_webinar),
        }
    }
}

/// The most intervals `[join, leave)` open at once; a leave at the instant of a join does not
/// overlap it.
fn peak(intervals: &[(i64, i64)]) -> Option<u64> {
    if intervals.is_empty() {
        return None;
    }
    let mut edges: Vec<(i64, i64)> = intervals
        .iter()
        .flat_map(|&(join, leave)| [(join, 1), (leave, -1)])
        .collect();
    edges.sort_unstable();
    let (mut present, mut most) = (0i64, 0i64);
    for (_, change) in edges {
        present += change;
        most = most.max(present);
    }
    u64::try_from(most).ok()
}

/// `[join, leave)` of each audience attendance record in scope with both times known.
fn intervals(conn: &Connection, scope: &Scope, staff: &HashSet<String>) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT person_uid, unixepoch(first_joined_at), unixepoch(last_left_at) FROM attendance
         WHERE webinar_uid = ?1 AND (?2 IS NULL OR session_uid = ?2) AND attended
           AND first_joined_at IS NOT NULL AND last_left_at IS NOT NULL",
    )?;
    let rows = stmt.query_map(
        rusqlite::params![scope.webinar, scope.session_uid()],
        |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        },
    )?;
    let mut intervals = Vec::new();
    for row in rows {
        let (person, join, leave) = row?;
        if !staff.contains(&person) && leave >= join {
            intervals.push((join, leave));
        }
    }
    Ok(intervals)
}

/// A webinar's (or session's) attendance report.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct WebinarReport {
    pub time_zone: &'static str,
    pub webinar: WebinarInfo,
    /// The session reported on, if one.
    pub session: Option<String>,
    pub numbers: Numbers,
    /// Registrants by each origin field that has a value: field → value → count.
    pub sources: BTreeMap<&'static str, BTreeMap<String, u64>>,
    pub hosts: Vec<String>,
    pub guest_speakers: Vec<String>,
}

/// The report for a webinar, or one of its sessions.
pub fn report(conn: &Connection, scope: &Scope, zone: Zone) -> Result<WebinarReport> {
    let mut tally = Tally::default();
    // The figures do not depend on the order, so the rows are not sorted by name.
    visit_participants(conn, scope, zone, Figures::Summary, false, |p| {
        tally.add(p);
        Ok(())
    })?;
    let intervals = intervals(conn, scope, &tally.staff)?;
    let (mut hosts, mut guest_speakers) = (
        std::mem::take(&mut tally.hosts),
        std::mem::take(&mut tally.guest_speakers),
    );
    hosts.sort();
    guest_speakers.sort();
    Ok(WebinarReport {
        time_zone: zone.name(),
        webinar: webinars::info(conn, &scope.webinar, zone)?,
        session: scope.session.clone(),
        sources: std::mem::take(&mut tally.sources),
        numbers: tally.numbers(&intervals, scope.session.is_none()),
        hosts,
        guest_speakers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_counts_overlaps_but_not_touching_intervals() {
        assert_eq!(peak(&[]), None);
        assert_eq!(peak(&[(0, 10), (5, 15), (10, 20)]), Some(2));
        assert_eq!(peak(&[(0, 10), (10, 20)]), Some(1));
        assert_eq!(peak(&[(0, 100), (1, 2), (3, 4), (1, 50)]), Some(3));
    }

    #[test]
    fn time_stats_use_known_times_only() {
        assert_eq!(time_stats(vec![], 5), None);
        let stats = time_stats(vec![600, 60, 300, 100], 8).unwrap();
        assert_eq!(
            (stats.total_secs, stats.average_secs, stats.median_secs),
            (1060, 265, 200)
        );
        assert_eq!(stats.known_share, Some(0.5));
    }
}
