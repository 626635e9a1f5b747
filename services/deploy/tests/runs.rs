//! Runs over HTTP on SQLite and PostgreSQL: creation checks, the life cycle driven through the
//! agent routes with an agent credential (as the run agent does), the Terraform state endpoint,
//! log redaction, cancel, the heartbeat sweep, and a run queue that refuses jobs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

use goterra_bus::{EmbeddedQueue, EmbeddedQueueOptions};
use goterra_client::ids::RunId;
use goterra_core::runs::CLAIM_HEADER;
use goterra_db::Engine;
use goterra_deploy::runs::RunOptions;
use goterra_deploy::runs::sweep::sweep_once;
use goterra_testing::TestServer;
use goterra_testing::fixtures::{CatalogueExtras, NULL_TF, RunCatalogue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "s3cr3t-Value-42";

struct Env {
    server: TestServer,
    client: reqwest::Client,
    ns: String,
    app: String,
    endpoint: String,
}

impl Env {
    /// Deploy and the store in one server, with the run catalogue of `goterra-testing` whose
    /// endpoint, recipe and template declare inputs (the region has a default).
    async fn start(engine: goterra_db::Engine) -> Self {
        let server = TestServer::start_with(engine, &[goterra_deploy::spec(), goterra_store::spec()], |config| {
            config.acl.allow_user_create_ns = true;
        })
        .await
        .unwrap();
        let extras = CatalogueExtras {
            endpoint: json!({"inputs": {"region": "Region"}, "defaults": {"region": ["local-1"]}}),
            recipe: json!({"inputs": {"size": "VM size"}}),
            template: json!({"inputs": {"workers": "How many workers"}}),
        };
        let catalogue = RunCatalogue::create(&server, &extras).await.unwrap();
        Self {
            server,
            client: reqwest::Client::new(),
            ns: catalogue.ns.into_string(),
            app: catalogue.app.into_string(),
            endpoint: catalogue.endpoint.into_string(),
        }
    }

    fn token(&self, uid: &str) -> String {
        self.server.user_token(uid)
    }

    fn agent_token(&self) -> String {
        self.server.agent_token("agent-test")
    }

    async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value, String) {
        let mut request = self.client.request(method, format!("{}{path}", self.server.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
    }

    async fn call(&self, method: Method, path: &str, uid: &str, body: Option<Value>) -> (u16, Value) {
        let (status, body, _) = self.send(method, path, Some(&self.token(uid)), body).await;
        (status, body)
    }

    async fn agent(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, body, _) = self.send(method, path, Some(&self.agent_token()), body).await;
        (status, body)
    }

    /// An agent's report carrying the claim it won with `started`.
    async fn agent_claiming(&self, path: &str, claim: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.server.url))
            .bearer_auth(self.agent_token())
            .header(CLAIM_HEADER, claim)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn run_path(&self) -> String {
        format!("/deploy/ns/{}/run/{}", self.ns, self.app)
    }

    fn good_request(&self) -> Value {
        json!({
            "name": "first",
            "endpoint": self.endpoint,
            "inputs": {"size": "small", "workers": "2", "ssh_pub_key": "ssh-ed25519 AAAA test"},
            "secretinputs": {"api_secret": SECRET},
        })
    }

    async fn start_run(&self, uid: &str) -> String {
        let (status, body) = self
            .call(Method::POST, &self.run_path(), uid, Some(self.good_request()))
            .await;
        assert_eq!(status, 201, "{body}");
        body["run"].as_str().unwrap().to_string()
    }

    async fn run(&self, id: &str) -> Value {
        let (status, body) = self
            .call(Method::GET, &format!("/deploy/ns/{}/run/{id}", self.ns), "alice", None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn count(&self, sql: &str) -> i64 {
        let (count,): (i64,) = sqlx::query_as(sql)
            .fetch_one(self.server.platform.db.pool())
            .await
            .unwrap();
        count
    }

    fn queue(&self) -> EmbeddedQueue {
        EmbeddedQueue::new(self.server.platform.db.clone(), EmbeddedQueueOptions::default())
    }
}

async fn creation_checks_refuse_bad_requests_and_store_nothing(engine: Engine) {
    let env = Env::start(engine).await;
    let path = env.run_path();
    let endpoint = env.endpoint.clone();

    // Missing inputs: 400 naming each (region has a default, so it is not missing).
    let (status, body) = env
        .call(
            Method::POST,
            &path,
            "alice",
            Some(json!({"endpoint": endpoint, "inputs": {}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("missing inputs") && message.contains("size") && message.contains("workers"),
        "{message}"
    );
    assert!(!message.contains("region"), "{message}");

    for (inputs, needle) in [
        (
            json!({"size": "s", "workers": "1", "goterra_url": "http://evil"}),
            "reserved",
        ),
        (json!({"size": "s", "workers": "1", "image_id": "x"}), "reserved"),
        (json!({"size": "s", "workers": "1", "master": "x"}), "reserved"),
        (json!({"size": "s", "workers": "1", "a b": "x"}), "identifier"),
        (
            // Refused at the edge already: a newline is not allowed in a one-line field.
            json!({"size": "s", "workers": "1", "x\" = 1 }\nresource": "x"}),
            "control characters",
        ),
        (json!({"size": "s", "workers": "1", "$(id)": "x"}), "identifier"),
    ] {
        let (status, body) = env
            .call(
                Method::POST,
                &path,
                "alice",
                Some(json!({"endpoint": endpoint, "inputs": inputs})),
            )
            .await;
        assert_eq!(status, 400, "{inputs}: {body}");
        assert!(body["message"].as_str().unwrap().contains(needle), "{body}");
    }
    let huge = "x".repeat(70 * 1024);
    let (status, _) = env
        .call(
            Method::POST,
            &path,
            "alice",
            Some(json!({"endpoint": endpoint, "inputs": {"size": huge, "workers": "1"}})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = env
        .call(
            Method::POST,
            &path,
            "alice",
            Some(json!({"endpoint": "nope", "inputs": {"size": "s", "workers": "1"}})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = env
        .call(Method::POST, &path, "alice", Some(json!("not an object")))
        .await;
    assert_eq!(status, 400);

    // Outsiders and anonymous callers.
    let (status, _) = env.call(Method::POST, &path, "eve", Some(env.good_request())).await;
    assert_eq!(status, 403);
    let (status, _, _) = env.send(Method::POST, &path, None, Some(env.good_request())).await;
    assert_eq!(status, 401);
    let (status, _) = env
        .call(
            Method::POST,
            &format!("/deploy/ns/{}/run/unknown-app", env.ns),
            "alice",
            Some(env.good_request()),
        )
        .await;
    assert_eq!(status, 404);

    // A frozen namespace refuses new runs.
    let (status, body) = env
        .call(
            Method::PUT,
            &format!("/deploy/ns/{}", env.ns),
            "admin",
            Some(json!({"freeze": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = env.call(Method::POST, &path, "alice", Some(env.good_request())).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("frozen"));

    assert_eq!(env.count("SELECT COUNT(*) FROM deploy_runs").await, 0);
    assert_eq!(env.count("SELECT COUNT(*) FROM queue_jobs").await, 0);
    env.server.stop().await;
}

async fn a_run_goes_through_its_statuses_with_the_agent_routes(engine: Engine) {
    let env = Env::start(engine).await;
    let id = env.start_run("bob").await;
    let run_path = format!("/deploy/ns/{}/run/{id}", env.ns);

    let run = env.run(&id).await;
    assert_eq!(run["status"], "deploy_pending");
    assert_eq!(run["UID"], "bob");
    assert_eq!(run["appID"], env.app.as_str());
    assert_eq!(run["secretinputs"], Value::Null);
    assert_eq!(run["inputs"]["region"], "local-1", "defaults fill missing inputs");
    assert!(!run.to_string().contains(SECRET));
    let deployment = run["deployment"].as_str().unwrap().to_string();
    assert!(!deployment.is_empty());
    // The job carries the run id only.
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM queue_jobs WHERE run_id = '{id}' AND action = 'deploy'"
        ))
        .await,
        1
    );
    // Sensitive inputs are encrypted at rest.
    let (sealed,): (String,) = sqlx::query_as(&format!("SELECT sensitive_sealed FROM deploy_runs WHERE id = '{id}'"))
        .fetch_one(env.server.platform.db.pool())
        .await
        .unwrap();
    assert!(!sealed.contains(SECRET));

    // Lists: own runs; alice (owner) sees bob's with all=1; an outsider cannot look.
    let (_, mine) = env.call(Method::GET, "/deploy/run", "bob", None).await;
    assert_eq!(mine["runs"].as_array().unwrap().len(), 1);
    let (_, own) = env
        .call(Method::GET, &format!("/deploy/ns/{}/run", env.ns), "alice", None)
        .await;
    assert_eq!(own["runs"].as_array().unwrap().len(), 0);
    let (_, all) = env
        .call(Method::GET, &format!("/deploy/ns/{}/run?all=1", env.ns), "alice", None)
        .await;
    assert_eq!(all["runs"].as_array().unwrap().len(), 1);
    let (status, _) = env.call(Method::GET, &run_path, "eve", None).await;
    assert_eq!(status, 403);

    // Agent routes refuse users; the spec is for the action in flight only.
    let (status, _) = env
        .call(
            Method::GET,
            &format!("/deploy/agent/run/{id}/spec?action=deploy"),
            "admin",
            None,
        )
        .await;
    assert!(status == 401 || status == 403, "{status}");
    let (status, _) = env
        .agent(
            Method::GET,
            &format!("/deploy/agent/run/{id}/spec?action=destroy"),
            None,
        )
        .await;
    assert_eq!(status, 409);
    let (status, spec) = env
        .agent(Method::GET, &format!("/deploy/agent/run/{id}/spec?action=deploy"), None)
        .await;
    assert_eq!(status, 200, "{spec}");
    assert_eq!(spec["template"], NULL_TF);
    assert_eq!(spec["sensitive"]["api_secret"], SECRET);
    assert!(spec["sensitive"]["goterra_deployment_token"].as_str().is_some());
    assert_eq!(spec["variables"]["goterra_deployment"], deployment.as_str());
    assert_eq!(spec["variables"]["goterra_run"], id.as_str());
    assert_eq!(spec["variables"]["master"].as_array().unwrap().len(), 1);
    assert_eq!(spec["variables"]["size"], "small");
    assert!(spec["variables"].get("api_secret").is_none());
    let script = spec["variables"]["goterra_cloudinit"]["master"].as_str().unwrap();
    assert!(script.starts_with("#!/bin/bash") && script.contains("echo master"));
    assert!(!script.contains(SECRET), "secret inputs never reach the VMs");

    let (status, answer) = env
        .agent(
            Method::POST,
            &format!("/deploy/agent/run/{id}/started"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer["cancel"], false);
    assert_eq!(env.run(&id).await["status"], "deploy_in_progress");

    // The log is redacted by deploy too.
    let lines = json!({"lines": ["Apply started", format!("password is {SECRET}!"), "done"]});
    let (status, _) = env
        .agent(Method::POST, &format!("/deploy/agent/run/{id}/log"), Some(lines))
        .await;
    assert_eq!(status, 200);
    let (status, log) = env.call(Method::GET, &format!("{run_path}/log"), "bob", None).await;
    assert_eq!(status, 200);
    assert_eq!(log["lines"].as_array().unwrap().len(), 3);
    assert_eq!(log["lines"][1], "password is ********!");
    assert!(!log.to_string().contains(SECRET));
    let (_, tail) = env
        .call(Method::GET, &format!("{run_path}/log?from=2"), "bob", None)
        .await;
    assert_eq!(tail["lines"], json!(["done"]));

    let (status, answer) = env
        .agent(Method::POST, &format!("/deploy/agent/run/{id}/heartbeat"), None)
        .await;
    assert_eq!((status, answer["cancel"].clone()), (200, json!(false)));

    // No destroy while the deploy runs.
    let (status, body) = env.call(Method::DELETE, &run_path, "bob", None).await;
    assert_eq!(status, 409, "{body}");

    // A report must end the action in flight.
    let (status, _) = env
        .agent(
            Method::POST,
            &format!("/deploy/agent/run/{id}/finished"),
            Some(json!({"status": "destroy_success", "duration": 1.0})),
        )
        .await;
    assert_eq!(status, 400);
    let report = json!({"status": "deploy_success", "duration": 2.5, "outputs": {"ip": {"value": "10.0.0.1"}}});
    let (status, _) = env
        .agent(
            Method::POST,
            &format!("/deploy/agent/run/{id}/finished"),
            Some(report.clone()),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = env
        .agent(Method::POST, &format!("/deploy/agent/run/{id}/finished"), Some(report))
        .await;
    assert_eq!(status, 409, "a second report is refused");
    let run = env.run(&id).await;
    assert_eq!(run["status"], "deploy_success");
    assert_eq!(run["duration"], 2.5);
    assert!(run["outputs"].as_str().unwrap().contains("10.0.0.1"));
    assert_eq!(run["events"][0]["action"], "deploy");
    assert_eq!(run["events"][0]["success"], true);
    assert_eq!(run["end"], 0);

    // Following a finished action's log streams its lines then ends.
    let (status, _, stream) = env
        .send(
            Method::GET,
            &format!("{run_path}/log?follow=1"),
            Some(&env.token("bob")),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(stream.contains("data: Apply started"), "{stream}");
    assert!(
        stream.contains("event: end") && stream.contains("data: deploy_success"),
        "{stream}"
    );
    assert!(!stream.contains(SECRET));

    // A live run keeps its application and endpoint from deletion.
    let app_path = format!("/deploy/ns/{}/app/{}", env.ns, env.app);
    let (status, body) = env.call(Method::DELETE, &app_path, "alice", None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("run 'first'"), "{body}");
    let (status, _) = env
        .call(
            Method::DELETE,
            &format!("/deploy/ns/{}/endpoint/{}", env.ns, env.endpoint),
            "alice",
            None,
        )
        .await;
    assert_eq!(status, 409);

    // The store deployment exists while the run lives.
    let store = format!("/store/{deployment}");
    let (status, _, _) = env.send(Method::GET, &store, Some(&env.token("bob")), None).await;
    assert_eq!(status, 200);

    // Destroy (alice owns the namespace), once.
    let (status, body) = env.call(Method::DELETE, &run_path, "alice", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "destroy_pending");
    let (status, _) = env.call(Method::DELETE, &run_path, "alice", None).await;
    assert_eq!(status, 409);
    let (status, spec) = env
        .agent(
            Method::GET,
            &format!("/deploy/agent/run/{id}/spec?action=destroy"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        spec["sensitive"]["api_secret"], SECRET,
        "destroy uses the run owner's values"
    );
    env.agent(Method::POST, &format!("/deploy/agent/run/{id}/started"), None)
        .await;
    assert_eq!(env.run(&id).await["status"], "destroy_in_progress");
    let (status, _) = env
        .agent(
            Method::POST,
            &format!("/deploy/agent/run/{id}/finished"),
            Some(json!({"status": "destroy_success", "duration": 1.0})),
        )
        .await;
    assert_eq!(status, 200);
    let run = env.run(&id).await;
    assert_eq!(run["status"], "destroy_success");
    assert!(run["end"].as_i64().unwrap() > 0);
    assert!(
        run["outputs"].as_str().unwrap().contains("10.0.0.1"),
        "outputs of the deploy are kept"
    );

    // Sensitive inputs, boot scripts and the store deployment are gone.
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM deploy_runs WHERE id = '{id}' AND sensitive_sealed IS NULL AND boot_sealed IS NULL"
        ))
        .await,
        1
    );
    let (status, _, _) = env.send(Method::GET, &store, Some(&env.token("bob")), None).await;
    assert_eq!(status, 404);
    let (status, _) = env
        .agent(
            Method::GET,
            &format!("/deploy/agent/run/{id}/spec?action=destroy"),
            None,
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = env.call(Method::DELETE, &run_path, "alice", None).await;
    assert_eq!(status, 409, "already destroyed");
    let (status, body) = env.call(Method::DELETE, &app_path, "alice", None).await;
    assert_eq!(status, 200, "a destroyed run keeps nothing: {body}");
    env.server.stop().await;
}

/// A destroy whose store deployment cannot be deleted still ends, with a note in `error`; the
/// status only says `destroy_success` once the cleanup has been done.
async fn a_destroy_whose_store_deployment_cannot_be_deleted_ends_with_a_note(engine: Engine) {
    let env = Env::start(engine).await;
    let id = env.start_run("alice").await;
    let agent_route = |what: &str| format!("/deploy/agent/run/{id}/{what}");
    let success = |status: &str| Some(json!({"status": status, "duration": 1.0}));
    env.agent(Method::POST, &agent_route("started"), None).await;
    let (status, _) = env
        .agent(Method::POST, &agent_route("finished"), success("deploy_success"))
        .await;
    assert_eq!(status, 200);

    // The run now points at a store deployment its owner may not delete (carol's).
    let (status, carols, _) = env.send(Method::POST, "/store", Some(&env.token("carol")), None).await;
    assert_eq!(status, 200, "{carols}");
    let carols = carols["id"].as_str().unwrap().to_string();
    sqlx::query("UPDATE deploy_runs SET deployment = $2 WHERE id = $1")
        .bind(id.clone())
        .bind(carols.clone())
        .execute(env.server.platform.db.pool())
        .await
        .unwrap();

    let run_path = format!("/deploy/ns/{}/run/{id}", env.ns);
    assert_eq!(env.call(Method::DELETE, &run_path, "alice", None).await.0, 200);
    env.agent(Method::POST, &agent_route("started"), None).await;
    let (status, body) = env
        .agent(Method::POST, &agent_route("finished"), success("destroy_success"))
        .await;
    assert_eq!(status, 200, "{body}");
    let run = env.run(&id).await;
    assert_eq!(run["status"], "destroy_success", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("store deployment could not be deleted"),
        "{run}"
    );
    let store = format!("/store/{carols}");
    let (status, _, _) = env.send(Method::GET, &store, Some(&env.token("carol")), None).await;
    assert_eq!(status, 200, "carol's deployment is untouched");
    let cleared = format!("SELECT COUNT(*) FROM deploy_runs WHERE id = '{id}' AND sensitive_sealed IS NULL");
    assert_eq!(env.count(&cleared).await, 1, "the secrets are gone all the same");
    env.server.stop().await;
}

async fn the_state_endpoint_stores_encrypted_state_with_locks(engine: Engine) {
    let env = Env::start(engine).await;
    let id = env.start_run("alice").await;
    let other = env.start_run("alice").await;
    let (_, spec) = env
        .agent(Method::GET, &format!("/deploy/agent/run/{id}/spec?action=deploy"), None)
        .await;
    let url = spec["state"]["url"].as_str().unwrap().to_string();
    assert!(url.ends_with(&format!("/deploy/agent/run/{id}/state")));
    let user = spec["state"]["username"].as_str().unwrap().to_string();
    let password = spec["state"]["password"].as_str().unwrap().to_string();
    let (_, other_spec) = env
        .agent(
            Method::GET,
            &format!("/deploy/agent/run/{other}/spec?action=deploy"),
            None,
        )
        .await;
    let other_password = other_spec["state"]["password"].as_str().unwrap().to_string();

    let lock = Method::from_bytes(b"LOCK").unwrap();
    let unlock = Method::from_bytes(b"UNLOCK").unwrap();
    let call = |method: Method, query: &str, password: Option<&str>, body: Option<String>| {
        let mut request = env.client.request(method, format!("{url}{query}"));
        if let Some(password) = password {
            request = request.basic_auth(&user, Some(password));
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }
    };

    assert_eq!(
        call(Method::GET, "", Some(&password), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(call(Method::GET, "", None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(Method::GET, "", Some(&env.token("alice")), None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(Method::GET, "", Some(&other_password), None).await.0,
        StatusCode::FORBIDDEN
    );
    // Any agent's credential opens it too (an agent destroying a run another one deployed).
    assert_eq!(
        call(Method::GET, "", Some(&env.agent_token()), None).await.0,
        StatusCode::NOT_FOUND
    );
    // A state credential opens nothing else.
    let (status, _, _) = env
        .send(
            Method::GET,
            &format!("/deploy/agent/run/{id}/spec?action=deploy"),
            Some(&password),
            None,
        )
        .await;
    assert_eq!(status, 403);

    let info =
        |lock_id: &str| Some(json!({"ID": lock_id, "Operation": "OperationTypeApply", "Who": "agent"}).to_string());
    assert_eq!(
        call(lock.clone(), "", Some(&password), info("l1")).await.0,
        StatusCode::OK
    );
    let (status, holder) = call(lock.clone(), "", Some(&password), info("l2")).await;
    assert_eq!(status, StatusCode::LOCKED);
    assert!(holder.contains("l1"));
    let state = json!({"version": 4, "serial": 1, "resources": [], "marker": "state-marker-123"}).to_string();
    assert_eq!(
        call(Method::POST, "?ID=l2", Some(&password), Some(state.clone()))
            .await
            .0,
        StatusCode::LOCKED
    );
    assert_eq!(
        call(Method::POST, "?ID=l1", Some(&password), Some(state.clone()))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(Method::POST, "?ID=l1", Some(&password), Some("not json".into()))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (status, read) = call(Method::GET, "", Some(&password), None).await;
    assert_eq!((status, read), (StatusCode::OK, state.clone()));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM deploy_run_states WHERE state_sealed LIKE '%state-marker%'")
            .await,
        0,
        "the state is encrypted at rest"
    );
    assert_eq!(
        call(unlock.clone(), "", Some(&password), info("l2")).await.0,
        StatusCode::LOCKED
    );
    assert_eq!(
        call(unlock.clone(), "", Some(&password), info("l1")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(lock.clone(), "", Some(&password), info("l3")).await.0,
        StatusCode::OK
    );
    assert_eq!(call(unlock, "", Some(&password), info("l3")).await.0, StatusCode::OK);

    // One agent at a time: a job delivered twice is claimed once while its agent lives; once
    // that agent is silent, a new delivery takes over and drops the lock it held.
    let started = format!("/deploy/agent/run/{id}/started");
    let (_, first) = env.agent(Method::POST, &started, None).await;
    let first_claim = first["claim"].as_str().unwrap().to_string();
    assert_eq!(
        call(lock.clone(), "", Some(&password), info("l4")).await.0,
        StatusCode::OK
    );
    let (status, body) = env.agent(Method::POST, &started, None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("another agent"), "{body}");
    let locked = format!("SELECT COUNT(*) FROM deploy_run_states WHERE run_id = '{id}' AND lock_id IS NOT NULL");
    assert_eq!(env.count(&locked).await, 1);
    sqlx::query("UPDATE deploy_runs SET heartbeat_at = heartbeat_at - 3600 WHERE id = $1")
        .bind(id.clone())
        .execute(env.server.platform.db.pool())
        .await
        .unwrap();
    let (status, body) = env.agent(Method::POST, &started, None).await;
    assert_eq!(status, 200, "{body}");
    let second_claim = body["claim"].as_str().unwrap().to_string();
    assert_ne!(first_claim, second_claim);
    assert_eq!(env.count(&locked).await, 0, "the silent agent's lock is released");
    assert_eq!(call(lock, "", Some(&password), info("l5")).await.0, StatusCode::OK);

    // The silent agent comes back (a network partition healed): its reports are refused,
    // so that it stops, and only the new agent's count.
    let report = json!({"status": "deploy_failure", "outputs": {}, "duration": 1.0, "error": "late"});
    for (what, body) in [
        ("heartbeat", json!({})),
        ("log", json!({"lines": ["from the old agent"]})),
        ("finished", report.clone()),
    ] {
        let path = format!("/deploy/agent/run/{id}/{what}");
        let (status, reply) = env.agent_claiming(&path, &first_claim, body).await;
        assert_eq!(status, 409, "{what}: {reply}");
        assert!(
            reply["message"].as_str().unwrap().contains("took this run over"),
            "{reply}"
        );
    }
    let run = format!("/deploy/ns/{}/run/{id}", env.ns);
    assert_eq!(
        env.call(Method::GET, &run, "alice", None).await.1["status"],
        "deploy_in_progress"
    );
    let heartbeat = format!("/deploy/agent/run/{id}/heartbeat");
    assert_eq!(env.agent_claiming(&heartbeat, &second_claim, json!({})).await.0, 200);
    let finished = format!("/deploy/agent/run/{id}/finished");
    assert_eq!(env.agent_claiming(&finished, &second_claim, report).await.0, 200);
    assert_eq!(
        env.call(Method::GET, &run, "alice", None).await.1["status"],
        "deploy_failure"
    );
    env.server.stop().await;
}

async fn cancel_and_the_heartbeat_sweep_end_every_run(engine: Engine) {
    let env = Env::start(engine).await;
    let db = env.server.platform.db.clone();
    let queue = env.queue();
    let options = RunOptions {
        heartbeat_timeout: Duration::from_secs(60),
        pending_timeout: Duration::from_secs(600),
        ..RunOptions::default()
    };
    let now = goterra_deploy::storage::now();

    // Cancel while pending: at once.
    let pending = env.start_run("alice").await;
    let (status, body) = env
        .call(
            Method::POST,
            &format!("/deploy/ns/{}/run/{pending}/cancel", env.ns),
            "alice",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "canceled");
    assert_eq!(
        body["events"][0]["action"], "deploy",
        "the end is in the history: {body}"
    );
    assert_eq!(body["events"][0]["success"], false);
    let (status, _) = env
        .agent(
            Method::GET,
            &format!("/deploy/agent/run/{pending}/spec?action=deploy"),
            None,
        )
        .await;
    assert_eq!(status, 409, "the queued job is dropped");

    // Cancel while running: through the agent's next answer.
    let running = env.start_run("alice").await;
    env.agent(Method::POST, &format!("/deploy/agent/run/{running}/started"), None)
        .await;
    let (status, _) = env
        .call(
            Method::POST,
            &format!("/deploy/ns/{}/run/{running}/cancel", env.ns),
            "alice",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, answer) = env
        .agent(Method::POST, &format!("/deploy/agent/run/{running}/heartbeat"), None)
        .await;
    assert_eq!(answer["cancel"], true);
    let (status, _) = env
        .agent(
            Method::POST,
            &format!("/deploy/agent/run/{running}/finished"),
            Some(json!({"status": "canceled", "duration": 1.0, "error": "canceled"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(env.run(&running).await["status"], "canceled");
    let (status, _) = env
        .call(
            Method::POST,
            &format!("/deploy/ns/{}/run/{running}/cancel", env.ns),
            "alice",
            None,
        )
        .await;
    assert_eq!(status, 409);

    // A silent agent: re-queued once (its Terraform's state lock released), then failed.
    let silent = env.start_run("alice").await;
    env.agent(Method::POST, &format!("/deploy/agent/run/{silent}/started"), None)
        .await;
    let (status, _) = env
        .agent(
            Method::from_bytes(b"LOCK").unwrap(),
            &format!("/deploy/agent/run/{silent}/state"),
            Some(json!({"ID": "dead-agent-lock", "Operation": "OperationTypeApply"})),
        )
        .await;
    assert_eq!(status, 200);
    let age = |id: String| {
        let db = db.clone();
        async move {
            sqlx::query("UPDATE deploy_runs SET heartbeat_at = $2, status_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now - 3600)
                .execute(db.pool())
                .await
                .unwrap();
        }
    };
    let report = sweep_once(&db, &queue, &options, now).await.unwrap();
    assert!(report.requeued.is_empty() && report.failed.is_empty(), "{report:?}");
    age(silent.clone()).await;
    let report = sweep_once(&db, &queue, &options, now).await.unwrap();
    assert_eq!(report.requeued, vec![RunId::from_trusted(&silent)]);
    assert_eq!(env.run(&silent).await["status"], "deploy_pending");
    assert_eq!(
        env.count(&format!(
            "SELECT COUNT(*) FROM deploy_run_states WHERE run_id = '{silent}' AND lock_id IS NOT NULL"
        ))
        .await,
        0,
        "the dead agent's state lock is released"
    );
    assert_eq!(
        env.count(&format!("SELECT COUNT(*) FROM queue_jobs WHERE run_id = '{silent}'"))
            .await,
        2
    );
    env.agent(Method::POST, &format!("/deploy/agent/run/{silent}/started"), None)
        .await;
    age(silent.clone()).await;
    let report = sweep_once(&db, &queue, &options, now).await.unwrap();
    assert_eq!(report.failed, vec![RunId::from_trusted(&silent)]);
    let run = env.run(&silent).await;
    assert_eq!(run["status"], "deploy_failure");
    assert!(run["error"].as_str().unwrap().contains("heartbeat"), "{run}");
    assert_eq!(run["action"], Value::Null);
    assert_eq!(
        run["events"],
        json!([{"ts": run["events"][0]["ts"], "action": "deploy", "success": false}]),
        "one failed deploy in the history, written with the status"
    );
    // A late report from the lost agent is refused.
    let (status, _) = env
        .agent(
            Method::POST,
            &format!("/deploy/agent/run/{silent}/finished"),
            Some(json!({"status": "deploy_success", "duration": 1.0})),
        )
        .await;
    assert_eq!(status, 409);

    // Never taken by an agent: failed after the pending limit.
    let waiting = env.start_run("alice").await;
    age(waiting.clone()).await;
    let report = sweep_once(&db, &queue, &options, now).await.unwrap();
    assert_eq!(report.failed, vec![RunId::from_trusted(&waiting)]);
    let run = env.run(&waiting).await;
    assert_eq!(run["status"], "deploy_failure");
    assert!(run["error"].as_str().unwrap().contains("no agent"), "{run}");

    // A failed run can be destroyed (to clean up whatever was created).
    let (status, body) = env
        .call(
            Method::DELETE,
            &format!("/deploy/ns/{}/run/{waiting}", env.ns),
            "alice",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    env.server.stop().await;
}

async fn a_queue_that_refuses_the_job_fails_the_run_with_a_reason(engine: Engine) {
    let env = Env::start(engine).await;
    sqlx::query("DROP TABLE queue_jobs")
        .execute(env.server.platform.db.pool())
        .await
        .unwrap();
    let (status, body) = env
        .call(Method::POST, &env.run_path(), "alice", Some(env.good_request()))
        .await;
    assert_eq!(status, 503, "{body}");
    let (_, runs) = env.call(Method::GET, "/deploy/run", "alice", None).await;
    let run = &runs["runs"][0];
    assert_eq!(run["status"], "deploy_failure");
    assert!(run["error"].as_str().unwrap().contains("queue"), "{run}");
    env.server.stop().await;
}

async fn the_preview_shows_files_without_secrets(engine: Engine) {
    let env = Env::start(engine).await;
    let (status, body) = env
        .call(
            Method::POST,
            &format!("{}/terraform", env.run_path()),
            "bob",
            Some(env.good_request()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["app.tf"], NULL_TF);
    assert!(
        body["variables.tf"]
            .as_str()
            .unwrap()
            .contains("variable \"api_secret\"")
    );
    assert!(!body.to_string().contains(SECRET));
    assert!(body["sensitive"].as_array().unwrap().contains(&json!("password")));
    assert_eq!(
        env.count("SELECT COUNT(*) FROM deploy_runs").await,
        0,
        "a preview stores nothing"
    );
    env.server.stop().await;
}

/// `?status=` filters both run lists before paging; several statuses are comma-separated; an
/// unknown one is a 400 that names it and changes nothing.
async fn run_lists_filter_by_status_before_paging(engine: Engine) {
    let env = Env::start(engine).await;
    let (a, b, c) = (
        env.start_run("alice").await,
        env.start_run("alice").await,
        env.start_run("alice").await,
    );
    let d = env.start_run("bob").await;
    for (id, status, created) in [
        (&a, "deploy_pending", 100),
        (&b, "canceled", 200),
        (&c, "deploy_success", 300),
        (&d, "canceled", 400),
    ] {
        sqlx::query("UPDATE deploy_runs SET status = $1, created_at = $2 WHERE id = $3")
            .bind(status)
            .bind(created as i64)
            .bind(id.as_str())
            .execute(env.server.platform.db.pool())
            .await
            .unwrap();
    }
    let ids = |uid: &'static str, path: String| {
        let env = &env;
        async move {
            let (status, body) = env.call(Method::GET, &path, uid, None).await;
            assert_eq!(status, 200, "{path}: {body}");
            body["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|run| run["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let ns = env.ns.clone();
    assert_eq!(ids("alice", "/deploy/run?status=canceled".into()).await, [b.as_str()]);
    assert_eq!(
        ids("alice", "/deploy/run?status=deploy_pending,deploy_success".into()).await,
        [c.as_str(), a.as_str()]
    );
    // Paging counts the filtered runs only.
    assert_eq!(
        ids(
            "alice",
            "/deploy/run?status=deploy_pending,deploy_success&limit=1".into()
        )
        .await,
        [c.as_str()]
    );
    assert_eq!(
        ids(
            "alice",
            "/deploy/run?status=deploy_pending,deploy_success&skip=1&limit=1".into()
        )
        .await,
        [a.as_str()]
    );
    // With `all`, the owner's view of the namespace, still filtered (bob's run included).
    assert_eq!(
        ids("alice", "/deploy/run?all=1&status=canceled".into()).await,
        [d.as_str(), b.as_str()]
    );
    assert_eq!(
        ids("alice", "/deploy/run?all=1&status=deploy_success".into()).await,
        [c.as_str()]
    );
    // The owner's own runs and the namespace's are one sequence, each run once, paged as one.
    assert_eq!(
        ids("alice", "/deploy/run?all=1&skip=1&limit=2".into()).await,
        [c.as_str(), b.as_str()]
    );
    assert_eq!(ids("alice", "/deploy/run?all=1&skip=3".into()).await, [a.as_str()]);
    assert_eq!(
        ids("alice", format!("/deploy/ns/{ns}/run?all=1&status=canceled")).await,
        [d.as_str(), b.as_str()]
    );
    assert_eq!(
        ids("alice", format!("/deploy/ns/{ns}/run?status=canceled")).await,
        [b.as_str()]
    );
    assert_eq!(
        ids("bob", "/deploy/run?status=deploy_success".into()).await,
        Vec::<String>::new()
    );
    // Spaces and repeats are forgiven; empty means any status.
    assert_eq!(
        ids("alice", "/deploy/run?status=%20canceled%20,canceled,".into()).await,
        [b.as_str()]
    );
    assert_eq!(ids("alice", "/deploy/run?status=".into()).await.len(), 3);
    // An unknown status is refused, naming it and the known ones.
    for path in [
        "/deploy/run?status=bogus".to_string(),
        "/deploy/run?status=canceled,bogus".to_string(),
        format!("/deploy/ns/{ns}/run?status=bogus"),
        "/deploy/run?status=1%20%3D%201%20OR%20status".to_string(),
    ] {
        let (status, body) = env.call(Method::GET, &path, "alice", None).await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with("status: unknown run status"), "{message}");
        assert!(message.contains("deploy_pending"), "{message}");
    }
    assert_eq!(env.count("SELECT COUNT(*) FROM deploy_runs").await, 4);
    env.server.stop().await;
}

engines::engine_tests!(
    run_lists_filter_by_status_before_paging,
    creation_checks_refuse_bad_requests_and_store_nothing,
    a_run_goes_through_its_statuses_with_the_agent_routes,
    a_destroy_whose_store_deployment_cannot_be_deleted_ends_with_a_note,
    the_state_endpoint_stores_encrypted_state_with_locks,
    cancel_and_the_heartbeat_sweep_end_every_run,
    a_queue_that_refuses_the_job_fails_the_run_with_a_reason,
    the_preview_shows_files_without_secrets,
);
