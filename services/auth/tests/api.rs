#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The auth API through a real server, on SQLite and PostgreSQL.

use goterra_core::token::fernet_key_for_secret;
use goterra_core::{Claims, Sensitive, TokenCodec, TokenScope};
use goterra_db::Engine;
use goterra_testing::db::ENGINES;
use goterra_testing::{TEST_SECRET, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN_KEY: &str = "admin-key-for-tests-0123456789";

struct Api {
    server: TestServer,
    http: reqwest::Client,
}

enum Cred<'a> {
    None,
    Key(&'a str),
    Token(&'a str),
}

impl Api {
    async fn start(engine: Engine) -> Self {
        Self::start_with(engine, false).await
    }

    async fn start_with(engine: Engine, self_register: bool) -> Self {
        let server = TestServer::start_with(engine, &[goterra_auth::spec()], |config| {
            config.admin_apikey = Some(Sensitive::new(ADMIN_KEY.into()));
            config.feature.self_register = self_register;
        })
        .await
        .unwrap();
        Self {
            server,
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: &str, path: &str, cred: Cred<'_>, body: Option<&str>) -> (StatusCode, Value) {
        let url = format!("{}{}", self.server.url, path);
        let mut request = self.http.request(method.parse().unwrap(), url);
        request = match cred {
            Cred::None => request,
            Cred::Key(key) => request.header("X-API-Key", key),
            Cred::Token(token) => request.header("Authorization", format!("Bearer {token}")),
        };
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Registers `uid` as the admin and returns its API key.
    async fn register(&self, uid: &str, password: &str) -> String {
        let body = json!({"uid": uid, "password": password, "email": format!("{uid}@example.org")}).to_string();
        let (status, answer) = self
            .call("POST", "/auth/register", Cred::Key(ADMIN_KEY), Some(&body))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["apikey"].as_str().unwrap().to_string()
    }

    async fn token_of(&self, key: &str) -> String {
        let (status, answer) = self.call("GET", "/auth/api", Cred::Key(key), None).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["token"].as_str().unwrap().to_string()
    }

    fn claims(&self, token: &str) -> Claims {
        self.server.platform.tokens.verify(token).unwrap()
    }
}

fn assert_no_secrets(value: &Value) {
    let text = value.to_string();
    assert!(!text.contains("argon2"), "password hash leaked: {text}");
    assert!(
        !text.contains("password_hash") && !text.contains("apikey_hash"),
        "{text}"
    );
}

#[tokio::test]
async fn api_key_login_and_me() {
    for engine in ENGINES {
        let api = Api::start(engine).await;
        let (status, answer) = api.call("GET", "/auth/api", Cred::Key(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["user"]["uid"], "admin");
        assert_eq!(answer["user"]["admin"], true);
        assert!(answer["user"].get("apikey").is_none());
        let token = answer["token"].as_str().unwrap();
        assert_eq!(api.claims(token).scope(), TokenScope::User);

        // The original deploy called `//auth/me` with `Bearer Bearer <token>`.
        let (status, me) = api
            .call("GET", "//auth/me", Cred::Token(&format!("Bearer {token}")), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["uid"], "admin");
        let (status, _) = api.call("GET", "/auth/me", Cred::None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = api
            .call("GET", "/auth/api", Cred::Key("wrong-key-0123456789"), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn health_answers() {
    let api = Api::start(Engine::Sqlite).await;
    let (status, answer) = api.call("GET", "/auth", Cred::None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["message"], "ok");
    assert!(answer["version"].is_string());
}

#[tokio::test]
async fn password_login_gives_the_same_answer_for_unknown_users_and_wrong_passwords() {
    for engine in ENGINES {
        let api = Api::start(engine).await;
        api.register("bob", "bob-password").await;
        let (status, answer) = api
            .call(
                "POST",
                "/auth/login",
                Cred::None,
                Some(r#"{"uid":"bob","password":"bob-password"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["user"]["uid"], "bob");
        assert_eq!(api.claims(answer["token"].as_str().unwrap()).uid, "bob");
        assert_no_secrets(&answer);

        let (wrong_status, wrong) = api
            .call(
                "POST",
                "/auth/login",
                Cred::None,
                Some(r#"{"uid":"bob","password":"nope-nope"}"#),
            )
            .await;
        let (unknown_status, unknown) = api
            .call(
                "POST",
                "/auth/login",
                Cred::None,
                Some(r#"{"uid":"nobody","password":"nope-nope"}"#),
            )
            .await;
        assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
        assert_eq!(unknown_status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong, unknown);
        // The bootstrap admin has no password: it cannot log in with one.
        let (status, _) = api
            .call(
                "POST",
                "/auth/login",
                Cred::None,
                Some(r#"{"uid":"admin","password":""}"#),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn duplicate_registration_is_refused_and_changes_nothing() {
    for engine in ENGINES {
        let api = Api::start(engine).await;
        let first_key = api.register("carol", "carol-password").await;
        let body = r#"{"uid":"carol","password":"attacker-password"}"#;
        let (status, answer) = api
            .call("POST", "/auth/register", Cred::Key(ADMIN_KEY), Some(body))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{answer}");
        assert!(answer.get("apikey").is_none());
        // The victim's key and password still work; the attacker's password does not.
        assert_eq!(api.claims(&api.token_of(&first_key).await).uid, "carol");
        let (status, _) = api
            .call(
                "POST",
                "/auth/login",
                Cred::None,
                Some(r#"{"uid":"carol","password":"attacker-password"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (_, users) = api.call("GET", "/auth/user", Cred::Key(ADMIN_KEY), None).await;
        let carols = users["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["uid"] == "carol")
            .count();
        assert_eq!(carols, 1);
    }
}

#[tokio::test]
async fn registration_rules() {
    for engine in ENGINES {
        let closed = Api::start(engine).await;
        let body = r#"{"uid":"eve","password":"eve-password"}"#;
        let (status, _) = closed.call("POST", "/auth/register", Cred::None, Some(body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let bob_key = closed.register("bob", "bob-password").await;
        let (status, _) = closed
            .call("POST", "/auth/register", Cred::Key(&bob_key), Some(body))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a non-admin cannot register users");

        let open = Api::start_with(engine, true).await;
        let (status, answer) = open.call("POST", "/auth/register", Cred::None, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let eve_key = answer["apikey"].as_str().unwrap();
        let (_, eve) = open.call("GET", "/auth/me", Cred::Key(eve_key), None).await;
        assert_eq!(eve["admin"], false);
        assert_eq!(eve["super"], false);
        for sneaky in [
            r#"{"uid":"mallory","password":"mallory-pass","admin":true}"#,
            r#"{"uid":"mallory","password":"mallory-pass","super":true}"#,
            r#"{"uid":"mallory","password":"mallory-pass","kind":"google"}"#,
        ] {
            let (status, _) = open.call("POST", "/auth/register", Cred::None, Some(sneaky)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{sneaky}");
        }
        let (status, _) = open.call("GET", "/auth/user/mallory", Cred::Key(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "refused registrations write nothing");

        // Admins may create admins.
        let (status, answer) = open
            .call(
                "POST",
                "/auth/register",
                Cred::Key(ADMIN_KEY),
                Some(r#"{"uid":"root2","password":"root2-password","admin":true}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, root2) = open
            .call("GET", "/auth/me", Cred::Key(answer["apikey"].as_str().unwrap()), None)
            .await;
        assert_eq!(root2["admin"], true);
    }
}

#[tokio::test]
async fn bad_input_is_a_400_and_writes_nothing() {
    for engine in ENGINES {
        let api = Api::start(engine).await;
        for (path, body) in [
            ("/auth/register", "{not json"),
            ("/auth/register", ""),
            ("/auth/register", r#"{"uid":"x"}"#),
            ("/auth/register", r#"{"uid":"bad uid","password":"long-enough"}"#),
            ("/auth/register", r#"{"uid":"../etc","password":"long-enough"}"#),
            ("/auth/register", r#"{"uid":"short","password":"short"}"#),
            ("/auth/register", r#"{"uid":5,"password":"long-enough"}"#),
            ("/auth/login", "[]"),
            ("/auth/login", r#"{"uid":"admin"}"#),
        ] {
            let (status, answer) = api.call("POST", path, Cred::Key(ADMIN_KEY), Some(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
            assert!(answer["message"].is_string(), "{answer}");
        }
        let (status, _) = api
            .call("GET", "/auth/user?limit=100000", Cred::Key(ADMIN_KEY), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = api.call("GET", "/auth/user?skip=-1", Cred::Key(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = api
            .call(
                "PUT",
                "/auth/user/admin",
                Cred::Key(ADMIN_KEY),
                Some(r#"{"admin":"yes"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (_, users) = api.call("GET", "/auth/user", Cred::Key(ADMIN_KEY), None).await;
        assert_eq!(users["users"].as_array().unwrap().len(), 1, "only the admin exists");
    }
}

#[tokio::test]
async fn users_cannot_list_or_promote_themselves_and_updates_are_patches() {
    for engine in ENGINES {
        let api = Api::start(engine).await;
        let bob_key = api.register("bob", "bob-password").await;
        api.register("dave", "dave-password").await;
        let (status, _) = api.call("GET", "/auth/user", Cred::Key(&bob_key), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api.call("GET", "/auth/user/dave", Cred::Key(&bob_key), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api
            .call("PUT", "/auth/user/bob", Cred::Key(&bob_key), Some(r#"{"admin":true}"#))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api
            .call("PUT", "/auth/user/bob", Cred::Key(&bob_key), Some(r#"{"super":true}"#))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = api
            .call(
                "PUT",
                "/auth/user/dave",
                Cred::Key(&bob_key),
                Some(r#"{"email":"x@y"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // Patch semantics: the UI sends the whole object back; omitted fields stay.
        let (status, answer) = api
            .call(
                "PUT",
                "/auth/user/bob",
                Cred::Key(&bob_key),
                Some(r#"{"pub_key":"ssh-ed25519 AAAA bob","admin":false}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["user"]["pub_key"], "ssh-ed25519 AAAA bob");
        assert_eq!(answer["user"]["email"], "bob@example.org", "omitted email unchanged");
        let (status, answer) = api
            .call("PUT", "/auth/user/bob", Cred::Key(ADMIN_KEY), Some(r#"{"admin":true}"#))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["user"]["admin"], true);
        assert_eq!(answer["user"]["pub_key"], "ssh-ed25519 AAAA bob");
        let (status, _) = api
            .call("PUT", "/auth/user/nobody", Cred::Key(ADMIN_KEY), Some("{}"))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, users) = api.call("GET", "/auth/user", Cred::Key(ADMIN_KEY), None).await;
        assert_no_secrets(&users);
    }
}

#[tokio::test]
async fn a_renewed_token_reflects_a_demotion_and_a_deletion() {
    for engine in ENGINES {
        let api = Api::start(engine).await;
        let bob_key = api.register("bob", "bob-password").await;
        api.call("PUT", "/auth/user/bob", Cred::Key(ADMIN_KEY), Some(r#"{"admin":true}"#))
            .await;
        let admin_token = api.token_of(&bob_key).await;
        assert!(api.claims(&admin_token).admin);

        api.call(
            "PUT",
            "/auth/user/bob",
            Cred::Key(ADMIN_KEY),
            Some(r#"{"admin":false}"#),
        )
        .await;
        let (status, answer) = api.call("GET", "/auth/token", Cred::Token(&admin_token), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            !api.claims(answer["token"].as_str().unwrap()).admin,
            "renewal re-reads the user"
        );
        // The stale admin token no longer opens admin routes of auth either.
        let (status, _) = api.call("GET", "/auth/user", Cred::Token(&admin_token), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        let (status, _) = api.call("DELETE", "/auth/user/bob", Cred::Key(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = api.call("GET", "/auth/token", Cred::Token(&admin_token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = api.call("GET", "/auth/api", Cred::Key(&bob_key), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = api.call("DELETE", "/auth/user/admin", Cred::Key(ADMIN_KEY), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "the last admin stays");
    }
}

#[tokio::test]
async fn tokens_in_the_original_format_are_accepted_and_bad_ones_refused() {
    let api = Api::start(Engine::Sqlite).await;
    api.register("test", "test-password").await;
    // A payload as the original auth wrote it: no scope, secrets included.
    let original = json!({"logged": true, "uid": "test", "apikey": "OLDKEY", "password": "$2a$10$x",
        "admin": false, "super": false, "email": "test@example.org", "kind": "", "pub_key": ""});
    let key = fernet::Fernet::new(fernet_key_for_secret(TEST_SECRET).expose()).unwrap();
    let token = key.encrypt(original.to_string().as_bytes());
    let (status, me) = api.call("GET", "/auth/me", Cred::Token(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["uid"], "test");
    // A raw token without the scheme, as old clients send it.
    let response = api
        .http
        .get(format!("{}/auth/me", api.server.url))
        .header("Authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let other = TokenCodec::new(&[Sensitive::new("another-secret-0123456789".into())], 24).unwrap();
    let forged = other.issue(&Claims::for_user(&api.claims(&token).identity()));
    let (status, _) = api.call("GET", "/auth/me", Cred::Token(&forged), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "wrong secret");

    let now = goterra_core::token::unix_now();
    let expired = api
        .server
        .platform
        .tokens
        .issue_at(&api.claims(&token), now - 25 * 3600);
    let (status, answer) = api.call("GET", "/auth/me", Cred::Token(&expired), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(answer["message"].as_str().unwrap().contains("expired"));

    let store = api
        .server
        .platform
        .tokens
        .issue(&Claims::for_store("test", "dep1", now + 3600));
    let (status, _) = api.call("GET", "/auth/me", Cred::Token(&store), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "store tokens are not user tokens");
    let (status, _) = api.call("GET", "/auth/api", Cred::Token(&store), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_keys_are_replaced_and_passwords_changed_safely() {
    for engine in ENGINES {
        let api = Api::start(engine).await;
        let old_key = api.register("bob", "bob-password").await;
        let (status, answer) = api
            .call("POST", "/auth/user/bob/apikey", Cred::Key(&old_key), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let new_key = answer["apikey"].as_str().unwrap();
        assert_ne!(new_key, old_key);
        let (status, _) = api.call("GET", "/auth/api", Cred::Key(&old_key), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the old key stops working");
        api.token_of(new_key).await;

        let change = |body: &'static str| api.call("PUT", "/auth/user/bob/password", Cred::Key(new_key), Some(body));
        let (status, _) = change(r#"{"password":"new-password"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "current password required");
        let (status, _) = change(r#"{"password":"new-password","current_password":"wrong-password"}"#).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = change(r#"{"password":"tiny","current_password":"bob-password"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, answer) = change(r#"{"password":"new-password","current_password":"bob-password"}"#).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_no_secrets(&answer);
        let (status, _) = api
            .call(
                "POST",
                "/auth/login",
                Cred::None,
                Some(r#"{"uid":"bob","password":"new-password"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // An admin resets without the current password.
        let (status, _) = api
            .call(
                "PUT",
                "/auth/user/bob/password",
                Cred::Key(ADMIN_KEY),
                Some(r#"{"password":"reset-password"}"#),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn user_events_are_published_without_secrets() {
    let api = Api::start(Engine::Sqlite).await;
    let mut events = api.server.events.subscribe();
    api.register("bob", "bob-password").await;
    api.call(
        "PUT",
        "/auth/user/bob",
        Cred::Key(ADMIN_KEY),
        Some(r#"{"email":"b@example.org"}"#),
    )
    .await;
    api.call("DELETE", "/auth/user/bob", Cred::Key(ADMIN_KEY), None).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = events.recv().await.unwrap();
        assert_eq!(event.uid, "bob");
        assert!(
            !event.data.contains("argon2") && !event.data.contains("apikey"),
            "{}",
            event.data
        );
        seen.push(event.action);
    }
    assert_eq!(seen, ["user_create", "user_update", "user_delete"]);
}

#[tokio::test]
async fn generated_admin_key_is_saved_privately_once() {
    let server = TestServer::start(Engine::Sqlite, &[goterra_auth::spec()])
        .await
        .unwrap();
    let path = server.data_dir.path().join("admin.apikey");
    let key = std::fs::read_to_string(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let response = reqwest::Client::new()
        .get(format!("{}/auth/api", server.url))
        .header("X-API-Key", key.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn openapi_document_is_served_and_checked_in() {
    let api = Api::start(Engine::Sqlite).await;
    let (status, served) = api.call("GET", "/auth/openapi.json", Cred::None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(served["paths"]["/auth/login"].is_object());
    goterra_testing::assert_openapi_current("auth", &goterra_auth::openapi::document());
}
