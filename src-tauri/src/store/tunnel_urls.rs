//! The public URL each tunnel provider last had. Only the tunnel's URL memory writes here (on
//! the writer thread); nothing in the journal or the projection depends on it.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{format_time, Result};

/// Records `url` as `provider`'s current URL; answers the URL it had before when that differs
/// (the platforms must be re-pointed), `None` when it is the first or the same.
pub fn remember(
    conn: &Connection,
    provider: &str,
    url: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let now = format_time(&now);
    let before: Option<String> = conn
        .prepare_cached("SELECT url FROM tunnel_urls WHERE provider = ?1")?
        .query_row([provider], |row| row.get(0))
        .optional()?;
    match before {
        Some(before) if before == url => {
            conn.prepare_cached("UPDATE tunnel_urls SET seen_at = ?2 WHERE provider = ?1")?
                .execute(params![provider, now])?;
            Ok(None)
        }
        before => {
            conn.prepare_cached(
                "INSERT INTO tunnel_urls (provider, url, previous_url, changed_at, seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (provider) DO UPDATE SET url = ?2, previous_url = ?3,
                    changed_at = ?4, seen_at = ?4",
            )?
            .execute(params![provider, url, before, now])?;
            Ok(before)
        }
    }
}

/// The URL `provider` last had.
pub fn last(conn: &Connection, provider: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT url FROM tunnel_urls WHERE provider = ?1")?
        .query_row([provider], |row| row.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_writer, StoreOptions};

    #[test]
    fn a_new_url_is_announced_with_the_one_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("db"), &StoreOptions::default()).unwrap();
        let now = Utc::now();
        let first = "https://a.trycloudflare.com";
        let second = "https://b.trycloudflare.com";
        assert_eq!(remember(&conn, "cloudflared", first, now).unwrap(), None);
        assert_eq!(remember(&conn, "cloudflared", first, now).unwrap(), None);
        assert_eq!(
            remember(&conn, "cloudflared", second, now).unwrap(),
            Some(first.to_owned())
        );
        assert_eq!(remember(&conn, "ngrok", first, now).unwrap(), None);
        assert_eq!(last(&conn, "cloudflared").unwrap(), Some(second.to_owned()));
    }
}
