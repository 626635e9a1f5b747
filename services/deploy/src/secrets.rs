//! A user's credentials for an endpoint (one per user and endpoint, password encrypted at rest,
//! never returned) and their suggested input values for it.

use crate::access::{self, uid_of};
use crate::catalogue::{body_object, decode, fetch_in, find_usable};
use crate::model::{Defaults, Endpoint, EndpointDefaults, Message, SecretRequest, SecretStatus};
use crate::state::AppState;
use crate::storage::StorageError;
use crate::validate::{self, MAX_NAME, MAX_TEXT};
use axum::Json;
use axum::extract::{Path, State};
use goterra_client::ids::{EndpointId, NamespaceId, Uid};
use goterra_core::{ApiError, ApiJson, AuthUser, ErrorBody, Identity};
use serde_json::Value;

/// The endpoint under its namespace's URL, when the caller may use it: public, or member.
async fn usable_endpoint(
    state: &AppState,
    user: &Identity,
    namespace_id: &NamespaceId,
    id: &EndpointId,
) -> Result<Endpoint, ApiError> {
    let endpoint = fetch_in::<Endpoint>(state, namespace_id, id).await?;
    if !endpoint.public {
        let namespace = state.namespaces().load(namespace_id).await?;
        if !namespace.can_use(user) {
            return Err(ApiError::forbidden(
                "this endpoint is private to its namespace: only its members may use it",
            ));
        }
    }
    Ok(endpoint)
}

/// Stores (or replaces) the caller's credentials for an endpoint.
#[utoipa::path(put, path = "/deploy/ns/{id}/endpoint/{endpoint}/secret", operation_id = "put_endpoint_secret", tag = "endpoints",
    params(("id" = String, Path), ("endpoint" = String, Path)), request_body = SecretRequest,
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = Message), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_secret(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, endpoint_id)): Path<(NamespaceId, EndpointId)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Message>, ApiError> {
    usable_endpoint(&state, &user, &namespace_id, &endpoint_id).await?;
    // Never echo the body: a mistyped password would be quoted in the decoder's message.
    let request: SecretRequest = decode(body_object(body)?)
        .map_err(|_| ApiError::bad_request("name, password: both are required and must be strings"))?;
    let username = request.name.trim();
    if username.is_empty() || username.chars().count() > MAX_NAME {
        return Err(validate::bad(
            "name",
            format!("the cloud user name is 1 to {MAX_NAME} characters"),
        ));
    }
    let password = request.password.expose();
    if password.is_empty() || password.chars().count() > MAX_TEXT {
        return Err(validate::bad("password", format!("must be 1 to {MAX_TEXT} characters")));
    }
    let sealed = state.secrets.encrypt(password.as_bytes());
    state
        .endpoint_secrets()
        .put(&uid_of(&user), &endpoint_id, username, sealed)
        .await
        .map_err(endpoint_gone)?;
    Ok(Json(Message {
        message: "password set for endpoint".into(),
    }))
}

/// Whether the caller has credentials for the endpoint, and for which cloud user.
#[utoipa::path(get, path = "/deploy/ns/{id}/endpoint/{endpoint}/secret", operation_id = "get_endpoint_secret", tag = "endpoints",
    params(("id" = String, Path), ("endpoint" = String, Path)), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = SecretStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_secret(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, endpoint_id)): Path<(NamespaceId, EndpointId)>,
) -> Result<Json<SecretStatus>, ApiError> {
    usable_endpoint(&state, &user, &namespace_id, &endpoint_id).await?;
    let username = state
        .endpoint_secrets()
        .find(&uid_of(&user), &endpoint_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no secret stored for this endpoint"))?
        .username;
    Ok(Json(SecretStatus {
        message: "secret found".into(),
        uid: username.clone(),
        name: username,
    }))
}

/// Removes the caller's credentials for the endpoint (200 even when there were none).
#[utoipa::path(delete, path = "/deploy/ns/{id}/endpoint/{endpoint}/secret", operation_id = "delete_endpoint_secret", tag = "endpoints",
    params(("id" = String, Path), ("endpoint" = String, Path)), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = Message), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_secret(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, endpoint_id)): Path<(NamespaceId, EndpointId)>,
) -> Result<Json<Message>, ApiError> {
    usable_endpoint(&state, &user, &namespace_id, &endpoint_id).await?;
    state.endpoint_secrets().delete(&uid_of(&user), &endpoint_id).await?;
    Ok(Json(Message {
        message: "secret removed".into(),
    }))
}

