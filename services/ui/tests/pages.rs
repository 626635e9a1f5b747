#![allow(clippy::unwrap_used, clippy::expect_used)]
//! HTTP-level tests of the UI: every page's status and key content, sessions, CSRF, access
//! rules and escaping, against the real services on SQLite.

mod common;

use common::{ADMIN_KEY, SeedRun, Web, create_namespace, create_user, platform, seed_runs};
use goterra_core::Sensitive;
use goterra_ui::session::{SESSION_COOKIE, Session, SessionCodec};
use reqwest::StatusCode;

const ALICE_PASSWORD: &str = "alice-password-1";

#[tokio::test]
async fn config_answers_the_original_keys_and_root_redirects() {
    let server = platform(false).await;
    let mut web = Web::new(&server);
    let config = web.get("/app/config").await;
    assert_eq!(config.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&config.body).unwrap();
    assert_eq!(json["url"], server.url.as_str());
    assert_eq!(json["acl_user_createns"], false);
    assert_eq!(json["oidc_google"], false);
    assert_eq!(json["oidc_aai"], false);

    let root = web.get("/").await;
    assert!(root.status.is_redirection());
    assert_eq!(root.location.as_deref(), Some("/app"));
    let app = web.get("/app").await;
    assert_eq!(app.location.as_deref(), Some("/app/login"));
    let list = web.get("/app/ns").await;
    assert_eq!(list.status, StatusCode::SEE_OTHER);
    assert_eq!(list.location.as_deref(), Some("/app/login"));
}

#[tokio::test]
async fn a_bad_password_shows_an_error_and_a_good_one_signs_in_and_out() {
    let server = platform(false).await;
    create_user(&server, "alice", ALICE_PASSWORD).await;
    let mut web = Web::new(&server);

    let refused = web.sign_in("alice", "wrong-password").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    refused.assert_contains("Wrong user id or password.");
    assert!(!web.cookies.contains_key(SESSION_COOKIE));

    let signed_in = web.sign_in("alice", ALICE_PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/app/ns"));
    let namespaces = web.get("/app/ns").await;
    assert_eq!(namespaces.status, StatusCode::OK);
    namespaces.assert_contains("Namespaces");
    namespaces.assert_contains("alice");
    assert_eq!(namespaces.cache_control, "no-store");

    let out = web.submit("/app/ns", "/app/logout", &[]).await;
    assert_eq!(out.location.as_deref(), Some("/app/login"));
    assert!(!web.cookies.contains_key(SESSION_COOKIE));
    web.get("/app/login").await.assert_contains("You are signed out.");
    assert_eq!(web.get("/app/ns").await.location.as_deref(), Some("/app/login"));
}

/// The login page's error survives the services' edge rules: its 401 reaches the browser as
/// the HTML page with the message, not rewritten into a JSON error body.
#[tokio::test]
async fn a_refused_login_is_the_login_page_with_its_message() {
    let server = platform(false).await;
    create_user(&server, "alice", ALICE_PASSWORD).await;
    let mut web = Web::new(&server);
    let refused = web.sign_in("alice", "wrong-password").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.content_type.starts_with("text/html"),
        "{}",
        refused.content_type
    );
    refused.assert_contains("<p class=\"error\"");
    refused.assert_contains("Wrong user id or password.");
    refused.assert_contains("name=\"csrf\"");
    let unknown_key = web.sign_in("", "not-a-valid-key").await;
    assert_eq!(unknown_key.status, StatusCode::UNAUTHORIZED);
    assert!(unknown_key.content_type.starts_with("text/html"));
    unknown_key.assert_contains("This API key is not valid.");
    // Other error pages stay pages too.
    web.sign_in("alice", ALICE_PASSWORD).await;
    let missing = web.get("/app/ns/000000000000000000000000").await;
    assert!(missing.status.is_client_error(), "{}", missing.status);
    assert!(
        missing.content_type.starts_with("text/html"),
        "{}",
        missing.content_type
    );
}

