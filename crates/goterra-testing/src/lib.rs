//! What the tests of every Goterra crate share, compiled only into tests and benches (a
//! dev-dependency; production builds never see it):
//! - [`TestServer`]: the given services on a random local port, over an isolated database
//!   ([`db::TestDb`]: SQLite or PostgreSQL) and a private data dir;
//! - [`SpawnedServer`]: a real executable as a child process;
//! - [`fixtures::RunCatalogue`]: the catalogue a run needs, made through the typed client;
//! - [`identity`], [`TEST_SECRET`], [`assert_openapi_current`].

pub mod db;
pub mod fixtures;

use db::TestDb;
use goterra_core::config::Config;
use goterra_core::events::{EventBus, InProcessEventBus};
use goterra_core::identity::Identity;
use goterra_core::platform::Platform;
use goterra_core::sensitive::Sensitive;
use goterra_core::service::{ServiceSpec, Topology};
use goterra_core::token::Claims;
use goterra_db::Engine;
use std::sync::Arc;

/// Users of the tests: `admin` holds the admin claim, `super` the super-user claim, anyone else
/// is a plain user (`<uid>@example.org`).
pub fn identity(uid: &str) -> Identity {
    Identity {
        uid: uid.to_string(),
        admin: uid == "admin",
        super_user: uid == "super",
        email: format!("{uid}@example.org"),
        kind: String::new(),
    }
}

/// The token secret of every test server.
pub const TEST_SECRET: &str = "test-secret-0123456789abcdef";

pub struct TestServer {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    pub platform: Platform,
    pub events: Arc<InProcessEventBus>,
    pub data_dir: tempfile::TempDir,
    pub engine: Engine,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _db: TestDb,
}

impl TestServer {
    pub async fn start(engine: Engine, services: &[ServiceSpec]) -> anyhow::Result<Self> {
        Self::start_with(engine, services, |_| {}).await
    }

    /// Starts with a config adjusted by `configure` (feature flags, limits...).
    pub async fn start_with(
        engine: Engine,
        services: &[ServiceSpec],
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let db = TestDb::new(engine).await?;
        let data_dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut config = Config {
            url: url.clone(),
            data_dir: data_dir.path().to_path_buf(),
            fernet: vec![Sensitive::new(TEST_SECRET.to_string())],
            ..Config::default()
        };
        config.database.url = Some(Sensitive::new(db.url.clone()));
        configure(&mut config);
        let events = Arc::new(InProcessEventBus::new());
        let bus: Arc<dyn EventBus> = events.clone();
        let (platform, router) = goterra_core::service::build(config, Topology::AllInOne, services, bus).await?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = goterra_core::http::ServeLimits::from(&platform.config.http);
        let task = tokio::spawn(async move {
            let _ = goterra_core::http::serve_with(listener, router, limits, async {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(Self {
            url,
            platform,
            events,
            data_dir,
            engine,
            shutdown: Some(shutdown),
            task: Some(task),
            _db: db,
        })
    }

    /// A user token as auth would issue it, without going through auth.
    pub fn token_for(&self, uid: &str, admin: bool) -> String {
        self.platform.tokens.issue(&Claims::for_user(&Identity {
            uid: uid.to_string(),
            admin,
            super_user: false,
            email: format!("{uid}@example.org"),
            kind: String::new(),
        }))
    }

    /// A token of one of the test users ([`identity`]: `admin` is an admin).
    pub fn user_token(&self, uid: &str) -> String {
        self.platform.tokens.issue(&Claims::for_user(&identity(uid)))
    }

    /// A run agent's credential named `agent`, valid for five minutes.
    pub fn agent_token(&self, agent: &str) -> String {
        let expires = goterra_core::token::unix_now() + 300;
        self.platform.tokens.issue(&Claims::for_agent(agent, expires))
    }

    /// Stops serving and waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Fails when `openapi/<service>.json` differs from the document generated from the code;
/// with `GOT_UPDATE_OPENAPI=1` it rewrites the file instead.
pub fn assert_openapi_current(service: &str, document: &serde_json::Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../openapi")
        .join(format!("{service}.json"));
    let generated = match serde_json::to_string_pretty(document) {
        Ok(json) => format!("{json}\n"),
        Err(err) => panic!("cannot serialize the {service} OpenAPI document: {err}"),
    };
    if std::env::var("GOT_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        if let Err(err) = std::fs::write(&path, &generated) {
            panic!("cannot write {}: {err}", path.display());
        }
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: run `GOT_UPDATE_OPENAPI=1 cargo test -p goterra-{service} openapi` and commit it",
        path.display()
    );
}

/// A server binary started as a child process, for tests of the real executables.
pub struct SpawnedServer {
    pub url: String,
    child: std::process::Child,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl SpawnedServer {
    /// Starts `program` with `args` (which must make it listen on `port`) and `env`, and waits
    /// until `health_path` answers 200.
    pub async fn start(
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
        port: u16,
        health_path: &str,
    ) -> anyhow::Result<Self> {
        use std::io::Read;
        let mut command = std::process::Command::new(program);
        command
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn()?;
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        if let Some(mut pipe) = child.stdout.take() {
            let sink = stdout.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = pipe.read(&mut buffer) {
                    if read == 0 {
                        break;
                    }
                    if let Ok(mut text) = sink.lock() {
                        text.push_str(&String::from_utf8_lossy(&buffer[..read]));
                    }
                }
            });
        }
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                anyhow::bail!("{program} exited early with {status}");
            }
            if let Ok(response) = client.get(format!("{url}{health_path}")).send().await
                && response.status().is_success()
            {
                return Ok(Self { url, child, stdout });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        anyhow::bail!("{program} did not answer on {url}{health_path}")
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|text| text.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM, without waiting.
    pub fn send_terminate(&self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        Ok(())
    }

    /// Waits for the process to exit, at most `limit`, without blocking the async runtime
    /// (the test's own servers keep answering meanwhile). `None` when it still runs.
    pub async fn wait_exit(&mut self, limit: std::time::Duration) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> anyhow::Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        std::process::Command::new("kill").args(["-TERM", &pid]).status()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
