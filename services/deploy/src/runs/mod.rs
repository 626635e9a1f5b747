//! Runs: an application deployed on an endpoint by Terraform, through the run queue and an agent.
//!
//! - [`prepare`] checks a run request and builds what the agent will need (Terraform variables,
//!   sensitive values, boot scripts);
//! - [`routes`] are the user routes (`/deploy/ns/{ns}/run...`, `/deploy/run`);
//! - [`agent`] are the routes the run agent calls (`/deploy/agent/run/{id}/...`) and
//!   [`tfstate`] Terraform's `http` backend on deploy's database;
//! - [`records`] is the storage with guarded status transitions;
//! - [`sweep`] fails or re-queues runs whose agent went silent, so no run is stuck;
//! - [`store_client`] creates and deletes the run's store deployment over HTTP.

pub mod agent;
pub mod model;
pub mod prepare;
pub mod records;
pub mod routes;
pub mod store_client;
pub mod sweep;
pub mod tfstate;

use std::time::Duration;

/// Limits of the run life cycle, from the environment (`GOT_RUN_*`).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How long an action may run before the agent stops it (`GOT_RUN_TIMEOUT`, seconds).
    pub timeout: Duration,
    /// Silence after which a run in progress is re-queued once, then failed
    /// (`GOT_RUN_HEARTBEAT_TIMEOUT`, seconds).
    pub heartbeat_timeout: Duration,
    /// How long a run may wait in the queue before it fails (`GOT_RUN_PENDING_TIMEOUT`, seconds).
    pub pending_timeout: Duration,
    /// How often the sweep looks for such runs (`GOT_RUN_SWEEP_INTERVAL`, seconds).
    pub sweep_interval: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3600),
            heartbeat_timeout: Duration::from_secs(180),
            pending_timeout: Duration::from_secs(6 * 3600),
            sweep_interval: Duration::from_secs(30),
        }
    }
}

impl RunOptions {
    pub fn from_env() -> anyhow::Result<Self> {
        let defaults = Self::default();
        Ok(Self {
            timeout: secs("GOT_RUN_TIMEOUT", defaults.timeout)?,
            heartbeat_timeout: secs("GOT_RUN_HEARTBEAT_TIMEOUT", defaults.heartbeat_timeout)?,
            pending_timeout: secs("GOT_RUN_PENDING_TIMEOUT", defaults.pending_timeout)?,
            sweep_interval: secs("GOT_RUN_SWEEP_INTERVAL", defaults.sweep_interval)?,
        })
    }
}

fn secs(name: &str, default: Duration) -> anyhow::Result<Duration> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            let secs: u64 = value
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{name}: expected a number of seconds, got {value:?}"))?;
            if secs == 0 {
                anyhow::bail!("{name}: must be at least 1 second");
            }
            Ok(Duration::from_secs(secs))
        }
        _ => Ok(default),
    }
}
