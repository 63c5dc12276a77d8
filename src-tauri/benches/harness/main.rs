//! The benchmark harness behind `bench/run`: ingest under load against `rollcall serve` (with
//! the `/healthz` HTTP ceiling and a bare rusqlite insert loop as the storage ceiling, measured
//! in the same run), a 50,000-attendee BigMarker body, and reports, export, reindex and start-up
//! on a generated 1,000,000-delivery store. It writes `bench/results/*.json` and `latest.md`.
//! It is a measuring tool: no assertions on time, and never part of the test suite.
//!
//! `cargo bench --no-default-features --bench harness -- [--smoke] [--only ingest|hooks|large|store]`
//! (`hooks`: the ingest without the BigMarker lists), or `--only compare --against <rollcall>`:
//! the @64 share of this binary against another's, in alternating pairs.

mod generate;
mod load;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rollcall::facts::Platform;
use rollcall::store::{database_path, open_read_only, open_writer, StoreOptions};
use serde_json::{json, Value};

use generate::Spec;
use load::{LoadResult, Serve};

/// One line of the results table.
struct Row {
    group: &'static str,
    name: String,
    value: f64,
    unit: &'static str,
    target: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Results {
    rows: Vec<Row>,
    raw: serde_json::Map<String, Value>,
}

impl Results {
    fn add(
        &mut self,
        group: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) {
        self.rows.push(Row {
            group,
            name: name.into(),
            value,
            unit,
            target: String::new(),
            met: None,
        });
    }

    fn target(
        &mut self,
        group: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        target: impl Into<String>,
        met: bool,
    ) {
        self.rows.push(Row {
            group,
            name: name.into(),
            value,
            unit,
            target: target.into(),
            met: Some(met),
        });
    }
}

struct Options {
    smoke: bool,
    only: Option<String>,
    out: PathBuf,
    /// The other binary of `--only compare`.
    against: Option<PathBuf>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    Options {
        smoke: args.iter().any(|a| a == "--smoke"),
        only: value("--only"),
        out: value("--out").map_or_else(|| root.join("bench/results"), PathBuf::from),
        against: value("--against").map(PathBuf::from),
    }
}

fn main() -> anyhow::Result<()> {
    let options = options();
    let runtime = tokio::runtime::Runtime::new()?;
    let mut results = Results::default();
    let wants = |part: &str| options.only.as_deref().is_none_or(|only| only == part);
    if wants("ingest") || wants("hooks") {
        runtime.block_on(ingest(&options, &mut results))?;
    }
    if options.only.as_deref() == Some("lists") {
        runtime.block_on(lists_only(&options, &mut results))?;
    }
    if wants("large") {
        runtime.block_on(large_body(&options, &mut results))?;
    }
    if wants("store") {
        runtime.block_on(store(&options, &mut results))?;
    }
    // Only when asked for: it needs a second binary.
    if options.only.as_deref() == Some("compare") {
        runtime.block_on(compare(&options, &mut results))?;
    }
    write_results(&options, &results)
}

fn load_duration(options: &Options) -> Duration {
    Duration::from_secs(if options.smoke { 1 } else { 5 })
}

fn record_load(results: &mut Results, what: &str, r: &LoadResult) {
    results.raw.insert(
        format!("{what}_c{}", r.connections),
        serde_json::to_value(r).unwrap_or_default(),
    );
    let name = |m: &str| format!("{what} @{} conns: {m}", r.connections);
    results.add("ingest", name("acknowledged/s"), r.per_second, "req/s");
    results.add("ingest", name("p50"), r.p50_ms, "ms");
    results.add("ingest", name("p99"), r.p99_ms, "ms");
    results.add("ingest", name("max"), r.max_ms, "ms");
    results.add("ingest", name("errors"), r.errors as f64, "");
    // CPU per acknowledged request shows what each request costs, which throughput alone
    // hides on two cores shared with the load generator.
    let per_request = |seconds: f64| seconds * 1e6 / r.ok.max(1) as f64;
    let cpu = &r.server_cpu;
    results.add(
        "ingest",
        name("server CPU per request"),
        per_request(cpu.total),
        "µs",
    );
    for (thread, label) in [
        ("tokio-rt-worker", "HTTP workers"),
        ("rollcall-writer", "writer"),
        ("rollcall-checkp", "checkpointer"),
    ] {
        let seconds = cpu.thread(thread);
        if seconds > 0.0 {
            results.add(
                "ingest",
                name(&format!("  of which {label}")),
                per_request(seconds),
                "µs",
            );
        }
    }
    results.add(
        "ingest",
        name("load generator CPU per request"),
        per_request(r.generator_cpu),
        "µs",
    );
}

/// A fresh data directory with one source per platform, added by the binary measured (an
/// earlier build refuses a database this one has migrated): (dir, tokens by platform).
fn fresh_data_dir() -> anyhow::Result<(
    tempfile::TempDir,
    std::collections::HashMap<Platform, String>,
)> {
    fresh_data_dir_for(&load::binary())
}

/// [`fresh_data_dir`] for another `rollcall` binary.
fn fresh_data_dir_for(
    binary: &Path,
) -> anyhow::Result<(
    tempfile::TempDir,
    std::collections::HashMap<Platform, String>,
)> {
    let dir = tempfile::tempdir()?;
    for platform in Platform::ALL {
        let added = load::rollcall_binary(binary)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["sources", "add", platform.as_str(), platform.as_str()])
            .args(["--time-zone", "UTC"])
            .output()?;
        anyhow::ensure!(
            added.status.success(),
            "sources add: {}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    let conn = open_read_only(&database_path(dir.path()), &StoreOptions::default())?;
    let mut tokens = std::collections::HashMap::new();
    let mut stmt = conn.prepare("SELECT platform, token FROM sources")?;
    for row in stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))? {
        let (platform, token) = row?;
        tokens.insert(platform.parse().map_err(anyhow::Error::msg)?, token);
    }
    Ok((dir, tokens))
}

