//! The projected tables as comparable text, to check that two stores hold the same projection
//! (after shuffled arrivals, or after crashes against a clean `reindex`).

use rusqlite::Connection;

/// Every projected table, rows in key order, with delivery ids replaced by the delivery's
/// identity (ids depend on arrival order; identities do not). The fold state is compared
/// only where delivery ids are the same (`with_fold`).
pub fn dump(conn: &Connection, with_fold: bool) -> Vec<String> {
    let tables = [
        ("webinars", "uid"),
        ("sessions", "uid"),
        ("people", "uid"),
        ("registrations", "webinar_uid, session_uid, person_uid"),
        ("attendance", "webinar_uid, session_uid, person_uid"),
    ];
    let mut rows = Vec::new();
    for (table, key) in tables {
        let sql = format!(
            "SELECT t.*, d.identity FROM {table} t JOIN deliveries d ON d.id = t.delivery_id ORDER BY {key}"
        );
        let mut stmt = conn.prepare(&sql).unwrap();
        let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
        let mut query = stmt.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let mut line = format!("{table}:");
            for (i, name) in names.iter().enumerate() {
                // Delivery ids (also inside the fold state) depend on arrival order: the
                // delivery's identity, appended below, stands for them.
                if name == "delivery_id" || (name == "fold" && !with_fold) {
                    continue;
                }
                let value: rusqlite::types::Value = row.get(i).unwrap();
                line.push_str(&format!(" {name}={value:?}"));
            }
            rows.push(line);
        }
    }
    // The summary tables the projection maintains: no delivery ids, compared whole.
    for sql in [
        "SELECT * FROM audience ORDER BY webinar_uid, person_uid",
        "SELECT * FROM webinar_counts ORDER BY webinar_uid",
        "SELECT * FROM people_search ORDER BY uid",
        "SELECT * FROM person_counts ORDER BY person_uid",
        "SELECT * FROM participants ORDER BY webinar_uid, person_uid",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let width = stmt.column_count();
        let mut query = stmt.query([]).unwrap();
        while let Some(row) = query.next().unwrap() {
            let values: Vec<rusqlite::types::Value> =
                (0..width).map(|i| row.get(i).unwrap()).collect();
            rows.push(format!("summary: {values:?}"));
        }
    }
    let facts = "SELECT d.identity, f.ordinal, f.kind, f.at, f.body FROM facts f
                 JOIN deliveries d ON d.id = f.delivery_id ORDER BY 1, 2";
    let mut stmt = conn.prepare(facts).unwrap();
    let mut query = stmt.query([]).unwrap();
    while let Some(row) = query.next().unwrap() {
        let values: Vec<rusqlite::types::Value> = (0..5).map(|i| row.get(i).unwrap()).collect();
        rows.push(format!("facts: {values:?}"));
    }
    rows
}
