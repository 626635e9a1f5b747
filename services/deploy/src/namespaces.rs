//! Namespaces: create (ACL), list, get, update (owners), delete (when empty), with
//! `ns_create`/`ns_update`/`ns_delete` events.

use crate::access::{self, NamespaceRecord};
use crate::catalogue::{body_object, decode};
use crate::state::AppState;
use crate::storage::namespaces::{NamespaceContents, NamespaceFilter};
use crate::storage::{Page, StorageError};
use crate::validate::{self, MAX_LIST, MAX_NAME};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use goterra_client::deploy::{NamespaceList, NamespaceOne, NamespacePatch, NamespaceRef, NewNamespace};
use goterra_client::ids::{NamespaceId, Uid};
use goterra_core::{ApiError, ApiJson, ApiQuery, AuthUser, ConfirmedUser, ErrorBody, Event, Identity};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NamespaceListQuery {
    /// Admins: `1` lists every namespace instead of their own.
    #[param(maximum = 255)]
    pub all: Option<u8>,
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// A duplicate name names the field; other storage errors are the usual answer.
fn write_error(err: StorageError) -> ApiError {
    match err {
        StorageError::Duplicate => ApiError::conflict("name: a namespace with this name already exists"),
        other => other.into(),
    }
}

/// Trimmed, non-empty, bounded uids, each once, in the given order.
fn clean_users(field: &str, users: &[String]) -> Result<Vec<Uid>, ApiError> {
    if users.len() > MAX_LIST {
        return Err(validate::bad(field, format!("at most {MAX_LIST} users")));
    }
    let mut clean: Vec<Uid> = Vec::with_capacity(users.len());
    for uid in users {
        let uid = uid.trim();
        if uid.is_empty() || uid.chars().count() > MAX_NAME || uid.chars().any(char::is_control) {
            return Err(validate::bad(field, format!("user ids are 1 to {MAX_NAME} characters")));
        }
        if !clean.iter().any(|known| known == uid) {
            clean.push(Uid::from_trusted(uid));
        }
    }
    Ok(clean)
}

fn location(state: &AppState, id: &NamespaceId) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("{}/deploy/ns/{id}", state.platform.config.public_url())) {
        headers.insert(header::LOCATION, value);
    }
    headers
}

async fn publish(state: &AppState, action: &str, user: &Identity, id: &NamespaceId) {
    state
        .platform
        .events
        .publish(Event::new(action, user.uid.clone(), id.as_str()))
        .await;
}

/// Lists the caller's namespaces (owner or member); admins list all with `?all=1`.
#[utoipa::path(get, path = "/deploy/ns", operation_id = "list_namespaces", tag = "namespaces", params(NamespaceListQuery),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = NamespaceList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<NamespaceListQuery>,
) -> Result<Json<NamespaceList>, ApiError> {
    let (skip, limit) = goterra_core::Pagination {
        skip: query.skip,
        limit: query.limit,
    }
    .bounds()?;
    let uid = access::uid_of(&user);
    let filter = if user.is_admin() && query.all == Some(1) {
        NamespaceFilter::Every
    } else {
        NamespaceFilter::MemberIs(&uid)
    };
    let records = state.namespaces().list(filter, Page { skip, limit }).await?;
    Ok(Json(NamespaceList {
        ns: records.into_iter().map(NamespaceRecord::into_view).collect(),
    }))
}

/// Creates a namespace owned by the caller. Any user may when `GOT_ACL_USER_CREATENS=1` (or
/// `acl.allow_user_create_ns`), otherwise admins and super users only.
#[utoipa::path(post, path = "/deploy/ns", operation_id = "create_namespace", tag = "namespaces", request_body = NewNamespace,
    security(("token" = []), ("apikey" = [])),
    responses((status = 201, body = NamespaceRef), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ConfirmedUser(user): ConfirmedUser,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    if !state.platform.config.acl.allow_user_create_ns && !user.is_privileged() {
        return Err(ApiError::forbidden(
            "only admins and super users may create namespaces (GOT_ACL_USER_CREATENS=1 lets every user)",
        ));
    }
    let request: NewNamespace = decode(body_object(body)?)?;
    let namespace = NamespaceRecord {
        id: NamespaceId::generate(),
        name: validate::name("name", &request.name)?,
        freeze: false,
        owners: vec![access::uid_of(&user)],
        members: Vec::new(),
    };
    state.namespaces().create(&namespace).await.map_err(write_error)?;
    publish(&state, "ns_create", &user, &namespace.id).await;
    let headers = location(&state, &namespace.id);
    let answer = NamespaceRef {
        ns: namespace.id.into_string(),
    };
    Ok((StatusCode::CREATED, headers, Json(answer)).into_response())
}

