//! Finding 1: revocation reaches every service. A demoted admin loses admin powers, a deleted
//! user's tokens stop working, a password change or an API-key replacement revokes older
//! tokens — in `goterra up`, split across processes with RabbitMQ events or with Redis
//! pub/sub events, and (bounded) when an event is lost.

use crate::support::{ADMIN_KEY, Client, Cred, Process, eventually};
use goterra_bus::RabbitEventBus;
use goterra_core::events::{Event, EventBus, InProcessEventBus};
use goterra_testing::db::{ENGINES, TestDb};
use goterra_testing::{SpawnedServer, TestServer, free_port};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Events travel in-process or through the broker: well under this.
const EVENT_DEADLINE: Duration = Duration::from_secs(10);
/// Without events, the periodic re-check (10 s) must do it within the 30 s guarantee.
const RECHECK_DEADLINE: Duration = Duration::from_secs(30);

fn amqp_url() -> String {
    std::env::var("GOT_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

async fn create_namespace(client: &Client, deploy: &str, name: &str) -> String {
    let (status, answer) = client
        .call(
            "POST",
            &format!("{deploy}/deploy/ns"),
            Cred::Key(ADMIN_KEY),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["ns"].as_str().unwrap().to_string()
}

async fn create_deployment(client: &Client, store: &str, key: &str) -> String {
    let (status, answer) = client
        .call("POST", &format!("{store}/store"), Cred::Key(key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn goterra_up_revokes_demoted_deleted_and_recredentialed_users() {
    for engine in ENGINES {
        let server = TestServer::start_with(
            engine,
            &[goterra_auth::spec(), goterra_deploy::spec(), goterra_store::spec()],
            |config| config.admin_apikey = Some(goterra_core::Sensitive::new(ADMIN_KEY.into())),
        )
        .await
        .unwrap();
        let base = server.url.clone();
        let client = Client::default();
        let alice_key = client.register(&base, "alice", false).await;
        let deployment = create_deployment(&client, &base, &alice_key).await;
        let lab = create_namespace(&client, &base, "lab").await;
        let alice_dep = format!("{base}/store/{deployment}");

        // Demotion: bob's admin token stops granting admin powers.
        client.register(&base, "bob", true).await;
        let bob = client.token(&base, "bob").await;
        assert_eq!(
            client.call("GET", &alice_dep, Cred::Token(&bob), None).await.0,
            StatusCode::OK
        );
        let (status, _) = client
            .call(
                "PUT",
                &format!("{base}/auth/user/bob"),
                Cred::Key(ADMIN_KEY),
                Some(json!({"admin": false})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // At the moment of the change: no membership granted by the stale admin token.
        let (status, answer) = client
            .call(
                "PUT",
                &format!("{base}/deploy/ns/{lab}"),
                Cred::Token(&bob),
                Some(json!({"members": ["bob"]})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{engine:?}: {answer}");
        eventually(EVENT_DEADLINE, StatusCode::FORBIDDEN, || {
            client.call("GET", &alice_dep, Cred::Token(&bob), None)
        })
        .await;

        // Deletion: every service refuses the token.
        let (status, _) = client
            .call("DELETE", &format!("{base}/auth/user/bob"), Cred::Key(ADMIN_KEY), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        for (method, path) in [("GET", "/deploy/ns"), ("GET", "/deploy/run"), ("POST", "/store")] {
            let url = format!("{base}{path}");
            eventually(EVENT_DEADLINE, StatusCode::UNAUTHORIZED, || {
                client.call(method, &url, Cred::Token(&bob), None)
            })
            .await;
        }

        // A password change revokes the user's older tokens, not other users' (Atuin's
        // multi-user check).
        client.register(&base, "carol", false).await;
        client.register(&base, "dave", false).await;
        let carol = client.token(&base, "carol").await;
        let dave = client.token(&base, "dave").await;
        let (status, answer) = client
            .call(
                "PUT",
                &format!("{base}/auth/user/carol/password"),
                Cred::Token(&carol),
                Some(json!({"password": "carol-new-password-2", "current_password": "carol-password-1"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let namespaces = format!("{base}/deploy/ns");
        eventually(EVENT_DEADLINE, StatusCode::UNAUTHORIZED, || {
            client.call("GET", &namespaces, Cred::Token(&carol), None)
        })
        .await;
        let (status, answer) = client.login(&base, "carol", "carol-new-password-2").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let fresh = answer["token"].as_str().unwrap().to_string();
        for token in [&fresh, &dave] {
            let (status, answer) = client
                .call("GET", &format!("{base}/deploy/ns"), Cred::Token(token), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{engine:?}: {answer}");
        }

        // An API-key replacement revokes the old key and the tokens issued before.
        let erin_key = client.register(&base, "erin", false).await;
        let erin = client.token(&base, "erin").await;
        let (status, answer) = client
            .call(
                "POST",
                &format!("{base}/auth/user/erin/apikey"),
                Cred::Key(&erin_key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let new_key = answer["apikey"].as_str().unwrap().to_string();
        let store = format!("{base}/store");
        eventually(EVENT_DEADLINE, StatusCode::UNAUTHORIZED, || {
            client.call("POST", &store, Cred::Token(&erin), None)
        })
        .await;
        let (status, _) = client
            .call("GET", &format!("{base}/deploy/ns"), Cred::Key(&erin_key), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = client
            .call("GET", &format!("{base}/deploy/ns"), Cred::Key(&new_key), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        server.stop().await;
    }
}

/// A bus per process, on one exchange of the test's own.
fn rabbit(exchange: &str) -> Arc<dyn EventBus> {
    Arc::new(RabbitEventBus::start(amqp_url().into(), exchange))
}

/// Waits until every listener hears what `publisher` says (their queues are bound).
async fn wait_until_listening(publisher: &Arc<dyn EventBus>, listeners: &[&Arc<dyn EventBus>]) {
    let mut receivers: Vec<_> = listeners.iter().map(|bus| bus.subscribe().unwrap()).collect();
    for receiver in &mut receivers {
        loop {
            publisher.publish(Event::new("test_probe", "", "")).await;
            match tokio::time::timeout(Duration::from_millis(500), receiver.recv()).await {
                Ok(Ok(event)) if event.action == "test_probe" => break,
                _ => continue,
            }
        }
    }
}

#[tokio::test]
async fn split_services_with_replicas_revoke_through_rabbitmq_events() {
    for engine in ENGINES {
        let db = TestDb::new(engine).await.unwrap();
        let exchange = format!("test-revocation-{}", goterra_core::new_id());
        let (auth_bus, a_bus, b_bus, store_bus) = (
            rabbit(&exchange),
            rabbit(&exchange),
            rabbit(&exchange),
            rabbit(&exchange),
        );
        let auth = Process::start(&db.url, &[goterra_auth::spec()], auth_bus.clone(), |_| {}).await;
        let auth_url = auth.url.clone();
        let deploy = |bus: Arc<dyn EventBus>| {
            let auth_url = auth_url.clone();
            let db_url = db.url.clone();
            async move {
                Process::start(&db_url, &[goterra_deploy::spec()], bus, |config| {
                    config.proxy_auth = Some(auth_url);
                })
                .await
            }
        };
        let deploy_a = deploy(a_bus.clone()).await;
        let deploy_b = deploy(b_bus.clone()).await;
        let store = Process::start(&db.url, &[goterra_store::spec()], store_bus.clone(), |config| {
            config.proxy_auth = Some(auth.url.clone());
            config.proxy = Some(deploy_a.url.clone());
        })
        .await;
        wait_until_listening(&auth_bus, &[&a_bus, &b_bus, &store_bus]).await;

        let client = Client::default();
        let alice_key = client.register(&auth.url, "alice", false).await;
        let deployment = create_deployment(&client, &store.url, &alice_key).await;
        let alice_dep = format!("{}/store/{deployment}", store.url);
        let lab = create_namespace(&client, &deploy_a.url, "lab").await;
        client.register(&auth.url, "bob", true).await;
        let bob = client.token(&auth.url, "bob").await;
        let lab_on = |deploy: &Process| format!("{}/deploy/ns/{lab}", deploy.url);
        for url in [lab_on(&deploy_a), lab_on(&deploy_b), alice_dep.clone()] {
            assert_eq!(
                client.call("GET", &url, Cred::Token(&bob), None).await.0,
                StatusCode::OK,
                "{url}"
            );
        }

        let (status, _) = client
            .call(
                "PUT",
                &format!("{}/auth/user/bob", auth.url),
                Cred::Key(ADMIN_KEY),
                Some(json!({"admin": false})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // A replica asks auth at the moment a privilege would grant membership.
        let (status, answer) = client
            .call(
                "PUT",
                &lab_on(&deploy_b),
                Cred::Token(&bob),
                Some(json!({"members": ["bob"]})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{engine:?}: {answer}");
        for url in [lab_on(&deploy_a), lab_on(&deploy_b), alice_dep.clone()] {
            eventually(EVENT_DEADLINE, StatusCode::FORBIDDEN, || {
                client.call("GET", &url, Cred::Token(&bob), None)
            })
            .await;
        }

        let (status, _) = client
            .call(
                "DELETE",
                &format!("{}/auth/user/bob", auth.url),
                Cred::Key(ADMIN_KEY),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        for url in [
            format!("{}/deploy/ns", deploy_a.url),
            format!("{}/deploy/ns", deploy_b.url),
            format!("{}/store", store.url),
        ] {
            let method = if url.ends_with("/store") { "POST" } else { "GET" };
            eventually(EVENT_DEADLINE, StatusCode::UNAUTHORIZED, || {
                client.call(method, &url, Cred::Token(&bob), None)
            })
            .await;
        }
    }
}

#[tokio::test]
async fn a_lost_event_is_made_good_by_the_periodic_recheck() {
    let db = TestDb::new(goterra_db::Engine::Sqlite).await.unwrap();
    // Two unconnected in-process buses: deploy hears nothing auth says.
    let auth = Process::start(
        &db.url,
        &[goterra_auth::spec()],
        Arc::new(InProcessEventBus::new()),
        |_| {},
    )
    .await;
    let deploy = Process::start(
        &db.url,
        &[goterra_deploy::spec()],
        Arc::new(InProcessEventBus::new()),
        |config| config.proxy_auth = Some(auth.url.clone()),
    )
    .await;
    let client = Client::default();
    let lab = create_namespace(&client, &deploy.url, "lab").await;
    client.register(&auth.url, "bob", true).await;
    let bob = client.token(&auth.url, "bob").await;
    let url = format!("{}/deploy/ns/{lab}", deploy.url);
    assert_eq!(
        client.call("GET", &url, Cred::Token(&bob), None).await.0,
        StatusCode::OK
    );
    let (status, _) = client
        .call(
            "PUT",
            &format!("{}/auth/user/bob", auth.url),
            Cred::Key(ADMIN_KEY),
            Some(json!({"admin": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually(RECHECK_DEADLINE, StatusCode::FORBIDDEN, || {
        client.call("GET", &url, Cred::Token(&bob), None)
    })
    .await;
}

const GOTERRA: &str = env!("CARGO_BIN_EXE_goterra");

fn redis_url() -> String {
    std::env::var("GOT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `goterra serve <service>` as a real process, on Redis and without RabbitMQ.
async fn serve(service: &str, database_url: &str, prefix: &str, data_dir: &std::path::Path) -> SpawnedServer {
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let data_dir = data_dir.join(service);
    let data_dir = data_dir.to_str().unwrap();
    let redis = redis_url();
    SpawnedServer::start(
        GOTERRA,
        &["serve", service, "--listen", &listen, "--data-dir", data_dir],
        &[
            ("GOT_LOG", "warn"),
            ("GOT_SECRET", goterra_testing::TEST_SECRET),
            ("GOT_ADMIN_APIKEY", ADMIN_KEY),
            ("GOT_DATABASE_URL", database_url),
            ("GOT_REDIS_URL", &redis),
            ("GOT_REDIS_PREFIX", prefix),
            // No broker, and no way to ask auth: only an event can revoke on deploy.
            ("GOT_AMQP", ""),
            ("GOT_PROXY", ""),
            ("GOT_PROXY_AUTH", ""),
        ],
        port,
        &format!("/{service}"),
    )
    .await
    .unwrap()
}

/// Finding 1 without RabbitMQ: split processes sharing Redis hear auth's events through Redis
/// pub/sub. Deploy here cannot reach auth at all (neither for events' follow-up questions nor
/// for the periodic re-check), so the deleted user's token can only be refused because the
/// `user_delete` event arrived through Redis.
#[tokio::test]
async fn split_processes_without_rabbitmq_revoke_through_redis_events() {
    let db = TestDb::new(goterra_db::Engine::Postgres).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let prefix = format!("test-revocation-{}", goterra_core::new_id());
    let auth = serve("auth", &db.url, &prefix, data.path()).await;
    let deploy = serve("deploy", &db.url, &prefix, data.path()).await;

    // Both processes subscribed to the event channel before anything happens.
    let redis = redis::Client::open(redis_url()).unwrap();
    let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
    let channel = format!("{prefix}:gotevent");
    let deadline = std::time::Instant::now() + EVENT_DEADLINE;
    loop {
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut connection)
            .await
            .unwrap();
        if counts.first().is_some_and(|(_, count)| *count >= 2) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the services did not subscribe to {channel}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let client = Client::default();
    client.register(&auth.url, "bob", true).await;
    let bob = client.token(&auth.url, "bob").await;
    let namespaces = format!("{}/deploy/ns", deploy.url);
    let (status, answer) = client.call("GET", &namespaces, Cred::Token(&bob), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let (status, _) = client
        .call(
            "DELETE",
            &format!("{}/auth/user/bob", auth.url),
            Cred::Key(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    eventually(EVENT_DEADLINE, StatusCode::UNAUTHORIZED, || {
        client.call("GET", &namespaces, Cred::Token(&bob), None)
    })
    .await;
    assert!(deploy.terminate().unwrap().success());
    assert!(auth.terminate().unwrap().success());
}

/// Finding 1, store side: the tokens the store mints for a deployment (held by its VMs) stop
/// with their owner's account. A password change of the owner leaves them alone (the VMs did
/// not log in); a deletion refuses them, through the event and, if it is lost, the re-check.
#[tokio::test]
async fn a_deleted_owners_store_tokens_are_revoked() {
    for engine in ENGINES {
        let server = TestServer::start_with(
            engine,
            &[goterra_auth::spec(), goterra_deploy::spec(), goterra_store::spec()],
            |config| config.admin_apikey = Some(goterra_core::Sensitive::new(ADMIN_KEY.into())),
        )
        .await
        .unwrap();
        let base = server.url.clone();
        let client = Client::default();
        let alice_key = client.register(&base, "alice", false).await;
        let (status, created) = client
            .call("POST", &format!("{base}/store"), Cred::Key(&alice_key), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let vm_token = created["token"].as_str().unwrap().to_string();
        let deployment = format!("{base}/store/{}", created["id"].as_str().unwrap());
        let put = |value: &'static str| {
            client.call(
                "PUT",
                &deployment,
                Cred::Token(&vm_token),
                Some(json!({"key": "status", "value": value})),
            )
        };
        assert_eq!(put("booting").await.0, StatusCode::OK);

        let alice = client.token(&base, "alice").await;
        let (status, answer) = client
            .call(
                "PUT",
                &format!("{base}/auth/user/alice/password"),
                Cred::Token(&alice),
                Some(json!({"password": "alice-new-password-2", "current_password": "alice-password-1"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let namespaces = format!("{base}/deploy/ns");
        eventually(EVENT_DEADLINE, StatusCode::UNAUTHORIZED, || {
            client.call("GET", &namespaces, Cred::Token(&alice), None)
        })
        .await;
        let (status, answer) = put("joined").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{engine:?}: a password change leaves VM tokens: {answer}"
        );

        let (status, _) = client
            .call("DELETE", &format!("{base}/auth/user/alice"), Cred::Key(ADMIN_KEY), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        eventually(EVENT_DEADLINE, StatusCode::UNAUTHORIZED, || put("after-delete")).await;
        for (method, url) in [
            ("GET", format!("{deployment}/status")),
            ("POST", format!("{deployment}/token")),
        ] {
            let (status, answer) = client.call(method, &url, Cred::Token(&vm_token), None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{engine:?} {method} {url}: {answer}");
        }
        // The deployment itself is intact for an admin.
        let (status, answer) = client
            .call("GET", &format!("{deployment}/status"), Cred::Key(ADMIN_KEY), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["value"], "joined");
        server.stop().await;
    }
}

/// What auth's replica B caches (bob's row for `/auth/me`, bob's API key for `/auth/api`) stops
/// being served once replica A demotes bob, replaces his key or deletes him. Far within the
/// caches' 10 s lifetime: only the event can have done it (it travels in milliseconds). A itself
/// answers from fresh data at once, before the change's own answer.
#[tokio::test]
async fn auth_replicas_drop_cached_rows_and_api_keys_on_every_user_change() {
    /// Far below the caches' lifetime (`goterra_core::revocation::RECHECK_INTERVAL`).
    const EVENT_ONLY: Duration = Duration::from_secs(3);
    for engine in ENGINES {
        let db = TestDb::new(engine).await.unwrap();
        let exchange = format!("test-auth-cache-{}", goterra_core::new_id());
        let (a_bus, b_bus) = (rabbit(&exchange), rabbit(&exchange));
        let a = Process::start(&db.url, &[goterra_auth::spec()], a_bus.clone(), |_| {}).await;
        let b = Process::start(&db.url, &[goterra_auth::spec()], b_bus.clone(), |_| {}).await;
        wait_until_listening(&a_bus, &[&b_bus]).await;
        wait_until_listening(&b_bus, &[&a_bus]).await;

        let client = Client::default();
        let bob_key = client.register(&a.url, "bob", true).await;
        let bob = client.token(&a.url, "bob").await;
        let me = |replica: &Process| format!("{}/auth/me", replica.url);
        let api = |replica: &Process| format!("{}/auth/api", replica.url);
        // Both replicas have bob's row and key cached, as an admin.
        for replica in [&a, &b] {
            for _ in 0..2 {
                let (status, answer) = client.call("GET", &me(replica), Cred::Token(&bob), None).await;
                assert_eq!((status, answer["admin"].clone()), (StatusCode::OK, json!(true)));
                let (status, answer) = client.call("GET", &api(replica), Cred::Key(&bob_key), None).await;
                assert_eq!((status, answer["user"]["admin"].clone()), (StatusCode::OK, json!(true)));
            }
        }

        // Demotion on A.
        let (status, _) = client
            .call(
                "PUT",
                &format!("{}/auth/user/bob", a.url),
                Cred::Key(ADMIN_KEY),
                Some(json!({"admin": false})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, answer) = client.call("GET", &me(&a), Cred::Token(&bob), None).await;
        assert_eq!(answer["admin"], json!(false), "{engine:?}: A serves its own stale row");
        let (_, answer) = client.call("GET", &api(&a), Cred::Key(&bob_key), None).await;
        assert_eq!(
            answer["user"]["admin"],
            json!(false),
            "{engine:?}: A serves a stale key owner"
        );
        let demoted_on_b = |url: String, cred_key: bool| {
            let client = client.clone();
            let (bob, bob_key) = (bob.clone(), bob_key.clone());
            async move {
                let cred = if cred_key {
                    Cred::Key(&bob_key)
                } else {
                    Cred::Token(&bob)
                };
                let (status, answer) = client.call("GET", &url, cred, None).await;
                let admin = if cred_key {
                    &answer["user"]["admin"]
                } else {
                    &answer["admin"]
                };
                let status = if status == StatusCode::OK && *admin == json!(false) {
                    StatusCode::NO_CONTENT
                } else {
                    status
                };
                (status, answer)
            }
        };
        eventually(EVENT_ONLY, StatusCode::NO_CONTENT, || demoted_on_b(me(&b), false)).await;
        eventually(EVENT_ONLY, StatusCode::NO_CONTENT, || demoted_on_b(api(&b), true)).await;

        // Key replacement on A: the old key stops on both, the new one works on both.
        let (status, answer) = client
            .call(
                "POST",
                &format!("{}/auth/user/bob/apikey", a.url),
                Cred::Key(ADMIN_KEY),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let new_key = answer["apikey"].as_str().unwrap().to_string();
        let (status, _) = client.call("GET", &api(&a), Cred::Key(&bob_key), None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{engine:?}: A honours the replaced key"
        );
        let api_b = api(&b);
        eventually(EVENT_ONLY, StatusCode::UNAUTHORIZED, || {
            client.call("GET", &api_b, Cred::Key(&bob_key), None)
        })
        .await;
        // The replacement revoked bob's older tokens: a fresh one, cached on both with the key.
        let bob = client.token(&a.url, "bob").await;
        for replica in [&a, &b] {
            let (status, answer) = client.call("GET", &api(replica), Cred::Key(&new_key), None).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            let (status, answer) = client.call("GET", &me(replica), Cred::Token(&bob), None).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
        }

        // Deletion on A: the token and the new key stop on both.
        let (status, _) = client
            .call(
                "DELETE",
                &format!("{}/auth/user/bob", a.url),
                Cred::Key(ADMIN_KEY),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        for (url, cred) in [(me(&a), Cred::Token(&bob)), (api(&a), Cred::Key(&new_key))] {
            let (status, answer) = client.call("GET", &url, cred, None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{engine:?} {url}: {answer}");
        }
        let me_b = me(&b);
        eventually(EVENT_ONLY, StatusCode::UNAUTHORIZED, || {
            client.call("GET", &me_b, Cred::Token(&bob), None)
        })
        .await;
        eventually(EVENT_ONLY, StatusCode::UNAUTHORIZED, || {
            client.call("GET", &api_b, Cred::Key(&new_key), None)
        })
        .await;
    }
}
