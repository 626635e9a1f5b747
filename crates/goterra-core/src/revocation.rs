//! Revocation of user tokens on every service, with token checks that stay local.
//!
//! Tokens are verified locally (a fernet check), so a service cannot ask auth on every request
//! whether a user still exists or is still an admin. Instead each process keeps a
//! [`Revocations`] map: for each user seen in a token, what auth said about that user last
//! (exists, admin, super, and `tokens_not_before`: tokens issued at or before that second are
//! revoked). A token is checked against the map only, in memory:
//! - a token of a deleted user, or one issued at or before `tokens_not_before` (password change,
//!   API-key replacement, demotion, deletion), is refused with 401;
//! - the admin and super claims of a token count only while the user still holds them.
//!
//! The map is kept current two ways, so a change reaches every process of any topology:
//! - **events**: auth publishes a `user_*` event after each change; every process receives it
//!   (in-process bus in `goterra up`, the `gotevent` exchange when split) and asks auth for that
//!   user's status at once (a `user_delete` is applied even before auth answers);
//! - **re-checks**: every [`RECHECK_INTERVAL`] the process asks auth, in batches, for the status
//!   of every user it has seen, so a lost event is made good within that bound.
//!
//! The map is also what keeps every per-process cache of user data honest (API-key lookups,
//! auth's user rows: [`crate::user_cache::UserCache`]): it holds a **generation** number that
//! moves on every user event the process hears (at receipt, before auth is asked anything),
//! on every change a re-check finds, and synchronously when auth itself changes a user
//! ([`Revocations::changed_here`]). A cached entry is honoured only while the generation it was
//! fetched under is current, so one mechanism revokes tokens and empties caches alike.

use crate::auth::ApiKeyResolver;
use crate::error::ApiError;
use crate::events::{EVENTS_MISSED, Event};
use crate::identity::Identity;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// How often every seen user is re-checked with auth: the bound on a revocation whose event
/// was lost (the guarantee is 30 s; one interval plus one auth round trip stays well under).
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(10);
/// Users asked about in one call to auth.
pub const RECHECK_BATCH: usize = 200;
/// Users a process keeps track of; the least recently seen are forgotten beyond this.
pub const MAX_TRACKED_USERS: usize = 100_000;
/// A user not seen in a token for this long is forgotten (its tokens have expired by then
/// with the default 24 h TTL; a forgotten user is tracked again at the next token).
const FORGET_AFTER_SECS: u64 = 48 * 3600;

/// What auth says about one user, for the revocation map (`POST /auth/status`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserStatus {
    pub uid: String,
    /// `false` once the user is deleted: every token of the uid is refused.
    pub exists: bool,
    pub admin: bool,
    #[serde(rename = "super")]
    pub super_user: bool,
    /// Tokens issued at or before this unix second are revoked.
    pub tokens_not_before: u64,
}

impl UserStatus {
    pub fn deleted(uid: &str) -> Self {
        Self {
            uid: uid.to_string(),
            exists: false,
            admin: false,
            super_user: false,
            tokens_not_before: u64::MAX,
        }
    }
}

/// Body of `POST /auth/status`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusRequest {
    /// At most [`RECHECK_BATCH`] uids.
    #[schema(max_items = 200)]
    pub uids: Vec<String>,
}

/// Answer of `POST /auth/status`: one status per asked uid, unknown uids with `exists: false`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusAnswer {
    pub users: Vec<UserStatus>,
}

/// Why a token is no longer accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Revoked {
    #[error("user no longer exists")]
    Deleted,
    #[error("token revoked, log in again")]
    Revoked,
}

impl From<Revoked> for ApiError {
    fn from(revoked: Revoked) -> Self {
        ApiError::unauthorized(revoked.to_string())
    }
}

struct Tracked {
    /// `None` until auth answered about this user.
    status: Option<UserStatus>,
    last_seen: u64,
}

/// The per-process revocation map (see the module documentation).
pub struct Revocations {
    users: Mutex<HashMap<String, Tracked>>,
    directory: RwLock<Option<Arc<dyn ApiKeyResolver>>>,
    /// Moves whenever what this process knows about any user may have changed.
    generation: AtomicU64,
}

/// What [`Revocations::admit`] needs of a status, copied out of the lock without allocating.
#[derive(Clone, Copy)]
struct Standing {
    exists: bool,
    admin: bool,
    super_user: bool,
    tokens_not_before: u64,
}

impl From<&UserStatus> for Standing {
    fn from(status: &UserStatus) -> Self {
        Self {
            exists: status.exists,
            admin: status.admin,
            super_user: status.super_user,
            tokens_not_before: status.tokens_not_before,
        }
    }
}

