#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replicas that register themselves with Traefik's Redis KV provider (`GOT_DISCOVERY=redis`):
//! two store replicas started as their own processes on PostgreSQL and Redis behind the real
//! Traefik v3, one killed with SIGKILL (it drops out when its keys expire), the other stopped
//! with SIGTERM (it withdraws at once).

use goterra_core::{Claims, Sensitive, TokenCodec};
use goterra_testing::db::TestDb;
use goterra_testing::{SpawnedServer, TEST_SECRET, free_port, identity};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

const GOTERRA: &str = env!("CARGO_BIN_EXE_goterra");
const TTL_SECS: &str = "3";

/// Traefik's path on `PATH`; under CI its absence fails the test (`.ci/run` installs it).
fn traefik() -> Option<String> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("traefik"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "traefik is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: traefik is not installed");
    }
    found.map(|path| path.to_string_lossy().into_owned())
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn server_keys(root: &str) -> Vec<String> {
    let mut connection = redis().await;
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{root}/http/services/got-store/loadBalancer/servers/*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    keys.sort();
    keys
}

async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{what}: not within {limit:?}");
}

async fn store_replica(database_url: &str, root: &str, redis_prefix: &str) -> SpawnedServer {
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let data_dir = tempfile::tempdir().unwrap().keep();
    SpawnedServer::start(
        GOTERRA,
        &[
            "serve",
            "store",
            "--listen",
            &listen,
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        &[
            ("GOT_LOG", "warn"),
            ("GOT_SECRET", TEST_SECRET),
            ("GOT_DATABASE_URL", database_url),
            ("GOT_REDIS_URL", "redis://127.0.0.1:6379"),
            ("GOT_REDIS_PREFIX", redis_prefix),
            ("GOT_DISCOVERY", "redis"),
            ("GOT_DISCOVERY_ROOT", root),
            ("GOT_DISCOVERY_TTL", TTL_SECS),
        ],
        port,
        "/store",
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn replicas_register_in_redis_and_leave_traefik_when_they_stop_or_die() {
    let Some(traefik) = traefik() else { return };
    let id = goterra_core::new_id();
    let root = format!("goterra-test-{id}");
    let redis_prefix = format!("goterra-test-{id}");
    let database = TestDb::postgres().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let traefik_port = free_port().unwrap();
    let config = dir.path().join("traefik.yml");
    std::fs::write(
        &config,
        format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:{traefik_port}\"\n\
             providers:\n  redis:\n    endpoints: [\"127.0.0.1:6379\"]\n    rootKey: \"{root}\"\n\
             ping:\n  entryPoint: web\n"
        ),
    )
    .unwrap();
    let config_arg = format!("--configFile={}", config.display());
    let proxy = SpawnedServer::start(&traefik, &[&config_arg], &[], traefik_port, "/ping")
        .await
        .unwrap();

    let first = store_replica(&database.url, &root, &redis_prefix).await;
    let second = store_replica(&database.url, &root, &redis_prefix).await;
    assert_eq!(
        server_keys(&root).await.len(),
        2,
        "each replica registers its own server"
    );

    let http = reqwest::Client::new();
    let ready = format!("{}/store/ready", proxy.url);
    eventually(
        "Traefik routes /store to the replicas",
        Duration::from_secs(20),
        async || {
            http.get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        },
    )
    .await;

    // Data written through one replica is read through either.
    let tokens = TokenCodec::new(&[Sensitive::new(TEST_SECRET.to_string())], 1).unwrap();
    let user = tokens.issue(&Claims::for_user(&identity("alice")));
    let created: Value = http
        .post(format!("{}/store", proxy.url))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deployment = created["id"].as_str().unwrap().to_string();
    let token = created["token"].as_str().unwrap().to_string();
    let put = http
        .put(format!("{}/store/{deployment}", proxy.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"key": "master", "value": "10.0.0.5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    for _ in 0..6 {
        let read = http
            .get(format!("{}/store/{deployment}/master", proxy.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), StatusCode::OK);
    }

    // A replica killed without warning drops out when its keys expire; requests keep working.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(first.pid()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(
        "the killed replica's server key expires",
        Duration::from_secs(15),
        async || server_keys(&root).await.len() == 1,
    )
    .await;
    eventually(
        "Traefik stops routing to the killed replica",
        Duration::from_secs(15),
        async || {
            let mut all_ok = true;
            for _ in 0..6 {
                let response = http.get(&ready).send().await;
                all_ok &= response.is_ok_and(|r| r.status() == StatusCode::OK);
            }
            all_ok
        },
    )
    .await;

    // A replica stopped with SIGTERM withdraws at once, before its keys would expire.
    let status = second.terminate().unwrap();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    assert!(
        server_keys(&root).await.is_empty(),
        "the stopped replica withdrew its server key"
    );
    eventually(
        "Traefik has no store replica left",
        Duration::from_secs(15),
        async || {
            http.get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status() != StatusCode::OK)
        },
    )
    .await;

    drop(first);
    proxy.terminate().unwrap();
}
