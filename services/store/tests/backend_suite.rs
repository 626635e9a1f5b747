//! One behaviour suite that every backend passes: embedded on SQLite and PostgreSQL, and Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use goterra_store::backend::{
    EmbeddedBackend, Limits, Metadata, NamespaceBinding, RedisBackend, StoreBackend, StoreError,
};
use goterra_store::waiting::wait_for_key;
use goterra_testing::db::{ENGINES, TestDb};
use std::sync::Arc;
use std::time::Duration;

/// A backend under test, with what must outlive it.
struct Subject {
    name: String,
    backend: Arc<dyn StoreBackend>,
    _db: Option<TestDb>,
}

async fn subjects(limits: Limits) -> Vec<Subject> {
    let mut subjects = Vec::new();
    for engine in ENGINES {
        let db = TestDb::new(engine).await.unwrap();
        db.db.migrate(goterra_store::MIGRATIONS).await.unwrap();
        subjects.push(Subject {
            name: format!("embedded {engine:?}"),
            backend: Arc::new(EmbeddedBackend::new(db.db.clone(), limits)),
            _db: Some(db),
        });
    }
    let url = goterra_core::Sensitive::new(common::REDIS_URL.to_string());
    subjects.push(Subject {
        name: "redis".into(),
        backend: Arc::new(
            RedisBackend::connect(&url, &common::random_prefix(), limits)
                .await
                .unwrap(),
        ),
        _db: None,
    });
    subjects
}

fn limits(max_keys: usize, ttl: Duration) -> Limits {
    Limits { max_keys, ttl }
}

fn metadata(user: &str) -> Metadata {
    Metadata {
        user: user.into(),
        namespace: NamespaceBinding::Id("ns1".into()),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
    }
}

fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn keys_values_and_metadata() {
    for Subject { name, backend, .. } in subjects(limits(100, Duration::from_secs(600))).await {
        let store = backend.as_ref();
        store.create("d1", &metadata("alice")).await.unwrap();
        assert_eq!(store.metadata("d1").await.unwrap(), Some(metadata("alice")), "{name}");
        assert!(store.get_all("d1", None).await.unwrap().is_empty(), "{name}");
        assert_eq!(store.get("d1", "k").await.unwrap(), None, "{name}");

        store.put("d1", &entries(&[("k", "v1")])).await.unwrap();
        store
            .put(
                "d1",
                &entries(&[("k", "v2"), ("empty", ""), ("status_a", "over"), ("status_b", "start")]),
            )
            .await
            .unwrap();
        assert_eq!(store.get("d1", "k").await.unwrap().as_deref(), Some("v2"), "{name}");
        assert_eq!(
            store.get("d1", "empty").await.unwrap().as_deref(),
            Some(""),
            "{name}: empty values read back"
        );

        // Metadata lives apart: a user key named like a metadata field is just a key.
        store
            .put("d1", &entries(&[("user", "mallory"), ("ts", "0"), ("ns", "evil")]))
            .await
            .unwrap();
        let meta = store.metadata("d1").await.unwrap().unwrap();
        assert_eq!(meta.user, "alice", "{name}");
        assert_eq!(meta.namespace, NamespaceBinding::Id("ns1".into()), "{name}");
        assert!(meta.updated_at > 1_700_000_000, "{name}: writes record their time");
        assert_eq!(
            store.get("d1", "user").await.unwrap().as_deref(),
            Some("mallory"),
            "{name}"
        );

        let all = store.get_all("d1", None).await.unwrap();
        assert_eq!(all.len(), 7, "{name}: {all:?}");
        let status = store.get_all("d1", Some("status_")).await.unwrap();
        assert_eq!(status.keys().collect::<Vec<_>>(), ["status_a", "status_b"], "{name}");

        // Duplicates in one write: the last wins.
        store.put("d1", &entries(&[("dup", "1"), ("dup", "2")])).await.unwrap();
        assert_eq!(store.get("d1", "dup").await.unwrap().as_deref(), Some("2"), "{name}");

        assert!(store.delete("d1").await.unwrap(), "{name}");
        assert!(!store.delete("d1").await.unwrap(), "{name}");
        assert_eq!(store.metadata("d1").await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn unknown_deployments_are_not_found() {
    for Subject { name, backend, .. } in subjects(limits(100, Duration::from_secs(600))).await {
        let store = backend.as_ref();
        assert!(
            matches!(store.get("nope", "k").await, Err(StoreError::DeploymentNotFound)),
            "{name}"
        );
        assert!(
            matches!(store.get_all("nope", None).await, Err(StoreError::DeploymentNotFound)),
            "{name}"
        );
        assert!(
            matches!(
                store.put("nope", &entries(&[("k", "v")])).await,
                Err(StoreError::DeploymentNotFound)
            ),
            "{name}"
        );
        assert_eq!(store.metadata("nope").await.unwrap(), None, "{name}");
        assert!(!store.delete("nope").await.unwrap(), "{name}");
        // A failed write created nothing.
        assert_eq!(store.metadata("nope").await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn namespace_bindings_by_name_are_listed_and_bound_to_ids() {
    for Subject { name, backend, .. } in subjects(limits(100, Duration::from_secs(600))).await {
        let store = backend.as_ref();
        let with = |namespace: NamespaceBinding| Metadata {
            namespace,
            ..metadata("alice")
        };
        store
            .create("legacy-1", &with(NamespaceBinding::Legacy("genomics".into())))
            .await
            .unwrap();
        store
            .create("legacy-2", &with(NamespaceBinding::Legacy("genomics".into())))
            .await
            .unwrap();
        store
            .create("gone", &with(NamespaceBinding::Legacy("deleted-ns".into())))
            .await
            .unwrap();
        store.create("plain", &with(NamespaceBinding::None)).await.unwrap();
        store
            .create("bound", &with(NamespaceBinding::Id("id-9".into())))
            .await
            .unwrap();
        let mut legacy = store.legacy_namespaces().await.unwrap();
        legacy.sort();
        assert_eq!(legacy, ["deleted-ns", "genomics"], "{name}");
        store.bind_legacy_namespace("genomics", Some("id-1")).await.unwrap();
        store.bind_legacy_namespace("deleted-ns", None).await.unwrap();
        let binding = |id: &'static str| async move { store.metadata(id).await.unwrap().unwrap().namespace };
        assert_eq!(binding("legacy-1").await, NamespaceBinding::Id("id-1".into()), "{name}");
        assert_eq!(binding("legacy-2").await, NamespaceBinding::Id("id-1".into()), "{name}");
        assert_eq!(binding("gone").await, NamespaceBinding::None, "{name}");
        assert_eq!(binding("plain").await, NamespaceBinding::None, "{name}");
        assert_eq!(binding("bound").await, NamespaceBinding::Id("id-9".into()), "{name}");
        assert!(store.legacy_namespaces().await.unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn key_limit_is_all_or_nothing_even_under_concurrency() {
    for Subject { name, backend, .. } in subjects(limits(5, Duration::from_secs(600))).await {
        let store = backend.as_ref();
        store.create("d", &metadata("alice")).await.unwrap();
        store
            .put("d", &entries(&[("a", "1"), ("b", "1"), ("c", "1")]))
            .await
            .unwrap();
        let refused = store
            .put("d", &entries(&[("a", "2"), ("x", "1"), ("y", "1"), ("z", "1")]))
            .await;
        assert!(
            matches!(refused, Err(StoreError::TooManyKeys(5))),
            "{name}: {refused:?}"
        );
        let all = store.get_all("d", None).await.unwrap();
        assert_eq!(all.len(), 3, "{name}: nothing of a refused write is kept");
        assert_eq!(all["a"], "1", "{name}");
        // Overwriting existing keys is always fine at the limit.
        store.put("d", &entries(&[("d", "1"), ("e", "1")])).await.unwrap();
        store.put("d", &entries(&[("a", "3")])).await.unwrap();

        store.create("race", &metadata("alice")).await.unwrap();
        let writers = (0..20).map(|i| {
            let backend = backend.clone();
            tokio::spawn(async move { backend.put("race", &[(format!("k{i}"), "v".to_string())]).await })
        });
        let mut written = 0;
        for writer in writers {
            match writer.await.unwrap() {
                Ok(()) => written += 1,
                Err(StoreError::TooManyKeys(_)) => {}
                Err(other) => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(written, 5, "{name}");
        assert_eq!(store.get_all("race", None).await.unwrap().len(), 5, "{name}");
    }
}

#[tokio::test]
async fn deployments_expire_unless_written() {
    for Subject { name, backend, .. } in subjects(limits(100, Duration::from_secs(3))).await {
        let store = backend.as_ref();
        store.create("kept", &metadata("alice")).await.unwrap();
        store.create("idle", &metadata("alice")).await.unwrap();
        store.put("kept", &entries(&[("k", "v")])).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        store.put("kept", &entries(&[("k", "v2")])).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(store.metadata("idle").await.unwrap(), None, "{name}: expired");
        assert!(
            matches!(store.get("idle", "k").await, Err(StoreError::DeploymentNotFound)),
            "{name}"
        );
        assert_eq!(
            store.get("kept", "k").await.unwrap().as_deref(),
            Some("v2"),
            "{name}: a write refreshes the TTL"
        );
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(store.metadata("kept").await.unwrap(), None, "{name}");
        assert!(
            matches!(
                store.put("kept", &entries(&[("k", "v")])).await,
                Err(StoreError::DeploymentNotFound)
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn waiters_are_woken_by_writes_and_deletions() {
    for Subject { name, backend, .. } in subjects(limits(100, Duration::from_secs(600))).await {
        backend.create("d", &metadata("alice")).await.unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let backend = backend.clone();
                tokio::spawn(async move { wait_for_key(backend.as_ref(), "d", "token", Duration::from_secs(30)).await })
            })
            .collect();
        while backend.hub().waiting() < 3 {
            tokio::task::yield_now().await;
        }
        backend.put("d", &entries(&[("other", "x")])).await.unwrap();
        backend.put("d", &entries(&[("token", "secret-42")])).await.unwrap();
        for waiter in waiters {
            let value = tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(value.as_deref(), Some("secret-42"), "{name}");
        }
        assert_eq!(backend.hub().slot_count(), 0, "{name}: no waiter left behind");

        // Already there: answered at once. Never written: None when the wait ends.
        let value = wait_for_key(backend.as_ref(), "d", "token", Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(value.as_deref(), Some("secret-42"), "{name}");
        let value = wait_for_key(backend.as_ref(), "d", "never", Duration::from_millis(200))
            .await
            .unwrap();
        assert_eq!(value, None, "{name}");

        // Deleting the deployment ends the wait with "not found".
        let waiter = {
            let backend = backend.clone();
            tokio::spawn(async move { wait_for_key(backend.as_ref(), "d", "late", Duration::from_secs(30)).await })
        };
        while backend.hub().waiting() < 1 {
            tokio::task::yield_now().await;
        }
        backend.delete("d").await.unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(outcome, Err(StoreError::DeploymentNotFound)),
            "{name}: {outcome:?}"
        );
        assert_eq!(backend.hub().slot_count(), 0, "{name}");
    }
}

#[tokio::test]
async fn a_cancelled_wait_leaves_nothing_behind() {
    for Subject { name, backend, .. } in subjects(limits(100, Duration::from_secs(600))).await {
        backend.create("d", &metadata("alice")).await.unwrap();
        let waiter = {
            let backend = backend.clone();
            tokio::spawn(async move { wait_for_key(backend.as_ref(), "d", "k", Duration::from_secs(60)).await })
        };
        while backend.hub().waiting() < 1 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(backend.hub().waiting(), 0, "{name}");
        assert_eq!(backend.hub().slot_count(), 0, "{name}");
    }
}

#[tokio::test]
async fn redis_replicas_wake_each_other() {
    let url = goterra_core::Sensitive::new(common::REDIS_URL.to_string());
    let prefix = common::random_prefix();
    let limits = limits(100, Duration::from_secs(600));
    let replica_a = RedisBackend::connect(&url, &prefix, limits).await.unwrap();
    let replica_b = Arc::new(RedisBackend::connect(&url, &prefix, limits).await.unwrap());
    replica_a.create("d", &metadata("alice")).await.unwrap();
    let waiter = {
        let replica_b = replica_b.clone();
        tokio::spawn(async move { wait_for_key(replica_b.as_ref(), "d", "masterip", Duration::from_secs(30)).await })
    };
    while replica_b.hub().waiting() < 1 {
        tokio::task::yield_now().await;
    }
    replica_a.put("d", &entries(&[("masterip", "10.0.0.1")])).await.unwrap();
    let value = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(value.as_deref(), Some("10.0.0.1"));
}

#[tokio::test]
async fn embedded_data_survives_a_restart_and_expired_rows_are_swept() {
    for engine in ENGINES {
        let db = TestDb::new(engine).await.unwrap();
        db.db.migrate(goterra_store::MIGRATIONS).await.unwrap();
        let limits = limits(100, Duration::from_secs(600));
        {
            let first = EmbeddedBackend::new(db.db.clone(), limits);
            first.create("d", &metadata("alice")).await.unwrap();
            first.put("d", &entries(&[("k", "v")])).await.unwrap();
        }
        let second = EmbeddedBackend::new(db.db.clone(), limits);
        assert_eq!(second.get("d", "k").await.unwrap().as_deref(), Some("v"), "{engine:?}");
        assert_eq!(second.sweep(0).await.unwrap(), 0, "{engine:?}: nothing expired yet");
        assert_eq!(second.sweep(i64::MAX).await.unwrap(), 1, "{engine:?}");
        assert_eq!(second.metadata("d").await.unwrap(), None, "{engine:?}");
    }
}
