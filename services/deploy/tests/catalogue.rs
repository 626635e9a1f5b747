//! Recipes, templates and applications: validation, references, base images, frozen objects.
//! Bugs of the original fixed here (reference §10): S-4, S-5, S-13, B-1, B-4, B-5, B-7, B-9,
//! B-21, B-24, B-28.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

mod common;

use common::{Api, TF, app_body, recipe_body, template_body};
use goterra_db::Engine;
use serde_json::{Value, json};

async fn setup(api: &Api) -> (String, String) {
    let ns = api.namespace("alice", "team", &["bob"]).await;
    let other = api.namespace("olga", "other", &[]).await;
    (ns, other)
}

async fn recipes_are_validated_and_server_fields_are_the_servers(engine: Engine) {
    let api = Api::start(engine).await;
    let (ns, other) = setup(&api).await;
    // S-13: id, namespace and ts come from the server.
    let reply = api
        .post(
            &format!("/deploy/ns/{ns}/recipe"),
            "bob",
            json!({"name": "base", "id": "chosen", "namespace": other, "ts": 1, "base": ["debian"], "inputs": {"size": "Disk size"}}),
        )
        .await;
    assert_eq!(reply.status, 201, "{reply:?}");
    let id = reply.body["recipe"].as_str().unwrap().to_string();
    assert_ne!(id, "chosen");
    assert!(
        reply
            .location
            .unwrap()
            .ends_with(&format!("/deploy/ns/{ns}/recipe/{id}"))
    );
    let recipe = api.get(&format!("/deploy/ns/{ns}/recipe/{id}"), "alice").await.body["recipe"].clone();
    assert_eq!(recipe["namespace"], ns.as_str());
    assert!(recipe["ts"].as_i64().unwrap() > 1);

    let before = api.snapshot().await;
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": "  "}), "name"),
        (json!({"name": "x", "inputs": {"1bad": "x"}}), "inputs"),
        (json!({"name": "x", "inputs": {"goterra_url": "x"}}), "inputs"),
        (json!({"name": "x", "inputs": {"password": "x"}}), "inputs"),
        (json!({"name": "x", "defaults": {"a b": ["x"]}}), "defaults"),
        (json!({"name": "x", "base": [""]}), "base"),
        (json!({"name": "x", "base": "debian"}), "base"),
        (json!({"name": "x", "public": "yes"}), "public"),
        (json!({"name": "x", "parent": "nope"}), "parent"),
        (json!({"name": "x", "script": "x".repeat(1024 * 1024 + 1)}), "script"),
    ] {
        let reply = api.post(&format!("/deploy/ns/{ns}/recipe"), "bob", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert!(reply.message().starts_with(field), "{field}: {reply:?}");
    }
    // B-24: unique per namespace and kind, by constraint.
    assert_eq!(
        api.post(&format!("/deploy/ns/{ns}/recipe"), "bob", recipe_body("base", false))
            .await
            .status,
        409
    );
    assert_eq!(api.snapshot().await, before, "refused requests changed nothing");
    // The same name in another namespace, or for another kind (B-1), is fine.
    api.create(&other, "recipe", "olga", recipe_body("base", false)).await;
    api.create(&ns, "template", "bob", template_body("base", false)).await;
    assert_eq!(
        api.post(
            &format!("/deploy/ns/{ns}/template"),
            "bob",
            template_body("base", false)
        )
        .await
        .status,
        409
    );
}

