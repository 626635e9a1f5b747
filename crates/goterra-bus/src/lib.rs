//! Message transport between Goterra services: the run queue that hands run jobs from deploy
//! to agents, and the platform event bus between processes (RabbitMQ, or Redis pub/sub).
//!
//! Two [`RunQueue`] implementations pass the same test suite: [`EmbeddedQueue`] (a durable
//! table in the platform database, used by `goterra up`) and [`RabbitQueue`] (RabbitMQ, used
//! when `GOT_AMQP` is set).

mod amqp;
mod embedded;
mod event_queue;
mod events;
mod queue;
mod rabbit;
mod redis_events;

pub use amqp::Backoff;
pub use embedded::{EmbeddedQueue, EmbeddedQueueOptions, MIGRATIONS};
pub use event_queue::{EventHandler, RabbitEventQueue};
pub use events::{DEFAULT_EVENT_EXCHANGE, RabbitEventBus};
pub use queue::{JobConsumer, QueuedJob, RunQueue};
pub use rabbit::RabbitQueue;
pub use redis_events::RedisEventBus;

use goterra_core::Platform;
use goterra_core::events::EventBus;
use std::sync::Arc;

/// The run queue of a platform, the same for deploy (which enqueues) and the agent (which
/// consumes): RabbitMQ when `GOT_AMQP` is set, else the embedded queue in the platform database
/// (whose [`MIGRATIONS`] must be applied; embedded queues of one name in one process wake each
/// other up). Its name is the config's `run_queue` (`GOT_RUN_QUEUE`).
pub fn platform_run_queue(platform: &Platform) -> Arc<dyn RunQueue> {
    match &platform.config.amqp {
        Some(url) => Arc::new(RabbitQueue::new(url.clone(), platform.config.run_queue.clone())),
        None => Arc::new(EmbeddedQueue::new(
            platform.db.clone(),
            EmbeddedQueueOptions {
                name: platform.config.run_queue.clone(),
                ..EmbeddedQueueOptions::default()
            },
        )),
    }
}

/// The event bus that links the processes of a platform (for the process that builds it):
/// RabbitMQ's `gotevent` exchange when `GOT_AMQP` is set, else Redis pub/sub when
/// `GOT_REDIS_URL` is (so that revocations reach every service of a split deployment without
/// RabbitMQ); `None` means the in-process bus is enough. Must be called within a tokio runtime.
pub fn platform_event_bus(config: &goterra_core::Config) -> Option<Arc<dyn EventBus>> {
    if let Some(url) = &config.amqp {
        return Some(Arc::new(RabbitEventBus::start(url.clone(), DEFAULT_EVENT_EXCHANGE)));
    }
    let url = config.redis_url()?;
    match RedisEventBus::start(url, &config.redis.prefix) {
        Ok(bus) => Some(Arc::new(bus)),
        Err(err) => {
            tracing::error!(error = %err, "no event bus between processes: revocations rely on the periodic re-check");
            None
        }
    }
}
