//! Registration of a replica with the proxy, so that replicas can come and go without editing
//! the proxy's configuration (`GOT_DISCOVERY`, see docs/operations.md):
//!
//! - `redis`: Traefik's Redis KV provider. Each replica writes, for every service it runs, the
//!   router and service keys (shared by replicas, same values) and its own server key, all with
//!   a TTL it refreshes at a third of it. A graceful stop deletes its server key at once; a
//!   crashed replica drops out when its keys expire.
//! - `consul`: the original's Consul agent registration (`got-<svc>`, Traefik tags, an HTTP
//!   check on the readiness route), deregistered on stop; Consul removes a replica whose check
//!   stays critical.

use crate::config::{Config, DiscoveryKind};
use crate::service::ServiceSpec;
use anyhow::Context;
use std::time::Duration;

/// What one replica announces: its address and the prefixes it serves.
#[derive(Clone, Debug)]
pub struct Announcement {
    /// `host:port` the proxy reaches this replica at.
    pub address: String,
    /// Unique per replica (a server key or Consul service id).
    pub replica: String,
    /// `(name, prefix)` of each service this process runs: `("store", "/store")`.
    pub services: Vec<(String, String)>,
}

/// Traefik's retry middleware for idempotent requests, in the Redis KV provider's routing.
const RETRY_MIDDLEWARE: &str = "got-retry-idempotent";
/// Traefik's redirect of `/` to the web UI.
const ROOT_REDIRECT: &str = "got-root-to-app";
/// Tries of an idempotent request: the load balancer may pick a dead replica again on a retry
/// until the health check drops it, so several.
const RETRY_ATTEMPTS: &str = "10";
/// How often Traefik asks each replica's readiness: a dead replica leaves the routing within it.
const HEALTH_CHECK_INTERVAL: &str = "3s";
const IDEMPOTENT_METHODS: &str = "(Method(`GET`) || Method(`HEAD`) || Method(`PUT`) || Method(`DELETE`))";

impl Announcement {
    pub fn new(config: &Config, listen: &str, services: &[ServiceSpec]) -> Self {
        let address = config.discovery.address.clone().unwrap_or_else(|| advertised(listen));
        let random = crate::new_id();
        Self {
            replica: format!("{}-{}", address.replace([':', '.', '[', ']'], "-"), &random[..8]),
            address,
            services: services
                .iter()
                .map(|service| (service.name.to_string(), service.prefix()))
                .collect(),
        }
    }

    /// The Redis keys and values of this replica, for Traefik's KV provider under `root`: the
    /// same routing as `traefik/dynamic/goterra.yml`. Each prefix has a router for every
    /// method and one, of higher priority, for the idempotent methods through a retry
    /// middleware, so that a request that cannot reach a replica (killed, not yet dropped from
    /// the routing) is sent to another, while a POST (run creation, logins) is never sent twice.
    pub fn traefik_keys(&self, root: &str) -> Vec<(String, String)> {
        let retry = format!("{root}/http/middlewares/{RETRY_MIDDLEWARE}/retry");
        let mut keys = vec![
            (format!("{retry}/attempts"), RETRY_ATTEMPTS.to_string()),
            (format!("{retry}/initialInterval"), "100ms".to_string()),
            // Traefik's own 502 for a replica that died with the request in flight.
            (format!("{retry}/status/0"), "502".to_string()),
        ];
        for (name, prefix) in &self.services {
            let id = format!("got-{name}");
            let routers = format!("{root}/http/routers");
            keys.push((format!("{routers}/{id}/rule"), format!("PathPrefix(`{prefix}`)")));
            keys.push((format!("{routers}/{id}/service"), id.clone()));
            keys.push((
                format!("{routers}/{id}-idempotent/rule"),
                format!("PathPrefix(`{prefix}`) && {IDEMPOTENT_METHODS}"),
            ));
            keys.push((format!("{routers}/{id}-idempotent/priority"), "1000".into()));
            keys.push((
                format!("{routers}/{id}-idempotent/middlewares/0"),
                RETRY_MIDDLEWARE.into(),
            ));
            keys.push((format!("{routers}/{id}-idempotent/service"), id.clone()));
            if name == "ui" {
                // The platform's front door is the web UI.
                let redirect = format!("{root}/http/middlewares/{ROOT_REDIRECT}/redirectRegex");
                keys.push((format!("{redirect}/regex"), "^(https?://[^/]+)/$".into()));
                keys.push((format!("{redirect}/replacement"), "${1}/app".into()));
                keys.push((format!("{routers}/got-root/rule"), "Path(`/`)".into()));
                keys.push((format!("{routers}/got-root/middlewares/0"), ROOT_REDIRECT.into()));
                keys.push((format!("{routers}/got-root/service"), id.clone()));
            }
            let balancer = format!("{root}/http/services/{id}/loadBalancer");
            keys.push((format!("{balancer}/healthCheck/path"), format!("{prefix}/ready")));
            keys.push((format!("{balancer}/healthCheck/interval"), HEALTH_CHECK_INTERVAL.into()));
            keys.push((format!("{balancer}/responseForwarding/flushInterval"), "-1ms".into()));
            keys.push((
                format!("{balancer}/servers/{}/url", self.replica),
                format!("http://{}", self.address),
            ));
        }
        keys
    }

