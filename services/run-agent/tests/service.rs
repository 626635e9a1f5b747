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