/// The ingest run: at 64 and at 1,000 connections, each on a fresh store.
async fn ingest(options: &Options, results: &mut Results) -> anyhow::Result<()> {
    let run_id = format!("{}", std::process::id());
    generate::check_tagmango(&run_id);
    let body_bytes = generate::tagmango_completed(&run_id, 0).len();
    results.add("ingest", "TagMango body size", body_bytes as f64, "B");
    let list_bytes = generate::bigmarker_attendees("c-0", 0, LIST_SIZE).len();
    results.add(
        "ingest",
        format!("BigMarker list body size ({LIST_SIZE} attendees)"),
        list_bytes as f64,
        "B",
    );
    let mut peak = 0f64;
    for connections in [64usize, 1000] {
        peak = peak.max(ingest_phase(options, results, connections, &run_id).await?);
    }
    results.add("ingest", "server peak RSS", peak, "MiB");
    Ok(())
}

/// One connection count of the ingest run, on its own store and server: /healthz, the hooks and
/// the lists, each load's catch-up, and at the end every acknowledged delivery looked for in the
/// journal. The store is deleted before the next phase: a fast server's lists fill tens of GB,
/// and two phases' worth filled this machine's disk. The server's peak RSS in MiB.
async fn ingest_phase(
    options: &Options,
    results: &mut Results,
    connections: usize,
    run_id: &str,
) -> anyhow::Result<f64> {
    let (dir, tokens) = fresh_data_dir()?;
    let serve = Serve::start(dir.path()).await?;
    let duration = load_duration(options);
    let tagmango_url = format!(
        "http://{}/hooks/tagmango/{}/webinar.completed.all",
        serve.ingest,
        tokens[&Platform::Tagmango]
    );
    let bigmarker_url = format!(
        "http://{}/hooks/bigmarker/{}/attendee-data",
        serve.ingest,
        tokens[&Platform::Bigmarker]
    );
    let health_url = format!("http://{}/healthz", serve.ingest);
    let health = load::run(serve.pid(), connections, duration, {
        let url = health_url.clone();
        Arc::new(move |_| (url.clone(), None))
    })
    .await;
    record_load(results, "healthz", &health);
    let tag = format!("{run_id}-{connections}");
    let hooks = load::run(serve.pid(), connections, duration, {
        let (url, tag) = (tagmango_url.clone(), tag.clone());
        Arc::new(move |n| (url.clone(), Some(generate::tagmango_completed(&tag, n))))
    })
    .await;
    record_with_catch_up(results, "tagmango hooks", &hooks, dir.path()).await?;
    // `--only hooks` leaves the BigMarker lists out: a quick look at the hook path.
    let lists = if options.only.as_deref() == Some("hooks") {
        None
    } else {
        let lists = lists_load(&serve, &bigmarker_url, connections, duration, &tag).await;
        record_with_catch_up(results, "bigmarker lists", &lists, dir.path()).await?;
        Some(lists)
    };
    let mut acknowledged = hooks.ok + lists.as_ref().map_or(0, |l| l.ok);
    let storage = storage_ceiling(connections, duration, run_id)?;
    results.add(
        "ingest",
        format!("bare rusqlite insert @batch {connections}: rows/s"),
        storage,
        "rows/s",
    );
    let ratio = hooks.per_second / health.per_second;
    if connections == 64 {
        results.add(
            "ingest",
            "tagmango hooks/healthz @64, one run each",
            ratio * 100.0,
            "%",
        );
        let tag = format!("{run_id}-pairs");
        let pairs = matched_pairs(
            &serve,
            dir.path(),
            options,
            &health_url,
            &tagmango_url,
            &tag,
        )
        .await?;
        acknowledged += pairs.acknowledged;
        pairs.record(results);
    } else {
        results.add("ingest", "tagmango hooks/healthz @1000", ratio * 100.0, "%");
        results.target(
            "ingest",
            "tagmango hooks p99 @1000",
            hooks.p99_ms,
            "ms",
            "< 100 ms",
            hooks.p99_ms < 100.0,
        );
        if let Some(lists) = &lists {
            lists_target(results, lists);
        }
    }
    results.add(
        "ingest",
        format!("hooks/storage ceiling @{connections}"),
        hooks.per_second / storage * 100.0,
        "%",
    );
    let errors = hooks.errors + lists.as_ref().map_or(0, |l| l.errors);
    results.target(
        "ingest",
        format!("errors @{connections}"),
        errors as f64,
        "",
        "0",
        errors == 0,
    );
    let (_, peak) = load::memory_mib(serve.pid());
    serve.stop().await;
    let conn = open_read_only(&database_path(dir.path()), &StoreOptions::default())?;
    let stored: i64 = conn.query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))?;
    results.target(
        "ingest",
        format!("acknowledged deliveries found in the journal @{connections}"),
        stored as f64,
        "",
        format!("= {acknowledged}"),
        stored as u64 == acknowledged,
    );
    Ok(peak)
}

