//! Deploy's figures for `/deploy/metrics`, read from the database and the queue at each scrape
//! (every replica reports the same platform-wide values: aggregate them with `max`, not `sum`).

use crate::storage::runs::RunRepo;
use goterra_bus::RunQueue;
use goterra_core::ops::MetricProbe;
use goterra_core::runs::RunStatus;
use goterra_db::Db;
use std::sync::Arc;

/// `goterra_deploy_runs{status}`: runs in each status.
const RUNS: &str = "goterra_deploy_runs";
/// `goterra_deploy_queue_jobs`: jobs waiting for an agent.
const QUEUE_JOBS: &str = "goterra_deploy_queue_jobs";

pub fn probe(db: Db, queue: Arc<dyn RunQueue>) -> MetricProbe {
    Arc::new(move || {
        let db = db.clone();
        let queue = queue.clone();
        Box::pin(async move { record(&db, queue.as_ref()).await })
    })
}

async fn record(db: &Db, queue: &dyn RunQueue) {
    match RunRepo::new(db).count_by_status().await {
        Ok(counts) => {
            for status in RunStatus::ALL {
                let count = counts.get(&status).copied().unwrap_or_default();
                metrics::gauge!(RUNS, "status" => status.as_str()).set(count as f64);
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot count runs for the metrics"),
    }
    match queue.depth().await {
        Ok(depth) => metrics::gauge!(QUEUE_JOBS).set(depth as f64),
        Err(err) => tracing::warn!(
            error = format!("{err:#}"),
            "cannot read the queue depth for the metrics"
        ),
    }
}
