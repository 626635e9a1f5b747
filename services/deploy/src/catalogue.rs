//! The four catalogue kinds (recipes, templates, applications, endpoints) share one life cycle,
//! written once here: create, list, get, update (a merge patch, validated again in full), delete
//! (refused while something uses the object), and the public catalogue. Each kind says what is
//! particular to it through [`Kind`].

use crate::access::{self, NamespaceRecord};
use crate::state::{AppState, now};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use goterra_core::{ApiError, ApiJson, ApiQuery, AuthUser, Identity, Pagination};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sqlx::{Any, Row, Transaction};
use std::future::Future;

/// An object that uses another one (and so keeps it from being deleted or made private).
#[derive(Clone, Debug)]
pub struct Dependent {
    pub kind: &'static str,
    pub name: String,
    pub namespace_id: String,
}

/// What a write is checked against.
pub struct WriteContext<'a> {
    pub state: &'a AppState,
    pub user: &'a Identity,
    pub namespace: &'a NamespaceRecord,
}

pub trait Kind: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static {
    const TABLE: &'static str;
    /// Path segment under `/deploy/ns/{id}/`.
    const SEGMENT: &'static str;
    /// Name of the object's path parameter (`/deploy/ns/{id}/recipe/{recipe}`).
    const PARAM: &'static str;
    /// Key of the response wrapper for one object (`{"recipe": ...}`).
    const ONE: &'static str;
    /// Key of the response wrapper for a list (`{"recipes": [...]}`).
    const MANY: &'static str;
    /// Name in messages.
    const LABEL: &'static str;
    /// Kind-specific columns, written from [`Kind::extra_values`] in this order.
    const EXTRA_COLUMNS: &'static [&'static str];

    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn namespace(&self) -> &str;
    fn is_public(&self) -> bool;
    fn is_frozen(&self) -> bool;
    fn ts(&self) -> i64;
    fn set_server_fields(&mut self, id: &str, namespace: &str, ts: i64);
    fn extra_values(&self) -> Vec<Option<String>>;

    /// Drops the heavy fields for `?light=1` lists.
    fn lighten(&mut self) {}

    /// Checks (and normalises) the whole object before any write. `previous` is the stored
    /// object on update.
    fn validate(
        &mut self,
        ctx: &WriteContext<'_>,
        previous: Option<&Self>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Objects that use this one.
    fn dependents(state: &AppState, id: &str) -> impl Future<Output = Result<Vec<Dependent>, ApiError>> + Send;

    /// Rows of relation tables derived from the object, rewritten on every write.
    fn write_relations(&self, _tx: &mut Transaction<'_, Any>) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async { Ok(()) }
    }

    /// Rows owned by the object, removed with it.
    fn delete_relations(
        _tx: &mut Transaction<'_, Any>,
        _id: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async { Ok(()) }
    }
}

// ---------------------------------------------------------------------------------------------
// Storage

fn decode_row<K: Kind>(row: &sqlx::any::AnyRow) -> Result<K, ApiError> {
    let body: String = row.try_get("body").map_err(ApiError::internal)?;
    let mut object: K = serde_json::from_str(&body).map_err(ApiError::internal)?;
    let id: String = row.try_get("id").map_err(ApiError::internal)?;
    let namespace: String = row.try_get("namespace_id").map_err(ApiError::internal)?;
    let ts: i64 = row.try_get("ts").map_err(ApiError::internal)?;
    object.set_server_fields(&id, &namespace, ts);
    Ok(object)
}

/// One object by id, whatever its namespace.
pub async fn fetch<K: Kind>(state: &AppState, id: &str) -> Result<Option<K>, ApiError> {
    let sql = format!("SELECT id, namespace_id, ts, body FROM {} WHERE id = $1", K::TABLE);
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(state.db().pool())
        .await
        .map_err(ApiError::internal)?;
    row.as_ref().map(decode_row::<K>).transpose()
}

/// One object under the namespace of the URL: any mismatch is "not found".
pub async fn fetch_in<K: Kind>(state: &AppState, namespace_id: &str, id: &str) -> Result<K, ApiError> {
    match fetch::<K>(state, id).await? {
        Some(object) if object.namespace() == namespace_id => Ok(object),
        _ => Err(ApiError::not_found(format!("{} not found", K::LABEL))),
    }
}

