//! Load test of the store, run with `cargo bench -p goterra-store --bench store_load`.
//!
//! Starts its own servers on loopback ports (the release `goterra-store` binary with each
//! backend, and etcd when installed), drives them with one load client, and prints a Markdown
//! report for `docs/performance.md`. Every loop is bounded in requests and time.
//! Needs Redis on 127.0.0.1:6379 (`GOT_BENCH_REDIS_URL`); set `GOT_BENCH_QUICK=1` for a smoke run,
//! `GOT_BENCH_ONLY_WAITERS=1` for the waiters alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const STORE_BIN: &str = env!("CARGO_BIN_EXE_goterra-store");
const CONCURRENCY: usize = 32;
const SCENARIO_TIME_CAP: Duration = Duration::from_secs(20);

struct Settings {
    requests: usize,
    waiters: usize,
    redis_url: String,
}

fn settings() -> Settings {
    let quick = std::env::var("GOT_BENCH_QUICK").is_ok_and(|v| v == "1");
    Settings {
        requests: if quick { 2_000 } else { 20_000 },
        waiters: if quick { 500 } else { 10_000 },
        redis_url: std::env::var("GOT_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    }
}

/// A child process killed when dropped.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until_up(url: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

/// `goterra-store` alone, anonymous (the bench creates deployments with a bare X-API-Key).
async fn start_store(redis_url: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new(STORE_BIN);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GOT_LISTEN", format!("127.0.0.1:{port}"))
        .env("GOT_URL", format!("http://127.0.0.1:{port}"))
        .env("GOT_SECRET", "bench-secret-0123456789abcdef")
        .env("GOT_DATA_DIR", dir.path())
        .env(
            "GOT_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display()),
        )
        .env("GOT_FEAT_ANONYMOUS", "1")
        .env("GOT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(redis_url) = redis_url {
        command.env("GOT_REDIS_URL", redis_url).env(
            "GOT_REDIS_PREFIX",
            format!("gotbench-{}", uuid::Uuid::new_v4().simple()),
        );
    }
    let child = command.spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{url}/store")).await;
    Server { child, url, _dir: dir }
}

async fn start_etcd() -> Option<Server> {
    let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let dir = tempfile::tempdir().unwrap();
    let (client_port, peer_port) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let child = Command::new(binary)
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.path())
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args([
            "--initial-cluster",
            &format!("bench={peer_url}"),
            "--log-level",
            "error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    wait_until_up(&format!("{client_url}/version")).await;
    Some(Server {
        child,
        url: client_url,
        _dir: dir,
    })
}

/// Result of one scenario.
struct Run {
    label: String,
    ok: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn row(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let pick = |q: f64| {
            let index = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
            sorted.get(index).copied().unwrap_or_default()
        };
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
        format!(
            "| {} | {} | {} | {:.0} | {} | {} | {} |",
            self.label,
            self.ok,
            self.failed,
            self.ok as f64 / self.elapsed.as_secs_f64(),
            ms(pick(0.5)),
            ms(pick(0.99)),
            ms(sorted.last().copied().unwrap_or_default()),
        )
    }
}

/// Runs `requests` requests built by `make` (given the request number) over `CONCURRENCY`
/// connections, stopping early at the time cap.
async fn load<F>(label: &str, requests: usize, make: F) -> Run
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (client, make, next) = (client.clone(), make.clone(), next.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed, mut latencies) = (0, 0, Vec::new());
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= requests || started.elapsed() > SCENARIO_TIME_CAP {
                        break;
                    }
                    let sent = Instant::now();
                    match make(&client, n).send().await {
                        Ok(response) if response.status().is_success() => {
                            let _ = response.bytes().await;
                            ok += 1;
                            latencies.push(sent.elapsed());
                        }
                        _ => failed += 1,
                    }
                }
                (ok, failed, latencies)
            })
        })
        .collect();
    let mut run = Run {
        label: label.to_string(),
        ok: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for worker in workers {
        let (ok, failed, latencies) = worker.await.unwrap();
        run.ok += ok;
        run.failed += failed;
        run.latencies.extend(latencies);
    }
    run.elapsed = started.elapsed();
    run
}

