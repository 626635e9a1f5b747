//! The service's OpenAPI document: annotated routes, plus the catalogue routes generated once
//! per kind (they share one generic implementation, see `catalogue.rs`).

use crate::catalogue::Kind;
use crate::model::*;
use crate::runs::{agent, model as run_model, routes as runs};
use crate::{inputs, namespaces, secrets, session};
use axum::Json;
use goterra_core::ErrorBody;
use goterra_core::http::{Health, SecuritySchemes};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder, Schema};
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Goterra deploy",
        description = "Namespaces and their catalogue: endpoints and secrets, recipes, templates, applications; runs and the routes of run agents."
    ),
    paths(
        namespaces::list,
        namespaces::create,
        namespaces::get_one,
        namespaces::update,
        namespaces::delete,
        secrets::put_secret,
        secrets::get_secret,
        secrets::delete_secret,
        secrets::get_defaults,
        secrets::put_defaults,
        inputs::app_inputs,
        session::bind,
        runs::create,
        runs::preview,
        runs::list_namespace,
        runs::list_mine,
        runs::get_one,
        runs::destroy,
        runs::cancel,
        runs::log,
        agent::spec,
        agent::started,
        agent::log,
        agent::heartbeat,
        agent::finished,
        agent::release,
        crate::service_routes::namespace_members,
        crate::service_routes::run_usage,
        crate::service_routes::changed_runs,
    ),
    components(schemas(Namespace, Recipe, Template, Application, Endpoint, ErrorBody, Health,
        run_model::Run, run_model::RunRequest, run_model::RunEvent, run_model::RunCreated, run_model::RunList,
        run_model::RunLog, run_model::TerraformPreview)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "namespaces", description = "Teams and who belongs to them"),
        (name = "recipes", description = "Boot scripts"),
        (name = "templates", description = "Terraform files"),
        (name = "applications", description = "Templates with their recipes"),
        (name = "endpoints", description = "Clouds, and users' credentials for them"),
        (name = "session", description = "API key to token"),
        (name = "runs", description = "Applications deployed on endpoints"),
        (name = "agent", description = "Routes of the run agents (agent credentials); Terraform's http state backend is at /deploy/agent/run/{id}/state (GET, POST, LOCK, UNLOCK, basic auth)"),
        (name = "service", description = "Routes for other platform services (service credentials): acct reads namespace members, changed runs and run usage"),
    )
)]
pub struct DeployApi;

fn path_param(name: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// An optional integer query parameter between `minimum` and `maximum`, as the handler checks.
fn query_param(name: &str, description: &str, minimum: i64, maximum: i64) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Int64,
                )))
                .minimum(Some(minimum))
                .maximum(Some(maximum)),
        ))
        .build()
}

/// `{"<key>": <schema>}`.
fn wrapper(key: &str, schema: impl Into<RefOr<Schema>>) -> RefOr<Schema> {
    ObjectBuilder::new().property(key, schema).required(key).into()
}

fn json_response(description: &str, schema: RefOr<Schema>) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
        .build()
}

fn with_errors(mut operation: OperationBuilder, statuses: &[&str]) -> OperationBuilder {
    for status in statuses {
        operation = operation.response(
            *status,
            json_response("error", RefOr::Ref(Ref::from_schema_name(ErrorBody::name()))),
        );
    }
    operation
        .security(SecurityRequirement::new("token", Vec::<String>::new()))
        .security(SecurityRequirement::new("apikey", Vec::<String>::new()))
}

fn string_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

