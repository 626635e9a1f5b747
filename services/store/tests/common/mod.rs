//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use goterra_core::{Sensitive, ServiceSpec};
use goterra_db::Engine;
use goterra_testing::TestServer;

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Where a test server keeps deployments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    Embedded(Engine),
    Redis,
}

/// Every configuration a behaviour test must pass on.
pub const SETUPS: [Setup; 3] = [
    Setup::Embedded(Engine::Sqlite),
    Setup::Embedded(Engine::Postgres),
    Setup::Redis,
];

/// A Redis key prefix no other test uses.
pub fn random_prefix() -> String {
    format!("gotest-{}", uuid::Uuid::new_v4().simple())
}

/// Starts `services` (the store and test doubles) on `setup`, with `configure` applied.
pub async fn start(
    setup: Setup,
    services: &[ServiceSpec],
    configure: impl FnOnce(&mut goterra_core::Config),
) -> TestServer {
    let engine = match setup {
        Setup::Embedded(engine) => engine,
        Setup::Redis => Engine::Sqlite,
    };
    TestServer::start_with(engine, services, |config| {
        if setup == Setup::Redis {
            config.redis.url = Some(Sensitive::new(REDIS_URL.to_string()));
            config.redis.prefix = random_prefix();
            // Whatever a test leaves in the shared Redis goes away within the hour.
            config.store.ttl_hours = 1;
        }
        configure(config);
    })
    .await
    .unwrap()
}
