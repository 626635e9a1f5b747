//! The HTTP API under `/store`, compatible with the original routes and JSON keys.

use crate::Store;
use crate::backend::{Metadata, NamespaceBinding};
use crate::keys::{MAX_WAIT_SECS, validate_key, validate_value};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use goterra_core::extract::parse_json;
use goterra_core::token::unix_now;
use goterra_core::{ApiError, ApiQuery, Caller, Claims, ErrorBody, Identity};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::IntoParams;

pub const NAMESPACE_HEADER: &str = "x-api-ns";

pub fn router(store: Arc<Store>) -> Router {
    Router::new()
        .route("/store", get(goterra_core::http::health).post(create_deployment))
        .route("/store/openapi.json", get(openapi_document))
        .route(
            "/store/{id}",
            get(get_deployment).put(put_values).delete(delete_deployment),
        )
        // A key may be named `token`: GET reads it, POST renews the deployment's token.
        .route("/store/{id}/token", get(get_key_named_token).post(renew_token))
        .route("/store/{id}/{key}", get(get_key))
        .with_state(store)
}

pub use goterra_client::Message;
pub use goterra_client::store::{DeploymentData, DeploymentToken, KeyValue};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds to wait for the key to be written when it is not there yet (0 to 600).
    pub wait: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterQuery {
    /// Only keys starting with this prefix (a single, non-empty `filter`; otherwise every key).
    pub filter: Option<String>,
}

fn message(text: &str) -> Json<Message> {
    Json(Message {
        message: text.to_string(),
    })
}

impl Store {
    /// Who is calling. In anonymous mode an `X-API-Key` is taken as the caller's uid, as the
    /// original did; the tokens handed out for it are still scoped to one deployment.
    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.platform.config.feature.anonymous && !headers.contains_key(axum::http::header::AUTHORIZATION) {
            let key = headers
                .get(goterra_core::auth::API_KEY_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .unwrap_or_default();
            if !key.is_empty() {
                return Ok(Caller::User(Identity {
                    uid: key.to_string(),
                    admin: false,
                    super_user: false,
                    email: String::new(),
                    kind: String::new(),
                }));
            }
        }
        let caller = self.platform.authenticator.caller(headers).await?.ok_or_else(|| {
            ApiError::unauthorized("missing credentials: send Authorization: Bearer <token> or X-API-Key")
        })?;
        // A deployment token stops with its owner's account. Not in anonymous mode, where
        // owners are API keys that auth does not know.
        if let Caller::Deployment { uid, .. } = &caller
            && !self.platform.config.feature.anonymous
        {
            self.platform.authenticator.revocations().admit_owner(uid)?;
        }
        Ok(caller)
    }

    /// Lets the caller use deployment `id`: its own scoped token, its owner, an admin, or a
    /// member of the namespace it was created in.
    async fn authorize(&self, caller: &Caller, id: &str, headers: &HeaderMap) -> Result<(), ApiError> {
        match caller {
            Caller::Deployment { deployment, .. } if deployment == id => Ok(()),
            Caller::Deployment { .. } => Err(ApiError::forbidden("this token is scoped to another deployment")),
            Caller::Agent { .. } => Err(agent_refused()),
            Caller::User(identity) => {
                let metadata = self.backend.metadata(id).await?.ok_or_else(deployment_not_found)?;
                if identity.is_admin() || metadata.user == identity.uid {
                    return Ok(());
                }
                if self.is_namespace_member(&metadata.namespace, identity, headers).await? {
                    return Ok(());
                }
                Err(ApiError::forbidden("not authorized: you do not own this deployment"))
            }
        }
    }

    /// Whether deploy's rule lets `identity` use the deployment's namespace.
    async fn is_namespace_member(
        &self,
        binding: &NamespaceBinding,
        identity: &Identity,
        headers: &HeaderMap,
    ) -> Result<bool, ApiError> {
        let Some(rule) = self.namespace_rule() else {
            return Ok(false);
        };
        match binding {
            NamespaceBinding::None => Ok(false),
            NamespaceBinding::Id(id) => rule.may_use(id, identity, headers).await,
            // Not migrated (deploy was not in this process): the old rule until it expires.
            NamespaceBinding::Legacy(key) => Ok(rule.usable_id(key, identity, headers).await?.is_some()),
        }
    }