/// The privilege fields of a `user_update` event's data (auth's user view).
#[derive(Deserialize)]
struct UpdatedPrivileges {
    admin: bool,
    #[serde(rename = "super")]
    super_user: bool,
}

impl Revocations {
    pub fn new(directory: Option<Arc<dyn ApiKeyResolver>>) -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
            directory: RwLock::new(directory),
            generation: AtomicU64::new(0),
        }
    }

    /// The current generation: read it *before* fetching user data to cache, and store the
    /// data under it (see [`crate::user_cache::UserCache`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn invalidate_caches(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn directory(&self) -> Option<Arc<dyn ApiKeyResolver>> {
        self.directory.read().ok().and_then(|directory| directory.clone())
    }

    fn tracked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
        // A panic while holding the lock cannot leave the map inconsistent (each update is
        // one insert), so a poisoned lock is still usable.
        self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The identity a user token issued at `issued_at` grants now, from local state only.
    pub fn admit(&self, mut identity: Identity, issued_at: u64) -> Result<Identity, Revoked> {
        if let Some(status) = self.seen(&identity.uid) {
            if !status.exists {
                return Err(Revoked::Deleted);
            }
            if issued_at <= status.tokens_not_before {
                return Err(Revoked::Revoked);
            }
            identity.admin &= status.admin;
            identity.super_user &= status.super_user;
        }
        Ok(identity)
    }

    /// Whether a credential derived from `owner`'s account (a store token minted for one of
    /// the owner's deployments, held by its VMs) still stands: refused once the owner is
    /// deleted. The owner's password changes and demotions do not touch it: the VMs did not
    /// log in, and their token grants nothing of the owner's but the one deployment.
    pub fn admit_owner(&self, owner: &str) -> Result<(), Revoked> {
        match self.seen(owner) {
            Some(status) if !status.exists => Err(Revoked::Deleted),
            _ => Ok(()),
        }
    }

    /// Marks `uid` as seen now (tracking it from now on, so that re-checks ask about it) and
    /// returns what auth said about it last.
    fn seen(&self, uid: &str) -> Option<Standing> {
        let now = crate::token::unix_now();
        let mut users = self.tracked();
        if let Some(tracked) = users.get_mut(uid) {
            tracked.last_seen = now;
            return tracked.status.as_ref().map(Standing::from);
        }
        if users.len() >= MAX_TRACKED_USERS {
            forget_least_recent(&mut users);
        }
        users.insert(
            uid.to_string(),
            Tracked {
                status: None,
                last_seen: now,
            },
        );
        None
    }

    /// Records what auth said about users; caches are emptied when anything changed.
    pub fn apply(&self, statuses: impl IntoIterator<Item = UserStatus>) {
        let now = crate::token::unix_now();
        let mut changed = false;
        {
            let mut users = self.tracked();
            for status in statuses {
                let entry = users.entry(status.uid.clone()).or_insert(Tracked {
                    status: None,
                    last_seen: now,
                });
                changed |= entry.status.as_ref() != Some(&status);
                entry.status = Some(status);
            }
        }
        if changed {
            self.invalidate_caches();
        }
    }

    /// A demotion announced by a `user_update` event, applied before auth is asked: the
    /// event's data is auth's view of the user. Only ever lowers privileges.
    fn apply_demotion(&self, uid: &str, data: &str) {
        let Ok(privileges) = serde_json::from_str::<UpdatedPrivileges>(data) else {
            return;
        };
        let mut users = self.tracked();
        if let Some(status) = users.get_mut(uid).and_then(|tracked| tracked.status.as_mut()) {
            status.admin &= privileges.admin;
            status.super_user &= privileges.super_user;
        }
    }

    /// Auth changed `uid` in this very process: the change holds here before auth answers
    /// the request that made it (other processes hear the event `event`).
    pub async fn changed_here(&self, event: &Event) {
        self.on_event(event).await;
    }

    /// Asks auth about `uids` now and records the answer.
    pub async fn refresh(&self, uids: &[String]) -> Result<Vec<UserStatus>, ApiError> {
        let Some(directory) = self.directory() else {
            return Ok(Vec::new());
        };
        let statuses = directory.user_statuses(uids).await?;
        self.apply(statuses.clone());
        Ok(statuses)
    }

    /// `identity` as auth knows it this instant, for decisions that must not rely on a token's
    /// claims even for a second (granting namespace membership as an admin). Without a
    /// reachable auth the identity is returned as the token claimed it.
    pub async fn confirm(&self, identity: Identity) -> Result<Identity, ApiError> {
        if self.directory().is_none() {
            return Ok(identity);
        }
        let statuses = self.refresh(std::slice::from_ref(&identity.uid)).await?;
        match statuses.into_iter().find(|status| status.uid == identity.uid) {
            Some(status) if status.exists => Ok(Identity {
                admin: identity.admin && status.admin,
                super_user: identity.super_user && status.super_user,
                ..identity
            }),
            Some(_) => Err(Revoked::Deleted.into()),
            // A directory that knows no statuses: the token's claims stand.
            None => Ok(identity),
        }
    }

    /// Applies one platform event: every `user_*` event makes the process ask auth about that
    /// user; a deletion takes effect before the answer.
    pub async fn on_event(&self, event: &Event) {
        if event.action == EVENTS_MISSED {
            self.missed_events().await;
            return;
        }
        if !event.action.starts_with("user_") || event.uid.is_empty() {
            return;
        }
        match event.action.as_str() {
            "user_delete" => self.apply([UserStatus::deleted(&event.uid)]),
            "user_update" => self.apply_demotion(&event.uid, &event.data),
            _ => {}
        }
        // Cached user data (API keys, rows) is dropped at receipt, before auth answers.
        self.invalidate_caches();
        if let Err(err) = self.refresh(std::slice::from_ref(&event.uid)).await {
            tracing::warn!(uid = %event.uid, error = %err, "cannot refresh a user after an event; the periodic re-check will");
        }
    }

    /// Events may have been lost: nothing cached can be trusted, and every user is re-checked.
    async fn missed_events(&self) {
        self.invalidate_caches();
        self.recheck_all().await;
    }

    /// Asks auth about every tracked user, in batches, and forgets users not seen for long.
    pub async fn recheck_all(&self) {
        let uids: Vec<String> = {
            let now = crate::token::unix_now();
            let mut users = self.tracked();
            users.retain(|_, tracked| tracked.last_seen.saturating_add(FORGET_AFTER_SECS) >= now);
            users.keys().cloned().collect()
        };
        for batch in uids.chunks(RECHECK_BATCH) {
            if let Err(err) = self.refresh(batch).await {
                tracing::warn!(error = %err, "cannot re-check users with auth; will retry");
                return;
            }
        }
    }

    /// Starts the two tasks that keep the map current: `events` (when the bus can be
    /// subscribed to) and the periodic re-check.
    /// Both stop with the process (`lifecycle`).
    pub fn spawn(
        self: &Arc<Self>,
        events: Option<broadcast::Receiver<Event>>,
        lifecycle: &crate::lifecycle::Lifecycle,
    ) {
        if self.directory().is_none() {
            tracing::warn!(
                "no auth service to ask (set GOT_PROXY_AUTH or GOT_PROXY): revoked tokens are refused only through events"
            );
        }
        if let Some(mut events) = events {
            let revocations = Arc::clone(self);
            lifecycle.spawn_until_stopped(async move {
                loop {
                    match events.recv().await {
                        Ok(event) => revocations.on_event(&event).await,
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "events were missed; re-checking every user");
                            revocations.missed_events().await;
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            });
        }
        let revocations = Arc::clone(self);
        lifecycle.spawn_until_stopped(async move {
            let mut ticks = tokio::time::interval(RECHECK_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                revocations.recheck_all().await;
            }
        });
    }
}

