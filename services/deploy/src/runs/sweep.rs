//! No run stays pending or in progress forever. A periodic sweep:
//! - re-queues once a run in progress whose agent stopped sending heartbeats (the agent died or
//!   lost its connection), releasing the state lock its Terraform held, and fails it the second
//!   time;
//! - fails a run that waited in the queue longer than the pending limit (no agent took it).

use super::RunOptions;
use super::records::{self, Bind};
use goterra_bus::RunQueue;
use goterra_core::ApiError;
use goterra_core::runs::{RunAction, RunJob, RunStatus};
use goterra_db::Db;
use std::sync::Arc;

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub requeued: Vec<String>,
    pub failed: Vec<String>,
}

async fn ids(db: &Db, sql: &str, bind: i64) -> Result<Vec<String>, ApiError> {
    let rows: Vec<(String,)> = sqlx::query_as(sql)
        .bind(bind)
        .fetch_all(db.pool())
        .await
        .map_err(ApiError::internal)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// One pass, as of `now` (unix seconds).
pub async fn sweep_once(
    db: &Db,
    queue: &dyn RunQueue,
    options: &RunOptions,
    now: i64,
) -> Result<SweepReport, ApiError> {
    let mut report = SweepReport::default();
    let silent_since = now - i64::try_from(options.heartbeat_timeout.as_secs()).unwrap_or(i64::MAX);
    let waiting_since = now - i64::try_from(options.pending_timeout.as_secs()).unwrap_or(i64::MAX);
    for action in [RunAction::Deploy, RunAction::Destroy] {
        let running = RunStatus::in_progress(action);
        let stale = ids(
            db,
            &format!(
                "SELECT id FROM deploy_runs WHERE status = '{}' AND heartbeat_at < $1 AND status_at < $1",
                running.as_str()
            ),
            silent_since,
        )
        .await?;
        for id in stale {
            let run = records::load(db, &id).await?;
            if run.requeues == 0 {
                let moved = records::transition(
                    db,
                    &id,
                    &[running],
                    RunStatus::pending(action),
                    "requeues = requeues + 1, heartbeat_at = 0, cancel_requested = 0",
                    vec![],
                )
                .await?;
                if moved {
                    super::tfstate::release_abandoned_lock(db, &id).await?;
                    match queue.enqueue(&RunJob::new(action, id.clone())).await {
                        Ok(()) => {
                            tracing::warn!(run = %id, %action, "agent went silent: run re-queued");
                            report.requeued.push(id);
                        }
                        Err(err) => {
                            let reason = format!("the agent went silent and the run could not be re-queued: {err}");
                            if records::fail_action(db, &id, action, &crate::validate::shorten_message(&reason)).await?
                            {
                                report.failed.push(id);
                            }
                        }
                    }
                }
            } else {
                let reason = format!(
                    "the agent stopped reporting (no heartbeat for {} s), twice: the {action} is abandoned",
                    options.heartbeat_timeout.as_secs()
                );
                if fail(db, &id, action, &[running], &reason).await? {
                    report.failed.push(id);
                }
            }
        }
        let pending = RunStatus::pending(action);
        let waiting = ids(
            db,
            &format!(
                "SELECT id FROM deploy_runs WHERE status = '{}' AND status_at < $1",
                pending.as_str()
            ),
            waiting_since,
        )
        .await?;
        for id in waiting {
            let reason = format!(
                "no agent took the {action} within {} s: is a run agent running?",
                options.pending_timeout.as_secs()
            );
            if fail(db, &id, action, &[pending], &reason).await? {
                report.failed.push(id);
            }
        }
    }
    Ok(report)
}

async fn fail(db: &Db, id: &str, action: RunAction, from: &[RunStatus], reason: &str) -> Result<bool, ApiError> {
    let moved = records::end_action(
        db,
        id,
        action,
        from,
        RunStatus::failure(action),
        "action = NULL, cancel_requested = 0, error = $2",
        vec![Bind::Text(reason.to_string())],
    )
    .await?;
    if moved {
        tracing::warn!(run = %id, %action, reason, "run failed by the sweep");
    }
    Ok(moved)
}

/// Runs the sweep every `options.sweep_interval` until the process ends.
pub fn spawn(db: Db, queue: Arc<dyn RunQueue>, options: RunOptions) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(options.sweep_interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(err) = sweep_once(&db, queue.as_ref(), &options, crate::state::now()).await {
                tracing::warn!(error = %err, "run sweep failed");
            }
        }
    });
}
