//! A disk that fills up: on a real, small filesystem (a tmpfs mounted for the test), ingest
//! answers 503 with Retry-After once nothing more fits, keeps nothing half-written, and takes
//! deliveries again by itself as soon as space is freed, without a restart.
//!
//! A disk that fails under the filesystem (ext4 on a loop device whose backing file runs out of
//! room): once an fsync has failed, nothing more is acknowledged until a restart, even after the
//! disk works again, and nothing acknowledged is lost across a restart that reads from the disk.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{answer, start_in, AppOptions};

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped. Mounting needs root,
/// which the test machines (and CI) have.
struct SmallDisk {
    mount_point: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let parent = tempfile::tempdir().unwrap();
        let mount_point = parent.path().join("disk");
        std::fs::create_dir(&mount_point).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount_point)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a {size} tmpfs failed: this test needs root (as in CI)"
        );
        SmallDisk {
            mount_point,
            _parent: parent,
        }
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

/// Runs a system command that must succeed; returns its standard output.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed (this test needs root and loop devices, as in CI): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// ext4 (no journal) on a loop device whose sparse 64 MiB image lives on a 48 MiB tmpfs: once the
/// tmpfs is full, the device fails the writes of blocks never written before, under the
/// filesystem, as a failing disk does; freed, it works again.
struct FailingDisk {
    mount_point: PathBuf,
    device: String,
    backing: SmallDisk,
}

impl FailingDisk {
    fn mount() -> FailingDisk {
        let backing = SmallDisk::mount("48m");
        let image = backing.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let device = run("losetup", &["--find", "--show", image.to_str().unwrap()]);
        run("mkfs.ext4", &["-q", "-O", "^has_journal", &device]);
        let mount_point = backing.path().join("mnt");
        std::fs::create_dir(&mount_point).unwrap();
        let disk = FailingDisk {
            mount_point,
            device,
            backing,
        };
        disk.attach();
        disk
    }

    fn attach(&self) {
        let mount_point = self.mount_point.to_str().unwrap();
        run(
            "mount",
            &["-o", "errors=continue", &self.device, mount_point],
        );
    }

    fn path(&self) -> &Path {
        &self.mount_point
    }

    /// Makes the device fail: returns the ballast to remove for it to work again.
    fn break_down(&self) -> PathBuf {
        fill(self.backing.path())
    }

    /// Drops every cached page of the filesystem, as a crash does: what is read next comes
    /// from the device.
    fn forget_cache(&self) {
        run("umount", &[self.mount_point.to_str().unwrap()]);
        self.attach();
    }
}

impl Drop for FailingDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// Fills the filesystem with a ballast file until a write fails; returns its path.
fn fill(disk: &Path) -> PathBuf {
    use std::io::Write;
    let ballast = disk.join("ballast");
    let mut file = std::fs::File::create(&ballast).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
    ballast
}

