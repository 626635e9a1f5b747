//! Asks the auth service over HTTP, for services that run in their own process: API keys
//! (`GET {GOT_PROXY_AUTH}/auth/api`) and users' status for the revocation map
//! (`POST {GOT_PROXY_AUTH}/auth/status`, with a short-lived service token).

use crate::auth::{API_KEY_HEADER, ApiKeyResolver};
use crate::error::ApiError;
use crate::identity::Identity;
use crate::revocation::{RECHECK_BATCH, StatusAnswer, StatusRequest, UserStatus};
use crate::sensitive::Sensitive;
use crate::token::{Claims, TokenCodec, unix_now};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

pub struct RemoteApiKeyResolver {
    client: reqwest::Client,
    auth_base_url: String,
    /// Mints the service token of status calls.
    tokens: Arc<TokenCodec>,
}

/// Lifetime of the service token minted for one call.
const SERVICE_TOKEN_SECS: u64 = 60;

/// The user part of auth's answer; the original sent `User`/`Token` capitalised.
#[derive(Deserialize)]
struct AuthAnswer {
    #[serde(alias = "User")]
    user: RemoteUser,
}

#[derive(Deserialize)]
struct RemoteUser {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    admin: bool,
    #[serde(default, rename = "super")]
    super_user: bool,
    #[serde(default)]
    email: String,
    #[serde(default)]
    kind: String,
}

impl RemoteApiKeyResolver {
    pub fn new(auth_base_url: impl Into<String>, tokens: Arc<TokenCodec>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self {
            client,
            auth_base_url: auth_base_url.into().trim_end_matches('/').to_string(),
            tokens,
        })
    }

    async fn statuses_batch(&self, uids: &[String]) -> Result<Vec<UserStatus>, ApiError> {
        let unavailable = |_| ApiError::Unavailable("auth service unavailable".into());
        let token = self.tokens.issue(&Claims::for_service(
            "goterra",
            unix_now().saturating_add(SERVICE_TOKEN_SECS),
        ));
        let response = self
            .client
            .post(format!("{}/auth/status", self.auth_base_url))
            .bearer_auth(token)
            .json(&StatusRequest { uids: uids.to_vec() })
            .send()
            .await
            .map_err(unavailable)?;
        if !response.status().is_success() {
            tracing::warn!(
                status = response.status().as_u16(),
                "auth answered a user status check with an error"
            );
            return Err(ApiError::Unavailable("auth service unavailable".into()));
        }
        let answer: StatusAnswer = response.json().await.map_err(unavailable)?;
        Ok(answer.users)
    }
}

#[async_trait]
impl ApiKeyResolver for RemoteApiKeyResolver {
    async fn resolve_api_key(&self, api_key: &Sensitive<String>) -> Result<Option<Identity>, ApiError> {
        let unavailable = |_| ApiError::Unavailable("auth service unavailable".into());
        let response = self
            .client
            .get(format!("{}/auth/api", self.auth_base_url))
            .header(API_KEY_HEADER, api_key.expose())
            .send()
            .await
            .map_err(unavailable)?;
        match response.status().as_u16() {
            200 => {
                let answer: AuthAnswer = response.json().await.map_err(unavailable)?;
                let user = answer.user;
                Ok(Some(Identity {
                    uid: user.uid,
                    admin: user.admin,
                    super_user: user.super_user,
                    email: user.email,
                    kind: user.kind,
                }))
            }
            401 | 403 | 404 => Ok(None),
            status => {
                tracing::warn!(status, "auth service answered an API key check with an error");
                Err(ApiError::Unavailable("auth service unavailable".into()))
            }
        }
    }

    async fn user_statuses(&self, uids: &[String]) -> Result<Vec<UserStatus>, ApiError> {
        let mut statuses = Vec::with_capacity(uids.len());
        for batch in uids.chunks(RECHECK_BATCH) {
            statuses.extend(self.statuses_batch(batch).await?);
        }
        Ok(statuses)
    }
}
