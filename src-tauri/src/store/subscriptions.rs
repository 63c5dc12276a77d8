//! The records of webhook subscriptions Rollcall made through platform APIs, the organizer's
//! subscription settings, and the two questions the Setup screen asks of the journal: when did a
//! source last receive a delivery, and has a source that used to receive gone silent during a
//! webinar scheduled on its platform.
//!
//! Nothing here talks to a platform or holds a credential: `crate::subscriptions` does the
//! calls and keeps API keys out of the database.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{format_time, Result};
use crate::facts::Platform;

/// One webhook registered with a platform on behalf of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Subscription {
    pub id: i64,
    pub source_id: i64,
    pub platform: Platform,
    /// The platform's event or trigger name.
    pub event: String,
    /// The platform's id for the webhook; `None` when it did not give one.
    pub remote_id: Option<String>,
    /// GoTo Webinar only: the user subscription tying the webhook to the organizer's account.
    pub remote_user_sub_id: Option<String>,
    /// The URL the platform calls.
    pub hook_url: String,
    pub created_at: String,
    pub updated_at: String,
    /// Why the last create, re-point or delete failed; `None` when it worked.
    pub last_error: Option<String>,
}

const COLUMNS: &str = "id, source_id, platform, event, remote_id, remote_user_sub_id, hook_url,
    created_at, updated_at, last_error";

fn subscription_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let platform: String = row.get(2)?;
    Ok(Subscription {
        id: row.get(0)?,
        source_id: row.get(1)?,
        platform: platform.parse().unwrap_or(Platform::Bigmarker),
        event: row.get(3)?,
        remote_id: row.get(4)?,
        remote_user_sub_id: row.get(5)?,
        hook_url: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
        last_error: row.get(9)?,
    })
}

fn now() -> String {
    format_time(&Utc::now())
}

/// What a platform answered when a webhook was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remote {
    pub id: Option<String>,
    pub user_sub_id: Option<String>,
}

/// Records a webhook that now exists on the platform (replacing an older record of the same
/// source and event, whose remote webhook the caller has dealt with).
pub fn record(
    conn: &Connection,
    source_id: i64,
    platform: Platform,
    event: &str,
    remote: &Remote,
    hook_url: &str,
) -> Result<Subscription> {
    let at = now();
    conn.execute(
        "INSERT INTO subscriptions (source_id, platform, event, remote_id, remote_user_sub_id,
             hook_url, created_at, updated_at, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, NULL)
         ON CONFLICT (source_id, event) DO UPDATE SET remote_id = excluded.remote_id,
             remote_user_sub_id = excluded.remote_user_sub_id, hook_url = excluded.hook_url,
             updated_at = excluded.updated_at, last_error = NULL",
        params![
            source_id,
            platform.as_str(),
            event,
            remote.id,
            remote.user_sub_id,
            hook_url,
            at
        ],
    )?;
    let sql = format!("SELECT {COLUMNS} FROM subscriptions WHERE source_id = ?1 AND event = ?2");
    Ok(conn.query_row(&sql, params![source_id, event], subscription_row)?)
}

/// Notes why the last attempt on a subscription failed (`None` clears it).
pub fn set_error(conn: &Connection, id: i64, error: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE subscriptions SET last_error = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, error, now()],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> Result<()> {
    conn.execute("DELETE FROM subscriptions WHERE id = ?1", [id])?;
    Ok(())
}

/// Every subscription, by source then event.
pub fn list(conn: &Connection) -> Result<Vec<Subscription>> {
    let sql = format!("SELECT {COLUMNS} FROM subscriptions ORDER BY source_id, event");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], subscription_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The subscriptions of one source.
pub fn of_source(conn: &Connection, source_id: i64) -> Result<Vec<Subscription>> {
    let sql = format!("SELECT {COLUMNS} FROM subscriptions WHERE source_id = ?1 ORDER BY event");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([source_id], subscription_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const AUTO_REPOINT: &str = "auto_repoint";

/// Whether every subscription is re-pointed without asking when the tunnel URL changes.
pub fn auto_repoint(conn: &Connection) -> Result<bool> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM subscription_settings WHERE key = ?1",
            [AUTO_REPOINT],
            |row| row.get(0),
        )
        .optional()?;
    Ok(value.as_deref() == Some("true"))
}

