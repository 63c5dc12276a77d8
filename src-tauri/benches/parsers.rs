//! Criterion benchmarks: each platform's parser over its fixtures (deliveries per second), the
//! BigMarker parser over one list of 50,000 attendees (attendees per second), and the journal +
//! projection path (`journal::record`) for TagMango and BigMarker deliveries, and journaling
//! alone (`journal::append_beside`) as the writer does during a burst.
//! Run by `bench/run`; never part of the test suite.

use std::path::{Path, PathBuf};

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rollcall::facts::Platform;
use rollcall::platforms::{self, Delivery};
use rollcall::store::journal::{self, NewDelivery, Prepared, Via};
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
    let doc = fixtures(Platform::Bigmarker)
        .into_iter()
        .find(|f| f.trigger.as_deref() == Some("attendee-data"))
        .expect("an attendee-data fixture");
    let doc: serde_json::Value = serde_json::from_slice(&doc.body).expect("fixture is JSON");
    let attendee = doc["attendees"][0].clone();
    let attendees: Vec<serde_json::Value> = (0..count)
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

/// Journal + projection of a batch of 256 unique TagMango deliveries in one transaction.
fn projection(c: &mut Criterion) {
    const BATCH: usize = 256;
    let (_dir, mut conn) = fresh_store();
    let mut n = 0u64;
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("tagmango completed (journal + projection)", |b| {
        b.iter_batched(
            || tagmango_batch(&mut n, BATCH, None),
            |batch| {
                let tx = conn.transaction().expect("tx");
                for prepared in &batch {
                    journal::record(&tx, prepared).expect("record");
                }
                tx.commit().expect("commit");
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = parsers, projection, journal_alone
}
criterion_main!(benches);
