//! The service's OpenAPI document, served at `/store/openapi.json` and checked in as
//! `openapi/store.json`.

use crate::routes;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Goterra store",
        description = "Per-deployment key/value data exchanged by the VMs of a deployment, with deployment-scoped tokens and server-side waiting."
    ),
    paths(
        routes::create_deployment,
        routes::get_deployment,
        routes::put_values,
        routes::delete_deployment,
        routes::get_key,
        routes::renew_token,
        routes::get_key_named_token,
    ),
    components(schemas(routes::DeploymentToken, routes::DeploymentData, routes::KeyValue, routes::Message, goterra_core::ErrorBody)),
    modifiers(&SecuritySchemes),
    tags((name = "store", description = "Deployment key/value store"))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("fernet")
                    .description(Some("A user token, or a token scoped to one deployment"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

pub fn document() -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    one_or_many_key_values(&mut doc);
    goterra_core::http::finish_document(doc, Some("/store"))
}

/// `PUT /store/{id}` takes one `{"key","value"}` or a non-empty array of them.
fn one_or_many_key_values(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
    use utoipa::openapi::{ContentBuilder, Ref, Required, request_body::RequestBodyBuilder};
    let Some(item) = doc.paths.paths.get_mut("/store/{id}") else {
        return;
    };
    let Some(put) = item.put.as_mut() else { return };
    let schema = OneOfBuilder::new()
        .item(Ref::from_schema_name("KeyValue"))
        .item(
            ArrayBuilder::new()
                .items(Ref::from_schema_name("KeyValue"))
                .min_items(Some(1)),
        )
        .build();
    put.request_body = Some(
        RequestBodyBuilder::new()
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Schema::OneOf(schema)))
                    .build(),
            )
            .required(Some(Required::True))
            .build(),
    );
}

/// The document as checked in: pretty-printed with a trailing newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}
