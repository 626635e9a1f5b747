//! Namespace membership for deployments bound to a namespace with `X-API-NS`. The rule is
//! deploy's ([`goterra_core::namespaces::NamespaceRule`]): registered in the platform when
//! deploy runs in the same process (`goterra up`), else asked over HTTP by [`HttpNamespaces`].

use async_trait::async_trait;
use axum::http::HeaderMap;
use goterra_core::auth::API_KEY_HEADER;
use goterra_core::namespaces::NamespaceRule;
use goterra_core::{ApiError, Identity};
use std::time::Duration;

/// Asks deploy: `GET {base}/deploy/ns/{key}` with the caller's own credentials answers 200 and
/// the namespace to those who may use it (owners, members, admins).
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

    /// The id of the namespace `key` names, when the caller may use it.
    async fn ask(&self, key: &str, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        let mut request = self.client.get(self.namespace_url(key)?);
        for name in [axum::http::header::AUTHORIZATION.as_str(), API_KEY_HEADER] {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value.clone());
            }
        }
        let unavailable = || ApiError::Unavailable("deploy service unavailable to check namespace membership".into());
        let response = request.send().await.map_err(|err| {
            tracing::warn!(error = %err.without_url(), "cannot reach deploy to check a namespace membership");
            unavailable()
        })?;
        match response.status().as_u16() {
            200 => {
                // Deploy's own shape (the namespace's id is `_id`, as in the original).
                let answer: goterra_client::deploy::NamespaceOne = response.json().await.map_err(|err| {
                    tracing::warn!(error = %err.without_url(), "unreadable answer from deploy to a namespace membership check");
                    unavailable()
                })?;
                Ok(Some(answer.ns.id))
            }
            401 | 403 | 404 => Ok(None),
            status => {
                tracing::warn!(status, "deploy answered a namespace membership check with an error");
                Err(unavailable())
            }
        }
    }
}

#[async_trait]
impl NamespaceRule for HttpNamespaces {
    async fn usable_id(&self, key: &str, _caller: &Identity, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        self.ask(key, headers).await
    }

    async fn may_use(&self, id: &str, _caller: &Identity, headers: &HeaderMap) -> Result<bool, ApiError> {
        // Deploy also accepts a name in the URL: only an answer about this very id counts.
        Ok(self.ask(id, headers).await?.is_some_and(|found| found == id))
    }

    async fn id_of(&self, _key: &str) -> Result<Option<String>, ApiError> {
        Ok(None)
    }
}
