#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Runs end to end with real Terraform, on both sets of backends:
//! - embedded: SQLite and the embedded queue, with the run agent in this process;
//! - production: PostgreSQL and RabbitMQ, with the agent as its own process
//!   (`goterra serve run-agent`), as it runs beside a real deployment.
//!
//! The `examples/local` demo (loaded as `goterra up --demo` loads it) deploys a master and two
//! workers; the workers get the master's token through the store; the run's statuses, outputs,
//! log and resources are checked; destroy stops the "VMs" and deletes the store data. Other tests
//! cover a missing Terraform binary, cancel, and an agent killed in the middle of an apply.
//!
//! Terraform comes from `$GOT_TERRAFORM_BIN` (providers in `$GOT_TERRAFORM_PLUGIN_DIR`), else
//! `~/.cache/goterra/tools` where `.ci/run` installs it. Without it these tests are skipped with
//! a message, except under CI (`CI` set), where they fail.

use goterra_core::Claims;
use goterra_db::Engine;
use goterra_deploy::demo::Demo;
use goterra_run_agent::agent::AgentOptions;
use goterra_run_agent::executor::ExecutorConfig;
use goterra_testing::identity;
use goterra_testing::{SpawnedServer, TEST_SECRET, TestServer, free_port};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[path = "support/processes.rs"]
mod processes;
use processes::descendants;

const GOTERRA: &str = env!("CARGO_BIN_EXE_goterra");
const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const SECRET_INPUT: &str = "e2e-secret-value-xyz";

/// A template whose only resource runs `sleep` the first time (the marker file does not exist
/// yet) and returns at once afterwards: an apply that can be caught in the middle, then
/// finished by another agent.
const SLOW_TF: &str = r#"
terraform {
  required_providers {
    null = { source = "hashicorp/null" }
  }
}

resource "null_resource" "slow" {
  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    environment = { MARKER = var.marker }
    command     = "if [ -e \"$MARKER\" ]; then exit 0; fi; touch \"$MARKER\"; exec sleep 600"
  }
}
"#;

/// A template whose only resource takes a few seconds to create: an apply still running when
/// its agent is told to stop, that ends within the agent's shutdown grace.
const PAUSE_TF: &str = r#"
terraform {
  required_providers {
    null = { source = "hashicorp/null" }
  }
}

resource "null_resource" "pause" {
  provisioner "local-exec" {
    command = "sleep 4"
  }
}
"#;

#[derive(Clone)]
struct Terraform {
    bin: PathBuf,
    plugins: Option<PathBuf>,
}

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var("HOME").ok().map(|home| PathBuf::from(home).join(default)))?;
    path.exists().then_some(path)
}

fn terraform() -> Option<Terraform> {
    let Some(bin) = tool("GOT_TERRAFORM_BIN", ".cache/goterra/tools/bin/terraform") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide Terraform: run the tests through .ci/run"
        );
        eprintln!("skipped: no Terraform binary (set GOT_TERRAFORM_BIN, or run .ci/run once)");
        return None;
    };
    let plugins = tool("GOT_TERRAFORM_PLUGIN_DIR", ".cache/goterra/tools/plugins");
    Some(Terraform { bin, plugins })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backends {
    /// SQLite, the embedded queue, the agent in this process.
    Embedded,
    /// PostgreSQL, RabbitMQ, the agent as its own process.
    Production,
}

enum AgentHandle {
    /// Held for its `Drop`, which stops the agent.
    #[allow(dead_code)]
    InProcess(InProcessAgent),
    Process(SpawnedServer),
}

/// The agent loop and its routes, stopped when dropped.
struct InProcessAgent {
    stop: CancellationToken,
    routes: tokio::task::JoinHandle<()>,
}

impl Drop for InProcessAgent {
    fn drop(&mut self) {
        self.stop.cancel();
        self.routes.abort();
    }
}

struct Platform {
    server: TestServer,
    client: reqwest::Client,
    backends: Backends,
    terraform: Terraform,
    agent: Option<AgentHandle>,
    /// Where the agent's routes (`/run-agent/...`) are served.
    agent_url: String,
    demo: Demo,
    vms: PathBuf,
    agent_dirs: tempfile::TempDir,
}

