//! Runs (`deploy_runs`) and their logs (`deploy_run_logs`). Every status change is one
//! conditional `UPDATE ... WHERE status IN (...)`, so two requests racing (an agent's report and
//! a user's cancel, two agents after a redelivery) cannot both win: the loser sees `false`.
//!
//! The live-run rule is here, once: a run is live until its destroy succeeded ([`LIVE`]); a live
//! run keeps its application, its endpoint and its namespace from deletion.

use super::support::{Page, StorageError, StorageResult, column, id_column, now, placeholders};
use goterra_client::ids::{ApplicationId, DeploymentId, EndpointId, NamespaceId, RunId, Uid};
use goterra_client::runs::RunEvent;
use goterra_core::runs::{RunAction, RunStatus};
use goterra_db::Db;
use sqlx::any::AnyRow;
use std::collections::BTreeMap;

/// The condition of a live run (not destroyed yet).
const LIVE: &str = "status <> 'destroy_success'";

const COLUMNS: &str = "id, namespace_id, app_id, endpoint_id, uid, name, description, status, action, inputs, \
    deployment, outputs, error, events, created_at, ended_at, duration_ms, status_at, heartbeat_at, \
    cancel_requested, requeues, log_lines, claim_id";

/// A run row, without its sealed columns.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub id: RunId,
    pub namespace: NamespaceId,
    pub app_id: ApplicationId,
    pub endpoint: EndpointId,
    pub uid: Uid,
    pub name: String,
    pub description: String,
    pub status: RunStatus,
    /// The action pending or in progress, if any.
    pub action: Option<RunAction>,
    pub inputs: BTreeMap<String, String>,
    /// The run's store deployment (empty when the store never answered one).
    pub deployment: DeploymentId,
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

impl RunRecord {
    /// Whether `action` is pending or in progress.
    pub fn has_in_flight(&self, action: RunAction) -> bool {
        self.action == Some(action)
            && (self.status == RunStatus::pending(action) || self.status == RunStatus::in_progress(action))
    }

    /// Whether an agent works on the action in flight right now.
    pub fn is_running(&self) -> bool {
        self.action
            .is_some_and(|action| self.status == RunStatus::in_progress(action))
    }
}

fn decode(row: &AnyRow) -> StorageResult<RunRecord> {
    let status: String = column(row, "status")?;
    let action: Option<String> = column(row, "action")?;
    Ok(RunRecord {
        id: id_column(row, "id")?,
        namespace: id_column(row, "namespace_id")?,
        app_id: id_column(row, "app_id")?,
        endpoint: id_column(row, "endpoint_id")?,
        uid: id_column(row, "uid")?,
        name: column(row, "name")?,
        description: column(row, "description")?,
        status: status.parse().map_err(StorageError::Corrupt)?,
        action: action
            .map(|action| action.parse())
            .transpose()
            .map_err(StorageError::Corrupt)?,
        inputs: serde_json::from_str(&column::<String>(row, "inputs")?)?,
        deployment: id_column(row, "deployment")?,
        outputs: column(row, "outputs")?,
        error: column(row, "error")?,
        events: serde_json::from_str(&column::<String>(row, "events")?)?,
        created_at: column(row, "created_at")?,
        ended_at: column(row, "ended_at")?,
        duration_ms: column(row, "duration_ms")?,
        status_at: column(row, "status_at")?,
        heartbeat_at: column(row, "heartbeat_at")?,
        cancel_requested: column::<i64>(row, "cancel_requested")? != 0,
        requeues: column(row, "requeues")?,
        log_lines: column(row, "log_lines")?,
        claim_id: column(row, "claim_id")?,
    })
}

/// The sealed (encrypted) columns of a run; `None` once destroyed.
pub struct SealedRun {
    pub sensitive: Option<String>,
    pub boot: Option<String>,
    pub template: String,
    /// Plain Terraform variables, JSON.
    pub variables: String,
}

/// Everything a new run is stored with; it starts `deploy_pending`.
pub struct NewRun {
    pub id: RunId,
    pub namespace: NamespaceId,
    pub app_id: ApplicationId,
    pub endpoint: EndpointId,
    pub uid: Uid,
    pub name: String,
    pub description: String,
    pub inputs: BTreeMap<String, String>,
    pub template: String,
    pub variables: BTreeMap<String, serde_json::Value>,
    pub sensitive_sealed: String,
    pub boot_sealed: String,
    pub deployment: DeploymentId,
}