/// A load's figures, then its catch-up: how many it left to project and how long that took.
async fn record_with_catch_up(
    results: &mut Results,
    what: &str,
    load: &LoadResult,
    dir: &Path,
) -> anyhow::Result<()> {
    record_load(results, what, load);
    record_catch_up(results, &format!("{what} @{}", load.connections), dir).await
}

/// Attendees in each BigMarker list of the ingest load.
const LIST_SIZE: usize = 100;

/// BigMarker lists of [`LIST_SIZE`] attendees from `connections` senders for `duration`.
async fn lists_load(
    serve: &Serve,
    url: &str,
    connections: usize,
    duration: Duration,
    tag: &str,
) -> LoadResult {
    let (url, tag) = (url.to_string(), tag.to_string());
    load::run(
        serve.pid(),
        connections,
        duration,
        Arc::new(move |n| {
            let conference = format!("c-{tag}-{n}");
            let first = n as usize * LIST_SIZE;
            let body = generate::bigmarker_attendees(&conference, first, LIST_SIZE);
            (url.clone(), Some(body))
        }),
    )
    .await
}

/// `--only lists`: the BigMarker lists at 1,000 senders on a fresh store, the one ingest target
/// a quick look at the hook path (`--only hooks`) leaves out. The server is stopped when the load
/// ends: neither the catch-up nor the journal count of the full ingest run is measured.
async fn lists_only(options: &Options, results: &mut Results) -> anyhow::Result<()> {
    let (dir, tokens) = fresh_data_dir()?;
    let serve = Serve::start(dir.path()).await?;
    let url = format!(
        "http://{}/hooks/bigmarker/{}/attendee-data",
        serve.ingest,
        tokens[&Platform::Bigmarker]
    );
    let tag = format!("{}-1000", std::process::id());
    let lists = lists_load(&serve, &url, 1000, load_duration(options), &tag).await;
    record_load(results, "bigmarker lists", &lists);
    lists_target(results, &lists);
    serve.stop().await;
    Ok(())
}

/// The lists' target: p99 under 100 ms at 1,000 senders.
fn lists_target(results: &mut Results, lists: &LoadResult) {
    results.target(
        "ingest",
        "bigmarker lists p99 @1000",
        lists.p99_ms,
        "ms",
        "< 100 ms",
        lists.p99_ms < 100.0,
    );
}

/// Short runs at 64 connections, /healthz then the TagMango hooks, each pair on a projected
/// store.
struct Pairs {
    /// Each pair's hooks throughput over its /healthz throughput.
    shares: Vec<f64>,
    acknowledged: u64,
    errors: u64,
}

