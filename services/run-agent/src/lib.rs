//! The run-agent service.

use axum::Router;
use goterra_core::{Platform, ServiceSpec};
use goterra_db::Migration;

pub const MIGRATIONS: &[Migration] = &[];

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "run-agent",
        migrations: MIGRATIONS,
        router: |platform| Box::pin(router(platform)),
        local_api_keys: None,
    }
}

pub async fn router(_platform: Platform) -> anyhow::Result<Router> {
    Ok(goterra_core::http::health_router("/run-agent"))
}
