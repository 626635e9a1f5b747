//! HTTP routes of `/auth`.

use crate::credentials::{check_password_policy, hash_password, new_api_key, verify_password};
use crate::model::*;
use crate::throttle::{Blocked, LoginThrottle};
use crate::users::{InsertError, NewUser, ProfileChange, UserRecord, Users};
use axum::Json;
use axum::extract::{FromRef, Path, State};
use goterra_core::extract::ClientAddress;
use goterra_core::revocation::{RECHECK_BATCH, StatusAnswer, StatusRequest};
use goterra_core::token::unix_now;
use goterra_core::user_cache::UserCache;
use goterra_core::{
    ApiError, ApiJson, ApiQuery, ApiResult, AuthUser, Authenticator, Claims, ErrorBody, Event, Identity, MaybeUser,
    Pagination, Platform, ServiceCaller,
};
use std::sync::Arc;

#[derive(Clone)]
pub struct AuthState {
    pub users: Users,
    pub identities: crate::identities::Identities,
    pub platform: Platform,
    pub throttle: Arc<LoginThrottle>,
    pub sso: Arc<crate::oidc::Sso>,
    /// Rows of users who call the read routes (`/auth/me`, `/auth/api`, `/auth/token`),
    /// dropped on any user change this process hears of (see `goterra_core::user_cache`).
    pub rows: Arc<UserCache<String, Arc<UserRecord>>>,
}

/// Users whose rows one auth process keeps for its read routes.
pub const CACHED_USER_ROWS: usize = 10_000;

impl FromRef<AuthState> for Arc<Authenticator> {
    fn from_ref(state: &AuthState) -> Self {
        state.platform.authenticator.clone()
    }
}

const BAD_LOGIN: &str = "invalid uid or password";

fn db_error(err: sqlx::Error) -> ApiError {
    ApiError::internal(err)
}

impl AuthState {
    /// The caller's record as stored now: tokens may be older than a deletion or a demotion.
    pub(crate) async fn current(&self, caller: &Identity) -> ApiResult<UserRecord> {
        self.users
            .by_uid(&caller.uid)
            .await
            .map_err(db_error)?
            .ok_or_else(|| ApiError::unauthorized("user no longer exists"))
    }

    /// [`Self::current`] through the row cache, for routes that only read the caller's row.
    /// Routes that change users or decide on privileges read the database.
    pub(crate) async fn current_cached(&self, caller: &Identity) -> ApiResult<Arc<UserRecord>> {
        if let Some(row) = self.rows.get(caller.uid.as_str()) {
            return Ok(row);
        }
        let ticket = self.rows.ticket();
        let row = Arc::new(self.current(caller).await?);
        self.rows.store(row.uid.clone(), row.clone(), ticket);
        Ok(row)
    }

    /// The target of a `/auth/user/{id}` route, for its owner or an admin.
    pub(crate) async fn target_for(&self, caller: &Identity, uid: &str) -> ApiResult<(UserRecord, UserRecord)> {
        let me = self.current(caller).await?;
        if !me.admin && me.uid != uid {
            return Err(ApiError::forbidden("admin or user only"));
        }
        let target = self
            .users
            .by_uid(uid)
            .await
            .map_err(db_error)?
            .ok_or_else(|| ApiError::not_found("no user found"))?;
        Ok((me, target))
    }

    /// A token stamped after the user's last revocation, so that a login in the same second
    /// as a password change is not itself revoked (a second ahead is within the clock skew).
    pub(crate) fn token_for(&self, user: &UserRecord) -> String {
        let issued_at = unix_now().max(user.tokens_not_before.saturating_add(1));
        self.platform
            .tokens
            .issue_at(&Claims::for_user(&user.identity()), issued_at)
    }

    /// Announces a user change. This process's revocation map and caches take it first, so
    /// that the change holds here before the request that made it is answered; other
    /// processes (and replicas) hear the event.
    pub(crate) async fn publish(&self, action: &str, uid: &str, data: String) {
        let event = Event::new(action, uid, data);
        self.platform.authenticator.revocations().changed_here(&event).await;
        self.platform.events.publish(event).await;
    }
}

/// Exchange an API key (or a token) for a fresh token and the user.
#[utoipa::path(get, path = "/auth/api", tag = "auth",
    security(("apikey" = []), ("token" = [])),
    responses((status = 200, body = ApiKeyLoginAnswer), (status = 401, body = ErrorBody)))]
pub async fn api(State(state): State<AuthState>, AuthUser(caller): AuthUser) -> ApiResult<Json<ApiKeyLoginAnswer>> {
    let user = state.current_cached(&caller).await?;
    Ok(Json(ApiKeyLoginAnswer {
        token: state.token_for(&user),
        user: UserView::from(&*user),
    }))
}

