//! GoTo Webinar webhooks: `registrant.added`, `registrant.joined`, `webinar.created` and
//! `webinar.changed`, each body naming its event in `eventName` (any letter case).
//!
//! This module owns reading those bodies into facts: keys beyond 2^53 kept exact as strings,
//! `status` in any case, `joinTime` as ISO or epoch milliseconds, `times` as objects or pairs,
//! and the custom registration `responses` in whichever shape they arrive. It must not invent
//! what GoTo does not send: there is no leave or duration event, so no attendance summary is
//! ever derived from a join. It does no I/O and must not panic on any input.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::Value;

use super::body::{self, decode};
use super::lenient::{List, Text};
use super::time;
use super::{Delivery, ParseError, Understanding};
use crate::facts::{
    Email, Fact, Moment, Origin, Person, Platform, RegistrationStatus, ScheduledTime,
    WebinarDetails, WebinarRef,
};

/// How error messages name the platform.
const PLATFORM: &str = "GoTo Webinar";

/// Every GoTo body names its own event, so the URL carries no trigger.
pub const TRIGGERS: &[&str] = &[];

/// What every delivery carries, read first to pick the payload shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Envelope {
    event_name: Text,
    event_key: Text,
    timestamp: Text,
}

/// The webinar as registrant events describe it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WebinarHead {
    webinar_key: Text,
    webinar_title: Text,
    experience_type: Text,
    recurrence_type: Text,
    webinar_creator_key: Text,
}

/// `registrant.added`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RegistrantAdded {
    #[serde(flatten)]
    webinar: WebinarHead,
    registrant_key: Text,
    first_name: Text,
    last_name: Text,
    email: Text,
    phone: Text,
    address: Text,
    city: Text,
    state: Text,
    country: Text,
    zip_code: Text,
    organization: Text,
    job_title: Text,
    /// Documented with a capital I; some senders write it in lower case.
    #[serde(rename = "Industry")]
    industry_documented: Text,
    industry: Text,
    comments: Text,
    registration_date: Text,
    number_of_employees: Text,
    purchasing_role: Text,
    purchasing_time_frame: Text,
    status: Text,
    registration_source: Text,
    join_url: Text,
    /// Documented as a string but seen as lists of arrays or objects: read by hand.
    responses: Option<Value>,
}

/// `registrant.joined`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RegistrantJoined {
    #[serde(flatten)]
    webinar: WebinarHead,
    session_key: Text,
    registrant_key: Text,
    first_name: Text,
    last_name: Text,
    email: Text,
    join_time: Text,
}

/// `webinar.created` and `webinar.changed`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WebinarEvent {
    #[serde(flatten)]
    webinar: WebinarHead,
    description: Text,
    organizer_key: Text,
    account_key: Text,
    recurrence_key: Text,
    webinar_creation_date: Text,
    status: Text,
    times: List<Span>,
    start_time: Text,
    end_time: Text,
    time_zone: Text,
}

/// One entry of `times`: `{startTime, endTime}` or `[start, end]`; anything else is kept as a
/// lone value so a whole list written flat (`[start, end]`) can still be recognised.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Span {
    Object {
        #[serde(default, rename = "startTime")]
        start: Text,
        #[serde(default, rename = "endTime")]
        end: Text,
    },
    Pair(Vec<Text>),
    Lone(Text),
}

/// Understands one GoTo delivery.
pub fn parse(delivery: &Delivery<'_>) -> Result<Understanding, ParseError> {
    let envelope: Envelope = decode(delivery)?;
    let name = envelope
        .event_name
        .as_deref()
        .ok_or_else(|| ParseError::MissingField("eventName".into()))?
        .to_ascii_lowercase();
    let mut warnings = Vec::new();
    let facts = match name.as_str() {
        "registrant.added" => registrant_added(&decode(delivery)?, delivery, &mut warnings)?,
        "registrant.joined" => registrant_joined(&decode(delivery)?, delivery, &mut warnings)?,
        "webinar.created" => webinar_created(&decode(delivery)?, delivery, &mut warnings)?,
        "webinar.changed" => {
            webinar_changed(&decode(delivery)?, &envelope, delivery, &mut warnings)?
        }
        _ => {
            let keys = body::top_level_keys(delivery);
            let detail = format!("unknown eventName {name:?}; top-level {keys}");
            return Err(ParseError::UnknownShape {
                platform: PLATFORM,
                detail,
            });
        }
    };
    let observed_at = observed_at(&envelope.timestamp, &mut warnings);
    Ok(Understanding::Facts {
        facts,
        observed_at,
        warnings,
    })
}