impl Platform {
    /// Deploy and the store on `backends`, the demo catalogue loaded by the admin with alice and
    /// bob as members of its namespace, and one agent running `terraform.bin`.
    async fn start(backends: Backends, terraform: Terraform) -> Self {
        let queue_name = format!("e2e-{}", goterra_core::new_id());
        let engine = match backends {
            Backends::Embedded => Engine::Sqlite,
            Backends::Production => Engine::Postgres,
        };
        let server = TestServer::start_with(engine, &[goterra_deploy::spec(), goterra_store::spec()], |config| {
            config.run_queue = queue_name;
            if backends == Backends::Production {
                config.amqp = Some(goterra_core::Sensitive::new(AMQP.to_string()));
            }
        })
        .await
        .unwrap();
        let vms = server.data_dir.path().join("vms");
        let admin = goterra_client::Client::new(&server.url)
            .unwrap()
            .with_token(server.platform.tokens.issue(&Claims::for_user(&identity("admin"))));
        let demo = goterra_deploy::demo::load(&admin, &vms).await.unwrap();
        let mut platform = Self {
            server,
            client: reqwest::Client::new(),
            backends,
            terraform,
            agent: None,
            agent_url: String::new(),
            demo,
            vms,
            agent_dirs: tempfile::tempdir().unwrap(),
        };
        let (status, reply) = platform
            .call(
                Method::PUT,
                &format!("/deploy/ns/{}", platform.demo.namespace),
                "admin",
                Some(json!({"members": ["alice", "bob"]})),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        platform.start_agent().await;
        platform
    }

    /// Starts the agent: in this process on the embedded backends, else as `goterra serve
    /// run-agent` with the configuration a real deployment gives it.
    async fn start_agent(&mut self) {
        self.start_agent_with(&[]).await;
    }

    /// [`Self::start_agent`], with more environment for an agent process.
    async fn start_agent_with(&mut self, extra_env: &[(&str, &str)]) {
        let work_dir = tempfile::tempdir_in(self.agent_dirs.path()).unwrap().keep();
        match self.backends {
            Backends::Embedded => {
                let platform = &self.server.platform;
                let options = AgentOptions {
                    heartbeat: Duration::from_secs(1),
                    executor: ExecutorConfig {
                        terraform_bin: self.terraform.bin.clone(),
                        plugin_dir: self.terraform.plugins.clone(),
                        kill_grace: Duration::from_secs(5),
                        work_dir: Some(work_dir),
                        ..ExecutorConfig::default()
                    },
                    ..AgentOptions::default()
                };
                let queue = goterra_bus::platform_run_queue(platform);
                let (agent, stop) = goterra_run_agent::start_agent(platform, queue, options).unwrap();
                let routes = goterra_run_agent::routes(
                    Some(agent),
                    goterra_run_agent::state::StateRoutes {
                        authenticator: platform.authenticator.clone(),
                        deploy: goterra_run_agent::deploy_control(platform).unwrap(),
                    },
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                self.agent_url = format!("http://{}", listener.local_addr().unwrap());
                let routes = tokio::spawn(async move {
                    let _ = axum::serve(listener, routes).await;
                });
                self.agent = Some(AgentHandle::InProcess(InProcessAgent { stop, routes }));
            }
            Backends::Production => {
                let port = free_port().unwrap();
                let listen = format!("127.0.0.1:{port}");
                let data_dir = tempfile::tempdir_in(self.agent_dirs.path()).unwrap().keep();
                let plugins = self
                    .terraform
                    .plugins
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                let bin = self.terraform.bin.display().to_string();
                let work = work_dir.display().to_string();
                let mut env = vec![
                    ("GOT_SECRET", TEST_SECRET),
                    ("GOT_AMQP", AMQP),
                    ("GOT_RUN_QUEUE", &self.server.platform.config.run_queue),
                    ("GOT_DEPLOY_URL", &self.server.url),
                    ("GOT_TERRAFORM_BIN", &bin),
                    ("GOT_TERRAFORM_PLUGIN_DIR", &plugins),
                    ("GOT_AGENT_WORK_DIR", &work),
                    ("GOT_AGENT_HEARTBEAT_SECS", "1"),
                    ("GOT_KILL_GRACE_SECS", "5"),
                    ("GOT_LOG", "warn"),
                ];
                env.extend_from_slice(extra_env);
                let agent = SpawnedServer::start(
                    GOTERRA,
                    &[
                        "serve",
                        "run-agent",
                        "--listen",
                        &listen,
                        "--data-dir",
                        data_dir.to_str().unwrap(),
                    ],
                    &env,
                    port,
                    "/run-agent",
                )
                .await
                .unwrap();
                self.agent_url = agent.url.clone();
                self.agent = Some(AgentHandle::Process(agent));
            }
        }
    }

    fn token(&self, uid: &str) -> String {
        self.server.platform.tokens.issue(&Claims::for_user(&identity(uid)))
    }

    async fn request(&self, method: Method, url: String, uid: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, url);
        if let Some(uid) = uid {
            request = request.bearer_auth(self.token(uid));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn call(&self, method: Method, path: &str, uid: &str, body: Option<Value>) -> (u16, Value) {
        self.request(method, format!("{}{path}", self.server.url), Some(uid), body)
            .await
    }

    fn run_path(&self, id: &str) -> String {
        format!("/deploy/ns/{}/run/{id}", self.demo.namespace)
    }

    /// Starts a run of `app` as alice; returns its id.
    async fn start_run(&self, app: &str, body: Value) -> String {
        let (status, reply) = self
            .call(
                Method::POST,
                &format!("/deploy/ns/{}/run/{app}", self.demo.namespace),
                "alice",
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{reply}");
        reply["run"].as_str().unwrap().to_string()
    }

    async fn run(&self, id: &str) -> Value {
        let (status, run) = self.call(Method::GET, &self.run_path(id), "alice", None).await;
        assert_eq!(status, 200, "{run}");
        run
    }

    /// Waits until the run's status is `wanted`; any other terminal status fails the test.
    async fn wait_status(&self, id: &str, wanted: &str) -> Value {
        let terminal = ["_success", "_failure", "canceled"];
        let mut run = Value::Null;
        for _ in 0..600 {
            run = self.run(id).await;
            let status = run["status"].as_str().unwrap_or_default();
            if status == wanted {
                return run;
            }
            assert!(
                !terminal.iter().any(|end| status.ends_with(end)),
                "expected {wanted}, the run ended in {status}: {run}\nlog:\n{}",
                self.log(id).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the run never reached {wanted}: {run}");
    }

    /// Destroys the run as alice (its owner) and waits for `destroy_success`.
    async fn destroy(&self, id: &str) -> Value {
        let (status, reply) = self.call(Method::DELETE, &self.run_path(id), "alice", None).await;
        assert_eq!(status, 200, "{reply}");
        self.wait_status(id, "destroy_success").await
    }

    async fn log(&self, id: &str) -> String {
        let response = self
            .client
            .get(format!("{}{}/log", self.server.url, self.run_path(id)))
            .bearer_auth(self.token("alice"))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// Waits until the run's log contains `text`.
    async fn wait_log(&self, id: &str, text: &str) {
        for _ in 0..600 {
            if self.log(id).await.contains(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the log never showed {text:?}:\n{}", self.log(id).await);
    }

    async fn resources(&self, id: &str, uid: Option<&str>) -> (u16, Value) {
        let url = format!("{}/run-agent/ns/{}/run/{id}/state", self.agent_url, self.demo.namespace);
        self.request(Method::GET, url, uid, None).await
    }

    /// Starts a run of the slow template as alice and waits until its apply runs.
    async fn start_slow_run(&self) -> String {
        let app = self.app_of("slow", SLOW_TF).await;
        std::fs::create_dir_all(&self.vms).unwrap();
        let marker = self.vms.join("slow-marker");
        let id = self
            .start_run(
                &app,
                json!({"name": "slow", "endpoint": self.demo.endpoint, "inputs": {"marker": marker}}),
            )
            .await;
        self.wait_status(&id, "deploy_in_progress").await;
        self.wait_log(&id, "null_resource.slow: Creating...").await;
        id
    }

    /// An app of template `tf`, created by the admin (it uses `local-exec`).
    async fn app_of(&self, name: &str, tf: &str) -> String {
        let ns = &self.demo.namespace;
        let mut ids = Vec::new();
        for (kind, body) in [
            (
                "template",
                json!({"name": name, "data": {"local": tf}, "inputs": {"marker": "Marker file"}}),
            ),
            ("app", json!({"name": name, "template": "TEMPLATE"})),
        ] {
            let mut body = body;
            if kind == "app" {
                body["template"] = json!(ids[0]);
            }
            let (status, reply) = self
                .call(Method::POST, &format!("/deploy/ns/{ns}/{kind}"), "admin", Some(body))
                .await;
            assert_eq!(status, 201, "{reply}");
            ids.push(reply[kind].as_str().unwrap().to_string());
        }
        ids.pop().unwrap()
    }

    async fn stop(mut self) {
        self.agent.take();
        self.server.stop().await;
    }
}

/// Reads `file` of each VM until all hold the same non-empty text.
async fn shared_text(run_dir: &Path, vms: &[&str], file: &str) -> String {
    for _ in 0..150 {
        let texts: Vec<String> = vms
            .iter()
            .map(|vm| std::fs::read_to_string(run_dir.join(vm).join(file)).unwrap_or_default())
            .collect();
        if !texts[0].trim().is_empty() && texts.iter().all(|text| text == &texts[0]) {
            return texts[0].trim().to_string();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the VMs {vms:?} never agreed on {file}");
}

async fn the_demo_cluster_deploys_coordinates_and_is_destroyed(backends: Backends) {
    let Some(terraform) = terraform() else { return };
    let platform = Platform::start(backends, terraform).await;
    let demo = platform.demo.clone();

    // Run inputs are one-line text: a newline is refused at the edge, and nothing is created
    // (multi-line values such as key files go in secret inputs).
    let mut multi_line = demo.run_request(2);
    multi_line["inputs"]["motto"] = json!("first line\nsecond line");
    let (status, reply) = platform
        .call(
            Method::POST,
            &format!("/deploy/ns/{}/run/{}", demo.namespace, demo.application),
            "alice",
            Some(multi_line),
        )
        .await;
    assert_eq!(status, 400, "{reply}");

    let hostile = "$(touch PWNED) `touch PWNED` ${HOME} '\" ; touch PWNED";
    let mut request = demo.run_request(2);
    request["inputs"]["motto"] = json!(hostile);
    request["secretinputs"] = json!({"api_secret": SECRET_INPUT});
    let id = platform.start_run(&demo.application, request).await;
    let run = platform.wait_status(&id, "deploy_success").await;

    // Statuses and outputs.
    let outputs: Value = serde_json::from_str(run["outputs"].as_str().unwrap()).unwrap();
    assert_eq!(
        outputs["vms"]["value"],
        json!(["master-0", "worker-0", "worker-1"]),
        "{outputs}"
    );
    let deployment = run["deployment"].as_str().unwrap().to_string();
    assert_eq!(outputs["deployment_id"]["value"], json!(deployment));
    assert!(run["duration"].as_f64().unwrap() > 0.0, "{run}");
    assert_eq!(run["secretinputs"], Value::Null);
    assert_eq!(run["inputs"]["motto"], hostile);

    // The workers got the master's token through the store.
    let run_dir = platform.vms.join(&id);
    let token = shared_text(&run_dir, &["master-0", "worker-0", "worker-1"], "master_token").await;
    assert_eq!(token.len(), 32, "{token}");
    let (status, stored) = platform
        .call(Method::GET, &format!("/store/{deployment}/master_token"), "alice", None)
        .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["value"], token.as_str());
    for vm in ["master-0", "worker-0", "worker-1"] {
        // `status_app_<app>-<recipe variable>_<host>`; each local "VM" has its own host name.
        let recipe = vm.split('-').next().unwrap();
        let key = format!("/store/{deployment}/status_app_cluster-{recipe}_{vm}");
        let mut over = false;
        for _ in 0..100 {
            let (_, status) = platform.call(Method::GET, &key, "alice", None).await;
            if status["value"] == "over" {
                over = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (_, all) = platform
            .call(Method::GET, &format!("/store/{deployment}"), "alice", None)
            .await;
        assert!(over, "{key} never became over; the store holds {all}");
    }

    // The hostile input reached the VM verbatim and executed nothing.
    let motto = std::fs::read_to_string(run_dir.join("master-0").join("motto")).unwrap();
    assert_eq!(motto, hostile);
    for vm in ["master-0", "worker-0", "worker-1"] {
        assert!(!run_dir.join(vm).join("PWNED").exists(), "{vm} executed the input");
    }

    // The log is readable and holds no secret value.
    let log = platform.log(&id).await;
    assert!(log.contains("Apply complete! Resources: 3 added"), "{log}");
    assert!(
        !log.contains("[DEBUG] LOCK http"),
        "the state backend's request lines are left out: {log}"
    );
    assert!(!log.contains(SECRET_INPUT), "{log}");

    // The run's resources, from the state deploy keeps: owner and admin only.
    let (status, resources) = platform.resources(&id, Some("alice")).await;
    assert_eq!(status, 200, "{resources}");
    let addresses: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        [
            r#"null_resource.vm["master-0"]"#,
            r#"null_resource.vm["worker-0"]"#,
            r#"null_resource.vm["worker-1"]"#
        ]
    );
    assert_eq!(resources["states"], json!(addresses), "the original's field");
    assert!(
        !resources["terraform_version"].as_str().unwrap().is_empty(),
        "{resources}"
    );
    assert!(!resources.to_string().contains("boot.sh"), "no attribute is shown");
    assert_eq!(platform.resources(&id, Some("admin")).await.0, 200);
    assert_eq!(platform.resources(&id, Some("bob")).await.0, 403);
    assert_eq!(platform.resources(&id, Some("carol")).await.0, 403);
    assert_eq!(platform.resources(&id, None).await.0, 401);
    assert_eq!(platform.resources("no-such-run", Some("alice")).await.0, 404);

    // Destroy stops the VMs and deletes the store data.
    let pid: i32 = std::fs::read_to_string(run_dir.join("master-0").join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let run = platform.destroy(&id).await;
    assert!(run["end"].as_i64().unwrap() > 0);
    assert!(!run_dir.join("master-0").exists(), "destroy removes the VMs");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z "),
        "the master's process is stopped"
    );
    let (status, _) = platform
        .call(Method::GET, &format!("/store/{deployment}/master_token"), "alice", None)
        .await;
    assert_eq!(status, 404, "the store deployment is deleted");
    let (_, resources) = platform.resources(&id, Some("alice")).await;
    assert_eq!(resources["resources"], json!([]));
    assert!(
        platform
            .log(&id)
            .await
            .contains("Destroy complete! Resources: 3 destroyed")
    );
    platform.stop().await;
}

#[tokio::test]
async fn the_demo_cluster_runs_on_the_embedded_backends() {
    the_demo_cluster_deploys_coordinates_and_is_destroyed(Backends::Embedded).await;
}

#[tokio::test]
async fn the_demo_cluster_runs_on_postgresql_and_rabbitmq() {
    the_demo_cluster_deploys_coordinates_and_is_destroyed(Backends::Production).await;
}

#[tokio::test]
async fn a_missing_terraform_binary_fails_the_deploy_with_a_clear_error() {
    let Some(mut terraform) = terraform() else { return };
    terraform.bin = PathBuf::from("/nonexistent/terraform");
    let platform = Platform::start(Backends::Embedded, terraform).await;
    let demo = platform.demo.clone();
    let id = platform.start_run(&demo.application, demo.run_request(1)).await;
    let run = platform.wait_status(&id, "deploy_failure").await;
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("/nonexistent/terraform was not found"), "{run}");
    assert_eq!(run["action"], Value::Null, "{run}");
    platform.stop().await;
}

#[tokio::test]
async fn cancel_stops_an_apply_in_progress() {
    let Some(terraform) = terraform() else { return };
    let platform = Platform::start(Backends::Embedded, terraform).await;
    let id = platform.start_slow_run().await;
    let (status, reply) = platform
        .call(
            Method::POST,
            &format!("{}/cancel", platform.run_path(&id)),
            "alice",
            None,
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let run = platform.wait_status(&id, "canceled").await;
    assert!(run["duration"].as_f64().unwrap() > 0.0, "{run}");
    // Terraform and its `sleep` are gone: nothing holds the marker's run any more.
    platform.destroy(&id).await;
    platform.stop().await;
}

#[tokio::test]
async fn a_run_whose_agent_is_killed_mid_apply_is_taken_over() {
    let Some(terraform) = terraform() else { return };
    let mut platform = Platform::start(Backends::Production, terraform).await;
    let id = platform.start_slow_run().await;

    // The agent's host dies: the agent, its Terraform and everything below go at once.
    let Some(AgentHandle::Process(agent)) = platform.agent.take() else {
        unreachable!()
    };
    let tree = descendants(agent.pid());
    assert!(!tree.is_empty(), "Terraform runs under the agent");
    for pid in std::iter::once(agent.pid()).chain(tree) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    drop(agent);
    assert_eq!(platform.run(&id).await["status"], "deploy_in_progress");

    // Deploy's sweep notices the silence (time is moved forward rather than waited for):
    // the run goes back to the queue with its state lock released.
    let db = platform.server.platform.db.clone();
    let queue = goterra_bus::platform_run_queue(&platform.server.platform);
    let options = goterra_deploy::runs::RunOptions::default();
    let later = goterra_core::token::unix_now() as i64 + options.heartbeat_timeout.as_secs() as i64 + 60;
    let report = goterra_deploy::runs::sweep::sweep_once(&db, queue.as_ref(), &options, later)
        .await
        .unwrap();
    assert_eq!(
        report.requeued,
        vec![goterra_client::RunId::from_trusted(&id)],
        "{report:?}"
    );
    assert_eq!(platform.run(&id).await["status"], "deploy_pending");

    // A new agent takes the run over and finishes it.
    platform.start_agent().await;
    let run = platform.wait_status(&id, "deploy_success").await;
    assert_eq!(run["error"], "", "{run}");
    platform.destroy(&id).await;
    platform.stop().await;
}

/// The agent process of a run in progress, taken out of the platform.
fn agent_process(platform: &mut Platform) -> SpawnedServer {
    let Some(AgentHandle::Process(agent)) = platform.agent.take() else {
        unreachable!("the production backends run the agent as a process")
    };
    agent
}

#[tokio::test]
async fn a_stopped_agent_lets_its_run_finish_within_the_grace_then_exits_0() {
    let Some(terraform) = terraform() else { return };
    let mut platform = Platform::start(Backends::Production, terraform).await;
    platform.agent.take();
    platform
        .start_agent_with(&[("GOT_AGENT_SHUTDOWN_GRACE_SECS", "120")])
        .await;
    let app = platform.app_of("pause", PAUSE_TF).await;
    let id = platform
        .start_run(
            &app,
            json!({"name": "pause", "endpoint": platform.demo.endpoint, "inputs": {"marker": "unused"}}),
        )
        .await;
    platform.wait_log(&id, "null_resource.pause: Creating...").await;

    let mut agent = agent_process(&mut platform);
    agent.send_terminate().unwrap();
    let status = agent
        .wait_exit(Duration::from_secs(120))
        .await
        .unwrap()
        .expect("the agent exits within its grace");
    assert!(status.success(), "exit status {status}");
    // The agent reported the result before it exited.
    let run = platform.run(&id).await;
    assert_eq!(
        run["status"],
        "deploy_success",
        "{run}\nlog:\n{}",
        platform.log(&id).await
    );

    platform.start_agent().await;
    platform.destroy(&id).await;
    platform.stop().await;
}

#[tokio::test]
async fn a_stopped_agent_hands_back_a_run_that_outlives_the_grace_then_exits_0() {
    let Some(terraform) = terraform() else { return };
    let mut platform = Platform::start(Backends::Production, terraform).await;
    platform.agent.take();
    platform
        .start_agent_with(&[("GOT_AGENT_SHUTDOWN_GRACE_SECS", "1")])
        .await;
    let id = platform.start_slow_run().await;

    let mut agent = agent_process(&mut platform);
    let tree = descendants(agent.pid());
    assert!(!tree.is_empty(), "Terraform runs under the agent");
    agent.send_terminate().unwrap();
    // Grace (1 s), then Terraform's SIGTERM and SIGKILL after the kill grace (5 s), then the
    // hand-back.
    let status = agent
        .wait_exit(Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the agent exits after its grace");
    assert!(status.success(), "exit status {status}");
    for pid in tree {
        assert!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err(),
            "process {pid} under the agent was stopped"
        );
    }
    // Handed back at once: no waiting for deploy's sweep.
    let run = platform.run(&id).await;
    assert_eq!(run["status"], "deploy_pending", "{run}");

    // Another agent takes the job from the queue and finishes the run.
    platform.start_agent().await;
    let run = platform.wait_status(&id, "deploy_success").await;
    assert_eq!(run["error"], "", "{run}");
    platform.destroy(&id).await;
    platform.stop().await;
}
