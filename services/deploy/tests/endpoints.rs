//! Endpoints, users' endpoint secrets and defaults, `/inputs`, and the API-key bind.
//! Bugs of the original fixed here (reference §10): S-8, S-15, B-3, B-7, B-19, B-23.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

mod common;

use async_trait::async_trait;
use common::{Api, endpoint_body};
use goterra_core::{ApiError, ApiKeyResolver, Identity, Sensitive, ServiceSpec};
use goterra_db::Engine;
use goterra_deploy::crypto::SecretBox;
use reqwest::Method;
use serde_json::json;
use sqlx::Row;
use std::sync::Arc;

async fn endpoints_are_validated_and_updatable(engine: Engine) {
    let api = Api::start(engine).await;
    let ns = api.namespace("alice", "team", &[]).await;
    let path = format!("/deploy/ns/{ns}/endpoint");
    let before = api.snapshot().await;
    for (body, field) in [
        (json!({"name": "e"}), "kind"),
        (json!({"name": "e", "kind": "open stack"}), "kind"),
        (
            json!({"name": "e", "kind": "openstack", "config": {"password": "x"}}),
            "config",
        ),
        (
            json!({"name": "e", "kind": "openstack", "config": {"a-b": "x"}}),
            "config",
        ),
        (
            json!({"name": "e", "kind": "openstack", "features": {"ip public": "1"}}),
            "features",
        ),
        (
            json!({"name": "e", "kind": "openstack", "inputs": {"user_name": "x"}}),
            "inputs",
        ),
        (json!({"name": "e", "kind": "openstack", "images": {"": "x"}}), "images"),
        (json!({"name": "e", "kind": "openstack", "images": ["x"]}), "images"),
    ] {
        let reply = api.post(&path, "alice", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert!(reply.message().starts_with(field), "{body}: {reply:?}");
    }
    assert_eq!(api.snapshot().await, before);
    let id = api
        .create(
            &ns,
            "endpoint",
            "alice",
            json!({"name": "cloud", "kind": "openstack", "ts": 5,
            "config": {"auth_url": "https://cloud"}, "features": {"ip_public": "1"}, "inputs": {"tenant": "Project"}}),
        )
        .await;
    let item = format!("{path}/{id}");
    // B-19: endpoints have a PUT and a server-set ts.
    let reply = api.put(&item, "alice", json!({"images": {"debian": "img-2"}})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let endpoint = &reply.body["endpoint"];
    assert_eq!(endpoint["images"], json!({"debian": "img-2"}));
    assert_eq!(endpoint["config"], json!({"auth_url": "https://cloud"}));
    assert!(endpoint["ts"].as_i64().unwrap() > 5);
    assert_eq!(api.post(&path, "alice", endpoint_body("cloud", true)).await.status, 409);
}

async fn secrets_are_one_per_user_and_endpoint_encrypted_and_never_returned(engine: Engine) {
    let api = Api::start(engine).await;
    let ns = api.namespace("alice", "team", &[]).await;
    let public = api.create(&ns, "endpoint", "alice", endpoint_body("pub", true)).await;
    let private = api.create(&ns, "endpoint", "alice", endpoint_body("priv", false)).await;
    let secret = format!("/deploy/ns/{ns}/endpoint/{public}/secret");
    let mut replies = Vec::new();

    assert_eq!(api.get(&secret, "alice").await.status, 404);
    let reply = api
        .put(&secret, "alice", json!({"name": "me", "password": "first-pass"}))
        .await;
    assert_eq!(reply.body, json!({"message": "password set for endpoint"}));
    // B-3: a second PUT replaces the first, user name included.
    replies.push(
        api.put(&secret, "alice", json!({"name": "me2", "password": "second-pass"}))
            .await,
    );
    let reply = api.get(&secret, "alice").await;
    assert_eq!(
        reply.body,
        json!({"message": "secret found", "uid": "me2", "name": "me2"})
    );
    replies.push(reply);
    // S-15: anyone may keep a secret for a public endpoint; a private one is 403, not 500.
    assert_eq!(
        api.put(&secret, "bob", json!({"name": "b", "password": "bob-pass"}))
            .await
            .status,
        200
    );
    let reply = api
        .put(
            &format!("/deploy/ns/{ns}/endpoint/{private}/secret"),
            "bob",
            json!({"name": "b", "password": "x"}),
        )
        .await;
    assert_eq!(reply.status, 403);
    // Bad bodies are 400 (B-7).
    for body in [
        json!({"name": "me"}),
        json!({"name": "", "password": "x"}),
        json!({"name": "me", "password": ""}),
    ] {
        assert_eq!(api.put(&secret, "alice", body).await.status, 400);
    }
    let reply = api.raw(Method::PUT, &secret, Some("alice"), Some("{not json")).await;
    assert_eq!(reply.status, 400);
    let reply = api
        .put(&secret, "alice", json!({"name": "me", "password": 987654321}))
        .await;
    assert_eq!(reply.status, 400);
    assert!(!reply.text.contains("987654321"), "{reply:?}");

    // S-8: stored encrypted (versioned AES-GCM), one row per (user, endpoint).
    let rows = sqlx::query("SELECT uid, username, password FROM deploy_endpoint_secrets ORDER BY uid")
        .fetch_all(api.server.platform.db.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let stored: String = rows[0].try_get("password").unwrap();
    assert!(!stored.contains("second-pass"));
    let secrets = SecretBox::from_config(&api.server.platform.config).unwrap();
    assert_eq!(secrets.decrypt(&stored).unwrap().expose(), b"second-pass");

    // Nothing ever returns a password.
    replies.push(api.get(&format!("/deploy/ns/{ns}/endpoint/{public}"), "alice").await);
    replies.push(api.get(&format!("/deploy/ns/{ns}/endpoint"), "alice").await);
    replies.push(api.get("/deploy/endpoints", "bob").await);
    for reply in &replies {
        assert!(!reply.text.contains("pass\""), "{reply:?}");
        assert!(
            !reply.text.contains("second-pass") && !reply.text.contains(&stored),
            "{reply:?}"
        );
    }

    assert_eq!(
        api.delete(&secret, "alice").await.body,
        json!({"message": "secret removed"})
    );
    assert_eq!(api.get(&secret, "alice").await.status, 404);
    assert_eq!(
        api.get(&secret, "bob").await.status,
        200,
        "only the caller's own secret went"
    );
    // Deleting the endpoint deletes its secrets and defaults.
    api.put(
        &format!("/deploy/ns/{ns}/endpoint/{public}/defaults"),
        "alice",
        json!({"defaults": {"a": ["b"]}}),
    )
    .await;
    assert_eq!(
        api.delete(&format!("/deploy/ns/{ns}/endpoint/{public}"), "alice")
            .await
            .status,
        200
    );
    let left = sqlx::query("SELECT uid FROM deploy_endpoint_secrets")
        .fetch_all(api.server.platform.db.pool())
        .await
        .unwrap();
    assert!(left.is_empty());
    assert_eq!(api.get(&secret, "bob").await.status, 404);
}

async fn inputs_merge_templates_recipes_and_endpoints(engine: Engine) {
    let api = Api::start(engine).await;
    let ns = api.namespace("alice", "team", &[]).await;
    let other = api.namespace("olga", "other", &[]).await;
    let root = api
        .create(
            &ns,
            "recipe",
            "alice",
            json!({"name": "root", "base": ["debian"],
            "inputs": {"size": "Root size", "port": "Port"}, "defaults": {"size": ["1"], "port": ["80"]}}),
        )
        .await;
    let child = api
        .create(
            &ns,
            "recipe",
            "alice",
            json!({"name": "child", "parent": root,
            "inputs": {"size": "Child size"}, "defaults": {"size": ["2"]}}),
        )
        .await;
    let template = api
        .create(
            &ns,
            "template",
            "alice",
            json!({"name": "t", "varrecipes": ["recipes"],
            "inputs": {"flavor": "Flavor"}, "defaults": {"flavor": ["small"], "port": ["8080"]}}),
        )
        .await;
    let app = api
        .create(
            &ns,
            "app",
            "alice",
            json!({"name": "app", "public": true, "template": template,
            "templaterecipes": {"recipes": [child]}, "defaults": {"flavor": ["large"]}}),
        )
        .await;
    let own = api
        .create(
            &ns,
            "endpoint",
            "alice",
            json!({"name": "cloud", "kind": "openstack",
        "inputs": {"tenant": "Project"}, "defaults": {"tenant": ["t0"], "zone": ["z"]}}),
        )
        .await;
    let shared = api
        .create(
            &other,
            "endpoint",
            "olga",
            json!({"name": "cloud", "kind": "openstack", "public": true}),
        )
        .await;
    let hidden = api
        .create(&other, "endpoint", "olga", endpoint_body("hidden", false))
        .await;
    api.put(
        &format!("/deploy/ns/{ns}/endpoint/{own}/defaults"),
        "alice",
        json!({"defaults": {"tenant": ["mine"]}}),
    )
    .await;

    let reply = api.get(&format!("/deploy/ns/{ns}/app/{app}/inputs"), "alice").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let inputs = &reply.body["app"];
    assert_eq!(inputs["template"], json!({"flavor": "Flavor"}));
    // B-6: the child overrides its parent, ancestors included.
    assert_eq!(inputs["recipes"], json!({"size": "Child size", "port": "Port"}));
    // App defaults win over the template's, which win over the recipes' (B-23).
    assert_eq!(
        inputs["defaults"],
        json!({"size": ["2"], "port": ["8080"], "flavor": ["large"]})
    );
    // B-23: endpoints keyed by id (two share the name "cloud"), with their names.
    assert_eq!(
        inputs["endpointnames"],
        json!({own.clone(): "cloud", shared.clone(): "cloud"})
    );
    assert_eq!(inputs["endpoints"][&own], json!({"tenant": "Project"}));
    assert!(inputs["endpoints"].get(&hidden).is_none());
    assert_eq!(
        inputs["endpointdefaults"][&own],
        json!({"tenant": ["mine"], "zone": ["z"]})
    );

    // An outsider sees the public application's inputs, with public endpoints only.
    let reply = api.get(&format!("/deploy/ns/{ns}/app/{app}/inputs"), "olga").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["app"]["endpointnames"], json!({shared: "cloud"}));
}

struct FakeKeys;

#[async_trait]
impl ApiKeyResolver for FakeKeys {
    async fn resolve_api_key(&self, api_key: &Sensitive<String>) -> Result<Option<Identity>, ApiError> {
        Ok((api_key.expose() == "good-key").then(|| common::identity("alice")))
    }
}

fn fake_auth() -> ServiceSpec {
    ServiceSpec {
        name: "fake-auth",
        migrations: &[],
        router: |_| Box::pin(async { Ok(axum::Router::new()) }),
        local_api_keys: Some(|_| Arc::new(FakeKeys)),
    }
}

async fn session_bind_exchanges_an_api_key_for_a_token(engine: Engine) {
    let server = goterra_testing::TestServer::start(engine, &[goterra_deploy::spec(), fake_auth()])
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let bind = |key: Option<&str>| {
        let mut request = client.post(format!("{}/deploy/session/bind", server.url));
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        request.send()
    };
    let reply = bind(Some("good-key")).await.unwrap();
    assert_eq!(reply.status(), 200);
    let body: serde_json::Value = reply.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(server.platform.tokens.verify(token).unwrap().uid, "alice");
    let reply = client
        .get(format!("{}/deploy/ns", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(bind(Some("bad-key")).await.unwrap().status(), 401);
    assert_eq!(bind(None).await.unwrap().status(), 401);
    // The API key works directly on every route too.
    let reply = client
        .get(format!("{}/deploy/ns", server.url))
        .header("X-API-Key", "good-key")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

engines::engine_tests!(
    endpoints_are_validated_and_updatable,
    secrets_are_one_per_user_and_endpoint_encrypted_and_never_returned,
    inputs_merge_templates_recipes_and_endpoints,
    session_bind_exchanges_an_api_key_for_a_token,
);
