//! Operations routes every service serves beside its health route `GET /<prefix>`:
//!
//! - `GET /<prefix>/ready`: 200 once the service's dependencies answer (the database; Redis for
//!   the store; the RabbitMQ broker when one is configured), else 503 naming what does not. A
//!   proxy or an orchestrator sends traffic to a replica only when it is ready.
//! - `GET /<prefix>/metrics`: Prometheus text format — requests and their latency per route
//!   (recorded by [`record_request`]), the database pool, and whatever the service records with
//!   the `metrics` macros (queue depth, waiters, running Terraform processes...).

use crate::platform::Platform;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one dependency may take to answer a readiness check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Latency buckets (seconds) of the request histogram: from a cached read to a long-poll.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

const REQUESTS: &str = "goterra_http_requests_total";
const LATENCY: &str = "goterra_http_request_duration_seconds";

/// The process's Prometheus recorder: `metrics` macros anywhere in the process record into it.
/// Installed once; every service of a `goterra up` process shares it.
fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(LATENCY.into()), LATENCY_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::warn!(error = %err, "metrics are off: cannot install the Prometheus recorder");
                    None
                }
            }
        })
        .as_ref()
}

/// Counts each request and its latency under the route it matched (`/deploy/ns/{id}`, never
/// the concrete path, so ids do not explode the series). Apply with `Router::route_layer`.
pub async fn record_request(request: Request, next: Next) -> Response {
    let Some(route) = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
    else {
        return next.run(request).await;
    };
    // The metrics routes themselves are scraped every few seconds; they would drown the rest.
    if route.ends_with("/metrics") {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!(LATENCY, "method" => method, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// A figure computed at scrape time, for state that lives in a database or a broker rather than
/// in the process (runs by status, queue depth): it sets its gauges with the `metrics` macros.
pub type MetricProbe = Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

/// The probes of every service in the process, run before each scrape.
#[derive(Clone, Default)]
pub struct MetricProbes(Arc<RwLock<Vec<MetricProbe>>>);

impl MetricProbes {
    pub fn add(&self, probe: MetricProbe) {
        if let Ok(mut probes) = self.0.write() {
            probes.push(probe);
        }
    }

    /// Runs every probe, each bounded by [`CHECK_TIMEOUT`]: a slow database delays a scrape,
    /// never hangs it, and the gauges keep their last value.
    async fn run(&self) {
        let probes = self.0.read().map(|probes| probes.clone()).unwrap_or_default();
        let runs = probes.iter().map(|probe| tokio::time::timeout(CHECK_TIMEOUT, probe()));
        futures_util::future::join_all(runs).await;
    }
}

impl std::fmt::Debug for MetricProbes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.read().map(|probes| probes.len()).unwrap_or_default();
        f.debug_tuple("MetricProbes").field(&count).finish()
    }
}

/// The ready and metrics routes of the service whose routes start with `prefix` (`/store`).
pub fn router(prefix: &str, platform: Platform) -> Router {
    // Installing the recorder before the first request lets every route be counted.
    prometheus();
    let needs = needs(prefix);
    Router::new()
        .route(&format!("{prefix}/ready"), get(move |state| ready(needs, state)))
        .route(&format!("{prefix}/metrics"), get(metrics_text))
        .with_state(platform)
}

/// Which dependencies a service needs to serve requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Needs {
    redis: bool,
}

fn needs(prefix: &str) -> Needs {
    Needs {
        // Only the store keeps data in Redis; the others would be refused for nothing.
        redis: prefix == "/store",
    }
}

#[derive(Serialize)]
struct Readiness {
    message: String,
    /// Dependency → `ok`, or what is wrong with it (never a URL or a credential).
    checks: BTreeMap<&'static str, String>,
}

async fn ready(needs: Needs, State(platform): State<Platform>) -> Response {
    let config = &platform.config;
    let mut checks = BTreeMap::new();
    checks.insert("database", outcome(platform.db.ping()).await);
    if needs.redis
        && let Some(url) = config.redis_url()
    {
        checks.insert("redis", outcome(redis_ping(url.expose().clone())).await);
    }
    if let Some(url) = &config.amqp {
        checks.insert("broker", outcome(amqp_handshake(url.expose().clone())).await);
    }
    let failing: Vec<String> = checks
        .iter()
        .filter(|(_, state)| state.as_str() != "ok")
        .map(|(name, state)| format!("{name}: {state}"))
        .collect();
    let (status, message) = if failing.is_empty() {
        (StatusCode::OK, "ready".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", failing.join("; ")),
        )
    };
    (status, axum::Json(Readiness { message, checks })).into_response()
}

/// `ok`, or the check's error (without its cause chain: causes may quote a URL).
async fn outcome(check: impl Future<Output = anyhow::Result<()>>) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(err)) => err.to_string(),
        Err(_) => format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
    }
}

async fn redis_ping(url: String) -> anyhow::Result<()> {
    let answered = async {
        let client = redis::Client::open(url)?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut connection).await
    };
    answered
        .await
        .map(drop)
        .map_err(|_| anyhow::anyhow!("Redis does not answer"))
}

/// Opens a TCP connection to the broker and sends the AMQP 0-9-1 protocol header: a broker that
/// answers with a frame is up (the connection is then dropped before logging in).
async fn amqp_handshake(url: String) -> anyhow::Result<()> {
    let unreachable = || anyhow::anyhow!("the broker does not answer");
    let parsed = url::Url::parse(&url).map_err(|_| anyhow::anyhow!("the broker URL is invalid"))?;
    let tls = parsed.scheme() == "amqps";
    let host = parsed.host_str().ok_or_else(unreachable)?.to_owned();
    let port = parsed.port().unwrap_or(if tls { 5671 } else { 5672 });
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|_| unreachable())?;
    if tls {
        // The TCP connection is all that can be checked without a TLS handshake.
        return Ok(());
    }
    stream
        .write_all(b"AMQP\x00\x00\x09\x01")
        .await
        .map_err(|_| unreachable())?;
    let mut frame_type = [0u8; 1];
    stream.read_exact(&mut frame_type).await.map_err(|_| unreachable())?;
    // 1 = a method frame (Connection.Start); anything else is not an AMQP 0-9-1 broker.
    if frame_type[0] == 1 {
        Ok(())
    } else {
        Err(anyhow::anyhow!("the broker does not speak AMQP 0-9-1"))
    }
}

async fn metrics_text(State(platform): State<Platform>) -> Response {
    let Some(handle) = prometheus() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics are off in this process\n").into_response();
    };
    platform.metric_probes.run().await;
    let (open, idle) = platform.db.pool_usage();
    metrics::gauge!("goterra_db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("goterra_db_pool_connections", "state" => "busy").set((open as usize).saturating_sub(idle) as f64);
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}
