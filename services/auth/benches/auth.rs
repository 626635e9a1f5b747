#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Token encode/verify speed and `GET /auth/api`, `GET /auth/me` throughput over HTTP, on the
//! embedded database (SQLite) and PostgreSQL. Run: `cargo bench -p goterra-auth`.
//! Bounded: a fixed number of requests per scenario, loopback only.

use goterra_core::{Claims, Identity, Sensitive};
use goterra_db::Engine;
use goterra_testing::TestServer;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN_ITERATIONS: u32 = 100_000;
const HTTP_REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;
const ADMIN_KEY: &str = "bench-admin-key-0123456789";

fn per_op(elapsed: Duration, n: u32) -> String {
    format!(
        "{:.2} µs/op ({:.0} ops/s)",
        elapsed.as_secs_f64() * 1e6 / f64::from(n),
        f64::from(n) / elapsed.as_secs_f64()
    )
}

fn tokens() {
    let codec = goterra_core::TokenCodec::new(&[Sensitive::new("bench-secret-0123456789".into())], 24).unwrap();
    let claims = Claims::for_user(&Identity {
        uid: "alice".into(),
        admin: false,
        super_user: false,
        email: "alice@example.org".into(),
        kind: String::new(),
    });
    let start = Instant::now();
    let mut token = String::new();
    for _ in 0..TOKEN_ITERATIONS {
        token = codec.issue(&claims);
    }
    println!("| token encode | {} |", per_op(start.elapsed(), TOKEN_ITERATIONS));
    let start = Instant::now();
    for _ in 0..TOKEN_ITERATIONS {
        codec.verify(&token).unwrap();
    }
    println!("| token verify | {} |", per_op(start.elapsed(), TOKEN_ITERATIONS));
}

/// Sends `HTTP_REQUESTS` GETs from `CONCURRENCY` workers; prints throughput and latency.
async fn load(label: &str, url: String, header: (&'static str, String)) {
    let client = reqwest::Client::new();
    let latencies = Arc::new(tokio::sync::Mutex::new(Vec::with_capacity(HTTP_REQUESTS)));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, header, latencies) = (client.clone(), url.clone(), header.clone(), latencies.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(HTTP_REQUESTS / CONCURRENCY);
            for _ in 0..HTTP_REQUESTS / CONCURRENCY {
                let sent = Instant::now();
                let response = client.get(&url).header(header.0, &header.1).send().await.unwrap();
                assert!(response.status().is_success());
                response.bytes().await.unwrap();
                mine.push(sent.elapsed());
            }
            latencies.lock().await.extend(mine);
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = start.elapsed();
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "| {label} | {:.0} req/s | p50 {:.2} ms | p99 {:.2} ms |",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3
    );
}

async fn http(engine: Engine) {
    let server = TestServer::start_with(engine, &[goterra_auth::spec()], |config| {
        config.admin_apikey = Some(Sensitive::new(ADMIN_KEY.into()));
    })
    .await
    .unwrap();
    let token = server.token_for("admin", true);
    let name = format!("{engine:?}");
    load(
        &format!("GET /auth/api (X-API-Key), {name}"),
        format!("{}/auth/api", server.url),
        ("X-API-Key", ADMIN_KEY.into()),
    )
    .await;
    load(
        &format!("GET /auth/me (token), {name}"),
        format!("{}/auth/me", server.url),
        ("Authorization", format!("Bearer {token}")),
    )
    .await;
    server.stop().await;
}

fn main() {
    println!("auth bench: {CONCURRENCY} concurrent clients, {HTTP_REQUESTS} requests per HTTP scenario");
    tokens();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        http(Engine::Sqlite).await;
        http(Engine::Postgres).await;
    });
}
