//! Relays: what a sync thread answers, run on the thread whose task waits for it, which is woken
//! once for many answers instead of once for each.
//!
//! A single-threaded tokio runtime wakes its thread with a system call (an eventfd write) for
//! every task woken from another thread. The receipt log's syncer, answering a sync's ~40
//! webhooks one by one, made 40 of them: 3.9 % of the server's samples under webhooks at 64
//! connections (`bench/results/README.md`, thirty-second round). An answer sent through a
//! thread's relay is run by one task there, woken once for all the answers that arrive
//! together; the tasks it wakes are then woken from their own thread, which costs no system
//! call.
//!
//! It must not decide what is answered or when: it only moves the call. A thread without a
//! relay (the app's runtime, the writer, a blocking pool, tests) is answered where the answer
//! is made, as before, and so is one whose relay has stopped.

use std::cell::RefCell;

use tokio::sync::{mpsc, oneshot};

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// The relay of the calling thread's runtime, while it serves.
    static HERE: RefCell<Option<mpsc::UnboundedSender<Job>>> = const { RefCell::new(None) };
}

/// The thread to answer a task on: its relay, if it has one.
pub struct Home(Option<mpsc::UnboundedSender<Job>>);

impl Home {
    /// The calling thread's.
    pub fn here() -> Home {
        Home(HERE.with(|here| here.borrow().clone()))
    }

    /// Sends `value` through `told` from home, or from here when home has no relay.
    pub fn send<T: Send + 'static>(&self, told: oneshot::Sender<T>, value: T) {
        self.run(move || drop(told.send(value)));
    }

    /// Runs `job` at home, or here when home has no relay.
    pub(crate) fn run(&self, job: impl FnOnce() + Send + 'static) {
        let Some(relay) = &self.0 else {
            return job();
        };
        if let Err(unsent) = relay.send(Box::new(job)) {
            // The relay stopped with its runtime: whoever still waits is answered from here.
            (unsent.0)();
        }
    }
}

/// A relay serving the calling thread; it stops when dropped.
pub struct Relay(tokio::task::JoinHandle<()>);

impl Relay {
    /// Starts one for the calling thread, which must be running a single-threaded runtime (on
    /// a work-stealing one the relay's task could run on any of its threads).
    pub fn start_here() -> Relay {
        debug_assert_eq!(
            tokio::runtime::Handle::current().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        let (relay, mut jobs) = mpsc::unbounded_channel::<Job>();
        HERE.with(|here| *here.borrow_mut() = Some(relay));
        Relay(tokio::spawn(async move {
            let mut batch = Vec::new();
            while jobs.recv_many(&mut batch, 1024).await > 0 {
                batch.drain(..).for_each(|job| job());
            }
        }))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        HERE.with(|here| *here.borrow_mut() = None);
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::thread::{self, ThreadId};

    use super::*;

    fn single_threaded() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Runs `job` at `home` from another thread: the thread it ran on.
    async fn ran_on(home: Home) -> ThreadId {
        let (told, ran) = oneshot::channel();
        thread::spawn(move || {
            home.run(move || {
                let _ = told.send(thread::current().id());
            })
        });
        ran.await.unwrap()
    }

    #[test]
    fn answers_made_on_another_thread_are_run_at_home_in_order() {
        let runtime = single_threaded();
        runtime.block_on(async {
            let _relay = Relay::start_here();
            assert_eq!(ran_on(Home::here()).await, thread::current().id());
            let (told, answers): (Vec<_>, Vec<_>) = (0..100).map(|_| oneshot::channel()).unzip();
            let home = Home::here();
            thread::spawn(move || {
                for (n, told) in told.into_iter().enumerate() {
                    home.send(told, n);
                }
            });
            for (n, answer) in answers.into_iter().enumerate() {
                assert_eq!(answer.await, Ok(n));
            }
        });
    }

    #[test]
    fn a_thread_without_a_relay_is_answered_where_the_answer_is_made() {
        let runtime = single_threaded();
        runtime.block_on(async {
            let answering = ran_on(Home::here()).await;
            assert_ne!(answering, thread::current().id());
        });
    }

    #[test]
    fn once_its_relay_stops_a_thread_is_answered_where_the_answer_is_made() {
        let runtime = single_threaded();
        let home = runtime.block_on(async {
            let relay = Relay::start_here();
            let home = Home::here();
            drop(relay);
            let answering = ran_on(Home::here()).await;
            assert_ne!(
                answering,
                thread::current().id(),
                "a stopped relay is not the thread's"
            );
            home
        });
        // Its task, and the queue it read, go with the runtime.
        drop(runtime);
        let (told, answer) = oneshot::channel();
        thread::spawn(move || home.send(told, 11)).join().unwrap();
        assert_eq!(answer.blocking_recv(), Ok(11));
    }
}
