//! The run queue kept in the platform database (`queue_jobs`), for `goterra up` where deploy
//! and an agent share one process and no broker is needed.
//!
//! A consumer takes a job by writing a lease into its row and hiding the row for the
//! visibility timeout; while the job is held, a background task keeps pushing that deadline
//! forward. If the consumer's process dies, the lease stops being renewed and the job becomes
//! visible again, so another consumer gets it. Enqueueing wakes consumers of the same process
//! at once (a `Notify`); consumers also poll, which covers jobs enqueued by another process
//! sharing a PostgreSQL database and leases that expire.

use crate::queue::{JobConsumer, QueuedJob, RunQueue};
use anyhow::Context;
use async_trait::async_trait;
use goterra_core::runs::{RunAction, RunJob};
use goterra_db::{Db, Migration};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: "queue_0001_jobs",
        postgres: "CREATE TABLE queue_jobs (
        seq BIGSERIAL PRIMARY KEY,
        queue TEXT NOT NULL,
        action TEXT NOT NULL,
        run_id TEXT NOT NULL,
        enqueued_at_ms BIGINT NOT NULL,
        visible_at_ms BIGINT NOT NULL,
        deliveries BIGINT NOT NULL DEFAULT 0,
        lease TEXT
    );
    CREATE INDEX queue_jobs_ready ON queue_jobs (queue, visible_at_ms);",
        sqlite: "CREATE TABLE queue_jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        action TEXT NOT NULL,
        run_id TEXT NOT NULL,
        enqueued_at_ms BIGINT NOT NULL,
        visible_at_ms BIGINT NOT NULL,
        deliveries BIGINT NOT NULL DEFAULT 0,
        lease TEXT
    );
    CREATE INDEX queue_jobs_ready ON queue_jobs (queue, visible_at_ms);",
    },
    // The queues a deploy feeds (see `RunQueue::announce_feeder`).
    Migration {
        id: "queue_0002_feeders",
        postgres: FEEDERS_V1,
        sqlite: FEEDERS_V1,
    },
];

const FEEDERS_V1: &str = "CREATE TABLE queue_feeders (
    queue TEXT PRIMARY KEY,
    announced_at_ms BIGINT NOT NULL
);";

#[derive(Clone, Debug)]
pub struct EmbeddedQueueOptions {
    /// Several queues can share the table; each has a name.
    pub name: String,
    /// How long a taken job stays hidden without a lease renewal before it is delivered again.
    pub visibility_timeout: Duration,
    /// How often consumers look for jobs they were not woken up for.
    pub poll_interval: Duration,
}

