//! The run queue on RabbitMQ: a durable queue (default `gotaction`), persistent messages
//! published with confirms, consumers with a prefetch limit and manual acks, and reconnection
//! with a capped backoff on both sides.

use crate::amqp::{Backoff, connect, consume, consumer_tag};
use crate::queue::{JobConsumer, QueuedJob, RunQueue};
use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use goterra_core::Sensitive;
use goterra_core::runs::RunJob;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicNackOptions, BasicPublishOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use tokio::sync::Mutex;

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

pub struct RabbitQueue {
    url: Sensitive<String>,
    queue: String,
    publisher: Mutex<Option<Publisher>>,
}

struct Publisher {
    // Kept so the connection lives as long as its channel.
    _connection: Connection,
    channel: Channel,
}

impl RabbitQueue {
    /// Nothing is contacted until the first enqueue or consumer; `queue` is usually
    /// [`goterra_core::config::DEFAULT_RUN_QUEUE`] (tests use random names).
    pub fn new(url: Sensitive<String>, queue: impl Into<String>) -> Self {
        Self {
            url,
            queue: queue.into(),
            publisher: Mutex::new(None),
        }
    }

    pub fn queue_name(&self) -> &str {
        &self.queue
    }

    /// Deletes the queue, every message in it and its feeder mark (tests, or decommissioning).
    pub async fn delete(&self) -> anyhow::Result<()> {
        let connection = connect(self.url.expose(), "goterra-queue-admin").await?;
        let channel = connection.create_channel().await?;
        channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .context("cannot delete the run queue")?;
        channel
            .exchange_delete(
                feeder_mark(&self.queue).as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .context("cannot delete the run queue's feeder mark")?;
        let _ = connection.close(200, "bye".into()).await;
        Ok(())
    }

    async fn open_publisher(&self) -> anyhow::Result<Publisher> {
        let connection = connect(self.url.expose(), "goterra-queue-publisher").await?;
        let channel = connection.create_channel().await?;
        // Declared by the publisher too, so jobs queued before any agent started are kept.
        declare_queue(&channel, &self.queue).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("cannot enable publisher confirms")?;
        Ok(Publisher {
            _connection: connection,
            channel,
        })
    }

    async fn publish(&self, publisher: &Publisher, body: &[u8]) -> anyhow::Result<()> {
        let properties = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type("application/json".into());
        let confirmation = publisher
            .channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                // Mandatory: if the queue was deleted meanwhile, the broker returns the job
                // instead of dropping it, and we declare the queue again and retry.
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                body,
                properties,
            )
            .await
            .context("cannot publish the run job")?
            .await
            .context("no confirmation for the run job")?;
        if !confirmation.is_ack() {
            anyhow::bail!("RabbitMQ refused the run job");
        }
        if confirmation.take_message().is_some() {
            anyhow::bail!("the run queue {} does not exist", self.queue);
        }
        Ok(())
    }
}

/// The exchange whose existence says a deploy feeds `queue`: only deploys declare it (agents
/// declare the job queue itself when they subscribe, so the queue's existence proves nothing).
/// Durable, bound to nothing, it holds no message and costs the broker nothing.
fn feeder_mark(queue: &str) -> String {
    format!("goterra.fed.{queue}")
}

async fn declare_queue(channel: &Channel, queue: &str) -> anyhow::Result<()> {
    channel
        .queue_declare(queue.into(), QueueDeclareOptions::durable(), FieldTable::default())
        .await
        .with_context(|| format!("cannot declare the run queue {queue}"))?;
    Ok(())
}

#[async_trait]
impl RunQueue for RabbitQueue {
    fn describe(&self) -> String {
        format!("RabbitMQ queue `{}`", self.queue)
    }

