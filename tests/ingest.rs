//! Black-box tests of the ingest listener: a real server on port 0 with a fresh data directory,
//! real HTTP. Every answer code, duplicates, quarantine, GoTo signatures, big and form bodies.

mod support;

use rollcall::signature;
use rollcall::store::sources;
use rollcall::store::{database_path, open_writer, StoreOptions};
use serde_json::json;
use support::{answer, spawn_app, spawn_app_with, AppOptions, GOTO_KEYS, SIGNED_GOTO};

const COMPLETED: &str = "webinar.completed.all";

fn tagmango_completed(email: &str) -> String {
    json!({
        "name": "Zoë Ångström", "email": email, "phone": 1234567890,
        "webinar": "Introduction to Digital Marketing", "webinarId": "6149b1e5612c4e5fd96041d3",
        "webinarLink": "https://example.com/webinar/recording/123"
    })
    .to_string()
}

fn goto_registrant(event_key: &str) -> String {
    json!({
        "eventName": "registrant.added", "eventVersion": "1.0.0", "product": "g2w",
        "eventKey": event_key, "firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com",
        "webinarKey": 8281234567890123456u64, "registrantKey": 9281234567890123456u64,
        "webinarTitle": "Signed", "registrationDate": "2024-01-02T03:04:05Z", "status": "APPROVED",
        "timestamp": "2024-01-02T03:04:06Z"
    })
    .to_string()
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let app = spawn_app().await;
    let base = format!("http://{}", app.addr);
    let health = app
        .client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    for path in [
        "/",
        "/dashboard",
        "/api/webinars",
        "/hooks",
        "/hooks/tagmango",
        "/healthz/x",
    ] {
        let response = app
            .client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let put = app
        .client
        .put(app.hook_url("tagmango", None))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        404,
        "only POST, GET and HEAD are served on hooks"
    );
}

#[tokio::test]
async fn url_validation_get_and_head_answer_200_without_data() {
    let app = spawn_app().await;
    for url in [
        app.hook_url("gotowebinar", None),
        app.hook_url("tagmango", Some(COMPLETED)),
    ] {
        let get = app.client.get(&url).send().await.unwrap();
        assert_eq!(get.status(), 200);
        assert!(get.text().await.unwrap().is_empty());
        assert_eq!(app.client.head(&url).send().await.unwrap().status(), 200);
    }
    let wrong = format!("http://{}/hooks/gotowebinar/not-a-token", app.addr);
    assert_eq!(app.client.get(wrong).send().await.unwrap().status(), 404);
    assert_eq!(app.count("SELECT count(*) FROM deliveries"), 0);
}

