//! Keeps one tunnel running: starts the program through a [`Spawner`], reads its output for the
//! public URL (asking the provider's local endpoint first when it has one), publishes the
//! status on a watch channel, restarts the program with exponential backoff when it dies, and
//! kills it when asked to stop. Knows nothing of Tauri or of the store: URLs are remembered
//! through a [`UrlMemory`] the caller supplies.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{
    installed, Launch, Provider, ProviderKind, Said, TunnelConfig, TunnelError, TunnelReport,
    TunnelStatus,
};

/// The first wait before a restart; doubled after each quick failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Waits never grow beyond this: a tunnel back within half a minute loses few deliveries
/// (platforms retry), and a provider's outage is not hammered.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A tunnel that stayed up this long failed for a new reason: start again from the first wait.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How often a provider's local endpoint is asked for the URL until it knows it.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// How long a killed program gets to exit before the supervisor moves on.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Lines of output kept for the UI.
const OUTPUT_LINES: usize = 40;

/// Something that happened to a running tunnel program.
#[derive(Debug)]
pub enum ChildEvent {
    /// One line of its output (stdout or stderr).
    Line(String),
    /// It exited; how.
    Exited(String),
}

/// A started program: its output and exit, and a way to kill it.
pub struct Spawned {
    pub events: mpsc::UnboundedReceiver<ChildEvent>,
    pub child: Box<dyn RunningChild>,
}

pub trait RunningChild: Send {
    fn pid(&self) -> Option<u32>;
    /// Kills the program; its `Exited` event follows.
    fn kill(&mut self);
}

/// Starts programs: `tokio::process` headless, tauri-plugin-shell in the desktop app.
pub trait Spawner: Send + Sync {
    fn spawn(&self, command: &super::CommandLine) -> Result<Spawned, TunnelError>;
}

pub type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Remembers the URL each provider last had; answers the previous one when it changed.
pub trait UrlMemory: Send + Sync {
    fn remember(&self, provider: ProviderKind, url: String) -> Pending<Option<String>>;
}

enum Control {
    Restart,
    Stop(oneshot::Sender<()>),
}

/// Asks a running tunnel to restart (the dashboard's button).
#[derive(Clone)]
pub struct TunnelControl(mpsc::UnboundedSender<Control>);

impl TunnelControl {
    pub fn restart(&self) {
        let _ = self.0.send(Control::Restart);
    }
}

/// A supervised tunnel.
pub struct Tunnel {
    report: watch::Receiver<TunnelReport>,
    control: TunnelControl,
    task: JoinHandle<()>,
}

