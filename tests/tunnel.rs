//! The tunnel's whole lifecycle with a fake cloudflared (`tests/fake-tunnel/cloudflared.mjs`,
//! which prints like the real one and forwards to the ingest listener): the URL is shown, a
//! test delivery makes the round trip through it and stays out of the reports, the tunnel dies
//! and is restarted with a new URL that is announced as changed, and when Rollcall stops (or is
//! killed) the tunnel program is gone.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use rollcall::server::{ServeOptions, Server};
use rollcall::store::database_path;
use rollcall::subscriptions::PlatformApis;
use rollcall::tunnel::{ProviderKind, TunnelConfig};
use serde_json::{json, Value};
use support::fake_platforms::{FakePlatforms, LIVESTORM_TOKEN};
use support::{add_sources, TestApp, SIGNED_GOTO};

const FAKE_CLOUDFLARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fake-tunnel/cloudflared.mjs"
);

async fn spawn_with_tunnel(program: &str) -> TestApp {
    spawn_with_tunnel_and_apis(program, PlatformApis::default()).await
}

async fn spawn_with_tunnel_and_apis(program: &str, apis: PlatformApis) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let sources = add_sources(&database_path(dir.path()));
    let config = TunnelConfig::new(
        ProviderKind::Cloudflared,
        Some(program.into()),
        None,
        None,
        None,
    )
    .unwrap();
    let options = ServeOptions {
        data_dir: dir.path().to_owned(),
        ingest_bind: "127.0.0.1:0".parse().unwrap(),
        dashboard_bind: "127.0.0.1:0".parse().unwrap(),
        body_limit: rollcall::http::ingest::DEFAULT_BODY_LIMIT,
        body_timeout: Duration::from_secs(60),
        connection_limits: Default::default(),
        replay_window: Default::default(),
        subscriptions: rollcall::subscriptions::SubscriptionOptions {
            use_keychain: false,
            apis,
        },
        public_url: None,
        tunnel: Some(config),
        store: Default::default(),
    };
    let server = Server::start(&options).await.expect("server starts");
    TestApp {
        addr: server.ingest_addr(),
        dashboard: server.dashboard_addr(),
        token: server.dashboard_access().token().to_owned(),
        server: Some(server),
        dir,
        client: reqwest::Client::new(),
        sources,
    }
}

