//! `openapi/deploy.json` is the document the service serves. `GOT_UPDATE_OPENAPI=1 cargo test
//! -p goterra-deploy --test openapi` rewrites it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goterra_db::Engine;

fn checked_in_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/deploy.json")
}

#[test]
fn checked_in_document_is_current() {
    let mut current = serde_json::to_string_pretty(&goterra_deploy::openapi::document()).unwrap();
    current.push('\n');
    let path = checked_in_path();
    if std::env::var("GOT_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == current,
        "openapi/deploy.json is stale: run GOT_UPDATE_OPENAPI=1 cargo test -p goterra-deploy --test openapi"
    );
}

#[test]
fn every_route_is_documented() {
    let document = goterra_deploy::openapi::document();
    let paths: Vec<&String> = document.paths.paths.keys().collect();
    for path in [
        "/deploy/ns",
        "/deploy/ns/{id}",
        "/deploy/session/bind",
        "/deploy/ns/{id}/recipe",
        "/deploy/ns/{id}/recipe/{recipe}",
        "/deploy/ns/{id}/template/{template}",
        "/deploy/ns/{id}/app/{application}",
        "/deploy/ns/{id}/app/{application}/inputs",
        "/deploy/ns/{id}/endpoint/{endpoint}",
        "/deploy/ns/{id}/endpoint/{endpoint}/secret",
        "/deploy/ns/{id}/endpoint/{endpoint}/defaults",
        "/deploy/recipes",
        "/deploy/templates",
        "/deploy/apps",
        "/deploy/endpoints",
    ] {
        assert!(
            paths.iter().any(|p| p.as_str() == path),
            "{path} missing from {paths:?}"
        );
    }
}

#[tokio::test]
async fn the_service_serves_its_document() {
    let server = goterra_core::testing::TestServer::start(Engine::Sqlite, &[goterra_deploy::spec()])
        .await
        .unwrap();
    let served: serde_json::Value = reqwest::get(format!("{}/deploy/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served,
        serde_json::to_value(goterra_deploy::openapi::document()).unwrap()
    );
    let health: serde_json::Value = reqwest::get(format!("{}/deploy", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["message"], "ok");
}

#[test]
fn operation_ids_are_unique() {
    let document = serde_json::to_value(goterra_deploy::openapi::document()).unwrap();
    let mut ids = Vec::new();
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            ids.push(
                operation["operationId"]
                    .as_str()
                    .expect("every operation has an id")
                    .to_string(),
            );
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "{ids:?}");
}
