//! Running the receiver: open the store, start the writer, bind the ingest listener, serve
//! until told to stop, then stop in order (stop accepting, answer in-flight requests, commit
//! the last batch). Headless `serve`, the desktop app and the tests all start it the same way.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use std::sync::Arc;

use crate::http::dashboard::{self, Access, DashboardState};
use crate::http::ingest::{self, IngestState};
use crate::http::listener::{self, ConnectionLimits};
use crate::selftest::SelfTestKey;
use crate::signature::ReplayWindow;
use crate::store::tunnel_urls;
use crate::store::writer::{Writer, WriterThread};
use crate::store::{database_path, ReadPool, StoreError, StoreOptions};
use crate::subscriptions::{Hookup, SubscriptionOptions};
use crate::tunnel::process::TokioSpawner;
use crate::tunnel::supervisor::{Pending, Spawner};
use crate::tunnel::{ProviderKind, PublicUrl, Tunnel, TunnelConfig, TunnelReport, UrlMemory};

/// How long in-flight requests get to finish once a stop is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub ingest_bind: SocketAddr,
    /// Loopback only: the dashboard is never reachable from another machine.
    pub dashboard_bind: SocketAddr,
    pub body_limit: usize,
    /// How long a sender may take to send its body before it is answered 408: a stalled
    /// sender holds nothing but its own connection.
    pub body_timeout: Duration,
    /// Header deadline and size cap for connections to the ingest listener.
    pub connection_limits: ConnectionLimits,
    /// How far a GoTo signature's timestamp may be from the receipt time.
    pub replay_window: ReplayWindow,
    /// The public URL platforms reach the ingest listener at (the tunnel's), for the URLs the
    /// dashboard shows.
    pub public_url: Option<String>,
    /// A tunnel to start towards the ingest listener.
    pub tunnel: Option<TunnelConfig>,
    pub store: StoreOptions,
    /// The platforms' subscription APIs and where their keys are kept.
    pub subscriptions: SubscriptionOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the dashboard only listens on a loopback address (127.0.0.1 or ::1), not {0}")]
    DashboardNotLoopback(SocketAddr),
    #[error(
        "Rollcall is already running on {data_dir} ({running}); use that one, or pass another \
         --data-dir"
    )]
    AlreadyRunning { data_dir: PathBuf, running: String },
    #[error("could not lock the data directory {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held while a receiver runs on a data directory: two receivers on one store would fight
/// over its ports and its writes. The OS releases it if the process dies.
pub(crate) struct DataDirLock(std::fs::File);

impl DataDirLock {
    pub(crate) fn take(data_dir: &std::path::Path) -> Result<DataDirLock, ServerError> {
        let path = data_dir.join("rollcall.lock");
        std::fs::create_dir_all(data_dir).map_err(|source| ServerError::Lock {
            path: path.clone(),
            source,
        })?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| ServerError::Lock {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock(file)),
            Err(std::fs::TryLockError::WouldBlock) => {
                let running = std::fs::read_to_string(&path).unwrap_or_default();
                let running = if running.trim().is_empty() {
                    "starting".to_owned()
                } else {
                    running.trim().to_owned()
                };
                Err(ServerError::AlreadyRunning {
                    data_dir: data_dir.to_owned(),
                    running,
                })
            }
            Err(std::fs::TryLockError::Error(source)) => Err(ServerError::Lock { path, source }),
        }
    }

    /// Notes where this receiver listens (or what holds the lock), for a second launch's message.
    pub(crate) fn describe(&mut self, what: &str) {
        use std::io::{Seek, Write};
        let _ = self.0.set_len(0);
        let _ = self.0.seek(std::io::SeekFrom::Start(0));
        let _ = self.0.write_all(what.as_bytes());
    }
}

/// Connections waiting to be accepted, at most (the system may cap it lower: `somaxconn`).
/// Tokio's 1,024 dropped connections when a thousand senders connected at once: each came back
/// a second later, and that second was the first request's.
const BACKLOG: u32 = 4096;

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let error = |source| ServerError::Bind { addr, source };
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }
    .map_err(error)?;
    // As std and tokio do: a port just closed can be bound again at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true).map_err(error)?;
    socket.bind(addr).map_err(error)?;
    let listener = socket.listen(BACKLOG).map_err(error)?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// A running receiver.
