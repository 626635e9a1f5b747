//! Deployments in Redis: user keys in the hash `{prefix}:depl:{id}` (the original layout),
//! metadata in `{prefix}:deplmeta:{id}`, both expiring together. Writes run as one Lua script
//! (existence check, key limit, every field, TTL refresh and the wake-up message at once) and
//! publish on `{prefix}:storewake:{id}`; one pattern subscription per process fans those
//! messages out to its local waiters, so a PUT on one replica wakes waiters on all of them.

use super::{Limits, Metadata, NamespaceBinding, StoreBackend, StoreError, backend_error, dedup_entries};
use crate::waiting::WaitHub;
use async_trait::async_trait;
use futures_util::StreamExt;
use goterra_core::Sensitive;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::{CancellationToken, DropGuard};

/// KEYS: metadata hash, data hash, wake channel.
/// ARGV: now (unix seconds), TTL (ms), key limit, then key/value pairs.
/// Returns 0 when written, -1 for an unknown deployment, -2 when the key limit would be passed.
const PUT_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local fresh = 0
for i = 4, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then fresh = fresh + 1 end
end
if redis.call('HLEN', KEYS[2]) + fresh > tonumber(ARGV[3]) then return -2 end
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'lastts', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
for i = 4, #ARGV, 2 do
  redis.call('PUBLISH', KEYS[3], ARGV[i])
end
return 0
";

/// Wake message that means "everything in this deployment changed" (keys are never empty).
const WAKE_ALL: &str = "";

/// How long to wait before reconnecting a lost subscription.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

pub struct RedisBackend {
    conn: ConnectionManager,
    names: KeyNames,
    limits: Limits,
    put_script: redis::Script,
    hub: Arc<WaitHub>,
    _subscriber: DropGuard,
}

#[derive(Clone)]
struct KeyNames {
    prefix: String,
}

impl KeyNames {
    fn data(&self, id: &str) -> String {
        format!("{}:depl:{id}", self.prefix)
    }
    fn meta(&self, id: &str) -> String {
        format!("{}:deplmeta:{id}", self.prefix)
    }
    fn meta_pattern(&self) -> String {
        format!("{}:deplmeta:*", self.prefix)
    }
    fn channel(&self, id: &str) -> String {
        format!("{}:storewake:{id}", self.prefix)
    }
    fn channel_pattern(&self) -> String {
        format!("{}:storewake:*", self.prefix)
    }
    fn deployment_of_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(&self.prefix)?.strip_prefix(":storewake:")
    }
}

impl RedisBackend {
    /// Every deployment's metadata key (SCAN, so Redis is never blocked).
    async fn meta_keys(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        let mut keys: Vec<String> = Vec::new();
        let mut iter = conn
            .scan_match::<_, String>(self.names.meta_pattern())
            .await
            .map_err(backend_error)?;
        while let Some(key) = iter.next_item().await {
            keys.push(key);
        }
        Ok(keys)
    }

    /// Connects, and subscribes to wake-ups before returning so no write is missed.
    pub async fn connect(url: &Sensitive<String>, prefix: &str, limits: Limits) -> anyhow::Result<Self> {
        Self::connect_with_stop(url, prefix, limits, &CancellationToken::new()).await
    }

    /// [`Self::connect`], whose wake-up subscriber also stops when `stop` fires (the process's
    /// lifecycle), not only when the backend is dropped.
    pub async fn connect_with_stop(
        url: &Sensitive<String>,
        prefix: &str,
        limits: Limits,
        stop: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.expose().as_str())
            .map_err(|_| anyhow::anyhow!("GOT_REDIS_URL / redis.url is not a valid Redis URL"))?;
        let conn = tokio::time::timeout(Duration::from_secs(10), client.get_connection_manager())
            .await
            .map_err(|_| anyhow::anyhow!("cannot reach Redis: timed out"))?
            .map_err(|err| anyhow::anyhow!("cannot reach Redis: {:?}", err.kind()))?;
        let names = KeyNames {
            prefix: prefix.to_string(),
        };
        let hub = WaitHub::new();
        let stop = stop.child_token();
        let (subscribed, first_subscription) = tokio::sync::oneshot::channel();
        tokio::spawn(
            Subscriber {
                client,
                conn: conn.clone(),
                names: names.clone(),
                hub: hub.clone(),
            }
            .run(stop.clone(), subscribed),
        );
        tokio::time::timeout(Duration::from_secs(10), first_subscription)
            .await
            .map_err(|_| anyhow::anyhow!("cannot subscribe to Redis wake-ups: timed out"))?
            .map_err(|_| anyhow::anyhow!("cannot subscribe to Redis wake-ups"))?;
        Ok(Self {
            conn,
            names,
            limits,
            put_script: redis::Script::new(PUT_SCRIPT),
            hub,
            _subscriber: stop.drop_guard(),
        })
    }
}

