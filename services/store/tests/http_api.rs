//! The store over HTTP, on a real server, for every backend setup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use axum::Router;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use common::{SETUPS, Setup, start};
use goterra_core::auth::ApiKeyResolver;
use goterra_core::namespaces::NamespaceRule;
use goterra_core::revocation::UserStatus;
use goterra_core::token::unix_now;
use goterra_core::{ApiError, Claims, Identity, Sensitive, ServiceSpec};
use goterra_testing::TestServer;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn identity(uid: &str, admin: bool) -> Identity {
    Identity {
        uid: uid.into(),
        admin,
        super_user: false,
        email: String::new(),
        kind: String::new(),
    }
}

/// API keys as auth would resolve them: `key-<uid>`, `key-root` is an admin.
struct FakeKeys;

#[async_trait]
impl ApiKeyResolver for FakeKeys {
    async fn resolve_api_key(&self, api_key: &Sensitive<String>) -> Result<Option<Identity>, ApiError> {
        Ok(match api_key.expose().strip_prefix("key-") {
            Some("root") => Some(identity("root", true)),
            Some(uid) if !uid.is_empty() => Some(identity(uid, false)),
            _ => None,
        })
    }

    async fn user_statuses(&self, uids: &[String]) -> Result<Vec<UserStatus>, ApiError> {
        Ok(uids
            .iter()
            .map(|uid| UserStatus {
                uid: uid.clone(),
                exists: true,
                admin: uid == "root",
                super_user: false,
                tokens_not_before: 0,
            })
            .collect())
    }
}

/// Deploy's rule as deploy would answer it: namespace `ns1`, named `genomics`, owned by alice
/// with bob as a member (eve was only invited).
struct FakeNamespaces;

impl FakeNamespaces {
    fn named(key: &str) -> Option<&'static str> {
        matches!(key, "ns1" | "genomics").then_some("ns1")
    }

    fn member(caller: &Identity) -> bool {
        caller.admin || matches!(caller.uid.as_str(), "alice" | "bob")
    }
}

#[async_trait]
impl NamespaceRule for FakeNamespaces {
    async fn usable_id(&self, key: &str, caller: &Identity, _: &HeaderMap) -> Result<Option<String>, ApiError> {
        Ok(Self::named(key).filter(|_| Self::member(caller)).map(String::from))
    }

    async fn may_use(&self, id: &str, caller: &Identity, _: &HeaderMap) -> Result<bool, ApiError> {
        Ok(id == "ns1" && Self::member(caller))
    }

    async fn id_of(&self, key: &str) -> Result<Option<String>, ApiError> {
        Ok(Self::named(key).map(String::from))
    }
}

/// Stands in for auth (API keys) and deploy (its namespace rule, registered in the platform).
fn doubles() -> ServiceSpec {
    ServiceSpec {
        name: "doubles",
        migrations: &[],
        router: |platform| {
            Box::pin(async move {
                let _ = platform.namespace_rule.set(Arc::new(FakeNamespaces));
                Ok(Router::new())
            })
        },
        local_api_keys: Some(|_| Arc::new(FakeKeys)),
    }
}

fn services() -> Vec<ServiceSpec> {
    vec![doubles(), goterra_store::spec()]
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Key(&'a str),
}

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.to_string(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, auth: Auth<'_>, body: Option<&str>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Key(key) => request.header("X-API-Key", key),
        };
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn get(&self, path: &str, auth: Auth<'_>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, auth, None).await
    }

    async fn put(&self, path: &str, auth: Auth<'_>, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, auth, Some(&body.to_string()))
            .await
    }

    async fn delete(&self, path: &str, auth: Auth<'_>) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, auth, None).await
    }

    /// Creates a deployment; returns (id, token).
    async fn create(&self, auth: Auth<'_>) -> (String, String) {
        let (status, body) = self.call(reqwest::Method::POST, "/store", auth, None).await;
        assert_eq!(status, 200, "{body}");
        (
            body["id"].as_str().unwrap().to_string(),
            body["token"].as_str().unwrap().to_string(),
        )
    }
}

