//! The participants summary: one row per person at each webinar with everything the webinar's
//! report, people lists and exports say about them (role, registration, attendance, replay
//! views), kept up to date by the projection for every (webinar, person) pair a delivery's
//! facts name. Grouping 200,000 registration and attendance rows of a 100,000-person webinar
//! by person was most of each report and export of it (0.6 of 0.9 s); with the summary, a
//! whole-webinar report reads one row per person.
//!
//! Derived only from the `registrations`, `attendance` and `facts` rows as they stand, by the
//! same rules ([`FIGURES`]) that a report of one session applies to that session's rows (in SQL
//! for a pair refreshed, in Rust for a whole rebuild: [`super::figures`]), and stored in the
//! order lists and exports read: by webinar, then by [`SORT_KEY`]. It reads no payloads. Of a
//! person's details it keeps only that key, which [`follow_name`] updates when they change;
//! everything shown is joined from `people` when read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;
use rusqlite::Connection;
use serde::de::IgnoredAny;

use super::audience::Pair;
use super::figures::{self, Figures};
use super::Result;

/// One person's figures over their `rows` (see [`rows`]): registrations are `src` 1,
/// attendance 2, replay views 3, and each aggregate takes only its own kind of row. Report
/// queries of a single session group that session's rows with these same aggregates.
pub const FIGURES: &str = "
    max(rank) AS rank,
    coalesce(max(coalesce(status, '') NOT IN ('cancelled', 'denied'))
        FILTER (WHERE src = 1), 0) AS registered,
    max(status) AS status, min(registered_at) AS registered_at,
    coalesce(max(coalesce(registered_at_basis, '') = 'received_at')
        FILTER (WHERE src = 1), 0) AS at_receipt,
    max(source) AS source, max(referrer) AS referrer, max(tracking_code) AS tracking_code,
    max(utm_source) AS utm_source, max(utm_medium) AS utm_medium,
    max(utm_campaign) AS utm_campaign, max(utm_term) AS utm_term,
    max(utm_content) AS utm_content, max(join_url) AS join_url,
    json_group_array(json(custom_fields)) FILTER (WHERE src = 1) AS custom_fields,
    coalesce(max(attended), 0) AS attended,
    min(first_joined_at) AS first_joined_at, max(last_left_at) AS last_left_at,
    coalesce(sum(join_count), 0) AS join_count,
    CASE WHEN count(*) FILTER (WHERE src = 2 AND attended AND secs IS NULL) = 0
        THEN sum(secs) FILTER (WHERE src = 2 AND attended) END AS secs,
    CASE WHEN count(*) FILTER (WHERE src = 2 AND attended AND engaged_secs IS NULL) = 0
        THEN sum(engaged_secs) FILTER (WHERE src = 2 AND attended) END AS engaged,
    coalesce(sum(attendance_rate) FILTER (WHERE src = 2 AND attended), 0) AS rate_sum,
    count(attendance_rate) FILTER (WHERE src = 2 AND attended) AS rate_count,
    count(*) FILTER (WHERE src = 3) AS replay_views,
    sum(watched_secs) FILTER (WHERE src = 3) AS replay_secs";

/// The columns [`FIGURES`] yields, in its order (the summary table's columns after its key).
pub const FIGURE_COLUMNS: &str = "rank, registered, status, registered_at, at_receipt, source,
    referrer, tracking_code, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
    join_url, custom_fields, attended, first_joined_at, last_left_at, join_count, secs, engaged,
    rate_sum, rate_count, replay_views, replay_secs";

/// What lists and exports sort people by (`p` is their `people` row): last name, else name,
/// else email, else id, lower-cased.
pub const SORT_KEY: &str = "lower(coalesce(p.last_name, p.name, p.email, p.uid))";

