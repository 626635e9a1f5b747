//! The routes a run agent calls, with its agent credential ([`AgentCaller`]): fetch the spec of
//! the action in flight, then report start, log lines, heartbeats and the result. Each report is
//! a guarded transition; a report about an action that is no longer in flight is a 409, which
//! tells the agent to drop the job.

use super::sealed::{Redactor, open_map, open_value};
use super::store_client;
use crate::state::AppState;
use crate::storage::runs::{ActionEnd, ActionResult, RunRecord};
use crate::storage::{StorageError, now};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use goterra_client::ids::RunId;
use goterra_core::runs::{AgentAnswer, CLAIM_HEADER, LogLines, RunAction, RunReport, RunSpec, RunStatus, StateBackend};
use goterra_core::{AgentCaller, ApiError, ApiJson, ApiQuery, Claims, ErrorBody, Event, Sensitive};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::IntoParams;

/// Most lines one log report may carry, and longest line kept.
const MAX_LINES_PER_REPORT: usize = 2000;
const MAX_LINE: usize = 4096;
/// Most lines kept per run; later lines are dropped (with one notice).
pub const MAX_LOG_LINES: i64 = 50_000;
/// The agent uid prefix of the credentials deploy mints for Terraform's state backend.
pub const STATE_AGENT_PREFIX: &str = "run-state:";

#[derive(Clone, Copy, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpecQuery {
    /// `deploy` or `destroy`.
    #[param(value_type = String)]
    pub action: RunAction,
}

fn in_flight(run: &RunRecord, action: RunAction) -> Result<(), ApiError> {
    if run.has_in_flight(action) {
        Ok(())
    } else {
        Err(ApiError::conflict(format!(
            "no {action} in flight for this run (status {})",
            run.status
        )))
    }
}

/// Everything the agent needs to execute the action in flight.
#[utoipa::path(get, path = "/deploy/agent/run/{id}/spec", operation_id = "agent_run_spec", tag = "agent",
    params(("id" = String, Path), SpecQuery), security(("token" = [])),
    responses((status = 200, body = RunSpec), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "the action is not in flight", body = ErrorBody)))]
pub async fn spec(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<RunId>,
    ApiQuery(query): ApiQuery<SpecQuery>,
) -> Result<Json<RunSpec>, ApiError> {
    reject_state_credential(&agent)?;
    let run = state.run_repo().load(&id).await?;
    in_flight(&run, query.action)?;
    let sealed = state.run_repo().sealed(&id).await?;
    let (Some(sensitive), Some(boot)) = (sealed.sensitive, sealed.boot) else {
        return Err(ApiError::conflict("the run's secrets were deleted (destroyed run)"));
    };
    let sensitive = open_map(&state, &sensitive)?;
    let mut variables: BTreeMap<String, Value> = serde_json::from_str(&sealed.variables).map_err(StorageError::from)?;
    variables.insert("goterra_cloudinit".into(), open_value(&state, &boot)?);
    let timeout_secs = state.runs.timeout.as_secs();
    // The state credential outlives the action by the heartbeat grace, then expires.
    let expires = goterra_core::token::unix_now() + timeout_secs + state.runs.heartbeat_timeout.as_secs() + 600;
    let password = state
        .platform
        .tokens
        .issue(&Claims::for_agent(&format!("{STATE_AGENT_PREFIX}{id}"), expires));
    tracing::info!(run = %id, agent = %agent, action = %query.action, "run spec handed to an agent");
    Ok(Json(RunSpec {
        run: run.id.to_string(),
        action: query.action,
        namespace: run.namespace.into_string(),
        application: run.app_id.into_string(),
        template: sealed.template,
        variables,
        sensitive,
        state: StateBackend {
            url: format!(
                "{}/deploy/agent/run/{}/state",
                state.platform.config.public_url(),
                run.id
            ),
            username: "goterra".into(),
            password: Sensitive::new(password),
        },
        timeout_secs,
    }))
}

/// State credentials only open the state endpoint.
fn reject_state_credential(agent: &str) -> Result<(), ApiError> {
    if agent.starts_with(STATE_AGENT_PREFIX) {
        Err(ApiError::forbidden(
            "this credential only opens the run's Terraform state",
        ))
    } else {
        Ok(())
    }
}

async fn answer(state: &AppState, id: &RunId) -> Result<Json<AgentAnswer>, ApiError> {
    let run = state.run_repo().load(id).await?;
    // Anything but an action in progress means the agent should stop.
    Ok(Json(AgentAnswer {
        claim: None,
        cancel: run.cancel_requested || !run.is_running(),
    }))
}

