//! Database access shared by the services: one pool type for PostgreSQL and SQLite (sqlx's
//! `Any` driver, so each query is written once), migrations kept per engine, and isolated
//! databases for tests.
//!
//! Portability rules for the SQL written against [`Db`]: `$1`-style placeholders, `BIGINT`
//! for integers and booleans (0/1; SQLite booleans do not pass through the `Any` driver), `TEXT`
//! for strings and JSON, and `ON CONFLICT` for upserts.

mod migrate;

use anyhow::Context;
pub use migrate::Migration;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// How long a query waits for a pooled connection before its request fails with 503. SQLite is
/// a local file that is never "down", so a wait there is only contention (writers queue behind
/// each other). A PostgreSQL pool waits while the server is unreachable, retrying to connect:
/// a short bound lets a client (or Traefik) get a fast 503 instead of a hang.
fn acquire_timeout(engine: Engine) -> Duration {
    match engine {
        Engine::Sqlite => Duration::from_secs(10),
        Engine::Postgres => Duration::from_secs(3),
    }
}

/// A connection pool and the engine behind it.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
}

impl Db {
    /// Connects to `sqlite://FILE` (the file and its directory are created) or `postgres://...`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        install_default_drivers();
        let engine = engine_of(url)?;
        let max_connections = match engine {
            Engine::Sqlite => 4,
            Engine::Postgres => 16,
        };
        if engine == Engine::Sqlite {
            prepare_sqlite_dir(url)?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout(engine))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        // WAL lets readers proceed during a write, and NORMAL syncs at
                        // checkpoints instead of every commit: a power cut may lose the last
                        // commits, a crash of the process loses nothing.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .with_context(|| format!("cannot connect to the {engine:?} database"))?;
        Ok(Self { pool, engine })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Applies every migration not applied yet, in order, each in its own transaction.
    pub async fn migrate(&self, migrations: &[Migration]) -> anyhow::Result<usize> {
        migrate::run(self, migrations).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// One round trip to the database (readiness checks).
    pub async fn ping(&self) -> anyhow::Result<()> {
        self.pool
            .execute("SELECT 1")
            .await
            .context("the database does not answer")?;
        Ok(())
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }
}

fn engine_of(url: &str) -> anyhow::Result<Engine> {
    if url.starts_with("sqlite:") {
        Ok(Engine::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Engine::Postgres)
    } else {
        anyhow::bail!("unsupported database URL scheme: expected sqlite:// or postgres://")
    }
}

fn prepare_sqlite_dir(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    Ok(())
}

/// True when a query failed on a unique constraint (a duplicate name, say).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|db| db.is_unique_violation())
}

/// True when a query failed on a foreign key (a referenced row is missing or still used).
pub fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|db| db.is_foreign_key_violation())
}

/// True when a query failed because the database cannot be reached right now (down,
/// restarting, refusing connections, or every pooled connection busy past the acquire timeout),
/// as opposed to a fault of the query itself: the request should get a 503 and can be retried.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception) and 57P0x (admin/crash shutdown, cannot
        // connect now): PostgreSQL is going away or not accepting connections yet.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// True when some error in `err`'s source chain is a database error of [`is_unavailable`]'s
/// kind: for layers that only see `anyhow` or their own error enums wrapping sqlx's.
pub fn chain_is_unavailable(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(error) = current {
        if error.downcast_ref::<sqlx::Error>().is_some_and(is_unavailable) {
            return true;
        }
        current = error.source();
    }
    false
}

/// Booleans are stored as 0/1 integers.
pub fn flag(value: bool) -> i64 {
    i64::from(value)
}
