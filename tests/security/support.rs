//! A small client for the security tests, and the split topology: services in separate
//! platforms (as separate processes would be) sharing one database and one event exchange.

use goterra_core::events::EventBus;
use goterra_core::service::Topology;
use goterra_core::{Config, Sensitive, ServiceSpec};
use goterra_testing::TEST_SECRET;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub const ADMIN_KEY: &str = "admin-key-for-security-tests-0123456789";

pub enum Cred<'a> {
    None,
    Key(&'a str),
    Token(&'a str),
}

#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
}

impl Default for Client {
    fn default() -> Self {
        Self {
            http: reqwest::Client::new(),
        }
    }
}

impl Client {
    pub async fn call(&self, method: &str, url: &str, cred: Cred<'_>, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method.parse().unwrap(), url);
        request = match cred {
            Cred::None => request,
            Cred::Key(key) => request.header("X-API-Key", key),
            Cred::Token(token) => request.bearer_auth(token),
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Creates `uid` (by the admin key of `auth`) and returns its API key.
    pub async fn register(&self, auth: &str, uid: &str, admin: bool) -> String {
        let body = json!({"uid": uid, "password": format!("{uid}-password-1"), "email": format!("{uid}@example.org"), "admin": admin});
        let (status, answer) = self
            .call(
                "POST",
                &format!("{auth}/auth/register"),
                Cred::Key(ADMIN_KEY),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["apikey"].as_str().unwrap().to_string()
    }

    pub async fn login(&self, auth: &str, uid: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            &format!("{auth}/auth/login"),
            Cred::None,
            Some(json!({"uid": uid, "password": password})),
        )
        .await
    }

    pub async fn token(&self, auth: &str, uid: &str) -> String {
        let (status, answer) = self.login(auth, uid, &format!("{uid}-password-1")).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["token"].as_str().unwrap().to_string()
    }
}

/// Calls `probe` until it answers `wanted` (the revocation guarantee is 1 s through events,
/// 30 s without; the deadline is generous for a loaded machine and is not what is tested).
pub async fn eventually<F, Fut>(deadline: Duration, wanted: StatusCode, probe: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (StatusCode, Value)>,
{
    let start = std::time::Instant::now();
    loop {
        let (status, answer) = probe().await;
        if status == wanted {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "still {status} ({answer}) instead of {wanted} after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One service "process": its own platform, revocation map and event bus connection.
pub struct Process {
    pub url: String,
    _data_dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Process {
    pub async fn start(
        database_url: &str,
        services: &[ServiceSpec],
        events: Arc<dyn EventBus>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut config = Config {
            url: url.clone(),
            data_dir: data_dir.path().to_path_buf(),
            fernet: vec![Sensitive::new(TEST_SECRET.to_string())],
            admin_apikey: Some(Sensitive::new(ADMIN_KEY.to_string())),
            ..Config::default()
        };
        config.database.url = Some(Sensitive::new(database_url.to_string()));
        configure(&mut config);
        let (platform, router) = goterra_core::service::build(config, Topology::Standalone, services, events)
            .await
            .unwrap();
        let limits = goterra_core::http::ServeLimits::from(&platform.config.http);
        let task = tokio::spawn(async move {
            let _ = goterra_core::http::serve_with(listener, router, limits, std::future::pending()).await;
        });
        Self {
            url,
            _data_dir: data_dir,
            task,
        }
    }
}
