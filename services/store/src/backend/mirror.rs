//! The embedded backend's copy in memory of every live deployment, on SQLite: reads are served
//! from it without a database round trip, and writes are decided against it before they are
//! committed. SQLite is the durable copy, read once at startup; only this process writes it
//! (one SQLite file, one process), and every change goes through the backend's write turn, so
//! the copy cannot drift. Like Redis, it holds the live data in memory; expired deployments
//! are invisible at once and leave it with the periodic sweep.

use super::{Limits, Metadata, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One deployment as committed.
#[derive(Clone, Debug)]
pub struct MirroredDeployment {
    pub metadata: Metadata,
    pub expires_at_ms: i64,
    pub values: HashMap<String, String>,
}

impl MirroredDeployment {
    fn live_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms
    }
}

#[derive(Default)]
pub struct Mirror {
    deployments: RwLock<HashMap<String, MirroredDeployment>>,
}

impl Mirror {
    pub fn new(deployments: HashMap<String, MirroredDeployment>) -> Self {
        Self {
            deployments: RwLock::new(deployments),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, MirroredDeployment>> {
        // Every change is applied whole under the lock; a panic elsewhere cannot leave it half done.
        self.deployments.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes; callers hold the backend's write turn and have committed the change already.
    pub fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, MirroredDeployment>> {
        self.deployments.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn metadata(&self, id: &str, now_ms: i64) -> Option<Metadata> {
        self.read()
            .get(id)
            .filter(|deployment| deployment.live_at(now_ms))
            .map(|deployment| deployment.metadata.clone())
    }

    pub fn get(&self, id: &str, key: &str, now_ms: i64) -> Result<Option<String>, StoreError> {
        let deployments = self.read();
        let deployment = deployments
            .get(id)
            .filter(|deployment| deployment.live_at(now_ms))
            .ok_or(StoreError::DeploymentNotFound)?;
        Ok(deployment.values.get(key).cloned())
    }

    pub fn get_all(&self, id: &str, prefix: Option<&str>, now_ms: i64) -> Result<BTreeMap<String, String>, StoreError> {
        let deployments = self.read();
        let deployment = deployments
            .get(id)
            .filter(|deployment| deployment.live_at(now_ms))
            .ok_or(StoreError::DeploymentNotFound)?;
        Ok(deployment
            .values
            .iter()
            .filter(|(name, _)| prefix.is_none_or(|prefix| name.starts_with(prefix)))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect())
    }

    /// Removes the deployments expired at `now_ms`.
    pub fn sweep(&self, now_ms: i64) {
        self.write().retain(|_, deployment| deployment.live_at(now_ms));
    }
}

/// What one batch of writes does to the deployments it touches, decided against the mirror
/// before anything is committed.
pub struct Staging<'a> {
    mirror: &'a Mirror,
    now_ms: i64,
    limits: Limits,
    /// Deployment id → keys written in this batch (the last value of each) and key count.
    touched: BTreeMap<String, StagedDeployment>,
}

#[derive(Default)]
pub struct StagedDeployment {
    pub values: BTreeMap<String, String>,
    key_count: usize,
}

impl<'a> Staging<'a> {
    pub fn new(mirror: &'a Mirror, now_ms: i64, limits: Limits) -> Self {
        Self {
            mirror,
            now_ms,
            limits,
            touched: BTreeMap::new(),
        }
    }

    /// Stages one write (all its entries, or none when refused), as if the writes staged
    /// before it were committed.
    pub fn stage(&mut self, id: &str, entries: &[(String, String)]) -> Result<(), StoreError> {
        let deployments = self.mirror.read();
        let committed = deployments
            .get(id)
            .filter(|deployment| deployment.live_at(self.now_ms))
            .ok_or(StoreError::DeploymentNotFound)?;
        let staged = self.touched.get(id);
        let staged_value = |key: &String| staged.is_some_and(|staged| staged.values.contains_key(key));
        let key_count = staged.map_or(committed.values.len(), |staged| staged.key_count);
        let new_keys = entries
            .iter()
            .filter(|(key, _)| !staged_value(key) && !committed.values.contains_key(key))
            .count();
        if key_count + new_keys > self.limits.max_keys {
            // Refused whole: not even the deployment's expiry is refreshed.
            return Err(StoreError::TooManyKeys(self.limits.max_keys));
        }
        let staged = self.touched.entry(id.to_string()).or_default();
        staged.key_count = key_count + new_keys;
        for (key, value) in entries {
            staged.values.insert(key.clone(), value.clone());
        }
        Ok(())
    }

    /// The deployments touched, with their final values in this batch.
    pub fn touched(&self) -> impl Iterator<Item = (&String, &StagedDeployment)> {
        self.touched.iter()
    }

    /// Applies the staged writes to the mirror once they are committed; `updated_at` in unix
    /// seconds, `expires_at_ms` as written to the database.
    pub fn apply(self, updated_at: i64, expires_at_ms: i64) {
        let mut deployments = self.mirror.write();
        for (id, staged) in self.touched {
            // Present: deletions and sweeps take the same write turn as this batch.
            if let Some(deployment) = deployments.get_mut(&id) {
                deployment.metadata.updated_at = updated_at;
                deployment.expires_at_ms = expires_at_ms;
                deployment.values.extend(staged.values);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::NamespaceBinding;
    use std::time::Duration;

    fn mirror_with(id: &str, keys: &[&str]) -> Mirror {
        let deployment = MirroredDeployment {
            metadata: Metadata {
                user: "alice".into(),
                namespace: NamespaceBinding::None,
                created_at: 1,
                updated_at: 1,
            },
            expires_at_ms: 1_000,
            values: keys.iter().map(|k| (k.to_string(), "old".to_string())).collect(),
        };
        Mirror::new(HashMap::from([(id.to_string(), deployment)]))
    }

    fn limits(max_keys: usize) -> Limits {
        Limits {
            max_keys,
            ttl: Duration::from_secs(60),
        }
    }

    fn entries(keys: &[&str]) -> Vec<(String, String)> {
        keys.iter().map(|k| (k.to_string(), "new".to_string())).collect()
    }

    #[test]
    fn a_batch_counts_the_keys_of_its_earlier_writes() {
        let mirror = mirror_with("d", &["a"]);
        let mut staging = Staging::new(&mirror, 10, limits(3));
        assert!(staging.stage("d", &entries(&["b"])).is_ok());
        assert!(
            staging.stage("d", &entries(&["a", "b"])).is_ok(),
            "overwrites add no key"
        );
        assert!(matches!(
            staging.stage("d", &entries(&["c", "x"])),
            Err(StoreError::TooManyKeys(3))
        ));
        assert!(
            staging.stage("d", &entries(&["c"])).is_ok(),
            "the refused write staged nothing"
        );
        assert!(matches!(
            staging.stage("gone", &entries(&["a"])),
            Err(StoreError::DeploymentNotFound)
        ));
        staging.apply(2, 5_000);
        let all = mirror.get_all("d", None, 10).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all["a"], "new");
        assert_eq!(mirror.metadata("d", 4_999).map(|m| m.updated_at), Some(2));
    }

    #[test]
    fn a_refused_write_touches_nothing() {
        let mirror = mirror_with("d", &["a"]);
        let mut staging = Staging::new(&mirror, 10, limits(1));
        assert!(matches!(
            staging.stage("d", &entries(&["b"])),
            Err(StoreError::TooManyKeys(1))
        ));
        assert_eq!(staging.touched().count(), 0, "not even the expiry is refreshed");
    }

    #[test]
    fn expired_deployments_are_invisible_then_swept() {
        let mirror = mirror_with("d", &["a"]);
        assert_eq!(mirror.get("d", "a", 999).unwrap().as_deref(), Some("old"));
        assert!(matches!(
            mirror.get("d", "a", 1_000),
            Err(StoreError::DeploymentNotFound)
        ));
        assert!(matches!(
            Staging::new(&mirror, 1_000, limits(10)).stage("d", &entries(&["b"])),
            Err(StoreError::DeploymentNotFound)
        ));
        mirror.sweep(1_000);
        assert!(mirror.metadata("d", 0).is_none());
    }
}
