//! Namespaces: ACL, validation, ownership rules, events, paging, deletion.
//! Bugs of the original fixed here (reference §10): S-10, S-13, S-14 (401 not 403), B-7, B-8,
//! B-20, B-24, B-29.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

mod common;

use common::{Api, endpoint_body, recipe_body};
use goterra_core::Event;
use goterra_db::Engine;
use reqwest::Method;
use serde_json::json;

async fn creation_follows_the_acl(engine: Engine) {
    // B-20: the ACL is read from the config (any spelling) or GOT_ACL_USER_CREATENS.
    let api = Api::start_with(engine, |_| {}).await;
    let reply = api.post("/deploy/ns", "alice", json!({"name": "team"})).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.message().contains("GOT_ACL_USER_CREATENS"), "{reply:?}");
    assert_eq!(
        api.post("/deploy/ns", "admin", json!({"name": "by-admin"}))
            .await
            .status,
        201
    );
    assert_eq!(
        api.post("/deploy/ns", "super", json!({"name": "by-super"}))
            .await
            .status,
        201
    );
    // S-14: no token is 401, not 403.
    let reply = api
        .call(Method::POST, "/deploy/ns", None, Some(json!({"name": "x"})))
        .await;
    assert_eq!(reply.status, 401);

    let api = Api::start(engine).await;
    let reply = api.post("/deploy/ns", "alice", json!({"name": "team"})).await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["ns"].as_str().unwrap();
    assert!(reply.location.unwrap().ends_with(&format!("/deploy/ns/{id}")));
}

