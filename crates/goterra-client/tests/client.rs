#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The typed client against a real platform (auth, deploy, store and run-agent on a random
//! port, as `goterra up` serves them), route by route.

use goterra_client::auth::{PasswordRequest, RegisterRequest, UpdateUserRequest};
use goterra_client::deploy::{
    Application, Endpoint, EndpointDefaults, NamespacePatch, Recipe, SecretRequest, Template,
};
use goterra_client::runs::{RunRequest, RunStatus};
use goterra_client::{
    ApplicationId, Client, ClientError, DeploymentId, EndpointId, LogEvent, NamespaceId, RecipeId, RunId, Sensitive,
    Uid,
};
use goterra_db::Engine;
use goterra_testing::{TestServer, free_port};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn platform() -> TestServer {
    TestServer::start(
        Engine::Sqlite,
        &[
            goterra_auth::spec(),
            goterra_deploy::spec(),
            goterra_store::spec(),
            goterra_run_agent::spec(),
        ],
    )
    .await
    .unwrap()
}

/// A user `uid` registered by the admin, and a client holding its API key.
async fn registered(server: &TestServer, uid: &str) -> (Client, String) {
    let admin = Client::new(&server.url)
        .unwrap()
        .with_token(server.token_for("admin", true));
    let answer = admin
        .register(&RegisterRequest {
            uid: uid.to_string(),
            password: format!("{uid}-password-1"),
            email: format!("{uid}@example.org"),
            pub_key: String::new(),
            kind: None,
            admin: None,
            super_user: None,
        })
        .await
        .unwrap();
    let key = answer.apikey.clone();
    assert!(!format!("{answer:?}").contains(&key), "Debug hides the API key");
    (Client::new(&server.url).unwrap().with_api_key(&key), key)
}

