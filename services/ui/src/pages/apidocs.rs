//! The API view: every service's OpenAPI document (served by the service itself, so it is
//! always the running version and needs nothing from the internet) as browsable HTML.

use super::SignedIn;
use crate::Ui;
use crate::error::PageError;
use crate::layout::{Section, url};
use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;

/// Services with an OpenAPI document, in the order of the navigation.
pub const SERVICES: [&str; 5] = ["auth", "deploy", "store", "run-agent", "acct"];
const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

pub fn routes() -> Router<Ui> {
    Router::new()
        .route(&url("/api"), get(index))
        .route(&url("/api/{service}"), get(document))
}

fn service_nav(current: Option<&str>) -> Markup {
    html! {
        nav class="tabs" aria-label="Services" {
            @for service in SERVICES {
                a href=(url(&format!("/api/{service}"))) aria-current=[(current == Some(service)).then_some("page")] { (service) }
            }
        }
    }
}

async fn index(me: SignedIn) -> Result<Response, PageError> {
    let body = html! {
        h1 { "API" }
        (service_nav(None))
        p { "Every page of this UI is built from these routes; scripts and the command-line client use the same ones. "
            "Authenticate with " code { "Authorization: Bearer <token>" } " (from " code { "POST /auth/login" } ") or " code { "X-API-Key: <key>" } "." }
        p { "Base URL: " code { (me.ui.settings.public_url) } }
    };
    Ok(me.render(Section::Api, "API", body))
}

async fn document(me: SignedIn, Path(service): Path<String>) -> Result<Response, PageError> {
    // The original UI's address named the repository (`/api/goterra-auth`).
    if let Some(known) = service.strip_prefix("goterra-").filter(|name| SERVICES.contains(name)) {
        return Ok(Redirect::permanent(&url(&format!("/api/{known}"))).into_response());
    }
    if !SERVICES.contains(&service.as_str()) {
        return Err(PageError::NotFound(format!("no service named {service}")));
    }
    let document = match me.api().openapi(&service).await {
        Ok(document) => Some(document),
        Err(crate::api::ApiFailure::NotFound(_)) => None,
        Err(other) => return Err(other.into()),
    };
    let body = html! {
        h1 { "API of " (service) }
        (service_nav(Some(&service)))
        @match &document {
            None => p class="empty" { "This service publishes no OpenAPI document (yet)." },
            Some(document) => (render_document(&me.ui.settings.public_url, document)),
        }
    };
    Ok(me.render(Section::Api, &format!("API of {service}"), body))
}

/// One operation of the document.
struct Operation<'a> {
    method: &'a str,
    path: &'a str,
    spec: &'a Value,
}

fn render_document(base: &str, document: &Value) -> Markup {
    let info = &document["info"];
    let mut by_tag: std::collections::BTreeMap<String, Vec<Operation<'_>>> = Default::default();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(spec) = item.get(method) {
                    let tag = spec["tags"][0].as_str().unwrap_or("other").to_string();
                    by_tag.entry(tag).or_default().push(Operation { method, path, spec });
                }
            }
        }
    }
    html! {
        @if let Some(description) = info["description"].as_str() { p { (description) } }
        p class="muted" { "Version " (info["version"].as_str().unwrap_or("?")) " · "
            a href=(format!("{base}/{}/openapi.json", document_prefix(document))) { "the JSON document" } }
        nav class="toc" aria-label="Groups" {
            ul class="plain inline-list" { @for tag in by_tag.keys() { li { a href=(format!("#tag-{tag}")) { (tag) } } } }
        }
        @for (tag, operations) in &by_tag {
            section id=(format!("tag-{tag}")) {
                h2 { (tag) }
                @for operation in operations { (render_operation(base, operation)) }
            }
        }
        @if let Some(schemas) = document["components"]["schemas"].as_object() {
            section {
                h2 { "Schemas" }
                @for (name, schema) in schemas {
                    details id=(format!("schema-{name}")) class="schema" {
                        summary { code { (name) } }
                        @if let Some(description) = schema["description"].as_str() { p { (description) } }
                        (render_schema(schema))
                    }
                }
            }
        }
    }
}