    fn mint_token(&self, owner: &str, id: &str) -> DeploymentToken {
        let ttl = self.platform.config.store.token_ttl_hours.saturating_mul(3600);
        let expires = unix_now().saturating_add(ttl);
        let token = self.platform.tokens.issue(&Claims::for_store(owner, id, expires));
        DeploymentToken {
            url: self.platform.config.public_url(),
            id: id.to_string(),
            token,
            expires,
        }
    }
}

fn agent_refused() -> ApiError {
    ApiError::unauthorized("agent credentials are not valid here")
}

fn deployment_not_found() -> ApiError {
    ApiError::not_found("deployment not found")
}

/// Creates a deployment and a token scoped to it.
#[utoipa::path(
    post, path = "/store", tag = "store",
    params(("X-API-NS" = Option<String>, Header, description = "Namespace (id or name) whose owners and members may also use the deployment; resolved once, now, to the namespace's id")),
    responses(
        (status = 200, description = "Deployment created", body = DeploymentToken),
        (status = 401, description = "Missing or invalid credentials, or a deployment token", body = ErrorBody),
        (status = 400, description = "X-API-NS given where no namespace rule is reachable, or holds control characters", body = ErrorBody),
        (status = 403, description = "No namespace of that id or name of which the caller is a member", body = ErrorBody),
    ),
    security(("api_key" = []), ("bearer" = []))
)]
pub async fn create_deployment(
    State(store): State<Arc<Store>>,
    headers: HeaderMap,
) -> Result<Json<DeploymentToken>, ApiError> {
    let identity = match store.caller(&headers).await? {
        Caller::User(identity) => identity,
        Caller::Deployment { .. } => {
            return Err(ApiError::unauthorized(
                "a deployment token cannot create deployments: use your API key or user token",
            ));
        }
        Caller::Agent { .. } => return Err(agent_refused()),
    };
    let ns = headers
        .get(NAMESPACE_HEADER)
        .map(|v| v.to_str().map(str::trim))
        .transpose()
        .map_err(|_| ApiError::bad_request("X-API-NS: not a valid header value"))?
        .unwrap_or_default();
    let namespace = if ns.is_empty() {
        NamespaceBinding::None
    } else {
        // The name is resolved once, now: a later rename or a new namespace of the same
        // name does not change which namespace the deployment belongs to.
        let rule = store.namespace_rule().ok_or_else(|| {
            ApiError::bad_request(
                "X-API-NS: namespaces are not available (deploy is not in this process and GOT_PROXY is not set)",
            )
        })?;
        match rule.usable_id(ns, &identity, &headers).await? {
            Some(id) => NamespaceBinding::Id(id),
            None => {
                return Err(ApiError::forbidden(format!(
                    "no namespace {ns:?} that you are a member of"
                )));
            }
        }
    };
    let id = goterra_core::new_id();
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let metadata = Metadata {
        user: identity.uid.clone(),
        namespace,
        created_at: now,
        updated_at: now,
    };
    store.backend.create(&id, &metadata).await?;
    tracing::info!(deployment = %id, uid = %identity.uid, "store deployment created");
    Ok(Json(store.mint_token(&identity.uid, &id)))
}

