//! Request extractors whose failures are 400 answers in the JSON error shape, instead of axum's
//! plain-text 415/422 rejections.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// A JSON body. The `Content-Type` header is not required: old clients and `curl -d` omit it.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("request body too large")
            } else {
                ApiError::bad_request(format!("cannot read request body: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body, answering 400 with serde's explanation (which names the field).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty, a JSON object is expected",
        ));
    }
    serde_json::from_slice(bytes).map_err(|err| ApiError::bad_request(format!("invalid JSON body: {err}")))
}

/// Query parameters, 400 when they do not parse.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|err| ApiError::bad_request(format!("invalid query parameter: {}", err.body_text())))
    }
}

/// `?skip=N&limit=M` on list routes: `limit` defaults to 100 and may not exceed 500.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Items to return, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

pub const MAX_PAGE_SIZE: i64 = 500;
pub const DEFAULT_PAGE_SIZE: i64 = 100;

impl Pagination {
    /// Validated `(skip, limit)`.
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let skip = self.skip.unwrap_or(0);
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if skip < 0 {
            return Err(ApiError::bad_request("skip: must be 0 or more"));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit: must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        Ok((skip, limit))
    }
}

/// The client's IP address: the peer of the connection, or the client a trusted proxy names
/// in `X-Forwarded-For` (set by [`crate::http::serve_with`]); `None` when the server was
/// started otherwise.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts.extensions.get::<crate::http::ClientIp>().map(|client| client.0),
        ))
    }
}
