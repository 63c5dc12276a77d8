//! TagMango: `webinar.created.single` / `webinar.created.recurring` (one registrant and the
//! sessions they are booked on), `webinar.completed.all` (one attendee after the webinar) and
//! the `webinar.reminder.*` events, which are recognized and ignored.
//!
//! A TagMango body describes one participant and does not name its event, so the URL trigger
//! does; only a body with a `callList` can be understood without one. The
//! `*InCreatorTimezone` times carry a `Z` but are wall-clock times in `creatorTimezone`: they
//! are read only when the real UTC times are missing.
//!
//! This module must not do I/O, must not panic on any body, and must not invent times TagMango
//! does not send (a completion has no join time or duration).

use std::collections::HashSet;

use chrono::{NaiveDateTime, SecondsFormat};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;

use super::lenient::{List, Text};
use super::{body, time, Delivery, ParseError, Understanding};
use crate::facts::{
    Email, Fact, Moment, Origin, Person, Platform, Role, SessionDetails, WebinarDetails, WebinarRef,
};

pub const TRIGGERS: &[&str] = &[
    "webinar.created.single",
    "webinar.created.recurring",
    "webinar.completed.all",
    "webinar.reminder.15min",
    "webinar.reminder.1day",
    "webinar.reminder.all",
];

/// `TRIGGERS` joined, for `ParseError::UnknownTrigger` (a test keeps the two in step).
const EXPECTED_TRIGGERS: &str = "webinar.created.single, webinar.created.recurring, \
                                 webinar.completed.all, webinar.reminder.15min, \
                                 webinar.reminder.1day, webinar.reminder.all";

const PLATFORM: Platform = Platform::Tagmango;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Created { recurring: bool },
    Completed,
    Reminder(&'static str),
}

// ---- Stage 1: payload shapes -------------------------------------------------------------

/// Every TagMango body: one participant, with either a `callList` (created) or the webinar's
/// fields at the top level (completed, reminders).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Participant {
    name: Text,
    email: Text,
    /// Documented as a number, sent as a string too: kept as text either way.
    phone: Text,
    /// The participant's own UTC offset.
    timezone: Text,
    /// Entries are read one by one so that one odd entry is skipped, not the delivery.
    #[serde(rename = "callList")]
    call_list: Option<List<Value>>,
    mangoes: Text,
    webinar: Text,
    #[serde(rename = "webinarId")]
    webinar_id: Text,
    #[serde(rename = "webinarLink")]
    webinar_link: Text,
}

/// One `callList` entry: a session the participant is booked on.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Call {
    webinar: Text,
    webinar_id: Text,
    webinar_link: Text,
    webinar_from_time: Text,
    webinar_to_time: Text,
    webinar_from_time_in_creator_timezone: Text,
    webinar_to_time_in_creator_timezone: Text,
    creator_timezone: Text,
}

// ---- Entry points ----------------------------------------------------------------------

pub fn parse(delivery: &Delivery<'_>) -> Result<Understanding, ParseError> {
    let named = named_event(delivery.trigger)?;
    let participant: Participant = body::decode(delivery)?;
    match named.map_or_else(|| unnamed_event(&participant, delivery), Ok)? {
        Event::Created { recurring } => created(participant, recurring, delivery),
        Event::Completed => completed(participant),
        Event::Reminder(trigger) => Ok(Understanding::Ignored {
            reason: format!(
                "{trigger} is a TagMango reminder sent before a session; Rollcall keeps it in the \
                 journal but does not use reminders"
            ),
        }),
    }
}

/// TagMango sends no event id; the store hashes the body.
pub fn event_id(_delivery: &Delivery<'_>) -> Option<String> {
    None
}

fn named_event(trigger: Option<&str>) -> Result<Option<Event>, ParseError> {
    let Some(trigger) = trigger.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let known = TRIGGERS
        .iter()
        .find(|known| known.eq_ignore_ascii_case(trigger));
    let event = match known.copied() {
        Some("webinar.created.single") => Event::Created { recurring: false },
        Some("webinar.created.recurring") => Event::Created { recurring: true },
        Some("webinar.completed.all") => Event::Completed,
        Some(reminder) => Event::Reminder(reminder),
        None => {
            return Err(ParseError::UnknownTrigger {
                platform: PLATFORM.display_name(),
                trigger: trigger.to_owned(),
                expected: EXPECTED_TRIGGERS,
            })
        }
    };
    Ok(Some(event))
}

