//! The multi-platform scenario (`tests/fixtures/scenarios/multi-platform`) loaded into a real
//! store, and every report number asserted exactly against the hand-derived `expected.json`;
//! CSV exports pinned as snapshots.

mod support;

use rollcall::report::attendance::{self, Audience};
use rollcall::report::export::{self, CsvOptions, Export};
use rollcall::report::{people, timeline, webinars, Scope, Zone};
use rollcall::store::{open_read_only, StoreOptions};
use rusqlite::Connection;
use serde_json::Value;

fn scenario_store() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3");
    support::scenario::record_into(&db, &support::scenario::multi_platform());
    let conn = open_read_only(&db, &StoreOptions::default()).unwrap();
    (dir, conn)
}

fn expected() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/scenarios/multi-platform/expected.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn zone() -> Zone {
    Zone::parse(Some("America/New_York")).unwrap()
}

/// Every key of `expected` is in `actual` with the same value (objects compared recursively).
fn assert_includes(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, value) in expected {
                let found = actual.get(key).unwrap_or(&Value::Null);
                assert_includes(value, found, &format!("{path}.{key}"));
            }
        }
        (Value::Object(expected), Value::Null) if expected.is_empty() => {}
        _ => assert_eq!(expected, actual, "at {path}"),
    }
}

fn report_json(conn: &Connection, scope: &Scope) -> Value {
    let report = attendance::report(conn, scope, zone()).unwrap();
    let mut json = serde_json::to_value(&report.numbers).unwrap();
    let fields = json.as_object_mut().unwrap();
    fields.insert(
        "sources".into(),
        serde_json::to_value(&report.sources).unwrap(),
    );
    fields.insert("hosts".into(), serde_json::to_value(&report.hosts).unwrap());
    fields.insert(
        "guest_speakers".into(),
        serde_json::to_value(&report.guest_speakers).unwrap(),
    );
    json
}

#[test]
fn every_report_number_matches_the_hand_derived_expectation() {
    let (_dir, conn) = scenario_store();
    let expected = expected();
    let webinars = expected["webinars"].as_object().unwrap();
    assert_eq!(
        webinars::list(&conn, &Default::default(), zone())
            .unwrap()
            .len(),
        webinars.len()
    );
    for (uid, numbers) in webinars {
        let mut webinar_level = numbers.clone();
        let sessions = webinar_level
            .as_object_mut()
            .unwrap()
            .remove("sessions")
            .unwrap_or_default();
        assert_includes(
            &webinar_level,
            &report_json(&conn, &Scope::webinar(uid)),
            uid,
        );
        for (session, numbers) in sessions.as_object().into_iter().flatten() {
            let scope = Scope {
                webinar: uid.clone(),
                session: Some(session.clone()),
            };
            assert_includes(
                numbers,
                &report_json(&conn, &scope),
                &format!("{uid} session {session}"),
            );
        }
    }
}

/// The participants summary the projection keeps must say exactly what grouping the rows
/// afresh says, for every webinar of the scenario (staff, walk-ins, sessions, replay views).
#[test]
fn the_participants_summary_matches_the_rows_it_summarizes() {
    let (_dir, conn) = scenario_store();
    let webinars: Vec<String> = conn
        .prepare("SELECT uid FROM webinars ORDER BY uid")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        webinars.len() >= 4,
        "the scenario has a webinar per platform"
    );
    let (mut people, mut custom_fields) = (0, 0);
    for webinar in webinars {
        let scope = Scope {
            webinar,
            session: None,
        };
        let (mut kept, mut fresh) = (Vec::new(), Vec::new());
        attendance::each_participant(&conn, &scope, zone(), |p| {
            kept.push(serde_json::to_value(p).unwrap());
            Ok(())
        })
        .unwrap();
        attendance::each_participant_from_rows(&conn, &scope, zone(), |p| {
            fresh.push(serde_json::to_value(p).unwrap());
            Ok(())
        })
        .unwrap();
        assert_eq!(kept, fresh, "participants of {}", scope.webinar);
        people += kept.len();
        let fields_in_rows: Vec<String> = conn
            .prepare(
                "SELECT DISTINCT f.key FROM registrations r, json_each(r.custom_fields) f
                 WHERE r.webinar_uid = ?1 ORDER BY 1",
            )
            .unwrap()
            .query_map([&scope.webinar], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let fields = attendance::custom_field_names(&conn, &scope).unwrap();
        assert_eq!(fields, fields_in_rows, "custom fields of {}", scope.webinar);
        custom_fields += fields.len();
        for audience in [
            Audience::Attendees,
            Audience::Registrants,
            Audience::NoShows,
            Audience::ReplayViewers,
            Audience::Staff,
        ] {
            for limit in [1, 500] {
                let page = |from_rows: bool| {
                    let page = if from_rows {
                        attendance::audience_page_from_rows
                    } else {
                        attendance::audience_page
                    };
                    let (people, total) = page(&conn, &scope, zone(), audience, limit).unwrap();
                    (serde_json::to_value(people).unwrap(), total)
                };
                assert_eq!(
                    page(false),
                    page(true),
                    "{audience:?} of {} (limit {limit})",
                    scope.webinar
                );
            }
        }
    }
    assert!(people > 10, "the scenario has people: {people}");
    assert!(
        custom_fields > 0,
        "the scenario has custom registration fields"
    );
}

