//! Who may do what (reference §5, with the holes of §10 closed):
//! - members (owners ∪ members) read and write their namespace's objects;
//! - owners also manage the namespace itself; admins may do everything;
//! - public recipes, templates, applications and endpoints are readable by any logged user and
//!   usable from any namespace;
//! - an object is only reachable under its own namespace's URL: another namespace in the URL is
//!   404, never a way around a check.

use crate::state::AppState;
use goterra_core::{ApiError, Identity};
use sqlx::Row;

#[derive(Clone, Debug)]
pub struct NamespaceRecord {
    pub id: String,
    pub name: String,
    pub freeze: bool,
    pub owners: Vec<String>,
    pub members: Vec<String>,
}

impl NamespaceRecord {
    pub fn is_owner(&self, uid: &str) -> bool {
        self.owners.iter().any(|owner| owner == uid)
    }

    pub fn is_member(&self, uid: &str) -> bool {
        self.is_owner(uid) || self.members.iter().any(|member| member == uid)
    }

    /// Reads and writes the namespace's catalogue.
    pub fn can_use(&self, user: &Identity) -> bool {
        user.is_admin() || self.is_member(&user.uid)
    }

    /// Changes or deletes the namespace itself.
    pub fn can_manage(&self, user: &Identity) -> bool {
        user.is_admin() || self.is_owner(&user.uid)
    }

    pub fn into_view(self) -> crate::model::Namespace {
        crate::model::Namespace {
            id: self.id,
            name: self.name,
            owners: self.owners,
            members: self.members,
            freeze: self.freeze,
        }
    }
}

pub fn not_found_namespace() -> ApiError {
    ApiError::not_found("namespace not found")
}

pub fn not_a_member() -> ApiError {
    ApiError::forbidden("not a member of this namespace")
}

/// Loads several namespaces in two queries, keeping the order of `ids` (at most one page).
pub async fn load_many(state: &AppState, ids: &[String]) -> Result<Vec<NamespaceRecord>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let list = placeholders.join(", ");
    let pool = state.db().pool();
    // The lists hold placeholders only; values are bound.
    let namespaces_sql = format!(r#"SELECT id, name, "freeze" FROM deploy_namespaces WHERE id IN ({list})"#);
    let mut query = sqlx::query_as::<_, (String, String, i64)>(&namespaces_sql);
    for id in ids {
        query = query.bind(id.clone());
    }
    let rows = query.fetch_all(pool).await.map_err(ApiError::internal)?;
    let users_sql = format!(
        "SELECT namespace_id, uid, role FROM deploy_namespace_users WHERE namespace_id IN ({list}) \
         ORDER BY namespace_id, position, uid"
    );
    let mut users_query = sqlx::query_as::<_, (String, String, String)>(&users_sql);
    for id in ids {
        users_query = users_query.bind(id.clone());
    }
    let users = users_query.fetch_all(pool).await.map_err(ApiError::internal)?;
    let mut records: Vec<NamespaceRecord> = Vec::with_capacity(ids.len());
    for id in ids {
        let Some((id, name, freeze)) = rows.iter().find(|(row_id, _, _)| row_id == id).cloned() else {
            continue;
        };
        let mut record = NamespaceRecord {
            id,
            name,
            freeze: freeze != 0,
            owners: Vec::new(),
            members: Vec::new(),
        };
        for (_, uid, role) in users.iter().filter(|(namespace_id, _, _)| *namespace_id == record.id) {
            if role == ROLE_OWNER {
                record.owners.push(uid.clone());
            } else {
                record.members.push(uid.clone());
            }
        }
        records.push(record);
    }
    Ok(records)
}

pub async fn load_optional(state: &AppState, id: &str) -> Result<Option<NamespaceRecord>, ApiError> {
    let pool = state.db().pool();
    let Some(row) = sqlx::query(r#"SELECT id, name, "freeze" FROM deploy_namespaces WHERE id = $1"#)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let users =
        sqlx::query("SELECT uid, role FROM deploy_namespace_users WHERE namespace_id = $1 ORDER BY position, uid")
            .bind(id)
            .fetch_all(pool)
            .await
            .map_err(ApiError::internal)?;
    let mut record = NamespaceRecord {
        id: row.try_get("id").map_err(ApiError::internal)?,
        name: row.try_get("name").map_err(ApiError::internal)?,
        freeze: row.try_get::<i64, _>("freeze").map_err(ApiError::internal)? != 0,
        owners: Vec::new(),
        members: Vec::new(),
    };
    for user in users {
        let uid: String = user.try_get("uid").map_err(ApiError::internal)?;
        let role: String = user.try_get("role").map_err(ApiError::internal)?;
        if role == ROLE_OWNER {
            record.owners.push(uid);
        } else {
            record.members.push(uid);
        }
    }
    Ok(Some(record))
}

pub const ROLE_OWNER: &str = "owner";
pub const ROLE_MEMBER: &str = "member";

/// A namespace by id or, failing that, by name (ids win: a name cannot shadow another id).
pub async fn load_by_id_or_name(state: &AppState, key: &str) -> Result<NamespaceRecord, ApiError> {
    if let Some(namespace) = load_optional(state, key).await? {
        return Ok(namespace);
    }
    let row = sqlx::query("SELECT id FROM deploy_namespaces WHERE name = $1")
        .bind(key.to_string())
        .fetch_optional(state.db().pool())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found_namespace)?;
    let id: String = row.try_get("id").map_err(ApiError::internal)?;
    load(state, &id).await
}

pub async fn load(state: &AppState, id: &str) -> Result<NamespaceRecord, ApiError> {
    load_optional(state, id).await?.ok_or_else(not_found_namespace)
}

/// The namespace, when the caller may use its catalogue: 404 when it does not exist, 403 when
/// the caller is not a member.
pub async fn require_member(state: &AppState, id: &str, user: &Identity) -> Result<NamespaceRecord, ApiError> {
    let namespace = load(state, id).await?;
    if namespace.can_use(user) {
        Ok(namespace)
    } else {
        Err(not_a_member())
    }
}

/// Ids of the namespaces where `uid` is an owner or a member.
pub async fn namespaces_of(state: &AppState, uid: &str) -> Result<Vec<String>, ApiError> {
    let rows = sqlx::query("SELECT namespace_id FROM deploy_namespace_users WHERE uid = $1")
        .bind(uid)
        .fetch_all(state.db().pool())
        .await
        .map_err(ApiError::internal)?;
    rows.iter()
        .map(|row| row.try_get::<String, _>("namespace_id").map_err(ApiError::internal))
        .collect()
}