impl RedisBackend {
    async fn exists(&self, conn: &mut ConnectionManager, id: &str) -> Result<bool, StoreError> {
        conn.exists(self.names.meta(id)).await.map_err(backend_error)
    }
}

/// The one pub/sub connection of this process.
struct Subscriber {
    client: redis::Client,
    conn: ConnectionManager,
    names: KeyNames,
    hub: Arc<WaitHub>,
}

impl Subscriber {
    async fn run(self, stop: CancellationToken, subscribed: tokio::sync::oneshot::Sender<()>) {
        let mut subscribed = Some(subscribed);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.listen_once(&mut subscribed) => {}
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RESUBSCRIBE_DELAY) => {}
            }
        }
    }

    /// Subscribes and dispatches messages until the connection drops.
    async fn listen_once(&self, subscribed: &mut Option<tokio::sync::oneshot::Sender<()>>) {
        let mut pubsub = match self.client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(err) => {
                tracing::warn!(error = ?err.kind(), "cannot open the Redis wake-up subscription");
                return;
            }
        };
        if let Err(err) = pubsub.psubscribe(self.names.channel_pattern()).await {
            tracing::warn!(error = ?err.kind(), "cannot subscribe to Redis wake-ups");
            return;
        }
        if let Some(subscribed) = subscribed.take() {
            let _ = subscribed.send(());
        } else {
            // Messages sent while we were away are lost: let every waiter look again.
            tracing::info!("Redis wake-up subscription restored");
            self.hub.recheck_all();
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Some(deployment) = self.names.deployment_of_channel(message.get_channel_name()) else {
                continue;
            };
            let Ok(key) = message.get_payload::<String>() else {
                continue;
            };
            self.dispatch(deployment, &key);
        }
        tracing::warn!("Redis wake-up subscription lost, reconnecting");
    }

    fn dispatch(&self, deployment: &str, key: &str) {
        if key == WAKE_ALL {
            self.hub.recheck_deployment(deployment);
            return;
        }
        if !self.hub.has_waiters(deployment, key) {
            return;
        }
        // One read for all the local waiters of this key, instead of one each.
        let mut conn = self.conn.clone();
        let hub = self.hub.clone();
        let data = self.names.data(deployment);
        let (deployment, key) = (deployment.to_string(), key.to_string());
        tokio::spawn(async move {
            match conn.hget::<_, _, Option<String>>(&data, &key).await {
                Ok(Some(value)) => hub.publish(&deployment, &key, &value),
                _ => hub.recheck(&deployment, &key),
            }
        });
    }
}

