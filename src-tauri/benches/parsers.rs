//! Criterion benchmarks: each platform's parser over its fixtures (deliveries per second), the
//! BigMarker parser over one list of 50,000 attendees (attendees per second), journal +
//! projection of TagMango webhooks and BigMarker lists (as `journal::record` and as the writer's
//! backlog project them), journaling alone (`journal::append_beside`) as the writer does
//! during a burst, and framing a webhook as a record of the receipt log.
//! Run by `bench/run`; never part of the test suite.

use std::path::{Path, PathBuf};

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rollcall::facts::Platform;
use rollcall::platforms::{self, Delivery};
use rollcall::store::journal::{self, Containment, NewDelivery, Prepared, Via};
use rollcall::store::receipts;
use rollcall::store::{database_path, open_writer, sources, StoreOptions};
use rusqlite::Connection;

struct Fixture {
    platform: Platform,
    trigger: Option<String>,
    content_type: &'static str,
    body: Vec<u8>,
}

fn fixtures(platform: Platform) -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(platform.as_str());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let form = path.extension().is_some_and(|e| e == "form");
            Fixture {
                platform,
                trigger: stem.split_once('@').map(|(t, _)| t.to_owned()),
                content_type: if form {
                    "application/x-www-form-urlencoded"
                } else {
                    "application/json"
                },
                body: std::fs::read(&path).expect("fixture"),
            }
        })
        .collect()
}

fn parsers(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for platform in Platform::ALL {
        let all = fixtures(platform);
        group.throughput(Throughput::Elements(all.len() as u64));
        group.bench_function(platform.as_str(), |b| {
            b.iter(|| {
                for f in &all {
                    let delivery = Delivery {
                        platform: f.platform,
                        trigger: f.trigger.as_deref(),
                        content_type: Some(f.content_type),
                        body: &f.body,
                        received_at: Utc::now(),
                        source_zone: chrono_tz::UTC,
                    };
                    let _ = std::hint::black_box(platforms::parse(&delivery));
                }
            })
        });
    }
    let list = attendee_list(50_000);
    group.throughput(Throughput::Elements(50_000));
    group.bench_function("bigmarker list of 50,000 attendees", |b| {
        b.iter(|| {
            let delivery = Delivery {
                platform: Platform::Bigmarker,
                trigger: Some("attendee-data"),
                content_type: Some("application/json"),
                body: &list,
                received_at: Utc::now(),
                source_zone: chrono_tz::UTC,
            };
            std::hint::black_box(platforms::parse(&delivery))
        })
    });
    group.finish();
}

/// A BigMarker attendee list: the documented attendee, `count` times with distinct people.
fn attendee_list(count: usize) -> Vec<u8> {
    attendee_list_of("", 0, count)
}

/// [`attendee_list`] of people `first..first + count`, at conference `conference` (the
/// documented one if empty).
fn attendee_list_of(conference: &str, first: usize, count: usize) -> Vec<u8> {
    let doc = fixtures(Platform::Bigmarker)
        .into_iter()
        .find(|f| f.trigger.as_deref() == Some("attendee-data"))
        .expect("an attendee-data fixture");
    let doc: serde_json::Value = serde_json::from_slice(&doc.body).expect("fixture is JSON");
    let mut attendee = doc["attendees"][0].clone();
    if !conference.is_empty() {
        attendee["conference_id"] = conference.into();
    }
    let attendees: Vec<serde_json::Value> = (first..first + count)
        .map(|n| {
            let mut a = attendee.clone();
            a["email"] = format!("person{n}@example.com").into();
            a["bmid"] = format!("bm{n}").into();
            a
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "attendees": attendees })).expect("a list")
}

fn new_delivery(platform: Platform, trigger: Option<&str>, body: String) -> NewDelivery {
    NewDelivery {
        platform,
        source_id: None,
        trigger: trigger.map(str::to_owned),
        received_at: Utc::now(),
        via: Via::Webhook,
        content_type: Some("application/json".into()),
        headers: Default::default(),
        body: body.into(),
        time_zone: chrono_tz::UTC,
    }
}

/// A new store in a temporary directory, removed when the directory is dropped.
fn fresh_store() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("dir");
    let conn = open_writer(&database_path(dir.path()), &StoreOptions::default()).expect("store");
    (dir, conn)
}

/// How a benchmark projects a delivery inside its batch's transaction.
type Project = fn(&Connection, &Prepared);

