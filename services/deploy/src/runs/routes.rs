//! The user routes of runs.

use super::model::{Run, RunCreated, RunList, RunLog, RunRequest, TerraformPreview};
use super::prepare::{declarations, prepare};
use super::sealed::seal_map;
use super::store_client;
use crate::access::{self, NamespaceRecord};
use crate::state::AppState;
use crate::storage::Page;
use crate::storage::runs::{ActionEnd, NewRun, RunFilter, RunRecord};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use goterra_client::ids::{ApplicationId, EndpointId, NamespaceId, RunId};
use goterra_core::runs::{RunAction, RunJob, RunStatus};
use goterra_core::{ApiError, ApiJson, ApiQuery, AuthUser, ErrorBody, Event, Identity};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::IntoParams;

/// Most log lines one `GET .../log` returns.
const LOG_PAGE: i64 = 5000;

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Items to return, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `1`: every run the caller may see (namespace owners: their namespaces' runs; admins: all).
    #[param(maximum = 255)]
    pub all: Option<u8>,
    /// Only runs in these statuses, comma-separated (`deploy_pending`, `deploy_in_progress`,
    /// `deploy_success`, `deploy_failure`, `destroy_pending`, `destroy_in_progress`,
    /// `destroy_success`, `destroy_failure`, `canceled`); empty or absent: every status.
    /// Paging applies to the filtered list.
    #[param(
        example = "deploy_success,deploy_failure",
        pattern = r"^(?:[^\S\x00-\x1f\x7f-\x9f]|,)*(?:(?:deploy_pending|deploy_in_progress|deploy_success|deploy_failure|destroy_pending|destroy_in_progress|destroy_success|destroy_failure|canceled)(?:[^\S\x00-\x1f\x7f-\x9f]*,(?:[^\S\x00-\x1f\x7f-\x9f]|,)*(?:deploy_pending|deploy_in_progress|deploy_success|deploy_failure|destroy_pending|destroy_in_progress|destroy_success|destroy_failure|canceled))*)?(?:[^\S\x00-\x1f\x7f-\x9f]|,)*$"
    )]
    pub status: Option<String>,
}

impl RunListQuery {
    fn page(&self) -> Result<Page, ApiError> {
        let bounds = goterra_core::Pagination {
            skip: self.skip,
            limit: self.limit,
        }
        .bounds()?;
        Ok(Page::new(bounds))
    }

