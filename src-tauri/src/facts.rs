//! The platform-neutral vocabulary of what a webhook told us.
//!
//! Every parser in `platforms/` turns one delivery into a list of [`Fact`]s; the projection in
//! `store/` folds facts into webinars, sessions, people, registrations, attendance, replay views
//! and the timeline. Facts are plain data, serialized as JSON in the store so the projection can
//! be rebuilt without re-parsing.
//!
//! This module must not know any platform's field names: anything platform-shaped belongs in
//! `platforms/`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The four webinar platforms Rollcall receives webhooks from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS,
)]
#[ts(export)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Bigmarker,
    Tagmango,
    Livestorm,
    Gotowebinar,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Bigmarker,
        Platform::Tagmango,
        Platform::Livestorm,
        Platform::Gotowebinar,
    ];

    /// The slug used in URLs, the store and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Bigmarker => "bigmarker",
            Platform::Tagmango => "tagmango",
            Platform::Livestorm => "livestorm",
            Platform::Gotowebinar => "gotowebinar",
        }
    }

    /// The name an organizer knows the platform by.
    pub fn display_name(self) -> &'static str {
        match self {
            Platform::Bigmarker => "BigMarker",
            Platform::Tagmango => "TagMango",
            Platform::Livestorm => "Livestorm",
            Platform::Gotowebinar => "GoTo Webinar",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown platform {0:?}: expected one of bigmarker, tagmango, livestorm, gotowebinar")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "bigmarker" => Ok(Platform::Bigmarker),
            "tagmango" => Ok(Platform::Tagmango),
            "livestorm" => Ok(Platform::Livestorm),
            "gotowebinar" | "goto" => Ok(Platform::Gotowebinar),
            _ => Err(UnknownPlatform(s.to_owned())),
        }
    }
}

/// A webinar as the platform identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WebinarRef {
    pub platform: Platform,
    /// The platform's own id, always as a string (GoTo keys exceed 2^53).
    pub id: String,
}

impl WebinarRef {
    pub fn new(platform: Platform, id: impl Into<String>) -> Self {
        Self {
            platform,
            id: id.into(),
        }
    }

    /// The store's key for this webinar: `platform:id`.
    pub fn uid(&self) -> String {
        format!("{}:{}", self.platform, self.id)
    }
}

/// How much to trust a [`Moment`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum TimeBasis {
    /// The payload gave an unambiguous instant.
    #[default]
    Exact,
    /// The payload gave a wall-clock time with no zone; it was read in this IANA zone (the
    /// source's configured zone).
    AssumedZone { zone: String },
    /// The payload gave no time at all; this is when Rollcall received the delivery.
    ReceivedAt,
}

impl TimeBasis {
    pub fn is_exact(&self) -> bool {
        matches!(self, TimeBasis::Exact)
    }
}

/// An instant, with a note on where it came from when it is not exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredMoment")]
pub struct Moment {
    pub at: DateTime<Utc>,
    #[serde(default, flatten, skip_serializing_if = "TimeBasis::is_exact")]
    pub basis: TimeBasis,
}

/// How a [`Moment`] reads back: serde cannot default a flattened, internally tagged enum, so
/// an exact moment (written without a basis) is read through this shape.
#[derive(Deserialize)]
struct StoredMoment {
    at: DateTime<Utc>,
    #[serde(default)]
    basis: Option<String>,
    #[serde(default)]
    zone: Option<String>,
}

impl From<StoredMoment> for Moment {
    fn from(stored: StoredMoment) -> Self {
        let basis = match (stored.basis.as_deref(), stored.zone) {
            (Some("assumed_zone"), Some(zone)) => TimeBasis::AssumedZone { zone },
            (Some("received_at"), _) => TimeBasis::ReceivedAt,
            _ => TimeBasis::Exact,
        };
        Moment {
            at: stored.at,
            basis,
        }
    }
}

impl Moment {
    pub fn exact(at: DateTime<Utc>) -> Self {
        Self {
            at,
            basis: TimeBasis::Exact,
        }
    }

    pub fn assumed(at: DateTime<Utc>, zone: impl Into<String>) -> Self {
        Self {
            at,
            basis: TimeBasis::AssumedZone { zone: zone.into() },
        }
    }

    pub fn received(at: DateTime<Utc>) -> Self {
        Self {
            at,
            basis: TimeBasis::ReceivedAt,
        }
    }
}

