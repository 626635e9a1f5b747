#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web UI in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `.ci/run`) drives the real `goterra up` binary over WebDriver.
//!
//! - A user signs in (a bad password first), starts a run of the `examples/local` demo through
//!   the wizard, watches the log stream to `deploy_success` and the workers' recipe status turn
//!   `over`, destroys the run and signs out.
//! - On a second platform, an admin creates a namespace and a catalogue (endpoint, recipe,
//!   template, application) through the forms and a user through the users page; a POST without
//!   the CSRF token is refused; an unknown page is the HTML 404 page; the plain user sees
//!   neither the admin's namespace nor the admin pages, and the server refuses their URLs; when
//!   the user's password is changed through the API, the browser goes back to the login page
//!   with a message.
//!
//! Every read after a click waits, within [`PAGE_PATIENCE`], for the page the click leads to:
//! a click returns before the browser has even started to navigate. Screenshots of the main
//! pages are taken at 1440 and 375 px wide into `target/ui-screenshots` (`GOT_UI_SCREENSHOTS=DIR`
//! to choose: `docs/ui` holds the committed ones).
//!
//! Without Chromium, chromedriver or Terraform the tests are skipped with a message, except
//! under CI (`CI` set), where they fail.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use goterra_testing::{SpawnedServer, free_port};
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

const GOTERRA: &str = env!("CARGO_BIN_EXE_goterra");
const ADMIN_KEY: &str = "browser-test-admin-key-0123456789";
const ALICE_PASSWORD: &str = "alice-password-1";
/// Upper bound for the run to reach a state: a failure, not a timed assertion.
const RUN_PATIENCE: Duration = Duration::from_secs(300);
/// Upper bound for a page to load after a click, generous for a loaded 2-core machine.
const PAGE_PATIENCE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);
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

/// `None` (the test is skipped) when a tool is missing, but a failure under CI.
fn required<T>(what: &str, tool: Option<T>) -> Option<T> {
    if tool.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide {what} (run the tests through .ci/run)"
        );
        eprintln!("skipped: {what} missing (run .ci/run once)");
    }
    tool
}

