//! Configuration: built-in defaults < `goterra.yml` < `GOT_*` environment < command-line flags.
//!
//! YAML keys follow the original `goterra.yml` where they still make sense (`url`, `fernet`,
//! `web.listen`/`web.port`, `redis.*`, `amqp`, `acl.*`, `default_image`); `database.url`
//! replaces `mongo.*`. A named file that cannot be read or parsed is an error naming the file
//! and the key; unknown keys are reported as warnings.

use crate::sensitive::Sensitive;
use crate::sso::{self, OidcProviderConfig};
use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./goterra-data";
/// The run queue's default name: the original's RabbitMQ queue, shared by every agent replica
/// (competing consumers).
pub const DEFAULT_RUN_QUEUE: &str = "gotaction";

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Public base URL that clients and VMs use to reach the platform.
    pub url: String,
    /// `host:port` to listen on.
    pub listen: Option<String>,
    /// The original's split form of `listen`.
    pub web: WebConfig,
    pub data_dir: PathBuf,
    /// Token secrets: the first signs, all verify.
    pub fernet: Vec<Sensitive<String>>,
    /// User token lifetime in hours; `<= 0` disables expiry.
    pub token_ttl: i64,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub amqp: Option<Sensitive<String>>,
    /// Name of the run queue deploy feeds and agents consume (RabbitMQ queue or embedded table
    /// partition); deploy's and the agents' must match.
    pub run_queue: String,
    pub acl: AclConfig,
    pub feature: FeatureConfig,
    pub default_image: String,
    /// Base URL where services reach each other (`GOT_PROXY`), and auth in particular.
    pub proxy: Option<String>,
    pub proxy_auth: Option<String>,
    pub consul: Option<String>,
    /// How replicas announce themselves to the proxy (`GOT_DISCOVERY*`).
    pub discovery: DiscoveryConfig,
    /// Key material for secrets encrypted at rest; derived from the token secret when unset.
    pub secrets_key: Option<Sensitive<String>>,
    pub admin_apikey: Option<Sensitive<String>>,
    /// Browser origins allowed by CORS; empty allows none (the web UI is served same-origin).
    pub cors_origins: Vec<String>,
    pub store: StoreConfig,
    pub git: Option<String>,
    pub support: Option<String>,
    /// Limits of the run life cycle, read by deploy and the run agents.
    pub run: RunConfig,
    /// The run agent of this process.
    pub agent: AgentConfig,
    /// The acct service's section (resource types, billing), parsed by acct itself; the
    /// original's separate `acct.yml` (`GOT_ACCT_CONFIG`) is read by acct too.
    pub acct: serde_yaml::Value,
    /// Connection limits of the HTTP server.
    pub http: HttpConfig,
    /// OpenID Connect providers for single sign-on, by name (`oidc.<name>.*`; `google` and
    /// `aai` also from the original's `GOOGLE_OAUTH2_*` / `AAI_OAUTH2_*` variables).
    pub oidc: BTreeMap<String, OidcProviderConfig>,
}

/// Limits of the run life cycle (`run.*`, `GOT_RUN_*`), all in seconds and at least 1.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// How long an action may run before the agent stops it (`GOT_RUN_TIMEOUT`). Deploy gives it
    /// to agents in each run's spec (default 3600); an agent whose own configuration sets it
    /// also caps every action at it.
    pub timeout_secs: Option<u64>,
    /// Silence after which a run in progress is re-queued once, then failed
    /// (`GOT_RUN_HEARTBEAT_TIMEOUT`).
    pub heartbeat_timeout_secs: u64,
    /// How long a run may wait in the queue before it fails (`GOT_RUN_PENDING_TIMEOUT`).
    pub pending_timeout_secs: u64,
    /// How often deploy looks for such runs (`GOT_RUN_SWEEP_INTERVAL`).
    pub sweep_interval_secs: u64,
}

impl RunConfig {
    pub const DEFAULT_TIMEOUT_SECS: u64 = 3600;

    /// The action timeout deploy hands out.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs.unwrap_or(Self::DEFAULT_TIMEOUT_SECS))
    }

    pub fn heartbeat_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.heartbeat_timeout_secs)
    }

    pub fn pending_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.pending_timeout_secs)
    }

    pub fn sweep_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.sweep_interval_secs)
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            timeout_secs: None,
            heartbeat_timeout_secs: 180,
            pending_timeout_secs: 6 * 3600,
            sweep_interval_secs: 30,
        }
    }
}

