//! A platform for the UI tests (auth, deploy, store, run-agent and the UI on one random port)
//! and a small cookie-keeping HTTP client that submits forms as a browser does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use goterra_core::{Sensitive, ServiceSpec};
use goterra_db::Engine;
use goterra_testing::TestServer;
use reqwest::StatusCode;
use std::collections::BTreeMap;

pub const ADMIN_KEY: &str = "ui-test-admin-key-0123456789abcdef";

pub fn services(with_agent: bool) -> Vec<ServiceSpec> {
    let mut services = vec![
        goterra_auth::spec(),
        goterra_deploy::spec(),
        goterra_store::spec(),
        goterra_ui::spec(),
    ];
    if with_agent {
        services.push(goterra_run_agent::spec());
    }
    services
}

pub async fn platform(with_agent: bool) -> TestServer {
    TestServer::start_with(Engine::Sqlite, &services(with_agent), |config| {
        config.admin_apikey = Some(Sensitive::new(ADMIN_KEY.to_string()));
    })
    .await
    .unwrap()
}

/// Creates a plain user with a password, as the admin.
pub async fn create_user(server: &TestServer, uid: &str, password: &str) {
    let http = reqwest::Client::new();
    let token = server.token_for("admin", true);
    let response = http
        .post(format!("{}/auth/register", server.url))
        .bearer_auth(token)
        .json(&serde_json::json!({"uid": uid, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub content_type: String,
    pub cache_control: String,
    pub retry_after: Option<String>,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let start = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a csrf field")
            + 19;
        let end = start + self.body[start..].find('"').unwrap();
        self.body[start..end].to_string()
    }

    pub fn assert_contains(&self, text: &str) {
        assert!(self.body.contains(text), "page lacks {text:?}:\n{}", self.body);
    }
}

/// A browser without JavaScript: keeps cookies, does not follow redirects.
pub struct Web {
    http: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    /// The browser's address as a proxy in front of the UI names it (`X-Forwarded-For`).
    forwarded_for: Option<String>,
}

impl Web {
    pub fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.url.clone(),
            cookies: BTreeMap::new(),
            forwarded_for: None,
        }
    }

    /// A browser at `address` behind a proxy on loopback.
    pub fn at_address(mut self, address: &str) -> Self {
        self.forwarded_for = Some(address.to_string());
        self
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", self.cookie_header());
        match &self.forwarded_for {
            Some(address) => request.header("x-forwarded-for", address),
            None => request,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn absorb(&mut self, response: reqwest::Response) -> Page {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string());
        Page {
            status: response.status(),
            location: header("location"),
            content_type: header("content-type").unwrap_or_default(),
            cache_control: header("cache-control").unwrap_or_default(),
            retry_after: header("retry-after"),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let response = self.request(reqwest::Method::GET, path).send().await.unwrap();
        self.absorb(response).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let response = self
            .request(reqwest::Method::POST, path)
            .form(fields)
            .send()
            .await
            .unwrap();
        self.absorb(response).await
    }

    /// Signs in through the login form with a password (or an API key when `uid` is empty).
    pub async fn sign_in(&mut self, uid: &str, secret: &str) -> Page {
        let form = self.get("/app/login").await;
        let csrf = form.csrf();
        let fields: Vec<(&str, &str)> = if uid.is_empty() {
            vec![("csrf", &csrf), ("apikey", secret)]
        } else {
            vec![("csrf", &csrf), ("uid", uid), ("password", secret)]
        };
        self.post("/app/login", &fields).await
    }

    /// Submits a form found on `page_path` (its CSRF token) to `action`.
    pub async fn submit(&mut self, page_path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(page_path).await.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }
}

/// Creates a namespace as the admin; answers its id.
pub async fn create_namespace(server: &TestServer, name: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/deploy/ns", server.url))
        .bearer_auth(server.token_for("admin", true))
        .json(&serde_json::json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.unwrap();
    body["ns"].as_str().unwrap().to_string()
}

/// A run row to seed: what the run lists show of it.
pub struct SeedRun {
    pub name: String,
    pub uid: String,
    pub status: &'static str,
    pub created_at: i64,
}

/// Writes runs of namespace `ns` straight into deploy's table, many rows per statement in one
/// transaction (100 000 take seconds, not the minutes of starting them one by one). Their ids
/// are ObjectID-shaped and unique within the database.
pub async fn seed_runs(server: &TestServer, ns: &str, runs: &[SeedRun]) {
    const COLUMNS: &str = "id, namespace_id, app_id, endpoint_id, uid, name, description, status, inputs, template, \
        variables, deployment, outputs, error, events, created_at, status_at";
    const ROWS_PER_INSERT: usize = 500;
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut tx = server.platform.db.pool().begin().await.unwrap();
    for chunk in runs.chunks(ROWS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|row| {
                let first = row * 7;
                format!(
                    "(${}, ${}, 'app', 'endpoint', ${}, ${}, '', ${}, '{{}}', '', '{{}}', '', '', '', '[]', ${}, ${})",
                    first + 1,
                    first + 2,
                    first + 3,
                    first + 4,
                    first + 5,
                    first + 6,
                    first + 7
                )
            })
            .collect();
        let sql = format!("INSERT INTO deploy_runs ({COLUMNS}) VALUES {}", values.join(", "));
        let mut query = sqlx::query(&sql);
        for run in chunk {
            let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            query = query
                .bind(format!("5eed{id:020x}"))
                .bind(ns.to_string())
                .bind(run.uid.clone())
                .bind(run.name.clone())
                .bind(run.status)
                .bind(run.created_at)
                .bind(run.created_at);
        }
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}