/// Renew a token. The new token reflects the user as stored now (a demotion takes effect).
#[utoipa::path(get, path = "/auth/token", tag = "auth",
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = TokenAnswer), (status = 401, body = ErrorBody)))]
pub async fn renew(State(state): State<AuthState>, AuthUser(caller): AuthUser) -> ApiResult<Json<TokenAnswer>> {
    let user = state.current_cached(&caller).await?;
    Ok(Json(TokenAnswer {
        token: state.token_for(&user),
    }))
}

fn too_many_attempts(blocked: Blocked) -> ApiError {
    ApiError::TooManyRequests {
        message: "too many failed logins: try again later".into(),
        retry_after_secs: blocked.retry_after_secs(),
    }
}

/// Log in with a uid and a password. Repeated failures for a uid or from an address are
/// answered 429 with `Retry-After`, for exponentially growing times.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginAnswer), (status = 400, body = ErrorBody),
        (status = 401, description = "Unknown uid or wrong password (same answer for both)", body = ErrorBody),
        (status = 429, description = "Too many failed logins: wait `Retry-After` seconds", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Too many logins at once", body = ErrorBody)))]
pub async fn login(
    State(state): State<AuthState>,
    ClientAddress(address): ClientAddress,
    ApiJson(request): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginAnswer>> {
    state.throttle.check(&request.uid, address).map_err(too_many_attempts)?;
    let user = state.users.by_uid(&request.uid).await.map_err(db_error)?;
    let stored_hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = request.password;
    let matches = state
        .throttle
        .argon2(move || verify_password(&password, stored_hash.as_deref()))
        .await?;
    match user {
        Some(user) if matches => {
            state.throttle.succeeded(&user.uid);
            Ok(Json(LoginAnswer {
                token: state.token_for(&user),
                user: UserView::from(&user),
            }))
        }
        _ => match state.throttle.failed(&request.uid, address) {
            Some(blocked) => Err(too_many_attempts(blocked)),
            None => Err(ApiError::unauthorized(BAD_LOGIN)),
        },
    }
}

/// Create a user: admins always; anyone when self-registration is enabled, as a plain user.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    security((), ("token" = [])),
    responses((status = 200, body = RegisterAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, description = "uid already taken", body = ErrorBody)))]
pub async fn register(
    State(state): State<AuthState>,
    MaybeUser(caller): MaybeUser,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> ApiResult<Json<RegisterAnswer>> {
    let by_admin = match &caller {
        Some(caller) => {
            if !state.current(caller).await?.admin {
                return Err(ApiError::forbidden("not allowed to create user, admin only"));
            }
            true
        }
        None if state.platform.config.feature.self_register => false,
        None => return Err(ApiError::unauthorized("registration needs an admin token")),
    };
    if !by_admin {
        if request.admin == Some(true) || request.super_user == Some(true) {
            return Err(ApiError::forbidden(
                "self-registered users cannot be admin or super users",
            ));
        }
        if request
            .kind
            .as_deref()
            .is_some_and(|kind| !kind.is_empty() && kind != "local")
        {
            return Err(ApiError::forbidden("self-registered users cannot choose their kind"));
        }
    }
    validate_uid(&request.uid)?;
    check_password_policy(&request.password).map_err(ApiError::bad_request)?;
    validate_profile(Some(&request.email), Some(&request.pub_key), request.kind.as_deref())?;
    let password = request.password;
    let password_hash = state.throttle.argon2(move || hash_password(&password)).await??;
    let apikey = new_api_key();
    let kind = if by_admin {
        request.kind.unwrap_or_default()
    } else {
        String::new()
    };
    let user = NewUser {
        uid: request.uid.clone(),
        email: request.email,
        password_hash: Some(password_hash),
        apikey_hash: crate::credentials::api_key_hash(apikey.expose()),
        admin: by_admin && request.admin.unwrap_or(false),
        super_user: by_admin && request.super_user.unwrap_or(false),
        kind: kind.clone(),
        pub_key: request.pub_key,
    };
    let id = match state.users.insert(user).await {
        Ok(id) => id,
        Err(InsertError::Duplicate) => return Err(ApiError::conflict("user already exists")),
        Err(InsertError::Database(err)) => return Err(db_error(err)),
    };
    tracing::info!(uid = %request.uid, by_admin, "user created");
    state.publish("user_create", &request.uid, kind).await;
    Ok(Json(RegisterAnswer {
        id,
        apikey: apikey.into_inner(),
    }))
}

/// The caller's own profile (a bare user object, as in the original).
#[utoipa::path(get, path = "/auth/me", tag = "users", security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AuthState>, AuthUser(caller): AuthUser) -> ApiResult<Json<UserView>> {
    let user = state.current_cached(&caller).await?;
    Ok(Json(UserView::from(&*user)))
}

