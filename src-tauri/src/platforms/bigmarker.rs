//! BigMarker: the per-webinar outgoing webhooks (registration, webinar start, waiting room open,
//! webinar end, live attendee data, attendee enters, on-demand viewer), the channel-level "New
//! webinar Create" hook, and the incoming-webhook registration shape (a flat, usually
//! form-encoded body with `conference_id` and `email`).
//!
//! BigMarker names no event and signs nothing: the single top-level key says what happened. The
//! URL trigger is optional and only decides which of the two hooks an `attendees` list came
//! from. Start, waiting-room and end times are wall-clock `yyyy-mm-dd hh:mm` with no zone, read
//! in the source's zone and marked as assumed.
//!
//! This module must not do I/O, must not panic on any body, and must not put running counts
//! (`webinar_registrants`) into webinar details.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::lenient::{Count, Text};
use super::{body, time, Delivery, ParseError, Understanding};
use crate::facts::{
    Email, Fact, Moment, Origin, Person, Platform, Role, TimeBasis, WebinarDetails, WebinarRef,
};

pub const TRIGGERS: &[&str] = &[
    "registration",
    "webinar-start",
    "waiting-room-open",
    "webinar-end",
    "attendee-data",
    "attendee-enters",
    "on-demand-viewer",
    "new-webinar",
];

/// `TRIGGERS` joined, for `ParseError::UnknownTrigger` (a test keeps the two in step).
const EXPECTED_TRIGGERS: &str = "registration, webinar-start, waiting-room-open, webinar-end, \
                                 attendee-data, attendee-enters, on-demand-viewer, new-webinar";

const PLATFORM: Platform = Platform::Bigmarker;

const RECEIVED_INSTEAD: &str = "the time it was received is used instead";
const UNKNOWN_INSTEAD: &str = "left unknown";

const CUSTOM_FIELD_PREFIX: &str = "custom_field_";

/// Past this many skipped list entries, the rest are counted rather than listed: a 50,000-entry
/// list of junk should not produce megabytes of warnings.
const MAX_WARNINGS: usize = 50;

/// The top-level keys BigMarker uses to name its events, in the order they are looked for.
const EVENT_KEYS: [(&str, Event); 7] = [
    ("registration", Event::Registration),
    ("webinar_start_time", Event::Room(Room::Start)),
    ("waiting_room_open", Event::Room(Room::WaitingOpen)),
    ("webinar_end_time", Event::Room(Room::End)),
    ("attendees", Event::Attendees),
    ("on_demand_viewer", Event::OnDemandViewer),
    ("webinar", Event::NewWebinar),
];

#[derive(Debug, Clone, Copy)]
enum Event {
    Registration,
    Room(Room),
    Attendees,
    OnDemandViewer,
    NewWebinar,
}

/// The three hooks that only say when something happened to the live room.
#[derive(Debug, Clone, Copy)]
enum Room {
    Start,
    WaitingOpen,
    End,
}

/// Which hook an `attendees` list came from, when the URL says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttendeeHook {
    LiveData,
    Enters,
}

// ---- Stage 1: payload shapes -------------------------------------------------------------

/// `registration` (outgoing), or the flat incoming-webhook body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Registration {
    bmid: Text,
    first_name: Text,
    last_name: Text,
    email: Text,
    conference_id: Text,
    enter_url: Text,
    source: Text,
    referral_domain: Text,
    tracking_code: Text,
    time_stamp: Text,
    /// Everything else, where the `custom_field_*` keys are.
    #[serde(flatten)]
    rest: BTreeMap<String, Text>,
}

/// `webinar_start_time`, `waiting_room_open` and `webinar_end_time`: one shape, three time keys.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RoomEvent {
    conference_id: Text,
    conference_url: Text,
    start_time: Text,
    open_time: Text,
    end_time: Text,
}

/// One entry of `attendees`, from either the live-data hook or the attendee-enters hook. The
/// timing fields are `Option` so that their presence can tell the hooks apart.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Attendee {
    bmid: Text,
    first_name: Text,
    last_name: Text,
    email: Text,
    conference_id: Text,
    conference_url: Text,
    webinar_title: Text,
    enter_time: Option<Text>,
    last_leave_time: Option<Text>,
    total_duration: Option<Count>,
    /// Documented with a space in the key.
    #[serde(rename = "engaged duration")]
    engaged_duration_spaced: Count,
    engaged_duration: Count,
}

/// `on_demand_viewer`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OnDemandViewer {
    bmid: Text,
    first_name: Text,
    last_name: Text,
    email: Text,
    conference_id: Text,
    conference_url: Text,
    webinar_title: Text,
    watched_on: Text,
    recording_duration: Count,
}

/// `webinar`, the channel-level "New webinar Create" hook.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NewWebinar {
    webinar_id: Text,
    webinar_title: Text,
    webinar_event_type: Text,
    webinar_description: Text,
    webinar_privacy: Text,
    webinar_owner_name: Text,
    webinar_owner_email: Text,
    webinar_presenter_name: Text,
    webinar_presenter_email: Text,
    webinar_template_id: Text,
    webinar_template_name: Text,
    webinar_start_time: Text,
    webinar_end_time: Text,
    webinar_url: Text,
    webinar_capacity: Count,
    channel_id: Text,
    channel_name: Text,
    /// Everything else, where the numbered `webinar_tagN` / `webinar_tagN_value` keys are.
    #[serde(flatten)]
    rest: BTreeMap<String, Text>,
}

// ---- Entry points ----------------------------------------------------------------------

