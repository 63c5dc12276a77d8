//! Serving the ingest router on its public listener with the limits a port reachable from the
//! internet needs: a deadline for request headers (so connections held open by a slow or
//! silent sender are closed instead of piling up), a cap on header size, and a graceful stop
//! that lets requests in flight finish; and the threads that serve it, each connection on one,
//! each thread with a relay for the answers the receipt log's syncer sends it
//! (`store::relay`). It owns connections, not requests: body limits and timeouts are the
//! router's.

use std::future::Future;
use std::num::NonZeroUsize;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::store::relay::Relay;

/// What a connection may cost before it has sent a request.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time from the start of a request (or of an idle kept-alive connection) to the end of its
    /// headers; a sender dribbling header bytes is cut off here.
    pub header_timeout: Duration,
    /// Largest request head (request line plus headers); larger ones get a 431. hyper checks it
    /// against its read buffer, so a head up to one read past it may still pass.
    pub max_header_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            // The platforms send headers in one packet; 10 s is generous for a slow tunnel.
            header_timeout: Duration::from_secs(10),
            // Real webhook heads are well under 8 KiB; 64 KiB leaves room for long cookies or
            // proxy headers a tunnel adds.
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Starts serving `app` on `threads` threads of their own, each with a single-threaded runtime.
/// The first thread accepts, and deals the connections round the threads in turn.
///
/// A webhook is a few microseconds of work and then a wait for the syncer's shared fsync, whose
/// answers come in batches. On a work-stealing runtime each batch woke every worker to steal
/// the others' tasks, and connections moved between threads; a connection that stays on one
/// thread for its whole life does neither: 13 % more webhooks a second on two cores. The price
/// is that a thread whose connections all wait cannot help another, so requests that need no
/// disk peak 12 % lower (`bench/results/README.md`, thirty-second round). The threads also
/// keep a burst of webhooks from queueing the dashboard's requests, and the other way round.
/// Bodies large enough to parse for long still go to a blocking pool.
pub fn serve_on_own_threads<S>(
    listener: TcpListener,
    app: &axum::Router,
    limits: ConnectionLimits,
    stop: impl Fn() -> S,
    grace: Duration,
    threads: NonZeroUsize,
) -> std::io::Result<Serving>
where
    S: Future<Output = ()> + Send + 'static,
{
    let (others, queues): (Vec<Deal>, Vec<Queue>) = (1..threads.get())
        .map(|_| mpsc::unbounded_channel())
        .unzip();
    let listener = listener.into_std()?;
    let accepting = move || {
        Ok(Incoming::Listener {
            listener: TcpListener::from_std(listener)?,
            others,
            turn: 0,
        })
    };
    let mut finished = vec![spawn(accepting, app.clone(), limits, stop(), grace)?];
    for queue in queues {
        let dealt = || Ok(Incoming::Dealt(queue));
        finished.push(spawn(dealt, app.clone(), limits, stop(), grace)?);
    }
    Ok(Serving(finished))
}

/// Starts one serving thread, its connections from `incoming` (called inside its runtime: a
/// tokio socket belongs to the runtime that registered it); told when it has stopped.
fn spawn(
    incoming: impl FnOnce() -> std::io::Result<Incoming>,
    app: axum::Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let incoming = {
        let _in = runtime.enter();
        incoming()?
    };
    let (done, stopped) = oneshot::channel();
    std::thread::Builder::new()
        .name("rollcall-ingest".into())
        .spawn(move || {
            runtime.block_on(async {
                // Answers to this thread's webhooks come from the syncer's thread.
                let _relay = Relay::start_here();
                serve(incoming, app, limits, stop, grace).await;
            });
            // Blocking parses still running finish before the stop is reported.
            drop(runtime);
            let _ = done.send(());
        })?;
    Ok(stopped)
}

/// The ingest threads, serving.
pub struct Serving(Vec<oneshot::Receiver<()>>);

impl Serving {
    /// Completes once every thread has stopped serving.
    pub async fn stopped(self) {
        for stopped in self.0 {
            let _ = stopped.await;
        }
    }
}

type Queue = mpsc::UnboundedReceiver<std::net::TcpStream>;
type Deal = mpsc::UnboundedSender<std::net::TcpStream>;