async fn create_deployment(url: &str) -> (String, String) {
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/store"))
        .header("X-API-Key", "bench")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        created["id"].as_str().unwrap().into(),
        created["token"].as_str().unwrap().into(),
    )
}

fn value() -> String {
    "v".repeat(100)
}

async fn store_runs(backend: &str, server: &Server, requests: usize) -> Vec<Run> {
    let (id, token) = create_deployment(&server.url).await;
    let put_url = format!("{}/store/{id}", server.url);
    let (put_token, get_token) = (token.clone(), token);
    let put = load(&format!("store {backend}: PUT"), requests, move |client, n| {
        client
            .put(&put_url)
            .bearer_auth(&put_token)
            .json(&serde_json::json!({"key": format!("k{}", n % 1000), "value": value()}))
    })
    .await;
    let base = format!("{}/store/{id}", server.url);
    let get = load(&format!("store {backend}: GET"), requests, move |client, n| {
        client.get(format!("{base}/k{}", n % 1000)).bearer_auth(&get_token)
    })
    .await;
    vec![put, get]
}

async fn etcd_runs(etcd: &Server, requests: usize) -> Vec<Run> {
    let put_url = format!("{}/v3/kv/put", etcd.url);
    let put = load("etcd 3.4 (JSON gateway): put", requests, move |client, n| {
        client.post(&put_url).json(&serde_json::json!({
            "key": STANDARD.encode(format!("k{}", n % 1000)),
            "value": STANDARD.encode(value()),
        }))
    })
    .await;
    let range_url = format!("{}/v3/kv/range", etcd.url);
    let get = load("etcd 3.4 (JSON gateway): range", requests, move |client, n| {
        client
            .post(&range_url)
            .json(&serde_json::json!({"key": STANDARD.encode(format!("k{}", n % 1000))}))
    })
    .await;
    vec![put, get]
}

fn redis_benchmark(requests: usize) -> Vec<String> {
    let output = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "-c",
            &CONCURRENCY.to_string(),
            "-n",
            &requests.to_string(),
            "-d",
            "100",
            "-q",
        ])
        .args(["-t", "set,get"])
        .output();
    let hash = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "6379",
            "-c",
            &CONCURRENCY.to_string(),
            "-n",
            &requests.to_string(),
            "-q",
        ])
        .args([
            "hset",
            "gotbench:hash",
            "k__rand_int__",
            "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv",
        ])
        .output();
    let mut lines = Vec::new();
    for output in [output, hash].into_iter().flatten() {
        let text = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
        lines.extend(
            text.lines()
                .filter(|l| l.contains("requests per second"))
                .map(|l| l.trim().to_string()),
        );
    }
    let _ = Command::new("redis-cli").args(["del", "gotbench:hash"]).output();
    lines
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_default()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or_default()
}

/// One waiting request over a bare keep-alive TCP connection: a load client this light leaves
/// the two cores to the server. Returns once the answer is complete (`true` for a 200), with the
/// connection, which is closed only after the measurement.
async fn raw_wait(address: std::net::SocketAddr, request: Arc<String>) -> Option<(bool, tokio::net::TcpStream)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::with_capacity(512);
    let mut buffer = [0u8; 1024];
    loop {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer);
        if let Some(end_of_head) = text.find("\r\n\r\n") {
            let length = text[..end_of_head]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if answer.len() >= end_of_head + 4 + length {
                return Some((answer.starts_with(b"HTTP/1.1 200"), stream));
            }
        }
    }
}