/// The agent claims the action and starts it; 409 when another agent runs it (see [`claim`]).
#[utoipa::path(post, path = "/deploy/agent/run/{id}/started", operation_id = "agent_run_started", tag = "agent",
    params(("id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = AgentAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn started(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<RunId>,
) -> Result<Json<AgentAnswer>, ApiError> {
    reject_state_credential(&agent)?;
    let run = state.run_repo().load(&id).await?;
    let Some(action) = run.action else {
        return Err(ApiError::conflict(format!(
            "no action in flight (status {})",
            run.status
        )));
    };
    in_flight(&run, action)?;
    let Some(claim) = claim(&state, &run, action).await? else {
        return Err(ApiError::conflict(format!(
            "another agent is running this {action} (heartbeat {} s ago)",
            now() - run.heartbeat_at
        )));
    };
    tracing::info!(run = %id, agent = %agent, %action, "run started");
    let Json(mut answer) = answer(&state, &id).await?;
    answer.claim = Some(claim);
    Ok(Json(answer))
}

/// Refuses the report of an agent whose claim is no longer the run's: it went silent, another
/// agent took the action over, and only that one's reports count now. (A report without a
/// claim is taken as is.)
fn check_claim(run: &RunRecord, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers.get(CLAIM_HEADER).and_then(|value| value.to_str().ok());
    match (presented, run.claim_id.as_deref()) {
        (Some(presented), Some(current)) if presented != current => Err(ApiError::conflict(
            "another agent took this run over: stop and drop the job",
        )),
        _ => Ok(()),
    }
}

/// Gives the action to the calling agent: a pending one, or one in progress whose agent went
/// silent for longer than the heartbeat timeout (its job was delivered again: its lease expired
/// or its broker connection closed). One agent wins; a duplicate delivery of a job whose agent
/// is alive loses. A silent agent's Terraform can no longer unlock the state, so taking over
/// releases its lock. Returns the winner's new claim.
async fn claim(state: &AppState, run: &RunRecord, action: RunAction) -> Result<Option<String>, ApiError> {
    let claim = goterra_core::new_id();
    let runs = state.run_repo();
    if run.status == RunStatus::pending(action) {
        let taken = runs.claim_pending(&run.id, action, &claim).await?;
        return Ok(taken.then_some(claim));
    }
    let silent_since = now() - i64::try_from(state.runs.heartbeat_timeout.as_secs()).unwrap_or(i64::MAX);
    if run.heartbeat_at >= silent_since {
        return Ok(None);
    }
    if !runs.take_over(&run.id, action, run.heartbeat_at, &claim).await? {
        return Ok(None);
    }
    tracing::warn!(run = %run.id, "took over from a silent agent");
    state.states().release_abandoned_lock(&run.id).await?;
    Ok(Some(claim))
}

fn cut(line: String) -> String {
    if line.len() <= MAX_LINE {
        return line;
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// Lines of Terraform output. The agent redacts them; deploy redacts the run's secrets again
/// before storing, so a log never holds one even from a faulty agent.
#[utoipa::path(post, path = "/deploy/agent/run/{id}/log", operation_id = "agent_run_log", tag = "agent",
    params(("id" = String, Path)), request_body = LogLines, security(("token" = [])),
    responses((status = 200, body = AgentAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn log(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<RunId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LogLines>,
) -> Result<Json<AgentAnswer>, ApiError> {
    reject_state_credential(&agent)?;
    if body.lines.len() > MAX_LINES_PER_REPORT {
        return Err(ApiError::bad_request(format!(
            "lines: at most {MAX_LINES_PER_REPORT} per report"
        )));
    }
    let run = state.run_repo().load(&id).await?;
    if run.action.is_none() {
        return Err(ApiError::conflict("no action in flight: the log is closed"));
    }
    check_claim(&run, &headers)?;
    let redactor = Redactor::for_run(&state, &id).await?;
    let mut lines: Vec<String> = body.lines.iter().map(|line| cut(redactor.redact(line))).collect();
    let room = (MAX_LOG_LINES - run.log_lines).max(0);
    let room = usize::try_from(room).unwrap_or(0);
    if lines.len() > room {
        lines.truncate(room.saturating_sub(1));
        if room > 0 {
            lines.push(format!("[log truncated: at most {MAX_LOG_LINES} lines are kept]"));
        }
    }
    state.run_repo().append_log(&id, lines).await?;
    answer(&state, &id).await
}

/// The agent is alive and working on the run; the answer says whether to cancel.
#[utoipa::path(post, path = "/deploy/agent/run/{id}/heartbeat", operation_id = "agent_run_heartbeat", tag = "agent",
    params(("id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = AgentAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "another agent took the run over", body = ErrorBody)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<RunId>,
    headers: HeaderMap,
) -> Result<Json<AgentAnswer>, ApiError> {
    reject_state_credential(&agent)?;
    check_claim(&state.run_repo().load(&id).await?, &headers)?;
    state.run_repo().heartbeat(&id).await?;
    answer(&state, &id).await
}

/// The result of the action. After a successful destroy, the store deployment, the sensitive
/// inputs, the boot scripts and the Terraform state are deleted.
#[utoipa::path(post, path = "/deploy/agent/run/{id}/finished", operation_id = "agent_run_finished", tag = "agent",
    params(("id" = String, Path)), request_body = RunReport, security(("token" = [])),
    responses((status = 200, body = AgentAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn finished(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<RunId>,
    headers: HeaderMap,
    ApiJson(report): ApiJson<RunReport>,
) -> Result<Json<AgentAnswer>, ApiError> {
    reject_state_credential(&agent)?;
    let run = state.run_repo().load(&id).await?;
    check_claim(&run, &headers)?;
    let Some(action) = run.action else {
        return Err(ApiError::conflict(format!(
            "no action in flight (status {})",
            run.status
        )));
    };
    let allowed = [
        RunStatus::success(action),
        RunStatus::failure(action),
        RunStatus::Canceled,
    ];
    if !allowed.contains(&report.status) {
        return Err(ApiError::bad_request(format!(
            "status: a {action} ends in {}, {} or canceled",
            RunStatus::success(action),
            RunStatus::failure(action)
        )));
    }
    if !report.duration.is_finite() || report.duration < 0.0 {
        return Err(ApiError::bad_request(
            "duration: must be a number of seconds, 0 or more",
        ));
    }
    let redactor = Redactor::for_run(&state, &id).await?;
    let mut error = crate::validate::shorten_message(&redactor.redact(&report.error));
    let outputs = match (action, &report.outputs) {
        (RunAction::Deploy, Value::Null) => String::new(),
        (RunAction::Deploy, outputs) => redactor.redact(&outputs.to_string()),
        // A destroy keeps the outputs of the deploy.
        (RunAction::Destroy, _) => run.outputs.clone(),
    };
    let destroyed = report.status == RunStatus::DestroySuccess;
    let duration_ms = (report.duration * 1000.0).round() as i64;
    let ended_at = if destroyed { now() } else { run.ended_at };
    // Clean up before the status says so: whoever sees `destroy_success` finds the store data,
    // the secrets and the state gone. (The resources are gone whichever report wins.)
    if destroyed && let Some(note) = forget_destroyed(&state, &run).await? {
        error = note;
    }
    let end = ActionEnd {
        status: report.status,
        error,
        result: Some(ActionResult {
            outputs,
            duration_ms,
            ended_at,
        }),
    };
    let runs = state.run_repo();
    let from = [RunStatus::pending(action), RunStatus::in_progress(action)];
    if !runs.end_action(&id, action, &from, &end).await? {
        return Err(ApiError::conflict(format!(
            "the {action} is no longer in flight (status {})",
            runs.load(&id).await?.status
        )));
    }
    tracing::info!(run = %id, agent = %agent, status = %report.status, "run action finished");
    let event = format!("run_{}", report.status.as_str());
    state
        .platform
        .events
        .publish(Event::new(event, run.uid.clone(), id))
        .await;
    Ok(Json(AgentAnswer::default()))
}

/// The agent stops and hands the action in progress back: it is pending again, its state lock
/// released, and the agent puts its job back in the queue for another agent. 409 when the
/// action is not in progress under this agent's claim.
#[utoipa::path(post, path = "/deploy/agent/run/{id}/release", operation_id = "agent_run_release", tag = "agent",
    params(("id" = String, Path)), security(("token" = [])),
    responses((status = 200, body = AgentAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn release(
    State(state): State<AppState>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<RunId>,
    headers: HeaderMap,
) -> Result<Json<AgentAnswer>, ApiError> {
    reject_state_credential(&agent)?;
    let run = state.run_repo().load(&id).await?;
    check_claim(&run, &headers)?;
    let Some(action) = run.action.filter(|_| run.is_running()) else {
        return Err(ApiError::conflict(format!(
            "no action in progress (status {})",
            run.status
        )));
    };
    let claim = headers.get(CLAIM_HEADER).and_then(|value| value.to_str().ok());
    if !state.run_repo().release(&id, action, claim).await? {
        return Err(ApiError::conflict(format!(
            "the {action} is no longer in progress under this agent (status {})",
            state.run_repo().load(&id).await?.status
        )));
    }
    // Terraform stopped by SIGTERM unlocks the state; one killed after the kill grace could not.
    state.states().release_abandoned_lock(&id).await?;
    tracing::info!(run = %id, agent = %agent, %action, "run handed back by its agent");
    Ok(Json(AgentAnswer::default()))
}

/// What a destroyed run no longer needs: its store deployment, secrets, boot scripts and state.
/// Returns the run's error note when the store deployment could not be deleted.
async fn forget_destroyed(state: &AppState, run: &RunRecord) -> Result<Option<String>, ApiError> {
    let mut note = None;
    if let Err(err) = store_client::delete(&state.platform, &run.uid, &run.deployment).await {
        // The run's resources are gone; a leftover store deployment expires with its TTL.
        tracing::warn!(run = %run.id, error = %format!("{err:#}"), "cannot delete the run's store deployment");
        note = Some(crate::validate::shorten_message(&format!(
            "destroyed, but the store deployment could not be deleted: {err}"
        )));
    }
    state.run_repo().forget_secrets(&run.id).await?;
    Ok(note)
}
