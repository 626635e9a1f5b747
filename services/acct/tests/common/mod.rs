//! A real deploy (and store) server with a namespace, an endpoint and an application, whose
//! runs the tests drive through deploy's agent routes as an agent would; and a real acct,
//! started and stopped on the same database, reading deploy over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use goterra_acct::config::AcctConfig;
use goterra_acct::deploy::{HttpDeploy, RunSource};
use goterra_acct::ledger::Accountant;
use goterra_db::Engine;
use goterra_testing::TestServer;
use goterra_testing::fixtures::{CatalogueExtras, RunCatalogue};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub struct Env {
    pub server: TestServer,
    pub client: reqwest::Client,
    pub ns: String,
    pub app: String,
    pub endpoint: String,
}

/// A running acct.
pub struct Acct {
    pub url: String,
    pub accountant: Arc<Accountant>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Acct {
    /// Stops its listeners and its HTTP server.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Env {
    /// Deploy and the store, a namespace `team` of alice (bob is a member) with a `local`
    /// endpoint and an application; acct's tables exist but acct is not started.
    pub async fn start(engine: Engine) -> Self {
        let server = TestServer::start_with(engine, &[goterra_deploy::spec(), goterra_store::spec()], |config| {
            config.acl.allow_user_create_ns = true;
        })
        .await
        .unwrap();
        server.platform.db.migrate(goterra_acct::MIGRATIONS).await.unwrap();
        let catalogue = RunCatalogue::create(&server, &CatalogueExtras::default())
            .await
            .unwrap();
        Self {
            server,
            client: reqwest::Client::new(),
            ns: catalogue.ns.into_string(),
            app: catalogue.app.into_string(),
            endpoint: catalogue.endpoint.into_string(),
        }
    }

    /// The acct config of the tests: `null_resource` at 0.5 per second by default, 2 on this
    /// env's endpoint for kind `big`, a sized `test_disk` at 0.01 per GB·second.
    pub fn acct_yaml(&self) -> String {
        format!(
            "resources: [null_resource]
types:
  null_resource: {{kind_attribute: kind}}
  test_disk: {{kind: disk, quantity_attribute: size}}
billing:
  default:
    null_resource: {{small: 0.5, big: 1}}
    test_disk: {{disk: 0.01}}
  endpoints:
    - id: {}
      billing:
        null_resource: {{big: 2}}
resync_seconds: 0
",
            self.endpoint
        )
    }

    /// Starts acct on the server's database and event bus, reading deploy over HTTP.
    pub async fn start_acct(&self, yaml: &str) -> Acct {
        let config = AcctConfig::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap();
        let source: Arc<dyn RunSource> =
            Arc::new(HttpDeploy::new(&self.server.url, self.server.platform.tokens.clone()).unwrap());
        let shutdown = CancellationToken::new();
        let (router, accountant) =
            goterra_acct::router_with(self.server.platform.clone(), config, source, shutdown.clone())
                .await
                .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let _ = goterra_core::http::serve(listener, router, async move { stop.cancelled().await }).await;
        });
        Acct {
            url,
            accountant,
            shutdown,
            task,
        }
    }

    pub fn token(&self, uid: &str) -> String {
        self.server.user_token(uid)
    }

    fn agent_token(&self) -> String {
        self.server.agent_token("agent-test")
    }

    async fn send(&self, method: Method, url: String, token: Option<String>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// A deploy request as `uid`.
    pub async fn call(&self, method: Method, path: &str, uid: &str, body: Option<Value>) -> Reply {
        self.send(
            method,
            format!("{}{path}", self.server.url),
            Some(self.token(uid)),
            body,
        )
        .await
    }

    /// An acct GET as `uid` (`None`: anonymous).
    pub async fn acct(&self, acct: &Acct, path: &str, uid: Option<&str>) -> Reply {
        self.send(
            Method::GET,
            format!("{}{path}", acct.url),
            uid.map(|uid| self.token(uid)),
            None,
        )
        .await
    }

    async fn agent(&self, path: &str, body: Value) -> Reply {
        self.send(
            Method::POST,
            format!("{}{path}", self.server.url),
            Some(self.agent_token()),
            Some(body),
        )
        .await
    }

    /// A new run of the application by `uid`, queued (no agent runs it).
    pub async fn new_run(&self, uid: &str) -> String {
        let reply = self
            .call(
                Method::POST,
                &format!("/deploy/ns/{}/run/{}", self.ns, self.app),
                uid,
                Some(json!({"name": "r", "endpoint": self.endpoint, "inputs": {}})),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["run"].as_str().unwrap().to_string()
    }

    /// Plays the agent: starts the action in flight, writes `state` (if any) and reports
    /// `status`.
    pub async fn agent_finishes(&self, run: &str, state: Option<Value>, status: &str) {
        let reply = self.agent(&format!("/deploy/agent/run/{run}/started"), json!({})).await;
        assert_eq!(reply.status, 200, "started: {}", reply.body);
        if let Some(state) = state {
            let response = self
                .client
                .post(format!("{}/deploy/agent/run/{run}/state", self.server.url))
                .bearer_auth(self.agent_token())
                .json(&state)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
        }
        let reply = self
            .agent(
                &format!("/deploy/agent/run/{run}/finished"),
                json!({"status": status, "duration": 1.0}),
            )
            .await;
        assert_eq!(reply.status, 200, "finished: {}", reply.body);
    }

    /// Deploys `run` with `state`.
    pub async fn deploy(&self, run: &str, state: Value) {
        self.agent_finishes(run, Some(state), "deploy_success").await;
    }

    /// Asks for the destroy of `run` as alice and plays the agent reporting `status` with
    /// `state` left (a failed destroy leaves some resources).
    pub async fn destroy(&self, run: &str, state: Option<Value>, status: &str) {
        let reply = self
            .call(
                Method::DELETE,
                &format!("/deploy/ns/{}/run/{run}", self.ns),
                "alice",
                None,
            )
            .await;
        assert!(
            reply.status == 200 || reply.status == 202,
            "destroy: {} {}",
            reply.status,
            reply.body
        );
        self.agent_finishes(run, state, status).await;
    }

    /// The run's history timestamps, from deploy.
    pub async fn history(&self, run: &str) -> Vec<i64> {
        let reply = self
            .call(Method::GET, &format!("/deploy/ns/{}/run/{run}", self.ns), "alice", None)
            .await;
        reply.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["ts"].as_i64().unwrap())
            .collect()
    }

    /// acct's report of a run, once `ready` holds for it (polled; acct works asynchronously).
    pub async fn run_report_when(&self, acct: &Acct, run: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/acct/v2/ns/{}/run/{run}", self.ns);
        for _ in 0..300 {
            let reply = self.acct(acct, &path, Some("alice")).await;
            if reply.status == 200 && ready(&reply.body) {
                return reply.body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("acct never reported run {run} as expected");
    }

    /// Rows in acct's interval table.
    pub async fn interval_rows(&self) -> i64 {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM acct_intervals")
            .fetch_one(self.server.platform.db.pool())
            .await
            .unwrap();
        count
    }
}

/// A Terraform state (format 4) with `count` instances of `null_resource.worker` of `kind`,
/// one `null_resource.master` in module `module.head`, a `test_disk` of `size` GB, and an
/// unbilled type.
pub fn state(count: usize, kind: &str, size: u64) -> Value {
    let workers: Vec<Value> = (0..count)
        .map(|index| json!({"index_key": index, "schema_version": 0, "attributes": {"id": format!("w{index}"), "kind": kind}}))
        .collect();
    let mut resources = vec![
        json!({"mode": "managed", "type": "null_resource", "name": "master", "module": "module.head",
               "provider": "provider[\"registry.terraform.io/hashicorp/null\"]",
               "instances": [{"schema_version": 0, "attributes": {"id": "m", "kind": kind}}]}),
        json!({"mode": "managed", "type": "local_file", "name": "notes",
               "provider": "provider[\"registry.terraform.io/hashicorp/local\"]",
               "instances": [{"schema_version": 0, "attributes": {"id": "f", "content": "secret-ish"}}]}),
    ];
    if count > 0 {
        resources.push(json!({"mode": "managed", "type": "null_resource", "name": "worker",
            "provider": "provider[\"registry.terraform.io/hashicorp/null\"]", "instances": workers}));
    }
    if size > 0 {
        resources.push(json!({"mode": "managed", "type": "test_disk", "name": "data",
            "provider": "provider[\"registry.terraform.io/hashicorp/test\"]",
            "instances": [{"schema_version": 0, "attributes": {"id": "d", "size": size}}]}));
    }
    json!({"version": 4, "terraform_version": "1.0.3", "serial": 1, "lineage": "l", "outputs": {}, "resources": resources})
}
