//! Where deployments live. Two implementations pass the same behaviour suite
//! (`tests/backend_suite.rs`): Redis for production and several replicas, and an embedded one
//! in the platform database for `goterra up`.

pub mod embedded;
mod mirror;
pub mod redis;

use crate::waiting::WaitHub;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use self::embedded::EmbeddedBackend;
pub use self::redis::RedisBackend;

/// The namespace whose members may use a deployment besides its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceBinding {
    /// Created without `X-API-NS`.
    None,
    /// The id of the namespace named by `X-API-NS` at creation (resolved once, then).
    Id(String),
    /// What `X-API-NS` held, stored by earlier versions (a name or an id). Such bindings are
    /// migrated to ids at startup when deploy runs in the process; otherwise they follow the
    /// old id-or-name rule until the deployment expires.
    Legacy(String),
}

/// Who created a deployment and when. Kept apart from the user keys, so no PUT can change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The owner's uid.
    pub user: String,
    /// The namespace whose members may also use the deployment.
    pub namespace: NamespaceBinding,
    /// Creation time, unix seconds.
    pub created_at: i64,
    /// Last write, unix seconds.
    pub updated_at: i64,
}

/// Limits every backend enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most keys in one deployment.
    pub max_keys: usize,
    /// How long a deployment lives after its creation or last write.
    pub ttl: Duration,
}

impl Limits {
    pub fn ttl_millis(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("deployment not found")]
    DeploymentNotFound,
    #[error("a deployment holds at most {0} keys")]
    TooManyKeys(usize),
    #[error("store backend failure")]
    Backend(#[source] anyhow::Error),
}

impl From<StoreError> for goterra_core::ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::DeploymentNotFound => Self::NotFound("deployment not found".into()),
            StoreError::TooManyKeys(max) => {
                Self::TooLarge(format!("too many keys: a deployment holds at most {max} keys"))
            }
            StoreError::Backend(cause) => Self::Internal(cause),
        }
    }
}

/// Storage of deployments and their keys. Every method on an unknown or expired deployment
/// fails with [`StoreError::DeploymentNotFound`], except `metadata` (`None`) and `delete`
/// (`false`). Writes wake the waiters of the keys they touch, through [`StoreBackend::hub`]
/// (and, for Redis, on every replica).
#[async_trait]
pub trait StoreBackend: Send + Sync {
    fn name(&self) -> &'static str;

    async fn create(&self, id: &str, metadata: &Metadata) -> Result<(), StoreError>;

    async fn metadata(&self, id: &str) -> Result<Option<Metadata>, StoreError>;

    /// Sets every entry at once, or none of them (key limit reached). Refreshes the TTL.
    async fn put(&self, id: &str, entries: &[(String, String)]) -> Result<(), StoreError>;

    async fn get(&self, id: &str, key: &str) -> Result<Option<String>, StoreError>;

    /// User keys whose name starts with `prefix` (all of them without one).
    async fn get_all(&self, id: &str, prefix: Option<&str>) -> Result<BTreeMap<String, String>, StoreError>;

    /// Deletes a deployment and its keys; `false` when it did not exist.
    async fn delete(&self, id: &str) -> Result<bool, StoreError>;

    /// The distinct [`NamespaceBinding::Legacy`] values of live deployments.
    async fn legacy_namespaces(&self) -> Result<Vec<String>, StoreError>;

    /// Turns every `Legacy(legacy)` binding into `Id(id)`, or into no binding when the
    /// namespace no longer exists (`None`).
    async fn bind_legacy_namespace(&self, legacy: &str, id: Option<&str>) -> Result<(), StoreError>;

    /// The waiters of this process.
    fn hub(&self) -> &Arc<WaitHub>;
}

/// Entries with duplicate keys collapsed, the last one winning (as successive writes would).
pub(crate) fn dedup_entries(entries: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut last: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, value) in entries {
        last.insert(key, value);
    }
    last.into_iter().collect()
}

pub(crate) fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

pub(crate) fn backend_error(err: impl Into<anyhow::Error>) -> StoreError {
    StoreError::Backend(err.into())
}
