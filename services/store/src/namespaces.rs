//! Namespace membership, for deployments created with `X-API-NS`: their namespace's owners and
//! members may use them. Namespaces belong to the deploy service; the store asks its tables when
//! they are in the same database (`goterra up`), or deploy itself over HTTP when running alone.

use async_trait::async_trait;
use axum::http::HeaderMap;
use goterra_core::auth::API_KEY_HEADER;
use goterra_core::{ApiError, Identity};
use goterra_db::Db;
use std::time::Duration;

#[async_trait]
pub trait NamespaceAccess: Send + Sync {
    /// Whether the caller owns or is a member of `namespace` (given by id or by name).
    /// `headers` are the caller's request headers, for implementations that ask on its behalf.
    async fn is_member(&self, namespace: &str, caller: &Identity, headers: &HeaderMap) -> Result<bool, ApiError>;
}

/// Reads deploy's `deploy_namespaces` and `deploy_namespace_users` tables.
pub struct SqlNamespaces {
    db: Db,
}

impl SqlNamespaces {
    /// `Some` when deploy's namespace tables exist in `db`.
    pub async fn detect(db: &Db) -> Option<Self> {
        let probe = sqlx::query(
            "SELECT n.id FROM deploy_namespaces n JOIN deploy_namespace_users u ON u.namespace_id = n.id \
             WHERE 1 = 0",
        )
        .fetch_optional(db.pool())
        .await;
        probe.is_ok().then(|| Self { db: db.clone() })
    }
}

#[async_trait]
impl NamespaceAccess for SqlNamespaces {
    async fn is_member(&self, namespace: &str, caller: &Identity, _headers: &HeaderMap) -> Result<bool, ApiError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM deploy_namespace_users u JOIN deploy_namespaces n ON n.id = u.namespace_id \
             WHERE (n.id = $1 OR n.name = $1) AND u.uid = $2 AND u.role IN ('owner', 'member') LIMIT 1",
        )
        .bind(namespace)
        .bind(&caller.uid)
        .fetch_optional(self.db.pool())
        .await
        .map_err(|err| ApiError::Internal(err.into()))?;
        Ok(row.is_some())
    }
}

/// Asks deploy: `GET {base}/deploy/ns/{ns}` with the caller's own credentials answers 200 to
/// members only.
pub struct HttpNamespaces {
    client: reqwest::Client,
    base_url: url::Url,
}

impl HttpNamespaces {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let base_url = url::Url::parse(base_url.trim_end_matches('/'))
            .map_err(|_| anyhow::anyhow!("GOT_PROXY is not a valid URL"))?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { client, base_url })
    }

    fn namespace_url(&self, namespace: &str) -> Result<url::Url, ApiError> {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| ApiError::Internal(anyhow::anyhow!("GOT_PROXY cannot be a base URL")))?
            .pop_if_empty()
            .extend(["deploy", "ns", namespace]);
        Ok(url)
    }
}

#[async_trait]
impl NamespaceAccess for HttpNamespaces {
    async fn is_member(&self, namespace: &str, _caller: &Identity, headers: &HeaderMap) -> Result<bool, ApiError> {
        let mut request = self.client.get(self.namespace_url(namespace)?);
        for name in [axum::http::header::AUTHORIZATION.as_str(), API_KEY_HEADER] {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value.clone());
            }
        }
        let unavailable = || ApiError::Unavailable("deploy service unavailable to check namespace membership".into());
        let response = request.send().await.map_err(|_| unavailable())?;
        match response.status().as_u16() {
            200 => Ok(true),
            401 | 403 | 404 => Ok(false),
            status => {
                tracing::warn!(status, "deploy answered a namespace membership check with an error");
                Err(unavailable())
            }
        }
    }
}