    /// The keys only this replica owns (deleted when it stops).
    fn own_keys(&self, root: &str) -> Vec<String> {
        self.traefik_keys(root)
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| key.contains(&format!("/servers/{}/", self.replica)))
            .collect()
    }

    /// The Consul agent registrations of this replica (`PUT /v1/agent/service/register`).
    pub fn consul_services(&self) -> Vec<serde_json::Value> {
        let (host, port) = split_address(&self.address);
        self.services
            .iter()
            .map(|(name, prefix)| {
                let id = format!("got-{name}");
                serde_json::json!({
                    "ID": format!("{id}-{}", self.replica),
                    "Name": id,
                    "Address": host,
                    "Port": port,
                    "Tags": [
                        "got",
                        "api",
                        "traefik.enable=true",
                        format!("traefik.http.routers.{id}.rule=PathPrefix(`{prefix}`)"),
                        format!("traefik.http.services.{id}.loadbalancer.healthcheck.path={prefix}/ready"),
                    ],
                    "Check": {
                        "HTTP": format!("http://{}{prefix}/ready", self.address),
                        "Interval": "10s",
                        "Timeout": "3s",
                        "DeregisterCriticalServiceAfter": "1m",
                    },
                })
            })
            .collect()
    }
}

/// The listen address as others reach it: the host name instead of an unspecified address.
fn advertised(listen: &str) -> String {
    let (host, port) = split_address(listen);
    if host == "0.0.0.0" || host == "::" || host == "[::]" {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "127.0.0.1".into());
        format!("{name}:{port}")
    } else {
        listen.to_string()
    }
}

fn split_address(address: &str) -> (String, u16) {
    match address.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(80)),
        None => (address.to_string(), 80),
    }
}

/// A running registration; [`Registration::withdraw`] removes it.
pub struct Registration {
    refresher: Option<tokio::task::JoinHandle<()>>,
    withdraw: Withdraw,
}

enum Withdraw {
    Nothing,
    Redis { client: redis::Client, keys: Vec<String> },
    Consul { agent: String, ids: Vec<String> },
}

