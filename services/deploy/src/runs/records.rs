//! Run storage. Every status change is one conditional `UPDATE ... WHERE status IN (...)`, so two
//! requests racing (an agent's report and a user's cancel, two agents after a redelivery) cannot
//! both win: the loser sees zero rows changed and answers 409.

use super::model::{Run, RunEvent};
use crate::state::{AppState, now};
use goterra_core::ApiError;
use goterra_core::runs::{RunAction, RunStatus};
use goterra_db::Db;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

/// A run row, without its sealed columns.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub id: String,
    pub namespace: String,
    pub app_id: String,
    pub endpoint: String,
    pub uid: String,
    pub name: String,
    pub description: String,
    pub status: String,
    pub action: Option<String>,
    pub inputs: BTreeMap<String, String>,
    pub deployment: String,
    pub outputs: String,
    pub error: String,
    pub events: Vec<RunEvent>,
    pub created_at: i64,
    pub ended_at: i64,
    pub duration_ms: i64,
    pub status_at: i64,
    pub heartbeat_at: i64,
    pub cancel_requested: bool,
    pub requeues: i64,
    pub log_lines: i64,
    /// The claim of the agent running the action in progress.
    pub claim_id: Option<String>,
}

pub const COLUMNS: &str = "id, namespace_id, app_id, endpoint_id, uid, name, description, status, action, inputs, \
    deployment, outputs, error, events, created_at, ended_at, duration_ms, status_at, heartbeat_at, \
    cancel_requested, requeues, log_lines, claim_id";

fn get<T>(row: &AnyRow, column: &str) -> Result<T, ApiError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(column).map_err(ApiError::internal)
}

pub fn decode(row: &AnyRow) -> Result<RunRecord, ApiError> {
    let inputs: String = get(row, "inputs")?;
    let events: String = get(row, "events")?;
    Ok(RunRecord {
        id: get(row, "id")?,
        namespace: get(row, "namespace_id")?,
        app_id: get(row, "app_id")?,
        endpoint: get(row, "endpoint_id")?,
        uid: get(row, "uid")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        status: get(row, "status")?,
        action: get(row, "action")?,
        inputs: serde_json::from_str(&inputs).map_err(ApiError::internal)?,
        deployment: get(row, "deployment")?,
        outputs: get(row, "outputs")?,
        error: get(row, "error")?,
        events: serde_json::from_str(&events).map_err(ApiError::internal)?,
        created_at: get(row, "created_at")?,
        ended_at: get(row, "ended_at")?,
        duration_ms: get(row, "duration_ms")?,
        status_at: get(row, "status_at")?,
        heartbeat_at: get(row, "heartbeat_at")?,
        cancel_requested: get::<i64>(row, "cancel_requested")? != 0,
        requeues: get(row, "requeues")?,
        log_lines: get(row, "log_lines")?,
        claim_id: get(row, "claim_id")?,
    })
}

impl RunRecord {
    pub fn view(self) -> Run {
        Run {
            id: self.id,
            name: self.name,
            description: self.description,
            app_id: self.app_id,
            inputs: self.inputs,
            secretinputs: None,
            status: self.status,
            endpoint: self.endpoint,
            namespace: self.namespace,
            uid: self.uid,
            start: self.created_at,
            end: self.ended_at,
            duration: self.duration_ms as f64 / 1000.0,
            outputs: self.outputs,
            error: self.error,
            deployment: self.deployment,
            events: self.events,
            action: self.action,
        }
    }

    pub fn action_in_flight(&self) -> Option<RunAction> {
        self.action.as_deref().and_then(|action| action.parse().ok())
    }
}

pub async fn find(db: &Db, id: &str) -> Result<Option<RunRecord>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM deploy_runs WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await
        .map_err(ApiError::internal)?;
    row.as_ref().map(decode).transpose()
}

pub async fn load(db: &Db, id: &str) -> Result<RunRecord, ApiError> {
    find(db, id).await?.ok_or_else(not_found)
}

pub fn not_found() -> ApiError {
    ApiError::not_found("run not found")
}

/// The sealed columns of a run (None once destroyed).
pub struct Sealed {
    pub sensitive: Option<String>,
    pub boot: Option<String>,
    pub template: String,
    pub variables: String,
}

pub async fn sealed(db: &Db, id: &str) -> Result<Sealed, ApiError> {
    let row = sqlx::query("SELECT sensitive_sealed, boot_sealed, template, variables FROM deploy_runs WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    Ok(Sealed {
        sensitive: get(&row, "sensitive_sealed")?,
        boot: get(&row, "boot_sealed")?,
        template: get(&row, "template")?,
        variables: get(&row, "variables")?,
    })
}

