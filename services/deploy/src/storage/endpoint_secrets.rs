//! Users' credentials for endpoints (`deploy_endpoint_secrets`, password sealed by the caller)
//! and their suggested input values per endpoint and namespace (`deploy_endpoint_defaults`).

use super::support::{StorageResult, now};
use crate::model::Defaults;
use goterra_client::ids::{EndpointId, NamespaceId, Uid};
use goterra_db::Db;

/// A stored credential: the cloud user name and the sealed password.
pub struct StoredCredential {
    pub username: String,
    pub sealed_password: String,
}

#[derive(Clone, Copy)]
pub struct EndpointSecretRepo<'a> {
    db: &'a Db,
}

impl<'a> EndpointSecretRepo<'a> {
    pub fn new(db: &'a Db) -> Self {
        Self { db }
    }

    /// Stores or replaces the user's credential. [`super::StorageError::Referenced`]: the endpoint is gone.
    pub async fn put(
        &self,
        uid: &Uid,
        endpoint_id: &EndpointId,
        username: &str,
        sealed_password: String,
    ) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO deploy_endpoint_secrets (uid, endpoint_id, username, password, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (uid, endpoint_id) DO UPDATE SET username = excluded.username, \
             password = excluded.password, updated_at = excluded.updated_at",
        )
        .bind(uid.to_string())
        .bind(endpoint_id.to_string())
        .bind(username.to_string())
        .bind(sealed_password)
        .bind(now())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn find(&self, uid: &Uid, endpoint_id: &EndpointId) -> StorageResult<Option<StoredCredential>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT username, password FROM deploy_endpoint_secrets WHERE uid = $1 AND endpoint_id = $2",
        )
        .bind(uid.to_string())
        .bind(endpoint_id.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|(username, sealed_password)| StoredCredential {
            username,
            sealed_password,
        }))
    }

    pub async fn delete(&self, uid: &Uid, endpoint_id: &EndpointId) -> StorageResult<()> {
        sqlx::query("DELETE FROM deploy_endpoint_secrets WHERE uid = $1 AND endpoint_id = $2")
            .bind(uid.to_string())
            .bind(endpoint_id.to_string())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// The user's suggested values for an endpoint when deploying from a namespace.
    pub async fn defaults(
        &self,
        uid: &Uid,
        endpoint_id: &EndpointId,
        namespace_id: &NamespaceId,
    ) -> StorageResult<Option<Defaults>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT defaults FROM deploy_endpoint_defaults WHERE uid = $1 AND endpoint_id = $2 AND namespace_id = $3",
        )
        .bind(uid.to_string())
        .bind(endpoint_id.to_string())
        .bind(namespace_id.to_string())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|(text,)| serde_json::from_str(&text).map_err(Into::into))
            .transpose()
    }

    /// Stores or replaces them. [`super::StorageError::Referenced`]: the endpoint is gone.
    pub async fn put_defaults(
        &self,
        uid: &Uid,
        endpoint_id: &EndpointId,
        namespace_id: &NamespaceId,
        defaults: &Defaults,
    ) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO deploy_endpoint_defaults (uid, endpoint_id, namespace_id, defaults) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (uid, endpoint_id, namespace_id) DO UPDATE SET defaults = excluded.defaults",
        )
        .bind(uid.to_string())
        .bind(endpoint_id.to_string())
        .bind(namespace_id.to_string())
        .bind(serde_json::to_string(defaults)?)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}
