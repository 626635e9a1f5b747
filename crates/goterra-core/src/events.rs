//! Platform events (user, namespace and run lifecycle) for acct and other listeners.
//!
//! The message shape is the original's `{"Action", "UID", "Data"}` with capitalised keys, which
//! existing consumers decode. Publishing never fails a request: a lost event is logged.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "UID")]
    pub uid: String,
    #[serde(rename = "Data")]
    pub data: String,
}

impl Event {
    pub fn new(action: impl Into<String>, uid: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            uid: uid.into(),
            data: data.into(),
        }
    }
}

#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, event: Event);

    /// A receiver of every event published from now on, when this bus delivers within the
    /// process (acct listens this way in `goterra up`); `None` for buses whose listeners
    /// consume from a broker instead.
    fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        None
    }
}

/// Delivers events to subscribers in the same process (the all-in-one server).
pub struct InProcessEventBus {
    sender: broadcast::Sender<Event>,
}

impl InProcessEventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Self { sender }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

impl Default for InProcessEventBus {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventBus for InProcessEventBus {
    async fn publish(&self, event: Event) {
        tracing::debug!(action = %event.action, uid = %event.uid, "event");
        // No subscriber is not an error: acct may not be running.
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        Some(self.sender.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_receive_events_in_the_original_shape() {
        let bus = InProcessEventBus::new();
        let mut receiver = bus.subscribe();
        bus.publish(Event::new("user_create", "alice", "")).await;
        let event = receiver.recv().await.unwrap();
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"Action": "user_create", "UID": "alice", "Data": ""})
        );
    }
}