    async fn announce_feeder(&self) -> anyhow::Result<()> {
        let connection = connect(self.url.expose(), "goterra-queue-feeder").await?;
        let channel = connection.create_channel().await?;
        declare_queue(&channel, &self.queue).await?;
        let declared = channel
            .exchange_declare(
                feeder_mark(&self.queue).as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("cannot mark the run queue as fed");
        let _ = connection.close(200, "bye".into()).await;
        declared
    }

    async fn has_feeder(&self) -> anyhow::Result<bool> {
        let connection = connect(self.url.expose(), "goterra-queue-feeder").await?;
        let channel = connection.create_channel().await?;
        let declared = channel
            .exchange_declare(
                feeder_mark(&self.queue).as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    passive: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        let _ = connection.close(200, "bye".into()).await;
        match declared {
            Ok(()) => Ok(true),
            // 404: the broker closes the channel, the answer is "not fed".
            Err(err) if matches!(err.kind(), lapin::ErrorKind::ProtocolError(error) if error.get_id() == 404) => {
                Ok(false)
            }
            Err(err) => Err(anyhow::Error::new(err).context("cannot ask the broker whether the run queue is fed")),
        }
    }

    /// Ready jobs as the broker counts them (those delivered to an agent and not yet acked are
    /// not included), asked on the publisher's channel.
    async fn depth(&self) -> anyhow::Result<u64> {
        let mut publisher = self.publisher.lock().await;
        if publisher.is_none() {
            *publisher = Some(self.open_publisher().await?);
        }
        let Some(open) = publisher.as_ref() else {
            anyhow::bail!("no channel to the broker");
        };
        let declared = open
            .channel
            .queue_declare(
                self.queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        match declared {
            Ok(queue) => Ok(u64::from(queue.message_count())),
            Err(err) => {
                // The channel is closed by a failed declare: open a fresh one next time.
                *publisher = None;
                Err(anyhow::Error::new(err).context("cannot read the run queue's depth"))
            }
        }
    }

    async fn enqueue(&self, job: &RunJob) -> anyhow::Result<()> {
        let body = serde_json::to_vec(job)?;
        let mut publisher = self.publisher.lock().await;
        // One retry on a fresh connection: the long-lived one may have died since the last job.
        for attempt in 0..2 {
            if publisher.is_none() {
                *publisher = Some(self.open_publisher().await?);
            }
            if let Some(open) = publisher.as_ref() {
                match self.publish(open, &body).await {
                    Ok(()) => return Ok(()),
                    Err(err) if attempt == 0 => {
                        tracing::warn!(error = %format!("{err:#}"), "publishing a run job failed; reconnecting");
                        *publisher = None;
                    }
                    Err(err) => {
                        *publisher = None;
                        return Err(err);
                    }
                }
            }
        }
        anyhow::bail!("cannot publish the run job")
    }

    async fn consumer(&self, prefetch: u16) -> anyhow::Result<Box<dyn JobConsumer>> {
        let mut consumer = RabbitConsumer {
            url: self.url.clone(),
            queue: self.queue.clone(),
            prefetch: prefetch.max(1),
            open: None,
            backoff: Backoff::default(),
        };
        // Subscribe now, so that jobs are reserved for this consumer from the start and a bad
        // URL shows up at once.
        consumer.open = Some(consumer.subscribe().await?);
        Ok(Box::new(consumer))
    }
}

struct RabbitConsumer {
    url: Sensitive<String>,
    queue: String,
    prefetch: u16,
    open: Option<Subscription>,
    backoff: Backoff,
}

struct Subscription {
    _connection: Connection,
    channel: Channel,
    tag: String,
    deliveries: lapin::Consumer,
}

impl RabbitConsumer {
    async fn subscribe(&self) -> anyhow::Result<Subscription> {
        let connection = connect(self.url.expose(), "goterra-queue-consumer").await?;
        let channel = connection.create_channel().await?;
        declare_queue(&channel, &self.queue).await?;
        // An agent busy with long applies leaves the other jobs to idle agents.
        let tag = consumer_tag("goterra-agent");
        let deliveries = consume(&channel, &self.queue, self.prefetch, &tag, "run queue").await?;
        Ok(Subscription {
            _connection: connection,
            channel,
            tag,
            deliveries,
        })
    }
}

#[async_trait]
impl JobConsumer for RabbitConsumer {
    async fn next(&mut self) -> anyhow::Result<Box<dyn QueuedJob>> {
        loop {
            let Some(subscription) = self.open.as_mut() else {
                match self.subscribe().await {
                    Ok(subscription) => {
                        tracing::info!(queue = %self.queue, "consuming the run queue");
                        self.open = Some(subscription);
                        continue;
                    }
                    Err(err) => {
                        let delay = self.backoff.next_delay();
                        tracing::warn!(error = %format!("{err:#}"), retry_in = ?delay, "cannot consume the run queue");
                        tokio::time::sleep(delay).await;
                        return Err(err);
                    }
                }
            };
            match subscription.deliveries.next().await {
                Some(Ok(delivery)) => {
                    self.backoff.reset();
                    match serde_json::from_slice::<RunJob>(&delivery.data) {
                        Ok(job) => {
                            return Ok(Box::new(RabbitJob {
                                job,
                                redelivered: delivery.redelivered,
                                acker: delivery.acker,
                            }));
                        }
                        Err(err) => {
                            // Requeueing would loop forever; rejecting lets a dead-letter
                            // policy keep it if the operator set one.
                            tracing::error!(%err, "rejecting an unreadable run job message");
                            let _ = delivery.acker.reject(BasicRejectOptions { requeue: false }).await;
                        }
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(%err, "the run queue consumer failed; reconnecting");
                    self.open = None;
                }
                None => {
                    tracing::warn!("the run queue consumer was canceled; reconnecting");
                    self.open = None;
                }
            }
        }
    }

    async fn stop(&mut self) {
        let Some(subscription) = self.open.as_mut() else {
            return;
        };
        // The channel stays open: the jobs handed out are acked or requeued on it later.
        if let Err(err) = subscription
            .channel
            .basic_cancel(subscription.tag.as_str().into(), BasicCancelOptions::default())
            .await
        {
            tracing::warn!(%err, "cannot stop consuming the run queue");
        }
        // Deliveries already pushed to this consumer go back to the queue for other agents.
        while let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(std::time::Duration::from_millis(500), subscription.deliveries.next()).await
        {
            let requeue = BasicNackOptions {
                multiple: false,
                requeue: true,
            };
            if let Err(err) = delivery.acker.nack(requeue).await {
                tracing::warn!(%err, "cannot put a prefetched run job back");
            }
        }
    }
}

struct RabbitJob {
    job: RunJob,
    redelivered: bool,
    acker: lapin::Acker,
}

#[async_trait]
impl QueuedJob for RabbitJob {
    fn job(&self) -> &RunJob {
        &self.job
    }

    fn redelivered(&self) -> bool {
        self.redelivered
    }

    async fn ack(self: Box<Self>) -> anyhow::Result<()> {
        // If the channel died meanwhile, the broker has already requeued the job and this fails.
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .context("cannot acknowledge the run job")?;
        Ok(())
    }

    async fn requeue(self: Box<Self>) -> anyhow::Result<()> {
        self.acker
            .nack(BasicNackOptions {
                multiple: false,
                requeue: true,
            })
            .await
            .context("cannot requeue the run job")?;
        Ok(())
    }
}