#[tokio::test]
async fn a_delivery_is_acknowledged_after_it_is_stored_raw() {
    let app = spawn_app().await;
    let body = tagmango_completed(" Zoe@Example.COM ");
    let (status, receipt) = answer(app.post("tagmango", Some(COMPLETED), body.clone()).await).await;
    assert_eq!(status, 200);
    assert_eq!(receipt, json!({"delivery": 1, "status": "projected"}));
    let (stored, trigger, source): (Vec<u8>, String, i64) = app
        .db()
        .query_row(
            "SELECT body, trigger, source_id FROM deliveries WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!(stored, body.as_bytes());
    assert_eq!(trigger, COMPLETED);
    assert_eq!(source, app.source("tagmango").id);
    assert_eq!(
        app.count("SELECT count(*) FROM attendance WHERE person_uid = 'zoe@example.com'"),
        1
    );
}

#[tokio::test]
async fn a_retry_is_recorded_as_a_duplicate_and_counted_once() {
    let app = spawn_app().await;
    let body = tagmango_completed("retry@example.com");
    let (_, first) = answer(app.post("tagmango", Some(COMPLETED), body.clone()).await).await;
    let (status, second) = answer(app.post("tagmango", Some(COMPLETED), body).await).await;
    assert_eq!(status, 200);
    assert_eq!(second["status"], "duplicate");
    let duplicate_of: i64 = app
        .db()
        .query_row(
            "SELECT duplicate_of FROM deliveries WHERE id = ?1",
            [&second["delivery"].as_i64().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(Some(duplicate_of), first["delivery"].as_i64());
    assert_eq!(app.count("SELECT count(*) FROM deliveries"), 2);
    assert_eq!(app.count("SELECT count(*) FROM attendance"), 1);

    // GoTo retries carry the same eventKey even if the body differs in whitespace.
    let goto = goto_registrant("evt-1");
    answer(app.post("gotowebinar", None, goto.clone()).await).await;
    let reformatted =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&goto).unwrap())
            .unwrap();
    let (_, again) = answer(app.post("gotowebinar", None, reformatted).await).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(app.count("SELECT count(*) FROM registrations"), 1);
}

/// A burst is acknowledged from the receipt log (or, for a request that found itself alone,
/// once journaled); every receipt becomes a journaled delivery moments later, projected exactly
/// once, as a rebuild would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_acknowledged_when_on_disk_and_journaled_and_projected_right_after() {
    let app = spawn_app().await;
    let url = app.hook_url("tagmango", Some(COMPLETED));
    let senders: Vec<_> = (0..400)
        .map(|n| {
            let (client, url) = (app.client.clone(), url.clone());
            let body = tagmango_completed(&format!("burst{n}@example.com"));
            tokio::spawn(
                async move { answer(client.post(url).body(body).send().await.unwrap()).await },
            )
        })
        .collect();
    let (mut pending, mut received) = (0, Vec::new());
    for sender in senders {
        let (status, receipt) = sender.await.unwrap();
        assert_eq!(status, 200, "{receipt}");
        match receipt["status"].as_str() {
            Some("pending") => pending += 1,
            Some("projected") => {}
            Some("received") => received.push(receipt["receipt"].as_i64().unwrap()),
            other => panic!("unexpected receipt status {other:?}"),
        }
    }
    println!(
        "{} of 400 acknowledged from the receipt log, {pending} journaled before they were \
         projected",
        received.len()
    );
    assert!(!received.is_empty(), "400 at once, and none had company");
    app.settled().await;
    for receipt in &received {
        let journaled = app.count(&format!(
            "SELECT count(*) FROM deliveries WHERE receipt = {receipt}"
        ));
        assert_eq!(journaled, 1, "receipt {receipt}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE status = 'projected'"),
        400
    );
    assert_eq!(app.count("SELECT count(*) FROM attendance"), 400);
    let (_, webinars) = app.get("/api/webinars").await;
    assert_eq!(webinars["webinars"][0]["attended"], 400, "{webinars}");
    let live = support::tables::dump(&app.db(), true);
    let dir = app.stop().await;
    let mut conn = rollcall::store::open_writer(
        &rollcall::store::database_path(dir.path()),
        &Default::default(),
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    rollcall::store::journal::reindex(&tx).unwrap();
    assert_eq!(live, support::tables::dump(&tx, true));
}

/// A defect in the projection (here a trigger that fails one person's attendance, after that
/// delivery's facts and person are written) costs nothing but that delivery: the burst around
/// it is acknowledged and projected, it is quarantined with the reason and none of its partial
/// writes are left, and once the defect is fixed it is reprocessed into the reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_defect_quarantines_its_delivery_alone_and_leaves_none_of_its_writes() {
    let app = spawn_app().await;
    let db = rusqlite::Connection::open(rollcall::store::database_path(app.dir.path())).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER defect BEFORE INSERT ON attendance
         WHEN NEW.person_uid = 'burst77@example.com'
         BEGIN SELECT RAISE(ABORT, 'an injected defect'); END",
    )
    .unwrap();
    let url = app.hook_url("tagmango", Some(COMPLETED));
    let senders: Vec<_> = (0..200)
        .map(|n| {
            let (client, url) = (app.client.clone(), url.clone());
            let body = tagmango_completed(&format!("burst{n}@example.com"));
            tokio::spawn(async move { client.post(url).body(body).send().await.unwrap() })
        })
        .collect();
    for sender in senders {
        assert_eq!(sender.await.unwrap().status(), 200);
    }
    // The writer waits a moment after a failed projection before it tries again.
    let pending = "SELECT count(*) FROM deliveries WHERE status = 'pending'";
    for _ in 0..600 {
        app.settled().await;
        if app.count(pending) == 0 && app.count("SELECT count(*) FROM deliveries") == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (id, detail): (i64, String) = app
        .db()
        .query_row(
            "SELECT id, detail FROM deliveries WHERE status = 'quarantined'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert!(
        detail.starts_with("understood, but could not be projected")
            && detail.contains("an injected defect"),
        "{detail}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE status = 'projected'"),
        199
    );
    let left = format!("SELECT count(*) FROM facts WHERE delivery_id = {id}");
    assert_eq!(app.count(&left), 0);
    let person = "SELECT count(*) FROM people WHERE uid = 'burst77@example.com'";
    assert_eq!(app.count(person), 0);
    let (_, webinars) = app.get("/api/webinars").await;
    assert_eq!(webinars["webinars"][0]["attended"], 199, "{webinars}");

    db.execute_batch("DROP TRIGGER defect").unwrap();
    let reprocessed = app
        .api(
            reqwest::Method::POST,
            "/api/deliveries/reprocess-quarantined",
        )
        .send()
        .await
        .unwrap();
    let (status, report) = answer(reprocessed).await;
    assert_eq!(
        (status, report["projected"].as_u64()),
        (200, Some(1)),
        "{report}"
    );
    let (_, webinars) = app.get("/api/webinars").await;
    assert_eq!(webinars["webinars"][0]["attended"], 200, "{webinars}");
}

