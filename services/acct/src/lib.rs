//! The acct service: usage and cost of the resources runs create, per namespace, run and
//! user, computed from the run lifecycle events deploy publishes and each run's Terraform
//! state (read through deploy's service routes). See `docs/acct.md`.

pub mod api;
pub mod billable;
pub mod config;
pub mod deploy;
pub mod ledger;
pub mod listen;
pub mod openapi;
pub mod report;
pub mod routes;
pub mod store;

use axum::Router;
use axum::routing::get;
use config::AcctConfig;
use deploy::{HttpDeploy, RunSource};
use goterra_core::{Platform, ServiceSpec};
use goterra_db::Migration;
use ledger::Accountant;
use routes::AcctState;
use std::sync::Arc;
use store::AcctStore;
use tokio_util::sync::CancellationToken;

pub const MIGRATIONS: &[Migration] = store::MIGRATIONS;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "acct",
        migrations: MIGRATIONS,
        router: |platform| Box::pin(router(platform)),
        local_api_keys: None,
    }
}

/// Where acct reaches deploy: `GOT_DEPLOY_URL`, else `GOT_PROXY`, else the platform's URL.
pub fn deploy_url(platform: &Platform) -> String {
    std::env::var("GOT_DEPLOY_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .or_else(|| platform.config.proxy.clone().filter(|url| !url.trim().is_empty()))
        .unwrap_or_else(|| platform.config.public_url())
}

pub async fn router(platform: Platform) -> anyhow::Result<Router> {
    let config = AcctConfig::load(&platform.config.acct, |name| std::env::var(name).ok())?;
    let source: Arc<dyn RunSource> = Arc::new(HttpDeploy::new(&deploy_url(&platform), platform.tokens.clone())?);
    // The listeners stop with the process.
    let shutdown = platform.lifecycle.stopping();
    let (router, _accountant) = router_with(platform, config, source, shutdown).await?;
    Ok(router)
}

/// The router over a given config and deploy, with its listeners running until `shutdown`
/// (tests, embedding). Open intervals whose price changed are split first.
pub async fn router_with(
    platform: Platform,
    config: AcctConfig,
    source: Arc<dyn RunSource>,
    shutdown: CancellationToken,
) -> anyhow::Result<(Router, Arc<Accountant>)> {
    let billed = config.billed_types();
    if billed.is_empty() {
        tracing::info!("acct bills no resource type: set `acct.resources` and `acct.billing` in the config");
    } else {
        tracing::info!(types = ?billed, "acct bills these resource types");
    }
    let config = Arc::new(config);
    let accountant = Arc::new(Accountant::new(
        AcctStore::new(platform.db.clone()),
        source,
        config.clone(),
    ));
    accountant.reprice(ledger::now()).await?;
    listen::start(&platform, accountant.clone(), &config, shutdown);
    Ok((routes(platform, accountant.clone()), accountant))
}

pub fn routes(platform: Platform, accountant: Arc<Accountant>) -> Router {
    let state = AcctState {
        accountant,
        authenticator: platform.authenticator.clone(),
    };
    Router::new()
        .route("/acct", get(goterra_core::http::health))
        .route("/acct/openapi.json", get(openapi::serve))
        .route("/acct/resources", get(routes::resources_all))
        .route("/acct/resources/ns/{id}", get(routes::resources_namespace))
        .route("/acct/ns/{id}", get(routes::namespace_total))
        .route("/acct/ns/{id}/from/{from}", get(routes::namespace_from))
        .route("/acct/ns/{id}/from/{from}/to/{to}", get(routes::namespace_from_to))
        .route("/acct/v2/ns/{id}", get(routes::namespace_usage))
        .route("/acct/v2/ns/{id}/run/{run}", get(routes::run_usage))
        .route("/acct/v2/user/{uid}", get(routes::user_usage))
        .with_state(state)
}