/// Every user (admins only), by uid, paginated.
#[utoipa::path(get, path = "/auth/user", tag = "users", params(Pagination), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = UsersAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AuthState>,
    AuthUser(caller): AuthUser,
    ApiQuery(page): ApiQuery<Pagination>,
) -> ApiResult<Json<UsersAnswer>> {
    let (skip, limit) = page.bounds()?;
    if !state.current(&caller).await?.admin {
        return Err(ApiError::forbidden("admin users only"));
    }
    let users = state.users.list(skip, limit).await.map_err(db_error)?;
    Ok(Json(UsersAnswer {
        users: users.iter().map(UserView::from).collect(),
    }))
}

/// One user, for an admin or the user.
#[utoipa::path(get, path = "/auth/user/{id}", tag = "users", params(("id" = String, Path, description = "uid")),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = UserAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AuthState>,
    AuthUser(caller): AuthUser,
    Path(uid): Path<String>,
) -> ApiResult<Json<UserAnswer>> {
    let (_, target) = state.target_for(&caller, &uid).await?;
    Ok(Json(UserAnswer {
        user: UserView::from(&target),
    }))
}

/// Change a user's profile: omitted fields stay as they are; only admins change `admin`,
/// `super` and `kind`. Answers the user after the change.
#[utoipa::path(put, path = "/auth/user/{id}", tag = "users", params(("id" = String, Path, description = "uid")),
    request_body = UpdateUserRequest, security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = UserAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AuthState>,
    AuthUser(caller): AuthUser,
    Path(uid): Path<String>,
    ApiJson(request): ApiJson<UpdateUserRequest>,
) -> ApiResult<Json<UserAnswer>> {
    let (me, target) = state.target_for(&caller, &uid).await?;
    validate_profile(
        request.email.as_deref(),
        request.pub_key.as_deref(),
        request.kind.as_deref(),
    )?;
    // Clients of the original send the whole user back: unchanged privileged fields are fine.
    let changes_privilege = request.admin.is_some_and(|admin| admin != target.admin)
        || request
            .super_user
            .is_some_and(|super_user| super_user != target.super_user)
        || request.kind.as_ref().is_some_and(|kind| *kind != target.kind);
    if changes_privilege && !me.admin {
        return Err(ApiError::forbidden("only admins change admin, super or kind"));
    }
    if request.admin == Some(false) && target.admin && state.users.count_admins().await.map_err(db_error)? <= 1 {
        return Err(ApiError::conflict("cannot demote the last admin"));
    }
    let change = ProfileChange {
        email: request.email,
        pub_key: request.pub_key,
        admin: request.admin.filter(|_| me.admin),
        super_user: request.super_user.filter(|_| me.admin),
        kind: request.kind.filter(|_| me.admin),
    };
    let updated = state
        .users
        .update_profile(&uid, change)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found("no user found"))?;
    let view = UserView::from(&updated);
    let data = serde_json::to_string(&view).map_err(ApiError::internal)?;
    state.publish("user_update", &uid, data).await;
    Ok(Json(UserAnswer { user: view }))
}

/// Change a password. Users give their current password; admins may reset anyone's.
#[utoipa::path(put, path = "/auth/user/{id}/password", tag = "users", params(("id" = String, Path, description = "uid")),
    request_body = PasswordRequest, security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = UserAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AuthState>,
    AuthUser(caller): AuthUser,
    Path(uid): Path<String>,
    ApiJson(request): ApiJson<PasswordRequest>,
) -> ApiResult<Json<UserAnswer>> {
    let (me, target) = state.target_for(&caller, &uid).await?;
    check_password_policy(&request.password).map_err(ApiError::bad_request)?;
    let resetting_other = me.admin && me.uid != target.uid;
    if !resetting_other && target.password_hash.is_some() {
        let current = request
            .current_password
            .ok_or_else(|| ApiError::bad_request("current_password: required to change your own password"))?;
        let stored = target.password_hash.clone();
        let matches = state
            .throttle
            .argon2(move || verify_password(&current, stored.as_deref()))
            .await?;
        if !matches {
            return Err(ApiError::forbidden("current_password: does not match"));
        }
    }
    let password = request.password;
    let hash = state.throttle.argon2(move || hash_password(&password)).await??;
    if !state.users.set_password_hash(&uid, &hash).await.map_err(db_error)? {
        return Err(ApiError::not_found("no user found"));
    }
    tracing::info!(uid = %uid, by = %me.uid, "password changed");
    // Every service drops the user's older tokens on this event.
    state.publish("user_password", &uid, String::new()).await;
    Ok(Json(UserAnswer {
        user: UserView::from(&target),
    }))
}

