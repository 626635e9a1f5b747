//! Message transport between Goterra services: the run queue that hands run jobs from deploy
//! to agents, and the RabbitMQ implementation of the platform event bus.
//!
//! Two [`RunQueue`] implementations pass the same test suite: [`EmbeddedQueue`] (a durable
//! table in the platform database, used by `goterra up`) and [`RabbitQueue`] (RabbitMQ, used
//! when `GOT_AMQP` is set).

mod amqp;
mod embedded;
mod events;
mod queue;
mod rabbit;

pub use amqp::Backoff;
pub use embedded::{EmbeddedQueue, EmbeddedQueueOptions, MIGRATIONS};
pub use events::{DEFAULT_EVENT_EXCHANGE, RabbitEventBus};
pub use queue::{JobConsumer, QueuedJob, RunQueue};
pub use rabbit::{DEFAULT_RUN_QUEUE, RabbitQueue};
