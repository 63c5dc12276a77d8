//! A coherent scenario across all four platforms: webinars created, people registering,
//! joining (one before their registration arrives), rejoining, a reschedule, retries, replays.
//! Used to prove that projection does not depend on arrival order.

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use rollcall::facts::Platform;
use rollcall::store::journal::{NewDelivery, Via};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct ScenarioDelivery {
    pub platform: Platform,
    pub trigger: Option<&'static str>,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

impl ScenarioDelivery {
    pub fn to_new_delivery(&self) -> NewDelivery {
        NewDelivery {
            platform: self.platform,
            source_id: None,
            trigger: self.trigger.map(str::to_owned),
            received_at: self.received_at,
            via: Via::Import,
            content_type: Some("application/json".into()),
            headers: Default::default(),
            body: Bytes::from(self.body.clone()),
            time_zone: chrono_tz::America::New_York,
        }
    }
}

/// `base` with the fields of `extra` added.
fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(fields), Value::Object(extra)) = (base.as_object_mut(), extra) {
        fields.extend(extra);
    }
    base
}

pub const GOTO_WEBINAR: &str = "8281234567890123456";

fn goto(event: &str, key: &str, fields: Value) -> Value {
    let body = json!({
        "eventName": event, "eventVersion": "1.0.0", "product": "g2w", "eventKey": key,
        "webinarKey": 8281234567890123456u64, "webinarTitle": "Quarterly Review",
        "experienceType": "CLASSIC", "recurrenceType": "single_session",
    });
    merged(body, fields)
}

fn goto_registrant(key: &str, email: &str, first: &str, registrant: u64, at: &str) -> Value {
    goto(
        "registrant.added",
        key,
        json!({
            "firstName": first, "lastName": "Example", "email": email,
            "registrantKey": registrant, "registrationDate": at, "status": "APPROVED",
            "timestamp": at, "registrationSource": "newsletter",
        }),
    )
}

fn goto_joined(key: &str, email: &str, registrant: u64, join_time: &Value, at: &str) -> Value {
    goto(
        "registrant.joined",
        key,
        json!({
            "firstName": "Someone", "lastName": "Example", "email": email, "registrantKey": registrant,
            "sessionKey": 31337, "joinTime": join_time, "timestamp": at,
        }),
    )
}

fn tagmango_created(name: &str, email: &str) -> Value {
    json!({
        "name": name, "email": email, "phone": 919876543210u64, "timezone": "+05:30",
        "callList": [{
            "webinar": "Mango Masterclass", "webinarId": "634fc35ddaf58580e2418c40",
            "webinarLink": "https://meet.example.com/abc",
            "webinarFromTime": "2024-03-15T10:00:00.000Z", "webinarToTime": "2024-03-15T11:00:00.000Z",
            "webinarFromTimeInCreatorTimezone": "2024-03-15T15:30:00.000Z",
            "webinarToTimeInCreatorTimezone": "2024-03-15T16:30:00.000Z", "creatorTimezone": "+05:30"
        }],
        "mangoes": "Masterclass"
    })
}

fn livestorm_webinar(extra: Value) -> Value {
    let webinar = json!({
        "identify": "a695b8cb-8467-4a95-b259-75b622bd91b0", "title": "Product demo",
        "slug": "product-demo", "created_at": "2021-05-18T08:43:25.304Z", "estimated_duration": 1800,
        "registration_link": "https://app.livestorm.co/p/a695b8cb-8467-4a95-b259-75b622bd91b0",
        "published_at": "2021-05-18T08:43:31.433Z",
        "room_link": "https://app.livestorm.co/p/a695b8cb/live?s=5e3f0d1a-0000-4000-8000-000000000001",
        "estimated_started_at": "2021-05-18T10:00:00.000Z",
    });
    merged(webinar, extra)
}

fn livestorm_attendee(email: &str, first: &str, extra: Value) -> Value {
    let attendee = json!({
        "identify": format!("person-{first}"), "created_at": "2021-05-17T09:26:43.700Z",
        "first_name": first, "last_name": "Doe", "email": email, "utm_source": "linkedin",
        "fields": {}, "connection_link": "https://app.livestorm.co/p/x/live?key=k",
    });
    merged(attendee, extra)
}

