//! What a service needs from its host process. The all-in-one `goterra up` builds one
//! [`Platform`] with embedded backends and hands it to every service; a service running alone
//! builds its own with production backends. Handlers never know which.

use crate::auth::{ApiKeyResolver, Authenticator};
use crate::config::Config;
use crate::events::EventBus;
use crate::lifecycle::Lifecycle;
use crate::namespaces::NamespaceRuleSlot;
use crate::token::TokenCodec;
use goterra_db::Db;
use std::sync::Arc;

#[derive(Clone)]
pub struct Platform {
    pub config: Arc<Config>,
    pub db: Db,
    pub tokens: Arc<TokenCodec>,
    pub authenticator: Arc<Authenticator>,
    pub events: Arc<dyn EventBus>,
    /// Deploy's namespace rule, when deploy runs in this process.
    pub namespace_rule: NamespaceRuleSlot,
    /// Figures the services compute when `/<prefix>/metrics` is scraped (runs by status...).
    pub metric_probes: crate::ops::MetricProbes,
    /// The process's life: background tasks stop with it (see [`Lifecycle`]).
    pub lifecycle: Lifecycle,
    /// Whether the other services run in this process too.
    pub topology: crate::service::Topology,
}

impl Platform {
    pub fn new(
        config: Config,
        db: Db,
        api_keys: Option<Arc<dyn ApiKeyResolver>>,
        events: Arc<dyn EventBus>,
        topology: crate::service::Topology,
    ) -> anyhow::Result<Self> {
        let tokens = Arc::new(TokenCodec::new(&config.fernet, config.token_ttl)?);
        let authenticator = Arc::new(Authenticator::new(tokens.clone(), api_keys));
        Ok(Self {
            config: Arc::new(config),
            db,
            tokens,
            authenticator,
            events,
            namespace_rule: NamespaceRuleSlot::default(),
            metric_probes: crate::ops::MetricProbes::default(),
            lifecycle: Lifecycle::new(),
            topology,
        })
    }
}