/// Adds the six catalogue routes of one kind.
fn add_kind<K: Kind + ToSchema>(doc: &mut utoipa::openapi::OpenApi, tag: &str) {
    let object = || RefOr::Ref(Ref::from_schema_name(<K as ToSchema>::name()));
    let list = || ArrayBuilder::new().items(object()).build();
    let body = |schema: RefOr<Schema>| {
        Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
                .build(),
        )
    };
    // Creating needs a name; an update is a patch of the stored object.
    let named = || -> RefOr<Schema> {
        utoipa::openapi::schema::AllOfBuilder::new()
            .item(object())
            .item(ObjectBuilder::new().required("name"))
            .into()
    };
    let collection = format!("/deploy/ns/{{id}}/{}", K::SEGMENT);
    let item = format!("/deploy/ns/{{id}}/{}/{{{}}}", K::SEGMENT, K::PARAM);
    let label = K::LABEL;
    let paths = &mut doc.paths;
    let paging = |operation: OperationBuilder| {
        operation
            .parameter(query_param("skip", "Items to skip (default 0)", 0, i64::MAX))
            .parameter(query_param("limit", "Items to return, 1 to 500 (default 100)", 1, 500))
            .parameter(query_param("light", "1 leaves out scripts and Terraform files", 0, 255))
    };

    let op = paging(
        OperationBuilder::new()
            .tag(tag)
            .summary(Some(format!("List the namespace's {}s (members)", label)))
            .operation_id(Some(format!("list_{}", K::MANY))),
    )
    .parameter(path_param("id"))
    .response("200", json_response("the objects", wrapper(K::MANY, list())));
    paths.add_path_operation(
        &collection,
        vec![HttpMethod::Get],
        with_errors(op, &["400", "401", "403", "404"]).build(),
    );

    let op = OperationBuilder::new()
        .tag(tag)
        .summary(Some(format!("Create a {label} (members)")))
        .operation_id(Some(format!("create_{}", K::ONE)))
        .parameter(path_param("id"))
        .request_body(body(named()))
        .response("201", json_response("its id", wrapper(K::ONE, string_schema())));
    paths.add_path_operation(
        &collection,
        vec![HttpMethod::Post],
        with_errors(op, &["400", "401", "403", "404", "409"]).build(),
    );

    let op = OperationBuilder::new()
        .tag(tag)
        .summary(Some(format!("Get a {label} (public, or members)")))
        .operation_id(Some(format!("get_{}", K::ONE)))
        .parameter(path_param("id"))
        .parameter(path_param(K::PARAM))
        .response("200", json_response("the object", wrapper(K::ONE, object())));
    paths.add_path_operation(
        &item,
        vec![HttpMethod::Get],
        with_errors(op, &["401", "403", "404"]).build(),
    );

    let op = OperationBuilder::new()
        .tag(tag)
        .summary(Some(format!(
            "Change a {label} (members): fields left out keep their value"
        )))
        .operation_id(Some(format!("update_{}", K::ONE)))
        .parameter(path_param("id"))
        .parameter(path_param(K::PARAM))
        .request_body(body(object()))
        .response(
            "200",
            json_response("the object after the change", wrapper(K::ONE, object())),
        );
    paths.add_path_operation(
        &item,
        vec![HttpMethod::Put],
        with_errors(op, &["400", "401", "403", "404", "409"]).build(),
    );

    let op = OperationBuilder::new()
        .tag(tag)
        .summary(Some(format!("Delete a {label} (members); 409 while frozen or used")))
        .operation_id(Some(format!("delete_{}", K::ONE)))
        .parameter(path_param("id"))
        .parameter(path_param(K::PARAM))
        .response("200", json_response("its id", wrapper(K::ONE, string_schema())));
    paths.add_path_operation(
        &item,
        vec![HttpMethod::Delete],
        with_errors(op, &["401", "403", "404", "409"]).build(),
    );

    let op = paging(
        OperationBuilder::new()
            .tag(tag)
            .summary(Some(format!("The public {label}s (any logged user)")))
            .operation_id(Some(format!("list_public_{}", K::MANY))),
    )
    .response("200", json_response("the objects", wrapper(K::MANY, list())));
    paths.add_path_operation(
        format!("/deploy/{}", K::MANY),
        vec![HttpMethod::Get],
        with_errors(op, &["400", "401"]).build(),
    );
}

/// The document as checked in under `openapi/deploy.json`.
pub fn document() -> serde_json::Value {
    let mut doc = DeployApi::openapi();
    doc.info.version = goterra_core::http::VERSION.to_string();
    add_kind::<Recipe>(&mut doc, "recipes");
    add_kind::<Template>(&mut doc, "templates");
    add_kind::<Application>(&mut doc, "applications");
    add_kind::<Endpoint>(&mut doc, "endpoints");
    goterra_core::http::finish_document(doc, Some("/deploy"))
}

pub async fn serve() -> Json<serde_json::Value> {
    Json(document())
}
