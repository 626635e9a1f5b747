//! Runs with real Terraform, run with `cargo bench -p goterra-deploy --bench runs`.
//!
//! 1. Agent overhead: one template of three `null_resource`s with `local-exec` provisioners,
//!    deployed and destroyed through Goterra (deploy + store + an in-process run agent on SQLite
//!    and the embedded queue; timed from sending the request to deploy's answer to the agent's
//!    `finished` report) and with raw Terraform in a temporary directory (the same files and
//!    variables, taken from the run preview; a local state instead of deploy's `http` backend).
//! 2. Enqueue-to-start latency: a template without resources run again and again, one run at a
//!    time; the time from `POST /deploy/ns/{ns}/run/{app}` answering 201 to the agent's
//!    `started` claim answered by deploy, on SQLite + embedded queue, PostgreSQL + embedded
//!    queue, and PostgreSQL + RabbitMQ.
//!
//! The agent's calls to deploy are timed by a middleware around the platform's router, in this
//! process: no polling is involved in any figure. Prints a Markdown report for
//! `docs/performance.md`. `GOT_BENCH_QUICK=1`: 2 rounds and 10 runs per backend (a smoke run);
//! `GOT_BENCH_ROUNDS`, `GOT_BENCH_LATENCY_RUNS` override the counts.
//!
//! Needs Terraform (`GOT_TERRAFORM_BIN`, default `~/.cache/goterra/tools/bin/terraform`) and the
//! `null` provider in a plugin dir (`GOT_TERRAFORM_PLUGIN_DIR`, default
//! `~/.cache/goterra/tools/plugins`), PostgreSQL (`GOT_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; one database is created per backend and dropped)
//! and RabbitMQ (`GOT_BENCH_AMQP`, default `amqp://guest:guest@127.0.0.1:5672/%2f`; one queue
//! of a unique name per backend).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use goterra_core::config::DatabaseConfig;
use goterra_core::service::Topology;
use goterra_core::{Claims, Config, InProcessEventBus, Platform, Sensitive};
use goterra_db::Engine;
use goterra_run_agent::agent::AgentOptions;
use goterra_run_agent::executor::ExecutorConfig;
use goterra_testing::TEST_SECRET;
use goterra_testing::db::TestDb;
use goterra_testing::identity;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Three "VMs", each a `local-exec` at creation and at destruction (a cut-down `examples/local`
/// cluster: one master and two workers, with no process left running).
const NULL3_TF: &str = r#"
terraform {
  required_providers {
    null = { source = "hashicorp/null" }
  }
}

resource "null_resource" "vm" {
  for_each = toset(["master-0", "worker-0", "worker-1"])

  triggers = {
    name = each.key
    run  = var.goterra_run
  }

  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    command     = "echo \"${self.triggers.name} of ${self.triggers.run} up\""
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = ["/bin/bash", "-c"]
    command     = "echo \"${self.triggers.name} down\""
  }
}

output "vms" {
  value = sort(keys(null_resource.vm))
}
"#;

/// Nothing to create: Terraform starts, finds no resource and no provider, and ends.
const EMPTY_TF: &str = r#"
output "run" {
  value = var.goterra_run
}
"#;

/// Longest wait for one agent call (a run stuck in a queue ends the bench with a message).
const WAIT: Duration = Duration::from_secs(180);

/// `GOT_BENCH_RUNS_SCENARIO`: `overhead` (default: real Terraform, the agent's overhead and
/// the one-at-a-time latency) or `throughput` (`GOT_BENCH_THROUGHPUT_RUNS`, default 1 000, runs
/// queued at once; meant for a no-op script as `GOT_TERRAFORM_BIN`, see `scripts/bench/runs.sh`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Overhead,
    Throughput,
}

fn scenario() -> Scenario {
    match std::env::var("GOT_BENCH_RUNS_SCENARIO").as_deref() {
        Ok("throughput") => Scenario::Throughput,
        _ => Scenario::Overhead,
    }
}

struct Settings {
    rounds: usize,
    latency_runs: usize,
    amqp: String,
    terraform: PathBuf,
    plugins: PathBuf,
}

fn tool(env: &str, default: &str) -> PathBuf {
    std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(default))
}