/// A normalized email: trimmed and lowercased, the identity of a person across platforms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Normalizes `raw`; `None` when nothing that could be an address is left.
    pub fn parse(raw: &str) -> Option<Email> {
        let normalized = raw.trim().to_lowercase();
        let (local, domain) = normalized.split_once('@')?;
        if local.is_empty() || domain.is_empty() || normalized.chars().any(char::is_whitespace) {
            return None;
        }
        Some(Email(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a person is at a webinar, where the platform says so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[default]
    Audience,
    /// The organizer's team (Livestorm `team_member`, BigMarker owner).
    Host,
    GuestSpeaker,
}

impl Role {
    pub fn is_audience(&self) -> bool {
        matches!(self, Role::Audience)
    }
}

/// A person as one delivery describes them. Fields the payload did not carry are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// The platform's id for this person (BigMarker bmid, GoTo registrantKey, Livestorm id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// A full name, when the platform sends one field rather than first and last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl Person {
    /// The store's key for this person: the normalized email where there is one, otherwise the
    /// platform's own id (`platform:id`). `None` when the delivery gave neither.
    pub fn uid(&self, platform: Platform) -> Option<String> {
        match (&self.email, &self.platform_id) {
            (Some(email), _) => Some(email.as_str().to_owned()),
            (None, Some(id)) => Some(format!("{platform}:{id}")),
            (None, None) => None,
        }
    }
}

/// Where a registrant came from (BigMarker source, referral, tracking code; UTM parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
}

/// A registration's state as the platform reports it (GoTo sends any letter case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    Approved,
    Waiting,
    Cancelled,
    Denied,
}

/// A scheduled occurrence listed inside a webinar's details (GoTo `times`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledTime {
    pub start: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
}

/// What a delivery says about a webinar itself. Only stable properties belong here (no running
/// counts), so that the many deliveries that repeat them agree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebinarDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where attendees join or watch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_url: Option<String>,
    /// The webinar's own zone as the platform names it (IANA name or UTC offset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_start: Option<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_end: Option<Moment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<ScheduledTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_email: Option<Email>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presenters: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// Live, simulive, broadcast, on-demand, 1-1 consultation ... in the platform's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// single_session, series, sequence, recurring ... in the platform's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<String>,
    /// The platform's own status word (draft, published, NEW ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_status: Option<String>,
    /// Anything else worth showing (tags, channel, template), as the platform named it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

/// What a delivery says about one session (occurrence) of a webinar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_start: Option<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_end: Option<Moment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_status: Option<String>,
}

/// Engagement counters some platforms report per attendee (Livestorm).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engagement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub votes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_votes: Option<u64>,
}

/// One thing a delivery told us. `session` is the platform's session id where the platform has
/// sessions (Livestorm sessions, GoTo session keys, TagMango callList entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    /// The webinar exists, with these properties (created, or seen in passing).
    WebinarSeen {
        webinar: WebinarRef,
        details: WebinarDetails,
    },
    /// The platform reported a change to the webinar (update, reschedule).
    WebinarChanged {
        webinar: WebinarRef,
        at: Moment,
        details: WebinarDetails,
    },
    WebinarPublished {
        webinar: WebinarRef,
        at: Moment,
    },
    WebinarDeleted {
        webinar: WebinarRef,
        at: Moment,
    },
    SessionSeen {
        webinar: WebinarRef,
        session: String,
        details: SessionDetails,
    },
    Registered {
        webinar: WebinarRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        person: Person,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        registered_at: Option<Moment>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<RegistrationStatus>,
        #[serde(default, skip_serializing_if = "Role::is_audience")]
        role: Role,
        #[serde(default)]
        origin: Origin,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        custom_fields: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        join_url: Option<String>,
    },
    /// One entry into the live room.
    Joined {
        webinar: WebinarRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        person: Person,
        at: Moment,
    },
    /// The platform's account of one person's attendance (after the fact, or a live snapshot).
    /// Unknown values stay `None`: never guess a duration.
    AttendanceSummary {
        webinar: WebinarRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        person: Person,
        attended: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        joined_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        left_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_secs: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engaged_secs: Option<u64>,
        /// Percent of the session attended, as the platform computed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attendance_rate: Option<f64>,
        #[serde(default, skip_serializing_if = "Role::is_audience")]
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engagement: Option<Engagement>,
    },
    WaitingRoomOpened {
        webinar: WebinarRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        at: Moment,
    },
    Started {
        webinar: WebinarRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        at: Moment,
    },
    Ended {
        webinar: WebinarRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        at: Moment,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_secs: Option<u64>,
    },
    /// Someone watched the recording (on demand, replay).
    ReplayViewed {
        webinar: WebinarRef,
        person: Person,
        at: Moment,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        watched_secs: Option<u64>,
    },
}

