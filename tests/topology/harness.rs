//! The production topology on loopback: every service as its own `goterra serve <svc>` process
//! on PostgreSQL, Redis and RabbitMQ — two deploy replicas, two store replicas, two agents, one
//! auth, acct and web UI — behind the real Traefik v3, each replica registering itself through
//! Traefik's Redis KV provider (`GOT_DISCOVERY=redis`). Clients, the agents and the "VMs" of a
//! run all go through Traefik. The services reach Redis and RabbitMQ through [`FaultProxy`]s the
//! tests cut and restore; Traefik reads its routing from Redis directly.
//!
//! Everything is the test's own: a PostgreSQL database, a Redis key prefix and discovery root,
//! a run queue and an acct queue on RabbitMQ, user names, ports and directories.

use crate::processes::descendants;
use crate::proxy::FaultProxy;
use goterra_testing::db::TestDb;
use goterra_testing::{SpawnedServer, TEST_SECRET, free_port};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GOTERRA: &str = env!("CARGO_BIN_EXE_goterra");
const REDIS: &str = "127.0.0.1:6379";
const RABBITMQ: &str = "127.0.0.1:5672";
/// Seconds a replica's routing keys live without a refresh: long enough to ride out the
/// Redis outages the tests play (the services then cannot refresh them).
const DISCOVERY_TTL: &str = "15";
/// Deploy hands a silent agent's run to another after this many seconds.
const HEARTBEAT_TIMEOUT: &str = "6";

/// The tools the topology needs; under CI their absence fails the test (`.ci/run` installs
/// them), elsewhere the test is skipped with a message.
pub struct Tools {
    traefik: PathBuf,
    terraform: PathBuf,
    plugins: Option<PathBuf>,
}

fn from_env_or_home(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var("HOME").ok().map(|home| PathBuf::from(home).join(default)))?;
    path.exists().then_some(path)
}

pub fn tools() -> Option<Tools> {
    let traefik = crate::traefik::tool("traefik");
    let terraform = from_env_or_home("GOT_TERRAFORM_BIN", ".cache/goterra/tools/bin/terraform");
    let (Some(traefik), Some(terraform)) = (traefik, terraform) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide Traefik and Terraform: run the tests through .ci/run"
        );
        eprintln!("skipped: Traefik or Terraform is not installed (run .ci/run once)");
        return None;
    };
    let plugins = from_env_or_home("GOT_TERRAFORM_PLUGIN_DIR", ".cache/goterra/tools/plugins");
    Some(Tools {
        traefik,
        terraform,
        plugins,
    })
}

/// One topology at a time: each is a dozen processes, and the machine has two cores.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE_AT_A_TIME.lock().await
}

fn resolve(address: &str) -> SocketAddr {
    address.to_socket_addrs().unwrap().next().unwrap()
}

/// The services of the topology and how many replicas of each.
const REPLICAS: [(&str, usize); 6] = [
    ("auth", 1),
    ("deploy", 2),
    ("store", 2),
    ("acct", 1),
    ("ui", 1),
    ("run-agent", 2),
];

pub struct Topology {
    /// Traefik's address: the platform's public URL.
    pub url: String,
    pub http: reqwest::Client,
    pub redis: Arc<FaultProxy>,
    pub amqp: Arc<FaultProxy>,
    /// Where the demo's "VMs" live (`data_dir` of the local endpoint).
    pub vms: PathBuf,
    /// The replicas of each service, by name.
    pub replicas: std::collections::BTreeMap<&'static str, Vec<SpawnedServer>>,
    /// A user with a namespace of the demo catalogue: alice, with her API key.
    pub user: String,
    pub user_key: String,
    pub admin_key: String,
    traefik: Option<SpawnedServer>,
    root: String,
    run_queue: String,
    acct_queue: String,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    _database: TestDb,
}