    /// The statuses asked for (none: every status); an unknown one is a 400 naming it.
    fn statuses(&self) -> Result<Vec<RunStatus>, ApiError> {
        let mut statuses: Vec<RunStatus> = Vec::new();
        let names = self.status.as_deref().unwrap_or_default().split(',').map(str::trim);
        for name in names.filter(|name| !name.is_empty()) {
            let status: RunStatus = name.parse().map_err(|_| {
                let known: Vec<&str> = RunStatus::ALL.iter().map(|status| status.as_str()).collect();
                ApiError::bad_request(format!(
                    "status: unknown run status {name:?} (one or several of {}, comma-separated)",
                    known.join(", ")
                ))
            })?;
            if !statuses.contains(&status) {
                statuses.push(status);
            }
        }
        Ok(statuses)
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// First line to return (0-based, default 0).
    pub from: Option<i64>,
    /// `1`: stream the log as server-sent events until the action in flight ends.
    #[param(maximum = 255)]
    pub follow: Option<u8>,
}

/// The run, when the caller may see and act on it: its owner, an owner of its namespace, an admin.
async fn run_access(
    state: &AppState,
    user: &Identity,
    namespace_id: &NamespaceId,
    run_id: &RunId,
) -> Result<(RunRecord, NamespaceRecord), ApiError> {
    let namespace = state.namespaces().load(namespace_id).await?;
    let run = match state.run_repo().find(run_id).await? {
        Some(run) if run.namespace == namespace.id => run,
        _ => return Err(ApiError::not_found("run not found")),
    };
    let uid = access::uid_of(user);
    if user.is_admin() || run.uid == uid || namespace.is_owner(&uid) {
        Ok((run, namespace))
    } else {
        Err(ApiError::forbidden("not allowed to access this run"))
    }
}

/// A run as the API shows it.
pub fn view(run: RunRecord) -> Run {
    Run {
        id: run.id.into_string(),
        name: run.name,
        description: run.description,
        app_id: run.app_id.into_string(),
        inputs: run.inputs,
        secretinputs: None,
        status: run.status.as_str().to_string(),
        endpoint: run.endpoint.into_string(),
        namespace: run.namespace.into_string(),
        uid: run.uid.into_string(),
        start: run.created_at,
        end: run.ended_at,
        duration: run.duration_ms as f64 / 1000.0,
        outputs: run.outputs,
        error: run.error,
        deployment: run.deployment.into_string(),
        events: run.events,
        action: run.action.map(|action| action.as_str().to_string()),
    }
}

/// Starts a run: checks, store deployment, boot scripts, stored `deploy_pending`, queued.
/// The path is `/deploy/ns/{id}/run/{run}` in the document, as for `GET` and `DELETE` of a run
/// (OpenAPI allows one template per path); here its last segment names the application.
#[utoipa::path(post, path = "/deploy/ns/{id}/run/{run}", operation_id = "create_run", tag = "runs",
    params(("id" = String, Path), ("run" = String, Path, description = "The application to run (its id)")), request_body = RunRequest,
    security(("token" = []), ("apikey" = [])),
    responses((status = 201, body = RunCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, description = "store or run queue unavailable", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, app_id)): Path<(NamespaceId, ApplicationId)>,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Response, ApiError> {
    let namespace = access::require_member(&state, &namespace_id, &user).await?;
    if namespace.freeze {
        return Err(ApiError::forbidden("namespace is frozen: new runs are refused"));
    }
    let prepared = prepare(&state, &user, &namespace.id, &app_id, request, true).await?;
    let id = RunId::generate();
    let platform_url = state.platform.config.public_url();

    let deployment = store_client::create(&state.platform, &user, &namespace.id)
        .await
        .map_err(|err| ApiError::Unavailable(format!("cannot create the run's store deployment: {err}")))?;

    let ssh_pub_key = prepared.inputs.get("ssh_pub_key").map(String::as_str);
    let mut boot = BTreeMap::new();
    for (var, recipes) in &prepared.boot_recipes {
        let script = goterra_boot::render(&goterra_boot::BootScript {
            app_id: &prepared.app.id,
            name: &format!("{}-{var}", prepared.app.name),
            store_url: &platform_url,
            deployment: deployment.id.as_str(),
            token: &deployment.token,
            recipes,
            inputs: &prepared.inputs,
            ssh_pub_key,
        })
        .map_err(|err| ApiError::bad_request(format!("cannot render the boot script of {var}: {err}")))?;
        boot.insert(var.clone(), script);
    }

    let mut variables = prepared.variables;
    variables.insert("goterra_run".into(), json!(id));
    variables.insert("goterra_deployment".into(), json!(deployment.id));
    let mut sensitive: BTreeMap<String, String> = prepared
        .sensitive
        .iter()
        .map(|(name, value)| (name.clone(), value.expose().clone()))
        .collect();
    sensitive.insert("goterra_deployment_token".into(), deployment.token.expose().clone());

    let uid = access::uid_of(&user);
    let run = NewRun {
        id: id.clone(),
        namespace: namespace.id.clone(),
        app_id: ApplicationId::from_trusted(&prepared.app.id),
        endpoint: EndpointId::from_trusted(&prepared.endpoint.id),
        uid: uid.clone(),
        name: prepared.name.clone(),
        description: prepared.description.clone(),
        inputs: prepared.inputs.clone(),
        template: prepared.template.clone(),
        variables,
        sensitive_sealed: seal_map(&state, &sensitive)?,
        boot_sealed: seal_map(&state, &boot)?,
        deployment: deployment.id.clone(),
    };
    if let Err(err) = state.run_repo().create(&run).await {
        // Nothing refers to the deployment: do not leave it behind.
        let _ = store_client::delete(&state.platform, &uid, &deployment.id).await;
        return Err(err.into());
    }
    tracing::info!(run = %id, namespace = %namespace.id, uid = %user.uid, "run created");
    enqueue(&state, &id, RunAction::Deploy).await?;
    state
        .platform
        .events
        .publish(Event::new("run_deploy", user.uid.clone(), id.clone()))
        .await;

    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("{platform_url}/deploy/ns/{}/run/{id}", namespace.id)) {
        headers.insert(header::LOCATION, value);
    }
    Ok((StatusCode::CREATED, headers, Json(RunCreated { run: id.into_string() })).into_response())
}

/// Queues the action; a queue that refuses it fails the run at once, with the reason.
async fn enqueue(state: &AppState, id: &RunId, action: RunAction) -> Result<(), ApiError> {
    if let Err(err) = state.queue.enqueue(&RunJob::new(action, id.as_str())).await {
        tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot queue the run");
        let reason = format!("the run queue is unavailable, the {action} was not started: {err}");
        let reason = crate::validate::shorten_message(&reason);
        state.run_repo().fail_action(id, action, &reason).await?;
        return Err(ApiError::Unavailable(format!(
            "the run queue is unavailable: run {id} is marked {}",
            RunStatus::failure(action)
        )));
    }
    Ok(())
}

