//! End to end with real Terraform: the `examples/local` cluster deployed by a run agent in the
//! same process (embedded queue), workers receiving the master's token through the store, then
//! destroy stopping the "VMs" and deleting the store deployment. Skipped (with a message) when no
//! Terraform binary is found: `$GOT_TERRAFORM_BIN` or `~/.cache/goterra/tools/bin/terraform`,
//! providers in `$GOT_TERRAFORM_PLUGIN_DIR` or `~/.cache/goterra/tools/plugins`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goterra_core::testing::TestServer;
use goterra_core::{Claims, Identity};
use goterra_db::Engine;
use goterra_run_agent::agent::AgentOptions;
use goterra_run_agent::executor::ExecutorConfig;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var("HOME").ok().map(|home| PathBuf::from(home).join(default)))?;
    path.exists().then_some(path)
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/local")
            .join(name),
    )
    .unwrap()
}

struct Client {
    url: String,
    http: reqwest::Client,
    server_tokens: Arc<goterra_core::TokenCodec>,
}

impl Client {
    fn token(&self, uid: &str) -> String {
        self.server_tokens.issue(&Claims::for_user(&Identity {
            uid: uid.into(),
            admin: uid == "admin",
            super_user: false,
            email: String::new(),
            kind: String::new(),
        }))
    }

    async fn call(&self, method: reqwest::Method, path: &str, uid: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(self.token(uid));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create(&self, ns: &str, kind: &str, uid: &str, body: Value) -> String {
        let (status, reply) = self
            .call(
                reqwest::Method::POST,
                &format!("/deploy/ns/{ns}/{kind}"),
                uid,
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{kind}: {reply}");
        reply[kind].as_str().unwrap().to_string()
    }

    async fn wait_status(&self, path: &str, wanted: &str) -> Value {
        for _ in 0..240 {
            let (_, run) = self.call(reqwest::Method::GET, path, "alice", None).await;
            let status = run["status"].as_str().unwrap_or_default().to_string();
            if status == wanted {
                return run;
            }
            assert!(!status.ends_with("_failure"), "run failed: {run}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("run never reached {wanted}");
    }
}

#[tokio::test]
async fn the_local_cluster_deploys_and_is_destroyed_with_real_terraform() {
    let (Some(terraform), plugins) = (
        tool("GOT_TERRAFORM_BIN", ".cache/goterra/tools/bin/terraform"),
        tool("GOT_TERRAFORM_PLUGIN_DIR", ".cache/goterra/tools/plugins"),
    ) else {
        eprintln!("skipped: no Terraform binary (GOT_TERRAFORM_BIN)");
        return;
    };
    let server = TestServer::start_with(
        Engine::Sqlite,
        &[goterra_deploy::spec(), goterra_store::spec()],
        |config| {
            config.acl.allow_user_create_ns = true;
        },
    )
    .await
    .unwrap();
    let queue = goterra_deploy::default_queue(&server.platform);
    let options = AgentOptions {
        heartbeat: Duration::from_secs(2),
        executor: ExecutorConfig {
            terraform_bin: terraform,
            plugin_dir: plugins,
            kill_grace: Duration::from_secs(5),
            ..ExecutorConfig::default()
        },
        ..AgentOptions::default()
    };
    let (_agent, shutdown) = goterra_run_agent::start_agent(&server.platform, queue, options).unwrap();
    let client = Client {
        url: server.url.clone(),
        http: reqwest::Client::new(),
        server_tokens: server.platform.tokens.clone(),
    };
    let data_dir = server.data_dir.path().join("vms");

    let (status, reply) = client
        .call(
            reqwest::Method::POST,
            "/deploy/ns",
            "alice",
            Some(json!({"name": "demo"})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let ns = reply["ns"].as_str().unwrap().to_string();
    let endpoint = client
        .create(
            &ns,
            "endpoint",
            "alice",
            json!({"name": "local", "kind": "local", "config": {"data_dir": data_dir.display().to_string()}}),
        )
        .await;
    let master = client
        .create(
            &ns,
            "recipe",
            "alice",
            json!({"name": "master", "base": ["local"], "script": example("master.sh")}),
        )
        .await;
    let worker = client
        .create(
            &ns,
            "recipe",
            "alice",
            json!({"name": "worker", "base": ["local"], "script": example("worker.sh")}),
        )
        .await;
    let template = client
        .create(
            &ns,
            "template",
            "admin",
            json!({"name": "local-cluster", "data": {"local": example("local.tf")}, "varrecipes": ["master", "worker"],
                   "inputs": {"workers": "Number of workers"}, "defaults": {"workers": ["2"]}}),
        )
        .await;
    let app = client
        .create(&ns, "app", "alice", json!({"name": "cluster", "template": template, "templaterecipes": {"master": [master], "worker": [worker]}}))
        .await;

    // A hostile value reaches the VMs as data: nothing in it is executed.
    let pwned = data_dir.join("pwned");
    let hostile = format!(
        "$(touch {p}) `touch {p}` ${{x}} '\" ; touch {p}\nline2",
        p = pwned.display()
    );
    let (status, reply) = client
        .call(
            reqwest::Method::POST,
            &format!("/deploy/ns/{ns}/run/{app}"),
            "alice",
            Some(
                json!({"name": "demo", "endpoint": endpoint, "inputs": {"workers": "2", "motto": hostile},
                        "secretinputs": {"api_secret": "e2e-secret-xyz"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    let id = reply["run"].as_str().unwrap().to_string();
    let path = format!("/deploy/ns/{ns}/run/{id}");
    let run = client.wait_status(&path, "deploy_success").await;
    assert!(run["outputs"].as_str().unwrap().contains("worker-1"), "{run}");
    assert_eq!(run["inputs"]["motto"], hostile.as_str());

    // Workers get the master's token through the store.
    let run_dir = data_dir.join(&id);
    let master_token = {
        let mut token = String::new();
        for _ in 0..120 {
            let read = |vm: &str| std::fs::read_to_string(run_dir.join(vm).join("master_token")).unwrap_or_default();
            let (m, w0, w1) = (read("master-0"), read("worker-0"), read("worker-1"));
            if !m.trim().is_empty() && m == w0 && m == w1 {
                token = m;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        token
    };
    assert!(
        !master_token.trim().is_empty(),
        "the workers never got the master's token"
    );
    let deployment = run["deployment"].as_str().unwrap().to_string();
    let (status, value) = client
        .call(
            reqwest::Method::GET,
            &format!("/store/{deployment}/master_token"),
            "alice",
            None,
        )
        .await;
    assert_eq!(status, 200, "{value}");

    let (status, log) = client
        .call(reqwest::Method::GET, &format!("{path}/log"), "alice", None)
        .await;
    assert_eq!(status, 200);
    let text = log.to_string();
    assert!(text.contains("Apply complete"), "{text}");
    assert!(!text.contains("e2e-secret-xyz"));

    let (status, reply) = client.call(reqwest::Method::DELETE, &path, "alice", None).await;
    assert_eq!(status, 200, "{reply}");
    client.wait_status(&path, "destroy_success").await;
    assert!(!run_dir.join("master-0").exists(), "destroy removes the VMs");
    let (status, _) = client
        .call(reqwest::Method::GET, &format!("/store/{deployment}"), "alice", None)
        .await;
    assert_eq!(status, 404, "the store deployment is deleted");
    shutdown.cancel();
    server.stop().await;
}
