//! `cargo bench -p goterra-acct --bench events`: how many run events per second acct
//! accounts, on SQLite (and PostgreSQL), one at a time as its listeners do. Deploy is replaced
//! by an in-memory [`RunSource`] so that the figure is acct's own cost (the database work and
//! the planning), not deploy's. Each run has three billed instances; the phases are: deploys
//! (intervals opened), redeliveries of the same events (nothing to do), destroys (intervals
//! closed). `GOT_BENCH_QUICK=1`: a smoke run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use goterra_acct::config::AcctConfig;
use goterra_acct::deploy::{RunSource, SourceError};
use goterra_acct::ledger::{Accountant, Outcome};
use goterra_acct::store::AcctStore;
use goterra_core::Event;
use goterra_core::runs::RunAction;
use goterra_core::service_api::{ChangedRuns, NamespaceMembers, RunHistoryEntry, RunUsage, UsageResource};
use goterra_db::Engine;
use goterra_testing::db::TestDb;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

#[derive(Default)]
struct MemoryDeploy {
    runs: RwLock<HashMap<String, RunUsage>>,
}

#[async_trait]
impl RunSource for MemoryDeploy {
    async fn run_usage(&self, run: &str, _attributes: &[String]) -> Result<Option<RunUsage>, SourceError> {
        Ok(self.runs.read().unwrap().get(run).cloned())
    }

    async fn changed_runs(&self, _since: i64) -> Result<ChangedRuns, SourceError> {
        Ok(ChangedRuns::default())
    }

    async fn namespace(&self, _id: &str) -> Result<Option<NamespaceMembers>, SourceError> {
        Ok(None)
    }
}

fn resources() -> Vec<UsageResource> {
    (0..3)
        .map(|index| UsageResource {
            address: format!("null_resource.worker[{index}]"),
            resource_type: "null_resource".into(),
            attributes: Default::default(),
        })
        .collect()
}

async fn phase(accountant: &Accountant, name: &str, events: &[Event], engine: Engine) {
    let started = Instant::now();
    for event in events {
        let outcome = accountant.handle_event(event).await.unwrap();
        assert_ne!(outcome, Outcome::UnknownRun);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{engine:?} {name:<13} {:>6} events in {elapsed:>6.2} s: {:>6.0} events/s",
        events.len(),
        events.len() as f64 / elapsed
    );
}

async fn bench(engine: Engine, runs: usize) {
    let test = TestDb::new(engine).await.unwrap();
    test.db.migrate(goterra_acct::MIGRATIONS).await.unwrap();
    let deploy = Arc::new(MemoryDeploy::default());
    let config =
        AcctConfig::from_value(serde_yaml::from_str("billing: {default: {null_resource: {generic: 0.001}}}").unwrap())
            .unwrap();
    let accountant = Accountant::new(AcctStore::new(test.db.clone()), deploy.clone(), Arc::new(config));
    let ids: Vec<String> = (0..runs).map(|n| format!("run-{n:06}")).collect();
    let event = |action: &str, id: &String| Event::new(action, "alice", id.clone());

    for (n, id) in ids.iter().enumerate() {
        deploy.runs.write().unwrap().insert(
            id.clone(),
            RunUsage {
                run: id.clone(),
                namespace: format!("ns-{}", n % 50),
                endpoint: "local".into(),
                uid: "alice".into(),
                status: "deploy_success".into(),
                history: vec![RunHistoryEntry {
                    ts: 1_000,
                    action: RunAction::Deploy,
                    success: true,
                }],
                has_state: true,
                resources: resources(),
            },
        );
    }
    let deploys: Vec<Event> = ids.iter().map(|id| event("run_deploy_success", id)).collect();
    phase(&accountant, "deploys", &deploys, engine).await;
    phase(&accountant, "redeliveries", &deploys, engine).await;
    for usage in deploy.runs.write().unwrap().values_mut() {
        usage.status = "destroy_success".into();
        usage.has_state = false;
        usage.resources.clear();
        usage.history.push(RunHistoryEntry {
            ts: 2_000,
            action: RunAction::Destroy,
            success: true,
        });
    }
    let destroys: Vec<Event> = ids.iter().map(|id| event("run_destroy_success", id)).collect();
    phase(&accountant, "destroys", &destroys, engine).await;
    let (open,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM acct_intervals WHERE end_at IS NULL")
        .fetch_one(test.db.pool())
        .await
        .unwrap();
    assert_eq!(open, 0);
    test.db.close().await;
}

fn main() {
    let quick = std::env::var("GOT_BENCH_QUICK").is_ok_and(|v| v == "1");
    let runs = if quick { 100 } else { 5_000 };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        bench(Engine::Sqlite, runs).await;
        bench(Engine::Postgres, runs).await;
    });
}