/// The files an agent would write for this request, sensitive values left out. Nothing is stored.
#[utoipa::path(post, path = "/deploy/ns/{id}/run/{application}/terraform", operation_id = "preview_run", tag = "runs",
    params(("id" = String, Path), ("application" = String, Path)), request_body = RunRequest,
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = TerraformPreview), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, app_id)): Path<(NamespaceId, ApplicationId)>,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Json<TerraformPreview>, ApiError> {
    let prepared = prepare(&state, &user, &namespace_id, &app_id, request, false).await?;
    let mut variables = prepared.variables;
    variables.insert("goterra_run".into(), json!(""));
    variables.insert("goterra_deployment".into(), json!(""));
    let cloudinit: BTreeMap<String, String> = prepared
        .boot_recipes
        .iter()
        .map(|(var, recipes)| {
            let names: Vec<&str> = recipes.iter().map(|recipe| recipe.name.as_str()).collect();
            (
                var.clone(),
                format!(
                    "# boot script rendered when the run starts; recipes: {}",
                    names.join(", ")
                ),
            )
        })
        .collect();
    variables.insert("goterra_cloudinit".into(), json!(cloudinit));
    let mut sensitive: Vec<String> = prepared.sensitive.keys().cloned().collect();
    sensitive.push("goterra_deployment_token".into());
    sensitive.sort();
    Ok(Json(TerraformPreview {
        app_tf: prepared.template,
        variables_tf: declarations(&variables, &sensitive),
        tfvars: serde_json::to_string_pretty(&variables).map_err(ApiError::internal)?,
        sensitive,
    }))
}

/// The caller's runs in the namespace; with `?all=1`, every run of it (owners and admins).
#[utoipa::path(get, path = "/deploy/ns/{id}/run", operation_id = "list_namespace_runs", tag = "runs",
    params(("id" = String, Path), RunListQuery), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = RunList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_namespace(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(namespace_id): Path<NamespaceId>,
    ApiQuery(query): ApiQuery<RunListQuery>,
) -> Result<Json<RunList>, ApiError> {
    let (page, statuses) = (query.page()?, query.statuses()?);
    let namespace = access::require_member(&state, &namespace_id, &user).await?;
    let everything = query.all == Some(1) && namespace.can_manage(&user);
    let uid = access::uid_of(&user);
    let filter = if everything {
        RunFilter::InNamespace(&namespace.id)
    } else {
        RunFilter::OwnedByInNamespace {
            uid: &uid,
            namespace: &namespace.id,
        }
    };
    let runs = state.run_repo().list_in_status(filter, &statuses, page).await?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(view).collect(),
    }))
}

/// The caller's runs in every namespace; with `?all=1`, also the runs of the namespaces they
/// own (admins: every run).
#[utoipa::path(get, path = "/deploy/run", operation_id = "list_my_runs", tag = "runs",
    params(RunListQuery), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = RunList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list_mine(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<RunListQuery>,
) -> Result<Json<RunList>, ApiError> {
    let (page, statuses) = (query.page()?, query.statuses()?);
    let uid = access::uid_of(&user);
    let filter = match query.all == Some(1) {
        true if user.is_admin() => RunFilter::Every,
        true => RunFilter::OwnedByOrInNamespacesOwnedBy(&uid),
        false => RunFilter::OwnedBy(&uid),
    };
    let runs = state.run_repo().list_in_status(filter, &statuses, page).await?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(view).collect(),
    }))
}

/// One run (bare object, as in the original). `secretinputs` is always `null`.
#[utoipa::path(get, path = "/deploy/ns/{id}/run/{run}", operation_id = "get_run", tag = "runs",
    params(("id" = String, Path), ("run" = String, Path)), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = Run), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, run_id)): Path<(NamespaceId, RunId)>,
) -> Result<Json<Run>, ApiError> {
    let (run, _) = run_access(&state, &user, &namespace_id, &run_id).await?;
    Ok(Json(view(run)))
}