fn count(env: &str, default: usize) -> usize {
    std::env::var(env)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

fn settings() -> Settings {
    let quick = std::env::var("GOT_BENCH_QUICK").is_ok_and(|v| v == "1");
    let terraform = tool("GOT_TERRAFORM_BIN", ".cache/goterra/tools/bin/terraform");
    let plugins = tool("GOT_TERRAFORM_PLUGIN_DIR", ".cache/goterra/tools/plugins");
    if !terraform.is_file() {
        eprintln!(
            "runs bench: no Terraform binary at {} (set GOT_TERRAFORM_BIN, or run .ci/run once to install it)",
            terraform.display()
        );
        std::process::exit(2);
    }
    if scenario() == Scenario::Overhead && !plugins.join("registry.terraform.io/hashicorp/null").is_dir() {
        eprintln!(
            "runs bench: no null provider under {} (set GOT_TERRAFORM_PLUGIN_DIR, or run .ci/run once): \
             terraform init runs offline",
            plugins.display()
        );
        std::process::exit(2);
    }
    Settings {
        rounds: count("GOT_BENCH_ROUNDS", if quick { 2 } else { 10 }),
        latency_runs: count("GOT_BENCH_LATENCY_RUNS", if quick { 10 } else { 50 }),
        amqp: std::env::var("GOT_BENCH_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        terraform,
        plugins,
    }
}

/// An agent call, as deploy answered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Mark {
    /// `GET .../spec` arrived: the queue delivered the job to the agent.
    Spec,
    /// `POST .../started` answered 200: the agent holds the action, the run is in progress.
    Started,
    /// `POST .../finished` answered 200: the run has its final status.
    Finished,
}

/// When deploy saw each agent call, per run.
#[derive(Default)]
struct Marks {
    seen: Mutex<HashMap<(String, Mark), Vec<Instant>>>,
    changed: Notify,
}

impl Marks {
    fn add(&self, id: &str, mark: Mark, at: Instant) {
        self.seen
            .lock()
            .unwrap()
            .entry((id.to_string(), mark))
            .or_default()
            .push(at);
        self.changed.notify_waiters();
    }

    fn first_after(&self, id: &str, mark: Mark, after: Instant) -> Option<Instant> {
        let seen = self.seen.lock().unwrap();
        seen.get(&(id.to_string(), mark))?
            .iter()
            .copied()
            .find(|at| *at >= after)
    }

    /// The first `mark` of run `id` at or after `after`, waiting for it.
    async fn wait(&self, id: &str, mark: Mark, after: Instant) -> Instant {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(at) = self.first_after(id, mark, after) {
                return at;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("run {id}: no {mark:?} call from the agent within {WAIT:?}");
            }
        }
    }
}

/// Records the agent's calls (`/deploy/agent/run/{id}/{spec,started,finished}`).
async fn record(State(marks): State<Arc<Marks>>, request: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let call = request
        .uri()
        .path()
        .strip_prefix("/deploy/agent/run/")
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(id, what)| {
            let mark = match what {
                "spec" => Mark::Spec,
                "started" => Mark::Started,
                "finished" => Mark::Finished,
                _ => return None,
            };
            Some((id.to_string(), mark))
        });
    let response = next.run(request).await;
    if let Some((id, mark)) = call {
        if mark == Mark::Spec {
            marks.add(&id, mark, arrived);
        } else if response.status().is_success() {
            marks.add(&id, mark, Instant::now());
        }
    }
    response
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    SqliteEmbedded,
    PostgresEmbedded,
    PostgresRabbit,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Self::SqliteEmbedded => "SQLite + embedded queue",
            Self::PostgresEmbedded => "PostgreSQL + embedded queue",
            Self::PostgresRabbit => "PostgreSQL + RabbitMQ",
        }
    }
}

/// Deploy and the store on one set of backends, with the demo namespace and endpoint (alice is
/// a member) and one run agent in this process.
struct Bench {
    url: String,
    platform: Platform,
    marks: Arc<Marks>,
    client: reqwest::Client,
    ns: String,
    endpoint: String,
    queue: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
    /// Stops the agent loop.
    agent_stop: Box<dyn FnOnce() + Send>,
    _db: TestDb,
    _data_dir: tempfile::TempDir,
    _work_dir: tempfile::TempDir,
}

