//! The runs page with 100 000 runs in the database, run with
//! `cargo bench -p goterra-ui --bench runs_page`.
//!
//! One platform in this process (auth, deploy, store and the UI on a loopback port, SQLite and
//! then PostgreSQL), 100 000 runs of ten users in one namespace written straight into deploy's
//! table (see `seed_runs`), the admin signed in through the login form. For each page: the
//! server-side time of the UI route (the mean of the platform's own request histogram,
//! `goterra_http_request_duration_seconds`, over the measured requests; it includes the page's
//! API calls over loopback), the client's p50, and the API calls one page costs (the request
//! counter of every non-UI route, before and after one page). The reference lines are the bare
//! deploy API list calls the pages are built from, measured the same way.
//!
//! `GOT_BENCH_RUNS` (default 100 000) and `GOT_BENCH_REQUESTS` (default 50 per line) override
//! the counts; PostgreSQL at `GOT_TEST_POSTGRES_URL` (a database is created and dropped).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{ADMIN_KEY, SeedRun, Web, create_namespace, seed_runs, services};
use goterra_core::Sensitive;
use goterra_db::Engine;
use goterra_testing::TestServer;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LATENCY: &str = "goterra_http_request_duration_seconds";
const REQUESTS: &str = "goterra_http_requests_total";

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The process's metrics: `(sum, count)` of the latency histogram per route, and the request
/// count per route.
struct Metrics {
    latency: BTreeMap<String, (f64, f64)>,
    requests: BTreeMap<String, f64>,
}

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let end = start + line[start..].find('"')?;
    Some(&line[start..end])
}

async fn metrics(server: &TestServer) -> Metrics {
    let text = reqwest::get(format!("{}/deploy/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut metrics = Metrics {
        latency: BTreeMap::new(),
        requests: BTreeMap::new(),
    };
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        let Some(route) = label(line, "route") else { continue };
        let key = format!("{} {route}", label(line, "method").unwrap_or("?"));
        if line.starts_with(&format!("{LATENCY}_sum")) {
            metrics.latency.entry(key).or_default().0 += value;
        } else if line.starts_with(&format!("{LATENCY}_count")) {
            metrics.latency.entry(key).or_default().1 += value;
        } else if line.starts_with(REQUESTS) {
            *metrics.requests.entry(key).or_default() += value;
        }
    }
    metrics
}