pub struct Server {
    _lock: DataDirLock,
    ingest_addr: SocketAddr,
    dashboard_addr: SocketAddr,
    access: Arc<Access>,
    hookup: Arc<Hookup>,
    writer: Writer,
    reads: ReadPool,
    public: PublicUrl,
    tunnel: Option<Tunnel>,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<()>,
    writer_thread: WriterThread,
}

impl Server {
    /// Opens the store and starts listening; returns once requests can be served. A tunnel,
    /// if asked for, runs its program with `tokio::process`.
    pub async fn start(options: &ServeOptions) -> Result<Server, ServerError> {
        Server::start_with(options, Arc::new(TokioSpawner)).await
    }

    /// As [`Server::start`], running the tunnel's program through `spawner` (the desktop app
    /// passes tauri-plugin-shell's).
    pub async fn start_with(
        options: &ServeOptions,
        spawner: Arc<dyn Spawner>,
    ) -> Result<Server, ServerError> {
        let mut lock = DataDirLock::take(&options.data_dir)?;
        let path = database_path(&options.data_dir);
        let store_options = options.store.clone();
        let (writer, writer_thread) = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || Writer::start(&path, &store_options))
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))??
        };
        if !options.dashboard_bind.ip().is_loopback() {
            return Err(ServerError::DashboardNotLoopback(options.dashboard_bind));
        }
        let (ingest_listener, ingest_addr) = bind(options.ingest_bind).await?;
        let (dashboard_listener, dashboard_addr) = bind(options.dashboard_bind).await?;
        lock.describe(&format!(
            "dashboard http://{dashboard_addr}, webhooks http://{ingest_addr}"
        ));
        let reads = ReadPool::new(&path, options.store.clone());
        let access = Arc::new(Access::new(dashboard_addr));
        let self_test = Arc::new(SelfTestKey::new());
        let ingest_app = ingest::router(IngestState {
            writer: writer.clone(),
            reads: reads.clone(),
            body_limit: options.body_limit,
            body_timeout: options.body_timeout,
            replay_window: options.replay_window,
            self_test: self_test.clone(),
            sources: Default::default(),
            in_flight: Default::default(),
        });
        let fallback_url = options
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{ingest_addr}"));
        // The tunnel points at the port the ingest listener actually bound (port 0 in tests).
        let tunnel = options.tunnel.as_ref().map(|config| {
            let memory = Arc::new(StoreMemory(writer.clone()));
            Tunnel::start(config, ingest_addr, spawner, memory)
        });
        let public = match &tunnel {
            Some(tunnel) => PublicUrl::new(fallback_url, tunnel.subscribe()),
            None => PublicUrl::fixed(fallback_url),
        };
        let hookup = {
            let (dir, writer, reads) = (options.data_dir.clone(), writer.clone(), reads.clone());
            let subscriptions = options.subscriptions.clone();
            // Probing the keychain is a blocking D-Bus call.
            tokio::task::spawn_blocking(move || Hookup::new(&dir, writer, reads, &subscriptions))
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?
        };
        let hookup = Arc::new(hookup);
        if let Some(tunnel) = &tunnel {
            tokio::spawn(repoint_when_the_url_changes(
                tunnel.subscribe(),
                Arc::downgrade(&hookup),
            ));
        }
        let dashboard_app = dashboard::router(DashboardState {
            reads: reads.clone(),
            writer: writer.clone(),
            access: access.clone(),
            data_dir: options.data_dir.clone(),
            public: public.clone(),
            tunnel: tunnel.as_ref().map(Tunnel::control),
            self_test,
            http: reqwest::Client::new(),
            hookup: hookup.clone(),
            memo: Arc::default(),
        });
        let (stop_all, _) = tokio::sync::broadcast::channel::<()>(1);
        let ingest = listener::serve_on_own_threads(
            ingest_listener,
            &ingest_app,
            options.connection_limits,
            || stopping(&stop_all),
            SHUTDOWN_GRACE,
            std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
        )
        .map_err(|source| ServerError::Bind {
            addr: ingest_addr,
            source,
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(serve_both(
            ingest.stopped(),
            (dashboard_listener, dashboard_app),
            stop_all,
            stopped,
        ));
        Ok(Server {
            _lock: lock,
            ingest_addr,
            dashboard_addr,
            access,
            hookup,
            writer,
            reads,
            public,
            tunnel,
            stop,
            serving,
            writer_thread,
        })
    }

    /// Where platforms should send webhooks now, and the tunnel's state and changes.
    pub fn public_url(&self) -> &PublicUrl {
        &self.public
    }

    /// The tunnel's report as of now ([`TunnelReport::off`] without a tunnel).
    pub fn tunnel(&self) -> TunnelReport {
        self.public.tunnel()
    }

    pub fn ingest_addr(&self) -> SocketAddr {
        self.ingest_addr
    }

    pub fn dashboard_addr(&self) -> SocketAddr {
        self.dashboard_addr
    }

    /// The dashboard's credentials for this launch.
    pub fn dashboard_access(&self) -> &Access {
        &self.access
    }

    /// The automatic subscriptions: call `hookup().repoint_all(new_base)` (or
    /// `public_url_changed`, which honours the organizer's auto re-point setting) when the
    /// tunnel's public URL changes. It holds a handle on the writer: drop any clone of it
    /// before `stop`, which waits for the writer's last handle.
    pub fn hookup(&self) -> &Arc<Hookup> {
        &self.hookup
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    pub fn reads(&self) -> &ReadPool {
        &self.reads
    }

    /// Stops accepting, lets in-flight deliveries be committed and answered (up to a grace
    /// period, so a stalled sender cannot hold the exit), then closes the store.
    pub async fn stop(self) {
        let Server {
            stop,
            mut serving,
            writer,
            writer_thread,
            tunnel,
            hookup,
            ..
        } = self;
        // The tunnel first: no new deliveries arrive while the listeners drain.
        if let Some(tunnel) = tunnel {
            tunnel.stop().await;
        }
        let _ = stop.send(());
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut serving)
            .await
            .is_err()
        {
            tracing::warn!("requests still open after the grace period were cut off");
            serving.abort();
            let _ = serving.await;
        }
        // The writer thread stops once every handle on it is gone; the hookup holds one.
        drop(hookup);
        drop(writer);
        let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    }
}

