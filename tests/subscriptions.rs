//! Platform hookup, black box: the real receiver (in process, and as `rollcall serve` for the
//! logs) with its TagMango, Livestorm and GoTo API base URLs pointed at a fake of all three on
//! loopback (`support::fake_platforms`), asserting exactly what was sent.

mod support;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::Method;
use reqwest::Method as M;
use rollcall::facts::Platform;
use rollcall::store::journal::{self, NewDelivery, Prepared, Via};
use rollcall::store::{database_path, open_writer, StoreOptions};
use rollcall::subscriptions::SubscriptionOptions;
use serde_json::{json, Value};
use support::fake_platforms::*;
use support::{answer, AppOptions, TestApp};

async fn app_with(fake: &FakePlatforms) -> TestApp {
    support::spawn_app_with(AppOptions {
        subscriptions: SubscriptionOptions {
            apis: fake.apis(),
            use_keychain: false,
        },
        ..AppOptions::default()
    })
    .await
}

async fn call(app: &TestApp, method: M, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.api(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

async fn set_key(app: &TestApp, label: &str, key: &str) -> u16 {
    let id = app.source(label).id;
    call(
        app,
        M::PUT,
        &format!("/api/sources/{id}/credentials"),
        Some(json!({"secret": key})),
    )
    .await
    .0
}

async fn subscribe(app: &TestApp, label: &str) -> (u16, Value) {
    let id = app.source(label).id;
    call(app, M::POST, &format!("/api/sources/{id}/subscribe"), None).await
}

#[tokio::test]
async fn tagmango_gets_one_subscription_per_event_each_with_its_trigger_url() {
    let fake = FakePlatforms::start().await;
    let app = app_with(&fake).await;
    assert_eq!(set_key(&app, "tagmango", TAGMANGO_KEY).await, 204);

    let (status, subs) = subscribe(&app, "tagmango").await;
    assert_eq!(status, 200, "{subs}");
    assert_eq!(subs.as_array().unwrap().len(), 3);

    let calls = fake.state.calls_to("/tagmango");
    assert_eq!(calls.len(), 3);
    let root = app.hook_url("tagmango", None);
    for (call, event) in calls.iter().zip([
        "webinar.created.single",
        "webinar.created.recurring",
        "webinar.completed.all",
    ]) {
        assert_eq!(call.method, Method::POST);
        assert_eq!(call.path, "/tagmango/api/v1/integration/webhook/webhook");
        assert_eq!(call.headers["x-api-key"], TAGMANGO_KEY);
        assert_eq!(call.headers["content-type"], "application/json");
        assert_eq!(
            call.body,
            json!({"hookUrl": format!("{root}/{event}"), "event": event})
        );
    }
    // The URL TagMango was given is one the receiver accepts for that event.
    let (status, _) = answer(
        app.post("tagmango", Some("webinar.completed.all"), "{}")
            .await,
    )
    .await;
    assert_eq!(status, 200);

    // The key is stored but never sent back.
    let (_, sources) = app.get("/api/sources").await;
    let text = sources.to_string();
    assert!(!text.contains(TAGMANGO_KEY));
    let tm = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "tagmango")
        .unwrap();
    assert_eq!(tm["credential_set"], true);
    assert_eq!(tm["api_subscriptions"], true);

    // Subscribing again changes nothing: every event already points at the right URL.
    fake.state.clear();
    assert_eq!(subscribe(&app, "tagmango").await.0, 200);
    assert!(fake.state.calls().is_empty());

    // The tunnel moved: each subscription is made anew at the new URL, the old one deleted.
    fake.state.clear();
    let server = app.server.as_ref().unwrap();
    let report = server
        .hookup()
        .repoint_all("https://new-tunnel.example")
        .await
        .unwrap();
    assert_eq!((report.repointed, report.failed), (3, 0));
    let calls = fake.state.calls_to("/tagmango");
    let posts: Vec<_> = calls.iter().filter(|c| c.method == Method::POST).collect();
    let deletes: Vec<_> = calls
        .iter()
        .filter(|c| c.method == Method::DELETE)
        .collect();
    assert_eq!((posts.len(), deletes.len()), (3, 3));
    let token = &app.source("tagmango").token;
    for post in posts {
        let event = post.body["event"].as_str().unwrap();
        assert_eq!(
            post.body["hookUrl"],
            format!("https://new-tunnel.example/hooks/tagmango/{token}/{event}")
        );
    }
    let mut deleted: Vec<&str> = deletes.iter().map(|d| d.path.as_str()).collect();
    deleted.sort();
    let prefix = "/tagmango/api/v1/integration/webhook/webhook";
    assert_eq!(
        deleted,
        [
            format!("{prefix}/tm-1"),
            format!("{prefix}/tm-2"),
            format!("{prefix}/tm-3")
        ]
    );
    assert_eq!(fake.state.live(), ["tm-4", "tm-5", "tm-6"]);

    // One click points everything back at this receiver's URL.
    let (status, report) = call(&app, M::POST, "/api/subscriptions/repoint", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["repointed"], 3);
    let (_, overview) = app.get("/api/subscriptions").await;
    for sub in overview["subscriptions"].as_array().unwrap() {
        assert!(sub["hook_url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{root}/")));
        assert_eq!(sub["last_error"], Value::Null);
    }

    // Unsubscribing deletes every remote webhook.
    let id = app.source("tagmango").id;
    let (status, removed) = call(
        &app,
        M::DELETE,
        &format!("/api/sources/{id}/subscriptions"),
        None,
    )
    .await;
    assert_eq!((status, removed["removed"].as_u64()), (200, Some(3)));
    assert!(fake.state.live().is_empty());
    let (_, overview) = app.get("/api/subscriptions").await;
    assert_eq!(overview["subscriptions"], json!([]));
    assert_eq!(overview["credential_backend"], "file");
}