#[tokio::test]
async fn create_and_use_a_deployment_with_its_token() {
    for setup in SETUPS {
        let server = start(setup, &services(), |_| {}).await;
        let api = Api::new(&server.url);
        let (status, health) = api.get("/store", Auth::None).await;
        assert_eq!((status, health["message"].as_str()), (200, Some("ok")), "{setup:?}");

        let (status, created) = api
            .call(reqwest::Method::POST, "/store", Auth::Key("key-alice"), None)
            .await;
        assert_eq!(status, 200, "{setup:?}: {created}");
        assert_eq!(created["url"], server.url, "{setup:?}");
        let id = created["id"].as_str().unwrap();
        let token = created["token"].as_str().unwrap();
        let dep = format!("/store/{id}");

        // The old CLI's capitalised body; an empty value; the original's filter.
        assert_eq!(
            api.put(
                &dep,
                Auth::Bearer(token),
                json!({"Key": "status_app_x", "Value": "start"})
            )
            .await
            .0,
            200
        );
        assert_eq!(
            api.put(&dep, Auth::Bearer(token), json!({"key": "empty", "value": ""}))
                .await
                .0,
            200
        );
        let (status, body) = api
            .put(
                &dep,
                Auth::Bearer(token),
                json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]),
            )
            .await;
        assert_eq!((status, body["message"].as_str()), (200, Some("done")), "{setup:?}");

        let (status, body) = api.get(&format!("{dep}/empty"), Auth::Bearer(token)).await;
        assert_eq!((status, body), (200, json!({"key": "empty", "value": ""})), "{setup:?}");
        let (status, body) = api.get(&format!("{dep}/missing"), Auth::Bearer(token)).await;
        assert_eq!(status, 404, "{setup:?}: {body}");
        let (_, body) = api.get(&dep, Auth::Bearer(token)).await;
        assert_eq!(
            body,
            json!({"deployment": {"status_app_x": "start", "empty": "", "a": "1", "b": "2"}}),
            "{setup:?}"
        );
        let (_, body) = api.get(&format!("{dep}?filter=status"), Auth::Bearer(token)).await;
        assert_eq!(body, json!({"deployment": {"status_app_x": "start"}}), "{setup:?}");
        let (_, body) = api.get(&format!("{dep}?filter=a&filter=b"), Auth::Bearer(token)).await;
        assert_eq!(body["deployment"].as_object().unwrap().len(), 4, "{setup:?}");
        // A trailing slash (old clients) reaches the same route; a key named `token` reads.
        assert_eq!(
            api.get(&format!("{dep}/a/"), Auth::Bearer(token)).await.0,
            200,
            "{setup:?}"
        );
        api.put(&dep, Auth::Bearer(token), json!({"key": "token", "value": "k3s"}))
            .await;
        assert_eq!(
            api.get(&format!("{dep}/token"), Auth::Bearer(token)).await.1["value"],
            "k3s",
            "{setup:?}"
        );

        let (status, body) = api.delete(&dep, Auth::Bearer(token)).await;
        assert_eq!((status, body["message"].as_str()), (200, Some("deleted")), "{setup:?}");
        assert_eq!(api.get(&dep, Auth::Bearer(token)).await.0, 404, "{setup:?}");
        assert_eq!(api.delete(&dep, Auth::Bearer(token)).await.0, 404, "{setup:?}");
    }
}

#[tokio::test]
async fn a_scoped_token_reaches_its_deployment_only() {
    for setup in SETUPS {
        let server = start(setup, &services(), |_| {}).await;
        let api = Api::new(&server.url);
        let (mine, my_token) = api.create(Auth::Key("key-alice")).await;
        let (other, _) = api.create(Auth::Key("key-alice")).await;
        let (status, body) = api.get(&format!("/store/{other}"), Auth::Bearer(&my_token)).await;
        assert_eq!(status, 403, "{setup:?}: same owner, other deployment: {body}");
        assert_eq!(
            api.put(
                &format!("/store/{other}"),
                Auth::Bearer(&my_token),
                json!({"key": "k", "value": "v"})
            )
            .await
            .0,
            403
        );
        assert_eq!(
            api.delete(&format!("/store/{other}"), Auth::Bearer(&my_token)).await.0,
            403
        );
        assert_eq!(
            api.get(&format!("/store/{other}/k"), Auth::Bearer(&my_token)).await.0,
            403
        );
        assert_eq!(
            api.call(
                reqwest::Method::POST,
                &format!("/store/{other}/token"),
                Auth::Bearer(&my_token),
                None
            )
            .await
            .0,
            403
        );
        // It cannot create deployments, and no user route of any service accepts it.
        assert_eq!(
            api.call(reqwest::Method::POST, "/store", Auth::Bearer(&my_token), None)
                .await
                .0,
            401,
            "{setup:?}"
        );
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {my_token}").parse().unwrap());
        assert!(matches!(
            server.platform.authenticator.user(&headers).await,
            Err(ApiError::Unauthorized(_))
        ));
        assert_eq!(
            api.get(&format!("/store/{mine}"), Auth::Bearer(&my_token)).await.0,
            200,
            "{setup:?}"
        );
        // A garbage or expired token is 401, like no credentials at all.
        assert_eq!(
            api.get(&format!("/store/{mine}"), Auth::Bearer("gAAAAAbogus")).await.0,
            401
        );
        assert_eq!(api.get(&format!("/store/{mine}"), Auth::None).await.0, 401);
        let expired = server
            .platform
            .tokens
            .issue(&Claims::for_store("alice", &mine, unix_now() - 10));
        let (status, body) = api.get(&format!("/store/{mine}"), Auth::Bearer(&expired)).await;
        assert_eq!(status, 401, "{setup:?}: {body}");
    }
}

