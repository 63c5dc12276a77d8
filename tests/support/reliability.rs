//! Figures from the fault and hostile-input tests (deliveries sent, acknowledged and found,
//! crashes survived, inputs tried), written where `scripts/reliability` collects them into
//! RELIABILITY.md. Recording never fails a test: a missing figure shows as missing there.

use std::path::PathBuf;

/// Where the figures of this build's test runs go.
pub fn figures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reliability")
}

/// Records the figures of the test `name`, replacing those of its previous run.
pub fn record(name: &str, figures: &serde_json::Value) {
    let dir = figures_dir();
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "test": name,
            "recorded_at": chrono::Utc::now().to_rfc3339(),
            "figures": figures,
        }))?;
        std::fs::write(dir.join(format!("{name}.json")), text)
    });
    if let Err(error) = written {
        eprintln!("could not record the figures of {name}: {error}");
    }
}