/// A top-level value of the body, kept as its JSON text until its event reads it. Read as a
/// `serde_json::Value` first, a 13 MiB list of 50,000 attendees became a tree of maps several
/// times its size before any attendee was read.
type Raw = Box<RawValue>;

pub fn parse(delivery: &Delivery<'_>) -> Result<Understanding, ParseError> {
    let hook = attendee_hook(delivery.trigger)?;
    let mut top: BTreeMap<String, Raw> = body::decode(delivery)?;
    let found = EVENT_KEYS
        .iter()
        .find_map(|&(key, event)| top.remove(key).map(|v| (key, event, v)));
    match found {
        Some((key, Event::Registration, value)) => registration(read(&value, key)?, key, delivery),
        Some((key, Event::Room(room), value)) => {
            room_event(room, key, read(&value, key)?, delivery)
        }
        Some((_, Event::Attendees, value)) => attendees(value, hook, delivery),
        Some((key, Event::OnDemandViewer, value)) => on_demand(read(&value, key)?, delivery),
        Some((key, Event::NewWebinar, value)) => new_webinar(read(&value, key)?, delivery),
        None if top.contains_key("conference_id") && top.contains_key("email") => {
            registration(read_whole(&top)?, "", delivery)
        }
        None => Err(unknown_shape(&top)),
    }
}

/// BigMarker sends no event id; the store hashes the body.
pub fn event_id(_delivery: &Delivery<'_>) -> Option<String> {
    None
}

fn attendee_hook(trigger: Option<&str>) -> Result<Option<AttendeeHook>, ParseError> {
    let Some(trigger) = trigger.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match TRIGGERS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(trigger))
    {
        None => Err(ParseError::UnknownTrigger {
            platform: PLATFORM.display_name(),
            trigger: trigger.to_owned(),
            expected: EXPECTED_TRIGGERS,
        }),
        Some(&"attendee-data") => Ok(Some(AttendeeHook::LiveData)),
        Some(&"attendee-enters") => Ok(Some(AttendeeHook::Enters)),
        Some(_) => Ok(None),
    }
}

fn unknown_shape(top: &BTreeMap<String, Raw>) -> ParseError {
    let found = body::describe_keys(top.keys());
    ParseError::UnknownShape {
        platform: PLATFORM.display_name(),
        detail: format!(
            "expected one of the keys registration, webinar_start_time, waiting_room_open, \
             webinar_end_time, attendees, on_demand_viewer, webinar, or a flat registration with \
             conference_id and email; found {found}"
        ),
    }
}

// ---- Stage 2: facts --------------------------------------------------------------------

fn registration(
    reg: Registration,
    wrapper: &str,
    delivery: &Delivery<'_>,
) -> Result<Understanding, ParseError> {
    let webinar = required(reg.conference_id, &path(wrapper, "conference_id"))?;
    let person = identify(reg.bmid, reg.first_name, reg.last_name, reg.email)
        .map_err(|missing| missing.into_error(&path(wrapper, "email")))?;
    let mut warnings = Warnings::default();
    let registered_at = match reg.time_stamp.as_deref() {
        None => Moment::received(delivery.received_at),
        Some(raw) => time::moment_in(raw, delivery.source_zone).unwrap_or_else(|| {
            warnings.push(unreadable_time(
                &path(wrapper, "time_stamp"),
                raw,
                RECEIVED_INSTEAD,
            ));
            Moment::received(delivery.received_at)
        }),
    };
    let (custom_fields, origin) = custom_fields_and_origin(
        reg.rest,
        Origin {
            source: reg.source.into_option(),
            referrer: reg.referral_domain.into_option(),
            tracking_code: reg.tracking_code.into_option(),
            ..Origin::default()
        },
    );
    let observed_at = timeline_instant(&registered_at);
    let fact = Fact::Registered {
        webinar: webinar_ref(webinar),
        session: None,
        person,
        registered_at: Some(registered_at),
        status: None,
        role: Role::Audience,
        origin,
        custom_fields,
        join_url: reg.enter_url.into_option(),
    };
    Ok(Understanding::Facts {
        facts: vec![fact],
        observed_at,
        warnings: warnings.finish(),
    })
}

/// Custom registration fields without their prefix; UTM parameters among them (any letter
/// case) also fill the origin, and `utm_bmcr_source` (what BigMarker reports as the tracking
/// code) fills the tracking code when the payload has none of its own.
fn custom_fields_and_origin(
    rest: BTreeMap<String, Text>,
    mut origin: Origin,
) -> (BTreeMap<String, String>, Origin) {
    let mut fields = BTreeMap::new();
    for (key, value) in rest {
        let (Some(name), Some(value)) =
            (key.strip_prefix(CUSTOM_FIELD_PREFIX), value.into_option())
        else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let slot = match name.to_ascii_lowercase().as_str() {
            "utm_source" => Some(&mut origin.utm_source),
            "utm_medium" => Some(&mut origin.utm_medium),
            "utm_campaign" => Some(&mut origin.utm_campaign),
            "utm_term" => Some(&mut origin.utm_term),
            "utm_content" => Some(&mut origin.utm_content),
            "utm_bmcr_source" => Some(&mut origin.tracking_code),
            _ => None,
        };
        if let Some(slot) = slot {
            slot.get_or_insert_with(|| value.clone());
        }
        fields.insert(name.to_owned(), value);
    }
    (fields, origin)
}