/// GoTo's `eventKey`, unique per event.
pub fn event_id(delivery: &Delivery<'_>) -> Option<String> {
    decode::<Envelope>(delivery).ok()?.event_key.into_option()
}

fn registrant_added(
    payload: &RegistrantAdded,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Fact>, ParseError> {
    let webinar = webinar_ref(&payload.webinar)?;
    let person = Person {
        phone: text(&payload.phone),
        organization: text(&payload.organization),
        job_title: text(&payload.job_title),
        city: text(&payload.city),
        country: text(&payload.country),
        ..person(
            &payload.registrant_key,
            &payload.first_name,
            &payload.last_name,
            &payload.email,
        )?
    };
    let registered_at = required_time("registrationDate", &payload.registration_date, delivery)?;
    let registered = Fact::Registered {
        webinar: webinar.clone(),
        session: None,
        person,
        registered_at: Some(registered_at),
        status: payload.status.as_deref().and_then(registration_status),
        role: Default::default(),
        origin: Origin {
            source: text(&payload.registration_source),
            ..Origin::default()
        },
        custom_fields: custom_fields(payload, warnings),
        join_url: text(&payload.join_url),
    };
    let details = head_details(&payload.webinar);
    Ok(vec![Fact::WebinarSeen { webinar, details }, registered])
}

fn registrant_joined(
    payload: &RegistrantJoined,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Fact>, ParseError> {
    let webinar = webinar_ref(&payload.webinar)?;
    let person = person(
        &payload.registrant_key,
        &payload.first_name,
        &payload.last_name,
        &payload.email,
    )?;
    let at = required_time("joinTime", &payload.join_time, delivery)?;
    if payload.session_key.as_deref().is_none() {
        warnings.push("sessionKey is missing: the join is not tied to a session".into());
    }
    let joined = Fact::Joined {
        webinar: webinar.clone(),
        session: text(&payload.session_key),
        person,
        at,
    };
    let details = head_details(&payload.webinar);
    Ok(vec![Fact::WebinarSeen { webinar, details }, joined])
}

fn webinar_created(
    payload: &WebinarEvent,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Fact>, ParseError> {
    let webinar = webinar_ref(&payload.webinar)?;
    let details = WebinarDetails {
        platform_status: text(&payload.status),
        ..full_details(payload, delivery, warnings)
    };
    Ok(vec![Fact::WebinarSeen { webinar, details }])
}

/// `status` says what changed: `DELETED` removes the webinar, anything else (documented:
/// `UPDATED`) carries its new properties. The status describes the change, not the webinar, so
/// it is not kept as the webinar's own status.
fn webinar_changed(
    payload: &WebinarEvent,
    envelope: &Envelope,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Fact>, ParseError> {
    let webinar = webinar_ref(&payload.webinar)?;
    let at = required_time("timestamp", &envelope.timestamp, delivery)?;
    let deleted = payload
        .status
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("deleted"));
    if deleted {
        return Ok(vec![Fact::WebinarDeleted { webinar, at }]);
    }
    let details = full_details(payload, delivery, warnings);
    Ok(vec![Fact::WebinarChanged {
        webinar,
        at,
        details,
    }])
}

fn webinar_ref(head: &WebinarHead) -> Result<WebinarRef, ParseError> {
    let key = head
        .webinar_key
        .as_deref()
        .ok_or_else(|| ParseError::MissingField("webinarKey".into()))?;
    Ok(WebinarRef::new(Platform::Gotowebinar, key))
}

fn head_details(head: &WebinarHead) -> WebinarDetails {
    let mut extra = BTreeMap::new();
    insert(&mut extra, "webinarCreatorKey", &head.webinar_creator_key);
    WebinarDetails {
        title: text(&head.webinar_title),
        kind: text(&head.experience_type),
        recurrence: text(&head.recurrence_type),
        extra,
        ..WebinarDetails::default()
    }
}

fn full_details(
    payload: &WebinarEvent,
    delivery: &Delivery<'_>,
    warnings: &mut Vec<String>,
) -> WebinarDetails {
    let zone = webinar_zone(&payload.time_zone, delivery.source_zone);
    let mut details = head_details(&payload.webinar);
    for (key, value) in [
        ("organizerKey", &payload.organizer_key),
        ("accountKey", &payload.account_key),
        ("recurrenceKey", &payload.recurrence_key),
    ] {
        insert(&mut details.extra, key, value);
    }
    WebinarDetails {
        description: text(&payload.description),
        timezone: text(&payload.time_zone),
        created_at: optional_time(
            "webinarCreationDate",
            &payload.webinar_creation_date,
            zone,
            warnings,
        )
        .map(|m| m.at),
        scheduled_start: optional_time("startTime", &payload.start_time, zone, warnings),
        scheduled_end: optional_time("endTime", &payload.end_time, zone, warnings),
        schedule: schedule(&payload.times.0, zone, warnings),
        ..details
    }
}

/// The webinar's own zone reads any zone-less time it sends; the source's zone otherwise.
fn webinar_zone(time_zone: &Text, source_zone: Tz) -> Tz {
    time_zone
        .as_deref()
        .and_then(|name| name.parse().ok())
        .unwrap_or(source_zone)
}

fn schedule(spans: &[Span], zone: Tz, warnings: &mut Vec<String>) -> Vec<ScheduledTime> {
    // `times: [start, end]` written flat rather than as a list of pairs.
    if let [Span::Lone(start), Span::Lone(end)] = spans {
        return scheduled(0, start, end, zone, warnings)
            .into_iter()
            .collect();
    }
    let mut out = Vec::new();
    for (index, span) in spans.iter().enumerate() {
        let entry = match span {
            Span::Object { start, end } => scheduled(index, start, end, zone, warnings),
            Span::Pair(pair) => match pair.as_slice() {
                [start, rest @ ..] => scheduled(
                    index,
                    start,
                    rest.first().unwrap_or(&Text(None)),
                    zone,
                    warnings,
                ),
                [] => None,
            },
            Span::Lone(_) => {
                warnings.push(format!("times[{index}]: not a start/end pair; skipped"));
                None
            }
        };
        out.extend(entry);
    }
    out
}

fn scheduled(
    index: usize,
    start: &Text,
    end: &Text,
    zone: Tz,
    warnings: &mut Vec<String>,
) -> Option<ScheduledTime> {
    let field = format!("times[{index}]");
    let Some(start) = optional_time(&format!("{field}.startTime"), start, zone, warnings) else {
        warnings.push(format!("{field}: no readable start time; skipped"));
        return None;
    };
    let end = optional_time(&format!("{field}.endTime"), end, zone, warnings);
    Some(ScheduledTime {
        start: start.at,
        end: end.map(|m| m.at),
    })
}

fn person(key: &Text, first: &Text, last: &Text, email: &Text) -> Result<Person, ParseError> {
    let person = Person {
        email: email.as_deref().and_then(Email::parse),
        platform_id: text(key),
        first_name: text(first),
        last_name: text(last),
        ..Person::default()
    };
    if person.email.is_none() && person.platform_id.is_none() {
        return Err(ParseError::MissingField("email".into()));
    }
    Ok(person)
}

fn registration_status(raw: &str) -> Option<RegistrationStatus> {
    match raw.to_ascii_lowercase().as_str() {
        "approved" => Some(RegistrationStatus::Approved),
        "waiting" => Some(RegistrationStatus::Waiting),
        "cancelled" | "canceled" => Some(RegistrationStatus::Cancelled),
        "denied" => Some(RegistrationStatus::Denied),
        _ => None,
    }
}

/// The registration form's standard extras under GoTo's own names, then each custom question
/// keyed by its text.
fn custom_fields(
    payload: &RegistrantAdded,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let industry = match payload.industry_documented.as_deref() {
        Some(_) => &payload.industry_documented,
        None => &payload.industry,
    };
    let mut fields = BTreeMap::new();
    for (key, value) in [
        ("address", &payload.address),
        ("state", &payload.state),
        ("zipCode", &payload.zip_code),
        ("Industry", industry),
        ("comments", &payload.comments),
        ("numberOfEmployees", &payload.number_of_employees),
        ("purchasingRole", &payload.purchasing_role),
        ("purchasingTimeFrame", &payload.purchasing_time_frame),
    ] {
        insert(&mut fields, key, value);
    }
    if let Some(responses) = &payload.responses {
        read_responses(responses, &mut fields, warnings);
    }
    fields
}

/// `responses` as documented (`[[questionText, questionType, [answerText...]], ...]`), as a
/// list of objects, as one object or one triple, or as a string holding any of those.
fn read_responses(
    value: &Value,
    fields: &mut BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) {
    match value {
        Value::Null => {}
        Value::String(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(parsed @ (Value::Array(_) | Value::Object(_))) => {
                read_responses(&parsed, fields, warnings)
            }
            _ => insert_str(fields, "responses", raw),
        },
        Value::Array(items) if items.first().is_some_and(Value::is_string) => {
            read_response(0, value, fields, warnings)
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                read_response(index, item, fields, warnings);
            }
        }
        Value::Object(_) => read_response(0, value, fields, warnings),
        Value::Bool(_) | Value::Number(_) => {
            warnings.push("responses: neither a list nor an object; ignored".into())
        }
    }
}

fn read_response(
    index: usize,
    item: &Value,
    fields: &mut BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) {
    let (question, answers) = match item {
        Value::Array(parts) => {
            let answers = if parts.len() >= 3 {
                parts.get(2)
            } else {
                parts.get(1)
            };
            (parts.first(), answers)
        }
        Value::Object(map) => (
            ["questionText", "question", "text", "label"]
                .iter()
                .find_map(|k| map.get(*k)),
            ["answers", "answer", "answerText", "responseText", "value"]
                .iter()
                .find_map(|k| map.get(*k)),
        ),
        _ => (None, None),
    };
    let Some(question) = question.and_then(scalar) else {
        warnings.push(format!("responses[{index}]: no question text; skipped"));
        return;
    };
    let answer = answers.map(answer_text).unwrap_or_default();
    insert_str(fields, &question, &answer);
}

/// Answers joined with "; " (a multiple-choice question can have several).
fn answer_text(value: &Value) -> String {
    let one = |v: &Value| match v {
        Value::Object(map) => ["answerText", "answer", "text", "value"]
            .iter()
            .find_map(|k| map.get(*k).and_then(scalar)),
        other => scalar(other),
    };
    match value {
        Value::Array(items) => items.iter().filter_map(one).collect::<Vec<_>>().join("; "),
        other => one(other).unwrap_or_default(),
    }
}

fn scalar(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// A time the emitted fact stands on: absent means "when it arrived", unreadable is an error.
fn required_time(field: &str, raw: &Text, delivery: &Delivery<'_>) -> Result<Moment, ParseError> {
    match raw.as_deref() {
        None => Ok(Moment::received(delivery.received_at)),
        Some(value) => {
            time::moment_in(value, delivery.source_zone).ok_or_else(|| ParseError::BadTime {
                field: field.into(),
                value: value.into(),
            })
        }
    }
}

/// A descriptive time: unreadable ones are dropped with a warning.
fn optional_time(field: &str, raw: &Text, zone: Tz, warnings: &mut Vec<String>) -> Option<Moment> {
    let value = raw.as_deref()?;
    let moment = time::moment_in(value, zone);
    if moment.is_none() {
        warnings.push(format!(
            "{field}: {value:?} is not a readable time; ignored"
        ));
    }
    moment
}

fn observed_at(timestamp: &Text, warnings: &mut Vec<String>) -> Option<DateTime<Utc>> {
    let value = timestamp.as_deref()?;
    let at = time::instant(value);
    if at.is_none() {
        warnings.push(format!(
            "timestamp: {value:?} is not a readable instant; ignored"
        ));
    }
    at
}

fn text(value: &Text) -> Option<String> {
    value.0.clone()
}

fn insert(map: &mut BTreeMap<String, String>, key: &str, value: &Text) {
    if let Some(value) = value.as_deref() {
        map.insert(key.to_owned(), value.to_owned());
    }
}

fn insert_str(map: &mut BTreeMap<String, String>, key: &str, value: &str) {
    let value = value.trim();
    if !value.is_empty() {
        map.insert(key.to_owned(), value.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::TimeBasis;
    use crate::platforms::test_support::delivery;

    fn parse_str(body: &str) -> Result<Understanding, ParseError> {
        parse(&delivery(Platform::Gotowebinar, None, body))
    }

    fn facts(body: &str) -> (Vec<Fact>, Vec<String>) {
        match parse_str(body).unwrap() {
            Understanding::Facts {
                facts, warnings, ..
            } => (facts, warnings),
            other => panic!("expected facts, got {other:?}"),
        }
    }

    fn registered(body: &str) -> (Person, Option<RegistrationStatus>, BTreeMap<String, String>) {
        let (facts, _) = facts(body);
        match facts.into_iter().nth(1) {
            Some(Fact::Registered {
                person,
                status,
                custom_fields,
                ..
            }) => (person, status, custom_fields),
            other => panic!("expected a registration, got {other:?}"),
        }
    }

    fn joined_at(join_time: &str) -> Moment {
        let body = format!(
            r#"{{"eventName":"registrant.joined","webinarKey":1,"registrantKey":2,"joinTime":{join_time}}}"#
        );
        match facts(&body).0.into_iter().nth(1) {
            Some(Fact::Joined { at, .. }) => at,
            other => panic!("expected a join, got {other:?}"),
        }
    }

    #[test]
    fn keys_beyond_2_pow_53_stay_exact_as_numbers_or_strings() {
        for key in ["8281234567890123457", "\"8281234567890123457\""] {
            let body = format!(
                r#"{{"eventName":"registrant.added","webinarKey":{key},"registrantKey":{key},"email":"a@b.co"}}"#
            );
            let (facts, _) = facts(&body);
            assert_eq!(facts[0].webinar().id, "8281234567890123457");
            assert_eq!(
                facts[1].person().unwrap().platform_id.as_deref(),
                Some("8281234567890123457")
            );
        }
    }

    #[test]
    fn status_is_read_in_any_case() {
        let status = |s: &str| {
            let body = format!(
                r#"{{"eventName":"registrant.added","webinarKey":1,"email":"a@b.co","status":"{s}"}}"#
            );
            registered(&body).1
        };
        assert_eq!(status("Approved"), Some(RegistrationStatus::Approved));
        assert_eq!(status("APPROVED"), Some(RegistrationStatus::Approved));
        assert_eq!(status("approved"), Some(RegistrationStatus::Approved));
        assert_eq!(status("Canceled"), Some(RegistrationStatus::Cancelled));
        assert_eq!(status("CANCELLED"), Some(RegistrationStatus::Cancelled));
        assert_eq!(status("waiting"), Some(RegistrationStatus::Waiting));
        assert_eq!(status("Denied"), Some(RegistrationStatus::Denied));
        assert_eq!(status("PENDING"), None);
    }

    #[test]
    fn join_time_as_iso_or_epoch_millis() {
        let expected: DateTime<Utc> = "2020-07-15T16:04:00Z".parse().unwrap();
        assert_eq!(joined_at("1594829040000"), Moment::exact(expected));
        assert_eq!(joined_at("\"1594829040000\""), Moment::exact(expected));
        assert_eq!(
            joined_at("\"2020-07-15T16:04:00.000Z\""),
            Moment::exact(expected)
        );
        assert_eq!(joined_at("null").basis, TimeBasis::ReceivedAt);
    }

    #[test]
    fn an_unreadable_join_time_is_refused() {
        let body = r#"{"eventName":"registrant.joined","webinarKey":1,"email":"a@b.co","joinTime":"soon"}"#;
        assert_eq!(
            parse_str(body).unwrap_err(),
            ParseError::BadTime {
                field: "joinTime".into(),
                value: "soon".into()
            }
        );
    }

    #[test]
    fn responses_in_every_shape() {
        let fields = |responses: &str| {
            let body = format!(
                r#"{{"eventName":"registrant.added","webinarKey":1,"email":"a@b.co","responses":{responses}}}"#
            );
            registered(&body).2
        };
        let triples =
            fields(r#"[["Topics?","MULTIPLE_CHOICE",["A","B"]],["Why?","SHORT_ANSWER",["x"]]]"#);
        assert_eq!(triples["Topics?"], "A; B");
        assert_eq!(triples["Why?"], "x");
        let objects = fields(
            r#"[{"questionText":"Topics?","answers":[{"answerText":"A"}]},{"question":"Q","answer":"y"}]"#,
        );
        assert_eq!(objects["Topics?"], "A");
        assert_eq!(objects["Q"], "y");
        let single = fields(r#"["Why?","SHORT_ANSWER",["because"]]"#);
        assert_eq!(single["Why?"], "because");
        let string = fields(r#""[[\"Why?\",\"SHORT_ANSWER\",[\"z\"]]]""#);
        assert_eq!(string["Why?"], "z");
        let prose = fields(r#""Why? because""#);
        assert_eq!(prose["responses"], "Why? because");
    }

    #[test]
    fn a_response_without_question_is_a_warning() {
        let body = r#"{"eventName":"registrant.added","webinarKey":1,"email":"a@b.co",
            "responses":[{"answer":"orphan"},["Q","SHORT_ANSWER",["a"]]]}"#;
        let (_, warnings) = facts(body);
        assert_eq!(
            warnings,
            vec!["responses[0]: no question text; skipped".to_owned()]
        );
    }

    #[test]
    fn times_as_objects_pairs_or_one_flat_pair() {
        let schedule = |times: &str| {
            let body =
                format!(r#"{{"eventName":"webinar.created","webinarKey":1,"times":{times}}}"#);
            match facts(&body).0.remove(0) {
                Fact::WebinarSeen { details, .. } => details.schedule,
                other => panic!("expected webinar_seen, got {other:?}"),
            }
        };
        let start: DateTime<Utc> = "2020-08-10T14:00:00Z".parse().unwrap();
        let end: DateTime<Utc> = "2020-08-10T15:00:00Z".parse().unwrap();
        let want = vec![ScheduledTime {
            start,
            end: Some(end),
        }];
        assert_eq!(
            schedule(r#"[{"startTime":"2020-08-10T14:00:00Z","endTime":"2020-08-10T15:00:00Z"}]"#),
            want
        );
        assert_eq!(
            schedule(r#"[["2020-08-10T14:00:00Z","2020-08-10T15:00:00Z"]]"#),
            want
        );
        assert_eq!(
            schedule(r#"["2020-08-10T14:00:00Z","2020-08-10T15:00:00Z"]"#),
            want
        );
        assert_eq!(
            schedule(r#"{"startTime":"2020-08-10T14:00:00Z","endTime":"2020-08-10T15:00:00Z"}"#),
            want
        );
    }

    #[test]
    fn zone_less_schedule_is_read_in_the_webinar_zone() {
        let body = r#"{"eventName":"webinar.created","webinarKey":1,
            "startTime":"2020-08-10T14:00:00","timeZone":"Europe/Berlin"}"#;
        let Fact::WebinarSeen { details, .. } = facts(body).0.remove(0) else {
            panic!()
        };
        let start = details.scheduled_start.unwrap();
        assert_eq!(
            start.at,
            "2020-08-10T12:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(
            start.basis,
            TimeBasis::AssumedZone {
                zone: "Europe/Berlin".into()
            }
        );
    }

    #[test]
    fn changed_updated_or_deleted() {
        let body = r#"{"eventName":"webinar.changed","webinarKey":1,"status":"deleted","timestamp":"2020-07-06T11:11:11Z"}"#;
        assert!(matches!(&facts(body).0[..], [Fact::WebinarDeleted { .. }]));
        let body = r#"{"eventName":"webinar.changed","webinarKey":1,"status":"Updated","webinarTitle":"New"}"#;
        let (facts, _) = facts(body);
        let [Fact::WebinarChanged { at, details, .. }] = &facts[..] else {
            panic!("{facts:?}")
        };
        assert_eq!(at.basis, TimeBasis::ReceivedAt);
        assert_eq!(details.title.as_deref(), Some("New"));
    }

    #[test]
    fn precise_errors() {
        assert_eq!(
            parse_str(r#"{"webinarKey":1}"#).unwrap_err(),
            ParseError::MissingField("eventName".into())
        );
        assert_eq!(
            parse_str(r#"{"eventName":"registrant.left","webinarKey":1}"#).unwrap_err(),
            ParseError::UnknownShape {
                platform: "GoTo Webinar",
                detail:
                    "unknown eventName \"registrant.left\"; top-level keys \"eventName\", \"webinarKey\""
                        .into(),
            }
        );
        assert_eq!(
            parse_str(r#"{"eventName":"registrant.added","email":"a@b.co"}"#).unwrap_err(),
            ParseError::MissingField("webinarKey".into())
        );
        assert_eq!(
            parse_str(r#"{"eventName":"registrant.joined","webinarKey":1}"#).unwrap_err(),
            ParseError::MissingField("email".into())
        );
        assert_eq!(
            parse_str("[]").unwrap_err(),
            ParseError::NotAnObject("an array")
        );
        assert!(matches!(
            parse_str(r#"{"eventName":"#).unwrap_err(),
            ParseError::NotJson(_)
        ));
    }

    #[test]
    fn event_id_is_the_event_key() {
        let d = delivery(
            Platform::Gotowebinar,
            None,
            r#"{"eventKey":"k-1","eventName":"x"}"#,
        );
        assert_eq!(event_id(&d).as_deref(), Some("k-1"));
        assert_eq!(
            event_id(&delivery(Platform::Gotowebinar, None, "not json")),
            None
        );
    }
}
