//! Deployments in the platform database (`store_*` tables): durable across restarts of
//! `goterra up`, with in-process wake-ups. Expired deployments are invisible at once and
//! swept away by a background task.

use super::mirror::{Mirror, MirroredDeployment, Staging};
use super::{Limits, Metadata, NamespaceBinding, StoreBackend, StoreError, backend_error, dedup_entries, unix_millis};
use crate::waiting::WaitHub;
use async_trait::async_trait;
use goterra_db::{Db, Migration};
use std::collections::{BTreeMap, HashMap};
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
    shared: Arc<Shared>,
    /// Writes waiting for the turn (SQLite only).
    queued: std::sync::Mutex<Vec<QueuedWrite>>,
    limits: Limits,
    hub: Arc<WaitHub>,
    _sweeper: DropGuard,
}

/// What the backend shares with its expiry sweep.
struct Shared {
    db: Db,
    /// SQLite allows one writer at a time and makes the others sleep and retry; taking turns
    /// here instead keeps write latency low under concurrency. `None` on PostgreSQL. It guards
    /// the connection that commits batches of PUTs, kept out of the pool (no health check per
    /// batch) and opened again after a failure.
    write_turn: Option<tokio::sync::Mutex<Option<sqlx::AnyConnection>>>,
    /// Every live deployment in memory, loaded at first use (SQLite only: there, this process is
    /// the only writer of the database; see [`Mirror`]).
    mirror: Option<tokio::sync::OnceCell<Mirror>>,
    /// Batches were committed since the last checkpoint (SQLite).
    unchecked: std::sync::atomic::AtomicBool,
}

impl Shared {
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, Option<sqlx::AnyConnection>>> {
        match &self.write_turn {
            Some(turn) => Some(turn.lock().await),
            None => None,
        }
    }

    async fn mirror(&self) -> Result<Option<&Mirror>, StoreError> {
        match &self.mirror {
            Some(cell) => cell.get_or_try_init(|| load_mirror(&self.db)).await.map(Some),
            None => Ok(None),
        }
    }

