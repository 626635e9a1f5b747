//! The database layer on every engine, over the per-test databases of `goterra-testing`.
#![allow(clippy::unwrap_used)]

use goterra_db::Migration;
use goterra_testing::db::{ENGINES, TestDb};

const MIGRATIONS: &[Migration] = &[Migration {
    id: "test-0001",
    postgres: "CREATE TABLE things (name TEXT PRIMARY KEY, n BIGINT NOT NULL)",
    sqlite: "CREATE TABLE things (name TEXT PRIMARY KEY, n BIGINT NOT NULL)",
}];

#[tokio::test]
async fn sqlite_runs_in_wal_mode() {
    let test = TestDb::sqlite().await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(test.db.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn migrations_apply_once_and_constraints_map_on_every_engine() {
    for engine in ENGINES {
        let test = TestDb::new(engine).await.unwrap();
        assert_eq!(test.db.migrate(MIGRATIONS).await.unwrap(), 1);
        assert_eq!(test.db.migrate(MIGRATIONS).await.unwrap(), 0, "{engine:?}");
        let insert = || {
            sqlx::query("INSERT INTO things (name, n) VALUES ($1, $2)")
                .bind("a")
                .bind(1_i64)
        };
        insert().execute(test.db.pool()).await.unwrap();
        let err = insert().execute(test.db.pool()).await.unwrap_err();
        assert!(goterra_db::is_unique_violation(&err), "{engine:?}: {err}");
    }
}
