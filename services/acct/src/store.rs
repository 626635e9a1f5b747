//! Usage records in the platform database: one row per resource interval (a resource instance
//! at one kind, quantity and price, from `start_at` to `end_at`, open while `end_at` is NULL),
//! and per run how much of its history was applied.
//!
//! Every change to a run's intervals is one transaction that first bumps the run's `version`
//! where it still has the value the change was planned from (optimistic locking): two
//! workers handling the same run at once cannot both apply, and the loser plans again.

use goterra_db::{Db, Migration};
use sqlx::Row;
use sqlx::any::AnyRow;

pub const MIGRATIONS: &[Migration] = &[Migration {
    id: "acct_0001_intervals",
    postgres: "CREATE TABLE acct_runs (
        run_id TEXT PRIMARY KEY,
        namespace_id TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        uid TEXT NOT NULL,
        applied BIGINT NOT NULL DEFAULT 0,
        version BIGINT NOT NULL DEFAULT 0,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX acct_runs_namespace ON acct_runs (namespace_id);
    CREATE TABLE acct_intervals (
        id BIGSERIAL PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES acct_runs (run_id),
        namespace_id TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        uid TEXT NOT NULL,
        address TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        kind TEXT NOT NULL,
        quantity DOUBLE PRECISION NOT NULL,
        price DOUBLE PRECISION NOT NULL,
        start_at BIGINT NOT NULL,
        end_at BIGINT
    );
    CREATE UNIQUE INDEX acct_intervals_open ON acct_intervals (run_id, address) WHERE end_at IS NULL;
    CREATE INDEX acct_intervals_namespace ON acct_intervals (namespace_id, start_at);
    CREATE INDEX acct_intervals_uid ON acct_intervals (uid, start_at);
    CREATE INDEX acct_intervals_run ON acct_intervals (run_id);
    CREATE TABLE acct_marks (name TEXT PRIMARY KEY, value BIGINT NOT NULL);",
    sqlite: "CREATE TABLE acct_runs (
        run_id TEXT PRIMARY KEY,
        namespace_id TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        uid TEXT NOT NULL,
        applied BIGINT NOT NULL DEFAULT 0,
        version BIGINT NOT NULL DEFAULT 0,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX acct_runs_namespace ON acct_runs (namespace_id);
    CREATE TABLE acct_intervals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES acct_runs (run_id),
        namespace_id TEXT NOT NULL,
        endpoint_id TEXT NOT NULL,
        uid TEXT NOT NULL,
        address TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        kind TEXT NOT NULL,
        quantity REAL NOT NULL,
        price REAL NOT NULL,
        start_at BIGINT NOT NULL,
        end_at BIGINT
    );
    CREATE UNIQUE INDEX acct_intervals_open ON acct_intervals (run_id, address) WHERE end_at IS NULL;
    CREATE INDEX acct_intervals_namespace ON acct_intervals (namespace_id, start_at);
    CREATE INDEX acct_intervals_uid ON acct_intervals (uid, start_at);
    CREATE INDEX acct_intervals_run ON acct_intervals (run_id);
    CREATE TABLE acct_marks (name TEXT PRIMARY KEY, value BIGINT NOT NULL);",
}];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Who a run belongs to, as deploy said when acct first saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOwner {
    pub run: String,
    pub namespace: String,
    pub endpoint: String,
    pub uid: String,
}

/// One stored interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    pub id: i64,
    pub run: String,
    pub namespace: String,
    pub endpoint: String,
    pub uid: String,
    pub address: String,
    pub resource_type: String,
    pub kind: String,
    pub quantity: f64,
    /// Per unit and second, as configured when the interval opened.
    pub price: f64,
    pub start_at: i64,
    pub end_at: Option<i64>,
}

/// An interval to open.
#[derive(Clone, Debug, PartialEq)]
pub struct NewInterval {
    pub address: String,
    pub resource_type: String,
    pub kind: String,
    pub quantity: f64,
    pub price: f64,
    pub start_at: i64,
    /// Set when the interval also ended within the same plan.
    pub end_at: Option<i64>,
}

/// What acct knows of a run.
#[derive(Clone, Debug, Default)]
pub struct RunLedger {
    pub owner: RunOwner,
    /// History entries already applied.
    pub applied: i64,
    pub version: i64,
    pub open: Vec<Interval>,
}