#[tokio::test]
async fn auth_routes_log_in_renew_and_manage_users() {
    let server = platform().await;
    let (by_key, key) = registered(&server, "alice").await;

    let login = by_key.login_with_api_key().await.unwrap();
    assert_eq!(login.user.uid, "alice");
    let alice = Client::new(&server.url).unwrap().with_token(&login.token);
    assert_eq!(alice.me().await.unwrap().email, "alice@example.org");
    let renewed = alice.renew_token().await.unwrap();
    assert!(!renewed.token.is_empty());
    let bound = by_key.bind_session().await.unwrap();
    assert!(!bound.token.is_empty());

    let by_password = Client::new(&server.url)
        .unwrap()
        .login(
            &"alice".parse().unwrap(),
            &Sensitive::new("alice-password-1".to_string()),
        )
        .await
        .unwrap();
    assert_eq!(by_password.user.uid, "alice");

    let uid: Uid = "alice".parse().unwrap();
    let updated = alice
        .update_user(
            &uid,
            &UpdateUserRequest {
                email: Some("alice@example.net".into()),
                ..UpdateUserRequest::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.email, "alice@example.net");
    alice
        .change_password(
            &uid,
            &PasswordRequest {
                password: "alice-password-2".into(),
                current_password: Some("alice-password-1".into()),
            },
        )
        .await
        .unwrap();
    // The change revokes alice's older tokens (within about a second, see docs/security.md):
    // she logs in again with the new password.
    let relogin = Client::new(&server.url)
        .unwrap()
        .login(&uid, &Sensitive::new("alice-password-2".to_string()))
        .await
        .unwrap();
    let alice = Client::new(&server.url).unwrap().with_token(&relogin.token);

    // A plain user may not list users: the server's message comes back with the status.
    match alice.users(None, None).await {
        Err(ClientError::Server { status: 403, message }) => assert!(!message.is_empty()),
        other => panic!("expected a 403, got {other:?}"),
    }
    let admin = Client::new(&server.url)
        .unwrap()
        .with_token(server.token_for("admin", true));
    assert!(
        admin
            .users(None, Some(50))
            .await
            .unwrap()
            .iter()
            .any(|u| u.uid == "alice")
    );
    assert_eq!(admin.user(&uid).await.unwrap().uid, "alice");

    let new_key = alice.regenerate_api_key(&uid).await.unwrap();
    assert_ne!(new_key.expose(), &key);
    match by_key.login_with_api_key().await {
        Err(ClientError::Unauthorized { .. }) => {}
        other => panic!("the old key no longer works, got {other:?}"),
    }
    admin.delete_user(&uid).await.unwrap();
    assert!(admin.user(&uid).await.unwrap_err().is_not_found());
    server.stop().await;
}

#[tokio::test]
async fn namespaces_catalogue_secrets_defaults_and_inputs() {
    let server = platform().await;
    let (alice, _) = registered(&server, "alice").await;
    let admin = Client::new(&server.url)
        .unwrap()
        .with_token(server.token_for("admin", true));

    let ns = admin.create_namespace("team").await.unwrap();
    let patched = admin
        .update_namespace(
            &ns,
            &NamespacePatch {
                members: Some(vec!["alice".into()]),
                ..NamespacePatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.members, vec!["alice".to_string()]);
    assert!(
        alice
            .namespaces(false)
            .await
            .unwrap()
            .iter()
            .any(|n| n.id == ns.as_str())
    );
    assert_eq!(alice.namespace(&ns).await.unwrap().name, "team");

    let parent: RecipeId = alice
        .create_item::<Recipe>(&ns, &json!({"name": "base", "base": ["debian"], "script": "echo base"}))
        .await
        .unwrap();
    let child: RecipeId = alice
        .create_item::<Recipe>(
            &ns,
            &Recipe {
                name: "child".into(),
                parent: parent.to_string(),
                script: "echo child".into(),
                inputs: BTreeMap::from([("size".to_string(), "Disk size".to_string())]),
                ..Recipe::default()
            },
        )
        .await
        .unwrap();
    let recipes = alice.list_items::<Recipe>(&ns, true).await.unwrap();
    assert_eq!(recipes.len(), 2);
    let updated = alice
        .update_item::<Recipe>(&ns, &child, &json!({"description": "a child"}))
        .await
        .unwrap();
    assert_eq!(updated.description, "a child");
    assert_eq!(
        alice.get_item::<Recipe>(&ns, &child).await.unwrap().parent,
        parent.as_str()
    );

    let template = alice
        .create_item::<Template>(
            &ns,
            &json!({"name": "tpl", "data": {"openstack": "output \"ip\" {\n  value = \"10.0.0.1\"\n}\n"}, "varrecipes": ["vm"]}),
        )
        .await
        .unwrap();
    let app: ApplicationId = alice
        .create_item::<Application>(
            &ns,
            &json!({"name": "app", "template": template.to_string(), "templaterecipes": {"vm": [child.to_string()]}}),
        )
        .await
        .unwrap();
    let endpoint: EndpointId = alice
        .create_item::<Endpoint>(&ns, &json!({"name": "cloud", "kind": "openstack", "public": false}))
        .await
        .unwrap();

    let secret = SecretRequest {
        name: "cloud-user".into(),
        password: Sensitive::new("cloud-password".into()),
    };
    assert!(!format!("{secret:?}").contains("cloud-password"));
    alice.set_endpoint_secret(&ns, &endpoint, &secret).await.unwrap();
    assert_eq!(alice.endpoint_secret(&ns, &endpoint).await.unwrap().name, "cloud-user");
    alice.delete_endpoint_secret(&ns, &endpoint).await.unwrap();
    assert!(alice.endpoint_secret(&ns, &endpoint).await.unwrap_err().is_not_found());

    let defaults = EndpointDefaults {
        defaults: BTreeMap::from([("size".to_string(), vec!["10".to_string()])]),
    };
    assert_eq!(
        alice
            .set_endpoint_defaults(&ns, &endpoint, &defaults)
            .await
            .unwrap()
            .defaults,
        defaults.defaults
    );
    assert_eq!(
        alice.endpoint_defaults(&ns, &endpoint).await.unwrap().defaults,
        defaults.defaults
    );

    let inputs = alice.app_inputs(&ns, &app).await.unwrap();
    assert_eq!(inputs.recipes.get("size").map(String::as_str), Some("Disk size"));
    assert_eq!(
        inputs.endpointnames.get(endpoint.as_str()).map(String::as_str),
        Some("cloud")
    );

    // Deletion in dependency order; a used recipe is refused with the server's reason.
    match alice.delete_item::<Recipe>(&ns, &parent).await {
        Err(ClientError::Server { status: 409, message }) => assert!(message.contains("used"), "{message}"),
        other => panic!("expected a 409, got {other:?}"),
    }
    alice.delete_item::<Application>(&ns, &app).await.unwrap();
    alice.delete_item::<Endpoint>(&ns, &endpoint).await.unwrap();
    alice.delete_item::<Recipe>(&ns, &child).await.unwrap();
    alice.delete_item::<Recipe>(&ns, &parent).await.unwrap();
    alice.delete_item::<Template>(&ns, &template).await.unwrap();
    admin.delete_namespace(&ns).await.unwrap();
    assert!(admin.namespace(&ns).await.unwrap_err().is_not_found());
    server.stop().await;
}

/// Polls until the run has no action in flight; bounded, never a timed assertion.
async fn settled(client: &Client, ns: &NamespaceId, run: &RunId) -> goterra_client::runs::Run {
    for _ in 0..600 {
        let current = client.run(ns, run).await.unwrap();
        if current.action.is_none() {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("run {run} did not settle");
}

#[tokio::test]
async fn runs_are_created_listed_followed_and_destroyed() {
    let server = platform().await;
    let admin = Client::new(&server.url)
        .unwrap()
        .with_token(server.token_for("admin", true));
    let ns = admin.create_namespace("runs").await.unwrap();
    let template = admin
        .create_item::<Template>(
            &ns,
            &json!({"name": "empty", "data": {"local": "output \"hello\" {\n  value = \"world\"\n}\n"}}),
        )
        .await
        .unwrap();
    let app: ApplicationId = admin
        .create_item::<Application>(&ns, &json!({"name": "hello", "template": template.to_string()}))
        .await
        .unwrap();
    let endpoint: EndpointId = admin
        .create_item::<Endpoint>(&ns, &json!({"name": "here", "kind": "local"}))
        .await
        .unwrap();

    let request = RunRequest {
        name: "first".into(),
        endpoint: endpoint.to_string(),
        secretinputs: Some(BTreeMap::from([(
            "token".to_string(),
            Sensitive::new("run-secret-value".to_string()),
        )])),
        ..RunRequest::default()
    };
    assert!(!format!("{request:?}").contains("run-secret-value"));
    let preview = admin.preview_run(&ns, &app, &request).await.unwrap();
    assert!(preview.app_tf.contains("hello"));
    assert!(!preview.tfvars.contains("run-secret-value"));

    let run = admin.create_run(&ns, &app, &request).await.unwrap();
    assert!(
        admin
            .runs(None, false, None, None)
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == run.as_str())
    );
    assert!(
        admin
            .runs(Some(&ns), false, Some(0), Some(10))
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == run.as_str())
    );
    // The status filter: every status finds the new run, a status it cannot have yet does not.
    let every = admin
        .runs_in_status(Some(&ns), false, &goterra_client::runs::RunStatus::ALL, None, None)
        .await
        .unwrap();
    assert!(every.iter().any(|r| r.id == run.as_str()));
    let destroyed = admin
        .runs_in_status(
            None,
            true,
            &[goterra_client::runs::RunStatus::DestroySuccess],
            None,
            None,
        )
        .await
        .unwrap();
    assert!(destroyed.iter().all(|r| r.id != run.as_str()));

    // Following the log ends with the run's status once its action is over (the agent runs
    // Terraform when the machine has it, and fails the run when it does not).
    let mut follower = admin.follow_run_log(&ns, &run, 0).await.unwrap();
    let mut end = None;
    while let Some(event) = follower.next().await.unwrap() {
        if let LogEvent::End { status } = event {
            end = Some(status);
        }
    }
    let deployed = settled(&admin, &ns, &run).await;
    assert_eq!(end.as_deref(), Some(deployed.status.as_str()));
    assert!(deployed.status.parse_status().is_some_and(RunStatus::is_terminal));
    let log = admin.run_log(&ns, &run, 0).await.unwrap();
    assert_eq!(log.status, deployed.status);
    assert!(log.lines.iter().all(|line| !line.contains("run-secret-value")));

    let resources = admin.run_resources(&ns, &run).await.unwrap();
    assert_eq!(resources.run, run.as_str());
    assert!(
        admin
            .agent_status()
            .await
            .unwrap()
            .capacity
            .is_some_and(|capacity| capacity > 0)
    );

    let destroying = admin.destroy_run(&ns, &run).await.unwrap();
    assert_eq!(destroying.status, "destroy_pending");
    let destroyed = settled(&admin, &ns, &run).await;
    assert!(destroyed.status.starts_with("destroy_"), "{}", destroyed.status);

    // A second run is canceled before any agent could finish it, or has already ended.
    let second = admin.create_run(&ns, &app, &request).await.unwrap();
    match admin.cancel_run(&ns, &second).await {
        Ok(canceled) => assert!(matches!(
            canceled.status.as_str(),
            "canceled" | "deploy_pending" | "deploy_in_progress"
        )),
        Err(ClientError::Server { status: 409, .. }) => {}
        Err(other) => panic!("cancel failed: {other}"),
    }
    settled(&admin, &ns, &second).await;
    server.stop().await;
}

/// `Run::status` is the original's string; this reads it as the enum.
trait StatusText {
    fn parse_status(&self) -> Option<RunStatus>;
}

impl StatusText for String {
    fn parse_status(&self) -> Option<RunStatus> {
        serde_json::from_value(json!(self)).ok()
    }
}

#[tokio::test]
async fn store_routes_write_wait_read_and_delete() {
    let server = platform().await;
    let admin = Client::new(&server.url)
        .unwrap()
        .with_token(server.token_for("admin", true));
    let created = admin.create_deployment(None).await.unwrap();
    assert!(!format!("{created:?}").contains(&created.token));
    let deployment: DeploymentId = created.id.parse().unwrap();
    let vm = Client::new(&server.url).unwrap().with_token(&created.token);

    vm.store_put(&deployment, "ip", "10.0.0.1").await.unwrap();
    vm.store_put_many(
        &deployment,
        &[goterra_client::store::KeyValue {
            key: "role".into(),
            value: "master".into(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(
        vm.store_get(&deployment, "ip", Duration::ZERO).await.unwrap(),
        "10.0.0.1"
    );
    let keys = admin.store_keys(&deployment, Some("r")).await.unwrap();
    assert_eq!(keys.deployment.keys().collect::<Vec<_>>(), vec!["role"]);

    // A waiting read returns once another client writes the key.
    let waiter = {
        let vm = vm.clone();
        let deployment = deployment.clone();
        tokio::spawn(async move { vm.store_get(&deployment, "late", Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    vm.store_put(&deployment, "late", "here").await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), "here");
    assert!(
        vm.store_get(&deployment, "never", Duration::ZERO)
            .await
            .unwrap_err()
            .is_not_found()
    );

    let renewed = vm.renew_deployment_token(&deployment).await.unwrap();
    assert_eq!(renewed.id, deployment.as_str());
    admin.delete_deployment(&deployment).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn failures_are_told_apart_and_calls_are_observed_without_credentials() {
    let server = platform().await;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = seen.clone();
    let wrong = Client::new(&server.url)
        .unwrap()
        .with_api_key("not-a-key-but-secret")
        .with_observer(move |call| {
            sink.lock().unwrap().push(format!(
                "{} {} {:?} {:?}",
                call.method, call.url, call.status, call.elapsed
            ));
        });
    match wrong.login_with_api_key().await {
        Err(ClientError::Unauthorized { message }) => assert!(!message.contains("not-a-key-but-secret")),
        other => panic!("expected unauthorized, got {other:?}"),
    }
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].starts_with("GET ") && calls[0].contains("/auth/api") && calls[0].contains("Some(401)"));
    assert!(!calls[0].contains("not-a-key-but-secret"));
    assert_eq!(wrong.health("deploy").await.unwrap().message, "ok");
    server.stop().await;

    let nobody = Client::new(&format!("http://127.0.0.1:{}", free_port().unwrap())).unwrap();
    match nobody.health("auth").await {
        Err(ClientError::Unreachable { detail, .. }) => assert!(!detail.is_empty()),
        other => panic!("expected unreachable, got {other:?}"),
    }
}