/// Without a trigger only a `callList` says what the body is; the flat shape is shared by
/// completions and reminders, which cannot be told apart.
fn unnamed_event(participant: &Participant, delivery: &Delivery<'_>) -> Result<Event, ParseError> {
    match &participant.call_list {
        Some(calls) => Ok(Event::Created {
            recurring: calls.0.len() > 1,
        }),
        None => Err(ParseError::UnknownShape {
            platform: PLATFORM.display_name(),
            detail: format!(
                "found {} but no callList: such a body is either webinar.completed.all or a \
                 webinar.reminder.*, which share one shape, so the URL must name the trigger \
                 (e.g. /hooks/tagmango/{{token}}/webinar.completed.all)",
                body::top_level_keys(delivery)
            ),
        }),
    }
}

// ---- Stage 2: facts --------------------------------------------------------------------

fn created(
    participant: Participant,
    recurring: bool,
    delivery: &Delivery<'_>,
) -> Result<Understanding, ParseError> {
    let person = person(&participant)?;
    let calls = participant
        .call_list
        .map(|calls| calls.0)
        .unwrap_or_default();
    if calls.is_empty() {
        return Err(ParseError::MissingField("callList".into()));
    }
    let mut booking = Booking {
        recurring,
        person,
        attendee_timezone: participant.timezone.into_option(),
        mangoes: participant.mangoes.into_option(),
        received: Moment::received(delivery.received_at),
        webinars: Vec::new(),
        facts: Vec::new(),
        registered: HashSet::new(),
        warnings: Vec::new(),
    };
    let mut first_error = None;
    for (index, raw) in calls.into_iter().enumerate() {
        if let Err(error) = booking.add(index, raw, delivery.source_zone) {
            booking
                .warnings
                .push(format!("callList[{index}] skipped: {error}"));
            first_error.get_or_insert(error);
        }
    }
    match first_error {
        // Nothing usable: a one-participant delivery is better quarantined than emptied.
        Some(error) if booking.webinars.is_empty() => Err(error),
        _ => Ok(booking.finish()),
    }
}

/// The facts of one created delivery, gathered entry by entry.
struct Booking {
    recurring: bool,
    person: Person,
    attendee_timezone: Option<String>,
    mangoes: Option<String>,
    /// Distinct webinars in order of first appearance (a handful at most, so a scan is fine).
    webinars: Vec<(String, WebinarDetails)>,
    /// The payload has no registration time: registrations are placed at receipt.
    received: Moment,
    /// Session and registration facts, in callList order.
    facts: Vec<Fact>,
    /// (webinar, session) pairs already registered, so a repeated entry adds nothing.
    registered: HashSet<(String, Option<String>)>,
    warnings: Vec<String>,
}

impl Booking {
    fn add(&mut self, index: usize, raw: Value, zone: Tz) -> Result<(), ParseError> {
        let call: Call = serde_json::from_value(raw).map_err(|e| ParseError::Invalid {
            field: format!("callList[{index}]"),
            message: e.to_string(),
        })?;
        let webinar_id = call
            .webinar_id
            .clone()
            .into_option()
            .ok_or_else(|| ParseError::MissingField(format!("callList[{index}].webinarId")))?;
        let start = self.call_time(index, &call, Edge::Start, zone)?;
        let end = self.call_time(index, &call, Edge::End, zone)?;
        let session = self.session_id(index, start.as_ref())?;
        self.see_webinar(&webinar_id, &call, start.clone(), end.clone());
        if !self
            .registered
            .insert((webinar_id.clone(), session.clone()))
        {
            return Ok(());
        }
        if let Some(session) = &session {
            let details = SessionDetails {
                scheduled_start: start,
                scheduled_end: end,
                timezone: call.creator_timezone.0.clone(),
                url: call.webinar_link.0.clone(),
                platform_status: None,
            };
            let webinar = webinar_ref(webinar_id.clone());
            let session = session.clone();
            self.facts.push(Fact::SessionSeen {
                webinar,
                session,
                details,
            });
        }
        self.register(webinar_id, session, &call);
        Ok(())
    }

