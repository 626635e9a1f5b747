//! The Terraform state of each run and its lock (`deploy_run_states`). The state is stored
//! sealed (encrypted by the caller); writes respect the lock.

use super::support::{StorageResult, now};
use goterra_client::ids::RunId;
use goterra_db::Db;

/// A run's stored state row.
pub struct StoredState {
    pub sealed: Option<String>,
    pub lock_id: Option<String>,
    pub lock_info: Option<String>,
}

#[derive(Clone, Copy)]
pub struct StateRepo<'a> {
    db: &'a Db,
}

impl<'a> StateRepo<'a> {
    pub fn new(db: &'a Db) -> Self {
        Self { db }
    }

    pub async fn find(&self, run_id: &RunId) -> StorageResult<Option<StoredState>> {
        let row: Option<(Option<String>, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT state_sealed, lock_id, lock_info FROM deploy_run_states WHERE run_id = $1")
                .bind(run_id.to_string())
                .fetch_optional(self.db.pool())
                .await?;
        Ok(row.map(|(sealed, lock_id, lock_info)| StoredState {
            sealed,
            lock_id,
            lock_info,
        }))
    }

    async fn ensure_row(&self, run_id: &RunId) -> StorageResult<()> {
        sqlx::query(
            "INSERT INTO deploy_run_states (run_id, updated_at) VALUES ($1, $2) ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(run_id.to_string())
        .bind(now())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Writes the state when unlocked or when `lock_id` holds the lock; false when locked.
    pub async fn write(&self, run_id: &RunId, sealed: String, lock_id: &str) -> StorageResult<bool> {
        self.ensure_row(run_id).await?;
        let done = sqlx::query(
            "UPDATE deploy_run_states SET state_sealed = $2, updated_at = $3 \
             WHERE run_id = $1 AND (lock_id IS NULL OR lock_id = $4)",
        )
        .bind(run_id.to_string())
        .bind(sealed)
        .bind(now())
        .bind(lock_id.to_string())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes the lock; false when someone holds it.
    pub async fn lock(&self, run_id: &RunId, lock_id: &str, info: &str) -> StorageResult<bool> {
        self.ensure_row(run_id).await?;
        let done = sqlx::query(
            "UPDATE deploy_run_states SET lock_id = $2, lock_info = $3, updated_at = $4 \
             WHERE run_id = $1 AND lock_id IS NULL",
        )
        .bind(run_id.to_string())
        .bind(lock_id.to_string())
        .bind(info.to_string())
        .bind(now())
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Releases the lock held by `lock_id`.
    pub async fn unlock(&self, run_id: &RunId, lock_id: &str) -> StorageResult<()> {
        sqlx::query(
            "UPDATE deploy_run_states SET lock_id = NULL, lock_info = NULL, updated_at = $3 \
             WHERE run_id = $1 AND lock_id = $2",
        )
        .bind(run_id.to_string())
        .bind(lock_id.to_string())
        .bind(now())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Empties the state (Terraform's `DELETE`).
    pub async fn clear(&self, run_id: &RunId) -> StorageResult<()> {
        sqlx::query("UPDATE deploy_run_states SET state_sealed = NULL, updated_at = $2 WHERE run_id = $1")
            .bind(run_id.to_string())
            .bind(now())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Drops the lock of a run whose agent is known to be gone (the sweep re-queues the run, or
    /// another agent takes it over): the dead agent's Terraform can no longer unlock, and the
    /// next agent must be able to apply.
    pub async fn release_abandoned_lock(&self, run_id: &RunId) -> StorageResult<()> {
        let released = sqlx::query(
            "UPDATE deploy_run_states SET lock_id = NULL, lock_info = NULL, updated_at = $2 \
             WHERE run_id = $1 AND lock_id IS NOT NULL",
        )
        .bind(run_id.to_string())
        .bind(now())
        .execute(self.db.pool())
        .await?;
        if released.rows_affected() > 0 {
            tracing::warn!(run = %run_id, "state lock of the silent agent released");
        }
        Ok(())
    }
}
