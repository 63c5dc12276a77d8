//! The projection does not depend on arrival order, counts duplicates once, and `reindex`
//! reproduces it exactly.

mod support;

use proptest::prelude::*;
use rollcall::store::journal::{self, Prepared};
use rollcall::store::projection::{self, PROJECTED_TABLES};
use rollcall::store::{database_path, open_writer, rebuild, StoreOptions};
use rusqlite::Connection;
use support::scenario::{self, ScenarioDelivery};
use support::tables::dump;

fn record_all(deliveries: &[ScenarioDelivery]) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = store_with(&database_path(dir.path()), deliveries);
    (dir, conn)
}

fn in_order() -> Vec<String> {
    let (_dir, conn) = record_all(&scenario::deliveries());
    dump(&conn, false)
}

#[test]
fn the_scenario_projects_what_it_says() {
    let (_dir, conn) = record_all(&scenario::deliveries());
    let count = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0)).unwrap();
    assert_eq!(
        count("SELECT count(*) FROM deliveries WHERE status = 'quarantined'"),
        0,
        "{:#?}",
        journal::list(
            &conn,
            &journal::DeliveryFilter {
                limit: 100,
                ..Default::default()
            }
        )
        .unwrap()
    );
    assert_eq!(
        count("SELECT count(*) FROM deliveries WHERE status = 'duplicate'"),
        2
    );
    assert_eq!(
        count("SELECT count(*) FROM deliveries WHERE status = 'ignored'"),
        1
    );
    assert_eq!(count("SELECT count(*) FROM webinars"), 4);
    // Alice joined GoTo twice (two joins), before her registration arrived.
    let (joins, first): (i64, String) = conn
        .query_row(
            "SELECT join_count, first_joined_at FROM attendance
             WHERE webinar_uid = 'gotowebinar:8281234567890123456' AND person_uid = 'alice@example.com'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((joins, first.as_str()), (2, "2024-05-01T14:02:00.000Z"));
    // The reschedule (generated after the creation) wins, whatever the arrival order.
    let (title, end): (String, String) = conn
        .query_row(
            "SELECT title, scheduled_end FROM webinars WHERE uid = 'gotowebinar:8281234567890123456'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (title.as_str(), end.as_str()),
        ("Quarterly Review", "2024-05-01T16:00:00.000Z")
    );
    // Bob's registration was retried: one registration.
    assert_eq!(
        count("SELECT count(*) FROM registrations WHERE person_uid = 'bob@example.com'"),
        1
    );
    // One person across platforms by normalized email.
    assert_eq!(
        count("SELECT count(*) FROM people WHERE uid = 'alice@example.com'"),
        1
    );
    assert!(count("SELECT count(DISTINCT webinar_uid) FROM attendance WHERE person_uid = 'alice@example.com'") >= 3);
}

#[test]
fn reindex_reproduces_the_tables_exactly() {
    let (_dir, mut conn) = record_all(&scenario::deliveries());
    let before = dump(&conn, true);
    let tx = conn.transaction().unwrap();
    journal::reindex(&tx).unwrap();
    tx.commit().unwrap();
    assert_eq!(dump(&conn, true), before);
}

/// Stores written before folds were compressed hold them as plain JSON text: new facts fold
/// into those just as into compressed ones, and the rows they touch are written compressed.
#[test]
fn folds_kept_as_plain_json_by_an_earlier_version_keep_folding() {
    let all = scenario::deliveries();
    let (first, rest) = all.split_at(all.len() / 2);
    let (_dir, mut conn) = record_all(first);
    let entity_tables = [
        "webinars",
        "sessions",
        "people",
        "registrations",
        "attendance",
    ];
    for table in entity_tables {
        let folds: Vec<Vec<u8>> = conn
            .prepare(&format!("SELECT fold FROM {table}"))
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!folds.is_empty(), "{table} has rows");
        for fold in folds {
            let json = String::from_utf8(lz4_flex::decompress_size_prepended(&fold).unwrap());
            conn.execute(
                &format!("UPDATE {table} SET fold = ?1 WHERE fold = ?2"),
                rusqlite::params![json.unwrap(), fold],
            )
            .unwrap();
        }
    }
    let plain = |conn: &Connection, kind: &str| -> i64 {
        let each = entity_tables
            .map(|t| format!("SELECT count(*) AS n FROM {t} WHERE typeof(fold) = '{kind}'"));
        let sql = format!("SELECT sum(n) FROM ({})", each.join(" UNION ALL "));
        conn.query_row(&sql, [], |row| row.get(0)).unwrap()
    };
    assert_eq!(plain(&conn, "blob"), 0, "every fold is plain JSON now");
    for delivery in rest {
        let tx = conn.transaction().unwrap();
        journal::record(&tx, &Prepared::new(delivery.to_new_delivery())).unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(dump(&conn, false), in_order());
    assert!(
        plain(&conn, "blob") > 0,
        "rows the later deliveries touched are compressed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn projection_does_not_depend_on_arrival_order(
        shuffled in Just(scenario::deliveries()).prop_shuffle()
    ) {
        let (_dir, conn) = record_all(&shuffled);
        let (got, want) = (dump(&conn, false), in_order());
        let extra: Vec<_> = got.iter().filter(|row| !want.contains(row)).collect();
        let missing: Vec<_> = want.iter().filter(|row| !got.contains(row)).collect();
        prop_assert!(extra.is_empty() && missing.is_empty(), "rows only in the shuffled run: {extra:#?}\nrows only in the ordered run: {missing:#?}");
    }
}

