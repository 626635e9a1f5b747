//! [`RunControl`] over HTTP, against deploy's agent routes, through the typed
//! [`goterra_client::Client`], with an agent credential minted from the shared token secret.

use crate::agent::RunControl;
use crate::state::TerraformState;
use anyhow::Context;
use async_trait::async_trait;
use axum::http::HeaderMap;
use goterra_client::{Client, ClientError, Credential, NamespaceId, RunId, Sensitive};
use goterra_core::ApiError;
use goterra_core::runs::{AgentAnswer, LogLines, RunAction, RunReport, RunSpec};
use goterra_core::{Claims, TokenCodec};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Lifetime of each minted agent credential: one per request, so a short one.
const CREDENTIAL_TTL_SECS: u64 = 300;

pub struct HttpRunControl {
    /// The platform's API, without credential: each call gets a fresh one.
    client: Client,
    agent: String,
    tokens: Arc<TokenCodec>,
    /// The claim won on each run this agent runs, sent back with its reports.
    claims: Mutex<HashMap<RunId, String>>,
}

impl HttpRunControl {
    pub fn new(base: &str, agent: impl Into<String>, tokens: Arc<TokenCodec>) -> anyhow::Result<Self> {
        let client = Client::new(base).context("cannot build the client of deploy")?;
        Ok(Self {
            client,
            agent: agent.into(),
            tokens,
            claims: Mutex::new(HashMap::new()),
        })
    }

    /// The client with a newly minted agent credential.
    fn as_agent(&self) -> Client {
        let expires = goterra_core::token::unix_now() + CREDENTIAL_TTL_SECS;
        let token = self.tokens.issue(&Claims::for_agent(&self.agent, expires));
        self.client.clone().with_token(token)
    }

    fn claim(&self, id: &RunId) -> Option<String> {
        self.claims.lock().ok().and_then(|claims| claims.get(id).cloned())
    }

    fn forget_claim(&self, id: &RunId) {
        if let Ok(mut claims) = self.claims.lock() {
            claims.remove(id);
        }
    }

    /// The answer to a log batch or a heartbeat: a refused one means stop.
    fn or_stop(answer: Option<AgentAnswer>, id: &RunId, what: &str) -> AgentAnswer {
        answer.unwrap_or_else(|| {
            tracing::warn!(run = %id, "deploy refused the {what}: the run was taken over or ended; stopping");
            AgentAnswer {
                cancel: true,
                claim: None,
            }
        })
    }
}

/// `None` when deploy refused the call with a status `refused` recognises, the error when it
/// failed otherwise.
fn unless_refused<T>(
    outcome: Result<T, ClientError>,
    refused: fn(u16) -> bool,
    what: &str,
) -> anyhow::Result<Option<T>> {
    match outcome {
        Ok(answer) => Ok(Some(answer)),
        Err(err) if err.status().is_some_and(refused) => Ok(None),
        Err(err) => Err(anyhow::Error::new(err).context(format!("deploy's answer to the {what}"))),
    }
}

/// Deploy's answer when a job has nothing left to do: the run is gone, no longer waits for this
/// action, or another agent claimed it.
fn not_this_jobs(status: u16) -> bool {
    matches!(status, 404 | 409 | 410)
}

/// Deploy's refusal of a report: another agent took the run over, or the action ended.
fn is_conflict(status: u16) -> bool {
    status == 409
}

/// A user's credential as their request to this service carries it, to call deploy as them.
fn caller_credential(headers: &HeaderMap) -> Credential {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(token) = header("authorization").and_then(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
    }) {
        Credential::Token(Sensitive::new(token))
    } else if let Some(key) = header("x-api-key") {
        Credential::ApiKey(Sensitive::new(key.to_string()))
    } else {
        Credential::Anonymous
    }
}