#[tokio::test]
async fn owners_admins_and_strangers() {
    for setup in SETUPS {
        let server = start(setup, &services(), |_| {}).await;
        let api = Api::new(&server.url);
        let alice = server.token_for("alice", false);
        let (id, _) = api.create(Auth::Bearer(&alice)).await;
        let dep = format!("/store/{id}");
        let write = json!({"key": "k", "value": "v"});
        // The owner, by user token and by API key (the original refused the key: S3).
        assert_eq!(
            api.put(&dep, Auth::Bearer(&alice), write.clone()).await.0,
            200,
            "{setup:?}"
        );
        assert_eq!(
            api.get(&format!("{dep}/k"), Auth::Key("key-alice")).await.0,
            200,
            "{setup:?}"
        );
        // Admins, by token (the original ignored the token's admin flag) and by key.
        let admin = server.token_for("root", true);
        assert_eq!(api.get(&dep, Auth::Bearer(&admin)).await.0, 200, "{setup:?}");
        assert_eq!(api.get(&dep, Auth::Key("key-root")).await.0, 200, "{setup:?}");
        // Anyone else.
        let bob = server.token_for("bob", false);
        assert_eq!(api.get(&dep, Auth::Bearer(&bob)).await.0, 403, "{setup:?}");
        assert_eq!(
            api.put(&dep, Auth::Key("key-bob"), write.clone()).await.0,
            403,
            "{setup:?}"
        );
        assert_eq!(api.delete(&dep, Auth::Bearer(&bob)).await.0, 403, "{setup:?}");
        assert_eq!(api.get(&dep, Auth::Key("not-a-key")).await.0, 401, "{setup:?}");
        // Unknown deployments are 404, after authentication.
        assert_eq!(
            api.get("/store/unknown", Auth::Bearer(&alice)).await.0,
            404,
            "{setup:?}"
        );
        assert_eq!(
            api.put("/store/unknown", Auth::Bearer(&admin), write.clone()).await.0,
            404,
            "{setup:?}"
        );
        assert_eq!(api.get("/store/unknown", Auth::None).await.0, 401, "{setup:?}");
        // Renewal: the owner, an admin or the token itself; not a stranger.
        let (status, renewed) = api
            .call(
                reqwest::Method::POST,
                &format!("{dep}/token"),
                Auth::Key("key-alice"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{setup:?}: {renewed}");
        assert_eq!(renewed["id"], id.as_str());
        let fresh = renewed["token"].as_str().unwrap();
        let (status, again) = api
            .call(
                reqwest::Method::POST,
                &format!("{dep}/token"),
                Auth::Bearer(fresh),
                None,
            )
            .await;
        assert_eq!(status, 200, "{setup:?}: {again}");
        assert!(again["expires"].as_u64().unwrap() > unix_now());
        assert_eq!(
            api.get(&format!("{dep}/k"), Auth::Bearer(again["token"].as_str().unwrap()))
                .await
                .0,
            200
        );
        assert_eq!(
            api.call(reqwest::Method::POST, &format!("{dep}/token"), Auth::Bearer(&bob), None)
                .await
                .0,
            403
        );
        assert_eq!(
            api.call(
                reqwest::Method::POST,
                &format!("{dep}/token"),
                Auth::Bearer(&admin),
                None
            )
            .await
            .0,
            200
        );
        // The owner deletes with the API key (the runs issue will do this on destroy).
        assert_eq!(api.delete(&dep, Auth::Key("key-alice")).await.0, 200, "{setup:?}");
    }
}

#[tokio::test]
async fn metadata_cannot_be_overwritten() {
    for setup in SETUPS {
        let server = start(setup, &services(), |_| {}).await;
        let api = Api::new(&server.url);
        let (id, token) = api.create(Auth::Key("key-alice")).await;
        let dep = format!("/store/{id}");
        for field in ["user", "ts", "lastts", "ns"] {
            let (status, _) = api
                .put(&dep, Auth::Bearer(&token), json!({"key": field, "value": "bob"}))
                .await;
            assert_eq!(status, 200, "{setup:?}");
        }
        // Ownership did not move: alice still owns it, bob still does not.
        assert_eq!(api.get(&dep, Auth::Key("key-alice")).await.0, 200, "{setup:?}");
        assert_eq!(api.get(&dep, Auth::Key("key-bob")).await.0, 403, "{setup:?}");
        let (_, body) = api.get(&dep, Auth::Bearer(&token)).await;
        assert_eq!(
            body,
            json!({"deployment": {"user": "bob", "ts": "bob", "lastts": "bob", "ns": "bob"}}),
            "{setup:?}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    for setup in SETUPS {
        let server = start(setup, &services(), |config| {
            config.store.max_keys = 3;
            config.store.max_value = 16;
        })
        .await;
        let api = Api::new(&server.url);
        let (id, token) = api.create(Auth::Key("key-alice")).await;
        let dep = format!("/store/{id}");
        let auth = Auth::Bearer(&token);
        api.put(&dep, auth, json!({"key": "a", "value": "1"})).await;

        for body in [
            "",
            "{",
            "[]",
            "\"text\"",
            r#"{"key":"b"}"#,
            r#"{"key":"b","value":3}"#,
            r#"{"key":1,"value":"x"}"#,
        ] {
            let (status, reply) = api.call(reqwest::Method::PUT, &dep, auth, Some(body)).await;
            assert_eq!(status, 400, "{setup:?}: {body:?} → {reply}");
            assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()), "{reply}");
        }
        for key in ["", "a b", "a/b", "é", &"k".repeat(257)] {
            let (status, reply) = api.put(&dep, auth, json!({"key": key, "value": "x"})).await;
            assert_eq!(status, 400, "{setup:?}: {key:?} → {reply}");
        }
        let (status, reply) = api.put(&dep, auth, json!({"key": "nul", "value": "a\u{0}b"})).await;
        assert_eq!(status, 400, "{setup:?}: {reply}");
        let (status, reply) = api
            .put(&dep, auth, json!({"key": "big", "value": "x".repeat(17)}))
            .await;
        assert_eq!(status, 413, "{setup:?}: {reply}");
        assert!(reply["message"].as_str().unwrap().contains("16"), "{reply}");
        // A batch with one bad entry writes nothing; so does one passing the key limit.
        let (status, _) = api
            .put(
                &dep,
                auth,
                json!([{"key": "b", "value": "1"}, {"key": "bad key", "value": "1"}]),
            )
            .await;
        assert_eq!(status, 400, "{setup:?}");
        let (status, reply) = api
            .put(
                &dep,
                auth,
                json!([{"key": "b", "value": "1"}, {"key": "c", "value": "1"}, {"key": "d", "value": "1"}]),
            )
            .await;
        assert_eq!(status, 413, "{setup:?}: {reply}");
        assert!(reply["message"].as_str().unwrap().contains("at most 3 keys"), "{reply}");
        let (_, body) = api.get(&dep, auth).await;
        assert_eq!(
            body,
            json!({"deployment": {"a": "1"}}),
            "{setup:?}: nothing was partially written"
        );

        assert_eq!(api.get(&format!("{dep}/a?wait=soon"), auth).await.0, 400, "{setup:?}");
        assert_eq!(api.get(&format!("{dep}/a?wait=-1"), auth).await.0, 400, "{setup:?}");
        assert_eq!(api.get(&format!("{dep}/bad%20key"), auth).await.0, 400, "{setup:?}");
    }
}

#[tokio::test]
async fn a_waiter_is_answered_as_soon_as_the_key_is_written() {
    for setup in SETUPS {
        let server = start(setup, &services(), |_| {}).await;
        let api = Arc::new(Api::new(&server.url));
        let (id, token) = api.create(Auth::Key("key-alice")).await;
        let waiter = {
            let (api, path, token) = (api.clone(), format!("/store/{id}/k3stoken?wait=30"), token.clone());
            tokio::spawn(async move {
                let answer = api.get(&path, Auth::Bearer(&token)).await;
                (answer, Instant::now())
            })
        };
        // Let the waiter reach the server before writing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let put_at = Instant::now();
        let (status, _) = api
            .put(
                &format!("/store/{id}"),
                Auth::Bearer(&token),
                json!({"key": "k3stoken", "value": "K10abc"}),
            )
            .await;
        assert_eq!(status, 200);
        let ((status, body), answered_at) = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (status, body),
            (200, json!({"key": "k3stoken", "value": "K10abc"})),
            "{setup:?}"
        );
        let delay = answered_at.saturating_duration_since(put_at);
        assert!(
            delay < Duration::from_secs(1),
            "{setup:?}: woken {delay:?} after the PUT"
        );

        // A wait that ends without the key: 404 once the wait is over.
        let started = Instant::now();
        let (status, _) = api
            .get(&format!("/store/{id}/never?wait=1"), Auth::Bearer(&token))
            .await;
        assert_eq!(status, 404, "{setup:?}");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{setup:?}: the server waited"
        );
    }
}

