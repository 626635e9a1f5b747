//! The service's OpenAPI document, generated from the route annotations.

use crate::model::*;
use crate::routes;
use axum::Json;
use goterra_core::ErrorBody;
use goterra_core::http::{Health, SecuritySchemes};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Goterra auth", description = "Users, API keys, login and tokens."),
    paths(
        routes::api,
        routes::renew,
        routes::login,
        routes::register,
        routes::me,
        routes::list_users,
        routes::get_user,
        routes::update_user,
        routes::change_password,
        routes::regenerate_api_key,
        routes::delete_user,
        routes::user_status,
        crate::oidc::start,
        crate::oidc::callback,
        crate::oidc::start_link,
        crate::oidc::list_identities,
        crate::oidc::unlink,
    ),
    components(schemas(UserView, ErrorBody, Health)),
    modifiers(&SecuritySchemes),
    tags((name = "auth", description = "Logging in and tokens"), (name = "users", description = "User accounts"))
)]
pub struct AuthApi;

/// The document as checked in under `openapi/auth.json`.
pub fn document() -> serde_json::Value {
    let mut doc = AuthApi::openapi();
    doc.info.version = goterra_core::http::VERSION.to_string();
    goterra_core::http::finish_document(doc, Some("/auth"))
}

pub async fn serve() -> Json<serde_json::Value> {
    Json(document())
}