async fn recipe_parents_must_be_usable_and_acyclic(engine: Engine) {
    let api = Api::start(engine).await;
    let (ns, other) = setup(&api).await;
    let private_elsewhere = api.create(&other, "recipe", "olga", recipe_body("p", false)).await;
    let public_elsewhere = api.create(&other, "recipe", "olga", recipe_body("q", true)).await;
    let reply = api
        .post(
            &format!("/deploy/ns/{ns}/recipe"),
            "bob",
            json!({"name": "c", "parent": private_elsewhere}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.message().starts_with("parent:"), "{reply:?}");
    let a = api
        .create(&ns, "recipe", "bob", json!({"name": "a", "parent": public_elsewhere}))
        .await;
    let b = api
        .create(&ns, "recipe", "bob", json!({"name": "b", "parent": a}))
        .await;
    // B-28: cycles are refused.
    for parent in [&b, &a] {
        let reply = api
            .put(&format!("/deploy/ns/{ns}/recipe/{a}"), "bob", json!({"parent": parent}))
            .await;
        assert_eq!(reply.status, 400, "{reply:?}");
        assert!(
            reply.message().contains("cycle") || reply.message().contains("own parent"),
            "{reply:?}"
        );
    }
    // B-9: a recipe used as a parent is not deleted; the answer names the users.
    let reply = api.delete(&format!("/deploy/ns/{ns}/recipe/{a}"), "bob").await;
    assert_eq!(reply.status, 409);
    assert!(reply.message().contains("recipe 'b'"), "{reply:?}");
    // olga learns that something uses her recipe, not what (it is private to another team).
    let reply = api
        .delete(&format!("/deploy/ns/{other}/recipe/{public_elsewhere}"), "olga")
        .await;
    assert_eq!(reply.status, 409);
    assert!(!reply.message().contains("'a'"), "{reply:?}");
    // A public recipe used from another namespace must stay public.
    let reply = api
        .put(
            &format!("/deploy/ns/{other}/recipe/{public_elsewhere}"),
            "olga",
            json!({"public": false}),
        )
        .await;
    assert_eq!(reply.status, 409, "{reply:?}");
    assert_eq!(
        api.delete(&format!("/deploy/ns/{ns}/recipe/{b}"), "bob").await.status,
        200
    );
    assert_eq!(
        api.delete(&format!("/deploy/ns/{ns}/recipe/{a}"), "bob").await.status,
        200
    );
}

async fn templates_are_parsed_and_policed(engine: Engine) {
    let api = Api::start(engine).await;
    let (ns, _) = setup(&api).await;
    let path = format!("/deploy/ns/{ns}/template");
    let with = |data: &str| json!({"name": "t", "data": {"openstack": data}, "varrecipes": ["recipes_vm"], "inputs": {"flavor": "Flavor"}});
    let before = api.snapshot().await;
    let reply = api
        .post(&path, "bob", with("resource \"x\" \"y\" {\n  a = \n}\n"))
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.message().starts_with("data.openstack: HCL syntax error at line"),
        "{reply:?}"
    );
    for declared in ["goterra_url", "image_id", "ssh_pub_key", "recipes_vm", "flavor"] {
        let reply = api
            .post(&path, "bob", with(&format!("variable \"{declared}\" {{}}\n")))
            .await;
        assert_eq!(reply.status, 400, "{declared}");
        assert!(reply.message().contains(declared), "{reply:?}");
    }
    let reply = api
        .post(&path, "bob", with("terraform {\n  backend \"local\" {}\n}\n"))
        .await;
    assert_eq!(reply.status, 400);
    let reply = api
        .post(&path, "bob", json!({"name": "t", "data": {"bad kind": TF}}))
        .await;
    assert_eq!(reply.status, 400);
    let reply = api
        .post(&path, "bob", json!({"name": "t", "varrecipes": ["goterra_x"]}))
        .await;
    assert_eq!(reply.status, 400);
    let reply = api
        .post(&path, "bob", json!({"name": "t", "varrecipes": ["a", "a"]}))
        .await;
    assert_eq!(reply.status, 400);
    // Host commands: 403 with the reason for members...
    let local_exec =
        "resource \"null_resource\" \"vm\" {\n  provisioner \"local-exec\" {\n    command = \"echo hi\"\n  }\n}\n";
    let reply = api.post(&path, "bob", with(local_exec)).await;
    assert_eq!(reply.status, 403);
    assert!(reply.message().contains("only an admin"), "{reply:?}");
    let external = "data \"external\" \"x\" {\n  program = [\"id\"]\n}\n";
    assert_eq!(api.post(&path, "bob", with(external)).await.status, 403);
    assert_eq!(api.snapshot().await, before);
    // ...allowed for admins; members may then edit other fields, not the files.
    let id = api.create(&ns, "template", "admin", with(local_exec)).await;
    let item = format!("{path}/{id}");
    let reply = api.put(&item, "bob", json!({"description": "cluster"})).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["template"]["description"], "cluster");
    let reply = api
        .put(
            &item,
            "bob",
            json!({"data": {"openstack": format!("{local_exec}\n# edited\n")}}),
        )
        .await;
    assert_eq!(reply.status, 403);
    // ?light=1 leaves the files out of lists.
    let reply = api.get(&format!("{path}?light=1"), "bob").await;
    assert_eq!(reply.body["templates"][0]["data"]["openstack"], "");
    let reply = api.get(&path, "bob").await;
    assert!(
        reply.body["templates"][0]["data"]["openstack"]
            .as_str()
            .unwrap()
            .contains("local-exec")
    );
}