/// Copies of one event on either side of a restart count once. A burst acknowledged from the
/// receipt log is journaled before a clean stop returns (no receipt waits for the next start),
/// and a retry after the restart, journaled before its answer, is its duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_burst_on_either_side_of_a_restart_count_once() {
    let app = spawn_app().await;
    let url = app.hook_url("tagmango", Some(COMPLETED));
    let bodies: Vec<String> = (0..200)
        .map(|n| tagmango_completed(&format!("restart{n}@example.com")))
        .collect();
    let senders: Vec<_> = bodies
        .iter()
        .map(|body| {
            let (client, url, body) = (app.client.clone(), url.clone(), body.clone());
            tokio::spawn(
                async move { answer(client.post(url).body(body).send().await.unwrap()).await },
            )
        })
        .collect();
    let mut received = 0;
    for sender in senders {
        let (status, receipt) = sender.await.unwrap();
        assert_eq!(status, 200, "{receipt}");
        received += usize::from(receipt["status"] == "received");
    }
    assert!(received > 0, "200 at once, and none had company");
    let sources = app.sources.clone();
    let dir = app.stop().await;
    let db = database_path(dir.path());
    let conn = rollcall::store::open_read_only(&db, &StoreOptions::default()).unwrap();
    assert_eq!(
        rollcall::store::receipts::unimported(&conn, &db).unwrap(),
        0
    );
    let journaled: i64 = conn
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journaled, 200);
    drop(conn);

    let app = support::start_in(dir, sources, AppOptions::default()).await;
    for body in bodies.iter().take(20) {
        let (status, retry) =
            answer(app.post("tagmango", Some(COMPLETED), body.clone()).await).await;
        assert_eq!(status, 200, "{retry}");
        assert_eq!(retry["status"], "duplicate", "{retry}");
    }
    app.settled().await;
    assert_eq!(app.count("SELECT count(*) FROM attendance"), 200);
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE status = 'duplicate'"),
        20
    );
}

