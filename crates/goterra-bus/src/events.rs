//! Platform events on RabbitMQ: a durable fanout exchange (default `gotevent`) carrying the
//! original `{"Action","UID","Data"}` JSON body, for acct and any other listener.
//!
//! Publishing never blocks or fails the caller: events go into a bounded in-memory buffer that
//! one background task drains over a long-lived connection, reconnecting with a capped
//! backoff. While the broker is away the buffer holds the most recent events; when it is full,
//! new events are logged and dropped.

use crate::amqp::{Backoff, connect};
use async_trait::async_trait;
use goterra_core::Sensitive;
use goterra_core::events::{Event, EventBus};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use tokio::sync::mpsc;

/// The original exchange name.
pub const DEFAULT_EVENT_EXCHANGE: &str = "gotevent";

/// Events waiting to be published while the broker is unreachable.
const BUFFER: usize = 1024;

pub struct RabbitEventBus {
    sender: mpsc::Sender<Event>,
}

impl RabbitEventBus {
    /// Starts the publishing task (on the current tokio runtime).
    pub fn start(url: Sensitive<String>, exchange: impl Into<String>) -> Self {
        let (sender, receiver) = mpsc::channel(BUFFER);
        tokio::spawn(publish_loop(url, exchange.into(), receiver));
        Self { sender }
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
}

struct Link {
    _connection: Connection,
    channel: Channel,
}

async fn open_link(url: &Sensitive<String>, exchange: &str) -> anyhow::Result<Link> {
    let connection = connect(url.expose(), "goterra-events").await?;
    let channel = connection.create_channel().await?;
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
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    Ok(Link {
        _connection: connection,
        channel,
    })
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