async fn applications_check_their_references_and_compute_images(engine: Engine) {
    let api = Api::start_with(engine, |config| {
        config.acl.allow_user_create_ns = true;
        config.default_image = "debian".into();
    })
    .await;
    let (ns, other) = setup(&api).await;
    let recipe = |name: &str, base: Value| json!({"name": name, "base": base});
    let r1 = api
        .create(&ns, "recipe", "bob", recipe("r1", json!(["ubuntu", "debian"])))
        .await;
    let r2 = api
        .create(
            &ns,
            "recipe",
            "bob",
            recipe("r2", json!(["centos", "debian", "ubuntu"])),
        )
        .await;
    let r3 = api
        .create(&ns, "recipe", "bob", json!({"name": "r3", "parent": r1}))
        .await;
    let r4 = api.create(&ns, "recipe", "bob", recipe("r4", json!(["centos"]))).await;
    let orphan = api.create(&ns, "recipe", "bob", json!({"name": "orphan"})).await;
    let private_elsewhere = api
        .create(&other, "recipe", "olga", recipe("p", json!(["debian"])))
        .await;
    let template = api
        .create(
            &ns,
            "template",
            "bob",
            json!({"name": "t", "data": {"openstack": TF}, "varrecipes": ["master", "workers"]}),
        )
        .await;
    let private_template = api.create(&other, "template", "olga", template_body("pt", false)).await;
    let path = format!("/deploy/ns/{ns}/app");
    let app = |recipes: Value| json!({"name": "app", "template": template, "templaterecipes": recipes});

    let before = api.snapshot().await;
    for (body, field) in [
        // B-7: a missing template is a 400, not a 500.
        (json!({"name": "app"}), "template"),
        (json!({"name": "app", "template": "nope"}), "template"),
        // S-4: another namespace's private template is not usable.
        (app_body("app", false, &private_template, &r1), "template"),
        (app(json!({"master": [r1]})), "templaterecipes"),
        (
            app(json!({"master": [r1], "workers": [], "extra": []})),
            "templaterecipes",
        ),
        (app(json!({"master": ["nope"], "workers": []})), "templaterecipes"),
        (
            app(json!({"master": [private_elsewhere], "workers": []})),
            "templaterecipes",
        ),
        (app(json!({"master": [orphan], "workers": []})), "templaterecipes"),
        (app(json!({"master": [r1], "workers": [r4]})), "templaterecipes"),
        (
            json!({"name": "app", "template": template, "templaterecipes": {"master": [], "workers": []}, "defaults": {"master": ["x"]}}),
            "defaults",
        ),
    ] {
        let reply = api.post(&path, "bob", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        assert!(reply.message().starts_with(field), "{body}: {reply:?}");
    }
    let reply = api
        .post(&path, "bob", app(json!({"master": [r1], "workers": [r4]})))
        .await;
    assert!(
        reply.message().contains("'r1' (ubuntu, debian)") && reply.message().contains("'r4' (centos)"),
        "{reply:?}"
    );
    assert_eq!(api.snapshot().await, before);

    // B-5: the intersection, in the first recipe's order, through parents (r3 → r1).
    let id = api
        .create(
            &ns,
            "app",
            "bob",
            json!({"name": "app", "template": template, "image": ["chosen"],
            "templaterecipes": {"master": [r3], "workers": [r2, r1]}}),
        )
        .await;
    let item = format!("{path}/{id}");
    assert_eq!(
        api.get(&item, "bob").await.body["app"]["image"],
        json!(["ubuntu", "debian"])
    );
    // S-5: updates are validated again; `image` stays the server's; B-4: the answer is the
    // object after the change.
    let reply = api
        .put(
            &item,
            "bob",
            json!({"image": ["chosen"], "templaterecipes": {"master": [r2], "workers": []}}),
        )
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body["app"]["image"], json!(["centos", "debian", "ubuntu"]));
    assert_eq!(reply.body["app"]["templaterecipes"]["master"], json!([r2]));
    let reply = api
        .put(
            &item,
            "bob",
            json!({"templaterecipes": {"master": [private_elsewhere], "workers": []}}),
        )
        .await;
    assert_eq!(reply.status, 400);
    let reply = api.put(&item, "bob", json!({"template": private_template})).await;
    assert_eq!(reply.status, 400);
    // No recipes: the configured default image.
    let reply = api
        .put(&item, "bob", json!({"templaterecipes": {"master": [], "workers": []}}))
        .await;
    assert_eq!(reply.body["app"]["image"], json!(["debian"]));
    let reply = api
        .put(
            &item,
            "bob",
            json!({"templaterecipes": {"master": [r1], "workers": [r3]}}),
        )
        .await;
    assert_eq!(reply.status, 200);

    // Used objects are not deleted; the answer names the users.
    let reply = api.delete(&format!("/deploy/ns/{ns}/recipe/{r1}"), "bob").await;
    assert_eq!(reply.status, 409);
    assert!(reply.message().contains("application 'app'"), "{reply:?}");
    let reply = api.delete(&format!("/deploy/ns/{ns}/template/{template}"), "bob").await;
    assert_eq!(reply.status, 409);
    assert!(reply.message().contains("application 'app'"), "{reply:?}");
    // Recipes no longer used can go.
    assert_eq!(
        api.delete(&format!("/deploy/ns/{ns}/recipe/{r2}"), "bob").await.status,
        200
    );
    assert_eq!(api.delete(&item, "bob").await.body, json!({"app": id}));
    assert_eq!(
        api.delete(&format!("/deploy/ns/{ns}/template/{template}"), "bob")
            .await
            .status,
        200
    );
    assert_eq!(api.get(&item, "bob").await.status, 404);
}