/// The database passes SQLite's integrity check and holds each acknowledged delivery once.
fn assert_intact_with(db: &rusqlite::Connection, acknowledged: &[i64]) {
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    for id in acknowledged {
        let found: i64 = db
            .query_row("SELECT count(*) FROM deliveries WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(found, 1, "acknowledged delivery {id}");
    }
}

fn registrant(n: usize, pad: usize) -> String {
    format!(
        r#"{{"name":"Person {n}","email":"p{n}@example.com","webinar":"Disk","webinarId":"disk","pad":"{}"}}"#,
        "x".repeat(pad)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_then_resumes_by_itself_when_space_returns() {
    let disk = SmallDisk::mount("16m");
    let dir = tempfile::tempdir_in(disk.path()).unwrap();
    let sources = support::add_sources(&rollcall::store::database_path(dir.path()));
    let app = start_in(dir, sources, AppOptions::default()).await;
    let trigger = Some("webinar.completed.all");

    let mut acknowledged = Vec::new();
    let (status, receipt) = answer(app.post("tagmango", trigger, registrant(0, 100)).await).await;
    assert_eq!(status, 200);
    acknowledged.push(receipt["delivery"].as_i64().unwrap());

    let ballast = fill(disk.path());
    let mut refused = 0;
    for n in 1..40 {
        let response = app.post("tagmango", trigger, registrant(n, 60_000)).await;
        let retry_after = response.headers().contains_key("retry-after");
        let (status, receipt) = answer(response).await;
        match status {
            200 => acknowledged.push(receipt["delivery"].as_i64().unwrap()),
            503 => {
                assert!(retry_after, "a 503 tells the platform when to retry");
                assert_eq!(receipt["error"], "unavailable", "{receipt}");
                refused += 1;
            }
            other => panic!("delivery {n} on a full disk answered {other}: {receipt}"),
        }
    }
    assert!(refused > 0, "the full disk refused deliveries");

    std::fs::remove_file(ballast).unwrap();
    for n in 100..110 {
        let (status, receipt) =
            answer(app.post("tagmango", trigger, registrant(n, 60_000)).await).await;
        assert_eq!(status, 200, "space is back, delivery {n}: {receipt}");
        acknowledged.push(receipt["delivery"].as_i64().unwrap());
    }

    let db = app.db();
    assert_intact_with(&db, &acknowledged);
    let stored = app.count("SELECT count(*) FROM deliveries");
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "what was refused left nothing behind"
    );
    let orphan_facts = app
        .count("SELECT count(*) FROM facts WHERE delivery_id NOT IN (SELECT id FROM deliveries)");
    assert_eq!(orphan_facts, 0);
    support::reliability::record(
        "disk_full",
        &serde_json::json!({
            "refused_with_503": refused, "acknowledged": acknowledged.len(),
            "acknowledged_found": acknowledged.len(), "stored": stored,
        }),
    );
    drop(db);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_fsync_nothing_is_acknowledged_until_a_restart_and_nothing_acknowledged_is_lost(
) {
    let disk = FailingDisk::mount();
    let dir = tempfile::tempdir_in(disk.path()).unwrap();
    let sources = support::add_sources(&rollcall::store::database_path(dir.path()));
    let app = start_in(dir, sources.clone(), AppOptions::default()).await;
    let trigger = Some("webinar.completed.all");
    let mut acknowledged = Vec::new();
    let (status, receipt) = answer(app.post("tagmango", trigger, registrant(0, 100)).await).await;
    assert_eq!(status, 200, "{receipt}");
    acknowledged.push(receipt["delivery"].as_i64().unwrap());

    let ballast = disk.break_down();
    until_refused(&app, 1..40, |receipt| {
        acknowledged.push(receipt["delivery"].as_i64().unwrap())
    })
    .await;

    // The device works again, but what the kernel could not write is gone from the log, and a
    // commit now would be behind that gap: it must not be acknowledged.
    std::fs::remove_file(ballast).unwrap();
    for n in 100..105 {
        let (status, receipt) =
            answer(app.post("tagmango", trigger, registrant(n, 100)).await).await;
        assert_eq!(status, 503, "delivery {n} after the failure: {receipt}");
        let message = receipt["message"].as_str().unwrap_or_default();
        assert!(message.contains("restarted"), "{receipt}");
    }
    let (status, meta) = app.get("/api/meta").await;
    assert_eq!(status, 200);
    let shown = meta["store_failure"].as_str().unwrap_or_default();
    assert!(shown.contains("restarted"), "the dashboard is told: {meta}");
    // A change from the dashboard would be behind the gap too: refused, with the reason.
    let change = serde_json::json!({"platform": "livestorm", "label": "After the failure"});
    let (status, refused) = answer(
        app.api(reqwest::Method::POST, "/api/sources")
            .json(&change)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503, "a change after the failure: {refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("restarted"), "{refused}");

    let dir = app.stop().await;
    disk.forget_cache();
    let app = start_in(dir, sources, AppOptions::default()).await;
    let (status, receipt) = answer(app.post("tagmango", trigger, registrant(200, 100)).await).await;
    assert_eq!(status, 200, "after the restart: {receipt}");
    acknowledged.push(receipt["delivery"].as_i64().unwrap());
    let (_, meta) = app.get("/api/meta").await;
    assert!(meta["store_failure"].is_null(), "{meta}");
    let (_, listed) = app.get("/api/sources").await;
    assert!(
        !listed.to_string().contains("After the failure"),
        "the refused change is not there: {listed}"
    );
    let db = app.db();
    assert_intact_with(&db, &acknowledged);
    support::reliability::record(
        "failed_fsync",
        &serde_json::json!({
            "acknowledged": acknowledged.len(), "acknowledged_found": acknowledged.len(),
            "refused_after_the_disk_came_back": 5,
        }),
    );
    drop(db);
    app.stop().await;
}

/// On a disk that broke down: posts large deliveries numbered `numbers`, one at a time, until
/// one is refused as unavailable; `acknowledged` is told of each 200 before.
async fn until_refused(
    app: &support::TestApp,
    numbers: std::ops::Range<usize>,
    mut acknowledged: impl FnMut(&serde_json::Value),
) {
    let trigger = Some("webinar.completed.all");
    for n in numbers {
        let (status, receipt) =
            answer(app.post("tagmango", trigger, registrant(n, 200_000)).await).await;
        match status {
            // Its blocks still found room on the device.
            200 => acknowledged(&receipt),
            503 => {
                assert_eq!(receipt["error"], "unavailable", "{receipt}");
                return;
            }
            other => panic!("delivery {n} on a failing disk answered {other}: {receipt}"),
        }
    }
    panic!("the failing disk refused no delivery");
}

/// Posts eight deliveries at once (so that most are acknowledged from the receipt log): each
/// one's status and answer.
async fn together(
    app: &support::TestApp,
    from: usize,
    pad: usize,
) -> Vec<(u16, serde_json::Value)> {
    let url = app.hook_url("tagmango", Some("webinar.completed.all"));
    let senders: Vec<_> = (from..from + 8)
        .map(|n| {
            let (client, url) = (app.client.clone(), url.clone());
            tokio::spawn(async move {
                answer(
                    client
                        .post(url)
                        .body(registrant(n, pad))
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for sender in senders {
        answers.push(sender.await.unwrap());
    }
    answers
}

/// What a 200 named: journaled deliveries' ids, and receipt numbers of the receipt log.
#[derive(Default)]
struct Acknowledged {
    ids: Vec<i64>,
    receipts: Vec<i64>,
}

impl Acknowledged {
    fn add(&mut self, receipt: &serde_json::Value) {
        match (receipt["delivery"].as_i64(), receipt["receipt"].as_i64()) {
            (Some(id), _) => self.ids.push(id),
            (None, Some(n)) => self.receipts.push(n),
            _ => panic!("a 200 that names nothing: {receipt}"),
        }
    }
}

/// The same with deliveries that arrive together, acknowledged from the receipt log: once a
/// sync has failed they are refused too, with the reason, and the restart journals every receipt
/// acknowledged before.
///
/// The failure comes from lone deliveries, journaled before their answer, as in the test above.
/// A failure of the receipt log's own fsync is tested in `store::syncer` and `store::receipts`:
/// on this device, an fdatasync into blocks never written before returned success the first
/// time for data that was gone after a remount (it failed the next time), so a test cannot tell
/// which acknowledgement it was owed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_sync_deliveries_arriving_together_are_refused_and_no_receipt_is_lost() {
    let disk = FailingDisk::mount();
    let dir = tempfile::tempdir_in(disk.path()).unwrap();
    let sources = support::add_sources(&rollcall::store::database_path(dir.path()));
    let app = start_in(dir, sources.clone(), AppOptions::default()).await;
    let mut acknowledged = Acknowledged::default();
    for round in 0..4 {
        for (status, receipt) in together(&app, round * 8, 100).await {
            assert_eq!(status, 200, "{receipt}");
            acknowledged.add(&receipt);
        }
    }
    assert!(
        !acknowledged.receipts.is_empty(),
        "eight at once, none had company"
    );
    // Until the journal holds the burst's receipts, a lone delivery goes to the receipt log
    // too, into blocks the log wrote before, which the failing disk keeps.
    let last = acknowledged
        .receipts
        .iter()
        .max()
        .copied()
        .unwrap_or_default();
    let imported = format!("SELECT count(*) FROM deliveries WHERE receipt = {last}");
    let waiting = std::time::Instant::now();
    while app.count(&imported) == 0 {
        assert!(
            waiting.elapsed().as_secs() < 30,
            "receipt {last} was never imported"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let ballast = disk.break_down();
    until_refused(&app, 100..140, |receipt| acknowledged.add(receipt)).await;
    std::fs::remove_file(ballast).unwrap();
    for (status, receipt) in together(&app, 1000, 100).await {
        assert_eq!(status, 503, "after the failure: {receipt}");
        let message = receipt["message"].as_str().unwrap_or_default();
        assert!(message.contains("restarted"), "{receipt}");
    }

    let dir = app.stop().await;
    disk.forget_cache();
    let app = start_in(dir, sources, AppOptions::default()).await;
    app.settled().await;
    let db = app.db();
    assert_intact_with(&db, &acknowledged.ids);
    for n in &acknowledged.receipts {
        let found: i64 = db
            .query_row(
                "SELECT count(*) FROM deliveries WHERE receipt = ?1",
                [n],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 1, "acknowledged receipt {n}");
    }
    support::reliability::record(
        "failed_sync_with_the_receipt_log",
        &serde_json::json!({
            "acknowledged_journaled": acknowledged.ids.len(),
            "acknowledged_from_the_receipt_log": acknowledged.receipts.len(),
            "all_found_after_the_restart": true,
        }),
    );
    drop(db);
    app.stop().await;
}

/// Sends a request head and the first half of its body, leaving the rest for later.
async fn half_sent(addr: std::net::SocketAddr, path: &str, body: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_deliveries_in_flight_finish_and_a_stalled_sender_cannot_hold_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The stalled sender would be answered 408 only after an hour: the stop must not wait.
    let app = support::spawn_app_with(support::AppOptions {
        body_timeout: std::time::Duration::from_secs(3600),
        ..support::AppOptions::default()
    })
    .await;
    let path = format!(
        "/hooks/tagmango/{}/webinar.completed.all",
        app.source("tagmango").token
    );
    let bodies: Vec<String> = (0..20).map(|n| registrant(n, 10)).collect();
    let mut in_flight = Vec::new();
    for body in &bodies {
        in_flight.push(half_sent(app.addr, &path, body).await);
    }
    let _stalled = half_sent(app.addr, &path, &registrant(99, 10)).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let db = app.db();
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut answered = 0;
    for (stream, body) in in_flight.iter_mut().zip(&bodies) {
        stream
            .write_all(&body.as_bytes()[body.len() / 2..])
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        answered += 1;
    }
    let _data_dir = tokio::time::timeout(std::time::Duration::from_secs(120), stopping)
        .await
        .expect("the stalled sender does not hold the stop beyond its grace period")
        .unwrap();
    for body in &bodies {
        let stored: i64 = db
            .query_row(
                "SELECT count(*) FROM deliveries WHERE body = ?1",
                [body.as_bytes()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            stored, 1,
            "the delivery answered during the stop is committed"
        );
    }
    assert_eq!(answered, bodies.len());
}
