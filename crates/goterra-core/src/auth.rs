//! Authentication done once, in extractors. A route states what it accepts by the extractor it
//! takes: [`AuthUser`] (a user token or an API key), [`MaybeUser`] (the same, optional), or
//! [`StoreCaller`] (additionally a store token scoped to one deployment).

use crate::error::ApiError;
use crate::identity::Identity;
use crate::revocation::{Revocations, UserStatus};
use crate::sensitive::Sensitive;
use crate::token::{Claims, TokenCodec, TokenError, TokenScope};
use crate::user_cache::UserCache;
use async_trait::async_trait;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const API_KEY_HEADER: &str = "x-api-key";
/// API keys whose owner a process remembers (see [`UserCache`]).
const CACHED_API_KEYS: usize = 10_000;

/// What every service asks auth about users: the auth database in the all-in-one server (or
/// in auth itself), auth's HTTP API for a service running alone.
#[async_trait]
pub trait ApiKeyResolver: Send + Sync {
    /// The identity of an API key's owner, `None` for an unknown key.
    async fn resolve_api_key(&self, api_key: &Sensitive<String>) -> Result<Option<Identity>, ApiError>;

    /// The current status of each of `uids` (unknown ones with `exists: false`), for the
    /// revocation map. A resolver that knows no statuses (a test double of API keys only)
    /// answers none, and tokens are then checked against events alone.
    async fn user_statuses(&self, uids: &[String]) -> Result<Vec<UserStatus>, ApiError> {
        let _ = uids;
        Ok(Vec::new())
    }
}

/// Verifies the credentials of a request.
pub struct Authenticator {
    tokens: Arc<TokenCodec>,
    api_keys: Option<Arc<dyn ApiKeyResolver>>,
    revocations: Arc<Revocations>,
    /// Owners of recently presented API keys, by the SHA-256 of the key (the key itself is
    /// not kept). Unknown keys are never cached.
    api_key_owners: UserCache<[u8; 32], Identity>,
}

/// What a request presented, before it is checked.
enum Presented {
    Token(Sensitive<String>),
    ApiKey(Sensitive<String>),
    Nothing,
}

/// A verified caller that may be a user or a store token's holder.
#[derive(Clone, Debug)]
pub enum Caller {
    User(Identity),
    /// The holder of a token scoped to one store deployment, created by `uid`.
    Deployment {
        uid: String,
        deployment: String,
    },
    /// A run agent, by its service credential.
    Agent {
        agent: String,
    },
}

impl Authenticator {
    pub fn new(tokens: Arc<TokenCodec>, api_keys: Option<Arc<dyn ApiKeyResolver>>) -> Self {
        let revocations = Arc::new(Revocations::new(api_keys.clone()));
        let api_key_owners = UserCache::new(revocations.clone(), CACHED_API_KEYS);
        Self {
            tokens,
            api_keys,
            revocations,
            api_key_owners,
        }
    }

    pub fn tokens(&self) -> &TokenCodec {
        &self.tokens
    }

    /// The process's revocation map, which every user token is checked against.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// The user as auth knows it at this instant (see [`Revocations::confirm`]): for decisions
    /// that rest on the admin claim and must not outlive a demotion even for a second.
    pub async fn confirm(&self, identity: Identity) -> Result<Identity, ApiError> {
        self.revocations.confirm(identity).await
    }

