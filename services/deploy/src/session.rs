//! `POST /deploy/session/bind`: an API key in, a user token out.

use crate::model::TokenResponse;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use goterra_core::auth::API_KEY_HEADER;
use goterra_core::{ApiError, Claims, ErrorBody};

/// Exchanges the `X-API-Key` header for a user token (what the original's clients and
/// Terraform provider call first).
#[utoipa::path(post, path = "/deploy/session/bind", operation_id = "bind_session", tag = "session",
    params(("X-API-Key" = String, Header, description = "The user's API key")),
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn bind(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<TokenResponse>, ApiError> {
    let key = headers
        .get(API_KEY_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .ok_or_else(|| ApiError::unauthorized("missing X-API-Key header"))?;
    // Only the key counts here, whatever else the request carries.
    let mut only_key = HeaderMap::new();
    let value = HeaderValue::from_str(key).map_err(|_| ApiError::unauthorized("invalid API key"))?;
    only_key.insert(API_KEY_HEADER, value);
    let identity = state
        .platform
        .authenticator
        .user(&only_key)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
    let token = state.platform.tokens.issue(&Claims::for_user(&identity));
    Ok(Json(TokenResponse { token }))
}
