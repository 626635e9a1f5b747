//! The web UI (`/app`): server-rendered pages for the platform's users.
//!
//! The UI owns no data. Every page is built from the public REST API, called with the signed-in
//! user's own token ([`api`]), so the services' access rules apply unchanged and the UI scales
//! like any stateless service. The token lives in an encrypted `HttpOnly` cookie ([`session`]);
//! state-changing forms carry a CSRF token bound to that session ([`session::Csrf`]).

pub mod api;
pub mod assets;
pub mod error;
pub mod layout;
pub mod model;
pub mod pages;
pub mod session;
pub mod settings;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{any, get};
use goterra_core::{Platform, ServiceSpec};
use std::sync::Arc;

/// URL prefix of every page.
pub const PREFIX: &str = "/app";

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "ui",
        migrations: &[],
        router: |platform| Box::pin(router(platform)),
        local_api_keys: None,
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct Ui {
    pub settings: Arc<settings::Settings>,
    pub sessions: Arc<session::SessionCodec>,
    pub api: api::Api,
}

pub async fn router(platform: Platform) -> anyhow::Result<Router> {
    let settings = Arc::new(settings::Settings::from_config(&platform.config));
    let sessions = Arc::new(session::SessionCodec::new(&platform.config, settings.secure_cookies)?);
    let api = api::Api::new(&settings.api_base)?;
    tracing::info!(api = %settings.api_base, "the UI calls the platform API here");
    let ui = Ui {
        settings,
        sessions,
        api,
    };
    Ok(Router::new()
        .route("/", get(|| async { Redirect::permanent(PREFIX) }))
        .merge(pages::routes())
        .merge(assets::routes())
        // Matched after every page's own route: the rest of `/app` is the HTML 404 page.
        .route(&format!("{PREFIX}/{{*rest}}"), any(error::no_such_page))
        .layer(axum::middleware::from_fn(error::framework_errors_as_pages))
        .with_state(ui))
}