/// The middle value (the upper one of an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

impl Pairs {
    fn record(&self, results: &mut Results) {
        let median = median(&self.shares);
        let lowest = self.shares.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = self
            .shares
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        results
            .raw
            .insert("matched_pairs_c64".into(), json!(self.shares));
        results.target(
            "ingest",
            format!(
                "tagmango hooks/healthz @64, median of {} matched pairs",
                self.shares.len()
            ),
            median * 100.0,
            "%",
            ">= 50 %",
            median >= 0.5,
        );
        results.add("ingest", "  lowest pair", lowest * 100.0, "%");
        results.add("ingest", "  highest pair", highest * 100.0, "%");
        results.target(
            "ingest",
            "errors in the matched pairs",
            self.errors as f64,
            "",
            "0",
            self.errors == 0,
        );
    }
}

/// The share at 64 connections from pairs of one-second runs: this machine's speed moves by a
/// third within minutes (one binary's /healthz ceiling went from 53,000 to 93,000/s), and a
/// ratio of two five-second runs moves with it; a pair a second apart sees the same machine.
/// Each pair starts once the store has projected what the last one sent, so the writer's
/// projection never takes CPU from a /healthz run.
async fn matched_pairs(
    serve: &Serve,
    dir: &Path,
    options: &Options,
    health_url: &str,
    tagmango_url: &str,
    tag: &str,
) -> anyhow::Result<Pairs> {
    const PAIRS: u64 = 7;
    let mut pairs = Pairs {
        shares: Vec::new(),
        acknowledged: 0,
        errors: 0,
    };
    for pair in 0..if options.smoke { 1 } else { PAIRS } {
        projected(dir).await?;
        let tag = format!("{tag}-{pair}");
        let (health, hooks) = one_pair(serve, health_url, tagmango_url, &tag).await;
        pairs.shares.push(hooks.per_second / health.per_second);
        pairs.acknowledged += hooks.ok;
        pairs.errors += health.errors + hooks.errors;
    }
    projected(dir).await?;
    Ok(pairs)
}

/// One second of /healthz, then one second of TagMango hooks, at 64 connections.
async fn one_pair(
    serve: &Serve,
    health_url: &str,
    tagmango_url: &str,
    tag: &str,
) -> (LoadResult, LoadResult) {
    let slice = Duration::from_secs(1);
    let url = health_url.to_owned();
    let health = load::run(
        serve.pid(),
        64,
        slice,
        Arc::new(move |_| (url.clone(), None)),
    )
    .await;
    let (url, tag) = (tagmango_url.to_owned(), tag.to_owned());
    let hooks = load::run(serve.pid(), 64, slice, {
        Arc::new(move |n| (url.clone(), Some(generate::tagmango_completed(&tag, n))))
    })
    .await;
    (health, hooks)
}

/// One of the two servers `--only compare` alternates between.
struct Side {
    binary: PathBuf,
    dir: tempfile::TempDir,
    serve: Serve,
    health_url: String,
    tagmango_url: String,
    shares: Vec<f64>,
    /// Per pair: what a /healthz request and a delivery cost (server, load generator, µs), and
    /// how busy each run kept the cores.
    costs: Vec<PairCosts>,
}

/// A row of `--only compare`'s costs: what it is, how to read it from a pair, its unit.
type CostRow = (&'static str, fn(&PairCosts) -> f64, &'static str);

#[derive(Debug, Clone, Copy, serde::Serialize)]
struct PairCosts {
    health_server: f64,
    health_generator: f64,
    hooks_server: f64,
    hooks_generator: f64,
    health_busy: f64,
    hooks_busy: f64,
}

impl PairCosts {
    fn of(health: &LoadResult, hooks: &LoadResult) -> PairCosts {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let per = |seconds: f64, r: &LoadResult| seconds * 1e6 / r.ok.max(1) as f64;
        let busy = |r: &LoadResult| (r.server_cpu.total + r.generator_cpu) / (r.seconds * cores);
        PairCosts {
            health_server: per(health.server_cpu.total, health),
            health_generator: per(health.generator_cpu, health),
            hooks_server: per(hooks.server_cpu.total, hooks),
            hooks_generator: per(hooks.generator_cpu, hooks),
            health_busy: busy(health),
            hooks_busy: busy(hooks),
        }
    }
}

