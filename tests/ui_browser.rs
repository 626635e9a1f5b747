#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web UI in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `.ci/run`) drives the real `goterra up --demo` binary over WebDriver.
//!
//! A user signs in (a bad password first), starts a run of the `examples/local` demo through the
//! wizard, watches the log stream to `deploy_success` and the workers' recipe status turn
//! `over`, destroys the run and signs out. Screenshots of the main pages are taken at 1440 and
//! 375 px wide into `target/ui-screenshots` (`GOT_UI_SCREENSHOTS=DIR` to choose: `docs/ui`
//! holds the committed ones).
//!
//! Without Chromium, chromedriver or Terraform the test is skipped with a message, except under
//! CI (`CI` set), where it fails.

use fantoccini::{Client, ClientBuilder, Locator};
use goterra_testing::{SpawnedServer, free_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const GOTERRA: &str = env!("CARGO_BIN_EXE_goterra");
const ADMIN_KEY: &str = "browser-test-admin-key-0123456789";
/// Upper bound for the run to reach a state: a failure, not a timed assertion.
const RUN_PATIENCE: Duration = Duration::from_secs(300);
const CHROMIUM_ARGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

fn found(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    std::env::var(env)
        .ok()
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|path| path.exists())
}

fn home_tool(env: &str, default: &str) -> Option<PathBuf> {
    let home = std::env::var("HOME").unwrap_or_default();
    found(env, &[&format!("{home}/{default}")])
}

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
    terraform: PathBuf,
    plugins: Option<PathBuf>,
}

