//! Single sign-on with OpenID Connect providers (`/auth/oidc/{provider}`): the
//! authorization-code flow with PKCE, a browser-bound `state` and `nonce`, and ID tokens
//! verified against the provider's keys. Identities map to local users only through the
//! identities table ([`crate::identities`]), never by a matching uid or email.

pub mod flow;
pub mod provider;
pub mod verify;

use crate::credentials::{api_key_hash, new_api_key};
use crate::identities::{LinkError, NewIdentity};
use crate::model::*;
use crate::routes::{AuthState, validate_uid};
use crate::users::{InsertError, NewUser, UserRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow::{Flow, FlowCodec};
use goterra_client::auth::OidcReturn;
use goterra_core::{ApiError, ApiJson, ApiQuery, ApiResult, AuthUser, Config, ErrorBody, MaybeUser};
use provider::{Provider, ProviderError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use verify::VerifiedToken;

/// The configured providers and the flow cookie's keys.
pub struct Sso {
    providers: BTreeMap<String, Arc<Provider>>,
    flows: FlowCodec,
    public_url: String,
}

impl Sso {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        // Short timeouts: a provider that hangs must not hold the login page for long.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let providers = config
            .oidc_providers()
            .map(|(name, settings)| {
                (
                    name.to_string(),
                    Arc::new(Provider::new(name, settings.clone(), http.clone())),
                )
            })
            .collect();
        let public_url = config.public_url();
        Ok(Self {
            providers,
            flows: FlowCodec::new(&config.fernet, public_url.starts_with("https://"))?,
            public_url,
        })
    }

    /// A provider that is on; any other name is 404, as if the route did not exist.
    fn provider(&self, name: &str) -> ApiResult<&Arc<Provider>> {
        self.providers
            .get(name)
            .ok_or_else(|| ApiError::not_found(format!("no identity provider {name:?} is configured")))
    }

    /// auth's own callback, or the web UI's (which relays to auth's).
    fn redirect_uri(&self, provider: &str, via: OidcReturn) -> String {
        match via {
            OidcReturn::Api => format!("{}/auth/oidc/{provider}/callback", self.public_url),
            OidcReturn::App => format!("{}/app/auth/oidc/{provider}/callback", self.public_url),
        }
    }

    /// A new flow's provider URL and the cookie binding it to this browser.
    async fn begin(&self, provider: &str, via: OidcReturn, link_uid: Option<String>) -> ApiResult<(String, Flow)> {
        let provider = self.provider(provider)?;
        let flow = Flow::new(&provider.name, self.redirect_uri(&provider.name, via), link_uid);
        let location = provider.authorize_url(&flow).await.map_err(provider_error)?;
        Ok((location, flow))
    }
}

fn provider_error(err: ProviderError) -> ApiError {
    match err {
        ProviderError::Unavailable(_) => ApiError::Unavailable(err.to_string()),
        ProviderError::Refused(_) => ApiError::bad_request(err.to_string()),
        ProviderError::Token(err) => ApiError::unauthorized(format!("sign-in refused: {err}")),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct StartQuery {
    /// `app` to come back to the web UI (which starts a session), else auth answers JSON.
    via: Option<OidcReturn>,
}

/// Start signing in with a provider: a redirect to it (authorization code flow with PKCE) and
/// the cookie that binds the flow to this browser.
#[utoipa::path(get, path = "/auth/oidc/{provider}", tag = "auth",
    params(("provider" = String, Path, description = "Provider name, e.g. google or aai"), StartQuery),
    responses((status = 302, description = "To the provider; sets the `goterra_oidc` flow cookie",
            headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No such provider is configured", body = ErrorBody),
        (status = 503, description = "The provider cannot be reached", body = ErrorBody)))]
pub async fn start(
    State(state): State<AuthState>,
    Path(provider): Path<String>,
    ApiQuery(query): ApiQuery<StartQuery>,
) -> ApiResult<Response> {
    let (location, flow) = state.sso.begin(&provider, query.via.unwrap_or_default(), None).await?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        [(header::SET_COOKIE, state.sso.flows.start(&flow))],
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct CallbackQuery {
    /// As the provider returned it.
    state: Option<String>,
    code: Option<String>,
    /// The provider's error code when the user did not sign in.
    error: Option<String>,
}

/// Finish signing in: checks the flow cookie's `state`, exchanges the code (with the PKCE
/// verifier), verifies the ID token and answers a token for the linked user; a first login
/// creates the user when the provider allows it. The flow cookie is cleared: a callback
/// works once.
#[utoipa::path(get, path = "/auth/oidc/{provider}/callback", tag = "auth",
    params(("provider" = String, Path, description = "Provider name"), CallbackQuery),
    responses((status = 200, body = OidcLoginAnswer),
        (status = 400, description = "No flow in progress in this browser, another state, or a code the provider refused", body = ErrorBody),
        (status = 401, description = "The ID token did not verify", body = ErrorBody),
        (status = 403, description = "Not allowed by the provider's settings, or no linked account", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A local account already has this uid: it is never taken over", body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn callback(
    State(state): State<AuthState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    MaybeUser(caller): MaybeUser,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> ApiResult<Response> {
    let clear = [(header::SET_COOKIE, state.sso.flows.end())];
    let result = finish(
        &state,
        &provider,
        &headers,
        caller.as_ref().map(|c| c.uid.as_str()),
        query,
    )
    .await;
    // Whatever happened, this browser's flow is over.
    Ok(match result {
        Ok(answer) => (clear, [(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response(),
        Err(err) => (clear, err).into_response(),
    })
}

async fn finish(
    state: &AuthState,
    provider: &str,
    headers: &HeaderMap,
    caller: Option<&str>,
    query: CallbackQuery,
) -> ApiResult<OidcLoginAnswer> {
    let provider = state.sso.provider(provider)?.clone();
    if let Some(error) = query.error.filter(|e| !e.is_empty()) {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(ApiError::unauthorized(format!(
            "the identity provider did not sign you in ({code})"
        )));
    }
    let flow = state
        .sso
        .flows
        .read(headers)
        .filter(|flow| flow.provider == provider.name)
        .ok_or_else(|| {
            ApiError::bad_request("no sign-in with this provider is in progress in this browser (or it took more than 10 minutes): start again")
        })?;
    let sent_state = query.state.unwrap_or_default();
    if !verify::constant_time_eq(sent_state.as_bytes(), flow.state.as_bytes()) {
        return Err(ApiError::bad_request("state: does not match this browser's sign-in"));
    }
    let code = query
        .code
        .filter(|code| !code.is_empty() && code.len() <= 4096)
        .ok_or_else(|| ApiError::bad_request("code: missing"))?;
    if flow.link_uid.is_some() && flow.link_uid.as_deref() != caller {
        return Err(ApiError::forbidden(
            "linking an identity needs the token of the user who started it",
        ));
    }
    let token = provider.finish(&flow, &code).await.map_err(provider_error)?;
    admit(&provider, &token)?;
    let user = match &flow.link_uid {
        Some(uid) => link(state, &provider, &token, uid).await?,
        None => sign_in(state, &provider, &token).await?,
    };
    tracing::info!(uid = %user.uid, provider = %provider.name, linked = flow.link_uid.is_some(), "signed in with an identity provider");
    Ok(OidcLoginAnswer {
        token: state.token_for(&user),
        uid: user.uid,
    })
}

/// The provider's own restrictions: email domains and groups.
fn admit(provider: &Provider, token: &VerifiedToken) -> ApiResult<()> {
    let settings = &provider.config;
    let display = settings.display_name(&provider.name);
    if !settings.allowed_email_domains.is_empty() {
        let domain = token
            .verified_email()
            .and_then(|email| email.rsplit_once('@'))
            .map(|(_, domain)| domain.to_ascii_lowercase());
        let allowed = domain.is_some_and(|domain| {
            settings
                .allowed_email_domains
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(&domain))
        });
        if !allowed {
            return Err(ApiError::forbidden(format!(
                "this {display} account's (verified) email domain is not allowed here"
            )));
        }
    }
    if let Some(claim) = settings
        .groups_claim
        .as_deref()
        .filter(|_| !settings.allowed_groups.is_empty())
    {
        let groups = token.claim_values(claim);
        if !groups.iter().any(|group| settings.allowed_groups.contains(group)) {
            return Err(ApiError::forbidden(format!(
                "this {display} account is in none of the groups allowed here"
            )));
        }
    }
    Ok(())
}

async fn sign_in(state: &AuthState, provider: &Provider, token: &VerifiedToken) -> ApiResult<UserRecord> {
    let identities = &state.identities;
    if let Some(user_id) = identities
        .user_of(&provider.name, &token.subject)
        .await
        .map_err(ApiError::internal)?
    {
        return state
            .users
            .by_id(&user_id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::forbidden("the account linked to this identity no longer exists"));
    }
    let display = provider.config.display_name(&provider.name);
    if !provider.config.create_users {
        return Err(ApiError::forbidden(format!(
            "no account is linked to this {display} identity: sign in another way and link it from your profile, or ask an admin"
        )));
    }
    let uid = new_uid(provider, token)?;
    let user = NewUser {
        uid: uid.clone(),
        email: token.verified_email().unwrap_or_default().to_string(),
        // No password: such accounts sign in through their provider only.
        password_hash: None,
        // A key nobody knows; the user makes a usable one from the profile.
        apikey_hash: api_key_hash(new_api_key().expose()),
        admin: false,
        super_user: false,
        kind: provider.name.clone(),
        pub_key: String::new(),
    };
    let id = match state.users.insert(user).await {
        Ok(id) => id,
        // Never attach to (take over) an existing account of the same uid.
        Err(InsertError::Duplicate) => {
            return Err(ApiError::conflict(format!(
                "an account named {uid} already exists and is not linked to this {display} identity: sign in to it and link the identity from its profile"
            )));
        }
        Err(InsertError::Database(err)) => return Err(ApiError::internal(err)),
    };
    let identity = NewIdentity {
        provider: &provider.name,
        subject: &token.subject,
        issuer: &token.issuer,
        email: token.verified_email().unwrap_or_default(),
    };
    if let Err(err) = identities.link(&id, identity).await {
        // A concurrent first login of the same identity won: drop ours.
        let _ = state.users.delete(&uid).await;
        return Err(match err {
            LinkError::Taken => ApiError::conflict("this identity was just linked by another sign-in: try again"),
            LinkError::Database(err) => ApiError::internal(err),
        });
    }
    tracing::info!(uid = %uid, provider = %provider.name, "user created at first sign-in");
    state.publish("user_create", &uid, provider.name.clone()).await;
    state
        .users
        .by_id(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("user {uid} vanished after its creation")))
}

/// The uid of an account created at first login, from the provider's `uid_claim`.
fn new_uid(provider: &Provider, token: &VerifiedToken) -> ApiResult<String> {
    let claim = provider.config.uid_claim();
    let uid = if claim == "email" {
        token.verified_email().map(str::to_string).ok_or_else(|| {
            ApiError::forbidden("the identity provider did not verify this account's email, which would be its user id")
        })?
    } else if claim == "sub" {
        token.subject.clone()
    } else {
        token
            .claim_text(claim)
            .ok_or_else(|| ApiError::forbidden(format!("the ID token has no {claim} claim for the user id")))?
    };
    validate_uid(&uid).map_err(|_| {
        ApiError::forbidden(
            "this identity's user id is not usable here (letters, digits, '.', '_', '@', '-'; at most 64)",
        )
    })?;
    Ok(uid)
}

/// Links the identity to `uid`, the signed-in user who started the flow (and who called).
async fn link(state: &AuthState, provider: &Provider, token: &VerifiedToken, uid: &str) -> ApiResult<UserRecord> {
    let user = state
        .users
        .by_uid(uid)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("no user found"))?;
    let identity = NewIdentity {
        provider: &provider.name,
        subject: &token.subject,
        issuer: &token.issuer,
        email: token.verified_email().unwrap_or_default(),
    };
    match state.identities.link(&user.id, identity).await {
        Ok(()) => {}
        Err(LinkError::Taken) => {
            let owner = state
                .identities
                .user_of(&provider.name, &token.subject)
                .await
                .map_err(ApiError::internal)?;
            if owner.as_deref() != Some(user.id.as_str()) {
                return Err(ApiError::conflict("this identity is already linked to another account"));
            }
        }
        Err(LinkError::Database(err)) => return Err(ApiError::internal(err)),
    }
    tracing::info!(uid = %uid, provider = %provider.name, "identity linked");
    Ok(user)
}

/// Start linking an identity of a provider to your own account: answers the provider URL to
/// send the browser to, and sets the flow cookie; the callback then links instead of signing
/// in (it needs your token too).
#[utoipa::path(post, path = "/auth/user/{id}/identities", tag = "users",
    params(("id" = String, Path, description = "uid (your own)")),
    request_body = LinkIdentityRequest, security(("token" = [])),
    responses((status = 200, body = LinkIdentityAnswer, headers(("Set-Cookie" = String))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Only for your own account", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn start_link(
    State(state): State<AuthState>,
    AuthUser(caller): AuthUser,
    Path(uid): Path<String>,
    ApiJson(request): ApiJson<LinkIdentityRequest>,
) -> ApiResult<Response> {
    if caller.uid != uid {
        return Err(ApiError::forbidden("users link identities to their own account only"));
    }
    state.current(&caller).await?;
    let (location, flow) = state.sso.begin(&request.provider, request.via, Some(uid)).await?;
    Ok((
        [(header::SET_COOKIE, state.sso.flows.start(&flow))],
        Json(LinkIdentityAnswer { location }),
    )
        .into_response())
}

/// The identities linked to a user (the user or an admin).
#[utoipa::path(get, path = "/auth/user/{id}/identities", tag = "users",
    params(("id" = String, Path, description = "uid")), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = IdentitiesAnswer), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_identities(
    State(state): State<AuthState>,
    AuthUser(caller): AuthUser,
    Path(uid): Path<String>,
) -> ApiResult<Json<IdentitiesAnswer>> {
    let (_, target) = state.target_for(&caller, &uid).await?;
    let identities = state.identities.of_user(&target.id).await.map_err(ApiError::internal)?;
    Ok(Json(IdentitiesAnswer { identities }))
}

/// Unlink a user's identities of a provider (admins only).
#[utoipa::path(delete, path = "/auth/user/{id}/identities/{provider}", tag = "users",
    params(("id" = String, Path, description = "uid"), ("provider" = String, Path, description = "Provider name")),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = MessageAnswer), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unlink(
    State(state): State<AuthState>,
    AuthUser(caller): AuthUser,
    Path((uid, provider)): Path<(String, String)>,
) -> ApiResult<Json<MessageAnswer>> {
    let (me, target) = state.target_for(&caller, &uid).await?;
    if !me.admin {
        return Err(ApiError::forbidden("admin users only"));
    }
    let removed = state
        .identities
        .unlink(&target.id, &provider)
        .await
        .map_err(ApiError::internal)?;
    if removed == 0 {
        return Err(ApiError::not_found("no identity of this provider is linked"));
    }
    tracing::info!(uid = %uid, provider = %provider, by = %me.uid, "identity unlinked");
    Ok(Json(MessageAnswer {
        message: "unlinked".into(),
    }))
}