async fn lifecycle_with_events(engine: Engine) {
    let api = Api::start(engine).await;
    let mut events = api.server.events.subscribe();
    // S-13: client-chosen ids and owners are ignored.
    let reply = api
        .post(
            "/deploy/ns",
            "alice",
            json!({"name": " team ", "_id": "chosen", "owners": ["mallory"], "freeze": true}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let id = reply.body["ns"].as_str().unwrap().to_string();
    assert_ne!(id, "chosen");
    assert_eq!(
        events.recv().await.unwrap(),
        Event::new("ns_create", "alice", id.clone())
    );

    let reply = api.get(&format!("/deploy/ns/{id}"), "alice").await;
    assert_eq!(
        reply.body,
        json!({"ns": {"_id": id, "name": "team", "owners": ["alice"], "members": [], "freeze": false}})
    );
    // By name too (the store checks membership this way).
    assert_eq!(api.get("/deploy/ns/team", "alice").await.body, reply.body);
    assert_eq!(api.get("/deploy/ns/team", "mallory").await.status, 403);

    // Patch semantics; duplicates collapse; owners are not repeated as members; unknown
    // uids are fine (they are opaque). The answer is the namespace after the change (B-4).
    let reply = api
        .put(
            &format!("/deploy/ns/{id}"),
            "alice",
            json!({"members": ["bob", "bob", "alice", " carol "]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["ns"]["members"], json!(["bob", "carol"]));
    assert_eq!(reply.body["ns"]["name"], "team");
    assert_eq!(
        events.recv().await.unwrap(),
        Event::new("ns_update", "alice", id.clone())
    );

    // S-10: owners are never emptied nor nulled, names stay unique.
    let before = api.snapshot().await;
    for (body, field, status) in [
        (json!({"owners": []}), "owners", 400),
        (json!({"owners": null}), "owners", 400),
        (json!({"owners": [""]}), "owners", 400),
        (json!({"name": ""}), "name", 400),
        (json!({"name": "x".repeat(200)}), "name", 400),
        (json!({"members": "bob"}), "members", 400),
        (json!({"freeze": "yes"}), "freeze", 400),
    ] {
        let reply = api.put(&format!("/deploy/ns/{id}"), "alice", body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {reply:?}");
        assert!(reply.message().starts_with(field), "{body}: {reply:?}");
    }
    api.namespace("dave", "taken", &[]).await;
    let reply = api
        .put(&format!("/deploy/ns/{id}"), "alice", json!({"name": "taken"}))
        .await;
    assert_eq!(reply.status, 409, "{reply:?}");
    // B-24: duplicates are refused by the database, not by a racy read.
    assert_eq!(
        api.post("/deploy/ns", "bob", json!({"name": "taken"})).await.status,
        409
    );
    // freeze: admins and super users only (the same value may be sent back).
    assert_eq!(
        api.put(&format!("/deploy/ns/{id}"), "alice", json!({"freeze": true}))
            .await
            .status,
        403
    );
    assert_eq!(
        api.put(&format!("/deploy/ns/{id}"), "alice", json!({"freeze": false}))
            .await
            .status,
        200
    );
    assert_eq!(
        api.snapshot().await.len(),
        before.len() + 2,
        "only the namespace 'taken' was added"
    );

    // Super users change freeze only where they may manage the namespace.
    assert_eq!(
        api.put(&format!("/deploy/ns/{id}"), "super", json!({"freeze": true}))
            .await
            .status,
        403
    );
    let reply = api
        .put(&format!("/deploy/ns/{id}"), "admin", json!({"freeze": true}))
        .await;
    assert_eq!(reply.body["ns"]["freeze"], true);
    // A second owner can be added, then the first may leave.
    let reply = api
        .put(
            &format!("/deploy/ns/{id}"),
            "alice",
            json!({"owners": ["alice", "bob"]}),
        )
        .await;
    assert_eq!(reply.body["ns"]["owners"], json!(["alice", "bob"]));
    assert_eq!(reply.body["ns"]["members"], json!(["carol"]));
    let reply = api
        .put(&format!("/deploy/ns/{id}"), "alice", json!({"owners": ["bob"]}))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(api.get(&format!("/deploy/ns/{id}"), "alice").await.status, 403);

    // B-8: a namespace holding objects is not deleted; the answer lists what remains.
    api.create(&id, "recipe", "bob", recipe_body("r", false)).await;
    api.create(&id, "endpoint", "bob", endpoint_body("e", false)).await;
    let reply = api.delete(&format!("/deploy/ns/{id}"), "bob").await;
    assert_eq!(reply.status, 409);
    assert!(
        reply.message().contains("1 recipe") && reply.message().contains("1 endpoint"),
        "{reply:?}"
    );
    for kind in ["recipe", "endpoint"] {
        let list = api.get(&format!("/deploy/ns/{id}/{kind}"), "bob").await;
        let object = list.body[format!("{kind}s")][0]["id"].as_str().unwrap().to_string();
        assert_eq!(
            api.delete(&format!("/deploy/ns/{id}/{kind}/{object}"), "bob")
                .await
                .status,
            200
        );
    }
    while events.try_recv().is_ok() {}
    assert_eq!(
        api.delete(&format!("/deploy/ns/{id}"), "bob").await.body,
        json!({"ns": id})
    );
    assert_eq!(events.recv().await.unwrap(), Event::new("ns_delete", "bob", id.clone()));
    assert_eq!(api.get(&format!("/deploy/ns/{id}"), "bob").await.status, 404);
    assert_eq!(api.get("/deploy/ns/unknown", "admin").await.status, 404);
}

async fn lists_are_own_namespaces_and_paged(engine: Engine) {
    let api = Api::start(engine).await;
    for name in ["n1", "n2", "n3"] {
        api.namespace("alice", name, &[]).await;
    }
    api.namespace("bob", "n4", &["alice"]).await;
    let names = |reply: &common::Reply| -> Vec<String> {
        reply.body["ns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|ns| ns["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&api.get("/deploy/ns", "alice").await), ["n1", "n2", "n3", "n4"]);
    assert_eq!(names(&api.get("/deploy/ns", "bob").await), ["n4"]);
    assert_eq!(
        names(&api.get("/deploy/ns?skip=1&limit=2", "alice").await),
        ["n2", "n3"]
    );
    let listed = api.get("/deploy/ns", "alice").await;
    assert_eq!(listed.body["ns"][3]["owners"], json!(["bob"]));
    assert_eq!(listed.body["ns"][3]["members"], json!(["alice"]));
    assert_eq!(listed.body["ns"][0]["owners"], json!(["alice"]));
    assert!(names(&api.get("/deploy/ns", "admin").await).is_empty());
    assert_eq!(names(&api.get("/deploy/ns?all=1", "admin").await).len(), 4);
    assert_eq!(names(&api.get("/deploy/ns?all=1", "bob").await), ["n4"]);
    // B-29: bounds are validated.
    for query in ["limit=0", "limit=501", "skip=-1", "skip=0x10", "limit=abc"] {
        let reply = api.get(&format!("/deploy/ns?{query}"), "alice").await;
        assert_eq!(reply.status, 400, "{query}: {reply:?}");
    }
    assert_eq!(api.get("/deploy/recipes?limit=501", "alice").await.status, 400);
}

async fn names_are_unique_under_concurrency_and_constraints_hold(engine: Engine) {
    let api = std::sync::Arc::new(Api::start(engine).await);
    // B-24: concurrent creations of one name: exactly one wins, the others get 409.
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                api.post("/deploy/ns", &format!("user{i}"), json!({"name": "race"}))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409], "{engine:?}");
    let ns = api.get("/deploy/ns?all=1", "admin").await.body["ns"][0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let owner = api.get(&format!("/deploy/ns/{ns}"), "admin").await.body["ns"]["owners"][0]
        .as_str()
        .unwrap()
        .to_string();
    let attempts: Vec<_> = (0..6)
        .map(|_| {
            let (api, ns, owner) = (api.clone(), ns.clone(), owner.clone());
            tokio::spawn(async move {
                api.post(&format!("/deploy/ns/{ns}/recipe"), &owner, recipe_body("same", false))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409], "{engine:?}");

    // Admins cannot create objects in namespaces that do not exist (the original could).
    let reply = api
        .post("/deploy/ns/nope/recipe", "admin", recipe_body("r", false))
        .await;
    assert_eq!(reply.status, 404);

    // The database itself refuses orphans, whatever the code does.
    let pool = api.server.platform.db.pool();
    let orphan = sqlx::query(
        "INSERT INTO deploy_recipes (id, namespace_id, name, public, frozen, ts, body) VALUES ('x', 'nope', 'x', 0, 0, 0, '{}')",
    )
    .execute(pool)
    .await;
    assert!(goterra_db::is_foreign_key_violation(&orphan.unwrap_err()), "{engine:?}");
    let dangling = sqlx::query("INSERT INTO deploy_app_recipes (app_id, recipe_id) VALUES ('nope', 'nope')")
        .execute(pool)
        .await;
    assert!(
        goterra_db::is_foreign_key_violation(&dangling.unwrap_err()),
        "{engine:?}"
    );
}

/// New ids are shaped like the original's ObjectIDs (the original Go clients decode them as
/// such); namespaces and objects made with the earlier 32-hex ids keep working.
async fn new_ids_are_object_ids_and_older_ids_keep_working(engine: Engine) {
    use goterra_client::ids::{NamespaceId, Uid};
    use goterra_deploy::storage::namespaces::{NamespaceRecord, NamespaceRepo};
    let api = Api::start(engine).await;
    let is_object_id =
        |id: &str| id.len() == 24 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let ns = api.namespace("alice", "team", &[]).await;
    assert!(is_object_id(&ns), "{ns}");
    let recipe = api.create(&ns, "recipe", "alice", recipe_body("r", false)).await;
    assert!(is_object_id(&recipe), "{recipe}");

    let older = "0123456789abcdef0123456789abcdef";
    NamespaceRepo::new(&api.server.platform.db)
        .create(&NamespaceRecord {
            id: NamespaceId::from_trusted(older),
            name: "older".into(),
            freeze: false,
            owners: vec![Uid::from_trusted("alice")],
            members: Vec::new(),
        })
        .await
        .unwrap();
    let reply = api.get(&format!("/deploy/ns/{older}"), "alice").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["ns"]["_id"], older, "{}", reply.text);
    let recipe = api.create(older, "recipe", "alice", recipe_body("r", false)).await;
    assert!(is_object_id(&recipe), "{recipe}");
    let reply = api.get(&format!("/deploy/ns/{older}/recipe/{recipe}"), "alice").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// The membership rule other services ask (the store's `X-API-NS`): by id only, so a namespace
/// named like another namespace's id never stands for it.
async fn membership_is_by_namespace_id(engine: Engine) {
    use goterra_client::ids::{NamespaceId, Uid};
    use goterra_deploy::storage::namespaces::NamespaceRepo;
    let api = Api::start(engine).await;
    let team = api.namespace("alice", "team", &["bob"]).await;
    // Carol names her namespace after the team's id.
    let decoy = api.namespace("carol", &team, &[]).await;
    let repo = NamespaceRepo::new(&api.server.platform.db);
    let member = |ns: &str, uid: &str| {
        let (ns, uid) = (NamespaceId::from_trusted(ns), Uid::from_trusted(uid));
        async move { repo.is_member(&ns, &uid).await.unwrap() }
    };
    assert!(member(&team, "alice").await);
    assert!(member(&team, "bob").await);
    assert!(!member(&team, "carol").await);
    assert!(member(&decoy, "carol").await);
    assert!(!member(&decoy, "alice").await);
    assert!(!member("no-such-namespace", "alice").await);
}

engines::engine_tests!(
    membership_is_by_namespace_id,
    new_ids_are_object_ids_and_older_ids_keep_working,
    creation_follows_the_acl,
    lifecycle_with_events,
    lists_are_own_namespaces_and_paged,
    names_are_unique_under_concurrency_and_constraints_hold,
);
