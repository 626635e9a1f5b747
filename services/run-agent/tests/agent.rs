//! The agent loop on the embedded queue, with real Terraform: through an in-test RunControl,
//! and through the HTTP RunControl against a fake deploy that checks the agent credential.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path, Query, State};
use goterra_bus::{EmbeddedQueue, EmbeddedQueueOptions, RunQueue};
use goterra_client::RunId;
use goterra_core::runs::{AgentAnswer, LogLines, RunAction, RunJob, RunReport, RunSpec, RunStatus};
use goterra_core::{AgentCaller, Authenticator, TokenCodec};
use goterra_run_agent::agent::{Agent, AgentOptions, RunControl};
use goterra_run_agent::control::HttpRunControl;
use goterra_testing::db::{ENGINES, TestDb};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{StateServer, alive, executor_config, spec, state_server, wait_for_file};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TEMPLATE: &str = r#"
resource "null_resource" "vm" {
  triggers = { name = var.name }
}
output "name" { value = var.name }
"#;

const SLOW_TEMPLATE: &str = r#"
resource "null_resource" "slow" {
  provisioner "local-exec" {
    command = "sleep 600 & echo $! > \"$PID_FILE\"; wait"
    environment = { PID_FILE = var.pid_file }
  }
}
"#;

/// Deploy's side, in memory.
#[derive(Default)]
struct FakeControl {
    specs: Mutex<HashMap<String, RunSpec>>,
    started: Mutex<Vec<String>>,
    lines: Mutex<Vec<String>>,
    cancel: Mutex<HashSet<String>>,
    heartbeats: Mutex<u32>,
    released: Mutex<Vec<String>>,
    finished: Mutex<Option<mpsc::UnboundedSender<(String, RunReport)>>>,
}

impl FakeControl {
    fn with_reports() -> (Arc<Self>, mpsc::UnboundedReceiver<(String, RunReport)>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let control = Self::default();
        *control.finished.lock().unwrap() = Some(sender);
        (Arc::new(control), receiver)
    }

    fn answer(&self, id: &str) -> AgentAnswer {
        AgentAnswer {
            cancel: self.cancel.lock().unwrap().contains(id),
            claim: None,
        }
    }
}

#[async_trait]
impl RunControl for FakeControl {
    async fn spec(&self, id: &RunId, action: RunAction) -> anyhow::Result<Option<RunSpec>> {
        Ok(self
            .specs
            .lock()
            .unwrap()
            .get(id.as_str())
            .filter(|spec| spec.action == action)
            .cloned())
    }
    /// Like deploy: an action is claimed once.
    async fn started(&self, id: &RunId) -> anyhow::Result<Option<AgentAnswer>> {
        let mut started = self.started.lock().unwrap();
        if started.iter().any(|claimed| claimed == id.as_str()) {
            return Ok(None);
        }
        started.push(id.to_string());
        Ok(Some(AgentAnswer::default()))
    }
    async fn log(&self, id: &RunId, lines: Vec<String>) -> anyhow::Result<AgentAnswer> {
        self.lines.lock().unwrap().extend(lines);
        Ok(self.answer(id.as_str()))
    }
    async fn heartbeat(&self, id: &RunId) -> anyhow::Result<AgentAnswer> {
        *self.heartbeats.lock().unwrap() += 1;
        Ok(self.answer(id.as_str()))
    }
    async fn finished(&self, id: &RunId, report: &RunReport) -> anyhow::Result<()> {
        if let Some(sender) = self.finished.lock().unwrap().as_ref() {
            sender.send((id.to_string(), report.clone())).unwrap();
        }
        Ok(())
    }
    async fn release(&self, id: &RunId) -> anyhow::Result<()> {
        self.released.lock().unwrap().push(id.to_string());
        Ok(())
    }
}

fn options(work: &std::path::Path) -> AgentOptions {
    AgentOptions {
        concurrency: 2,
        heartbeat: Duration::from_millis(300),
        log_flush: Duration::from_millis(100),
        retry_pause: Duration::from_millis(100),
        executor: executor_config(work),
        ..AgentOptions::default()
    }
}

