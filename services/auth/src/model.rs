//! Request and response bodies. Field names follow the original API.

use crate::users::UserRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user as the API shows it: never a password hash or an API key.
#[derive(Debug, Serialize, ToSchema)]
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

impl From<&UserRecord> for UserView {
    fn from(user: &UserRecord) -> Self {
        Self {
            uid: user.uid.clone(),
            email: user.email.clone(),
            admin: user.admin,
            super_user: user.super_user,
            kind: user.kind.clone(),
            pub_key: user.pub_key.clone(),
            logged: true,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub uid: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub uid: String,
    pub password: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub pub_key: String,
    /// Admins only.
    pub kind: Option<String>,
    /// Admins only.
    pub admin: Option<bool>,
    /// Admins only.
    #[serde(rename = "super")]
    pub super_user: Option<bool>,
}

/// Patch of a user: omitted fields stay as they are. `uid`, `password` and `apikey` are not
/// changed here (they have their own routes) and are ignored if sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    pub email: Option<String>,
    pub pub_key: Option<String>,
    /// Admins only.
    pub admin: Option<bool>,
    /// Admins only.
    #[serde(rename = "super")]
    pub super_user: Option<bool>,
    /// Admins only.
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordRequest {
    pub password: String,
    /// Required when users change their own password.
    pub current_password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyLoginAnswer {
    pub user: UserView,
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginAnswer {
    pub token: String,
    pub user: UserView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterAnswer {
    pub id: String,
    /// Shown once: only its hash is stored.
    pub apikey: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsersAnswer {
    pub users: Vec<UserView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserAnswer {
    pub user: UserView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyAnswer {
    /// Shown once: only its hash is stored.
    pub apikey: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageAnswer {
    pub message: String,
}