/// The audience summary, computed from scratch by its definition (hosts and guest speakers
/// apart, cancelled and denied registrations not counted), as migration 02's views did.
fn audience_by_definition(conn: &Connection) -> Vec<(String, String, bool, bool)> {
    let staff = "EXISTS (SELECT 1 FROM registrations s WHERE s.person_uid = x.person_uid
                   AND s.webinar_uid = x.webinar_uid AND s.role <> 'audience')
                 OR EXISTS (SELECT 1 FROM attendance s WHERE s.person_uid = x.person_uid
                   AND s.webinar_uid = x.webinar_uid AND s.role <> 'audience')";
    let sql = format!(
        "SELECT webinar_uid, person_uid,
            EXISTS (SELECT 1 FROM registrations r WHERE r.webinar_uid = x.webinar_uid
              AND r.person_uid = x.person_uid AND coalesce(r.status, '') NOT IN ('cancelled', 'denied')),
            EXISTS (SELECT 1 FROM attendance a WHERE a.webinar_uid = x.webinar_uid
              AND a.person_uid = x.person_uid AND a.attended)
         FROM (SELECT webinar_uid, person_uid FROM registrations
               UNION SELECT webinar_uid, person_uid FROM attendance) x
         WHERE NOT ({staff})
         ORDER BY 1, 2"
    );
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    rows.map(Result::unwrap)
        .filter(|(_, _, registered, attended)| *registered || *attended)
        .collect()
}

#[test]
fn the_audience_summary_agrees_with_its_definition() {
    let (_dir, conn) = record_all(&scenario::deliveries());
    let expected = audience_by_definition(&conn);
    assert!(expected.len() > 3, "the scenario has an audience");
    let mut stmt = conn
        .prepare("SELECT * FROM audience ORDER BY webinar_uid, person_uid")
        .unwrap();
    let kept: Vec<(String, String, bool, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(kept, expected);
    let mismatched: i64 = conn
        .query_row(
            "SELECT count(*) FROM (
                SELECT webinar_uid, sum(registered) AS r, sum(attended) AS a,
                       sum(registered AND attended) AS ra FROM audience GROUP BY webinar_uid) x
             FULL JOIN webinar_counts c USING (webinar_uid)
             WHERE c.registered IS NOT x.r OR c.attended IS NOT x.a
                OR c.registered_attended IS NOT x.ra",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mismatched, 0, "webinar counts agree with the audience rows");
}

/// Every table that is not projection (the journal and the organizer's settings), row by row.
fn everything_else(conn: &Connection) -> Vec<String> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        // The revision only ever grows: a rebuild moves it on, as every projection write does.
        if PROJECTED_TABLES.contains(&table.as_str()) || table == "projection_revision" {
            continue;
        }
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let width = stmt.column_count();
        let mut query = stmt.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let values: Vec<rusqlite::types::Value> =
                (0..width).map(|i| row.get(i).unwrap()).collect();
            rows.push(format!("{table}: {values:?}"));
        }
    }
    rows.sort();
    rows
}

/// A store at `path` with the scenario's sources and these deliveries recorded, one commit each.
fn store_with(path: &std::path::Path, deliveries: &[ScenarioDelivery]) -> Connection {
    support::add_sources(path);
    let mut conn = open_writer(path, &StoreOptions::default()).unwrap();
    for delivery in deliveries {
        let tx = conn.transaction().unwrap();
        journal::record(&tx, &Prepared::new(delivery.to_new_delivery())).unwrap();
        tx.commit().unwrap();
    }
    conn
}

