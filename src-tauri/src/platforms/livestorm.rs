//! Livestorm webhooks, in both of the formats Livestorm sends.
//!
//! REST API webhooks (and the native "Event created" / "Session created" triggers) post JSON:API
//! bodies, `{data: {id, type, attributes, meta}}`, naming their event in `meta.webhook.event`
//! (inside `data` in Livestorm's examples, at the top level in standard JSON:API) and writing
//! times as Unix seconds where 0 means unset. The native integration posts `{webinar, attendee?}`
//! with ISO times and no event name: the trigger in the URL says what happened, or the shape
//! does when there is none. Sessions of a native webinar are only named by the `s` parameter of
//! its `room_link`.
//!
//! This module owns turning both into facts. It must not record running counts (`nb_registered`,
//! `nb_attended`, `attendees_count`) as webinar details, must not correct Livestorm's numbers
//! (an attendance can be longer than its session), does no I/O and must not panic on any input.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::body::{self, decode};
use super::lenient::{Count, Decimal, Flag, List, Loose, Text};
use super::time;
use super::{Delivery, ParseError, Understanding};
use crate::facts::{
    Email, Engagement, Fact, Moment, Origin, Person, Platform, Role, SessionDetails,
    WebinarDetails, WebinarRef,
};

/// How error messages name the platform.
const PLATFORM: &str = "Livestorm";

/// The native integration's triggers, as the URL names them.
pub const TRIGGERS: &[&str] = &[
    "event-created",
    "session-created",
    "event-published",
    "new-registrant",
    "event-starts",
    "event-ends",
];

const EXPECTED_TRIGGERS: &str =
    "event-created, session-created, event-published, new-registrant, event-starts, event-ends";

/// Either format: JSON:API `data` (+ `meta`), or native `webinar` (+ `attendee`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Body {
    data: Loose<Resource>,
    meta: Loose<Meta>,
    webinar: Loose<NativeWebinar>,
    attendee: Loose<Attendee>,
}

/// A JSON:API resource; its attributes are kept as their text and read once the event name
/// says what they are. Read into a `serde_json::Value` first, a registration's attributes
/// became a tree of maps that was then read again, a fifth of a reindex's parsing.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Resource {
    id: Text,
    attributes: Option<Box<RawValue>>,
    meta: Loose<Meta>,
}

impl Resource {
    /// The attributes' text; none is an empty object.
    fn attributes(&self) -> &str {
        self.attributes.as_deref().map_or("{}", RawValue::get)
    }
}

/// The attributes' own `updated_at`, which orders a resource's events.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Stamp {
    updated_at: Option<Value>,
}

/// The `registrant_detail` of a `people` resource.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Detail {
    registrant_detail: Loose<Attendee>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Meta {
    webhook: Loose<Webhook>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Webhook {
    event: Text,
}

/// `event.created` / `event.published` attributes (type `events`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EventAttributes {
    title: Text,
    slug: Text,
    registration_link: Text,
    estimated_duration: Count,
    description: Text,
    status: Text,
    published_at: Text,
    created_at: Text,
    owner: Loose<Owner>,
    language: Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Owner {
    attributes: Loose<OwnerAttributes>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OwnerAttributes {
    email: Text,
    first_name: Text,
    last_name: Text,
}

/// `session.*` attributes (type `sessions`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SessionAttributes {
    event_id: Text,
    status: Text,
    timezone: Text,
    room_link: Text,
    estimated_started_at: Text,
    started_at: Text,
    ended_at: Text,
    duration: Count,
}

/// The `webinar` of a native body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NativeWebinar {
    identify: Text,
    title: Text,
    slug: Text,
    description: Text,
    created_at: Text,
    estimated_duration: Count,
    registration_link: Text,
    published_at: Text,
    room_link: Text,
    estimated_started_at: Text,
    started_at: Text,
    ended_at: Text,
    duration: Count,
    /// Present (even empty) only when a session has ended.
    attendees: Option<List<Loose<Attendee>>>,
}

/// One person: a native `attendee` / `webinar.attendees[]` entry, or the attributes of a REST
/// `people` resource with its `registrant_detail` merged in. The two carry the same fields.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Attendee {
    identify: Text,
    role: Text,
    first_name: Text,
    last_name: Text,
    email: Text,
    /// When the registration was made.
    created_at: Text,
    event_id: Text,
    session_id: Text,
    connection_link: Text,
    /// `attended` in REST, `is_attendance` in native bodies.
    #[serde(alias = "attended")]
    is_attendance: Flag,
    attendance_rate: Decimal,
    attendance_duration: Count,
    is_guest_speaker: Flag,
    referrer: Text,
    utm_source: Text,
    utm_medium: Text,
    utm_term: Text,
    utm_content: Text,
    utm_campaign: Text,
    ip_city: Text,
    ip_country_name: Text,
    ip_country_code: Text,
    messages_count: Count,
    questions_count: Count,
    votes_count: Count,
    up_votes_count: Count,
    /// Registration form answers: an object, or a list of `{id, value}`.
    fields: Option<Value>,
}