/// The rows [`FIGURES`] groups: a person's registrations, attendance and replay views, each
/// source with its own condition (written with `webinar_uid`, `session_uid` and `person_uid`
/// in scope). They are read in one pass and grouped once: grouping each kind apart and joining
/// the groups made SQLite build an index on every group.
pub fn rows(registrations: &str, attendance: &str, replay_views: &str) -> String {
    format!(
        "SELECT 1 AS src, webinar_uid, person_uid,
            CASE role WHEN 'host' THEN 2 WHEN 'guest_speaker' THEN 1 ELSE 0 END AS rank,
            registered_at, registered_at_basis, status, source, referrer, tracking_code,
            utm_source, utm_medium, utm_campaign, utm_term, utm_content, join_url, custom_fields,
            NULL AS attended, NULL AS first_joined_at, NULL AS last_left_at, NULL AS join_count,
            NULL AS secs, NULL AS engaged_secs, NULL AS attendance_rate, NULL AS watched_secs
        FROM registrations WHERE {registrations}
        UNION ALL
        SELECT 2, webinar_uid, person_uid,
            CASE role WHEN 'host' THEN 2 WHEN 'guest_speaker' THEN 1 ELSE 0 END,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            attended, first_joined_at, last_left_at, join_count,
            coalesce(duration_secs, unixepoch(last_left_at) - unixepoch(first_joined_at)),
            engaged_secs, attendance_rate, NULL
        FROM attendance WHERE {attendance}
        UNION ALL
        SELECT 3, webinar_uid, person_uid, 0,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
            NULL, NULL, NULL, NULL, NULL, NULL, NULL, json_extract(body, '$.watched_secs')
        FROM facts WHERE kind = 'replay_viewed' AND {replay_views}"
    )
}

/// Recomputes the summary rows of `pairs` from their registrations, attendance and replay
/// views; a pair with none of them has no row.
pub fn refresh(conn: &Connection, pairs: &BTreeSet<Pair>) -> Result<()> {
    // Written once: this runs for every delivery projected.
    static INSERT: LazyLock<String> = LazyLock::new(|| {
        // By person, as `audience` does: `+webinar_uid` keeps SQLite off the primary keys,
        // which would walk the whole webinar.
        let one = "person_uid = ?2 AND +webinar_uid = ?1";
        insert_sql(&format!(
            "SELECT ?1 AS webinar_uid, ?2 AS person_uid, {FIGURES} FROM ({}) HAVING count(*) > 0",
            rows(one, one, one)
        ))
    });
    for (webinar, person) in pairs {
        conn.prepare_cached("DELETE FROM participants WHERE webinar_uid = ?1 AND person_uid = ?2")?
            .execute([webinar, person])?;
        conn.prepare_cached(&INSERT)?.execute([webinar, person])?;
    }
    Ok(())
}

/// Computes the whole summary from the finished tables, by the same rules as [`refresh`]
/// (after a rebuild, and when the summary was introduced): webinar by webinar, each person's
/// rows folded in Rust ([`figures`]) and the webinar's summary rows inserted in the table's
/// own order. Every registration's and attendance record's webinar has a `webinars` row,
/// since the projection folds each fact into its webinar.
pub fn rebuild(conn: &Connection) -> Result<()> {
    conn.execute("DELETE FROM participants", [])?;
    let sort_keys = sort_keys(conn)?;
    let mut replay_views = replay_views(conn)?;
    let webinars: Vec<String> = conn
        .prepare("SELECT uid FROM webinars ORDER BY uid")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut registrations = conn.prepare(figures::REGISTRATIONS)?;
    let mut attendance = conn.prepare(figures::ATTENDANCE)?;
    let columns = format!("webinar_uid, person_uid, sort_key, custom_field_keys, {FIGURE_COLUMNS}");
    let parameters = vec!["?"; columns.split(',').count()].join(", ");
    let mut insert = conn.prepare(&format!(
        "INSERT INTO participants ({columns}) VALUES ({parameters})"
    ))?;
    for webinar in &webinars {
        let mut people = BTreeMap::new();
        let mut rows = registrations.query([webinar])?;
        while let Some(row) = rows.next()? {
            figures_of(&mut people, row)?.add_registration(row)?;
        }
        let mut rows = attendance.query([webinar])?;
        while let Some(row) = rows.next()? {
            figures_of(&mut people, row)?.add_attendance(row)?;
        }
        for (uid, watched_secs) in replay_views.remove(webinar).unwrap_or_default() {
            let figures: &mut Figures = people.entry(uid).or_default();
            figures.add_replay_view(&watched_secs)?;
        }
        insert_in_order(&mut insert, webinar, people, &sort_keys)?;
    }
    Ok(())
}

