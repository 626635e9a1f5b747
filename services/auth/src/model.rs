//! Request and response bodies. Field names follow the original API; the shapes are defined
//! once, in `goterra-client`.

use crate::users::UserRecord;

pub use goterra_client::auth::{
    ApiKeyAnswer, ApiKeyLoginAnswer, IdentitiesAnswer, IdentityView, LinkIdentityAnswer, LinkIdentityRequest,
    LoginAnswer, LoginRequest, MessageAnswer, OidcLoginAnswer, OidcReturn, PasswordRequest, RegisterAnswer,
    RegisterRequest, TokenAnswer, UpdateUserRequest, UserAnswer, UserView, UsersAnswer,
};

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
