//! The deploy service (`/deploy`): namespaces and their catalogue — endpoints and users'
//! endpoint secrets, recipes, templates, applications — and runs (see [`runs`]).
//!
//! Where things are, from a route to its test:
//! - [`routes`] below is the route table: each path and method names its handler;
//! - handlers check access ([`access`]: the namespace membership rule, applied to requests) and
//!   input ([`validate`], each catalogue kind's `Kind::validate` in `kinds/`), then call one
//!   repository of [`storage`] — the only place with SQL — through [`state::AppState`]
//!   (`state.namespaces()`, `state.catalogue::<K>()`, `state.run_repo()`...);
//! - storage errors become HTTP answers in one place (`http_errors.rs`);
//! - the tests are under `tests/`, one file per area, each case run on SQLite and PostgreSQL.

pub mod access;
pub mod app_recipes;
pub mod catalogue;
pub mod crypto;
pub mod demo;
mod http_errors;
pub mod images;
pub mod inputs;
mod kinds;
pub mod membership;
pub mod migrations;
pub mod model;
pub mod namespaces;
pub mod openapi;
pub mod run_options;
pub mod runs;
pub mod secrets;
pub mod service_routes;
pub mod session;
pub mod state;
pub mod storage;
pub mod template_policy;
pub mod validate;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};
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

/// One route of the service: a method (`None`: any, for Terraform's `LOCK`/`UNLOCK`), a path and
/// its handler. The router is built from [`routes`], and the OpenAPI test checks the same list.
pub struct Route {
    pub method: Option<Method>,
    pub path: String,
    handler: MethodRouter<AppState>,
}

impl Route {
    fn new(method: Option<Method>, path: impl Into<String>, handler: MethodRouter<AppState>) -> Self {
        Self {
            method,
            path: path.into(),
            handler,
        }
    }

    fn get<H: Handler<T, AppState>, T: 'static>(path: impl Into<String>, handler: H) -> Self {
        Self::new(Some(Method::GET), path, routing::get(handler))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(path: impl Into<String>, handler: H) -> Self {
        Self::new(Some(Method::POST), path, routing::post(handler))
    }

    fn put<H: Handler<T, AppState>, T: 'static>(path: impl Into<String>, handler: H) -> Self {
        Self::new(Some(Method::PUT), path, routing::put(handler))
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(path: impl Into<String>, handler: H) -> Self {
        Self::new(Some(Method::DELETE), path, routing::delete(handler))
    }

    fn any<H: Handler<T, AppState>, T: 'static>(path: impl Into<String>, handler: H) -> Self {
        Self::new(None, path, routing::any(handler))
    }
}

/// The route table: every route of deploy, with its handler. Storage is behind the handlers, in
/// [`storage`] (one repository per table group); tests are under `tests/`, one file per area
/// (`namespaces.rs`, `catalogue.rs`, `endpoints.rs`, `runs.rs`, `permissions.rs`...).
pub fn routes() -> Vec<Route> {
    use runs::{agent, routes as run, tfstate};
    let mut routes = vec![
        Route::get("/deploy", goterra_core::http::health),
        Route::get("/deploy/openapi.json", openapi::serve),
        Route::post("/deploy/session/bind", session::bind),
        // Namespaces
        Route::get("/deploy/ns", namespaces::list),
        Route::post("/deploy/ns", namespaces::create),
        Route::get("/deploy/ns/{id}", namespaces::get_one),
        Route::put("/deploy/ns/{id}", namespaces::update),
        Route::delete("/deploy/ns/{id}", namespaces::delete),
        // A user's credentials and suggested values for an endpoint
        Route::get("/deploy/ns/{id}/endpoint/{endpoint}/secret", secrets::get_secret),
        Route::put("/deploy/ns/{id}/endpoint/{endpoint}/secret", secrets::put_secret),
        Route::delete("/deploy/ns/{id}/endpoint/{endpoint}/secret", secrets::delete_secret),
        Route::get("/deploy/ns/{id}/endpoint/{endpoint}/defaults", secrets::get_defaults),
        Route::put("/deploy/ns/{id}/endpoint/{endpoint}/defaults", secrets::put_defaults),
        Route::get("/deploy/ns/{id}/app/{application}/inputs", inputs::app_inputs),
        // Runs, for users
        Route::get("/deploy/run", run::list_mine),
        Route::get("/deploy/ns/{id}/run", run::list_namespace),
        Route::get("/deploy/ns/{id}/run/{run}", run::get_one),
        Route::post("/deploy/ns/{id}/run/{run}", run::create),
        Route::delete("/deploy/ns/{id}/run/{run}", run::destroy),
        Route::post("/deploy/ns/{id}/run/{run}/terraform", run::preview),
        Route::post("/deploy/ns/{id}/run/{run}/cancel", run::cancel),
        Route::get("/deploy/ns/{id}/run/{run}/log", run::log),
        // Runs, for agents
        Route::get("/deploy/agent/run/{id}/spec", agent::spec),
        Route::post("/deploy/agent/run/{id}/started", agent::started),
        Route::post("/deploy/agent/run/{id}/log", agent::log),
        Route::post("/deploy/agent/run/{id}/heartbeat", agent::heartbeat),
        Route::post("/deploy/agent/run/{id}/finished", agent::finished),
        Route::post("/deploy/agent/run/{id}/release", agent::release),
        Route::any("/deploy/agent/run/{id}/state", tfstate::endpoint),
        // For other platform services (acct), with a service credential
        Route::get("/deploy/service/ns/{id}", service_routes::namespace_members),
        Route::get("/deploy/service/run/{id}/usage", service_routes::run_usage),
        Route::get("/deploy/service/runs", service_routes::changed_runs),
    ];
    routes.extend(catalogue_routes::<Recipe>());
    routes.extend(catalogue_routes::<Template>());
    routes.extend(catalogue_routes::<Application>());
    routes.extend(catalogue_routes::<Endpoint>());
    routes
}

