#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `goterra up` as a newcomer runs it: the real binary, a fresh data dir, a restart.

use goterra_testing::{SpawnedServer, free_port};
use reqwest::StatusCode;
use serde_json::Value;

const GOTERRA: &str = env!("CARGO_BIN_EXE_goterra");

async fn up(data_dir: &std::path::Path, port: u16) -> SpawnedServer {
    up_with(data_dir, port, &[]).await
}

async fn up_with(data_dir: &std::path::Path, port: u16, extra: &[&str]) -> SpawnedServer {
    let listen = format!("127.0.0.1:{port}");
    let data_dir = data_dir.to_str().unwrap();
    let mut args = vec!["up", "--listen", &listen, "--data-dir", data_dir];
    args.extend_from_slice(extra);
    SpawnedServer::start(GOTERRA, &args, &[("GOT_LOG", "warn")], port, "/auth")
        .await
        .unwrap()
}

fn key_in(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .map(str::trim)
        .find(|line| line.len() == 32 && line.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(String::from)
}

#[tokio::test]
async fn first_start_creates_the_admin_and_a_restart_keeps_everything() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let port = free_port().unwrap();
    let server = up(&data_dir, port).await;
    let http = reqwest::Client::new();

    for prefix in ["/auth", "/deploy", "/store", "/run-agent", "/acct"] {
        let response = http.get(format!("{}{prefix}", server.url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{prefix}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "ok", "{prefix}");
    }

    let printed = key_in(&server.stdout()).expect("the admin API key is printed on first start");
    let saved = std::fs::read_to_string(data_dir.join("admin.apikey")).unwrap();
    assert_eq!(saved.trim(), printed);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data_dir.join("admin.apikey")), 0o600);
        assert_eq!(mode(&data_dir.join("secret")), 0o600);
        assert_eq!(mode(&data_dir), 0o700);
    }

    let login: Value = http
        .get(format!("{}/auth/api", server.url))
        .header("X-API-Key", &printed)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_string();
    let created = http
        .post(format!("{}/auth/register", server.url))
        .bearer_auth(&token)
        .body(r#"{"uid":"alice","password":"alice-password"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);

    let status = server.terminate().unwrap();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}");

    let server = up(&data_dir, port).await;
    assert_eq!(key_in(&server.stdout()), None, "the key is never printed again");
    let me = http
        .get(format!("{}/auth/me", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "tokens survive a restart (the secret is kept)"
    );
    let login = http
        .post(format!("{}/auth/login", server.url))
        .body(r#"{"uid":"alice","password":"alice-password"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK, "users survive a restart");
    assert!(server.terminate().unwrap().success());
}

/// `NS`, `ENDPOINT` and `APP` from `demo.env`.
fn demo_ids(data_dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(data_dir.join("demo.env"))
        .unwrap()
        .lines()
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap();
            (name.to_string(), value.to_string())
        })
        .collect()
}

#[tokio::test]
async fn up_demo_loads_the_local_catalogue_once_and_says_how_to_run_it() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let port = free_port().unwrap();
    let server = up_with(&data_dir, port, &["--demo"]).await;
    let ids = demo_ids(&data_dir);
    assert_eq!(ids.keys().collect::<Vec<_>>(), ["APP", "ENDPOINT", "NS"]);
    let printed = server.stdout();
    assert!(printed.contains("demo catalogue: namespace"), "{printed}");
    assert!(
        printed.contains(&format!("/deploy/ns/{}/run/{}", ids["NS"], ids["APP"])),
        "the printed command starts a run of the demo: {printed}"
    );
    assert!(
        printed.contains(&format!("KEY=$(cat {}/admin.apikey)", data_dir.display())),
        "{printed}"
    );

    let key = std::fs::read_to_string(data_dir.join("admin.apikey")).unwrap();
    let http = reqwest::Client::new();
    let endpoint: Value = http
        .get(format!(
            "{}/deploy/ns/{}/endpoint/{}",
            server.url, ids["NS"], ids["ENDPOINT"]
        ))
        .header("X-API-Key", key.trim())
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["endpoint"]
        .clone();
    assert_eq!(endpoint["kind"], "local", "{endpoint}");
    assert_eq!(
        endpoint["config"]["data_dir"],
        data_dir.join("vms").to_str().unwrap(),
        "the VMs live under the data dir, by an absolute path: {endpoint}"
    );
    assert!(server.terminate().unwrap().success());

    let server = up_with(&data_dir, port, &["--demo"]).await;
    assert_eq!(demo_ids(&data_dir), ids, "a restart finds the same catalogue");
    assert!(server.terminate().unwrap().success());
}

#[tokio::test]
async fn an_invalid_config_file_stops_startup_with_its_name_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("goterra.yml");
    std::fs::write(&config, "web:\n  port: eighty\n").unwrap();
    let output = std::process::Command::new(GOTERRA)
        .args(["up", "--config", config.to_str().unwrap(), "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("goterra.yml") && stderr.contains("web.port"),
        "{stderr}"
    );
}

#[test]
fn version_prints() {
    let output = std::process::Command::new(GOTERRA).arg("version").output().unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("goterra "));
}