impl Attendee {
    /// Each field of `self`, or of `other` where `self` has none.
    fn or(self, other: Attendee) -> Attendee {
        Attendee {
            identify: self.identify.or(other.identify),
            role: self.role.or(other.role),
            first_name: self.first_name.or(other.first_name),
            last_name: self.last_name.or(other.last_name),
            email: self.email.or(other.email),
            created_at: self.created_at.or(other.created_at),
            event_id: self.event_id.or(other.event_id),
            session_id: self.session_id.or(other.session_id),
            connection_link: self.connection_link.or(other.connection_link),
            is_attendance: self.is_attendance.or(other.is_attendance),
            attendance_rate: self.attendance_rate.or(other.attendance_rate),
            attendance_duration: self.attendance_duration.or(other.attendance_duration),
            is_guest_speaker: self.is_guest_speaker.or(other.is_guest_speaker),
            referrer: self.referrer.or(other.referrer),
            utm_source: self.utm_source.or(other.utm_source),
            utm_medium: self.utm_medium.or(other.utm_medium),
            utm_term: self.utm_term.or(other.utm_term),
            utm_content: self.utm_content.or(other.utm_content),
            utm_campaign: self.utm_campaign.or(other.utm_campaign),
            ip_city: self.ip_city.or(other.ip_city),
            ip_country_name: self.ip_country_name.or(other.ip_country_name),
            ip_country_code: self.ip_country_code.or(other.ip_country_code),
            messages_count: self.messages_count.or(other.messages_count),
            questions_count: self.questions_count.or(other.questions_count),
            votes_count: self.votes_count.or(other.votes_count),
            up_votes_count: self.up_votes_count.or(other.up_votes_count),
            fields: self.fields.or(other.fields),
        }
    }
}

/// Understands one Livestorm delivery.
pub fn parse(delivery: &Delivery<'_>) -> Result<Understanding, ParseError> {
    let trigger = delivery.trigger.map(native_trigger).transpose()?;
    let body: Body = decode(delivery)?;
    if let Some(resource) = &body.data.0 {
        let name = event_name(&body, resource)
            .ok_or_else(|| unknown_shape(delivery, "JSON:API body without meta.webhook.event"))?;
        return json_api(resource, &name, delivery);
    }
    if body.webinar.0.is_none() && body.attendee.0.is_none() {
        let detail = "neither a JSON:API `data` object nor a native `webinar`".to_owned();
        return Err(unknown_shape(delivery, &detail));
    }
    native(
        &body,
        trigger.unwrap_or_else(|| detect_trigger(&body)),
        delivery,
    )
}

/// `data.id` and the event name, plus the session for `people.*` events: a person's id is the
/// same for every session, and without it a second session's registration would look like a
/// retry. Native bodies carry no id.
pub fn event_id(delivery: &Delivery<'_>) -> Option<String> {
    let body: Body = decode(delivery).ok()?;
    let resource = body.data.0.as_ref()?;
    let id = resource.id.as_deref()?;
    let name = event_name(&body, resource)?;
    let session = match name.starts_with("people.") {
        true => person_attributes(resource.attributes()).session_id.0,
        false => None,
    };
    Some(match session {
        Some(session) => format!("{id}:{name}:{session}"),
        None => format!("{id}:{name}"),
    })
}

fn event_name(body: &Body, resource: &Resource) -> Option<String> {
    let from = |meta: &Loose<Meta>| -> Option<String> {
        let webhook = meta.0.as_ref()?.webhook.0.as_ref()?;
        webhook.event.as_deref().map(str::to_ascii_lowercase)
    };
    from(&resource.meta).or_else(|| from(&body.meta))
}

// ---- JSON:API (REST webhooks) ----

fn json_api(
    resource: &Resource,
    name: &str,
    delivery: &Delivery<'_>,
) -> Result<Understanding, ParseError> {
    let attributes = resource.attributes();
    let observed_at = read::<Stamp>(attributes)
        .updated_at
        .as_ref()
        .and_then(epoch_value);
    let mut warnings = Vec::new();
    let facts = match name {
        "event.created" | "event.published" => {
            event_facts(resource, &read(attributes), name, delivery, &mut warnings)?
        }
        "session.created" | "session.started" | "session.ended" => {
            session_facts(resource, &read(attributes), name, delivery, &mut warnings)?
        }
        "people.registered"
        | "people.attended"
        | "people.not_attended"
        | "people.watched_replay" => people_facts(
            resource,
            &person_attributes(attributes),
            name,
            delivery,
            &mut warnings,
        )?,
        "job.ended" => {
            return Ok(Understanding::Ignored {
                reason: "job.ended reports a finished export job, not webinar activity".into(),
            })
        }
        _ => return Err(unknown_shape(delivery, &format!("unknown event {name:?}"))),
    };
    Ok(Understanding::Facts {
        facts,
        observed_at,
        warnings,
    })
}

