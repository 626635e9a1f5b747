//! Platform events on RabbitMQ: a durable fanout exchange (default `gotevent`) carrying the
//! original `{"Action","UID","Data"}` JSON body, for acct and any other listener.
//!
//! Publishing never blocks or fails the caller: events go into a bounded in-memory buffer that
//! one background task drains over a long-lived connection, reconnecting with a capped
//! backoff. While the broker is away the buffer holds the most recent events; when it is full,
//! new events are logged and dropped.
//!
//! Listening: each bus also binds a private, exclusive queue of its own to the exchange, so
//! every process sees every event (the revocation map of each service replica needs them).
//! After a reconnection, events sent meanwhile are lost to this process: listeners are told
//! with a `Lagged` notice and catch up (the revocation map re-checks every user).

use crate::amqp::{Backoff, connect};
use async_trait::async_trait;
use futures_util::StreamExt;
use goterra_core::Sensitive;
use goterra_core::events::{EVENTS_MISSED, Event, EventBus};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use tokio::sync::{broadcast, mpsc};

/// The original exchange name.
pub const DEFAULT_EVENT_EXCHANGE: &str = "gotevent";

/// Events waiting to be published while the broker is unreachable.
const BUFFER: usize = 1024;

pub struct RabbitEventBus {
    sender: mpsc::Sender<Event>,
    received: broadcast::Sender<Event>,
}

impl RabbitEventBus {
    /// Starts the publishing and the listening tasks (on the current tokio runtime).
    pub fn start(url: Sensitive<String>, exchange: impl Into<String>) -> Self {
        let exchange = exchange.into();
        let (sender, receiver) = mpsc::channel(BUFFER);
        let (received, _) = broadcast::channel(BUFFER);
        tokio::spawn(publish_loop(url.clone(), exchange.clone(), receiver));
        tokio::spawn(listen_loop(url, exchange, received.clone()));
        Self { sender, received }
    }
}

#[async_trait]
impl EventBus for RabbitEventBus {
    async fn publish(&self, event: Event) {
        if let Err(err) = self.sender.try_send(event) {
            let event = match &err {
                mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event) => event,
            };
            tracing::warn!(action = %event.action, uid = %event.uid, "event dropped: RabbitMQ is unreachable");
        }
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        Some(self.received.subscribe())
    }
}

struct Link {
    _connection: Connection,
    channel: Channel,
}

async fn open_link(url: &Sensitive<String>, exchange: &str) -> anyhow::Result<Link> {
    let connection = connect(url.expose(), "goterra-events").await?;
    let channel = connection.create_channel().await?;
    declare_exchange(&channel, exchange).await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(Link {
        _connection: connection,
        channel,
    })
}

async fn declare_exchange(channel: &Channel, exchange: &str) -> anyhow::Result<()> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// A private queue bound to the exchange, and its consumer.
async fn open_listener(url: &Sensitive<String>, exchange: &str) -> anyhow::Result<(Connection, lapin::Consumer)> {
    let connection = connect(url.expose(), "goterra-events-listener").await?;
    let channel = connection.create_channel().await?;
    declare_exchange(&channel, exchange).await?;
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumer = channel
        .basic_consume(
            queue.name().clone(),
            "goterra-events-listener".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok((connection, consumer))
}

/// Forwards the exchange's events to this process's listeners, reconnecting with a capped
/// backoff. Stops when the bus is dropped (no sender left to notice: it runs while the
/// process does).
async fn listen_loop(url: Sensitive<String>, exchange: String, received: broadcast::Sender<Event>) {
    let mut backoff = Backoff::default();
    let mut connected_before = false;
    loop {
        let (_connection, mut deliveries) = match open_listener(&url, &exchange).await {
            Ok(open) => open,
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %format!("{err:#}"), retry_in = ?delay, "cannot listen to events on RabbitMQ");
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        backoff.reset();
        if connected_before {
            // Events sent while disconnected are lost to this process: a synthetic
            // notice tells listeners to catch up.
            let _ = received.send(Event::new(EVENTS_MISSED, "", ""));
        }
        connected_before = true;
        while let Some(delivery) = deliveries.next().await {
            match delivery {
                Ok(delivery) => match serde_json::from_slice::<Event>(&delivery.data) {
                    Ok(event) => {
                        let _ = received.send(event);
                    }
                    Err(err) => tracing::warn!(%err, "ignored an event that is not {{Action, UID, Data}} JSON"),
                },
                Err(err) => {
                    tracing::warn!(error = %err, "the event listener lost RabbitMQ; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn send(link: &Link, exchange: &str, event: &Event) -> anyhow::Result<()> {
    let body = serde_json::to_vec(event)?;
    let confirmation = link
        .channel
        .basic_publish(
            exchange.into(),
            "".into(),
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type("application/json".into()),
        )
        .await?
        .await?;
    if !confirmation.is_ack() {
        anyhow::bail!("RabbitMQ refused the event");
    }
    Ok(())
}

async fn publish_loop(url: Sensitive<String>, exchange: String, mut events: mpsc::Receiver<Event>) {
    let mut backoff = Backoff::default();
    let mut link: Option<Link> = None;
    while let Some(event) = events.recv().await {
        // Each event gets a few attempts across reconnections, then is dropped with a log
        // line, so one bad period does not hold later events back forever.
        let mut delivered = false;
        for _ in 0..5 {
            if link.is_none() {
                match open_link(&url, &exchange).await {
                    Ok(open) => {
                        backoff.reset();
                        link = Some(open);
                    }
                    Err(err) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %format!("{err:#}"), retry_in = ?delay, "cannot reach RabbitMQ for events");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
            }
            if let Some(open) = &link {
                match send(open, &exchange, &event).await {
                    Ok(()) => {
                        delivered = true;
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(error = %format!("{err:#}"), "publishing an event failed; reconnecting");
                        link = None;
                    }
                }
            }
        }
        if !delivered {
            tracing::warn!(action = %event.action, uid = %event.uid, "event dropped after retries");
        }
    }
}