#[async_trait]
impl StoreBackend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn create(&self, id: &str, metadata: &Metadata) -> Result<(), StoreError> {
        let meta = self.names.meta(id);
        // `ns` is the original's field; `nsid` marks a binding by id (absent in deployments
        // of earlier versions, whose `ns` held whatever X-API-NS said).
        let (ns, nsid) = match &metadata.namespace {
            NamespaceBinding::None => (String::new(), Some(String::new())),
            NamespaceBinding::Id(id) => (id.clone(), Some(id.clone())),
            NamespaceBinding::Legacy(key) => (key.clone(), None),
        };
        let mut fields = vec![
            ("user", metadata.user.clone()),
            ("ns", ns),
            ("ts", metadata.created_at.to_string()),
            ("lastts", metadata.updated_at.to_string()),
        ];
        if let Some(nsid) = nsid {
            fields.push(("nsid", nsid));
        }
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .hset_multiple(&meta, &fields)
            .ignore()
            .pexpire(&meta, self.limits.ttl_millis())
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(backend_error)?;
        Ok(())
    }

    async fn legacy_namespaces(&self) -> Result<Vec<String>, StoreError> {
        let mut legacy: Vec<String> = Vec::new();
        for key in self.meta_keys().await? {
            let mut conn = self.conn.clone();
            let fields: HashMap<String, String> = conn.hgetall(&key).await.map_err(backend_error)?;
            if let NamespaceBinding::Legacy(ns) = binding_of(&fields)
                && !legacy.contains(&ns)
            {
                legacy.push(ns);
            }
        }
        Ok(legacy)
    }

    async fn bind_legacy_namespace(&self, legacy: &str, id: Option<&str>) -> Result<(), StoreError> {
        for key in self.meta_keys().await? {
            let mut conn = self.conn.clone();
            let fields: HashMap<String, String> = conn.hgetall(&key).await.map_err(backend_error)?;
            if binding_of(&fields) == NamespaceBinding::Legacy(legacy.to_string()) {
                // HSET on a hash that expired meanwhile would recreate it without a TTL.
                let _: () = redis::cmd("EVAL")
                    .arg("if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'nsid', ARGV[1]) end")
                    .arg(1)
                    .arg(&key)
                    .arg(id.unwrap_or(""))
                    .query_async(&mut conn)
                    .await
                    .map_err(backend_error)?;
            }
        }
        Ok(())
    }

    async fn metadata(&self, id: &str) -> Result<Option<Metadata>, StoreError> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = conn.hgetall(self.names.meta(id)).await.map_err(backend_error)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let number = |name: &str| fields.get(name).and_then(|v| v.parse::<i64>().ok()).unwrap_or_default();
        Ok(Some(Metadata {
            user: fields.get("user").cloned().unwrap_or_default(),
            namespace: binding_of(&fields),
            created_at: number("ts"),
            updated_at: number("lastts"),
        }))
    }

    async fn put(&self, id: &str, entries: &[(String, String)]) -> Result<(), StoreError> {
        let entries = dedup_entries(entries);
        let mut invocation = self.put_script.prepare_invoke();
        invocation
            .key(self.names.meta(id))
            .key(self.names.data(id))
            .key(self.names.channel(id))
            .arg(goterra_core::token::unix_now())
            .arg(self.limits.ttl_millis())
            .arg(self.limits.max_keys);
        for (key, value) in &entries {
            invocation.arg(*key).arg(*value);
        }
        let mut conn = self.conn.clone();
        let outcome: i64 = invocation.invoke_async(&mut conn).await.map_err(backend_error)?;
        match outcome {
            0 => {
                for (key, value) in &entries {
                    self.hub.publish(id, key, value);
                }
                Ok(())
            }
            -1 => Err(StoreError::DeploymentNotFound),
            -2 => Err(StoreError::TooManyKeys(self.limits.max_keys)),
            other => Err(backend_error(anyhow::anyhow!(
                "unexpected answer {other} from the put script"
            ))),
        }
    }

    async fn get(&self, id: &str, key: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = conn.hget(self.names.data(id), key).await.map_err(backend_error)?;
        // A value proves the deployment exists (both hashes expire and go together); only a
        // miss needs a second look.
        match value {
            Some(value) => Ok(Some(value)),
            None if self.exists(&mut conn, id).await? => Ok(None),
            None => Err(StoreError::DeploymentNotFound),
        }
    }

    async fn get_all(&self, id: &str, prefix: Option<&str>) -> Result<BTreeMap<String, String>, StoreError> {
        let mut conn = self.conn.clone();
        let all: BTreeMap<String, String> = conn.hgetall(self.names.data(id)).await.map_err(backend_error)?;
        if all.is_empty() && !self.exists(&mut conn, id).await? {
            return Err(StoreError::DeploymentNotFound);
        }
        Ok(match prefix {
            None => all,
            Some(prefix) => all.into_iter().filter(|(name, _)| name.starts_with(prefix)).collect(),
        })
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let (deleted_meta, _, _): (i64, i64, i64) = redis::pipe()
            .atomic()
            .del(self.names.meta(id))
            .del(self.names.data(id))
            .publish(self.names.channel(id), WAKE_ALL)
            .query_async(&mut conn)
            .await
            .map_err(backend_error)?;
        self.hub.recheck_deployment(id);
        Ok(deleted_meta > 0)
    }

    fn hub(&self) -> &Arc<WaitHub> {
        &self.hub
    }
}

/// The namespace binding stored in a metadata hash (see `create`).
fn binding_of(fields: &HashMap<String, String>) -> NamespaceBinding {
    match (fields.get("nsid"), fields.get("ns")) {
        (Some(id), _) if id.is_empty() => NamespaceBinding::None,
        (Some(id), _) => NamespaceBinding::Id(id.clone()),
        (None, Some(ns)) if !ns.is_empty() => NamespaceBinding::Legacy(ns.clone()),
        (None, _) => NamespaceBinding::None,
    }
}
