//! The service's routes over HTTP, and its checked-in OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goterra_testing::TestServer;
use goterra_testing::db::ENGINES;

#[tokio::test]
async fn status_reports_health_to_anyone_and_capacity_to_admins_only() {
    for engine in ENGINES {
        let server = TestServer::start(engine, &[goterra_run_agent::spec()]).await.unwrap();
        let http = reqwest::Client::new();
        let status_as = |token: Option<String>| {
            let mut request = http.get(format!("{}/run-agent", server.url));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
        };
        for anonymous_or_user in [None, Some(server.token_for("alice", false))] {
            let status = status_as(anonymous_or_user).await;
            assert_eq!(status["message"], "ok");
            assert!(status["version"].is_string());
            assert!(status.get("capacity").is_none(), "{status}");
            assert!(status.get("running").is_none(), "{status}");
        }
        let status = status_as(Some(server.token_for("admin", true))).await;
        assert_eq!(status["message"], "ok");
        assert_eq!(status["capacity"], 2);
        assert_eq!(status["running"], serde_json::json!([]));
        assert!(status["version"].is_string());
        let document: serde_json::Value = reqwest::get(format!("{}/run-agent/openapi.json", server.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(document["paths"]["/run-agent"].is_object());
        server.stop().await;
    }
}

#[test]
fn openapi_document_is_current() {
    goterra_testing::assert_openapi_current("run-agent", &goterra_run_agent::document());
}

const AGENT: &str = env!("CARGO_BIN_EXE_goterra-run-agent");

fn amqp_url() -> String {
    std::env::var("GOT_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The environment of `goterra-run-agent` alone on the RabbitMQ queue `queue`, listening on
/// `port`, with a one-second wait for a feeder.
fn standalone_env(queue: &str, data_dir: &std::path::Path, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("GOT_SECRET", goterra_testing::TEST_SECRET.to_string()),
        ("GOT_AMQP", amqp_url()),
        ("GOT_RUN_QUEUE", queue.to_string()),
        ("GOT_AGENT_FEEDER_WAIT_SECS", "1".to_string()),
        ("GOT_LISTEN", format!("127.0.0.1:{port}")),
        ("GOT_DATA_DIR", data_dir.display().to_string()),
        ("GOT_LOG", "warn".to_string()),
    ]
}

/// An agent alone on a queue that no deploy feeds stops with an error naming the queue and
/// what to check, instead of waiting for runs forever; once a deploy announced itself as the
/// queue's feeder, the same agent starts.
#[tokio::test]
async fn a_standalone_agent_refuses_a_queue_no_deploy_feeds() {
    use goterra_bus::RunQueue;
    let queue_name = format!("test-unfed-{}", goterra_core::new_id());
    let data_dir = tempfile::tempdir().unwrap();
    let port = goterra_testing::free_port().unwrap();
    let refused = std::process::Command::new(AGENT)
        .envs(standalone_env(&queue_name, data_dir.path(), port))
        .output()
        .unwrap();
    assert!(!refused.status.success(), "the agent must not start");
    let errors = String::from_utf8_lossy(&refused.stderr);
    assert!(
        errors.contains(&format!("no deploy feeds the RabbitMQ queue `{queue_name}`"))
            && errors.contains("GOT_RUN_QUEUE"),
        "{errors}"
    );

    let queue = goterra_bus::RabbitQueue::new(goterra_core::Sensitive::new(amqp_url()), queue_name.clone());
    queue.announce_feeder().await.unwrap();
    let env = standalone_env(&queue_name, data_dir.path(), port);
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let agent = goterra_testing::SpawnedServer::start(AGENT, &[], &env, port, "/run-agent")
        .await
        .expect("a fed queue's agent starts");
    assert!(agent.terminate().unwrap().success());
    queue.delete().await.unwrap();
}