/// Lists runs matching `condition` (bound to `binds` in order), newest first.
pub async fn list(db: &Db, condition: &str, binds: &[&str], skip: i64, limit: i64) -> Result<Vec<RunRecord>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM deploy_runs WHERE {condition} ORDER BY created_at DESC, id DESC LIMIT {limit} OFFSET {skip}"
    );
    let mut query = sqlx::query(&sql);
    for value in binds {
        query = query.bind((*value).to_string());
    }
    let rows = query.fetch_all(db.pool()).await.map_err(ApiError::internal)?;
    rows.iter().map(decode).collect()
}

/// `status IN ('a', 'b')` for trusted status names (never user input).
fn status_in(statuses: &[RunStatus]) -> String {
    let names: Vec<String> = statuses.iter().map(|status| format!("'{}'", status.as_str())).collect();
    format!("status IN ({})", names.join(", "))
}

/// `UPDATE ... SET status = <to>, status_at = now[, <extra>] WHERE id = $1 AND status IN <from>`:
/// `extra` uses `$2`, `$3`... for `binds`.
fn transition_query<'q>(
    sql: &'q str,
    id: &str,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut query = sqlx::query(sql).bind(id.to_string());
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::OptText(text) => query.bind(text),
            Bind::Int(value) => query.bind(value),
        };
    }
    query.bind(now())
}

fn transition_sql(from: &[RunStatus], to: RunStatus, extra: &str, binds: usize) -> String {
    let sets = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        "UPDATE deploy_runs SET status = '{}', status_at = ${}{sets} WHERE id = $1 AND {}",
        to.as_str(),
        binds + 2,
        status_in(from)
    )
}

/// Moves the run from one of `from` to `to`, setting `extra` too; false when the run was not
/// in one of `from` (someone else moved it first).
pub async fn transition(
    db: &Db,
    id: &str,
    from: &[RunStatus],
    to: RunStatus,
    extra: &str,
    binds: Vec<Bind>,
) -> Result<bool, ApiError> {
    let sql = transition_sql(from, to, extra, binds.len());
    let done = transition_query(&sql, id, binds)
        .execute(db.pool())
        .await
        .map_err(ApiError::internal)?;
    Ok(done.rows_affected() == 1)
}

/// A [`transition`] that ends `action` (to its success, failure or `canceled`), with the
/// action's event added to the run's history in the same transaction: whoever sees the final
/// status sees its event too (accounting reads both).
pub async fn end_action(
    db: &Db,
    id: &str,
    action: RunAction,
    from: &[RunStatus],
    to: RunStatus,
    extra: &str,
    binds: Vec<Bind>,
) -> Result<bool, ApiError> {
    let sql = transition_sql(from, to, extra, binds.len());
    let mut tx = db.pool().begin().await.map_err(ApiError::internal)?;
    let moved = transition_query(&sql, id, binds)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::internal)?
        .rows_affected()
        == 1;
    if !moved {
        return Ok(false);
    }
    // The row is locked by the update: nobody appends in between.
    let (events,): (String,) = sqlx::query_as("SELECT events FROM deploy_runs WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(ApiError::internal)?;
    let mut events: Vec<RunEvent> = serde_json::from_str(&events).map_err(ApiError::internal)?;
    events.push(RunEvent {
        ts: now(),
        action: action.as_str().to_string(),
        success: to == RunStatus::success(action),
    });
    sqlx::query("UPDATE deploy_runs SET events = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(serde_json::to_string(&events).map_err(ApiError::internal)?)
        .execute(&mut *tx)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(true)
}

pub enum Bind {
    Text(String),
    OptText(Option<String>),
    Int(i64),
}

/// Marks a run whose action could not be queued as failed, with a readable reason.
pub async fn fail_action(db: &Db, id: &str, action: RunAction, error: &str) -> Result<bool, ApiError> {
    end_action(
        db,
        id,
        action,
        &[RunStatus::pending(action), RunStatus::in_progress(action)],
        RunStatus::failure(action),
        "action = NULL, error = $2",
        vec![Bind::Text(error.to_string())],
    )
    .await
}

/// Whether an app or endpoint has a run that is not destroyed (which keeps it from deletion).
pub async fn live_runs_using(state: &AppState, column: &str, id: &str) -> Result<Vec<(String, String)>, ApiError> {
    let sql = format!(
        "SELECT name, namespace_id FROM deploy_runs WHERE {column} = $1 AND status <> '{}' ORDER BY created_at LIMIT 20",
        RunStatus::DestroySuccess.as_str()
    );
    let rows = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_all(state.db().pool())
        .await
        .map_err(ApiError::internal)?;
    rows.iter()
        .map(|row| Ok((get::<String>(row, "name")?, get::<String>(row, "namespace_id")?)))
        .collect()
}