async fn queue(db: &TestDb) -> EmbeddedQueue {
    EmbeddedQueue::open(
        db.db.clone(),
        EmbeddedQueueOptions {
            name: format!("agent-test-{}", goterra_core::new_id()),
            visibility_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(100),
        },
    )
    .await
    .unwrap()
}

async fn next_report(reports: &mut mpsc::UnboundedReceiver<(String, RunReport)>) -> (String, RunReport) {
    tokio::time::timeout(Duration::from_secs(180), reports.recv())
        .await
        .expect("the agent should report")
        .unwrap()
}

/// The job is acked right after the report: the queue empties.
async fn wait_until_empty(queue: &EmbeddedQueue) {
    for _ in 0..100 {
        if queue.is_empty().await.unwrap() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the job was never acknowledged");
}

fn add_spec(control: &FakeControl, server: &StateServer, template: &str, variables: serde_json::Value) -> RunSpec {
    let spec = spec(
        server,
        RunAction::Deploy,
        template,
        variables,
        &[("password", "agent-secret-991")],
    );
    control.specs.lock().unwrap().insert(spec.run.clone(), spec.clone());
    spec
}

#[tokio::test]
async fn the_agent_runs_queued_jobs_reports_and_acks() {
    for engine in ENGINES {
        let db = TestDb::new(engine).await.unwrap();
        let queue = queue(&db).await;
        let server = state_server().await;
        let work = tempfile::tempdir().unwrap();
        let (control, mut reports) = FakeControl::with_reports();
        let first = add_spec(&control, &server, TEMPLATE, json!({"name": "one"}));
        let second = add_spec(&control, &server, TEMPLATE, json!({"name": "two"}));
        let agent = Agent::new(Arc::new(queue.clone()), control.clone(), options(work.path()));
        let shutdown = CancellationToken::new();
        tokio::spawn(agent.clone().run(shutdown.clone()));
        queue
            .enqueue(&RunJob::new(RunAction::Deploy, &first.run))
            .await
            .unwrap();
        queue
            .enqueue(&RunJob::new(RunAction::Deploy, &second.run))
            .await
            .unwrap();

        let mut results = HashMap::new();
        for _ in 0..2 {
            let (id, report) = next_report(&mut reports).await;
            results.insert(id, report);
        }
        for (run, name) in [(&first.run, "one"), (&second.run, "two")] {
            let report = &results[run];
            assert_eq!(report.status, RunStatus::DeploySuccess, "{engine:?}: {}", report.error);
            assert_eq!(report.outputs["name"]["value"], json!(name));
        }
        wait_until_empty(&queue).await;
        let lines = control.lines.lock().unwrap().join("\n");
        assert!(lines.contains("Apply complete"), "{lines}");
        assert!(!lines.contains("agent-secret-991"));
        assert_eq!(control.started.lock().unwrap().len(), 2);
        assert!(agent.running().is_empty());
        assert_eq!(agent.capacity(), 2);
        shutdown.cancel();
    }
}

#[tokio::test]
async fn a_cancel_answered_to_a_heartbeat_stops_the_run() {
    let db = TestDb::new(goterra_db::Engine::Sqlite).await.unwrap();
    let queue = queue(&db).await;
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let pid_file = out.path().join("child.pid");
    let (control, mut reports) = FakeControl::with_reports();
    let slow = add_spec(&control, &server, SLOW_TEMPLATE, json!({"pid_file": pid_file}));
    let agent = Agent::new(Arc::new(queue.clone()), control.clone(), options(work.path()));
    tokio::spawn(agent.clone().run(CancellationToken::new()));
    queue.enqueue(&RunJob::new(RunAction::Deploy, &slow.run)).await.unwrap();

    let child: u32 = wait_for_file(&pid_file).await.parse().unwrap();
    assert_eq!(agent.running().len(), 1);
    assert_eq!(agent.running()[0].id, slow.run);
    control.cancel.lock().unwrap().insert(slow.run.clone());
    let (id, report) = next_report(&mut reports).await;
    assert_eq!(id, slow.run);
    assert_eq!(report.status, RunStatus::Canceled, "{}", report.error);
    assert!(!alive(child));
    assert!(*control.heartbeats.lock().unwrap() > 0);
    wait_until_empty(&queue).await;
}

/// Stopping: a run that ends within the shutdown grace is reported and acked as usual; the
/// agent's loop returns only then.
#[tokio::test]
async fn a_stopping_agent_lets_a_run_finish_within_its_grace() {
    let db = TestDb::new(goterra_db::Engine::Sqlite).await.unwrap();
    let queue = queue(&db).await;
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let (control, mut reports) = FakeControl::with_reports();
    let run = add_spec(&control, &server, TEMPLATE, json!({"name": "graceful"}));
    let patient = AgentOptions {
        shutdown_grace: Duration::from_secs(120),
        ..options(work.path())
    };
    let agent = Agent::new(Arc::new(queue.clone()), control.clone(), patient);
    let shutdown = CancellationToken::new();
    let stopped = tokio::spawn(agent.clone().run(shutdown.clone()));
    queue.enqueue(&RunJob::new(RunAction::Deploy, &run.run)).await.unwrap();
    while control.started.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(120), stopped)
        .await
        .expect("the agent stops once its run ended")
        .unwrap();
    let (id, report) = reports
        .try_recv()
        .expect("the run was reported before the agent stopped");
    assert_eq!(
        (id.as_str(), report.status),
        (run.run.as_str(), RunStatus::DeploySuccess),
        "{}",
        report.error
    );
    assert!(control.released.lock().unwrap().is_empty());
    assert!(queue.is_empty().await.unwrap(), "the job was acked");
}

