#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Single sign-on in a real browser: headless Chromium (driven over WebDriver, as in
//! `ui_browser.rs`) signs in to the web UI through a real OpenID provider (`tests/oidc-provider`),
//! typing into the provider's own login form, and lands in the UI signed in; then links a
//! second provider's identity from the profile.
//!
//! Without Chromium or chromedriver the test is skipped with a message, except under CI (`CI`
//! set), where it fails. A missing provider install always fails.

#[path = "oidc-provider/harness.rs"]
mod harness;

use fantoccini::{Client, ClientBuilder, Locator};
use goterra_core::Sensitive;
use goterra_core::sso::OidcProviderConfig;
use goterra_db::Engine;
use goterra_testing::{TestServer, free_port};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECRET: &str = "client-secret-for-browser-tests";

fn found(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|path| path.exists())
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(chromedriver: &PathBuf) -> Self {
        let port = free_port().unwrap();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{url}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for_url(client: &Client, what: &str, check: impl Fn(&str) -> bool) -> String {
    for _ in 0..100 {
        let url = client.current_url().await.unwrap().to_string();
        if check(&url) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let source = client.source().await.unwrap_or_default();
    panic!("gave up waiting for {what}:\n{source}");
}

async fn sign_in_at_provider(client: &Client, login: &str) {
    wait_for_url(client, "the provider's login form", |url| url.contains("/interaction/")).await;
    client
        .find(Locator::Css("input[name=login]"))
        .await
        .unwrap()
        .send_keys(login)
        .await
        .unwrap();
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("any password")
        .await
        .unwrap();
    client
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_user_signs_in_with_an_identity_provider_from_the_browser() {
    let chromium = found("GOT_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let chromedriver = found("GOT_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide chromium and chromedriver (run the tests through .ci/run)"
        );
        eprintln!("skipped: chromium or chromedriver missing (run .ci/run once)");
        return;
    };
    let port = free_port().unwrap();
    let issuer = format!("http://127.0.0.1:{port}");
    let provider_config = |client_id: &str, display: &str| OidcProviderConfig {
        issuer: issuer.clone(),
        client_id: client_id.to_string(),
        client_secret: Some(Sensitive::new(SECRET.to_string())),
        display_name: Some(display.to_string()),
        ..OidcProviderConfig::default()
    };
    let server = TestServer::start_with(Engine::Sqlite, &[goterra_auth::spec(), goterra_ui::spec()], |config| {
        config.oidc.insert("lab".into(), provider_config("lab", "Lab ID"));
        let mut partner = provider_config("partner", "Partner ID");
        partner.create_users = false;
        config.oidc.insert("partner".into(), partner);
    })
    .await
    .unwrap();
    let clients: Vec<serde_json::Value> = ["lab", "partner"]
        .iter()
        .map(|name| {
            serde_json::json!({"client_id": name, "client_secret": SECRET,
                "redirect_uris": [format!("{}/app/auth/oidc/{name}/callback", server.url)]})
        })
        .collect();
    let _provider = harness::TestProvider::start(port, serde_json::json!(clients)).await;

    // The UI tells which providers are on.
    let config: serde_json::Value = reqwest::get(format!("{}/app/config", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["oidc_google"], false);
    assert_eq!(
        config["oidc"][0],
        serde_json::json!({"name": "lab", "display_name": "Lab ID"})
    );

    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let capabilities = serde_json::json!({
        "goog:chromeOptions": { "binary": chromium, "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            format!("--user-data-dir={}", profile.path().display()), "--window-size=1280,900"] }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap();

    // One button per provider on the login page; the first login creates the account.
    client.goto(&format!("{}/app/login", server.url)).await.unwrap();
    let button = client.find(Locator::Css("a#sso-lab")).await.unwrap();
    assert_eq!(button.text().await.unwrap(), "Lab ID");
    client.find(Locator::Css("a#sso-partner")).await.unwrap();
    button.click().await.unwrap();
    sign_in_at_provider(&client, "olga").await;
    let url = wait_for_url(&client, "the UI after signing in", |url| {
        url.starts_with(&server.url) && url.contains("/app/ns")
    })
    .await;
    assert!(url.ends_with("/app/ns"), "{url}");
    client.goto(&format!("{}/app/profile", server.url)).await.unwrap();
    let profile_text = client.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(profile_text.contains("Profile of olga"), "{profile_text}");
    assert!(profile_text.contains("Account kind: lab"), "{profile_text}");

    // Link a Partner ID identity from the profile; Partner ID then signs olga in.
    client
        .find(Locator::Css("button#link-partner"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    sign_in_at_provider(&client, "olga-at-partner").await;
    wait_for_url(&client, "the profile after linking", |url| {
        url.ends_with("/app/profile")
    })
    .await;
    let profile_text = client
        .find(Locator::Css("#identities"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(profile_text.contains("olga-at-partner"), "{profile_text}");

    // Sign out, then in again with Partner ID.
    client
        .find(Locator::Css("form[action='/app/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(&client, "the login page", |url| url.contains("/app/login")).await;
    client
        .find(Locator::Css("a#sso-partner"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    sign_in_at_provider(&client, "olga-at-partner").await;
    wait_for_url(&client, "the UI after signing in again", |url| url.ends_with("/app/ns")).await;

    client.close().await.unwrap();
    server.stop().await;
}
