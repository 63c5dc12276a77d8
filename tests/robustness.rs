//! Bad input gets a clear answer: every malformed body is stored, answered 200 and shown as
//! quarantined with a precise reason; no parser panics on any bytes or any JSON.

mod support;

use proptest::prelude::*;
use rollcall::facts::Platform;
use rollcall::platforms::{self, Delivery};
use support::{answer, spawn_app};

fn bad_inputs() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let deep = format!("{}1{}", "{\"a\":".repeat(3000), "}".repeat(3000));
    let deep_array = format!("{}{}", "[".repeat(3000), "]".repeat(3000));
    let huge_field = format!(
        r#"{{"eventName":"registrant.added","eventKey":"k","webinarKey":1,"email":"a@b.co","firstName":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    let mut invalid_utf8 = br#"{"eventName":"registrant.added","firstName":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    invalid_utf8.extend_from_slice(br#"","email":"a@b.co"}"#);
    vec![
        (
            "truncated JSON",
            br#"{"eventName":"registrant.added","email":"#.to_vec(),
            "not valid JSON",
        ),
        ("empty body", Vec::new(), "empty"),
        ("XML", b"<?xml version=\"1.0\"?><event/>".to_vec(), "XML"),
        (
            "array at top level",
            b"[{\"eventName\":\"registrant.added\"}]".to_vec(),
            "an array",
        ),
        ("null at top level", b"null".to_vec(), "null"),
        ("3,000-deep nesting", deep.into_bytes(), "eventName"),
        ("3,000-deep array", deep_array.into_bytes(), "an array"),
        ("invalid UTF-8", invalid_utf8, "line 1"),
        ("1 MiB string field", huge_field.into_bytes(), "longer than"),
    ]
}

#[tokio::test]
async fn malformed_bodies_are_kept_answered_200_and_quarantined_with_a_reason() {
    let app = spawn_app().await;
    let cases = bad_inputs();
    let tried = cases.len();
    for (case, body, reason) in cases {
        let (status, receipt) = answer(app.post("gotowebinar", None, body.clone()).await).await;
        assert_eq!(status, 200, "{case}");
        assert_eq!(receipt["status"], "quarantined", "{case}");
        let id = receipt["delivery"].as_i64().unwrap();
        let (stored, detail): (Vec<u8>, String) = app
            .db()
            .query_row(
                "SELECT body, detail FROM deliveries WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(stored, body, "{case}: the raw body is kept byte for byte");
        assert!(
            detail.contains(reason),
            "{case}: the reason {detail:?} should mention {reason:?}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM webinars"),
        0,
        "nothing was projected"
    );
    support::reliability::record(
        "malformed_bodies",
        &serde_json::json!({ "bad_inputs_tried": tried, "kept_and_quarantined": tried }),
    );
}

#[tokio::test]
async fn a_body_for_a_platform_trigger_that_does_not_exist_is_kept_and_explained() {
    let app = spawn_app().await;
    let (status, receipt) = answer(
        app.post(
            "tagmango",
            Some("webinar.deleted"),
            "{\"email\":\"a@b.co\"}",
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("quarantined"))
    );
    let detail: String = app
        .db()
        .query_row("SELECT detail FROM deliveries", [], |r| r.get(0))
        .unwrap();
    assert!(
        detail.contains("webinar.deleted") && detail.contains("webinar.completed.all"),
        "{detail}"
    );
}

fn parse_everywhere(body: &[u8]) {
    for platform in Platform::ALL {
        let triggers =
            std::iter::once(None).chain(platforms::triggers(platform).iter().map(|t| Some(*t)));
        for trigger in triggers {
            for content_type in ["application/json", "application/x-www-form-urlencoded"] {
                let delivery = Delivery {
                    platform,
                    trigger,
                    content_type: Some(content_type),
                    body,
                    received_at: "2024-01-01T00:00:00Z".parse().unwrap(),
                    source_zone: chrono_tz::Asia::Kolkata,
                };
                let _ = platforms::parse(&delivery);
                let _ = platforms::event_id(&delivery);
            }
        }
    }
}

/// Field names the parsers look for, so random JSON reaches past the first check.
const KEYS: &[&str] = &[
    "registration",
    "attendees",
    "webinar",
    "webinar_start_time",
    "webinar_end_time",
    "waiting_room_open",
    "on_demand_viewer",
    "conference_id",
    "email",
    "bmid",
    "enter_time",
    "last_leave_time",
    "total_duration",
    "engaged duration",
    "start_time",
    "end_time",
    "open_time",
    "watched_on",
    "recording_duration",
    "webinar_id",
    "webinar_start_time",
    "callList",
    "webinarId",
    "webinarFromTime",
    "webinarFromTimeInCreatorTimezone",
    "creatorTimezone",
    "phone",
    "name",
    "data",
    "meta",
    "attributes",
    "registrant_detail",
    "event_id",
    "session_id",
    "started_at",
    "ended_at",
    "attendee",
    "identify",
    "room_link",
    "eventName",
    "eventKey",
    "webinarKey",
    "registrantKey",
    "sessionKey",
    "joinTime",
    "times",
    "status",
    "responses",
    "timestamp",
    "type",
    "id",
    "event",
    "webhook",
];

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("2024-03-10 02:30"),
            Just("1714572300000"),
            Just("0"),
            Just("-1"),
            Just("2024-02-30T25:61:00Z"),
            Just("+99:99"),
            Just("GMT+5:30"),
            Just("x@y"),
            Just("registrant.joined"),
            Just("people.attended"),
            Just("DELETED"),
            Just("9999999999999999999999"),
            Just("https://a/live?s="),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|pairs| {
                serde_json::Value::Object(
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_parser_panics_on_any_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        parse_everywhere(&body);
    }

    #[test]
    fn no_parser_panics_on_any_json(value in json_value()) {
        parse_everywhere(value.to_string().as_bytes());
    }

    #[test]
    fn no_parser_panics_on_any_json_object(
        pairs in prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..10)
    ) {
        let object: serde_json::Map<String, serde_json::Value> =
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        parse_everywhere(serde_json::Value::Object(object).to_string().as_bytes());
    }
}
