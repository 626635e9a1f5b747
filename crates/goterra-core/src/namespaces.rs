//! The namespace membership rule, asked across services. Namespaces belong to deploy, which
//! alone says who may use one (its owners and members, and admins); the store binds
//! deployments to namespaces and asks this rule instead of reading deploy's tables. In
//! `goterra up` deploy registers its rule in the platform ([`NamespaceRuleSlot`]); a service
//! running alone asks deploy over HTTP (the store's `HttpNamespaces`).

use crate::error::ApiError;
use crate::identity::Identity;
use async_trait::async_trait;
use axum::http::HeaderMap;
use std::sync::{Arc, OnceLock};

#[async_trait]
pub trait NamespaceRule: Send + Sync {
    /// The id of the namespace that `key` names (an id first, else a name) when `caller` may
    /// use it; `None` when there is no such namespace or the caller may not use it. For
    /// binding something to a namespace once, at creation. `headers` are the caller's, for
    /// implementations that ask on its behalf.
    async fn usable_id(&self, key: &str, caller: &Identity, headers: &HeaderMap) -> Result<Option<String>, ApiError>;

    /// Whether `caller` may use the namespace whose id is `id` (never a name: a namespace
    /// named like another's id is not that namespace).
    async fn may_use(&self, id: &str, caller: &Identity, headers: &HeaderMap) -> Result<bool, ApiError>;

    /// The id of the namespace that `key` names, whoever asks (migrating bindings made by
    /// name). Only implementations inside the platform can answer; others answer `None`.
    async fn id_of(&self, key: &str) -> Result<Option<String>, ApiError>;
}

/// Where deploy registers its rule for the other services of the same process.
pub type NamespaceRuleSlot = Arc<OnceLock<Arc<dyn NamespaceRule>>>;