fn room_event(
    room: Room,
    wrapper: &str,
    event: RoomEvent,
    delivery: &Delivery<'_>,
) -> Result<Understanding, ParseError> {
    let webinar = webinar_ref(required(
        event.conference_id,
        &path(wrapper, "conference_id"),
    )?);
    let (time_key, raw) = match room {
        Room::Start => ("start_time", event.start_time),
        Room::WaitingOpen => ("open_time", event.open_time),
        Room::End => ("end_time", event.end_time),
    };
    let at = required_time(raw, &path(wrapper, time_key), delivery.source_zone)?;
    let observed_at = Some(at.at);
    let seen = Fact::WebinarSeen {
        webinar: webinar.clone(),
        details: WebinarDetails {
            url: event.conference_url.into_option(),
            ..Default::default()
        },
    };
    let happened = match room {
        Room::Start => Fact::Started {
            webinar,
            session: None,
            at,
        },
        Room::WaitingOpen => Fact::WaitingRoomOpened {
            webinar,
            session: None,
            at,
        },
        Room::End => Fact::Ended {
            webinar,
            session: None,
            at,
            duration_secs: None,
        },
    };
    Ok(Understanding::Facts {
        facts: vec![seen, happened],
        observed_at,
        warnings: Vec::new(),
    })
}

fn attendees(
    value: Raw,
    hook: Option<AttendeeHook>,
    delivery: &Delivery<'_>,
) -> Result<Understanding, ParseError> {
    let entries: Vec<Raw> = match value.get().as_bytes().first() {
        Some(b'[') => {
            // The body parsed as JSON, so its array reads as a list of values.
            serde_json::from_str(value.get()).map_err(|e| ParseError::Invalid {
                field: "attendees".into(),
                message: without_position(&e),
            })?
        }
        Some(b'n') => Vec::new(),
        Some(b'{') => vec![value],
        _ => {
            return Err(ParseError::Invalid {
                field: "attendees".into(),
                message: format!("expected a list of attendees, found {}", json_kind(&value)),
            })
        }
    };
    super::check_people_count("attendees", entries.len())?;
    let mut webinars = Webinars::default();
    let mut warnings = Warnings::default();
    let mut people = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        match attendee_fact(index, entry, hook, delivery, &mut webinars, &mut warnings) {
            Ok(fact) => people.push(fact),
            Err(reason) => warnings.push(format!("attendees[{index}] skipped: {reason}")),
        }
    }
    let mut facts = webinars.into_facts();
    facts.append(&mut people);
    Ok(Understanding::Facts {
        facts,
        observed_at: None,
        warnings: warnings.finish(),
    })
}

/// One attendee's fact, or why the entry was skipped.
fn attendee_fact(
    index: usize,
    entry: &RawValue,
    hook: Option<AttendeeHook>,
    delivery: &Delivery<'_>,
    webinars: &mut Webinars,
    warnings: &mut Warnings,
) -> Result<Fact, String> {
    let a: Attendee = serde_json::from_str(entry.get()).map_err(|e| without_position(&e))?;
    let webinar = a.conference_id.into_option().ok_or("no conference_id")?;
    let person =
        identify(a.bmid, a.first_name, a.last_name, a.email).map_err(|missing| missing.reason())?;
    webinars.see(
        &webinar,
        a.webinar_title.into_option(),
        a.conference_url.into_option(),
    );
    let has_times =
        a.enter_time.is_some() || a.last_leave_time.is_some() || a.total_duration.is_some();
    let summary = match hook {
        Some(hook) => hook == AttendeeHook::LiveData,
        None => has_times,
    };
    let webinar = webinar_ref(webinar);
    if !summary {
        let at = Moment::received(delivery.received_at);
        return Ok(Fact::Joined {
            webinar,
            session: None,
            person,
            at,
        });
    }
    let mut time_of = |key: &str, raw: Option<Text>| {
        let raw = raw?.into_option()?;
        let at = time::moment_in(&raw, delivery.source_zone).map(|m| m.at);
        if at.is_none() {
            warnings.push(unreadable_time(
                &format!("attendees[{index}].{key}"),
                &raw,
                UNKNOWN_INSTEAD,
            ));
        }
        at
    };
    Ok(Fact::AttendanceSummary {
        webinar,
        session: None,
        person,
        attended: true,
        joined_at: time_of("enter_time", a.enter_time),
        left_at: time_of("last_leave_time", a.last_leave_time),
        duration_secs: a.total_duration.and_then(|c| c.0),
        engaged_secs: a.engaged_duration_spaced.0.or(a.engaged_duration.0),
        attendance_rate: None,
        role: Role::Audience,
        engagement: None,
    })
}

fn on_demand(viewer: OnDemandViewer, delivery: &Delivery<'_>) -> Result<Understanding, ParseError> {
    let webinar = webinar_ref(required(
        viewer.conference_id,
        "on_demand_viewer.conference_id",
    )?);
    let person = identify(
        viewer.bmid,
        viewer.first_name,
        viewer.last_name,
        viewer.email,
    )
    .map_err(|missing| missing.into_error("on_demand_viewer.email"))?;
    let mut warnings = Warnings::default();
    let at = match viewer.watched_on.as_deref() {
        None => Moment::received(delivery.received_at),
        Some(raw) => time::moment_in(raw, delivery.source_zone).unwrap_or_else(|| {
            warnings.push(unreadable_time(
                "on_demand_viewer.watched_on",
                raw,
                RECEIVED_INSTEAD,
            ));
            Moment::received(delivery.received_at)
        }),
    };
    let observed_at = timeline_instant(&at);
    let details = WebinarDetails {
        title: viewer.webinar_title.into_option(),
        url: viewer.conference_url.into_option(),
        ..Default::default()
    };
    let facts = vec![
        Fact::WebinarSeen {
            webinar: webinar.clone(),
            details,
        },
        Fact::ReplayViewed {
            webinar,
            person,
            at,
            watched_secs: viewer.recording_duration.0,
        },
    ];
    Ok(Understanding::Facts {
        facts,
        observed_at,
        warnings: warnings.finish(),
    })
}

