//! A small structure-aware mutator for the bounded fuzzing in CI: it starts from the real
//! platform fixtures and breaks them the ways senders and networks do (flipped and lost bytes,
//! truncation, spliced bodies, JSON values of the wrong type, odd numbers and times, deep
//! nesting). The longer, coverage-guided runs use cargo-fuzz (see `fuzz/`).

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use rollcall::facts::Platform;
use serde_json::Value;

/// A fixture: its platform, the trigger its file name gives, and its body.
#[derive(Debug, Clone)]
pub struct Seed {
    pub platform: Platform,
    pub trigger: Option<String>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// Every fixture under `tests/fixtures/<platform>/`.
pub fn seeds() -> Vec<Seed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let mut seeds = Vec::new();
    for platform in Platform::ALL {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(platform.as_str()))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        for path in files {
            let stem = path.file_stem().unwrap().to_str().unwrap();
            let content_type = match path.extension().and_then(|e| e.to_str()) {
                Some("form") => "application/x-www-form-urlencoded",
                _ => "application/json",
            };
            seeds.push(Seed {
                platform,
                trigger: stem.split_once('@').map(|(t, _)| t.to_owned()),
                content_type,
                body: std::fs::read(&path).unwrap(),
            });
        }
    }
    seeds
}

/// Values that have broken parsers elsewhere: zero and negative epochs, 2^53 and beyond,
/// impossible dates, DST gaps, zones written every way, empty and huge strings.
fn interesting_value(rng: &mut StdRng) -> Value {
    let texts = [
        "",
        " ",
        "0",
        "-1",
        "1e308",
        "NaN",
        "9007199254740993",
        "18446744073709551616",
        "2024-02-30T25:61:00Z",
        "2024-03-10 02:30",
        "1714572300000",
        "+99:99",
        "GMT+5:30",
        "Asia/Kolkata",
        "null",
        "true",
        "@",
        "a@b",
        "=HYPERLINK(\"x\")",
        "<img src=x>",
        "\u{0}",
        "\u{feff}",
        "\u{1F600}",
        "ʻOkina",
        "x\r\ny",
    ];
    match rng.random_range(0..8) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => Value::from(rng.random::<i64>()),
        3 => Value::from(rng.random::<u64>()),
        4 => Value::from(rng.random::<f64>() * 1e15),
        5 => Value::Array(Vec::new()),
        6 => Value::Object(serde_json::Map::new()),
        _ => Value::String((*texts.choose(rng).unwrap()).to_owned()),
    }
}

/// Replaces, wraps or removes one node of a JSON document.
fn mutate_json(value: &mut Value, rng: &mut StdRng, depth: usize) {
    let children = match value {
        Value::Object(map) if !map.is_empty() => map.len(),
        Value::Array(items) if !items.is_empty() => items.len(),
        _ => 0,
    };
    let here = children == 0 || depth > 6 || rng.random_ratio(1, 4);
    if here {
        *value = match rng.random_range(0..4) {
            0 => Value::Array(vec![value.take()]),
            1 => serde_json::json!({ "data": value.take() }),
            _ => interesting_value(rng),
        };
        return;
    }
    let index = rng.random_range(0..children);
    match value {
        Value::Object(map) => {
            if rng.random_ratio(1, 6) {
                let key = map.keys().nth(index).unwrap().clone();
                map.remove(&key);
            } else {
                let child = map.values_mut().nth(index).unwrap();
                mutate_json(child, rng, depth + 1);
            }
        }
        Value::Array(items) => {
            if rng.random_ratio(1, 6) {
                let copy = items[index].clone();
                items.push(copy);
            } else {
                mutate_json(&mut items[index], rng, depth + 1);
            }
        }
        _ => unreachable!("a leaf has no children"),
    }
}

/// Byte-level damage: flips, insertions, deletions, truncation, a spliced-in piece of another
/// body, or deep nesting around it.
fn mutate_bytes(body: &mut Vec<u8>, other: &[u8], rng: &mut StdRng) {
    let len = body.len().max(1);
    match rng.random_range(0..7) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..len).min(body.len().saturating_sub(1));
                if let Some(byte) = body.get_mut(i) {
                    *byte ^= 1 << rng.random_range(0..8);
                }
            }
        }
        1 => {
            let i = rng.random_range(0..=body.len());
            body.insert(i, *b"{}[]\",:\\0-e".choose(rng).unwrap());
        }
        2 if !body.is_empty() => {
            let start = rng.random_range(0..body.len());
            let end = rng.random_range(start..=body.len());
            body.drain(start..end);
        }
        3 => body.truncate(rng.random_range(0..=body.len())),
        4 if !other.is_empty() => {
            let start = rng.random_range(0..other.len());
            let at = rng.random_range(0..=body.len());
            body.splice(at..at, other[start..].iter().copied().take(256));
        }
        5 => {
            let depth = rng.random_range(1..5000);
            let mut nested = b"[".repeat(depth);
            nested.append(body);
            nested.extend(b"]".repeat(depth));
            *body = nested;
        }
        _ => body.extend_from_slice(other),
    }
}

/// One mutant of `seed`: structured when the seed is JSON (most of the time), else bytes.
pub fn mutant(seed: &Seed, other: &Seed, rng: &mut StdRng) -> Vec<u8> {
    if rng.random_ratio(2, 3) {
        if let Ok(mut value) = serde_json::from_slice::<Value>(&seed.body) {
            for _ in 0..rng.random_range(1..4) {
                mutate_json(&mut value, rng, 0);
            }
            return value.to_string().into_bytes();
        }
    }
    let mut body = seed.body.clone();
    for _ in 0..rng.random_range(1..3) {
        mutate_bytes(&mut body, &other.body, rng);
    }
    body
}