#[tokio::test]
async fn livestorm_rest_webhooks_use_json_api_the_plain_url_and_are_deleted_with_the_source() {
    let fake = FakePlatforms::start().await;
    let app = app_with(&fake).await;
    assert_eq!(set_key(&app, "livestorm", LIVESTORM_TOKEN).await, 204);
    let (status, subs) = subscribe(&app, "livestorm").await;
    assert_eq!(status, 200, "{subs}");
    let calls = fake.state.calls_to("/livestorm");
    assert_eq!(calls.len(), 9);
    let plain = app.hook_url("livestorm", None);
    let mut triggers = Vec::new();
    for call in &calls {
        assert_eq!(
            (call.method.as_str(), call.path.as_str()),
            ("POST", "/livestorm/v1/webhooks")
        );
        assert_eq!(call.headers["authorization"], LIVESTORM_TOKEN);
        assert_eq!(call.headers["content-type"], "application/vnd.api+json");
        assert_eq!(call.body["data"]["type"], "webhooks");
        assert_eq!(call.body["data"]["attributes"]["url"], plain);
        triggers.push(
            call.body["data"]["attributes"]["trigger"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(triggers.contains(&"session.ended".to_owned()));
    assert!(triggers.contains(&"people.attended".to_owned()));
    assert_eq!(fake.state.live().len(), 9);

    // Removing the source in Rollcall deletes its webhooks in Livestorm first.
    fake.state.clear();
    let id = app.source("livestorm").id;
    let (status, _) = call(&app, M::DELETE, &format!("/api/sources/{id}"), None).await;
    assert_eq!(status, 204);
    let calls = fake.state.calls_to("/livestorm");
    assert_eq!(calls.len(), 9);
    assert!(calls
        .iter()
        .all(|c| c.method == Method::DELETE && c.path.starts_with("/livestorm/v1/webhooks/ls-")));
    assert!(fake.state.live().is_empty());
    assert_eq!(app.count("SELECT COUNT(*) FROM subscriptions"), 0);
    let credentials = std::fs::read_to_string(app.dir.path().join("credentials.json")).unwrap();
    assert!(
        !credentials.contains(LIVESTORM_TOKEN),
        "the removed source's token is gone"
    );
}

#[tokio::test]
async fn goto_creates_a_secret_key_webhooks_activates_them_and_subscribes_the_organizer() {
    let fake = FakePlatforms::start().await;
    let app = app_with(&fake).await;
    assert_eq!(set_key(&app, "gotowebinar", GOTO_TOKEN).await, 204);
    let (status, subs) = subscribe(&app, "gotowebinar").await;
    assert_eq!(status, 200, "{subs}");
    let calls = fake.state.calls_to("/goto");
    let steps: Vec<(String, String)> = calls
        .iter()
        .map(|c| {
            (
                c.method.to_string(),
                c.path.trim_start_matches("/goto/G2W/rest/v2").to_owned(),
            )
        })
        .collect();
    let mut expected = vec![("POST".to_owned(), "/webhooks/secretkey".to_owned())];
    for _ in 0..4 {
        expected.push(("POST".into(), "/webhooks".into()));
        expected.push(("PUT".into(), "/webhooks".into()));
        expected.push(("POST".into(), "/userSubscriptions".into()));
    }
    assert_eq!(steps, expected);
    assert!(calls
        .iter()
        .all(|c| c.headers["authorization"] == format!("Bearer {GOTO_TOKEN}")));
    let plain = app.hook_url("gotowebinar", None);
    assert_eq!(
        calls[1].body,
        json!([{"callbackUrl": plain, "eventName": "registrant.added", "eventVersion": "1.0.0", "product": "g2w"}])
    );
    assert_eq!(
        calls[2].body,
        json!([{"webhookKey": "gw-1", "callbackUrl": plain, "state": "ACTIVE"}])
    );
    assert_eq!(
        calls[3].body,
        json!([{"webhookKey": "gw-1", "userSubscriptionState": "ACTIVE"}])
    );
    let sub = &subs.as_array().unwrap()[0];
    assert_eq!(
        sub["remote_user_sub_id"]
            .as_str()
            .map(|s| s.starts_with("us-")),
        Some(true)
    );

    // The new secret key now checks GoTo's signatures for this source.
    let (_, sources) = app.get("/api/sources").await;
    let goto = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "gotowebinar")
        .unwrap();
    assert_eq!(goto["secret_keys"], 1);

    // Re-pointing updates each webhook in place.
    fake.state.clear();
    let report = app
        .server
        .as_ref()
        .unwrap()
        .hookup()
        .repoint_all("http://127.0.0.1:9")
        .await
        .unwrap();
    // GoTo validates the new URL with a GET; nothing answers on port 9.
    assert_eq!(report.failed, 4, "{report:?}");
    assert!(report.outcomes[0]
        .error
        .as_deref()
        .unwrap()
        .contains("GoTo Webinar refused the request (400): {\"description\":\"Callback URL validation failed\"}"));
    let (_, report) = call(&app, M::POST, "/api/subscriptions/repoint", None).await;
    assert_eq!(
        (report["repointed"].as_u64(), report["failed"].as_u64()),
        (Some(4), Some(0)),
        "{report}"
    );
    let puts = fake.state.calls_to("/goto");
    assert!(puts.iter().all(|c| c.method == Method::PUT));

    // Unsubscribing removes the user subscription, then the webhook.
    fake.state.clear();
    let id = app.source("gotowebinar").id;
    assert_eq!(
        call(
            &app,
            M::DELETE,
            &format!("/api/sources/{id}/subscriptions"),
            None
        )
        .await
        .0,
        200
    );
    let calls = fake.state.calls_to("/goto");
    assert_eq!(calls.len(), 8);
    assert_eq!(calls[0].method, Method::DELETE);
    assert!(calls[0].path.ends_with("/userSubscriptions"));
    assert!(calls[1].path.ends_with("/webhooks"));
    assert!(fake.state.live().is_empty(), "{:?}", fake.state.live());
}

#[tokio::test]
async fn a_rejected_key_gets_a_message_that_says_what_to_fix() {
    let fake = FakePlatforms::start().await;
    let app = app_with(&fake).await;
    for (label, expected) in [
        ("tagmango", "TagMango rejected the API key (401)"),
        ("livestorm", "Livestorm rejected the API token (401): check the token in Livestorm → Account settings"),
        ("gotowebinar", "GoTo Webinar rejected the access token (401): GoTo access tokens expire"),
    ] {
        assert_eq!(set_key(&app, label, "wrong-key-0000").await, 204);
        let (status, body) = subscribe(&app, label).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["kind"], "bad_credentials");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{message}");
        assert!(!message.contains("wrong-key"), "{message}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM subscriptions"), 0);
}

#[tokio::test]
async fn missing_keys_unsupported_platforms_and_platform_errors_are_explained() {
    let fake = FakePlatforms::start().await;
    let app = app_with(&fake).await;

    let (status, body) = subscribe(&app, "livestorm").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("no_credentials"))
    );
    assert_eq!(
        body["message"],
        "enter the API token for this Livestorm source first"
    );

    let (status, body) = subscribe(&app, "bigmarker").await;
    assert_eq!((status, body["kind"].as_str()), (400, Some("unsupported")));
    assert_eq!(set_key(&app, "bigmarker", "x").await, 400);
    assert_eq!(set_key(&app, "livestorm", "   ").await, 400);
    let (status, body) = call(&app, M::POST, "/api/sources/999/subscribe", None).await;
    assert_eq!((status, body["kind"].as_str()), (404, Some("not_found")));

    assert_eq!(set_key(&app, "livestorm", LIVESTORM_TOKEN).await, 204);
    *fake.state.fail_with.lock().unwrap() = Some(500);
    let (status, body) = subscribe(&app, "livestorm").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (502, Some("platform_unavailable"))
    );
    assert_eq!(
        body["message"],
        "Livestorm had a problem on its side (500); try again in a few minutes"
    );
    *fake.state.fail_with.lock().unwrap() = None;

    // A URL the platform refuses (422) is reported with the platform's own words.
    let server = app.server.as_ref().unwrap();
    let id = app.source("livestorm").id;
    let refused = server
        .hookup()
        .subscribe(id, "https://invalid.example")
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), "platform_refused");
    assert!(refused
        .to_string()
        .starts_with("Livestorm refused the request (422): "));
    assert!(refused.to_string().contains("url is invalid"), "{refused}");

    // Nothing listens on the API address: unreachable, said plainly.
    drop(app);
    let dead = FakePlatforms {
        addr: "127.0.0.1:9".parse().unwrap(),
        state: fake.state.clone(),
    };
    let app = app_with(&dead).await;
    assert_eq!(set_key(&app, "tagmango", TAGMANGO_KEY).await, 204);
    let (status, body) = subscribe(&app, "tagmango").await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (502, Some("platform_unreachable")),
        "{body}"
    );
}