async fn list_where<K: Kind>(
    state: &AppState,
    condition: &str,
    bind: Option<&str>,
    skip: i64,
    limit: i64,
) -> Result<Vec<K>, ApiError> {
    let sql = format!(
        "SELECT id, namespace_id, ts, body FROM {} WHERE {condition} ORDER BY name, id LIMIT {limit} OFFSET {skip}",
        K::TABLE
    );
    let mut query = sqlx::query(&sql);
    if let Some(value) = bind {
        query = query.bind(value.to_string());
    }
    let rows = query.fetch_all(state.db().pool()).await.map_err(ApiError::internal)?;
    rows.iter().map(decode_row::<K>).collect()
}

/// Every public object of a kind plus those of one namespace (no paging: for `/inputs`).
pub async fn usable_from<K: Kind>(state: &AppState, namespace_id: Option<&str>) -> Result<Vec<K>, ApiError> {
    match namespace_id {
        Some(ns) => {
            list_where::<K>(
                state,
                "public = 1 OR namespace_id = $1",
                Some(ns),
                0,
                i64::from(i32::MAX),
            )
            .await
        }
        None => list_where::<K>(state, "public = 1", None, 0, i64::from(i32::MAX)).await,
    }
}

fn write_error<K: Kind>(err: sqlx::Error) -> ApiError {
    if goterra_db::is_unique_violation(&err) {
        ApiError::conflict(format!(
            "name: a {} with this name already exists in this namespace",
            K::LABEL
        ))
    } else if goterra_db::is_foreign_key_violation(&err) {
        ApiError::conflict(format!(
            "{}: a referenced object was deleted meanwhile, or this one is still used",
            K::LABEL
        ))
    } else {
        ApiError::internal(err)
    }
}

async fn insert<K: Kind>(state: &AppState, object: &K) -> Result<(), ApiError> {
    let extra = K::EXTRA_COLUMNS;
    let columns: String = extra.iter().map(|c| format!(", {c}")).collect();
    let placeholders: String = (0..extra.len()).map(|i| format!(", ${}", 8 + i)).collect();
    let sql = format!(
        "INSERT INTO {} (id, namespace_id, name, public, frozen, ts, body{columns}) VALUES ($1, $2, $3, $4, $5, $6, $7{placeholders})",
        K::TABLE
    );
    let body = serde_json::to_string(object).map_err(ApiError::internal)?;
    let query = sqlx::query(&sql)
        .bind(object.id().to_string())
        .bind(object.namespace().to_string())
        .bind(object.name().to_string())
        .bind(goterra_db::flag(object.is_public()))
        .bind(goterra_db::flag(object.is_frozen()))
        .bind(object.ts())
        .bind(body);
    write_row(state, object, query).await
}

async fn update<K: Kind>(state: &AppState, object: &K) -> Result<(), ApiError> {
    let extra: String = K::EXTRA_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| format!(", {c} = ${}", 7 + i))
        .collect();
    let sql = format!(
        "UPDATE {} SET name = $2, public = $3, frozen = $4, ts = $5, body = $6{extra} WHERE id = $1",
        K::TABLE
    );
    let body = serde_json::to_string(object).map_err(ApiError::internal)?;
    let query = sqlx::query(&sql)
        .bind(object.id().to_string())
        .bind(object.name().to_string())
        .bind(goterra_db::flag(object.is_public()))
        .bind(goterra_db::flag(object.is_frozen()))
        .bind(object.ts())
        .bind(body);
    write_row(state, object, query).await
}

/// Binds the kind's extra columns after the common ones, then runs the statement and writes the
/// object's relations in one transaction.
async fn write_row<'q, K: Kind>(
    state: &AppState,
    object: &K,
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
) -> Result<(), ApiError> {
    for value in object.extra_values() {
        query = query.bind(value);
    }
    let mut tx = state.db().pool().begin().await.map_err(ApiError::internal)?;
    query.execute(&mut *tx).await.map_err(write_error::<K>)?;
    object.write_relations(&mut tx).await.map_err(write_error::<K>)?;
    tx.commit().await.map_err(write_error::<K>)
}

