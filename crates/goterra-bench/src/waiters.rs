//! Many VMs waiting for one key: `waiters` requests `GET /store/{id}/cluster_token?wait=600` (the longest wait the store grants), each
//! on its own keep-alive connection, then one `PUT` of the key must answer them all.
//!
//! Loopback has one server address and about 28 000 ephemeral ports per client address, so the
//! connections come from several client addresses (127.0.0.1, 127.0.0.2, ...).

use crate::http::{self, request_text};
use crate::process::{cpu_time, rss_kib};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};

/// Connections a client address opens at most (below its ephemeral port range).
const CONNECTIONS_PER_ADDRESS: usize = 25_000;
/// Connections being opened at once: the server's accept backlog is about 1 000.
const CONNECTING_AT_ONCE: usize = 256;
/// How long idle waiters are watched for CPU use.
const IDLE_WINDOW: Duration = Duration::from_secs(5);

pub struct Scenario {
    /// The store's address (loopback).
    pub server: SocketAddr,
    /// The store's process, for its memory and CPU.
    pub pid: u32,
    pub waiters: usize,
}

#[derive(Debug)]
pub struct Report {
    pub waiters: usize,
    /// Waiting requests the server counted (`goterra_store_waiters`) before the PUT.
    pub registered: u64,
    /// Answers that came before the PUT (should be 0).
    pub early: usize,
    /// Their statuses, `status:count` separated by commas (what went wrong, when some did).
    pub early_statuses: String,
    /// 200 answers after the PUT.
    pub answered: usize,
    pub rss_before_kib: u64,
    pub rss_waiting_kib: u64,
    /// Server CPU while every waiter was waiting, percent of one core.
    pub idle_cpu_percent: f64,
    /// From sending the PUT to the last complete answer.
    pub put_to_last: Duration,
}

impl Report {
    pub fn kib_per_waiter(&self) -> f64 {
        self.rss_waiting_kib.saturating_sub(self.rss_before_kib) as f64 / self.waiters.max(1) as f64
    }

    /// `name=value` lines, what `scripts/bench/store.sh` reads.
    pub fn lines(&self) -> String {
        format!(
            "waiters={}\nregistered={}\nearly={}\nearly_statuses={}\nanswered={}\nrss_before_kib={}\nrss_waiting_kib={}\nkib_per_waiter={:.2}\nidle_cpu_percent={:.2}\nput_to_last_ms={}\n",
            self.waiters,
            self.registered,
            self.early,
            self.early_statuses,
            self.answered,
            self.rss_before_kib,
            self.rss_waiting_kib,
            self.kib_per_waiter(),
            self.idle_cpu_percent,
            self.put_to_last.as_millis(),
        )
    }
}

