//! Bad input never gets a 5xx and never changes anything (reference §10 B-7, B-22, S-14).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

mod common;

use common::{Api, app_body, endpoint_body, recipe_body, template_body};
use goterra_db::Engine;
use reqwest::Method;

async fn bad_requests_are_4xx_and_change_nothing(engine: Engine) {
    let api = Api::start(engine).await;
    let ns = api.namespace("alice", "team", &["bob"]).await;
    let recipe = api.create(&ns, "recipe", "alice", recipe_body("r", true)).await;
    let template = api.create(&ns, "template", "alice", template_body("t", true)).await;
    let app = api
        .create(&ns, "app", "alice", app_body("a", true, &template, &recipe))
        .await;
    let endpoint = api.create(&ns, "endpoint", "alice", endpoint_body("e", true)).await;
    let bodies = [
        "",
        "{",
        "null",
        "[]",
        "42",
        "\"text\"",
        "{\"name\": 5}",
        "{\"name\": null, \"public\": null, \"defaults\": null}",
        "{\"name\": [\"x\"], \"public\": 2, \"defaults\": 3}",
    ];
    // Bodies wrong for one kind of object only (other kinds ignore unknown fields).
    let specific = [
        (Method::PUT, format!("/deploy/ns/{ns}"), "{\"members\": [null]}"),
        (Method::PUT, format!("/deploy/ns/{ns}"), "{\"owners\": []}"),
        (Method::PUT, format!("/deploy/ns/{ns}"), "{\"name\": \"a\\u0000b\"}"),
        (
            Method::PUT,
            format!("/deploy/ns/{ns}/recipe/{recipe}"),
            "{\"inputs\": {\"a\": 1}}",
        ),
        (
            Method::PUT,
            format!("/deploy/ns/{ns}/recipe/{recipe}"),
            "{\"parent\": \"../../etc\"}",
        ),
        (
            Method::PUT,
            format!("/deploy/ns/{ns}/template/{template}"),
            "{\"data\": {\"openstack\": 7}}",
        ),
        (
            Method::PUT,
            format!("/deploy/ns/{ns}/template/{template}"),
            "{\"data\": {\"openstack\": \"x = \"}}",
        ),
        (
            Method::PUT,
            format!("/deploy/ns/{ns}/app/{app}"),
            "{\"templaterecipes\": {\"recipes\": [1]}}",
        ),
        (
            Method::PUT,
            format!("/deploy/ns/{ns}/app/{app}"),
            "{\"template\": \"' OR 1=1 --\"}",
        ),
        (
            Method::PUT,
            format!("/deploy/ns/{ns}/endpoint/{endpoint}"),
            "{\"config\": {\"x\\\" = 1\": \"y\"}}",
        ),
        (
            Method::PUT,
            format!("/deploy/ns/{ns}/endpoint/{endpoint}/secret"),
            "{\"name\": \"u\", \"password\": 5}",
        ),
    ];
    let targets = [
        (Method::POST, "/deploy/ns".to_string()),
        (Method::PUT, format!("/deploy/ns/{ns}")),
        (Method::POST, format!("/deploy/ns/{ns}/recipe")),
        (Method::PUT, format!("/deploy/ns/{ns}/recipe/{recipe}")),
        (Method::POST, format!("/deploy/ns/{ns}/template")),
        (Method::PUT, format!("/deploy/ns/{ns}/template/{template}")),
        (Method::POST, format!("/deploy/ns/{ns}/app")),
        (Method::PUT, format!("/deploy/ns/{ns}/app/{app}")),
        (Method::POST, format!("/deploy/ns/{ns}/endpoint")),
        (Method::PUT, format!("/deploy/ns/{ns}/endpoint/{endpoint}")),
        (Method::PUT, format!("/deploy/ns/{ns}/endpoint/{endpoint}/secret")),
        (Method::PUT, format!("/deploy/ns/{ns}/endpoint/{endpoint}/defaults")),
    ];
    let before = api.snapshot().await;
    for (method, path) in &targets {
        for body in bodies {
            for user in ["bob", "admin"] {
                let reply = api.raw(method.clone(), path, Some(user), Some(body)).await;
                assert!((400..500).contains(&reply.status), "{method} {path} {body}: {reply:?}");
                assert!(reply.body["message"].is_string(), "{method} {path} {body}: {reply:?}");
            }
        }
    }
    for (method, path, body) in &specific {
        let reply = api.raw(method.clone(), path, Some("alice"), Some(body)).await;
        assert_eq!(reply.status, 400, "{method} {path} {body}: {reply:?}");
    }
    // Unknown ids, odd characters in paths, bad tokens.
    for path in [
        "/deploy/ns/nope".to_string(),
        format!("/deploy/ns/{ns}/recipe/nope"),
        format!("/deploy/ns/{ns}/app/nope/inputs"),
        format!("/deploy/ns/{ns}/endpoint/nope/secret"),
        format!("/deploy/ns/{ns}/recipe/%27%3B%20DROP%20TABLE%20deploy_recipes"),
    ] {
        let methods = if path.ends_with("/inputs") {
            vec![Method::GET]
        } else {
            vec![Method::GET, Method::DELETE]
        };
        for method in methods {
            let reply = api.call(method.clone(), &path, Some("bob"), None).await;
            assert_eq!(reply.status, 404, "{method} {path}: {reply:?}");
        }
    }
    let client = reqwest::Client::new();
    for header in ["Bearer garbage", "Bearer ", "Basic abc"] {
        let reply = client
            .get(format!("{}/deploy/ns", api.server.url))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 401, "{header}");
    }
    assert_eq!(api.snapshot().await, before, "refused requests changed nothing");
}

engines::engine_tests!(bad_requests_are_4xx_and_change_nothing,);