/// Destroys the run's resources: queues `destroy`. 409 while a deploy is pending or in progress
/// (cancel it first), while a destroy is already in flight, and once destroyed.
#[utoipa::path(delete, path = "/deploy/ns/{id}/run/{run}", operation_id = "destroy_run", tag = "runs",
    params(("id" = String, Path), ("run" = String, Path)), security(("token" = []), ("apikey" = [])),
    responses((status = 200, description = "the run, now destroy_pending", body = Run), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn destroy(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, run_id)): Path<(NamespaceId, RunId)>,
) -> Result<Json<Run>, ApiError> {
    let (run, _) = run_access(&state, &user, &namespace_id, &run_id).await?;
    if !state.run_repo().queue_destroy(&run.id).await? {
        let current = state.run_repo().load(&run.id).await?;
        return Err(ApiError::conflict(match current.status {
            RunStatus::DeployPending | RunStatus::DeployInProgress => {
                "a deploy is in progress: cancel it first, then destroy"
            }
            RunStatus::DestroyPending | RunStatus::DestroyInProgress => "a destroy is already in flight",
            RunStatus::DestroySuccess => "the run is already destroyed",
            _ => "the run cannot be destroyed in its current status",
        }));
    }
    tracing::info!(run = %run.id, uid = %user.uid, "run destroy queued");
    enqueue(&state, &run.id, RunAction::Destroy).await?;
    state
        .platform
        .events
        .publish(Event::new("run_destroy", user.uid.clone(), run.id.clone()))
        .await;
    Ok(Json(view(state.run_repo().load(&run.id).await?)))
}

/// Cancels the action in flight: a pending one at once, a running one through the agent's next
/// heartbeat (the agent stops Terraform and reports `canceled`).
#[utoipa::path(post, path = "/deploy/ns/{id}/run/{run}/cancel", operation_id = "cancel_run", tag = "runs",
    params(("id" = String, Path), ("run" = String, Path)), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = Run), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, run_id)): Path<(NamespaceId, RunId)>,
) -> Result<Json<Run>, ApiError> {
    let (run, _) = run_access(&state, &user, &namespace_id, &run_id).await?;
    let Some(action) = run.action else {
        return Err(ApiError::conflict(
            "nothing to cancel: no action is pending or in progress",
        ));
    };
    let before_start = ActionEnd {
        status: RunStatus::Canceled,
        error: "canceled before an agent started it".into(),
        result: None,
    };
    let runs = state.run_repo();
    let canceled_now = runs
        .end_action(&run.id, action, &[RunStatus::pending(action)], &before_start)
        .await?;
    if !canceled_now && !runs.request_cancel(&run.id, action).await? {
        return Err(ApiError::conflict("nothing to cancel: the action already ended"));
    }
    tracing::info!(run = %run.id, uid = %user.uid, "run cancel requested");
    Ok(Json(view(state.run_repo().load(&run.id).await?)))
}

/// The run's Terraform output (secret values redacted); `?follow=1` streams it as server-sent
/// events (`data:` one line each) until the action in flight ends, then an `end` event.
#[utoipa::path(get, path = "/deploy/ns/{id}/run/{run}/log", operation_id = "get_run_log", tag = "runs",
    params(("id" = String, Path), ("run" = String, Path), LogQuery), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = RunLog, description = "the log (or text/event-stream with follow=1)"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn log(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, run_id)): Path<(NamespaceId, RunId)>,
    ApiQuery(query): ApiQuery<LogQuery>,
) -> Result<Response, ApiError> {
    let (run, _) = run_access(&state, &user, &namespace_id, &run_id).await?;
    let from = query.from.unwrap_or(0);
    if from < 0 {
        return Err(ApiError::bad_request("from: must be 0 or more"));
    }
    if query.follow != Some(1) {
        let lines = state.run_repo().log_page(&run.id, from, LOG_PAGE).await?;
        let next = from + i64::try_from(lines.len()).unwrap_or(0);
        return Ok(Json(RunLog {
            lines,
            next,
            status: run.status.as_str().to_string(),
        })
        .into_response());
    }
    let deadline = tokio::time::Instant::now() + state.runs.timeout + state.runs.heartbeat_timeout * 2;
    let stream = futures_util::stream::unfold(Some((state, run.id, from)), move |cursor| async move {
        let (state, id, next) = cursor?;
        loop {
            let lines = match state.run_repo().log_page(&id, next, 500).await {
                Ok(lines) => lines,
                Err(_) => {
                    return Some((
                        Ok::<_, Infallible>(SseEvent::default().event("error").data("cannot read the log")),
                        None,
                    ));
                }
            };
            if !lines.is_empty() {
                let count = i64::try_from(lines.len()).unwrap_or(0);
                let event = SseEvent::default()
                    .id((next + count).to_string())
                    .data(lines.join("\n"));
                return Some((Ok(event), Some((state, id, next + count))));
            }
            let current = state.run_repo().find(&id).await.ok().flatten();
            let ended = current.as_ref().is_none_or(|run| run.action.is_none());
            if ended || tokio::time::Instant::now() > deadline {
                let status = current.map(|run| run.status.as_str()).unwrap_or_default();
                return Some((Ok(SseEvent::default().event("end").data(status)), None));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}