    /// Deletes the deployments expired at `now_ms`; returns how many.
    async fn sweep(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mirror = self.mirror().await?;
        let _turn = self.write_turn().await;
        let deleted = sweep(&self.db, now_ms).await?;
        if let Some(mirror) = mirror {
            mirror.sweep(now_ms);
        }
        Ok(deleted)
    }
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
        let sqlite = db.engine() == goterra_db::Engine::Sqlite;
        let shared = Arc::new(Shared {
            db,
            write_turn: sqlite.then(|| tokio::sync::Mutex::new(None)),
            mirror: sqlite.then(tokio::sync::OnceCell::new),
            unchecked: std::sync::atomic::AtomicBool::new(false),
        });
        tokio::spawn(sweep_forever(shared.clone(), stop.clone()));
        if sqlite {
            tokio::spawn(checkpoint_forever(shared.clone(), stop.clone()));
        }
        Self {
            shared,
            queued: std::sync::Mutex::new(Vec::new()),
            limits,
            hub: WaitHub::new(),
            _sweeper: stop.drop_guard(),
        }
    }

    /// Deletes the deployments expired at `now_ms`; returns how many.
    pub async fn sweep(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.shared.sweep(now_ms).await
    }

    fn db(&self) -> &Db {
        &self.shared.db
    }

    fn publish(&self, id: &str, entries: &[(String, String)]) {
        for (key, value) in entries {
            self.hub.publish(id, key, value);
        }
    }

    /// Group commit (SQLite): writers that arrive while one commits queue up, and the next to
    /// get the turn commits them all in one transaction; each is decided on its own against
    /// the mirror, so one refused write does not undo the others.
    async fn put_batched(&self, id: &str, entries: Vec<(String, String)>) -> Result<(), StoreError> {
        let mirror = self.shared.mirror().await?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue().push(QueuedWrite {
            id: id.to_string(),
            entries,
            reply,
        });
        {
            let mut turn = self.shared.write_turn().await;
            let batch = std::mem::take(&mut *self.queue());
            if let (Some(mirror), Some(writer), false) = (mirror, turn.as_mut(), batch.is_empty()) {
                self.write_batch(mirror, writer, batch).await;
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(backend_error(anyhow::anyhow!("a batched write was lost"))))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<QueuedWrite>> {
        self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides every write of the batch against the mirror (unknown deployment, key limit),
    /// commits the accepted ones in one transaction, then shows them in the mirror and wakes
    /// their waiters: a write is visible, and answered, only once it is on disk.
    async fn write_batch(&self, mirror: &Mirror, writer: &mut Option<sqlx::AnyConnection>, batch: Vec<QueuedWrite>) {
        let now = unix_millis();
        let expires = now.saturating_add(self.limits.ttl_millis());
        let mut staging = Staging::new(mirror, now, self.limits);
        let outcomes: Vec<Result<(), StoreError>> = batch
            .iter()
            .map(|write| staging.stage(&write.id, &write.entries))
            .collect();
        match persist_with(writer, self.db(), &staging, now / 1000, expires).await {
            Ok(()) => {
                self.shared.unchecked.store(true, std::sync::atomic::Ordering::Relaxed);
                staging.apply(now / 1000, expires);
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
}

/// Rows of one multi-row upsert.
const UPSERT_ROWS: usize = 64;
/// Parameters of one round trip to SQLite (its limit is 32 766).
const MAX_PARAMETERS: usize = 30_000;

/// A value bound to a batch's statements.
enum Param<'a> {
    Int(i64),
    Text(&'a str),
}

/// Commits the staged batch on the writer connection (opened when there is none). After a
/// failure the connection is closed, which rolls back whatever it had begun.
async fn persist_with(
    writer: &mut Option<sqlx::AnyConnection>,
    db: &Db,
    staging: &Staging<'_>,
    updated_at: i64,
    expires_at_ms: i64,
) -> Result<(), sqlx::Error> {
    if staging.touched().next().is_none() {
        return Ok(());
    }
    let mut conn = match writer.take() {
        Some(conn) => conn,
        None => {
            let mut conn = db.pool().acquire().await?.detach();
            // Its commits never copy the WAL into the database (a flush to disk that would
            // stall the PUTs of the batch): `checkpoint_forever` does, beside it.
            sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut conn).await?;
            conn
        }
    };
    persist(&mut conn, staging, updated_at, expires_at_ms).await?;
    *writer = Some(conn);
    Ok(())
}

/// How often the WAL written by the batches is copied into the database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Checkpoints the WAL after batches were committed, without blocking the writer (PASSIVE:
/// it copies what no reader still needs and never waits for locks).
async fn checkpoint_forever(shared: Arc<Shared>, stop: CancellationToken) {
    use std::sync::atomic::Ordering;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(CHECKPOINT_INTERVAL) => {}
        }
        if shared.unchecked.swap(false, Ordering::Relaxed)
            && let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(shared.db.pool())
                .await
        {
            tracing::warn!(error = %err, "cannot checkpoint the store's SQLite WAL");
        }
    }
}

/// Writes the staged batch in one transaction. The statements travel to SQLite's thread
/// together, in one round trip for a usual batch (a round trip per statement, each a thread
/// hand-off, was what bounded PUTs).
async fn persist(
    conn: &mut sqlx::AnyConnection,
    staging: &Staging<'_>,
    updated_at: i64,
    expires_at_ms: i64,
) -> Result<(), sqlx::Error> {
    // `$1` and `$2` are the times; every segment binds them again.
    let mut segments: Vec<(String, Vec<Param<'_>>)> = Vec::new();
    let mut sql = String::from("BEGIN IMMEDIATE;");
    let mut params = vec![Param::Int(updated_at), Param::Int(expires_at_ms)];
    for (id, staged) in staging.touched() {
        let rows: Vec<(&String, &String)> = staged.values.iter().collect();
        for (n, chunk) in rows.chunks(UPSERT_ROWS).enumerate() {
            if params.len() + 1 + 2 * chunk.len() > MAX_PARAMETERS {
                segments.push((std::mem::take(&mut sql), std::mem::take(&mut params)));
                params = vec![Param::Int(updated_at), Param::Int(expires_at_ms)];
            }
            params.push(Param::Text(id));
            let id_param = params.len();
            if n == 0 {
                sql.push_str(&format!(
                    "UPDATE store_deployments SET updated_at = $1, expires_at_ms = $2 WHERE id = ${id_param};"
                ));
            }
            let mut values = Vec::with_capacity(chunk.len());
            for (name, value) in chunk {
                params.push(Param::Text(name));
                params.push(Param::Text(value));
                values.push(format!("(${id_param}, ${}, ${})", params.len() - 1, params.len()));
            }
            sql.push_str(&format!(
                "INSERT INTO store_values (deployment_id, name, value) VALUES {} \
                 ON CONFLICT (deployment_id, name) DO UPDATE SET value = excluded.value;",
                values.join(", ")
            ));
        }
    }
    sql.push_str("COMMIT;");
    segments.push((sql, params));
    for (sql, params) in &segments {
        let mut query = sqlx::query(sql);
        for param in params {
            query = match param {
                Param::Int(value) => query.bind(*value),
                Param::Text(value) => query.bind(*value),
            };
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Every live deployment and its values, for the mirror.
async fn load_mirror(db: &Db) -> Result<Mirror, StoreError> {
    let now = unix_millis();
    let rows: Vec<(String, String, String, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, uid, ns, created_at, updated_at, ns_bound, expires_at_ms FROM store_deployments \
         WHERE expires_at_ms > $1",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await
    .map_err(backend_error)?;
    let mut deployments: HashMap<String, MirroredDeployment> = rows
        .into_iter()
        .map(|(id, user, ns, created_at, updated_at, bound, expires_at_ms)| {
            let deployment = MirroredDeployment {
                metadata: metadata_of(user, ns, created_at, updated_at, bound),
                expires_at_ms,
                values: HashMap::new(),
            };
            (id, deployment)
        })
        .collect();
    let values: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT v.deployment_id, v.name, v.value FROM store_values v \
         JOIN store_deployments d ON d.id = v.deployment_id WHERE d.expires_at_ms > $1",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await
    .map_err(backend_error)?;
    for (id, name, value) in values {
        if let Some(deployment) = deployments.get_mut(&id) {
            deployment.values.insert(name, value);
        }
    }
    Ok(Mirror::new(deployments))
}

/// A deployment's metadata from its columns.
fn metadata_of(user: String, ns: String, created_at: i64, updated_at: i64, bound: i64) -> Metadata {
    Metadata {
        user,
        namespace: match (ns.is_empty(), bound != 0) {
            (true, _) => NamespaceBinding::None,
            (false, true) => NamespaceBinding::Id(ns),
            (false, false) => NamespaceBinding::Legacy(ns),
        },
        created_at,
        updated_at,
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

async fn sweep_forever(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        if let Err(err) = shared.sweep(unix_millis()).await {
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
                .fetch_all(self.db().pool())
                .await
                .map_err(backend_error)?;
        Ok(rows.into_iter().map(|(ns,)| ns).collect())
    }

    async fn bind_legacy_namespace(&self, legacy: &str, id: Option<&str>) -> Result<(), StoreError> {
        let mirror = self.shared.mirror().await?;
        let _turn = self.shared.write_turn().await;
        // An unknown namespace binds to nothing: the empty id matches no namespace.
        sqlx::query("UPDATE store_deployments SET ns = $1, ns_bound = 1 WHERE ns = $2 AND ns_bound = 0")
            .bind(id.unwrap_or(""))
            .bind(legacy)
            .execute(self.db().pool())
            .await
            .map_err(backend_error)?;
        if let Some(mirror) = mirror {
            let bound = id.map_or(NamespaceBinding::None, |id| NamespaceBinding::Id(id.to_string()));
            for deployment in mirror.write().values_mut() {
                if matches!(&deployment.metadata.namespace, NamespaceBinding::Legacy(name) if name == legacy) {
                    deployment.metadata.namespace = bound.clone();
                }
            }
        }
        Ok(())
    }

    async fn create(&self, id: &str, metadata: &Metadata) -> Result<(), StoreError> {
        let mirror = self.shared.mirror().await?;
        let expires = unix_millis().saturating_add(self.limits.ttl_millis());
        let _turn = self.shared.write_turn().await;
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
        .execute(self.db().pool())
        .await
        .map_err(backend_error)?;
        if let Some(mirror) = mirror {
            let deployment = MirroredDeployment {
                metadata: metadata.clone(),
                expires_at_ms: expires,
                values: HashMap::new(),
            };
            mirror.write().insert(id.to_string(), deployment);
        }
        Ok(())
    }

    async fn metadata(&self, id: &str) -> Result<Option<Metadata>, StoreError> {
        if let Some(mirror) = self.shared.mirror().await? {
            return Ok(mirror.metadata(id, unix_millis()));
        }
        let row: Option<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT uid, ns, created_at, updated_at, ns_bound FROM store_deployments \
             WHERE id = $1 AND expires_at_ms > $2",
        )
        .bind(id)
        .bind(unix_millis())
        .fetch_optional(self.db().pool())
        .await
        .map_err(backend_error)?;
        Ok(row.map(|(user, ns, created_at, updated_at, bound)| metadata_of(user, ns, created_at, updated_at, bound)))
    }

    async fn put(&self, id: &str, entries: &[(String, String)]) -> Result<(), StoreError> {
        let entries: Vec<(String, String)> = dedup_entries(entries)
            .into_iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        if self.shared.mirror.is_some() {
            return self.put_batched(id, entries).await;
        }
        let now = unix_millis();
        let mut tx = self.db().pool().begin().await.map_err(backend_error)?;
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
        if let Some(mirror) = self.shared.mirror().await? {
            return mirror.get(id, key, unix_millis());
        }
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT d.id, v.value FROM store_deployments d \
             LEFT JOIN store_values v ON v.deployment_id = d.id AND v.name = $2 \
             WHERE d.id = $1 AND d.expires_at_ms > $3",
        )
        .bind(id)
        .bind(key)
        .bind(unix_millis())
        .fetch_optional(self.db().pool())
        .await
        .map_err(backend_error)?;
        match row {
            None => Err(StoreError::DeploymentNotFound),
            Some((_, value)) => Ok(value),
        }
    }

    async fn get_all(&self, id: &str, prefix: Option<&str>) -> Result<BTreeMap<String, String>, StoreError> {
        if let Some(mirror) = self.shared.mirror().await? {
            return mirror.get_all(id, prefix, unix_millis());
        }
        if self.metadata(id).await?.is_none() {
            return Err(StoreError::DeploymentNotFound);
        }
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, value FROM store_values WHERE deployment_id = $1")
                .bind(id)
                .fetch_all(self.db().pool())
                .await
                .map_err(backend_error)?;
        Ok(rows
            .into_iter()
            .filter(|(name, _)| prefix.is_none_or(|prefix| name.starts_with(prefix)))
            .collect())
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let mirror = self.shared.mirror().await?;
        let turn = self.shared.write_turn().await;
        let mut tx = self.db().pool().begin().await.map_err(backend_error)?;
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
        if let Some(mirror) = mirror {
            mirror.write().remove(id);
        }
        drop(turn);
        self.hub.recheck_deployment(id);
        Ok(existed)
    }

    fn hub(&self) -> &Arc<WaitHub> {
        &self.hub
    }
}
