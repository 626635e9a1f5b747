#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A PUT answered 200 by the embedded (SQLite) store is on disk: `kill -9` of the process in
//! the middle of many concurrent PUTs loses none of the acknowledged ones.

use goterra_testing::{SpawnedServer, free_port};
use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: usize = 16;
/// Acknowledged PUTs after which the process is killed (the writers keep sending).
const KILL_AFTER: usize = 400;

#[tokio::test]
async fn acknowledged_puts_survive_kill_9_of_the_embedded_store() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let database = format!("sqlite://{}?mode=rwc", data.path().join("store.db").display());
    let args = ["--listen", listen.as_str(), "--data-dir", data.path().to_str().unwrap()];
    let env = [
        ("GOT_DATABASE_URL", database.as_str()),
        ("GOT_SECRET", "durability-secret-0123456789"),
        ("GOT_FEAT_ANONYMOUS", "1"),
        ("GOT_LOG", "warn"),
    ];
    let start = || SpawnedServer::start(env!("CARGO_BIN_EXE_goterra-store"), &args, &env, port, "/store");
    let http = reqwest::Client::new();

    let server = start().await.unwrap();
    let created: serde_json::Value = http
        .post(format!("{}/store", server.url))
        .header("X-API-Key", "durability")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (created["id"].as_str().unwrap(), created["token"].as_str().unwrap());
    let url = format!("{}/store/{id}", server.url);

    // Every writer PUTs its own keys, each once, and notes the ones answered 200.
    let acknowledged = Arc::new(Mutex::new(BTreeMap::<String, String>::new()));
    let (enough, mut enough_rx) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (http, url, token, acknowledged, enough) = (
                http.clone(),
                url.clone(),
                token.to_string(),
                acknowledged.clone(),
                enough.clone(),
            );
            tokio::spawn(async move {
                for n in 0.. {
                    let (key, value) = (format!("w{writer}-{n}"), format!("value {writer} {n}"));
                    let answer = http
                        .put(&url)
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"key": key, "value": value}))
                        .send()
                        .await;
                    // Once the process is gone, requests fail: stop.
                    let Ok(answer) = answer else { return };
                    if answer.status() != StatusCode::OK {
                        return;
                    }
                    let mut acknowledged = acknowledged.lock().unwrap();
                    acknowledged.insert(key, value);
                    if acknowledged.len() >= KILL_AFTER {
                        let _ = enough.send(true);
                    }
                }
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(60), enough_rx.wait_for(|enough| *enough))
        .await
        .expect("the store acknowledged too few PUTs")
        .unwrap();
    // SIGKILL while PUTs are in flight.
    drop(server);
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= KILL_AFTER);

    let server = start().await.unwrap();
    let stored: serde_json::Value = http
        .get(format!("{}/store/{id}", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored = stored["deployment"].as_object().unwrap();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|(key, value)| stored.get(*key).and_then(|v| v.as_str()) != Some(value.as_str()))
        .map(|(key, _)| key)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged PUTs lost after kill -9: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    drop(server);
}
