#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Accounting of the `examples/local` demo with real Terraform, on SQLite and PostgreSQL:
//! deploy, store, a run agent and acct in this process (the in-process event bus, as in
//! `goterra up`), a cluster of one master and N workers left up for a measured time, then
//! destroyed. acct must bill N+1 `null_resource` instances (each `for_each` instance on its own)
//! for the time deploy recorded, within a second of the time measured here, at the configured
//! price.
//!
//! Terraform comes from `$GOT_TERRAFORM_BIN` (providers in `$GOT_TERRAFORM_PLUGIN_DIR`), else
//! `~/.cache/goterra/tools` where `.ci/run` installs it. Without it the test is skipped with a
//! message, except under CI (`CI` set), where it fails.

use goterra_acct::config::{AcctConfig, Billing};
use goterra_acct::deploy::{HttpDeploy, RunSource};
use goterra_core::Claims;
use goterra_db::Engine;
use goterra_run_agent::agent::AgentOptions;
use goterra_run_agent::executor::ExecutorConfig;
use goterra_testing::db::ENGINES;
use goterra_testing::{TestServer, identity};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const WORKERS: u32 = 3;
const PRICE: f64 = 0.25;

fn tool(env: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var("HOME").ok().map(|home| PathBuf::from(home).join(default)))?;
    path.exists().then_some(path)
}

struct Platform {
    server: TestServer,
    client: reqwest::Client,
    acct_url: String,
    stop: CancellationToken,
}

impl Platform {
    async fn get(&self, url: String, uid: &str) -> (u16, Value) {
        let token = self.server.platform.tokens.issue(&Claims::for_user(&identity(uid)));
        let response = self.client.get(url).bearer_auth(token).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn wait_status(&self, path: &str, wanted: &str) -> Value {
        for _ in 0..900 {
            let (_, run) = self.get(format!("{}{path}", self.server.url), "admin").await;
            let status = run["status"].as_str().unwrap_or_default().to_string();
            if status == wanted {
                return run;
            }
            assert!(!status.ends_with("_failure"), "the run failed: {run}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the run never reached {wanted}");
    }
}

async fn demo_run_is_billed(engine: Engine, bin: PathBuf, plugins: Option<PathBuf>) {
    let server = TestServer::start_with(engine, &[goterra_deploy::spec(), goterra_store::spec()], |config| {
        config.run_queue = format!("acct-e2e-{}", goterra_core::new_id());
    })
    .await
    .unwrap();
    server.platform.db.migrate(goterra_acct::MIGRATIONS).await.unwrap();
    let vms = server.data_dir.path().join("vms");
    let admin = goterra_client::Client::new(&server.url)
        .unwrap()
        .with_token(server.platform.tokens.issue(&Claims::for_user(&identity("admin"))));
    let demo = goterra_deploy::demo::load(&admin, &vms).await.unwrap();

    // The agent, in this process.
    let work = tempfile::tempdir().unwrap();
    let options = AgentOptions {
        heartbeat: Duration::from_secs(1),
        executor: ExecutorConfig {
            terraform_bin: bin,
            plugin_dir: plugins,
            kill_grace: Duration::from_secs(5),
            work_dir: Some(work.path().to_path_buf()),
            ..ExecutorConfig::default()
        },
        ..AgentOptions::default()
    };
    let queue = goterra_bus::platform_run_queue(&server.platform);
    let (_agent, agent_stop) = goterra_run_agent::start_agent(&server.platform, queue, options).unwrap();

    // acct, billing the demo's null_resources.
    let config = AcctConfig {
        billing: Billing {
            default: BTreeMap::from([(
                "null_resource".to_string(),
                BTreeMap::from([("generic".to_string(), PRICE)]),
            )]),
            ..Billing::default()
        },
        resync_seconds: 0,
        ..AcctConfig::default()
    };
    let source: Arc<dyn RunSource> = Arc::new(HttpDeploy::new(&server.url, server.platform.tokens.clone()).unwrap());
    let stop = CancellationToken::new();
    let (router, _accountant) = goterra_acct::router_with(server.platform.clone(), config, source, stop.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let acct_url = format!("http://{}", listener.local_addr().unwrap());
    let serving = stop.clone();
    tokio::spawn(async move {
        let _ = goterra_core::http::serve(listener, router, async move { serving.cancelled().await }).await;
    });
    let platform = Platform {
        server,
        client: reqwest::Client::new(),
        acct_url,
        stop,
    };

    let token = platform
        .server
        .platform
        .tokens
        .issue(&Claims::for_user(&identity("admin")));
    let response = platform
        .client
        .post(format!(
            "{}/deploy/ns/{}/run/{}",
            platform.server.url, demo.namespace, demo.application
        ))
        .bearer_auth(&token)
        .json(&demo.run_request(WORKERS))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let run = response.json::<Value>().await.unwrap()["run"]
        .as_str()
        .unwrap()
        .to_string();
    let run_path = format!("/deploy/ns/{}/run/{run}", demo.namespace);
    platform.wait_status(&run_path, "deploy_success").await;
    let deployed = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let response = platform
        .client
        .delete(format!("{}{run_path}", platform.server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    platform.wait_status(&run_path, "destroy_success").await;
    let measured = deployed.elapsed().as_secs_f64();

    let report_url = format!("{}/acct/v2/ns/{}/run/{run}", platform.acct_url, demo.namespace);
    let mut report = Value::Null;
    for _ in 0..300 {
        let (status, body) = platform.get(report_url.clone(), "admin").await;
        let resources = body["resources"].as_array().cloned().unwrap_or_default();
        if status == 200 && !resources.is_empty() && resources.iter().all(|r| r["end"].is_i64()) {
            report = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resources = report["resources"].as_array().expect("acct billed the run");
    assert_eq!(resources.len(), WORKERS as usize + 1, "{report}");
    for resource in resources {
        assert_eq!(resource["resource"], "null_resource");
        assert!(
            resource["address"].as_str().unwrap().starts_with("null_resource.vm[\""),
            "{resource}"
        );
        let seconds = resource["seconds"].as_f64().unwrap();
        assert!(
            (seconds - measured).abs() <= 1.0 + 1e-9,
            "billed {seconds} s, measured {measured:.2} s"
        );
    }
    let seconds = resources[0]["seconds"].as_f64().unwrap();
    let expected = (WORKERS as f64 + 1.0) * seconds * PRICE;
    assert!((report["cost"].as_f64().unwrap() - expected).abs() < 1e-9, "{report}");

    platform.stop.cancel();
    agent_stop.cancel();
    platform.server.stop().await;
}

#[tokio::test]
async fn the_demo_cluster_is_billed_per_vm_for_the_time_it_was_up() {
    let Some(bin) = tool("GOT_TERRAFORM_BIN", ".cache/goterra/tools/bin/terraform") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide Terraform: run the tests through .ci/run"
        );
        eprintln!("skipped: no Terraform binary (set GOT_TERRAFORM_BIN, or run .ci/run once)");
        return;
    };
    let plugins = tool("GOT_TERRAFORM_PLUGIN_DIR", ".cache/goterra/tools/plugins");
    for engine in ENGINES {
        demo_run_is_billed(engine, bin.clone(), plugins.clone()).await;
    }
}