/// `waiters` requests wait on one key; one PUT must answer them all.
async fn waiters_run(backend: &str, server: &Server, waiters: usize) -> String {
    let (id, token) = create_deployment(&server.url).await;
    let pid = server.child.id();
    let address: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    // Warm up the server (allocator, pools) so the baseline is fair.
    let _ = load("warm-up", 500, {
        let url = format!("{}/store/{id}/warm", server.url);
        let token = token.clone();
        move |client, _| client.get(&url).bearer_auth(&token)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds_before, rss_before) = (open_fds(pid), rss_kib(pid));
    let request = Arc::new(format!(
        "GET /store/{id}/cluster_token?wait=120 HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ));
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..waiters)
        .map(|_| {
            let (request, answered) = (request.clone(), answered.clone());
            tokio::spawn(async move {
                let outcome = tokio::time::timeout(Duration::from_secs(150), raw_wait(address, request))
                    .await
                    .ok()
                    .flatten();
                let at = Instant::now();
                answered.fetch_add(1, Ordering::Relaxed);
                match outcome {
                    Some((true, stream)) => Some((at, stream)),
                    _ => None,
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    while open_fds(pid) < fds_before + waiters && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Connections are open; give the server time to read and register every request.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let connected = open_fds(pid).saturating_sub(fds_before);
    let early = answered.load(Ordering::Relaxed);
    let rss_waiting = rss_kib(pid);
    let client = reqwest::Client::new();
    let put_at = Instant::now();
    let status = client
        .put(format!("{}/store/{id}", server.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"key": "cluster_token", "value": "K10bench::server:token"}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
    let mut ok = 0;
    let mut last = put_at;
    let mut connections = Vec::with_capacity(waiters);
    for task in tasks {
        if let Some((at, stream)) = task.await.unwrap() {
            ok += 1;
            last = last.max(at);
            connections.push(stream);
        }
    }
    drop(connections);
    let per_waiter = (rss_waiting.saturating_sub(rss_before) as f64) / waiters as f64;
    format!(
        "| store {backend} | {waiters} | {connected} | {early} | {ok} | {:.1} KiB | {} ms |",
        per_waiter,
        last.duration_since(put_at).as_millis()
    )
}

fn main() {
    let settings = settings();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut rows = Vec::new();
        let mut raw = Vec::new();
        if std::env::var("GOT_BENCH_ONLY_WAITERS").is_err() {
        let embedded = start_store(None).await;
        rows.extend(store_runs("embedded (SQLite)", &embedded, settings.requests).await);
        drop(embedded);
        let redis = start_store(Some(&settings.redis_url)).await;
        rows.extend(store_runs("Redis", &redis, settings.requests).await);
        drop(redis);
        let etcd = start_etcd().await;
        match &etcd {
            Some(etcd) => rows.extend(etcd_runs(etcd, settings.requests).await),
            None => eprintln!("etcd is not installed: skipped"),
        }
        drop(etcd);
        raw = redis_benchmark(settings.requests * 5);
        }

        let mut waiter_rows = Vec::new();
        let embedded = start_store(None).await;
        waiter_rows.push(waiters_run("embedded (SQLite)", &embedded, settings.waiters).await);
        drop(embedded);
        let redis = start_store(Some(&settings.redis_url)).await;
        waiter_rows.push(waiters_run("Redis", &redis, settings.waiters).await);
        drop(redis);

        println!("### Throughput and latency ({CONCURRENCY} concurrent connections, 100-byte values, 1000 keys)\n");
        println!("| target | ok | failed | req/s | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|---|---|");
        for row in &rows {
            println!("{}", row.row());
        }
        println!("\n### Raw Redis (`redis-benchmark -c {CONCURRENCY} -d 100`)\n");
        for line in raw {
            println!("    {line}");
        }
        println!("\n### Waiters on one key\n");
        println!("| backend | waiters | connections seen | answered before the PUT | answered 200 | server memory per waiter | PUT → last answer |");
        println!("|---|---|---|---|---|---|---|");
        for row in waiter_rows {
            println!("{row}");
        }
    });
}