/// The run agent (`agent.*`, `GOT_AGENT_*`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Runs executed at once, and the queue prefetch (`GOT_AGENT_CONCURRENCY`, at least 1).
    pub concurrency: u16,
    /// Seconds between heartbeats to deploy (`GOT_AGENT_HEARTBEAT_SECS`, at least 1).
    pub heartbeat_secs: u64,
    /// Where run directories are created (`GOT_AGENT_WORK_DIR`); default the system temp dir.
    pub work_dir: Option<PathBuf>,
    /// Serves the run-agent routes without executing runs (`GOT_AGENT_DISABLED=1`).
    pub disabled: bool,
    /// On SIGTERM, how long the runs in progress may go on before the agent stops their
    /// Terraform and hands them back to the queue (`GOT_AGENT_SHUTDOWN_GRACE_SECS`; 0 hands
    /// them back at once).
    pub shutdown_grace_secs: u64,
    /// A standalone agent waits this long at startup for a deploy to feed its queue, then
    /// refuses to start (`GOT_AGENT_FEEDER_WAIT_SECS`): a wrong broker, queue name or database
    /// would otherwise leave it waiting for runs forever.
    pub feeder_wait_secs: u64,
}

impl AgentConfig {
    /// The longest a stopping process waits for its agent: the grace period, then time for
    /// Terraform to stop (SIGTERM, SIGKILL after `GOT_KILL_GRACE_SECS`) and for the hand-back.
    pub fn stop_limit(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs.saturating_add(Self::STOP_MARGIN_SECS))
    }

    pub const STOP_MARGIN_SECS: u64 = 120;
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            heartbeat_secs: 15,
            work_dir: None,
            disabled: false,
            shutdown_grace_secs: 60,
            feeder_wait_secs: 60,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    pub listen: Option<String>,
    pub port: Option<u16>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://FILE` or `postgres://...`; defaults to a SQLite file in the data dir.
    pub url: Option<Sensitive<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: Option<Sensitive<String>>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            host: None,
            port: None,
            prefix: "goterra".into(),
        }
    }
}

/// Where a replica registers itself so that the proxy routes to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscoveryKind {
    /// Traefik's Redis KV provider: keys under `root_key`, with a TTL the replica refreshes.
    Redis,
    /// A Consul agent (`consul`, `GOT_CONSUL`), as the original did.
    Consul,
    /// No registration, even when `GOT_CONSUL` is set.
    Off,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoveryConfig {
    /// `redis`, `consul` or `off`; by default `consul` when `GOT_CONSUL` is set, else off.
    pub kind: Option<DiscoveryKind>,
    /// `host:port` the proxy reaches this replica at; default: the listen address, with the
    /// machine's host name when listening on every interface.
    pub address: Option<String>,
    /// Root key of Traefik's Redis provider (its `rootKey`).
    pub root_key: String,
    /// Seconds a Redis registration lives unless refreshed: a crashed replica drops out of the
    /// routing after at most this long.
    pub ttl_secs: u64,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            kind: None,
            address: None,
            root_key: "traefik".into(),
            ttl_secs: 15,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AclConfig {
    /// Lets any user create namespaces. The original's YAML spelling never worked; all three
    /// spellings are read here.
    #[serde(alias = "allowusercreatens", alias = "acl_user_createns")]
    pub allow_user_create_ns: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    pub self_register: bool,
    pub anonymous: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Largest value in bytes.
    pub max_value: usize,
    /// Most keys in one deployment.
    pub max_keys: usize,
    /// Hours a deployment lives after its last write.
    pub ttl_hours: u64,
    /// Hours a deployment-scoped token stays valid.
    pub token_ttl_hours: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_value: 1024 * 1024,
            max_keys: 10_000,
            ttl_hours: 7 * 24,
            token_ttl_hours: 7 * 24,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            url: String::new(),
            listen: None,
            web: WebConfig::default(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            fernet: Vec::new(),
            token_ttl: 24,
            database: DatabaseConfig::default(),
            redis: RedisConfig::default(),
            amqp: None,
            run_queue: DEFAULT_RUN_QUEUE.to_string(),
            acl: AclConfig::default(),
            feature: FeatureConfig::default(),
            default_image: String::new(),
            proxy: None,
            proxy_auth: None,
            consul: None,
            discovery: DiscoveryConfig::default(),
            secrets_key: None,
            admin_apikey: None,
            cors_origins: Vec::new(),
            store: StoreConfig::default(),
            git: None,
            support: None,
            run: RunConfig::default(),
            agent: AgentConfig::default(),
            acct: serde_yaml::Value::Null,
            http: HttpConfig::default(),
            oidc: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Connections served at once by this process; beyond, new connections are closed.
    pub max_connections: usize,
    /// Of `max_connections`, the last ones kept for health checks: when only these are left,
    /// new connections get health answers and 503 for anything else.
    pub health_connections: usize,
    /// Seconds a client has to send a request's headers, and that an idle keep-alive
    /// connection stays open. Long-polls and log streams are not affected (their headers are
    /// sent at once).
    pub header_timeout_secs: u64,
    /// Proxies (addresses or networks) whose `X-Forwarded-For` names the client, for what is
    /// counted per client address (failed logins). Loopback by default, so that the web UI
    /// and a proxy on the same host are believed; list Traefik's and the UI's addresses when
    /// they run elsewhere.
    pub trusted_proxies: crate::forwarded::TrustedProxies,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            health_connections: 16,
            header_timeout_secs: 10,
            trusted_proxies: crate::forwarded::TrustedProxies::loopback(),
        }
    }
}