/// The scenario's deliveries in the order they were received.
pub fn deliveries() -> Vec<ScenarioDelivery> {
    let start: DateTime<Utc> = "2024-05-01T09:00:00Z".parse().unwrap();
    let mut list = Vec::new();
    let mut push = |platform, trigger, body: Value| {
        let received_at = start + Duration::minutes(list.len() as i64);
        list.push(ScenarioDelivery {
            platform,
            trigger,
            body: body.to_string(),
            received_at,
        });
    };
    let g = Platform::Gotowebinar;
    push(
        g,
        None,
        goto(
            "webinar.created",
            "evt-created",
            json!({
                "webinarCreationDate": "2024-04-01T12:00:00Z", "status": "NEW", "timeZone": "America/New_York",
                "startTime": "2024-05-01T14:00:00Z", "endTime": "2024-05-01T15:00:00Z",
                "times": [{"startTime": "2024-05-01T14:00:00Z", "endTime": "2024-05-01T15:00:00Z"}],
                "timestamp": "2024-04-01T12:00:00Z", "organizerKey": 7001234567890123456u64,
            }),
        ),
    );
    // Alice joins before her registration arrives.
    push(
        g,
        None,
        goto_joined(
            "evt-join-alice-1",
            " Alice@Example.com",
            5001,
            &json!("2024-05-01T14:02:00Z"),
            "2024-05-01T14:02:01Z",
        ),
    );
    push(
        g,
        None,
        goto_registrant(
            "evt-reg-alice",
            "alice@example.com",
            "Alice",
            5001,
            "2024-04-20T10:00:00Z",
        ),
    );
    push(
        g,
        None,
        goto_registrant(
            "evt-reg-bob",
            "BOB@example.com",
            "Bob",
            5002,
            "2024-04-21T10:00:00Z",
        ),
    );
    push(
        g,
        None,
        goto_joined(
            "evt-join-bob",
            "bob@example.com",
            5002,
            &json!(1714572300000u64),
            "2024-05-01T14:05:01Z",
        ),
    );
    push(
        g,
        None,
        goto_joined(
            "evt-join-alice-2",
            "alice@example.com",
            5001,
            &json!("2024-05-01T14:30:00Z"),
            "2024-05-01T14:30:01Z",
        ),
    );
    push(
        g,
        None,
        goto(
            "webinar.changed",
            "evt-changed",
            json!({
                "status": "UPDATED",
                "startTime": "2024-05-01T14:00:00Z", "endTime": "2024-05-01T16:00:00Z",
                "timestamp": "2024-04-25T08:00:00Z",
            }),
        ),
    );
    // A retry of Bob's registration, days later.
    push(
        g,
        None,
        goto_registrant(
            "evt-reg-bob",
            "BOB@example.com",
            "Bob",
            5002,
            "2024-04-21T10:00:00Z",
        ),
    );

    let t = Platform::Tagmango;
    push(
        t,
        Some("webinar.created.single"),
        tagmango_created("Alice Example", "alice@example.com"),
    );
    push(
        t,
        Some("webinar.created.single"),
        tagmango_created("Dave Mango", "dave@example.com"),
    );
    push(
        t,
        Some("webinar.completed.all"),
        json!({
            "name": "Alice Example", "email": "ALICE@example.com", "phone": "+919876543210",
            "webinar": "Mango Masterclass", "webinarId": "634fc35ddaf58580e2418c40",
            "webinarLink": "https://example.com/recording/1"
        }),
    );
    push(
        t,
        Some("webinar.reminder.15min"),
        json!({
            "name": "Dave Mango", "email": "dave@example.com", "webinar": "Mango Masterclass",
            "webinarId": "634fc35ddaf58580e2418c40"
        }),
    );

    let l = Platform::Livestorm;
    push(
        l,
        Some("new-registrant"),
        json!({
            "attendee": livestorm_attendee("carol@example.com", "Carol", json!({})),
            "webinar": livestorm_webinar(json!({"nb_registered": 1})),
        }),
    );
    push(
        l,
        Some("event-starts"),
        json!({"webinar": livestorm_webinar(json!({"started_at": "2021-05-18T10:01:00.000Z"}))}),
    );
    push(
        l,
        Some("event-ends"),
        json!({"webinar": livestorm_webinar(json!({
            "started_at": "2021-05-18T10:01:00.000Z", "ended_at": "2021-05-18T10:46:00.000Z",
            "duration": 2700, "nb_attended": 2,
            "attendees": [
                livestorm_attendee("carol@example.com", "Carol", json!({"is_attendance": true, "attendance_rate": 90, "attendance_duration": 2430, "messages_count": 3})),
                livestorm_attendee("erin@example.com", "Erin", json!({"is_attendance": true, "attendance_rate": "50", "attendance_duration": "1350"})),
            ]
        }))}),
    );
    push(
        l,
        None,
        json!({"data": {
            "id": "person-Erin", "type": "people",
            "attributes": {
                "role": "participant", "first_name": "Erin", "last_name": "Doe", "email": "erin@example.com",
                "created_at": 1621243603, "updated_at": 1621331000,
                "registrant_detail": {
                    "event_id": "a695b8cb-8467-4a95-b259-75b622bd91b0",
                    "session_id": "5e3f0d1a-0000-4000-8000-000000000001",
                    "created_at": 1621243603, "attended": false, "has_attended_replay": true,
                    "attendance_rate": 0, "attendance_duration": 0
                }
            },
            "meta": {"webhook": {"id": "wh-1", "event": "people.watched_replay"}}
        }}),
    );

    let b = Platform::Bigmarker;
    push(
        b,
        Some("registration"),
        json!({"registration": {
            "bmid": "bm-frank", "first_name": "Frank", "last_name": "Ünal", "email": "Frank@Example.com",
            "conference_id": "26ec9ca26c6f", "enter_url": "https://www.bigmarker.com/x?bmid=bm-frank",
            "source": "email", "referral_domain": "example.com", "tracking_code": "spring",
            "time_stamp": "2024-04-28T12:00:00Z", "custom_field_Company": "Acme",
            "custom_field_utm_source": "newsletter"
        }}),
    );
    push(
        b,
        Some("webinar-start"),
        json!({"webinar_start_time": {
            "conference_id": "26ec9ca26c6f", "start_time": "2024-05-01 10:00",
            "conference_url": "https://www.bigmarker.com/acme/spring"
        }}),
    );
    let enters = json!({"attendees": [{
        "conference_id": "26ec9ca26c6f", "conference_url": "https://www.bigmarker.com/acme/spring",
        "webinar_title": "Spring Launch", "bmid": "bm-frank", "first_name": "Frank",
        "last_name": "Ünal", "email": "frank@example.com"
    }]});
    push(b, Some("attendee-enters"), enters.clone());
    // The end arrives before the attendee data.
    push(
        b,
        Some("webinar-end"),
        json!({"webinar_end_time": {
            "conference_id": "26ec9ca26c6f", "end_time": "2024-05-01 11:00",
            "conference_url": "https://www.bigmarker.com/acme/spring"
        }}),
    );
    push(
        b,
        Some("attendee-data"),
        json!({"attendees": [
            {"bmid": "bm-frank", "first_name": "Frank", "last_name": "Ünal", "email": "frank@example.com",
             "conference_id": "26ec9ca26c6f", "webinar_title": "Spring Launch",
             "enter_time": "2024-05-01T14:01:00Z", "last_leave_time": "2024-05-01T14:58:00Z",
             "total_duration": "3420", "engaged duration": "3000"},
            {"bmid": "bm-alice", "first_name": "Alice", "last_name": "Example", "email": "alice@example.com",
             "conference_id": "26ec9ca26c6f", "webinar_title": "Spring Launch",
             "enter_time": "2024-05-01T14:10:00Z", "last_leave_time": "2024-05-01T14:20:00Z",
             "total_duration": 600, "engaged duration": null}
        ]}),
    );
    push(
        b,
        Some("on-demand-viewer"),
        json!({"on_demand_viewer": {
            "bmid": "bm-dave", "first_name": "Dave", "last_name": "Mango", "email": "dave@example.com",
            "watched_on": "2024-05-02T09:00:00Z", "conference_id": "26ec9ca26c6f",
            "webinar_title": "Spring Launch", "recording_duration": "1200"
        }}),
    );
    // The same attendee-enters hook again later: same body, so a duplicate.
    push(b, Some("attendee-enters"), enters);
    list
}

