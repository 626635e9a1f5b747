//! Starting services: one alone (`goterra-<svc>`, `goterra serve <svc>`) or all of them in one
//! process (`goterra up`). Each service crate describes itself with a [`ServiceSpec`].

use crate::auth::ApiKeyResolver;
use crate::config::{Config, Overrides};
use crate::events::{EventBus, InProcessEventBus};
use crate::platform::Platform;
use crate::remote::RemoteApiKeyResolver;
use crate::sensitive::Sensitive;
use anyhow::{Context, bail};
use axum::Router;
use goterra_db::{Db, Migration};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

/// Builds the API-key checker that reads a database (only the auth service provides one).
pub type LocalApiKeys = fn(&Db) -> Arc<dyn ApiKeyResolver>;

pub type RouterFuture = Pin<Box<dyn Future<Output = anyhow::Result<Router>> + Send>>;

/// How a service plugs into a process.
#[derive(Clone, Copy)]
pub struct ServiceSpec {
    /// Short name, also the URL prefix: `auth` serves `/auth`.
    pub name: &'static str,
    pub migrations: &'static [Migration],
    /// Builds the service's routes (and starts its background tasks).
    pub router: fn(Platform) -> RouterFuture,
    /// Checks API keys against the local database: only the auth service can.
    pub local_api_keys: Option<LocalApiKeys>,
}

impl ServiceSpec {
    /// The URL prefix of the service's routes: `/<name>`, except the web UI's, `/app` (the
    /// original's path, which clients and proxies know).
    pub fn prefix(&self) -> String {
        match self.name {
            "ui" => "/app".to_string(),
            name => format!("/{name}"),
        }
    }
}

/// Command-line flags shared by every server binary.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServerFlags {
    /// Address to listen on (env GOT_LISTEN, default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<String>,
    /// Directory for embedded data (env GOT_DATA_DIR, default ./goterra-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Config file (env GOT_CONFIG, default ./goterra.yml when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl ServerFlags {
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let overrides = Overrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
        };
        let (config, report) = Config::load(&overrides)?;
        if let Some(file) = &report.file {
            tracing::info!(file = %file.display(), "configuration loaded");
        }
        for warning in &report.warnings {
            tracing::warn!("{warning}");
        }
        Ok(config)
    }
}

/// Where a process runs its services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Every service in this process; a missing token secret is generated and kept in the
    /// data dir.
    AllInOne,
    /// One service in this process; others are reached through `GOT_PROXY`, and the token
    /// secret must be shared, so it must be configured.
    Standalone,
}

/// Makes sure a token secret exists: configured, or (all-in-one only) kept in
/// `<data-dir>/secret`, created on first start with mode 0600.
pub fn ensure_secret(config: &mut Config, topology: Topology) -> anyhow::Result<()> {
    if !config.fernet.is_empty() {
        return Ok(());
    }
    if topology == Topology::Standalone {
        bail!("GOT_SECRET (or `fernet` in the config file) is required: every service must share the token secret");
    }
    create_private_dir(&config.data_dir)?;
    let path = config.data_dir.join("secret");
    let secret = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().to_string(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let secret = random_secret();
            write_private_file(&path, &secret)?;
            tracing::info!(file = %path.display(), "generated a token secret");
            secret
        }
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    };
    if secret.len() < 16 {
        bail!("{}: the stored token secret is too short", path.display());
    }
    config.fernet = vec![Sensitive::new(secret)];
    Ok(())
}

/// 256 bits from the OS generator, hex-encoded.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Creates a directory (and its parents) that only its owner can enter (0700): the data dir
/// holds the database, the token secret and the admin key.
pub fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(path)
        .with_context(|| format!("cannot create data dir {}", path.display()))
}

/// Takes group and other permissions away from `dir` and everything under it (0700
/// directories, 0600 files, executables keep their owner's execute bit), whatever an earlier
/// version, a restore or an umask left: the data dir holds the database (password hashes,
/// encrypted secrets, plaintext store values), the token secret and run files. Symbolic links
/// are not followed. A path whose permissions cannot be fixed stops startup, named.
pub fn restrict_to_owner(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut pending = vec![dir.to_path_buf()];
        while let Some(path) = pending.pop() {
            let metadata =
                std::fs::symlink_metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
            if metadata.file_type().is_symlink() {
                continue;
            }
            let mode = metadata.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o700)).with_context(|| {
                    format!(
                        "{} is readable by other users and its permissions cannot be fixed: make it owned by this user or chmod go-rwx it",
                        path.display()
                    )
                })?;
            }
            if metadata.is_dir() {
                for entry in std::fs::read_dir(&path).with_context(|| format!("cannot read {}", path.display()))? {
                    pending.push(entry.with_context(|| format!("cannot read {}", path.display()))?.path());
                }
            }
        }
    }
    Ok(())
}

