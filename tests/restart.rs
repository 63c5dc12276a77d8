//! Deliveries acknowledged before the process is killed with SIGKILL are all in the journal,
//! byte for byte, after a restart: a 200 means committed.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollcall::store::{database_path, open_read_only, StoreOptions};

/// `rollcall serve` on `data_dir`, both listeners on free ports, printing to a pipe.
fn serve_command(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rollcall"));
    command
        .args([
            "serve",
            "--ingest-bind",
            "127.0.0.1:0",
            "--dashboard-bind",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(Stdio::piped());
    command
}

/// Starts `rollcall serve` on a free port; returns the child and the address it printed.
fn start(data_dir: &std::path::Path) -> (Child, String) {
    let mut child = serve_command(data_dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .find_map(|line| {
            let line = line.ok()?;
            let rest = line.split("receiving webhooks on http://").nth(1)?;
            Some(rest.split('/').next()?.to_owned())
        })
        .expect("serve prints its address");
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deliveries_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let sources = support::add_sources(&database_path(dir.path()));
    let token = sources["tagmango"].token.clone();
    let mut acknowledged: HashMap<i64, String> = HashMap::new();
    for round in 0..3 {
        let (mut child, addr) = start(dir.path());
        let url = format!("http://{addr}/hooks/tagmango/{token}/webinar.completed.all");
        let running = Arc::new(AtomicBool::new(true));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let mut senders = Vec::new();
        for sender in 0..16 {
            let (url, running, acked) = (url.clone(), running.clone(), acked.clone());
            senders.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = 0;
                while running.load(Ordering::Relaxed) {
                    n += 1;
                    let body = format!(
                        r#"{{"name":"P {round}-{sender}-{n}","email":"p{round}.{sender}.{n}@example.com","webinar":"Kill test","webinarId":"kill","webinarLink":"https://x"}}"#
                    );
                    let Ok(response) = client.post(&url).body(body.clone()).send().await else { continue };
                    if response.status() == 200 {
                        if let Ok(receipt) = response.json::<serde_json::Value>().await {
                            acked.lock().unwrap().push((receipt["delivery"].as_i64().unwrap(), body));
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700 + 300 * round)).await;
        child.kill().unwrap(); // SIGKILL: no shutdown code runs.
        child.wait().unwrap();
        running.store(false, Ordering::Relaxed);
        for sender in senders {
            sender.await.unwrap();
        }
        let round_acked = std::mem::take(&mut *acked.lock().unwrap());
        assert!(
            !round_acked.is_empty(),
            "round {round}: some deliveries were acknowledged"
        );
        acknowledged.extend(round_acked);
    }
    let conn = open_read_only(&database_path(dir.path()), &StoreOptions::default()).unwrap();
    for (id, body) in &acknowledged {
        let stored: Vec<u8> = conn
            .query_row("SELECT body FROM deliveries WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .unwrap_or_else(|e| panic!("acknowledged delivery {id} is missing: {e}"));
        assert_eq!(&stored, body.as_bytes(), "delivery {id}");
    }
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .unwrap();
    assert!(stored as usize >= acknowledged.len());
    // The store opens cleanly after the kills.
    let (mut child, _) = start(dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Tokens, GoTo secret keys and the dashboard token never appear in the logs, even at debug
/// level: request spans name the matched route, not the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let sources = support::add_sources(&database_path(dir.path()));
    let mut child = serve_command(dir.path())
        .env("RUST_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut ingest, mut login) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("receiving webhooks on http://").nth(1) {
            ingest = rest.split('/').next().unwrap().to_owned();
        }
        if let Some(url) = line.strip_prefix("Dashboard: ") {
            login = url.to_owned();
            break;
        }
    }
    let stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed = &sources[support::SIGNED_GOTO];
    let body =
        r#"{"eventName":"registrant.added","eventKey":"log-test","webinarKey":1,"email":"a@b.co"}"#;
    let signature = rollcall::signature::sign(support::GOTO_KEYS[0], "ts", body.as_bytes());
    let hook = format!("http://{ingest}/hooks/gotowebinar/{}", signed.token);
    let posted = client
        .post(&hook)
        .header("X-Webhook-Signature-Timestamp", "ts")
        .header("X-Webhook-Signature", &signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let wrong = client
        .post(&hook)
        .header("X-Webhook-Signature", "bad")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let tagmango = &sources["tagmango"].token;
    client
        .get(format!("http://{ingest}/hooks/tagmango/{tagmango}"))
        .send()
        .await
        .unwrap();
    let session = client.get(&login).send().await.unwrap();
    let cookie = session.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let dashboard = login.split("/login").next().unwrap().to_owned();
    let api = client
        .get(format!("{dashboard}/api/sources"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    let logs = logs.join().unwrap();
    assert!(
        logs.contains("request"),
        "the debug logs were captured: {logs}"
    );
    let session_token = cookie.split('=').nth(1).unwrap();
    let code = login.split("code=").nth(1).unwrap();
    for (what, secret) in [
        ("a source token", signed.token.as_str()),
        ("a source token", tagmango.as_str()),
        ("a GoTo secret key", support::GOTO_KEYS[0]),
        ("the signature", signature.as_str()),
        ("the dashboard token", session_token),
        ("the login code", code),
    ] {
        assert!(!logs.contains(secret), "{what} appears in the logs");
    }
}

/// `rollcall backup` makes a consistent copy while webhooks keep arriving, and the copy restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_is_consistent_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let sources = support::add_sources(&database_path(dir.path()));
    let (mut child, addr) = start(dir.path());
    let url = format!(
        "http://{addr}/hooks/tagmango/{}/webinar.completed.all",
        sources["tagmango"].token
    );
    let running = Arc::new(AtomicBool::new(true));
    let sender = {
        let running = running.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let body = format!(
                    r#"{{"name":"B","email":"b{n}@example.com","webinar":"Backup","webinarId":"backup","webinarLink":"x"}}"#
                );
                assert_eq!(
                    client.post(&url).body(body).send().await.unwrap().status(),
                    200
                );
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let backup = dir.path().join("backup.sqlite3");
    let output = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("backup")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    running.store(false, Ordering::Relaxed);
    let sent = sender.await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    let copy = rusqlite::Connection::open(&backup).unwrap();
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let copied: i64 = copy
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .unwrap();
    let attendance: i64 = copy
        .query_row("SELECT count(*) FROM attendance", [], |r| r.get(0))
        .unwrap();
    assert!(copied > 0 && copied <= sent, "{copied} of {sent}");
    assert_eq!(
        attendance, copied,
        "the projection in the copy matches its journal"
    );

    // Restore: the copy as the database of a new data directory.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&backup, database_path(restored.path())).unwrap();
    let listed = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(restored.path())
        .args(["deliveries", "--limit", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains("projected"));
    // A backup never overwrites.
    let again = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("backup")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
}
