//! Deploy's namespace rule, registered in the platform for the other services of the process
//! (the store binds deployments to namespaces and asks it; see `goterra_core::namespaces`).
//! It is the rule of deploy's own routes ([`NamespaceRecord::can_use`], read through
//! [`crate::storage::namespaces::NamespaceRepo`]), not a copy of it.

use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::namespaces::NamespaceRecord;
use async_trait::async_trait;
use axum::http::HeaderMap;
use goterra_client::ids::NamespaceId;
use goterra_core::namespaces::NamespaceRule;
use goterra_core::{ApiError, Identity};

pub struct DeployNamespaceRule {
    state: AppState,
}

impl DeployNamespaceRule {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// The namespace `key` names (an id first, else a name), `None` when there is none.
    async fn named(&self, key: &str) -> Result<Option<NamespaceRecord>, ApiError> {
        match self.state.namespaces().load_by_id_or_name(key).await {
            Ok(namespace) => Ok(Some(namespace)),
            Err(StorageError::Missing(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

#[async_trait]
impl NamespaceRule for DeployNamespaceRule {
    async fn usable_id(&self, key: &str, caller: &Identity, _headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        Ok(self
            .named(key)
            .await?
            .and_then(|namespace| namespace.can_use(caller).then_some(namespace.id.into_string())))
    }

    async fn may_use(&self, id: &str, caller: &Identity, _headers: &HeaderMap) -> Result<bool, ApiError> {
        Ok(self
            .state
            .namespaces()
            .find(&NamespaceId::from_trusted(id))
            .await?
            .is_some_and(|namespace| namespace.can_use(caller)))
    }

    async fn id_of(&self, key: &str) -> Result<Option<String>, ApiError> {
        Ok(self.named(key).await?.map(|namespace| namespace.id.into_string()))
    }
}