impl Default for EmbeddedQueueOptions {
    fn default() -> Self {
        Self {
            name: goterra_core::config::DEFAULT_RUN_QUEUE.to_string(),
            visibility_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Cheap to clone. Every queue of the same name in one process shares the wake-up signal.
#[derive(Clone)]
pub struct EmbeddedQueue {
    shared: Arc<Shared>,
}

struct Shared {
    db: Db,
    options: EmbeddedQueueOptions,
    wake: Arc<Notify>,
}

/// One wake-up signal per queue name in this process, so that deploy and the agent wake each
/// other even when each opened its own `EmbeddedQueue`.
fn wake_signal(name: &str) -> Arc<Notify> {
    static SIGNALS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, Arc<Notify>>>> =
        std::sync::OnceLock::new();
    let signals = SIGNALS.get_or_init(Default::default);
    match signals.lock() {
        Ok(mut signals) => signals.entry(name.to_string()).or_default().clone(),
        // A poisoned map only costs the instant wake-up; consumers still poll.
        Err(_) => Arc::new(Notify::new()),
    }
}

impl EmbeddedQueue {
    /// Creates the table when needed.
    pub async fn open(db: Db, options: EmbeddedQueueOptions) -> anyhow::Result<Self> {
        db.migrate(MIGRATIONS).await.context("cannot create the queue table")?;
        Ok(Self::new(db, options))
    }

    /// Over a database whose migrations (including [`MIGRATIONS`]) are already applied, as in
    /// a service's router.
    pub fn new(db: Db, options: EmbeddedQueueOptions) -> Self {
        Self {
            shared: Arc::new(Shared {
                wake: wake_signal(&options.name),
                db,
                options,
            }),
        }
    }

    /// Jobs waiting or held, for monitoring and tests.
    pub async fn len(&self) -> anyhow::Result<u64> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM queue_jobs WHERE queue = $1")
            .bind(&self.shared.options.name)
            .fetch_one(self.shared.db.pool())
            .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    pub async fn is_empty(&self) -> anyhow::Result<bool> {
        Ok(self.len().await? == 0)
    }
}

#[async_trait]
impl RunQueue for EmbeddedQueue {
    fn describe(&self) -> String {
        // Only processes on the same database meet here: deploy must use this database too.
        format!(
            "embedded queue `{}` in the {:?} platform database (deploy must use the same database)",
            self.shared.options.name,
            self.shared.db.engine()
        )
    }

    async fn enqueue(&self, job: &RunJob) -> anyhow::Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO queue_jobs (queue, action, run_id, enqueued_at_ms, visible_at_ms, deliveries)
             VALUES ($1, $2, $3, $4, $4, 0)",
        )
        .bind(&self.shared.options.name)
        .bind(job.action.as_str())
        .bind(&job.id)
        .bind(now)
        .execute(self.shared.db.pool())
        .await
        .context("cannot store the run job")?;
        self.shared.wake.notify_waiters();
        Ok(())
    }

    async fn announce_feeder(&self) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO queue_feeders (queue, announced_at_ms) VALUES ($1, $2)
             ON CONFLICT (queue) DO UPDATE SET announced_at_ms = excluded.announced_at_ms",
        )
        .bind(&self.shared.options.name)
        .bind(now_ms())
        .execute(self.shared.db.pool())
        .await
        .context("cannot mark the run queue as fed")?;
        Ok(())
    }

    async fn has_feeder(&self) -> anyhow::Result<bool> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT announced_at_ms FROM queue_feeders WHERE queue = $1")
            .bind(&self.shared.options.name)
            .fetch_optional(self.shared.db.pool())
            .await
            .context("cannot read the run queue's feeders")?;
        Ok(found.is_some())
    }

    async fn depth(&self) -> anyhow::Result<u64> {
        // Ready jobs only, as RabbitMQ counts them: a taken job is hidden until its lease ends.
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM queue_jobs WHERE queue = $1 AND visible_at_ms <= $2")
                .bind(&self.shared.options.name)
                .bind(now_ms())
                .fetch_one(self.shared.db.pool())
                .await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn consumer(&self, prefetch: u16) -> anyhow::Result<Box<dyn JobConsumer>> {
        Ok(Box::new(EmbeddedConsumer {
            shared: self.shared.clone(),
            slots: Arc::new(Semaphore::new(usize::from(prefetch.max(1)))),
        }))
    }
}

struct EmbeddedConsumer {
    shared: Arc<Shared>,
    /// One permit per job held unacknowledged: the prefetch limit.
    slots: Arc<Semaphore>,
}

#[async_trait]
impl JobConsumer for EmbeddedConsumer {
    async fn next(&mut self) -> anyhow::Result<Box<dyn QueuedJob>> {
        let slot = self.slots.clone().acquire_owned().await.context("consumer closed")?;
        loop {
            // Register for the wake-up before looking, so an enqueue in between is not missed.
            let woken = self.shared.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if let Some(taken) = self.shared.take().await? {
                return Ok(Box::new(EmbeddedJob::hold(self.shared.clone(), taken, slot)));
            }
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(self.shared.options.poll_interval) => {}
            }
        }
    }
}

struct Taken {
    seq: i64,
    lease: String,
    job: RunJob,
    deliveries: i64,
}