/// Where the configuration came from, for the startup log.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub file: Option<PathBuf>,
    pub warnings: Vec<String>,
}

/// Command-line values, the highest layer.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Config {
    /// Loads every layer from the process environment.
    pub fn load(overrides: &Overrides) -> anyhow::Result<(Self, LoadReport)> {
        Self::load_with_env(overrides, |name| std::env::var(name).ok())
    }

    pub fn load_with_env(
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<(Self, LoadReport)> {
        let mut report = LoadReport::default();
        let named = overrides
            .config_file
            .clone()
            .or_else(|| env("GOT_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from));
        let mut config = match named {
            Some(path) => {
                let config = Self::from_file(&path, &mut report.warnings)?;
                report.file = Some(path);
                config
            }
            None if Path::new("goterra.yml").is_file() => {
                let path = PathBuf::from("goterra.yml");
                let config = Self::from_file(&path, &mut report.warnings)?;
                report.file = Some(path);
                config
            }
            None => Self::default(),
        };
        config.apply_env(&env)?;
        if let Some(listen) = &overrides.listen {
            config.listen = Some(listen.clone());
        }
        if let Some(dir) = &overrides.data_dir {
            config.data_dir = dir.clone();
        }
        config.validate()?;
        Ok((config, report))
    }

    fn from_file(path: &Path, warnings: &mut Vec<String>) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::from_yaml(&text, warnings).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Parses YAML, collecting unknown keys as warnings instead of failing on them.
    pub fn from_yaml(text: &str, warnings: &mut Vec<String>) -> anyhow::Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: serde_yaml::Value = serde_yaml::from_str(text)?;
        let lenient = strip_unknown(value, warnings);
        let config: Config = serde_path_to_error::deserialize(lenient)
            .map_err(|err| anyhow!("key `{}`: {}", err.path(), err.inner()))?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let get = |name: &str| env(name).filter(|value| !value.is_empty());
        if let Some(v) = get("GOT_URL") {
            self.url = v;
        }
        if let Some(v) = get("GOT_LISTEN") {
            self.listen = Some(v);
        }
        if let Some(v) = get("GOT_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("GOT_SECRET") {
            self.fernet = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Sensitive::new(s.to_string()))
                .collect();
        }
        if let Some(v) = get("GOT_TOKEN_TTL") {
            self.token_ttl = parse_env("GOT_TOKEN_TTL", &v)?;
        }
        if let Some(v) = get("GOT_DATABASE_URL") {
            self.database.url = Some(Sensitive::new(v));
        }
        if let Some(v) = get("GOT_REDIS_URL") {
            self.redis.url = Some(Sensitive::new(v));
        }
        if let Some(v) = get("GOT_REDIS_PREFIX") {
            self.redis.prefix = v;
        }
        if let Some(v) = get("GOT_AMQP") {
            self.amqp = Some(Sensitive::new(v));
        }
        if let Some(v) = get("GOT_RUN_QUEUE").filter(|v| !v.trim().is_empty()) {
            self.run_queue = v;
        }
        if let Some(v) = get("GOT_ACL_USER_CREATENS") {
            self.acl.allow_user_create_ns = parse_flag("GOT_ACL_USER_CREATENS", &v)?;
        }
        for name in ["GOT_FEATURE_SELF_REGISTER", "GOT_FEAT_SELF_REGISTER"] {
            if let Some(v) = get(name) {
                self.feature.self_register = parse_flag(name, &v)?;
            }
        }
        for name in ["GOT_FEAT_ANONYMOUS", "GOT_FEATURE_ANONYMOUS"] {
            if let Some(v) = get(name) {
                self.feature.anonymous = parse_flag(name, &v)?;
            }
        }
        if let Some(v) = get("GOT_DEFAULT_IMAGE") {
            self.default_image = v;
        }
        if let Some(v) = get("GOT_PROXY") {
            self.proxy = Some(v);
        }
        if let Some(v) = get("GOT_PROXY_AUTH") {
            self.proxy_auth = Some(v);
        }
        if let Some(v) = get("GOT_CONSUL") {
            self.consul = Some(v);
        }
        if let Some(v) = get("GOT_DISCOVERY") {
            self.discovery.kind = match v.as_str() {
                "redis" => Some(DiscoveryKind::Redis),
                "consul" => Some(DiscoveryKind::Consul),
                "off" | "none" => Some(DiscoveryKind::Off),
                other => bail!("GOT_DISCOVERY: `{other}` is not one of redis, consul, off"),
            };
        }
        if let Some(v) = get("GOT_DISCOVERY_ADDRESS") {
            self.discovery.address = Some(v);
        }
        if let Some(v) = get("GOT_DISCOVERY_ROOT") {
            self.discovery.root_key = v;
        }
        if let Some(v) = get("GOT_DISCOVERY_TTL") {
            self.discovery.ttl_secs = parse_env("GOT_DISCOVERY_TTL", &v)?;
        }
        if let Some(v) = get("GOT_SECRETS_KEY") {
            self.secrets_key = Some(Sensitive::new(v));
        }
        if let Some(v) = get("GOT_ADMIN_APIKEY") {
            self.admin_apikey = Some(Sensitive::new(v));
        }
        if let Some(v) = get("GOT_CORS_ORIGINS") {
            self.cors_origins = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(v) = get("GOT_STORE_MAX_VALUE") {
            self.store.max_value = parse_env("GOT_STORE_MAX_VALUE", &v)?;
        }
        if let Some(v) = get("GOT_STORE_MAX_KEYS") {
            self.store.max_keys = parse_env("GOT_STORE_MAX_KEYS", &v)?;
        }
        if let Some(v) = get("GOT_STORE_TTL") {
            self.store.ttl_hours = parse_env("GOT_STORE_TTL", &v)?;
        }
        if let Some(v) = get("GOT_STORE_TOKEN_TTL") {
            self.store.token_ttl_hours = parse_env("GOT_STORE_TOKEN_TTL", &v)?;
        }
        if let Some(v) = get("GOT_GIT") {
            self.git = Some(v);
        }
        if let Some(v) = get("GOT_SUPPORT") {
            self.support = Some(v);
        }
        if let Some(v) = get("GOT_RUN_TIMEOUT") {
            self.run.timeout_secs = Some(parse_env("GOT_RUN_TIMEOUT", &v)?);
        }
        if let Some(v) = get("GOT_RUN_HEARTBEAT_TIMEOUT") {
            self.run.heartbeat_timeout_secs = parse_env("GOT_RUN_HEARTBEAT_TIMEOUT", &v)?;
        }
        if let Some(v) = get("GOT_RUN_PENDING_TIMEOUT") {
            self.run.pending_timeout_secs = parse_env("GOT_RUN_PENDING_TIMEOUT", &v)?;
        }
        if let Some(v) = get("GOT_RUN_SWEEP_INTERVAL") {
            self.run.sweep_interval_secs = parse_env("GOT_RUN_SWEEP_INTERVAL", &v)?;
        }
        if let Some(v) = get("GOT_AGENT_CONCURRENCY") {
            self.agent.concurrency = parse_env("GOT_AGENT_CONCURRENCY", &v)?;
        }
        if let Some(v) = get("GOT_AGENT_HEARTBEAT_SECS") {
            self.agent.heartbeat_secs = parse_env("GOT_AGENT_HEARTBEAT_SECS", &v)?;
        }
        if let Some(v) = get("GOT_AGENT_WORK_DIR") {
            self.agent.work_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("GOT_AGENT_DISABLED") {
            self.agent.disabled = parse_flag("GOT_AGENT_DISABLED", &v)?;
        }
        if let Some(v) = get("GOT_AGENT_SHUTDOWN_GRACE_SECS") {
            self.agent.shutdown_grace_secs = parse_env("GOT_AGENT_SHUTDOWN_GRACE_SECS", &v)?;
        }
        if let Some(v) = get("GOT_AGENT_FEEDER_WAIT_SECS") {
            self.agent.feeder_wait_secs = parse_env("GOT_AGENT_FEEDER_WAIT_SECS", &v)?;
        }
        if let Some(v) = get("GOT_HTTP_MAX_CONNECTIONS") {
            self.http.max_connections = parse_env("GOT_HTTP_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("GOT_HTTP_HEALTH_CONNECTIONS") {
            self.http.health_connections = parse_env("GOT_HTTP_HEALTH_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("GOT_HTTP_HEADER_TIMEOUT") {
            self.http.header_timeout_secs = parse_env("GOT_HTTP_HEADER_TIMEOUT", &v)?;
        }
        if let Some(v) = get("GOT_HTTP_TRUSTED_PROXIES") {
            self.http.trusted_proxies = v
                .parse()
                .map_err(|err: String| anyhow!("GOT_HTTP_TRUSTED_PROXIES: {err}"))?;
        }
        self.apply_oidc_env(env);
        Ok(())
    }

    /// The original's variables: a client id turns its provider on. Settings of `oidc.google` /
    /// `oidc.aai` in the file are kept, and what they leave unset is the built-in provider's.
    fn apply_oidc_env(&mut self, env: &impl Fn(&str) -> Option<String>) {
        type Builtin = fn(String, Option<Sensitive<String>>) -> OidcProviderConfig;
        let builtins: [(&str, &str, Builtin); 2] = [
            (sso::GOOGLE, "GOOGLE_OAUTH2", OidcProviderConfig::google),
            (sso::AAI, "AAI_OAUTH2", OidcProviderConfig::aai),
        ];
        for (name, prefix, builtin) in builtins {
            let client_id = sso::env_value(env(&format!("{prefix}_CLIENT_ID")));
            let secret = sso::env_value(env(&format!("{prefix}_CLIENT_SECRET"))).map(Sensitive::new);
            let from_file = self.oidc.remove(name);
            let provider = match (from_file, client_id) {
                (Some(mut file), Some(client_id)) => {
                    file.client_id = client_id;
                    file.client_secret = secret.or(file.client_secret);
                    file.with_defaults_of(builtin(String::new(), None))
                }
                (Some(file), None) => file.with_defaults_of(builtin(String::new(), None)),
                (None, Some(client_id)) => builtin(client_id, secret),
                (None, None) => continue,
            };
            self.oidc.insert(name.to_string(), provider);
        }
    }

    /// The providers that are on, by name.
    pub fn oidc_providers(&self) -> impl Iterator<Item = (&str, &OidcProviderConfig)> {
        self.oidc
            .iter()
            .filter(|(_, provider)| provider.is_enabled())
            .map(|(name, provider)| (name.as_str(), provider))
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        for (name, provider) in &self.oidc {
            provider.validate(name)?;
        }
        for secret in &self.fernet {
            if secret.expose().len() < 16 {
                bail!("fernet / GOT_SECRET: each secret must be at least 16 characters long");
            }
        }
        if let Some(url) = &self.database.url {
            let url = url.expose();
            if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!("database.url / GOT_DATABASE_URL: expected sqlite://FILE or postgres://..., got another scheme");
            }
        }
        if self.http.max_connections <= self.http.health_connections || self.http.header_timeout_secs == 0 {
            bail!("http.max_connections must exceed http.health_connections, and http.header_timeout_secs be positive");
        }
        if self.store.max_value == 0 || self.store.max_keys == 0 || self.store.ttl_hours == 0 {
            bail!("store.max_value, store.max_keys and store.ttl_hours must be positive");
        }
        match self.discovery_kind() {
            Some(DiscoveryKind::Redis) if self.redis_url().is_none() => {
                bail!("GOT_DISCOVERY=redis registers in Redis: set GOT_REDIS_URL (or redis.url)")
            }
            Some(DiscoveryKind::Consul) if self.consul.is_none() => {
                bail!("GOT_DISCOVERY=consul registers with a Consul agent: set GOT_CONSUL (host:port)")
            }
            _ => {}
        }
        if self.discovery.ttl_secs < 3 {
            bail!("discovery.ttl_secs / GOT_DISCOVERY_TTL: at least 3 seconds");
        }
        let run = &self.run;
        let positive = [
            ("run.timeout_secs / GOT_RUN_TIMEOUT", run.timeout_secs.unwrap_or(1)),
            (
                "run.heartbeat_timeout_secs / GOT_RUN_HEARTBEAT_TIMEOUT",
                run.heartbeat_timeout_secs,
            ),
            (
                "run.pending_timeout_secs / GOT_RUN_PENDING_TIMEOUT",
                run.pending_timeout_secs,
            ),
            (
                "run.sweep_interval_secs / GOT_RUN_SWEEP_INTERVAL",
                run.sweep_interval_secs,
            ),
            (
                "agent.concurrency / GOT_AGENT_CONCURRENCY",
                u64::from(self.agent.concurrency),
            ),
            (
                "agent.heartbeat_secs / GOT_AGENT_HEARTBEAT_SECS",
                self.agent.heartbeat_secs,
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            bail!("{name}: must be at least 1");
        }
        Ok(())
    }

    /// How this process registers with the proxy: as configured, or with Consul when only
    /// `GOT_CONSUL` is set (the original's behaviour).
    pub fn discovery_kind(&self) -> Option<DiscoveryKind> {
        match self.discovery.kind {
            Some(DiscoveryKind::Off) => None,
            Some(kind) => Some(kind),
            None => self.consul.as_ref().map(|_| DiscoveryKind::Consul),
        }
    }

    /// The address to listen on: `listen`, else the original `web.listen`/`web.port`.
    pub fn listen_addr(&self) -> anyhow::Result<String> {
        let addr = match (&self.listen, &self.web.listen, self.web.port) {
            (Some(listen), _, _) => listen.clone(),
            (None, host, Some(port)) => {
                format!("{}:{port}", host.as_deref().unwrap_or("127.0.0.1"))
            }
            (None, _, None) => DEFAULT_LISTEN.to_string(),
        };
        addr.parse::<std::net::SocketAddr>()
            .map_err(|_| anyhow!("listen / GOT_LISTEN: {addr:?} is not an address like 127.0.0.1:8080"))?;
        Ok(addr)
    }

    /// The public URL without a trailing slash, defaulting to the listen address.
    pub fn public_url(&self) -> String {
        if self.url.is_empty() {
            let listen = self.listen_addr().unwrap_or_else(|_| DEFAULT_LISTEN.into());
            format!("http://{}", listen.replace("0.0.0.0", "127.0.0.1"))
        } else {
            self.url.trim_end_matches('/').to_string()
        }
    }

    /// The base URL of the auth service for API-key checks (`GOT_PROXY_AUTH`, else `GOT_PROXY`).
    pub fn auth_base_url(&self) -> Option<String> {
        self.proxy_auth
            .clone()
            .or_else(|| self.proxy.clone())
            .map(|url| url.trim_end_matches('/').to_string())
    }

    /// The database URL, defaulting to a SQLite file in the data dir.
    pub fn database_url(&self) -> Sensitive<String> {
        match &self.database.url {
            Some(url) => url.clone(),
            None => Sensitive::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("goterra.db").display()
            )),
        }
    }

    /// The Redis URL, from `redis.url` or the original `redis.host`/`redis.port`.
    pub fn redis_url(&self) -> Option<Sensitive<String>> {
        self.redis.url.clone().or_else(|| {
            self.redis
                .host
                .as_ref()
                .map(|host| Sensitive::new(format!("redis://{host}:{}", self.redis.port.unwrap_or(6379))))
        })
    }
}

fn parse_env<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow!("{name}: {value:?} is not a valid number"))
}