pub async fn run(scenario: &Scenario) -> anyhow::Result<Report> {
    let server = scenario.server;
    let host = server.to_string();
    let created = http::once(
        server,
        &request_text(
            "POST",
            "/store",
            &host,
            &["X-API-Key: bench".into(), "Connection: close".into()],
            "",
        ),
    )
    .await?
    .json()?;
    let id = created["id"].as_str().unwrap_or_default().to_string();
    let token = created["token"].as_str().unwrap_or_default().to_string();
    anyhow::ensure!(!id.is_empty(), "the store did not create a deployment: {created}");
    let authorization = format!("Authorization: Bearer {token}");

    // Warm the server up (allocator, pools) so the baseline is fair.
    let mut warm = TcpStream::connect(server).await?;
    let warm_request = request_text(
        "GET",
        &format!("/store/{id}/warm"),
        &host,
        std::slice::from_ref(&authorization),
        "",
    );
    for _ in 0..500 {
        http::exchange(&mut warm, warm_request.as_bytes()).await?;
    }
    drop(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before_kib = rss_kib(scenario.pid);

    let request = Arc::new(request_text(
        "GET",
        &format!("/store/{id}/cluster_token?wait=600"),
        &host,
        std::slice::from_ref(&authorization),
        "",
    ));
    let answered_early = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new()));
    let put_sent = Arc::new(tokio::sync::OnceCell::<Instant>::new());
    let connecting = Arc::new(tokio::sync::Semaphore::new(CONNECTING_AT_ONCE));
    let tasks: Vec<_> = (0..scenario.waiters)
        .map(|n| {
            let source = client_address(n / CONNECTIONS_PER_ADDRESS);
            let (request, answered_early, put_sent, connecting) = (
                request.clone(),
                answered_early.clone(),
                put_sent.clone(),
                connecting.clone(),
            );
            tokio::spawn(async move {
                let permit = connecting.acquire_owned().await.ok()?;
                let mut stream = connect_from(source, server).await?;
                tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
                    .await
                    .ok()?;
                drop(permit);
                let answer = tokio::time::timeout(Duration::from_secs(300), http::read_answer(&mut stream))
                    .await
                    .ok()?
                    .ok()?;
                let at = Instant::now();
                if put_sent.get().is_none()
                    && let Ok(mut early) = answered_early.lock()
                {
                    *early.entry(answer.status).or_default() += 1;
                }
                // The connection is closed only after every answer is in.
                Some((answer.status == 200, at, stream))
            })
        })
        .collect();

    let registered = wait_for_waiters(server, scenario.waiters).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_waiting_kib = rss_kib(scenario.pid);
    let cpu_before = cpu_time(scenario.pid);
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle_cpu_percent =
        (cpu_time(scenario.pid).saturating_sub(cpu_before)).as_secs_f64() * 100.0 / IDLE_WINDOW.as_secs_f64();

    let body = r#"{"key":"cluster_token","value":"K10bench::server:token"}"#;
    let put = request_text(
        "PUT",
        &format!("/store/{id}"),
        &host,
        &[authorization, "Connection: close".into()],
        body,
    );
    let put_at = Instant::now();
    let _ = put_sent.set(put_at);
    let put_answer = http::once(server, &put).await?;
    anyhow::ensure!(put_answer.status == 200, "the PUT was answered {}", put_answer.status);

    let mut answered = 0;
    let mut last = put_at;
    let mut connections = Vec::with_capacity(scenario.waiters);
    for task in tasks {
        if let Ok(Some((ok, at, stream))) = task.await {
            answered += usize::from(ok);
            last = last.max(at);
            connections.push(stream);
        }
    }
    drop(connections);
    let early = answered_early.lock().map(|early| early.clone()).unwrap_or_default();
    Ok(Report {
        waiters: scenario.waiters,
        registered,
        early: early.values().sum(),
        early_statuses: early
            .iter()
            .map(|(status, count)| format!("{status}:{count}"))
            .collect::<Vec<_>>()
            .join(","),
        answered,
        rss_before_kib,
        rss_waiting_kib,
        idle_cpu_percent,
        put_to_last: last.duration_since(put_at),
    })
}

/// 127.0.0.1, 127.0.0.2, ...
fn client_address(index: usize) -> IpAddr {
    let last = u8::try_from(index + 1).unwrap_or(u8::MAX);
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn connect_from(source: IpAddr, server: SocketAddr) -> Option<TcpStream> {
    for _ in 0..20 {
        // The first address connects without binding: the kernel then picks the port at
        // connect time and may reuse ports whose connections of an earlier run linger in
        // TIME_WAIT (to another server port). `bind` to port 0 must find a port free of those
        // too; with tens of thousands of them it crawls and fails, and the first waiters'
        // wait could run out before the last one connected.
        let connected = if source == client_address(0) {
            TcpStream::connect(server).await.ok()
        } else {
            let socket = TcpSocket::new_v4().ok()?;
            let _ = socket.set_reuseaddr(true);
            match socket.bind(SocketAddr::new(source, 0)) {
                Ok(()) => socket.connect(server).await.ok(),
                Err(_) => None,
            }
        };
        if connected.is_some() {
            return connected;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Polls the store's `goterra_store_waiters` gauge until `waiters` requests wait (or two
/// minutes pass); returns the last count.
async fn wait_for_waiters(server: SocketAddr, waiters: usize) -> u64 {
    let metrics = request_text(
        "GET",
        "/store/metrics",
        &server.to_string(),
        &["Connection: close".into()],
        "",
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut count = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(answer) = http::once(server, &metrics).await {
            count = String::from_utf8_lossy(&answer.body)
                .lines()
                .find_map(|line| line.strip_prefix("goterra_store_waiters "))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .map_or(0, |value| value as u64);
            if count >= waiters as u64 {
                break;
            }
        }
    }
    count
}
