//! Database access shared by the services: one pool type for PostgreSQL and SQLite (sqlx's
//! `Any` driver, so each query is written once), migrations kept per engine, and isolated
//! databases for tests.
//!
//! Portability rules for the SQL written against [`Db`]: `$1`-style placeholders, `BIGINT`
//! for integers and booleans (0/1; SQLite booleans do not pass through the `Any` driver), `TEXT`
//! for strings and JSON, and `ON CONFLICT` for upserts.

mod migrate;
pub mod testing;

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
            .acquire_timeout(Duration::from_secs(10))
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

/// Booleans are stored as 0/1 integers.
pub fn flag(value: bool) -> i64 {
    i64::from(value)
}
