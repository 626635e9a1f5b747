#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every OpenAPI document matches its server: schemathesis (property-based API testing) runs
//! with all its checks over the document of every service — auth, deploy, store, run-agent and
//! acct, as each serves it — against a real `goterra up`, once on SQLite (directly) and once on
//! PostgreSQL (through the real Traefik with the committed `traefik/` configuration),
//! authenticated as the bootstrap admin. Any response the document does not describe (status,
//! content type, headers, body schema), any 5xx, any request the server accepts against its
//! document or refuses within it, fails the test with schemathesis's report.
//!
//! schemathesis is a Python tool: `.ci/run` installs the pinned version from PyPI; elsewhere
//! `pip install schemathesis==<SCHEMATHESIS_VERSION in .ci/run>`, or point `GOT_SCHEMATHESIS`
//! at the executable. Without it the test is skipped with a message, except under CI (`CI`
//! set), where it fails. `GOT_SCHEMATHESIS_EXAMPLES` raises the examples per operation for a
//! deeper run than CI's (see docs/security.md).

use goterra_db::Engine;
use goterra_testing::db::TestDb;
use goterra_testing::{SpawnedServer, free_port};
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/traefik.rs"]
mod traefik;

const GOTERRA: &str = env!("CARGO_BIN_EXE_goterra");
/// The services and the prefix each serves its document under.
const SERVICES: [&str; 5] = ["auth", "deploy", "store", "run-agent", "acct"];
/// Examples per operation and phase in CI: enough to cover every operation's shapes, small
/// enough that both engines take a few minutes together.
const CI_EXAMPLES: &str = "10";

fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GOT_SCHEMATHESIS").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let found = Command::new("schemathesis").arg("--version").output().ok()?;
    found.status.success().then(|| PathBuf::from("schemathesis"))
}

async fn up(data_dir: &Path, database_url: Option<&str>) -> SpawnedServer {
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let data = data_dir.to_str().unwrap();
    let mut env = vec![
        ("GOT_LOG", "warn"),
        // Every service in one process, on its embedded backends: no broker, no Redis.
        ("GOT_AMQP", ""),
        ("GOT_REDIS_URL", ""),
    ];
    if let Some(url) = database_url {
        env.push(("GOT_DATABASE_URL", url));
    }
    SpawnedServer::start(
        GOTERRA,
        &["up", "--listen", &listen, "--data-dir", data],
        &env,
        port,
        "/auth",
    )
    .await
    .unwrap()
}

/// The real Traefik with the committed configuration in front of `platform`, routing.
async fn traefik_in_front_of(dir: &Path, platform: &str) -> SpawnedServer {
    let traefik = traefik::tool("traefik").expect("Traefik (.ci/run installs it)");
    let port = free_port().unwrap();
    let config = traefik::in_front_of(dir, port, platform);
    let config_arg = format!("--configFile={}", config.display());
    let proxy = SpawnedServer::start(traefik.to_str().unwrap(), &[&config_arg], &[], port, "/ping")
        .await
        .unwrap();
    // The file provider is loaded a moment after /ping answers.
    for _ in 0..100 {
        if reqwest::get(format!("{}/auth", proxy.url))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return proxy;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("Traefik never routed /auth");
}

/// The configuration and hooks of the run (tests/schemathesis/).
fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis")
}

/// A token of the bootstrap admin, from its API key.
async fn admin_token(base: &str, admin_key: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/auth/api"))
        .header("X-API-Key", admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().unwrap().to_string()
}

/// Runs schemathesis over every service's document; the failures it reported, if any.
fn run_schemathesis(tool: &Path, base: &str, token: &str, reports: &Path, engine: Engine) -> Vec<String> {
    let examples = std::env::var("GOT_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| CI_EXAMPLES.into());
    let config = config_dir();
    let mut failures = Vec::new();
    for service in SERVICES {
        let report = reports.join(format!("{engine:?}-{service}.xml"));
        let output = Command::new(tool)
            .args(["--no-color", "--config-file"])
            .arg(config.join("schemathesis.toml"))
            .args(["run", &format!("{base}/{service}/openapi.json")])
            .args(["--url", base])
            .args(["--checks", "all"])
            .args(["--max-examples", &examples])
            // Reproducible in CI: the same requests every run.
            .args(["--seed", "11"])
            // As the bootstrap admin, with the `token` scheme of every document (so that the
            // authentication checks know which credential to leave out or spoil).
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--request-timeout", "30"])
            .args(["--report", "junit", "--report-junit-path", report.to_str().unwrap()])
            .env("PYTHONPATH", &config)
            .env("SCHEMATHESIS_HOOKS", "goterra_hooks")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("== schemathesis {service} on {engine:?}: {}", summary(&stdout));
        if !output.status.success() {
            failures.push(format!(
                "{service} on {engine:?} ({}):\n{stdout}\n{stderr}",
                output.status
            ));
        }
    }
    failures
}

/// The closing line of schemathesis's output (counts of passed and failed checks).
fn summary(stdout: &str) -> String {
    stdout
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty() && !line.trim().chars().all(|c| c == '=' || c == '-'))
        .unwrap_or("")
        .trim()
        .to_string()
}

#[tokio::test]
async fn every_openapi_document_matches_its_server_on_both_engines() {
    let Some(tool) = schemathesis() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "schemathesis is not installed: .ci/run installs it (pip install schemathesis)"
        );
        eprintln!("skipped: schemathesis is not installed (pip install schemathesis, see docs/security.md)");
        return;
    };
    let reports = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let data = tempfile::tempdir().unwrap();
        let data_dir = data.path().join("data");
        let database = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(TestDb::postgres().await.unwrap()),
        };
        let server = up(&data_dir, database.as_ref().map(|db| db.url.as_str())).await;
        let admin_key = std::fs::read_to_string(data_dir.join("admin.apikey")).unwrap();
        // The PostgreSQL run goes through Traefik with the committed configuration, as in
        // production: what the proxy adds or changes must match the documents too.
        let proxy = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => Some(traefik_in_front_of(data.path(), &server.url).await),
        };
        let base = proxy.as_ref().map_or(&server.url, |proxy| &proxy.url).clone();
        let token = admin_token(&base, admin_key.trim()).await;
        let tool = tool.clone();
        let reports_dir = reports.path().to_path_buf();
        let found = tokio::task::spawn_blocking(move || run_schemathesis(&tool, &base, &token, &reports_dir, engine))
            .await
            .unwrap();
        failures.extend(found);
        if let Some(proxy) = proxy {
            proxy.terminate().unwrap();
        }
        assert!(
            server.terminate().unwrap().success(),
            "goterra up stops cleanly after the run"
        );
    }
    assert!(
        failures.is_empty(),
        "schemathesis found mismatches between the documents and the servers:\n{}",
        failures.join("\n\n")
    );
}
