//! Consuming platform events from RabbitMQ: a durable queue owned by one listener (acct's
//! `gotacct`), bound to the `gotevent` fanout exchange. Once the queue is declared, events
//! published while the listener is stopped wait in it. Each event is acknowledged only after
//! its handler succeeded; a failed one goes back to the queue after a pause, so the broker
//! redelivers it (handlers must be idempotent). Unreadable messages are rejected (kept by a
//! dead-letter policy if the operator set one).

use crate::amqp::{Backoff, connect, consume, consumer_tag};
use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt;
use goterra_core::Sensitive;
use goterra_core::events::Event;
use lapin::options::{
    BasicAckOptions, BasicNackOptions, BasicRejectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Handles one event; an error sends it back to the queue.
#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &Event) -> anyhow::Result<()>;
}

/// Pause before a failed event is handed back to the broker, so a failing dependency is not
/// hammered.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct RabbitEventQueue {
    url: Sensitive<String>,
    exchange: String,
    queue: String,
    prefetch: u16,
}

struct Subscription {
    connection: Connection,
    _channel: Channel,
    deliveries: lapin::Consumer,
}

impl RabbitEventQueue {
    /// `exchange` is usually [`crate::DEFAULT_EVENT_EXCHANGE`]; `prefetch` bounds the events
    /// handled at once.
    pub fn new(url: Sensitive<String>, exchange: impl Into<String>, queue: impl Into<String>, prefetch: u16) -> Self {
        Self {
            url,
            exchange: exchange.into(),
            queue: queue.into(),
            prefetch: prefetch.max(1),
        }
    }

    pub fn queue_name(&self) -> &str {
        &self.queue
    }

    async fn declare_on(&self, channel: &Channel) -> anyhow::Result<()> {
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("cannot declare the event exchange")?;
        channel
            .queue_declare(
                self.queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .context("cannot declare the event queue")?;
        channel
            .queue_bind(
                self.queue.as_str().into(),
                self.exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("cannot bind the event queue to the exchange")?;
        Ok(())
    }

    /// Declares the exchange, the queue and its binding, so that events are kept from now on
    /// even before a consumer runs.
    pub async fn declare(&self) -> anyhow::Result<()> {
        let connection = connect(self.url.expose(), "goterra-events-admin").await?;
        let channel = connection.create_channel().await?;
        let declared = self.declare_on(&channel).await;
        let _ = connection.close(200, "bye".into()).await;
        declared
    }

    /// Deletes the queue and the events in it (tests, or decommissioning a listener).
    pub async fn delete(&self) -> anyhow::Result<()> {
        let connection = connect(self.url.expose(), "goterra-events-admin").await?;
        let channel = connection.create_channel().await?;
        channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .context("cannot delete the event queue")?;
        let _ = connection.close(200, "bye".into()).await;
        Ok(())
    }

    async fn subscribe(&self) -> anyhow::Result<Subscription> {
        let connection = connect(self.url.expose(), "goterra-events-consumer").await?;
        let channel = connection.create_channel().await?;
        self.declare_on(&channel).await?;
        let tag = consumer_tag("goterra-events");
        let deliveries = consume(&channel, &self.queue, self.prefetch, &tag, "event queue").await?;
        Ok(Subscription {
            connection,
            _channel: channel,
            deliveries,
        })
    }

    /// Consumes until `shutdown` is canceled, reconnecting with a capped backoff. Events are
    /// handled one at a time, in queue order.
    pub async fn consume(&self, handler: Arc<dyn EventHandler>, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            let mut subscription = match self.subscribe().await {
                Ok(subscription) => {
                    tracing::info!(queue = %self.queue, exchange = %self.exchange, "consuming platform events");
                    subscription
                }
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{err:#}"), retry_in = ?delay, "cannot consume platform events");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => continue,
                    }
                }
            };
            loop {
                let delivery = tokio::select! {
                    () = shutdown.cancelled() => {
                        let _ = subscription.connection.close(200, "bye".into()).await;
                        return;
                    }
                    delivery = subscription.deliveries.next() => delivery,
                };
                match delivery {
                    Some(Ok(delivery)) => {
                        backoff.reset();
                        handle_delivery(handler.as_ref(), delivery).await;
                    }
                    Some(Err(err)) => {
                        tracing::warn!(%err, "the event consumer failed; reconnecting");
                        break;
                    }
                    None => {
                        tracing::warn!("the event consumer was canceled; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

async fn handle_delivery(handler: &dyn EventHandler, delivery: lapin::message::Delivery) {
    let event: Event = match serde_json::from_slice(&delivery.data) {
        Ok(event) => event,
        Err(err) => {
            tracing::error!(%err, "rejecting an unreadable event message");
            let _ = delivery.acker.reject(BasicRejectOptions { requeue: false }).await;
            return;
        }
    };
    match handler.handle(&event).await {
        Ok(()) => {
            if let Err(err) = delivery.acker.ack(BasicAckOptions::default()).await {
                // The broker requeues it; the handler is idempotent.
                tracing::warn!(%err, action = %event.action, "cannot acknowledge an event");
            }
        }
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), action = %event.action, uid = %event.uid, "event handling failed; requeued");
            tokio::time::sleep(RETRY_PAUSE).await;
            let _ = delivery
                .acker
                .nack(BasicNackOptions {
                    multiple: false,
                    requeue: true,
                })
                .await;
        }
    }
}
