//! The load generator and the processes it measures: `rollcall serve` as a child process,
//! N persistent connections each sending one request at a time, per-request latency in an HDR
//! histogram. It must not judge the figures; `main` compares them with the targets.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{header, Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running `rollcall serve`.
pub struct Serve {
    pub child: tokio::process::Child,
    pub ingest: String,
    pub dashboard: String,
    pub token: String,
    pub started_in: Duration,
}

impl Serve {
    /// Starts `serve` on `data_dir` and waits until `/healthz` answers.
    pub async fn start(data_dir: &Path) -> anyhow::Result<Serve> {
        Serve::start_binary(&binary(), data_dir).await
    }

    /// [`Serve::start`] with another `rollcall` binary.
    pub async fn start_binary(binary: &Path, data_dir: &Path) -> anyhow::Result<Serve> {
        let started = Instant::now();
        let mut child = tokio::process::Command::new(binary)
            .args([
                "serve",
                "--ingest-bind",
                "127.0.0.1:0",
                "--dashboard-bind",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("could not start rollcall serve")?;
        let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
        let (mut ingest, mut login) = (None, None);
        while ingest.is_none() || login.is_none() {
            let line = lines
                .next_line()
                .await?
                .context("serve exited before listening")?;
            if let Some(rest) = line.strip_prefix("Rollcall is receiving webhooks on http://") {
                ingest = rest.split('/').next().map(str::to_owned);
            }
            if let Some(rest) = line.strip_prefix("Dashboard: ") {
                login = Some(rest.to_owned());
            }
        }
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let ingest = ingest.unwrap_or_default();
        let client = reqwest::Client::new();
        loop {
            let health = client.get(format!("http://{ingest}/healthz")).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let started_in = started.elapsed();
        let token = log_in(&client, &login.unwrap_or_default()).await?;
        Ok(Serve {
            dashboard: dashboard_from(&token.1),
            token: token.0,
            child,
            ingest,
            started_in,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    /// Stops the server with SIGTERM (a clean stop) and waits for it.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
    }
}

fn dashboard_from(login: &str) -> String {
    login
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Redeems the one-time login link for the session token: (token, login url).
async fn log_in(_client: &reqwest::Client, login: &str) -> anyhow::Result<(String, String)> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let response = client.get(login).send().await?;
    let cookie = response
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .context("login set no cookie")?;
    let token = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, token)| token.to_owned())
        .context("malformed cookie")?;
    Ok((token, login.to_owned()))
}

/// Resident and peak resident memory of a process, in MiB, from /proc.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU seconds a process has used, in all and by thread name (threads of one name summed).
/// A thread that ended between two readings is in `total` only.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cpu {
    pub total: f64,
    pub by_thread: BTreeMap<String, f64>,
}

/// Linux reports CPU times in USER_HZ ticks, 100 a second on every architecture it supports.
const TICKS_PER_SECOND: f64 = 100.0;

impl Cpu {
    /// Reads `/proc`; a process that is gone reads as zero.
    pub fn of(pid: u32) -> Cpu {
        let mut cpu = Cpu {
            total: stat_seconds(&format!("/proc/{pid}/stat")).map_or(0.0, |(_, s)| s),
            by_thread: BTreeMap::new(),
        };
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        for task in tasks.flatten() {
            if let Some((name, seconds)) = stat_seconds(&task.path().join("stat").to_string_lossy())
            {
                *cpu.by_thread.entry(name).or_default() += seconds;
            }
        }
        cpu
    }

    /// What was used between `earlier` and this reading.
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            total: self.total - earlier.total,
            by_thread: self
                .by_thread
                .iter()
                .map(|(name, s)| {
                    (
                        name.clone(),
                        s - earlier.by_thread.get(name).unwrap_or(&0.0),
                    )
                })
                .collect(),
        }
    }

    /// Seconds used by threads of this name.
    pub fn thread(&self, name: &str) -> f64 {
        self.by_thread.get(name).copied().unwrap_or_default()
    }
}

/// A thread's or process's name and user plus system time from a `stat` file.
fn stat_seconds(path: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The name is in parentheses and may itself contain spaces or parentheses.
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), utime 14 and stime 15.
    let ticks = |field: usize| fields.get(field - 3)?.parse::<f64>().ok();
    Some((name, (ticks(14)? + ticks(15)?) / TICKS_PER_SECOND))
}

