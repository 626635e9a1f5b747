//! The service's routes over HTTP, and its checked-in OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goterra_core::testing::TestServer;
use goterra_db::testing::ENGINES;
use utoipa::OpenApi;

#[tokio::test]
async fn status_reports_version_capacity_and_running_runs() {
    for engine in ENGINES {
        let server = TestServer::start(engine, &[goterra_run_agent::spec()]).await.unwrap();
        let status: serde_json::Value = reqwest::get(format!("{}/run-agent", server.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
    goterra_core::testing::assert_openapi_current("run-agent", &goterra_run_agent::ApiDoc::openapi());
}
