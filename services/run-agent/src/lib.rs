//! The run-agent service: executes run jobs with Terraform (see `docs/run-agent.md`).
//!
//! `router()` serves `GET /run-agent` and `GET /run-agent/ns/{ns}/run/{run}/state`, and starts
//! the agent loop in the background: on RabbitMQ when `GOT_AMQP` is set, otherwise on the
//! embedded queue in the platform database (the all-in-one `goterra up`).
//! `agent.disabled` (`GOT_AGENT_DISABLED=1`) serves the routes without an agent.

pub mod agent;
pub mod control;
pub mod executor;
pub mod state;

use agent::{Agent, AgentOptions, RunningRun};
use axum::extract::{FromRef, State};
use axum::routing::get;
use axum::{Json, Router};
use control::HttpRunControl;
use goterra_bus::RunQueue;
use goterra_core::http::SecuritySchemes;
use goterra_core::service::Topology;
use goterra_core::{Authenticator, ErrorBody, MaybeUser, Platform, ServiceSpec};
use goterra_db::Migration;
use state::StateRoutes;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

/// The embedded queue's table, created here too so that `goterra migrate` knows it.
pub const MIGRATIONS: &[Migration] = goterra_bus::MIGRATIONS;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "run-agent",
        migrations: MIGRATIONS,
        router: |platform| Box::pin(router(platform)),
        local_api_keys: None,
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Goterra run-agent", description = "Executes run jobs with Terraform."),
    paths(status, state::run_state),
    components(schemas(AgentStatus, RunningRun, state::RunResources, state::ResourceInstance, ErrorBody)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

pub use goterra_client::run_agent::AgentStatus;

/// What `GET /run-agent` needs: the agent (if any) and who is asking.
#[derive(Clone)]
struct StatusState {
    agent: Option<Arc<Agent>>,
    authenticator: Arc<Authenticator>,
}

impl FromRef<StatusState> for Arc<Authenticator> {
    fn from_ref(state: &StatusState) -> Self {
        state.authenticator.clone()
    }
}

/// The client of deploy's agent routes: at `GOT_DEPLOY_URL`, default this platform's public URL.
pub fn deploy_control(platform: &Platform) -> anyhow::Result<Arc<HttpRunControl>> {
    let deploy = executor::non_empty_env("GOT_DEPLOY_URL").unwrap_or_else(|| platform.config.public_url());
    let name = format!("agent-{}", goterra_core::new_id());
    Ok(Arc::new(HttpRunControl::new(&deploy, name, platform.tokens.clone())?))
}

/// Starts an agent on `queue`, reporting to deploy (see [`deploy_control`]). It stops with
/// the process (which waits for its runs to end or be handed back), or alone with the returned
/// token. Returns the agent (for its status) and that token.
pub fn start_agent(
    platform: &Platform,
    queue: Arc<dyn RunQueue>,
    options: AgentOptions,
) -> anyhow::Result<(Arc<Agent>, CancellationToken)> {
    executor::process::RunningTerraform::register();
    let agent = Agent::new(queue, deploy_control(platform)?, options);
    let shutdown = platform.lifecycle.stopping().child_token();
    platform.lifecycle.spawn_tracked(agent.clone().run(shutdown.clone()));
    Ok((agent, shutdown))
}

pub async fn router(platform: Platform) -> anyhow::Result<Router> {
    let agent = if platform.config.agent.disabled {
        None
    } else {
        let queue = goterra_bus::platform_run_queue(&platform);
        if platform.topology == Topology::Standalone {
            let limit = Duration::from_secs(platform.config.agent.feeder_wait_secs);
            wait_for_feeder(queue.as_ref(), limit, FEEDER_POLL).await?;
        }
        let (agent, _shutdown) = start_agent(&platform, queue, AgentOptions::from_config(&platform.config)?)?;
        Some(agent)
    };
    let state_routes = StateRoutes {
        authenticator: platform.authenticator.clone(),
        deploy: deploy_control(&platform)?,
    };
    Ok(routes(agent, state_routes))
}

/// How often a standalone agent asks whether a deploy feeds its queue yet.
const FEEDER_POLL: Duration = Duration::from_secs(1);

/// Waits up to `limit` for a deploy to feed `queue`, then refuses: an agent alone on a queue
/// nothing fills (a wrong broker, queue name or database) would otherwise wait for runs
/// forever while looking healthy.
pub async fn wait_for_feeder(queue: &dyn RunQueue, limit: Duration, poll: Duration) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut said_waiting = false;
    loop {
        let last_error = match queue.has_feeder().await {
            Ok(true) => return Ok(()),
            Ok(false) => None,
            Err(err) => Some(format!("{err:#}")),
        };
        if started.elapsed() >= limit {
            let cause = last_error
                .map(|err| format!(" (last error: {err})"))
                .unwrap_or_default();
            anyhow::bail!(
                "no deploy feeds the {} after {}s{cause}: start deploy on the same broker \
                 (GOT_AMQP) or database (GOT_DATABASE_URL) with the same queue name (GOT_RUN_QUEUE), \
                 or wait longer with GOT_AGENT_FEEDER_WAIT_SECS",
                queue.describe(),
                limit.as_secs()
            );
        }
        if !said_waiting {
            tracing::info!(queue = %queue.describe(), ?limit, "waiting for a deploy to feed the run queue");
            said_waiting = true;
        }
        tokio::time::sleep(poll).await;
    }
}

/// The routes, around an agent or none.
pub fn routes(agent: Option<Arc<Agent>>, state_routes: StateRoutes) -> Router {
    let status_state = StatusState {
        agent,
        authenticator: state_routes.authenticator.clone(),
    };
    Router::new()
        .route("/run-agent", get(status))
        .route("/run-agent/openapi.json", get(openapi))
        .with_state(status_state)
        .merge(
            Router::new()
                .route("/run-agent/ns/{ns}/run/{run}/state", get(state::run_state))
                .with_state(state_routes),
        )
}

/// Health and version for anyone; capacity and the runs in progress for admins.
#[utoipa::path(get, path = "/run-agent", security((), ("token" = []), ("apikey" = [])),
    responses((status = 200, body = AgentStatus), (status = 401, description = "Invalid credentials", body = ErrorBody)))]
async fn status(State(state): State<StatusState>, MaybeUser(caller): MaybeUser) -> Json<AgentStatus> {
    let admin = caller.is_some_and(|caller| caller.is_admin());
    let agent = state.agent.as_ref().filter(|_| admin);
    Json(AgentStatus {
        version: goterra_core::http::VERSION.to_string(),
        message: "ok".to_string(),
        capacity: admin.then(|| agent.map_or(0, |agent| agent.capacity())),
        running: admin.then(|| agent.map(|agent| agent.running()).unwrap_or_default()),
    })
}

/// The document as checked in under `openapi/run-agent.json` (`GET /run-agent` is its health).
pub fn document() -> serde_json::Value {
    goterra_core::http::finish_document(ApiDoc::openapi(), None)
}

async fn openapi() -> Json<serde_json::Value> {
    Json(document())
}