/// Migration 12 fills the summary, by name, of a store that had none (version 10) and of one
/// that had it in migration 11's shape, exactly as the projection keeps it.
#[test]
fn the_participants_migrations_fill_the_summary_of_an_existing_store() {
    let rows = |conn: &Connection| -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT * FROM participants ORDER BY webinar_uid, person_uid")
            .unwrap();
        let width = stmt.column_count();
        let mut query = stmt.query([]).unwrap();
        let mut rows = Vec::new();
        while let Some(row) = query.next().unwrap() {
            let values: Vec<rusqlite::types::Value> =
                (0..width).map(|i| row.get(i).unwrap()).collect();
            rows.push(format!("{values:?}"));
        }
        rows
    };
    let migration_11 = include_str!("../src-tauri/src/store/migrations/11-participants/up.sql");
    // Back to the schema of that version: migration 13 runs again too.
    let before_13 = "DROP TRIGGER sources_revision; DROP TRIGGER source_keys_added;
        DROP TRIGGER source_keys_changed; DROP TRIGGER source_keys_removed;
        ALTER TABLE sources DROP COLUMN revision;";
    // And migration 17 (18 finds its constraint already as it makes it).
    let before_17 = "DROP INDEX deliveries_pending; DROP INDEX deliveries_status;
        CREATE INDEX deliveries_status ON deliveries (status, id);
        CREATE INDEX deliveries_source_received ON deliveries (source_id, received_at)
            WHERE source_id IS NOT NULL;
        DROP TABLE source_last_delivery;";
    // And migration 19.
    let before_19 = "DROP TABLE receipt_log; ALTER TABLE deliveries DROP COLUMN receipt;";
    for (version, earlier_table) in [(10, ""), (11, migration_11)] {
        let (dir, conn) = scenario_store();
        let kept = rows(&conn);
        drop(conn);
        let db = dir.path().join("db.sqlite3");
        Connection::open(&db)
            .unwrap()
            .execute_batch(&format!(
                "DROP TABLE participants; {earlier_table}; {before_13} {before_17} {before_19}
                 PRAGMA user_version = {version};"
            ))
            .unwrap();
        let migrated = rollcall::store::open_writer(&db, &StoreOptions::default()).unwrap();
        assert!(kept.len() > 10, "the scenario has participants");
        assert_eq!(rows(&migrated), kept, "from version {version}");
    }
}