fn index_names(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn reindex_into_a_fresh_file_keeps_the_journal_and_reproduces_the_projection() {
    let dir = tempfile::tempdir().unwrap();
    let path = database_path(dir.path());
    let conn = store_with(&path, &scenario::deliveries());
    let (projection, journal_and_settings) = (dump(&conn, true), everything_else(&conn));
    assert!(journal_and_settings
        .iter()
        .any(|r| r.starts_with("sources: ")));
    let revision = projection::revision(&conn).unwrap();
    let indexes = index_names(&conn);
    drop(conn);
    // A rebuild that died half way left its file behind: the next one starts afresh.
    std::fs::write(rebuild::fresh_path(dir.path()), b"half a database").unwrap();

    let report = rebuild::reindex(dir.path(), &StoreOptions::default()).unwrap();
    assert!(report.projected > 0 && report.ignored > 0, "{report:?}");
    let conn = open_writer(&path, &StoreOptions::default()).unwrap();
    assert_eq!(dump(&conn, true), projection);
    assert_eq!(everything_else(&conn), journal_and_settings);
    assert!(projection::revision(&conn).unwrap() > revision);
    assert!(!rebuild::fresh_path(dir.path()).exists());
    // The journal's index entries are copied as they are, not rebuilt: they must still match
    // the copied rows.
    assert_eq!(index_names(&conn), indexes);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// Every column of every facts row, delivery ids included (a reindex keeps them).
fn all_facts(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT * FROM facts ORDER BY delivery_id, ordinal")
        .unwrap();
    let width = stmt.column_count();
    let mut rows = stmt.query([]).unwrap();
    let mut all = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let values: Vec<rusqlite::types::Value> = (0..width).map(|i| row.get(i).unwrap()).collect();
        all.push(format!("{values:?}"));
    }
    all
}

/// A reindex copies the facts with the journal, then makes each delivery's rows the ones its
/// facts give today: rows that differ (in text or in type), are missing or are one too many, and
/// rows of deliveries not projected or not there at all, end as a projection from scratch
/// writes them.
#[test]
fn reindex_makes_the_copied_facts_exactly_what_the_deliveries_give() {
    let dir = tempfile::tempdir().unwrap();
    let path = database_path(dir.path());
    let conn = store_with(&path, &scenario::deliveries());
    let (projection, facts) = (dump(&conn, true), all_facts(&conn));
    let ids = |sql: &str| -> Vec<i64> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let projected = ids("SELECT DISTINCT delivery_id FROM facts ORDER BY 1");
    let not_projected = ids("SELECT id FROM deliveries WHERE status <> 'projected'
         AND id < (SELECT max(delivery_id) FROM facts) ORDER BY id");
    let beyond = ids("SELECT max(id) + 1 FROM deliveries")[0];
    assert!(projected.len() > 5 && !not_projected.is_empty());
    let copy_of = |delivery: i64, to: &str| {
        format!(
            "INSERT INTO facts SELECT {to}, ordinal, kind, webinar_uid, session_uid, person_uid,
                at, at_basis, version, body FROM facts WHERE delivery_id = {delivery};"
        )
    };
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = OFF;
         UPDATE facts SET body = body || ' ' WHERE delivery_id = {0} AND ordinal = 0;
         DELETE FROM facts WHERE delivery_id = {1};
         INSERT INTO facts SELECT delivery_id, 99, kind, webinar_uid, session_uid, person_uid,
            at, at_basis, version, body FROM facts WHERE delivery_id = {2} AND ordinal = 0;
         UPDATE facts SET version = '[0,0,0]' WHERE delivery_id = {3};
         UPDATE facts SET body = CAST(body AS BLOB) WHERE delivery_id = {6};
         UPDATE facts SET session_uid = X'00' WHERE session_uid IS NULL AND delivery_id =
            (SELECT min(delivery_id) FROM facts WHERE session_uid IS NULL AND delivery_id > {6});
         {4} {5}",
        projected[0],
        projected[1],
        projected[2],
        projected[projected.len() - 1],
        copy_of(projected[3], &not_projected[0].to_string()),
        copy_of(projected[3], &beyond.to_string()),
        projected[4],
    ))
    .unwrap();
    assert_ne!(all_facts(&conn), facts);
    drop(conn);

    rebuild::reindex(dir.path(), &StoreOptions::default()).unwrap();
    let conn = open_writer(&path, &StoreOptions::default()).unwrap();
    assert_eq!(all_facts(&conn), facts);
    assert_eq!(dump(&conn, true), projection);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn reindex_refuses_a_journal_table_whose_columns_differ_and_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = database_path(dir.path());
    let conn = store_with(&path, &scenario::deliveries()[..1]);
    // The journal is copied by position, so a column the current schema lacks must stop it.
    conn.execute_batch("ALTER TABLE rejections ADD COLUMN note TEXT")
        .unwrap();
    let (projection, journal_and_settings) = (dump(&conn, true), everything_else(&conn));
    drop(conn);

    let error = rebuild::reindex(dir.path(), &StoreOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("rejections") && error.contains("note") && error.contains("left as it was"),
        "{error}"
    );
    let conn = open_writer(&path, &StoreOptions::default()).unwrap();
    assert_eq!(dump(&conn, true), projection);
    assert_eq!(everything_else(&conn), journal_and_settings);
}
