//! The audience summary: for each person at each webinar, whether they count as a registrant
//! and as an attendee (staff and cancelled or denied registrations excluded), and each
//! webinar's and each person's headline counts. Kept up to date by the projection for every (webinar, person)
//! pair whose registrations or attendance it wrote, so reports count without scanning.
//!
//! Derived only from the `registrations` and `attendance` rows as they stand, so it is as
//! order-independent as they are. It reads no facts and no payloads.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, OptionalExtension};

use super::Result;

/// A person at a webinar: (webinar uid, person uid).
pub type Pair = (String, String);

/// Recomputes the audience rows of `pairs` and moves the webinars' counts by the difference.
pub fn refresh(conn: &Connection, pairs: &BTreeSet<Pair>) -> Result<()> {
    for (webinar, person) in pairs {
        refresh_one(conn, webinar, person)?;
    }
    Ok(())
}

/// Computes the whole summary at once, after a rebuild (where refreshing pair by pair would
/// cost a lookup per registration), from the participants summary the rebuild has computed:
/// its `rank`, `registered` and `attended` apply the rules of [`refresh`] to the same rows (a
/// rank above 0 is a host or guest speaker), so the audience is a filter of it. Grouping the
/// registrations and attendance a second time took 4 of a rebuild's 13 s of summaries.
pub fn rebuild(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM audience;
         DELETE FROM webinar_counts;
         INSERT INTO audience (webinar_uid, person_uid, registered, attended)
         SELECT webinar_uid, person_uid, registered, attended <> 0 FROM participants
         WHERE rank = 0 AND (registered OR attended);
         INSERT INTO webinar_counts (webinar_uid, registered, attended, registered_attended)
         SELECT webinar_uid, sum(registered), sum(attended), sum(registered AND attended)
         FROM audience GROUP BY webinar_uid;
         DELETE FROM person_counts;
         INSERT INTO person_counts (person_uid, registered, attended, no_shows)
         SELECT person_uid, sum(registered), sum(attended), sum(registered AND NOT attended)
         FROM audience GROUP BY person_uid;",
    )?;
    Ok(())
}

/// The lookups go by person (`+webinar_uid` keeps SQLite off the primary key, which would
/// scan the whole webinar: 100,000 rows for a large one).
fn refresh_one(conn: &Connection, webinar: &str, person: &str) -> Result<()> {
    let (registered, attended): (bool, bool) = conn
        .prepare_cached(
            "SELECT NOT staff AND registered, NOT staff AND attended FROM (SELECT
                EXISTS (SELECT 1 FROM registrations WHERE person_uid = ?2 AND +webinar_uid = ?1
                        AND role <> 'audience')
                OR EXISTS (SELECT 1 FROM attendance WHERE person_uid = ?2 AND +webinar_uid = ?1
                        AND role <> 'audience') AS staff,
                EXISTS (SELECT 1 FROM registrations WHERE person_uid = ?2 AND +webinar_uid = ?1
                        AND coalesce(status, '') NOT IN ('cancelled', 'denied')) AS registered,
                EXISTS (SELECT 1 FROM attendance WHERE person_uid = ?2 AND +webinar_uid = ?1
                        AND attended) AS attended)",
        )?
        .query_row([webinar, person], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let before: (bool, bool) = conn
        .prepare_cached(
            "SELECT registered, attended FROM audience WHERE webinar_uid = ?1 AND person_uid = ?2",
        )?
        .query_row([webinar, person], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .unwrap_or((false, false));
    if before == (registered, attended) {
        return Ok(());
    }
    if registered || attended {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO audience (webinar_uid, person_uid, registered, attended)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![webinar, person, registered, attended])?;
    } else {
        conn.prepare_cached("DELETE FROM audience WHERE webinar_uid = ?1 AND person_uid = ?2")?
            .execute([webinar, person])?;
    }
    let delta = |now: bool, then: bool| i64::from(now) - i64::from(then);
    let counts = (
        delta(registered, before.0),
        delta(attended, before.1),
        delta(registered && attended, before.0 && before.1),
    );
    conn.prepare_cached(
        "INSERT INTO webinar_counts (webinar_uid, registered, attended, registered_attended)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (webinar_uid) DO UPDATE SET registered = registered + excluded.registered,
            attended = attended + excluded.attended,
            registered_attended = registered_attended + excluded.registered_attended",
    )?
    .execute(params![webinar, counts.0, counts.1, counts.2])?;
    // A webinar nobody counts for has no row, as a rebuild from scratch would leave it.
    conn.prepare_cached(
        "DELETE FROM webinar_counts WHERE webinar_uid = ?1 AND registered = 0 AND attended = 0",
    )?
    .execute([webinar])?;
    let no_show = |(registered, attended): (bool, bool)| i64::from(registered && !attended);
    conn.prepare_cached(
        "INSERT INTO person_counts (person_uid, registered, attended, no_shows)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (person_uid) DO UPDATE SET registered = registered + excluded.registered,
            attended = attended + excluded.attended, no_shows = no_shows + excluded.no_shows",
    )?
    .execute(params![
        person,
        counts.0,
        counts.1,
        no_show((registered, attended)) - no_show(before)
    ])?;
    // Likewise a person counted nowhere: no audience row, no counts row.
    conn.prepare_cached(
        "DELETE FROM person_counts WHERE person_uid = ?1 AND registered = 0 AND attended = 0",
    )?
    .execute([person])?;
    Ok(())
}
