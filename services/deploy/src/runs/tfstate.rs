//! Terraform's `http` backend on deploy's database: `GET` (state or 404), `POST` (store), `LOCK`
//! and `UNLOCK` at `/deploy/agent/run/{id}/state`. The state is encrypted at rest with the
//! [`crate::crypto::SecretBox`] (it holds every resource attribute, secrets included). Terraform
//! sends its credential as HTTP basic auth (`TF_HTTP_USERNAME`/`TF_HTTP_PASSWORD`): the password
//! is an agent token, either the run-scoped one of the run's spec or any agent's.

use super::agent::STATE_AGENT_PREFIX;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use goterra_client::ids::RunId;
use goterra_core::{ApiError, TokenScope};
use serde::Deserialize;
use serde_json::Value;

/// Largest state accepted.
pub const MAX_STATE: usize = 32 * 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct StateQuery {
    /// Lock id Terraform sends with a write while it holds the lock.
    #[serde(rename = "ID")]
    pub id: Option<String>,
}

fn credential(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        Some(password.to_string())
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Some(rest.trim().to_string())
    } else {
        None
    }
}

fn authorize(state: &AppState, headers: &HeaderMap, run_id: &RunId) -> Result<(), ApiError> {
    let token = credential(headers).ok_or_else(|| {
        ApiError::unauthorized("missing credentials: send the agent token as the basic-auth password")
    })?;
    let claims = state
        .platform
        .tokens
        .verify(&token)
        .map_err(|_| ApiError::unauthorized("invalid or expired credentials"))?;
    if claims.scope() != TokenScope::Agent || claims.uid.is_empty() {
        return Err(ApiError::forbidden("only run agents may use the state endpoint"));
    }
    match claims.uid.strip_prefix(STATE_AGENT_PREFIX) {
        Some(scoped) if scoped != run_id.as_str() => {
            Err(ApiError::forbidden("this credential is for another run's state"))
        }
        _ => Ok(()),
    }
}

fn locked(info: Option<String>) -> Response {
    // Terraform shows the holder's lock info from a 423 (or 409) body.
    let body = info.unwrap_or_else(|| "{}".into());
    (StatusCode::LOCKED, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn lock_id_of(body: &Bytes) -> Result<String, ApiError> {
    let info: Value = serde_json::from_slice(body).map_err(|_| ApiError::bad_request("lock info: not JSON"))?;
    info.get("ID")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("lock info: an \"ID\" is required"))
}

/// One handler for the four methods (LOCK and UNLOCK are not standard methods).
pub async fn endpoint(
    State(state): State<AppState>,
    Path(run_id): Path<RunId>,
    Query(query): Query<StateQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    authorize(&state, &parts.headers, &run_id)?;
    state.run_repo().load(&run_id).await?;
    let body = read_body(body).await?;
    match parts.method.as_str() {
        "GET" => get(&state, &run_id).await,
        "POST" => post(&state, &run_id, query.id, &body).await,
        "LOCK" => lock(&state, &run_id, &body).await,
        "UNLOCK" => unlock(&state, &run_id, &body).await,
        "DELETE" => {
            state.states().clear(&run_id).await?;
            Ok(StatusCode::OK.into_response())
        }
        _ => Ok((
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, POST, LOCK, UNLOCK, DELETE")],
        )
            .into_response()),
    }
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_STATE)
        .await
        .map_err(|_| ApiError::too_large(format!("the state may be at most {MAX_STATE} bytes")))
}

async fn get(state: &AppState, run_id: &RunId) -> Result<Response, ApiError> {
    let Some(sealed) = state.states().find(run_id).await?.and_then(|stored| stored.sealed) else {
        // No state yet: Terraform starts from an empty one.
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let plain = state.secrets.decrypt(&sealed)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        plain.into_inner(),
    )
        .into_response())
}

async fn post(state: &AppState, run_id: &RunId, lock: Option<String>, body: &Bytes) -> Result<Response, ApiError> {
    if serde_json::from_slice::<Value>(body).is_err() {
        return Err(ApiError::bad_request("the state must be JSON"));
    }
    // Written only when unlocked, or by the lock's holder.
    let sealed = state.secrets.encrypt(body);
    if state.states().write(run_id, sealed, &lock.unwrap_or_default()).await? {
        Ok(StatusCode::OK.into_response())
    } else {
        Ok(locked(lock_info(state, run_id).await?))
    }
}

/// What Terraform shows of the lock's holder.
async fn lock_info(state: &AppState, run_id: &RunId) -> Result<Option<String>, ApiError> {
    Ok(state.states().find(run_id).await?.and_then(|stored| stored.lock_info))
}

async fn lock(state: &AppState, run_id: &RunId, body: &Bytes) -> Result<Response, ApiError> {
    let id = lock_id_of(body)?;
    let info = String::from_utf8_lossy(body);
    if state.states().lock(run_id, &id, &info).await? {
        Ok(StatusCode::OK.into_response())
    } else {
        Ok(locked(lock_info(state, run_id).await?))
    }
}

async fn unlock(state: &AppState, run_id: &RunId, body: &Bytes) -> Result<Response, ApiError> {
    let id = lock_id_of(body)?;
    let Some(stored) = state.states().find(run_id).await? else {
        return Ok(StatusCode::OK.into_response());
    };
    match stored.lock_id {
        None => Ok(StatusCode::OK.into_response()),
        Some(holder) if holder == id => {
            state.states().unlock(run_id, &id).await?;
            Ok(StatusCode::OK.into_response())
        }
        Some(_) => Ok(locked(stored.lock_info)),
    }
}

/// The run's current state, decrypted and parsed (for the routes other services read), or
/// `None` when deploy keeps none for it.
pub async fn current(
    state: &AppState,
    run_id: &RunId,
) -> Result<Option<goterra_core::tfstate::TerraformState>, ApiError> {
    let Some(sealed) = state.states().find(run_id).await?.and_then(|stored| stored.sealed) else {
        return Ok(None);
    };
    let plain = state.secrets.decrypt(&sealed)?;
    Ok(Some(
        serde_json::from_slice(plain.expose()).map_err(crate::storage::StorageError::from)?,
    ))
}