/// The figures of the person a row of [`figures::REGISTRATIONS`] or [`figures::ATTENDANCE`]
/// names (its first column).
fn figures_of<'a>(
    people: &'a mut BTreeMap<String, Figures>,
    row: &rusqlite::Row<'_>,
) -> Result<&'a mut Figures> {
    let uid = figures::text_at(row, 0)?;
    if !people.contains_key(uid) {
        people.insert(uid.to_owned(), Figures::default());
    }
    Ok(people.get_mut(uid).expect("inserted above"))
}

/// Inserts a webinar's summary rows in the table's key order (sort key, then person), so that
/// each lands beside the one before it.
fn insert_in_order(
    insert: &mut rusqlite::Statement<'_>,
    webinar: &str,
    people: BTreeMap<String, Figures>,
    sort_keys: &HashMap<String, String>,
) -> Result<()> {
    let mut sorted: Vec<(String, String, Figures)> = people
        .into_iter()
        .map(|(uid, figures)| {
            let key = sort_keys.get(&uid).cloned();
            (
                key.unwrap_or_else(|| uid.to_ascii_lowercase()),
                uid,
                figures,
            )
        })
        .collect();
    sorted.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (sort_key, uid, figures) in sorted {
        let custom_fields = figures.custom_fields();
        let mut values = vec![
            Value::Text(webinar.to_owned()),
            Value::Text(uid),
            Value::Text(sort_key),
            Value::Text(field_names(&custom_fields)?),
        ];
        values.extend(figures.into_values(custom_fields)?);
        insert.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

/// Each person's [`SORT_KEY`], by uid; a person with no `people` row sorts by their
/// lower-cased uid (`lower` in SQLite folds ASCII only).
fn sort_keys(conn: &Connection) -> Result<HashMap<String, String>> {
    Ok(conn
        .prepare(&format!("SELECT p.uid, {SORT_KEY} FROM people p"))?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

/// Each webinar's replay views, as (person, seconds watched), in delivery order.
fn replay_views(conn: &Connection) -> Result<HashMap<String, Vec<(String, Value)>>> {
    let mut views: HashMap<String, Vec<(String, Value)>> = HashMap::new();
    let mut statement = conn.prepare(figures::REPLAY_VIEWS)?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        views
            .entry(row.get(0)?)
            .or_default()
            .push((row.get(1)?, row.get(2)?));
    }
    Ok(views)
}

/// Inserts the summary rows `grouped` yields (key and [`FIGURES`]), with the person's sort key
/// and the sorted names of their custom fields ([`FIELD_NAMES`]).
fn insert_sql(grouped: &str) -> String {
    format!(
        "INSERT INTO participants (webinar_uid, person_uid, {FIGURE_COLUMNS}, sort_key,
            custom_field_keys)
         SELECT g.*,
            coalesce((SELECT {SORT_KEY} FROM people p WHERE p.uid = g.person_uid),
                lower(g.person_uid)),
            {FIELD_NAMES}(g.custom_fields)
         FROM ({grouped}) g"
    )
}

/// The SQL function [`register`] adds: the sorted, distinct names in a JSON array of custom
/// field objects, as a JSON array. In SQL (`json_each` twice, `DISTINCT`, `ORDER BY`) it was a
/// third of computing the whole summary.
const FIELD_NAMES: &str = "rollcall_field_names";

/// Adds the SQL function the summary's statements call. Every connection that writes the
/// store must have it (`open_writer` and `reindex` add it).
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function(FIELD_NAMES, 1, flags, |ctx| {
        let custom_fields = ctx.get_raw(0).as_str()?;
        field_names(custom_fields).map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
    })
}

/// What [`FIELD_NAMES`] computes. The array is the summary's own (`json_group_array` of each
/// registration's object), so anything else in it is an error, as it was to `json_each`.
fn field_names(custom_fields: &str) -> serde_json::Result<String> {
    let objects: Vec<BTreeMap<String, IgnoredAny>> = serde_json::from_str(custom_fields)?;
    let names: BTreeSet<String> = objects.into_iter().flat_map(BTreeMap::into_keys).collect();
    serde_json::to_string(&names)
}

/// Moves a person's summary rows to where their name now sorts, after their `people` row was
/// written: a name given at one webinar changes the order of every webinar they are at.
pub fn follow_name(conn: &Connection, person_uid: &str) -> Result<()> {
    static UPDATE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE participants SET sort_key = k.key
             FROM (SELECT {SORT_KEY} AS key FROM people p WHERE p.uid = ?1) k
             WHERE person_uid = ?1 AND sort_key <> k.key"
        )
    });
    conn.prepare_cached(&UPDATE)?.execute([person_uid])?;
    Ok(())
}