impl Tunnel {
    /// Starts supervising a tunnel to `target` (the ingest listener's bound address).
    pub fn start(
        config: &TunnelConfig,
        target: SocketAddr,
        spawner: Arc<dyn Spawner>,
        memory: Arc<dyn UrlMemory>,
    ) -> Tunnel {
        let provider = config.provider();
        let mut first = TunnelReport::off();
        first.provider = Some(provider.kind());
        first.status = TunnelStatus::Starting;
        let (publish, report) = watch::channel(first);
        let (control, controls) = mpsc::unbounded_channel();
        let supervisor = Supervisor {
            provider,
            program: config
                .program
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            target,
            spawner,
            memory,
            publish,
            controls,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .no_proxy()
                .build()
                .unwrap_or_default(),
        };
        Tunnel {
            report,
            control: TunnelControl(control),
            task: tokio::spawn(supervisor.run()),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<TunnelReport> {
        self.report.clone()
    }

    pub fn control(&self) -> TunnelControl {
        self.control.clone()
    }

    /// Kills the program and waits until it has exited.
    pub async fn stop(self) {
        let (done, stopped) = oneshot::channel();
        if self.control.0.send(Control::Stop(done)).is_ok() {
            let _ = tokio::time::timeout(EXIT_GRACE * 2, stopped).await;
        }
        self.task.abort();
        let _ = self.task.await;
    }
}

struct Supervisor {
    provider: Box<dyn Provider>,
    program: Option<String>,
    target: SocketAddr,
    spawner: Arc<dyn Spawner>,
    memory: Arc<dyn UrlMemory>,
    publish: watch::Sender<TunnelReport>,
    controls: mpsc::UnboundedReceiver<Control>,
    http: reqwest::Client,
}

/// Why a run of the program ended.
enum Ended {
    Exited { reason: String, lasted: Duration },
    Restart,
    Stop(Option<oneshot::Sender<()>>),
}

/// What a wait between attempts was cut short by.
enum Woken {
    Timer,
    Restart,
    Stop(Option<oneshot::Sender<()>>),
}

impl Supervisor {
    async fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let mut launch = self.provider.launch(self.target);
            // (Refused with `custom` when configured: its program is in its command.)
            if let Some(program) = &self.program {
                launch.command.program.clone_from(program);
            }
            let program = launch.command.program.clone();
            let ended = if installed(&program) {
                self.set_status(TunnelStatus::Starting);
                match self.spawner.spawn(&launch.command) {
                    Ok(spawned) => self.watch(spawned, &launch).await,
                    Err(TunnelError::NotFound { .. }) => self.not_installed(&program).await,
                    Err(error) => Ended::Exited {
                        reason: error.to_string(),
                        lasted: Duration::ZERO,
                    },
                }
            } else {
                self.not_installed(&program).await
            };
            match ended {
                Ended::Stop(done) => return finish(done),
                Ended::Restart => backoff = FIRST_BACKOFF,
                Ended::Exited { reason, lasted } => {
                    if lasted >= STABLE_AFTER {
                        backoff = FIRST_BACKOFF;
                    }
                    tracing::warn!(tunnel = %self.provider.kind(), %reason, retry_in = ?backoff, "the tunnel is down");
                    self.set_status(TunnelStatus::Down {
                        reason,
                        retry_in_secs: backoff.as_secs(),
                    });
                    match self.wait(Some(backoff)).await {
                        Woken::Stop(done) => return finish(done),
                        Woken::Restart => backoff = FIRST_BACKOFF,
                        Woken::Timer => backoff = (backoff * 2).min(MAX_BACKOFF),
                    }
                }
            }
        }
    }

    /// Shows how to install the program and waits for a restart request (after installing).
    async fn not_installed(&mut self, program: &str) -> Ended {
        tracing::warn!(tunnel = %self.provider.kind(), program, "the tunnel program is not installed");
        self.set_status(TunnelStatus::NotInstalled {
            program: program.to_owned(),
            how_to_install: self.provider.how_to_install().to_owned(),
        });
        match self.wait(None).await {
            Woken::Stop(done) => Ended::Stop(done),
            Woken::Restart | Woken::Timer => Ended::Restart,
        }
    }