impl Side {
    async fn start(binary: PathBuf) -> anyhow::Result<Side> {
        let (dir, tokens) = fresh_data_dir_for(&binary)?;
        let serve = Serve::start_binary(&binary, dir.path()).await?;
        Ok(Side {
            health_url: format!("http://{}/healthz", serve.ingest),
            tagmango_url: format!(
                "http://{}/hooks/tagmango/{}/webinar.completed.all",
                serve.ingest,
                tokens[&Platform::Tagmango]
            ),
            binary,
            dir,
            serve,
            shares: Vec::new(),
            costs: Vec::new(),
        })
    }
}

/// `--only compare --against OTHER`: the @64 share of this binary and of OTHER, from pairs
/// that alternate between the two servers (ABBA), so that both see the same machine within
/// seconds. For telling a change from this machine's drift, which moves one binary's share
/// by several points between runs minutes apart.
async fn compare(options: &Options, results: &mut Results) -> anyhow::Result<()> {
    const ROUNDS: usize = 15;
    let against = options
        .against
        .clone()
        .context("--only compare needs --against <rollcall binary>")?;
    let mut sides = [
        Side::start(load::binary()).await?,
        Side::start(against).await?,
    ];
    let run_id = std::process::id();
    generate::check_tagmango(&run_id.to_string());
    for round in 0..if options.smoke { 1 } else { ROUNDS } {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for index in order {
            for side in &sides {
                projected(side.dir.path()).await?;
            }
            let side = &mut sides[index];
            let tag = format!("{run_id}-{index}-{round}");
            let (health, hooks) =
                one_pair(&side.serve, &side.health_url, &side.tagmango_url, &tag).await;
            side.shares.push(hooks.per_second / health.per_second);
            side.costs.push(PairCosts::of(&health, &hooks));
        }
    }
    record_comparison(&sides, results);
    for side in sides {
        side.serve.stop().await;
    }
    Ok(())
}

/// Each build's median share and costs, the median of the rounds' differences, and how many
/// rounds this build won.
fn record_comparison(sides: &[Side; 2], results: &mut Results) {
    for (side, name) in sides.iter().zip(["this binary", "--against"]) {
        results.add(
            "compare",
            format!(
                "{name} ({}): median share of {} pairs",
                side.binary.display(),
                side.shares.len()
            ),
            median(&side.shares) * 100.0,
            "%",
        );
        let costs: [CostRow; 6] = [
            (
                "/healthz: server CPU per request",
                |c| c.health_server,
                "µs",
            ),
            (
                "/healthz: load generator CPU per request",
                |c| c.health_generator,
                "µs",
            ),
            ("hooks: server CPU per delivery", |c| c.hooks_server, "µs"),
            (
                "hooks: load generator CPU per delivery",
                |c| c.hooks_generator,
                "µs",
            ),
            ("/healthz: cores busy", |c| c.health_busy * 100.0, "%"),
            ("hooks: cores busy", |c| c.hooks_busy * 100.0, "%"),
        ];
        for (what, pick, unit) in costs {
            let values: Vec<f64> = side.costs.iter().map(pick).collect();
            results.add(
                "compare",
                format!("  {name}, median {what}"),
                median(&values),
                unit,
            );
        }
    }
    let differences: Vec<f64> = sides[0]
        .shares
        .iter()
        .zip(&sides[1].shares)
        .map(|(this, other)| (this - other) * 100.0)
        .collect();
    let higher = differences.iter().filter(|d| **d > 0.0).count();
    results.add(
        "compare",
        "median of the rounds' differences (this - against)",
        median(&differences),
        "points",
    );
    results.add(
        "compare",
        format!(
            "rounds where this binary's share was higher, of {}",
            differences.len()
        ),
        higher as f64,
        "",
    );
    for (side, key) in sides.iter().zip(["compare_this", "compare_against"]) {
        results.raw.insert(key.into(), json!(side.shares));
        results
            .raw
            .insert(format!("{key}_costs"), json!(side.costs));
    }
}