/// Journal + projection of batches in one transaction, each delivery projected as
/// `journal::record` does for imports and reprocessing (inside a savepoint, which quarantines a
/// delivery whose projection fails) and as the writer's backlog does (no savepoint: a failure
/// rolls the batch back): 256 unique TagMango webhooks, or 8 BigMarker lists of 100 attendees
/// (throughput in attendees).
fn projection(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    // With the statement journal where each keeps it (`store::writer::choose_temp_store`).
    let ways: [(&str, Project, &str); 2] = [
        ("journal + projection", recorded, "FILE"),
        (
            "journal, then projection as the writer's backlog",
            from_backlog,
            "MEMORY",
        ),
    ];
    for (how, project, temp_store) in ways {
        let (_dir, mut conn) = fresh_store();
        conn.pragma_update(None, "temp_store", temp_store)
            .expect("temp_store");
        let mut n = 0u64;
        group.throughput(Throughput::Elements(256));
        group.bench_function(format!("tagmango completed ({how})"), |b| {
            b.iter_batched(
                || tagmango_batch(&mut n, 256, None),
                |batch| project_batch(&mut conn, &batch, project),
                BatchSize::LargeInput,
            )
        });
        let mut lists = 0usize;
        group.throughput(Throughput::Elements(800));
        group.bench_function(format!("bigmarker lists of 100 attendees ({how})"), |b| {
            b.iter_batched(
                || list_batch(&mut lists, 8, 100),
                |batch| project_batch(&mut conn, &batch, project),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn project_batch(conn: &mut Connection, batch: &[Prepared], project: Project) {
    let tx = conn.transaction().expect("tx");
    for prepared in batch {
        project(&tx, prepared);
    }
    tx.commit().expect("commit");
}

fn recorded(conn: &Connection, prepared: &Prepared) {
    journal::record(conn, prepared).expect("record");
}

fn from_backlog(conn: &Connection, prepared: &Prepared) {
    let receipt = journal::append(conn, prepared).expect("append");
    journal::project_pending(conn, receipt.delivery, prepared, Containment::RollBack)
        .expect("projection");
}

/// `count` BigMarker lists of `size` attendees, each of its own conference, with people not
/// seen before.
fn list_batch(lists: &mut usize, count: usize, size: usize) -> Vec<Prepared> {
    (0..count)
        .map(|_| {
            *lists += 1;
            let body = attendee_list_of(&format!("c-{lists}"), *lists * size, size);
            let body = String::from_utf8(body).expect("JSON is UTF-8");
            Prepared::new(new_delivery(
                Platform::Bigmarker,
                Some("attendee-data"),
                body,
            ))
        })
        .collect()
}

/// Journaling alone, as the writer does during a burst: TagMango webhooks left waiting for the
/// projection, in commits of 32 without an fsync (the syncer's), on a store with a source per
/// platform where the other sources have deliveries too (so TagMango's are not the newest of
/// every index by chance).
fn journal_alone(c: &mut Criterion) {
    const DELIVERIES: usize = 1024;
    let (_dir, mut conn) = fresh_store();
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("synchronous");
    let (mut tagmango, mut others) = (None, 1u64 << 40);
    for platform in Platform::ALL {
        let source =
            sources::add(&conn, platform, platform.as_str(), chrono_tz::UTC, &[]).expect("source");
        if platform == Platform::Tagmango {
            tagmango = Some(source.id);
            continue;
        }
        for prepared in tagmango_batch(&mut others, 1, Some(source.id)) {
            journal::record(&conn, &prepared).expect("record");
        }
    }
    let mut n = 0u64;
    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(DELIVERIES as u64));
    group.bench_function("tagmango webhooks, commits of 32", |b| {
        b.iter_batched(
            || tagmango_batch(&mut n, DELIVERIES, tagmango),
            |deliveries| journal_commits(&mut conn, &deliveries),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Kept out of line so that `valgrind --tool=callgrind --toggle-collect='*journal_commits*'`
/// counts the journaling alone.
#[inline(never)]
fn journal_commits(conn: &mut Connection, deliveries: &[Prepared]) {
    for commit in deliveries.chunks(32) {
        let tx = conn.transaction().expect("tx");
        let mut appender = journal::Appender::new(&tx).expect("appender");
        for prepared in commit {
            appender.append(prepared, None).expect("append");
        }
        appender.finish().expect("finish");
        tx.commit().expect("commit");
    }
}

/// `count` distinct TagMango completions from `source`, numbered on from `n`.
fn tagmango_batch(n: &mut u64, count: usize, source: Option<i64>) -> Vec<Prepared> {
    (0..count)
        .map(|_| {
            *n += 1;
            let mut delivery = tagmango_completed(*n);
            delivery.source_id = source;
            Prepared::new(delivery)
        })
        .collect()
}

fn tagmango_completed(n: u64) -> NewDelivery {
    let body = format!(
        r#"{{"name":"P {n}","email":"p{n}@example.com","phone":"+1","webinar":"W","webinarId":"w{}","webinarLink":"https://x"}}"#,
        n % 100
    );
    new_delivery(Platform::Tagmango, Some("webinar.completed.all"), body)
}

/// Framing a TagMango webhook as a record of the receipt log, as each hook request does during
/// a burst, with the headers the receiver keeps.
fn receipt_log(c: &mut Criterion) {
    let mut delivery = tagmango_completed(7);
    delivery.source_id = Some(3);
    delivery.headers = [
        ("content-length", "389"),
        ("content-type", "application/json"),
        ("user-agent", "TagMango-Webhooks/1.0"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let mut group = c.benchmark_group("receipt log");
    group.throughput(Throughput::Elements(1));
    group.bench_function("frame a tagmango webhook", |b| {
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            receipts::frame(&delivery, seq).expect("frame")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = parsers, projection, journal_alone, receipt_log
}
criterion_main!(benches);
