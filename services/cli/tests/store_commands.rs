//! The real `goterra-cli` binary against a real store server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goterra_db::Engine;
use goterra_testing::TestServer;
use std::process::Output;
use std::time::{Duration, Instant};

const CLI: &str = env!("CARGO_BIN_EXE_goterra-cli");

struct Deployment {
    server: TestServer,
    id: String,
    token: String,
}

async fn deployment_with(configure: impl FnOnce(&mut goterra_core::Config)) -> Deployment {
    let server = TestServer::start_with(Engine::Sqlite, &[goterra_store::spec()], configure)
        .await
        .unwrap();
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/store", server.url))
        .bearer_auth(server.token_for("alice", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Deployment {
        id: created["id"].as_str().unwrap().to_string(),
        token: created["token"].as_str().unwrap().to_string(),
        server,
    }
}

async fn deployment() -> Deployment {
    deployment_with(|_| {}).await
}

impl Deployment {
    /// Runs the CLI with the deployment in its environment (URL with a trailing slash, as
    /// templates often write it).
    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = tokio::process::Command::new(CLI);
        command
            .args(args)
            .env_clear()
            .env("GOT_URL", format!("{}/", self.server.url))
            .env("GOT_DEPLOYMENT", &self.id)
            .env("GOT_TOKEN", &self.token);
        for (name, value) in env {
            command.env(name, value);
        }
        tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap()
            .unwrap()
    }

    async fn put_over_http(&self, key: &str, value: &str) {
        let status = reqwest::Client::new()
            .put(format!("{}/store/{}", self.server.url, self.id))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({"key": key, "value": value}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200);
    }

    async fn stored(&self, key: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}/store/{}/{key}", self.server.url, self.id))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn put_then_get_prints_only_the_value() {
    let dep = deployment().await;
    let put = dep.run(&["put", "k3stoken", "  K10abc::server:xyz  "], &[]).await;
    assert!(put.status.success(), "{put:?}");
    let get = dep.run(&["get", "k3stoken"], &[]).await;
    assert_eq!(get.status.code(), Some(0), "{get:?}");
    assert_eq!(stdout(&get), "K10abc::server:xyz\n");
    // Empty values exist (the original could never read them back).
    assert!(dep.run(&["put", "empty", ""], &[]).await.status.success());
    let get = dep.run(&["--timeout", "0", "get", "empty"], &[]).await;
    assert_eq!((get.status.code(), stdout(&get)), (Some(0), "\n".to_string()));
    // The modern form, and a value that looks like a flag.
    assert!(dep.run(&["store", "put", "n", "-1"], &[]).await.status.success());
    assert_eq!(stdout(&dep.run(&["store", "get", "n"], &[]).await), "-1\n");
}

#[tokio::test]
async fn go_style_flags_still_work() {
    let dep = deployment().await;
    dep.put_over_http("masterip", "10.0.0.1").await;
    let url = format!("{}//", dep.server.url);
    let mut command = tokio::process::Command::new(CLI);
    command.env_clear().args([
        "-url",
        &url,
        "-deployment",
        &dep.id,
        "-token",
        &dep.token,
        "-timeout=1",
        "get",
        "masterip",
    ]);
    let output = command.output().await.unwrap();
    assert_eq!(
        (output.status.code(), stdout(&output)),
        (Some(0), "10.0.0.1\n".to_string()),
        "{output:?}"
    );
}

#[tokio::test]
async fn get_waits_on_the_server_until_the_key_is_written() {
    let dep = deployment().await;
    let started = Instant::now();
    let (get, ()) = tokio::join!(dep.run(&["--timeout", "1", "get", "late"], &[]), async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        dep.put_over_http("late", "finally").await;
    });
    assert_eq!(
        (get.status.code(), stdout(&get)),
        (Some(0), "finally\n".to_string()),
        "{get:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn exit_codes_for_timeouts_auth_failures_and_usage() {
    let dep = deployment().await;
    // Timeout: non-zero, nothing on stdout, the reason on stderr.
    let get = dep.run(&["--timeout", "0", "get", "never"], &[]).await;
    assert_eq!(get.status.code(), Some(1), "{get:?}");
    assert!(get.stdout.is_empty());
    assert!(String::from_utf8_lossy(&get.stderr).contains("never"), "{get:?}");
    // A refused token fails at once even with a long timeout.
    let started = Instant::now();
    let get = dep
        .run(&["--timeout", "30", "get", "k"], &[("GOT_TOKEN", "gAAAAAnot-a-token")])
        .await;
    assert_eq!(get.status.code(), Some(3), "{get:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let other = deployment().await;
    let put = dep.run(&["put", "k", "v"], &[("GOT_TOKEN", &other.token)]).await;
    assert_eq!(put.status.code(), Some(3), "a token of another deployment: {put:?}");
    // A key the server refuses is a failure, not something to wait for.
    let get = dep.run(&["--timeout", "30", "get", "a/b c"], &[]).await;
    assert_eq!(get.status.code(), Some(1), "{get:?}");
    // Usage errors: exit 2 with usage, never a panic.
    for args in [&["get"][..], &["put", "k"], &[], &["frobnicate"]] {
        let output = dep.run(args, &[]).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(!output.stderr.is_empty());
    }
    let mut command = tokio::process::Command::new(CLI);
    let output = command.env_clear().args(["get", "k"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(2), "no URL: {output:?}");
    // An unreadable file is a failure (the original exited 0).
    let put = dep.run(&["put", "k", "@/nonexistent/file"], &[]).await;
    assert_eq!(put.status.code(), Some(1), "{put:?}");
}

#[tokio::test]
async fn files_round_trip_byte_for_byte() {
    let dep = deployment().await;
    let dir = tempfile::tempdir().unwrap();
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 0xff, 0xfe]).cycle().take(5000).collect();
    let text = "line one\nligne deux: été\n".as_bytes().to_vec();
    let tricky = b"base64:not really".to_vec();
    for (name, content) in [("binary", &binary), ("text", &text), ("tricky", &tricky)] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let put = dep.run(&["put", name, &format!("@{}", path.display())], &[]).await;
        assert!(put.status.success(), "{name}: {put:?}");
        let out = dir.path().join(format!("{name}.out"));
        let get = dep.run(&["get", name, "-o", out.to_str().unwrap()], &[]).await;
        assert!(get.status.success(), "{name}: {get:?}");
        assert_eq!(&std::fs::read(&out).unwrap(), content, "{name} through --output");
    }
    // Binary values come out exactly on stdout too; text keeps the original's newline.
    assert_eq!(&dep.run(&["get", "binary"], &[]).await.stdout, &binary);
    assert_eq!(
        stdout(&dep.run(&["get", "text"], &[]).await),
        "line one\nligne deux: été\n\n"
    );
    // What the server holds for text is the text itself, readable by every other client.
    assert_eq!(dep.stored("text").await["value"], "line one\nligne deux: été\n");
    assert!(
        dep.stored("binary").await["value"]
            .as_str()
            .unwrap()
            .starts_with("base64:")
    );
}

