//! Request and response bodies of `/auth`. Field names follow the original API.

use serde::{Deserialize, Serialize};

/// A user as the API shows it: never a password hash or an API key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    pub uid: String,
    pub email: String,
    pub admin: bool,
    #[serde(rename = "super")]
    pub super_user: bool,
    /// `""` for local accounts; `google`, `aai` for identity-provider accounts.
    pub kind: String,
    pub pub_key: String,
    /// Always true in answers, kept for clients of the original API.
    pub logged: bool,
}

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub uid: String,
    pub password: String,
}
crate::redacted_debug!(LoginRequest { uid } hides { password });

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    /// 1 to 64 letters, digits, `.`, `_`, `@`, `-`, starting with a letter or digit.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"))]
    pub uid: String,
    /// 8 to 1024 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    #[serde(default)]
    /// At most 254 characters, no spaces.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[^\s\x00-\x1f\x7f-\x9f]{0,254}$"))]
    pub email: String,
    #[serde(default)]
    /// One SSH public key line of at most 16 KiB (a trailing newline is fine).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f]{0,16384}[\r\n]*$")
    )]
    pub pub_key: String,
    /// Admins only. At most 32 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 32))]
    pub kind: Option<String>,
    /// Admins only.
    pub admin: Option<bool>,
    /// Admins only.
    #[serde(rename = "super")]
    pub super_user: Option<bool>,
}
crate::redacted_debug!(RegisterRequest { uid, email, pub_key, kind, admin, super_user } hides { password });

/// Patch of a user: omitted fields stay as they are. `uid`, `password` and `apikey` are not
/// changed here (they have their own routes) and are ignored if sent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateUserRequest {
    /// At most 254 characters, no spaces.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[^\s\x00-\x1f\x7f-\x9f]{0,254}$"))]
    pub email: Option<String>,
    /// One SSH public key line of at most 16 KiB (a trailing newline is fine).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[^\x00-\x08\x0a-\x1f\x7f-\x9f]{0,16384}[\r\n]*$")
    )]
    pub pub_key: Option<String>,
    /// Admins only.
    pub admin: Option<bool>,
    /// Admins only.
    #[serde(rename = "super")]
    pub super_user: Option<bool>,
    /// Admins only. At most 32 characters.
    #[cfg_attr(feature = "openapi", schema(max_length = 32))]
    pub kind: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordRequest {
    /// 8 to 1024 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    /// Required when users change their own password.
    pub current_password: Option<String>,
}
crate::redacted_debug!(PasswordRequest {} hides { password, current_password });

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyLoginAnswer {
    pub user: UserView,
    pub token: String,
}
crate::redacted_debug!(ApiKeyLoginAnswer { user } hides { token });

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenAnswer {
    pub token: String,
}
crate::redacted_debug!(TokenAnswer {} hides { token });

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginAnswer {
    pub token: String,
    pub user: UserView,
}
crate::redacted_debug!(LoginAnswer { user } hides { token });

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterAnswer {
    pub id: String,
    /// Shown once: only its hash is stored.
    pub apikey: String,
}
crate::redacted_debug!(RegisterAnswer { id } hides { apikey });

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsersAnswer {
    pub users: Vec<UserView>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserAnswer {
    pub user: UserView,
}

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyAnswer {
    /// Shown once: only its hash is stored.
    pub apikey: String,
}
crate::redacted_debug!(ApiKeyAnswer {} hides { apikey });

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageAnswer {
    pub message: String,
}

/// The answer of an OpenID Connect login (`GET /auth/oidc/{provider}/callback`), as the
/// original's without its `apikey`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OidcLoginAnswer {
    pub token: String,
    pub uid: String,
}
crate::redacted_debug!(OidcLoginAnswer { uid } hides { token });

/// Which callback the provider returns the browser to: auth's own (`api`, a JSON answer) or
/// the web UI's (`app`, which starts a UI session).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OidcReturn {
    #[default]
    Api,
    App,
}

/// Starts linking an identity of `provider` to the caller's account.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkIdentityRequest {
    pub provider: String,
    #[serde(default)]
    pub via: OidcReturn,
}

/// Where to send the browser to prove the identity; the answer also sets the flow cookie.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkIdentityAnswer {
    pub location: String,
}

/// An identity-provider account linked to a user.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityView {
    pub provider: String,
    /// The provider's `sub`.
    pub subject: String,
    pub email: String,
    /// Unix seconds.
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentitiesAnswer {
    pub identities: Vec<IdentityView>,
}
