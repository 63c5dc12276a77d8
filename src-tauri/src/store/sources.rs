//! Sources: where webhooks come from. A source is a platform, a label, a random token (the
//! secret part of its webhook URL), the zone for times sent without one, and for GoTo Webinar
//! the secret keys its deliveries are signed with.
//!
//! Tokens are looked up by their SHA-256 and then compared in constant time; they are never
//! logged. Removing or rotating a token refuses the old URL from the next request on: every
//! change that matters to a delivery raises the source's `revision` (migration 13's triggers),
//! which the writer checks for each delivery it journals.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use chrono_tz::Tz;
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{format_time, Result, StoreError};
use crate::facts::Platform;

/// 24 random bytes: 192 bits, well past the 128 a guess would need to beat.
const TOKEN_BYTES: usize = 24;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Source {
    pub id: i64,
    pub platform: Platform,
    pub label: String,
    /// The secret path segment of the webhook URL.
    pub token: String,
    pub time_zone: String,
    pub created_at: String,
    /// GoTo Webinar secret keys; a signed delivery must match one.
    #[serde(skip_serializing)]
    #[ts(skip)]
    pub secret_keys: Vec<String>,
    /// Raised by every change to the fields above (migration 13's triggers).
    #[serde(skip_serializing)]
    #[ts(skip)]
    pub revision: i64,
}

/// What a delivery was authenticated against: the writer journals it only if the source still
/// has this revision when the delivery's transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceCheck {
    pub id: i64,
    pub revision: i64,
}

impl Source {
    pub fn zone(&self) -> Tz {
        self.time_zone.parse().unwrap_or(Tz::UTC)
    }

    pub fn check(&self) -> SourceCheck {
        SourceCheck {
            id: self.id,
            revision: self.revision,
        }
    }

    /// Whether `token` is this source's, compared in constant time.
    pub fn has_token(&self, token: &str) -> bool {
        bool::from(self.token.as_bytes().ct_eq(token.as_bytes()))
    }
}

fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key tokens are looked up by: the lookup itself then leaks nothing about the token.
fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// [`token_key`] as the hex text the database keeps.
pub fn token_digest(token: &str) -> String {
    hex::encode(token_key(token))
}

const COLUMNS: &str = "id, platform, label, token, time_zone, created_at, revision";

fn source_row(row: &Row<'_>) -> rusqlite::Result<Source> {
    let platform: String = row.get(1)?;
    Ok(Source {
        id: row.get(0)?,
        platform: platform.parse().unwrap_or(Platform::Bigmarker),
        label: row.get(2)?,
        token: row.get(3)?,
        time_zone: row.get(4)?,
        created_at: row.get(5)?,
        secret_keys: Vec::new(),
        revision: row.get(6)?,
    })
}

fn with_keys(conn: &Connection, mut source: Source) -> Result<Source> {
    let mut stmt = conn.prepare_cached(
        "SELECT secret FROM source_secret_keys WHERE source_id = ?1 ORDER BY added_at, secret",
    )?;
    source.secret_keys = stmt
        .query_map([source.id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(source)
}

/// Adds a source with a fresh token.
pub fn add(
    conn: &Connection,
    platform: Platform,
    label: &str,
    time_zone: Tz,
    secret_keys: &[String],
) -> Result<Source> {
    let label = label.trim();
    if label.is_empty() {
        return Err(StoreError::Invalid("a source needs a label".into()));
    }
    if find(conn, label)?.is_some() {
        return Err(StoreError::Invalid(format!(
            "a source labelled {label:?} already exists"
        )));
    }
    let token = new_token();
    conn.execute(
        "INSERT INTO sources (platform, label, token, token_sha256, time_zone, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            platform.as_str(),
            label,
            token,
            token_digest(&token),
            time_zone.name(),
            now()
        ],
    )?;
    let id = conn.last_insert_rowid();
    for key in secret_keys {
        add_secret_key(conn, id, key)?;
    }
    get(conn, id)?.ok_or_else(|| StoreError::Invalid("the new source vanished".into()))
}

fn now() -> String {
    format_time(&Utc::now())
}

/// An active source by id.
pub fn get(conn: &Connection, id: i64) -> Result<Option<Source>> {
    let sql = format!("SELECT {COLUMNS} FROM sources WHERE id = ?1 AND removed_at IS NULL");
    let source = conn
        .prepare_cached(&sql)?
        .query_row([id], source_row)
        .optional()?;
    source.map(|s| with_keys(conn, s)).transpose()
}

/// An active source by label, or by id written as a number.
pub fn find(conn: &Connection, label_or_id: &str) -> Result<Option<Source>> {
    let sql = format!("SELECT {COLUMNS} FROM sources WHERE label = ?1 AND removed_at IS NULL");
    let by_label = conn
        .prepare_cached(&sql)?
        .query_row([label_or_id], source_row)
        .optional()?;
    match (by_label, label_or_id.parse::<i64>()) {
        (Some(source), _) => with_keys(conn, source).map(Some),
        (None, Ok(id)) => get(conn, id),
        (None, Err(_)) => Ok(None),
    }
}

/// Every active source, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<Source>> {
    let sql = format!("SELECT {COLUMNS} FROM sources WHERE removed_at IS NULL ORDER BY id");
    let sources: Vec<Source> = conn
        .prepare_cached(&sql)?
        .query_map([], source_row)?
        .collect::<rusqlite::Result<_>>()?;
    sources.into_iter().map(|s| with_keys(conn, s)).collect()
}