/// The (webinar, person) pairs whose summary rows facts can change: every fact naming a person
/// is a registration, an attendance or a replay view.
pub fn pairs<'a>(
    facts: impl IntoIterator<Item = &'a crate::facts::Fact>,
) -> Result<BTreeSet<Pair>> {
    let mut pairs = BTreeSet::new();
    for fact in facts {
        let keys = super::Keys::of(fact)?;
        if let Some(person) = keys.person {
            pairs.insert((keys.webinar, person));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A person's row in one of the tables the summary reads; `person` and `session` index
    /// small pools, so people meet again across sessions and webinars.
    #[derive(Debug, Clone)]
    enum Source {
        Registration {
            webinar: u8,
            session: u8,
            person: u8,
            role: u8,
            status: Option<&'static str>,
            at: Option<u8>,
            at_receipt: bool,
            origin: Option<u8>,
            fields: u8,
        },
        Attendance {
            webinar: u8,
            session: u8,
            person: u8,
            role: u8,
            attended: bool,
            times: Option<(u16, u16)>,
            duration: Option<i64>,
            engaged: Option<i64>,
            rate: Option<f64>,
        },
        ReplayView {
            webinar: u8,
            person: u8,
            watched: Option<u64>,
        },
    }

    fn source() -> impl Strategy<Value = Source> {
        let status = prop::option::of(prop::sample::select(vec![
            "approved",
            "cancelled",
            "denied",
            "pending",
        ]));
        let big = prop_oneof![0_i64..7200, Just(i64::MAX / 4), Just((1 << 53) + 3)];
        prop_oneof![
            (
                (0_u8..3, 0_u8..3, 0_u8..6, 0_u8..3),
                (status, prop::option::of(0_u8..5), any::<bool>()),
                (prop::option::of(0_u8..4), 0_u8..4),
            )
                .prop_map(
                    |(
                        (webinar, session, person, role),
                        (status, at, at_receipt),
                        (origin, fields),
                    )| {
                        Source::Registration {
                            webinar,
                            session,
                            person,
                            role,
                            status,
                            at,
                            at_receipt,
                            origin,
                            fields,
                        }
                    }
                ),
            (
                (0_u8..3, 0_u8..8, 0_u8..6, 0_u8..3, any::<bool>()),
                prop::option::of((0_u16..4000, 0_u16..4000)),
                (prop::option::of(big.clone()), prop::option::of(big)),
                prop::option::of(prop_oneof![Just(0.1), Just(0.2), Just(0.7), 0.0..1.0_f64]),
            )
                .prop_map(
                    |(
                        (webinar, session, person, role, attended),
                        times,
                        (duration, engaged),
                        rate,
                    )| {
                        Source::Attendance {
                            webinar,
                            session,
                            person,
                            role,
                            attended,
                            times,
                            duration,
                            engaged,
                            rate,
                        }
                    }
                ),
            (0_u8..3, 0_u8..6, prop::option::of(0_u64..5000)).prop_map(
                |(webinar, person, watched)| Source::ReplayView {
                    webinar,
                    person,
                    watched
                }
            ),
        ]
    }

    const ROLES: [&str; 3] = ["audience", "host", "guest_speaker"];

    /// A store with the schema, `sources`' rows and people of every kind of name (and one
    /// person with no `people` row).
    fn store(sources: &[Source]) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::connection::migrations()
            .to_latest(&mut conn)
            .unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO webinars (uid, platform, external_id, presenters, schedule, extra,
                 delivery_id, fold)
             VALUES ('W0', 'tagmango', '0', '[]', '[]', '{}', 1, '{}'),
                    ('W1', 'tagmango', '1', '[]', '[]', '{}', 1, '{}'),
                    ('W2', 'tagmango', '2', '[]', '[]', '{}', 1, '{}');
             INSERT INTO people (uid, email, last_name, name, platform_ids, delivery_id, fold)
             VALUES ('P0', 'zed@example.com', 'Émile', NULL, '{}', 1, '{}'),
                    ('P1', 'amy@example.com', NULL, 'Amy', '{}', 1, '{}'),
                    ('P2', 'Bob@Example.com', NULL, NULL, '{}', 1, '{}'),
                    ('P3', NULL, NULL, NULL, '{}', 1, '{}'),
                    ('P4', 'amy@example.com', NULL, 'Amy', '{}', 1, '{}');",
        )
        .unwrap();
        for (ordinal, source) in sources.iter().enumerate() {
            insert(&conn, ordinal, source);
        }
        conn
    }

    fn insert(conn: &Connection, ordinal: usize, source: &Source) {
        let time = |minutes: u16| {
            format!(
                "2026-12-03T{:02}:{:02}:00Z",
                minutes / 60 % 24,
                minutes % 60
            )
        };
        match source {
            Source::Registration {
                webinar,
                session,
                person,
                role,
                status,
                at,
                at_receipt,
                origin,
                fields,
            } => {
                let fields = [
                    r#"{}"#,
                    r#"{ "Company" : "Acme", "Title": "CTO" }"#,
                    r#"{"b": [1, {"x": 2.50}], "a": "\u00e9"}"#,
                    r#"{"Company": "Globex"}"#,
                ][*fields as usize];
                let origin = origin.map(|o| format!("origin {o}"));
                conn.execute(
                    "INSERT OR REPLACE INTO registrations (webinar_uid, session_uid, person_uid,
                        registered_at, registered_at_basis, status, role, source, referrer,
                        tracking_code, utm_source, utm_medium, utm_campaign, utm_term,
                        utm_content, join_url, custom_fields, delivery_id, fold)
                     VALUES ('W' || ?1, 'S' || ?2, 'P' || ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8, ?8,
                        ?8, ?8, ?8, ?8, ?8, ?9, 1, '{}')",
                    rusqlite::params![
                        webinar,
                        session,
                        person,
                        at.map(|a| time(u16::from(a) * 7)),
                        at_receipt.then_some("received_at").or(Some("exact")),
                        status,
                        ROLES[*role as usize],
                        origin,
                        fields
                    ],
                )
                .unwrap();
            }
            Source::Attendance {
                webinar,
                session,
                person,
                role,
                attended,
                times,
                duration,
                engaged,
                rate,
            } => {
                conn.execute(
                    "INSERT OR REPLACE INTO attendance (webinar_uid, session_uid, person_uid,
                        attended, first_joined_at, last_left_at, join_count, duration_secs,
                        engaged_secs, attendance_rate, role, delivery_id, fold)
                     VALUES ('W' || ?1, 'S' || ?2, 'P' || ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
                        1, '{}')",
                    rusqlite::params![
                        webinar,
                        session,
                        person,
                        attended,
                        times.map(|(a, _)| time(a)),
                        times.map(|(a, b)| time(a.max(b))),
                        ordinal % 3,
                        duration,
                        engaged,
                        rate,
                        ROLES[*role as usize]
                    ],
                )
                .unwrap();
            }
            Source::ReplayView {
                webinar,
                person,
                watched,
            } => {
                let body = match watched {
                    Some(secs) => format!(r#"{{"fact":"replay_viewed","watched_secs":{secs}}}"#),
                    None => r#"{"fact":"replay_viewed"}"#.to_owned(),
                };
                conn.execute(
                    "INSERT INTO facts (delivery_id, ordinal, kind, webinar_uid, person_uid,
                        version, body)
                     VALUES (?1, 0, 'replay_viewed', 'W' || ?2, 'P' || ?3, '', ?4)",
                    rusqlite::params![ordinal, webinar, person, body],
                )
                .unwrap();
            }
        }
    }

    /// Every summary row with each value's SQLite type.
    fn summary(conn: &Connection) -> Vec<Vec<(String, String)>> {
        let columns =
            format!("webinar_uid, person_uid, sort_key, custom_field_keys, {FIGURE_COLUMNS}");
        let mut statement = conn
            .prepare(&format!(
                "SELECT {columns} FROM participants ORDER BY webinar_uid, sort_key, person_uid"
            ))
            .unwrap();
        let count = statement.column_count();
        statement
            .query_map([], |row| {
                (0..count)
                    .map(|i| {
                        let value: Value = row.get(i)?;
                        Ok((
                            format!("{value:?}"),
                            format!("{:?}", row.get_ref(i)?.data_type()),
                        ))
                    })
                    .collect()
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The rebuild's figures, folded in Rust, are the ones the refresh computes in SQL
        /// pair by pair from the same rows, value for value and type for type, in the same
        /// order on disk.
        #[test]
        fn rebuilding_gives_the_rows_refreshing_every_pair_gives(
            sources in prop::collection::vec(source(), 0..40),
        ) {
            let conn = store(&sources);
            let pairs: BTreeSet<Pair> = conn
                .prepare(
                    "SELECT webinar_uid, person_uid FROM registrations
                     UNION SELECT webinar_uid, person_uid FROM attendance
                     UNION SELECT webinar_uid, person_uid FROM facts",
                )
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            // Both refuse a sum beyond 64 bits, or neither does.
            match refresh(&conn, &pairs) {
                Ok(()) => {
                    let refreshed = summary(&conn);
                    prop_assert_eq!(refreshed.len(), pairs.len());
                    rebuild(&conn).unwrap();
                    prop_assert_eq!(summary(&conn), refreshed);
                }
                Err(e) => prop_assert!(rebuild(&conn).is_err(), "refresh: {e}, rebuild: Ok"),
            }
        }
    }

    /// The names as SQLite's JSON functions list them, which the function replaced.
    fn by_json_each(conn: &Connection, custom_fields: &str) -> String {
        conn.query_row(
            "SELECT json_group_array(key) FROM (
                SELECT DISTINCT f.key AS key FROM json_each(?1) r, json_each(r.value) f
                ORDER BY 1)",
            [custom_fields],
            |row| row.get(0),
        )
        .unwrap()
    }

    #[test]
    fn field_names_are_sorted_distinct_and_match_json_each() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        for custom_fields in [
            "[]",
            "[{}]",
            r#"[{"Title": "CTO", "Company": "Acme"}, {"company": 1, "Title": null}]"#,
            r#"[{"é \"quoted\"\n": [1, {"x": 2}], "Z": {}}, {"a/b": "\u0001"}]"#,
        ] {
            let ours: String = conn
                .query_row(&format!("SELECT {FIELD_NAMES}(?1)"), [custom_fields], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(ours, by_json_each(&conn, custom_fields), "{custom_fields}");
        }
        assert_eq!(
            field_names(r#"[{"b": 1, "a": 2}, {"a": 3}]"#).unwrap(),
            r#"["a","b"]"#
        );
    }

    #[test]
    fn field_names_refuse_what_is_not_an_array_of_objects() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        for bad in ["{", "[1]", r#"{"a": 1}"#] {
            let result: rusqlite::Result<String> =
                conn.query_row(&format!("SELECT {FIELD_NAMES}(?1)"), [bad], |r| r.get(0));
            assert!(result.is_err(), "{bad}");
        }
    }
}
