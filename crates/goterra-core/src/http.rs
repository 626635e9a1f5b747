//! What every service's HTTP side shares: the health answer, request normalisation, common
//! layers, and serving with graceful shutdown.

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, Uri};
use axum::routing::get;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use goterra_client::Health;

pub async fn health() -> Json<Health> {
    Json(Health {
        version: VERSION.to_string(),
        message: "ok".to_string(),
    })
}

/// A router answering the health route of one service prefix (`/deploy`, `/store`, ...).
pub fn health_router<S: Clone + Send + Sync + 'static>(prefix: &str) -> Router<S> {
    Router::new().route(prefix, get(health))
}

/// Collapses repeated slashes and drops a trailing one, so that `//auth/me` (sent by the
/// original deploy) and `/store/x/` reach their routes.
pub fn normalize_path(mut request: Request) -> Request {
    let uri = request.uri();
    let path = uri.path();
    if !(path.contains("//") || (path.len() > 1 && path.ends_with('/'))) {
        return request;
    }
    let mut clean = String::with_capacity(path.len());
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        clean.push('/');
        clean.push_str(segment);
    }
    if clean.is_empty() {
        clean.push('/');
    }
    if let Some(query) = uri.query() {
        clean.push('?');
        clean.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    if let Ok(path_and_query) = clean.parse() {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// Layers every service gets: request tracing, a body size cap, the edge rules (text rule,
/// size limits, JSON errors: see [`crate::edge`]) and CORS for listed origins.
pub fn with_common_layers(router: Router, body_limit: usize, cors_origins: &[String]) -> Router {
    let mut router = router
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            body_limit,
            crate::edge::edge_rules,
        ))
        .layer(TraceLayer::new_for_http());
    let origins: Vec<HeaderValue> = cors_origins.iter().filter_map(|o| o.parse().ok()).collect();
    if !origins.is_empty() {
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
                .allow_headers([
                    axum::http::header::AUTHORIZATION,
                    axum::http::header::CONTENT_TYPE,
                    HeaderName::from_static("x-api-key"),
                    HeaderName::from_static("x-api-ns"),
                ])
                .allow_credentials(true),
        );
    }
    router
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Connection limits of [`serve_with`] and the proxies it believes (see `http.*` in
/// `docs/configuration.md`).
#[derive(Clone, Debug)]
pub struct ServeLimits {
    pub max_connections: usize,
    pub health_connections: usize,
    pub header_timeout: Duration,
    pub trusted_proxies: crate::forwarded::TrustedProxies,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self::from(&crate::config::HttpConfig::default())
    }
}

impl From<&crate::config::HttpConfig> for ServeLimits {
    fn from(config: &crate::config::HttpConfig) -> Self {
        Self {
            max_connections: config.max_connections.max(1),
            health_connections: config.health_connections.min(config.max_connections.saturating_sub(1)),
            header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }
}

/// The client of a request: the connection's peer, or the client a trusted proxy names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

/// Marks the requests of a connection accepted in the room kept for health checks: only
/// `GET /<service>` is answered on it (see [`crate::edge`]).
#[derive(Clone, Copy, Debug)]
pub struct HealthOnly;

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish, with the default [`ServeLimits`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, ServeLimits::default(), shutdown).await
}