/// `deploy` from a document whose paths start with `/deploy`.
fn document_prefix(document: &Value) -> String {
    document["paths"]
        .as_object()
        .and_then(|paths| paths.keys().next())
        .and_then(|path| path.trim_start_matches('/').split('/').next())
        .unwrap_or_default()
        .to_string()
}

fn schema_name(schema: &Value) -> Option<&str> {
    schema["$ref"].as_str().and_then(|r| r.rsplit('/').next())
}

/// A short type for a schema: `Namespace`, `string`, `array of Run`.
fn type_of(schema: &Value) -> Markup {
    if let Some(name) = schema_name(schema) {
        return html! { a href=(format!("#schema-{name}")) { (name) } };
    }
    match schema["type"].as_str() {
        Some("array") => html! { "array of " (type_of(&schema["items"])) },
        Some(kind) => html! { (kind) },
        None => match schema["oneOf"].as_array().or(schema["allOf"].as_array()) {
            Some(options) => {
                html! { @for (i, option) in options.iter().enumerate() { @if i > 0 { " | " } (type_of(option)) } }
            }
            None => html! { "any" },
        },
    }
}

fn render_schema(schema: &Value) -> Markup {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        @if let Some(properties) = schema["properties"].as_object() {
            table class="schema" {
                thead { tr { th { "Field" } th { "Type" } th { "Description" } } }
                tbody {
                    @for (name, property) in properties {
                        tr {
                            td { code { (name) } @if required.contains(&name.as_str()) { " " span class="tag" { "required" } } }
                            td { (type_of(property)) }
                            td { (property["description"].as_str().unwrap_or_default()) }
                        }
                    }
                }
            }
        } @else {
            p { "Type: " (type_of(schema)) }
        }
    }
}

fn render_operation(base: &str, operation: &Operation<'_>) -> Markup {
    let spec = operation.spec;
    let method = operation.method.to_uppercase();
    let body_schema = &spec["requestBody"]["content"]["application/json"]["schema"];
    let mut curl = format!("curl -X {method} -H \"Authorization: Bearer $TOKEN\"");
    if !body_schema.is_null() {
        curl.push_str(" -H 'Content-Type: application/json' -d '{…}'");
    }
    curl.push_str(&format!(" '{base}{}'", operation.path));
    html! {
        article class="operation" {
            h3 { span class=(format!("method {}", operation.method)) { (method) } " " code { (operation.path) } }
            @if let Some(summary) = spec["summary"].as_str() { p { (summary) } }
            @if let Some(description) = spec["description"].as_str() { p class="muted" { (description) } }
            @if let Some(parameters) = spec["parameters"].as_array().filter(|p| !p.is_empty()) {
                table class="schema" {
                    thead { tr { th { "Parameter" } th { "In" } th { "Type" } th { "Description" } } }
                    tbody {
                        @for parameter in parameters {
                            tr {
                                td { code { (parameter["name"].as_str().unwrap_or_default()) } @if parameter["required"].as_bool() == Some(true) { " " span class="tag" { "required" } } }
                                td { (parameter["in"].as_str().unwrap_or_default()) }
                                td { (type_of(&parameter["schema"])) }
                                td { (parameter["description"].as_str().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            @if !body_schema.is_null() { p { "Request body: " (type_of(body_schema)) } }
            @if let Some(responses) = spec["responses"].as_object() {
                ul class="plain responses" {
                    @for (status, response) in responses {
                        li {
                            span class=(format!("code c{}", &status[..1.min(status.len())])) { (status) } " "
                            (response["description"].as_str().unwrap_or_default())
                            @let schema = &response["content"]["application/json"]["schema"];
                            @if !schema.is_null() { " → " (type_of(schema)) }
                        }
                    }
                }
            }
            pre class="code" { (curl) }
        }
    }
}
