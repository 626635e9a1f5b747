//! acct's OpenAPI document, served at `/acct/openapi.json` and checked in as `openapi/acct.json`.

use crate::api::*;
use crate::routes;
use goterra_core::ErrorBody;
use goterra_core::http::{Health, SecuritySchemes};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Goterra acct",
        description = "Usage and cost of resources per namespace, run and user, from the run lifecycle. Prices are per unit and second; periods are unix seconds, half-open [from, to)."
    ),
    paths(
        routes::resources_all,
        routes::resources_namespace,
        routes::namespace_total,
        routes::namespace_from,
        routes::namespace_from_to,
        routes::namespace_usage,
        routes::run_usage,
        routes::user_usage,
    ),
    components(schemas(ErrorBody, Health, RunResourceList, RunResource, UsedResource, InfluxAnswer, InfluxResult,
        InfluxSeries, KindUsage, PeriodUsage, NamespaceUsage, ResourceUsage, RunUsageReport, RunCost, UserUsage)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "original", description = "The original routes, in the original shapes (the original UI reads them)"),
        (name = "usage", description = "Usage and cost in plain JSON"),
    )
)]
pub struct AcctApi;

/// The document as checked in under `openapi/acct.json`.
pub fn document() -> serde_json::Value {
    goterra_core::http::finish_document(AcctApi::openapi(), Some("/acct"))
}

pub async fn serve() -> axum::Json<serde_json::Value> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_document_is_current() {
        goterra_testing::assert_openapi_current("acct", &document());
    }
}
