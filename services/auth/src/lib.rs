//! The auth service: users, API keys, login and tokens (`/auth`).

pub mod bootstrap;
pub mod credentials;
pub mod identities;
pub mod model;
pub mod oidc;
pub mod openapi;
pub mod routes;
pub mod throttle;
pub mod users;

use async_trait::async_trait;
use axum::Router;
use axum::routing::{delete, get, post, put};
use goterra_core::revocation::UserStatus;
use goterra_core::{ApiError, ApiKeyResolver, Identity, Platform, Sensitive, ServiceSpec};
use goterra_db::{Db, Migration};
use routes::AuthState;
use std::sync::Arc;
use users::Users;

pub const MIGRATIONS: &[Migration] = users::MIGRATIONS;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "auth",
        migrations: MIGRATIONS,
        router: |platform| Box::pin(router(platform)),
        local_api_keys: Some(local_api_keys),
    }
}

/// Resolves API keys against the users table (used by every service of the process).
pub fn local_api_keys(db: &Db) -> Arc<dyn ApiKeyResolver> {
    Arc::new(DbApiKeys {
        users: Users::new(db.clone()),
    })
}

struct DbApiKeys {
    users: Users,
}

#[async_trait]
impl ApiKeyResolver for DbApiKeys {
    async fn resolve_api_key(&self, api_key: &Sensitive<String>) -> Result<Option<Identity>, ApiError> {
        let user = self
            .users
            .by_api_key(api_key.expose())
            .await
            .map_err(ApiError::internal)?;
        Ok(user.map(|user| user.identity()))
    }

    async fn user_statuses(&self, uids: &[String]) -> Result<Vec<UserStatus>, ApiError> {
        self.users.statuses(uids).await.map_err(ApiError::internal)
    }
}

/// Routes of `/auth`; creates the first admin when there is none.
pub async fn router(platform: Platform) -> anyhow::Result<Router> {
    let users = Users::new(platform.db.clone());
    bootstrap::ensure_admin(&users, &platform.config).await?;
    // Providers are only contacted when someone signs in: an unreachable one never stops auth.
    let sso = Arc::new(oidc::Sso::from_config(&platform.config)?);
    let rows = Arc::new(goterra_core::user_cache::UserCache::new(
        platform.authenticator.revocations().clone(),
        routes::CACHED_USER_ROWS,
    ));
    let state = AuthState {
        users,
        identities: identities::Identities::new(platform.db.clone()),
        rows,
        platform,
        throttle: Arc::new(throttle::LoginThrottle::default()),
        sso,
    };
    Ok(Router::new()
        .route("/auth", get(goterra_core::http::health))
        .route("/auth/openapi.json", get(openapi::serve))
        .route("/auth/api", get(routes::api))
        .route("/auth/token", get(routes::renew))
        .route("/auth/login", post(routes::login))
        .route("/auth/status", post(routes::user_status))
        .route("/auth/register", post(routes::register))
        .route("/auth/me", get(routes::me))
        .route("/auth/user", get(routes::list_users))
        .route(
            "/auth/user/{id}",
            get(routes::get_user)
                .put(routes::update_user)
                .delete(routes::delete_user),
        )
        .route("/auth/user/{id}/password", put(routes::change_password))
        .route("/auth/user/{id}/apikey", post(routes::regenerate_api_key))
        .route("/auth/oidc/{provider}", get(oidc::start))
        .route("/auth/oidc/{provider}/callback", get(oidc::callback))
        .route(
            "/auth/user/{id}/identities",
            get(oidc::list_identities).post(oidc::start_link),
        )
        .route("/auth/user/{id}/identities/{provider}", delete(oidc::unlink))
        .with_state(state))
}
