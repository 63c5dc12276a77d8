//! The dashboard API over real HTTP: every endpoint on the scenario, bad parameters answered
//! with a clear 4xx, and the access rules: token required, loopback Host only, never reachable
//! through the ingest listener.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{answer, TestApp};

const BIGMARKER: &str = "bigmarker:b7c41e9a2d05";
const LIVESTORM: &str = "livestorm:3c9d2f6e-8b1a-4e57-9f02-6d4a1b7c8e93";
const LIVESTORM_SESSION_A: &str = "a1f0c3d2-5e6b-4a7c-8d9e-0f1a2b3c4d5e";

async fn scenario_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = rollcall::store::database_path(dir.path());
    let sources = support::add_sources(&db);
    support::scenario::record_into(&db, &support::scenario::multi_platform());
    support::start_in(dir, sources, Default::default()).await
}

fn assert_error(status: u16, body: &Value, expected_status: u16, kind: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["kind"], kind, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn requests_without_the_token_or_with_a_wrong_one_are_refused() {
    let app = scenario_app().await;
    let url = format!("http://{}/api/webinars", app.dashboard);
    let (status, body) = answer(app.client.get(&url).send().await.unwrap()).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = answer(
        app.client
            .get(&url)
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 401, "unauthorized");
    let cookie = format!("rollcall_session={}x", app.token);
    let (status, _) = answer(
        app.client
            .get(&url)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = app.get("/api/webinars").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused_even_with_the_token() {
    let app = scenario_app().await;
    let request = app
        .api(Method::GET, "/api/webinars")
        .header("host", "attacker.example:80");
    let (status, body) = answer(request.send().await.unwrap()).await;
    assert_error(status, &body, 403, "forbidden");
    let rebinding = format!("rebind.example:{}", app.dashboard.port());
    let (status, _) = answer(
        app.api(Method::GET, "/api/webinars")
            .header("host", rebinding)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    let localhost = format!("localhost:{}", app.dashboard.port());
    let (status, _) = answer(
        app.api(Method::GET, "/api/webinars")
            .header("host", localhost)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let cross_site = app
        .api(Method::POST, "/api/deliveries/reprocess-quarantined")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    let (status, body) = answer(cross_site).await;
    assert_error(status, &body, 403, "forbidden");
    let no_cors = app
        .api(Method::GET, "/api/webinars")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(no_cors
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn the_dashboard_is_not_reachable_through_the_ingest_listener() {
    let app = scenario_app().await;
    for path in [
        "/api/webinars",
        "/api/meta",
        "/login?code=x",
        "/api/export/webinars",
        "/api/events",
    ] {
        let response = app
            .client
            .get(format!("http://{}{path}", app.addr))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path} on the ingest port");
    }
    assert_ne!(app.addr, app.dashboard);
    assert!(app.dashboard.ip().is_loopback());
}

#[tokio::test]
async fn the_dashboard_refuses_to_listen_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let options = rollcall::server::ServeOptions {
        data_dir: dir.path().to_owned(),
        ingest_bind: "127.0.0.1:0".parse().unwrap(),
        dashboard_bind: "0.0.0.0:0".parse().unwrap(),
        body_limit: 1024,
        body_timeout: std::time::Duration::from_secs(60),
        connection_limits: Default::default(),
        replay_window: Default::default(),
        public_url: None,
        tunnel: None,
        store: Default::default(),
        subscriptions: support::test_subscriptions(),
    };
    let error = rollcall::server::Server::start(&options)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[tokio::test]
async fn the_login_link_sets_the_session_cookie_once() {
    let app = scenario_app().await;
    let server = app.server.as_ref().unwrap();
    let link = server.dashboard_access().login_url().unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(&link).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let api = format!("http://{}/api/meta", app.dashboard);
    let (status, meta) = answer(
        client
            .get(&api)
            .header("cookie", &session)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(meta["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        client.get(&link).send().await.unwrap().status(),
        401,
        "the link works once"
    );
    assert!(server.dashboard_access().login_url().is_none());
}

#[tokio::test]
async fn the_webinar_list_filters_sorts_and_checks_its_parameters() {
    let app = scenario_app().await;
    let (status, all) = app.get("/api/webinars?tz=America/New_York").await;
    assert_eq!(status, 200);
    assert_eq!(all["time_zone"], "America/New_York");
    assert_eq!(all["webinars"].as_array().unwrap().len(), 4);
    let (_, bigmarker) = app.get("/api/webinars?platform=bigmarker").await;
    assert_eq!(bigmarker["webinars"][0]["uid"], BIGMARKER);
    assert_eq!(bigmarker["webinars"][0]["registered"], 3);
    assert_eq!(bigmarker["webinars"][0]["attendance_rate"], 0.6667);
    let (_, found) = app.get("/api/webinars?q=zero-trust").await;
    assert_eq!(found["webinars"].as_array().unwrap().len(), 1);
    let (_, june) = app
        .get("/api/webinars?from=2024-06-01&to=2024-07-01&tz=UTC")
        .await;
    assert_eq!(june["webinars"].as_array().unwrap().len(), 1);
    let (_, by_registered) = app.get("/api/webinars?sort=registered&order=asc").await;
    let counts: Vec<u64> = by_registered["webinars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["registered"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    // A page is the top of the sorted list; the total counts every match.
    let (_, page) = app
        .get("/api/webinars?sort=registered&order=asc&limit=2")
        .await;
    assert_eq!(page["total"], 4);
    assert_eq!(
        page["webinars"].as_array().unwrap()[..],
        by_registered["webinars"].as_array().unwrap()[..2]
    );
    assert_eq!(all["total"], 4);
    for bad in [
        "/api/webinars?limit=0",
        "/api/webinars?limit=many",
        "/api/webinars?platform=zoom",
        "/api/webinars?tz=Mars/Olympus",
        "/api/webinars?from=yesterday",
        "/api/webinars?from=2024-07-01&to=2024-06-01",
        "/api/webinars?sort=loudness",
        "/api/webinars?order=sideways",
    ] {
        let (status, body) = app.get(bad).await;
        assert_error(status, &body, 400, "bad_request");
    }
}

#[tokio::test]
async fn a_webinar_report_per_webinar_and_per_session() {
    let app = scenario_app().await;
    let (status, report) = app
        .get(&format!("/api/webinars/{BIGMARKER}?tz=Europe/Berlin"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["time_zone"], "Europe/Berlin");
    assert_eq!(report["numbers"]["registered"], 3);
    assert_eq!(report["numbers"]["peak_concurrent"], 2);
    assert!(report["webinar"]["started_at"]
        .as_str()
        .unwrap()
        .ends_with("+02:00"));
    let (status, session) = app
        .get(&format!(
            "/api/webinars/{LIVESTORM}?session={LIVESTORM_SESSION_A}"
        ))
        .await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["numbers"]["platform_attendance_rate"], 85.0);
    assert_eq!(session["hosts"], json!(["sofia.marin@brightpath.io"]));
    let (status, body) = app.get("/api/webinars/zoom:123").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .get(&format!("/api/webinars/{LIVESTORM}?session=nope"))
        .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app
        .get(&format!("/api/webinars/{BIGMARKER}?tz=Nowhere"))
        .await;
    assert_error(status, &body, 400, "bad_request");
}

#[tokio::test]
async fn timelines_people_lists_and_people() {
    let app = scenario_app().await;
    let (status, timeline) = app
        .get(&format!("/api/webinars/{BIGMARKER}/timeline"))
        .await;
    assert_eq!(status, 200);
    assert!(!timeline["entries"].as_array().unwrap().is_empty());
    assert_eq!(timeline["presence_known"], 3);
    let (_, no_shows) = app
        .get(&format!("/api/webinars/{BIGMARKER}/people/no-shows"))
        .await;
    let emails: Vec<&str> = no_shows["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["tomas.reyes@alturadata.mx"]);
    assert_eq!(no_shows["total"], 1);
    let (_, registrants) = app
        .get(&format!("/api/webinars/{BIGMARKER}/people/registrants"))
        .await;
    let everyone = registrants["people"].as_array().unwrap().clone();
    assert!(everyone.len() > 2, "{registrants}");
    assert_eq!(registrants["total"], everyone.len());
    let (_, first_two) = app
        .get(&format!(
            "/api/webinars/{BIGMARKER}/people/registrants?limit=2"
        ))
        .await;
    assert_eq!(first_two["people"].as_array().unwrap()[..], everyone[..2]);
    assert_eq!(
        first_two["total"],
        everyone.len(),
        "the total is of everyone"
    );
    // The session and zone still choose the list when a limit is given.
    let (_, whole) = app
        .get(&format!("/api/webinars/{LIVESTORM}/people/registrants"))
        .await;
    let (status, one_session) = app
        .get(&format!(
            "/api/webinars/{LIVESTORM}/people/registrants?session={LIVESTORM_SESSION_A}&tz=Asia/Tokyo&limit=100"
        ))
        .await;
    assert_eq!(status, 200, "{one_session}");
    assert_eq!(one_session["time_zone"], "Asia/Tokyo");
    let (_, session_report) = app
        .get(&format!(
            "/api/webinars/{LIVESTORM}?session={LIVESTORM_SESSION_A}"
        ))
        .await;
    let (_, webinar_report) = app.get(&format!("/api/webinars/{LIVESTORM}")).await;
    assert_eq!(
        one_session["total"],
        session_report["numbers"]["registered"]
    );
    assert_eq!(whole["total"], webinar_report["numbers"]["registered"]);
    let (status, body) = app
        .get(&format!(
            "/api/webinars/{LIVESTORM}/people/registrants?session=no-such-session&limit=5"
        ))
        .await;
    assert_error(status, &body, 404, "not_found");
    for bad in ["0", "-1", "many"] {
        let (status, body) = app
            .get(&format!(
                "/api/webinars/{BIGMARKER}/people/registrants?limit={bad}"
            ))
            .await;
        assert_error(status, &body, 400, "bad_request");
    }
    let (status, body) = app
        .get(&format!("/api/webinars/{BIGMARKER}/people/fans"))
        .await;
    assert_error(status, &body, 404, "not_found");
    let (_, people) = app.get("/api/people?q=priya").await;
    assert_eq!(people.as_array().map(Vec::len), Some(1), "{people}");
    let (status, priya) = app.get("/api/people/Priya.Raman@Northwind.IO").await;
    assert_eq!(status, 200);
    assert_eq!(priya["webinars_attended"], 2);
    let (status, body) = app.get("/api/people/nobody@example.com").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = app.get("/api/people?limit=0").await;
    assert_error(status, &body, 400, "bad_request");
}

#[tokio::test]
async fn the_journal_can_be_browsed_and_reprocessed() {
    let app = scenario_app().await;
    let (status, list) = app.get("/api/deliveries?limit=5").await;
    assert_eq!(status, 200);
    assert_eq!(list["deliveries"].as_array().unwrap().len(), 5);
    assert_eq!(list["counts"]["duplicate"], 9);
    let (_, duplicates) = app.get("/api/deliveries?status=duplicate&limit=100").await;
    assert_eq!(duplicates["deliveries"].as_array().unwrap().len(), 9);
    let (status, body) = app.get("/api/deliveries?status=lost").await;
    assert_error(status, &body, 400, "bad_request");
    let (status, detail) = app.get("/api/deliveries/1").await;
    assert_eq!(status, 200);
    assert!(detail["body"].as_str().unwrap().contains("webinar.created"));
    assert_eq!(detail["body_is_utf8"], true);
    let (status, body) = app.get("/api/deliveries/99999").await;
    assert_error(status, &body, 404, "not_found");

    let reprocessed = app
        .api(Method::POST, "/api/deliveries/1/reprocess")
        .send()
        .await
        .unwrap();
    let (status, receipt) = answer(reprocessed).await;
    assert_eq!(
        (status, receipt["status"].as_str()),
        (200, Some("projected"))
    );
    let duplicate_id = duplicates["deliveries"][0]["id"].as_i64().unwrap();
    let refused = app
        .api(
            Method::POST,
            &format!("/api/deliveries/{duplicate_id}/reprocess"),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = answer(refused).await;
    assert_error(status, &body, 400, "bad_request");
    // A quarantined delivery, reprocessed in bulk, stays quarantined (the body is still bad).
    let (_, quarantined) = answer(app.post("gotowebinar", None, "{oops").await).await;
    let all = app
        .api(Method::POST, "/api/deliveries/reprocess-quarantined")
        .send()
        .await
        .unwrap();
    let (status, report) = answer(all).await;
    assert_eq!(
        (status, report["quarantined"].as_u64()),
        (200, Some(1)),
        "{quarantined}"
    );
    let (_, after) = app.get(&format!("/api/webinars/{BIGMARKER}")).await;
    assert_eq!(
        after["numbers"]["registered"], 3,
        "reprocessing changed no numbers"
    );
}

#[tokio::test]
async fn sources_are_listed_added_rotated_and_removed() {
    let app = scenario_app().await;
    let (_, listed) = app.get("/api/sources").await;
    assert_eq!(listed.as_array().unwrap().len(), 5);
    let tagmango = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "tagmango")
        .unwrap();
    let urls: Vec<&str> = tagmango["hook_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["url"].as_str().unwrap())
        .collect();
    assert!(urls
        .iter()
        .any(|u| u.ends_with("/webinar.completed.all")
            && u.starts_with(&format!("http://{}", app.addr))));

    let new =
        json!({"platform": "livestorm", "label": "Livestorm EU", "time_zone": "Europe/Paris"});
    let (status, added) = answer(
        app.api(Method::POST, "/api/sources")
            .json(&new)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["time_zone"], "Europe/Paris");
    let id = added["id"].as_i64().unwrap();
    let old_url = added["hook_urls"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(app.client.get(&old_url).send().await.unwrap().status(), 200);

    let (status, rotated) = answer(
        app.api(Method::POST, &format!("/api/sources/{id}/rotate"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(rotated["token"], added["token"]);
    assert_eq!(
        app.client.get(&old_url).send().await.unwrap().status(),
        404,
        "the old URL stops at once"
    );

    let removed = app
        .api(Method::DELETE, &format!("/api/sources/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let again = app
        .api(Method::DELETE, &format!("/api/sources/{id}"))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(again).await;
    assert_error(status, &body, 400, "bad_request");

    for bad in [
        json!({"platform": "zoom", "label": "x"}),
        json!({"platform": "bigmarker", "label": "x", "time_zone": "Atlantis/Capital"}),
        json!({"platform": "bigmarker", "label": "x", "secret_keys": ["k"]}),
        json!({"platform": "bigmarker", "label": "tagmango"}),
    ] {
        let (status, body) = answer(
            app.api(Method::POST, "/api/sources")
                .json(&bad)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_error(status, &body, 400, "bad_request");
    }
}

#[tokio::test]
async fn exports_stream_csv_and_check_their_parameters() {
    let app = scenario_app().await;
    let response = app
        .api(
            Method::GET,
            &format!(
                "/api/export/attendees.csv?webinar={BIGMARKER}&tz=America/New_York&excel=true"
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("attendees-bigmarker-b7c41e9a2d05.csv"),
        "{disposition}"
    );
    let body = response.text().await.unwrap();
    let snapshot = include_str!("snapshots/reports__attendees-bigmarker-b7c41e9a2d05.csv.snap");
    let expected = snapshot.splitn(3, "---\n").nth(2).unwrap().trim_end();
    assert_eq!(
        body.strip_prefix('\u{feff}')
            .unwrap()
            .replace("\r\n", "\n")
            .trim_end(),
        expected
    );

    let webinars = app
        .api(Method::GET, "/api/export/webinars.csv?platform=gotowebinar")
        .send()
        .await
        .unwrap();
    assert_eq!(webinars.text().await.unwrap().lines().count(), 2);
    let (status, body) = answer(
        app.api(Method::GET, "/api/export/attendees.csv")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 400, "bad_request");
    let (status, body) = answer(
        app.api(Method::GET, "/api/export/attendees.csv?webinar=zoom:1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = answer(
        app.api(Method::GET, "/api/export/fans.csv?webinar=zoom:1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 404, "not_found");
}

#[tokio::test]
async fn a_formula_in_a_name_is_neutralized_in_exports() {
    let app = support::spawn_app().await;
    let body = json!({
        "name": "=HYPERLINK(\"http://evil\",\"x\")", "email": "evil@example.com", "phone": "+15551234567",
        "webinar": "@SUM(1)", "webinarId": "w1", "webinarLink": "https://x"
    });
    let (status, _) = answer(
        app.post("tagmango", Some("webinar.completed.all"), body.to_string())
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let csv = app
        .api(Method::GET, "/api/export/attendees.csv?webinar=tagmango:w1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.contains("'=HYPERLINK") && csv.contains("'+15551234567"),
        "{csv}"
    );
    let webinars = app
        .api(Method::GET, "/api/export/webinars.csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(webinars.contains(",'@SUM(1),"), "{webinars}");
}

#[tokio::test]
async fn the_event_stream_batches_a_burst_of_deliveries() {
    let app = support::spawn_app().await;
    let response = app.api(Method::GET, "/api/events").send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let url = app.hook_url("tagmango", Some("webinar.completed.all"));
    let senders: Vec<_> = (0..200)
        .map(|i| {
            let (client, url) = (app.client.clone(), url.clone());
            let body = json!({"name": "P", "email": format!("p{i}@example.com"), "webinar": "Burst", "webinarId": "burst", "webinarLink": "x"});
            tokio::spawn(async move { client.post(url).body(body.to_string()).send().await.unwrap().status() })
        })
        .collect();
    for sender in senders {
        assert_eq!(sender.await.unwrap(), 200);
    }
    // Deliveries are announced when journaled, webinars when projected (maybe later).
    let mut seen = 0;
    let mut events = 0;
    let mut webinars = std::collections::BTreeSet::new();
    let mut text = String::new();
    while seen < 200 || webinars.is_empty() {
        let chunk = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            futures_next(&mut stream),
        )
        .await
        .expect("events arrive")
        .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let changes: Value = serde_json::from_str(data).unwrap();
                seen += changes["deliveries"].as_u64().unwrap();
                for webinar in changes["webinars"].as_array().unwrap() {
                    webinars.insert(webinar.as_str().unwrap().to_owned());
                }
                events += 1;
            }
        }
    }
    assert_eq!(seen, 200);
    assert_eq!(webinars, ["tagmango:burst".to_owned()].into());
    assert!(
        events < 50,
        "{events} events for 200 deliveries: not batched"
    );
}

async fn futures_next(
    stream: &mut (impl futures_core::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
) -> Option<bytes::Bytes> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx))
        .await
        .map(|r| r.unwrap())
}

#[tokio::test]
async fn the_ui_page_is_served_with_a_strict_content_security_policy() {
    let app = support::spawn_app().await;
    let page = app
        .client
        .get(format!("http://{}/", app.dashboard))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("<"), "an HTML page");
    let missing = app
        .client
        .get(format!("http://{}/assets/nope.js", app.dashboard))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // The page is not served to a foreign Host either.
    let foreign = app
        .client
        .get(format!("http://{}/", app.dashboard))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
}

#[tokio::test]
async fn a_second_receiver_on_the_same_data_directory_is_refused_clearly() {
    let app = support::spawn_app().await;
    let options = rollcall::server::ServeOptions {
        data_dir: app.dir.path().to_owned(),
        ingest_bind: "127.0.0.1:0".parse().unwrap(),
        dashboard_bind: "127.0.0.1:0".parse().unwrap(),
        body_limit: 1024,
        body_timeout: std::time::Duration::from_secs(60),
        connection_limits: Default::default(),
        replay_window: Default::default(),
        public_url: None,
        tunnel: None,
        store: Default::default(),
        subscriptions: support::test_subscriptions(),
    };
    let error = rollcall::server::Server::start(&options)
        .await
        .err()
        .expect("refused");
    let message = error.to_string();
    assert!(
        message.contains("already running") && message.contains(&app.dashboard.to_string()),
        "{message}"
    );
    let dir = app.stop().await;
    let again = rollcall::server::Server::start(&rollcall::server::ServeOptions {
        data_dir: dir.path().to_owned(),
        ..options
    })
    .await
    .expect("the lock is released when the first stops");
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_from_the_dashboard_is_whole_while_webhooks_keep_arriving() {
    let app = scenario_app().await;
    let url = app.hook_url("tagmango", Some("webinar.completed.all"));
    let sending = tokio::spawn({
        let client = app.client.clone();
        async move {
            for n in 0..200 {
                let body = format!(
                    r#"{{"name":"B{n}","email":"b{n}@example.com","webinar":"Backup","webinarId":"bk"}}"#
                );
                let response = client.post(&url).body(body).send().await.unwrap();
                assert_eq!(response.status(), 200);
            }
        }
    });
    let mut files = Vec::new();
    for _ in 0..3 {
        let (status, backup) =
            answer(app.api(Method::POST, "/api/backup").send().await.unwrap()).await;
        assert_eq!(status, 200, "{backup}");
        let file = std::path::PathBuf::from(backup["file"].as_str().unwrap());
        assert_eq!(file.parent().unwrap(), app.dir.path().join("backups"));
        let copy = rusqlite::Connection::open(&file).unwrap();
        let integrity: String = copy
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let deliveries: i64 = copy
            .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(deliveries, backup["deliveries"].as_i64().unwrap());
        let facts_without_delivery: i64 = copy
            .query_row(
                "SELECT count(*) FROM facts WHERE delivery_id NOT IN (SELECT id FROM deliveries)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            facts_without_delivery, 0,
            "the copy is one consistent moment"
        );
        files.push(file);
    }
    sending.await.unwrap();
    files.dedup();
    assert_eq!(files.len(), 3, "each backup is a new file");
    let cross_site = app
        .api(Method::POST, "/api/backup")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let without_token = app
        .client
        .post(format!("http://{}/api/backup", app.dashboard))
        .send()
        .await
        .unwrap();
    assert_eq!(without_token.status(), 401);
}

#[tokio::test]
async fn a_kept_report_is_recomputed_after_any_change_to_the_projection() {
    let app = support::spawn_app().await;
    let register = |webinar: &'static str, email: &'static str, last: &'static str, day: u8| {
        let body = json!({"registration": {"first_name": "Ann", "last_name": last,
            "email": email, "conference_id": webinar,
            "time_stamp": format!("2026-01-{day:02}T00:00:00Z")}});
        let app = &app;
        async move {
            let response = app
                .post("bigmarker", Some("registration"), body.to_string())
                .await;
            assert_eq!(response.status(), 200);
            app.settled().await;
        }
    };
    let report = "/api/webinars/bigmarker:a";
    let timeline = "/api/webinars/bigmarker:a/timeline";
    register("a", "ann@example.com", "Lee", 1).await;
    let (_, first) = app.get(report).await;
    assert_eq!(first["numbers"]["registered"], 1, "{first}");
    let (_, first_timeline) = app.get(timeline).await;
    assert_eq!(app.get(report).await.1, first, "asked again: the same");
    assert_eq!(app.get(timeline).await.1, first_timeline);

    register("a", "bob@example.com", "Roe", 2).await;
    let (_, second) = app.get(report).await;
    assert_eq!(second["numbers"]["registered"], 2, "{second}");
    let total = |t: &Value| t["entries_total"].as_u64().unwrap();
    let (_, second_timeline) = app.get(timeline).await;
    assert_eq!(total(&second_timeline), total(&first_timeline) + 1);

    // A registration for another webinar renames Ann: webinar a's timeline names her anew.
    let labels = |t: &Value| -> Vec<String> {
        t["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["person"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(labels(&second_timeline).contains(&"Ann Lee <ann@example.com>".to_owned()));
    register("b", "ann@example.com", "Lee-Smith", 3).await;
    let (_, person) = app.get("/api/people?q=ann%40example.com").await;
    assert_eq!(person[0]["name"], "Ann Lee-Smith", "{person}");
    let (_, renamed) = app.get(timeline).await;
    assert!(
        labels(&renamed).contains(&"Ann Lee-Smith <ann@example.com>".to_owned()),
        "{:?}",
        labels(&renamed)
    );
}
