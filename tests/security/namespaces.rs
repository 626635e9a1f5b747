//! Finding 2: store deployments are bound to a namespace id, resolved once from `X-API-NS`;
//! bindings by name of earlier versions are migrated to ids at startup. Membership is deploy's
//! rule, asked in-process.

use crate::support::{ADMIN_KEY, Client, Cred};
use goterra_core::Sensitive;
use goterra_testing::TestServer;
use goterra_testing::db::{ENGINES, TestDb};
use reqwest::StatusCode;
use serde_json::json;

async fn start(engine: goterra_db::Engine, database_url: Option<String>) -> TestServer {
    TestServer::start_with(
        engine,
        &[goterra_auth::spec(), goterra_deploy::spec(), goterra_store::spec()],
        |config| {
            config.admin_apikey = Some(Sensitive::new(ADMIN_KEY.into()));
            config.acl.allow_user_create_ns = true;
            if let Some(url) = database_url {
                config.database.url = Some(Sensitive::new(url));
            }
        },
    )
    .await
    .unwrap()
}

/// Namespace `name` owned by the admin with `members`; its id.
async fn namespace(client: &Client, base: &str, name: &str, members: &[&str]) -> String {
    let (status, answer) = client
        .call(
            "POST",
            &format!("{base}/deploy/ns"),
            Cred::Key(ADMIN_KEY),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["ns"].as_str().unwrap().to_string();
    let (status, answer) = client
        .call(
            "PUT",
            &format!("{base}/deploy/ns/{id}"),
            Cred::Key(ADMIN_KEY),
            Some(json!({"members": members})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    id
}

async fn rename(client: &Client, base: &str, id: &str, name: &str) {
    let (status, answer) = client
        .call(
            "PUT",
            &format!("{base}/deploy/ns/{id}"),
            Cred::Key(ADMIN_KEY),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// After a rename, whoever creates a namespace of the old name gets nothing of the deployment;
/// the members of the namespace it was created in keep their access.
async fn assert_bound_to_the_first_namespace(client: &Client, base: &str, deployment: &str, first: &str, alice: &str) {
    rename(client, base, first, "genomics-archive").await;
    let mallory = client.register(base, "mallory", false).await;
    let (status, answer) = client
        .call(
            "POST",
            &format!("{base}/deploy/ns"),
            Cred::Key(&mallory),
            Some(json!({"name": "genomics"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let dep = format!("{base}/store/{deployment}");
    for (method, url, body) in [
        ("GET", dep.clone(), None),
        ("PUT", dep.clone(), Some(json!({"key": "k", "value": "stolen"}))),
        ("POST", format!("{dep}/token"), None),
    ] {
        let (status, answer) = client.call(method, &url, Cred::Key(&mallory), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {url}: {answer}");
    }
    let (status, answer) = client.call("GET", &dep, Cred::Key(alice), None).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn a_store_deployment_stays_bound_to_its_namespace_across_a_rename() {
    for engine in ENGINES {
        let server = start(engine, None).await;
        let client = Client::default();
        let base = server.url.clone();
        let owner = client.register(&base, "owner", false).await;
        let alice = client.register(&base, "alice", false).await;
        let first = namespace(&client, &base, "genomics", &["owner", "alice"]).await;
        let response = client
            .http
            .post(format!("{base}/store"))
            .header("X-API-Key", &owner)
            .header("X-API-NS", "genomics")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let deployment = response.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_bound_to_the_first_namespace(&client, &base, &deployment, &first, &alice).await;
        server.stop().await;
    }
}

#[tokio::test]
async fn bindings_by_name_of_earlier_versions_are_migrated_to_ids_at_startup() {
    for engine in ENGINES {
        let db = TestDb::new(engine).await.unwrap();
        let server = start(engine, Some(db.url.clone())).await;
        let client = Client::default();
        let base = server.url.clone();
        let owner = client.register(&base, "owner", false).await;
        let alice = client.register(&base, "alice", false).await;
        let first = namespace(&client, &base, "genomics", &["owner", "alice"]).await;
        let (status, answer) = client
            .call("POST", &format!("{base}/store"), Cred::Key(&owner), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let deployment = answer["id"].as_str().unwrap().to_string();
        server.stop().await;
        // As an earlier version wrote it: the name given in X-API-NS.
        sqlx::query("UPDATE store_deployments SET ns = 'genomics', ns_bound = 0 WHERE id = $1")
            .bind(&deployment)
            .execute(db.db.pool())
            .await
            .unwrap();

        let server = start(engine, Some(db.url.clone())).await;
        let (ns, bound): (String, i64) = sqlx::query_as("SELECT ns, ns_bound FROM store_deployments WHERE id = $1")
            .bind(&deployment)
            .fetch_one(db.db.pool())
            .await
            .unwrap();
        assert_eq!((ns.as_str(), bound), (first.as_str(), 1), "{engine:?}");
        let base = server.url.clone();
        let alice_token_check = client
            .call("GET", &format!("{base}/store/{deployment}"), Cred::Key(&alice), None)
            .await;
        assert_eq!(alice_token_check.0, StatusCode::OK, "{}", alice_token_check.1);
        assert_bound_to_the_first_namespace(&client, &base, &deployment, &first, &alice).await;
        server.stop().await;
    }
}
