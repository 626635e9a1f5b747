//! Platform events through Redis pub/sub, for split deployments that run Redis (the store's
//! backend) but no RabbitMQ: every process publishes on and subscribes to the channel
//! `{prefix}:gotevent`, so a `user_*` event of auth reaches the revocation map of every replica
//! of every service within a round trip.
//!
//! Pub/sub keeps nothing: an event published while a process is disconnected is lost to it.
//! After a reconnection, listeners get an [`EVENTS_MISSED`] notice and catch up (the revocation
//! map re-checks every user), and the periodic re-check bounds what a lost event costs.
//!
//! Events are delivered to this process's own listeners at once, without waiting for Redis (a
//! process never depends on Redis to see its own events); each message names the process that
//! sent it, so the copy that comes back through Redis is not delivered twice.

use async_trait::async_trait;
use futures_util::StreamExt;
use goterra_core::Sensitive;
use goterra_core::events::{EVENTS_MISSED, Event, EventBus};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Events waiting to be published while Redis is unreachable.
const BUFFER: usize = 1024;
/// How long to wait before reconnecting a lost connection.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// One message on the channel: the event and the process that published it.
#[derive(Serialize, Deserialize)]
struct Message {
    origin: String,
    event: Event,
}

pub struct RedisEventBus {
    origin: String,
    sender: mpsc::Sender<Event>,
    received: broadcast::Sender<Event>,
}

impl RedisEventBus {
    /// Starts the publishing and the listening tasks (on the current tokio runtime). `prefix`
    /// is the Redis key prefix of the platform (`redis.prefix`), shared by its processes.
    pub fn start(url: Sensitive<String>, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.expose().as_str())
            .map_err(|err| anyhow::anyhow!("GOT_REDIS_URL is not a Redis URL: {:?}", err.kind()))?;
        let channel = format!("{prefix}:gotevent");
        let origin = uuid::Uuid::new_v4().simple().to_string();
        let (sender, outgoing) = mpsc::channel(BUFFER);
        let (received, _) = broadcast::channel(BUFFER);
        tokio::spawn(publish_loop(client.clone(), channel.clone(), origin.clone(), outgoing));
        tokio::spawn(listen_loop(client, channel, origin.clone(), received.clone()));
        Ok(Self {
            origin,
            sender,
            received,
        })
    }

    /// The id this process signs its messages with.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, event: Event) {
        let _ = self.received.send(event.clone());
        if let Err(err) = self.sender.try_send(event) {
            let event = match &err {
                mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event) => event,
            };
            tracing::warn!(action = %event.action, uid = %event.uid, "event dropped: Redis is unreachable");
        }
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        Some(self.received.subscribe())
    }
}

async fn publish_loop(client: redis::Client, channel: String, origin: String, mut events: mpsc::Receiver<Event>) {
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    while let Some(event) = events.recv().await {
        let Ok(payload) = serde_json::to_string(&Message {
            origin: origin.clone(),
            event,
        }) else {
            continue;
        };
        // Two attempts (the second on a fresh connection), then the event is dropped with a
        // log line: the periodic re-check makes good what it carried.
        let mut delivered = false;
        for _ in 0..2 {
            if connection.is_none() {
                match client.get_multiplexed_async_connection().await {
                    Ok(open) => connection = Some(open),
                    Err(err) => {
                        tracing::warn!(error = ?err.kind(), "cannot reach Redis for events");
                        tokio::time::sleep(RECONNECT_DELAY).await;
                        continue;
                    }
                }
            }
            if let Some(open) = connection.as_mut() {
                match redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(&payload)
                    .query_async::<i64>(open)
                    .await
                {
                    Ok(_) => {
                        delivered = true;
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(error = ?err.kind(), "publishing an event on Redis failed; reconnecting");
                        connection = None;
                    }
                }
            }
        }
        if !delivered {
            tracing::warn!("event dropped after retries: Redis is unreachable");
        }
    }
}

/// Forwards the channel's events from other processes to this process's listeners,
/// reconnecting after a delay; runs while the process does.
async fn listen_loop(client: redis::Client, channel: String, origin: String, received: broadcast::Sender<Event>) {
    // Whether events may have been missed: after the first attempt, any (re)subscription.
    let mut first_attempt = true;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    if !first_attempt {
                        tracing::info!("Redis event subscription restored");
                        let _ = received.send(Event::new(EVENTS_MISSED, "", ""));
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Ok(payload) = message.get_payload::<String>() else {
                            continue;
                        };
                        match serde_json::from_str::<Message>(&payload) {
                            Ok(message) if message.origin != origin => {
                                let _ = received.send(message.event);
                            }
                            Ok(_) => {}
                            Err(err) => tracing::warn!(%err, "ignored a message on the Redis event channel"),
                        }
                    }
                    tracing::warn!("Redis event subscription lost, reconnecting");
                }
                Err(err) => tracing::warn!(error = ?err.kind(), "cannot subscribe to Redis events"),
            },
            Err(err) => tracing::warn!(error = ?err.kind(), "cannot open the Redis event subscription"),
        }
        first_attempt = false;
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}