    /// The caller, or `None` when the request carries no credential at all.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
        match presented(headers) {
            Presented::Nothing => Ok(None),
            Presented::Token(token) => {
                let (claims, issued_at) = self.tokens.verify_issued(token.expose()).map_err(token_refused)?;
                match caller_from_claims(claims)? {
                    Caller::User(identity) => {
                        // The token decides who calls, but an API key sent along (even empty)
                        // must be valid too: a request carrying a wrong user credential is
                        // refused, whatever else it carries.
                        if let Some(key) = headers.get(API_KEY_HEADER) {
                            let key = key.to_str().map(str::trim).unwrap_or_default();
                            self.resolve_api_key(&Sensitive::new(key.to_string())).await?;
                        }
                        Ok(Some(Caller::User(self.revocations.admit(identity, issued_at)?)))
                    }
                    other => Ok(Some(other)),
                }
            }
            Presented::ApiKey(key) => Ok(Some(Caller::User(self.resolve_api_key(&key).await?))),
        }
    }

    async fn resolve_api_key(&self, key: &Sensitive<String>) -> Result<Identity, ApiError> {
        if key.expose().is_empty() {
            return Err(ApiError::unauthorized("invalid API key"));
        }
        let resolver = self
            .api_keys
            .as_ref()
            .ok_or_else(|| ApiError::unauthorized("API keys are not accepted here, use a token"))?;
        let digest: [u8; 32] = Sha256::digest(key.expose().as_bytes()).into();
        if let Some(owner) = self.api_key_owners.get(&digest) {
            return Ok(owner);
        }
        let ticket = self.api_key_owners.ticket();
        let owner = resolver
            .resolve_api_key(key)
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        self.api_key_owners.store(digest, owner.clone(), ticket);
        Ok(owner)
    }

    /// A user (never a store token), or `None` without credentials.
    pub async fn user(&self, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
        match self.caller(headers).await? {
            None => Ok(None),
            Some(Caller::User(identity)) => Ok(Some(identity)),
            Some(Caller::Deployment { .. }) => Err(ApiError::unauthorized(
                "this token is scoped to one store deployment and is not valid here",
            )),
            Some(Caller::Agent { .. }) => Err(ApiError::unauthorized("agent credentials are not valid here")),
        }
    }
}

fn token_refused(err: TokenError) -> ApiError {
    match err {
        TokenError::Expired => ApiError::unauthorized("token expired, log in again"),
        TokenError::Invalid => ApiError::unauthorized("invalid token"),
    }
}

fn caller_from_claims(claims: Claims) -> Result<Caller, ApiError> {
    match claims.scope() {
        TokenScope::User if !claims.uid.is_empty() => Ok(Caller::User(claims.identity())),
        TokenScope::User => Err(ApiError::unauthorized("invalid token")),
        TokenScope::Store => match claims.deployment {
            Some(deployment) => Ok(Caller::Deployment {
                uid: claims.uid,
                deployment,
            }),
            None => Err(ApiError::unauthorized("invalid token")),
        },
        TokenScope::Agent if !claims.uid.is_empty() => Ok(Caller::Agent { agent: claims.uid }),
        TokenScope::Agent => Err(ApiError::unauthorized("invalid token")),
        TokenScope::Service => Err(ApiError::unauthorized("service credentials are not valid here")),
    }
}

/// A token from `Authorization: Bearer <t>`, a raw `<t>` (old clients) or the original deploy's
/// `Bearer Bearer <t>`; otherwise an `X-API-Key`. A present token wins over an API key (which,
/// sent along a user token, must still be valid).
fn presented(headers: &HeaderMap) -> Presented {
    if let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut token = value.trim();
        while let Some(rest) = strip_scheme(token) {
            token = rest.trim_start();
        }
        if !token.is_empty() && !token.eq_ignore_ascii_case("bearer") {
            return Presented::Token(Sensitive::new(token.to_string()));
        }
    }
    presented_api_key(headers)
}

fn presented_api_key(headers: &HeaderMap) -> Presented {
    match headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(str::trim) {
        Some(key) if !key.is_empty() => Presented::ApiKey(Sensitive::new(key.to_string())),
        _ => Presented::Nothing,
    }
}

fn strip_scheme(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_at_checked(6)?;
    (scheme.eq_ignore_ascii_case("bearer") && rest.starts_with(char::is_whitespace)).then_some(rest)
}

fn missing_credentials() -> ApiError {
    ApiError::unauthorized("missing credentials: send Authorization: Bearer <token> or X-API-Key")
}

/// A logged-in user, by token or API key. Store tokens are refused with 401.
pub struct AuthUser(pub Identity);

/// Like [`AuthUser`], but admin and super claims are confirmed with auth at this instant
/// rather than taken from the revocation map, for routes where a privilege grants something
/// lasting (namespace ownership and membership): a demotion a moment ago already counts.
pub struct ConfirmedUser(pub Identity);