fn new_webinar(w: NewWebinar, delivery: &Delivery<'_>) -> Result<Understanding, ParseError> {
    let webinar = webinar_ref(required(w.webinar_id, "webinar.webinar_id")?);
    let mut warnings = Warnings::default();
    let zone = delivery.source_zone;
    let mut scheduled = |key: &str, raw: Text| {
        let raw = raw.into_option()?;
        let at = time::moment_in(&raw, zone);
        if at.is_none() {
            warnings.push(unreadable_time(
                &format!("webinar.{key}"),
                &raw,
                UNKNOWN_INSTEAD,
            ));
        }
        at
    };
    let scheduled_start = scheduled("webinar_start_time", w.webinar_start_time);
    let scheduled_end = scheduled("webinar_end_time", w.webinar_end_time);
    let owner_email = w.webinar_owner_email.into_option().and_then(|raw| {
        let email = Email::parse(&raw);
        if email.is_none() {
            warnings.push(format!(
                "webinar.webinar_owner_email is not an email address: {raw:?}"
            ));
        }
        email
    });
    let mut extra = tags(w.rest);
    for (key, value) in [
        ("webinar_privacy", w.webinar_privacy),
        ("webinar_presenter_email", w.webinar_presenter_email),
        ("webinar_template_id", w.webinar_template_id),
        ("webinar_template_name", w.webinar_template_name),
        ("channel_id", w.channel_id),
        ("channel_name", w.channel_name),
    ] {
        if let Some(value) = value.into_option() {
            extra.insert(key.to_owned(), value);
        }
    }
    let details = WebinarDetails {
        title: w.webinar_title.into_option(),
        description: w.webinar_description.into_option(),
        url: w.webinar_url.into_option(),
        scheduled_start,
        scheduled_end,
        owner_name: w.webinar_owner_name.into_option(),
        owner_email,
        presenters: split_names(w.webinar_presenter_name.as_deref()),
        capacity: w.webinar_capacity.0,
        kind: w.webinar_event_type.into_option(),
        extra,
        ..Default::default()
    };
    let facts = vec![Fact::WebinarSeen { webinar, details }];
    Ok(Understanding::Facts {
        facts,
        observed_at: None,
        warnings: warnings.finish(),
    })
}

/// The numbered tag keys, under the platform's own names (`webinar_tag1`, `webinar_tag1_value`).
fn tags(rest: BTreeMap<String, Text>) -> BTreeMap<String, String> {
    rest.into_iter()
        .filter(|(key, _)| is_tag_key(key))
        .filter_map(|(key, value)| Some((key, value.into_option()?)))
        .collect()
}

fn is_tag_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("webinar_tag") else {
        return false;
    };
    let number = rest.strip_suffix("_value").unwrap_or(rest);
    !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())
}

fn split_names(raw: Option<&str>) -> Vec<String> {
    raw.map(|names| {
        names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

// ---- Shared pieces ---------------------------------------------------------------------

/// Why a person could not be identified.
enum NoIdentity {
    Missing,
    BadEmail(String),
}

impl NoIdentity {
    fn reason(&self) -> String {
        match self {
            NoIdentity::Missing => "neither an email nor a bmid".to_owned(),
            NoIdentity::BadEmail(raw) => {
                format!("no bmid, and the email {raw:?} is not an address")
            }
        }
    }

    fn into_error(self, email_field: &str) -> ParseError {
        match self {
            NoIdentity::Missing => ParseError::MissingField(email_field.to_owned()),
            NoIdentity::BadEmail(raw) => ParseError::Invalid {
                field: email_field.to_owned(),
                message: format!("not an email address: {raw:?}, and there is no bmid"),
            },
        }
    }
}

/// A person, who must have an email or a bmid to be anyone.
fn identify(bmid: Text, first: Text, last: Text, email: Text) -> Result<Person, NoIdentity> {
    let raw_email = email.into_option();
    let email = raw_email.as_deref().and_then(Email::parse);
    let platform_id = bmid.into_option();
    if email.is_none() && platform_id.is_none() {
        return Err(raw_email.map_or(NoIdentity::Missing, NoIdentity::BadEmail));
    }
    Ok(Person {
        email,
        platform_id,
        first_name: first.into_option(),
        last_name: last.into_option(),
        ..Person::default()
    })
}

/// The distinct webinars of a list, in order of first appearance; details merge across entries.
#[derive(Default)]
struct Webinars {
    seen: Vec<(String, WebinarDetails)>,
    index: HashMap<String, usize>,
}

impl Webinars {
    fn see(&mut self, id: &str, title: Option<String>, url: Option<String>) {
        let position = match self.index.get(id) {
            Some(&position) => position,
            None => {
                let position = self.seen.len();
                self.index.insert(id.to_owned(), position);
                self.seen.push((id.to_owned(), WebinarDetails::default()));
                position
            }
        };
        if let Some((_, details)) = self.seen.get_mut(position) {
            details.title = details.title.take().or(title);
            details.url = details.url.take().or(url);
        }
    }

    fn into_facts(self) -> Vec<Fact> {
        self.seen
            .into_iter()
            .map(|(id, details)| Fact::WebinarSeen {
                webinar: webinar_ref(id),
                details,
            })
            .collect()
    }
}

/// Warnings, listed up to [`MAX_WARNINGS`] and counted beyond.
#[derive(Default)]
struct Warnings {
    listed: Vec<String>,
    more: usize,
}

impl Warnings {
    fn push(&mut self, warning: String) {
        if self.listed.len() < MAX_WARNINGS {
            self.listed.push(warning);
        } else {
            self.more = self.more.saturating_add(1);
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!(
                "{} more warnings like these were not listed",
                self.more
            ));
        }
        self.listed
    }
}

/// Deserializes one event object, naming the key when it is not an object at all.
fn read<T: DeserializeOwned>(value: &RawValue, key: &str) -> Result<T, ParseError> {
    serde_json::from_str(value.get()).map_err(|e| ParseError::Invalid {
        field: key.to_owned(),
        message: format!(
            "expected an object, found {} ({})",
            json_kind(value),
            without_position(&e)
        ),
    })
}

/// Deserializes the whole body as one event object (the flat incoming registration).
fn read_whole<T: DeserializeOwned>(top: &BTreeMap<String, Raw>) -> Result<T, ParseError> {
    let whole = serde_json::value::to_raw_value(top).map_err(|e| ParseError::Invalid {
        field: "body".into(),
        message: without_position(&e),
    })?;
    read(&whole, "body")
}

/// A serde_json error without " at line 1 column 734": a position within one value of the body
/// would mislead, and the error names its field.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(bare) if error.line() > 0 => bare.to_owned(),
        _ => message,
    }
}

