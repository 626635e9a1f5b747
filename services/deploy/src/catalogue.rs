//! The four catalogue kinds (recipes, templates, applications, endpoints) share one life cycle,
//! written once here: create, list, get, update (a merge patch, validated again in full), delete
//! (refused while something uses the object), and the public catalogue. Each kind says what is
//! particular to it through [`Kind`].

use crate::access::{self, NamespaceRecord};
use crate::state::AppState;
use crate::storage::catalogue::{CatalogueFilter, Stored};
use crate::storage::{Page, StorageError, now};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use goterra_client::ids::{NamespaceId, TypedId};
use goterra_core::{ApiError, ApiJson, ApiQuery, AuthUser, Identity, Pagination};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::future::Future;

pub use crate::storage::catalogue::Dependent;

/// What a write is checked against.
pub struct WriteContext<'a> {
    pub state: &'a AppState,
    pub user: &'a Identity,
    pub namespace: &'a NamespaceRecord,
}

/// A catalogue kind as the API sees it: its validation, and the names of its path parameter
/// and in messages. Its path segment and JSON wrappers (`SEGMENT`, `ONE`, `MANY`) are the
/// shape's [`goterra_client::deploy::CatalogueItem`]; how it is stored is [`Stored`].
pub trait Kind: Stored + Default + Clone {
    /// Name of the object's path parameter (`/deploy/ns/{id}/recipe/{recipe}`).
    const PARAM: &'static str;
    /// Name in messages.
    const LABEL: &'static str;

    /// Drops the heavy fields for `?light=1` lists.
    fn lighten(&mut self) {}

