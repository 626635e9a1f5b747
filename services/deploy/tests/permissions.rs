//! The permission matrix: for owner, member, admin, a logged-in outsider and an anonymous
//! caller, every catalogue route on private and public objects of two namespaces, each with the
//! expected status. The table below *is* the policy; `docs/deploy.md` shows the same.
//!
//! Namespace A: owner `owner`, member `member`, holds one private and one public object of each
//! kind. Namespace B: owner `outsider` (a logged user who is not in A). `admin` is in neither.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

mod common;

use common::{Api, app_body, endpoint_body, recipe_body, template_body};
use goterra_db::Engine;
use reqwest::Method;
use serde_json::{Value, json};

const ROLES: [Option<&str>; 5] = [Some("owner"), Some("member"), Some("admin"), Some("outsider"), None];
const ROLE_NAMES: [&str; 5] = ["owner", "member", "admin", "outsider", "anonymous"];

/// What a row acts on when it must not be shared between roles (deletes).
#[derive(Clone, Copy)]
enum Fresh {
    None,
    /// A new namespace owned by `owner` with member `member`, as `{fresh}`.
    Namespace,
    /// A new object of this kind in A, as `{fresh}`.
    Object(&'static str, bool),
}

struct Row {
    method: Method,
    path: String,
    body: Option<Value>,
    fresh: Fresh,
    /// Expected status for owner, member, admin, outsider, anonymous.
    expect: [u16; 5],
}

fn row(method: Method, path: String, body: Option<Value>, expect: [u16; 5]) -> Row {
    Row {
        method,
        path,
        body,
        fresh: Fresh::None,
        expect,
    }
}

struct Fixture {
    a: String,
    b: String,
    /// kind → (private id, public id) in A.
    objects: Vec<(&'static str, String, String)>,
    public_template: String,
    public_recipe: String,
    private_template: String,
}

impl Fixture {
    fn id(&self, kind: &str, public: bool) -> &str {
        let (_, private, public_id) = self.objects.iter().find(|(k, _, _)| *k == kind).unwrap();
        if public { public_id } else { private }
    }
}

async fn fixture(api: &Api) -> Fixture {
    let a = api.namespace("owner", "ns-a", &["member"]).await;
    let b = api.namespace("outsider", "ns-b", &[]).await;
    let recipe_private = api.create(&a, "recipe", "owner", recipe_body("r-private", false)).await;
    let recipe_public = api.create(&a, "recipe", "owner", recipe_body("r-public", true)).await;
    let template_private = api
        .create(&a, "template", "owner", template_body("t-private", false))
        .await;
    let template_public = api
        .create(&a, "template", "owner", template_body("t-public", true))
        .await;
    let app_private = api
        .create(
            &a,
            "app",
            "owner",
            app_body("a-private", false, &template_private, &recipe_private),
        )
        .await;
    let app_public = api
        .create(
            &a,
            "app",
            "owner",
            app_body("a-public", true, &template_public, &recipe_public),
        )
        .await;
    let endpoint_private = api
        .create(&a, "endpoint", "owner", endpoint_body("e-private", false))
        .await;
    let endpoint_public = api
        .create(&a, "endpoint", "owner", endpoint_body("e-public", true))
        .await;
    Fixture {
        objects: vec![
            ("recipe", recipe_private, recipe_public.clone()),
            ("template", template_private.clone(), template_public.clone()),
            ("app", app_private, app_public),
            ("endpoint", endpoint_private, endpoint_public),
        ],
        a,
        b,
        public_template: template_public,
        public_recipe: recipe_public,
        private_template: template_private,
    }
}

fn plural(kind: &str) -> &'static str {
    match kind {
        "recipe" => "recipes",
        "template" => "templates",
        "app" => "apps",
        _ => "endpoints",
    }
}

/// The policy.
fn matrix(f: &Fixture) -> Vec<Row> {
    let (a, b) = (&f.a, &f.b);
    let mut rows = vec![
        // Namespaces: members read, owners manage, admins do everything.
        row(Method::GET, "/deploy/ns".into(), None, [200, 200, 200, 200, 401]),
        row(
            Method::POST,
            "/deploy/ns".into(),
            Some(json!({"name": "{unique}"})),
            [201, 201, 201, 201, 401],
        ),
        row(Method::GET, format!("/deploy/ns/{a}"), None, [200, 200, 200, 403, 401]),
        row(
            Method::PUT,
            format!("/deploy/ns/{a}"),
            Some(json!({"members": ["member"]})),
            [200, 403, 200, 403, 401],
        ),
        row(
            Method::PUT,
            format!("/deploy/ns/{a}"),
            Some(json!({"freeze": true})),
            [403, 403, 200, 403, 401],
        ),
        row(
            Method::PUT,
            format!("/deploy/ns/{a}"),
            Some(json!({"freeze": false})),
            [403, 403, 200, 403, 401],
        ),
        Row {
            fresh: Fresh::Namespace,
            ..row(
                Method::DELETE,
                "/deploy/ns/{fresh}".into(),
                None,
                [200, 403, 200, 403, 401],
            )
        },
    ];
    for kind in ["recipe", "template", "app", "endpoint"] {
        let body = match kind {
            "recipe" => recipe_body("{unique}", false),
            "template" => template_body("{unique}", false),
            "app" => app_body("{unique}", false, &f.public_template, &f.public_recipe),
            _ => endpoint_body("{unique}", false),
        };
        rows.push(row(
            Method::GET,
            format!("/deploy/ns/{a}/{kind}"),
            None,
            [200, 200, 200, 403, 401],
        ));
        rows.push(row(
            Method::POST,
            format!("/deploy/ns/{a}/{kind}"),
            Some(body),
            [201, 201, 201, 403, 401],
        ));
        rows.push(row(
            Method::GET,
            format!("/deploy/{}", plural(kind)),
            None,
            [200, 200, 200, 200, 401],
        ));
        for public in [false, true] {
            let id = f.id(kind, public);
            let read = if public {
                [200, 200, 200, 200, 401]
            } else {
                [200, 200, 200, 403, 401]
            };
            rows.push(row(Method::GET, format!("/deploy/ns/{a}/{kind}/{id}"), None, read));
            // Public means readable and usable, never writable by outsiders.
            rows.push(row(
                Method::PUT,
                format!("/deploy/ns/{a}/{kind}/{id}"),
                Some(json!({"description": "changed"})),
                [200, 200, 200, 403, 401],
            ));
            // Under another namespace's URL a public object is readable (the original UI reads the
            // catalogue under the user's namespace); a private one does not exist, for everyone.
            rows.push(row(
                Method::GET,
                format!("/deploy/ns/{b}/{kind}/{id}"),
                None,
                if public {
                    [200, 200, 200, 200, 401]
                } else {
                    [404, 404, 404, 404, 401]
                },
            ));
            // Writes happen under the object's own namespace only.
            rows.push(row(
                Method::PUT,
                format!("/deploy/ns/{b}/{kind}/{id}"),
                Some(json!({"description": "x"})),
                [404, 404, 404, 404, 401],
            ));
            rows.push(row(
                Method::DELETE,
                format!("/deploy/ns/{b}/{kind}/{id}"),
                None,
                [404, 404, 404, 404, 401],
            ));
            rows.push(Row {
                fresh: Fresh::Object(kind, public),
                ..row(
                    Method::DELETE,
                    format!("/deploy/ns/{a}/{kind}/{{fresh}}"),
                    None,
                    [200, 200, 200, 403, 401],
                )
            });
        }
    }
    for public in [false, true] {
        let endpoint = f.id("endpoint", public);
        let usable = if public {
            [200, 200, 200, 200, 401]
        } else {
            [200, 200, 200, 403, 401]
        };
        let secret = format!("/deploy/ns/{a}/endpoint/{endpoint}/secret");
        rows.push(row(
            Method::GET,
            secret.clone(),
            None,
            if public {
                [404, 404, 404, 404, 401]
            } else {
                [404, 404, 404, 403, 401]
            },
        ));
        rows.push(row(
            Method::PUT,
            secret.clone(),
            Some(json!({"name": "cloud-user", "password": "pw"})),
            usable,
        ));
        rows.push(row(Method::GET, secret.clone(), None, usable));
        rows.push(row(Method::DELETE, secret, None, usable));
        // Defaults belong to (user, endpoint, namespace deployed from): members of that namespace.
        let defaults = format!("/deploy/ns/{a}/endpoint/{endpoint}/defaults");
        rows.push(row(Method::GET, defaults.clone(), None, [404, 404, 404, 403, 401]));
        rows.push(row(
            Method::PUT,
            defaults.clone(),
            Some(json!({"defaults": {"flavor": ["small"]}})),
            [200, 200, 200, 403, 401],
        ));
        rows.push(row(Method::GET, defaults, None, [200, 200, 200, 403, 401]));
        let app = f.id("app", public);
        rows.push(row(
            Method::GET,
            format!("/deploy/ns/{a}/app/{app}/inputs"),
            None,
            if public {
                [200, 200, 200, 200, 401]
            } else {
                [200, 200, 200, 403, 401]
            },
        ));
    }
    // A public endpoint is usable from another namespace, where the caller keeps defaults.
    let public_endpoint = f.id("endpoint", true);
    rows.push(row(
        Method::PUT,
        format!("/deploy/ns/{b}/endpoint/{public_endpoint}/defaults"),
        Some(json!({"defaults": {"flavor": ["big"]}})),
        [403, 403, 200, 200, 401],
    ));
    // Public templates and recipes are usable from any namespace, private ones only from their own
    // (even by an admin: the application would not be runnable from B).
    rows.push(row(
        Method::POST,
        format!("/deploy/ns/{b}/app"),
        Some(app_body("{unique}", false, &f.public_template, &f.public_recipe)),
        [403, 403, 201, 201, 401],
    ));
    rows.push(row(
        Method::POST,
        format!("/deploy/ns/{b}/app"),
        Some(app_body("{unique}", false, &f.private_template, &f.public_recipe)),
        [403, 403, 400, 400, 401],
    ));
    rows.push(row(
        Method::POST,
        format!("/deploy/ns/{b}/recipe"),
        Some(json!({"name": "{unique}", "parent": f.id("recipe", false)})),
        [403, 403, 400, 400, 401],
    ));
    rows.push(row(
        Method::POST,
        format!("/deploy/ns/{b}/recipe"),
        Some(json!({"name": "{unique}", "parent": f.public_recipe})),
        [403, 403, 201, 201, 401],
    ));
    rows
}

fn fill(value: &Value, unique: &str) -> Value {
    serde_json::from_str(&value.to_string().replace("{unique}", unique)).unwrap()
}

async fn prepare(api: &Api, f: &Fixture, fresh: Fresh, counter: &mut u32) -> Option<String> {
    *counter += 1;
    match fresh {
        Fresh::None => None,
        Fresh::Namespace => Some(api.namespace("owner", &format!("fresh-{counter}"), &["member"]).await),
        Fresh::Object(kind, public) => {
            let name = format!("fresh-{counter}");
            let body = match kind {
                "recipe" => recipe_body(&name, public),
                "template" => template_body(&name, public),
                "app" => app_body(&name, public, &f.public_template, &f.public_recipe),
                _ => endpoint_body(&name, public),
            };
            Some(api.create(&f.a, kind, "admin", body).await)
        }
    }
}

async fn permission_matrix(engine: Engine) {
    let api = Api::start(engine).await;
    let f = fixture(&api).await;
    let mut failures = Vec::new();
    let mut counter = 0;
    for row in matrix(&f) {
        for (role, (user, expected)) in ROLE_NAMES.iter().zip(ROLES.iter().zip(row.expect)) {
            let fresh = prepare(&api, &f, row.fresh, &mut counter).await;
            let path = match &fresh {
                Some(id) => row.path.replace("{fresh}", id),
                None => row.path.clone(),
            };
            let body = row.body.as_ref().map(|body| fill(body, &format!("u-{counter}")));
            let reply = api.call(row.method.clone(), &path, *user, body).await;
            if reply.status != expected {
                failures.push(format!(
                    "{engine:?} {role:9} {} {path}: expected {expected}, got {} {}",
                    row.method, reply.status, reply.text
                ));
            }
            assert!(reply.status < 500, "{role} {} {path}: {}", row.method, reply.text);
        }
    }
    assert!(
        failures.is_empty(),
        "permission matrix mismatches:\n{}",
        failures.join("\n")
    );
}

engines::engine_tests!(permission_matrix,);