impl Registration {
    /// Registers this replica as configured (nothing when discovery is off). Registration
    /// errors are logged and retried: a registry that is down must not stop the service.
    pub async fn start(config: &Config, listen: &str, services: &[ServiceSpec]) -> anyhow::Result<Self> {
        let announcement = Announcement::new(config, listen, services);
        match config.discovery_kind() {
            None | Some(DiscoveryKind::Off) => Ok(Self {
                refresher: None,
                withdraw: Withdraw::Nothing,
            }),
            Some(DiscoveryKind::Redis) => {
                let url = config.redis_url().context("GOT_DISCOVERY=redis needs GOT_REDIS_URL")?;
                let client = redis::Client::open(url.expose().as_str())
                    .map_err(|_| anyhow::anyhow!("GOT_REDIS_URL is not a valid Redis URL"))?;
                let root = config.discovery.root_key.clone();
                let ttl = config.discovery.ttl_secs;
                let keys = announcement.traefik_keys(&root);
                let own = announcement.own_keys(&root);
                tracing::info!(address = %announcement.address, root = %root, ttl, "registering with Traefik's Redis provider");
                let refresher = tokio::spawn(refresh_redis(client.clone(), keys, ttl));
                Ok(Self {
                    refresher: Some(refresher),
                    withdraw: Withdraw::Redis { client, keys: own },
                })
            }
            Some(DiscoveryKind::Consul) => {
                let agent = consul_base(config.consul.as_deref().unwrap_or_default());
                let services = announcement.consul_services();
                let ids = services
                    .iter()
                    .filter_map(|service| service["ID"].as_str().map(String::from))
                    .collect();
                tracing::info!(address = %announcement.address, agent = %agent, "registering with Consul");
                let refresher = tokio::spawn(register_consul(agent.clone(), services));
                Ok(Self {
                    refresher: Some(refresher),
                    withdraw: Withdraw::Consul { agent, ids },
                })
            }
        }
    }

    /// Removes this replica from the registry (before the process stops serving).
    pub async fn withdraw(mut self) {
        if let Some(refresher) = self.refresher.take() {
            refresher.abort();
        }
        let withdrawn = match &self.withdraw {
            Withdraw::Nothing => return,
            Withdraw::Redis { client, keys } => {
                async {
                    let mut connection = client.get_multiplexed_async_connection().await?;
                    redis::cmd("DEL").arg(keys).query_async::<()>(&mut connection).await?;
                    anyhow::Ok(())
                }
                .await
            }
            Withdraw::Consul { agent, ids } => {
                async {
                    let http = consul_client()?;
                    for id in ids {
                        http.put(format!("{agent}/v1/agent/service/deregister/{id}"))
                            .send()
                            .await?
                            .error_for_status()?;
                    }
                    anyhow::Ok(())
                }
                .await
            }
        };
        match withdrawn {
            Ok(()) => tracing::info!("withdrawn from the proxy's registry"),
            Err(err) => tracing::warn!(error = %err, "cannot withdraw from the registry; the entry expires by itself"),
        }
    }
}

/// Writes every key with its TTL, then again at a third of the TTL, forever.
async fn refresh_redis(client: redis::Client, keys: Vec<(String, String)>, ttl: u64) {
    let period = Duration::from_millis(ttl * 1000 / 3);
    let mut connection: Option<redis::aio::MultiplexedConnection> = None;
    let mut failing = false;
    loop {
        let written = async {
            if connection.is_none() {
                connection = Some(client.get_multiplexed_async_connection().await?);
            }
            let mut pipe = redis::pipe();
            for (key, value) in &keys {
                pipe.cmd("SET").arg(key).arg(value).arg("EX").arg(ttl).ignore();
            }
            match connection.as_mut() {
                Some(connection) => pipe.query_async::<()>(connection).await,
                None => Ok(()),
            }
        }
        .await;
        match written {
            Ok(()) if failing => {
                tracing::info!("registered with Traefik's Redis provider again");
                failing = false;
            }
            Ok(()) => {}
            Err(err) => {
                connection = None;
                if !failing {
                    // The error's category only: its details may quote the URL.
                    tracing::warn!(error = ?err.kind(), "cannot refresh the Redis registration; retrying");
                }
                failing = true;
            }
        }
        tokio::time::sleep(period).await;
    }
}