struct Browsers {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn browsers() -> Option<Browsers> {
    let chromium = found("GOT_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let chromedriver = found("GOT_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let both = chromium
        .zip(chromedriver)
        .map(|(chromium, chromedriver)| Browsers { chromium, chromedriver });
    required("chromium and chromedriver", both)
}

/// Terraform and its plugin directory, as `goterra up` environment variables.
fn terraform_env() -> Option<Vec<(&'static str, String)>> {
    let terraform = required(
        "Terraform",
        home_tool("GOT_TERRAFORM_BIN", ".cache/goterra/tools/bin/terraform"),
    )?;
    let mut env = vec![("GOT_TERRAFORM_BIN", terraform.display().to_string())];
    if let Some(plugins) = home_tool("GOT_TERRAFORM_PLUGIN_DIR", ".cache/goterra/tools/plugins") {
        env.push(("GOT_TERRAFORM_PLUGIN_DIR", plugins.display().to_string()));
    }
    Some(env)
}

/// `goterra up` on a free port with its own data directory, the admin key [`ADMIN_KEY`].
struct Platform {
    server: SpawnedServer,
    _data: TempDir,
}

impl Platform {
    async fn up(args: &[&str], env: &[(&'static str, String)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let data_dir = data.path().join("data");
        let port = free_port().unwrap();
        let listen = format!("127.0.0.1:{port}");
        let mut all_args = vec!["up", "--listen", &listen, "--data-dir", data_dir.to_str().unwrap()];
        all_args.extend_from_slice(args);
        let mut all_env = vec![
            ("GOT_LOG", "warn".to_string()),
            ("GOT_ADMIN_APIKEY", ADMIN_KEY.to_string()),
        ];
        all_env.extend_from_slice(env);
        let all_env: Vec<(&str, &str)> = all_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let server = SpawnedServer::start(GOTERRA, &all_args, &all_env, port, "/app/config")
            .await
            .unwrap();
        Self { server, _data: data }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start(browsers: &Browsers) -> Self {
        let port = free_port().unwrap();
        let child = Command::new(&browsers.chromedriver)
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

    /// A browser session with a profile of its own (its own cookies).
    async fn browser(&self, browsers: &Browsers) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push("--window-size=1440,900".into());
        let capabilities = serde_json::json!({
            "goog:chromeOptions": { "binary": browsers.chromium, "args": args }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap();
        Browser {
            client,
            _profile: profile,
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Browser {
    client: Client,
    _profile: TempDir,
}

impl std::ops::Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
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

/// Polls `probe` until it yields a value; fails after `patience`, showing the page.
async fn eventually<T>(client: &Client, what: &str, patience: Duration, probe: impl AsyncFn() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            let page = client.source().await.unwrap_or_default();
            panic!("gave up waiting for {what}:\n{page}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What `locator` finds, once the page has it.
async fn element(client: &Client, locator: Locator<'_>) -> Element {
    eventually(client, &format!("{locator:?}"), PAGE_PATIENCE, async || {
        client.find(locator).await.ok()
    })
    .await
}

async fn text_of(client: &Client, css: &str) -> String {
    element(client, Locator::Css(css)).await.text().await.unwrap()
}

async fn fill(client: &Client, css: &str, text: &str) {
    let field = element(client, Locator::Css(css)).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// A click that stays on the page (unfolding a `details`, picking an option).
async fn click(client: &Client, css: &str) {
    element(client, Locator::Css(css)).await.click().await.unwrap();
}

/// Marks the current document, so that [`arrived`] can tell when another one replaced it.
async fn leaving(client: &Client) {
    client.execute("window.goterraLeft = true", vec![]).await.unwrap();
}

/// Waits until the document marked by [`leaving`] is replaced by one fully loaded. Scripts
/// may fail while the browser navigates: that is "not yet".
async fn arrived(client: &Client, after: &str) {
    let check = "return window.goterraLeft === undefined && document.readyState === 'complete'";
    eventually(client, &format!("the page after {after}"), PAGE_PATIENCE, async || {
        matches!(client.execute(check, vec![]).await, Ok(serde_json::Value::Bool(true))).then_some(())
    })
    .await;
}

/// Clicks what `locator` finds (a link, a submit button) and waits for the page it leads to.
async fn follow(client: &Client, locator: Locator<'_>) {
    let target = element(client, locator).await;
    leaving(client).await;
    target.click().await.unwrap();
    arrived(client, &format!("{locator:?}")).await;
}

async fn submit(client: &Client, css: &str) {
    follow(client, Locator::Css(css)).await;
}

/// Clicks a button whose form asks for confirmation (`data-confirm`), accepts, and waits for
/// the page the form leads to.
async fn submit_confirmed(client: &Client, css: &str) {
    let button = element(client, Locator::Css(css)).await;
    leaving(client).await;
    button.click().await.unwrap();
    eventually(client, "the confirmation dialog", PAGE_PATIENCE, async || {
        client.get_alert_text().await.ok()
    })
    .await;
    client.accept_alert().await.unwrap();
    arrived(client, css).await;
}

async fn path_of(client: &Client) -> String {
    client.current_url().await.unwrap().path().to_string()
}

/// Waits until the page source satisfies `check` (live updates), failing after `patience`.
async fn wait_for_page(client: &Client, what: &str, patience: Duration, check: impl Fn(&str) -> bool) -> String {
    eventually(client, what, patience, async || {
        client.source().await.ok().filter(|source| check(source))
    })
    .await
}

async fn sign_in_with_key(client: &Client, platform: &Platform) {
    client.goto(&platform.url("/app/login")).await.unwrap();
    click(client, "details summary").await;
    fill(client, "#apikey", ADMIN_KEY).await;
    submit(client, "form button[type=submit].primary").await;
    assert_eq!(path_of(client).await, "/app/ns");
}

async fn sign_in(client: &Client, platform: &Platform, uid: &str, password: &str) {
    client.goto(&platform.url("/app/login")).await.unwrap();
    fill(client, "#uid", uid).await;
    fill(client, "#password", password).await;
    submit(client, "form button[type=submit].primary").await;
}

/// The signed-in session cookie of a browser (HttpOnly: only WebDriver sees it).
async fn session_cookie(client: &Client) -> String {
    let cookie = client.get_named_cookie("goterra_session").await.unwrap();
    format!("goterra_session={}", cookie.value())
}

#[tokio::test]
async fn a_user_runs_the_demo_from_the_browser() {
    let Some(browsers) = browsers() else { return };
    let Some(terraform) = terraform_env() else { return };
    let platform = Platform::up(&["--demo"], &terraform).await;
    let driver = Driver::start(&browsers).await;
    let client = driver.browser(&browsers).await;

    // The newcomer's way in: the root URL leads to the login page.
    client.goto(&platform.url("/")).await.unwrap();
    assert_eq!(path_of(&client).await, "/app/login");
    shoot(&client, "login", None).await;

    // A bad password shows an error.
    sign_in(&client, &platform, "admin", "not-the-password").await;
    let error = text_of(&client, "p.error").await;
    assert!(error.contains("Wrong user id or password"), "{error}");

    // The API key `goterra up` printed signs in.
    sign_in_with_key(&client, &platform).await;
    follow(&client, Locator::LinkText("demo")).await;
    assert!(text_of(&client, "h1").await.contains("Namespace demo"));
    shoot(&client, "dashboard", None).await;

    // The wizard: the application's Run button, the only usable endpoint, the inputs.
    submit(&client, "a.button.small.primary").await;
    fill(&client, "#run-name", "browser demo").await;
    shoot(&client, "wizard", None).await;
    fill(&client, "#run-description", "<script>window.injected = 1</script>").await;
    submit(&client, "form.stack button.primary").await;
    assert!(client.source().await.unwrap().contains("Deploy cluster on local?"));
    submit(&client, "form.inline button.primary").await;

    // The run page: the log streams, the status reaches deploy_success, the recipes run.
    assert!(text_of(&client, "h1").await.contains("Run browser demo"));
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
    wait_for_page(&client, "deploy_success", RUN_PATIENCE, |page| {
        page.contains("data-status=\"deploy_success\"")
    })
    .await;
    let page = wait_for_page(&client, "the workers' recipes to be over", RUN_PATIENCE, |page| {
        let over = page.matches(">over</span>").count();
        over >= 3 && !page.contains(">start</span>")
    })
    .await;
    assert!(page.contains("worker"), "{page}");
    let log = text_of(&client, "#log").await;
    assert!(log.contains("Apply complete"), "the streamed log: {log}");
    shoot(&client, "run", Some("#live")).await;

    // Destroy, with the confirmation dialog.
    submit_confirmed(&client, ".danger-zone button.danger").await;
    wait_for_page(&client, "destroy_success", RUN_PATIENCE, |page| {
        page.contains("data-status=\"destroy_success\"")
    })
    .await;

    // The runs list shows it.
    client.goto(&platform.url("/app/run")).await.unwrap();
    let runs = client.source().await.unwrap();
    assert!(runs.contains("browser demo") && runs.contains("destroy_success"));
    shoot(&client, "runs", None).await;

    // Sign out: back to the login page, and the pages are closed.
    submit(&client, "form.logout button").await;
    assert_eq!(path_of(&client).await, "/app/login");
    let message = text_of(&client, "p.flash").await;
    assert!(message.contains("signed out"), "{message}");
    client.goto(&platform.url("/app/run")).await.unwrap();
    assert_eq!(path_of(&client).await, "/app/login");

    client.client.clone().close().await.unwrap();
    drop(driver);
    platform.server.terminate().unwrap();
}

/// Opens the "New" form of a catalogue kind from the namespace dashboard `dashboard`, fills
/// `fields` (CSS, text) and creates the object; answers the new object's page path.
async fn create_through_form(client: &Client, dashboard: &str, segment: &str, fields: &[(&str, &str)]) -> String {
    client.goto(dashboard).await.unwrap();
    let new = format!("a[href$='/{segment}/new']");
    follow(client, Locator::Css(&new)).await;
    for (css, text) in fields {
        fill(client, css, text).await;
    }
    submit(client, "main form.stack button[type=submit]").await;
    // The object's page with its message, or the form again with the API's refusal.
    let flash = text_of(client, "p.flash, p.error").await;
    assert!(flash.ends_with(" created."), "{segment}: {flash}");
    path_of(client).await
}

/// Picks the option of value `value` in the `select` that `css` finds.
async fn choose(client: &Client, css: &str, value: &str) {
    let select = element(client, Locator::Css(css)).await;
    select.select_by_value(value).await.unwrap();
}

/// The part of a path after its last `/`: the id of a catalogue object's page.
fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn catalogue_forms_access_rules_and_sessions_in_the_browser() {
    let Some(browsers) = browsers() else { return };
    let platform = Platform::up(&[], &[]).await;
    let driver = Driver::start(&browsers).await;
    let admin = driver.browser(&browsers).await;
    sign_in_with_key(&admin, &platform).await;

    // A namespace through its form.
    fill(&admin, "#ns-name", "platform-team").await;
    submit(&admin, "form[action='/app/ns'] button[type=submit]").await;
    assert_eq!(text_of(&admin, "p.flash, p.error").await, "Namespace created.");
    assert!(text_of(&admin, "h1").await.contains("Namespace platform-team"));
    let ns_path = path_of(&admin).await;
    let dashboard = platform.url(&ns_path);

    // Its catalogue through the forms: endpoint, recipe, template, application.
    let endpoint = create_through_form(
        &admin,
        &dashboard,
        "endpoint",
        &[("#f-name", "cloud"), ("#f-kind", "local")],
    )
    .await;
    assert_eq!(text_of(&admin, "h1").await, "cloud private");
    let recipe = create_through_form(
        &admin,
        &dashboard,
        "recipe",
        &[
            ("#f-name", "hello"),
            ("#f-version", "1.0"),
            ("#f-script", "#!/bin/bash\necho hello\n"),
            ("#f-base", "debian"),
        ],
    )
    .await;
    assert!(text_of(&admin, "pre.code").await.contains("echo hello"));
    let template = create_through_form(
        &admin,
        &dashboard,
        "template",
        &[
            ("#f-name", "single"),
            ("#f-version", "1"),
            ("#f-varrecipes", "recipes_vm"),
            ("#f-newkind", "local"),
            (
                "#f-newdata",
                // The agent declares the recipe variables: the template only uses them.
                "resource \"null_resource\" \"vm\" {\n  triggers = { boot = var.recipes_vm }\n}\n",
            ),
        ],
    )
    .await;
    assert!(text_of(&admin, "main").await.contains("Terraform for local"));
    // An application: its template first, then the recipes of the template's variable.
    admin.goto(&dashboard).await.unwrap();
    follow(&admin, Locator::Css("a[href$='/app/new']")).await;
    choose(&admin, "#f-template", last_segment(&template)).await;
    submit(&admin, "main form button.primary").await;
    fill(&admin, "#f-name", "hello-app").await;
    choose(&admin, "#f-r-recipes_vm", last_segment(&recipe)).await;
    submit(&admin, "main form.stack button[type=submit]").await;
    assert_eq!(text_of(&admin, "p.flash, p.error").await, "Application created.");
    let recipes = text_of(&admin, "table.kv").await;
    assert!(
        recipes.contains("recipes_vm") && recipes.contains(last_segment(&recipe)),
        "{recipes}"
    );
    // The catalogue made through the forms is runnable: the wizard offers the endpoint.
    submit(&admin, "a.button.primary[href$='/run']").await;
    element(&admin, Locator::Css("#run-name")).await;
    assert!(admin.source().await.unwrap().contains(last_segment(&endpoint)));

    // A plain user through the users page (the API key shown once).
    follow(&admin, Locator::LinkText("Users")).await;
    fill(&admin, "#u-uid", "alice").await;
    fill(&admin, "#u-password", ALICE_PASSWORD).await;
    submit(&admin, "form[action='/app/users'] button.primary").await;
    assert!(text_of(&admin, ".secret-once h2").await.contains("User alice created"));

    // A POST carrying the session cookie but not the form's CSRF token is refused.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin_cookie = session_cookie(&admin).await;
    for csrf in [None, Some("not-the-token")] {
        let mut fields = vec![("name", "forged")];
        fields.extend(csrf.map(|token| ("csrf", token)));
        let response = http
            .post(platform.url("/app/ns"))
            .header("cookie", &admin_cookie)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "csrf {csrf:?}");
        assert!(response.text().await.unwrap().contains("did not come from this site"));
    }
    admin.goto(&platform.url("/app/ns?all=1")).await.unwrap();
    assert!(!admin.source().await.unwrap().contains("forged"));

    // An unknown page is the HTML "not found" page.
    admin.goto(&platform.url("/app/no/such/page")).await.unwrap();
    assert_eq!(text_of(&admin, "h1").await, "Not Found");
    assert!(text_of(&admin, "p.error").await.contains("no page at this address"));

    // The plain user sees neither the admin's namespace nor the admin pages...
    let alice = driver.browser(&browsers).await;
    sign_in(&alice, &platform, "alice", ALICE_PASSWORD).await;
    assert_eq!(path_of(&alice).await, "/app/ns");
    let menu = text_of(&alice, "header nav").await;
    assert!(!menu.contains("Users") && !menu.contains("Usage"), "{menu}");
    for list in ["/app/ns", "/app/ns?all=1", "/app/run?all=1"] {
        alice.goto(&platform.url(list)).await.unwrap();
        assert!(!alice.source().await.unwrap().contains("platform-team"), "{list}");
    }
    // ...and the server refuses their URLs: error pages, not empty ones.
    let alice_cookie = session_cookie(&alice).await;
    for refused in [
        ns_path.clone(),
        format!("{ns_path}/app"),
        format!("{ns_path}/run"),
        endpoint.clone(),
        "/app/users".to_string(),
        "/app/users/admin".to_string(),
        "/app/usage".to_string(),
    ] {
        alice.goto(&platform.url(&refused)).await.unwrap();
        assert_eq!(text_of(&alice, "h1").await, "Forbidden", "{refused}");
        assert!(!text_of(&alice, "p.error").await.is_empty());
        let status = http
            .get(platform.url(&refused))
            .header("cookie", &alice_cookie)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    }

    // The password changed through the API revokes the session's token: the next page is
    // the login page with a message (the revocation reaches every service within moments).
    let changed = http
        .put(platform.url("/auth/user/alice/password"))
        .header("X-API-Key", ADMIN_KEY)
        .json(&serde_json::json!({"password": "alice-password-2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    eventually(&alice, "the revoked session to end", PAGE_PATIENCE, async || {
        alice.goto(&platform.url("/app/ns")).await.ok()?;
        (path_of(&alice).await == "/app/login").then_some(())
    })
    .await;
    let message = text_of(&alice, "p.flash").await;
    assert!(message.contains("Your session has expired"), "{message}");
    sign_in(&alice, &platform, "alice", "alice-password-2").await;
    assert_eq!(path_of(&alice).await, "/app/ns");

    for browser in [alice, admin] {
        browser.client.clone().close().await.unwrap();
    }
    drop(driver);
    platform.server.terminate().unwrap();
}