    /// A recurring webinar's sessions are named by their start instant; a single one has none.
    fn session_id(
        &self,
        index: usize,
        start: Option<&Moment>,
    ) -> Result<Option<String>, ParseError> {
        if !self.recurring {
            return Ok(None);
        }
        let start = start.ok_or_else(|| {
            ParseError::MissingField(format!("callList[{index}].webinarFromTime"))
        })?;
        Ok(Some(start.at.to_rfc3339_opts(SecondsFormat::Secs, true)))
    }

    /// A call's start or end. An unreadable time is only a warning, except a recurring
    /// webinar's start, which names the session.
    fn call_time(
        &mut self,
        index: usize,
        call: &Call,
        edge: Edge,
        zone: Tz,
    ) -> Result<Option<Moment>, ParseError> {
        match call_moment(call, edge, zone, index) {
            Err(error) if !(self.recurring && edge == Edge::Start) => {
                self.warnings.push(format!("{error}; left unknown"));
                Ok(None)
            }
            other => other,
        }
    }

    fn see_webinar(&mut self, id: &str, call: &Call, start: Option<Moment>, end: Option<Moment>) {
        let position = match self.webinars.iter().position(|(known, _)| known == id) {
            Some(position) => position,
            None => {
                let details = WebinarDetails {
                    recurrence: Some(
                        if self.recurring {
                            "recurring"
                        } else {
                            "single"
                        }
                        .into(),
                    ),
                    ..WebinarDetails::default()
                };
                self.webinars.push((id.to_owned(), details));
                self.webinars.len().saturating_sub(1)
            }
        };
        let Some((_, details)) = self.webinars.get_mut(position) else {
            return;
        };
        details.title = details.title.take().or_else(|| call.webinar.0.clone());
        details.url = details.url.take().or_else(|| call.webinar_link.0.clone());
        details.timezone = details
            .timezone
            .take()
            .or_else(|| call.creator_timezone.0.clone());
        if !self.recurring {
            details.scheduled_start = details.scheduled_start.take().or(start);
            details.scheduled_end = details.scheduled_end.take().or(end);
        }
        if let Some(mangoes) = &self.mangoes {
            details
                .extra
                .entry("mangoes".into())
                .or_insert_with(|| mangoes.clone());
        }
    }

    fn register(&mut self, webinar_id: String, session: Option<String>, call: &Call) {
        let custom_fields = self
            .attendee_timezone
            .iter()
            .map(|tz| ("timezone".to_owned(), tz.clone()))
            .collect();
        self.facts.push(Fact::Registered {
            webinar: webinar_ref(webinar_id),
            session,
            person: self.person.clone(),
            registered_at: Some(self.received.clone()),
            status: None,
            role: Role::Audience,
            origin: Origin::default(),
            custom_fields,
            join_url: call.webinar_link.0.clone(),
        });
    }

    fn finish(self) -> Understanding {
        let mut facts: Vec<Fact> = self
            .webinars
            .into_iter()
            .map(|(id, details)| Fact::WebinarSeen {
                webinar: webinar_ref(id),
                details,
            })
            .collect();
        facts.extend(self.facts);
        Understanding::Facts {
            facts,
            observed_at: None,
            warnings: self.warnings,
        }
    }
}

fn completed(participant: Participant) -> Result<Understanding, ParseError> {
    let person = person(&participant)?;
    let webinar = webinar_ref(
        participant
            .webinar_id
            .into_option()
            .ok_or_else(|| ParseError::MissingField("webinarId".into()))?,
    );
    let mut details = WebinarDetails {
        title: participant.webinar.into_option(),
        ..WebinarDetails::default()
    };
    if let Some(link) = participant.webinar_link.into_option() {
        details.extra.insert("recording_url".into(), link);
    }
    let facts = vec![
        Fact::WebinarSeen {
            webinar: webinar.clone(),
            details,
        },
        Fact::AttendanceSummary {
            webinar,
            session: None,
            person,
            attended: true,
            joined_at: None,
            left_at: None,
            duration_secs: None,
            engaged_secs: None,
            attendance_rate: None,
            role: Role::Audience,
            engagement: None,
        },
    ];
    Ok(Understanding::facts(facts))
}

