//! One life per process. Every background task (deploy's sweep, the run agent, event
//! subscribers, acct's consumers, the store's sweepers) runs until [`Lifecycle::stopping`]
//! fires; work that must end cleanly rather than be dropped (a run agent's Terraform) is
//! *tracked*, and the process waits for it before it stops serving.
//!
//! On SIGTERM or SIGINT the process (see `service::run`) leaves the proxy's registry, fires
//! `stopping` (nothing takes new work), waits for tracked work (at most
//! [`Lifecycle::stop`]'s limit), then finishes its in-flight requests and exits 0. The HTTP
//! server keeps answering while tracked work ends: in `goterra up` the agent reports its last
//! results to deploy in the same process.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Debug, Default)]
pub struct Lifecycle {
    stopping: CancellationToken,
    tracked: TaskTracker,
}

impl Lifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires when the process begins to stop: take no new work. A task that must stop alone
    /// (a test's agent) takes a `child_token()` of it.
    pub fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Runs `task` until it ends or the process begins to stop, when it is dropped at its next
    /// `.await`: for loops whose work can be cut anywhere (sweeps, subscribers, refreshers).
    pub fn spawn_until_stopped<F>(&self, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stopping = self.stopping.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stopping.cancelled() => {}
                () = task => {}
            }
        })
    }

    /// Runs `task`, which the process waits for before it stops serving: it must watch
    /// [`Self::stopping`] and end by itself, in bounded time (the run agent hands its runs
    /// back after its grace period).
    pub fn spawn_tracked<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracked.spawn(task)
    }

    /// Begins the stop: fires `stopping`, then waits for the tracked work, at most `limit`.
    /// False when some was still running at the limit (it is then cut with the process).
    pub async fn stop(&self, limit: Duration) -> bool {
        self.stopping.cancel();
        self.tracked.close();
        tokio::time::timeout(limit, self.tracked.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test(start_paused = true)]
    async fn stop_cuts_loops_and_waits_for_tracked_work() {
        let lifecycle = Lifecycle::new();
        let looping = lifecycle.spawn_until_stopped(std::future::pending());
        let finished = Arc::new(AtomicBool::new(false));
        let stopping = lifecycle.stopping();
        let done = finished.clone();
        lifecycle.spawn_tracked(async move {
            stopping.cancelled().await;
            // Work that takes a while to wind down after the stop.
            tokio::time::sleep(Duration::from_secs(5)).await;
            done.store(true, Ordering::SeqCst);
        });
        assert!(lifecycle.stop(Duration::from_secs(60)).await);
        assert!(finished.load(Ordering::SeqCst), "the tracked work ended first");
        assert!(looping.await.is_ok(), "the loop ended");
    }

    #[tokio::test(start_paused = true)]
    async fn stop_gives_up_at_its_limit() {
        let lifecycle = Lifecycle::new();
        lifecycle.spawn_tracked(std::future::pending::<()>());
        assert!(!lifecycle.stop(Duration::from_secs(1)).await);
    }
}