/// Stopping: a run still going at the end of the grace has its Terraform stopped, is handed
/// back to deploy and its job put back in the queue, for another agent.
#[tokio::test]
async fn a_stopping_agent_hands_back_a_run_that_outlives_its_grace() {
    let db = TestDb::new(goterra_db::Engine::Sqlite).await.unwrap();
    let queue = queue(&db).await;
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let pid_file = out.path().join("child.pid");
    let (control, mut reports) = FakeControl::with_reports();
    let slow = add_spec(&control, &server, SLOW_TEMPLATE, json!({"pid_file": pid_file}));
    let stopping_soon = AgentOptions {
        shutdown_grace: Duration::from_millis(200),
        ..options(work.path())
    };
    let agent = Agent::new(Arc::new(queue.clone()), control.clone(), stopping_soon);
    let shutdown = CancellationToken::new();
    let stopped = tokio::spawn(agent.clone().run(shutdown.clone()));
    queue.enqueue(&RunJob::new(RunAction::Deploy, &slow.run)).await.unwrap();
    let child: u32 = wait_for_file(&pid_file).await.parse().unwrap();

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(60), stopped)
        .await
        .expect("the agent stops after the grace and the kill grace")
        .unwrap();
    assert!(!alive(child), "Terraform and its children were stopped");
    assert_eq!(*control.released.lock().unwrap(), vec![slow.run.clone()]);
    assert!(reports.try_recv().is_err(), "nothing reported: the run is not over");
    assert!(agent.running().is_empty());

    // The job is back in the queue: a new agent takes it.
    let (control_b, mut reports_b) = FakeControl::with_reports();
    control_b.specs.lock().unwrap().insert(slow.run.clone(), slow.clone());
    let next = Agent::new(Arc::new(queue.clone()), control_b.clone(), options(work.path()));
    tokio::spawn(next.run(CancellationToken::new()));
    for _ in 0..100 {
        if !control_b.started.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        *control_b.started.lock().unwrap(),
        vec![slow.run.clone()],
        "another agent took the job"
    );
    // (Stopped there: its Terraform would sleep for ten minutes.)
    control_b.cancel.lock().unwrap().insert(slow.run.clone());
    let (_, report) = next_report(&mut reports_b).await;
    assert_eq!(report.status, RunStatus::Canceled, "{}", report.error);
}

