//! The relay's threads: one per listener, each a single-threaded runtime that
//! runs the crate's server for that listener until it is stopped. See
//! [`Worker`] for why.

use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use turn::server::Server;

use crate::batch::Coalesce;

/// A listener's thread: a single-threaded runtime running the crate's server
/// for that listener (a UDP socket, or the TCP listener with its connections),
/// the gate in front of it, and every relay socket its allocations open — so a
/// datagram is read, relayed and sent on one thread without waking another (on a
/// multi-threaded runtime each wake-up of the relay also woke a second worker:
/// twice the CPU per packet, measured). The kernel spreads UDP clients over the
/// listeners (`SO_REUSEPORT`), so relaying grows with cores, as coturn's threads do.
pub(crate) struct Worker {
    stop: CancellationToken,
    done: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

/// What a worker's start-up returns: its crate server, the task that hands
/// closed allocations to the gate, and anything else to pass back.
type Started<T> = (Server, tokio::task::JoinHandle<()>, T);

impl Worker {
    /// Tells the thread to close its server and stop.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the thread has stopped (once; later calls return at once).
    pub(crate) async fn stopped(&self) {
        if let Some(done) = self.done.lock().await.take() {
            let _ = done.await;
        }
    }

    /// Starts a thread named `name` that runs `start` (on its own runtime) and
    /// then its server until stopped; returns once `start` has finished. The
    /// runtime flushes the thread's outbox, and perhaps sleeps (`coalesce`),
    /// each time before it parks.
    pub(crate) async fn spawn<T, F, Fut>(
        name: String,
        coalesce: Option<Coalesce>,
        start: F,
    ) -> anyhow::Result<(Self, T)>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<Started<T>>>,
    {
        let stop = CancellationToken::new();
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<T>>();
        let (done_tx, done_rx) = oneshot::channel();
        let token = stop.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                crate::batch::enable_on_this_thread(coalesce);
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .on_thread_park(crate::batch::before_park)
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let (server, released) = match start().await {
                        Ok((server, released, value)) => {
                            let _ = ready_tx.send(Ok(value));
                            (server, released)
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    token.cancelled().await;
                    if let Err(err) = server.close().await {
                        tracing::warn!(error = %err, "closing a TURN server");
                    }
                    drop(server);
                    // Let the closed allocations reach the gate and data plane.
                    let _ = tokio::time::timeout(Duration::from_secs(2), released).await;
                });
                drop(runtime);
                let _ = done_tx.send(());
            })
            .context("starting a TURN thread")?;
        let value = ready_rx
            .await
            .context("the TURN thread stopped while starting")??;
        Ok((
            Self {
                stop,
                done: tokio::sync::Mutex::new(Some(done_rx)),
            },
            value,
        ))
    }
}

/// Adds a worker that started to `workers`; when it did not, stops the ones
/// already running and returns the error.
pub(crate) fn keep<T>(
    started: anyhow::Result<(Worker, T)>,
    workers: &mut Vec<Worker>,
) -> anyhow::Result<T> {
    match started {
        Ok((worker, value)) => {
            workers.push(worker);
            Ok(value)
        }
        Err(err) => {
            workers.iter().for_each(Worker::stop);
            Err(err)
        }
    }
}