    /// Checks (and normalises) the whole object before any write. `previous` is the stored
    /// object on update.
    fn validate(
        &mut self,
        ctx: &WriteContext<'_>,
        previous: Option<&Self>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

// ---------------------------------------------------------------------------------------------
// Loading with the access rules

/// One object under the namespace of the URL: any mismatch is "not found".
pub async fn fetch_in<K: Kind>(state: &AppState, namespace_id: &NamespaceId, id: &K::Id) -> Result<K, ApiError> {
    match state.catalogue::<K>().find(id).await? {
        Some(object) if namespace_id == object.namespace() => Ok(object),
        _ => Err(ApiError::not_found(format!("{} not found", K::LABEL))),
    }
}

/// One object usable from a namespace: public, or of that namespace.
pub async fn find_usable<K: Kind>(
    state: &AppState,
    namespace_id: &NamespaceId,
    id: &K::Id,
) -> Result<Option<K>, ApiError> {
    Ok(state
        .catalogue::<K>()
        .find(id)
        .await?
        .filter(|object| object.is_public() || namespace_id == object.namespace()))
}

/// Every public object of a kind plus those of one namespace (no paging: for `/inputs`).
pub async fn usable_from<K: Kind>(state: &AppState, namespace_id: Option<&NamespaceId>) -> Result<Vec<K>, ApiError> {
    let filter = match namespace_id {
        Some(namespace) => CatalogueFilter::UsableFrom(namespace),
        None => CatalogueFilter::Public,
    };
    Ok(state.catalogue::<K>().list(filter, Page::ALL).await?)
}

/// A duplicate name or a vanished reference, named for the kind.
fn write_error<K: Kind>(err: StorageError) -> ApiError {
    match err {
        StorageError::Duplicate => ApiError::conflict(format!(
            "name: a {} with this name already exists in this namespace",
            K::LABEL
        )),
        StorageError::Referenced => ApiError::conflict(format!(
            "{}: a referenced object was deleted meanwhile, or this one is still used",
            K::LABEL
        )),
        other => other.into(),
    }
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
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Items to return, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `1` leaves out scripts and Terraform files.
    #[param(maximum = 255)]
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

fn location<K: Kind>(state: &AppState, namespace: &NamespaceId, id: &K::Id) -> HeaderMap {
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
    Path(namespace_id): Path<NamespaceId>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let namespace = access::require_member(&state, &namespace_id, &user).await?;
    let mut object: K = decode(body_object(body)?)?;
    let id = K::Id::from_trusted(goterra_client::ids::new_object_id());
    object.set_server_fields(&id, &namespace.id, now());
    let ctx = WriteContext {
        state: &state,
        user: &user,
        namespace: &namespace,
    };
    object.validate(&ctx, None).await?;
    object.set_server_fields(&id, &namespace.id, now());
    state.catalogue::<K>().insert(&object).await.map_err(write_error::<K>)?;
    let headers = location::<K>(&state, &namespace.id, &id);
    Ok((StatusCode::CREATED, headers, wrap_one::<K>(id.as_str())).into_response())
}

/// `GET /deploy/ns/{id}/<kind>` → `{"<kinds>": [...]}`, members only.
pub async fn list<K: Kind>(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(namespace_id): Path<NamespaceId>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let (skip, limit) = query.bounds()?;
    access::require_member(&state, &namespace_id, &user).await?;
    let mut objects = state
        .catalogue::<K>()
        .list(CatalogueFilter::InNamespace(&namespace_id), Page { skip, limit })
        .await?;
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
    let mut objects = state
        .catalogue::<K>()
        .list(CatalogueFilter::Public, Page { skip, limit })
        .await?;
    if query.light == Some(1) {
        objects.iter_mut().for_each(Kind::lighten);
    }
    Ok(Json(json!({ K::MANY: objects })))
}

/// An object the caller may read under the namespace `{id}` of the URL: one of that namespace
/// (public, or the caller a member or admin), or a public object of any namespace, as the
/// original's UI reads the catalogue under the user's current namespace (and as a run of it is
/// created there). A private object of another namespace does not exist here (404).
pub async fn readable<K: Kind>(
    state: &AppState,
    user: &Identity,
    namespace_id: &NamespaceId,
    id: &K::Id,
) -> Result<K, ApiError> {
    let not_found = || ApiError::not_found(format!("{} not found", K::LABEL));
    let object = state.catalogue::<K>().find(id).await?.ok_or_else(not_found)?;
    if namespace_id == object.namespace() {
        if !object.is_public() {
            access::require_member(state, namespace_id, user).await?;
        }
    } else if object.is_public() {
        // The URL still names a namespace that exists.
        state.namespaces().load(namespace_id).await?;
    } else {
        return Err(not_found());
    }
    Ok(object)
}

/// `GET /deploy/ns/{id}/<kind>/{oid}` → `{"<kind>": {...}}`.
pub async fn get_one<K: Kind>(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, id)): Path<(NamespaceId, K::Id)>,
) -> Result<Json<Value>, ApiError> {
    let object = readable::<K>(&state, &user, &namespace_id, &id).await?;
    Ok(wrap_one::<K>(object))
}

/// `PUT /deploy/ns/{id}/<kind>/{oid}`: members change the object; the body is merged into the
/// stored object and the result validated like a new one. Answers the object after the change.
pub async fn update_one<K: Kind>(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, id)): Path<(NamespaceId, K::Id)>,
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
    let mut merged = match serde_json::to_value(&stored).map_err(StorageError::from)? {
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
    object.set_server_fields(&id, &namespace.id, now());
    let ctx = WriteContext {
        state: &state,
        user: &user,
        namespace: &namespace,
    };
    object.validate(&ctx, Some(&stored)).await?;
    object.set_server_fields(&id, &namespace.id, now());
    if stored.is_public() && !object.is_public() {
        let outside: Vec<Dependent> = state
            .catalogue::<K>()
            .dependents(&id)
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
    state.catalogue::<K>().update(&object).await.map_err(write_error::<K>)?;
    let saved = fetch_in::<K>(&state, &namespace_id, &id).await?;
    let headers = location::<K>(&state, &namespace.id, &id);
    Ok((headers, wrap_one::<K>(saved)).into_response())
}

/// `DELETE /deploy/ns/{id}/<kind>/{oid}` → `{"<kind>": id}`; 409 while frozen or used.
pub async fn delete_one<K: Kind>(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, id)): Path<(NamespaceId, K::Id)>,
) -> Result<Json<Value>, ApiError> {
    let stored = fetch_in::<K>(&state, &namespace_id, &id).await?;
    access::require_member(&state, &namespace_id, &user).await?;
    if stored.is_frozen() {
        return Err(ApiError::conflict(format!(
            "{} is frozen: an admin must unfreeze it before it can be deleted",
            K::LABEL
        )));
    }
    let dependents = state.catalogue::<K>().dependents(&id).await?;
    if !dependents.is_empty() {
        return Err(ApiError::conflict(format!(
            "the {} is still used by {}",
            K::LABEL,
            describe(&state, &user, &dependents).await?
        )));
    }
    state.catalogue::<K>().delete(&id).await.map_err(write_error::<K>)?;
    Ok(wrap_one::<K>(id.as_str()))
}

/// Names the dependents the caller may know about and counts the others, so that a 409 does
/// not disclose private objects of other namespaces.
pub async fn describe(state: &AppState, user: &Identity, dependents: &[Dependent]) -> Result<String, ApiError> {
    let mine = if user.is_admin() {
        Vec::new()
    } else {
        state.namespaces().ids_of_member(&access::uid_of(user)).await?
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
