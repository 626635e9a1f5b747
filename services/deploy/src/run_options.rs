//! Limits of the run life cycle, as deploy uses them (from the core config's `run` section).

use goterra_core::config::RunConfig;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How long an action may run before the agent stops it (`GOT_RUN_TIMEOUT`).
    pub timeout: Duration,
    /// Silence after which a run in progress is re-queued once, then failed
    /// (`GOT_RUN_HEARTBEAT_TIMEOUT`).
    pub heartbeat_timeout: Duration,
    /// How long a run may wait in the queue before it fails (`GOT_RUN_PENDING_TIMEOUT`).
    pub pending_timeout: Duration,
    /// How often the sweep looks for such runs (`GOT_RUN_SWEEP_INTERVAL`).
    pub sweep_interval: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self::from(&RunConfig::default())
    }
}

impl From<&RunConfig> for RunOptions {
    fn from(config: &RunConfig) -> Self {
        Self {
            timeout: config.timeout(),
            heartbeat_timeout: config.heartbeat_timeout(),
            pending_timeout: config.pending_timeout(),
            sweep_interval: config.sweep_interval(),
        }
    }
}
