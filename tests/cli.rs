//! The command line, run as a user would: sources, import, deliveries, reindex, and clear
//! errors for bad input.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn rollcall(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("ROLLCALL_PUBLIC_URL")
        .output()
        .unwrap()
}

/// `rollcall serve` on `data_dir`, on ports of its own, its stdout piped and its stderr to
/// `stderr`.
fn serve(data_dir: &Path, stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["serve", "--ingest-bind", "127.0.0.1:0"])
        .args(["--dashboard-bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("ROLLCALL_PUBLIC_URL")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Asks `child` to stop, as a service manager does.
fn terminate(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn fails(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn token_in(text: &str, platform: &str) -> String {
    let marker = format!("/hooks/{platform}/");
    let rest = text.split(&marker).nth(1).expect("a hook URL");
    rest.split(['/', '\n', ' ']).next().unwrap().to_owned()
}

#[test]
fn sources_are_added_listed_rotated_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let added = ok(&rollcall(
        dir.path(),
        &[
            "sources",
            "add",
            "tagmango",
            "Mango Academy",
            "--time-zone",
            "Asia/Kolkata",
            "--public-url",
            "https://hooks.example.org",
        ],
    ));
    let token = token_in(&added, "tagmango");
    assert!(token.len() >= 32, "a token of at least 192 bits: {token}");
    for trigger in [
        "webinar.created.single",
        "webinar.created.recurring",
        "webinar.completed.all",
    ] {
        assert!(
            added.contains(&format!(
                "https://hooks.example.org/hooks/tagmango/{token}/{trigger}"
            )),
            "{added}"
        );
    }
    assert!(added.contains("Asia/Kolkata"));

    let listed = ok(&rollcall(dir.path(), &["sources", "list"]));
    assert!(
        listed.contains("Mango Academy") && listed.contains(&token),
        "{listed}"
    );

    let rotated = ok(&rollcall(
        dir.path(),
        &["sources", "rotate", "Mango Academy"],
    ));
    let new_token = token_in(&rotated, "tagmango");
    assert_ne!(new_token, token);
    assert!(!ok(&rollcall(dir.path(), &["sources", "list"])).contains(&token));

    let goto = ok(&rollcall(
        dir.path(),
        &[
            "sources",
            "add",
            "gotowebinar",
            "GoTo",
            "--secret-key",
            "s3cret",
        ],
    ));
    assert!(goto.contains("signatures required"), "{goto}");
    ok(&rollcall(
        dir.path(),
        &["sources", "remove", "Mango Academy"],
    ));
    let listed = ok(&rollcall(dir.path(), &["sources", "list"]));
    assert!(
        !listed.contains("Mango Academy") && listed.contains("GoTo"),
        "{listed}"
    );
}

#[test]
fn bad_input_gets_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let zoom = fails(&rollcall(dir.path(), &["sources", "add", "zoom", "x"]));
    assert!(zoom.contains("unknown platform \"zoom\""), "{zoom}");
    let zone = fails(&rollcall(
        dir.path(),
        &[
            "sources",
            "add",
            "bigmarker",
            "x",
            "--time-zone",
            "Mars/Olympus",
        ],
    ));
    assert!(
        zone.contains("unknown time zone \"Mars/Olympus\""),
        "{zone}"
    );
    let key = fails(&rollcall(
        dir.path(),
        &["sources", "add", "bigmarker", "x", "--secret-key", "k"],
    ));
    assert!(key.contains("only GoTo Webinar"), "{key}");
    ok(&rollcall(dir.path(), &["sources", "add", "bigmarker", "x"]));
    let twice = fails(&rollcall(dir.path(), &["sources", "add", "livestorm", "x"]));
    assert!(twice.contains("already exists"), "{twice}");
    let missing = fails(&rollcall(dir.path(), &["sources", "rotate", "nope"]));
    assert!(missing.contains("no source \"nope\""), "{missing}");
    let file = fails(&rollcall(
        dir.path(),
        &["import", "gotowebinar", "/nonexistent.json"],
    ));
    assert!(file.contains("could not read /nonexistent.json"), "{file}");
    let status = fails(&rollcall(dir.path(), &["deliveries", "--status", "lost"]));
    assert!(status.contains("unknown status \"lost\""), "{status}");
}

#[test]
fn import_lists_and_reindexes_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tagmango");
    let mut files: Vec<String> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".json"))
        .collect();
    files.sort();
    let mut args = vec!["import", "tagmango"];
    args.extend(files.iter().map(String::as_str));
    let imported = ok(&rollcall(dir.path(), &args));
    assert_eq!(imported.lines().count(), files.len());
    assert!(
        imported.contains("projected") && imported.contains("ignored"),
        "{imported}"
    );

    let enters = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/bigmarker/attendee-enters@doc.json");
    let backfilled = ok(&rollcall(
        dir.path(),
        &[
            "import",
            "bigmarker",
            "--received-at",
            "2024-06-12T18:01:00-04:00",
            enters.to_str().unwrap(),
        ],
    ));
    assert!(backfilled.contains("projected"), "{backfilled}");
    let bad_time = fails(&rollcall(
        dir.path(),
        &[
            "import",
            "bigmarker",
            "--received-at",
            "noon",
            enters.to_str().unwrap(),
        ],
    ));
    assert!(bad_time.contains("--received-at"), "{bad_time}");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"name\": ").unwrap();
    let quarantined = ok(&rollcall(
        dir.path(),
        &[
            "import",
            "tagmango",
            "--trigger",
            "webinar.completed.all",
            bad.to_str().unwrap(),
        ],
    ));
    assert!(quarantined.contains("quarantined"), "{quarantined}");

    let listed = ok(&rollcall(
        dir.path(),
        &["deliveries", "--status", "quarantined"],
    ));
    assert!(listed.contains("not valid JSON"), "{listed}");
    let all = ok(&rollcall(dir.path(), &["deliveries", "--limit", "1000"]));
    assert!(all.lines().filter(|l| l.contains("tagmango")).count() > files.len());

    let reindexed = ok(&rollcall(dir.path(), &["reindex"]));
    assert!(
        reindexed.starts_with("Reindexed:") && reindexed.contains("1 quarantined"),
        "{reindexed}"
    );
}

