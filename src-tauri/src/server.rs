//! Running the receiver: open the store, start the writer, bind the ingest listener, serve
//! until told to stop, then stop in order (stop accepting, answer in-flight requests, commit
//! the last batch). Headless `serve`, the desktop app and the tests all start it the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::http::ingest::{self, IngestState};
use crate::store::writer::{Writer, WriterThread};
use crate::store::{database_path, ReadPool, StoreError, StoreOptions};

/// How long in-flight requests get to finish once a stop is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub ingest_bind: SocketAddr,
    pub body_limit: usize,
    pub store: StoreOptions,
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
}

/// A running receiver.
pub struct Server {
    ingest_addr: SocketAddr,
    writer: Writer,
    reads: ReadPool,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<()>,
    writer_thread: WriterThread,
}

impl Server {
    /// Opens the store and starts listening; returns once requests can be served.
    pub async fn start(options: &ServeOptions) -> Result<Server, ServerError> {
        let path = database_path(&options.data_dir);
        let store_options = options.store.clone();
        let (writer, writer_thread) = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || Writer::start(&path, &store_options))
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))??
        };
        let listener = TcpListener::bind(options.ingest_bind)
            .await
            .map_err(|source| ServerError::Bind {
                addr: options.ingest_bind,
                source,
            })?;
        let ingest_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: options.ingest_bind,
            source,
        })?;
        let reads = ReadPool::new(&path, options.store.clone());
        let state = IngestState {
            writer: writer.clone(),
            reads: reads.clone(),
            body_limit: options.body_limit,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let app = ingest::router(state);
        let serving = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(%error, "the ingest listener failed");
            }
        });
        Ok(Server {
            ingest_addr,
            writer,
            reads,
            stop,
            serving,
            writer_thread,
        })
    }

    pub fn ingest_addr(&self) -> SocketAddr {
        self.ingest_addr
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
            ..
        } = self;
        let _ = stop.send(());
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut serving)
            .await
            .is_err()
        {
            tracing::warn!("requests still open after the grace period were cut off");
            serving.abort();
            let _ = serving.await;
        }
        drop(writer);
        let _ = tokio::task::spawn_blocking(move || writer_thread.join()).await;
    }
}