/// The six routes every catalogue kind has (one generic implementation in [`catalogue`]).
fn catalogue_routes<K: Kind>() -> Vec<Route> {
    use catalogue::{create, delete_one, get_one, list, list_public, update_one};
    let collection = format!("/deploy/ns/{{id}}/{}", K::SEGMENT);
    let item = format!("/deploy/ns/{{id}}/{}/{{{}}}", K::SEGMENT, K::PARAM);
    vec![
        Route::get(&collection, list::<K>),
        Route::post(&collection, create::<K>),
        Route::get(&item, get_one::<K>),
        Route::put(&item, update_one::<K>),
        Route::delete(&item, delete_one::<K>),
        Route::get(format!("/deploy/{}", K::MANY), list_public::<K>),
    ]
}

pub async fn router(platform: Platform) -> anyhow::Result<Router> {
    let queue = goterra_bus::platform_run_queue(&platform);
    tracing::info!(queue = %queue.describe(), "runs are queued here");
    let run_options = runs::RunOptions::from(&platform.config.run);
    router_with(platform, queue, run_options).await
}

/// Marks `queue` as fed by a deploy, so that standalone agents on it start (see
/// `RunQueue::announce_feeder`). A broker that is down does not stop deploy from starting:
/// the mark is retried in the background until it is made.
async fn announce_feeder(platform: &Platform, queue: Arc<dyn RunQueue>) {
    const RETRY: std::time::Duration = std::time::Duration::from_secs(5);
    if queue.announce_feeder().await.is_ok() {
        return;
    }
    let stopping = platform.lifecycle.stopping();
    platform.lifecycle.spawn_tracked(async move {
        loop {
            match queue.announce_feeder().await {
                Ok(()) => return,
                Err(err) => tracing::warn!(error = %format!("{err:#}"), queue = %queue.describe(),
                    "cannot mark the run queue as fed yet: standalone agents wait for it"),
            }
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(RETRY) => {}
            }
        }
    });
}

/// The router over a given run queue and run limits (tests, embedding).
pub async fn router_with(
    platform: Platform,
    queue: Arc<dyn RunQueue>,
    run_options: runs::RunOptions,
) -> anyhow::Result<Router> {
    let secrets = Arc::new(crypto::SecretBox::from_config(&platform.config)?);
    announce_feeder(&platform, queue.clone()).await;
    runs::sweep::spawn(&platform, queue.clone(), run_options.clone());
    platform
        .metric_probes
        .add(runs::metrics::probe(platform.db.clone(), queue.clone()));
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
    let router = routes()
        .into_iter()
        .fold(Router::new(), |router, route| router.route(&route.path, route.handler));
    Ok(router.with_state(state))
}
