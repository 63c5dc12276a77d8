//! Deliveries acknowledged before the process is killed with SIGKILL are all in the journal,
//! byte for byte and once, after a restart, and the projection equals a clean `reindex`: a 200
//! means committed. Also: secrets stay out of the logs, and backups taken under load restore.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollcall::store::{database_path, open_read_only, StoreOptions};

/// Starts `rollcall serve` on a free port; returns the child and the address it printed.
fn start(data_dir: &std::path::Path) -> (Child, String) {
    let mut child = support::serve_command(data_dir)
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

/// One webhook of the crash loop's load: a TagMango attendee (unique body), or a GoTo
/// registration with its own event key, sometimes sent again as the platform's retry would be.
fn crash_load_body(
    round: usize,
    sender: usize,
    n: usize,
) -> (&'static str, Option<&'static str>, String) {
    let who = format!("{round}.{sender}.{n}");
    if n.is_multiple_of(3) {
        let body = serde_json::json!({
            "eventName": "registrant.added", "eventKey": format!("crash-{}", who),
            "firstName": "P", "lastName": who, "email": format!("g{who}@example.com"),
            "webinarKey": format!("{}", 8_281_234_567_890_123_000u64 + (n % 5) as u64),
            "registrantKey": format!("{}", 9_000_000_000_000_000_000u64 + n as u64),
            "webinarTitle": "Crash loop", "registrationDate": "2024-01-02T03:04:05Z",
            "status": "APPROVED", "timestamp": "2024-01-02T03:04:06Z"
        });
        ("gotowebinar", None, body.to_string())
    } else {
        let body = format!(
            r#"{{"name":"P {who}","email":"p{who}@example.com","webinar":"Kill test","webinarId":"kill{}","webinarLink":"https://x"}}"#,
            n % 7
        );
        ("tagmango", Some("webinar.completed.all"), body)
    }
}

/// What the load generator saw: for each body, how often it was sent and acknowledged, and
/// what each acknowledgement named.
#[derive(Default)]
struct Sent {
    sent: HashMap<String, usize>,
    acknowledged: HashMap<String, Vec<Acknowledged>>,
}

/// A 200's receipt: a journaled delivery, or a record of the receipt log.
#[derive(Debug, Clone, Copy)]
enum Acknowledged {
    Delivery(i64),
    Receipt(i64),
}

impl Acknowledged {
    fn of(receipt: &serde_json::Value) -> Acknowledged {
        match (receipt["delivery"].as_i64(), receipt["receipt"].as_i64()) {
            (Some(id), _) => Acknowledged::Delivery(id),
            (None, Some(n)) => Acknowledged::Receipt(n),
            _ => panic!("a 200 that names nothing: {receipt}"),
        }
    }

    /// Where the journal keeps it.
    fn column(self) -> (&'static str, i64) {
        match self {
            Acknowledged::Delivery(id) => ("id", id),
            Acknowledged::Receipt(n) => ("receipt", n),
        }
    }
}

/// Posts deliveries from 16 concurrent senders, each at most 100 a second, until `running`
/// is cleared.
async fn crash_load(
    addr: &str,
    sources: &HashMap<String, rollcall::store::sources::Source>,
    round: usize,
    running: Arc<AtomicBool>,
) -> Sent {
    let totals = Arc::new(Mutex::new(Sent::default()));
    let mut senders = Vec::new();
    for sender in 0..16 {
        let (running, totals) = (running.clone(), totals.clone());
        let base = format!("http://{addr}/hooks");
        let tokens: HashMap<&str, String> = ["tagmango", "gotowebinar"]
            .into_iter()
            .map(|p| (p, sources[p].token.clone()))
            .collect();
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                // Paced like a busy webinar rather than a flood: the debug build projects the
                // backlog a kill leaves far slower than the release build, and the point is
                // the kill, not the volume.
                tokio::time::sleep(Duration::from_millis(10)).await;
                n += 1;
                let (platform, trigger, body) = crash_load_body(round, sender, n);
                let mut url = format!("{base}/{platform}/{}", tokens[platform]);
                if let Some(trigger) = trigger {
                    url = format!("{url}/{trigger}");
                }
                // A GoTo retry: the same event again, as the platform resends it.
                let copies = if platform == "gotowebinar" && n.is_multiple_of(2) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    *totals.lock().unwrap().sent.entry(body.clone()).or_default() += 1;
                    let Ok(response) = client.post(&url).body(body.clone()).send().await else {
                        continue;
                    };
                    if response.status() != 200 {
                        continue;
                    }
                    if let Ok(receipt) = response.json::<serde_json::Value>().await {
                        totals
                            .lock()
                            .unwrap()
                            .acknowledged
                            .entry(body.clone())
                            .or_default()
                            .push(Acknowledged::of(&receipt));
                    }
                }
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    Arc::try_unwrap(totals).ok().unwrap().into_inner().unwrap()
}

/// Every acknowledged delivery is in the journal byte for byte, every body the platforms sent
/// once is there once, and a retried event is projected once (its copies are duplicates).
fn assert_nothing_acknowledged_is_lost(conn: &rusqlite::Connection, sent: &Sent) -> usize {
    let mut found = 0;
    for (body, ids) in &sent.acknowledged {
        for acknowledged in ids {
            let (column, id) = acknowledged.column();
            let stored: Vec<u8> = conn
                .query_row(
                    &format!("SELECT body FROM deliveries WHERE {column} = ?1"),
                    [id],
                    |row| row.get(0),
                )
                .unwrap_or_else(|e| panic!("acknowledged {acknowledged:?} is missing: {e}"));
            assert_eq!(&stored, body.as_bytes(), "{acknowledged:?}");
            found += 1;
        }
        let (copies, canonical): (usize, usize) = conn
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE status != 'duplicate') FROM deliveries WHERE body = ?1",
                [body.as_bytes()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert!(
            copies >= ids.len() && copies <= sent.sent[body],
            "{copies} copies of {body}"
        );
        assert_eq!(
            canonical, 1,
            "one copy of {body} counts, the others are duplicates"
        );
    }
    found
}

/// Starts the writer on the store as a restart would, and waits until it has journaled what the
/// crash left in the receipt log and projected what it left pending (acknowledged, not yet
/// projected). Returns how many there were.
async fn recover_backlog(db: &std::path::Path) -> i64 {
    let pending = |db: &std::path::Path| -> i64 {
        let conn = open_read_only(db, &StoreOptions::default()).unwrap();
        let pending: i64 = conn
            .query_row(
                "SELECT count(*) FROM deliveries WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        pending + rollcall::store::receipts::unimported(&conn, db).unwrap() as i64
    };
    let left = pending(db);
    let (writer, thread) =
        rollcall::store::writer::Writer::start(db, &StoreOptions::default()).unwrap();
    writer.run(|_| Ok(())).await.unwrap();
    drop(writer);
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap();
    assert_eq!(
        pending(db),
        0,
        "the restart journaled every receipt and projected every pending delivery"
    );
    left
}

/// The projection the store holds equals the one a clean `reindex` builds from its journal.
fn assert_projection_equals_reindex(db: &std::path::Path) {
    let mut conn = rollcall::store::open_writer(db, &StoreOptions::default()).unwrap();
    let live = support::tables::dump(&conn, true);
    let tx = conn.transaction().unwrap();
    rollcall::store::journal::reindex(&tx).unwrap();
    let reindexed = support::tables::dump(&tx, true);
    tx.rollback().unwrap();
    assert_eq!(live.len(), reindexed.len());
    for (live, reindexed) in live.iter().zip(&reindexed) {
        assert_eq!(live, reindexed);
    }
}

/// SIGKILL at random moments while 16 senders post, round after round: after each restart,
/// nothing acknowledged is lost or doubled, and the projection is exactly what `reindex` makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_loses_nothing_acknowledged_and_projects_like_a_clean_reindex() {
    use rand::{Rng, SeedableRng};
    let seed: u64 = std::env::var("ROLLCALL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash loop seed {seed} (ROLLCALL_CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let rounds: usize = std::env::var("ROLLCALL_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let db = database_path(dir.path());
    let sources = support::add_sources(&db);
    let mut all = Sent::default();
    let mut recovered = 0;
    for round in 0..rounds {
        let (mut child, addr) = start(dir.path());
        let running = Arc::new(AtomicBool::new(true));
        let load = tokio::spawn({
            let (addr, sources, running) = (addr.clone(), sources.clone(), running.clone());
            async move { crash_load(&addr, &sources, round, running).await }
        });
        let kill_after = Duration::from_millis(rng.random_range(200..1500));
        tokio::time::sleep(kill_after).await;
        child.kill().unwrap(); // SIGKILL: no shutdown code runs.
        child.wait().unwrap();
        running.store(false, Ordering::Relaxed);
        let sent = load.await.unwrap();
        assert!(
            !sent.acknowledged.is_empty(),
            "round {round}: deliveries were acknowledged"
        );
        for (body, count) in sent.sent {
            *all.sent.entry(body).or_default() += count;
        }
        for (body, ids) in sent.acknowledged {
            all.acknowledged.entry(body).or_default().extend(ids);
        }
        recovered += recover_backlog(&db).await;
        let conn = open_read_only(&db, &StoreOptions::default()).unwrap();
        assert_nothing_acknowledged_is_lost(&conn, &all);
        drop(conn);
        assert_projection_equals_reindex(&db);
    }
    let conn = open_read_only(&db, &StoreOptions::default()).unwrap();
    let found = assert_nothing_acknowledged_is_lost(&conn, &all);
    let from_log = all
        .acknowledged
        .values()
        .flatten()
        .filter(|a| matches!(a, Acknowledged::Receipt(_)))
        .count();
    assert!(from_log > 0, "16 senders, and none had company");
    let stored: i64 = conn
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))
        .unwrap();
    support::reliability::record(
        "crash_loop",
        &serde_json::json!({
            "crashes": rounds,
            "deliveries_sent": all.sent.values().sum::<usize>(),
            "deliveries_acknowledged": all.acknowledged.values().map(Vec::len).sum::<usize>(),
            "acknowledged_from_the_receipt_log": from_log,
            "acknowledged_found": found,
            "deliveries_stored": stored,
            "pending_at_crash_projected_on_restart": recovered,
            "seed": seed,
        }),
    );
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
    let mut child = support::serve_command(dir.path())
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
    let (dashboard, cookie) = support::log_in(&client, &login).await;
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
                // Paced like a busy webinar rather than a flood: the debug build projects the
                // backlog a kill leaves far slower than the release build, and the point is
                // the kill, not the volume.
                tokio::time::sleep(Duration::from_millis(10)).await;
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
