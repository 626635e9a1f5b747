//! The deploy service (`/deploy`): namespaces and their catalogue — endpoints and users'
//! endpoint secrets, recipes, templates, applications — and runs (see [`runs`]).
//!
//! What runs reuse: [`catalogue::fetch`] / [`catalogue::readable`] to load an application or an
//! endpoint with the access rules, [`images::chain`] (a recipe and its ancestors, usable from a
//! namespace) and [`images::base_images`], [`secrets::credentials`] (the run owner's decrypted
//! endpoint secret), [`crypto::SecretBox`] (encryption at rest for sensitive run inputs), and
//! `Kind::dependents` of `Endpoint` and `Application`, where live runs will make deletion a 409.

pub mod access;
pub mod catalogue;
pub mod crypto;
pub mod demo;
pub mod images;
pub mod inputs;
mod kinds;
pub mod membership;
pub mod migrations;
pub mod model;
pub mod namespaces;
pub mod openapi;
pub mod runs;
pub mod secrets;
pub mod session;
pub mod state;
pub mod template_policy;
pub mod validate;

use axum::Router;
use axum::routing::{any, get, post};
use catalogue::Kind;
use goterra_bus::RunQueue;
use goterra_core::{Platform, ServiceSpec};
use goterra_db::Migration;
use model::{Application, Endpoint, Recipe, Template};
use state::AppState;
use std::sync::Arc;

pub const MIGRATIONS: &[Migration] = migrations::MIGRATIONS;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "deploy",
        migrations: MIGRATIONS,
        router: |platform| Box::pin(router(platform)),
        local_api_keys: None,
    }
}

/// The six routes every catalogue kind has.
fn catalogue_routes<K: Kind>(router: Router<AppState>) -> Router<AppState> {
    use catalogue::{create, delete_one, get_one, list, list_public, update_one};
    let collection = format!("/deploy/ns/{{id}}/{}", K::SEGMENT);
    let item = format!("/deploy/ns/{{id}}/{}/{{{}}}", K::SEGMENT, K::PARAM);
    router
        .route(&collection, get(list::<K>).post(create::<K>))
        .route(&item, get(get_one::<K>).put(update_one::<K>).delete(delete_one::<K>))
        .route(&format!("/deploy/{}", K::MANY), get(list_public::<K>))
}

pub async fn router(platform: Platform) -> anyhow::Result<Router> {
    let queue = goterra_bus::platform_run_queue(&platform);
    tracing::info!(queue = %queue.describe(), "runs are queued here");
    router_with(platform, queue, runs::RunOptions::from_env()?).await
}

/// The router over a given run queue and run limits (tests, embedding).
pub async fn router_with(
    platform: Platform,
    queue: Arc<dyn RunQueue>,
    run_options: runs::RunOptions,
) -> anyhow::Result<Router> {
    let secrets = Arc::new(crypto::SecretBox::from_config(&platform.config)?);
    runs::sweep::spawn(platform.db.clone(), queue.clone(), run_options.clone());
    let state = AppState {
        platform,
        secrets,
        queue,
        runs: run_options,
    };
    // The store of this process asks deploy's rule (set once per platform).
    let _ = state
        .platform
        .namespace_rule
        .set(Arc::new(membership::DeployNamespaceRule::new(state.clone())));
    let mut router = Router::new()
        .route("/deploy", get(goterra_core::http::health))
        .route("/deploy/openapi.json", get(openapi::serve))
        .route("/deploy/session/bind", post(session::bind))
        .route("/deploy/ns", get(namespaces::list).post(namespaces::create))
        .route(
            "/deploy/ns/{id}",
            get(namespaces::get_one)
                .put(namespaces::update)
                .delete(namespaces::delete),
        )
        .route(
            "/deploy/ns/{id}/endpoint/{endpoint}/secret",
            get(secrets::get_secret)
                .put(secrets::put_secret)
                .delete(secrets::delete_secret),
        )
        .route(
            "/deploy/ns/{id}/endpoint/{endpoint}/defaults",
            get(secrets::get_defaults).put(secrets::put_defaults),
        )
        .route("/deploy/ns/{id}/app/{application}/inputs", get(inputs::app_inputs))
        .route("/deploy/run", get(runs::routes::list_mine))
        .route("/deploy/ns/{id}/run", get(runs::routes::list_namespace))
        .route(
            "/deploy/ns/{id}/run/{run}",
            get(runs::routes::get_one)
                .post(runs::routes::create)
                .delete(runs::routes::destroy),
        )
        .route("/deploy/ns/{id}/run/{run}/terraform", post(runs::routes::preview))
        .route("/deploy/ns/{id}/run/{run}/cancel", post(runs::routes::cancel))
        .route("/deploy/ns/{id}/run/{run}/log", get(runs::routes::log))
        .route("/deploy/agent/run/{id}/spec", get(runs::agent::spec))
        .route("/deploy/agent/run/{id}/started", post(runs::agent::started))
        .route("/deploy/agent/run/{id}/log", post(runs::agent::log))
        .route("/deploy/agent/run/{id}/heartbeat", post(runs::agent::heartbeat))
        .route("/deploy/agent/run/{id}/finished", post(runs::agent::finished))
        .route("/deploy/agent/run/{id}/state", any(runs::tfstate::endpoint));
    router = catalogue_routes::<Recipe>(router);
    router = catalogue_routes::<Template>(router);
    router = catalogue_routes::<Application>(router);
    router = catalogue_routes::<Endpoint>(router);
    Ok(router.with_state(state))
}
