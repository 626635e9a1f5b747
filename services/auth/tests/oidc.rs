#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Single sign-on against a real OpenID provider (the `oidc-provider` package run by Node, see
//! `tests/oidc-provider`): the whole flow over plain HTTP, on SQLite and PostgreSQL.

#[path = "../../../tests/oidc-provider/harness.rs"]
mod harness;

use goterra_core::Sensitive;
use goterra_core::sso::OidcProviderConfig;
use goterra_db::Engine;
use goterra_testing::db::ENGINES;
use goterra_testing::{TestServer, free_port};
use harness::{TestProvider, sign_in};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN_KEY: &str = "admin-key-for-tests-0123456789";
const SECRET: &str = "client-secret-for-tests";

/// Goterra with providers `lab` (first login creates users, uid = sub), `mail` (uid = the
/// verified email) and `invite` (existing accounts only), all at one running test provider.
struct Sso {
    server: TestServer,
    _provider: TestProvider,
    http: reqwest::Client,
}

fn provider(issuer: &str, client_id: &str, change: impl FnOnce(&mut OidcProviderConfig)) -> OidcProviderConfig {
    let mut provider = OidcProviderConfig {
        issuer: issuer.to_string(),
        client_id: client_id.to_string(),
        client_secret: Some(Sensitive::new(SECRET.to_string())),
        ..OidcProviderConfig::default()
    };
    change(&mut provider);
    provider
}