/// Waits until every delivery acknowledged in `dir` is journaled and projected.
async fn projected(dir: &Path) -> anyhow::Result<()> {
    let conn = open_read_only(&database_path(dir), &StoreOptions::default())?;
    while pending(&conn, dir)? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Deliveries acknowledged and not yet projected: journaled and pending, or still only in the
/// receipt log.
fn pending(conn: &rusqlite::Connection, dir: &Path) -> anyhow::Result<i64> {
    let journaled: i64 = conn.query_row(
        "SELECT count(*) FROM deliveries WHERE status = 'pending'",
        [],
        |r| r.get(0),
    )?;
    let received = rollcall::store::receipts::unimported(conn, &database_path(dir))?;
    Ok(journaled + received as i64)
}

/// Deliveries are acknowledged once journaled and projected as the writer finds time: how many
/// were left to project when the load stopped, and how long the writer took to finish them.
async fn record_catch_up(results: &mut Results, what: &str, dir: &Path) -> anyhow::Result<()> {
    let left = pending(
        &open_read_only(&database_path(dir), &StoreOptions::default())?,
        dir,
    )?;
    let started = Instant::now();
    projected(dir).await?;
    results.add(
        "ingest",
        format!("{what}: pending when the load stopped"),
        left as f64,
        "",
    );
    results.add(
        "ingest",
        format!("{what}: all projected after"),
        started.elapsed().as_secs_f64(),
        "s",
    );
    Ok(())
}

/// A bare insert loop on the journal table with the store's settings (WAL, synchronous=FULL):
/// `batch` rows per transaction. Rows per second.
fn storage_ceiling(batch: usize, duration: Duration, run: &str) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut conn = open_writer(&database_path(dir.path()), &StoreOptions::default())?;
    let started = Instant::now();
    let mut rows = 0u64;
    while started.elapsed() < duration {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO deliveries (platform, source_id, trigger, received_at, via, content_type,
                    headers, body, body_sha256, time_zone, identity, status)
                 VALUES ('tagmango', NULL, 'webinar.completed.all', ?1, 'webhook', 'application/json',
                    '{}', ?2, ?3, 'UTC', ?4, 'projected')",
            )?;
            for _ in 0..batch {
                let body = generate::tagmango_completed(run, rows);
                let hash = format!("{rows:064x}");
                insert.execute(rusqlite::params![
                    "2025-01-01T00:00:00.000Z",
                    body.as_bytes(),
                    hash,
                    format!("tagmango:sha256:{hash}")
                ])?;
                rows += 1;
            }
        }
        tx.commit()?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

async fn large_body(options: &Options, results: &mut Results) -> anyhow::Result<()> {
    let attendees = if options.smoke { 2_000 } else { 50_000 };
    let (dir, tokens) = fresh_data_dir()?;
    let serve = Serve::start(dir.path()).await?;
    let body = generate::bigmarker_attendees("large-1", 0, attendees);
    results.add(
        "large body",
        format!("BigMarker attendees body ({attendees} attendees)"),
        body.len() as f64 / 1048576.0,
        "MiB",
    );
    let (_, before) = load::memory_mib(serve.pid());
    let url = format!(
        "http://{}/hooks/bigmarker/{}/attendee-data",
        serve.ingest,
        tokens[&Platform::Bigmarker]
    );
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let answer = response.text().await?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let (_, peak) = load::memory_mib(serve.pid());
    serve.stop().await;
    anyhow::ensure!(
        status.is_success(),
        "large body answered {status}: {answer}"
    );
    let conn = open_read_only(&database_path(dir.path()), &StoreOptions::default())?;
    let projected: i64 = conn.query_row(
        "SELECT count(*) FROM attendance WHERE webinar_uid = 'bigmarker:large-1'",
        [],
        |r| r.get(0),
    )?;
    results.add(
        "large body",
        "time to 200 (committed and projected)",
        elapsed,
        "ms",
    );
    results.target(
        "large body",
        "attendees projected",
        projected as f64,
        "",
        format!("= {attendees}"),
        projected as usize == attendees,
    );
    results.add("large body", "server peak RSS before", before, "MiB");
    results.add("large body", "server peak RSS after", peak, "MiB");
    Ok(())
}

fn cache_dir(spec: Spec) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../bench/.cache/store-{}", spec.deliveries))
}

