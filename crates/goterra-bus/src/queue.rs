//! The run queue contract: at-least-once delivery with explicit acknowledgement.

use async_trait::async_trait;
use goterra_core::runs::RunJob;

/// Hands run jobs from deploy to agents. A job stays in the queue until a consumer acks it; a
/// job whose consumer dies (or nacks it) is delivered again, so consumers must tolerate a
/// redelivered job.
#[async_trait]
pub trait RunQueue: Send + Sync {
    /// Stores the job durably; an error means the job was not queued.
    async fn enqueue(&self, job: &RunJob) -> anyhow::Result<()>;

    /// Starts consuming. At most `prefetch` jobs are held unacknowledged by this consumer at
    /// once; further jobs go to other consumers or wait.
    async fn consumer(&self, prefetch: u16) -> anyhow::Result<Box<dyn JobConsumer>>;

    /// Which queue this is, for the logs of whoever feeds or consumes it (no credential).
    fn describe(&self) -> String;

    /// Jobs ready for an agent (queued, not taken), for the metrics.
    async fn depth(&self) -> anyhow::Result<u64>;

    /// Marks the queue as fed by a deploy (every deploy calls it when it starts), so that an
    /// agent can tell a queue some deploy fills from one nothing ever will (a wrong broker
    /// URL, queue name or database). The mark stays after the deploy stops: a deploy being
    /// restarted still feeds its queue.
    async fn announce_feeder(&self) -> anyhow::Result<()>;

    /// True once a deploy has announced itself as this queue's feeder. Consuming does not
    /// count: an agent's own subscription never makes its queue look fed.
    async fn has_feeder(&self) -> anyhow::Result<bool>;
}

#[async_trait]
pub trait JobConsumer: Send {
    /// Waits for the next job. Errors are transient (the consumer reconnects on its own), so
    /// callers may retry after a pause.
    async fn next(&mut self) -> anyhow::Result<Box<dyn QueuedJob>>;

    /// Takes no more jobs, and puts back those the queue pushed ahead but `next` did not hand
    /// out yet. Jobs handed out stay held until acked or requeued (so the consumer must live
    /// until then): a stopping agent calls this, then finishes or hands back its runs.
    async fn stop(&mut self) {}
}

/// A job taken from the queue, not yet acknowledged.
#[async_trait]
pub trait QueuedJob: Send + Sync {
    fn job(&self) -> &RunJob;

    /// True when the queue delivered this job before (to this or another consumer).
    fn redelivered(&self) -> bool;

    /// The job is done (its result is reported): remove it from the queue.
    async fn ack(self: Box<Self>) -> anyhow::Result<()>;

    /// The job was not handled: put it back for another delivery.
    async fn requeue(self: Box<Self>) -> anyhow::Result<()>;
}