/// Which runs a list shows.
#[derive(Clone, Copy, Debug)]
pub enum RunFilter<'a> {
    Every,
    OwnedBy(&'a Uid),
    InNamespace(&'a NamespaceId),
    OwnedByInNamespace {
        uid: &'a Uid,
        namespace: &'a NamespaceId,
    },
    /// The user's runs and the runs of the namespaces they own.
    OwnedByOrInNamespacesOwnedBy(&'a Uid),
}

/// What uses a catalogue object.
#[derive(Clone, Copy, Debug)]
pub enum RunUse<'a> {
    Application(&'a ApplicationId),
    Endpoint(&'a EndpointId),
}

/// How an action ends.
#[derive(Clone, Debug)]
pub struct ActionEnd {
    /// Success, failure or `canceled`.
    pub status: RunStatus,
    pub error: String,
    /// What the agent reported, when it did.
    pub result: Option<ActionResult>,
}

#[derive(Clone, Debug)]
pub struct ActionResult {
    pub outputs: String,
    pub duration_ms: i64,
    pub ended_at: i64,
}

#[derive(Clone, Copy)]
pub struct RunRepo<'a> {
    db: &'a Db,
}

impl<'a> RunRepo<'a> {
    pub fn new(db: &'a Db) -> Self {
        Self { db }
    }

    pub async fn find(&self, id: &RunId) -> StorageResult<Option<RunRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM deploy_runs WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(decode).transpose()
    }

    pub async fn load(&self, id: &RunId) -> StorageResult<RunRecord> {
        self.find(id).await?.ok_or(StorageError::Missing("run"))
    }

    pub async fn sealed(&self, id: &RunId) -> StorageResult<SealedRun> {
        let row =
            sqlx::query("SELECT sensitive_sealed, boot_sealed, template, variables FROM deploy_runs WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(self.db.pool())
                .await?
                .ok_or(StorageError::Missing("run"))?;
        Ok(SealedRun {
            sensitive: column(&row, "sensitive_sealed")?,
            boot: column(&row, "boot_sealed")?,
            template: column(&row, "template")?,
            variables: column(&row, "variables")?,
        })
    }

    /// A page of runs, newest first.
    pub async fn list(&self, filter: RunFilter<'_>, page: Page) -> StorageResult<Vec<RunRecord>> {
        self.list_in_status(filter, &[], page).await
    }

    /// A page of the runs in one of `statuses` (empty: any status), newest first.
    ///
    /// Each source of runs (an owner, a namespace, or every run) in each asked status is one
    /// index range already in page order, cut at `skip + limit`; the page is taken from their
    /// union, and only the page's rows are read in full. So a first page reads a few hundred
    /// index entries whatever the table holds, where one `uid = $1 OR namespace_id IN (...)`
    /// condition or a status filter read every run of the user or the namespace and sorted
    /// them (120 ms with 100 000 runs on SQLite, `scripts/bench/lists.sh`).
    pub async fn list_in_status(
        &self,
        filter: RunFilter<'_>,
        statuses: &[RunStatus],
        page: Page,
    ) -> StorageResult<Vec<RunRecord>> {
        // Equalities on indexed columns, one list per source.
        let sources: Vec<Vec<(&str, String)>> = match filter {
            RunFilter::Every => vec![vec![]],
            RunFilter::OwnedBy(uid) => vec![vec![("uid", uid.to_string())]],
            RunFilter::InNamespace(namespace) => vec![vec![("namespace_id", namespace.to_string())]],
            RunFilter::OwnedByInNamespace { uid, namespace } => {
                vec![vec![("namespace_id", namespace.to_string()), ("uid", uid.to_string())]]
            }
            RunFilter::OwnedByOrInNamespacesOwnedBy(uid) => {
                let owned: Vec<(String,)> =
                    sqlx::query_as("SELECT namespace_id FROM deploy_namespace_users WHERE uid = $1 AND role = 'owner'")
                        .bind(uid.to_string())
                        .fetch_all(self.db.pool())
                        .await?;
                std::iter::once(vec![("uid", uid.to_string())])
                    .chain(owned.into_iter().map(|(namespace,)| vec![("namespace_id", namespace)]))
                    .collect()
            }
        };
        let status_choices: Vec<Option<&str>> = if statuses.is_empty() {
            vec![None]
        } else {
            statuses.iter().map(|status| Some(status.as_str())).collect()
        };
        let reach = page.skip.saturating_add(page.limit);
        let mut binds: Vec<String> = Vec::new();
        let mut bind = |value: String| {
            binds.push(value);
            format!("${}", binds.len())
        };
        let mut branches = Vec::new();
        for source in &sources {
            for status in &status_choices {
                let mut conditions: Vec<String> = source
                    .iter()
                    .map(|(column, value)| format!("{column} = {}", bind(value.clone())))
                    .collect();
                if let Some(status) = status {
                    conditions.push(format!("status = {}", bind(status.to_string())));
                }
                let condition = if conditions.is_empty() {
                    "1 = 1".to_string()
                } else {
                    conditions.join(" AND ")
                };
                branches.push(format!(
                    "SELECT id, created_at FROM (SELECT id, created_at FROM deploy_runs WHERE {condition} \
                     ORDER BY created_at DESC, id DESC LIMIT {reach}) AS b{}",
                    branches.len()
                ));
            }
        }
        // The page is cut from the branches' (id, time) pairs (UNION: a run found by two
        // branches counts once); only its rows are read in full.
        let sql = format!(
            "SELECT {COLUMNS} FROM deploy_runs WHERE id IN (SELECT id FROM ({}) AS found \
             ORDER BY created_at DESC, id DESC LIMIT {} OFFSET {}) ORDER BY created_at DESC, id DESC",
            branches.join(" UNION "),
            page.limit,
            page.skip
        );
        let mut query = sqlx::query(&sql);
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.iter().map(decode).collect()
    }

    /// Stores a new run, `deploy_pending`.
    pub async fn create(&self, run: &NewRun) -> StorageResult<()> {
        let created = now();
        sqlx::query(
            "INSERT INTO deploy_runs (id, namespace_id, app_id, endpoint_id, uid, name, description, status, action, \
             inputs, template, variables, sensitive_sealed, boot_sealed, deployment, outputs, error, events, created_at, status_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, '', '', '[]', $16, $16)",
        )
        .bind(run.id.to_string())
        .bind(run.namespace.to_string())
        .bind(run.app_id.to_string())
        .bind(run.endpoint.to_string())
        .bind(run.uid.to_string())
        .bind(run.name.clone())
        .bind(run.description.clone())
        .bind(RunStatus::DeployPending.as_str())
        .bind(RunAction::Deploy.as_str())
        .bind(serde_json::to_string(&run.inputs)?)
        .bind(run.template.clone())
        .bind(serde_json::to_string(&run.variables)?)
        .bind(run.sensitive_sealed.clone())
        .bind(run.boot_sealed.clone())
        .bind(run.deployment.to_string())
        .bind(created)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// An agent claims the pending `action`: it is now in progress under `claim`.
    pub async fn claim_pending(&self, id: &RunId, action: RunAction, claim: &str) -> StorageResult<bool> {
        let done = sqlx::query(
            "UPDATE deploy_runs SET status = $2, status_at = $3, heartbeat_at = $3, claim_id = $4 \
             WHERE id = $1 AND status = $5",
        )
        .bind(id.to_string())
        .bind(RunStatus::in_progress(action).as_str())
        .bind(now())
        .bind(claim.to_string())
        .bind(RunStatus::pending(action).as_str())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// An agent takes over `action` in progress from an agent last heard at `heartbeat_at`:
    /// only one of several agents seeing the same silence wins.
    pub async fn take_over(
        &self,
        id: &RunId,
        action: RunAction,
        heartbeat_at: i64,
        claim: &str,
    ) -> StorageResult<bool> {
        let done = sqlx::query(
            "UPDATE deploy_runs SET heartbeat_at = $2, status_at = $2, claim_id = $5 \
             WHERE id = $1 AND status = $3 AND heartbeat_at = $4",
        )
        .bind(id.to_string())
        .bind(now())
        .bind(RunStatus::in_progress(action).as_str())
        .bind(heartbeat_at)
        .bind(claim.to_string())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Queues a destroy of a run that is deployed, failed or canceled.
    pub async fn queue_destroy(&self, id: &RunId) -> StorageResult<bool> {
        let from = [
            RunStatus::DeploySuccess,
            RunStatus::DeployFailure,
            RunStatus::DestroyFailure,
            RunStatus::Canceled,
        ];
        let sql = format!(
            "UPDATE deploy_runs SET status = $2, status_at = $3, action = $4, cancel_requested = 0, requeues = 0, \
             error = '' WHERE id = $1 AND status IN ({})",
            placeholders(5, from.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(RunStatus::DestroyPending.as_str())
            .bind(now())
            .bind(RunAction::Destroy.as_str());
        for status in from {
            query = query.bind(status.as_str());
        }
        Ok(query.execute(self.db.pool()).await?.rows_affected() == 1)
    }

    /// Asks the agent running `action` to stop (it reads this from its next heartbeat's answer).
    pub async fn request_cancel(&self, id: &RunId, action: RunAction) -> StorageResult<bool> {
        let done = sqlx::query("UPDATE deploy_runs SET cancel_requested = 1 WHERE id = $1 AND status = $2")
            .bind(id.to_string())
            .bind(RunStatus::in_progress(action).as_str())
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts an action in progress whose agent went silent back in the queue (once: `requeues`).
    pub async fn requeue(&self, id: &RunId, action: RunAction) -> StorageResult<bool> {
        let done = sqlx::query(
            "UPDATE deploy_runs SET status = $2, status_at = $3, requeues = requeues + 1, heartbeat_at = 0, \
             cancel_requested = 0 WHERE id = $1 AND status = $4",
        )
        .bind(id.to_string())
        .bind(RunStatus::pending(action).as_str())
        .bind(now())
        .bind(RunStatus::in_progress(action).as_str())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The agent holding `claim` hands `action` in progress back (it is stopping): pending
    /// again, for another agent. Not counted as a re-queue: nothing went wrong. A cancel asked
    /// meanwhile stays asked (the next agent reports it).
    pub async fn release(&self, id: &RunId, action: RunAction, claim: Option<&str>) -> StorageResult<bool> {
        let done = sqlx::query(
            "UPDATE deploy_runs SET status = $2, status_at = $3, heartbeat_at = 0, claim_id = NULL \
             WHERE id = $1 AND status = $4 AND (claim_id = $5 OR $5 IS NULL)",
        )
        .bind(id.to_string())
        .bind(RunStatus::pending(action).as_str())
        .bind(now())
        .bind(RunStatus::in_progress(action).as_str())
        .bind(claim.map(str::to_string))
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The agent is alive (only counts while an action is in progress).
    pub async fn heartbeat(&self, id: &RunId) -> StorageResult<()> {
        sqlx::query("UPDATE deploy_runs SET heartbeat_at = $2 WHERE id = $1 AND status IN ($3, $4)")
            .bind(id.to_string())
            .bind(now())
            .bind(RunStatus::DeployInProgress.as_str())
            .bind(RunStatus::DestroyInProgress.as_str())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Ends `action` when the run is in one of `from`, with the action's event added to the
    /// run's history in the same transaction: whoever sees the final status sees its event too
    /// (accounting reads both). False when the run was not in one of `from`.
    pub async fn end_action(
        &self,
        id: &RunId,
        action: RunAction,
        from: &[RunStatus],
        end: &ActionEnd,
    ) -> StorageResult<bool> {
        let result_columns = if end.result.is_some() {
            ", outputs = $5, duration_ms = $6, ended_at = $7"
        } else {
            ""
        };
        let first_status = if end.result.is_some() { 8 } else { 5 };
        let sql = format!(
            "UPDATE deploy_runs SET status = $2, status_at = $3, action = NULL, cancel_requested = 0, \
             error = $4{result_columns} WHERE id = $1 AND status IN ({})",
            placeholders(first_status, from.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(end.status.as_str())
            .bind(now())
            .bind(end.error.clone());
        if let Some(result) = &end.result {
            query = query
                .bind(result.outputs.clone())
                .bind(result.duration_ms)
                .bind(result.ended_at);
        }
        for status in from {
            query = query.bind(status.as_str());
        }
        let mut tx = self.db.pool().begin().await?;
        if query.execute(&mut *tx).await?.rows_affected() != 1 {
            return Ok(false);
        }
        // The row is locked by the update: nobody appends in between.
        let (events,): (String,) = sqlx::query_as("SELECT events FROM deploy_runs WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let mut events: Vec<RunEvent> = serde_json::from_str(&events)?;
        events.push(RunEvent {
            ts: now(),
            action: action.as_str().to_string(),
            success: end.status == RunStatus::success(action),
        });
        sqlx::query("UPDATE deploy_runs SET events = $2 WHERE id = $1")
            .bind(id.to_string())
            .bind(serde_json::to_string(&events)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Fails `action` pending or in progress, with a readable reason.
    pub async fn fail_action(&self, id: &RunId, action: RunAction, reason: &str) -> StorageResult<bool> {
        let from = [RunStatus::pending(action), RunStatus::in_progress(action)];
        self.fail_action_from(id, action, &from, reason).await
    }

    /// Fails `action` when the run is in one of `from`.
    pub async fn fail_action_from(
        &self,
        id: &RunId,
        action: RunAction,
        from: &[RunStatus],
        reason: &str,
    ) -> StorageResult<bool> {
        let end = ActionEnd {
            status: RunStatus::failure(action),
            error: reason.to_string(),
            result: None,
        };
        self.end_action(id, action, from, &end).await
    }

    /// Appends log lines after the existing ones.
    pub async fn append_log(&self, id: &RunId, lines: Vec<String>) -> StorageResult<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.pool().begin().await?;
        // Reserve the sequence numbers first, so concurrent reports never collide.
        let count = i64::try_from(lines.len()).unwrap_or(0);
        let (end,): (i64,) =
            sqlx::query_as("UPDATE deploy_runs SET log_lines = log_lines + $2 WHERE id = $1 RETURNING log_lines")
                .bind(id.to_string())
                .bind(count)
                .fetch_one(&mut *tx)
                .await?;
        let first = end - count;
        for (offset, line) in lines.into_iter().enumerate() {
            sqlx::query("INSERT INTO deploy_run_logs (run_id, seq, line) VALUES ($1, $2, $3)")
                .bind(id.to_string())
                .bind(first + i64::try_from(offset).unwrap_or(0))
                .bind(line)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// At most `limit` log lines from line `from` on.
    pub async fn log_page(&self, id: &RunId, from: i64, limit: i64) -> StorageResult<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT line FROM deploy_run_logs WHERE run_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3")
                .bind(id.to_string())
                .bind(from)
                .bind(limit)
                .fetch_all(self.db.pool())
                .await?;
        Ok(rows.into_iter().map(|(line,)| line).collect())
    }

    /// Drops what a destroyed run no longer needs: its sensitive inputs, boot scripts and
    /// Terraform state.
    pub async fn forget_secrets(&self, id: &RunId) -> StorageResult<()> {
        let mut tx = self.db.pool().begin().await?;
        sqlx::query("UPDATE deploy_runs SET sensitive_sealed = NULL, boot_sealed = NULL WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM deploy_run_states WHERE run_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs with `action` in progress whose agent was last heard before `before` (unix seconds).
    pub async fn silent_since(&self, action: RunAction, before: i64) -> StorageResult<Vec<RunId>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM deploy_runs WHERE status = $1 AND heartbeat_at < $2 AND status_at < $2")
                .bind(RunStatus::in_progress(action).as_str())
                .bind(before)
                .fetch_all(self.db.pool())
                .await?;
        Ok(rows.into_iter().map(|(id,)| RunId::from_trusted(id)).collect())
    }

    /// Runs with `action` pending since before `before` (unix seconds).
    pub async fn pending_since(&self, action: RunAction, before: i64) -> StorageResult<Vec<RunId>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM deploy_runs WHERE status = $1 AND status_at < $2")
            .bind(RunStatus::pending(action).as_str())
            .bind(before)
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.into_iter().map(|(id,)| RunId::from_trusted(id)).collect())
    }

    /// Ids and status times of (at most `limit`) runs whose status changed at or after `since`
    /// (unix seconds), oldest change first: what another service catches up from.
    pub async fn changed_since(&self, since: i64, limit: i64) -> StorageResult<Vec<(RunId, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, status_at FROM deploy_runs WHERE status_at >= $1 ORDER BY status_at, id LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, status_at)| (RunId::from_trusted(id), status_at))
            .collect())
    }

    /// Names and namespaces of (at most 20) live runs using an application or an endpoint.
    pub async fn live_runs_using(&self, object: RunUse<'_>) -> StorageResult<Vec<(String, NamespaceId)>> {
        let (column, id) = match object {
            RunUse::Application(id) => ("app_id", id.as_str()),
            RunUse::Endpoint(id) => ("endpoint_id", id.as_str()),
        };
        let rows: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT name, namespace_id FROM deploy_runs WHERE {column} = $1 AND {LIVE} ORDER BY created_at LIMIT 20"
        ))
        .bind(id.to_string())
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, namespace)| (name, NamespaceId::from_trusted(namespace)))
            .collect())
    }

    /// How many runs are in each status (statuses without runs are absent).
    pub async fn count_by_status(&self) -> StorageResult<std::collections::HashMap<RunStatus, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM deploy_runs GROUP BY status")
            .fetch_all(self.db.pool())
            .await?;
        rows.into_iter()
            .map(|(status, count)| {
                let status = status
                    .parse::<RunStatus>()
                    .map_err(|_| StorageError::Corrupt(format!("unknown run status {status:?}")))?;
                Ok((status, count))
            })
            .collect()
    }

    /// How many live runs a namespace has.
    pub async fn live_count_in(&self, namespace: &NamespaceId) -> StorageResult<i64> {
        let (count,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM deploy_runs WHERE namespace_id = $1 AND {LIVE}"
        ))
        .bind(namespace.to_string())
        .fetch_one(self.db.pool())
        .await?;
        Ok(count)
    }
}
