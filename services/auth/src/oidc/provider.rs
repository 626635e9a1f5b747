//! One configured OpenID provider: its discovery document and signing keys, fetched when first
//! needed and cached (keys refreshed when a token names an unknown one), and the token call.
//! An unreachable provider is an error of its own routes only: never a crash or a failed start.

use super::flow::Flow;
use super::verify::{self, Expected, VerifiedToken, VerifyError};
use goterra_core::sso::OidcProviderConfig;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long discovery and keys are trusted before they are fetched again.
const CACHE_FOR: Duration = Duration::from_secs(3600);
/// Unknown `kid`s refetch the keys at most this often, so bad tokens cannot hammer the provider.
const KEY_REFRESH_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider did not answer, or answered something unusable: 503.
    #[error("the identity provider {0} is unavailable, try again later")]
    Unavailable(String),
    /// The provider refused the code (already used, expired, or not ours): 400.
    #[error("the identity provider refused the sign-in ({0})")]
    Refused(String),
    /// The ID token did not verify: 401.
    #[error("{0}")]
    Token(VerifyError),
}

#[derive(Clone, Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

#[derive(Default)]
struct Cache {
    metadata: Option<(Metadata, Instant)>,
    keys: Option<(Vec<Jwk>, Instant)>,
}

pub struct Provider {
    pub name: String,
    pub config: OidcProviderConfig,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
}

impl Provider {
    pub fn new(name: &str, config: OidcProviderConfig, http: reqwest::Client) -> Self {
        Self {
            name: name.to_string(),
            config,
            http,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn unavailable(&self, what: &str, err: impl std::fmt::Display) -> ProviderError {
        tracing::warn!(provider = %self.name, error = %err, "{what}");
        ProviderError::Unavailable(self.name.clone())
    }

    async fn metadata(&self) -> Result<Metadata, ProviderError> {
        let mut cache = self.cache.lock().await;
        if let Some((metadata, fetched)) = &cache.metadata
            && fetched.elapsed() < CACHE_FOR
        {
            return Ok(metadata.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let fetched = async {
            let response = self.http.get(&url).send().await?.error_for_status()?;
            response.json::<Metadata>().await
        }
        .await;
        match fetched {
            Ok(metadata) => {
                // The document must be the configured issuer's (OIDC Discovery 4.3).
                if metadata.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
                    return Err(self.unavailable(
                        "discovery names another issuer",
                        format!("{} instead of {}", metadata.issuer, self.config.issuer),
                    ));
                }
                cache.metadata = Some((metadata.clone(), Instant::now()));
                Ok(metadata)
            }
            // A stale document beats none while the provider is briefly away.
            Err(err) => match &cache.metadata {
                Some((metadata, _)) => {
                    tracing::warn!(provider = %self.name, error = %err, "discovery refresh failed, using the cached one");
                    Ok(metadata.clone())
                }
                None => Err(self.unavailable("discovery failed", err)),
            },
        }
    }

    async fn keys(&self, metadata: &Metadata, refresh: bool) -> Result<Vec<Jwk>, ProviderError> {
        let mut cache = self.cache.lock().await;
        if let Some((keys, fetched)) = &cache.keys {
            let fresh = fetched.elapsed() < CACHE_FOR;
            let may_refresh = fetched.elapsed() >= KEY_REFRESH_EVERY;
            if fresh && !(refresh && may_refresh) {
                return Ok(keys.clone());
            }
        }
        let fetched = async {
            let response = self.http.get(&metadata.jwks_uri).send().await?.error_for_status()?;
            response.json::<serde_json::Value>().await
        }
        .await;
        match fetched {
            Ok(document) => {
                let keys = verify::parse_jwks(&document);
                cache.keys = Some((keys.clone(), Instant::now()));
                Ok(keys)
            }
            Err(err) => match &cache.keys {
                Some((keys, _)) => Ok(keys.clone()),
                None => Err(self.unavailable("fetching the signing keys failed", err)),
            },
        }
    }

    /// The provider's authorization URL for `flow` (code flow, PKCE S256).
    pub async fn authorize_url(&self, flow: &Flow) -> Result<String, ProviderError> {
        let metadata = self.metadata().await?;
        let mut url = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|err| self.unavailable("bad authorization endpoint", err))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &flow.redirect_uri)
            .append_pair("scope", &self.config.scope())
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &flow.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges `code` and verifies the ID token it brings.
    pub async fn finish(&self, flow: &Flow, code: &str) -> Result<VerifiedToken, ProviderError> {
        let metadata = self.metadata().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", flow.redirect_uri.as_str()),
            ("code_verifier", flow.verifier.as_str()),
        ];
        let mut request = self.http.post(&metadata.token_endpoint);
        let secret = self.config.client_secret.as_ref().map(|s| s.expose().as_str());
        // client_secret_basic is the default method (OIDC Core 9); _post when only it is offered.
        let post_only = !metadata.token_endpoint_auth_methods_supported.is_empty()
            && !metadata
                .token_endpoint_auth_methods_supported
                .iter()
                .any(|m| m == "client_secret_basic");
        match secret {
            Some(secret) if !post_only => {
                let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
                request = request.basic_auth(encode(&self.config.client_id), Some(encode(secret)));
            }
            Some(secret) => {
                form.push(("client_id", self.config.client_id.as_str()));
                form.push(("client_secret", secret));
            }
            None => form.push(("client_id", self.config.client_id.as_str())),
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|err| self.unavailable("token call failed", err))?;
        let status = response.status();
        if status.is_client_error() {
            let error = response
                .json::<TokenError>()
                .await
                .ok()
                .and_then(|e| e.error)
                .unwrap_or_else(|| status.to_string());
            // Only the provider's error code: its description may echo the request.
            let code: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(ProviderError::Refused(code));
        }
        if !status.is_success() {
            return Err(self.unavailable("token call failed", status));
        }
        let answer: TokenResponse = response
            .json()
            .await
            .map_err(|err| self.unavailable("unreadable token answer", err))?;
        let id_token = answer
            .id_token
            .ok_or_else(|| ProviderError::Refused("no ID token in the answer".into()))?;
        self.verify(&metadata, &id_token, &flow.nonce).await
    }

    async fn verify(&self, metadata: &Metadata, id_token: &str, nonce: &str) -> Result<VerifiedToken, ProviderError> {
        let mut issuers = self.config.issuer_aliases();
        issuers.push(metadata.issuer.clone());
        let expected = Expected {
            issuers: &issuers,
            client_id: &self.config.client_id,
            nonce,
            now: goterra_core::token::unix_now(),
        };
        let keys = self.keys(metadata, false).await?;
        match verify::verify(id_token, &keys, &expected) {
            // The provider may have rotated its keys since they were fetched.
            Err(VerifyError::UnknownKey) => {
                let keys = self.keys(metadata, true).await?;
                verify::verify(id_token, &keys, &expected).map_err(ProviderError::Token)
            }
            other => other.map_err(ProviderError::Token),
        }
    }
}
