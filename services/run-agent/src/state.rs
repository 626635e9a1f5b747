//! `GET /run-agent/ns/{ns}/run/{run}/state`: the resources a run has, read from the Terraform
//! state deploy keeps for it. Deploy decides who may see the run (the caller's credentials are
//! forwarded); only the run's owner or an admin may see its resources. Attribute values are
//! never shown: a state holds every secret the template handled.

use crate::control::HttpRunControl;
use axum::Json;
use axum::extract::{FromRef, Path, State};
use axum::http::HeaderMap;
use goterra_core::auth::{AuthUser, Authenticator};
pub use goterra_core::tfstate::TerraformState;
use goterra_core::{ApiError, ApiResult};
use serde_json::Value;
use std::sync::Arc;

/// What the state route needs.
#[derive(Clone)]
pub struct StateRoutes {
    pub authenticator: Arc<Authenticator>,
    pub deploy: Arc<HttpRunControl>,
}

impl FromRef<StateRoutes> for Arc<Authenticator> {
    fn from_ref(routes: &StateRoutes) -> Self {
        routes.authenticator.clone()
    }
}

pub use goterra_client::run_agent::{ResourceInstance, RunResources};

/// One entry per resource instance of `state`, without any attribute but the id.
pub fn instances(state: &TerraformState) -> Vec<ResourceInstance> {
    let mut listed = Vec::new();
    for resource in &state.resources {
        let base = resource.base_address();
        for instance in &resource.instances {
            let id = instance
                .attributes
                .as_ref()
                .and_then(|attributes| attributes.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            listed.push(ResourceInstance {
                address: instance.address(&base),
                mode: resource.mode.clone(),
                kind: resource.kind.clone(),
                name: resource.name.clone(),
                provider: resource.provider.clone(),
                id,
            });
        }
    }
    listed
}

/// Resources of a run, from its stored state (owner or admin).
#[utoipa::path(
    get,
    path = "/run-agent/ns/{ns}/run/{run}/state",
    params(("ns" = String, Path, description = "Namespace id"), ("run" = String, Path, description = "Run id")),
    responses(
        (status = 200, body = RunResources),
        (status = 401, body = goterra_core::error::ErrorBody),
        (status = 403, body = goterra_core::error::ErrorBody, description = "Not the run's owner nor an admin"),
        (status = 404, body = goterra_core::error::ErrorBody),
        (status = 503, body = goterra_core::error::ErrorBody, description = "Deploy cannot be reached"),
    ),
    security(("bearer" = []), ("apikey" = []))
)]
pub async fn run_state(
    State(routes): State<StateRoutes>,
    AuthUser(user): AuthUser,
    Path((ns, run)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<RunResources>> {
    let owner = routes.deploy.run_owner_as_caller(&ns, &run, &headers).await?;
    if owner != user.uid && !user.admin {
        return Err(ApiError::forbidden(
            "only the run's owner or an admin may see its resources",
        ));
    }
    let Some(state) = routes.deploy.stored_state(&run).await? else {
        return Ok(Json(RunResources {
            run,
            ..RunResources::default()
        }));
    };
    let resources = instances(&state);
    Ok(Json(RunResources {
        run,
        serial: state.serial,
        terraform_version: state.terraform_version,
        states: resources.iter().map(|resource| resource.address.clone()).collect(),
        resources,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn instances_have_addresses_and_ids_but_no_attributes() {
        let state: TerraformState = serde_json::from_value(serde_json::json!({
            "version": 4, "serial": 7, "terraform_version": "1.0.3",
            "resources": [
                {"mode": "managed", "type": "null_resource", "name": "vm",
                 "provider": "provider[\"registry.terraform.io/hashicorp/null\"]",
                 "instances": [{"index_key": 0, "attributes": {"id": "111", "triggers": {"password": "s3cret"}}},
                               {"index_key": 1, "attributes": {"id": "222"}}]},
                {"module": "module.net", "mode": "data", "type": "external", "name": "ip", "provider": "p",
                 "instances": [{"index_key": "eu", "attributes": {}}]}
            ]
        }))
        .unwrap();
        let listed = instances(&state);
        let addresses: Vec<_> = listed.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(
            addresses,
            [
                "null_resource.vm[0]",
                "null_resource.vm[1]",
                "module.net.data.external.ip[\"eu\"]"
            ]
        );
        assert_eq!(listed[0].id.as_deref(), Some("111"));
        assert_eq!(listed[2].id, None);
        assert!(!serde_json::to_string(&listed).unwrap().contains("s3cret"));
    }
}