/// The active source of `platform` whose token is `token`.
pub fn by_token(conn: &Connection, platform: Platform, token: &str) -> Result<Option<Source>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sources
         WHERE token_sha256 = ?1 AND platform = ?2 AND removed_at IS NULL"
    );
    let found = conn
        .prepare_cached(&sql)?
        .query_row(params![token_digest(token), platform.as_str()], source_row)
        .optional()?;
    match found {
        Some(source) if source.has_token(token) => with_keys(conn, source).map(Some),
        _ => Ok(None),
    }
}

/// The revision of an active source; `None` once it is removed.
pub fn revision(conn: &Connection, id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT revision FROM sources WHERE id = ?1 AND removed_at IS NULL")?
        .query_row([id], |row| row.get(0))
        .optional()?)
}

/// Gives a source a new token; the old URL stops working at once.
pub fn rotate(conn: &Connection, id: i64) -> Result<Source> {
    let token = new_token();
    let changed = conn.execute(
        "UPDATE sources SET token = ?2, token_sha256 = ?3 WHERE id = ?1 AND removed_at IS NULL",
        params![id, token, token_digest(&token)],
    )?;
    if changed == 0 {
        return Err(StoreError::Invalid(format!("no source with id {id}")));
    }
    get(conn, id)?.ok_or_else(|| StoreError::Invalid(format!("no source with id {id}")))
}

/// Retires a source: its URL is refused from now on; its deliveries stay in the journal.
pub fn remove(conn: &Connection, id: i64) -> Result<()> {
    // The token is replaced too, so a removed source's URL can never match again.
    let retired = new_token();
    let changed = conn.execute(
        "UPDATE sources SET removed_at = ?2, token = ?3, token_sha256 = ?4
         WHERE id = ?1 AND removed_at IS NULL",
        params![id, now(), retired, token_digest(&retired)],
    )?;
    if changed == 0 {
        return Err(StoreError::Invalid(format!("no source with id {id}")));
    }
    Ok(())
}

pub fn add_secret_key(conn: &Connection, id: i64, secret: &str) -> Result<()> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(StoreError::Invalid("a secret key cannot be empty".into()));
    }
    conn.execute(
        "INSERT OR IGNORE INTO source_secret_keys (source_id, secret, added_at) VALUES (?1, ?2, ?3)",
        params![id, secret, now()],
    )?;
    Ok(())
}

pub fn remove_secret_key(conn: &Connection, id: i64, secret: &str) -> Result<bool> {
    let removed = conn.execute(
        "DELETE FROM source_secret_keys WHERE source_id = ?1 AND secret = ?2",
        params![id, secret.trim()],
    )?;
    Ok(removed > 0)
}

/// Why a request was refused before anything was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    UnknownPlatform,
    UnknownToken,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::UnknownPlatform => "unknown_platform",
            Rejection::UnknownToken => "unknown_token",
        }
    }
}

/// Counts refused requests by reason and platform.
pub fn count_rejections(conn: &Connection, counts: &[((Rejection, String), u64)]) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO rejections (reason, platform, count, last_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (reason, platform) DO UPDATE SET count = count + excluded.count,
            last_at = excluded.last_at",
    )?;
    let now = now();
    for ((reason, platform), count) in counts {
        stmt.execute(params![
            reason.as_str(),
            platform,
            i64::try_from(*count).unwrap_or(i64::MAX),
            now
        ])?;
    }
    Ok(())
}

/// Refused requests so far: (reason, platform, count).
pub fn rejections(conn: &Connection) -> Result<Vec<(String, String, i64)>> {
    let mut stmt =
        conn.prepare_cached("SELECT reason, platform, count FROM rejections ORDER BY 1, 2")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_writer, StoreOptions};

    fn revision_of(conn: &Connection, id: i64) -> i64 {
        conn.query_row("SELECT revision FROM sources WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    }

    #[test]
    fn the_revision_follows_what_authenticates_a_delivery_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("r.db"), &StoreOptions::default()).unwrap();
        let source = add(&conn, Platform::Gotowebinar, "goto", Tz::UTC, &[]).unwrap();
        let mut seen = revision_of(&conn, source.id);
        let mut changed = |what: &str, conn: &Connection| {
            let now = revision_of(conn, source.id);
            assert!(now > seen, "{what} raises the revision");
            seen = now;
        };
        add_secret_key(&conn, source.id, "k1").unwrap();
        changed("adding a key", &conn);
        remove_secret_key(&conn, source.id, "k1").unwrap();
        changed("removing a key", &conn);
        rotate(&conn, source.id).unwrap();
        changed("rotating the token", &conn);
        conn.execute("UPDATE sources SET time_zone = 'Europe/Paris'", [])
            .unwrap();
        changed("changing the zone", &conn);

        let before = revision_of(&conn, source.id);
        conn.execute("UPDATE sources SET label = 'renamed'", [])
            .unwrap();
        count_rejections(
            &conn,
            &[((Rejection::UnknownToken, "gotowebinar".into()), 3)],
        )
        .unwrap();
        add_secret_key(&conn, source.id, "k2").unwrap();
        add_secret_key(&conn, source.id, "k2").unwrap();
        assert_eq!(
            revision_of(&conn, source.id),
            before + 1,
            "only the new key counts"
        );
        assert_eq!(revision(&conn, source.id).unwrap(), Some(before + 1));

        remove(&conn, source.id).unwrap();
        assert_eq!(
            revision(&conn, source.id).unwrap(),
            None,
            "a removed source has none"
        );
    }
}