/// Writes a file readable by its owner only (0600), creating its directory.
pub fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Connects the database and applies the migrations of `services`.
pub async fn open_database(config: &Config, services: &[ServiceSpec]) -> anyhow::Result<Db> {
    let db = Db::connect(config.database_url().expose()).await?;
    for service in services {
        db.migrate(service.migrations)
            .await
            .with_context(|| format!("cannot migrate the {} schema", service.name))?;
    }
    Ok(db)
}

/// Builds the platform and the merged router of `services`.
pub async fn build(
    mut config: Config,
    topology: Topology,
    services: &[ServiceSpec],
    events: Arc<dyn EventBus>,
) -> anyhow::Result<(Platform, Router)> {
    ensure_secret(&mut config, topology)?;
    create_private_dir(&config.data_dir)?;
    restrict_to_owner(&config.data_dir)?;
    let db = open_database(&config, services).await?;
    // Again: SQLite has just created its files with the process umask (its `-wal` and `-shm`
    // files then follow the database file's mode).
    restrict_to_owner(&config.data_dir)?;
    let api_keys: Option<Arc<dyn ApiKeyResolver>> = match services.iter().find_map(|service| service.local_api_keys) {
        Some(local) => Some(local(&db)),
        None => match config.auth_base_url() {
            Some(url) => {
                let tokens = Arc::new(crate::token::TokenCodec::new(&config.fernet, config.token_ttl)?);
                Some(Arc::new(RemoteApiKeyResolver::new(url, tokens)?))
            }
            None => None,
        },
    };
    let subscription = events.subscribe();
    let platform = Platform::new(config, db, api_keys, events, topology)?;
    platform
        .authenticator
        .revocations()
        .spawn(subscription, &platform.lifecycle);
    let mut router = Router::new();
    for service in services {
        let routes = (service.router)(platform.clone())
            .await
            .with_context(|| format!("cannot start the {} service", service.name))?;
        router = router
            .merge(routes)
            .merge(crate::ops::router(&service.prefix(), platform.clone()));
    }
    let router = router.route_layer(axum::middleware::from_fn(crate::ops::record_request));
    let router = crate::http::with_common_layers(router, 16 * 1024 * 1024, &platform.config.cors_origins);
    Ok((platform, router))
}

/// Picks the event bus for a configuration: a broker when one is configured (`None` means the
/// in-process bus). Provided by the crate that knows the brokers.
pub type EventBusFactory = fn(&Config) -> Option<Arc<dyn EventBus>>;

/// Runs `services` in this process until SIGINT or SIGTERM, publishing events through the bus
/// `events` picks (in-process when it picks none).
pub async fn run(
    config: Config,
    topology: Topology,
    services: &[ServiceSpec],
    events: EventBusFactory,
) -> anyhow::Result<()> {
    run_prepared(config, topology, services, events, None).await
}

/// Work done on the built platform before it serves anyone (e.g. loading a demo catalogue
/// through the router); an error stops startup.
pub type Prepare = Box<dyn FnOnce(Platform, Router) -> PrepareFuture + Send>;
pub type PrepareFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// [`run`], with `prepare` run once the platform is built, before it listens.
pub async fn run_prepared(
    config: Config,
    topology: Topology,
    services: &[ServiceSpec],
    events: EventBusFactory,
    prepare: Option<Prepare>,
) -> anyhow::Result<()> {
    let listen = config.listen_addr()?;
    let events: Arc<dyn EventBus> = events(&config).unwrap_or_else(|| Arc::new(InProcessEventBus::new()));
    let (platform, router) = build(config, topology, services, events).await?;
    if let Some(prepare) = prepare {
        prepare(platform.clone(), router.clone()).await?;
    }
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let names: Vec<_> = services.iter().map(|s| s.name).collect();
    tracing::info!(address = %listen, url = %platform.config.public_url(), services = ?names, "goterra listening");
    let registration = crate::discovery::Registration::start(&platform.config, &listen, services).await?;
    // Leave the proxy's registry first, so that no new request is routed here; then stop the
    // background work and wait for what must end cleanly (runs in progress, which may report
    // to deploy through this very server), and only then stop serving.
    let lifecycle = platform.lifecycle.clone();
    let stop_limit = platform.config.agent.stop_limit();
    let shutdown = async move {
        crate::http::shutdown_signal().await;
        registration.withdraw().await;
        if !lifecycle.stop(stop_limit).await {
            tracing::warn!(limit = ?stop_limit, "background work still running at the stop limit; stopping anyway");
        }
    };
    let limits = crate::http::ServeLimits::from(&platform.config.http);
    crate::http::serve_with(listener, router, limits, shutdown).await?;
    platform.db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The `main` of a `goterra-<svc>` binary.
pub fn standalone_main(spec: ServiceSpec, events: EventBusFactory) -> std::process::ExitCode {
    use clap::Parser;
    #[derive(clap::Parser)]
    #[command(version, about = "A Goterra service running alone")]
    struct Cli {
        #[command(flatten)]
        flags: ServerFlags,
    }
    crate::http::init_tracing();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let config = cli.flags.load_config()?;
        run(config, Topology::Standalone, &[spec], events).await
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