/// Changes to a run's intervals, applied together.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// `(interval id, end)`.
    pub close: Vec<(i64, i64)>,
    pub open: Vec<NewInterval>,
    /// The history entries applied once the plan is.
    pub applied: i64,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.close.is_empty() && self.open.is_empty()
    }
}

/// Which intervals a report covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespace(String),
    Run(String),
    User(String),
}

impl Scope {
    /// The SQL condition and its bound value (`$1`).
    fn condition(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::All => ("1 = 1", None),
            Self::Namespace(id) => ("namespace_id = $1", Some(id)),
            Self::Run(id) => ("run_id = $1", Some(id)),
            Self::User(uid) => ("uid = $1", Some(uid)),
        }
    }
}

/// Values bound per inserted interval, and intervals per insert statement.
const INTERVAL_FIELDS: usize = 11;
const INSERT_CHUNK: usize = 500;

const INTERVAL_COLUMNS: &str =
    "id, run_id, namespace_id, endpoint_id, uid, address, resource_type, kind, quantity, price, start_at, end_at";

fn decode_interval(row: &AnyRow) -> Result<Interval, sqlx::Error> {
    Ok(Interval {
        id: row.try_get("id")?,
        run: row.try_get("run_id")?,
        namespace: row.try_get("namespace_id")?,
        endpoint: row.try_get("endpoint_id")?,
        uid: row.try_get("uid")?,
        address: row.try_get("address")?,
        resource_type: row.try_get("resource_type")?,
        kind: row.try_get("kind")?,
        quantity: row.try_get("quantity")?,
        price: row.try_get("price")?,
        start_at: row.try_get("start_at")?,
        end_at: row.try_get("end_at")?,
    })
}

#[derive(Clone, Debug)]
pub struct AcctStore {
    db: Db,
}