/// One namespace, for its owners and members (and admins). `{id}` may also be the namespace's
/// name (the store's `X-API-NS` accepts either and asks here).
#[utoipa::path(get, path = "/deploy/ns/{id}", operation_id = "get_namespace", tag = "namespaces", params(("id" = String, Path)),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = NamespaceOne), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<NamespaceOne>, ApiError> {
    let namespace = state.namespaces().load_by_id_or_name(&id).await?;
    if !namespace.can_use(&user) {
        return Err(access::not_a_member());
    }
    Ok(Json(NamespaceOne {
        ns: namespace.into_view(),
    }))
}

/// Changes a namespace (owners and admins). Fields left out keep their value; a namespace keeps
/// at least one owner; `freeze` changes only by admins and super users. Answers the namespace
/// after the change.
#[utoipa::path(put, path = "/deploy/ns/{id}", operation_id = "update_namespace", tag = "namespaces", params(("id" = String, Path)),
    request_body = NamespacePatch, security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = NamespaceOne), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    ConfirmedUser(user): ConfirmedUser,
    Path(id): Path<NamespaceId>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<NamespaceOne>, ApiError> {
    let mut namespace = access::require_manager(&state, &id, &user, "change").await?;
    let Value::Object(map) = body else {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    };
    // Unlike catalogue objects, an explicit null here would empty a list of users: refuse it
    // (in the fields read; others are ignored, as in every body).
    if let Some((key, _)) = map
        .iter()
        .find(|(key, value)| value.is_null() && matches!(key.as_str(), "name" | "owners" | "members" | "freeze"))
    {
        return Err(validate::bad(key, "must not be null"));
    }
    let patch: NamespacePatch = decode(map)?;
    if let Some(name) = &patch.name {
        namespace.name = validate::name("name", name)?;
    }
    if let Some(owners) = &patch.owners {
        namespace.owners = clean_users("owners", owners)?;
        if namespace.owners.is_empty() {
            return Err(validate::bad("owners", "a namespace keeps at least one owner"));
        }
    }
    if let Some(members) = &patch.members {
        namespace.members = clean_users("members", members)?;
    }
    // Owners are members already; listing them twice would only confuse.
    let owners = namespace.owners.clone();
    namespace.members.retain(|member| !owners.contains(member));
    if let Some(freeze) = patch.freeze
        && freeze != namespace.freeze
    {
        if !user.is_privileged() {
            return Err(ApiError::forbidden("freeze: only admins and super users may change it"));
        }
        namespace.freeze = freeze;
    }
    state.namespaces().update(&namespace).await.map_err(write_error)?;
    publish(&state, "ns_update", &user, &namespace.id).await;
    let saved = state.namespaces().load(&namespace.id).await?;
    Ok(Json(NamespaceOne { ns: saved.into_view() }))
}

/// What still lives in a namespace, for people (`2 recipes`, `1 run not destroyed`).
fn describe_contents(contents: &NamespaceContents) -> Vec<String> {
    let counted = [
        (contents.recipes, "recipe", "recipes"),
        (contents.templates, "template", "templates"),
        (contents.applications, "application", "applications"),
        (contents.endpoints, "endpoint", "endpoints"),
        (contents.live_runs, "run not destroyed", "runs not destroyed"),
    ];
    counted
        .into_iter()
        .filter(|(count, _, _)| *count > 0)
        .map(|(count, one, many)| format!("{count} {}", if count == 1 { one } else { many }))
        .collect()
}

/// Deletes an empty namespace (owners and admins); 409 listing what it still holds.
#[utoipa::path(delete, path = "/deploy/ns/{id}", operation_id = "delete_namespace", tag = "namespaces", params(("id" = String, Path)),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = NamespaceRef), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ConfirmedUser(user): ConfirmedUser,
    Path(id): Path<NamespaceId>,
) -> Result<Json<NamespaceRef>, ApiError> {
    let namespace = access::require_manager(&state, &id, &user, "delete").await?;
    let left = describe_contents(&state.namespaces().contents(&namespace.id).await?);
    if !left.is_empty() {
        return Err(ApiError::conflict(format!(
            "the namespace still holds {}: delete them first",
            left.join(", ")
        )));
    }
    state
        .namespaces()
        .delete(&namespace.id)
        .await
        .map_err(|err| match err {
            StorageError::Referenced => {
                ApiError::conflict("the namespace received new objects meanwhile: delete them first")
            }
            other => other.into(),
        })?;
    publish(&state, "ns_delete", &user, &id).await;
    Ok(Json(NamespaceRef { ns: id.into_string() }))
}
