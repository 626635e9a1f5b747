#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `goterra-auth` alone on PostgreSQL, as in production.

use goterra_testing::db::TestDb;
use goterra_testing::{SpawnedServer, free_port};
use reqwest::StatusCode;

#[tokio::test]
async fn goterra_auth_runs_alone_on_postgres_and_keeps_data_across_restarts() {
    let db = TestDb::postgres().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let args = ["--listen", listen.as_str(), "--data-dir", data.path().to_str().unwrap()];
    let env = [
        ("GOT_DATABASE_URL", db.url.as_str()),
        ("GOT_SECRET", "standalone-secret-0123456789"),
        ("GOT_ADMIN_APIKEY", "standalone-admin-key-0123456789"),
        ("GOT_LOG", "warn"),
    ];
    let start = || SpawnedServer::start(env!("CARGO_BIN_EXE_goterra-auth"), &args, &env, port, "/auth");
    let http = reqwest::Client::new();

    let server = start().await.unwrap();
    let created = http
        .post(format!("{}/auth/register", server.url))
        .header("X-API-Key", "standalone-admin-key-0123456789")
        .body(r#"{"uid":"alice","password":"alice-password"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    assert!(server.terminate().unwrap().success());

    let server = start().await.unwrap();
    let login = http
        .post(format!("{}/auth/login", server.url))
        .body(r#"{"uid":"alice","password":"alice-password"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(server.terminate().unwrap().success());
}

#[test]
fn a_standalone_service_needs_the_shared_secret() {
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_goterra-auth"))
        .args(["--data-dir", data.path().to_str().unwrap()])
        .env_remove("GOT_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("GOT_SECRET"));
}