impl AcctStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records the run if acct did not know it yet.
    pub async fn ensure_run(&self, owner: &RunOwner, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO acct_runs (run_id, namespace_id, endpoint_id, uid, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(owner.run.clone())
        .bind(owner.namespace.clone())
        .bind(owner.endpoint.clone())
        .bind(owner.uid.clone())
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn owner(&self, run: &str) -> Result<Option<RunOwner>, StoreError> {
        let row = sqlx::query("SELECT run_id, namespace_id, endpoint_id, uid FROM acct_runs WHERE run_id = $1")
            .bind(run.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row
            .map(|row| -> Result<RunOwner, sqlx::Error> {
                Ok(RunOwner {
                    run: row.try_get("run_id")?,
                    namespace: row.try_get("namespace_id")?,
                    endpoint: row.try_get("endpoint_id")?,
                    uid: row.try_get("uid")?,
                })
            })
            .transpose()?)
    }

    /// The run's ledger, `None` when acct never saw the run.
    pub async fn ledger(&self, run: &str) -> Result<Option<RunLedger>, StoreError> {
        let Some(row) =
            sqlx::query("SELECT namespace_id, endpoint_id, uid, applied, version FROM acct_runs WHERE run_id = $1")
                .bind(run.to_string())
                .fetch_optional(self.db.pool())
                .await?
        else {
            return Ok(None);
        };
        let owner = RunOwner {
            run: run.to_string(),
            namespace: row.try_get("namespace_id")?,
            endpoint: row.try_get("endpoint_id")?,
            uid: row.try_get("uid")?,
        };
        let open = sqlx::query(&format!(
            "SELECT {INTERVAL_COLUMNS} FROM acct_intervals WHERE run_id = $1 AND end_at IS NULL ORDER BY id"
        ))
        .bind(run.to_string())
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(decode_interval)
        .collect::<Result<_, _>>()?;
        Ok(Some(RunLedger {
            owner,
            applied: row.try_get("applied")?,
            version: row.try_get("version")?,
            open,
        }))
    }

    /// Applies `plan` if the run is still at `version` (`None`: acct does not know the run
    /// yet, and it is recorded with the plan); `false` when another writer changed it first
    /// (nothing is written then).
    pub async fn commit(
        &self,
        owner: &RunOwner,
        version: Option<i64>,
        plan: &Plan,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.pool().begin().await?;
        let moved = match version {
            Some(version) => {
                sqlx::query(
                    "UPDATE acct_runs SET applied = $2, version = version + 1, updated_at = $3 \
                 WHERE run_id = $1 AND version = $4",
                )
                .bind(owner.run.clone())
                .bind(plan.applied)
                .bind(now)
                .bind(version)
                .execute(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(
                    "INSERT INTO acct_runs (run_id, namespace_id, endpoint_id, uid, applied, version, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT (run_id) DO NOTHING",
                )
                .bind(owner.run.clone())
                .bind(owner.namespace.clone())
                .bind(owner.endpoint.clone())
                .bind(owner.uid.clone())
                .bind(plan.applied)
                .bind(now)
                .execute(&mut *tx)
                .await?
            }
        };
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // One statement per end time (a destroy closes everything at one time).
        let mut by_end: std::collections::BTreeMap<i64, Vec<i64>> = std::collections::BTreeMap::new();
        for (id, end_at) in &plan.close {
            by_end.entry(*end_at).or_default().push(*id);
        }
        for (end_at, ids) in by_end {
            for chunk in ids.chunks(INSERT_CHUNK) {
                let slots: Vec<String> = (0..chunk.len()).map(|n| format!("${}", n + 2)).collect();
                let sql = format!(
                    "UPDATE acct_intervals SET end_at = $1 WHERE end_at IS NULL AND id IN ({})",
                    slots.join(", ")
                );
                let mut query = sqlx::query(&sql).bind(end_at);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.execute(&mut *tx).await?;
            }
        }
        // One statement for all new intervals, in chunks that stay under every engine's limit
        // on bound parameters.
        for chunk in plan.open.chunks(INSERT_CHUNK) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let first = row * INTERVAL_FIELDS;
                    let slots: Vec<String> = (1..=INTERVAL_FIELDS).map(|n| format!("${}", first + n)).collect();
                    format!("({})", slots.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO acct_intervals (run_id, namespace_id, endpoint_id, uid, address, resource_type, kind, \
                 quantity, price, start_at, end_at) VALUES {}",
                rows.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for new in chunk {
                query = query
                    .bind(owner.run.clone())
                    .bind(owner.namespace.clone())
                    .bind(owner.endpoint.clone())
                    .bind(owner.uid.clone())
                    .bind(new.address.clone())
                    .bind(new.resource_type.clone())
                    .bind(new.kind.clone())
                    .bind(new.quantity)
                    .bind(new.price)
                    .bind(new.start_at)
                    .bind(new.end_at);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Intervals of `scope` that overlap `[from, to)`, oldest first.
    pub async fn intervals(&self, scope: &Scope, from: i64, to: i64) -> Result<Vec<Interval>, StoreError> {
        let (condition, value) = scope.condition();
        let (from_at, to_at) = if value.is_some() { ("$2", "$3") } else { ("$1", "$2") };
        let sql = format!(
            "SELECT {INTERVAL_COLUMNS} FROM acct_intervals WHERE {condition} AND start_at < {to_at} \
             AND (end_at IS NULL OR end_at > {from_at}) ORDER BY start_at, id"
        );
        let mut query = sqlx::query(&sql);
        if let Some(value) = value {
            query = query.bind(value.to_string());
        }
        let rows = query.bind(from).bind(to).fetch_all(self.db.pool()).await?;
        Ok(rows.iter().map(decode_interval).collect::<Result<_, _>>()?)
    }

    /// Open intervals of `scope`, by run then address.
    pub async fn open_intervals(&self, scope: &Scope) -> Result<Vec<Interval>, StoreError> {
        let (condition, value) = scope.condition();
        let sql = format!(
            "SELECT {INTERVAL_COLUMNS} FROM acct_intervals WHERE {condition} AND end_at IS NULL ORDER BY run_id, address"
        );
        let mut query = sqlx::query(&sql);
        if let Some(value) = value {
            query = query.bind(value.to_string());
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        Ok(rows.iter().map(decode_interval).collect::<Result<_, _>>()?)
    }

    /// Runs with open intervals.
    pub async fn runs_with_open_intervals(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT run_id FROM acct_intervals WHERE end_at IS NULL ORDER BY run_id")
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows.iter().map(|row| row.try_get("run_id")).collect::<Result<_, _>>()?)
    }

    /// A stored mark (the resync watermark), 0 when unset.
    pub async fn mark(&self, name: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT value FROM acct_marks WHERE name = $1")
            .bind(name.to_string())
            .fetch_optional(self.db.pool())
            .await?;
        Ok(match row {
            Some(row) => row.try_get("value")?,
            None => 0,
        })
    }

    pub async fn set_mark(&self, name: &str, value: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO acct_marks (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name.to_string())
        .bind(value)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}
