//! The `local` demo catalogue (`examples/local/`): a namespace `demo` with an endpoint `local`
//! whose "VMs" are background processes under a data directory, the recipes `master` (puts a
//! token in the store) and `worker` (waits for it), the template `local-cluster` and the
//! application `cluster`. `goterra up --demo` loads it through the API (as the bootstrap admin:
//! the template uses `local-exec`, which only admins may store); the end-to-end tests load it the
//! same way over HTTP. Loading twice finds what the first load made.

use anyhow::{Context, bail};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, header};
use goterra_core::Sensitive;
use serde_json::{Value, json};
use std::path::Path;
use tower::ServiceExt;

pub const NAMESPACE: &str = "demo";
pub const MASTER_SH: &str = include_str!("../../../examples/local/master.sh");
pub const WORKER_SH: &str = include_str!("../../../examples/local/worker.sh");
pub const LOCAL_TF: &str = include_str!("../../../examples/local/local.tf");

/// Sends a JSON request to the platform's API as one user.
#[async_trait]
pub trait JsonApi: Send + Sync {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)>;
}

/// The API in this process: requests go straight to the router, before it serves anyone.
pub struct RouterApi {
    pub router: Router,
    pub bearer: Sensitive<String>,
}

#[async_trait]
impl JsonApi for RouterApi {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.bearer.expose()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))?;
        let response = self.router.clone().oneshot(request).await?;
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1024 * 1024).await?;
        Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }
}

/// The API over HTTP.
pub struct HttpApi {
    pub client: reqwest::Client,
    pub url: String,
    pub bearer: Sensitive<String>,
}

#[async_trait]
impl JsonApi for HttpApi {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(self.bearer.expose());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// Ids of the demo catalogue.
#[derive(Clone, Debug)]
pub struct Demo {
    pub namespace: String,
    pub endpoint: String,
    pub application: String,
}

impl Demo {
    /// The request that starts a run of the cluster with `workers` workers.
    pub fn run_request(&self, workers: u32) -> Value {
        json!({"name": "demo", "endpoint": self.endpoint, "inputs": {"workers": workers.to_string()}})
    }

    /// `NS=… ENDPOINT=… APP=…` lines for a shell to source (ids are plain tokens).
    pub fn shell_variables(&self) -> String {
        format!(
            "NS={}\nENDPOINT={}\nAPP={}\n",
            self.namespace, self.endpoint, self.application
        )
    }

    /// How to start a run, for people; `key_file` holds the admin's API key.
    pub fn instructions(&self, url: &str, key_file: &Path) -> String {
        format!(
            "demo catalogue: namespace {ns}, endpoint {endpoint} (local), application {app} (cluster)\n\
             start a run (1 master, 2 workers):\n  \
             KEY=$(cat {key_file})\n  \
             curl -H \"X-API-Key: $KEY\" -d '{body}' {url}/deploy/ns/{ns}/run/{app}",
            ns = self.namespace,
            endpoint = self.endpoint,
            app = self.application,
            key_file = key_file.display(),
            body = self.run_request(2),
        )
    }
}

async fn expect(
    api: &dyn JsonApi,
    method: Method,
    path: &str,
    body: Option<Value>,
    wanted: u16,
) -> anyhow::Result<Value> {
    let (status, reply) = api.call(method.clone(), path, body).await?;
    if status != wanted {
        bail!(
            "{method} {path} answered {status}: {}",
            reply["message"].as_str().unwrap_or_default()
        );
    }
    Ok(reply)
}

async fn create(api: &dyn JsonApi, ns: &str, kind: &str, body: Value) -> anyhow::Result<String> {
    let reply = expect(api, Method::POST, &format!("/deploy/ns/{ns}/{kind}"), Some(body), 201).await?;
    reply[kind]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("creating a {kind} gave no id"))
}

/// Id of the element named `name` in a list answer (an array, or an object holding one).
fn id_named(list: &Value, name: &str) -> Option<String> {
    let items = list.as_array().or_else(|| {
        list.as_object()
            .and_then(|object| object.values().find_map(Value::as_array))
    })?;
    items
        .iter()
        .find(|item| item["name"] == name)
        .and_then(|item| item["id"].as_str().or_else(|| item["_id"].as_str()))
        .map(str::to_string)
}

/// The namespace named [`NAMESPACE`] among those the caller may list (admins: every one; names
/// are unique platform-wide), page by page.
async fn find_namespace(api: &dyn JsonApi) -> anyhow::Result<Option<String>> {
    let page = goterra_core::extract::MAX_PAGE_SIZE;
    let mut skip = 0;
    loop {
        let path = format!("/deploy/ns?all=1&skip={skip}&limit={page}");
        let list = expect(api, Method::GET, &path, None, 200).await?;
        if let Some(id) = id_named(&list, NAMESPACE) {
            return Ok(Some(id));
        }
        let listed = list["ns"].as_array().map_or(0, Vec::len);
        if i64::try_from(listed).unwrap_or(i64::MAX) < page {
            return Ok(None);
        }
        skip += page;
    }
}

/// Loads the catalogue as the caller of `api` (an admin), with the "VMs" under `vms_dir`;
/// finds it again when the caller already has a namespace named `demo`.
pub async fn load(api: &dyn JsonApi, vms_dir: &Path) -> anyhow::Result<Demo> {
    if let Some(ns) = find_namespace(api).await? {
        let named = |kind: &'static str, name: &'static str| {
            let ns = ns.clone();
            async move {
                let list = expect(api, Method::GET, &format!("/deploy/ns/{ns}/{kind}"), None, 200).await?;
                id_named(&list, name).with_context(|| {
                    format!("namespace {NAMESPACE} exists but has no {kind} {name}: delete the namespace to load the demo again")
                })
            }
        };
        let endpoint = named("endpoint", "local").await?;
        let application = named("app", "cluster").await?;
        return Ok(Demo {
            namespace: ns,
            endpoint,
            application,
        });
    }
    let ns = expect(api, Method::POST, "/deploy/ns", Some(json!({"name": NAMESPACE})), 201).await?["ns"]
        .as_str()
        .context("creating the namespace gave no id")?
        .to_string();
    let endpoint = create(
        api,
        &ns,
        "endpoint",
        json!({"name": "local", "kind": "local", "description": "processes on the agent's host",
               "config": {"data_dir": vms_dir.display().to_string()}}),
    )
    .await?;
    let master = create(
        api,
        &ns,
        "recipe",
        json!({"name": "master", "base": ["local"], "script": MASTER_SH}),
    )
    .await?;
    let worker = create(
        api,
        &ns,
        "recipe",
        json!({"name": "worker", "base": ["local"], "script": WORKER_SH}),
    )
    .await?;
    let template = create(
        api,
        &ns,
        "template",
        json!({"name": "local-cluster", "data": {"local": LOCAL_TF}, "varrecipes": ["master", "worker"],
               "inputs": {"workers": "Number of workers"}, "defaults": {"workers": ["2"]}}),
    )
    .await?;
    let application = create(
        api,
        &ns,
        "app",
        json!({"name": "cluster", "description": "one master and N workers sharing a token",
               "template": template, "templaterecipes": {"master": [master], "worker": [worker]}}),
    )
    .await?;
    Ok(Demo {
        namespace: ns,
        endpoint,
        application,
    })
}
