//! [`RunControl`] over HTTP, against deploy's agent routes, with an agent credential minted
//! from the shared token secret.

use crate::agent::RunControl;
use crate::state::TerraformState;
use anyhow::Context;
use async_trait::async_trait;
use axum::http::HeaderMap;
use goterra_core::ApiError;
use goterra_core::runs::{AgentAnswer, CLAIM_HEADER, LogLines, RunAction, RunReport, RunSpec};
use goterra_core::{Claims, TokenCodec};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Lifetime of each minted agent credential: one per request, so a short one.
const CREDENTIAL_TTL_SECS: u64 = 300;

pub struct HttpRunControl {
    client: reqwest::Client,
    /// Base URL of the platform, without a trailing slash: routes are `{base}/deploy/agent/...`.
    base: String,
    agent: String,
    tokens: Arc<TokenCodec>,
    /// The claim won on each run this agent runs, sent back with its reports.
    claims: Mutex<HashMap<String, String>>,
}

impl HttpRunControl {
    pub fn new(base: &str, agent: impl Into<String>, tokens: Arc<TokenCodec>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            agent: agent.into(),
            tokens,
            claims: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, id: &str, what: &str) -> String {
        format!("{}/deploy/agent/run/{}/{what}", self.base, urlencode(id))
    }

    fn credential(&self) -> String {
        let expires = goterra_core::token::unix_now() + CREDENTIAL_TTL_SECS;
        self.tokens.issue(&Claims::for_agent(&self.agent, expires))
    }

    fn claim(&self, id: &str) -> Option<String> {
        self.claims.lock().ok().and_then(|claims| claims.get(id).cloned())
    }

    /// A report about run `id`, with this agent's claim on it. `None` when deploy answers a
    /// status that `refused` recognises (another agent runs the action, or it ended).
    async fn post<B: serde::Serialize + ?Sized>(
        &self,
        id: &str,
        what: &str,
        body: &B,
        refused: fn(StatusCode) -> bool,
    ) -> anyhow::Result<Option<AgentAnswer>> {
        let mut request = self
            .client
            .post(self.url(id, what))
            .bearer_auth(self.credential())
            .json(body);
        if let Some(claim) = self.claim(id) {
            request = request.header(CLAIM_HEADER, claim);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach deploy ({what})"))?;
        if refused(response.status()) {
            return Ok(None);
        }
        let response = ensure_success(response, what).await?;
        let text = response.text().await.unwrap_or_default();
        if text.trim().is_empty() {
            return Ok(Some(AgentAnswer::default()));
        }
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("unexpected answer from deploy ({what})"))
    }

    /// The answer to a log batch or a heartbeat: a refused one means stop.
    fn or_stop(answer: Option<AgentAnswer>, id: &str, what: &str) -> AgentAnswer {
        answer.unwrap_or_else(|| {
            tracing::warn!(run = %id, "deploy refused the {what}: the run was taken over or ended; stopping");
            AgentAnswer {
                cancel: true,
                claim: None,
            }
        })
    }
}

/// Headers of a user's request that carry its credentials, forwarded to deploy so that deploy
/// applies its own access rules.
const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "x-api-key", "x-api-ns"];

impl HttpRunControl {
    /// The run record as the caller of this request may see it (deploy's access rules).
    pub async fn run_as_caller(&self, ns: &str, run: &str, headers: &HeaderMap) -> Result<Value, ApiError> {
        let mut request = self.client.get(format!(
            "{}/deploy/ns/{}/run/{}",
            self.base,
            urlencode(ns),
            urlencode(run)
        ));
        for name in CREDENTIAL_HEADERS {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body["message"]
            .as_str()
            .unwrap_or("deploy refused the request")
            .to_string();
        Err(match status {
            StatusCode::UNAUTHORIZED => ApiError::unauthorized(message),
            StatusCode::FORBIDDEN => ApiError::forbidden(message),
            StatusCode::NOT_FOUND => ApiError::not_found(message),
            StatusCode::BAD_REQUEST => ApiError::bad_request(message),
            _ => ApiError::Unavailable(format!("deploy answered {status}")),
        })
    }

    /// The run's Terraform state as deploy stores it (the `http` backend's `GET`), if any.
    pub async fn stored_state(&self, run: &str) -> Result<Option<TerraformState>, ApiError> {
        let response = self
            .client
            .get(self.url(run, "state"))
            .bearer_auth(self.credential())
            .send()
            .await
            .map_err(unreachable)?;
        match response.status() {
            StatusCode::NOT_FOUND | StatusCode::NO_CONTENT => Ok(None),
            status if status.is_success() => {
                let text = response.text().await.map_err(unreachable)?;
                if text.trim().is_empty() {
                    return Ok(None);
                }
                serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|err| ApiError::internal(anyhow::anyhow!("the stored state is not Terraform's: {err}")))
            }
            status => Err(ApiError::Unavailable(format!("deploy answered {status} for the state"))),
        }
    }
}