/// The caller's stored credentials for an endpoint, decrypted (for runs).
pub async fn credentials(
    state: &AppState,
    uid: &Uid,
    endpoint_id: &EndpointId,
) -> Result<Option<(String, goterra_core::Sensitive<String>)>, ApiError> {
    let Some(stored) = state.endpoint_secrets().find(uid, endpoint_id).await? else {
        return Ok(None);
    };
    let password = state.secrets.decrypt(&stored.sealed_password)?;
    let password = String::from_utf8(password.into_inner())
        .map_err(|_| StorageError::Corrupt("an endpoint password is not UTF-8".into()))?;
    Ok(Some((stored.username, goterra_core::Sensitive::new(password))))
}

/// Endpoint defaults are the caller's own, for deploying from namespace `{id}`: the caller must
/// be a member of `{id}`, and the endpoint public or of `{id}` (the one place where an object of
/// another namespace appears under a URL, because the record belongs to the namespace).
async fn defaults_target(
    state: &AppState,
    user: &Identity,
    namespace_id: &NamespaceId,
    endpoint_id: &EndpointId,
) -> Result<Endpoint, ApiError> {
    access::require_member(state, namespace_id, user).await?;
    find_usable::<Endpoint>(state, namespace_id, endpoint_id)
        .await?
        .ok_or_else(|| ApiError::not_found("endpoint not found"))
}

pub async fn user_defaults(
    state: &AppState,
    uid: &Uid,
    endpoint_id: &EndpointId,
    namespace_id: &NamespaceId,
) -> Result<Option<Defaults>, ApiError> {
    Ok(state
        .endpoint_secrets()
        .defaults(uid, endpoint_id, namespace_id)
        .await?)
}

/// The caller's suggested values for the endpoint's inputs when deploying from `{id}`.
#[utoipa::path(get, path = "/deploy/ns/{id}/endpoint/{endpoint}/defaults", operation_id = "get_endpoint_defaults", tag = "endpoints",
    params(("id" = String, Path), ("endpoint" = String, Path)), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = EndpointDefaults), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_defaults(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, endpoint_id)): Path<(NamespaceId, EndpointId)>,
) -> Result<Json<EndpointDefaults>, ApiError> {
    defaults_target(&state, &user, &namespace_id, &endpoint_id).await?;
    let defaults = user_defaults(&state, &uid_of(&user), &endpoint_id, &namespace_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no defaults found"))?;
    Ok(Json(EndpointDefaults { defaults }))
}

/// Saves the caller's suggested values for the endpoint's inputs (replacing earlier ones).
#[utoipa::path(put, path = "/deploy/ns/{id}/endpoint/{endpoint}/defaults", operation_id = "put_endpoint_defaults", tag = "endpoints",
    params(("id" = String, Path), ("endpoint" = String, Path)), request_body = EndpointDefaults,
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = EndpointDefaults), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put_defaults(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, endpoint_id)): Path<(NamespaceId, EndpointId)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<EndpointDefaults>, ApiError> {
    defaults_target(&state, &user, &namespace_id, &endpoint_id).await?;
    let map = body_object(body)?;
    if !map.contains_key("defaults") {
        return Err(validate::bad(
            "defaults",
            "required: a map of input name to suggested values",
        ));
    }
    let request: EndpointDefaults = decode(map)?;
    validate::defaults("defaults", &request.defaults, &[])?;
    state
        .endpoint_secrets()
        .put_defaults(&uid_of(&user), &endpoint_id, &namespace_id, &request.defaults)
        .await
        .map_err(endpoint_gone)?;
    Ok(Json(request))
}

/// The endpoint was deleted while its record was written.
fn endpoint_gone(err: StorageError) -> ApiError {
    match err {
        StorageError::Referenced => ApiError::not_found("endpoint not found"),
        other => other.into(),
    }
}