impl Bench {
    async fn start(backend: Backend, settings: &Settings) -> Self {
        Self::start_with_agents(backend, settings, 1).await
    }

    /// With `agents` run agents in this process (each with the default concurrency).
    async fn start_with_agents(backend: Backend, settings: &Settings, agents: usize) -> Self {
        let engine = match backend {
            Backend::SqliteEmbedded => Engine::Sqlite,
            Backend::PostgresEmbedded | Backend::PostgresRabbit => Engine::Postgres,
        };
        let db = TestDb::new(engine).await.unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let work_dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let queue = format!("bench-runs-{}", goterra_core::new_id());
        let config = Config {
            url: url.clone(),
            data_dir: data_dir.path().to_path_buf(),
            fernet: vec![Sensitive::new(TEST_SECRET.to_string())],
            database: DatabaseConfig {
                url: Some(Sensitive::new(db.url.clone())),
            },
            amqp: (backend == Backend::PostgresRabbit).then(|| Sensitive::new(settings.amqp.clone())),
            run_queue: queue.clone(),
            ..Config::default()
        };
        let (platform, router) = goterra_core::service::build(
            config,
            Topology::AllInOne,
            &[goterra_deploy::spec(), goterra_store::spec()],
            Arc::new(InProcessEventBus::new()),
        )
        .await
        .unwrap();
        let marks = Arc::new(Marks::default());
        let router = router.layer(axum::middleware::from_fn_with_state(marks.clone(), record));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = goterra_core::http::serve(listener, router, async {
                let _ = stopped.await;
            })
            .await;
        });

        let options = AgentOptions {
            executor: ExecutorConfig {
                terraform_bin: settings.terraform.clone(),
                plugin_dir: Some(settings.plugins.clone()),
                work_dir: Some(work_dir.path().to_path_buf()),
                ..ExecutorConfig::default()
            },
            ..AgentOptions::default()
        };
        let mut stops = Vec::new();
        for _ in 0..agents {
            let agent_queue = goterra_bus::platform_run_queue(&platform);
            let (_agent, stop) = goterra_run_agent::start_agent(&platform, agent_queue, options.clone()).unwrap();
            stops.push(stop);
        }

        let admin = goterra_client::Client::new(&url)
            .unwrap()
            .with_token(platform.tokens.issue(&Claims::for_user(&identity("admin"))));
        let demo = goterra_deploy::demo::load(&admin, &data_dir.path().join("vms"))
            .await
            .unwrap();
        let bench = Self {
            url,
            platform,
            marks,
            client: reqwest::Client::new(),
            ns: demo.namespace,
            endpoint: demo.endpoint,
            queue,
            shutdown: Some(shutdown),
            server,
            agent_stop: Box::new(move || stops.iter().for_each(|stop| stop.cancel())),
            _db: db,
            _data_dir: data_dir,
            _work_dir: work_dir,
        };
        let (status, reply) = bench
            .call(
                Method::PUT,
                &format!("/deploy/ns/{}", bench.ns),
                "admin",
                Some(json!({"members": ["alice"]})),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        bench
    }

    async fn call(&self, method: Method, path: &str, uid: &str, body: Option<Value>) -> (u16, Value) {
        let token = self.platform.tokens.issue(&Claims::for_user(&identity(uid)));
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A template holding `tf` for the `local` kind and its application, made by the admin (the
    /// templates use `local-exec` or nothing); returns the application's id.
    async fn app(&self, name: &str, tf: &str) -> String {
        let (status, reply) = self
            .call(
                Method::POST,
                &format!("/deploy/ns/{}/template", self.ns),
                "admin",
                Some(json!({"name": name, "data": {"local": tf}})),
            )
            .await;
        assert_eq!(status, 201, "{reply}");
        let template = reply["template"].as_str().unwrap().to_string();
        let (status, reply) = self
            .call(
                Method::POST,
                &format!("/deploy/ns/{}/app", self.ns),
                "admin",
                Some(json!({"name": name, "template": template})),
            )
            .await;
        assert_eq!(status, 201, "{reply}");
        reply["app"].as_str().unwrap().to_string()
    }

    fn run_body(&self) -> Value {
        json!({"name": "bench", "endpoint": self.endpoint})
    }

    fn run_path(&self, id: &str) -> String {
        format!("/deploy/ns/{}/run/{id}", self.ns)
    }

    /// Starts a run of `app` as alice: its id and when the 201 arrived.
    async fn post_run(&self, app: &str) -> (String, Instant) {
        let (status, reply) = self
            .call(
                Method::POST,
                &format!("/deploy/ns/{}/run/{app}", self.ns),
                "alice",
                Some(self.run_body()),
            )
            .await;
        let answered = Instant::now();
        assert_eq!(status, 201, "{reply}");
        (reply["run"].as_str().unwrap().to_string(), answered)
    }

    /// The run once its action has finished; it must have ended in `wanted`.
    async fn ended(&self, id: &str, wanted: &str) -> Value {
        let (status, run) = self.call(Method::GET, &self.run_path(id), "alice", None).await;
        assert_eq!(status, 200, "{run}");
        if run["status"] != wanted {
            let (_, log) = self
                .call(Method::GET, &format!("{}/log", self.run_path(id)), "alice", None)
                .await;
            panic!(
                "run {id} ended in {} instead of {wanted}: {run}\nlog: {log}",
                run["status"]
            );
        }
        run
    }

    /// The files the agent would write for a run of `app`, sensitive values left out.
    async fn preview(&self, app: &str) -> Value {
        let (status, preview) = self
            .call(
                Method::POST,
                &format!("/deploy/ns/{}/run/{app}/terraform", self.ns),
                "alice",
                Some(self.run_body()),
            )
            .await;
        assert_eq!(status, 200, "{preview}");
        preview
    }

    async fn stop(mut self) {
        (self.agent_stop)();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.server).await;
        self.server.abort();
        self.platform.db.pool().close().await;
        if self.platform.config.amqp.is_some() {
            // Best effort: the queue is durable and would outlive the bench.
            let _ = std::process::Command::new("rabbitmqctl")
                .args(["-q", "delete_queue", &self.queue])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// One action through Goterra, from sending the request to deploy's answer to `finished`.
struct Timed {
    /// Request sent → its answer (deploy checks, store deployment, queueing).
    request: Duration,
    /// Answer → the agent's `started` claim answered.
    claim: Duration,
    /// The agent's own time for the action (the run's `duration`: files, Terraform, output).
    terraform: Duration,
    /// Request sent → `finished` answered: the total.
    total: Duration,
}

async fn goterra_deploy(bench: &Bench, app: &str) -> (String, Timed) {
    let sent = Instant::now();
    let (id, answered) = bench.post_run(app).await;
    let claimed = bench.marks.wait(&id, Mark::Started, sent).await;
    let finished = bench.marks.wait(&id, Mark::Finished, sent).await;
    let run = bench.ended(&id, "deploy_success").await;
    let timed = Timed {
        request: answered - sent,
        claim: claimed.saturating_duration_since(answered),
        terraform: Duration::from_secs_f64(run["duration"].as_f64().unwrap_or_default()),
        total: finished - sent,
    };
    (id, timed)
}

async fn goterra_destroy(bench: &Bench, id: &str) -> Timed {
    let sent = Instant::now();
    let (status, reply) = bench.call(Method::DELETE, &bench.run_path(id), "alice", None).await;
    let answered = Instant::now();
    assert_eq!(status, 200, "{reply}");
    let claimed = bench.marks.wait(id, Mark::Started, sent).await;
    let finished = bench.marks.wait(id, Mark::Finished, sent).await;
    let run = bench.ended(id, "destroy_success").await;
    Timed {
        request: answered - sent,
        claim: claimed.saturating_duration_since(answered),
        terraform: Duration::from_secs_f64(run["duration"].as_f64().unwrap_or_default()),
        total: finished - sent,
    }
}

/// The preview's files in a directory of their own, run by hand.
struct RawTerraform<'a> {
    settings: &'a Settings,
    preview: &'a Value,
}

/// Raw Terraform's time per command.
struct RawTimes {
    init: Duration,
    apply: Duration,
    output: Duration,
    destroy: Duration,
}

impl RawTerraform<'_> {
    fn write(&self, dir: &Path) {
        for (file, key) in [
            ("app.tf", "app.tf"),
            ("goterra_variables.tf", "variables.tf"),
            ("terraform.tfvars.json", "terraform.tfvars.json"),
        ] {
            std::fs::write(dir.join(file), self.preview[key].as_str().unwrap()).unwrap();
        }
    }

    /// `terraform <args>` in `dir` with the environment the agent gives it (with placeholder
    /// values for the sensitive variables, which the preview leaves out).
    async fn terraform(&self, dir: &Path, args: &[&str]) -> Duration {
        let mut command = tokio::process::Command::new(&self.settings.terraform);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .stdin(std::process::Stdio::null());
        for name in self.preview["sensitive"].as_array().into_iter().flatten() {
            command.env(format!("TF_VAR_{}", name.as_str().unwrap()), "bench-placeholder");
        }
        let started = Instant::now();
        let output = command.output().await.unwrap();
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "terraform {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        elapsed
    }

    async fn round(&self) -> RawTimes {
        let dir = tempfile::tempdir().unwrap();
        self.write(dir.path());
        let plugin_dir = format!("-plugin-dir={}", self.settings.plugins.display());
        let init = self
            .terraform(dir.path(), &["init", "-input=false", "-no-color", &plugin_dir])
            .await;
        let apply = self
            .terraform(dir.path(), &["apply", "-auto-approve", "-input=false", "-no-color"])
            .await;
        let output = self.terraform(dir.path(), &["output", "-json", "-no-color"]).await;
        let destroy = self
            .terraform(dir.path(), &["destroy", "-auto-approve", "-input=false", "-no-color"])
            .await;
        RawTimes {
            init,
            apply,
            output,
            destroy,
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Sorted copies, for the statistics below.
fn sorted(values: &[f64]) -> Vec<f64> {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values
}

fn median(values: &[f64]) -> f64 {
    let values = sorted(values);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Nearest-rank percentile.
fn percentile(values: &[f64], p: f64) -> f64 {
    let values = sorted(values);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn min(values: &[f64]) -> f64 {
    sorted(values)[0]
}

fn max(values: &[f64]) -> f64 {
    *sorted(values).last().unwrap()
}

async fn overhead(settings: &Settings) {
    let bench = Bench::start(Backend::SqliteEmbedded, settings).await;
    let app = bench.app("null3", NULL3_TF).await;
    let preview = bench.preview(&app).await;
    let raw = RawTerraform {
        settings,
        preview: &preview,
    };

    // One round of each, not counted: caches, the first connections, the first SQLite pages.
    let (id, _) = goterra_deploy(&bench, &app).await;
    goterra_destroy(&bench, &id).await;
    raw.round().await;

    let mut deploys = Vec::new();
    let mut destroys = Vec::new();
    let mut raws = Vec::new();
    for round in 0..settings.rounds {
        // Alternate which goes first, so that neither always follows the other.
        if round % 2 == 1 {
            raws.push(raw.round().await);
        }
        let (id, deploy) = goterra_deploy(&bench, &app).await;
        deploys.push(deploy);
        destroys.push(goterra_destroy(&bench, &id).await);
        if round % 2 == 0 {
            raws.push(raw.round().await);
        }
        eprintln!("overhead: round {} of {} done", round + 1, settings.rounds);
    }
    bench.stop().await;

    let column = |timed: &[Timed], field: fn(&Timed) -> f64| -> Vec<f64> { timed.iter().map(field).collect() };
    let raw_column = |field: fn(&RawTimes) -> Duration| -> Vec<f64> { raws.iter().map(|t| ms(field(t))).collect() };
    let total = |t: &Timed| ms(t.total);
    let rest = |t: &Timed| ms(t.total) - ms(t.request) - ms(t.claim) - ms(t.terraform);
    let raw_deploy = raw_column(|t| t.init + t.apply + t.output);
    let raw_destroy = raw_column(|t| t.destroy);
    let raw_init_destroy = raw_column(|t| t.init + t.destroy);
    let goterra_deploy_total = column(&deploys, total);
    let goterra_destroy_total = column(&destroys, total);
    // Each Goterra action against the raw round run next to it.
    let paired = |goterra: &[f64], raw: &[f64]| -> Vec<f64> { goterra.iter().zip(raw).map(|(g, r)| g - r).collect() };

    println!(
        "### Agent overhead: 3 `null_resource`s with `local-exec`, {} rounds (ms)\n",
        settings.rounds
    );
    println!("| what | median | min | max |");
    println!("|---|---|---|---|");
    let row = |what: &str, values: &[f64]| {
        println!(
            "| {what} | {:.0} | {:.0} | {:.0} |",
            median(values),
            min(values),
            max(values)
        );
    };
    row("raw deploy: `init` + `apply` + `output -json`", &raw_deploy);
    row("… `init`", &raw_column(|t| t.init));
    row("… `apply`", &raw_column(|t| t.apply));
    row("… `output -json`", &raw_column(|t| t.output));
    row("Goterra deploy: POST sent → `finished` answered", &goterra_deploy_total);
    row("… POST → 201", &column(&deploys, |t| ms(t.request)));
    row("… 201 → `started` claim", &column(&deploys, |t| ms(t.claim)));
    row(
        "… the run's `duration` (agent: files, `init`, `apply`, `output`)",
        &column(&deploys, |t| ms(t.terraform)),
    );
    row(
        "… the rest (agent: after the claim, before and after Terraform)",
        &column(&deploys, rest),
    );
    row(
        "**deploy overhead**: Goterra − raw, per round",
        &paired(&goterra_deploy_total, &raw_deploy),
    );
    row("raw destroy: `destroy` in the applied directory", &raw_destroy);
    row(
        "raw destroy: `init` + `destroy` (the agent's commands)",
        &raw_init_destroy,
    );
    row(
        "Goterra destroy: DELETE sent → `finished` answered",
        &goterra_destroy_total,
    );
    row("… DELETE → 200", &column(&destroys, |t| ms(t.request)));
    row("… 200 → `started` claim", &column(&destroys, |t| ms(t.claim)));
    row(
        "… the run's `duration` (agent: files, `init`, `destroy`)",
        &column(&destroys, |t| ms(t.terraform)),
    );
    row("… the rest", &column(&destroys, rest));
    row(
        "**destroy overhead**: Goterra − raw `destroy`, per round",
        &paired(&goterra_destroy_total, &raw_destroy),
    );
    row(
        "**destroy overhead**: Goterra − raw `init` + `destroy`, per round",
        &paired(&goterra_destroy_total, &raw_init_destroy),
    );
    println!(
        "\nmedian Goterra − median raw: deploy {:+.0} ms ({:+.1} %), destroy {:+.0} ms against `destroy`, {:+.0} ms \
         against `init` + `destroy`\n",
        median(&goterra_deploy_total) - median(&raw_deploy),
        (median(&goterra_deploy_total) / median(&raw_deploy) - 1.0) * 100.0,
        median(&goterra_destroy_total) - median(&raw_destroy),
        median(&goterra_destroy_total) - median(&raw_init_destroy),
    );
}

struct Latency {
    backend: Backend,
    /// POST sent → 201.
    request: Vec<f64>,
    /// 201 → the agent's `GET .../spec` (the queue delivered the job); negative when the job
    /// arrived before the client read the 201.
    delivered: Vec<f64>,
    /// 201 → `started` answered.
    claimed: Vec<f64>,
}

async fn latency(backend: Backend, settings: &Settings) -> Latency {
    let bench = Bench::start(backend, settings).await;
    let app = bench.app("empty", EMPTY_TF).await;
    let mut result = Latency {
        backend,
        request: Vec::new(),
        delivered: Vec::new(),
        claimed: Vec::new(),
    };
    let warm_up = 3;
    for run in 0..warm_up + settings.latency_runs {
        let sent = Instant::now();
        let (id, answered) = bench.post_run(&app).await;
        let delivered = bench.marks.wait(&id, Mark::Spec, sent).await;
        let claimed = bench.marks.wait(&id, Mark::Started, sent).await;
        bench.marks.wait(&id, Mark::Finished, sent).await;
        bench.ended(&id, "deploy_success").await;
        if run >= warm_up {
            let signed = |at: Instant| {
                if at >= answered {
                    ms(at - answered)
                } else {
                    -ms(answered - at)
                }
            };
            result.request.push(ms(answered - sent));
            result.delivered.push(signed(delivered));
            result.claimed.push(signed(claimed));
        }
    }
    eprintln!("latency: {} done", backend.label());
    bench.stop().await;
    result
}

/// `runs` runs of an empty template posted at once (32 requests in flight) to `agents` agents:
/// runs/s from the first POST to the last `finished`, and the 201 → claim latency.
async fn throughput(backend: Backend, settings: &Settings, agents: usize, runs: usize) {
    // Shared by the posting futures of this one task (`buffer_unordered`), never across threads.
    let bench = std::rc::Rc::new(Bench::start_with_agents(backend, settings, agents).await);
    let app = bench.app("empty", EMPTY_TF).await;
    // Warm-up: connections, the first pages, the agents' first claims.
    for _ in 0..4 {
        let sent = Instant::now();
        let (id, _) = bench.post_run(&app).await;
        bench.marks.wait(&id, Mark::Finished, sent).await;
    }
    let started = Instant::now();
    let posted: Vec<(String, Instant)> = futures_util::stream::iter(0..runs)
        .map(|_| {
            let (bench, app) = (bench.clone(), app.clone());
            async move { bench.post_run(&app).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let all_posted = started.elapsed();
    let mut claims = Vec::with_capacity(runs);
    let mut last_finished = started;
    for (id, answered) in &posted {
        let claimed = bench.marks.wait(id, Mark::Started, started).await;
        let finished = bench.marks.wait(id, Mark::Finished, started).await;
        last_finished = last_finished.max(finished);
        claims.push(if claimed >= *answered {
            ms(claimed - *answered)
        } else {
            -ms(*answered - claimed)
        });
    }
    for (id, _) in posted.iter().step_by(100) {
        bench.ended(id, "deploy_success").await;
    }
    let elapsed = last_finished - started;
    println!(
        "| {} | {agents} | {runs} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} |",
        backend.label(),
        ms(all_posted) / 1000.0,
        runs as f64 / elapsed.as_secs_f64(),
        median(&claims),
        percentile(&claims, 90.0),
        percentile(&claims, 99.0),
    );
    match std::rc::Rc::try_unwrap(bench) {
        Ok(bench) => bench.stop().await,
        Err(_) => unreachable!("every request finished"),
    }
}

fn throughput_main(settings: &Settings) {
    let runs = count("GOT_BENCH_THROUGHPUT_RUNS", 1000);
    let agents = count("GOT_BENCH_AGENTS", 4);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "### Runs queued at once: {runs} runs of an empty template, `{}` as Terraform\n",
            settings.terraform.display()
        );
        println!("| backend | agents | runs | all POSTs answered (s) | runs/s (first POST → last `finished`) | 201 → claimed p50 ms | p90 | p99 |");
        println!("|---|---|---|---|---|---|---|---|");
        for backend in [Backend::SqliteEmbedded, Backend::PostgresRabbit] {
            throughput(backend, settings, agents, runs).await;
            eprintln!("throughput: {} done, load average {}", backend.label(), load_average());
        }
    });
}

/// `/proc/loadavg`'s first three fields, to note the machine's load beside the figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let settings = settings();
    if scenario() == Scenario::Throughput {
        throughput_main(&settings);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let version = std::process::Command::new(&settings.terraform)
            .arg("version")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .map(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default();
        println!(
            "{version}, {} cores\n",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );

        eprintln!("load average at the start: {}", load_average());
        overhead(&settings).await;
        eprintln!("load average after the overhead rounds: {}", load_average());

        let mut rows = Vec::new();
        for backend in [
            Backend::SqliteEmbedded,
            Backend::PostgresEmbedded,
            Backend::PostgresRabbit,
        ] {
            rows.push(latency(backend, &settings).await);
            eprintln!("load average: {}", load_average());
        }
        println!(
            "### Enqueue to start: a template without resources, {} runs one at a time (ms)\n",
            settings.latency_runs
        );
        println!("| backend | POST → 201 p50 | 201 → job delivered p50 | 201 → claimed p50 | p90 | p99 | max | min |");
        println!("|---|---|---|---|---|---|---|---|");
        for row in rows {
            println!(
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                row.backend.label(),
                median(&row.request),
                median(&row.delivered),
                median(&row.claimed),
                percentile(&row.claimed, 90.0),
                percentile(&row.claimed, 99.0),
                max(&row.claimed),
                min(&row.claimed),
            );
        }
    });
}