impl Topology {
    pub async fn start(tools: Tools) -> Self {
        let id = goterra_core::new_id();
        let dir = tempfile::tempdir().unwrap();
        let database = TestDb::postgres().await.unwrap();
        let redis = FaultProxy::start(resolve(REDIS)).await;
        let amqp = FaultProxy::start(resolve(RABBITMQ)).await;
        let root = format!("goterra-topology-{id}");
        let run_queue = format!("topology-runs-{id}");
        let acct_queue = format!("topology-acct-{id}");
        let admin_key = format!("topology-admin-{id}");

        // Traefik first, reading the routing the replicas write under `root`.
        let traefik_port = free_port().unwrap();
        let url = format!("http://127.0.0.1:{traefik_port}");
        let providers =
            serde_yaml::from_str(&format!("redis:\n  endpoints: [\"{REDIS}\"]\n  rootKey: \"{root}\"\n")).unwrap();
        let traefik_config = crate::traefik::static_config(dir.path(), traefik_port, providers);
        let config_arg = format!("--configFile={}", traefik_config.display());
        let traefik = SpawnedServer::start(
            tools.traefik.to_str().unwrap(),
            &[&config_arg],
            &[],
            traefik_port,
            "/ping",
        )
        .await
        .unwrap();

        let acct_config = dir.path().join("acct.yml");
        std::fs::write(&acct_config, format!("queue: {acct_queue}\n")).unwrap();
        let vms = dir.path().join("vms");
        let env: Vec<(String, String)> = [
            ("GOT_LOG", "warn".to_string()),
            ("GOT_SECRET", TEST_SECRET.to_string()),
            ("GOT_URL", url.clone()),
            ("GOT_PROXY", url.clone()),
            ("GOT_DATABASE_URL", database.url.clone()),
            ("GOT_REDIS_URL", format!("redis://{}", redis.addr)),
            ("GOT_REDIS_PREFIX", root.clone()),
            ("GOT_AMQP", format!("amqp://guest:guest@{}/%2f", amqp.addr)),
            ("GOT_RUN_QUEUE", run_queue.clone()),
            ("GOT_ACCT_CONFIG", acct_config.display().to_string()),
            ("GOT_DISCOVERY", "redis".to_string()),
            ("GOT_DISCOVERY_ROOT", root.clone()),
            ("GOT_DISCOVERY_TTL", DISCOVERY_TTL.to_string()),
            ("GOT_ADMIN_APIKEY", admin_key.clone()),
            ("GOT_RUN_HEARTBEAT_TIMEOUT", HEARTBEAT_TIMEOUT.to_string()),
            ("GOT_RUN_SWEEP_INTERVAL", "1".to_string()),
            ("GOT_AGENT_HEARTBEAT_SECS", "1".to_string()),
            ("GOT_AGENT_CONCURRENCY", "1".to_string()),
            ("GOT_KILL_GRACE_SECS", "5".to_string()),
            ("GOT_TERRAFORM_BIN", tools.terraform.display().to_string()),
            (
                "GOT_TERRAFORM_PLUGIN_DIR",
                tools
                    .plugins
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
        let mut topology = Self {
            url,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            redis,
            amqp,
            vms,
            replicas: Default::default(),
            user: format!("alice-{}", &id[..8]),
            user_key: String::new(),
            admin_key,
            traefik: Some(traefik),
            root,
            run_queue,
            acct_queue,
            env,
            dir,
            _database: database,
        };
        for (service, count) in REPLICAS {
            for _ in 0..count {
                topology.add_replica(service).await;
            }
        }
        topology.wait_routed().await;
        topology.user_key = topology.register(&topology.user.clone(), false).await;
        topology
    }

    /// Starts one more replica of `service`.
    pub async fn add_replica(&mut self, service: &'static str) {
        let port = free_port().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let data_dir = self.dir.path().join(format!("{service}-{port}"));
        let mut env: Vec<(&str, &str)> = self.env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let work_dir = data_dir.join("runs");
        let work_dir = work_dir.display().to_string();
        if service == "run-agent" {
            env.push(("GOT_AGENT_WORK_DIR", &work_dir));
        }
        let replica = SpawnedServer::start(
            GOTERRA,
            &[
                "serve",
                service,
                "--listen",
                &listen,
                "--data-dir",
                data_dir.to_str().unwrap(),
            ],
            &env,
            port,
            &format!("/{}", prefix(service)),
        )
        .await
        .unwrap_or_else(|err| panic!("{service} does not start: {err:#}"));
        self.replicas.entry(service).or_default().push(replica);
    }

    /// Waits until Traefik routes every prefix to every replica registered.
    pub async fn wait_routed(&self) {
        eventually("Traefik routes every service", Duration::from_secs(30), async || {
            let mut all = true;
            for (service, replicas) in &self.replicas {
                let registered = self.servers_of(service).await;
                let ready = self
                    .http
                    .get(format!("{}/{}/ready", self.url, prefix(service)))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK);
                all &= ready && registered == replicas.len();
            }
            all
        })
        .await;
    }

    /// The servers of `service` registered in Traefik's routing.
    pub async fn servers_of(&self, service: &str) -> usize {
        let mut redis = redis_connection().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!(
                "{}/http/services/got-{service}/loadBalancer/servers/*",
                self.root
            ))
            .query_async(&mut redis)
            .await
            .unwrap();
        keys.len()
    }