async fn store(options: &Options, results: &mut Results) -> anyhow::Result<()> {
    let spec = if options.smoke {
        Spec::SMOKE
    } else {
        Spec::FULL
    };
    let dir = cache_dir(spec);
    let ready = dir.join("ready");
    let reindex = || load::timed(load::rollcall().arg("--data-dir").arg(&dir).arg("reindex"));
    if !ready.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let started = Instant::now();
        let written = generate::write_journal(&database_path(&dir), spec)?;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!("generated {written} deliveries in {seconds:.1} s");
        results.add(
            "store",
            "journal generated (deliveries)",
            written as f64,
            "",
        );
        results.add("store", "journal generation time", seconds, "s");
        // The generated journal was never projected: its first reindex also sets every
        // delivery's status and builds the projection from nothing. Reported apart, since the
        // reindex an organizer runs (after an upgrade) is of a store already projected.
        let (took, said) = reindex()?;
        eprintln!("{}", said.trim());
        std::fs::write(&ready, said)?;
        results.add("store", "first projection time", took.as_secs_f64(), "s");
        results.add(
            "store",
            "first projection of the generated journal (reindex setting every status)",
            written as f64 / took.as_secs_f64(),
            "deliveries/s",
        );
    }
    let deliveries: i64 = open_read_only(&database_path(&dir), &StoreOptions::default())?
        .query_row("SELECT count(*) FROM deliveries", [], |r| r.get(0))?;
    let (took, said) = reindex()?;
    eprintln!("{}", said.trim());
    let per_second = deliveries as f64 / took.as_secs_f64();
    results.add("store", "deliveries in the store", deliveries as f64, "");
    results.add(
        "store",
        "reindex time (store already projected)",
        took.as_secs_f64(),
        "s",
    );
    results.target(
        "store",
        "reindex",
        per_second,
        "deliveries/s",
        ">= 20,000",
        per_second >= 20_000.0,
    );
    let floor = write_floor(&dir, options)?;
    results.add(
        "store",
        "writing a new file as large as the store, page by page (the reindex's floor)",
        floor,
        "s",
    );
    results.add(
        "store",
        "reindex time over that floor",
        took.as_secs_f64() / floor,
        "x",
    );
    describe_store(&dir, results)?;
    reports(options, &dir, results).await
}

/// Seconds to write and sync a new file the size of the store beside it, in the store's own
/// pages: what a reindex, which writes every page of a new file once, cannot go below here.
/// On the benchmark VMs, free memory left idle for about 20 s goes back to the host, and
/// touching it again costs about 3.5 s per GiB (against about 0.6 s for memory just freed), so
/// the harness first waits that long: the floor then meets memory as the reindex did.
fn write_floor(dir: &Path, options: &Options) -> anyhow::Result<f64> {
    use std::io::Write;
    let store = database_path(dir);
    let page_size: usize = open_read_only(&store, &StoreOptions::default())?.query_row(
        "PRAGMA page_size",
        [],
        |r| r.get(0),
    )?;
    let pages = std::fs::metadata(&store)?.len().div_ceil(page_size as u64);
    std::thread::sleep(Duration::from_secs(if options.smoke { 1 } else { 30 }));
    let path = dir.join("floor.tmp");
    let page = vec![0x5au8; page_size];
    let started = Instant::now();
    let mut file = std::fs::File::create(&path)?;
    for _ in 0..pages {
        file.write_all(&page)?;
    }
    file.sync_all()?;
    let seconds = started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(seconds)
}

fn describe_store(dir: &Path, results: &mut Results) -> anyhow::Result<()> {
    let conn = open_read_only(&database_path(dir), &StoreOptions::default())?;
    for (name, sql) in [
        ("webinars", "SELECT count(*) FROM webinars"),
        ("people", "SELECT count(*) FROM people"),
        (
            "largest webinar registrants",
            "SELECT count(*) FROM registrations WHERE webinar_uid = 'tagmango:bench-largest'",
        ),
        (
            "largest webinar attendees",
            "SELECT count(*) FROM attendance WHERE webinar_uid = 'tagmango:bench-largest'",
        ),
        (
            "projected deliveries",
            "SELECT count(*) FROM deliveries WHERE status = 'projected'",
        ),
    ] {
        let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
        results.add("store", name, n as f64, "");
    }
    let bytes = std::fs::metadata(database_path(dir))?.len();
    results.add("store", "database size", bytes as f64 / 1048576.0, "MiB");
    Ok(())
}

