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

/// Layers every service gets: request tracing, a body size cap and CORS for listed origins.
pub fn with_common_layers(router: Router, body_limit: usize, cors_origins: &[String]) -> Router {
    let mut router = router
        .layer(RequestBodyLimitLayer::new(body_limit))
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

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use tower::Layer;
    let app = tower::util::MapRequestLayer::new(normalize_path).layer(router);
    axum::serve(listener, axum::ServiceExt::<Request>::into_make_service(app))
        .with_graceful_shutdown(shutdown)
        .await
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
