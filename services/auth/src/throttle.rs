//! Password login throttling and the bound on Argon2 work.
//!
//! Failed logins are counted per uid and per client address. After a few free failures each
//! further one blocks that uid (or address) for an exponentially growing time, capped; while
//! blocked, logins are refused with 429 and `Retry-After` before any password is hashed. A
//! success clears the uid's count. Counts are forgotten after a quiet period.
//!
//! Argon2 runs on blocking threads behind a semaphore as wide as the machine, so a burst of
//! logins queues instead of starving the runtime; API keys and tokens never hash a password
//! and are not affected.

use goterra_core::ApiError;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Failures a uid gets before its logins are slowed down.
pub const FREE_FAILURES_PER_UID: u32 = 5;
/// Failures one client address gets (across uids) before it is slowed down: higher, because
/// many users may share an address.
pub const FREE_FAILURES_PER_ADDRESS: u32 = 20;
/// The first block; each further failure doubles it.
pub const FIRST_BLOCK: Duration = Duration::from_secs(1);
/// The longest block.
pub const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);
/// Counts are forgotten after this long without a failure.
const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);
/// Keys tracked at most (beyond, the stalest are dropped).
const MAX_TRACKED: usize = 100_000;
/// How long a login waits for an Argon2 slot before 503.
const ARGON2_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Uid(String),
    Address(IpAddr),
}

impl Key {
    fn free_failures(&self) -> u32 {
        match self {
            Self::Uid(_) => FREE_FAILURES_PER_UID,
            Self::Address(_) => FREE_FAILURES_PER_ADDRESS,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// A refused login: wait this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after: Duration,
}

impl Blocked {
    /// Whole seconds for `Retry-After`, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

pub struct LoginThrottle {
    failures: Mutex<HashMap<Key, Failures>>,
    argon2: Arc<Semaphore>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        let width = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(width)
    }
}

fn keys(uid: &str, address: Option<IpAddr>) -> Vec<Key> {
    let mut keys = vec![Key::Uid(uid.to_string())];
    keys.extend(address.map(Key::Address));
    keys
}

impl LoginThrottle {
    /// `argon2_slots` password hashes run at once.
    pub fn new(argon2_slots: usize) -> Self {
        Self {
            failures: Mutex::new(HashMap::new()),
            argon2: Arc::new(Semaphore::new(argon2_slots.max(1))),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Failures>> {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses a login attempt for `uid` from `address` while either is blocked.
    pub fn check(&self, uid: &str, address: Option<IpAddr>) -> Result<(), Blocked> {
        self.check_at(uid, address, Instant::now())
    }

    fn check_at(&self, uid: &str, address: Option<IpAddr>, now: Instant) -> Result<(), Blocked> {
        let table = self.table();
        let wait = keys(uid, address)
            .iter()
            .filter_map(|key| table.get(key)?.blocked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(retry_after) => Err(Blocked { retry_after }),
            None => Ok(()),
        }
    }

    /// Records a failed attempt; answers how long the caller must now wait, if at all.
    pub fn failed(&self, uid: &str, address: Option<IpAddr>) -> Option<Blocked> {
        self.failed_at(uid, address, Instant::now())
    }

    fn failed_at(&self, uid: &str, address: Option<IpAddr>, now: Instant) -> Option<Blocked> {
        let mut table = self.table();
        if table.len() >= MAX_TRACKED {
            table.retain(|_, failures| now.duration_since(failures.last) < FORGET_AFTER);
            if table.len() >= MAX_TRACKED {
                table.clear();
            }
        }
        let mut longest: Option<Duration> = None;
        for key in keys(uid, address) {
            let free = key.free_failures();
            let entry = table.entry(key).or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: None,
            });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
            if entry.count > free {
                let doublings = (entry.count - free - 1).min(20);
                let block = FIRST_BLOCK.saturating_mul(1 << doublings).min(MAX_BLOCK);
                entry.blocked_until = Some(now + block);
                longest = Some(longest.map_or(block, |known| known.max(block)));
            }
        }
        longest.map(|retry_after| Blocked { retry_after })
    }

    /// A successful login clears the uid's failures (not the address's: one valid account
    /// must not reset an address guessing others' passwords).
    pub fn succeeded(&self, uid: &str) {
        self.table().remove(&Key::Uid(uid.to_string()));
    }

    /// Runs Argon2 work on a blocking thread once a slot is free (503 after waiting too long).
    pub async fn argon2<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(ARGON2_WAIT, self.argon2.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Unavailable("too many logins at once: try again shortly".into()))?
            .map_err(ApiError::internal)?;
        let result = tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(ApiError::internal)?;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn a_uid_is_blocked_after_its_free_failures_with_growing_waits() {
        let throttle = LoginThrottle::new(1);
        let now = Instant::now();
        for _ in 0..FREE_FAILURES_PER_UID {
            assert_eq!(throttle.failed_at("alice", HOME, now), None);
        }
        assert!(throttle.check_at("alice", HOME, now).is_ok());
        let first = throttle.failed_at("alice", HOME, now).unwrap();
        assert_eq!(first.retry_after, FIRST_BLOCK);
        assert_eq!(throttle.check_at("alice", HOME, now), Err(first));
        let second = throttle.failed_at("alice", HOME, now).unwrap();
        assert_eq!(second.retry_after, FIRST_BLOCK * 2);
        // Other uids from another address are not affected; the block ends.
        assert!(throttle.check_at("bob", None, now).is_ok());
        assert!(throttle.check_at("alice", HOME, now + MAX_BLOCK).is_ok());
        // A success clears the uid.
        throttle.succeeded("alice");
        assert!(throttle.check_at("alice", None, now).is_ok());
    }

    #[test]
    fn an_address_guessing_many_uids_is_blocked_and_waits_are_capped() {
        let throttle = LoginThrottle::new(1);
        let now = Instant::now();
        for i in 0..FREE_FAILURES_PER_ADDRESS {
            assert_eq!(throttle.failed_at(&format!("user{i}"), HOME, now), None);
        }
        assert!(throttle.failed_at("another", HOME, now).is_some());
        assert!(throttle.check_at("yet-another", HOME, now).is_err());
        assert!(throttle.check_at("yet-another", None, now).is_ok());
        let mut last = None;
        for _ in 0..40 {
            last = throttle.failed_at("victim", None, now);
        }
        assert_eq!(last.unwrap().retry_after, MAX_BLOCK);
        assert_eq!(
            Blocked {
                retry_after: Duration::from_millis(1500)
            }
            .retry_after_secs(),
            2
        );
    }

    #[tokio::test]
    async fn argon2_work_runs_off_the_runtime() {
        let throttle = LoginThrottle::new(1);
        assert_eq!(throttle.argon2(|| 40 + 2).await.unwrap(), 42);
    }
}
