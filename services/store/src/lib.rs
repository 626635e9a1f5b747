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
use goterra_core::namespaces::NamespaceRule;
use goterra_core::{Platform, ServiceSpec};
use goterra_db::Migration;
use namespaces::HttpNamespaces;
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
    /// Deploy over `GOT_PROXY`, for when deploy does not run in this process.
    pub remote_namespaces: Option<Arc<dyn NamespaceRule>>,
    pub platform: Platform,
}

impl Store {
    /// Picks the backend (Redis when configured, else embedded) and the namespace rule
    /// (deploy's, in this process or over `GOT_PROXY`); migrates namespace bindings made by
    /// name in earlier versions to ids when deploy runs in this process.
    pub async fn open(platform: Platform) -> anyhow::Result<Arc<Self>> {
        let limits = limits_of(&platform.config);
        let stop = platform.lifecycle.stopping();
        let backend: Arc<dyn StoreBackend> = match platform.config.redis_url() {
            Some(url) => {
                Arc::new(RedisBackend::connect_with_stop(&url, &platform.config.redis.prefix, limits, &stop).await?)
            }
            None => Arc::new(EmbeddedBackend::with_stop(platform.db.clone(), limits, &stop)),
        };
        let remote_namespaces: Option<Arc<dyn NamespaceRule>> = match &platform.config.proxy {
            Some(proxy) => Some(Arc::new(HttpNamespaces::new(proxy)?)),
            None => None,
        };
        let store = Arc::new(Self {
            backend,
            remote_namespaces,
            platform,
        });
        store.bind_legacy_namespaces().await?;
        tracing::info!(
            backend = store.backend.name(),
            namespaces = store.namespace_rule().is_some(),
            "store ready"
        );
        Ok(store)
    }

    /// Deploy's namespace rule: in this process when deploy runs here, else over HTTP.
    pub fn namespace_rule(&self) -> Option<Arc<dyn NamespaceRule>> {
        self.platform
            .namespace_rule
            .get()
            .cloned()
            .or_else(|| self.remote_namespaces.clone())
    }

    /// Rewrites bindings by name (earlier versions) to the id of the namespace holding that
    /// name now, once, when deploy runs in this process (it is built before the store).
    async fn bind_legacy_namespaces(&self) -> anyhow::Result<()> {
        let Some(rule) = self.platform.namespace_rule.get().cloned() else {
            return Ok(());
        };
        for legacy in self.backend.legacy_namespaces().await? {
            let id = rule.id_of(&legacy).await.map_err(|err| anyhow::anyhow!("{err}"))?;
            self.backend.bind_legacy_namespace(&legacy, id.as_deref()).await?;
            tracing::info!(namespace = %legacy, bound = id.is_some(), "store deployments bound to a namespace id");
        }
        Ok(())
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