    /// Creates a user with the admin's key; answers the user's API key.
    pub async fn register(&self, uid: &str, admin: bool) -> String {
        let (status, answer) = self
            .call_with_key(
                Method::POST,
                "/auth/register",
                &self.admin_key,
                Some(json!({"uid": uid, "password": format!("{uid}-password-1"), "admin": admin})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["apikey"].as_str().unwrap().to_string()
    }

    /// A call through Traefik with an API key; the answer's status and JSON body (null when
    /// the body is not JSON).
    pub async fn call_with_key(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("X-API-Key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A call as the user.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_with_key(method, path, &self.user_key, body).await
    }

    /// Loads the `examples/local` demo catalogue as `goterra up --demo` does, through Traefik,
    /// and makes the user a member of its namespace.
    pub async fn load_demo(&self) -> goterra_deploy::demo::Demo {
        let admin = goterra_client::Client::new(&self.url)
            .unwrap()
            .with_api_key(self.admin_key.clone());
        let demo = goterra_deploy::demo::load(&admin, &self.vms).await.unwrap();
        let (status, answer) = self
            .call_with_key(
                Method::PUT,
                &format!("/deploy/ns/{}", demo.namespace),
                &self.admin_key,
                Some(json!({"members": [self.user]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        demo
    }

    /// An application of one template `tf` (with a `marker` input) in `namespace`, created by
    /// the admin (templates with `local-exec` are the admin's).
    pub async fn app_of(&self, namespace: &str, name: &str, tf: &str) -> String {
        let (status, template) = self
            .call_with_key(
                Method::POST,
                &format!("/deploy/ns/{namespace}/template"),
                &self.admin_key,
                Some(json!({"name": name, "data": {"local": tf}, "inputs": {"marker": "Marker file"}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{template}");
        let (status, app) = self
            .call_with_key(
                Method::POST,
                &format!("/deploy/ns/{namespace}/app"),
                &self.admin_key,
                Some(json!({"name": name, "template": template["template"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        app["app"].as_str().unwrap().to_string()
    }

    /// Starts a run as the user; answers the status and the body (the run's id in `run`).
    pub async fn start_run(&self, namespace: &str, app: &str, request: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/deploy/ns/{namespace}/run/{app}"),
            Some(request),
        )
        .await
    }

    pub async fn run(&self, namespace: &str, id: &str) -> Value {
        let (status, run) = self
            .call(Method::GET, &format!("/deploy/ns/{namespace}/run/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        run
    }

    pub async fn log(&self, namespace: &str, id: &str) -> String {
        let response = self
            .http
            .get(format!("{}/deploy/ns/{namespace}/run/{id}/log", self.url))
            .header("X-API-Key", &self.user_key)
            .send()
            .await
            .unwrap();
        response.text().await.unwrap_or_default()
    }

    /// Waits until the run's status is `wanted`; any other terminal status fails the test.
    pub async fn wait_status(&self, namespace: &str, id: &str, wanted: &str, limit: Duration) -> Value {
        let started = Instant::now();
        let mut run = Value::Null;
        while started.elapsed() < limit {
            run = self.run(namespace, id).await;
            let status = run["status"].as_str().unwrap_or_default().to_string();
            if status == wanted {
                return run;
            }
            assert!(
                !is_terminal(&status),
                "expected {wanted}, the run ended in {status}: {run}\nlog:\n{}",
                self.log(namespace, id).await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the run never reached {wanted} within {limit:?}: {run}");
    }

    /// The agent replica whose process runs Terraform now (the one holding a run), by index.
    pub fn busy_agent(&self) -> Option<usize> {
        self.replicas["run-agent"]
            .iter()
            .position(|agent| !descendants(agent.pid()).is_empty())
    }

    /// Kills replica `index` of `service` and every process under it, as a host dying would.
    pub fn kill(&mut self, service: &str, index: usize) {
        let replica = self.replicas.get_mut(service).unwrap().remove(index);
        for pid in std::iter::once(replica.pid()).chain(descendants(replica.pid())) {
            signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
        drop(replica);
    }

    /// Stops every process (SIGTERM, then SIGKILL for what is still running after a while)
    /// and removes what the topology left on the shared servers.
    pub async fn stop(mut self) {
        let mut processes: Vec<SpawnedServer> = std::mem::take(&mut self.replicas).into_values().flatten().collect();
        processes.extend(self.traefik.take());
        for process in &processes {
            signal(process.pid(), nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && processes.iter().any(|process| is_running(process.pid())) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Dropping a server kills it if it is still running.
        drop(processes);
        let mut redis = redis_connection().await;
        for pattern in [format!("{}/*", self.root), format!("{}*", self.root)] {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut redis)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut redis).await;
            }
        }
        let amqp = goterra_core::Sensitive::new(format!("amqp://guest:guest@{RABBITMQ}/%2f"));
        for queue in [&self.run_queue, &self.acct_queue] {
            let _ = goterra_bus::RabbitQueue::new(amqp.clone(), queue.clone())
                .delete()
                .await;
        }
    }
}

impl Drop for Topology {
    /// A failed test shows what every service logged (their output is captured).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (service, replicas) in &self.replicas {
            for replica in replicas {
                eprintln!("--- {service} at {} ---\n{}", replica.url, replica.stdout());
            }
        }
        if let Some(traefik) = &self.traefik {
            eprintln!("--- traefik at {} ---\n{}", traefik.url, traefik.stdout());
        }
    }
}

/// The URL prefix of a service (`/app` for the UI).
fn prefix(service: &str) -> &str {
    if service == "ui" { "app" } else { service }
}

pub fn is_terminal(status: &str) -> bool {
    status.ends_with("_success") || status.ends_with("_failure") || status == "canceled"
}

async fn redis_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{REDIS}"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

pub async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what}: not within {limit:?}");
}

fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), signal);
}

/// Whether `pid` runs (a child that ended but was not reaped yet is a zombie: not running).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

/// Reads `file` of each VM of `run_dir` until all hold the same non-empty text.
pub async fn shared_text(run_dir: &Path, vms: &[&str], file: &str) -> String {
    for _ in 0..300 {
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