/// API calls (requests to routes outside `/app`) between two snapshots, per route.
fn api_calls(before: &Metrics, after: &Metrics) -> BTreeMap<String, f64> {
    after
        .requests
        .iter()
        .filter(|(route, _)| !route.contains(" /app"))
        .map(|(route, count)| {
            (
                route.clone(),
                count - before.requests.get(route).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, calls)| *calls > 0.0)
        .collect()
}

struct Line {
    what: String,
    server_ms: f64,
    p50_ms: f64,
    calls: String,
}

/// One GET of `path`: as the signed-in browser (`web`), or with `bearer` for an API route.
async fn get_once(server: &TestServer, web: &mut Web, http: &reqwest::Client, bearer: Option<&str>, path: &str) {
    match bearer {
        Some(token) => {
            let response = http
                .get(format!("{}{path}", server.url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{path}: {}", response.status());
            let _ = response.bytes().await.unwrap();
        }
        None => {
            let page = web.get(path).await;
            assert!(page.status.is_success(), "{path}: {} {}", page.status, page.body);
            assert!(page.body.contains("<tr data-status="), "{path}: no run shown");
        }
    }
}

/// Times `requests` GETs of `path` (after two warm-up ones): the route's server-side mean from
/// the histogram, the client's p50, and the API calls of one request.
async fn measure(
    server: &TestServer,
    web: &mut Web,
    bearer: Option<&str>,
    route: &str,
    path: &str,
    requests: usize,
) -> Line {
    let http = reqwest::Client::new();
    for _ in 0..2 {
        get_once(server, web, &http, bearer, path).await;
    }
    let before = metrics(server).await;
    get_once(server, web, &http, bearer, path).await;
    let one = metrics(server).await;
    let calls = api_calls(&before, &one);
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        get_once(server, web, &http, bearer, path).await;
        times.push(started.elapsed());
    }
    let after = metrics(server).await;
    let key = format!("GET {route}");
    let (sum_before, count_before) = one.latency.get(&key).copied().unwrap_or_default();
    let (sum_after, count_after) = after.latency.get(&key).copied().unwrap_or_default();
    assert!(count_after - count_before >= requests as f64, "no histogram for {key}");
    times.sort();
    let p50 = times[times.len() / 2];
    let calls = if bearer.is_some() {
        "—".to_string()
    } else {
        let total: f64 = calls.values().sum();
        let list: Vec<String> = calls.iter().map(|(route, n)| format!("{n} × `{route}`")).collect();
        format!("{total}: {}", list.join(", "))
    };
    Line {
        what: format!("`{path}`"),
        server_ms: (sum_after - sum_before) / (count_after - count_before) * 1000.0,
        p50_ms: ms(p50),
        calls,
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn bench(engine: Engine, runs: usize, requests: usize) -> Vec<Line> {
    let server = TestServer::start_with(engine, &services(false), |config| {
        config.admin_apikey = Some(Sensitive::new(ADMIN_KEY.to_string()));
    })
    .await
    .unwrap();
    let ns = create_namespace(&server, "busy").await;
    let statuses = [
        "deploy_success",
        "destroy_success",
        "destroy_success",
        "deploy_success",
        "destroy_success",
        "deploy_success",
        "destroy_success",
        "deploy_success",
        "destroy_success",
        "deploy_failure",
    ];
    let seeded: Vec<SeedRun> = (0..runs)
        .map(|i| SeedRun {
            name: format!("run-{i}"),
            uid: if i % 10 == 0 {
                "admin".to_string()
            } else {
                format!("user{}", i % 10)
            },
            status: statuses[(i / 10) % statuses.len()],
            created_at: 1_700_000_000 + i as i64,
        })
        .collect();
    let started = Instant::now();
    seed_runs(&server, &ns, &seeded).await;
    eprintln!(
        "{engine:?}: {runs} runs seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut web = Web::new(&server);
    assert!(web.sign_in("", ADMIN_KEY).await.status.is_redirection());
    let token = server.token_for("admin", true);
    let mut lines = Vec::new();
    for path in [
        "/app/run?all=1",
        "/app/run",
        "/app/run?all=1&status=failed",
        "/app/run?all=1&page=400",
    ] {
        lines.push(measure(&server, &mut web, None, "/app/run", path, requests).await);
    }
    lines.push(
        measure(
            &server,
            &mut web,
            None,
            "/app/ns/{ns}/run",
            &format!("/app/ns/{ns}/run?all=1"),
            requests,
        )
        .await,
    );
    for path in [
        "/deploy/run?all=1&limit=25",
        "/deploy/run?limit=25",
        "/deploy/run?all=1&limit=25&status=deploy_failure,destroy_failure",
        "/deploy/run?all=1&limit=25&skip=10000",
    ] {
        lines.push(measure(&server, &mut web, Some(&token), "/deploy/run", path, requests).await);
    }
    server.stop().await;
    lines
}

#[tokio::main]
async fn main() {
    let runs = env_count("GOT_BENCH_RUNS", 100_000);
    let requests = env_count("GOT_BENCH_REQUESTS", 50);
    println!("## runs page, {runs} runs, {requests} requests per line\n");
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let lines = bench(engine, runs, requests).await;
        println!("### {engine:?}\n");
        println!("| request | server-side mean ms | client p50 ms | API calls per page |");
        println!("|---|---|---|---|");
        for line in lines {
            println!(
                "| {} | {:.2} | {:.2} | {} |",
                line.what, line.server_ms, line.p50_ms, line.calls
            );
        }
        println!();
    }
}