/// Repeated failures are throttled by auth (429 with `Retry-After`); the login page says so,
/// with the time to wait, and keeps the status.
#[tokio::test]
async fn a_throttled_login_says_when_to_try_again() {
    let server = platform(false).await;
    create_user(&server, "alice", ALICE_PASSWORD).await;
    let mut web = Web::new(&server);
    for _ in 0..goterra_auth::throttle::FREE_FAILURES_PER_UID {
        let refused = web.sign_in("alice", "wrong-password").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    }
    let throttled = web.sign_in("alice", "wrong-password").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS, "{}", throttled.body);
    assert!(throttled.content_type.starts_with("text/html"));
    throttled.assert_contains("<p class=\"error\"");
    throttled.assert_contains("Too many failed sign-ins for this user or from this address: try again in 1 second.");
    assert_eq!(throttled.retry_after.as_deref(), Some("1"));
    // While blocked, even the right password waits (and is not checked).
    let blocked = web.sign_in("alice", ALICE_PASSWORD).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS, "{}", blocked.body);
    blocked.assert_contains("try again in 1 second");
    assert!(!web.cookies.contains_key(SESSION_COOKIE));
    // Once the block is over, the right password signs in.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let signed_in = web.sign_in("alice", ALICE_PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
}

/// The UI names the browser's address when it signs a user in, so one browser's failed
/// sign-ins do not throttle every user of the UI (auth counts failures per client address).
#[tokio::test]
async fn one_browsers_failed_sign_ins_do_not_throttle_another() {
    let server = platform(false).await;
    create_user(&server, "alice", ALICE_PASSWORD).await;
    let mut guesser = Web::new(&server).at_address("198.51.100.1");
    let mut throttled = false;
    for attempt in 0..=goterra_auth::throttle::FREE_FAILURES_PER_ADDRESS {
        // Unknown uids: only the address can be throttled.
        let refused = guesser.sign_in(&format!("nobody-{attempt}"), "wrong-password").await;
        if refused.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = true;
            break;
        }
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    }
    assert!(throttled, "the guessing browser's address is throttled");
    let mut other = Web::new(&server).at_address("198.51.100.2");
    let signed_in = other.sign_in("alice", ALICE_PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    let blocked = guesser.sign_in("alice", ALICE_PASSWORD).await;
    assert_eq!(blocked.status, StatusCode::TOO_MANY_REQUESTS, "{}", blocked.body);
}

/// A new API key or password revokes the user's older tokens (the session's too): the UI
/// signs the user in again with the new credential, so the next page still works.
#[tokio::test]
async fn changing_ones_credentials_keeps_the_session() {
    let server = platform(false).await;
    create_user(&server, "alice", ALICE_PASSWORD).await;
    let mut web = Web::new(&server);
    web.sign_in("alice", ALICE_PASSWORD).await;
    let old_cookie = web.cookies[SESSION_COOKIE].clone();
    let key = web.submit("/app/profile", "/app/profile/apikey", &[]).await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.body);
    key.assert_contains("shown this once");
    assert_ne!(web.cookies[SESSION_COOKIE], old_cookie, "a new session");
    let changed = web
        .submit(
            "/app/profile",
            "/app/profile/password",
            &[
                ("current", ALICE_PASSWORD),
                ("new", "alice-password-2"),
                ("again", "alice-password-2"),
            ],
        )
        .await;
    assert_eq!(changed.location.as_deref(), Some("/app/profile"), "{}", changed.body);
    // Past the revocation's propagation (events are applied within about a second).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let profile = web.get("/app/profile").await;
    assert_eq!(profile.status, StatusCode::OK, "{:?}", profile.location);
    profile.assert_contains("Password changed.");
    // The session from before the changes is revoked.
    let mut stale = Web::new(&server);
    stale.cookies.insert(SESSION_COOKIE.into(), old_cookie);
    assert_eq!(
        stale.get("/app/profile").await.location.as_deref(),
        Some("/app/login?expired=1")
    );
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_lax_and_holds_no_api_key() {
    let server = platform(false).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut web = Web::new(&server);
    let csrf = web.get("/app/login").await.csrf();
    let response = http
        .post(format!("{}/app/login", server.url))
        .header("cookie", format!("goterra_login={}", web.cookies["goterra_login"]))
        .form(&[("csrf", csrf.as_str()), ("apikey", ADMIN_KEY)])
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(SESSION_COOKIE))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/app"));
    assert!(!cookie.contains("Secure"), "http URL: no Secure flag");
    assert!(!cookie.contains(ADMIN_KEY));
}