    async fn wait(&mut self, timeout: Option<Duration>) -> Woken {
        let timer = async {
            match timeout {
                Some(duration) => tokio::time::sleep(duration).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = timer => Woken::Timer,
            control = self.controls.recv() => match control {
                Some(Control::Restart) => Woken::Restart,
                Some(Control::Stop(done)) => Woken::Stop(Some(done)),
                None => Woken::Stop(None),
            },
        }
    }

    /// Follows one run of the program until it exits or is told to stop or restart.
    async fn watch(&mut self, mut spawned: Spawned, launch: &Launch) -> Ended {
        let started = Instant::now();
        let pid = spawned.child.pid();
        self.publish.send_modify(|r| {
            r.pid = pid;
            r.starts += 1;
            r.output.clear();
        });
        tracing::info!(tunnel = %self.provider.kind(), ?pid, program = %launch.command.program, "tunnel started");
        let mut problem = None;
        let mut known = false;
        let mut probe_timer = tokio::time::interval(PROBE_EVERY);
        loop {
            let probing = !known && launch.probe.is_some();
            tokio::select! {
                event = spawned.events.recv() => {
                    let line = match event {
                        Some(ChildEvent::Line(line)) => line,
                        Some(ChildEvent::Exited(how)) => {
                            self.publish.send_modify(|r| r.pid = None);
                            let reason = match problem {
                                Some(problem) => format!("{} exited ({how}): {problem}", launch.command.program),
                                None => format!("{} exited ({how})", launch.command.program),
                            };
                            return Ended::Exited { reason, lasted: started.elapsed() };
                        }
                        None => {
                            self.publish.send_modify(|r| r.pid = None);
                            let reason = format!("lost track of {}", launch.command.program);
                            return Ended::Exited { reason, lasted: started.elapsed() };
                        }
                    };
                    self.keep_output(&line);
                    match self.provider.read_line(&line) {
                        Some(Said::Url(url)) if !known => {
                            let url = self.probe(launch).await.unwrap_or(url);
                            self.up(url).await;
                            known = true;
                        }
                        Some(Said::Problem(message)) => problem = Some(message),
                        _ => {}
                    }
                }
                _ = probe_timer.tick(), if probing => {
                    if let Some(url) = self.probe(launch).await {
                        self.up(url).await;
                        known = true;
                    }
                }
                control = self.controls.recv() => {
                    let ended = match control {
                        Some(Control::Restart) => Ended::Restart,
                        Some(Control::Stop(done)) => Ended::Stop(Some(done)),
                        None => Ended::Stop(None),
                    };
                    spawned.child.kill();
                    drain_until_exit(&mut spawned).await;
                    self.publish.send_modify(|r| r.pid = None);
                    return ended;
                }
            }
        }
    }

    /// Asks the provider's local endpoint for the URL, if it has one.
    async fn probe(&self, launch: &Launch) -> Option<String> {
        let probe = launch.probe.as_ref()?;
        let answer = self.http.get(&probe.url).send().await.ok()?;
        let body = answer.text().await.ok()?;
        (probe.read)(&body)
    }

    /// The tunnel has a URL: remember it, and say so loudly when it differs from last time.
    async fn up(&mut self, url: String) {
        let kind = self.provider.kind();
        let previous = self.memory.remember(kind, url.clone()).await;
        if let Some(previous) = &previous {
            tracing::warn!(
                tunnel = %kind, %previous, %url,
                "THE PUBLIC URL CHANGED: every platform's webhooks must be re-pointed to the new URL"
            );
        } else {
            tracing::info!(tunnel = %kind, %url, "the tunnel is up");
        }
        self.publish.send_modify(|r| {
            r.status = TunnelStatus::Up { url: url.clone() };
            r.url = Some(url);
            if previous.is_some() {
                r.changed = true;
                r.previous_url = previous;
            }
        });
    }

    fn set_status(&self, status: TunnelStatus) {
        self.publish.send_modify(|r| r.status = status);
    }

    fn keep_output(&self, line: &str) {
        tracing::debug!(tunnel = %self.provider.kind(), line, "tunnel output");
        self.publish.send_modify(|r| {
            if r.output.len() == OUTPUT_LINES {
                r.output.remove(0);
            }
            r.output.push(line.to_owned());
        });
    }
}

/// Waits (a bounded time) for a killed program's exit, so it is reaped before going on.
async fn drain_until_exit(spawned: &mut Spawned) {
    let exited = async {
        while let Some(event) = spawned.events.recv().await {
            if matches!(event, ChildEvent::Exited(_)) {
                return;
            }
        }
    };
    if tokio::time::timeout(EXIT_GRACE, exited).await.is_err() {
        tracing::warn!("the tunnel program did not exit after being killed");
    }
}

fn finish(done: Option<oneshot::Sender<()>>) {
    if let Some(done) = done {
        let _ = done.send(());
    }
}