async fn delete_row<K: Kind>(state: &AppState, id: &str) -> Result<(), ApiError> {
    let mut tx = state.db().pool().begin().await.map_err(ApiError::internal)?;
    K::delete_relations(&mut tx, id).await.map_err(write_error::<K>)?;
    sqlx::query(&format!("DELETE FROM {} WHERE id = $1", K::TABLE))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(write_error::<K>)?;
    tx.commit().await.map_err(write_error::<K>)
}

// ---------------------------------------------------------------------------------------------
// Request bodies

/// The JSON object of a request body, with `null` members dropped (they mean "empty").
pub fn body_object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        _ => Err(ApiError::bad_request("request body must be a JSON object")),
    }
}

/// Decodes a body into a typed object; the error names the offending field.
pub fn decode<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|err| {
        let path = err.path().to_string();
        // serde quotes the offending value: keep the message short.
        ApiError::bad_request(format!(
            "{path}: {}",
            crate::validate::shorten_message(&err.inner().to_string())
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Routes

#[derive(Clone, Copy, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Items to skip (default 0).
    pub skip: Option<i64>,
    /// Items to return, 1 to 500 (default 100).
    pub limit: Option<i64>,
    /// `1` leaves out scripts and Terraform files.
    pub light: Option<u8>,
}

impl ListQuery {
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        Pagination {
            skip: self.skip,
            limit: self.limit,
        }
        .bounds()
    }
}

fn wrap_one<K: Kind>(value: impl Serialize) -> Json<Value> {
    Json(json!({ K::ONE: value }))
}

fn location<K: Kind>(state: &AppState, namespace: &str, id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let url = format!(
        "{}/deploy/ns/{namespace}/{}/{id}",
        state.platform.config.public_url(),
        K::SEGMENT
    );
    if let Ok(value) = HeaderValue::from_str(&url) {
        headers.insert(header::LOCATION, value);
    }
    headers
}

/// `POST /deploy/ns/{id}/<kind>` → 201 `{"<kind>": id}`.
pub async fn create<K: Kind>(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(namespace_id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let namespace = access::require_member(&state, &namespace_id, &user).await?;
    let mut object: K = decode(body_object(body)?)?;
    let id = goterra_core::new_id();
    object.set_server_fields(&id, &namespace.id, now());
    let ctx = WriteContext {
        state: &state,
        user: &user,
        namespace: &namespace,
    };
    object.validate(&ctx, None).await?;
    object.set_server_fields(&id, &namespace.id, now());
    insert(&state, &object).await?;
    let headers = location::<K>(&state, &namespace.id, &id);
    Ok((StatusCode::CREATED, headers, wrap_one::<K>(id)).into_response())
}

/// `GET /deploy/ns/{id}/<kind>` → `{"<kinds>": [...]}`, members only.
pub async fn list<K: Kind>(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(namespace_id): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let (skip, limit) = query.bounds()?;
    access::require_member(&state, &namespace_id, &user).await?;
    let mut objects = list_where::<K>(&state, "namespace_id = $1", Some(&namespace_id), skip, limit).await?;
    if query.light == Some(1) {
        objects.iter_mut().for_each(Kind::lighten);
    }
    Ok(Json(json!({ K::MANY: objects })))
}

/// `GET /deploy/<kinds>`: the public catalogue, any logged user.
pub async fn list_public<K: Kind>(
    State(state): State<AppState>,
    AuthUser(_user): AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let (skip, limit) = query.bounds()?;
    let mut objects = list_where::<K>(&state, "public = 1", None, skip, limit).await?;
    if query.light == Some(1) {
        objects.iter_mut().for_each(Kind::lighten);
    }
    Ok(Json(json!({ K::MANY: objects })))
}

/// An object the caller may read: under its own namespace's URL, and public or the caller a
/// member (or admin).
pub async fn readable<K: Kind>(state: &AppState, user: &Identity, namespace_id: &str, id: &str) -> Result<K, ApiError> {
    let object = fetch_in::<K>(state, namespace_id, id).await?;
    if !object.is_public() {
        access::require_member(state, namespace_id, user).await?;
    }
    Ok(object)
}

/// `GET /deploy/ns/{id}/<kind>/{oid}` → `{"<kind>": {...}}`.
pub async fn get_one<K: Kind>(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let object = readable::<K>(&state, &user, &namespace_id, &id).await?;
    Ok(wrap_one::<K>(object))
}

/// `PUT /deploy/ns/{id}/<kind>/{oid}`: members change the object; the body is merged into the
/// stored object and the result validated like a new one. Answers the object after the change.
pub async fn update_one<K: Kind>(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let stored = fetch_in::<K>(&state, &namespace_id, &id).await?;
    let namespace = access::require_member(&state, &namespace_id, &user).await?;
    let Value::Object(patch) = body else {
        return Err(ApiError::bad_request("request body must be a JSON object"));
    };
    if stored.is_frozen() {
        let unfreezing = patch.get("frozen") == Some(&Value::Bool(false));
        if !(user.is_admin() && unfreezing) {
            return Err(ApiError::conflict(format!(
                "{0} is frozen: an admin must unfreeze it (\"frozen\": false) before it can change",
                K::LABEL
            )));
        }
    }
    let mut merged = match serde_json::to_value(&stored).map_err(ApiError::internal)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    let mut object: K = decode(body_object(Value::Object(merged))?)?;
    object.set_server_fields(stored.id(), &namespace.id, now());
    let ctx = WriteContext {
        state: &state,
        user: &user,
        namespace: &namespace,
    };
    object.validate(&ctx, Some(&stored)).await?;
    object.set_server_fields(stored.id(), &namespace.id, now());
    if stored.is_public() && !object.is_public() {
        let outside: Vec<Dependent> = K::dependents(&state, &id)
            .await?
            .into_iter()
            .filter(|dependent| dependent.namespace_id != namespace.id)
            .collect();
        if !outside.is_empty() {
            return Err(ApiError::conflict(format!(
                "public: the {} is used from other namespaces ({}), it must stay public",
                K::LABEL,
                describe(&state, &user, &outside).await?
            )));
        }
    }
    update(&state, &object).await?;
    let saved = fetch_in::<K>(&state, &namespace_id, &id).await?;
    let headers = location::<K>(&state, &namespace.id, &id);
    Ok((headers, wrap_one::<K>(saved)).into_response())
}

/// `DELETE /deploy/ns/{id}/<kind>/{oid}` → `{"<kind>": id}`; 409 while frozen or used.
pub async fn delete_one<K: Kind>(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let stored = fetch_in::<K>(&state, &namespace_id, &id).await?;
    access::require_member(&state, &namespace_id, &user).await?;
    if stored.is_frozen() {
        return Err(ApiError::conflict(format!(
            "{} is frozen: an admin must unfreeze it before it can be deleted",
            K::LABEL
        )));
    }
    let dependents = K::dependents(&state, &id).await?;
    if !dependents.is_empty() {
        return Err(ApiError::conflict(format!(
            "the {} is still used by {}",
            K::LABEL,
            describe(&state, &user, &dependents).await?
        )));
    }
    delete_row::<K>(&state, &id).await?;
    Ok(wrap_one::<K>(id))
}

/// Names the dependents the caller may know about and counts the others, so that a 409 does
/// not disclose private objects of other namespaces.
pub async fn describe(state: &AppState, user: &Identity, dependents: &[Dependent]) -> Result<String, ApiError> {
    let mine = if user.is_admin() {
        Vec::new()
    } else {
        access::namespaces_of(state, &user.uid).await?
    };
    let mut named = Vec::new();
    let mut hidden = 0usize;
    for dependent in dependents {
        if user.is_admin() || mine.contains(&dependent.namespace_id) {
            named.push(format!("{} '{}'", dependent.kind, dependent.name));
        } else {
            hidden += 1;
        }
    }
    if hidden > 0 {
        named.push(format!("{hidden} object(s) of namespaces you are not a member of"));
    }
    Ok(named.join(", "))
}

/// Dependents found by a query selecting `name` and `namespace_id`.
pub async fn dependents_by(
    state: &AppState,
    kind: &'static str,
    sql: &str,
    id: &str,
) -> Result<Vec<Dependent>, ApiError> {
    let rows = sqlx::query(sql)
        .bind(id.to_string())
        .fetch_all(state.db().pool())
        .await
        .map_err(ApiError::internal)?;
    rows.iter()
        .map(|row| {
            Ok(Dependent {
                kind,
                name: row.try_get("name").map_err(ApiError::internal)?,
                namespace_id: row.try_get("namespace_id").map_err(ApiError::internal)?,
            })
        })
        .collect()
}