#[tokio::test]
async fn an_expired_session_goes_back_to_login_with_a_message() {
    let server = platform(false).await;
    let codec = SessionCodec::new(&server.platform.config, false).unwrap();
    let token = Sensitive::new(server.token_for("admin", true));
    let old = Session::new_at(token, "admin".into(), true, 1_000);
    let cookie = codec.start(&old);
    let value = cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    let mut web = Web::new(&server);
    web.cookies.insert(SESSION_COOKIE.into(), value);
    let page = web.get("/app/ns").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/app/login?expired=1"));
    assert!(!web.cookies.contains_key(SESSION_COOKIE), "the dead cookie is dropped");
    web.get("/app/login?expired=1")
        .await
        .assert_contains("Your session has expired");
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let server = platform(false).await;
    let mut web = Web::new(&server);
    web.sign_in("", ADMIN_KEY).await;
    let forged = web.post("/app/ns", &[("name", "forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let wrong = web
        .post("/app/ns", &[("csrf", "not-the-token"), ("name", "forged")])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let list = web.get("/app/ns?all=1").await;
    assert!(!list.body.contains("forged"));
    // Login too needs its form's token.
    let mut other = Web::new(&server);
    let login = other.post("/app/login", &[("apikey", ADMIN_KEY)]).await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn namespaces_are_created_and_managed_through_forms() {
    let server = platform(false).await;
    create_user(&server, "bob", "bob-password-1").await;
    let mut web = Web::new(&server);
    web.sign_in("", ADMIN_KEY).await;
    let created = web.submit("/app/ns", "/app/ns", &[("name", "team")]).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let dashboard_path = created.location.unwrap();
    let dashboard = web.get(&dashboard_path).await;
    assert_eq!(dashboard.status, StatusCode::OK);
    dashboard.assert_contains("Namespace created.");
    dashboard.assert_contains("Namespace team");
    dashboard.assert_contains("No application yet.");
    dashboard.assert_contains("No accounting data yet.");

    let added = web
        .submit(
            &dashboard_path,
            &format!("{dashboard_path}/people"),
            &[("action", "add"), ("role", "member"), ("uid", "bob")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    web.get(&dashboard_path).await.assert_contains("member bob added.");

    let frozen = web
        .submit(&dashboard_path, &format!("{dashboard_path}/freeze"), &[("freeze", "1")])
        .await;
    assert_eq!(frozen.status, StatusCode::SEE_OTHER);
    web.get(&dashboard_path).await.assert_contains("Unfreeze");

    let duplicate = web.submit("/app/ns", "/app/ns", &[("name", "team")]).await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    duplicate.assert_contains("class=\"error\"");

    let deleted = web
        .submit(&dashboard_path, &format!("{dashboard_path}/delete"), &[])
        .await;
    assert_eq!(deleted.location.as_deref(), Some("/app/ns"));
    assert_eq!(web.get(&dashboard_path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_plain_user_sees_neither_other_namespaces_nor_admin_pages() {
    let server = platform(false).await;
    create_user(&server, "alice", ALICE_PASSWORD).await;
    let mut admin = Web::new(&server);
    admin.sign_in("", ADMIN_KEY).await;
    let created = admin.submit("/app/ns", "/app/ns", &[("name", "secret-team")]).await;
    let dashboard = created.location.unwrap();

    let mut alice = Web::new(&server);
    alice.sign_in("alice", ALICE_PASSWORD).await;
    let list = alice.get("/app/ns?all=1").await;
    assert!(!list.body.contains("secret-team"));
    assert!(!list.body.contains("/app/users"), "no admin link for a plain user");
    assert_eq!(alice.get(&dashboard).await.status, StatusCode::FORBIDDEN);
    assert_eq!(alice.get("/app/users").await.status, StatusCode::FORBIDDEN);
    assert_eq!(alice.get("/app/users/admin").await.status, StatusCode::FORBIDDEN);
    assert_eq!(alice.get("/app/usage").await.status, StatusCode::FORBIDDEN);
    let promote = alice
        .submit("/app/profile", "/app/users/alice", &[("admin", "1")])
        .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn values_are_escaped_everywhere() {
    let server = platform(false).await;
    let mut web = Web::new(&server);
    web.sign_in("", ADMIN_KEY).await;
    let dashboard = web
        .submit("/app/ns", "/app/ns", &[("name", "escape")])
        .await
        .location
        .unwrap();
    let script = "<script>alert('x')</script>";
    let created = web
        .submit(
            &format!("{dashboard}/endpoint/new"),
            &format!("{dashboard}/endpoint"),
            &[
                ("name", "cloud"),
                ("description", script),
                ("kind", "local"),
                ("config", &format!("region = {script}")),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let view = web.get(&created.location.unwrap()).await;
    assert_eq!(view.status, StatusCode::OK);
    assert!(!view.body.contains(script), "raw script in the page");
    view.assert_contains("&lt;script&gt;alert('x')&lt;/script&gt;");
}

#[tokio::test]
async fn catalogue_objects_are_created_viewed_edited_and_deleted() {
    let server = platform(false).await;
    let mut web = Web::new(&server);
    web.sign_in("", ADMIN_KEY).await;
    let ns = web
        .submit("/app/ns", "/app/ns", &[("name", "cat")])
        .await
        .location
        .unwrap();

    let bad = web
        .submit(
            &format!("{ns}/recipe/new"),
            &format!("{ns}/recipe"),
            &[("name", "r1"), ("inputs", "no equals sign")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    bad.assert_contains("inputs, line 1");
    bad.assert_contains("value=\"r1\"");

    let created = web
        .submit(
            &format!("{ns}/recipe/new"),
            &format!("{ns}/recipe"),
            &[
                ("name", "r1"),
                ("version", "1.0"),
                ("base", "debian"),
                ("script", "#!/bin/bash\r\necho hi\r\n"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let recipe = created.location.unwrap();
    let view = web.get(&recipe).await;
    view.assert_contains("Recipe created.");
    view.assert_contains("echo hi");
    let edit = web.get(&format!("{recipe}/edit")).await;
    edit.assert_contains("value=\"1.0\"");
    let saved = web
        .submit(
            &format!("{recipe}/edit"),
            &recipe,
            &[
                ("name", "r1"),
                ("version", "2.0"),
                ("base", "debian"),
                ("script", "echo bye"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let view = web.get(&recipe).await;
    view.assert_contains("2.0");
    view.assert_contains("echo bye");
    web.get(&format!("{ns}/recipe")).await.assert_contains(">r1<");

    let template = web
        .submit(
            &format!("{ns}/template/new"),
            &format!("{ns}/template"),
            &[
                ("name", "t1"),
                ("varrecipes", "main"),
                ("newkind", "local"),
                ("newdata", "resource \"null_resource\" \"vm\" {}"),
            ],
        )
        .await;
    assert_eq!(template.status, StatusCode::SEE_OTHER, "{}", template.body);
    let template_id = template.location.unwrap().rsplit('/').next().unwrap().to_string();
    let pick = web.get(&format!("{ns}/app/new")).await;
    pick.assert_contains("Next: choose recipes");
    let form = web.get(&format!("{ns}/app/new?template={template_id}")).await;
    form.assert_contains("recipes.main");
    let recipe_id = recipe.rsplit('/').next().unwrap();
    let app = web
        .submit(
            &format!("{ns}/app/new?template={template_id}"),
            &format!("{ns}/app"),
            &[("name", "a1"), ("template", &template_id), ("recipes.main", recipe_id)],
        )
        .await;
    assert_eq!(app.status, StatusCode::SEE_OTHER, "{}", app.body);
    let app_view = web.get(&app.location.unwrap()).await;
    app_view.assert_contains(recipe_id);
    app_view.assert_contains("Run");

    let deleted = web.submit(&recipe, &format!("{recipe}/delete"), &[]).await;
    // The application uses the recipe: deploy refuses, and the page says why.
    assert!(
        deleted.status == StatusCode::SEE_OTHER || deleted.status == StatusCode::CONFLICT,
        "{}",
        deleted.status
    );
}

#[tokio::test]
async fn endpoint_credentials_are_stored_and_never_shown() {
    let server = platform(false).await;
    let mut web = Web::new(&server);
    web.sign_in("", ADMIN_KEY).await;
    let ns = web
        .submit("/app/ns", "/app/ns", &[("name", "creds")])
        .await
        .location
        .unwrap();
    let endpoint = web
        .submit(
            &format!("{ns}/endpoint/new"),
            &format!("{ns}/endpoint"),
            &[("name", "os"), ("kind", "openstack")],
        )
        .await
        .location
        .unwrap();
    let view = web.get(&endpoint).await;
    view.assert_contains("No credentials stored");
    view.assert_contains("type=\"password\"");
    let stored = web
        .submit(
            &endpoint,
            &format!("{endpoint}/secret"),
            &[("name", "cloud-user"), ("password", "hunter2-secret")],
        )
        .await;
    assert_eq!(stored.status, StatusCode::SEE_OTHER, "{}", stored.body);
    let view = web.get(&endpoint).await;
    view.assert_contains("You have stored credentials");
    assert!(!view.body.contains("hunter2-secret"));
}

#[tokio::test]
async fn profile_users_api_runs_and_usage_pages_render() {
    let server = platform(false).await;
    let mut web = Web::new(&server);
    web.sign_in("", ADMIN_KEY).await;

    let profile = web.get("/app/profile").await;
    assert_eq!(profile.status, StatusCode::OK);
    profile.assert_contains("Profile of admin");
    let key = web.submit("/app/profile", "/app/profile/apikey", &[]).await;
    assert_eq!(key.status, StatusCode::OK);
    key.assert_contains("shown this once");

    let users = web.get("/app/users").await;
    assert_eq!(users.status, StatusCode::OK);
    users.assert_contains("admin");
    let created = web
        .submit(
            "/app/users",
            "/app/users",
            &[
                ("uid", "carol"),
                ("password", "carol-password-1"),
                ("email", "carol@example.org"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    created.assert_contains("User carol created");
    let edit = web.get("/app/users/carol").await;
    edit.assert_contains("carol@example.org");
    let mut carol = Web::new(&server);
    let signed = carol.sign_in("carol", "carol-password-1").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    let wrong = carol
        .submit(
            "/app/profile",
            "/app/profile/password",
            &[
                ("current", "nope"),
                ("new", "carol-password-2"),
                ("again", "carol-password-2"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    wrong.assert_contains("current_password");

    let api = web.get("/app/api/deploy").await;
    assert_eq!(api.status, StatusCode::OK);
    api.assert_contains("/deploy/ns/{id}/run/{run}");
    api.assert_contains("curl -X POST");
    assert_eq!(web.get("/app/api/nothing").await.status, StatusCode::NOT_FOUND);

    let runs = web.get("/app/run").await;
    assert_eq!(runs.status, StatusCode::OK);
    runs.assert_contains("No run.");

    let usage = web.get("/app/usage").await;
    assert_eq!(usage.status, StatusCode::OK);
    usage.assert_contains("No accounting data yet.");
}

#[tokio::test]
async fn assets_are_served_with_cache_headers_and_types() {
    let server = platform(false).await;
    let mut web = Web::new(&server);
    let css = web.get(&goterra_ui::assets::STYLESHEET.url()).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.content_type, "text/css; charset=utf-8");
    assert_eq!(css.cache_control, goterra_ui::assets::IMMUTABLE);
    let js = web.get(&goterra_ui::assets::SCRIPT.url()).await;
    assert_eq!(js.content_type, "text/javascript; charset=utf-8");
    assert!(js.body.contains("EventSource"));
    let old = web.get("/app/static/0000/app.css").await;
    assert_eq!(old.cache_control, "no-cache");
    assert_eq!(web.get("/app/static/x/nothing.js").await.status, StatusCode::NOT_FOUND);
    let login = web.get("/app/login").await;
    login.assert_contains(&goterra_ui::assets::STYLESHEET.url());
}

/// Under `/app` every error is a page, also those the framework makes (unknown URL, another
/// method, a query that does not parse); the API's routes keep their JSON errors.
#[tokio::test]
async fn unknown_pages_are_html_pages_and_api_errors_stay_json() {
    let server = platform(false).await;
    let mut web = Web::new(&server);
    for (path, status, message) in [
        (
            "/app/no/such/page",
            StatusCode::NOT_FOUND,
            "There is no page at this address.",
        ),
        (
            "/app/nothing",
            StatusCode::NOT_FOUND,
            "There is no page at this address.",
        ),
        (
            "/app/ns/5f0c1a/delete",
            StatusCode::METHOD_NOT_ALLOWED,
            "cannot be used that way",
        ),
    ] {
        let page = web.get(path).await;
        assert_eq!(page.status, status, "{path}");
        assert_eq!(page.content_type, "text/html; charset=utf-8", "{path}");
        page.assert_contains(message);
        page.assert_contains("<h1>");
    }
    web.sign_in("", ADMIN_KEY).await;
    // The original's sign-out address asks to confirm (signing out is a form).
    let logout = web.get("/app/logout").await;
    assert_eq!(logout.status, StatusCode::OK);
    logout.assert_contains("action=\"/app/logout\"");
    let signed_in = web.get("/app/no/such/page").await;
    assert_eq!(signed_in.status, StatusCode::NOT_FOUND);
    assert_eq!(signed_in.content_type, "text/html; charset=utf-8");
    let bad_query = web.get("/app/users?page=first").await;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_query.content_type, "text/html; charset=utf-8");
    bad_query.assert_contains("page");
    for path in ["/deploy/no/such/route", "/auth/nothing", "/nowhere"] {
        let answer = web.get(path).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.content_type, "application/json", "{path}");
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert!(body["message"].is_string(), "{path}: {}", answer.body);
    }
}

/// Bookmarks of the original UI's pages lead to their counterparts.
#[tokio::test]
async fn the_original_uis_addresses_redirect_to_their_pages() {
    let server = platform(false).await;
    let mut web = Web::new(&server);
    for (old, new) in [
        ("/app/ns/5f0c1a/run/app/7e2d9b", "/app/ns/5f0c1a/app/7e2d9b/run"),
        ("/app/ns/5f0c1a/edit/recipe", "/app/ns/5f0c1a/recipe/new"),
        (
            "/app/ns/5f0c1a/edit/template/7e2d9b",
            "/app/ns/5f0c1a/template/7e2d9b/edit",
        ),
        ("/app/user/alice", "/app/profile"),
        ("/app/usage/ns/5f0c1a", "/app/ns/5f0c1a/usage"),
        ("/app/ns/a%20b/edit/app", "/app/ns/a%20b/app/new"),
    ] {
        let page = web.get(old).await;
        assert_eq!(page.status, StatusCode::PERMANENT_REDIRECT, "{old}");
        assert_eq!(page.location.as_deref(), Some(new), "{old}");
    }
    web.sign_in("", ADMIN_KEY).await;
    let api = web.get("/app/api/goterra-deploy").await;
    assert_eq!(api.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(api.location.as_deref(), Some("/app/api/deploy"));
    assert_eq!(web.get("/app/api/goterra-nothing").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_wizard_checks_confirms_and_starts_a_run_without_showing_secrets() {
    let server = platform(false).await;
    let api = goterra_client::Client::new(&server.url)
        .unwrap()
        .with_token(server.token_for("admin", true));
    let demo = goterra_deploy::demo::load(&api, &server.data_dir.path().join("vms"))
        .await
        .unwrap();
    let mut web = Web::new(&server);
    web.sign_in("", ADMIN_KEY).await;
    let wizard = format!("/app/ns/{}/app/{}/run", demo.namespace, demo.application);

    // One usable endpoint: the wizard goes straight to the inputs, with the default filled in.
    let inputs = web.get(&wizard).await;
    assert_eq!(inputs.status, StatusCode::OK);
    inputs.assert_contains("Next: confirm");
    inputs.assert_contains("name=\"in.workers\"");
    inputs.assert_contains("value=\"2\"");
    assert_eq!(
        web.get(&format!("{wizard}?endpoint=unknown")).await.status,
        StatusCode::BAD_REQUEST
    );

    let secret = "cloud-password-never-shown";
    let bad = web
        .submit(
            &wizard,
            &wizard,
            &[
                ("endpoint", &demo.endpoint),
                ("name", "t"),
                ("in.workers", "2"),
                ("in.bad name", "x"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    bad.assert_contains("class=\"error\"");
    let confirm = web
        .submit(
            &wizard,
            &wizard,
            &[
                ("endpoint", &demo.endpoint),
                ("name", "first"),
                ("in.workers", "2"),
                ("secret.password", secret),
            ],
        )
        .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    confirm.assert_contains("Deploy cluster on local?");
    confirm.assert_contains("given, hidden");
    assert!(!confirm.body.contains(secret), "a secret in the confirmation page");
    let sealed_start = confirm.body.find("name=\"sealed\" value=\"").unwrap() + 21;
    let sealed = &confirm.body[sealed_start..sealed_start + confirm.body[sealed_start..].find('"').unwrap()];
    let csrf = confirm.csrf();
    let started = web
        .post(
            &format!("{wizard}/start"),
            &[("csrf", csrf.as_str()), ("sealed", sealed)],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_page = started.location.unwrap();
    let page = web.get(&run_page).await;
    assert_eq!(page.status, StatusCode::OK);
    page.assert_contains("Run started.");
    page.assert_contains("deploy_pending");
    page.assert_contains("data-refresh=");
    page.assert_contains("Cancel");
    assert!(!page.body.contains(secret));
    let live = web.get(&format!("{run_page}/live")).await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(live.body.starts_with("<div id=\"live\""), "{}", live.body);

    let runs = web.get("/app/run").await;
    runs.assert_contains(">first<");
    runs.assert_contains("data-refresh=");
    let fragment = web.get("/app/run?page=0&fragment=1").await;
    assert!(fragment.body.starts_with("<div id=\"runs\""));
    web.get(&format!("/app/ns/{}/run?all=1", demo.namespace))
        .await
        .assert_contains(">first<");

    // A tampered confirmation is refused and starts nothing.
    let tampered = web
        .post(
            &format!("{wizard}/start"),
            &[("csrf", csrf.as_str()), ("sealed", "gAAAAAtampered")],
        )
        .await;
    assert_eq!(tampered.status, StatusCode::BAD_REQUEST);

    let cancel = web.submit(&run_page, &format!("{run_page}/cancel"), &[]).await;
    assert_eq!(cancel.status, StatusCode::SEE_OTHER, "{}", cancel.body);
    web.get(&run_page).await.assert_contains("canceled");
}

/// The runs list's status filter is applied by the API, before paging: a filter finds runs
/// older than the first page of all runs, and the pager pages the filtered runs.
#[tokio::test]
async fn the_runs_status_filter_pages_the_filtered_runs() {
    let server = platform(false).await;
    let ns = create_namespace(&server, "busy").await;
    let mut runs: Vec<SeedRun> = (0..3)
        .map(|i| SeedRun {
            name: format!("broken-{i}"),
            uid: "admin".into(),
            status: "deploy_failure",
            created_at: 1_000 + i,
        })
        .collect();
    runs.extend((0..26).map(|i| SeedRun {
        name: format!("fine-{i}"),
        uid: "admin".into(),
        status: if i % 2 == 0 {
            "deploy_success"
        } else {
            "destroy_success"
        },
        created_at: 2_000 + i,
    }));
    runs.push(SeedRun {
        name: "moving".into(),
        uid: "admin".into(),
        status: "deploy_in_progress",
        created_at: 3_000,
    });
    seed_runs(&server, &ns, &runs).await;
    let mut web = Web::new(&server);
    web.sign_in("", ADMIN_KEY).await;
    let rows = |page: &common::Page| page.body.matches("<tr data-status=").count();

    // The newest 25 runs hold no failure: the filter still finds all three.
    let failed = web.get("/app/run?status=failed").await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(rows(&failed), 3, "{}", failed.body);
    failed.assert_contains(">broken-0<");
    assert!(!failed.body.contains(">fine-"));
    assert!(!failed.body.contains("rel=\"next\""));

    // 26 succeeded runs: a full first page with a link to the second, which has the last one.
    let ok = web.get("/app/run?status=ok").await;
    assert_eq!(rows(&ok), 25);
    ok.assert_contains("href=\"/app/run?page=1&amp;status=ok\" rel=\"next\"");
    let second = web.get("/app/run?page=1&status=ok").await;
    assert_eq!(rows(&second), 1);
    second.assert_contains(">fine-0<");

    let active = web.get("/app/run?status=active").await;
    assert_eq!(rows(&active), 1);
    active.assert_contains(">moving<");
    assert_eq!(rows(&web.get("/app/run?status=canceled").await), 0);
    let in_namespace = web.get(&format!("/app/ns/{ns}/run?all=1&status=failed")).await;
    assert_eq!(rows(&in_namespace), 3);
    assert_eq!(rows(&web.get("/app/run").await), 25);

    let unknown = web.get("/app/run?status=bogus").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    unknown.assert_contains("unknown status filter");
}