fn tools() -> Option<Tools> {
    let chromium = found("GOT_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let chromedriver = found("GOT_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let terraform = home_tool("GOT_TERRAFORM_BIN", ".cache/goterra/tools/bin/terraform");
    match (chromium, chromedriver, terraform) {
        (Some(chromium), Some(chromedriver), Some(terraform)) => Some(Tools {
            chromium,
            chromedriver,
            terraform,
            plugins: home_tool("GOT_TERRAFORM_PLUGIN_DIR", ".cache/goterra/tools/plugins"),
        }),
        missing => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide chromium, chromedriver and Terraform (run the tests through .ci/run): {:?}",
                (missing.0.is_some(), missing.1.is_some(), missing.2.is_some())
            );
            eprintln!("skipped: chromium, chromedriver or Terraform missing (run .ci/run once)");
            None
        }
    }
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(tools: &Tools) -> Self {
        let port = free_port().unwrap();
        let child = Command::new(&tools.chromedriver)
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

    async fn browser(&self, tools: &Tools, profile: &Path) -> Client {
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push("--window-size=1440,900".into());
        let capabilities = serde_json::json!({
            "goog:chromeOptions": { "binary": tools.chromium, "args": args }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var("GOT_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Screenshots of the current page at 1440 and 375 px wide, scrolled to `focus` (CSS) if given.
async fn shoot(client: &Client, name: &str, focus: Option<&str>) {
    let dir = screenshots_dir();
    for (width, height) in [(1440u32, 900u32), (375, 812)] {
        client.set_window_size(width, height).await.unwrap();
        if let Some(focus) = focus {
            let script = "document.querySelector(arguments[0]).scrollIntoView({block: 'start'})";
            client.execute(script, vec![serde_json::json!(focus)]).await.unwrap();
        }
        let png = client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}-{width}.png")), png).unwrap();
    }
    client.set_window_size(1440, 900).await.unwrap();
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

async fn text_of(client: &Client, css: &str) -> String {
    client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

/// Waits until `check` holds on the page source, failing with the page after `RUN_PATIENCE`.
async fn wait_for_page(client: &Client, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + RUN_PATIENCE;
    loop {
        let source = client.source().await.unwrap();
        if check(&source) {
            return source;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}:\n{source}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_user_runs_the_demo_from_the_browser() {
    let Some(tools) = tools() else { return };
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut env = vec![
        ("GOT_LOG", "warn".to_string()),
        ("GOT_ADMIN_APIKEY", ADMIN_KEY.to_string()),
        ("GOT_TERRAFORM_BIN", tools.terraform.display().to_string()),
    ];
    if let Some(plugins) = &tools.plugins {
        env.push(("GOT_TERRAFORM_PLUGIN_DIR", plugins.display().to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = SpawnedServer::start(
        GOTERRA,
        &[
            "up",
            "--demo",
            "--listen",
            &listen,
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        &env,
        port,
        "/app/config",
    )
    .await
    .unwrap();
    let driver = Driver::start(&tools).await;
    let profile = tempfile::tempdir().unwrap();
    let client = driver.browser(&tools, profile.path()).await;

    // The newcomer's way in: the root URL leads to the login page.
    client.goto(&format!("{}/", server.url)).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/app/login"));
    shoot(&client, "login", None).await;

    // A bad password shows an error.
    fill(&client, "#uid", "admin").await;
    fill(&client, "#password", "not-the-password").await;
    click(&client, "form button[type=submit].primary").await;
    let error = text_of(&client, "p.error").await;
    assert!(error.contains("Wrong user id or password"), "{error}");

    // The API key `goterra up` printed signs in.
    click(&client, "details summary").await;
    fill(&client, "#apikey", ADMIN_KEY).await;
    click(&client, "form button[type=submit].primary").await;
    assert!(client.current_url().await.unwrap().path().ends_with("/app/ns"));
    client
        .find(Locator::LinkText("demo"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_page(&client, "the dashboard", |page| page.contains("Namespace demo")).await;
    shoot(&client, "dashboard", None).await;

    // The wizard: the application's Run button, the only usable endpoint, the inputs.
    click(&client, "a.button.small.primary").await;
    wait_for_page(&client, "the inputs step", |page| page.contains("Next: confirm")).await;
    fill(&client, "#run-name", "browser demo").await;
    shoot(&client, "wizard", None).await;
    fill(&client, "#run-description", "<script>window.injected = 1</script>").await;
    click(&client, "form.stack button.primary").await;
    wait_for_page(&client, "the confirmation", |page| {
        page.contains("Deploy cluster on local?")
    })
    .await;
    click(&client, "form.inline button.primary").await;

    // The run page: the log streams, the status reaches deploy_success, the recipes run.
    wait_for_page(&client, "the run page", |page| page.contains("Run browser demo")).await;
    let injected = client
        .execute("return window.injected === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(
        injected,
        serde_json::Value::Bool(true),
        "the description ran as a script"
    );
    assert!(client.source().await.unwrap().contains("&lt;script&gt;window.injected"));
    wait_for_page(&client, "deploy_success", |page| {
        page.contains("data-status=\"deploy_success\"")
    })
    .await;
    let page = wait_for_page(&client, "the workers' recipes to be over", |page| {
        let over = page.matches(">over</span>").count();
        over >= 3 && !page.contains(">start</span>")
    })
    .await;
    assert!(page.contains("worker"), "{page}");
    let log = text_of(&client, "#log").await;
    assert!(log.contains("Apply complete"), "the streamed log: {log}");
    shoot(&client, "run", Some("#live")).await;

    // Destroy, with the confirmation dialog.
    click(&client, ".danger-zone button.danger").await;
    client.accept_alert().await.unwrap();
    wait_for_page(&client, "destroy_success", |page| {
        page.contains("data-status=\"destroy_success\"")
    })
    .await;

    // The runs list shows it.
    client.goto(&format!("{}/app/run", server.url)).await.unwrap();
    let runs = client.source().await.unwrap();
    assert!(runs.contains("browser demo") && runs.contains("destroy_success"));
    shoot(&client, "runs", None).await;

    // Sign out: back to the login page, and the pages are closed.
    click(&client, "form.logout button").await;
    let message = text_of(&client, "p.flash").await;
    assert!(message.contains("signed out"), "{message}");
    client.goto(&format!("{}/app/run", server.url)).await.unwrap();
    assert!(client.current_url().await.unwrap().path().ends_with("/app/login"));

    client.close().await.unwrap();
    drop(driver);
    server.terminate().unwrap();
}