impl<S> FromRequestParts<S> for ConfirmedUser
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let identity = auth.user(&parts.headers).await?.ok_or_else(missing_credentials)?;
        if identity.is_privileged() {
            Ok(ConfirmedUser(auth.confirm(identity).await?))
        } else {
            Ok(ConfirmedUser(identity))
        }
    }
}

/// Like [`AuthUser`] but anonymous callers pass as `None`; invalid credentials are still 401.
pub struct MaybeUser(pub Option<Identity>);

/// Any verified caller, including a store token's holder. Only store routes take it.
pub struct StoreCaller(pub Caller);

/// A run agent authenticated by its service credential. Only deploy's agent routes take it.
pub struct AgentCaller(pub String);

impl<S> FromRequestParts<S> for AgentCaller
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        match auth.caller(&parts.headers).await? {
            Some(Caller::Agent { agent }) => Ok(AgentCaller(agent)),
            Some(_) => Err(ApiError::forbidden("only run agents may call this route")),
            None => Err(missing_credentials()),
        }
    }
}

/// Another platform service authenticated by its service credential (a [`TokenScope::Service`]
/// token minted from the shared secret; its `uid` names the service). Only routes meant for
/// services take it (deploy's routes for acct, auth's `POST /auth/status`); users, agents and
/// store tokens get 403.
pub struct ServiceCaller(pub String);

impl<S> FromRequestParts<S> for ServiceCaller
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        let Presented::Token(token) = presented(&parts.headers) else {
            return match auth.caller(&parts.headers).await? {
                Some(_) => Err(ApiError::forbidden("only platform services may call this route")),
                None => Err(missing_credentials()),
            };
        };
        let claims = auth.tokens.verify(token.expose()).map_err(token_refused)?;
        match claims.scope() {
            TokenScope::Service if !claims.uid.is_empty() => Ok(ServiceCaller(claims.uid)),
            TokenScope::Service => Err(ApiError::unauthorized("invalid token")),
            _ => Err(ApiError::forbidden("only platform services may call this route")),
        }
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        auth.user(&parts.headers)
            .await?
            .map(AuthUser)
            .ok_or_else(missing_credentials)
    }
}

impl<S> FromRequestParts<S> for MaybeUser
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        auth.user(&parts.headers).await.map(MaybeUser)
    }
}

impl<S> FromRequestParts<S> for StoreCaller
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<Authenticator>::from_ref(state);
        auth.caller(&parts.headers)
            .await?
            .map(StoreCaller)
            .ok_or_else(missing_credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    fn token_of(presented: Presented) -> Option<String> {
        match presented {
            Presented::Token(token) => Some(token.into_inner()),
            _ => None,
        }
    }

    #[test]
    fn authorization_header_forms() {
        for value in [
            "Bearer abc",
            "bearer abc",
            "abc",
            "Bearer Bearer abc",
            "  Bearer   abc  ",
        ] {
            assert_eq!(
                token_of(presented(&headers("authorization", value))).as_deref(),
                Some("abc"),
                "{value}"
            );
        }
        assert!(matches!(
            presented(&headers("authorization", "Bearer ")),
            Presented::Nothing
        ));
        assert!(matches!(presented(&headers("x-api-key", "k1")), Presented::ApiKey(_)));
        assert!(matches!(presented(&HeaderMap::new()), Presented::Nothing));
    }

    #[tokio::test]
    async fn store_tokens_never_pass_as_users() {
        let codec = Arc::new(TokenCodec::new(&[Sensitive::new("secret-0123456789".into())], 24).unwrap());
        let token = codec.issue(&Claims::for_store("alice", "dep", crate::token::unix_now() + 60));
        let auth = Authenticator::new(codec, None);
        let headers = headers("authorization", &format!("Bearer {token}"));
        assert!(matches!(auth.user(&headers).await, Err(ApiError::Unauthorized(_))));
        assert!(matches!(
            auth.caller(&headers).await,
            Ok(Some(Caller::Deployment { .. }))
        ));
    }
}