async fn frozen_objects_wait_for_an_admin(engine: Engine) {
    let api = Api::start(engine).await;
    let (ns, _) = setup(&api).await;
    for (kind, body) in [
        ("recipe", json!({"name": "f", "base": ["debian"], "frozen": true})),
        ("template", json!({"name": "f", "frozen": true})),
    ] {
        let id = api.create(&ns, kind, "bob", body).await;
        let item = format!("/deploy/ns/{ns}/{kind}/{id}");
        // B-21: frozen blocks changes and deletion, with 409, for members...
        let reply = api.put(&item, "bob", json!({"description": "x"})).await;
        assert_eq!(reply.status, 409);
        assert!(reply.message().contains("frozen"), "{reply:?}");
        assert_eq!(api.put(&item, "bob", json!({"frozen": false})).await.status, 409);
        assert_eq!(api.delete(&item, "bob").await.status, 409);
        // ...and admins change it only by unfreezing.
        assert_eq!(api.put(&item, "admin", json!({"description": "x"})).await.status, 409);
        let reply = api
            .put(&item, "admin", json!({"frozen": false, "description": "thawed"}))
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body[kind]["frozen"], false);
        assert_eq!(reply.body[kind]["description"], "thawed");
        // Members may freeze again.
        assert_eq!(api.put(&item, "bob", json!({"frozen": true})).await.status, 200);
    }
}

engines::engine_tests!(
    recipes_are_validated_and_server_fields_are_the_servers,
    recipe_parents_must_be_usable_and_acyclic,
    templates_are_parsed_and_policed,
    applications_check_their_references_and_compute_images,
    frozen_objects_wait_for_an_admin,
);