/// The one participant a TagMango body is about; without an email there is no one.
fn person(participant: &Participant) -> Result<Person, ParseError> {
    let raw = participant
        .email
        .as_deref()
        .ok_or_else(|| ParseError::MissingField("email".into()))?;
    let email = Email::parse(raw).ok_or_else(|| ParseError::Invalid {
        field: "email".into(),
        message: format!("not an email address: {raw:?}"),
    })?;
    Ok(Person {
        email: Some(email),
        name: participant.name.0.clone(),
        phone: participant.phone.0.clone(),
        ..Person::default()
    })
}

// ---- Times -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    Start,
    End,
}

/// A call's start or end: the real UTC field, else the creator-zone field read in
/// `creatorTimezone`. `Ok(None)` when the call has neither.
fn call_moment(
    call: &Call,
    edge: Edge,
    zone: Tz,
    index: usize,
) -> Result<Option<Moment>, ParseError> {
    let (utc_key, local_key, utc, local) = match edge {
        Edge::Start => (
            "webinarFromTime",
            "webinarFromTimeInCreatorTimezone",
            &call.webinar_from_time,
            &call.webinar_from_time_in_creator_timezone,
        ),
        Edge::End => (
            "webinarToTime",
            "webinarToTimeInCreatorTimezone",
            &call.webinar_to_time,
            &call.webinar_to_time_in_creator_timezone,
        ),
    };
    if let Some(at) = utc.as_deref().and_then(time::instant) {
        return Ok(Some(Moment::exact(at)));
    }
    let creator_zone = call.creator_timezone.as_deref();
    match (utc.as_deref(), local.as_deref()) {
        (_, Some(raw)) => creator_local(raw, creator_zone, zone)
            .map(Some)
            .ok_or_else(|| ParseError::BadTime {
                field: format!("callList[{index}].{local_key}"),
                value: raw.into(),
            }),
        (Some(raw), None) => Err(ParseError::BadTime {
            field: format!("callList[{index}].{utc_key}"),
            value: raw.into(),
        }),
        (None, None) => Ok(None),
    }
}

/// A creator-zone time: its `Z` is not UTC but a wall-clock time in `creator_zone` (a UTC
/// offset, or an IANA name). Without a usable zone it is read in the source's zone, marked
/// assumed.
fn creator_local(raw: &str, creator_zone: Option<&str>, source_zone: Tz) -> Option<Moment> {
    let trimmed = raw.trim();
    let wall = match trimmed.strip_suffix(['Z', 'z']) {
        Some(wall) => wall,
        None => match time::instant(trimmed) {
            // An explicit offset other than the mislabelled `Z` is taken at its word.
            Some(at) => return Some(Moment::exact(at)),
            None => trimmed,
        },
    };
    let local = time::naive(wall)?;
    match creator_zone.and_then(|z| in_named_zone(local, z)) {
        Some(at) => Some(at),
        None => Some(Moment::assumed(
            time::in_zone(local, &source_zone)?,
            source_zone.name(),
        )),
    }
}

fn in_named_zone(local: NaiveDateTime, zone: &str) -> Option<Moment> {
    let zone = zone.trim();
    let bare = zone.trim_start_matches("UTC").trim_start_matches("GMT");
    if let Some(offset) = time::offset(zone).or_else(|| time::offset(bare)) {
        return time::in_zone(local, &offset).map(Moment::exact);
    }
    let iana: Tz = zone.parse().ok()?;
    time::in_zone(local, &iana).map(Moment::exact)
}

