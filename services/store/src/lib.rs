//! The store service: per-deployment key/value data that VMs of one deployment exchange at
//! boot, deployment-scoped tokens, and reads that wait on the server for a key to be written.
//!
//! Storage is behind [`backend::StoreBackend`]: Redis when `GOT_REDIS_URL` is set (several
//! replicas can share it), else the platform database (durable in `goterra up`'s data dir).

pub mod backend;
pub mod keys;
pub mod namespaces;
pub mod openapi;
pub mod routes;
pub mod waiting;

use axum::Router;
use backend::{EmbeddedBackend, Limits, RedisBackend, StoreBackend};
use goterra_core::{Platform, ServiceSpec};
use goterra_db::Migration;
use namespaces::{HttpNamespaces, NamespaceAccess, SqlNamespaces};
use std::sync::Arc;
use std::time::Duration;

pub const MIGRATIONS: &[Migration] = backend::embedded::MIGRATIONS;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "store",
        migrations: MIGRATIONS,
        router: |platform| Box::pin(router(platform)),
        local_api_keys: None,
    }
}

pub async fn router(platform: Platform) -> anyhow::Result<Router> {
    Ok(routes::router(Store::open(platform).await?))
}

/// The service's state, shared by its handlers.
pub struct Store {
    pub backend: Arc<dyn StoreBackend>,
    pub namespaces: Option<Arc<dyn NamespaceAccess>>,
    pub platform: Platform,
}

impl Store {
    /// Picks the backend (Redis when configured, else embedded) and the namespace checker
    /// (deploy's tables when present in the database, else deploy over `GOT_PROXY`).
    pub async fn open(platform: Platform) -> anyhow::Result<Arc<Self>> {
        let limits = limits_of(&platform.config);
        let backend: Arc<dyn StoreBackend> = match platform.config.redis_url() {
            Some(url) => Arc::new(RedisBackend::connect(&url, &platform.config.redis.prefix, limits).await?),
            None => Arc::new(EmbeddedBackend::new(platform.db.clone(), limits)),
        };
        let namespaces: Option<Arc<dyn NamespaceAccess>> = match SqlNamespaces::detect(&platform.db).await {
            Some(sql) => Some(Arc::new(sql)),
            None => match &platform.config.proxy {
                Some(proxy) => Some(Arc::new(HttpNamespaces::new(proxy)?)),
                None => None,
            },
        };
        tracing::info!(
            backend = backend.name(),
            namespaces = namespaces.is_some(),
            "store ready"
        );
        Ok(Arc::new(Self {
            backend,
            namespaces,
            platform,
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        routes::router(self.clone())
    }
}

pub fn limits_of(config: &goterra_core::Config) -> Limits {
    Limits {
        max_keys: config.store.max_keys,
        ttl: Duration::from_secs(config.store.ttl_hours.saturating_mul(3600)),
    }
}