/// Runs a child to completion, returning its wall time.
pub fn timed(command: &mut Command) -> anyhow::Result<(Duration, String)> {
    let started = Instant::now();
    let output = command.stderr(Stdio::inherit()).output()?;
    anyhow::ensure!(output.status.success(), "{command:?} failed");
    Ok((
        started.elapsed(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// The `rollcall` binary measured: the one cargo built with this harness, unless
/// `ROLLCALL_BENCH_BIN` names another (an earlier build, for a before/after comparison).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("ROLLCALL_BENCH_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_rollcall").into(), Into::into)
}

pub fn rollcall() -> Command {
    rollcall_binary(&binary())
}

pub fn rollcall_binary(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    command.env("RUST_LOG", "warn");
    command
}

/// What one load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub connections: usize,
    pub ok: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU the server used during the run.
    pub server_cpu: Cpu,
    /// CPU seconds this process (the load generator) used during the run.
    pub generator_cpu: f64,
}

/// One request to send: URL and body (`None` for a GET).
pub type MakeRequest = Arc<dyn Fn(u64) -> (String, Option<String>) + Send + Sync>;

/// `connections` workers, each with its own connection, send requests back to back for
/// `duration` to the server whose process is `server`. Only a 200 counts as acknowledged.
pub async fn run(
    server: u32,
    connections: usize,
    duration: Duration,
    make: MakeRequest,
) -> LoadResult {
    let counter = Arc::new(AtomicU64::new(0));
    let (server_before, generator_before) = (Cpu::of(server), Cpu::of(std::process::id()));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (counter, make) = (counter.clone(), make.clone());
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).expect("histogram");
                let mut errors = 0u64;
                let mut connection = None;
                while Instant::now() < deadline {
                    let (url, body) = make(counter.fetch_add(1, Ordering::Relaxed));
                    let sent = Instant::now();
                    match send(&mut connection, &url, body).await {
                        Ok(true) => {
                            let _ = histogram.record(sent.elapsed().as_micros() as u64);
                        }
                        Ok(false) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            connection = None;
                        }
                    }
                }
                (histogram, errors)
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    let mut errors = 0;
    for worker in workers {
        let (histogram, failed) = worker.await.expect("worker");
        all.add(&histogram).expect("same bounds");
        errors += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    let server_cpu = Cpu::of(server).since(&server_before);
    let generator_cpu = Cpu::of(std::process::id()).total - generator_before.total;
    let ms = |micros: u64| micros as f64 / 1000.0;
    LoadResult {
        connections,
        ok: all.len(),
        errors,
        seconds,
        per_second: all.len() as f64 / seconds,
        p50_ms: ms(all.value_at_quantile(0.5)),
        p99_ms: ms(all.value_at_quantile(0.99)),
        max_ms: ms(all.max()),
        server_cpu,
        generator_cpu,
    }
}

/// A worker's HTTP/1.1 connection. hyper's connection, not a pooled client: reqwest's pool and
/// layers cost the load generator 26 µs a request, as much as the server's whole work on a
/// webhook, on the two cores they share.
type Connection = http1::SendRequest<Full<Bytes>>;

/// Sends one request on `connection`, opened first if there is none: whether the answer was a
/// 200 with its whole body. An error leaves the connection to be opened again.
async fn send(
    connection: &mut Option<Connection>,
    url: &str,
    body: Option<String>,
) -> anyhow::Result<bool> {
    let uri: hyper::Uri = url.parse()?;
    let authority = uri.authority().context("no host in the URL")?.as_str();
    let sender = match connection {
        Some(sender) => sender,
        None => connection.insert(connect(authority).await?),
    };
    let request = hyper::Request::builder()
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, authority);
    let request = match body {
        Some(body) => request
            .method(Method::POST)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?,
        None => request.body(Full::default())?,
    };
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status == StatusCode::OK)
}

async fn connect(authority: &str) -> anyhow::Result<Connection> {
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Latency of `count` sequential GETs on the dashboard API: (p50, p99, max) in ms.
pub async fn repeat_get(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    count: usize,
) -> anyhow::Result<(f64, f64, f64, usize)> {
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut bytes = 0;
    for _ in 0..count {
        let sent = Instant::now();
        let response = client.get(url).bearer_auth(token).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        bytes = response.bytes().await?.len();
        let _ = histogram.record(sent.elapsed().as_micros() as u64);
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok((
        ms(histogram.value_at_quantile(0.5)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max()),
        bytes,
    ))
}