fn json_kind(value: &RawValue) -> &'static str {
    body::json_kind(value.get().as_bytes())
}

fn path(wrapper: &str, field: &str) -> String {
    if wrapper.is_empty() {
        field.to_owned()
    } else {
        format!("{wrapper}.{field}")
    }
}

fn required(value: Text, field: &str) -> Result<String, ParseError> {
    value
        .into_option()
        .ok_or_else(|| ParseError::MissingField(field.to_owned()))
}

fn required_time(raw: Text, field: &str, zone: Tz) -> Result<Moment, ParseError> {
    let raw = required(raw, field)?;
    time::moment_in(&raw, zone).ok_or_else(|| ParseError::BadTime {
        field: field.to_owned(),
        value: raw,
    })
}

fn unreadable_time(field: &str, raw: &str, instead: &str) -> String {
    format!("`{field}` is not a time Rollcall can read ({raw:?}); {instead}")
}

/// When the payload itself dates the event (not when it is only the receipt time).
fn timeline_instant(moment: &Moment) -> Option<DateTime<Utc>> {
    (moment.basis != TimeBasis::ReceivedAt).then_some(moment.at)
}

fn webinar_ref(id: String) -> WebinarRef {
    WebinarRef::new(PLATFORM, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::TimeBasis;
    use crate::platforms::test_support::delivery;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn run(trigger: Option<&str>, body: &str) -> Result<Understanding, ParseError> {
        parse(&delivery(Platform::Bigmarker, trigger, body))
    }

    fn facts_of(
        trigger: Option<&str>,
        body: &str,
    ) -> (Vec<Fact>, Option<DateTime<Utc>>, Vec<String>) {
        match run(trigger, body).unwrap() {
            Understanding::Facts {
                facts,
                observed_at,
                warnings,
            } => (facts, observed_at, warnings),
            other => panic!("expected facts, got {other:?}"),
        }
    }

    #[test]
    fn triggers_and_their_error_list_agree() {
        assert_eq!(EXPECTED_TRIGGERS, TRIGGERS.join(", "));
        let err = run(Some("attendee-leaves"), r#"{"attendees": []}"#).unwrap_err();
        assert!(
            matches!(err, ParseError::UnknownTrigger { ref trigger, .. } if trigger == "attendee-leaves")
        );
    }

    #[test]
    fn registration_keeps_custom_fields_and_fills_utm_from_them() {
        let body = r#"{"registration": {
            "bmid": 9007199254740993, "first_name": "Zoë", "last_name": "Ångström",
            "email": "  Zoe.Angstrom@Example.COM ", "conference_id": "fe62abf98a78",
            "enter_url": "https://www.bigmarker.com/x?bmid=1", "source": "email",
            "referral_domain": "example.com", "tracking_code": "spring",
            "time_stamp": "2017-01-01T00:00:00Z",
            "custom_field_UTM_Source": "newsletter", "custom_field_utm_medium": "email",
            "custom_field_Company": "Acme", "custom_field_": "ignored", "custom_field_Age": 42,
            "unrelated": "x"}}"#;
        let (facts, observed_at, warnings) = facts_of(Some("registration"), body);
        assert!(warnings.is_empty());
        assert_eq!(observed_at, Some(utc("2017-01-01T00:00:00Z")));
        let [Fact::Registered {
            webinar,
            person,
            registered_at,
            origin,
            custom_fields,
            join_url,
            ..
        }] = facts.as_slice()
        else {
            panic!("{facts:?}")
        };
        assert_eq!(webinar.id, "fe62abf98a78");
        assert_eq!(person.platform_id.as_deref(), Some("9007199254740993"));
        assert_eq!(
            person.email.as_ref().unwrap().as_str(),
            "zoe.angstrom@example.com"
        );
        assert_eq!(person.first_name.as_deref(), Some("Zoë"));
        assert_eq!(
            registered_at.as_ref().unwrap(),
            &Moment::exact(utc("2017-01-01T00:00:00Z"))
        );
        assert_eq!(origin.source.as_deref(), Some("email"));
        assert_eq!(origin.referrer.as_deref(), Some("example.com"));
        assert_eq!(origin.tracking_code.as_deref(), Some("spring"));
        assert_eq!(origin.utm_source.as_deref(), Some("newsletter"));
        assert_eq!(origin.utm_medium.as_deref(), Some("email"));
        assert_eq!(
            custom_fields.get("UTM_Source").map(String::as_str),
            Some("newsletter")
        );
        assert_eq!(
            custom_fields.get("Company").map(String::as_str),
            Some("Acme")
        );
        assert_eq!(custom_fields.get("Age").map(String::as_str), Some("42"));
        assert_eq!(custom_fields.len(), 4);
        assert_eq!(
            join_url.as_deref(),
            Some("https://www.bigmarker.com/x?bmid=1")
        );
    }

    #[test]
    fn registration_without_a_time_is_placed_at_receipt() {
        let (facts, observed_at, _) = facts_of(
            None,
            r#"{"registration": {"email": "a@b.co", "conference_id": "c1"}}"#,
        );
        assert_eq!(observed_at, None);
        let Fact::Registered {
            registered_at: Some(at),
            ..
        } = &facts[0]
        else {
            panic!()
        };
        assert_eq!(at.basis, TimeBasis::ReceivedAt);
        assert_eq!(at.at, utc("2024-01-01T00:00:00Z"));
    }

    #[test]
    fn registration_needs_a_webinar_and_someone() {
        assert_eq!(
            run(None, r#"{"registration": {"email": "a@b.co"}}"#).unwrap_err(),
            ParseError::MissingField("registration.conference_id".into())
        );
        assert_eq!(
            run(
                None,
                r#"{"registration": {"conference_id": "c1", "email": null}}"#
            )
            .unwrap_err(),
            ParseError::MissingField("registration.email".into())
        );
        assert!(matches!(
            run(None, r#"{"registration": {"conference_id": "c1", "email": "nobody"}}"#).unwrap_err(),
            ParseError::Invalid { field, .. } if field == "registration.email"
        ));
        assert!(matches!(
            run(None, r#"{"registration": "john@doe.com"}"#).unwrap_err(),
            ParseError::Invalid { field, message } if field == "registration" && message.contains("a string")
        ));
    }

    #[test]
    fn flat_form_body_is_an_incoming_registration() {
        let body = "conference_id=26ec9ca26c6f&first_name=John&email=John.Doe%40Domain.com\
                    &custom_field_utm_bmcr_source=partner&custom_field_State=Ohio";
        let mut d = delivery(Platform::Bigmarker, None, body);
        d.content_type = Some("application/x-www-form-urlencoded");
        let Understanding::Facts { facts, .. } = parse(&d).unwrap() else {
            panic!()
        };
        let Fact::Registered {
            webinar,
            person,
            origin,
            custom_fields,
            registered_at,
            ..
        } = &facts[0]
        else {
            panic!()
        };
        assert_eq!(webinar.id, "26ec9ca26c6f");
        assert_eq!(
            person.email.as_ref().unwrap().as_str(),
            "john.doe@domain.com"
        );
        assert_eq!(origin.tracking_code.as_deref(), Some("partner"));
        assert_eq!(custom_fields.get("State").map(String::as_str), Some("Ohio"));
        assert_eq!(registered_at.as_ref().unwrap().basis, TimeBasis::ReceivedAt);
    }

    #[test]
    fn room_times_without_a_zone_are_read_in_the_source_zone() {
        let body = r#"{"webinar_start_time": {"conference_id": "c1", "start_time": "2024-07-01 09:30",
            "conference_url": "https://bm/c1"}}"#;
        let (facts, observed_at, _) = facts_of(Some("webinar-start"), body);
        let Fact::WebinarSeen { details, .. } = &facts[0] else {
            panic!()
        };
        assert_eq!(details.url.as_deref(), Some("https://bm/c1"));
        let Fact::Started { at, .. } = &facts[1] else {
            panic!()
        };
        assert_eq!(at.at, utc("2024-07-01T13:30:00Z"));
        assert_eq!(
            at.basis,
            TimeBasis::AssumedZone {
                zone: "America/New_York".into()
            }
        );
        assert_eq!(observed_at, Some(utc("2024-07-01T13:30:00Z")));

        let iso = r#"{"webinar_end_time": {"conference_id": "c1", "end_time": "2024-07-01T10:30:00+02:00"}}"#;
        let (facts, _, _) = facts_of(None, iso);
        let Fact::Ended { at, .. } = &facts[1] else {
            panic!()
        };
        assert_eq!(at, &Moment::exact(utc("2024-07-01T08:30:00Z")));
    }

    #[test]
    fn room_times_are_required() {
        assert_eq!(
            run(None, r#"{"waiting_room_open": {"conference_id": "c1"}}"#).unwrap_err(),
            ParseError::MissingField("waiting_room_open.open_time".into())
        );
        assert_eq!(
            run(None, r#"{"webinar_start_time": {"conference_id": "c1", "start_time": "yyyy-mm-dd hh:mm"}}"#)
                .unwrap_err(),
            ParseError::BadTime {
                field: "webinar_start_time.start_time".into(),
                value: "yyyy-mm-dd hh:mm".into()
            }
        );
    }

    const MIXED: &str = r#"{"attendees": [
        {"bmid": "b1", "email": "A@X.com", "conference_id": "c1", "webinar_title": "T",
         "enter_time": "2022-09-13T09:11:52Z", "last_leave_time": "2022-09-13T10:11:52Z",
         "total_duration": "3600", "engaged duration": "1800"},
        {"bmid": "b2", "conference_id": "c1", "conference_url": "https://bm/c1"},
        {"first_name": "Nobody", "conference_id": "c1"},
        {"email": "c@x.com", "conference_id": "c2", "total_duration": "[seconds attended webinar]",
         "engaged_duration": 12},
        "not an object"
    ]}"#;

    #[test]
    fn attendees_without_a_trigger_are_told_apart_per_entry() {
        let (facts, _, warnings) = facts_of(None, MIXED);
        let kinds: Vec<_> = facts.iter().map(Fact::kind).collect();
        assert_eq!(
            kinds,
            [
                "webinar_seen",
                "webinar_seen",
                "attendance_summary",
                "joined",
                "attendance_summary"
            ]
        );
        let Fact::WebinarSeen { webinar, details } = &facts[0] else {
            panic!()
        };
        assert_eq!(webinar.id, "c1");
        assert_eq!(details.title.as_deref(), Some("T"));
        assert_eq!(
            details.url.as_deref(),
            Some("https://bm/c1"),
            "merged from a later entry"
        );
        let Fact::AttendanceSummary {
            joined_at,
            left_at,
            duration_secs,
            engaged_secs,
            ..
        } = &facts[2]
        else {
            panic!()
        };
        assert_eq!(*joined_at, Some(utc("2022-09-13T09:11:52Z")));
        assert_eq!(*left_at, Some(utc("2022-09-13T10:11:52Z")));
        assert_eq!((*duration_secs, *engaged_secs), (Some(3600), Some(1800)));
        let Fact::Joined { at, .. } = &facts[3] else {
            panic!()
        };
        assert_eq!(at.basis, TimeBasis::ReceivedAt);
        let Fact::AttendanceSummary {
            duration_secs,
            engaged_secs,
            ..
        } = &facts[4]
        else {
            panic!()
        };
        assert_eq!((*duration_secs, *engaged_secs), (None, Some(12)));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("attendees[2] skipped: neither an email nor a bmid"));
        assert!(warnings[1].starts_with("attendees[4] skipped: invalid type: string"));
    }

    #[test]
    fn the_trigger_decides_which_attendees_hook_it_was() {
        let (facts, _, _) = facts_of(Some("attendee-enters"), MIXED);
        assert_eq!(facts.iter().filter(|f| f.kind() == "joined").count(), 3);
        let (facts, _, _) = facts_of(Some("attendee-data"), MIXED);
        assert_eq!(
            facts
                .iter()
                .filter(|f| f.kind() == "attendance_summary")
                .count(),
            3
        );
    }

    #[test]
    fn unreadable_attendee_times_are_left_unknown_with_a_warning() {
        let body = r#"{"attendees": [{"email": "a@x.com", "conference_id": "c1",
            "enter_time": "2022-09-13T09:11:52Z", "last_leave_time": "2022-09-13T010:11:52Z"}]}"#;
        let (facts, _, warnings) = facts_of(Some("attendee-data"), body);
        let Fact::AttendanceSummary {
            joined_at, left_at, ..
        } = &facts[1]
        else {
            panic!()
        };
        assert!(joined_at.is_some() && left_at.is_none());
        assert!(
            warnings[0].contains("attendees[0].last_leave_time"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_list_beyond_the_people_limit_is_refused_with_the_count() {
        let entry = r#"{"email":"a@x.co","conference_id":"c"}"#;
        let count = crate::platforms::MAX_PEOPLE_PER_DELIVERY + 1;
        let body = format!(r#"{{"attendees":[{}]}}"#, vec![entry; count].join(","));
        let err = run(Some("attendee-data"), &body).unwrap_err();
        assert!(
            err.to_string().contains("more than the 500000 allowed"),
            "{err}"
        );
    }

    #[test]
    fn fifty_thousand_attendees_make_one_webinar_and_bounded_warnings() {
        let mut body = String::from(r#"{"attendees": ["#);
        for i in 0..50_000 {
            if i > 0 {
                body.push(',');
            }
            if i % 2 == 0 {
                body.push_str(&format!(
                    r#"{{"email": "p{i}@x.com", "conference_id": "c1", "total_duration": {i}}}"#
                ));
            } else {
                body.push_str(r#"{"conference_id": "c1"}"#);
            }
        }
        body.push_str("]}");
        let (facts, _, warnings) = facts_of(Some("attendee-data"), &body);
        assert_eq!(facts.len(), 25_001);
        assert_eq!(
            facts.iter().filter(|f| f.kind() == "webinar_seen").count(),
            1
        );
        assert_eq!(warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(
            warnings[MAX_WARNINGS],
            "24950 more warnings like these were not listed"
        );
    }

    #[test]
    fn attendees_must_be_a_list() {
        assert!(matches!(
            run(None, r#"{"attendees": 3}"#).unwrap_err(),
            ParseError::Invalid { field, .. } if field == "attendees"
        ));
        let (facts, _, _) = facts_of(None, r#"{"attendees": null}"#);
        assert!(facts.is_empty());
    }

    /// Each attendee is read from its own JSON text: one that is not an object, or that gives a
    /// field twice (which a `serde_json::Value` hid by keeping the last), is skipped with serde's
    /// reason, without a position (it would count from the entry, not the body), and the others
    /// are kept.
    #[test]
    fn an_unreadable_attendee_is_skipped_and_the_others_kept() {
        let body = r#"{"attendees": [
            {"email": "a@x.com", "conference_id": "c1"},
            "not an attendee",
            {"email": "b@x.com", "conference_id": "c1", "email": "b2@x.com"},
            {"email": "c@x.com", "conference_id": "c1"}]}"#;
        let (facts, _, warnings) = facts_of(None, body);
        let emails: Vec<_> = facts
            .iter()
            .filter_map(|f| f.person()?.email.as_ref().map(|e| e.as_str().to_owned()))
            .collect();
        assert_eq!(emails, ["a@x.com", "c@x.com"]);
        let skipped: Vec<&String> = warnings.iter().filter(|w| w.contains("skipped")).collect();
        assert_eq!(skipped.len(), 2, "{warnings:?}");
        assert!(
            skipped[0].starts_with("attendees[1] skipped: invalid type: string"),
            "{warnings:?}"
        );
        assert_eq!(
            skipped[1], "attendees[2] skipped: duplicate field `email`",
            "{warnings:?}"
        );
        assert!(
            warnings.iter().all(|w| !w.contains(" at line ")),
            "{warnings:?}"
        );
    }

    /// The event object named by the key is read from its text, and an error in it says which
    /// key and what was found, as a `serde_json::Value` did.
    #[test]
    fn an_event_that_is_not_an_object_names_its_key_and_kind() {
        for (body, found) in [
            (r#"{"registration": "x"}"#, "a string"),
            (r#"{"registration": [1]}"#, "an array"),
            (r#"{"webinar_end_time": 12}"#, "a number"),
            (r#"{"webinar": true}"#, "a boolean"),
        ] {
            let error = run(None, body).unwrap_err();
            let ParseError::Invalid { message, .. } = &error else {
                panic!("{body}: {error:?}")
            };
            assert!(
                message.starts_with(&format!("expected an object, found {found} (")),
                "{message}"
            );
            assert!(!message.contains(" at line "), "{message}");
        }
    }

    #[test]
    fn on_demand_viewer_is_a_replay_view() {
        let body = r#"{"on_demand_viewer": {"bmid": "b1", "email": "A@X.com", "conference_id": "c1",
            "webinar_title": "T", "watched_on": "2022-09-13T09:11:52Z", "recording_duration": "754"}}"#;
        let (facts, observed_at, _) = facts_of(None, body);
        let Fact::ReplayViewed {
            at,
            watched_secs,
            person,
            ..
        } = &facts[1]
        else {
            panic!()
        };
        assert_eq!(at, &Moment::exact(utc("2022-09-13T09:11:52Z")));
        assert_eq!(*watched_secs, Some(754));
        assert_eq!(person.platform_id.as_deref(), Some("b1"));
        assert_eq!(observed_at, Some(at.at));

        let body = r#"{"on_demand_viewer": {"email": "a@x.com", "conference_id": "c1",
            "recording_duration": "[seconds watched webinar]"}}"#;
        let (facts, observed_at, _) = facts_of(None, body);
        let Fact::ReplayViewed {
            at, watched_secs, ..
        } = &facts[1]
        else {
            panic!()
        };
        assert_eq!(
            (at.basis.clone(), *watched_secs, observed_at),
            (TimeBasis::ReceivedAt, None, None)
        );
    }

    #[test]
    fn new_webinar_keeps_stable_details_only() {
        let body = r#"{"webinar": {"webinar_id": "w1", "webinar_title": "T",
            "webinar_event_type": "Live Webinar", "webinar_owner_email": " MStewart@Email.com",
            "webinar_presenter_name": "Christina Tosi, Will Guidara,", "webinar_privacy": "public",
            "webinar_start_time": "2023-01-01T09:00:00-05:00", "webinar_end_time": "2023-06-15T10:00:00-05:00",
            "webinar_registrants": "4321", "webinar_capacity": "3000",
            "webinar_tag1": "Topic", "webinar_tag1_value": "Baking", "webinar_tag12": "Level",
            "webinar_tagline": "not a tag", "channel_id": 77}}"#;
        let (facts, _, warnings) = facts_of(Some("new-webinar"), body);
        assert!(warnings.is_empty());
        let [Fact::WebinarSeen { webinar, details }] = facts.as_slice() else {
            panic!()
        };
        assert_eq!(webinar.id, "w1");
        assert_eq!(details.presenters, ["Christina Tosi", "Will Guidara"]);
        assert_eq!(
            details.owner_email.as_ref().unwrap().as_str(),
            "mstewart@email.com"
        );
        assert_eq!(details.kind.as_deref(), Some("Live Webinar"));
        assert_eq!(details.capacity, Some(3000));
        assert_eq!(
            details.scheduled_start,
            Some(Moment::exact(utc("2023-01-01T14:00:00Z")))
        );
        assert_eq!(
            details.scheduled_end,
            Some(Moment::exact(utc("2023-06-15T15:00:00Z")))
        );
        let extra: Vec<_> = details
            .extra
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            extra,
            [
                "channel_id=77",
                "webinar_privacy=public",
                "webinar_tag1=Topic",
                "webinar_tag12=Level",
                "webinar_tag1_value=Baking"
            ]
        );
        assert!(!format!("{details:?}").contains("4321"), "no running count");
    }

    #[test]
    fn unknown_shapes_name_the_keys_found() {
        let err = run(None, r#"{"webinar_deleted": {}, "conference_id": "c1"}"#).unwrap_err();
        let ParseError::UnknownShape { platform, detail } = err else {
            panic!()
        };
        assert_eq!(platform, "BigMarker");
        assert!(
            detail.ends_with(r#"found keys "conference_id", "webinar_deleted""#),
            "{detail}"
        );
        let ParseError::UnknownShape { detail, .. } = run(None, "{}").unwrap_err() else {
            panic!()
        };
        assert!(detail.ends_with("found an empty object"));
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused_precisely() {
        assert_eq!(
            run(None, "[]").unwrap_err(),
            ParseError::NotAnObject("an array")
        );
        assert!(matches!(
            run(None, r#"{"attendees": [{"#).unwrap_err(),
            ParseError::NotJson(_)
        ));
        assert_eq!(run(None, "  ").unwrap_err(), ParseError::EmptyBody);
        assert_eq!(event_id(&delivery(Platform::Bigmarker, None, "{}")), None);
    }
}
