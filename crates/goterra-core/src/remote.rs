//! Checks API keys with the auth service over HTTP (`GET {GOT_PROXY_AUTH}/auth/api`), for
//! services that run in their own process.

use crate::auth::{API_KEY_HEADER, ApiKeyResolver};
use crate::error::ApiError;
use crate::identity::Identity;
use crate::sensitive::Sensitive;
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

pub struct RemoteApiKeyResolver {
    client: reqwest::Client,
    auth_base_url: String,
}

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
    pub fn new(auth_base_url: impl Into<String>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self {
            client,
            auth_base_url: auth_base_url.into().trim_end_matches('/').to_string(),
        })
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
}
