//! Every fixture under `tests/fixtures/<platform>/` parsed, and what it yields pinned in an
//! `insta` snapshot. A fixture named `TRIGGER@variant.json` is delivered as if posted to the
//! trigger URL `/hooks/<platform>/<token>/TRIGGER`; a `.form` fixture as a form-encoded body.

use std::path::Path;

use rollcall::facts::Platform;
use rollcall::platforms::{self, Delivery};

fn delivery_for<'a>(path: &'a Path, body: &'a [u8]) -> Delivery<'a> {
    let platform: Platform = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let stem = path.file_stem().unwrap().to_str().unwrap();
    let trigger = stem.split_once('@').map(|(trigger, _)| trigger);
    let content_type = match path.extension().and_then(|e| e.to_str()) {
        Some("form") => "application/x-www-form-urlencoded",
        _ => "application/json",
    };
    Delivery {
        platform,
        trigger,
        content_type: Some(content_type),
        body,
        received_at: "2024-01-01T00:00:00Z".parse().unwrap(),
        source_zone: chrono_tz::America::New_York,
    }
}

#[derive(serde::Serialize)]
struct Outcome {
    event_id: Option<String>,
    understanding: serde_json::Value,
}

fn outcome(delivery: &Delivery<'_>) -> Outcome {
    let understanding = match platforms::parse(delivery) {
        Ok(platforms::Understanding::Facts {
            facts,
            observed_at,
            warnings,
        }) => serde_json::json!({
            "facts": facts, "observed_at": observed_at, "warnings": warnings,
        }),
        Ok(platforms::Understanding::Ignored { reason }) => {
            serde_json::json!({ "ignored": reason })
        }
        Err(error) => serde_json::json!({ "error": error.to_string() }),
    };
    Outcome {
        event_id: platforms::event_id(delivery),
        understanding,
    }
}

#[test]
fn every_fixture_yields_its_snapshot() {
    insta::glob!("fixtures/*/*.{json,form}", |path| {
        let body = std::fs::read(path).unwrap();
        let delivery = delivery_for(path, &body);
        insta::assert_json_snapshot!(outcome(&delivery));
    });
}

/// Documentation examples are valid JSON once fixed; a fixture that is not would test the
/// quarantine, not the parser.
#[test]
fn every_json_fixture_is_valid_json_and_understood() {
    insta::glob!("fixtures/*/*.json", |path| {
        let body = std::fs::read(path).unwrap();
        serde_json::from_slice::<serde_json::Value>(&body)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()));
        let delivery = delivery_for(path, &body);
        if let Err(error) = platforms::parse(&delivery) {
            panic!("{} was not understood: {error}", path.display());
        }
    });
}
