//! A per-process cache of user data (API-key lookups, user rows) that stops honouring an entry
//! the moment the process learns of any user change.
//!
//! Entries are stored under the [`Revocations`] generation read *before* the data was fetched,
//! and are served only while that generation is current. The generation moves when a user
//! event arrives (from any replica, through the event bus), when auth changes a user in this
//! process (before it answers), and when a re-check finds a change; so a demotion, a deletion
//! or a replaced API key is never served from here after this process heard of it, and a fetch
//! that raced with the change is never stored as current. An entry also expires after
//! [`RECHECK_INTERVAL`], the same bound a lost event has on tokens.

use crate::revocation::{RECHECK_INTERVAL, Revocations};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

struct Entry<V> {
    value: V,
    generation: u64,
    stored_at: Instant,
}

pub struct UserCache<K, V> {
    revocations: Arc<Revocations>,
    entries: Mutex<HashMap<K, Entry<V>>>,
    capacity: usize,
}

/// The generation a fetch started under: pass it back to [`UserCache::store`].
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl<K: Eq + Hash, V: Clone> UserCache<K, V> {
    /// At most `capacity` entries (the whole cache is dropped when it is full: user data is
    /// cheap to fetch again and a full cache is rare).
    pub fn new(revocations: Arc<Revocations>, capacity: usize) -> Self {
        Self {
            revocations,
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<K, Entry<V>>> {
        // Each update is one insert or one clear: a poisoned lock leaves nothing half done.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take this before fetching the data that [`Self::store`] will keep.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.revocations.generation())
    }

    /// The cached value, if it was fetched under the current generation and is recent.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let generation = self.revocations.generation();
        let entries = self.entries();
        let entry = entries.get(key)?;
        (entry.generation == generation && entry.stored_at.elapsed() < RECHECK_INTERVAL).then(|| entry.value.clone())
    }

    /// Keeps `value`, fetched after `ticket` was taken. Kept only while nothing changed since.
    pub fn store(&self, key: K, value: V, ticket: Ticket) {
        if ticket.0 != self.revocations.generation() {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                value,
                generation: ticket.0,
                stored_at: Instant::now(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Event;
    use crate::revocation::UserStatus;

    fn cache() -> (Arc<Revocations>, UserCache<String, u32>) {
        let revocations = Arc::new(Revocations::new(None));
        (revocations.clone(), UserCache::new(revocations, 4))
    }

    #[tokio::test]
    async fn any_user_event_drops_every_entry_at_receipt() {
        for action in [
            "user_update",
            "user_delete",
            "user_apikey",
            "user_password",
            "user_create",
        ] {
            let (revocations, cache) = cache();
            cache.store("alice".into(), 1, cache.ticket());
            assert_eq!(cache.get("alice"), Some(1));
            revocations.on_event(&Event::new(action, "bob", "")).await;
            assert_eq!(cache.get("alice"), None, "{action}");
        }
    }

    #[tokio::test]
    async fn other_events_keep_entries() {
        let (revocations, cache) = cache();
        cache.store("alice".into(), 1, cache.ticket());
        revocations.on_event(&Event::new("ns_update", "alice", "")).await;
        assert_eq!(cache.get("alice"), Some(1));
    }

    #[tokio::test]
    async fn a_fetch_that_raced_with_a_change_is_not_kept() {
        let (revocations, cache) = cache();
        let ticket = cache.ticket();
        revocations.changed_here(&Event::new("user_apikey", "alice", "")).await;
        cache.store("alice".into(), 1, ticket);
        assert_eq!(cache.get("alice"), None);
    }

    #[test]
    fn a_status_change_found_by_a_recheck_drops_entries_and_an_unchanged_one_does_not() {
        let (revocations, cache) = cache();
        let status = UserStatus {
            uid: "alice".into(),
            exists: true,
            admin: true,
            super_user: false,
            tokens_not_before: 0,
        };
        revocations.apply([status.clone()]);
        cache.store("alice".into(), 1, cache.ticket());
        revocations.apply([status.clone()]);
        assert_eq!(cache.get("alice"), Some(1));
        revocations.apply([UserStatus { admin: false, ..status }]);
        assert_eq!(cache.get("alice"), None);
    }

    #[test]
    fn the_cache_is_bounded() {
        let (_, cache) = cache();
        for n in 0..10 {
            cache.store(format!("u{n}"), n, cache.ticket());
        }
        assert_eq!(cache.get("u9"), Some(9));
        assert!(cache.entries().len() <= 4);
    }
}