fn event_facts(
    resource: &Resource,
    attrs: &EventAttributes,
    name: &str,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Fact>, ParseError> {
    let webinar = webinar_ref(&resource.id, "data.id")?;
    let owner = attrs.owner.0.as_ref().and_then(|o| o.attributes.0.as_ref());
    let mut extra = BTreeMap::new();
    insert(&mut extra, "slug", attrs.slug.as_deref());
    insert(&mut extra, "language", attrs.language.as_deref());
    insert(
        &mut extra,
        "estimated_duration",
        attrs.estimated_duration.0.map(|d| d.to_string()).as_deref(),
    );
    let details = WebinarDetails {
        title: text(&attrs.title),
        description: text(&attrs.description),
        registration_url: text(&attrs.registration_link),
        created_at: optional_time(
            "data.attributes.created_at",
            &attrs.created_at,
            delivery,
            warnings,
        )
        .map(|m| m.at),
        owner_name: owner.and_then(|o| full_name(&o.first_name, &o.last_name)),
        owner_email: owner
            .and_then(|o| o.email.as_deref())
            .and_then(Email::parse),
        platform_status: text(&attrs.status),
        extra,
        ..WebinarDetails::default()
    };
    let mut facts = vec![Fact::WebinarSeen {
        webinar: webinar.clone(),
        details,
    }];
    let published = required_time(
        "data.attributes.published_at",
        &attrs.published_at,
        delivery,
    )?;
    let published = published
        .or_else(|| (name == "event.published").then(|| Moment::received(delivery.received_at)));
    facts.extend(published.map(|at| Fact::WebinarPublished { webinar, at }));
    Ok(facts)
}

fn session_facts(
    resource: &Resource,
    attrs: &SessionAttributes,
    name: &str,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Fact>, ParseError> {
    let webinar = webinar_ref(&attrs.event_id, "data.attributes.event_id")?;
    let session = resource
        .id
        .0
        .clone()
        .ok_or_else(|| ParseError::MissingField("data.id".into()))?;
    let details = SessionDetails {
        scheduled_start: optional_time(
            "data.attributes.estimated_started_at",
            &attrs.estimated_started_at,
            delivery,
            warnings,
        ),
        scheduled_end: None,
        timezone: text(&attrs.timezone),
        url: text(&attrs.room_link),
        platform_status: text(&attrs.status),
    };
    let mut facts = vec![Fact::SessionSeen {
        webinar: webinar.clone(),
        session: session.clone(),
        details,
    }];
    let started = happened(
        "data.attributes.started_at",
        &attrs.started_at,
        name == "session.started",
        delivery,
    )?;
    facts.extend(started.map(|at| Fact::Started {
        webinar: webinar.clone(),
        session: Some(session.clone()),
        at,
    }));
    let ended = happened(
        "data.attributes.ended_at",
        &attrs.ended_at,
        name == "session.ended",
        delivery,
    )?;
    facts.extend(ended.map(|at| Fact::Ended {
        webinar,
        session: Some(session),
        at,
        duration_secs: attrs.duration.0,
    }));
    Ok(facts)
}

fn people_facts(
    resource: &Resource,
    attendee: &Attendee,
    name: &str,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Fact>, ParseError> {
    const DETAIL: &str = "data.attributes.registrant_detail";
    let webinar = webinar_ref(&attendee.event_id, &format!("{DETAIL}.event_id"))?;
    let person = person(
        attendee,
        resource.id.as_deref(),
        "data.attributes",
        warnings,
    )
    .ok_or_else(|| ParseError::MissingField("data.attributes.email".into()))?;
    let field = format!("{DETAIL}.created_at");
    let registered_at = match required_time(&field, &attendee.created_at, delivery)? {
        Some(at) => Some(at),
        None if name == "people.registered" => Some(Moment::received(delivery.received_at)),
        None => None,
    };
    let session = text(&attendee.session_id);
    let registered = registration(
        &webinar,
        session.clone(),
        person.clone(),
        registered_at,
        attendee,
        DETAIL,
        warnings,
    );
    let outcome = match name {
        "people.attended" => Some(summary(&webinar, session, person, attendee, true)),
        "people.not_attended" => Some(summary(&webinar, session, person, attendee, false)),
        "people.watched_replay" => Some(Fact::ReplayViewed {
            webinar,
            person,
            at: Moment::received(delivery.received_at),
            watched_secs: None,
        }),
        _ => None,
    };
    Ok(std::iter::once(registered).chain(outcome).collect())
}

/// People attributes with `registrant_detail` laid over them, since Livestorm places some values
/// in either: what the detail gives is taken over what the person gives. The person's own
/// `created_at` (when the account was made) is left out so it is never taken for the
/// registration's.
fn person_attributes(attributes: &str) -> Attendee {
    let person = Attendee {
        created_at: Text::default(),
        ..read(attributes)
    };
    let detail = read::<Detail>(attributes).registrant_detail.0;
    detail.unwrap_or_default().or(person)
}

/// Attributes read as their struct; every field is lenient, so only a non-object (or a field
/// given twice) fails, and that reads as all-absent.
fn read<T: Default + serde::de::DeserializeOwned>(attributes: &str) -> T {
    serde_json::from_str(attributes).unwrap_or_default()
}

// ---- native integration ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    EventCreated,
    SessionCreated,
    EventPublished,
    NewRegistrant,
    EventStarts,
    EventEnds,
}

fn native_trigger(raw: &str) -> Result<Trigger, ParseError> {
    Ok(match raw.trim().to_ascii_lowercase().as_str() {
        "event-created" => Trigger::EventCreated,
        "session-created" => Trigger::SessionCreated,
        "event-published" => Trigger::EventPublished,
        "new-registrant" => Trigger::NewRegistrant,
        "event-starts" => Trigger::EventStarts,
        "event-ends" => Trigger::EventEnds,
        _ => {
            return Err(ParseError::UnknownTrigger {
                platform: PLATFORM,
                trigger: raw.to_owned(),
                expected: EXPECTED_TRIGGERS,
            })
        }
    })
}

/// Without a trigger in the URL, the fields present say which native trigger fired.
fn detect_trigger(body: &Body) -> Trigger {
    let webinar = body.webinar.0.as_ref();
    if body.attendee.0.is_some() {
        Trigger::NewRegistrant
    } else if webinar.is_some_and(|w| w.attendees.is_some() || w.ended_at.0.is_some()) {
        Trigger::EventEnds
    } else if webinar.is_some_and(|w| w.started_at.0.is_some()) {
        Trigger::EventStarts
    } else {
        Trigger::EventPublished
    }
}

fn native(
    body: &Body,
    trigger: Trigger,
    delivery: &Delivery<'_>,
) -> Result<Understanding, ParseError> {
    let native = body
        .webinar
        .0
        .as_ref()
        .ok_or_else(|| ParseError::MissingField("webinar".into()))?;
    let webinar = webinar_ref(&native.identify, "webinar.identify")?;
    let listed = native.attendees.as_ref().map_or(0, |list| list.0.len());
    super::check_people_count("webinar.attendees", listed)?;
    let session = native.room_link.as_deref().and_then(session_from_room_link);
    let mut warnings = Vec::new();
    let mut facts = vec![Fact::WebinarSeen {
        webinar: webinar.clone(),
        details: native_details(native, delivery, &mut warnings),
    }];
    if let Some(session) = &session {
        let details = SessionDetails {
            scheduled_start: optional_time(
                "webinar.estimated_started_at",
                &native.estimated_started_at,
                delivery,
                &mut warnings,
            ),
            url: text(&native.room_link),
            ..SessionDetails::default()
        };
        facts.push(Fact::SessionSeen {
            webinar: webinar.clone(),
            session: session.clone(),
            details,
        });
    }
    let at = |field: &str, raw: &Text, fallback: bool| happened(field, raw, fallback, delivery);
    match trigger {
        Trigger::EventCreated | Trigger::EventPublished => {
            let published = at(
                "webinar.published_at",
                &native.published_at,
                trigger == Trigger::EventPublished,
            )?;
            facts.extend(published.map(|at| Fact::WebinarPublished { webinar, at }));
        }
        Trigger::SessionCreated => {}
        Trigger::NewRegistrant => {
            let attendee = body
                .attendee
                .0
                .as_ref()
                .ok_or_else(|| ParseError::MissingField("attendee".into()))?;
            let person = person(attendee, None, "attendee", &mut warnings)
                .ok_or_else(|| ParseError::MissingField("attendee.email".into()))?;
            let registered_at =
                required_time("attendee.created_at", &attendee.created_at, delivery)?
                    .unwrap_or_else(|| Moment::received(delivery.received_at));
            let registration = registration(
                &webinar,
                session,
                person,
                Some(registered_at),
                attendee,
                "attendee",
                &mut warnings,
            );
            facts.push(registration);
        }
        Trigger::EventStarts => {
            let started = at("webinar.started_at", &native.started_at, true)?;
            facts.extend(started.map(|at| Fact::Started {
                webinar,
                session,
                at,
            }));
        }
        Trigger::EventEnds => {
            let started = at("webinar.started_at", &native.started_at, false)?;
            facts.extend(started.map(|at| Fact::Started {
                webinar: webinar.clone(),
                session: session.clone(),
                at,
            }));
            let ended = at("webinar.ended_at", &native.ended_at, true)?;
            facts.extend(ended.map(|at| Fact::Ended {
                webinar: webinar.clone(),
                session: session.clone(),
                at,
                duration_secs: native.duration.0,
            }));
            facts.extend(attendance(
                native,
                &webinar,
                session.as_deref(),
                delivery,
                &mut warnings,
            ));
        }
    }
    Ok(Understanding::Facts {
        facts,
        observed_at: None,
        warnings,
    })
}

/// Stable properties only: `nb_registered`/`nb_attended` are running counts, and `room_link`
/// belongs to one session.
fn native_details(
    native: &NativeWebinar,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> WebinarDetails {
    let mut extra = BTreeMap::new();
    insert(&mut extra, "slug", native.slug.as_deref());
    insert(
        &mut extra,
        "estimated_duration",
        native
            .estimated_duration
            .0
            .map(|d| d.to_string())
            .as_deref(),
    );
    WebinarDetails {
        title: text(&native.title),
        description: text(&native.description),
        registration_url: text(&native.registration_link),
        created_at: optional_time("webinar.created_at", &native.created_at, delivery, warnings)
            .map(|m| m.at),
        extra,
        ..WebinarDetails::default()
    }
}

/// `webinar.attendees[]` of an ended session: a registration and an attendance summary each.
/// An entry naming nobody is skipped with a warning rather than losing the others.
fn attendance(
    native: &NativeWebinar,
    webinar: &WebinarRef,
    session: Option<&str>,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> Vec<Fact> {
    let entries = native
        .attendees
        .as_ref()
        .map(|list| list.0.as_slice())
        .unwrap_or_default();
    let mut facts = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let path = format!("webinar.attendees[{index}]");
        let Some(attendee) = &entry.0 else {
            warnings.push(format!("{path}: not an object; skipped"));
            continue;
        };
        let Some(person) = person(attendee, None, &path, warnings) else {
            warnings.push(format!("{path}: neither email nor identify; skipped"));
            continue;
        };
        let registered_at = optional_time(
            &format!("{path}.created_at"),
            &attendee.created_at,
            delivery,
            warnings,
        );
        let session = session.map(str::to_owned);
        facts.push(registration(
            webinar,
            session.clone(),
            person.clone(),
            registered_at,
            attendee,
            &path,
            warnings,
        ));
        facts.push(summary(
            webinar,
            session,
            person,
            attendee,
            attendee.is_attendance.0.unwrap_or(true),
        ));
    }
    facts
}

/// The session id is the `s` query parameter of a room link (`.../live?s=<session id>`).
fn session_from_room_link(link: &str) -> Option<String> {
    let query = link.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "s")
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

// ---- people, shared by both formats ----

/// The person, or `None` when the entry gives neither a usable email nor an id.
fn person(
    attendee: &Attendee,
    id: Option<&str>,
    path: &str,
    warnings: &mut Vec<String>,
) -> Option<Person> {
    let email = attendee.email.as_deref().and_then(|raw| {
        let email = Email::parse(raw);
        if email.is_none() {
            warnings.push(format!(
                "{path}.email: {raw:?} is not an email address; ignored"
            ));
        }
        email
    });
    let platform_id = id.map(str::to_owned).or_else(|| text(&attendee.identify));
    if email.is_none() && platform_id.is_none() {
        return None;
    }
    Some(Person {
        email,
        platform_id,
        first_name: text(&attendee.first_name),
        last_name: text(&attendee.last_name),
        city: text(&attendee.ip_city),
        country: text(&attendee.ip_country_name).or_else(|| text(&attendee.ip_country_code)),
        ..Person::default()
    })
}

fn registration(
    webinar: &WebinarRef,
    session: Option<String>,
    person: Person,
    registered_at: Option<Moment>,
    attendee: &Attendee,
    path: &str,
    warnings: &mut Vec<String>,
) -> Fact {
    Fact::Registered {
        webinar: webinar.clone(),
        session,
        person,
        registered_at,
        status: None,
        role: role(attendee),
        origin: Origin {
            referrer: text(&attendee.referrer),
            utm_source: text(&attendee.utm_source),
            utm_medium: text(&attendee.utm_medium),
            utm_campaign: text(&attendee.utm_campaign),
            utm_term: text(&attendee.utm_term),
            utm_content: text(&attendee.utm_content),
            ..Origin::default()
        },
        custom_fields: custom_fields(
            attendee.fields.as_ref(),
            &format!("{path}.fields"),
            warnings,
        ),
        join_url: text(&attendee.connection_link),
    }
}

fn summary(
    webinar: &WebinarRef,
    session: Option<String>,
    person: Person,
    attendee: &Attendee,
    attended: bool,
) -> Fact {
    Fact::AttendanceSummary {
        webinar: webinar.clone(),
        session,
        person,
        attended,
        joined_at: None,
        left_at: None,
        duration_secs: attended.then_some(attendee.attendance_duration.0).flatten(),
        engaged_secs: None,
        attendance_rate: attended.then_some(attendee.attendance_rate.0).flatten(),
        role: role(attendee),
        engagement: attended.then(|| engagement(attendee)).flatten(),
    }
}

fn role(attendee: &Attendee) -> Role {
    let role = attendee
        .role
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .replace(' ', "_");
    if role == "team_member" {
        Role::Host
    } else if role == "guest_speaker" || attendee.is_guest_speaker.0 == Some(true) {
        Role::GuestSpeaker
    } else {
        Role::Audience
    }
}

fn engagement(attendee: &Attendee) -> Option<Engagement> {
    let engagement = Engagement {
        messages: attendee.messages_count.0,
        questions: attendee.questions_count.0,
        votes: attendee.votes_count.0,
        up_votes: attendee.up_votes_count.0,
    };
    (engagement != Engagement::default()).then_some(engagement)
}

/// Registration form answers other than the identity fields the person already carries: an
/// object of answers, or a list of `{id, value}` as REST sends.
fn custom_fields(
    fields: Option<&Value>,
    path: &str,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    const IDENTITY: [&str; 3] = ["email", "first_name", "last_name"];
    let mut out = BTreeMap::new();
    let mut keep = |key: &str, value: &Value| {
        if let Some(value) = answer(value).filter(|_| !IDENTITY.contains(&key)) {
            out.insert(key.to_owned(), value);
        }
    };
    match fields {
        Some(Value::Object(map)) => map.iter().for_each(|(key, value)| keep(key, value)),
        Some(Value::Array(entries)) => {
            for (index, entry) in entries.iter().enumerate() {
                let key = ["id", "label", "name", "key"]
                    .iter()
                    .find_map(|k| entry.get(k).and_then(Value::as_str));
                match (key, entry.get("value")) {
                    (Some(key), Some(value)) => keep(key, value),
                    (Some(_), None) => {}
                    (None, _) => warnings.push(format!("{path}[{index}]: no id; skipped")),
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => warnings.push(format!("{path}: neither an object nor a list; ignored")),
    }
    out
}

/// A form answer as text; a multiple choice answer (a list) is joined with "; ".
fn answer(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .filter_map(answer)
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(map) => return map.get("value").and_then(answer),
        Value::Null => return None,
    };
    (!text.is_empty()).then_some(text)
}

// ---- small readers ----

fn webinar_ref(id: &Text, field: &str) -> Result<WebinarRef, ParseError> {
    let id = id
        .as_deref()
        .ok_or_else(|| ParseError::MissingField(field.into()))?;
    Ok(WebinarRef::new(Platform::Livestorm, id))
}

/// Unix seconds of 0 (or below) mean "not yet".
fn is_unset(raw: &str) -> bool {
    raw.parse::<f64>().is_ok_and(|n| n <= 0.0)
}

/// A time an emitted fact stands on: unset is `None`, unreadable is an error.
fn required_time(
    field: &str,
    raw: &Text,
    delivery: &Delivery<'_>,
) -> Result<Option<Moment>, ParseError> {
    match raw.as_deref() {
        None => Ok(None),
        Some(value) if is_unset(value) => Ok(None),
        Some(value) => time::moment_in(value, delivery.source_zone)
            .map(Some)
            .ok_or_else(|| ParseError::BadTime {
                field: field.into(),
                value: value.into(),
            }),
    }
}

/// When something happened: the payload's time, else (when the event itself says it happened)
/// the time it arrived.
fn happened(
    field: &str,
    raw: &Text,
    event_says_so: bool,
    delivery: &Delivery<'_>,
) -> Result<Option<Moment>, ParseError> {
    let at = required_time(field, raw, delivery)?;
    Ok(at.or_else(|| event_says_so.then(|| Moment::received(delivery.received_at))))
}

/// A descriptive time: unreadable ones are dropped with a warning.
fn optional_time(
    field: &str,
    raw: &Text,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> Option<Moment> {
    required_time(field, raw, delivery).unwrap_or_else(|error| {
        warnings.push(format!("{error}; ignored"));
        None
    })
}

fn epoch_value(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => n.as_i64().and_then(time::epoch),
        Value::String(s) => time::instant(s),
        _ => None,
    }
}

fn full_name(first: &Text, last: &Text) -> Option<String> {
    let name = [first.as_deref(), last.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!name.is_empty()).then_some(name)
}

fn unknown_shape(delivery: &Delivery<'_>, what: &str) -> ParseError {
    let keys = body::top_level_keys(delivery);
    ParseError::UnknownShape {
        platform: PLATFORM,
        detail: format!("{what}; top-level {keys}"),
    }
}

fn text(value: &Text) -> Option<String> {
    value.0.clone()
}

fn insert(map: &mut BTreeMap<String, String>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::TimeBasis;
    use crate::platforms::test_support::delivery;

    fn parse_with(trigger: Option<&str>, body: &str) -> Result<Understanding, ParseError> {
        parse(&delivery(Platform::Livestorm, trigger, body))
    }

    fn facts_of(trigger: Option<&str>, body: &str) -> (Vec<Fact>, Vec<String>) {
        match parse_with(trigger, body).unwrap() {
            Understanding::Facts {
                facts, warnings, ..
            } => (facts, warnings),
            other => panic!("expected facts, got {other:?}"),
        }
    }

    fn kinds(facts: &[Fact]) -> Vec<&'static str> {
        facts.iter().map(Fact::kind).collect()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn people(event: &str, attributes: &str) -> String {
        format!(
            r#"{{"data":{{"id":"p1","type":"people","attributes":{attributes}}},
                "meta":{{"webhook":{{"event":"{event}"}}}}}}"#
        )
    }

    #[test]
    fn the_event_name_is_read_inside_data_or_at_the_top_level() {
        let inside =
            r#"{"data":{"id":"e1","attributes":{},"meta":{"webhook":{"event":"event.created"}}}}"#;
        let top =
            r#"{"data":{"id":"e1","attributes":{}},"meta":{"webhook":{"event":"EVENT.CREATED"}}}"#;
        for body in [inside, top] {
            assert_eq!(kinds(&facts_of(None, body).0), ["webinar_seen"]);
        }
    }

    #[test]
    fn unknown_or_missing_event_names_name_the_keys_found() {
        let missing = parse_with(None, r#"{"data":{"id":"e1"},"links":{}}"#).unwrap_err();
        assert_eq!(
            missing,
            ParseError::UnknownShape {
                platform: "Livestorm",
                detail:
                    "JSON:API body without meta.webhook.event; top-level keys \"data\", \"links\""
                        .into(),
            }
        );
        let unknown = r#"{"data":{"id":"e1"},"meta":{"webhook":{"event":"people.deleted"}}}"#;
        assert_eq!(
            parse_with(None, unknown).unwrap_err(),
            ParseError::UnknownShape {
                platform: "Livestorm",
                detail: "unknown event \"people.deleted\"; top-level keys \"data\", \"meta\""
                    .into(),
            }
        );
        let neither = parse_with(None, r#"{"hello":1}"#).unwrap_err();
        assert!(
            matches!(neither, ParseError::UnknownShape { detail, .. } if detail.ends_with("keys \"hello\""))
        );
    }

    #[test]
    fn job_ended_is_ignored() {
        let body = r#"{"data":{"id":"j1","type":"jobs"},"meta":{"webhook":{"event":"job.ended"}}}"#;
        assert!(matches!(
            parse_with(None, body).unwrap(),
            Understanding::Ignored { .. }
        ));
    }

    #[test]
    fn publication_needs_a_time_or_the_published_event() {
        let event = |name: &str, published_at: &str| {
            let body = format!(
                r#"{{"data":{{"id":"e1","attributes":{{"published_at":{published_at}}}}},
                    "meta":{{"webhook":{{"event":"{name}"}}}}}}"#
            );
            facts_of(None, &body).0
        };
        assert_eq!(kinds(&event("event.created", "0")), ["webinar_seen"]);
        let created = event("event.created", "1700000000");
        assert_eq!(
            created[1].moment().unwrap(),
            &Moment::exact(utc("2023-11-14T22:13:20Z"))
        );
        let published = event("event.published", "null");
        assert_eq!(published[1].moment().unwrap().basis, TimeBasis::ReceivedAt);
    }

    #[test]
    fn sessions_start_and_end_at_their_times_or_on_arrival() {
        let session = |name: &str, attributes: &str| {
            let body = format!(
                r#"{{"data":{{"id":"s1","type":"sessions","attributes":{attributes}}},
                    "meta":{{"webhook":{{"event":"{name}"}}}}}}"#
            );
            facts_of(None, &body).0
        };
        let created = session(
            "session.created",
            r#"{"event_id":"e1","started_at":0,"ended_at":0}"#,
        );
        assert_eq!(kinds(&created), ["session_seen"]);
        let started = session("session.started", r#"{"event_id":"e1","started_at":0}"#);
        assert_eq!(started[1].moment().unwrap().basis, TimeBasis::ReceivedAt);
        let ended = session(
            "session.ended",
            r#"{"event_id":"e1","started_at":1700060460,"ended_at":1700063580,"duration":"3120"}"#,
        );
        assert_eq!(kinds(&ended), ["session_seen", "started", "ended"]);
        let Fact::Ended {
            at,
            duration_secs,
            session,
            ..
        } = &ended[2]
        else {
            panic!()
        };
        assert_eq!(at.at, utc("2023-11-15T15:53:00Z"));
        assert_eq!(
            (*duration_secs, session.as_deref()),
            (Some(3120), Some("s1"))
        );
        let body = r#"{"data":{"id":"s1","attributes":{"event_id":"e1","started_at":"soon"}},
            "meta":{"webhook":{"event":"session.started"}}}"#;
        assert_eq!(
            parse_with(None, body).unwrap_err(),
            ParseError::BadTime {
                field: "data.attributes.started_at".into(),
                value: "soon".into()
            }
        );
        let body = r#"{"data":{"id":"s1","attributes":{}},"meta":{"webhook":{"event":"session.created"}}}"#;
        assert_eq!(
            parse_with(None, body).unwrap_err(),
            ParseError::MissingField("data.attributes.event_id".into())
        );
    }

    #[test]
    fn people_values_may_sit_in_attributes_or_registrant_detail() {
        let nested = people(
            "people.attended",
            r#"{"email":" A@B.co ","created_at":1600000000,
                "registrant_detail":{"event_id":"e1","session_id":"s1","created_at":1700010000,
                "attendance_duration":"2730","attendance_rate":"87.5","messages_count":4}}"#,
        );
        let flat = people(
            "people.attended",
            r#"{"email":" A@B.co ","event_id":"e1","session_id":"s1","attendance_duration":2730,
                "attendance_rate":87.5,"messages_count":"4","registrant_detail":null}"#,
        );
        for body in [nested, flat] {
            let (facts, _) = facts_of(None, &body);
            let Fact::AttendanceSummary {
                attended,
                duration_secs,
                attendance_rate,
                engagement,
                ..
            } = &facts[1]
            else {
                panic!("{facts:?}")
            };
            assert!(*attended);
            assert_eq!((*duration_secs, *attendance_rate), (Some(2730), Some(87.5)));
            assert_eq!(engagement.as_ref().unwrap().messages, Some(4));
            assert_eq!(
                facts[0].person().unwrap().email.as_ref().unwrap().as_str(),
                "a@b.co"
            );
            assert_eq!(facts[0].session(), Some("s1"));
        }
    }

    #[test]
    fn where_both_give_a_value_the_registrant_detail_wins() {
        let body = people(
            "people.attended",
            r#"{"email":"a@b.co","event_id":"e1","session_id":"s0","attendance_duration":60,
                "messages_count":2,"updated_at":1700000000,
                "registrant_detail":{"session_id":"s1","attendance_duration":null,
                "messages_count":"7","updated_at":1800000000}}"#,
        );
        let Ok(Understanding::Facts {
            facts, observed_at, ..
        }) = parse_with(None, &body)
        else {
            panic!("expected facts")
        };
        let Fact::AttendanceSummary {
            duration_secs,
            engagement,
            ..
        } = &facts[1]
        else {
            panic!("{facts:?}")
        };
        assert_eq!(facts[0].session(), Some("s1"));
        assert_eq!(
            *duration_secs,
            Some(60),
            "a null in the detail leaves the person's"
        );
        assert_eq!(engagement.as_ref().unwrap().messages, Some(7));
        // The resource's own update time orders its events, not the detail's.
        assert_eq!(observed_at.unwrap().timestamp(), 1_700_000_000);
    }

    #[test]
    fn the_account_creation_time_is_not_the_registration_time() {
        let body = people(
            "people.attended",
            r#"{"email":"a@b.co","created_at":1600000000,"registrant_detail":{"event_id":"e1"}}"#,
        );
        let Fact::Registered { registered_at, .. } = &facts_of(None, &body).0[0] else {
            panic!()
        };
        assert_eq!(registered_at, &None);
        let body = people("people.registered", r#"{"email":"a@b.co","event_id":"e1"}"#);
        let Fact::Registered { registered_at, .. } = &facts_of(None, &body).0[0] else {
            panic!()
        };
        assert_eq!(registered_at.as_ref().unwrap().basis, TimeBasis::ReceivedAt);
    }

    #[test]
    fn outcomes_per_people_event() {
        let body = |event: &str| people(event, r#"{"email":"a@b.co","event_id":"e1"}"#);
        assert_eq!(
            kinds(&facts_of(None, &body("people.registered")).0),
            ["registered"]
        );
        let not_attended = facts_of(None, &body("people.not_attended")).0;
        assert!(matches!(
            not_attended[1],
            Fact::AttendanceSummary {
                attended: false,
                ..
            }
        ));
        let replay = facts_of(None, &body("people.watched_replay")).0;
        let Fact::ReplayViewed {
            at, watched_secs, ..
        } = &replay[1]
        else {
            panic!()
        };
        assert_eq!(
            (at.basis.clone(), *watched_secs),
            (TimeBasis::ReceivedAt, None)
        );
    }

    #[test]
    fn roles_from_role_or_guest_speaker_flag() {
        let role_of = |attributes: &str| {
            let body = people("people.registered", attributes);
            match &facts_of(None, &body).0[0] {
                Fact::Registered { role, .. } => *role,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            role_of(r#"{"email":"a@b.co","event_id":"e","role":"team_member"}"#),
            Role::Host
        );
        assert_eq!(
            role_of(r#"{"email":"a@b.co","event_id":"e","role":"guest_speaker"}"#),
            Role::GuestSpeaker
        );
        assert_eq!(
            role_of(
                r#"{"email":"a@b.co","event_id":"e","registrant_detail":{"is_guest_speaker":true}}"#
            ),
            Role::GuestSpeaker
        );
        assert_eq!(
            role_of(r#"{"email":"a@b.co","event_id":"e","role":"participant"}"#),
            Role::Audience
        );
    }

    #[test]
    fn anonymised_emails_are_kept() {
        let body = people(
            "people.registered",
            r#"{"email":"X1@Unknown.Livestorm.co","event_id":"e"}"#,
        );
        let person = facts_of(None, &body).0[0].person().cloned().unwrap();
        assert_eq!(person.email.unwrap().as_str(), "x1@unknown.livestorm.co");
    }

    #[test]
    fn event_ids_carry_the_session_for_people_events() {
        let id = |trigger: Option<&str>, body: &str| {
            event_id(&delivery(Platform::Livestorm, trigger, body))
        };
        let body = people(
            "people.registered",
            r#"{"registrant_detail":{"session_id":"s9"}}"#,
        );
        assert_eq!(id(None, &body).as_deref(), Some("p1:people.registered:s9"));
        let body = people("people.registered", r#"{"session_id":"s9"}"#);
        assert_eq!(id(None, &body).as_deref(), Some("p1:people.registered:s9"));
        let body = people("people.registered", r#"{}"#);
        assert_eq!(id(None, &body).as_deref(), Some("p1:people.registered"));
        let body = r#"{"data":{"id":"s1","attributes":{"session_id":"x"}},"meta":{"webhook":{"event":"session.started"}}}"#;
        assert_eq!(id(None, body).as_deref(), Some("s1:session.started"));
        assert_eq!(
            id(Some("event-starts"), r#"{"webinar":{"identify":"w"}}"#),
            None
        );
        assert_eq!(id(None, "[oops"), None);
    }

    #[test]
    fn room_links_name_the_session() {
        let s = |link: &str| session_from_room_link(link);
        assert_eq!(
            s("https://app.livestorm.co/p/w/live?s=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            s("https://x/live?lang=fr&s=abc&x=1#chat").as_deref(),
            Some("abc")
        );
        assert_eq!(s("https://x/live?s=abc#chat").as_deref(), Some("abc"));
        assert_eq!(s("https://x/live?ss=abc"), None);
        assert_eq!(s("https://x/live?s="), None);
        assert_eq!(s("https://x/live"), None);
    }

    #[test]
    fn the_trigger_decides_over_the_shape() {
        let body = r#"{"webinar":{"identify":"w","started_at":"2021-05-18T08:46:33Z",
            "ended_at":"2021-05-18T08:48:04Z","room_link":"https://x/live?s=s1"}}"#;
        assert_eq!(
            kinds(&facts_of(None, body).0),
            ["webinar_seen", "session_seen", "started", "ended"]
        );
        assert_eq!(
            kinds(&facts_of(Some("event-starts"), body).0),
            ["webinar_seen", "session_seen", "started"]
        );
        assert_eq!(
            kinds(&facts_of(Some("session-created"), body).0),
            ["webinar_seen", "session_seen"]
        );
        assert_eq!(
            parse_with(Some("event-deleted"), body).unwrap_err(),
            ParseError::UnknownTrigger {
                platform: "Livestorm",
                trigger: "event-deleted".into(),
                expected: EXPECTED_TRIGGERS,
            }
        );
        assert_eq!(
            parse_with(Some("new-registrant"), body).unwrap_err(),
            ParseError::MissingField("attendee".into())
        );
    }

    #[test]
    fn native_shapes_are_detected_without_a_trigger() {
        let detect = |body: &str| kinds(&facts_of(None, body).0);
        assert_eq!(
            detect(r#"{"webinar":{"identify":"w"}}"#),
            ["webinar_seen", "webinar_published"]
        );
        assert_eq!(
            detect(r#"{"webinar":{"identify":"w","started_at":"2021-05-18T08:46:33Z"}}"#),
            ["webinar_seen", "started"]
        );
        assert_eq!(
            detect(r#"{"webinar":{"identify":"w","attendees":[]}}"#),
            ["webinar_seen", "ended"]
        );
        assert_eq!(
            detect(r#"{"webinar":{"identify":"w"},"attendee":{"email":"a@b.co"}}"#),
            ["webinar_seen", "registered"]
        );
        assert_eq!(
            parse_with(None, r#"{"webinar":{"title":"x"}}"#).unwrap_err(),
            ParseError::MissingField("webinar.identify".into())
        );
    }

    #[test]
    fn running_counts_never_reach_webinar_details() {
        let body = r#"{"webinar":{"identify":"w","title":"T","nb_registered":5,"nb_attended":3}}"#;
        let Fact::WebinarSeen { details, .. } = &facts_of(None, body).0[0] else {
            panic!()
        };
        assert_eq!(
            details,
            &WebinarDetails {
                title: Some("T".into()),
                ..WebinarDetails::default()
            }
        );
    }

    #[test]
    fn attendance_keeps_the_platform_numbers_and_skips_nobody_entries() {
        let body = r#"{"webinar":{"identify":"w","ended_at":"2021-05-18T08:48:04Z","duration":91,
            "attendees":[{"identify":"a","attendance_duration":181,"is_attendance":null},
                         {"first_name":"nobody"}, 7, {"email":"c@d.co","is_attendance":false}]}}"#;
        let (facts, warnings) = facts_of(Some("event-ends"), body);
        assert_eq!(
            kinds(&facts),
            [
                "webinar_seen",
                "ended",
                "registered",
                "attendance_summary",
                "registered",
                "attendance_summary"
            ]
        );
        let Fact::AttendanceSummary {
            attended,
            duration_secs,
            ..
        } = &facts[3]
        else {
            panic!()
        };
        assert_eq!((*attended, *duration_secs), (true, Some(181)));
        assert!(matches!(
            facts[5],
            Fact::AttendanceSummary {
                attended: false,
                ..
            }
        ));
        assert_eq!(
            warnings,
            [
                "webinar.attendees[1]: neither email nor identify; skipped",
                "webinar.attendees[2]: not an object; skipped",
            ]
        );
    }

    #[test]
    fn custom_fields_from_objects_or_lists_without_identity_fields() {
        let mut warnings = Vec::new();
        let list: Value = serde_json::from_str(
            r#"[{"id":"email","value":"a@b.co"},{"id":"company","value":"Acme"},
                {"id":"topics","value":["A","B"]},{"value":"orphan"},{"id":"empty","value":null}]"#,
        )
        .unwrap();
        let fields = custom_fields(Some(&list), "f", &mut warnings);
        assert_eq!(
            fields.into_iter().collect::<Vec<_>>(),
            [
                ("company".to_owned(), "Acme".to_owned()),
                ("topics".to_owned(), "A; B".to_owned()),
            ]
        );
        assert_eq!(warnings, ["f[3]: no id; skipped"]);
        let object: Value = serde_json::from_str(r#"{"first_name":"A","size":42}"#).unwrap();
        let fields = custom_fields(Some(&object), "f", &mut warnings);
        assert_eq!(fields.get("size").map(String::as_str), Some("42"));
        assert_eq!(fields.len(), 1);
    }

    #[test]
    fn bad_bodies_get_precise_errors() {
        assert_eq!(
            parse_with(None, "[]").unwrap_err(),
            ParseError::NotAnObject("an array")
        );
        assert_eq!(parse_with(None, "  ").unwrap_err(), ParseError::EmptyBody);
        assert!(matches!(
            parse_with(None, r#"{"data":{"id":"#).unwrap_err(),
            ParseError::NotJson(_)
        ));
    }
}