/// Serves the dashboard until `stopped` fires, then lets it and the ingest threads finish their
/// open requests.
async fn serve_both(
    ingest: impl Future<Output = ()>,
    (dashboard, dashboard_app): (TcpListener, axum::Router),
    stop_all: tokio::sync::broadcast::Sender<()>,
    stopped: oneshot::Receiver<()>,
) {
    let dashboard =
        axum::serve(dashboard, dashboard_app).with_graceful_shutdown(stopping(&stop_all));
    let relay = async move {
        let _ = stopped.await;
        let _ = stop_all.send(());
    };
    let ((), dashboard, ()) = tokio::join!(ingest, dashboard.into_future(), relay);
    if let Err(error) = dashboard {
        tracing::error!(%error, "the dashboard listener failed");
    }
}

/// Completes when `stop_all` sends, or is dropped.
fn stopping(
    stop_all: &tokio::sync::broadcast::Sender<()>,
) -> impl Future<Output = ()> + Send + 'static {
    let mut signal = stop_all.subscribe();
    async move {
        let _ = signal.recv().await;
    }
}

/// Re-points the automatic subscriptions (if the organizer allowed it) each time the tunnel
/// comes up at a URL other than the one it had. Holds the hookup weakly, so a stop is not kept
/// waiting for this task; it ends with the tunnel.
async fn repoint_when_the_url_changes(
    mut reports: tokio::sync::watch::Receiver<TunnelReport>,
    hookup: std::sync::Weak<Hookup>,
) {
    let mut repointed: Option<String> = None;
    while reports.changed().await.is_ok() {
        let url = {
            let report = reports.borrow_and_update();
            match report.live_url() {
                Some(url) if report.changed && repointed.as_deref() != Some(url) => url.to_owned(),
                _ => continue,
            }
        };
        let Some(hookup) = hookup.upgrade() else {
            return;
        };
        match hookup.public_url_changed(&url).await {
            Ok(Some(report)) => tracing::warn!(
                repointed = report.repointed,
                failed = report.failed,
                "the tunnel URL changed: automatic subscriptions re-pointed"
            ),
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "could not re-point the subscriptions"),
        }
        repointed = Some(url);
    }
}

/// Remembers each provider's URL in the store, on the writer thread.
struct StoreMemory(Writer);

impl UrlMemory for StoreMemory {
    fn remember(&self, provider: ProviderKind, url: String) -> Pending<Option<String>> {
        let writer = self.0.clone();
        Box::pin(async move {
            let remembered = writer
                .run(move |conn| {
                    tunnel_urls::remember(conn, provider.as_str(), &url, chrono::Utc::now())
                })
                .await;
            remembered.unwrap_or_else(|error| {
                tracing::warn!(%error, "could not remember the tunnel's URL");
                None
            })
        })
    }
}