fn forget_least_recent(users: &mut HashMap<String, Tracked>) {
    let mut last_seen: Vec<u64> = users.values().map(|tracked| tracked.last_seen).collect();
    let keep = MAX_TRACKED_USERS / 2;
    let cut_index = last_seen
        .len()
        .saturating_sub(keep)
        .min(last_seen.len().saturating_sub(1));
    let (_, cut, _) = last_seen.select_nth_unstable(cut_index);
    let cut = *cut;
    users.retain(|_, tracked| tracked.last_seen > cut);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensitive::Sensitive;
    use async_trait::async_trait;

    fn user(uid: &str, admin: bool) -> Identity {
        Identity {
            uid: uid.into(),
            admin,
            super_user: admin,
            email: String::new(),
            kind: String::new(),
        }
    }

    fn status(uid: &str, exists: bool, admin: bool, tokens_not_before: u64) -> UserStatus {
        UserStatus {
            uid: uid.into(),
            exists,
            admin,
            super_user: admin,
            tokens_not_before,
        }
    }

    #[test]
    fn unknown_users_pass_as_claimed_and_are_tracked() {
        let revocations = Revocations::new(None);
        assert_eq!(revocations.admit(user("alice", true), 100), Ok(user("alice", true)));
        assert!(revocations.tracked().contains_key("alice"));
    }

    #[test]
    fn deleted_users_and_old_tokens_are_refused_and_demotion_drops_the_claim() {
        let revocations = Revocations::new(None);
        revocations.apply([
            status("gone", false, false, 0),
            status("changed", true, true, 500),
            status("demoted", true, false, 0),
        ]);
        assert_eq!(revocations.admit(user("gone", false), 1000), Err(Revoked::Deleted));
        assert_eq!(revocations.admit(user("changed", true), 500), Err(Revoked::Revoked));
        assert_eq!(revocations.admit(user("changed", true), 501), Ok(user("changed", true)));
        assert_eq!(
            revocations.admit(user("demoted", true), 1000),
            Ok(user("demoted", false))
        );
        // Promotion needs a new token: an old non-admin token does not become admin.
        revocations.apply([status("promoted", true, true, 0)]);
        assert_eq!(
            revocations.admit(user("promoted", false), 1000),
            Ok(user("promoted", false))
        );
    }

    struct Directory(Mutex<Vec<UserStatus>>);

    #[async_trait]
    impl ApiKeyResolver for Directory {
        async fn resolve_api_key(&self, _: &Sensitive<String>) -> Result<Option<Identity>, ApiError> {
            Ok(None)
        }
        async fn user_statuses(&self, uids: &[String]) -> Result<Vec<UserStatus>, ApiError> {
            let known = self.0.lock().unwrap().clone();
            Ok(uids
                .iter()
                .map(|uid| {
                    known
                        .iter()
                        .find(|status| &status.uid == uid)
                        .cloned()
                        .unwrap_or_else(|| UserStatus::deleted(uid))
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn events_and_rechecks_ask_the_directory() {
        let directory = Arc::new(Directory(Mutex::new(vec![status("bob", true, true, 0)])));
        let revocations = Revocations::new(Some(directory.clone()));
        assert_eq!(revocations.admit(user("bob", true), 10), Ok(user("bob", true)));
        // A lost event: the periodic re-check finds the demotion.
        *directory.0.lock().unwrap() = vec![status("bob", true, false, 0)];
        revocations.recheck_all().await;
        assert_eq!(revocations.admit(user("bob", true), 10), Ok(user("bob", false)));
        // A delivered event: applied at once.
        *directory.0.lock().unwrap() = vec![status("bob", true, false, 20)];
        revocations.on_event(&Event::new("user_password", "bob", "")).await;
        assert_eq!(revocations.admit(user("bob", false), 20), Err(Revoked::Revoked));
        // A deletion applies even when auth cannot be asked.
        let offline = Revocations::new(None);
        offline.on_event(&Event::new("user_delete", "bob", "")).await;
        assert_eq!(offline.admit(user("bob", false), 30), Err(Revoked::Deleted));
        // Events of other kinds are ignored.
        offline.on_event(&Event::new("ns_update", "carol", "")).await;
        assert!(!offline.tracked().contains_key("carol"));
        // confirm() asks now.
        *directory.0.lock().unwrap() = vec![status("bob", true, false, 20)];
        assert_eq!(
            revocations.confirm(user("bob", true)).await.unwrap(),
            user("bob", false)
        );
        *directory.0.lock().unwrap() = vec![status("bob", false, false, 0)];
        assert!(matches!(
            revocations.confirm(user("bob", true)).await,
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn a_user_update_event_demotes_before_auth_is_asked_and_never_promotes() {
        // No directory: only what the event says can change anything.
        let revocations = Revocations::new(None);
        revocations.apply([status("bob", true, true, 0), status("carol", true, false, 0)]);
        let view = |admin: bool| {
            format!(r#"{{"uid":"x","email":"","admin":{admin},"super":{admin},"kind":"","pub_key":"","logged":true}}"#)
        };
        revocations
            .on_event(&Event::new("user_update", "bob", view(false)))
            .await;
        assert_eq!(revocations.admit(user("bob", true), 10), Ok(user("bob", false)));
        revocations
            .on_event(&Event::new("user_update", "carol", view(true)))
            .await;
        assert_eq!(revocations.admit(user("carol", true), 10), Ok(user("carol", false)));
        // Data that is not a user view (an original service's event) changes nothing.
        revocations.apply([status("dave", true, true, 0)]);
        revocations
            .on_event(&Event::new("user_update", "dave", "not json"))
            .await;
        assert_eq!(revocations.admit(user("dave", true), 10), Ok(user("dave", true)));
    }

    #[test]
    fn the_map_is_bounded() {
        let revocations = Revocations::new(None);
        {
            let mut users = revocations.tracked();
            for i in 0..MAX_TRACKED_USERS {
                users.insert(
                    format!("u{i}"),
                    Tracked {
                        status: None,
                        last_seen: i as u64,
                    },
                );
            }
        }
        revocations.admit(user("newcomer", false), 1).unwrap();
        let users = revocations.tracked();
        assert!(users.len() <= MAX_TRACKED_USERS / 2 + 1, "{}", users.len());
        assert!(users.contains_key("newcomer"));
        assert!(users.contains_key(&format!("u{}", MAX_TRACKED_USERS - 1)));
    }
}