fn parse_flag(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name}: {value:?} is not a boolean (use 1 or 0)"),
    }
}

/// The sections of the file and the keys each accepts (the rest is reported and ignored).
pub const FILE_SECTIONS: &[(&str, &[&str])] = &[
    ("web", &["listen", "port"]),
    ("database", &["url"]),
    ("redis", &["url", "host", "port", "prefix"]),
    (
        "acl",
        &["allow_user_create_ns", "allowusercreatens", "acl_user_createns"],
    ),
    ("feature", &["self_register", "anonymous"]),
    ("store", &["max_value", "max_keys", "ttl_hours", "token_ttl_hours"]),
    (
        "run",
        &[
            "timeout_secs",
            "heartbeat_timeout_secs",
            "pending_timeout_secs",
            "sweep_interval_secs",
        ],
    ),
    (
        "agent",
        &[
            "concurrency",
            "heartbeat_secs",
            "work_dir",
            "disabled",
            "shutdown_grace_secs",
            "feeder_wait_secs",
        ],
    ),
    (
        "http",
        &[
            "max_connections",
            "health_connections",
            "header_timeout_secs",
            "trusted_proxies",
        ],
    ),
];
/// The top-level keys of the file.
pub const FILE_KEYS: &[&str] = &[
    "url",
    "listen",
    "web",
    "data_dir",
    "fernet",
    "token_ttl",
    "database",
    "redis",
    "amqp",
    "run_queue",
    "acl",
    "feature",
    "default_image",
    "proxy",
    "proxy_auth",
    "consul",
    "discovery",
    "secrets_key",
    "admin_apikey",
    "http",
    "cors_origins",
    "store",
    "git",
    "support",
    "run",
    "agent",
    "acct",
    "oidc",
];

