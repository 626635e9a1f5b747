//! Message transport between Goterra services: the run queue that hands run jobs from deploy
//! to agents, and the RabbitMQ implementation of the platform event bus.
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

pub use amqp::Backoff;
pub use embedded::{EmbeddedQueue, EmbeddedQueueOptions, MIGRATIONS};
pub use event_queue::{EventHandler, RabbitEventQueue};
pub use events::{DEFAULT_EVENT_EXCHANGE, RabbitEventBus};
pub use queue::{JobConsumer, QueuedJob, RunQueue};
pub use rabbit::RabbitQueue;

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

/// The RabbitMQ event bus on `gotevent` when `GOT_AMQP` is set (for the process that builds
/// the platform); `None` means the in-process bus is enough. Must be called within a tokio
/// runtime.
pub fn rabbit_event_bus(config: &goterra_core::Config) -> Option<Arc<dyn EventBus>> {
    config
        .amqp
        .as_ref()
        .map(|url| Arc::new(RabbitEventBus::start(url.clone(), DEFAULT_EVENT_EXCHANGE)) as Arc<dyn EventBus>)
}