async fn reports(options: &Options, dir: &Path, results: &mut Results) -> anyhow::Result<()> {
    let serve = Serve::start(dir).await?;
    let started_ms = serve.started_in.as_secs_f64() * 1000.0;
    results.target(
        "store",
        "headless start to /healthz",
        started_ms,
        "ms",
        "< 300 ms",
        started_ms < 300.0,
    );
    let (rss, _) = load::memory_mib(serve.pid());
    results.add("store", "RSS after start", rss, "MiB");
    let client = reqwest::Client::new();
    let base = format!("http://{}", serve.dashboard);
    let largest = generate::LARGEST;
    let repeat = if options.smoke { 5 } else { 30 };
    for (name, path) in [
        ("webinar list", "/api/webinars".to_owned()),
        ("largest webinar report", format!("/api/webinars/{largest}")),
        (
            "largest webinar timeline",
            format!("/api/webinars/{largest}/timeline"),
        ),
        (
            "largest webinar attendees list",
            format!("/api/webinars/{largest}/people/attendees"),
        ),
        (
            "people search",
            format!("/api/people?q=p{}", if options.smoke { 42 } else { 4242 }),
        ),
    ] {
        let (p50, p99, max, bytes) =
            load::repeat_get(&client, &format!("{base}{path}"), &serve.token, repeat)
                .await
                .with_context(|| name)?;
        results.target(
            "reports",
            format!("{name} p50"),
            p50,
            "ms",
            "< 50 ms",
            p50 < 50.0,
        );
        results.add("reports", format!("{name} p99"), p99, "ms");
        results.add("reports", format!("{name} max"), max, "ms");
        results.add(
            "reports",
            format!("{name} response size"),
            bytes as f64 / 1024.0,
            "KiB",
        );
    }
    let (rss, hwm) = load::memory_mib(serve.pid());
    results.add("store", "RSS after reports", rss, "MiB");
    results.add("store", "peak RSS after reports", hwm, "MiB");
    // One request of a 0.5 s export swings by a third on this kind of machine; the target is
    // judged on the median of several, and the first (cold) one is reported beside it.
    let exports = if options.smoke { 3 } else { 5 };
    for (name, webinar, times) in [
        ("small", generate::small_webinar(), 1),
        ("largest", largest.to_owned(), exports),
    ] {
        let url = format!("{base}/api/export/attendees?webinar={webinar}");
        let mut per_second = Vec::new();
        let mut rows = 0;
        for _ in 0..times {
            let (exported, seconds) = export(&client, &url, &serve.token).await?;
            rows = exported;
            per_second.push(rows as f64 / seconds);
        }
        let (_, hwm) = load::memory_mib(serve.pid());
        results.add(
            "export",
            format!("{name} attendees export rows"),
            rows as f64,
            "",
        );
        if name == "largest" {
            results.add(
                "export",
                "largest attendees export, first request",
                per_second[0],
                "rows/s",
            );
            per_second.sort_by(f64::total_cmp);
            let median = per_second[per_second.len() / 2];
            results.target(
                "export",
                format!("largest attendees export, median of {times}"),
                median,
                "rows/s",
                ">= 200,000",
                median >= 200_000.0,
            );
        }
        results.add(
            "export",
            format!("server peak RSS after {name} export"),
            hwm,
            "MiB",
        );
    }
    let (rss, hwm) = load::memory_mib(serve.pid());
    results.target(
        "store",
        "server RSS at the end",
        rss,
        "MiB",
        "< 200 MiB",
        rss < 200.0,
    );
    results.target(
        "store",
        "server peak RSS overall",
        hwm,
        "MiB",
        "< 200 MiB",
        hwm < 200.0,
    );
    serve.stop().await;
    Ok(())
}

/// One CSV export read to its end: its data rows and the seconds it took.
async fn export(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<(usize, f64)> {
    let started = Instant::now();
    let mut response = client.get(url).bearer_auth(token).send().await?;
    anyhow::ensure!(
        response.status().is_success(),
        "export answered {}",
        response.status()
    );
    let mut lines = 0usize;
    while let Some(chunk) = response.chunk().await? {
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    Ok((lines.saturating_sub(1), started.elapsed().as_secs_f64()))
}

fn write_results(options: &Options, results: &Results) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.out)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let rows: Vec<Value> = results
        .rows
        .iter()
        .map(|r| json!({"group": r.group, "name": r.name, "value": r.value, "unit": r.unit, "target": r.target, "met": r.met}))
        .collect();
    let document = json!({
        "when": stamp,
        "smoke": options.smoke,
        "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "rows": rows,
        "load_runs": results.raw,
    });
    let suffix = if options.smoke { "-smoke" } else { "" };
    let json_text = serde_json::to_string_pretty(&document)?;
    std::fs::write(
        options.out.join(format!("{stamp}{suffix}.json")),
        &json_text,
    )?;
    std::fs::write(options.out.join(format!("latest{suffix}.json")), &json_text)?;
    let mut table = format!("# Benchmark results {stamp}{}\n\n| group | measure | value | unit | target | met |\n|---|---|---:|---|---|---|\n", if options.smoke { " (smoke sizes)" } else { "" });
    for r in &results.rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.group,
            r.name,
            format_value(r.value),
            r.unit,
            r.target,
            met
        ));
    }
    std::fs::write(options.out.join(format!("latest{suffix}.md")), &table)?;
    println!("{table}");
    Ok(())
}

fn format_value(value: f64) -> String {
    if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