/// Deploy's refusal, as this service answers it.
fn as_api_error(err: ClientError) -> ApiError {
    match err {
        ClientError::Unauthorized { message } => ApiError::unauthorized(message),
        ClientError::Server { status: 403, message } => ApiError::forbidden(message),
        ClientError::Server { status: 404, message } => ApiError::not_found(message),
        ClientError::Server { status: 400, message } => ApiError::bad_request(message),
        ClientError::Server { status, .. } => ApiError::Unavailable(format!("deploy answered {status}")),
        other => {
            tracing::warn!(error = %other, "cannot reach deploy");
            ApiError::Unavailable("cannot reach deploy".to_string())
        }
    }
}

impl HttpRunControl {
    /// The uid of the run's owner, when the caller of this request may see the run (deploy's
    /// access rules: the caller's credential is forwarded).
    pub async fn run_owner_as_caller(&self, ns: &str, run: &str, headers: &HeaderMap) -> Result<String, ApiError> {
        let client = self.client.clone().with_credential(caller_credential(headers));
        let run = client
            .run(&NamespaceId::from_trusted(ns), &RunId::from_trusted(run))
            .await
            .map_err(as_api_error)?;
        Ok(run.uid)
    }

    /// The run's Terraform state as deploy stores it (the `http` backend's `GET`), if any.
    pub async fn stored_state(&self, run: &str) -> Result<Option<TerraformState>, ApiError> {
        let Some(text) = self
            .as_agent()
            .agent_run_state(&RunId::from_trusted(run))
            .await
            .map_err(as_api_error)?
        else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| ApiError::internal(anyhow::anyhow!("the stored state is not Terraform's: {err}")))
    }
}

#[async_trait]
impl RunControl for HttpRunControl {
    async fn spec(&self, id: &RunId, action: RunAction) -> anyhow::Result<Option<RunSpec>> {
        let outcome = self.as_agent().agent_run_spec(id, action).await;
        unless_refused(outcome, not_this_jobs, "spec")
    }

    async fn started(&self, id: &RunId) -> anyhow::Result<Option<AgentAnswer>> {
        let outcome = self.as_agent().agent_run_started(id).await;
        let answer = unless_refused(outcome, not_this_jobs, "start")?;
        if let (Some(claim), Ok(mut claims)) = (answer.as_ref().and_then(|a| a.claim.as_ref()), self.claims.lock()) {
            claims.insert(id.clone(), claim.clone());
        }
        Ok(answer)
    }

    async fn log(&self, id: &RunId, lines: Vec<String>) -> anyhow::Result<AgentAnswer> {
        let claim = self.claim(id);
        let outcome = self
            .as_agent()
            .agent_run_log(id, &LogLines { lines }, claim.as_deref())
            .await;
        Ok(Self::or_stop(unless_refused(outcome, is_conflict, "log")?, id, "log"))
    }

    async fn heartbeat(&self, id: &RunId) -> anyhow::Result<AgentAnswer> {
        let claim = self.claim(id);
        let outcome = self.as_agent().agent_run_heartbeat(id, claim.as_deref()).await;
        Ok(Self::or_stop(
            unless_refused(outcome, is_conflict, "heartbeat")?,
            id,
            "heartbeat",
        ))
    }

    async fn finished(&self, id: &RunId, report: &RunReport) -> anyhow::Result<()> {
        let claim = self.claim(id);
        let outcome = self.as_agent().agent_run_finished(id, report, claim.as_deref()).await;
        if unless_refused(outcome, is_conflict, "result")?.is_none() {
            // Nothing waits for this result any more: the job is done all the same.
            tracing::warn!(run = %id, "deploy refused the result: the run was taken over or ended");
        }
        self.forget_claim(id);
        Ok(())
    }

    async fn release(&self, id: &RunId) -> anyhow::Result<()> {
        let claim = self.claim(id);
        let outcome = self.as_agent().agent_run_release(id, claim.as_deref()).await;
        self.forget_claim(id);
        if unless_refused(outcome, is_conflict, "hand-back")?.is_none() {
            // Another agent took it over, or it ended: nothing is left to hand back.
            tracing::warn!(run = %id, "deploy refused the hand-back: the run was taken over or ended");
        }
        Ok(())
    }
}