#[tokio::test]
async fn unknown_tokens_and_platforms_are_refused_stored_nowhere_and_counted() {
    let app = spawn_app().await;
    let url = |platform: &str, token: &str| format!("http://{}/hooks/{platform}/{token}", app.addr);
    let tagmango_token = app.source("tagmango").token.clone();
    for target in [
        url("tagmango", "wrong-token"),
        url("zoom", &tagmango_token),
        // A real token of another platform.
        url("livestorm", &tagmango_token),
    ] {
        let (status, body) =
            answer(app.client.post(&target).body("{}").send().await.unwrap()).await;
        assert_eq!(status, 404, "{target}");
        assert_eq!(body["error"], "not_found");
    }
    // The writer counts refusals with its next batch.
    let (status, _) = answer(
        app.post("tagmango", Some(COMPLETED), tagmango_completed("a@b.co"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.count("SELECT count(*) FROM deliveries"), 1);
    assert_eq!(
        app.count("SELECT coalesce(sum(count), 0) FROM rejections"),
        3
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let app = spawn_app_with(AppOptions {
        body_limit: 1024,
        ..AppOptions::default()
    })
    .await;
    let big = format!(r#"{{"pad": "{}"}}"#, "x".repeat(2048));
    let (status, body) = answer(app.post("gotowebinar", None, big.clone()).await).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "too_large");
    // Without a Content-Length (chunked), the limit holds while reading.
    let chunks = futures_stream(big);
    let response = app
        .client
        .post(app.hook_url("gotowebinar", None))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(app.count("SELECT count(*) FROM deliveries"), 0);
}

fn futures_stream(
    body: String,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .into_bytes()
        .chunks(256)
        .map(|c| Ok(c.to_vec()))
        .collect();
    tokio_stream::iter(chunks)
}

async fn post_signed(
    app: &support::TestApp,
    body: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = app
        .client
        .post(app.hook_url(SIGNED_GOTO, None))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(timestamp) = timestamp {
        request = request.header("X-Webhook-Signature-Timestamp", timestamp);
    }
    if let Some(signature) = signature {
        request = request.header("X-Webhook-Signature", signature);
    }
    answer(request.send().await.unwrap()).await
}

#[tokio::test]
async fn goto_signatures_are_verified_against_every_active_key() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().to_rfc3339();
    let ts = now.as_str();
    let body = goto_registrant("evt-signed");
    for key in GOTO_KEYS {
        let good = signature::sign(key, ts, body.as_bytes());
        let (status, receipt) = post_signed(&app, &body, Some(ts), Some(&good)).await;
        assert_eq!(status, 200, "signed with {key}");
        assert!(receipt["delivery"].is_i64());
    }
    let good = signature::sign(GOTO_KEYS[0], ts, body.as_bytes());
    let old_signature = signature::sign(GOTO_KEYS[0], "2024-01-02T03:04:07.000Z", body.as_bytes());
    let wrong_key = signature::sign("not-a-key-of-this-source", ts, body.as_bytes());
    let reserialized =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&body).unwrap())
            .unwrap();
    let refusals = [
        (
            body.as_str(),
            Some(ts),
            Some(wrong_key.as_str()),
            "wrong key",
        ),
        (
            body.as_str(),
            Some("2024-01-02T03:04:07.000Z"),
            Some(good.as_str()),
            "altered timestamp",
        ),
        (
            body.as_str(),
            Some("2024-01-02T03:04:07.000Z"),
            Some(old_signature.as_str()),
            "replayed from long ago",
        ),
        (
            reserialized.as_str(),
            Some(ts),
            Some(good.as_str()),
            "re-serialized body",
        ),
        (
            body.as_str(),
            None,
            Some(good.as_str()),
            "missing timestamp",
        ),
        (body.as_str(), Some(ts), None, "missing signature"),
        (
            body.as_str(),
            Some(ts),
            Some("not base64!"),
            "malformed signature",
        ),
    ];
    for (body, ts, sig, case) in refusals {
        let (status, answer) = post_signed(&app, body, ts, sig).await;
        assert_eq!(status, 401, "{case}");
        assert_eq!(answer["error"], "bad_signature", "{case}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries"),
        2,
        "refused deliveries are not stored"
    );
    // A source without keys takes unsigned deliveries.
    let (status, _) = answer(
        app.post("gotowebinar", None, goto_registrant("evt-unsigned"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_signed_delivery_outside_the_replay_window_is_refused_with_the_reason() {
    let app = spawn_app_with(AppOptions {
        replay_window: signature::ReplayWindow::from_secs(300),
        ..AppOptions::default()
    })
    .await;
    let body = goto_registrant("evt-replayed");
    let now = chrono::Utc::now();
    let stale = [
        (now - chrono::Duration::minutes(6))
            .timestamp_millis()
            .to_string(),
        (now + chrono::Duration::minutes(6)).timestamp().to_string(),
        (now - chrono::Duration::hours(2)).to_rfc3339(),
    ];
    for ts in &stale {
        let signed = signature::sign(GOTO_KEYS[1], ts, body.as_bytes());
        let (status, answer) = post_signed(&app, &body, Some(ts), Some(&signed)).await;
        assert_eq!(status, 401, "{ts}");
        assert_eq!(answer["error"], "bad_signature");
        assert!(
            answer["message"].as_str().unwrap().contains("replay"),
            "{answer}"
        );
    }
    let fresh = (now - chrono::Duration::minutes(4))
        .timestamp_millis()
        .to_string();
    let signed = signature::sign(GOTO_KEYS[1], &fresh, body.as_bytes());
    let (status, _) = post_signed(&app, &body, Some(&fresh), Some(&signed)).await;
    assert_eq!(status, 200, "inside the window");
    // The same delivery again inside the window: kept as a duplicate, counted once.
    let (status, receipt) = post_signed(&app, &body, Some(&fresh), Some(&signed)).await;
    assert_eq!(status, 200);
    assert_eq!(receipt["status"], "duplicate", "{receipt}");
    assert_eq!(app.count("SELECT count(*) FROM deliveries"), 2);
}

#[tokio::test]
async fn form_encoded_bodies_are_kept_raw_and_read_as_fields() {
    let app = spawn_app().await;
    let form = "conference_id=26ec9ca26c6f&first_name=John&last_name=Doe&email=John.Doe%40Domain.com&custom_field_State=Ohio";
    let response = app
        .client
        .post(app.hook_url("bigmarker", Some("registration")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let (status, receipt) = answer(response).await;
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("projected"))
    );
    let (stored, content_type): (Vec<u8>, String) = app
        .db()
        .query_row("SELECT body, content_type FROM deliveries", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(stored, form.as_bytes());
    assert_eq!(content_type, "application/x-www-form-urlencoded");
    let custom: String = app
        .db()
        .query_row(
            "SELECT custom_fields FROM registrations WHERE person_uid = 'john.doe@domain.com'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(custom.contains("Ohio"), "{custom}");
}

#[tokio::test]
async fn a_50000_attendee_bigmarker_list_is_accepted_and_projected() {
    let app = spawn_app().await;
    let attendees: Vec<_> = (0..50_000)
        .map(|i| {
            json!({
                "bmid": format!("bm{i}"), "first_name": "Attendee", "last_name": format!("Nº{i}"),
                "email": format!("attendee{i}@example.com"), "conference_id": "big-conference",
                "webinar_title": "All hands", "enter_time": "2024-05-01T14:00:00Z",
                "last_leave_time": "2024-05-01T15:00:00Z", "total_duration": "3600",
                "engaged duration": "1800"
            })
        })
        .collect();
    let body = json!({ "attendees": attendees }).to_string();
    assert!(body.len() > 10 << 20, "the body is {} bytes", body.len());
    let (status, receipt) = answer(app.post("bigmarker", Some("attendee-data"), body).await).await;
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("projected"))
    );
    assert_eq!(
        app.count("SELECT count(*) FROM attendance WHERE webinar_uid = 'bigmarker:big-conference'"),
        50_000
    );
    assert_eq!(
        app.count("SELECT sum(engaged_secs) FROM attendance"),
        50_000 * 1800
    );
}

#[tokio::test]
async fn a_store_that_cannot_commit_answers_503_and_loses_nothing() {
    let options = rollcall::store::StoreOptions {
        busy_timeout: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    let app = spawn_app_with(AppOptions {
        store: options,
        ..AppOptions::default()
    })
    .await;
    // Another process holds the write lock.
    let locker =
        rusqlite::Connection::open(rollcall::store::database_path(app.dir.path())).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let response = app
        .post(
            "tagmango",
            Some(COMPLETED),
            tagmango_completed("locked@example.com"),
        )
        .await;
    assert_eq!(response.headers()["retry-after"], "5");
    let (status, body) = answer(response).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")));
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    // The sender retries, and the delivery is stored once.
    let (status, receipt) = answer(
        app.post(
            "tagmango",
            Some(COMPLETED),
            tagmango_completed("locked@example.com"),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("projected"))
    );
    assert_eq!(app.count("SELECT count(*) FROM deliveries"), 1);
}

#[tokio::test]
async fn a_full_disk_answers_503_and_nothing_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = rollcall::store::database_path(dir.path());
    support::add_sources(&db);
    let pages: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let store = rollcall::store::StoreOptions {
        max_page_count: Some(pages as u64 + 40),
        ..Default::default()
    };
    let serve = rollcall::server::ServeOptions {
        data_dir: dir.path().to_owned(),
        ingest_bind: "127.0.0.1:0".parse().unwrap(),
        dashboard_bind: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        tunnel: None,
        body_limit: rollcall::http::ingest::DEFAULT_BODY_LIMIT,
        body_timeout: std::time::Duration::from_secs(60),
        connection_limits: Default::default(),
        replay_window: Default::default(),
        store,
        subscriptions: support::test_subscriptions(),
    };
    let server = rollcall::server::Server::start(&serve).await.unwrap();
    let token = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT token FROM sources WHERE label = 'gotowebinar'",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    let url = format!("http://{}/hooks/gotowebinar/{token}", server.ingest_addr());
    let client = reqwest::Client::new();
    let huge = format!(
        r#"{{"eventName":"registrant.added","pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    let response = client.post(&url).body(huge).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let small = client
        .post(&url)
        .body(goto_registrant("evt-small"))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200, "a delivery that fits is still taken");
    server.stop().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count: i64 = conn
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
    let facts_without_delivery: i64 = conn
        .query_row(
            "SELECT count(*) FROM facts WHERE delivery_id NOT IN (SELECT id FROM deliveries)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(facts_without_delivery, 0);
}

#[tokio::test]
async fn a_stalled_sender_gets_408_and_does_not_hold_up_others() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let options = AppOptions {
        body_timeout: std::time::Duration::from_secs(1),
        ..AppOptions::default()
    };
    let app = spawn_app_with(options).await;
    let token = &app.source("gotowebinar").token;
    let mut stalled = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /hooks/gotowebinar/{token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"eventName\""
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    // Another sender is served while the first one stalls.
    let (status, _) = answer(
        app.post("gotowebinar", None, goto_registrant("evt-while-stalled"))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let mut response = String::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stalled.read_to_string(&mut response),
    );
    read.await.expect("the stalled sender is answered").unwrap();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"timeout\""), "{response}");
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries"),
        1,
        "nothing of the stalled body is stored"
    );
}

/// The receiver keeps sources in memory; a change made through another connection (the CLI
/// beside a running app) must still hold from the very next delivery.
#[tokio::test]
async fn a_source_changed_by_another_process_is_judged_by_what_it_is_now() {
    let app = spawn_app().await;
    let other = open_writer(&database_path(app.dir.path()), &StoreOptions::default()).unwrap();
    let tagmango = app.source("tagmango").clone();
    let post = |url: String, body: String| {
        let request = app
            .client
            .post(url)
            .header("content-type", "application/json");
        async move { answer(request.body(body).send().await.unwrap()).await }
    };
    let old_url = app.hook_url("tagmango", Some(COMPLETED));
    assert_eq!(
        post(old_url.clone(), tagmango_completed("a@example.com"))
            .await
            .0,
        200
    );

    let rotated = sources::rotate(&other, tagmango.id).unwrap();
    let (status, refused) = post(old_url.clone(), tagmango_completed("b@example.com")).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (404, Some("not_found"))
    );
    let new_url = old_url.replace(&tagmango.token, &rotated.token);
    assert_eq!(
        post(new_url.clone(), tagmango_completed("c@example.com"))
            .await
            .0,
        200
    );

    other
        .execute(
            "UPDATE sources SET time_zone = 'Asia/Kolkata' WHERE id = ?1",
            [tagmango.id],
        )
        .unwrap();
    let (status, receipt) = post(new_url.clone(), tagmango_completed("d@example.com")).await;
    assert_eq!(status, 200);
    let zone: String = app
        .db()
        .query_row(
            "SELECT time_zone FROM deliveries WHERE id = ?1",
            [receipt["delivery"].as_i64().unwrap()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        zone, "Asia/Kolkata",
        "the delivery takes the source's zone as it is now"
    );

    sources::remove(&other, tagmango.id).unwrap();
    assert_eq!(
        post(new_url, tagmango_completed("e@example.com")).await.0,
        404
    );

    let ts = chrono::Utc::now().to_rfc3339();
    let body = goto_registrant("evt-key-removed");
    let signed_with = |key: &str| signature::sign(key, &ts, body.as_bytes());
    let first = signed_with(GOTO_KEYS[0]);
    assert_eq!(
        post_signed(&app, &body, Some(&ts), Some(&first)).await.0,
        200
    );
    let signed = app.source(SIGNED_GOTO);
    assert!(sources::remove_secret_key(&other, signed.id, GOTO_KEYS[0]).unwrap());
    let (status, refused) = post_signed(&app, &body, Some(&ts), Some(&first)).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("bad_signature"))
    );
    let second = signed_with(GOTO_KEYS[1]);
    assert_eq!(
        post_signed(&app, &body, Some(&ts), Some(&second)).await.0,
        200
    );

    assert_eq!(
        app.count("SELECT count(*) FROM deliveries"),
        5,
        "nothing refused was stored"
    );
}