/// Removes keys the schema does not know, recording their paths, so that an old
/// `goterra.yml` (with `mongo.*`, say) still loads and the operator is told what was ignored.
fn strip_unknown(value: serde_yaml::Value, warnings: &mut Vec<String>) -> serde_yaml::Value {
    let serde_yaml::Value::Mapping(top) = value else {
        return value;
    };
    let mut kept = serde_yaml::Mapping::new();
    for (key, value) in top {
        let name = key.as_str().unwrap_or_default().to_string();
        if !FILE_KEYS.contains(&name.as_str()) {
            warnings.push(format!("unknown config key `{name}` ignored"));
            continue;
        }
        let value = match (FILE_SECTIONS.iter().find(|(section, _)| *section == name), value) {
            (Some((_, known)), serde_yaml::Value::Mapping(inner)) => {
                let mut section = serde_yaml::Mapping::new();
                for (key, value) in inner {
                    let sub = key.as_str().unwrap_or_default();
                    if known.contains(&sub) {
                        section.insert(key, value);
                    } else {
                        warnings.push(format!("unknown config key `{name}.{sub}` ignored"));
                    }
                }
                serde_yaml::Value::Mapping(section)
            }
            (_, value) => value,
        };
        kept.insert(key, value);
    }
    serde_yaml::Value::Mapping(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(yaml: Option<&str>, env: &[(&str, &str)], overrides: Overrides) -> anyhow::Result<(Config, LoadReport)> {
        let dir = tempfile::tempdir().unwrap();
        let mut overrides = overrides;
        if let Some(yaml) = yaml {
            let path = dir.path().join("goterra.yml");
            std::fs::write(&path, yaml).unwrap();
            overrides.config_file = Some(path);
        }
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load_with_env(&overrides, |name| env.get(name).cloned())
    }

    #[test]
    fn layers_apply_in_order() {
        let yaml = "url: http://file\nweb:\n  listen: 0.0.0.0\n  port: 9000\ntoken_ttl: 5\n";
        let (config, _) = load(Some(yaml), &[], Overrides::default()).unwrap();
        assert_eq!(config.url, "http://file");
        assert_eq!(config.listen_addr().unwrap(), "0.0.0.0:9000");
        assert_eq!(config.token_ttl, 5);

        let env = [
            ("GOT_URL", "http://env"),
            ("GOT_LISTEN", "127.0.0.1:7000"),
            ("GOT_TOKEN_TTL", "2"),
        ];
        let (config, _) = load(Some(yaml), &env, Overrides::default()).unwrap();
        assert_eq!(config.url, "http://env");
        assert_eq!(config.listen_addr().unwrap(), "127.0.0.1:7000");
        assert_eq!(config.token_ttl, 2);

        let flags = Overrides {
            listen: Some("127.0.0.1:7100".into()),
            ..Overrides::default()
        };
        let (config, _) = load(Some(yaml), &env, flags).unwrap();
        assert_eq!(config.listen_addr().unwrap(), "127.0.0.1:7100");
    }

    #[test]
    fn secrets_list_and_rotation() {
        let (config, _) = load(
            None,
            &[("GOT_SECRET", "first-secret-0123456, second-secret-012345")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(config.fernet.len(), 2);
        assert_eq!(config.fernet[0].expose(), "first-secret-0123456");
        assert!(format!("{config:?}").contains("Sensitive(***)"));
        assert!(!format!("{config:?}").contains("first-secret"));
    }

    #[test]
    fn short_secret_is_refused() {
        let err = load(None, &[("GOT_SECRET", "0123456789")], Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("GOT_SECRET"), "{err}");
        assert!(!err.to_string().contains("0123456789"));
    }

    #[test]
    fn acl_key_accepts_every_spelling() {
        for yaml in [
            "acl:\n  allow_user_create_ns: true\n",
            "acl:\n  allowusercreatens: true\n",
            "acl:\n  acl_user_createns: true\n",
        ] {
            let (config, _) = load(Some(yaml), &[], Overrides::default()).unwrap();
            assert!(config.acl.allow_user_create_ns, "{yaml}");
        }
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let (_, report) = load(
            Some("mongo:\n  url: mongodb://x\nweb:\n  bogus: 1\n"),
            &[],
            Overrides::default(),
        )
        .unwrap();
        assert!(report.warnings.iter().any(|w| w.contains("`mongo`")));
        assert!(report.warnings.iter().any(|w| w.contains("`web.bogus`")));
    }

    #[test]
    fn invalid_file_names_file_and_key() {
        let err = load(Some("web:\n  port: not-a-number\n"), &[], Overrides::default()).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("goterra.yml"), "{text}");
        assert!(text.contains("web.port"), "{text}");
    }

    #[test]
    fn missing_named_file_is_an_error() {
        let overrides = Overrides {
            config_file: Some(PathBuf::from("/nonexistent/goterra.yml")),
            ..Overrides::default()
        };
        let err = Config::load_with_env(&overrides, |_| None).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/goterra.yml"));
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let err = load(None, &[("GOT_TOKEN_TTL", "soon")], Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("GOT_TOKEN_TTL"));
        let err = load(None, &[("GOT_FEATURE_SELF_REGISTER", "maybe")], Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("GOT_FEATURE_SELF_REGISTER"));
        let err = load(None, &[("GOT_LISTEN", "nowhere")], Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("GOT_LISTEN"));
    }

    #[test]
    fn defaults() {
        let (config, _) = load(None, &[], Overrides::default()).unwrap();
        assert_eq!(config.listen_addr().unwrap(), DEFAULT_LISTEN);
        assert_eq!(config.public_url(), "http://127.0.0.1:8080");
        assert_eq!(config.token_ttl, 24);
        assert!(config.database_url().expose().starts_with("sqlite://"));
        assert_eq!(config.store.max_value, 1024 * 1024);
    }

    #[test]
    fn run_and_agent_settings_come_from_the_file_and_the_environment() {
        let yaml = "run:\n  heartbeat_timeout_secs: 90\n  sweep_interval_secs: 5\nagent:\n  concurrency: 4\n  work_dir: /var/runs\n";
        let (config, report) = load(Some(yaml), &[], Overrides::default()).unwrap();
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(config.run.heartbeat_timeout_secs, 90);
        assert_eq!(config.run.sweep_interval_secs, 5);
        assert_eq!(config.run.timeout_secs, None);
        assert_eq!(config.run.timeout().as_secs(), RunConfig::DEFAULT_TIMEOUT_SECS);
        assert_eq!(config.agent.concurrency, 4);
        assert_eq!(config.agent.work_dir, Some(PathBuf::from("/var/runs")));

        let env = [
            ("GOT_RUN_TIMEOUT", "120"),
            ("GOT_RUN_HEARTBEAT_TIMEOUT", "30"),
            ("GOT_AGENT_CONCURRENCY", "1"),
            ("GOT_AGENT_DISABLED", "1"),
            ("GOT_AGENT_SHUTDOWN_GRACE_SECS", "0"),
        ];
        assert_eq!(config.agent.shutdown_grace_secs, 60);
        let (config, _) = load(Some(yaml), &env, Overrides::default()).unwrap();
        assert_eq!(config.run.timeout_secs, Some(120));
        assert_eq!(config.run.heartbeat_timeout_secs, 30);
        assert_eq!(config.run.sweep_interval_secs, 5);
        assert_eq!(config.agent.concurrency, 1);
        assert!(config.agent.disabled);
        assert_eq!(config.agent.shutdown_grace_secs, 0, "0 hands runs back at once");
    }

    #[test]
    fn run_and_agent_settings_are_positive() {
        for (name, value) in [
            ("GOT_RUN_TIMEOUT", "0"),
            ("GOT_RUN_SWEEP_INTERVAL", "0"),
            ("GOT_AGENT_CONCURRENCY", "0"),
            ("GOT_AGENT_HEARTBEAT_SECS", "0"),
        ] {
            let err = load(None, &[(name, value)], Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        let err = load(None, &[("GOT_RUN_PENDING_TIMEOUT", "soon")], Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("GOT_RUN_PENDING_TIMEOUT"));
    }

    #[test]
    fn oidc_providers_from_the_file_and_the_original_variables() {
        let yaml = "oidc:\n  lab:\n    issuer: https://id.example.org\n    client_id: goterra\n    client_secret: s3cret-value\n    display_name: Our lab\n    create_users: false\n  google:\n    allowed_email_domains: [example.org]\n";
        let env = [
            ("GOOGLE_OAUTH2_CLIENT_ID", "google-id"),
            ("GOOGLE_OAUTH2_CLIENT_SECRET", "google-secret"),
            ("AAI_OAUTH2_CLIENT_ID", "\"\""),
        ];
        let (config, _) = load(Some(yaml), &env, Overrides::default()).unwrap();
        let names: Vec<&str> = config.oidc_providers().map(|(name, _)| name).collect();
        assert_eq!(names, ["google", "lab"], "aai with a quoted-empty id is off");
        let google = &config.oidc["google"];
        assert_eq!(google.client_id, "google-id");
        assert_eq!(google.allowed_email_domains, ["example.org"]);
        assert_eq!(
            google.issuer,
            crate::sso::GOOGLE_ISSUER,
            "unset keys of google are the built-in ones"
        );
        assert_eq!(google.uid_claim(), "email");
        let lab = &config.oidc["lab"];
        assert_eq!(lab.display_name("lab"), "Our lab");
        assert!(!lab.create_users);
        assert!(!format!("{config:?}").contains("s3cret-value"));

        let (config, _) = load(None, &[("AAI_OAUTH2_CLIENT_ID", "aai-id")], Overrides::default()).unwrap();
        let aai = &config.oidc["aai"];
        assert_eq!(aai.issuer, crate::sso::AAI_ISSUER);
        assert_eq!(aai.uid_claim(), "sub");
        assert_eq!(config.oidc_providers().count(), 1);

        let bad = "oidc:\n  lab:\n    client_id: x\n    issuer: ftp://nowhere\n";
        assert!(load(Some(bad), &[], Overrides::default()).is_err());
    }
}