impl Fact {
    pub fn webinar(&self) -> &WebinarRef {
        match self {
            Fact::WebinarSeen { webinar, .. }
            | Fact::WebinarChanged { webinar, .. }
            | Fact::WebinarPublished { webinar, .. }
            | Fact::WebinarDeleted { webinar, .. }
            | Fact::SessionSeen { webinar, .. }
            | Fact::Registered { webinar, .. }
            | Fact::Joined { webinar, .. }
            | Fact::AttendanceSummary { webinar, .. }
            | Fact::WaitingRoomOpened { webinar, .. }
            | Fact::Started { webinar, .. }
            | Fact::Ended { webinar, .. }
            | Fact::ReplayViewed { webinar, .. } => webinar,
        }
    }

    pub fn session(&self) -> Option<&str> {
        match self {
            Fact::SessionSeen { session, .. } => Some(session),
            Fact::Registered { session, .. }
            | Fact::Joined { session, .. }
            | Fact::AttendanceSummary { session, .. }
            | Fact::WaitingRoomOpened { session, .. }
            | Fact::Started { session, .. }
            | Fact::Ended { session, .. } => session.as_deref(),
            _ => None,
        }
    }

    pub fn person(&self) -> Option<&Person> {
        match self {
            Fact::Registered { person, .. }
            | Fact::Joined { person, .. }
            | Fact::AttendanceSummary { person, .. }
            | Fact::ReplayViewed { person, .. } => Some(person),
            _ => None,
        }
    }

    /// The instant this fact places on the webinar's timeline, if it has one.
    pub fn moment(&self) -> Option<&Moment> {
        match self {
            Fact::WebinarChanged { at, .. }
            | Fact::WebinarPublished { at, .. }
            | Fact::WebinarDeleted { at, .. }
            | Fact::Joined { at, .. }
            | Fact::WaitingRoomOpened { at, .. }
            | Fact::Started { at, .. }
            | Fact::Ended { at, .. }
            | Fact::ReplayViewed { at, .. } => Some(at),
            Fact::Registered { registered_at, .. } => registered_at.as_ref(),
            // Creation is placed by `WebinarDetails::created_at`, a summary by its own fields.
            Fact::WebinarSeen { .. }
            | Fact::SessionSeen { .. }
            | Fact::AttendanceSummary { .. } => None,
        }
    }

    /// A short stable name for the kind of fact (`registered`, `joined` ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Fact::WebinarSeen { .. } => "webinar_seen",
            Fact::WebinarChanged { .. } => "webinar_changed",
            Fact::WebinarPublished { .. } => "webinar_published",
            Fact::WebinarDeleted { .. } => "webinar_deleted",
            Fact::SessionSeen { .. } => "session_seen",
            Fact::Registered { .. } => "registered",
            Fact::Joined { .. } => "joined",
            Fact::AttendanceSummary { .. } => "attendance_summary",
            Fact::WaitingRoomOpened { .. } => "waiting_room_opened",
            Fact::Started { .. } => "started",
            Fact::Ended { .. } => "ended",
            Fact::ReplayViewed { .. } => "replay_viewed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  John.Doe@Example.COM ").unwrap().as_str(),
            "john.doe@example.com"
        );
        assert!(Email::parse("not an email").is_none());
        assert!(Email::parse("@example.com").is_none());
        assert!(Email::parse("").is_none());
    }

    #[test]
    fn platforms_round_trip_through_their_slugs() {
        for platform in Platform::ALL {
            assert_eq!(platform.as_str().parse::<Platform>().unwrap(), platform);
        }
        assert!("zoom".parse::<Platform>().is_err());
    }

    #[test]
    fn moments_read_back_as_written() {
        let at: DateTime<Utc> = "2024-03-15T10:00:00Z".parse().unwrap();
        for moment in [
            Moment::exact(at),
            Moment::received(at),
            Moment::assumed(at, "Asia/Kolkata"),
        ] {
            let text = serde_json::to_string(&moment).unwrap();
            assert_eq!(
                serde_json::from_str::<Moment>(&text).unwrap(),
                moment,
                "{text}"
            );
        }
    }

    #[test]
    fn person_identity_prefers_email() {
        let mut person = Person {
            platform_id: Some("42".into()),
            ..Person::default()
        };
        assert_eq!(person.uid(Platform::Gotowebinar).unwrap(), "gotowebinar:42");
        person.email = Email::parse("A@B.co");
        assert_eq!(person.uid(Platform::Gotowebinar).unwrap(), "a@b.co");
    }
}