fn webinar_ref(id: String) -> WebinarRef {
    WebinarRef::new(PLATFORM, id)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::facts::TimeBasis;
    use crate::platforms::test_support::delivery;

    const DOC_CREATED: &str = r#"{
        "name": "John Doe", "email": "john@example.com", "phone": 1234567890, "timezone": "+05:30",
        "callList": [{
            "webinar": "Introduction to Digital Marketing", "webinarId": "634fc35ddaf58580e2418c40",
            "webinarLink": "https://meet.google.com/abc-defg-hij",
            "webinarFromTime": "2024-03-15T10:00:00.000Z", "webinarToTime": "2024-03-15T11:00:00.000Z",
            "webinarFromTimeInCreatorTimezone": "2024-03-15T15:30:00.000Z",
            "webinarToTimeInCreatorTimezone": "2024-03-15T16:30:00.000Z",
            "creatorTimezone": "+05:30"}],
        "mangoes": "mango1, mango2, mango3"}"#;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn run(trigger: Option<&str>, body: &str) -> Result<Understanding, ParseError> {
        parse(&delivery(Platform::Tagmango, trigger, body))
    }

    fn facts_of(trigger: Option<&str>, body: &str) -> (Vec<Fact>, Vec<String>) {
        match run(trigger, body).unwrap() {
            Understanding::Facts {
                facts, warnings, ..
            } => (facts, warnings),
            other => panic!("expected facts, got {other:?}"),
        }
    }

    fn call(json: &str) -> Call {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn triggers_and_their_error_list_agree() {
        assert_eq!(EXPECTED_TRIGGERS, TRIGGERS.join(", "));
        let err = run(Some("webinar.deleted"), DOC_CREATED).unwrap_err();
        assert!(
            matches!(err, ParseError::UnknownTrigger { trigger, .. } if trigger == "webinar.deleted")
        );
    }

    #[test]
    fn single_webinar_is_one_registration_without_a_session() {
        let (facts, warnings) = facts_of(Some("webinar.created.single"), DOC_CREATED);
        assert!(warnings.is_empty());
        let [Fact::WebinarSeen { webinar, details }, Fact::Registered {
            session,
            person,
            registered_at,
            custom_fields,
            ..
        }] = facts.as_slice()
        else {
            panic!("{facts:?}")
        };
        assert_eq!(webinar.id, "634fc35ddaf58580e2418c40");
        assert_eq!(
            details.title.as_deref(),
            Some("Introduction to Digital Marketing")
        );
        assert_eq!(
            details.url.as_deref(),
            Some("https://meet.google.com/abc-defg-hij")
        );
        assert_eq!(details.timezone.as_deref(), Some("+05:30"));
        assert_eq!(
            details.extra.get("mangoes").map(String::as_str),
            Some("mango1, mango2, mango3")
        );
        assert_eq!(
            details.scheduled_start,
            Some(Moment::exact(utc("2024-03-15T10:00:00Z")))
        );
        assert_eq!(
            details.scheduled_end,
            Some(Moment::exact(utc("2024-03-15T11:00:00Z")))
        );
        assert_eq!(*session, None);
        assert_eq!(person.phone.as_deref(), Some("1234567890"));
        assert_eq!(person.name.as_deref(), Some("John Doe"));
        assert_eq!(registered_at.as_ref().unwrap().basis, TimeBasis::ReceivedAt);
        assert_eq!(
            custom_fields.get("timezone").map(String::as_str),
            Some("+05:30")
        );
    }

    #[test]
    fn without_a_trigger_a_call_list_means_created() {
        let (facts, _) = facts_of(None, DOC_CREATED);
        assert_eq!(facts[1].session(), None, "one entry: single");
    }

    #[test]
    fn creator_zone_times_agree_with_the_real_utc_times_in_the_doc_example() {
        let c = call(
            r#"{"webinarFromTime": "2024-03-15T10:00:00.000Z",
                "webinarFromTimeInCreatorTimezone": "2024-03-15T15:30:00.000Z",
                "creatorTimezone": "+05:30"}"#,
        );
        let real = call_moment(&c, Edge::Start, chrono_tz::UTC, 0)
            .unwrap()
            .unwrap();
        let local =
            creator_local("2024-03-15T15:30:00.000Z", Some("+05:30"), chrono_tz::UTC).unwrap();
        assert_eq!(real, local);
        assert_eq!(local, Moment::exact(utc("2024-03-15T10:00:00Z")));
    }

    #[test]
    fn creator_zone_times_are_used_only_when_the_utc_ones_are_missing() {
        let zone = chrono_tz::America::New_York;
        let only_local = call(
            r#"{"webinarFromTimeInCreatorTimezone": "2024-03-15T15:30:00.000Z", "creatorTimezone": "+05:30"}"#,
        );
        assert_eq!(
            call_moment(&only_local, Edge::Start, zone, 0).unwrap(),
            Some(Moment::exact(utc("2024-03-15T10:00:00Z")))
        );
        let iana = call(
            r#"{"webinarToTimeInCreatorTimezone": "2024-07-01T09:00:00Z", "creatorTimezone": "Europe/Paris"}"#,
        );
        assert_eq!(
            call_moment(&iana, Edge::End, zone, 0).unwrap(),
            Some(Moment::exact(utc("2024-07-01T07:00:00Z")))
        );
        let no_zone = call(r#"{"webinarFromTimeInCreatorTimezone": "2024-07-01T09:00:00.000Z"}"#);
        assert_eq!(
            call_moment(&no_zone, Edge::Start, zone, 0).unwrap(),
            Some(Moment::assumed(
                utc("2024-07-01T13:00:00Z"),
                "America/New_York"
            ))
        );
        let bad = call(r#"{"webinarFromTime": "soon", "creatorTimezone": "+05:30"}"#);
        assert_eq!(
            call_moment(&bad, Edge::Start, zone, 2).unwrap_err(),
            ParseError::BadTime {
                field: "callList[2].webinarFromTime".into(),
                value: "soon".into()
            }
        );
        assert_eq!(call_moment(&call("{}"), Edge::End, zone, 0).unwrap(), None);
    }

    const RECURRING: &str = r#"{
        "name": "李雷", "email": " LiLei@Example.CN ", "phone": "+86 138 0000 0000", "timezone": null,
        "callList": [
            {"webinar": "Daily standup", "webinarId": "w1", "webinarLink": "https://meet/x",
             "webinarFromTime": "2024-03-15T10:00:00.000Z", "webinarToTime": "2024-03-15T11:00:00.000Z",
             "creatorTimezone": "+05:30"},
            {"webinar": "Daily standup", "webinarId": "w1", "webinarLink": "https://meet/x",
             "webinarFromTimeInCreatorTimezone": "2024-03-16T15:30:00.000Z",
             "webinarToTimeInCreatorTimezone": "2024-03-16T16:30:00.000Z", "creatorTimezone": "+05:30"},
            {"webinar": "Daily standup", "webinarId": "w1",
             "webinarFromTime": "2024-03-15T10:00:00.000Z"},
            {"webinar": "Daily standup", "webinarLink": "https://meet/x"},
            "junk"
        ]}"#;

    #[test]
    fn recurring_sessions_are_named_by_their_start_and_each_registered() {
        for trigger in [None, Some("webinar.created.recurring")] {
            let (facts, warnings) = facts_of(trigger, RECURRING);
            let kinds: Vec<_> = facts.iter().map(Fact::kind).collect();
            assert_eq!(
                kinds,
                [
                    "webinar_seen",
                    "session_seen",
                    "registered",
                    "session_seen",
                    "registered"
                ]
            );
            let Fact::WebinarSeen { details, .. } = &facts[0] else {
                panic!()
            };
            assert_eq!(
                details.scheduled_start, None,
                "a series has no single start"
            );
            assert_eq!(details.recurrence.as_deref(), Some("recurring"));
            assert_eq!(facts[1].session(), Some("2024-03-15T10:00:00Z"));
            assert_eq!(facts[2].session(), Some("2024-03-15T10:00:00Z"));
            assert_eq!(facts[3].session(), Some("2024-03-16T10:00:00Z"));
            let Fact::SessionSeen { details, .. } = &facts[3] else {
                panic!()
            };
            assert_eq!(
                details.scheduled_end,
                Some(Moment::exact(utc("2024-03-16T11:00:00Z")))
            );
            let Fact::Registered { person, .. } = &facts[4] else {
                panic!()
            };
            assert_eq!(person.email.as_ref().unwrap().as_str(), "lilei@example.cn");
            assert_eq!(person.phone.as_deref(), Some("+86 138 0000 0000"));
            assert_eq!(warnings.len(), 2, "{warnings:?}");
            assert_eq!(
                warnings[0],
                "callList[3] skipped: missing field `callList[3].webinarId`"
            );
            assert!(
                warnings[1].starts_with("callList[4] skipped: field `callList[4]`: invalid type")
            );
        }
    }

    #[test]
    fn a_recurring_session_needs_a_start() {
        let body = r#"{"email": "a@b.co", "callList": [{"webinarId": "w1"}]}"#;
        assert_eq!(
            run(Some("webinar.created.recurring"), body).unwrap_err(),
            ParseError::MissingField("callList[0].webinarFromTime".into())
        );
        let (facts, _) = facts_of(Some("webinar.created.single"), body);
        assert_eq!(facts.len(), 2, "a single webinar does not need one");
    }

    #[test]
    fn completed_is_an_attendance_with_no_times() {
        let body = r#"{"name": "John Doe", "email": "John.Doe@Example.com", "phone": "+1234567890",
            "webinar": "Introduction to Digital Marketing", "webinarId": "6149b1e5612c4e5fd96041d3",
            "webinarLink": "https://example.com/webinar/recording/123"}"#;
        let (facts, _) = facts_of(Some("webinar.completed.all"), body);
        let [Fact::WebinarSeen { details, .. }, Fact::AttendanceSummary {
            attended,
            joined_at,
            duration_secs,
            person,
            session,
            ..
        }] = facts.as_slice()
        else {
            panic!("{facts:?}")
        };
        assert_eq!(
            details.extra.get("recording_url").map(String::as_str),
            Some("https://example.com/webinar/recording/123")
        );
        assert_eq!(details.url, None, "the link is the recording, not the room");
        assert!(*attended && joined_at.is_none() && duration_secs.is_none() && session.is_none());
        assert_eq!(
            person.email.as_ref().unwrap().as_str(),
            "john.doe@example.com"
        );

        assert_eq!(
            run(Some("webinar.completed.all"), r#"{"email": "a@b.co"}"#).unwrap_err(),
            ParseError::MissingField("webinarId".into())
        );
    }

    #[test]
    fn flat_bodies_need_the_trigger_in_the_url() {
        let err = run(None, r#"{"email": "a@b.co", "webinarId": "w1"}"#).unwrap_err();
        let ParseError::UnknownShape { platform, detail } = err else {
            panic!()
        };
        assert_eq!(platform, "TagMango");
        assert!(
            detail.contains("/hooks/tagmango/{token}/webinar.completed.all"),
            "{detail}"
        );
        assert!(
            detail.starts_with(r#"found keys "email", "webinarId" but no callList"#),
            "{detail}"
        );
    }

    #[test]
    fn reminders_are_ignored_by_name() {
        for trigger in [
            "webinar.reminder.15min",
            "webinar.reminder.1day",
            "webinar.reminder.all",
        ] {
            let Understanding::Ignored { reason } =
                run(Some(trigger), r#"{"email": "a@b.co"}"#).unwrap()
            else {
                panic!()
            };
            assert!(reason.starts_with(trigger), "{reason}");
        }
    }

    #[test]
    fn a_participant_needs_an_email() {
        for trigger in ["webinar.created.single", "webinar.completed.all"] {
            assert_eq!(
                run(
                    Some(trigger),
                    r#"{"name": "X", "webinarId": "w", "callList": [{"webinarId": "w"}]}"#
                )
                .unwrap_err(),
                ParseError::MissingField("email".into())
            );
        }
        assert!(matches!(
            run(Some("webinar.completed.all"), r#"{"email": "nobody", "webinarId": "w"}"#).unwrap_err(),
            ParseError::Invalid { field, .. } if field == "email"
        ));
        assert_eq!(
            run(
                Some("webinar.created.single"),
                r#"{"email": "a@b.co", "callList": null}"#
            )
            .unwrap_err(),
            ParseError::MissingField("callList".into())
        );
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused_precisely() {
        assert_eq!(
            run(None, "[{}]").unwrap_err(),
            ParseError::NotAnObject("an array")
        );
        assert!(matches!(
            run(None, r#"{"callList": [{"#).unwrap_err(),
            ParseError::NotJson(_)
        ));
        assert_eq!(event_id(&delivery(Platform::Tagmango, None, "{}")), None);
    }
}
