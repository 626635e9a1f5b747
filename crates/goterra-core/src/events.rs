//! Platform events (user, namespace and run lifecycle) for acct and other listeners.
//!
//! The message shape is the original's `{"Action", "UID", "Data"}` with capitalised keys, which
//! existing consumers decode. Publishing never fails a request: a lost event is logged.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// A notice that a bus delivers to its own listeners (never published) when events may have
/// been lost, e.g. after reconnecting to the broker: listeners that keep state catch up.
pub const EVENTS_MISSED: &str = "events_missed";

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

    /// A receiver of every event published on the bus from now on (acct listens this way in
    /// `goterra up`, the revocation map in every process sharing the bus); `None` when this
    /// bus cannot be listened to. Listeners that fall behind see `Lagged` and must recover
    /// (the revocation map re-checks every user).
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

    /// Every event published from now on (the trait's `subscribe`, never `None` here).
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
