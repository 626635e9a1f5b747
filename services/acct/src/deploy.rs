//! What acct reads from deploy: namespace members, the runs that changed, and each run's
//! history and billable resources. [`HttpDeploy`] calls deploy's service routes with a service
//! credential minted from the shared token secret; acct never reads deploy's tables.

use anyhow::Context;
use async_trait::async_trait;
use goterra_core::service_api::{ChangedRuns, NamespaceMembers, RunUsage};
use goterra_core::{Claims, TokenCodec};
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Deploy could not be reached or answered with an error: try again later.
    #[error("deploy is unavailable: {0}")]
    Unavailable(String),
}

/// Where run and namespace facts come from.
#[async_trait]
pub trait RunSource: Send + Sync {
    /// The run's usage with `attributes`; `None` when deploy does not know the run.
    async fn run_usage(&self, run: &str, attributes: &[String]) -> Result<Option<RunUsage>, SourceError>;
    /// Runs whose status changed at or after `since` (unix seconds), oldest first, a page.
    async fn changed_runs(&self, since: i64) -> Result<ChangedRuns, SourceError>;
    /// The namespace's owners and members; `None` when it does not exist.
    async fn namespace(&self, id: &str) -> Result<Option<NamespaceMembers>, SourceError>;
}

/// Lifetime of each minted credential: one per request, so a short one.
const CREDENTIAL_TTL_SECS: u64 = 300;
/// The service name in acct's credentials.
pub const SERVICE_NAME: &str = "acct";

pub struct HttpDeploy {
    client: reqwest::Client,
    base: String,
    tokens: Arc<TokenCodec>,
}

impl HttpDeploy {
    /// `base` is the URL deploy is reached at (routes are `{base}/deploy/service/...`).
    pub fn new(base: &str, tokens: Arc<TokenCodec>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            tokens,
        })
    }

    fn credential(&self) -> String {
        let expires = goterra_core::token::unix_now() + CREDENTIAL_TTL_SECS;
        self.tokens.issue(&Claims::for_service(SERVICE_NAME, expires))
    }

    /// GETs `path` (with `query`); `None` on 404.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, SourceError> {
        let unavailable = |err: reqwest::Error| SourceError::Unavailable(err.without_url().to_string());
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .query(query)
            .bearer_auth(self.credential())
            .send()
            .await
            .map_err(unavailable)?;
        match response.status() {
            StatusCode::OK => response.json().await.map(Some).map_err(unavailable),
            StatusCode::NOT_FOUND => Ok(None),
            status => {
                let body = response.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|error| error.get("message")?.as_str().map(str::to_string))
                    .unwrap_or_default();
                Err(SourceError::Unavailable(format!("{path}: {status} {message}")))
            }
        }
    }
}

fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[async_trait]
impl RunSource for HttpDeploy {
    async fn run_usage(&self, run: &str, attributes: &[String]) -> Result<Option<RunUsage>, SourceError> {
        self.get(
            &format!("/deploy/service/run/{}/usage", segment(run)),
            &[("attributes", attributes.join(","))],
        )
        .await
    }

    async fn changed_runs(&self, since: i64) -> Result<ChangedRuns, SourceError> {
        Ok(self
            .get("/deploy/service/runs", &[("since", since.to_string())])
            .await?
            .unwrap_or_default())
    }

    async fn namespace(&self, id: &str) -> Result<Option<NamespaceMembers>, SourceError> {
        self.get(&format!("/deploy/service/ns/{}", segment(id)), &[]).await
    }
}
