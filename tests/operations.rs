#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Readiness and metrics routes (`GET /<prefix>/ready`, `GET /<prefix>/metrics`) of every
//! service, on both engines, with the real Redis and RabbitMQ of the machine, and with a broker
//! that does not answer.

use goterra_core::{Sensitive, ServiceSpec};
use goterra_db::Engine;
use goterra_testing::db::ENGINES;
use goterra_testing::{TestServer, free_port};
use reqwest::StatusCode;
use serde_json::Value;

const PREFIXES: [&str; 5] = ["auth", "deploy", "store", "run-agent", "acct"];

fn every_service() -> Vec<ServiceSpec> {
    vec![
        goterra_auth::spec(),
        goterra_deploy::spec(),
        goterra_store::spec(),
        goterra_run_agent::spec(),
        goterra_acct::spec(),
    ]
}

async fn get(url: String) -> (StatusCode, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn every_service_is_ready_and_counted(engine: Engine) {
    let server = TestServer::start(engine, &every_service()).await.unwrap();
    for prefix in PREFIXES {
        let (status, body) = get(format!("{}/{prefix}/ready", server.url)).await;
        assert_eq!(status, StatusCode::OK, "/{prefix}/ready: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["message"], "ready");
        assert_eq!(body["checks"]["database"], "ok", "{prefix}");
    }
    for _ in 0..3 {
        assert_eq!(
            get(format!("{}/deploy/ns", server.url)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    for prefix in PREFIXES {
        let response = reqwest::get(format!("{}/{prefix}/metrics", server.url)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "/{prefix}/metrics");
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        let text = response.text().await.unwrap();
        // Requests are counted under the route they matched, with their status.
        let counted = text.lines().any(|line| {
            line.starts_with("goterra_http_requests_total{")
                && line.contains(r#"route="/deploy/ns""#)
                && line.contains(r#"status="401""#)
        });
        assert!(counted, "/{prefix}/metrics counts GET /deploy/ns:\n{text}");
        assert!(
            text.contains("goterra_http_request_duration_seconds_bucket"),
            "latency histogram:\n{text}"
        );
        assert!(text.contains("goterra_db_pool_connections"), "pool use:\n{text}");
        // Each service's own figures (one process here: every prefix shows them all).
        for status in ["deploy_pending", "deploy_in_progress", "destroy_success", "canceled"] {
            let line = format!("goterra_deploy_runs{{status=\"{status}\"}} 0");
            assert!(text.lines().any(|l| l == line), "runs by status ({line}):\n{text}");
        }
        assert!(
            text.lines().any(|l| l == "goterra_deploy_queue_jobs 0"),
            "queue depth:\n{text}"
        );
        assert!(text.contains("goterra_store_waiters"), "store waiters:\n{text}");
        assert!(
            text.contains("goterra_agent_terraform_processes"),
            "running Terraform processes:\n{text}"
        );
        // A scrape does not count itself.
        assert!(!text.contains(r#"route="/auth/metrics""#), "{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn every_service_is_ready_and_counted_sqlite() {
    every_service_is_ready_and_counted(Engine::Sqlite).await;
}

#[tokio::test]
async fn every_service_is_ready_and_counted_postgres() {
    every_service_is_ready_and_counted(Engine::Postgres).await;
}

#[tokio::test]
async fn store_ready_is_not_taken_for_a_deployment_id() {
    let server = TestServer::start(Engine::Sqlite, &[goterra_store::spec()])
        .await
        .unwrap();
    let (status, body) = get(format!("{}/store/ready", server.url)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn readiness_checks_the_real_redis_and_broker() {
    for engine in ENGINES {
        let server = TestServer::start_with(engine, &[goterra_store::spec()], |config| {
            config.redis.url = Some(Sensitive::new("redis://127.0.0.1:6379".to_string()));
            config.redis.prefix = format!("goterra-ops-{}", goterra_core::new_id());
            config.amqp = Some(Sensitive::new("amqp://guest:guest@127.0.0.1:5672/%2f".to_string()));
        })
        .await
        .unwrap();
        let (status, body) = get(format!("{}/store/ready", server.url)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["checks"]["redis"], "ok");
        assert_eq!(body["checks"]["broker"], "ok");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_broker_that_does_not_answer_makes_the_service_unready_quickly() {
    let closed = free_port().unwrap();
    let server = TestServer::start_with(Engine::Sqlite, &[goterra_auth::spec()], |config| {
        config.amqp = Some(Sensitive::new(format!(
            "amqp://guest:secret-password@127.0.0.1:{closed}/%2f"
        )));
    })
    .await
    .unwrap();
    let (status, body) = get(format!("{}/auth/ready", server.url)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed["checks"]["database"], "ok");
    assert_eq!(parsed["checks"]["broker"], "the broker does not answer");
    assert!(parsed["message"].as_str().unwrap().contains("broker"), "{body}");
    assert!(!body.contains("secret-password"), "no credential in the answer: {body}");
    // Auth does not keep data in Redis, so Redis is not checked for it.
    assert!(parsed["checks"].get("redis").is_none());
    server.stop().await;
}