#[tokio::test]
async fn a_job_deploy_no_longer_wants_is_dropped() {
    let db = TestDb::new(goterra_db::Engine::Sqlite).await.unwrap();
    let queue = queue(&db).await;
    let work = tempfile::tempdir().unwrap();
    let (control, mut reports) = FakeControl::with_reports();
    let agent = Agent::new(Arc::new(queue.clone()), control.clone(), options(work.path()));
    tokio::spawn(agent.run(CancellationToken::new()));
    queue.enqueue(&RunJob::new(RunAction::Destroy, "gone")).await.unwrap();
    wait_until_empty(&queue).await;
    assert!(control.started.lock().unwrap().is_empty());
    assert!(reports.try_recv().is_err());
}

#[tokio::test]
async fn a_job_delivered_twice_runs_once() {
    let db = TestDb::new(goterra_db::Engine::Sqlite).await.unwrap();
    let queue = queue(&db).await;
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let (control, mut reports) = FakeControl::with_reports();
    let run = add_spec(&control, &server, TEMPLATE, json!({"name": "once"}));
    let agent = Agent::new(Arc::new(queue.clone()), control.clone(), options(work.path()));
    tokio::spawn(agent.run(CancellationToken::new()));
    for _ in 0..2 {
        queue.enqueue(&RunJob::new(RunAction::Deploy, &run.run)).await.unwrap();
    }
    let (id, report) = next_report(&mut reports).await;
    assert_eq!(
        (id.as_str(), report.status),
        (run.run.as_str(), RunStatus::DeploySuccess)
    );
    wait_until_empty(&queue).await;
    assert_eq!(control.started.lock().unwrap().len(), 1);
    assert!(reports.try_recv().is_err(), "the duplicate was dropped, not run");
}

/// Deploy's agent routes, as deploy is to implement them, in memory.
#[derive(Clone)]
struct FakeDeploy {
    auth: Arc<Authenticator>,
    control: Arc<FakeControl>,
    agents: Arc<Mutex<HashSet<String>>>,
}

impl axum::extract::FromRef<FakeDeploy> for Arc<Authenticator> {
    fn from_ref(deploy: &FakeDeploy) -> Self {
        deploy.auth.clone()
    }
}

#[derive(serde::Deserialize)]
struct ActionQuery {
    action: RunAction,
}

async fn fake_spec(
    State(deploy): State<FakeDeploy>,
    AgentCaller(agent): AgentCaller,
    Path(id): Path<RunId>,
    Query(query): Query<ActionQuery>,
) -> Result<Json<RunSpec>, axum::http::StatusCode> {
    deploy.agents.lock().unwrap().insert(agent);
    match deploy.control.spec(&id, query.action).await.unwrap() {
        Some(spec) => Ok(Json(spec)),
        None => Err(axum::http::StatusCode::NOT_FOUND),
    }
}

async fn fake_report(
    State(deploy): State<FakeDeploy>,
    AgentCaller(_): AgentCaller,
    Path((id, what)): Path<(RunId, String)>,
    body: axum::body::Bytes,
) -> Result<Json<AgentAnswer>, axum::http::StatusCode> {
    let control = &deploy.control;
    let answer = match what.as_str() {
        "started" => control
            .started(&id)
            .await
            .unwrap()
            .ok_or(axum::http::StatusCode::CONFLICT)?,
        "heartbeat" => control.heartbeat(&id).await.unwrap(),
        "log" => {
            let lines: LogLines = serde_json::from_slice(&body).unwrap();
            control.log(&id, lines.lines).await.unwrap()
        }
        "finished" => {
            let report: RunReport = serde_json::from_slice(&body).unwrap();
            control.finished(&id, &report).await.unwrap();
            AgentAnswer::default()
        }
        other => panic!("unexpected route {other}"),
    };
    Ok(Json(answer))
}