impl Shared {
    /// Takes the oldest visible job, or `None`. A row taken by a concurrent consumer between
    /// the inner SELECT and the UPDATE fails the outer `visible_at_ms` check and is retried.
    async fn take(&self) -> anyhow::Result<Option<Taken>> {
        for _ in 0..5 {
            let now = now_ms();
            let lease = uuid::Uuid::new_v4().simple().to_string();
            let row: Option<(i64, String, String, i64)> = sqlx::query_as(
                "UPDATE queue_jobs SET lease = $1, visible_at_ms = $2, deliveries = deliveries + 1
                 WHERE seq = (SELECT seq FROM queue_jobs WHERE queue = $3 AND visible_at_ms <= $4
                              ORDER BY seq LIMIT 1)
                   AND visible_at_ms <= $4
                 RETURNING seq, action, run_id, deliveries",
            )
            .bind(&lease)
            .bind(now + millis(self.options.visibility_timeout))
            .bind(&self.options.name)
            .bind(now)
            .fetch_optional(self.db.pool())
            .await
            .context("cannot take a run job")?;
            match row {
                Some((seq, action, run_id, deliveries)) => match action.parse::<RunAction>() {
                    Ok(action) => {
                        return Ok(Some(Taken {
                            seq,
                            lease,
                            job: RunJob::new(action, run_id),
                            deliveries,
                        }));
                    }
                    Err(err) => {
                        // Only a hand-edited row can get here; drop it rather than loop on it.
                        tracing::error!(seq, %err, "dropping an unreadable run job");
                        self.delete(seq, &lease).await?;
                    }
                },
                None if self.has_visible_job(now).await? => continue,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    async fn has_visible_job(&self, now: i64) -> anyhow::Result<bool> {
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM queue_jobs WHERE queue = $1 AND visible_at_ms <= $2 LIMIT 1")
                .bind(&self.options.name)
                .bind(now)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(found.is_some())
    }

    async fn delete(&self, seq: i64, lease: &str) -> anyhow::Result<bool> {
        let done = sqlx::query("DELETE FROM queue_jobs WHERE seq = $1 AND lease = $2")
            .bind(seq)
            .bind(lease)
            .execute(self.db.pool())
            .await
            .context("cannot acknowledge the run job")?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_visible_at(&self, seq: i64, lease: &str, visible_at_ms: i64, release: bool) -> anyhow::Result<bool> {
        let sql = if release {
            "UPDATE queue_jobs SET visible_at_ms = $1, lease = NULL WHERE seq = $2 AND lease = $3"
        } else {
            "UPDATE queue_jobs SET visible_at_ms = $1 WHERE seq = $2 AND lease = $3"
        };
        let done = sqlx::query(sql)
            .bind(visible_at_ms)
            .bind(seq)
            .bind(lease)
            .execute(self.db.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

struct EmbeddedJob {
    shared: Arc<Shared>,
    seq: i64,
    lease: String,
    job: RunJob,
    deliveries: i64,
    renewal: tokio::task::JoinHandle<()>,
    _slot: OwnedSemaphorePermit,
}

impl EmbeddedJob {
    fn hold(shared: Arc<Shared>, taken: Taken, slot: OwnedSemaphorePermit) -> Self {
        let renewal = tokio::spawn(renew_lease(shared.clone(), taken.seq, taken.lease.clone()));
        Self {
            shared,
            seq: taken.seq,
            lease: taken.lease,
            job: taken.job,
            deliveries: taken.deliveries,
            renewal,
            _slot: slot,
        }
    }
}

/// Keeps a held job hidden while its holder lives (a long `terraform apply` outlasts any
/// reasonable visibility timeout).
async fn renew_lease(shared: Arc<Shared>, seq: i64, lease: String) {
    let timeout = shared.options.visibility_timeout;
    let period = (timeout / 3).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(period).await;
        match shared
            .set_visible_at(seq, &lease, now_ms() + millis(timeout), false)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(seq, "a held run job was taken over after its lease expired");
                return;
            }
            Err(err) => tracing::warn!(seq, error = %format!("{err:#}"), "cannot renew a run job lease"),
        }
    }
}

impl Drop for EmbeddedJob {
    fn drop(&mut self) {
        // Dropped without ack or requeue: stop renewing, so the job comes back after the
        // visibility timeout, exactly as if this process had died.
        self.renewal.abort();
    }
}

#[async_trait]
impl QueuedJob for EmbeddedJob {
    fn job(&self) -> &RunJob {
        &self.job
    }

    fn redelivered(&self) -> bool {
        self.deliveries > 1
    }

    async fn ack(self: Box<Self>) -> anyhow::Result<()> {
        self.renewal.abort();
        if !self.shared.delete(self.seq, &self.lease).await? {
            anyhow::bail!("the run job's lease expired and it was delivered again");
        }
        Ok(())
    }

    async fn requeue(self: Box<Self>) -> anyhow::Result<()> {
        self.renewal.abort();
        if !self
            .shared
            .set_visible_at(self.seq, &self.lease, now_ms(), true)
            .await?
        {
            anyhow::bail!("the run job's lease expired and it was delivered again");
        }
        self.shared.wake.notify_waiters();
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
