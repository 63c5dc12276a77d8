//! Understanding deliveries: one parser per platform, each a pure function from a delivery's
//! bytes to platform-neutral [`Fact`]s.
//!
//! Parsing happens in two stages: lenient serde structs mirror each payload (numbers that arrive
//! as strings, nulls, unknown fields), then plain code turns them into facts, applying each
//! platform's quirks (zone-less times, creator-zone times, keys beyond 2^53).
//!
//! Nothing here does I/O, touches SQLite or knows HTTP: the store calls [`parse`] and records
//! what it returns, and a delivery that fails today can be parsed again after a fix.

pub mod bigmarker;
pub mod gotowebinar;
pub mod livestorm;
pub mod tagmango;

mod body;
mod lenient;
mod time;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::facts::{Fact, Platform};

/// One received webhook, as the parsers see it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub platform: Platform,
    /// The event named by the URL (`/hooks/{platform}/{token}/{trigger}`), for platforms whose
    /// bodies do not name it.
    pub trigger: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub received_at: DateTime<Utc>,
    /// The source's zone, used for times the platform sends without one.
    pub source_zone: Tz,
}

/// What a delivery means.
#[derive(Debug, Clone, PartialEq)]
pub enum Understanding {
    Facts {
        facts: Vec<Fact>,
        /// When the platform says the event happened, if it says; orders conflicting facts.
        observed_at: Option<DateTime<Utc>>,
        /// Parts of the delivery that were skipped (say, one list entry with no email or id).
        warnings: Vec<String>,
    },
    /// A known event Rollcall does not use (reminders): kept in the journal, nothing projected.
    Ignored { reason: String },
}

impl Understanding {
    pub fn facts(facts: Vec<Fact>) -> Self {
        Understanding::Facts {
            facts,
            observed_at: None,
            warnings: Vec::new(),
        }
    }
}

/// Why a delivery could not be understood. The message is shown to the organizer next to the
/// quarantined delivery, so it says precisely what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is empty")]
    EmptyBody,
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    #[error("the body is JSON, but not in a shape Rollcall can read: {0}")]
    Unfit(String),
    #[error("the form-encoded body could not be decoded: {0}")]
    BadForm(String),
    #[error("expected a JSON object at the top level, found {0}")]
    NotAnObject(&'static str),
    #[error("not a {platform} payload Rollcall knows: {detail}")]
    UnknownShape {
        platform: &'static str,
        detail: String,
    },
    #[error("unknown {platform} trigger {trigger:?}; expected one of: {expected}")]
    UnknownTrigger {
        platform: &'static str,
        trigger: String,
        expected: &'static str,
    },
    #[error("missing field `{0}`")]
    MissingField(String),
    #[error("field `{field}` is not a time Rollcall can read: {value:?}")]
    BadTime { field: String, value: String },
    #[error("field `{field}`: {message}")]
    Invalid { field: String, message: String },
}

/// The most people one delivery may list. Generous: a 50,000-attendee BigMarker list is about
/// 20 MiB, and the body limit stops anything much larger first. A list beyond it is kept and
/// quarantined rather than projected in one enormous transaction.
pub const MAX_PEOPLE_PER_DELIVERY: usize = 500_000;

/// Refuses a list of people longer than [`MAX_PEOPLE_PER_DELIVERY`].
pub(crate) fn check_people_count(field: &str, count: usize) -> Result<(), ParseError> {
    if count > MAX_PEOPLE_PER_DELIVERY {
        return Err(ParseError::Invalid {
            field: field.to_owned(),
            message: format!(
                "{count} people in one delivery is more than the {MAX_PEOPLE_PER_DELIVERY} allowed"
            ),
        });
    }
    Ok(())
}

/// Understands one delivery.
pub fn parse(delivery: &Delivery<'_>) -> Result<Understanding, ParseError> {
    match delivery.platform {
        Platform::Bigmarker => bigmarker::parse(delivery),
        Platform::Tagmango => tagmango::parse(delivery),
        Platform::Livestorm => livestorm::parse(delivery),
        Platform::Gotowebinar => gotowebinar::parse(delivery),
    }
}

/// The platform's own id for this event, where the platform sends one (GoTo `eventKey`;
/// Livestorm `data.id` with the event name). The store falls back to a hash of the body.
pub fn event_id(delivery: &Delivery<'_>) -> Option<String> {
    match delivery.platform {
        Platform::Bigmarker | Platform::Tagmango => None,
        Platform::Livestorm => livestorm::event_id(delivery),
        Platform::Gotowebinar => gotowebinar::event_id(delivery),
    }
}

/// The triggers a platform's URL may name; empty where bodies name their own event.
pub fn triggers(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::Bigmarker => bigmarker::TRIGGERS,
        Platform::Tagmango => tagmango::TRIGGERS,
        Platform::Livestorm => livestorm::TRIGGERS,
        Platform::Gotowebinar => &[],
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A delivery with fixed receipt time and zone, for parser unit tests.
    pub fn delivery<'a>(
        platform: Platform,
        trigger: Option<&'a str>,
        body: &'a str,
    ) -> Delivery<'a> {
        Delivery {
            platform,
            trigger,
            content_type: Some("application/json"),
            body: body.as_bytes(),
            received_at: "2024-01-01T00:00:00Z".parse().unwrap(),
            source_zone: chrono_tz::America::New_York,
        }
    }
}
