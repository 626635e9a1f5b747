use crate::{Db, Engine};
use anyhow::Context;
use sqlx::Acquire;

/// One schema change, written once per engine. `id`s are applied in slice order and never
/// change once released.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub id: &'static str,
    pub postgres: &'static str,
    pub sqlite: &'static str,
}

/// Arbitrary constant for PostgreSQL's advisory lock, so that two processes starting together
/// do not both migrate.
const MIGRATION_LOCK: i64 = 0x0067_6f74_6572_7261;

pub(crate) async fn run(db: &Db, migrations: &[Migration]) -> anyhow::Result<usize> {
    let mut conn = db.pool().acquire().await.context("cannot get a database connection")?;
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS goterra_migrations (id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .execute(&mut *conn)
        .await
        .context("cannot create the migrations table")?;
    if db.engine() == Engine::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .context("cannot take the migration lock")?;
    }
    let result = apply_pending(db.engine(), &mut conn, migrations).await;
    if db.engine() == Engine::Postgres {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
    }
    result
}

async fn apply_pending(
    engine: Engine,
    conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    migrations: &[Migration],
) -> anyhow::Result<usize> {
    let mut applied = 0;
    for migration in migrations {
        let done: Option<(String,)> = sqlx::query_as("SELECT id FROM goterra_migrations WHERE id = $1")
            .bind(migration.id)
            .fetch_optional(&mut **conn)
            .await?;
        if done.is_some() {
            continue;
        }
        let sql = match engine {
            Engine::Postgres => migration.postgres,
            Engine::Sqlite => migration.sqlite,
        };
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("migration {} failed", migration.id))?;
        sqlx::query("INSERT INTO goterra_migrations (id, applied_at) VALUES ($1, $2)")
            .bind(migration.id)
            .bind(now_secs())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(migration = migration.id, "migration applied");
        applied += 1;
    }
    Ok(applied)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