#[tokio::test]
async fn got_trim_keeps_the_end_of_a_log() {
    let dep = deployment().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "old line\nrecent: é\n").unwrap();
    let put = dep
        .run(
            &["put", "_log_app", &format!("@{}", log.display())],
            &[("GOT_TRIM", "11")],
        )
        .await;
    assert!(put.status.success(), "{put:?}");
    assert_eq!(dep.stored("_log_app").await["value"], "recent: é\n");
    // The last 2 bytes start inside `é`: the tail starts on the next character instead of
    // becoming invalid UTF-8 (which would have to be sent base64-encoded).
    let put = dep
        .run(
            &["put", "_log_app", &format!("@{}", log.display())],
            &[("GOT_TRIM", "2")],
        )
        .await;
    assert!(put.status.success(), "{put:?}");
    assert_eq!(dep.stored("_log_app").await["value"], "\n");
}

#[tokio::test]
async fn create_and_delete_with_an_api_key() {
    let dep = deployment_with(|config| config.feature.anonymous = true).await;
    let create = dep.run(&["create"], &[("GOT_APIKEY", "bob")]).await;
    assert!(create.status.success(), "{create:?}");
    let text = stdout(&create);
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_string()
    };
    assert_eq!(field("url"), dep.server.url);
    let (id, token) = (field("id"), field("token"));
    let put = dep
        .run(&["put", "k", "v"], &[("GOT_DEPLOYMENT", &id), ("GOT_TOKEN", &token)])
        .await;
    assert!(put.status.success(), "{put:?}");
    let delete = dep
        .run(&["delete"], &[("GOT_DEPLOYMENT", &id), ("GOT_TOKEN", &token)])
        .await;
    assert!(delete.status.success(), "{delete:?}");
    let get = dep
        .run(
            &["--timeout", "0", "get", "k"],
            &[("GOT_DEPLOYMENT", &id), ("GOT_TOKEN", &token)],
        )
        .await;
    assert_eq!(get.status.code(), Some(1), "{get:?}");
    assert_eq!(dep.run(&["create"], &[]).await.status.code(), Some(2), "no API key");
}