/// Serves `router` on `listener` with connection limits: a client must send its request
/// headers within `header_timeout` (which also closes idle keep-alive connections), at most
/// `max_connections` connections are served at once (further ones are closed at once), and
/// the last `health_connections` of them answer health checks only, so a flood of slow or
/// idle clients cannot starve the file descriptors of the process nor hide its health.
/// Requests carry the peer address as `ConnectInfo<SocketAddr>` and the client's, read through
/// the trusted proxies, as [`ClientIp`].
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use std::sync::Arc;
    use tower::{Layer, ServiceExt};
    let app = axum::middleware::from_fn(crate::edge::json_error_bodies)
        .layer(tower::util::MapRequestLayer::new(normalize_path).layer(router));
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Above the edge's own limit, so that the edge answers 431 in JSON.
        .max_headers(2 * crate::edge::MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, or a connection reset before accept: pause
                    // briefly instead of spinning.
                    tracing::warn!(%err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many connections");
            drop(stream);
            continue;
        };
        let health_only = permits.available_permits() < limits.health_connections;
        let trusted_proxies = limits.trusted_proxies.clone();
        let service = app
            .clone()
            .map_request(move |request: axum::http::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                let client = trusted_proxies.client_address(peer.ip(), request.headers());
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                request.extensions_mut().insert(ClientIp(client));
                if health_only {
                    request.extensions_mut().insert(HealthOnly);
                }
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Default timeout for calls between services.
pub const SERVICE_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Sets up logging: `GOT_LOG` (or `RUST_LOG`) filters, `GOT_DEBUG` turns on debug.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let default = if std::env::var("GOT_DEBUG").is_ok_and(|v| !v.is_empty()) {
        "debug"
    } else {
        "info"
    };
    let filter = std::env::var("GOT_LOG")
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// OpenAPI security schemes shared by every service: `token` (a bearer fernet token) and
/// `apikey` (the `X-API-Key` header). Use as `modifiers(&goterra_core::http::SecuritySchemes)`.
pub struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fernet")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apikey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Completes a service's OpenAPI document once every path is in, as it is served and checked
/// in: the health route `GET <health>` (when the service's own operations do not document it)
/// and the edge rules (see [`crate::edge`]), so that the document describes what the server
/// does before any handler runs:
/// - the answers the edge may give any operation that does not describe them itself: 400 (the
///   text rule, in the path, query or headers), 413 (body too large, for operations with a
///   body), 414, 431, and 503 (too many connections: only health checks are served);
/// - the text rule as patterns on every request string
///   ([`crate::edge::document_the_text_rule`]).
///
/// `ErrorBody` must be one of the document's schemas.
pub fn finish_document(mut doc: utoipa::openapi::OpenApi, health: Option<&str>) -> serde_json::Value {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    if let Some(prefix) = health {
        let operation = OperationBuilder::new()
            .tag("health")
            .summary(Some("Health and version of the service (anyone)"))
            .operation_id(Some(format!("health{}", prefix.replace(['/', '-'], "_"))))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The service is up")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Health")))
                            .build(),
                    )
                    .build(),
            )
            .build();
        doc.paths.add_path_operation(prefix, vec![HttpMethod::Get], operation);
        let components = doc.components.get_or_insert_with(Default::default);
        components
            .schemas
            .entry("Health".to_string())
            .or_insert_with(<Health as utoipa::PartialSchema>::schema);
    }
    add_edge_responses(&mut doc);
    // The text rule needs schema constructs utoipa's types do not read back: the rest is done
    // on the JSON.
    let mut doc = serde_json::to_value(&doc).unwrap_or_default();
    crate::edge::document_the_text_rule(&mut doc);
    doc
}

fn add_edge_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
        ]
        .into_iter()
        .flatten()
        {
            let has_body = operation.request_body.is_some();
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| error(description).into());
            };
            add(
                "400",
                "A NUL or control character in the path, the query or a header (newline and tab only in multi-line text), or a malformed request",
            );
            if has_body {
                add("413", "Request body larger than the limit (16 MiB)");
            }
            add("414", "Request URI longer than 8 KiB");
            add("431", "More than 100 request headers, or more than 32 KiB of them");
            add(
                "503",
                "Too many connections: only health checks are served now; retry after `Retry-After` seconds",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(uri: &str) -> String {
        let request = Request::builder().uri(uri).body(axum::body::Body::empty()).unwrap();
        normalize_path(request).uri().to_string()
    }

    #[test]
    fn paths_are_normalised() {
        assert_eq!(normalized("//auth/me"), "//auth/me".replacen("//", "/", 1));
        assert_eq!(normalized("/store/abc/"), "/store/abc");
        assert_eq!(normalized("/store//abc?wait=1"), "/store/abc?wait=1");
        assert_eq!(normalized("/"), "/");
        assert_eq!(normalized("/auth"), "/auth");
    }
}
