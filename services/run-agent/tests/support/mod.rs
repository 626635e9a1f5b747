//! Test helpers: the real Terraform and null provider, a tiny state server for the `http`
//! backend, a log sink that keeps lines, and run specs.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use goterra_core::Sensitive;
use goterra_core::runs::{RunAction, RunSpec, StateBackend};
use goterra_run_agent::executor::{ExecutorConfig, LogSink};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const STATE_USER: &str = "run-state";
pub const STATE_PASSWORD: &str = "state-pass-Zq81";

fn tools_dir() -> PathBuf {
    std::env::var("GOT_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/goterra/tools"))
}

/// Terraform and the null provider as CI installs them (`.ci/run`).
pub fn executor_config(work_dir: &std::path::Path) -> ExecutorConfig {
    let bin = std::env::var("GOT_TERRAFORM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| tools_dir().join("bin/terraform"));
    let plugins = std::env::var("GOT_TERRAFORM_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| tools_dir().join("plugins"));
    assert!(
        bin.exists(),
        "Terraform not found at {}: run .ci/run (ensure_terraform) or set GOT_TERRAFORM_BIN",
        bin.display()
    );
    ExecutorConfig {
        terraform_bin: bin,
        plugin_dir: Some(plugins),
        kill_grace: Duration::from_secs(3),
        work_dir: Some(work_dir.to_path_buf()),
        ..ExecutorConfig::default()
    }
}

/// Keeps every line it is given.
#[derive(Default)]
pub struct Lines(pub Mutex<Vec<String>>);

impl Lines {
    pub fn text(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

impl LogSink for Lines {
    fn line(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

/// Terraform's `http` backend protocol: GET/POST the state, LOCK/UNLOCK, basic auth.
#[derive(Default)]
pub struct StateStore {
    pub states: Mutex<HashMap<String, Bytes>>,
    pub locks: Mutex<HashMap<String, Bytes>>,
    pub bad_auth: Mutex<u32>,
}

impl StateStore {
    pub fn resources(&self, run: &str) -> Vec<serde_json::Value> {
        let states = self.states.lock().unwrap();
        let Some(state) = states.get(run) else {
            return Vec::new();
        };
        let state: serde_json::Value = serde_json::from_slice(state).unwrap();
        state["resources"].as_array().cloned().unwrap_or_default()
    }
}

pub struct StateServer {
    pub url: String,
    pub store: Arc<StateStore>,
}

pub async fn state_server() -> StateServer {
    let store = Arc::new(StateStore::default());
    let app = axum::Router::new()
        .route("/state/{run}", any(state_route))
        .with_state(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    StateServer { url, store }
}

async fn state_route(
    State(store): State<Arc<StateStore>>,
    Path(run): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Bytes) {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{STATE_USER}:{STATE_PASSWORD}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        *store.bad_auth.lock().unwrap() += 1;
        return (StatusCode::UNAUTHORIZED, Bytes::new());
    }
    match method.as_str() {
        "GET" => match store.states.lock().unwrap().get(&run) {
            Some(state) => (StatusCode::OK, state.clone()),
            None => (StatusCode::NO_CONTENT, Bytes::new()),
        },
        "POST" => {
            store.states.lock().unwrap().insert(run, body);
            (StatusCode::OK, Bytes::new())
        }
        "DELETE" => {
            store.states.lock().unwrap().remove(&run);
            (StatusCode::OK, Bytes::new())
        }
        "LOCK" => {
            let mut locks = store.locks.lock().unwrap();
            if let Some(holder) = locks.get(&run) {
                return (StatusCode::LOCKED, holder.clone());
            }
            locks.insert(run, body);
            (StatusCode::OK, Bytes::new())
        }
        "UNLOCK" => {
            store.locks.lock().unwrap().remove(&run);
            (StatusCode::OK, Bytes::new())
        }
        _ => (StatusCode::METHOD_NOT_ALLOWED, Bytes::new()),
    }
}

pub fn spec(
    server: &StateServer,
    action: RunAction,
    template: &str,
    variables: serde_json::Value,
    sensitive: &[(&str, &str)],
) -> RunSpec {
    let run = format!("run-{}", goterra_core::new_id());
    RunSpec {
        state: StateBackend {
            url: format!("{}/state/{run}", server.url),
            username: STATE_USER.into(),
            password: Sensitive::new(STATE_PASSWORD.into()),
        },
        run,
        action,
        namespace: "ns1".into(),
        application: "app1".into(),
        template: template.into(),
        variables: serde_json::from_value::<BTreeMap<String, serde_json::Value>>(variables).unwrap(),
        sensitive: sensitive
            .iter()
            .map(|(name, value)| ((*name).to_string(), Sensitive::new((*value).to_string())))
            .collect(),
        timeout_secs: 300,
    }
}

/// True while `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Waits (bounded) until `path` exists and returns its trimmed contents.
pub async fn wait_for_file(path: &std::path::Path) -> String {
    for _ in 0..600 {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return text.trim().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never appeared", path.display());
}