impl Sso {
    async fn start(engine: Engine) -> Self {
        let port = free_port().unwrap();
        let issuer = format!("http://127.0.0.1:{port}");
        let server = TestServer::start_with(engine, &[goterra_auth::spec()], |config| {
            config.admin_apikey = Some(Sensitive::new(ADMIN_KEY.into()));
            config.oidc.insert("lab".into(), provider(&issuer, "lab", |_| {}));
            config.oidc.insert(
                "mail".into(),
                provider(&issuer, "mail", |p| p.uid_claim = Some("email".into())),
            );
            config
                .oidc
                .insert("invite".into(), provider(&issuer, "invite", |p| p.create_users = false));
            config.oidc.insert(
                "corp".into(),
                provider(&issuer, "corp", |p| {
                    p.allowed_email_domains = vec!["corp.example.com".into()]
                }),
            );
            // Off: no client id.
            config.oidc.insert("off".into(), provider(&issuer, "", |_| {}));
        })
        .await
        .unwrap();
        let clients: Vec<Value> = ["lab", "mail", "invite", "corp"]
            .iter()
            .map(|name| {
                json!({"client_id": name, "client_secret": SECRET,
                       "redirect_uris": [format!("{}/auth/oidc/{name}/callback", server.url),
                                         format!("{}/app/auth/oidc/{name}/callback", server.url)]})
            })
            .collect();
        let provider = TestProvider::start(port, json!(clients)).await;
        assert_eq!(provider.issuer, issuer);
        Self {
            server,
            _provider: provider,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    /// `GET /auth/oidc/{provider}`: the provider URL and the flow cookie.
    async fn begin(&self, provider: &str) -> (String, String) {
        let response = self
            .http
            .get(format!("{}/auth/oidc/{provider}", self.server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{provider}");
        let location = response.headers()["location"].to_str().unwrap().to_string();
        (location, flow_cookie(&response))
    }

    /// The callback as the provider sent the browser to it, with `cookie` and `token`.
    async fn callback(&self, url: &str, cookie: Option<&str>, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(url);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let cleared = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("goterra_oidc=;"));
        assert!(cleared, "every callback answer ends the browser's flow");
        (status, response.json().await.unwrap())
    }

    /// A whole sign-in of `login` at the provider through Goterra's `provider`.
    async fn sign_in(&self, provider: &str, login: &str) -> (StatusCode, Value) {
        let (location, cookie) = self.begin(provider).await;
        let callback = sign_in(&location, login).await;
        self.callback(&callback, Some(&cookie), None).await
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.server.url));
        if let Some(key) = key {
            request = request.header("X-API-Key", key);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn uids(&self) -> Vec<String> {
        let (status, users) = self.call("GET", "/auth/user", Some(ADMIN_KEY), None, None).await;
        assert_eq!(status, StatusCode::OK, "{users}");
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["uid"].as_str().unwrap().to_string())
            .collect()
    }

    async fn register(&self, uid: &str, email: &str) {
        let body = json!({"uid": uid, "password": "local-password", "email": email});
        let (status, answer) = self
            .call("POST", "/auth/register", Some(ADMIN_KEY), None, Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }

    async fn password_login(&self, uid: &str) -> (StatusCode, Value) {
        let body = json!({"uid": uid, "password": "local-password"});
        self.call("POST", "/auth/login", None, None, Some(body)).await
    }
}

fn flow_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("goterra_oidc="))
        .expect("the flow cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn first_login_creates_the_user_and_later_ones_reuse_it() {
    for engine in ENGINES {
        let sso = Sso::start(engine).await;
        let mut events = sso.server.events.subscribe();
        let (location, cookie) = sso.begin("lab").await;
        // PKCE S256, state and nonce go to the provider.
        let authorize = url::Url::parse(&location).unwrap();
        let params: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
        assert_eq!(params["code_challenge_method"], "S256");
        assert_eq!(
            params["redirect_uri"],
            format!("{}/auth/oidc/lab/callback", sso.server.url)
        );
        assert!(params["state"].len() >= 32 && params["nonce"].len() >= 32);
        let callback = sign_in(&location, "alice").await;
        let (status, answer) = sso.callback(&callback, Some(&cookie), None).await;
        assert_eq!(status, StatusCode::OK, "{engine:?}: {answer}");
        assert_eq!(answer["uid"], "alice");
        assert!(answer.get("apikey").is_none(), "never an API key: {answer}");
        let token = answer["token"].as_str().unwrap();
        let (status, me) = sso.call("GET", "/auth/me", None, Some(token), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!((me["kind"].as_str(), me["admin"].as_bool()), (Some("lab"), Some(false)));
        assert_eq!(me["email"], "alice@example.org");
        let event = events.recv().await.unwrap();
        assert_eq!(
            (event.action.as_str(), event.uid.as_str(), event.data.as_str()),
            ("user_create", "alice", "lab")
        );

        // The same callback again (same code, same cookie): the provider refuses the used code.
        let (status, answer) = sso.callback(&callback, Some(&cookie), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        // And without the cookie, which the first answer cleared.
        let (status, _) = sso.callback(&callback, None, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // A second sign-in reuses the account.
        let users = sso.uids().await;
        assert!(users.contains(&"alice".to_string()), "{users:?}");
        let (status, answer) = sso.sign_in("lab", "alice").await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["uid"], "alice");
        assert_eq!(sso.uids().await, users);
        assert!(events.try_recv().is_err(), "no second user_create");
        // Accounts of a provider have no password.
        assert_eq!(sso.password_login("alice").await.0, StatusCode::UNAUTHORIZED);
        let (status, identities) = sso
            .call("GET", "/auth/user/alice/identities", None, Some(token), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(identities["identities"][0]["provider"], "lab");
        assert_eq!(identities["identities"][0]["subject"], "alice");
    }
}

#[tokio::test]
async fn a_wrong_state_another_browser_or_a_denied_sign_in_is_refused() {
    let sso = Sso::start(Engine::Sqlite).await;
    let users = sso.uids().await;
    let (location, cookie) = sso.begin("lab").await;
    let callback = sign_in(&location, "mallory").await;
    let mut url = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    url.query_pairs_mut().clear();
    for (key, value) in &pairs {
        let value = if key == "state" { "forged-state" } else { value.as_str() };
        url.query_pairs_mut().append_pair(key, value);
    }
    let (status, answer) = sso.callback(url.as_str(), Some(&cookie), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("state"), "{answer}");
    // The right callback in a browser without the flow cookie (login CSRF).
    let (status, _) = sso.callback(&callback, None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The cookie of another flow of the same browser.
    let (_, other_cookie) = sso.begin("lab").await;
    let (status, _) = sso.callback(&callback, Some(&other_cookie), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Another provider's callback with this flow's cookie.
    let mail_callback = callback.replace("/auth/oidc/lab/", "/auth/oidc/mail/");
    let (status, _) = sso.callback(&mail_callback, Some(&cookie), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The user refused at the provider.
    let denied = format!("{}/auth/oidc/lab/callback?error=access_denied&state=x", sso.server.url);
    let (status, _) = sso.callback(&denied, Some(&cookie), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(sso.uids().await, users, "nothing was created");
}

#[tokio::test]
async fn local_accounts_with_the_same_uid_or_email_are_not_taken_over() {
    let sso = Sso::start(Engine::Sqlite).await;
    // Same uid as the provider's `sub`.
    sso.register("erin", "erin@elsewhere.org").await;
    let (status, answer) = sso.sign_in("lab", "erin").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    // Same uid as the provider's verified email.
    sso.register("dave@example.org", "dave@example.org").await;
    let (status, answer) = sso.sign_in("mail", "dave").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    // Same email only: a separate account is created, the local one is not touched.
    sso.register("frank-local", "frank@example.org").await;
    let (status, answer) = sso.sign_in("lab", "frank").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["uid"], "frank");
    for uid in ["erin", "dave@example.org", "frank-local"] {
        let (status, login) = sso.password_login(uid).await;
        assert_eq!(status, StatusCode::OK, "{uid} keeps its password: {login}");
        assert_eq!(login["user"]["kind"], "", "{uid} is still local");
        let (_, identities) = sso
            .call(
                "GET",
                &format!("/auth/user/{uid}/identities"),
                Some(ADMIN_KEY),
                None,
                None,
            )
            .await;
        assert_eq!(identities["identities"], json!([]), "{uid} got no identity");
    }
}

#[tokio::test]
async fn provider_rules_unverified_emails_and_existing_only_providers() {
    let sso = Sso::start(Engine::Sqlite).await;
    let users = sso.uids().await;
    // uid = email, but the provider does not vouch for it.
    let (status, answer) = sso.sign_in("mail", "unverified-ivy").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    // Only corp.example.com emails may use `corp`.
    let (status, answer) = sso.sign_in("corp", "jane").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, answer) = sso.sign_in("corp", "jane@corp.example.com").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // `invite` creates nobody.
    let (status, answer) = sso.sign_in("invite", "kim").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let mut expected = users.clone();
    expected.push("jane@corp.example.com".into());
    expected.sort();
    let mut now = sso.uids().await;
    now.sort();
    assert_eq!(now, expected);
}

#[tokio::test]
async fn users_link_identities_and_admins_unlink_them() {
    let sso = Sso::start(Engine::Sqlite).await;
    sso.register("gina", "gina@example.org").await;
    let (_, login) = sso.password_login("gina").await;
    let token = login["token"].as_str().unwrap().to_string();
    // Only for one's own account.
    let (status, _) = sso
        .call(
            "POST",
            "/auth/user/admin/identities",
            None,
            Some(&token),
            Some(json!({"provider": "invite"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let response = sso
        .http
        .post(format!("{}/auth/user/gina/identities", sso.server.url))
        .bearer_auth(&token)
        .json(&json!({"provider": "invite"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = flow_cookie(&response);
    let location = response.json::<Value>().await.unwrap()["location"]
        .as_str()
        .unwrap()
        .to_string();
    let callback = sign_in(&location, "gina-at-idp").await;
    // The callback of a linking flow needs the token of the user who started it.
    let (status, _) = sso.callback(&callback, Some(&cookie), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // (That attempt used the code: link again.)
    let response = sso
        .http
        .post(format!("{}/auth/user/gina/identities", sso.server.url))
        .bearer_auth(&token)
        .json(&json!({"provider": "invite"}))
        .send()
        .await
        .unwrap();
    let cookie = flow_cookie(&response);
    let location = response.json::<Value>().await.unwrap()["location"]
        .as_str()
        .unwrap()
        .to_string();
    let callback = sign_in(&location, "gina-at-idp").await;
    let (status, answer) = sso.callback(&callback, Some(&cookie), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["uid"], "gina");
    // Now `invite` signs gina in.
    let (status, answer) = sso.sign_in("invite", "gina-at-idp").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["uid"], "gina");
    // Users cannot unlink; admins can.
    let (status, _) = sso
        .call("DELETE", "/auth/user/gina/identities/invite", None, Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = sso
        .call(
            "DELETE",
            "/auth/user/gina/identities/invite",
            Some(ADMIN_KEY),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = sso.sign_in("invite", "gina-at-idp").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_providers_are_404_and_unreachable_ones_503_without_harm() {
    let dead_port = free_port().unwrap();
    let server = TestServer::start_with(Engine::Sqlite, &[goterra_auth::spec()], |config| {
        config.admin_apikey = Some(Sensitive::new(ADMIN_KEY.into()));
        config.oidc.insert(
            "down".into(),
            provider(&format!("http://127.0.0.1:{dead_port}"), "down", |_| {}),
        );
        config
            .oidc
            .insert("off".into(), provider("https://id.example.org", "", |_| {}));
    })
    .await
    .expect("an unreachable provider does not stop auth from starting");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/auth/oidc/nope",
        "/auth/oidc/off",
        "/auth/oidc/nope/callback?state=a&code=b",
    ] {
        let response = http.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let response = http.get(format!("{}/auth/oidc/down", server.url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["message"].as_str().unwrap().contains("down"), "{answer}");
    // Password login is unaffected.
    let body = json!({"uid": "lou", "password": "local-password", "email": ""});
    let response = http
        .post(format!("{}/auth/register", server.url))
        .header("X-API-Key", ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = http
        .post(format!("{}/auth/login", server.url))
        .json(&json!({"uid": "lou", "password": "local-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
