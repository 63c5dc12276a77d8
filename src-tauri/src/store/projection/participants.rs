//! The participants summary: one row per person at each webinar with everything the webinar's
//! report, people lists and exports say about them (role, registration, attendance, replay
//! views), kept up to date by the projection for every (webinar, person) pair a delivery's
//! facts name. Grouping 200,000 registration and attendance rows of a 100,000-person webinar
//! by person was most of each report and export of it (0.6 of 0.9 s); with the summary, a
//! whole-webinar report reads one row per person.
//!
//! Derived only from the `registrations`, `attendance` and `facts` rows as they stand, by the
//! same rules ([`FIGURES`]) that a report of one session applies to that session's rows, and
//! stored in the order lists and exports read: by webinar, then by [`SORT_KEY`]. It reads no
//! payloads. Of a person's details it keeps only that key, which [`follow_name`] updates when
//! they change; everything shown is joined from `people` when read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;
use serde::de::IgnoredAny;

use super::audience::Pair;
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

/// Every replay view, in a form SQLite finds through `facts_webinar` (webinar, kind): asked for
/// `person_uid IS NOT NULL`, it walked `facts_person` and read each of 1,200,000 facts to find
/// none were replay views (6.7 s on the 1,000,000-delivery benchmark store). Every fact's webinar has a
/// `webinars` row, since the projection folds each fact into its webinar.
const EVERY_REPLAY_VIEW: &str =
    "person_uid IS NOT NULL AND webinar_uid IN (SELECT uid FROM webinars)";

/// Computes the whole summary at once from the finished tables, by the same rules as
/// [`refresh`] (after a rebuild, and when the summary was introduced).
pub fn rebuild(conn: &Connection) -> Result<()> {
    conn.execute("DELETE FROM participants", [])?;
    conn.execute(
        &insert_sql(&format!(
            "SELECT webinar_uid, person_uid, {FIGURES} FROM ({})
             GROUP BY webinar_uid, person_uid",
            rows("1", "1", EVERY_REPLAY_VIEW)
        )),
        [],
    )?;
    Ok(())
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
    use super::*;

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