/// Registers every service with the Consul agent, retrying until it accepts.
async fn register_consul(agent: String, services: Vec<serde_json::Value>) {
    let mut delay = Duration::from_secs(1);
    loop {
        let registered = async {
            let http = consul_client()?;
            for service in &services {
                http.put(format!("{agent}/v1/agent/service/register"))
                    .json(service)
                    .send()
                    .await?
                    .error_for_status()?;
            }
            anyhow::Ok(())
        }
        .await;
        match registered {
            Ok(()) => {
                tracing::info!("registered with Consul");
                return;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot register with Consul; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn consul_base(agent: &str) -> String {
    if agent.starts_with("http://") || agent.starts_with("https://") {
        agent.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", agent.trim_end_matches('/'))
    }
}

fn consul_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(crate::http::SERVICE_CALL_TIMEOUT)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement() -> Announcement {
        Announcement {
            address: "store-1:8000".into(),
            replica: "store-1-8000-ab12cd34".into(),
            services: vec![("store".into(), "/store".into()), ("ui".into(), "/app".into())],
        }
    }

    #[test]
    fn traefik_keys_route_each_prefix_to_this_replica() {
        let keys: std::collections::BTreeMap<_, _> = announcement().traefik_keys("traefik").into_iter().collect();
        assert_eq!(keys["traefik/http/routers/got-store/rule"], "PathPrefix(`/store`)");
        assert_eq!(keys["traefik/http/routers/got-ui/rule"], "PathPrefix(`/app`)");
        assert_eq!(keys["traefik/http/routers/got-store/service"], "got-store");
        assert_eq!(
            keys["traefik/http/routers/got-store-idempotent/rule"],
            "PathPrefix(`/store`) && (Method(`GET`) || Method(`HEAD`) || Method(`PUT`) || Method(`DELETE`))"
        );
        assert_eq!(
            keys["traefik/http/routers/got-store-idempotent/middlewares/0"],
            "got-retry-idempotent"
        );
        assert_eq!(
            keys["traefik/http/middlewares/got-retry-idempotent/retry/attempts"],
            RETRY_ATTEMPTS
        );
        assert_eq!(keys["traefik/http/routers/got-root/rule"], "Path(`/`)");
        assert_eq!(
            keys["traefik/http/services/got-store/loadBalancer/servers/store-1-8000-ab12cd34/url"],
            "http://store-1:8000"
        );
        assert_eq!(
            keys["traefik/http/services/got-ui/loadBalancer/healthCheck/path"],
            "/app/ready"
        );
        let own = announcement().own_keys("traefik");
        assert_eq!(own.len(), 2, "one server key per service: {own:?}");
        assert!(
            own.iter()
                .all(|key| key.ends_with("/servers/store-1-8000-ab12cd34/url"))
        );
    }

    #[test]
    fn consul_registration_has_the_original_name_and_a_readiness_check() {
        let services = announcement().consul_services();
        assert_eq!(services[0]["Name"], "got-store");
        assert_eq!(services[0]["ID"], "got-store-store-1-8000-ab12cd34");
        assert_eq!(services[0]["Address"], "store-1");
        assert_eq!(services[0]["Port"], 8000);
        assert_eq!(services[0]["Check"]["HTTP"], "http://store-1:8000/store/ready");
        let tags = services[0]["Tags"].as_array().unwrap();
        assert!(
            tags.iter()
                .any(|tag| tag == "traefik.http.routers.got-store.rule=PathPrefix(`/store`)")
        );
    }

    #[test]
    fn an_unspecified_listen_address_is_advertised_by_host_name() {
        assert_eq!(advertised("127.0.0.1:8000"), "127.0.0.1:8000");
        let advertised = advertised("0.0.0.0:8000");
        assert!(
            advertised.ends_with(":8000") && !advertised.starts_with("0.0.0.0"),
            "{advertised}"
        );
        assert_eq!(consul_base("consul:8500"), "http://consul:8500");
        assert_eq!(consul_base("https://consul.example.org/"), "https://consul.example.org");
    }
}
