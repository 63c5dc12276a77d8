//! Reports: what organizers open Rollcall for. The webinar list, each webinar's attendance
//! report (per session where the platform has sessions), its timeline and chart series, people
//! across webinars and platforms, and CSV exports.
//!
//! Reports only read the store (read-only connections); they never write. Times are stored in
//! UTC and every report is given the organizer's [`Zone`], in which it writes its times.
//!
//! Counting rules, shared by every report:
//! - people are counted once per webinar (by normalized email, else the platform's id);
//! - hosts and guest speakers (where the platform says so) are listed apart and never counted
//!   as audience;
//! - a registration counts unless the platform says it was cancelled or denied;
//! - an unknown time in session stays unknown: never guessed, never counted as zero.

pub mod attendance;
pub mod export;
pub mod memo;
pub mod people;
pub mod timeline;
pub mod webinars;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("there is no webinar {0:?}")]
    UnknownWebinar(String),
    #[error("webinar {webinar:?} has no session {session:?}")]
    UnknownSession { webinar: String, session: String },
    #[error("there is no person {0:?}")]
    UnknownPerson(String),
    #[error("unknown time zone {0:?}: use an IANA name such as Europe/Paris")]
    BadTimeZone(String),
    #[error("{name}: {message}")]
    BadParameter { name: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ReportError {
    fn from(error: rusqlite::Error) -> Self {
        ReportError::Store(StoreError::Sqlite(error))
    }
}

impl From<serde_json::Error> for ReportError {
    fn from(error: serde_json::Error) -> Self {
        ReportError::Store(StoreError::Corrupt(error))
    }
}

pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// The organizer's time zone, in which reports write their times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(pub Tz);

impl Zone {
    /// The named IANA zone, or this machine's zone when none is named.
    pub fn parse(name: Option<&str>) -> Result<Zone> {
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => name
                .parse()
                .map(Zone)
                .map_err(|_| ReportError::BadTimeZone(name.to_owned())),
            None => Ok(Zone::machine()),
        }
    }

    /// This machine's zone (UTC when it cannot be told).
    pub fn machine() -> Zone {
        let name = iana_time_zone::get_timezone().ok();
        Zone(name.and_then(|n| n.parse().ok()).unwrap_or(Tz::UTC))
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// A stored UTC time written in this zone, RFC 3339 with its offset.
    pub fn local(&self, stored: Option<&str>) -> Option<String> {
        stored
            .and_then(crate::store::parse_time)
            .map(|t| self.format(&t))
    }

    pub fn format(&self, at: &DateTime<Utc>) -> String {
        at.with_timezone(&self.0)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }
}

/// Parses an instant given as a query parameter: RFC 3339, or a date (midnight in `zone`).
pub fn parse_instant(name: &'static str, raw: &str, zone: Zone) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        ReportError::BadParameter {
            name,
            message: format!("{raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
        }
    })?;
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    match midnight.and_local_timezone(zone.0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            Ok(t.with_timezone(&Utc))
        }
        chrono::LocalResult::None => Ok(midnight.and_utc()),
    }
}

/// Where a report's registrations and attendance come from: a whole webinar or one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub webinar: String,
    /// The platform's session id, when the report is for one session.
    pub session: Option<String>,
}

impl Scope {
    pub fn webinar(uid: &str) -> Scope {
        Scope {
            webinar: uid.to_owned(),
            session: None,
        }
    }

    /// The platform's slug, from the webinar's key (`platform:id`).
    pub fn platform(&self) -> &str {
        self.webinar.split(':').next().unwrap_or_default()
    }

    /// The session's key in the store.
    pub fn session_uid(&self) -> Option<String> {
        self.session
            .as_deref()
            .map(|s| crate::store::projection::session_uid(&self.webinar, s))
    }
}

/// Fails with [`ReportError::UnknownWebinar`] or [`ReportError::UnknownSession`] when the scope
/// names nothing the store knows.
pub fn check_scope(conn: &rusqlite::Connection, scope: &Scope) -> Result<()> {
    let exists =
        |sql: &str, key: &str| -> Result<bool> { Ok(conn.prepare_cached(sql)?.exists([key])?) };
    if !exists("SELECT 1 FROM webinars WHERE uid = ?1", &scope.webinar)? {
        return Err(ReportError::UnknownWebinar(scope.webinar.clone()));
    }
    if let Some(session_uid) = scope.session_uid() {
        if !exists("SELECT 1 FROM sessions WHERE uid = ?1", &session_uid)? {
            return Err(ReportError::UnknownSession {
                webinar: scope.webinar.clone(),
                session: scope.session.clone().unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// Reads a word naming one of an enum's variants, as serde names it (`no_shows`, `no-shows`).
pub fn parse_word<T: serde::de::DeserializeOwned>(word: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(word.to_owned())).ok()
}

/// A ratio rounded to four decimals; `None` when there is nothing to divide by.
pub fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_named_and_checked() {
        assert_eq!(
            Zone::parse(Some("Europe/Paris")).unwrap().name(),
            "Europe/Paris"
        );
        assert!(matches!(
            Zone::parse(Some("Mars/Base")),
            Err(ReportError::BadTimeZone(_))
        ));
        let paris = Zone::parse(Some("Europe/Paris")).unwrap();
        assert_eq!(
            paris.local(Some("2024-05-01T14:00:00.000Z")).unwrap(),
            "2024-05-01T16:00:00+02:00"
        );
    }

    #[test]
    fn instants_from_dates_are_local_midnight() {
        let ny = Zone::parse(Some("America/New_York")).unwrap();
        let t = parse_instant("from", "2024-05-01", ny).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-05-01T04:00:00+00:00");
        assert!(parse_instant("from", "May 1st", ny).is_err());
    }

    #[test]
    fn ratios_round_to_four_decimals() {
        assert_eq!(ratio(2, 3), Some(0.6667));
        assert_eq!(ratio(1, 0), None);
    }
}