/// Replace a user's API key. The new key is in this answer only; the old one stops working.
#[utoipa::path(post, path = "/auth/user/{id}/apikey", tag = "users", params(("id" = String, Path, description = "uid")),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = ApiKeyAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn regenerate_api_key(
    State(state): State<AuthState>,
    AuthUser(caller): AuthUser,
    Path(uid): Path<String>,
) -> ApiResult<Json<ApiKeyAnswer>> {
    let (me, _) = state.target_for(&caller, &uid).await?;
    let apikey = new_api_key();
    let hash = crate::credentials::api_key_hash(apikey.expose());
    if !state.users.set_api_key_hash(&uid, &hash).await.map_err(db_error)? {
        return Err(ApiError::not_found("no user found"));
    }
    tracing::info!(uid = %uid, by = %me.uid, "API key replaced");
    state.publish("user_apikey", &uid, String::new()).await;
    Ok(Json(ApiKeyAnswer {
        apikey: apikey.into_inner(),
    }))
}

/// Delete a user (admins only). The last admin cannot be deleted.
#[utoipa::path(delete, path = "/auth/user/{id}", tag = "users", params(("id" = String, Path, description = "uid")),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = MessageAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    State(state): State<AuthState>,
    AuthUser(caller): AuthUser,
    Path(uid): Path<String>,
) -> ApiResult<Json<MessageAnswer>> {
    let me = state.current(&caller).await?;
    if !me.admin {
        return Err(ApiError::forbidden("admin users only"));
    }
    let target = state
        .users
        .by_uid(&uid)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found("no user found"))?;
    if target.admin && state.users.count_admins().await.map_err(db_error)? <= 1 {
        return Err(ApiError::conflict("cannot delete the last admin"));
    }
    if !state.users.delete(&uid).await.map_err(db_error)? {
        return Err(ApiError::not_found("no user found"));
    }
    // A later user of the same uid must not inherit the identities.
    state.identities.unlink_all(&target.id).await.map_err(db_error)?;
    tracing::info!(uid = %uid, by = %me.uid, "user deleted");
    state.publish("user_delete", &uid, String::new()).await;
    Ok(Json(MessageAnswer {
        message: "deleted".into(),
    }))
}

/// The status of users, for the revocation maps of other services (service credentials only).
#[utoipa::path(post, path = "/auth/status", tag = "auth", request_body = StatusRequest,
    security(("token" = [])),
    responses((status = 200, body = StatusAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, description = "Not a service credential", body = ErrorBody)))]
pub async fn user_status(
    State(state): State<AuthState>,
    ServiceCaller(_service): ServiceCaller,
    ApiJson(request): ApiJson<StatusRequest>,
) -> ApiResult<Json<StatusAnswer>> {
    if request.uids.len() > RECHECK_BATCH {
        return Err(ApiError::bad_request(format!("uids: at most {RECHECK_BATCH} per call")));
    }
    let users = state.users.statuses(&request.uids).await.map_err(db_error)?;
    Ok(Json(StatusAnswer { users }))
}

/// uids are opaque to other services but must be safe in URLs and logs.
pub fn validate_uid(uid: &str) -> ApiResult<()> {
    let mut chars = uid.chars();
    let valid_start = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if uid.len() > 64 || !valid_start || !valid_rest {
        return Err(ApiError::bad_request(
            "uid: 1 to 64 characters of letters, digits, '.', '_', '@', '-', starting with a letter or digit",
        ));
    }
    Ok(())
}

/// Lengths count characters, as the OpenAPI document's `maxLength` does.
fn validate_profile(email: Option<&str>, pub_key: Option<&str>, kind: Option<&str>) -> ApiResult<()> {
    if email.is_some_and(|email| email.chars().count() > 254 || email.contains(char::is_whitespace)) {
        return Err(ApiError::bad_request("email: at most 254 characters, no spaces"));
    }
    if pub_key.is_some_and(|key| {
        // One line; the newline(s) that end a pasted key file are fine.
        let line = key.trim_end_matches(['\r', '\n']);
        line.chars().count() > 16 * 1024 || line.contains(['\r', '\n'])
    }) {
        return Err(ApiError::bad_request(
            "pub_key: one SSH public key line of at most 16 KiB",
        ));
    }
    if kind.is_some_and(|kind| kind.chars().count() > 32) {
        return Err(ApiError::bad_request("kind: at most 32 characters"));
    }
    Ok(())
}
