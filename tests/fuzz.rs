//! Bounded fuzzing, run by CI: mutants of every fixture through every parser, and random
//! requests through the real ingest listener. Set `ROLLCALL_FUZZ_ITERATIONS` and
//! `ROLLCALL_FUZZ_REQUESTS` for longer runs and `ROLLCALL_FUZZ_SEED` to replay one; the
//! coverage-guided runs are in `fuzz/` (cargo-fuzz). A crash found here is written to
//! `target/tmp/fuzz-crashes/` and belongs in `tests/fixtures/<platform>/` as a regression.

mod support;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rollcall::facts::Platform;
use rollcall::platforms::{self, Delivery};
use support::mutate::{self, Seed};
use support::spawn_app;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seeded(test: &str) -> (StdRng, u64) {
    let seed = setting("ROLLCALL_FUZZ_SEED", rand::random());
    println!("{test}: seed {seed} (ROLLCALL_FUZZ_SEED to replay)");
    (StdRng::seed_from_u64(seed), seed)
}

/// Keeps an input that made a parser panic, so it can become a regression fixture.
fn keep_crash(seed: &Seed, body: &[u8]) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crashes");
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!(
        "{}@{}-{}.bin",
        seed.platform,
        seed.trigger.as_deref().unwrap_or("none"),
        blake_like_hash(body)
    );
    std::fs::write(dir.join(&name), body).unwrap();
    dir.join(name).display().to_string()
}

fn blake_like_hash(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(body)[..8])
}

#[test]
fn mutants_of_every_fixture_never_crash_a_parser() {
    let (mut rng, seed) = seeded("parsers");
    let seeds = mutate::seeds();
    let iterations = setting("ROLLCALL_FUZZ_ITERATIONS", 100_000);
    let mut crashes = Vec::new();
    let mut outcomes: HashMap<&str, u64> = HashMap::new();
    for _ in 0..iterations {
        let chosen = seeds.choose(&mut rng).unwrap();
        let other = seeds.choose(&mut rng).unwrap();
        let body = mutate::mutant(chosen, other, &mut rng);
        // Mostly the fixture's own platform and trigger; sometimes another platform's.
        let platform = if rng.random_ratio(1, 8) {
            *Platform::ALL.choose(&mut rng).unwrap()
        } else {
            chosen.platform
        };
        let delivery = Delivery {
            platform,
            trigger: chosen.trigger.as_deref(),
            content_type: Some(chosen.content_type),
            body: &body,
            received_at: "2024-06-01T12:00:00Z".parse().unwrap(),
            source_zone: chrono_tz::Asia::Kolkata,
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            let _ = platforms::event_id(&delivery);
            platforms::parse(&delivery)
        }));
        let outcome = match result {
            Ok(Ok(platforms::Understanding::Facts { .. })) => "facts",
            Ok(Ok(platforms::Understanding::Ignored { .. })) => "ignored",
            Ok(Err(_)) => "quarantined",
            Err(_) => {
                crashes.push(keep_crash(chosen, &body));
                "crash"
            }
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    support::reliability::record(
        "fuzz_parsers",
        &serde_json::json!({
            "executions": iterations, "seed": seed, "fixtures": seeds.len(),
            "outcomes": outcomes, "crashes": crashes.len(),
        }),
    );
    assert!(crashes.is_empty(), "parsers panicked on: {crashes:#?}");
    assert!(
        outcomes.get("facts").copied().unwrap_or(0) > 0,
        "mutants still reach the facts"
    );
    assert!(
        outcomes.get("quarantined").copied().unwrap_or(0) > 0,
        "and some are refused"
    );
}