fn unreachable(err: reqwest::Error) -> ApiError {
    tracing::warn!(error = %err, "cannot reach deploy");
    ApiError::Unavailable("cannot reach deploy".to_string())
}

/// Run ids are opaque; keep them a single path segment.
fn urlencode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn ensure_success(response: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let message = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|body| body.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_default();
    anyhow::bail!("deploy answered {status} to {what}: {message}")
}

/// Deploy's answer when a job has nothing left to do: the run is gone, no longer waits for this
/// action, or another agent claimed it.
fn not_this_jobs(status: StatusCode) -> bool {
    matches!(status, StatusCode::NOT_FOUND | StatusCode::CONFLICT | StatusCode::GONE)
}

/// Deploy's refusal of a report: another agent took the run over, or the action ended.
fn is_conflict(status: StatusCode) -> bool {
    status == StatusCode::CONFLICT
}

#[async_trait]
impl RunControl for HttpRunControl {
    async fn spec(&self, id: &str, action: RunAction) -> anyhow::Result<Option<RunSpec>> {
        let response = self
            .client
            .get(self.url(id, "spec"))
            .query(&[("action", action.as_str())])
            .bearer_auth(self.credential())
            .send()
            .await
            .context("cannot reach deploy (spec)")?;
        if not_this_jobs(response.status()) {
            return Ok(None);
        }
        let response = ensure_success(response, "spec").await?;
        let spec = response.json().await.context("unexpected run spec from deploy")?;
        Ok(Some(spec))
    }

    async fn started(&self, id: &str) -> anyhow::Result<Option<AgentAnswer>> {
        let answer = self.post(id, "started", &serde_json::json!({}), not_this_jobs).await?;
        if let (Some(claim), Ok(mut claims)) = (answer.as_ref().and_then(|a| a.claim.as_ref()), self.claims.lock()) {
            claims.insert(id.to_string(), claim.clone());
        }
        Ok(answer)
    }

    async fn log(&self, id: &str, lines: Vec<String>) -> anyhow::Result<AgentAnswer> {
        let answer = self.post(id, "log", &LogLines { lines }, is_conflict).await?;
        Ok(Self::or_stop(answer, id, "log"))
    }

    async fn heartbeat(&self, id: &str) -> anyhow::Result<AgentAnswer> {
        let answer = self.post(id, "heartbeat", &serde_json::json!({}), is_conflict).await?;
        Ok(Self::or_stop(answer, id, "heartbeat"))
    }

    async fn finished(&self, id: &str, report: &RunReport) -> anyhow::Result<()> {
        if self.post(id, "finished", report, is_conflict).await?.is_none() {
            // Nothing waits for this result any more: the job is done all the same.
            tracing::warn!(run = %id, "deploy refused the result: the run was taken over or ended");
        }
        if let Ok(mut claims) = self.claims.lock() {
            claims.remove(id);
        }
        Ok(())
    }

    async fn release(&self, id: &str) -> anyhow::Result<()> {
        let released = self.post(id, "release", &serde_json::json!({}), is_conflict).await;
        if let Ok(mut claims) = self.claims.lock() {
            claims.remove(id);
        }
        if released?.is_none() {
            // Another agent took it over, or it ended: nothing is left to hand back.
            tracing::warn!(run = %id, "deploy refused the hand-back: the run was taken over or ended");
        }
        Ok(())
    }
}
