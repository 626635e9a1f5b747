//! Namespaces: create (ACL), list, get, update (owners), delete (when empty), with
//! `ns_create`/`ns_update`/`ns_delete` events.

use crate::access::{self, NamespaceRecord, ROLE_MEMBER, ROLE_OWNER};
use crate::catalogue::{body_object, decode};
use crate::model::Namespace;
use crate::state::{AppState, now};
use crate::validate::{self, MAX_LIST, MAX_NAME};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use goterra_core::{ApiError, ApiJson, ApiQuery, AuthUser, ConfirmedUser, ErrorBody, Event, Identity};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Any, Row, Transaction};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceList {
    pub ns: Vec<Namespace>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceOne {
    pub ns: Namespace,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NamespaceId {
    pub ns: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NamespaceListQuery {
    /// Admins: `1` lists every namespace instead of their own.
    pub all: Option<u8>,
    pub skip: Option<i64>,
    pub limit: Option<i64>,
}

/// Body of `POST /deploy/ns`: only the name is read.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct NewNamespace {
    pub name: String,
}

/// Body of `PUT /deploy/ns/{id}`: fields left out keep their value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default)]
pub struct NamespacePatch {
    pub name: Option<String>,
    pub owners: Option<Vec<String>>,
    pub members: Option<Vec<String>>,
    pub freeze: Option<bool>,
}

fn db_error(err: sqlx::Error) -> ApiError {
    if goterra_db::is_unique_violation(&err) {
        ApiError::conflict("name: a namespace with this name already exists")
    } else {
        ApiError::internal(err)
    }
}

/// Trimmed, non-empty, bounded uids, each once, in the given order.
fn clean_users(field: &str, users: &[String]) -> Result<Vec<String>, ApiError> {
    if users.len() > MAX_LIST {
        return Err(validate::bad(field, format!("at most {MAX_LIST} users")));
    }
    let mut clean: Vec<String> = Vec::with_capacity(users.len());
    for uid in users {
        let uid = uid.trim();
        if uid.is_empty() || uid.len() > MAX_NAME || uid.chars().any(char::is_control) {
            return Err(validate::bad(field, format!("user ids are 1 to {MAX_NAME} characters")));
        }
        if !clean.iter().any(|known| known == uid) {
            clean.push(uid.to_string());
        }
    }
    Ok(clean)
}

async fn write_users(tx: &mut Transaction<'_, Any>, namespace: &NamespaceRecord) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM deploy_namespace_users WHERE namespace_id = $1")
        .bind(namespace.id.clone())
        .execute(&mut **tx)
        .await?;
    let owners = namespace.owners.iter().map(|uid| (uid, ROLE_OWNER));
    let members = namespace.members.iter().map(|uid| (uid, ROLE_MEMBER));
    for (position, (uid, role)) in owners.chain(members).enumerate() {
        sqlx::query("INSERT INTO deploy_namespace_users (namespace_id, uid, role, position) VALUES ($1, $2, $3, $4)")
            .bind(namespace.id.clone())
            .bind(uid.clone())
            .bind(role)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn location(state: &AppState, id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("{}/deploy/ns/{id}", state.platform.config.public_url())) {
        headers.insert(header::LOCATION, value);
    }
    headers
}

async fn publish(state: &AppState, action: &str, user: &Identity, id: &str) {
    state
        .platform
        .events
        .publish(Event::new(action, user.uid.clone(), id))
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
    let pool = state.db().pool();
    let rows = if user.is_admin() && query.all == Some(1) {
        sqlx::query(&format!(
            "SELECT id FROM deploy_namespaces ORDER BY name, id LIMIT {limit} OFFSET {skip}"
        ))
        .fetch_all(pool)
        .await
    } else {
        sqlx::query(&format!(
            "SELECT n.id FROM deploy_namespaces n JOIN deploy_namespace_users u ON u.namespace_id = n.id \
             WHERE u.uid = $1 ORDER BY n.name, n.id LIMIT {limit} OFFSET {skip}"
        ))
        .bind(user.uid.clone())
        .fetch_all(pool)
        .await
    }
    .map_err(ApiError::internal)?;
    let ids: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String, _>("id").map_err(ApiError::internal))
        .collect::<Result<_, _>>()?;
    let records = access::load_many(&state, &ids).await?;
    Ok(Json(NamespaceList {
        ns: records.into_iter().map(NamespaceRecord::into_view).collect(),
    }))
}

/// Creates a namespace owned by the caller. Any user may when `GOT_ACL_USER_CREATENS=1` (or
/// `acl.allow_user_create_ns`), otherwise admins and super users only.
#[utoipa::path(post, path = "/deploy/ns", operation_id = "create_namespace", tag = "namespaces", request_body = NewNamespace,
    security(("token" = []), ("apikey" = [])),
    responses((status = 201, body = NamespaceId), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
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
        id: goterra_core::new_id(),
        name: validate::name("name", &request.name)?,
        freeze: false,
        owners: vec![user.uid.clone()],
        members: Vec::new(),
    };
    let mut tx = state.db().pool().begin().await.map_err(ApiError::internal)?;
    sqlx::query(r#"INSERT INTO deploy_namespaces (id, name, "freeze", created_at) VALUES ($1, $2, 0, $3)"#)
        .bind(namespace.id.clone())
        .bind(namespace.name.clone())
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    write_users(&mut tx, &namespace).await.map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    publish(&state, "ns_create", &user, &namespace.id).await;
    let headers = location(&state, &namespace.id);
    Ok((StatusCode::CREATED, headers, Json(NamespaceId { ns: namespace.id })).into_response())
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
    let namespace = access::load_by_id_or_name(&state, &id).await?;
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
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<NamespaceOne>, ApiError> {
    let mut namespace = access::load(&state, &id).await?;
    if !namespace.can_manage(&user) {
        return Err(if namespace.is_member(&user.uid) {
            ApiError::forbidden("only the namespace's owners may change it")
        } else {
            access::not_a_member()
        });
    }
    let Value::Object(map) = body else {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    };
    // Unlike catalogue objects, an explicit null here would empty a list of users: refuse it.
    if let Some((key, _)) = map.iter().find(|(_, value)| value.is_null()) {
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
    let mut tx = state.db().pool().begin().await.map_err(ApiError::internal)?;
    sqlx::query(r#"UPDATE deploy_namespaces SET name = $2, "freeze" = $3 WHERE id = $1"#)
        .bind(namespace.id.clone())
        .bind(namespace.name.clone())
        .bind(goterra_db::flag(namespace.freeze))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    write_users(&mut tx, &namespace).await.map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    publish(&state, "ns_update", &user, &namespace.id).await;
    let saved = access::load(&state, &id).await?;
    Ok(Json(NamespaceOne { ns: saved.into_view() }))
}

/// What still lives in a namespace, by kind, as `(count, singular, plural)`.
async fn remaining(state: &AppState, id: &str) -> Result<Vec<String>, ApiError> {
    let kinds = [
        ("deploy_recipes", "recipe", "recipes"),
        ("deploy_templates", "template", "templates"),
        ("deploy_apps", "application", "applications"),
        ("deploy_endpoints", "endpoint", "endpoints"),
    ];
    let mut left = Vec::new();
    for (table, one, many) in kinds {
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table} WHERE namespace_id = $1"))
            .bind(id.to_string())
            .fetch_one(state.db().pool())
            .await
            .map_err(ApiError::internal)?;
        let count: i64 = row.try_get("n").map_err(ApiError::internal)?;
        if count > 0 {
            left.push(format!("{count} {}", if count == 1 { one } else { many }));
        }
    }
    // Runs not destroyed yet; destroyed ones are history and go with the namespace.
    let (live,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM deploy_runs WHERE namespace_id = $1 AND status <> 'destroy_success'")
            .bind(id.to_string())
            .fetch_one(state.db().pool())
            .await
            .map_err(ApiError::internal)?;
    if live > 0 {
        left.push(format!("{live} run{} not destroyed", if live == 1 { "" } else { "s" }));
    }
    Ok(left)
}

/// Deletes an empty namespace (owners and admins); 409 listing what it still holds.
#[utoipa::path(delete, path = "/deploy/ns/{id}", operation_id = "delete_namespace", tag = "namespaces", params(("id" = String, Path)),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = NamespaceId), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ConfirmedUser(user): ConfirmedUser,
    Path(id): Path<String>,
) -> Result<Json<NamespaceId>, ApiError> {
    let namespace = access::load(&state, &id).await?;
    if !namespace.can_manage(&user) {
        return Err(if namespace.is_member(&user.uid) {
            ApiError::forbidden("only the namespace's owners may delete it")
        } else {
            access::not_a_member()
        });
    }
    let left = remaining(&state, &id).await?;
    if !left.is_empty() {
        return Err(ApiError::conflict(format!(
            "the namespace still holds {}: delete them first",
            left.join(", ")
        )));
    }
    let mut tx = state.db().pool().begin().await.map_err(ApiError::internal)?;
    for sql in [
        "DELETE FROM deploy_endpoint_defaults WHERE namespace_id = $1",
        "DELETE FROM deploy_run_logs WHERE run_id IN (SELECT id FROM deploy_runs WHERE namespace_id = $1)",
        "DELETE FROM deploy_run_states WHERE run_id IN (SELECT id FROM deploy_runs WHERE namespace_id = $1)",
        "DELETE FROM deploy_runs WHERE namespace_id = $1",
        "DELETE FROM deploy_namespace_users WHERE namespace_id = $1",
        "DELETE FROM deploy_namespaces WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id.clone())
            .execute(&mut *tx)
            .await
            .map_err(|err| {
                if goterra_db::is_foreign_key_violation(&err) {
                    ApiError::conflict("the namespace received new objects meanwhile: delete them first")
                } else {
                    ApiError::internal(err)
                }
            })?;
    }
    tx.commit().await.map_err(ApiError::internal)?;
    publish(&state, "ns_delete", &user, &id).await;
    Ok(Json(NamespaceId { ns: id }))
}