#[tokio::test]
async fn the_auto_repoint_setting_is_kept_and_honoured() {
    let fake = FakePlatforms::start().await;
    let app = app_with(&fake).await;
    assert_eq!(set_key(&app, "livestorm", LIVESTORM_TOKEN).await, 204);
    assert_eq!(subscribe(&app, "livestorm").await.0, 200);
    let hookup = app.server.as_ref().unwrap().hookup().clone();

    fake.state.clear();
    assert!(hookup
        .public_url_changed("https://a.example")
        .await
        .unwrap()
        .is_none());
    assert!(
        fake.state.calls().is_empty(),
        "off by default: nothing is re-pointed"
    );

    let (status, body) = call(
        &app,
        M::PUT,
        "/api/subscriptions/settings",
        Some(json!({"auto_repoint": true})),
    )
    .await;
    assert_eq!((status, body["auto_repoint"].as_bool()), (200, Some(true)));
    assert_eq!(app.get("/api/subscriptions").await.1["auto_repoint"], true);
    let report = hookup
        .public_url_changed("https://b.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.repointed, 9);
    assert!(report
        .outcomes
        .iter()
        .all(|o| o.hook_url.starts_with("https://b.example/hooks/livestorm/")));
}

/// A delivery of `body` from the source `source_id`, received `hours_ago`.
fn journal_delivery(
    conn: &rusqlite::Connection,
    source_id: i64,
    platform: Platform,
    body: &str,
    received_at: chrono::DateTime<chrono::Utc>,
) {
    let delivery = NewDelivery {
        platform,
        source_id: Some(source_id),
        trigger: None,
        received_at,
        via: Via::Import,
        content_type: Some("application/json".into()),
        headers: BTreeMap::new(),
        body: Bytes::from(body.to_owned()),
        time_zone: chrono_tz::UTC,
    };
    journal::record(conn, &Prepared::new(delivery)).unwrap();
}

#[tokio::test]
async fn a_source_silent_during_its_scheduled_webinar_is_flagged_with_its_last_delivery() {
    use chrono::{Duration, Utc};
    let dir = tempfile::tempdir().unwrap();
    let db = database_path(dir.path());
    let sources = support::add_sources(&db);
    let now = Utc::now();
    let iso = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    {
        let conn = open_writer(&db, &StoreOptions::default()).unwrap();
        // GoTo: the webinar was announced 3 hours ago and started 30 minutes ago; nothing since.
        let created = json!({
            "eventName": "webinar.created", "eventKey": "silent-1", "webinarKey": 77,
            "webinarTitle": "Launch day", "times": [{"startTime": iso(now - Duration::minutes(30)),
            "endTime": iso(now + Duration::minutes(30))}],
            "startTime": iso(now - Duration::minutes(30)), "endTime": iso(now + Duration::minutes(30)),
            "timeZone": "UTC"});
        journal_delivery(
            &conn,
            sources["gotowebinar"].id,
            Platform::Gotowebinar,
            &created.to_string(),
            now - Duration::hours(3),
        );
        // Livestorm: a session started 20 minutes ago and the source keeps receiving.
        let session = json!({"data": {"id": "sess-1", "type": "sessions", "attributes": {
            "event_id": "ev-1", "estimated_started_at": (now - Duration::minutes(20)).timestamp(),
            "started_at": 0, "ended_at": 0, "created_at": 1644845096, "updated_at": 1644845096},
            "meta": {"webhook": {"id": "w", "event": "session.created"}}}});
        journal_delivery(
            &conn,
            sources["livestorm"].id,
            Platform::Livestorm,
            &session.to_string(),
            now - Duration::hours(2),
        );
        let later = json!({"data": {"id": "sess-1", "type": "sessions", "attributes": {
            "event_id": "ev-1", "estimated_started_at": (now - Duration::minutes(20)).timestamp(),
            "started_at": (now - Duration::minutes(19)).timestamp(), "ended_at": 0},
            "meta": {"webhook": {"id": "w", "event": "session.started"}}}});
        journal_delivery(
            &conn,
            sources["livestorm"].id,
            Platform::Livestorm,
            &later.to_string(),
            now - Duration::minutes(19),
        );
        // Kept per source as deliveries are journaled: the journal is not searched for it.
        let last: String = conn
            .query_row(
                "SELECT received_at FROM source_last_delivery WHERE source_id = ?1",
                [sources["livestorm"].id],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            last,
            rollcall::store::format_time(&(now - Duration::minutes(19)))
        );
    }
    let app = support::start_in(dir, sources, AppOptions::default()).await;
    let (status, listed) = app.get("/api/sources").await;
    assert_eq!(status, 200);
    let by_label = |label: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["label"] == label)
            .unwrap()
            .clone()
    };
    let goto = by_label("gotowebinar");
    let silent = &goto["silent"];
    assert_eq!(silent["webinar_title"], "Launch day", "{goto}");
    assert_eq!(goto["last_delivery_at"], silent["last_delivery_at"]);
    let last = goto["last_delivery_at"].as_str().unwrap();
    let expected = (now - Duration::hours(3))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    assert!(last.starts_with(&expected), "{last} vs {expected}");
    assert!(silent["message"]
        .as_str()
        .unwrap()
        .contains("No delivery since"));

    let livestorm = by_label("livestorm");
    assert!(livestorm["last_delivery_at"].is_string());
    assert_eq!(
        livestorm["silent"],
        Value::Null,
        "it received after the start: {livestorm}"
    );
    let tagmango = by_label("tagmango");
    assert_eq!(
        (
            tagmango["last_delivery_at"].clone(),
            tagmango["silent"].clone()
        ),
        (Value::Null, Value::Null)
    );
    // The signed GoTo source never received anything: a setup problem, not a silence.
    assert_eq!(by_label(support::SIGNED_GOTO)["silent"], Value::Null);

    // A delivery now ends the silence.
    let joined = json!({"eventName": "registrant.joined", "eventKey": "silent-2", "webinarKey": 77,
        "sessionKey": 1, "email": "a@b.co", "joinTime": iso(now)});
    let (status, _) = answer(app.post("gotowebinar", None, joined.to_string()).await).await;
    assert_eq!(status, 200);
    let (_, listed) = app.get("/api/sources").await;
    let goto = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "gotowebinar")
        .unwrap();
    assert_eq!(goto["silent"], Value::Null, "{goto}");
    assert_ne!(goto["last_delivery_at"].as_str(), Some(last));
}