/// The connections one thread serves.
enum Incoming {
    /// The listener, and the other threads' queues.
    Listener {
        listener: TcpListener,
        others: Vec<Deal>,
        turn: usize,
    },
    Dealt(Queue),
}

impl Incoming {
    /// This thread's next connection; `None` once no more can come.
    async fn next(&mut self) -> Option<TcpStream> {
        match self {
            Incoming::Listener {
                listener,
                others,
                turn,
            } => loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: wait instead of spinning; open
                        // connections time out and free their descriptors.
                        tracing::warn!(%error, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                *turn = (*turn + 1) % (others.len() + 1);
                let Some(other) = turn.checked_sub(1).and_then(|other| others.get(other)) else {
                    return Some(stream);
                };
                match stream.into_std() {
                    // A thread that has stopped serving drops what is dealt to it.
                    Ok(stream) => drop(other.send(stream)),
                    Err(error) => tracing::warn!(%error, "could not hand a connection over"),
                }
            },
            Incoming::Dealt(queue) => loop {
                match TcpStream::from_std(queue.recv().await?) {
                    Ok(stream) => return Some(stream),
                    Err(error) => tracing::warn!(%error, "could not take a connection over"),
                }
            },
        }
    }
}

/// hyper refuses read buffers smaller than this.
const MIN_HEADER_BYTES: usize = 8192;

/// Serves `app` on `incoming` until `stop` completes, then lets open connections finish their
/// requests for up to `grace`, and cuts off the rest: a stalled sender cannot hold a stop (nor,
/// through the store handle its request holds, the writer's exit).
async fn serve(
    mut incoming: Incoming,
    app: axum::Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    let graceful = GracefulShutdown::new();
    let due = tokio::spawn(keep_a_timer_due(limits.header_timeout));
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            next = incoming.next() => match next {
                Some(stream) => stream,
                None => break,
            },
            () = &mut stop => break,
        };
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(incoming);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the grace period were cut off"
        );
    }
    connections.shutdown().await;
    due.abort();
}

/// Keeps a timer on this thread due within half of `header_timeout`, for as long as it serves.
///
/// hyper sets a timer for the headers of every request, and tokio's timer, given a deadline
/// earlier than any it will next wake for, wakes its thread to say so, with a system call (an
/// eventfd write), even when it is that thread that sets it. With no timer set (after a sync's
/// answers, no connection is reading headers) every deadline is the earliest until the thread
/// next parks: 0.55 such system calls a webhook at 64 connections. With this timer always due
/// first, a header deadline never is.
async fn keep_a_timer_due(header_timeout: Duration) {
    let period = (header_timeout / 2).max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::store::relay::Home;

    /// The thread that answers, and whether what another thread answers it is run there.
    async fn answering_thread() -> String {
        let thread = std::thread::current();
        let (home, (told, ran)) = (Home::here(), oneshot::channel());
        std::thread::spawn(move || {
            home.run(move || {
                let _ = told.send(std::thread::current().id());
            })
        });
        let relayed = ran.await.unwrap() == thread.id();
        let name = thread.name().unwrap_or_default();
        format!("{name} {:?} relayed: {relayed}", thread.id())
    }

    #[tokio::test]
    async fn connections_are_dealt_round_the_ingest_threads_each_with_a_relay_until_the_stop() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/", axum::routing::get(answering_thread));
        let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
        let stopping = || {
            let mut stopped = stop.subscribe();
            async move {
                let _ = stopped.recv().await;
            }
        };
        let (limits, grace) = (ConnectionLimits::default(), Duration::from_secs(1));
        let threads = NonZeroUsize::new(3).unwrap();
        let serving =
            serve_on_own_threads(listener, &app, limits, stopping, grace, threads).unwrap();

        let mut answered_on = BTreeSet::new();
        for _ in 0..6 {
            // A client of its own: a connection of its own.
            let answer = reqwest::get(&url).await.unwrap().text().await.unwrap();
            assert!(answer.starts_with("rollcall-ingest "), "{answer}");
            assert!(answer.ends_with("relayed: true"), "{answer}");
            answered_on.insert(answer);
        }
        assert_eq!(answered_on.len(), 3, "{answered_on:?}");

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), serving.stopped())
            .await
            .expect("every ingest thread stops serving");
        assert!(
            reqwest::get(&url).await.is_err(),
            "nothing listens after the stop"
        );
    }
}