pub fn set_auto_repoint(conn: &Connection, on: bool) -> Result<()> {
    conn.execute(
        "INSERT INTO subscription_settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![AUTO_REPOINT, if on { "true" } else { "false" }],
    )?;
    Ok(())
}

/// When `source_id` last received a delivery (webhook or import), if ever.
pub fn last_delivery(conn: &Connection, source_id: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT received_at FROM source_last_delivery WHERE source_id = ?1")?
        .query_row([source_id], |row| row.get(0))
        .optional()?)
}

/// How far back a scheduled webinar still counts when looking for a silent source.
pub const SILENT_LOOKBACK_HOURS: i64 = 6;

/// How long a session with a start but no end is assumed to last: most webinars end within two
/// hours, and a warning that comes a little late is better than one that never comes.
const ASSUMED_SESSION_HOURS: i64 = 2;

/// A source that used to receive deliveries and has had none since a webinar on its platform
/// was scheduled to start (now, or within the last [`SILENT_LOOKBACK_HOURS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SilentWarning {
    pub webinar_uid: String,
    pub webinar_title: Option<String>,
    pub scheduled_start: String,
    pub scheduled_end: Option<String>,
    /// The newest delivery the source ever received (before the webinar started).
    pub last_delivery_at: String,
    /// A sentence for the organizer.
    pub message: String,
}

/// Whether the source (of `platform`) has gone silent during a webinar scheduled around `now`.
pub fn silent(
    conn: &Connection,
    source_id: i64,
    platform: Platform,
    now: DateTime<Utc>,
) -> Result<Option<SilentWarning>> {
    let Some(last) = last_delivery(conn, source_id)? else {
        // Never received anything: that is a setup problem, not a silence.
        return Ok(None);
    };
    let since = format_time(&(now - Duration::hours(SILENT_LOOKBACK_HOURS)));
    let now_text = format_time(&now);
    let assumed = format!("+{ASSUMED_SESSION_HOURS} hours");
    // The most recent session (or single-session webinar) whose scheduled time overlaps the
    // last hours and that started after the source's last delivery.
    let found = conn
        .prepare_cached(
            "WITH scheduled AS (
                 SELECT w.uid, w.title, s.scheduled_start AS start, s.scheduled_end AS end_at
                 FROM sessions s JOIN webinars w ON w.uid = s.webinar_uid
                 WHERE w.platform = ?1 AND s.scheduled_start IS NOT NULL AND w.deleted_at IS NULL
                 UNION ALL
                 SELECT w.uid, w.title, w.scheduled_start, w.scheduled_end
                 FROM webinars w
                 WHERE w.platform = ?1 AND w.scheduled_start IS NOT NULL AND w.deleted_at IS NULL
                   AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.webinar_uid = w.uid
                                   AND s.scheduled_start IS NOT NULL)
             )
             SELECT uid, title, start, end_at FROM scheduled
             WHERE start <= ?2
               AND COALESCE(end_at, strftime('%Y-%m-%dT%H:%M:%fZ', start, ?4)) >= ?3
               AND start > ?5
             ORDER BY start DESC LIMIT 1",
        )?
        .query_row(
            params![platform.as_str(), now_text, since, assumed, last],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()?;
    Ok(found.map(|(uid, title, start, end)| SilentWarning {
        message: format!(
            "No delivery since {last}, although {} was scheduled to start at {start}. Check that \
             the webhook URLs in {} are current (a new tunnel URL needs re-pointing).",
            title
                .as_deref()
                .map_or_else(|| "a webinar".to_owned(), |t| format!("{t:?}")),
            platform.display_name()
        ),
        webinar_uid: uid,
        webinar_title: title,
        scheduled_start: start,
        scheduled_end: end,
        last_delivery_at: last,
    }))
}
