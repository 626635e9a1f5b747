//! No run stays pending or in progress forever. A periodic sweep:
//! - re-queues once a run in progress whose agent stopped sending heartbeats (the agent died or
//!   lost its connection), releasing the state lock its Terraform held, and fails it the second
//!   time;
//! - fails a run that waited in the queue longer than the pending limit (no agent took it).

use crate::run_options::RunOptions;
use crate::storage::StorageResult;
use crate::storage::runs::RunRepo;
use crate::storage::states::StateRepo;
use goterra_bus::RunQueue;
use goterra_client::ids::RunId;
use goterra_core::Platform;
use goterra_core::runs::{RunAction, RunJob, RunStatus};
use goterra_db::Db;
use std::sync::Arc;

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub requeued: Vec<RunId>,
    pub failed: Vec<RunId>,
}

/// One pass, as of `now` (unix seconds).
pub async fn sweep_once(db: &Db, queue: &dyn RunQueue, options: &RunOptions, now: i64) -> StorageResult<SweepReport> {
    let runs = RunRepo::new(db);
    let mut report = SweepReport::default();
    let silent_since = now - i64::try_from(options.heartbeat_timeout.as_secs()).unwrap_or(i64::MAX);
    let waiting_since = now - i64::try_from(options.pending_timeout.as_secs()).unwrap_or(i64::MAX);
    for action in [RunAction::Deploy, RunAction::Destroy] {
        let running = RunStatus::in_progress(action);
        for id in runs.silent_since(action, silent_since).await? {
            let run = runs.load(&id).await?;
            if run.requeues > 0 {
                let reason = format!(
                    "the agent stopped reporting (no heartbeat for {} s), twice: the {action} is abandoned",
                    options.heartbeat_timeout.as_secs()
                );
                if fail(&runs, &id, action, running, &reason).await? {
                    report.failed.push(id);
                }
                continue;
            }
            if !runs.requeue(&id, action).await? {
                continue;
            }
            StateRepo::new(db).release_abandoned_lock(&id).await?;
            match queue.enqueue(&RunJob::new(action, id.as_str())).await {
                Ok(()) => {
                    tracing::warn!(run = %id, %action, "agent went silent: run re-queued");
                    report.requeued.push(id);
                }
                Err(err) => {
                    let reason = format!("the agent went silent and the run could not be re-queued: {err}");
                    let reason = crate::validate::shorten_message(&reason);
                    if runs.fail_action(&id, action, &reason).await? {
                        report.failed.push(id);
                    }
                }
            }
        }
        let pending = RunStatus::pending(action);
        for id in runs.pending_since(action, waiting_since).await? {
            let reason = format!(
                "no agent took the {action} within {} s: is a run agent running?",
                options.pending_timeout.as_secs()
            );
            if fail(&runs, &id, action, pending, &reason).await? {
                report.failed.push(id);
            }
        }
    }
    Ok(report)
}

async fn fail(runs: &RunRepo<'_>, id: &RunId, action: RunAction, from: RunStatus, reason: &str) -> StorageResult<bool> {
    let moved = runs.fail_action_from(id, action, &[from], reason).await?;
    if moved {
        tracing::warn!(run = %id, %action, reason, "run failed by the sweep");
    }
    Ok(moved)
}

/// Runs the sweep every `options.sweep_interval` until the process stops.
pub fn spawn(platform: &Platform, queue: Arc<dyn RunQueue>, options: RunOptions) {
    let db = platform.db.clone();
    platform.lifecycle.spawn_until_stopped(async move {
        let mut ticker = tokio::time::interval(options.sweep_interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(err) = sweep_once(&db, queue.as_ref(), &options, crate::storage::now()).await {
                tracing::warn!(error = %err, "run sweep failed");
            }
        }
    });
}