#[tokio::test]
async fn redis_replicas_share_deployments_and_wake_ups() {
    let prefix = common::random_prefix();
    let configure = |config: &mut goterra_core::Config| {
        config.redis.url = Some(Sensitive::new(common::REDIS_URL.to_string()));
        config.redis.prefix = prefix.clone();
        config.store.ttl_hours = 1;
    };
    let replica_a = TestServer::start_with(goterra_db::Engine::Sqlite, &services(), configure)
        .await
        .unwrap();
    let replica_b = TestServer::start_with(goterra_db::Engine::Sqlite, &services(), configure)
        .await
        .unwrap();
    let (api_a, api_b) = (Api::new(&replica_a.url), Arc::new(Api::new(&replica_b.url)));
    let (id, token) = api_a.create(Auth::Key("key-alice")).await;
    let waiter = {
        let (api_b, path, token) = (api_b.clone(), format!("/store/{id}/masterip?wait=30"), token.clone());
        tokio::spawn(async move { api_b.get(&path, Auth::Bearer(&token)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let put_at = Instant::now();
    api_a
        .put(
            &format!("/store/{id}"),
            Auth::Bearer(&token),
            json!({"key": "masterip", "value": "10.0.0.7"}),
        )
        .await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(
        put_at.elapsed() < Duration::from_secs(1),
        "woken {:?} after the PUT",
        put_at.elapsed()
    );
    assert_eq!((status, body["value"].as_str()), (200, Some("10.0.0.7")));
}

#[tokio::test]
async fn a_disconnected_waiter_is_released() {
    for setup in SETUPS {
        let server = start(setup, &services(), |_| {}).await;
        // A second instance of the service over the same platform, whose hub we can observe.
        let store = goterra_store::Store::open(server.platform.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(goterra_core::http::serve(
            listener,
            store.router(),
            std::future::pending(),
        ));
        let (id, token) = Api::new(&server.url).create(Auth::Key("key-alice")).await;
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let outcome = impatient
            .get(format!("{url}/store/{id}/k?wait=60"))
            .bearer_auth(&token)
            .send()
            .await;
        assert!(outcome.is_err(), "{setup:?}: the client gave up first");
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.backend.hub().waiting() > 0 {
            assert!(Instant::now() < deadline, "{setup:?}: the waiter outlived its client");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.backend.hub().slot_count(), 0, "{setup:?}");
    }
}

#[tokio::test]
async fn anonymous_mode_takes_the_key_as_uid_and_mints_scoped_tokens_only() {
    for setup in SETUPS {
        let server = start(setup, &[goterra_store::spec()], |config| {
            config.feature.anonymous = true
        })
        .await;
        let api = Api::new(&server.url);
        let (id, token) = api.create(Auth::Key("carol")).await;
        let dep = format!("/store/{id}");
        assert_eq!(
            api.put(&dep, Auth::Bearer(&token), json!({"key": "k", "value": "v"}))
                .await
                .0,
            200,
            "{setup:?}"
        );
        assert_eq!(api.get(&dep, Auth::Key("carol")).await.0, 200, "{setup:?}");
        assert_eq!(api.get(&dep, Auth::Key("dave")).await.0, 403, "{setup:?}");
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        assert!(matches!(
            server.platform.authenticator.user(&headers).await,
            Err(ApiError::Unauthorized(_))
        ));
        assert_eq!(
            api.call(reqwest::Method::POST, "/store", Auth::None, None).await.0,
            401,
            "{setup:?}"
        );
    }
}

#[tokio::test]
async fn namespace_members_share_deployments() {
    for setup in SETUPS {
        let server = start(setup, &services(), |_| {}).await;
        let api = Api::new(&server.url);
        for ns in ["ns1", "genomics"] {
            let response = api
                .http
                .post(format!("{}/store", server.url))
                .header("X-API-Key", "key-alice")
                .header("X-API-NS", ns)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200, "{setup:?}");
            let id = response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            let dep = format!("/store/{id}");
            assert_eq!(
                api.get(&dep, Auth::Key("key-bob")).await.0,
                200,
                "{setup:?}: a member, namespace given as {ns}"
            );
            assert_eq!(
                api.get(&dep, Auth::Key("key-eve")).await.0,
                403,
                "{setup:?}: not a member"
            );
            assert_eq!(api.get(&dep, Auth::Key("key-mallory")).await.0, 403, "{setup:?}");
        }
        // Without X-API-NS, namespace members have no access.
        let (id, _) = api.create(Auth::Key("key-alice")).await;
        assert_eq!(
            api.get(&format!("/store/{id}"), Auth::Key("key-bob")).await.0,
            403,
            "{setup:?}"
        );
        // Only members may tag a deployment with a namespace.
        let response = api
            .http
            .post(format!("{}/store", server.url))
            .header("X-API-Key", "key-mallory")
            .header("X-API-NS", "genomics")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 403, "{setup:?}");
    }
}

#[tokio::test]
async fn namespace_membership_is_asked_of_deploy_when_running_alone() {
    // A stand-in for deploy's `GET /deploy/ns/{ns}` (by id or name): members are the callers
    // whose API key names them.
    let deploy = Router::new().route(
        "/deploy/ns/{ns}",
        axum::routing::get(
            |axum::extract::Path(ns): axum::extract::Path<String>, headers: axum::http::HeaderMap| async move {
                let key = headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if (ns == "genomics" || ns == "ns1") && (key == "key-alice" || key == "key-bob") {
                    // Deploy's own answer shape (the id is `_id`, as in the original).
                    axum::Json(goterra_client::deploy::NamespaceOne {
                        ns: goterra_client::deploy::Namespace {
                            id: "ns1".into(),
                            name: "genomics".into(),
                            ..Default::default()
                        },
                    })
                    .into_response()
                } else {
                    axum::http::StatusCode::FORBIDDEN.into_response()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let deploy_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(goterra_core::http::serve(listener, deploy, std::future::pending()));
    let spec = ServiceSpec {
        router: |_| Box::pin(async { Ok(Router::new()) }),
        ..doubles()
    };
    let server = start(Setup::Redis, &[spec, goterra_store::spec()], |config| {
        config.proxy = Some(deploy_url.clone())
    })
    .await;
    let response = reqwest::Client::new()
        .post(format!("{}/store", server.url))
        .header("X-API-Key", "key-alice")
        .header("X-API-NS", "genomics")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let api = Api::new(&server.url);
    assert_eq!(api.get(&format!("/store/{id}"), Auth::Key("key-bob")).await.0, 200);
    assert_eq!(api.get(&format!("/store/{id}"), Auth::Key("key-eve")).await.0, 403);
}

#[tokio::test]
async fn openapi_document_is_served_and_checked_in() {
    let server = start(
        Setup::Embedded(goterra_db::Engine::Sqlite),
        &[goterra_store::spec()],
        |_| {},
    )
    .await;
    let (status, served) = Api::new(&server.url).get("/store/openapi.json", Auth::None).await;
    assert_eq!(status, 200);
    assert!(served["paths"]["/store/{id}/{key}"]["get"].is_object(), "{served}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi/store.json");
    let expected = goterra_store::openapi::document_text();
    if std::env::var("GOT_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(path, &expected).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == expected,
        "openapi/store.json is stale: run `GOT_UPDATE_OPENAPI=1 cargo test -p goterra-store --test http_api openapi`"
    );
}