/// A random request: a method, a path (valid hooks, bad tokens and triggers, traversal, junk),
/// headers a sender controls, and a mutated or random body.
fn random_request(
    app: &support::TestApp,
    seeds: &[Seed],
    rng: &mut StdRng,
) -> (reqwest::RequestBuilder, Vec<u8>) {
    let seed = seeds.choose(rng).unwrap();
    let label = seed.platform.as_str();
    let token = &app.source(label).token;
    let trigger = seed.trigger.as_deref();
    let path = match rng.random_range(0..10) {
        0 => format!("/hooks/{label}/{}x", &token[..token.len() - 1]),
        1 => format!("/hooks/zoom/{token}"),
        2 => format!("/hooks/{label}/{token}/no.such.trigger"),
        3 => format!("/hooks/{label}/{token}/../../api/webinars"),
        4 => format!(
            "/hooks/{label}/%00%ff/{}",
            "a".repeat(rng.random_range(0..3000))
        ),
        5 => ["/", "/api/webinars", "/healthz", "/login?code=x", "/hooks"]
            .choose(rng)
            .unwrap()
            .to_string(),
        _ => match trigger {
            Some(trigger) => format!("/hooks/{label}/{token}/{trigger}"),
            None => format!("/hooks/{label}/{token}"),
        },
    };
    let method = [
        reqwest::Method::POST,
        reqwest::Method::POST,
        reqwest::Method::POST,
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::OPTIONS,
        reqwest::Method::HEAD,
    ]
    .choose(rng)
    .unwrap()
    .clone();
    let body = if rng.random_ratio(1, 6) {
        (0..rng.random_range(0..2048))
            .map(|_| rng.random())
            .collect()
    } else {
        mutate::mutant(seed, seeds.choose(rng).unwrap(), rng)
    };
    let content_types = [
        seed.content_type,
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain; charset=latin1",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "garbage/;;;=\"",
    ];
    let content_type = content_types.choose(rng).unwrap();
    let mut request = app
        .client
        .request(method, format!("http://{}{path}", app.addr))
        .header("content-type", *content_type)
        .body(body.clone());
    if rng.random_ratio(1, 5) {
        request = request.header("X-Webhook-Signature", "AAAA").header(
            "X-Webhook-Signature-Timestamp",
            rng.random::<u32>().to_string(),
        );
    }
    if rng.random_ratio(1, 10) {
        request = request.header("content-encoding", "gzip");
    }
    (request, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_through_ingest_never_get_a_server_error_and_every_200_is_kept() {
    let (mut rng, seed) = seeded("ingest");
    let app = spawn_app().await;
    let seeds = mutate::seeds();
    let requests = setting("ROLLCALL_FUZZ_REQUESTS", 3000);
    let mut statuses: HashMap<u16, u64> = HashMap::new();
    let mut kept = Vec::new();
    for _ in 0..requests {
        let (request, body) = random_request(&app, &seeds, &mut rng);
        let response = request.send().await.expect("the receiver answers");
        let status = response.status().as_u16();
        *statuses.entry(status).or_default() += 1;
        let text = response.text().await.unwrap();
        assert!(
            [200, 400, 401, 404, 405, 408, 413, 415, 431].contains(&status),
            "unexpected {status}: {text}"
        );
        if status == 200 && !text.is_empty() && text != "ok" {
            let receipt: serde_json::Value = serde_json::from_str(&text).unwrap();
            if let Some(id) = receipt["delivery"].as_i64() {
                kept.push((id, body));
            }
        }
    }
    let db = app.db();
    for (id, body) in &kept {
        let stored: Vec<u8> = db
            .query_row("SELECT body FROM deliveries WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(&stored, body, "delivery {id} is kept byte for byte");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM deliveries") as usize,
        kept.len(),
        "only acknowledged deliveries are stored"
    );
    let quarantined = app.count("SELECT count(*) FROM deliveries WHERE status = 'quarantined'");
    support::reliability::record(
        "fuzz_ingest",
        &serde_json::json!({
            "requests": requests, "seed": seed, "statuses": statuses,
            "kept": kept.len(), "quarantined": quarantined,
        }),
    );
    assert!(!kept.is_empty() && quarantined > 0, "{statuses:?}");
}
