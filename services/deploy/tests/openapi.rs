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

/// Routes served but not in the document, each for a reason.
const UNDOCUMENTED: &[&str] = &[
    // The health check and the document itself.
    "/deploy",
    "/deploy/openapi.json",
    // Terraform's http state backend (GET, POST, LOCK, UNLOCK, DELETE): described in the `agent`
    // tag, as OpenAPI has no LOCK/UNLOCK methods.
    "/deploy/agent/run/{id}/state",
];

/// A path with its parameters unnamed (`/deploy/ns/{}/run/{}`): the router needs one name per
/// position (`{run}`), where the document names what the client gives (`{application}` to start
/// a run).
fn shape(path: &str) -> String {
    let mut shape = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                shape.push_str("{}");
            }
            '}' => in_param = false,
            c if !in_param => shape.push(c),
            _ => {}
        }
    }
    shape
}

/// `(method, path shape)` of every documented operation.
fn documented() -> Vec<(String, String)> {
    let document = serde_json::to_value(goterra_deploy::openapi::document()).unwrap();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.push((method.to_ascii_uppercase(), shape(path)));
        }
    }
    operations
}

#[test]
fn every_route_is_documented() {
    let documented = documented();
    let routes = goterra_deploy::routes();
    assert!(routes.len() > 40, "the route table looks empty: {}", routes.len());
    for route in routes {
        if UNDOCUMENTED.contains(&route.path.as_str()) {
            continue;
        }
        let method = route.method.expect("only undocumented routes take any method");
        assert!(
            documented.contains(&(method.to_string(), shape(&route.path))),
            "{method} {} is served but not documented",
            route.path
        );
    }
}

#[test]
fn every_documented_operation_is_served() {
    let served: Vec<(String, String)> = goterra_deploy::routes()
        .into_iter()
        .filter_map(|route| Some((route.method?.to_string(), shape(&route.path))))
        .collect();
    for operation in documented() {
        // The health route is served by the platform for every service.
        if operation == ("GET".to_string(), "/deploy".to_string()) {
            continue;
        }
        assert!(
            served.contains(&operation),
            "{operation:?} is documented but not served"
        );
    }
}

/// What the service serves is the checked-in document (so clients generated from the file
/// match the running service).
#[tokio::test]
async fn the_service_serves_the_checked_in_document() {
    let server = goterra_testing::TestServer::start(Engine::Sqlite, &[goterra_deploy::spec()])
        .await
        .unwrap();
    let served: serde_json::Value = reqwest::get(format!("{}/deploy/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checked_in: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(checked_in_path()).unwrap()).unwrap();
    assert_eq!(served, checked_in);
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