#[test]
fn the_default_data_directory_is_the_platform_app_data_dir() {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rollcall"))
        .args(["sources", "add", "livestorm", "Default dir"])
        .env("XDG_DATA_HOME", home.path())
        .env("HOME", home.path())
        .env_remove("ROLLCALL_DATA_DIR")
        .output()
        .unwrap();
    ok(&output);
    assert!(home.path().join("rollcall/rollcall.sqlite3").exists());
}

#[test]
fn exports_write_csv_files_with_the_zone_named() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tagmango/webinar.completed.all@doc.json");
    ok(&rollcall(
        dir.path(),
        &["import", "tagmango", fixture.to_str().unwrap()],
    ));
    let out = dir.path().join("attendees.csv");
    let webinar = "tagmango:6149b1e5612c4e5fd96041d3";
    ok(&rollcall(
        dir.path(),
        &[
            "export",
            "attendees",
            "--webinar",
            webinar,
            "--time-zone",
            "Asia/Kolkata",
            "--excel",
            "-o",
            out.to_str().unwrap(),
        ],
    ));
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.starts_with("\u{feff}Attended,First Name"), "{csv}");
    assert!(csv.contains("Registration Time (Asia/Kolkata)") && csv.contains("\r\n"));
    assert!(csv.contains("john.doe@example.com"), "{csv}");
    let stdout = ok(&rollcall(dir.path(), &["export", "webinars"]));
    assert!(
        stdout.contains("TagMango,6149b1e5612c4e5fd96041d3"),
        "{stdout}"
    );

    let unknown = fails(&rollcall(
        dir.path(),
        &["export", "attendees", "--webinar", "zoom:1"],
    ));
    assert!(
        unknown.contains("there is no webinar \"zoom:1\""),
        "{unknown}"
    );
    let missing = fails(&rollcall(dir.path(), &["export", "attendees"]));
    assert!(missing.contains("--webinar is required"), "{missing}");
    let kind = fails(&rollcall(
        dir.path(),
        &["export", "fans", "--webinar", webinar],
    ));
    assert!(kind.contains("unknown export \"fans\""), "{kind}");
}

#[test]
fn reindex_refuses_a_store_a_receiver_is_using_and_works_once_it_stops() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut serve = serve(dir.path(), Stdio::inherit());
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|line| line.unwrap().starts_with("Dashboard:")),
        "serve started"
    );
    let refused = fails(&rollcall(dir.path(), &["reindex"]));
    assert!(
        refused.contains("Rollcall is running on") && refused.contains("stop it first"),
        "{refused}"
    );
    serve.kill().unwrap();
    serve.wait().unwrap();
    let reindexed = ok(&rollcall(dir.path(), &["reindex"]));
    assert!(reindexed.starts_with("Reindexed:"), "{reindexed}");
}

/// A receiver whose output nobody reads any more (the pipe closed, as `| head` or a program
/// that started it and went away leaves it) keeps receiving, and stops cleanly when told to:
/// its status lines are only information.
#[test]
fn a_receiver_whose_output_is_closed_keeps_receiving_and_stops_cleanly() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    ok(&rollcall(
        dir.path(),
        &["sources", "add", "tagmango", "Closed pipe"],
    ));
    let mut serve = serve(dir.path(), Stdio::piped());
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split("/hooks").next())
        .unwrap_or_else(|| panic!("the ingest address in {first:?}"))
        .to_owned();
    drop(lines);

    let mut health = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        health,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    health.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    terminate(&serve);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    serve
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// SIGTERM as soon as a receiver has said it is receiving (a service manager stopping it as it
/// starts) stops it gracefully, every time: the signal is listened for from before the receiver
/// starts, where it used to be only once the receiver had printed its sources, and a signal
/// in between killed it. Five tries: the old code died in about a third of them.
#[test]
fn a_receiver_told_to_stop_as_it_announces_itself_stops_cleanly() {
    use std::io::{BufRead, BufReader};
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let mut serve = serve(dir.path(), Stdio::null());
        let mut first = String::new();
        BufReader::new(serve.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.starts_with("Rollcall is receiving"), "{first:?}");
        terminate(&serve);
        let status = serve.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}
