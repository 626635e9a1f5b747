//! Deployments in the platform database (`store_*` tables): durable across restarts of
//! `goterra up`, with in-process wake-ups. Expired deployments are invisible at once and
//! swept away by a background task.

use super::{Limits, Metadata, NamespaceBinding, StoreBackend, StoreError, backend_error, dedup_entries, unix_millis};
use crate::waiting::WaitHub;
use async_trait::async_trait;
use goterra_db::{Db, Migration};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::{CancellationToken, DropGuard};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: "store-0001-deployments",
        postgres: SCHEMA,
        sqlite: SCHEMA,
    },
    Migration {
        id: "store-0002-namespace-ids",
        postgres: NAMESPACE_IDS,
        sqlite: NAMESPACE_IDS,
    },
];

/// `ns_bound = 1`: `ns` holds a namespace id; 0: what `X-API-NS` held (earlier versions).
const NAMESPACE_IDS: &str = "ALTER TABLE store_deployments ADD COLUMN ns_bound BIGINT NOT NULL DEFAULT 0;";

const SCHEMA: &str = "
CREATE TABLE store_deployments (
    id TEXT PRIMARY KEY,
    uid TEXT NOT NULL,
    ns TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX store_deployments_expiry ON store_deployments (expires_at_ms);
CREATE TABLE store_values (
    deployment_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (deployment_id, name)
);
";

/// How often expired deployments are deleted for good.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

pub struct EmbeddedBackend {
    db: Db,
    /// SQLite allows one writer at a time and makes the others sleep and retry; taking turns
    /// here instead keeps write latency low under concurrency. `None` on PostgreSQL.
    write_turn: Option<tokio::sync::Mutex<()>>,
    /// Writes waiting for the turn (SQLite only).
    queued: std::sync::Mutex<Vec<QueuedWrite>>,
    limits: Limits,
    hub: Arc<WaitHub>,
    _sweeper: DropGuard,
}

impl EmbeddedBackend {
    /// Uses `db`, whose `store_*` tables must be migrated ([`MIGRATIONS`]).
    pub fn new(db: Db, limits: Limits) -> Self {
        Self::with_stop(db, limits, &CancellationToken::new())
    }

    /// [`Self::new`], whose expiry sweep also stops when `stop` fires (the process's
    /// lifecycle), not only when the backend is dropped.
    pub fn with_stop(db: Db, limits: Limits, stop: &CancellationToken) -> Self {
        let stop = stop.child_token();
        tokio::spawn(sweep_forever(db.clone(), stop.clone()));
        let write_turn = (db.engine() == goterra_db::Engine::Sqlite).then(|| tokio::sync::Mutex::new(()));
        Self {
            db,
            write_turn,
            queued: std::sync::Mutex::new(Vec::new()),
            limits,
            hub: WaitHub::new(),
            _sweeper: stop.drop_guard(),
        }
    }

    /// Deletes the deployments expired at `now_ms`; returns how many.
    pub async fn sweep(&self, now_ms: i64) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        sweep(&self.db, now_ms).await
    }

    fn publish(&self, id: &str, entries: &[(String, String)]) {
        for (key, value) in entries {
            self.hub.publish(id, key, value);
        }
    }

    /// SQLite commits are bound by the disk's flush: writers that arrive while one commits
    /// queue up, and the next to get the turn commits them all in one transaction (each in its
    /// own savepoint, so one refused write does not undo the others).
    async fn put_batched(&self, id: &str, entries: Vec<(String, String)>) -> Result<(), StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue().push(QueuedWrite {
            id: id.to_string(),
            entries,
            reply,
        });
        {
            let _turn = self.write_turn().await;
            let batch = std::mem::take(&mut *self.queue());
            if !batch.is_empty() {
                self.write_batch(batch).await;
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(backend_error(anyhow::anyhow!("a batched write was lost"))))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<QueuedWrite>> {
        self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn write_batch(&self, batch: Vec<QueuedWrite>) {
        let now = unix_millis();
        let written: Result<Vec<Result<(), StoreError>>, sqlx::Error> = async {
            let mut tx = self.db.pool().begin().await?;
            let mut outcomes = Vec::with_capacity(batch.len());
            for write in &batch {
                sqlx::query("SAVEPOINT store_put").execute(&mut *tx).await?;
                let outcome = put_in(&mut tx, &write.id, &write.entries, now, &self.limits).await?;
                if outcome.is_err() {
                    sqlx::query("ROLLBACK TO SAVEPOINT store_put").execute(&mut *tx).await?;
                }
                sqlx::query("RELEASE SAVEPOINT store_put").execute(&mut *tx).await?;
                outcomes.push(outcome);
            }
            tx.commit().await?;
            Ok(outcomes)
        }
        .await;
        match written {
            Ok(outcomes) => {
                for (write, outcome) in batch.into_iter().zip(outcomes) {
                    if outcome.is_ok() {
                        self.publish(&write.id, &write.entries);
                    }
                    let _ = write.reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "a batch of store writes failed");
                for write in batch {
                    let _ = write
                        .reply
                        .send(Err(backend_error(anyhow::anyhow!("store write failed: {err}"))));
                }
            }
        }
    }

    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_turn {
            Some(turn) => Some(turn.lock().await),
            None => None,
        }
    }
}

/// A write waiting for its turn, and where to send its outcome.
struct QueuedWrite {
    id: String,
    entries: Vec<(String, String)>,
    reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// One write inside the caller's transaction: `Ok(Err(..))` when it is refused (unknown
/// deployment, key limit), in which case the caller must roll it back.
async fn put_in(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    entries: &[(String, String)],
    now: i64,
    limits: &Limits,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    // Updating the deployment row first locks it (PostgreSQL), so concurrent writers of one
    // deployment take turns and the key count below cannot be raced past the limit.
    let touched = sqlx::query(
        "UPDATE store_deployments SET updated_at = $1, expires_at_ms = $2 \
         WHERE id = $3 AND expires_at_ms > $4",
    )
    .bind(now / 1000)
    .bind(now.saturating_add(limits.ttl_millis()))
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if touched == 0 {
        return Ok(Err(StoreError::DeploymentNotFound));
    }
    for (key, value) in entries {
        sqlx::query(
            "INSERT INTO store_values (deployment_id, name, value) VALUES ($1, $2, $3) \
             ON CONFLICT (deployment_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(id)
        .bind(key)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    }
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM store_values WHERE deployment_id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if usize::try_from(count).unwrap_or(usize::MAX) > limits.max_keys {
        return Ok(Err(StoreError::TooManyKeys(limits.max_keys)));
    }
    Ok(Ok(()))
}

async fn sweep_forever(db: Db, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        if let Err(err) = sweep(&db, unix_millis()).await {
            tracing::warn!(error = ?err, "cannot delete expired store deployments");
        }
    }
}

async fn sweep(db: &Db, now_ms: i64) -> Result<u64, StoreError> {
    let mut tx = db.pool().begin().await.map_err(backend_error)?;
    sqlx::query(
        "DELETE FROM store_values WHERE deployment_id IN \
         (SELECT id FROM store_deployments WHERE expires_at_ms <= $1)",
    )
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .map_err(backend_error)?;
    let deleted = sqlx::query("DELETE FROM store_deployments WHERE expires_at_ms <= $1")
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?
        .rows_affected();
    tx.commit().await.map_err(backend_error)?;
    Ok(deleted)
}

#[async_trait]
impl StoreBackend for EmbeddedBackend {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn legacy_namespaces(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT ns FROM store_deployments WHERE ns_bound = 0 AND ns <> ''")
                .fetch_all(self.db.pool())
                .await
                .map_err(backend_error)?;
        Ok(rows.into_iter().map(|(ns,)| ns).collect())
    }

    async fn bind_legacy_namespace(&self, legacy: &str, id: Option<&str>) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        // An unknown namespace binds to nothing: the empty id matches no namespace.
        sqlx::query("UPDATE store_deployments SET ns = $1, ns_bound = 1 WHERE ns = $2 AND ns_bound = 0")
            .bind(id.unwrap_or(""))
            .bind(legacy)
            .execute(self.db.pool())
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn create(&self, id: &str, metadata: &Metadata) -> Result<(), StoreError> {
        let expires = unix_millis().saturating_add(self.limits.ttl_millis());
        let _turn = self.write_turn().await;
        let (ns, bound) = match &metadata.namespace {
            NamespaceBinding::None => ("", true),
            NamespaceBinding::Id(id) => (id.as_str(), true),
            NamespaceBinding::Legacy(key) => (key.as_str(), false),
        };
        sqlx::query(
            "INSERT INTO store_deployments (id, uid, ns, created_at, updated_at, expires_at_ms, ns_bound) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(&metadata.user)
        .bind(ns)
        .bind(metadata.created_at)
        .bind(metadata.updated_at)
        .bind(expires)
        .bind(goterra_db::flag(bound))
        .execute(self.db.pool())
        .await
        .map_err(backend_error)?;
        Ok(())
    }

    async fn metadata(&self, id: &str) -> Result<Option<Metadata>, StoreError> {
        let row: Option<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT uid, ns, created_at, updated_at, ns_bound FROM store_deployments \
             WHERE id = $1 AND expires_at_ms > $2",
        )
        .bind(id)
        .bind(unix_millis())
        .fetch_optional(self.db.pool())
        .await
        .map_err(backend_error)?;
        Ok(row.map(|(user, ns, created_at, updated_at, bound)| Metadata {
            user,
            namespace: match (ns.is_empty(), bound != 0) {
                (true, _) => NamespaceBinding::None,
                (false, true) => NamespaceBinding::Id(ns),
                (false, false) => NamespaceBinding::Legacy(ns),
            },
            created_at,
            updated_at,
        }))
    }

    async fn put(&self, id: &str, entries: &[(String, String)]) -> Result<(), StoreError> {
        let entries: Vec<(String, String)> = dedup_entries(entries)
            .into_iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        if self.write_turn.is_some() {
            return self.put_batched(id, entries).await;
        }
        let now = unix_millis();
        let mut tx = self.db.pool().begin().await.map_err(backend_error)?;
        let outcome = put_in(&mut tx, id, &entries, now, &self.limits)
            .await
            .map_err(backend_error)?;
        if outcome.is_ok() {
            tx.commit().await.map_err(backend_error)?;
            self.publish(id, &entries);
        }
        // Otherwise dropping the transaction rolls every entry back.
        outcome
    }

    async fn get(&self, id: &str, key: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT d.id, v.value FROM store_deployments d \
             LEFT JOIN store_values v ON v.deployment_id = d.id AND v.name = $2 \
             WHERE d.id = $1 AND d.expires_at_ms > $3",
        )
        .bind(id)
        .bind(key)
        .bind(unix_millis())
        .fetch_optional(self.db.pool())
        .await
        .map_err(backend_error)?;
        match row {
            None => Err(StoreError::DeploymentNotFound),
            Some((_, value)) => Ok(value),
        }
    }

    async fn get_all(&self, id: &str, prefix: Option<&str>) -> Result<BTreeMap<String, String>, StoreError> {
        if self.metadata(id).await?.is_none() {
            return Err(StoreError::DeploymentNotFound);
        }
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, value FROM store_values WHERE deployment_id = $1")
                .bind(id)
                .fetch_all(self.db.pool())
                .await
                .map_err(backend_error)?;
        Ok(rows
            .into_iter()
            .filter(|(name, _)| prefix.is_none_or(|prefix| name.starts_with(prefix)))
            .collect())
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let turn = self.write_turn().await;
        let mut tx = self.db.pool().begin().await.map_err(backend_error)?;
        let existed = sqlx::query("DELETE FROM store_deployments WHERE id = $1 AND expires_at_ms > $2")
            .bind(id)
            .bind(unix_millis())
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?
            .rows_affected()
            > 0;
        sqlx::query("DELETE FROM store_deployments WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        sqlx::query("DELETE FROM store_values WHERE deployment_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        drop(turn);
        self.hub.recheck_deployment(id);
        Ok(existed)
    }

    fn hub(&self) -> &Arc<WaitHub> {
        &self.hub
    }
}
