//! The routes a run agent calls, with its agent credential ([`AgentCaller`]): fetch the spec of
//! the action in flight, then report start, log lines, heartbeats and the result. Each report is
//! a guarded transition; a report about an action that is no longer in flight is a 409, which
//! tells the agent to drop the job.

use super::records::{self, Bind};
use super::routes::{open_sealed, open_sealed_value};
use super::store_client;
use crate::state::{AppState, now};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
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
/// Shortest secret value redacted from logs (shorter ones would blank ordinary words).
const MIN_REDACTED: usize = 4;
/// The agent uid prefix of the credentials deploy mints for Terraform's state backend.
pub const STATE_AGENT_PREFIX: &str = "run-state:";

#[derive(Clone, Copy, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpecQuery {
    /// `deploy` or `destroy`.
    #[param(value_type = String)]
    pub action: RunAction,
}

fn in_flight(run: &records::RunRecord, action: RunAction) -> Result<(), ApiError> {
    let pending_or_running =
        run.status == RunStatus::pending(action).as_str() || run.status == RunStatus::in_progress(action).as_str();
    if run.action_in_flight() == Some(action) && pending_or_running {
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
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<SpecQuery>,
) -> Result<Json<RunSpec>, ApiError> {
    reject_state_credential(&agent)?;
    let run = records::load(state.db(), &id).await?;
    in_flight(&run, query.action)?;
    let sealed = records::sealed(state.db(), &id).await?;
    let (Some(sensitive), Some(boot)) = (sealed.sensitive, sealed.boot) else {
        return Err(ApiError::conflict("the run's secrets were deleted (destroyed run)"));
    };
    let sensitive = open_sealed(&state, &sensitive)?;
    let mut variables: BTreeMap<String, Value> = serde_json::from_str(&sealed.variables).map_err(ApiError::internal)?;
    variables.insert("goterra_cloudinit".into(), open_sealed_value(&state, &boot)?);
    let timeout_secs = state.runs.timeout.as_secs();
    // The state credential outlives the action by the heartbeat grace, then expires.
    let expires = goterra_core::token::unix_now() + timeout_secs + state.runs.heartbeat_timeout.as_secs() + 600;
    let password = state
        .platform
        .tokens
        .issue(&Claims::for_agent(&format!("{STATE_AGENT_PREFIX}{id}"), expires));
    tracing::info!(run = %id, agent = %agent, action = %query.action, "run spec handed to an agent");
    Ok(Json(RunSpec {
        run: run.id.clone(),
        action: query.action,
        namespace: run.namespace,
        application: run.app_id,
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

async fn answer(state: &AppState, id: &str) -> Result<Json<AgentAnswer>, ApiError> {
    let run = records::load(state.db(), id).await?;
    // Anything but an action in progress means the agent should stop.
    let running = run
        .action_in_flight()
        .is_some_and(|action| run.status == RunStatus::in_progress(action).as_str());
    Ok(Json(AgentAnswer {
        claim: None,
        cancel: run.cancel_requested || !running,
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
    Path(id): Path<String>,
) -> Result<Json<AgentAnswer>, ApiError> {
    reject_state_credential(&agent)?;
    let run = records::load(state.db(), &id).await?;
    let Some(action) = run.action_in_flight() else {
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
fn check_claim(run: &records::RunRecord, headers: &HeaderMap) -> Result<(), ApiError> {
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
async fn claim(state: &AppState, run: &records::RunRecord, action: RunAction) -> Result<Option<String>, ApiError> {
    let running = RunStatus::in_progress(action);
    let claim = goterra_core::new_id();
    if run.status == RunStatus::pending(action).as_str() {
        let taken = records::transition(
            state.db(),
            &run.id,
            &[RunStatus::pending(action)],
            running,
            "heartbeat_at = $2, claim_id = $3",
            vec![Bind::Int(now()), Bind::Text(claim.clone())],
        )
        .await?;
        return Ok(taken.then_some(claim));
    }
    let silent_since = now() - i64::try_from(state.runs.heartbeat_timeout.as_secs()).unwrap_or(i64::MAX);
    if run.heartbeat_at >= silent_since {
        return Ok(None);
    }
    let taken = sqlx::query(
        "UPDATE deploy_runs SET heartbeat_at = $2, status_at = $2, claim_id = $5 \
         WHERE id = $1 AND status = $3 AND heartbeat_at = $4",
    )
    .bind(run.id.clone())
    .bind(now())
    .bind(running.as_str())
    .bind(run.heartbeat_at)
    .bind(claim.clone())
    .execute(state.db().pool())
    .await
    .map_err(ApiError::internal)?
    .rows_affected()
        == 1;
    if !taken {
        return Ok(None);
    }
    tracing::warn!(run = %run.id, "took over from a silent agent");
    super::tfstate::release_abandoned_lock(state.db(), &run.id).await?;
    Ok(Some(claim))
}

/// Replaces every secret value of the run by `********`.
fn redact(line: &str, secrets: &[String]) -> String {
    let mut line = line.to_string();
    for secret in secrets {
        if line.contains(secret.as_str()) {
            line = line.replace(secret.as_str(), "********");
        }
    }
    line
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

/// The run's secret values, longest first (so a secret containing another is redacted whole).
async fn secret_values(state: &AppState, id: &str) -> Result<Vec<String>, ApiError> {
    let sealed = records::sealed(state.db(), id).await?;
    let mut values: Vec<String> = match sealed.sensitive {
        Some(sealed) => open_sealed(state, &sealed)?
            .into_values()
            .map(Sensitive::into_inner)
            .filter(|value| value.len() >= MIN_REDACTED)
            .collect(),
        None => Vec::new(),
    };
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    Ok(values)
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
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LogLines>,
) -> Result<Json<AgentAnswer>, ApiError> {
    reject_state_credential(&agent)?;
    if body.lines.len() > MAX_LINES_PER_REPORT {
        return Err(ApiError::bad_request(format!(
            "lines: at most {MAX_LINES_PER_REPORT} per report"
        )));
    }
    let run = records::load(state.db(), &id).await?;
    if run.action.is_none() {
        return Err(ApiError::conflict("no action in flight: the log is closed"));
    }
    check_claim(&run, &headers)?;
    let secrets = secret_values(&state, &id).await?;
    let mut lines: Vec<String> = body.lines.iter().map(|line| cut(redact(line, &secrets))).collect();
    let room = (MAX_LOG_LINES - run.log_lines).max(0);
    let room = usize::try_from(room).unwrap_or(0);
    if lines.len() > room {
        lines.truncate(room.saturating_sub(1));
        if room > 0 {
            lines.push(format!("[log truncated: at most {MAX_LOG_LINES} lines are kept]"));
        }
    }
    if !lines.is_empty() {
        let mut tx = state.db().pool().begin().await.map_err(ApiError::internal)?;
        // Reserve the sequence numbers first, so concurrent reports never collide.
        let count = i64::try_from(lines.len()).unwrap_or(0);
        let (end,): (i64,) =
            sqlx::query_as("UPDATE deploy_runs SET log_lines = log_lines + $2 WHERE id = $1 RETURNING log_lines")
                .bind(id.clone())
                .bind(count)
                .fetch_one(&mut *tx)
                .await
                .map_err(ApiError::internal)?;
        let first = end - count;
        for (offset, line) in lines.into_iter().enumerate() {
            sqlx::query("INSERT INTO deploy_run_logs (run_id, seq, line) VALUES ($1, $2, $3)")
                .bind(id.clone())
                .bind(first + i64::try_from(offset).unwrap_or(0))
                .bind(line)
                .execute(&mut *tx)
                .await
                .map_err(ApiError::internal)?;
        }
        tx.commit().await.map_err(ApiError::internal)?;
    }
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
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<AgentAnswer>, ApiError> {
    reject_state_credential(&agent)?;
    check_claim(&records::load(state.db(), &id).await?, &headers)?;
    sqlx::query("UPDATE deploy_runs SET heartbeat_at = $2 WHERE id = $1 AND status IN ('deploy_in_progress', 'destroy_in_progress')")
        .bind(id.clone())
        .bind(now())
        .execute(state.db().pool())
        .await
        .map_err(ApiError::internal)?;
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
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(report): ApiJson<RunReport>,
) -> Result<Json<AgentAnswer>, ApiError> {
    reject_state_credential(&agent)?;
    let run = records::load(state.db(), &id).await?;
    check_claim(&run, &headers)?;
    let Some(action) = run.action_in_flight() else {
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
    let secrets = secret_values(&state, &id).await?;
    let mut error = crate::validate::shorten_message(&redact(&report.error, &secrets));
    let outputs = match (action, &report.outputs) {
        (RunAction::Deploy, Value::Null) => String::new(),
        (RunAction::Deploy, outputs) => redact(&outputs.to_string(), &secrets),
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
    let moved = records::end_action(
        state.db(),
        &id,
        action,
        &[RunStatus::pending(action), RunStatus::in_progress(action)],
        report.status,
        "action = NULL, cancel_requested = 0, error = $2, outputs = $3, duration_ms = $4, ended_at = $5",
        vec![
            Bind::Text(error),
            Bind::Text(outputs),
            Bind::Int(duration_ms),
            Bind::Int(ended_at),
        ],
    )
    .await?;
    if !moved {
        return Err(ApiError::conflict(format!(
            "the {action} is no longer in flight (status {})",
            records::load(state.db(), &id).await?.status
        )));
    }
    tracing::info!(run = %id, agent = %agent, status = %report.status, "run action finished");
    let event = format!("run_{}", report.status.as_str());
    state
        .platform
        .events
        .publish(Event::new(event, run.uid.clone(), id.clone()))
        .await;
    Ok(Json(AgentAnswer::default()))
}

/// What a destroyed run no longer needs: its store deployment, secrets, boot scripts and state.
/// Returns the run's error note when the store deployment could not be deleted.
async fn forget_destroyed(state: &AppState, run: &records::RunRecord) -> Result<Option<String>, ApiError> {
    let mut note = None;
    if let Err(err) = store_client::delete(&state.platform, &run.uid, &run.deployment).await {
        // The run's resources are gone; a leftover store deployment expires with its TTL.
        tracing::warn!(run = %run.id, error = %format!("{err:#}"), "cannot delete the run's store deployment");
        note = Some(crate::validate::shorten_message(&format!(
            "destroyed, but the store deployment could not be deleted: {err}"
        )));
    }
    sqlx::query("UPDATE deploy_runs SET sensitive_sealed = NULL, boot_sealed = NULL WHERE id = $1")
        .bind(run.id.clone())
        .execute(state.db().pool())
        .await
        .map_err(ApiError::internal)?;
    sqlx::query("DELETE FROM deploy_run_states WHERE run_id = $1")
        .bind(run.id.clone())
        .execute(state.db().pool())
        .await
        .map_err(ApiError::internal)?;
    Ok(note)
}
