//! The service's OpenAPI document, generated from the route annotations.

use crate::model::*;
use crate::routes;
use axum::Json;
use goterra_core::ErrorBody;
use goterra_core::http::Health;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

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
    ),
    components(schemas(UserView, ErrorBody, Health)),
    modifiers(&Security),
    tags((name = "auth", description = "Logging in and tokens"), (name = "users", description = "User accounts"))
)]
pub struct AuthApi;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fernet")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apikey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// The document as checked in under `openapi/auth.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = AuthApi::openapi();
    doc.info.version = goterra_core::http::VERSION.to_string();
    doc
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
