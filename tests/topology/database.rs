//! PostgreSQL unreachable for a few seconds: requests that need it answer 503 quickly (no
//! hang), and the service recovers by itself once the database is back.

use crate::proxy::FaultProxy;
use goterra_core::{Sensitive, ServiceSpec};
use goterra_db::Engine;
use goterra_testing::TestServer;
use goterra_testing::db::postgres_admin_url;
use reqwest::StatusCode;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

fn services() -> Vec<ServiceSpec> {
    vec![goterra_auth::spec(), goterra_deploy::spec()]
}

fn postgres_addr() -> SocketAddr {
    let url = url::Url::parse(&postgres_admin_url()).unwrap();
    let host = url.host_str().unwrap().to_string();
    let port = url.port().unwrap_or(5432);
    (host.as_str(), port).to_socket_addrs().unwrap().next().unwrap()
}

/// The same database URL, through the proxy.
fn through(proxy: &FaultProxy, database_url: &str) -> String {
    let mut url = url::Url::parse(database_url).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    url.to_string()
}

#[tokio::test]
async fn postgres_outage_gets_fast_503_then_recovers() {
    let proxy = FaultProxy::start(postgres_addr()).await;
    let server = TestServer::start_with(Engine::Postgres, &services(), |config| {
        let direct = config.database.url.as_ref().unwrap().expose().clone();
        config.database.url = Some(Sensitive::new(through(&proxy, &direct)));
    })
    .await
    .unwrap();
    let token = server.token_for("admin", true);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let list = || {
        client
            .get(format!("{}/deploy/ns", server.url))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(list().await.unwrap().status(), StatusCode::OK);

    proxy.cut();
    let asked = Instant::now();
    let response = list().await.unwrap();
    let waited = asked.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("database is unavailable"), "{message}");
    assert!(
        !message.contains("127.0.0.1") && !message.contains("postgres"),
        "{message}"
    );
    // Bounded by the pool's acquire timeout (3 s), not by the client's 30 s: no hang.
    assert!(waited < Duration::from_secs(10), "the request hung {waited:?}");
    // Readiness says the same to the proxy in front.
    let ready = client.get(format!("{}/deploy/ready", server.url)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = list().await.unwrap().status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "only 503 while recovering");
        assert!(
            Instant::now() < deadline,
            "deploy did not recover after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = client.get(format!("{}/deploy/ready", server.url)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    server.stop().await;
}
