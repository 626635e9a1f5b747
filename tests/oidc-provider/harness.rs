//! The Rust side of the test OpenID provider (`provider.mjs` beside this file): starts it on a
//! given port with the clients a test needs, and signs a user in through its login form over
//! plain HTTP. Included with `#[path]` by the tests that need it (auth's API tests, the web
//! UI's browser test). Missing Node or packages fail the test: `.ci/run` installs them.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// `tests/oidc-provider` of the workspace, found from the crate that includes this file.
pub fn provider_dir() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("tests/oidc-provider");
        if candidate.join("provider.mjs").is_file() {
            return candidate;
        }
        assert!(
            dir.pop(),
            "tests/oidc-provider not found above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
}

/// A running provider; stopped when dropped.
pub struct TestProvider {
    pub issuer: String,
    _child: tokio::process::Child,
}

impl TestProvider {
    /// Starts the provider on `port` with `clients`
    /// (`[{"client_id", "client_secret", "redirect_uris"}]`).
    pub async fn start(port: u16, clients: serde_json::Value) -> Self {
        let dir = provider_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test OpenID provider is not installed: run `npm ci` in {} (.ci/run does)",
            dir.display()
        );
        let mut child = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .current_dir(&dir)
            .env("OIDC_PORT", port.to_string())
            .env("OIDC_CLIENTS", clients.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the test OpenID provider");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the test OpenID provider did not start within 30 s")
            .expect("reading the provider's output")
            .expect("the test OpenID provider exited before answering");
        let started: serde_json::Value = serde_json::from_str(&line).expect("the provider's first line is JSON");
        let issuer = started["issuer"].as_str().expect("issuer").to_string();
        // Keep draining its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { issuer, _child: child }
    }
}

/// Follows `authorize_url` at the provider, submits its login form as `login`, and answers the
/// URL the provider finally redirects to (the client's callback, with `code` and `state`).
pub async fn sign_in(authorize_url: &str, login: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    let mut cookies: Vec<(String, String)> = Vec::new();
    let start = url::Url::parse(authorize_url).expect("authorize URL");
    let provider_origin = start.origin();
    let mut next = start;
    let mut submitted = false;
    for _ in 0..10 {
        let cookie_header = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let is_form = next.path().starts_with("/interaction/") && !submitted;
        let request = if is_form {
            submitted = true;
            http.post(next.clone())
                .form(&[("prompt", "login"), ("login", login), ("password", "any")])
        } else {
            http.get(next.clone())
        };
        let response = request
            .header("Cookie", cookie_header)
            .send()
            .await
            .expect("provider answers");
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                cookies.retain(|(existing, _)| existing != name);
                cookies.push((name.to_string(), value.to_string()));
            }
        }
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers()["location"].to_str().expect("location").to_string();
            let target = next.join(&location).expect("redirect URL");
            if target.origin() != provider_origin {
                return target.to_string();
            }
            next = target;
        } else if status.is_success() && next.path().starts_with("/interaction/") {
            // The login form itself: post it next.
            submitted = false;
        } else {
            let text = response.text().await.unwrap_or_default();
            panic!(
                "the provider answered {status} at {next}: {}",
                text.chars().take(500).collect::<String>()
            );
        }
    }
    panic!("too many redirects at the provider");
}