/// A new token for the deployment (its current token, its owner or an admin may ask).
#[utoipa::path(
    post, path = "/store/{id}/token", tag = "store",
    params(("id" = String, Path, description = "Deployment id")),
    responses(
        (status = 200, description = "A fresh deployment token", body = DeploymentToken),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Not allowed on this deployment", body = ErrorBody),
        (status = 404, description = "Unknown deployment", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn renew_token(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DeploymentToken>, ApiError> {
    let caller = store.caller(&headers).await?;
    store.authorize(&caller, &id, &headers).await?;
    let metadata = store.backend.metadata(&id).await?.ok_or_else(deployment_not_found)?;
    Ok(Json(store.mint_token(&metadata.user, &id)))
}

/// Every user key of a deployment.
#[utoipa::path(
    get, path = "/store/{id}", tag = "store",
    params(("id" = String, Path, description = "Deployment id"), FilterQuery),
    responses(
        (status = 200, description = "The deployment's keys", body = DeploymentData),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Not allowed on this deployment", body = ErrorBody),
        (status = 404, description = "Unknown deployment", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_deployment(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<DeploymentData>, ApiError> {
    let caller = store.caller(&headers).await?;
    store.authorize(&caller, &id, &headers).await?;
    let filter = single_filter(query.as_deref());
    let deployment = store.backend.get_all(&id, filter.as_deref()).await?;
    Ok(Json(DeploymentData { deployment }))
}

/// The original's rule: exactly one non-empty `filter` parameter filters; anything else does not.
fn single_filter(query: Option<&str>) -> Option<String> {
    let query = query?;
    let filters: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "filter")
        .map(|(_, value)| value.into_owned())
        .collect();
    match filters.as_slice() {
        [only] if !only.is_empty() => Some(only.clone()),
        _ => None,
    }
}

/// One key, optionally waiting for it to be written.
#[utoipa::path(
    get, path = "/store/{id}/{key}", tag = "store",
    params(("id" = String, Path, description = "Deployment id"), ("key" = String, Path, description = "Key", pattern = r"^[A-Za-z0-9_.:@-]{1,256}$"), WaitQuery),
    responses(
        (status = 200, description = "The key's value (possibly empty)", body = KeyValue),
        (status = 400, description = "Invalid key or wait", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Not allowed on this deployment", body = ErrorBody),
        (status = 404, description = "Unknown deployment, or the key is not set (after waiting)", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_key(
    State(store): State<Arc<Store>>,
    Path((id, key)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    headers: HeaderMap,
) -> Result<Json<KeyValue>, ApiError> {
    read_key(&store, id, key, query, headers).await
}

/// The key named `token` (`POST` on this path renews the deployment's token instead).
#[utoipa::path(
    get, path = "/store/{id}/token", tag = "store",
    params(("id" = String, Path, description = "Deployment id"), WaitQuery),
    responses(
        (status = 200, description = "The value of key `token` (possibly empty)", body = KeyValue),
        (status = 400, description = "Invalid wait", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Not allowed on this deployment", body = ErrorBody),
        (status = 404, description = "Unknown deployment, or the key is not set (after waiting)", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_key_named_token(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    headers: HeaderMap,
) -> Result<Json<KeyValue>, ApiError> {
    read_key(&store, id, "token".to_string(), query, headers).await
}

async fn read_key(
    store: &Store,
    id: String,
    key: String,
    query: WaitQuery,
    headers: HeaderMap,
) -> Result<Json<KeyValue>, ApiError> {
    validate_key(&key)?;
    // A waiting request may be held for minutes, by the hundred thousand: the state of the
    // authentication (boxed, so its size is not reserved in this future for the whole wait)
    // and the headers are gone before it waits.
    let caller = Box::pin(store.caller(&headers)).await?;
    Box::pin(store.authorize(&caller, &id, &headers)).await?;
    drop((caller, headers));
    let wait = Duration::from_secs(query.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let value = if wait.is_zero() {
        store.backend.get(&id, &key).await?
    } else {
        crate::waiting::wait_for_key(store.backend.as_ref(), &id, &key, wait).await?
    };
    match value {
        Some(value) => Ok(Json(KeyValue { key, value })),
        None => Err(ApiError::not_found(format!("key {key:?} not found"))),
    }
}

/// Sets one key (`{"key","value"}`) or several at once (a JSON array of them).
#[utoipa::path(
    put, path = "/store/{id}", tag = "store",
    params(("id" = String, Path, description = "Deployment id")),
    request_body = KeyValue,
    responses(
        (status = 200, description = "Written", body = Message),
        (status = 400, description = "Invalid body, key or value", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Not allowed on this deployment", body = ErrorBody),
        (status = 404, description = "Unknown deployment", body = ErrorBody),
        (status = 413, description = "Value too large, or too many keys", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn put_values(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Message>, ApiError> {
    let caller = store.caller(&headers).await?;
    store.authorize(&caller, &id, &headers).await?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("request body too large")
        } else {
            ApiError::bad_request("cannot read the request body")
        }
    })?;
    let entries = parse_entries(&body)?;
    let limits = &store.platform.config.store;
    if entries.len() > limits.max_keys {
        return Err(ApiError::too_large(format!(
            "too many keys: a deployment holds at most {} keys",
            limits.max_keys
        )));
    }
    for (key, value) in &entries {
        validate_key(key)?;
        validate_value(key, value, limits.max_value)?;
    }
    store.backend.put(&id, &entries).await?;
    Ok(message("done"))
}

/// `{"key": K, "value": V}` with field names in any case (the old CLI sent `Key`/`Value`), or
/// an array of those.
fn parse_entries(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let json: serde_json::Value = parse_json(body)?;
    match json {
        serde_json::Value::Object(object) => Ok(vec![entry_of(&object)?]),
        serde_json::Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                serde_json::Value::Object(object) => entry_of(object),
                _ => Err(ApiError::bad_request(
                    "each array item must be an object {\"key\", \"value\"}",
                )),
            })
            .collect(),
        serde_json::Value::Array(_) => Err(ApiError::bad_request("the array of keys to write is empty")),
        _ => Err(ApiError::bad_request(
            "expected a JSON object {\"key\": ..., \"value\": ...}",
        )),
    }
}

fn entry_of(object: &serde_json::Map<String, serde_json::Value>) -> Result<(String, String), ApiError> {
    let field = |name: &str| {
        object
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    };
    let key = match field("key") {
        Some(serde_json::Value::String(key)) => key.clone(),
        Some(_) => return Err(ApiError::bad_request("key: must be a string")),
        None => return Err(ApiError::bad_request("key: missing")),
    };
    let value = match field("value") {
        Some(serde_json::Value::String(value)) => value.clone(),
        Some(_) => return Err(ApiError::bad_request("value: must be a string")),
        None => return Err(ApiError::bad_request("value: missing")),
    };
    Ok((key, value))
}

/// Deletes a deployment and all its keys.
#[utoipa::path(
    delete, path = "/store/{id}", tag = "store",
    params(("id" = String, Path, description = "Deployment id")),
    responses(
        (status = 200, description = "Deleted", body = Message),
        (status = 401, description = "Missing, invalid or expired credentials", body = ErrorBody),
        (status = 403, description = "Not allowed on this deployment", body = ErrorBody),
        (status = 404, description = "Unknown deployment", body = ErrorBody),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn delete_deployment(
    State(store): State<Arc<Store>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Message>, ApiError> {
    let caller = store.caller(&headers).await?;
    store.authorize(&caller, &id, &headers).await?;
    if !store.backend.delete(&id).await? {
        return Err(deployment_not_found());
    }
    tracing::info!(deployment = %id, "store deployment deleted");
    Ok(message("deleted"))
}

async fn openapi_document() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_rule_of_the_original() {
        assert_eq!(single_filter(Some("filter=status")).as_deref(), Some("status"));
        assert_eq!(single_filter(Some("filter=")), None);
        assert_eq!(single_filter(Some("filter=a&filter=b")), None);
        assert_eq!(single_filter(Some("other=1")), None);
        assert_eq!(single_filter(None), None);
    }

    #[test]
    fn put_bodies() {
        assert_eq!(
            parse_entries(br#"{"Key":"a","Value":"b"}"#).unwrap(),
            vec![("a".into(), "b".into())]
        );
        assert_eq!(
            parse_entries(br#"{"key":"a","value":"","extra":1}"#).unwrap(),
            vec![("a".into(), String::new())]
        );
        assert_eq!(
            parse_entries(br#"[{"key":"a","value":"1"},{"KEY":"b","VALUE":"2"}]"#)
                .unwrap()
                .len(),
            2
        );
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"3",
            br#"{"key":"a"}"#,
            br#"{"value":"a"}"#,
            br#"{"key":1,"value":"a"}"#,
            br#"{"key":"a","value":2}"#,
            b"[1]",
        ] {
            assert!(
                matches!(parse_entries(bad), Err(ApiError::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
