//! Server-side waiting for a key: waiters register in a [`WaitHub`] before they look at the
//! backend, and writers wake them. There is one watch channel per (deployment, key) that
//! someone waits on, shared by all its waiters; it disappears with its last waiter, including
//! when the waiting request is dropped because the client went away.

use crate::backend::{StoreBackend, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// What a writer tells the waiters of one key.
#[derive(Clone, Debug, Default)]
pub enum Wake {
    #[default]
    Idle,
    /// The key now holds this value: no need to read it back from the backend.
    Value(Arc<str>),
    /// Something changed (a write seen by another replica, a deletion, a reconnection): read
    /// the backend again.
    Recheck,
}

type Slots = HashMap<String, HashMap<String, watch::Sender<Wake>>>;

/// The waiters of this process, by deployment and key.
#[derive(Default)]
pub struct WaitHub {
    slots: Mutex<Slots>,
}

impl WaitHub {
    pub fn new() -> Arc<Self> {
        // Shown at 0 from the start, so a dashboard does not wait for the first waiter.
        metrics::gauge!(WAITERS_METRIC).increment(0.0);
        Arc::new(Self::default())
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        // A panic while holding this lock cannot leave the map inconsistent: keep going.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts waiting for `key`. Wake-ups sent from now on are seen by the returned waiter.
    pub fn register(self: &Arc<Self>, deployment: &str, key: &str) -> Waiter {
        let mut slots = self.slots();
        let keys = slots.entry(deployment.to_string()).or_default();
        let receiver = match keys.get(key) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(Wake::Idle);
                keys.insert(key.to_string(), sender);
                receiver
            }
        };
        metrics::gauge!(WAITERS_METRIC).increment(1.0);
        Waiter {
            hub: self.clone(),
            deployment: deployment.to_string(),
            key: key.to_string(),
            receiver: Some(receiver),
        }
    }

    /// Hands `value` to the waiters of `key`, if any.
    pub fn publish(&self, deployment: &str, key: &str, value: &str) {
        let slots = self.slots();
        if let Some(sender) = slots.get(deployment).and_then(|keys| keys.get(key)) {
            sender.send_replace(Wake::Value(Arc::from(value)));
        }
    }

    /// Asks the waiters of `key` to read the backend again.
    pub fn recheck(&self, deployment: &str, key: &str) {
        let slots = self.slots();
        if let Some(sender) = slots.get(deployment).and_then(|keys| keys.get(key)) {
            sender.send_replace(Wake::Recheck);
        }
    }

    /// Asks every waiter of a deployment to read again (it was deleted, say).
    pub fn recheck_deployment(&self, deployment: &str) {
        let slots = self.slots();
        for sender in slots.get(deployment).into_iter().flat_map(HashMap::values) {
            sender.send_replace(Wake::Recheck);
        }
    }

    /// Asks every waiter to read again, after notifications may have been missed.
    pub fn recheck_all(&self) {
        let slots = self.slots();
        for sender in slots.values().flat_map(HashMap::values) {
            sender.send_replace(Wake::Recheck);
        }
    }

    pub fn has_waiters(&self, deployment: &str, key: &str) -> bool {
        self.slots().get(deployment).is_some_and(|keys| keys.contains_key(key))
    }

    /// How many requests are waiting in this process.
    pub fn waiting(&self) -> usize {
        self.slots()
            .values()
            .flat_map(HashMap::values)
            .map(watch::Sender::receiver_count)
            .sum()
    }

    /// How many (deployment, key) slots exist; 0 once every waiter is gone.
    pub fn slot_count(&self) -> usize {
        self.slots().values().map(HashMap::len).sum()
    }

    fn release(&self, deployment: &str, key: &str, receiver: watch::Receiver<Wake>) {
        let mut slots = self.slots();
        drop(receiver);
        let Some(keys) = slots.get_mut(deployment) else {
            return;
        };
        if keys.get(key).is_some_and(|sender| sender.receiver_count() == 0) {
            keys.remove(key);
        }
        if keys.is_empty() {
            slots.remove(deployment);
        }
    }
}

/// The gauge of requests waiting for a key in this process (`GET ...?wait=`).
const WAITERS_METRIC: &str = "goterra_store_waiters";

/// One registered waiter; dropping it unregisters.
pub struct Waiter {
    hub: Arc<WaitHub>,
    deployment: String,
    key: String,
    receiver: Option<watch::Receiver<Wake>>,
}

impl Waiter {
    /// The next wake-up for this key.
    pub async fn next(&mut self) -> Wake {
        let Some(receiver) = self.receiver.as_mut() else {
            return std::future::pending().await;
        };
        match receiver.changed().await {
            Ok(()) => receiver.borrow_and_update().clone(),
            // The slot is kept while it has receivers, so this does not happen; never spin.
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if let Some(receiver) = self.receiver.take() {
            metrics::gauge!(WAITERS_METRIC).decrement(1.0);
            self.hub.release(&self.deployment, &self.key, receiver);
        }
    }
}

/// Reads `key`, waiting up to `timeout` for it to be written. `Ok(None)`: still absent.
pub async fn wait_for_key(
    backend: &dyn StoreBackend,
    deployment: &str,
    key: &str,
    timeout: Duration,
) -> Result<Option<String>, StoreError> {
    // Register first, then read: a write landing in between still wakes us.
    let mut waiter = backend.hub().register(deployment, key);
    if let Some(value) = backend.get(deployment, key).await? {
        return Ok(Some(value));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, waiter.next()).await {
            Err(_elapsed) => return Ok(None),
            Ok(Wake::Value(value)) => return Ok(Some(value.to_string())),
            Ok(Wake::Idle | Wake::Recheck) => {
                if let Some(value) = backend.get(deployment, key).await? {
                    return Ok(Some(value));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_disappear_with_their_last_waiter() {
        let hub = WaitHub::new();
        let mut first = hub.register("d", "k");
        let second = hub.register("d", "k");
        let other = hub.register("d", "other");
        assert_eq!(hub.waiting(), 3);
        assert_eq!(hub.slot_count(), 2);
        hub.publish("d", "k", "v");
        assert!(matches!(first.next().await, Wake::Value(v) if &*v == "v"));
        drop(second);
        drop(other);
        assert_eq!(hub.slot_count(), 1);
        drop(first);
        assert_eq!(hub.slot_count(), 0);
        assert_eq!(hub.waiting(), 0);
        hub.publish("d", "k", "nobody listens");
        assert_eq!(hub.slot_count(), 0);
    }

    #[tokio::test]
    async fn a_new_waiter_does_not_see_old_wakes() {
        let hub = WaitHub::new();
        let _keep = hub.register("d", "k");
        hub.publish("d", "k", "old");
        let mut late = hub.register("d", "k");
        let next = tokio::time::timeout(Duration::from_millis(50), late.next()).await;
        assert!(next.is_err(), "a waiter registered after a wake must not see it");
        hub.recheck_deployment("d");
        assert!(matches!(late.next().await, Wake::Recheck));
    }
}
