//! Deploy's namespace rule, registered in the platform for the other services of the process
//! (the store binds deployments to namespaces and asks it; see `goterra_core::namespaces`).
//! It is the rule of deploy's own routes ([`crate::access`]), not a copy of it.

use crate::access;
use crate::state::AppState;
use async_trait::async_trait;
use axum::http::HeaderMap;
use goterra_core::namespaces::NamespaceRule;
use goterra_core::{ApiError, Identity};

pub struct DeployNamespaceRule {
    state: AppState,
}

impl DeployNamespaceRule {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[async_trait]
impl NamespaceRule for DeployNamespaceRule {
    async fn usable_id(&self, key: &str, caller: &Identity, _headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        match access::load_by_id_or_name(&self.state, key).await {
            Ok(namespace) => Ok(namespace.can_use(caller).then_some(namespace.id)),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }

    async fn may_use(&self, id: &str, caller: &Identity, _headers: &HeaderMap) -> Result<bool, ApiError> {
        Ok(access::load_optional(&self.state, id)
            .await?
            .is_some_and(|namespace| namespace.can_use(caller)))
    }

    async fn id_of(&self, key: &str) -> Result<Option<String>, ApiError> {
        match access::load_by_id_or_name(&self.state, key).await {
            Ok(namespace) => Ok(Some(namespace.id)),
            Err(ApiError::NotFound(_)) => Ok(None),
            Err(err) => Err(err),
        }
    }
}