/// The checked-in multi-platform scenario (`tests/fixtures/scenarios/multi-platform`): its
/// deliveries as the manifest lists them, with their receipt times and zone.
pub fn multi_platform() -> Vec<ScenarioDelivery> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        source_zone: String,
        deliveries: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        file: String,
        platform: Platform,
        trigger: Option<String>,
        received_at: DateTime<Utc>,
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/scenarios/multi-platform");
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.source_zone, "America/New_York");
    manifest
        .deliveries
        .into_iter()
        .map(|entry| ScenarioDelivery {
            platform: entry.platform,
            trigger: entry.trigger.map(|t| &*Box::leak(t.into_boxed_str())),
            body: std::fs::read_to_string(dir.join(&entry.file)).unwrap(),
            received_at: entry.received_at,
        })
        .collect()
}

/// Records `deliveries` into the store at `db`, each in its own transaction.
pub fn record_into(db: &std::path::Path, deliveries: &[ScenarioDelivery]) {
    use rollcall::store::journal::{self, Prepared};
    let mut conn = rollcall::store::open_writer(db, &Default::default()).unwrap();
    for delivery in deliveries {
        let tx = conn.transaction().unwrap();
        journal::record(&tx, &Prepared::new(delivery.to_new_delivery())).unwrap();
        tx.commit().unwrap();
    }
}
