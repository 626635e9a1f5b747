//! Routes for other platform services, which call them with a service credential
//! ([`ServiceCaller`]): acct reads who belongs to a namespace, which runs changed, and each
//! run's history with the billable attributes of its resources. Users and agents get 403;
//! no secret is ever returned (see [`goterra_core::service_api`]).

use crate::runs::tfstate;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use goterra_client::ids::{NamespaceId, RunId};
use goterra_core::runs::RunAction;
use goterra_core::service_api::{
    CHANGED_RUNS_PAGE, ChangedRun, ChangedRuns, NamespaceMembers, RunHistoryEntry, RunUsage, check_attribute_name,
    usage_resources,
};
use goterra_core::{ApiError, ApiQuery, ErrorBody, ServiceCaller};
use serde::Deserialize;
use utoipa::IntoParams;

/// Most attributes one usage request may ask for.
const MAX_ATTRIBUTES: usize = 32;

/// Who belongs to a namespace.
#[utoipa::path(get, path = "/deploy/service/ns/{id}", operation_id = "service_namespace_members", tag = "service",
    params(("id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = NamespaceMembers), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn namespace_members(
    State(state): State<AppState>,
    ServiceCaller(_service): ServiceCaller,
    Path(id): Path<NamespaceId>,
) -> Result<Json<NamespaceMembers>, ApiError> {
    let namespace = state.namespaces().load(&id).await?.into_view();
    Ok(Json(NamespaceMembers {
        id: namespace.id,
        name: namespace.name,
        owners: namespace.owners,
        members: namespace.members,
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Comma-separated attribute names to return for each resource instance (e.g.
    /// `flavor_name,size`); names that look like credentials are refused.
    pub attributes: Option<String>,
}

/// A run's history and its resources, with the asked-for attributes.
#[utoipa::path(get, path = "/deploy/service/run/{id}/usage", operation_id = "service_run_usage", tag = "service",
    params(("id" = String, Path), UsageQuery), security(("token" = [])),
    responses((status = 200, body = RunUsage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn run_usage(
    State(state): State<AppState>,
    ServiceCaller(_service): ServiceCaller,
    Path(id): Path<RunId>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<RunUsage>, ApiError> {
    let attributes: Vec<String> = query
        .attributes
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(ApiError::bad_request(format!("attributes: at most {MAX_ATTRIBUTES}")));
    }
    for name in &attributes {
        check_attribute_name(name).map_err(ApiError::bad_request)?;
    }
    let run = state.run_repo().load(&id).await?;
    let terraform = tfstate::current(&state, &id).await?;
    let history = run
        .events
        .iter()
        .filter_map(|event| {
            let action: RunAction = event.action.parse().ok()?;
            Some(RunHistoryEntry {
                ts: event.ts,
                action,
                success: event.success,
            })
        })
        .collect();
    Ok(Json(RunUsage {
        run: run.id.into_string(),
        namespace: run.namespace.into_string(),
        endpoint: run.endpoint.into_string(),
        uid: run.uid.into_string(),
        status: run.status.to_string(),
        history,
        has_state: terraform.is_some(),
        resources: terraform
            .map(|terraform| usage_resources(&terraform, &attributes))
            .unwrap_or_default(),
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangedQuery {
    /// Unix seconds: runs whose status changed at or after this time.
    pub since: Option<i64>,
}

/// Runs whose status changed since a time, oldest change first, at most 1000.
#[utoipa::path(get, path = "/deploy/service/runs", operation_id = "service_changed_runs", tag = "service",
    params(ChangedQuery), security(("token" = [])),
    responses((status = 200, body = ChangedRuns), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn changed_runs(
    State(state): State<AppState>,
    ServiceCaller(_service): ServiceCaller,
    ApiQuery(query): ApiQuery<ChangedQuery>,
) -> Result<Json<ChangedRuns>, ApiError> {
    let runs = state
        .run_repo()
        .changed_since(query.since.unwrap_or(0), CHANGED_RUNS_PAGE)
        .await?
        .into_iter()
        .map(|(id, status_at)| ChangedRun {
            id: id.into_string(),
            status_at,
        })
        .collect();
    Ok(Json(ChangedRuns { runs }))
}