/// The scenario has hosts and guest speakers, whom the audience leaves out: a rebuild, which
/// computes the audience from the participants summary, must leave out the same people.
#[test]
fn a_reindex_of_the_scenario_reproduces_every_table() {
    let (dir, conn) = scenario_store();
    drop(conn);
    let mut conn =
        rollcall::store::open_writer(&dir.path().join("db.sqlite3"), &StoreOptions::default())
            .unwrap();
    let staff: i64 = conn
        .query_row(
            "SELECT count(*) FROM participants WHERE rank > 0",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(staff >= 2, "the scenario has staff");
    let live = support::tables::dump(&conn, true);
    let tx = conn.transaction().unwrap();
    rollcall::store::journal::reindex(&tx).unwrap();
    assert_eq!(support::tables::dump(&tx, true), live);
}

#[test]
fn people_and_deliveries_match_the_expectation() {
    let (_dir, conn) = scenario_store();
    let expected = expected();
    for (email, numbers) in expected["people"].as_object().unwrap() {
        // Look the person up with the case and spaces a platform might send.
        let report =
            people::person(&conn, &format!("  {} ", email.to_uppercase()), zone()).unwrap();
        assert_includes(numbers, &serde_json::to_value(&report).unwrap(), email);
    }
    let counts = rollcall::store::journal::counts(&conn).unwrap();
    for (status, count) in expected["deliveries"].as_object().unwrap() {
        assert_eq!(
            counts.get(status).copied().unwrap_or(0),
            count.as_i64().unwrap(),
            "{status}"
        );
    }
}

#[test]
fn the_people_list_counts_match_each_person() {
    let (_dir, conn) = scenario_store();
    let list = people::list(&conn, None, people::Sort::Attended, 100, 0).unwrap();
    for line in &list {
        let person = people::person(&conn, &line.uid, zone()).unwrap();
        assert_eq!(
            (
                line.webinars_registered,
                line.webinars_attended,
                line.no_shows
            ),
            (
                person.webinars_registered,
                person.webinars_attended,
                person.no_shows
            ),
            "{}",
            line.uid
        );
    }
    let priya = list
        .iter()
        .find(|l| l.uid == "priya.raman@northwind.io")
        .unwrap();
    assert_eq!(priya.platforms, ["bigmarker", "gotowebinar"]);
    let found = people::list(&conn, Some("PRIYA"), people::Sort::Name, 10, 0).unwrap();
    assert_eq!(found.len(), 1);

    // Each order lists everyone once, and pages of it follow on from each other.
    let key = |l: &people::PersonLine| {
        l.name
            .clone()
            .or_else(|| l.email.clone())
            .unwrap_or_else(|| l.uid.clone())
            .to_lowercase()
    };
    let by_name = people::list(&conn, None, people::Sort::Name, 1000, 0).unwrap();
    assert!(
        by_name.windows(2).all(|w| key(&w[0]) <= key(&w[1])),
        "by name"
    );
    for sort in [
        people::Sort::Name,
        people::Sort::Attended,
        people::Sort::NoShows,
        people::Sort::Registered,
    ] {
        let whole = people::list(&conn, None, sort, 1000, 0).unwrap();
        assert_eq!(whole.len(), list.len(), "{sort:?}");
        let paged: Vec<String> = (0..whole.len().div_ceil(3))
            .flat_map(|page| people::list(&conn, None, sort, 3, page as u32 * 3).unwrap())
            .map(|l| l.uid)
            .collect();
        let uids: Vec<String> = whole.into_iter().map(|l| l.uid).collect();
        assert_eq!(paged, uids, "{sort:?}");
    }
}

#[test]
fn timelines_are_ordered_and_complete() {
    let (_dir, conn) = scenario_store();
    for line in webinars::list(&conn, &Default::default(), zone()).unwrap() {
        let timeline = timeline::timeline(&conn, &Scope::webinar(&line.info.uid), zone()).unwrap();
        let instants: Vec<_> = timeline
            .entries
            .iter()
            .map(|e| chrono::DateTime::parse_from_rfc3339(&e.at).unwrap())
            .collect();
        assert!(
            instants.windows(2).all(|w| w[0] <= w[1]),
            "{} is out of order",
            line.info.uid
        );
        let kinds: Vec<&str> = timeline.entries.iter().map(|e| e.kind).collect();
        assert!(
            kinds.contains(&"registered"),
            "{} has no registrations",
            line.info.uid
        );
        // Livestorm and TagMango report attendance without join times.
        if ["gotowebinar", "bigmarker"].contains(&line.info.platform.as_str()) {
            assert!(
                kinds.contains(&"joined"),
                "{} has no joins: {kinds:?}",
                line.info.uid
            );
        }
        let last = timeline.registrations.last().map(|p| p.value).unwrap_or(0);
        assert_eq!(
            last as u64, line.registered,
            "{}: the cumulative series ends at the count",
            line.info.uid
        );
    }
}

fn csv_of(conn: &Connection, export: &Export, excel: bool) -> String {
    let mut out = Vec::new();
    export::write_csv(conn, export, zone(), CsvOptions { excel }, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn csv_exports_match_their_snapshots() {
    let (_dir, conn) = scenario_store();
    let uids: Vec<String> = expected()["webinars"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for uid in &uids {
        for audience in [
            Audience::Attendees,
            Audience::Registrants,
            Audience::NoShows,
            Audience::ReplayViewers,
        ] {
            let export = Export::People(audience, Scope::webinar(uid));
            insta::assert_snapshot!(export.file_name(), csv_of(&conn, &export, false));
        }
        let export = Export::Timeline(Scope::webinar(uid));
        insta::assert_snapshot!(export.file_name(), csv_of(&conn, &export, false));
    }
    let all = Export::Webinars(Default::default());
    insta::assert_snapshot!("webinars.csv", csv_of(&conn, &all, false));
}

#[test]
fn csv_files_are_rfc4180_with_crlf_and_an_optional_bom() {
    let (_dir, conn) = scenario_store();
    let export = Export::People(
        Audience::Registrants,
        Scope::webinar("bigmarker:b7c41e9a2d05"),
    );
    let plain = csv_of(&conn, &export, false);
    assert!(plain.starts_with("Attended,First Name,Last Name,Email"));
    assert!(plain.contains("Registration Time (America/New_York)"));
    assert!(plain.lines().count() > 1 && plain.split("\r\n").count() == plain.lines().count() + 1);
    assert!(!plain.replace("\r\n", "").contains('\n'));
    let excel = csv_of(&conn, &export, true);
    assert_eq!(excel.strip_prefix('\u{feff}'), Some(plain.as_str()));
    let mut reader = csv::Reader::from_reader(plain.as_bytes());
    let width = reader.headers().unwrap().len();
    assert!(reader.records().all(|r| r.unwrap().len() == width));
}

/// A large webinar's timeline keeps every entry about the webinar and the latest people's ones,
/// says how many there are in all, and draws its series with a bounded number of points.
#[test]
fn a_large_timeline_is_cut_to_the_latest_entries_and_thinned_series() {
    use support::scenario::ScenarioDelivery;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3");
    let start = chrono::DateTime::parse_from_rfc3339("2024-05-01T15:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let people = timeline::PERSON_ENTRIES + 200;
    let deliveries: Vec<ScenarioDelivery> = (0..people)
        .map(|n| {
            let at = (start + chrono::Duration::seconds(n as i64)).to_rfc3339();
            ScenarioDelivery {
                platform: rollcall::facts::Platform::Gotowebinar,
                trigger: None,
                body: serde_json::json!({
                    "eventName": "registrant.added", "eventVersion": "1.0.0", "product": "g2w",
                    "eventKey": format!("big-{n}"), "firstName": "P", "lastName": format!("{n}"),
                    "email": format!("p{n}@example.com"), "webinarKey": "8281234567890123456",
                    "registrantKey": format!("{}", 9_281_234_567_890_000_000u64 + n as u64),
                    "webinarTitle": "Big", "registrationDate": at, "status": "APPROVED",
                    "timestamp": at
                })
                .to_string(),
                received_at: start + chrono::Duration::seconds(n as i64),
            }
        })
        .collect();
    support::scenario::record_into(&db, &deliveries);
    let conn = open_read_only(&db, &StoreOptions::default()).unwrap();
    let all: i64 = conn
        .query_row(
            "SELECT count(*) FROM timeline WHERE webinar_uid = 'gotowebinar:8281234567890123456'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let about_people: i64 = conn
        .query_row(
            "SELECT count(*) FROM timeline WHERE webinar_uid = 'gotowebinar:8281234567890123456'
             AND person_uid IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        about_people as usize > timeline::PERSON_ENTRIES,
        "{all} entries, {about_people} about people"
    );
    let t = timeline::timeline(
        &conn,
        &Scope::webinar("gotowebinar:8281234567890123456"),
        zone(),
    )
    .unwrap();
    assert_eq!(t.entries_total, all as u64);
    let kept_people = t.entries.iter().filter(|e| e.person_uid.is_some()).count();
    assert_eq!(kept_people, timeline::PERSON_ENTRIES);
    assert_eq!(
        t.entries.len() as i64,
        all - about_people + timeline::PERSON_ENTRIES as i64
    );
    // The latest are kept: the last person to arrive is the last entry about people.
    let last = t
        .entries
        .iter()
        .rev()
        .find(|e| e.person_uid.is_some())
        .unwrap();
    assert_eq!(
        last.person_uid.as_deref(),
        Some(format!("p{}@example.com", people - 1).as_str())
    );
    assert!(t.registrations.len() <= timeline::SERIES_POINTS);
    assert!(t.presence.len() <= timeline::SERIES_POINTS);
}