/// `rollcall serve` with the hidden API flags: the key is stored in a file only the user can
/// read and never reaches the logs, even at debug level, through a success and a rejection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_keys_in_a_private_file_and_out_of_the_logs() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let fake = FakePlatforms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sources = support::add_sources(&database_path(dir.path()));
    let apis = fake.apis();
    let mut child = support::serve_command(dir.path())
        .args([
            "--no-keychain",
            "--tagmango-api",
            &apis.tagmango,
            "--livestorm-api",
            &apis.livestorm,
        ])
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let login = lines
        .find_map(|line| line.ok()?.strip_prefix("Dashboard: ").map(str::to_owned))
        .expect("serve prints its login link");
    std::thread::spawn(move || for _ in lines {});
    let stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (dashboard, cookie) = support::log_in(&client, &login).await;
    let api = |method: M, path: &str| {
        client
            .request(method, format!("{dashboard}{path}"))
            .header("cookie", &cookie)
    };

    let (tm, ls) = (sources["tagmango"].id, sources["livestorm"].id);
    let put = api(M::PUT, &format!("/api/sources/{tm}/credentials"))
        .json(&json!({"secret": TAGMANGO_KEY}));
    assert_eq!(put.send().await.unwrap().status(), 204);
    let subscribed = api(M::POST, &format!("/api/sources/{tm}/subscribe"))
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), 200);
    let put = api(M::PUT, &format!("/api/sources/{ls}/credentials"))
        .json(&json!({"secret": "ls-wrong-token-d41f"}));
    assert_eq!(put.send().await.unwrap().status(), 204);
    let (status, body) = answer(
        api(M::POST, &format!("/api/sources/{ls}/subscribe"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("bad_credentials"))
    );
    let listed = api(M::GET, "/api/sources")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(TAGMANGO_KEY));

    let file = dir.path().join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the user may read the keys");
    }
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains(TAGMANGO_KEY));
    assert_eq!(fake.state.calls_to("/tagmango").len(), 3);

    child.kill().unwrap();
    child.wait().unwrap();
    let logs = logs.join().unwrap();
    assert!(
        logs.contains("credential store chosen"),
        "the debug logs were captured: {logs}"
    );
    for secret in [TAGMANGO_KEY, "ls-wrong-token-d41f"] {
        assert!(!logs.contains(secret), "a key reached the logs");
    }
}