/// Polls `GET /api/tunnel` until `wanted` holds (the fake needs a moment to start).
async fn tunnel_until(app: &TestApp, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (status, tunnel) = app.get("/api/tunnel").await;
        assert_eq!(status, 200, "{tunnel}");
        if wanted(&tunnel) {
            return tunnel;
        }
        last = tunnel;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the tunnel never became {what}: {last:#}");
}

fn state(tunnel: &Value) -> &str {
    tunnel["status"]["state"].as_str().unwrap_or_default()
}

/// Whether a process runs (a zombie waiting for a parent that does not reap does not).
fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn self_test(app: &TestApp, label: &str) -> Value {
    let response = app
        .api(Method::POST, "/api/self-test")
        .json(&json!({ "source_id": app.source(label).id }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_tunnel_comes_up_carries_a_test_delivery_survives_its_death_and_dies_with_rollcall() {
    let app = spawn_with_tunnel(FAKE_CLOUDFLARED).await;

    // The URL is the one the metrics endpoint reports, not the banner's, and it is new.
    let up = tunnel_until(&app, "up", |t| state(t) == "up").await;
    let first_url = up["url"].as_str().unwrap().to_owned();
    assert!(first_url.starts_with("http://127.0.0.1:"), "{up:#}");
    assert_eq!(up["provider"], "cloudflared");
    assert_eq!(up["changed"], false);
    assert_eq!(up["through_tunnel"], true);
    assert_eq!(up["hook_base_url"], first_url.as_str());
    let output = up["output"].as_array().unwrap();
    assert!(output
        .iter()
        .any(|l| l.as_str().unwrap().contains("api.trycloudflare.com")));
    let (_, sources) = app.get("/api/sources").await;
    let url = sources[0]["hook_urls"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{first_url}/hooks/")), "{url}");

    // A test delivery goes through the tunnel, signed where the source requires it.
    for label in ["bigmarker", SIGNED_GOTO] {
        let result = self_test(&app, label).await;
        assert_eq!(result["passed"], true, "{label}: {result:#}");
        assert_eq!(result["through_tunnel"], true);
        assert_eq!(result["marked_as_test"], true);
        let id = result["delivery"].as_i64().unwrap();
        let (_, detail) = app.get(&format!("/api/deliveries/{id}")).await;
        assert_eq!(detail["via"], "self_test");
        assert_eq!(detail["status"], "ignored");
        // It came through the fake tunnel, which adds Cloudflare's header.
        assert_eq!(detail["headers"]["cf-connecting-ip"], "203.0.113.7");
        assert!(detail["headers"].get("x-rollcall-self-test").is_none());
    }
    // Reports never count them.
    let (_, webinars) = app.get("/api/webinars").await;
    assert_eq!(webinars["webinars"], json!([]), "{webinars:#}");
    assert_eq!(app.count("SELECT count(*) FROM facts"), 0);
    assert_eq!(app.count("SELECT count(*) FROM people"), 0);

    // A marker from anyone else hides nothing: the delivery counts as usual.
    let forged = app
        .client
        .post(format!("{first_url}/hooks/bigmarker/{}/registration", app.source("bigmarker").token))
        .header("x-rollcall-self-test", "guessed")
        .header("content-type", "application/json")
        .body(r#"{"registration":{"bmid":"b1","email":"ana@example.com","conference_id":"c1","time_stamp":"2024-05-10T09:00:00Z"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 200);
    let receipt: Value = forged.json().await.unwrap();
    assert_eq!(receipt["status"], "projected", "{receipt}");
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries WHERE via = 'webhook'"),
        1
    );

    // The tunnel dies: it is reported down, restarted, and its new URL announced as changed,
    // with every source listed for re-pointing.
    // The dashboard's event stream tells of it as it happens.
    let mut events = app.api(Method::GET, "/api/events").send().await.unwrap();
    let told_down = tokio::spawn(async move {
        let mut seen = String::new();
        let reading = async {
            while let Ok(Some(chunk)) = events.chunk().await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains("event: tunnel") && seen.contains(r#""state":"down""#) {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(Duration::from_secs(30), reading)
            .await
            .unwrap_or(false)
    });
    let first_pid = up["pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first_pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let down = tunnel_until(&app, "down", |t| state(t) == "down").await;
    assert!(
        down["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("exited"),
        "{down:#}"
    );
    let again = tunnel_until(&app, "up again", |t| state(t) == "up" && t["starts"] == 2).await;
    let second_url = again["url"].as_str().unwrap();
    assert_ne!(second_url, first_url);
    assert_eq!(again["changed"], true);
    assert_eq!(again["previous_url"], first_url.as_str());
    assert_eq!(
        again["repoint"].as_array().unwrap().len(),
        app.sources.len()
    );
    assert!(!alive(first_pid));
    assert!(told_down.await.unwrap(), "no tunnel event said it was down");
    assert_eq!(self_test(&app, "livestorm").await["passed"], true);

    // The restart button starts it once more.
    let restarted = app
        .api(Method::POST, "/api/tunnel/restart")
        .send()
        .await
        .unwrap();
    assert_eq!(restarted.status(), 202);
    let third = tunnel_until(&app, "restarted", |t| state(t) == "up" && t["starts"] == 3).await;
    let third_pid = third["pid"].as_i64().unwrap();
    assert!(alive(third_pid));

    // Rollcall stops: the tunnel program is gone with it.
    app.stop().await;
    assert!(!alive(third_pid), "the tunnel program outlived Rollcall");
}

#[tokio::test]
async fn a_missing_tunnel_program_is_reported_with_how_to_install_it() {
    let app = spawn_with_tunnel("/nonexistent/cloudflared").await;
    let tunnel = tunnel_until(&app, "not installed", |t| state(t) == "not_installed").await;
    let how = tunnel["status"]["how_to_install"].as_str().unwrap();
    assert!(how.contains("brew install cloudflared"), "{how}");
    assert_eq!(tunnel["through_tunnel"], false);
    // Hook URLs fall back to the ingest listener's own address.
    assert_eq!(tunnel["hook_base_url"], format!("http://{}", app.addr));
    app.stop().await;
}

/// The processes whose parent is `parent`, from /proc.
#[cfg(target_os = "linux")]
fn children_of(parent: u32) -> Vec<i64> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let pid: i64 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after_name = stat.rsplit_once(')')?.1;
            let ppid: u32 = after_name.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_rollcall_takes_its_tunnel_program_with_it() {
    let dir = tempfile::tempdir().unwrap();
    add_sources(&database_path(dir.path()));
    let mut rollcall = support::serve_command(dir.path())
        .args([
            "--tunnel",
            "cloudflared",
            "--tunnel-program",
            FAKE_CLOUDFLARED,
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(rollcall.stdout.take().unwrap()).lines();
    let up = lines
        .find_map(|line| {
            line.ok()
                .filter(|l| l.starts_with("Tunnel up: http://127.0.0.1:"))
        })
        .expect("serve prints the tunnel's URL");
    // The sources follow, with hook URLs under the tunnel's URL.
    let url = up.split_whitespace().nth(2).unwrap().to_owned();
    assert!(lines
        .take(20)
        .any(|l| l.unwrap().contains(&format!("{url}/hooks/bigmarker/"))));
    let tunnel = children_of(rollcall.id());
    assert_eq!(tunnel.len(), 1, "{tunnel:?}");
    let cmdline = std::fs::read_to_string(format!("/proc/{}/cmdline", tunnel[0])).unwrap();
    assert!(cmdline.contains("cloudflared.mjs"), "{cmdline}");

    rollcall.kill().unwrap();
    rollcall.wait().unwrap();
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        !alive(tunnel[0])
    });
    assert!(gone, "the tunnel program outlived a killed Rollcall");
}

#[test]
fn tunnel_options_a_provider_needs_are_asked_for_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        support::serve_command(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let cases: [(&[&str], &str); 4] = [
        (&["--tunnel", "custom"], "--tunnel-command"),
        (
            &[
                "--tunnel",
                "custom",
                "--tunnel-command",
                "bore local {port}",
            ],
            "--tunnel-url-pattern",
        ),
        (
            &[
                "--tunnel",
                "custom",
                "--tunnel-command",
                "x",
                "--tunnel-url-pattern",
                "(",
            ],
            "not a valid regex",
        ),
        (&["--tunnel", "wormhole"], "invalid value 'wormhole'"),
    ];
    for (args, expected) in cases {
        let output = serve(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// When the organizer allowed it, a new tunnel URL re-points every automatic subscription by
/// itself: the platform's API is told the new URLs without a click.
#[tokio::test]
async fn a_new_tunnel_url_re_points_the_automatic_subscriptions_by_itself() {
    let platforms = FakePlatforms::start().await;
    let app = spawn_with_tunnel_and_apis(FAKE_CLOUDFLARED, platforms.apis()).await;
    let up = tunnel_until(&app, "up", |t| state(t) == "up").await;
    let first_url = up["url"].as_str().unwrap().to_owned();

    let id = app.source("livestorm").id;
    let key = app
        .api(Method::PUT, &format!("/api/sources/{id}/credentials"))
        .json(&json!({ "secret": LIVESTORM_TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 204);
    let auto = app
        .api(Method::PUT, "/api/subscriptions/settings")
        .json(&json!({ "auto_repoint": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(auto.status(), 200);
    let (status, subscribed) = support::answer(
        app.api(Method::POST, &format!("/api/sources/{id}/subscribe"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{subscribed}");
    let hook_urls = |overview: &Value| -> Vec<String> {
        overview["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["hook_url"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = hook_urls(&app.get("/api/subscriptions").await.1);
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|u| u.starts_with(&first_url)),
        "{before:?}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up["pid"].as_i64().unwrap() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let again = tunnel_until(&app, "up again", |t| state(t) == "up" && t["starts"] == 2).await;
    let second_url = again["url"].as_str().unwrap().to_owned();
    assert_ne!(second_url, first_url);

    let mut after = Vec::new();
    for _ in 0..300 {
        after = hook_urls(&app.get("/api/subscriptions").await.1);
        if after.iter().all(|u| u.starts_with(&second_url)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|u| u.starts_with(&second_url)),
        "{after:?}"
    );
    let told: Vec<String> = platforms
        .state
        .calls_to("/livestorm/v1/webhooks")
        .iter()
        .filter(|c| c.method == axum::http::Method::POST)
        .filter_map(|c| {
            c.body
                .pointer("/data/attributes/url")?
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(
        told.iter().any(|u| u.starts_with(&second_url)),
        "Livestorm was given the new URL: {told:?}"
    );
}