#[tokio::test]
async fn the_http_run_control_speaks_to_deploy_with_an_agent_credential() {
    let tokens =
        Arc::new(TokenCodec::new(&[goterra_core::Sensitive::new(goterra_testing::TEST_SECRET.into())], 24).unwrap());
    let (control, mut reports) = FakeControl::with_reports();
    let deploy = FakeDeploy {
        auth: Arc::new(Authenticator::new(tokens.clone(), None)),
        control: control.clone(),
        agents: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/deploy/agent/run/{id}/spec", axum::routing::get(fake_spec))
        .route("/deploy/agent/run/{id}/{what}", axum::routing::post(fake_report))
        .with_state(deploy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Without the agent credential, deploy's routes refuse.
    let anonymous = reqwest::get(format!("{url}/deploy/agent/run/x/spec?action=deploy"))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let db = TestDb::new(goterra_db::Engine::Sqlite).await.unwrap();
    let queue = queue(&db).await;
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let run = add_spec(&control, &server, TEMPLATE, json!({"name": "http"}));
    let http = Arc::new(HttpRunControl::new(&url, "agent-test", tokens).unwrap());
    let agent = Agent::new(Arc::new(queue.clone()), http, options(work.path()));
    tokio::spawn(agent.run(CancellationToken::new()));
    queue.enqueue(&RunJob::new(RunAction::Deploy, &run.run)).await.unwrap();
    queue
        .enqueue(&RunJob::new(RunAction::Deploy, "unknown-run"))
        .await
        .unwrap();

    let (id, report) = next_report(&mut reports).await;
    assert_eq!(id, run.run);
    assert_eq!(report.status, RunStatus::DeploySuccess, "{}", report.error);
    assert_eq!(report.outputs["name"]["value"], json!("http"));
    wait_until_empty(&queue).await;
    assert!(
        control
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains("Apply complete"))
    );
    assert_eq!(deploy.agents.lock().unwrap().iter().collect::<Vec<_>>(), ["agent-test"]);
}

/// Deploy refuses the reports of an agent whose run another agent took over (it went silent,
/// then came back): the agent hears "stop" and has nothing left to report.
#[tokio::test]
async fn an_agent_whose_run_was_taken_over_stops_and_drops_it() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use goterra_core::runs::CLAIM_HEADER;

    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;
    async fn deploy(
        State(seen): State<Seen>,
        Path((_id, what)): Path<(String, String)>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        let claim = headers
            .get(CLAIM_HEADER)
            .map(|value| value.to_str().unwrap().to_string());
        seen.lock().unwrap().push((what.clone(), claim));
        if what == "started" {
            Json(json!({"cancel": false, "claim": "claim-1"})).into_response()
        } else {
            let refusal = json!({"message": "another agent took this run over: stop and drop the job"});
            (StatusCode::CONFLICT, Json(refusal)).into_response()
        }
    }
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/deploy/agent/run/{id}/{what}", axum::routing::post(deploy))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let tokens =
        Arc::new(TokenCodec::new(&[goterra_core::Sensitive::new(goterra_testing::TEST_SECRET.into())], 24).unwrap());
    let http = HttpRunControl::new(&url, "agent-test", tokens).unwrap();
    let run_1 = RunId::from_trusted("run-1");

    let answer = http.started(&run_1).await.unwrap().unwrap();
    assert_eq!(answer.claim.as_deref(), Some("claim-1"));
    assert!(
        http.heartbeat(&run_1).await.unwrap().cancel,
        "a refused heartbeat means stop"
    );
    assert!(http.log(&run_1, vec!["line".into()]).await.unwrap().cancel);
    let report = RunReport {
        status: RunStatus::Canceled,
        outputs: json!({}),
        duration: 1.0,
        error: String::new(),
        deployment_id: None,
    };
    http.finished(&run_1, &report)
        .await
        .expect("a refused result is not retried: nothing waits for it");

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], ("started".to_string(), None));
    let reports: Vec<_> = seen[1..]
        .iter()
        .map(|(what, claim)| (what.as_str(), claim.as_deref()))
        .collect();
    assert_eq!(
        reports,
        [
            ("heartbeat", Some("claim-1")),
            ("log", Some("claim-1")),
            ("finished", Some("claim-1"))
        ],
        "every report carries the claim"
    );
}
