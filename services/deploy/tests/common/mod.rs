//! A real deploy server on a random port, and a small client for it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use goterra_core::{Claims, Config};
use goterra_db::Engine;
use goterra_testing::TestServer;
pub use goterra_testing::identity;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;

pub struct Api {
    pub server: TestServer,
    client: reqwest::Client,
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub location: Option<String>,
}

impl Reply {
    pub fn message(&self) -> String {
        self.body["message"].as_str().unwrap_or_default().to_string()
    }
}

impl Api {
    /// A server where any user may create namespaces.
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, |config| config.acl.allow_user_create_ns = true).await
    }

    pub async fn start_with(engine: Engine, configure: impl FnOnce(&mut Config)) -> Self {
        let server = TestServer::start_with(engine, &[goterra_deploy::spec()], configure)
            .await
            .unwrap();
        Self {
            server,
            client: reqwest::Client::new(),
        }
    }

    pub fn token(&self, uid: &str) -> String {
        self.server.platform.tokens.issue(&Claims::for_user(&identity(uid)))
    }

    /// A JSON request as `user` (`None`: anonymous).
    pub async fn call(&self, method: Method, path: &str, user: Option<&str>, body: Option<Value>) -> Reply {
        let raw = body.map(|body| body.to_string());
        self.raw(method, path, user, raw.as_deref()).await
    }

    pub async fn raw(&self, method: Method, path: &str, user: Option<&str>, body: Option<&str>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.server.url));
        if let Some(user) = user {
            request = request.bearer_auth(self.token(user));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            text,
            location,
        }
    }

    pub async fn get(&self, path: &str, user: &str) -> Reply {
        self.call(Method::GET, path, Some(user), None).await
    }

    pub async fn post(&self, path: &str, user: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(user), Some(body)).await
    }

    pub async fn put(&self, path: &str, user: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(user), Some(body)).await
    }

    pub async fn delete(&self, path: &str, user: &str) -> Reply {
        self.call(Method::DELETE, path, Some(user), None).await
    }

    /// Creates a namespace owned by `owner` with `members`; returns its id.
    pub async fn namespace(&self, owner: &str, name: &str, members: &[&str]) -> String {
        let reply = self.post("/deploy/ns", owner, json!({"name": name})).await;
        assert_eq!(reply.status, 201, "{reply:?}");
        let id = reply.body["ns"].as_str().unwrap().to_string();
        if !members.is_empty() {
            let reply = self
                .put(&format!("/deploy/ns/{id}"), owner, json!({"members": members}))
                .await;
            assert_eq!(reply.status, 200, "{reply:?}");
        }
        id
    }

    /// Creates an object of `kind` (`recipe`, `template`, `app`, `endpoint`); returns its id.
    pub async fn create(&self, ns: &str, kind: &str, user: &str, body: Value) -> String {
        let reply = self.post(&format!("/deploy/ns/{ns}/{kind}"), user, body).await;
        assert_eq!(reply.status, 201, "create {kind}: {reply:?}");
        reply.body[key_of(kind)].as_str().unwrap().to_string()
    }

    /// Everything the service stored, as text, to check that a refused request changed nothing.
    pub async fn snapshot(&self) -> Vec<String> {
        let queries = [
            "SELECT id AS a, name AS b, CAST(\"freeze\" AS TEXT) AS c FROM deploy_namespaces ORDER BY id",
            "SELECT namespace_id AS a, uid AS b, role AS c FROM deploy_namespace_users ORDER BY namespace_id, uid",
            "SELECT id AS a, name AS b, body AS c FROM deploy_recipes ORDER BY id",
            "SELECT id AS a, name AS b, body AS c FROM deploy_templates ORDER BY id",
            "SELECT id AS a, name AS b, body AS c FROM deploy_apps ORDER BY id",
            "SELECT app_id AS a, recipe_id AS b, '' AS c FROM deploy_app_recipes ORDER BY app_id, recipe_id",
            "SELECT id AS a, name AS b, body AS c FROM deploy_endpoints ORDER BY id",
            "SELECT uid AS a, endpoint_id AS b, password AS c FROM deploy_endpoint_secrets ORDER BY uid, endpoint_id",
            "SELECT uid AS a, endpoint_id AS b, defaults AS c FROM deploy_endpoint_defaults ORDER BY uid, endpoint_id",
        ];
        let mut rows = Vec::new();
        for query in queries {
            for row in sqlx::query(query)
                .fetch_all(self.server.platform.db.pool())
                .await
                .unwrap()
            {
                let a: String = row.try_get("a").unwrap();
                let b: String = row.try_get("b").unwrap();
                let c: String = row.try_get("c").unwrap();
                rows.push(format!("{a}|{b}|{c}"));
            }
        }
        rows
    }
}

/// The response wrapper key of a kind's path segment.
pub fn key_of(kind: &str) -> &'static str {
    match kind {
        "recipe" => "recipe",
        "template" => "template",
        "app" => "app",
        "endpoint" => "endpoint",
        other => panic!("unknown kind {other}"),
    }
}

/// A minimal valid Terraform file.
pub const TF: &str = "resource \"null_resource\" \"vm\" {\n  triggers = { image = var.image_id }\n}\n";

pub fn recipe_body(name: &str, public: bool) -> Value {
    json!({"name": name, "public": public, "base": ["debian"], "script": "echo hi"})
}

pub fn template_body(name: &str, public: bool) -> Value {
    json!({"name": name, "public": public, "data": {"openstack": TF}, "varrecipes": ["recipes"]})
}

pub fn app_body(name: &str, public: bool, template: &str, recipe: &str) -> Value {
    json!({"name": name, "public": public, "template": template, "templaterecipes": {"recipes": [recipe]}})
}

pub fn endpoint_body(name: &str, public: bool) -> Value {
    json!({"name": name, "public": public, "kind": "openstack", "images": {"debian": "img-1"}})
}
