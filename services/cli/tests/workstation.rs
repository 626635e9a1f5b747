//! The real `goterra-cli` binary's workstation commands against a real platform (auth, deploy,
//! store and run-agent on a random port, as `goterra up` serves them), with its own config and
//! cache directories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goterra_client::Client;
use goterra_client::auth::RegisterRequest;
use goterra_db::Engine;
use goterra_testing::{TestServer, free_port};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const CLI: &str = env!("CARGO_BIN_EXE_goterra-cli");

struct Workstation {
    server: TestServer,
    home: tempfile::TempDir,
    /// The API key of `admin-user`, an admin with an API key.
    key: String,
}

impl Workstation {
    async fn start() -> Self {
        let server = TestServer::start(
            Engine::Sqlite,
            &[
                goterra_auth::spec(),
                goterra_deploy::spec(),
                goterra_store::spec(),
                goterra_run_agent::spec(),
            ],
        )
        .await
        .unwrap();
        let admin = Client::new(&server.url)
            .unwrap()
            .with_token(server.token_for("admin", true));
        let registered = admin
            .register(&RegisterRequest {
                uid: "admin-user".into(),
                password: "admin-user-password".into(),
                email: "admin-user@example.org".into(),
                pub_key: String::new(),
                kind: None,
                admin: Some(true),
                super_user: None,
            })
            .await
            .unwrap();
        Self {
            server,
            home: tempfile::tempdir().unwrap(),
            key: registered.apikey,
        }
    }

    fn config_file(&self) -> PathBuf {
        self.home.path().join("config/goterra/config.toml")
    }

    /// Runs the CLI with this workstation's directories, `stdin` piped in.
    async fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
        let mut command = tokio::process::Command::new(CLI);
        command
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_CACHE_HOME", self.home.path().join("cache"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).await.unwrap();
        drop(input);
        tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
            .await
            .expect("the CLI finished")
            .unwrap()
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[], "").await
    }

    /// Runs and expects exit 0; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert_eq!(output.status.code(), Some(0), "{args:?}: {}", describe(&output));
        text(&output.stdout)
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut with_output = args.to_vec();
        with_output.extend(["--output", "json"]);
        let stdout = self.ok(&with_output).await;
        serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{args:?}: not JSON ({err}): {stdout}"))
    }

    async fn login(&self) {
        let output = self
            .run_with(
                &["login", "--url", &self.server.url, "--apikey-stdin"],
                &[],
                &format!("{}\n", self.key),
            )
            .await;
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        assert!(text(&output.stdout).contains("admin-user"));
    }

    /// Every file under the workstation's home, as text.
    fn all_files(&self) -> String {
        let mut collected = String::new();
        collect(self.home.path(), &mut collected);
        collected
    }
}

fn collect(dir: &Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, into);
        } else {
            into.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Two recipes (one the other's parent), a template with two kinds, an app, an endpoint.
fn catalogue(root: &Path) {
    write(
        root,
        "recipes/base/v1/recipe.yaml",
        "recipe:\n  name: base\n  license: MIT\n  base: [debian]\n  inputs:\n    size: Disk size\n",
    );
    write(root, "recipes/base/v1/recipe.sh", "#!/bin/bash\necho base\n");
    write(
        root,
        "recipes/web/v1/recipe.yaml",
        "recipe:\n  name: web\n  license: MIT\n  parent: base/v1\n",
    );
    write(root, "recipes/web/v1/recipe.sh", "#!/bin/bash\necho web\n");
    write(
        root,
        "templates/vm/v1/template.yaml",
        "template:\n  name: vm\n  license: MIT\n  recipes: [recipes_vm]\n  files:\n    openstack: main.tf\n    local: main.tf\n",
    );
    write(
        root,
        "templates/vm/v1/openstack/main.tf",
        "output \"cloud\" {\n  value = \"openstack\"\n}\n",
    );
    write(
        root,
        "templates/vm/v1/local/main.tf",
        "output \"cloud\" {\n  value = \"local\"\n}\n",
    );
    write(
        root,
        "apps/site/v1/app.yaml",
        "application:\n  name: site\n  template: vm/v1\n  recipes:\n    recipes_vm: [web/v1]\n",
    );
    write(
        root,
        "endpoints/cloud/endpoint.yaml",
        "endpoint:\n  name: cloud\n  kind: openstack\n  config:\n    auth_url: https://cloud.example.org\n  images:\n    debian: img-1\n",
    );
}

#[tokio::test]
async fn login_config_whoami_and_failures_have_their_exit_codes() {
    let ws = Workstation::start().await;
    ws.login().await;
    let config = std::fs::read_to_string(ws.config_file()).unwrap();
    assert!(config.contains(&ws.server.url) && config.contains(&ws.key));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ws.config_file()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let cache = ws.home.path().join("cache/goterra/tokens.toml");
        assert_eq!(std::fs::metadata(cache).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let me = ws.json(&["whoami"]).await;
    assert_eq!(me["uid"], "admin-user");
    let shown = ws.json(&["config"]).await;
    assert_eq!(shown["url"], ws.server.url.as_str());
    assert_eq!(shown["apikey"], "set");

    // --verbose shows each call, and never the key or a token.
    let verbose = ws.run(&["--verbose", "whoami"]).await;
    assert_eq!(verbose.status.code(), Some(0));
    let stderr = text(&verbose.stderr);
    assert!(stderr.contains("GET ") && stderr.contains("/auth/me"), "{stderr}");
    assert!(!stderr.contains(&ws.key) && !stderr.contains("Bearer"));

    // A refused cached token is renewed by logging in again.
    let cache = ws.home.path().join("cache/goterra/tokens.toml");
    let cached = std::fs::read_to_string(&cache).unwrap();
    let token_line = cached
        .lines()
        .find(|line| line.starts_with("token"))
        .unwrap()
        .to_string();
    std::fs::write(&cache, cached.replace(&token_line, "token = \"expired-token\"")).unwrap();
    assert_eq!(ws.json(&["whoami"]).await["uid"], "admin-user");
    // An old cached token is renewed before use, and the new one cached.
    let cached = std::fs::read_to_string(&cache).unwrap();
    let obtained_line = cached
        .lines()
        .find(|line| line.starts_with("obtained"))
        .unwrap()
        .to_string();
    std::fs::write(&cache, cached.replace(&obtained_line, "obtained = 1")).unwrap();
    let renewing = ws.run(&["--verbose", "whoami"]).await;
    assert_eq!(renewing.status.code(), Some(0), "{}", describe(&renewing));
    assert!(
        text(&renewing.stderr).contains("/auth/token"),
        "{}",
        describe(&renewing)
    );
    assert!(!std::fs::read_to_string(&cache).unwrap().contains("obtained = 1\n"));

    // Wrong key: exit 3. Server down: exit 4. Usage: exit 2.
    let wrong = ws
        .run_with(&["whoami"], &[("GOT_APIKEY", "wrong-key-0123456789")], "")
        .await;
    assert_eq!(wrong.status.code(), Some(3), "{}", describe(&wrong));
    assert!(!text(&wrong.stderr).contains("wrong-key-0123456789"));
    let down = format!("http://127.0.0.1:{}", free_port().unwrap());
    let unreachable = ws.run_with(&["ns", "list"], &[("GOT_URL", &down)], "").await;
    assert_eq!(unreachable.status.code(), Some(4), "{}", describe(&unreachable));
    assert_eq!(ws.run(&["ns", "frobnicate"]).await.status.code(), Some(2));

    let logout = ws.ok(&["logout"]).await;
    assert!(logout.contains("Logged out"));
    assert!(!std::fs::read_to_string(ws.config_file()).unwrap().contains(&ws.key));
    assert_eq!(ws.run(&["whoami"]).await.status.code(), Some(3));
    ws.server.stop().await;
}

#[tokio::test]
async fn namespaces_endpoints_items_and_users() {
    let ws = Workstation::start().await;
    ws.login().await;
    ws.ok(&["ns", "create", "team"]).await;
    ws.ok(&["namespace", "edit", "team", "--add-member", "bob"]).await;
    let listed = ws.json(&["ns", "list"]).await;
    let team = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|ns| ns["name"] == "team")
        .unwrap()
        .clone();
    assert_eq!(team["members"], serde_json::json!(["bob"]));
    assert_eq!(ws.json(&["ns", "show", "team"]).await["_id"], team["_id"]);

    let files = tempfile::tempdir().unwrap();
    let recipe = files.path().join("recipe.json");
    std::fs::write(
        &recipe,
        r#"{"name": "hello", "base": ["debian"], "script": "echo hello"}"#,
    )
    .unwrap();
    ws.ok(&["recipe", "create", recipe.to_str().unwrap(), "--ns", "team"])
        .await;
    let recipes = ws.json(&["recipe", "list", "--ns", "team"]).await;
    assert_eq!(recipes.as_array().unwrap().len(), 1);
    let change = files.path().join("change.yaml");
    std::fs::write(&change, "description: says hello\n").unwrap();
    ws.ok(&["recipe", "update", "hello", change.to_str().unwrap(), "--ns", "team"])
        .await;
    assert_eq!(
        ws.json(&["recipe", "show", "hello", "--ns", "team"]).await["description"],
        "says hello"
    );

    // The community endpoint format, a secret read from stdin, defaults.
    catalogue(files.path());
    let endpoint_file = files.path().join("endpoints/cloud/endpoint.yaml");
    ws.ok(&["endpoint", "create", endpoint_file.to_str().unwrap(), "--ns", "team"])
        .await;
    let secret = ws
        .run_with(
            &[
                "endpoint",
                "secret",
                "set",
                "cloud",
                "--ns",
                "team",
                "--user",
                "me",
                "--password-stdin",
            ],
            &[],
            "cloud-password-xyz\n",
        )
        .await;
    assert_eq!(secret.status.code(), Some(0), "{}", describe(&secret));
    assert_eq!(
        ws.json(&["endpoint", "secret", "show", "cloud", "--ns", "team"]).await["name"],
        "me"
    );
    ws.ok(&[
        "endpoint",
        "defaults",
        "cloud",
        "--ns",
        "team",
        "--set",
        "flavor=small,large",
    ])
    .await;
    let defaults = ws.json(&["endpoint", "defaults", "cloud", "--ns", "team"]).await;
    assert_eq!(defaults["defaults"]["flavor"], serde_json::json!(["small", "large"]));
    ws.json(&["endpoint", "list", "--ns", "team"]).await;
    ws.json(&["template", "list"]).await;
    ws.json(&["app", "list"]).await;

    // Users: the new key is printed once, never stored anywhere by the CLI.
    let created = ws
        .run_with(
            &[
                "user",
                "create",
                "carol",
                "--email",
                "carol@example.org",
                "--password-stdin",
            ],
            &[],
            "carol-password-1\n",
        )
        .await;
    assert_eq!(created.status.code(), Some(0), "{}", describe(&created));
    let users = ws.json(&["user", "list"]).await;
    assert!(users.as_array().unwrap().iter().any(|u| u["uid"] == "carol"));
    ws.ok(&["user", "edit", "carol", "--email", "carol@example.net"]).await;
    assert_eq!(ws.json(&["user", "show", "carol"]).await["email"], "carol@example.net");
    ws.ok(&["user", "apikey", "carol"]).await;
    ws.ok(&["user", "delete", "carol", "--yes"]).await;

    // Deletion needs --yes off a terminal.
    assert_eq!(
        ws.run(&["recipe", "delete", "hello", "--ns", "team"])
            .await
            .status
            .code(),
        Some(2)
    );
    ws.ok(&["recipe", "delete", "hello", "--ns", "team", "--yes"]).await;
    ws.ok(&["endpoint", "delete", "cloud", "--ns", "team", "--yes"]).await;
    ws.ok(&["ns", "delete", "team", "--yes"]).await;

    let everything = ws.all_files();
    assert!(!everything.contains("cloud-password-xyz") && !everything.contains("carol-password-1"));
    ws.server.stop().await;
}

#[tokio::test]
async fn a_catalogue_imports_once_and_broken_items_are_skipped() {
    let ws = Workstation::start().await;
    ws.login().await;
    ws.ok(&["ns", "create", "catalog"]).await;
    let dir = tempfile::tempdir().unwrap();
    catalogue(dir.path());
    write(
        dir.path(),
        "apps/broken/v1/app.yaml",
        "application:\n  name: broken\n  template: missing/v1\n",
    );
    write(
        dir.path(),
        "recipes/nameless/v1/recipe.yaml",
        "recipe:\n  license: MIT\n  base: [debian]\n",
    );
    write(dir.path(), "recipes/nameless/v1/recipe.sh", "echo\n");
    let root = dir.path().to_str().unwrap();

    let lint = ws.run(&["catalog", "lint", root, "--output", "json"]).await;
    assert_eq!(lint.status.code(), Some(1), "{}", describe(&lint));
    let linted: Value = serde_json::from_slice(&lint.stdout).unwrap();
    let result_of = |report: &Value, item: &str| {
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["item"] == item)
            .map(|entry| entry["result"].as_str().unwrap().to_string())
    };
    assert_eq!(result_of(&linted, "broken/v1").as_deref(), Some("error"));
    assert_eq!(result_of(&linted, "nameless/v1").as_deref(), Some("error"));
    assert_eq!(result_of(&linted, "site/v1").as_deref(), Some("ok"));

    let dry = ws
        .run(&[
            "catalog",
            "import",
            root,
            "--ns",
            "catalog",
            "--dry-run",
            "--output",
            "json",
        ])
        .await;
    let dry: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(result_of(&dry, "site/v1").as_deref(), Some("created"));
    assert!(
        ws.json(&["recipe", "list", "--ns", "catalog"])
            .await
            .as_array()
            .unwrap()
            .is_empty(),
        "a dry run writes nothing"
    );

    let first = ws
        .run(&["catalog", "import", root, "--ns", "catalog", "--output", "json"])
        .await;
    assert_eq!(
        first.status.code(),
        Some(1),
        "the broken items fail the command: {}",
        describe(&first)
    );
    let first: Value = serde_json::from_slice(&first.stdout).unwrap();
    for item in ["base/v1", "web/v1", "vm/v1", "site/v1", "cloud"] {
        assert_eq!(result_of(&first, item).as_deref(), Some("created"), "{item}: {first}");
    }
    assert_eq!(result_of(&first, "broken/v1").as_deref(), Some("skipped"));
    let apps = ws.json(&["app", "list", "--ns", "catalog"]).await;
    let site = &apps.as_array().unwrap()[0];
    let recipes = ws.json(&["recipe", "list", "--ns", "catalog"]).await;
    let web = recipes.as_array().unwrap().iter().find(|r| r["name"] == "web").unwrap();
    assert_eq!(
        site["templaterecipes"]["recipes_vm"],
        serde_json::json!([web["id"].clone()])
    );
    // Every `show` reads back as JSON, by name.
    assert_eq!(
        ws.json(&["app", "show", "site", "--ns", "catalog"]).await["id"],
        site["id"]
    );
    assert_eq!(
        ws.json(&["template", "show", "vm", "--ns", "catalog"]).await["name"],
        "vm"
    );
    assert_eq!(
        ws.json(&["endpoint", "show", "cloud", "--ns", "catalog"]).await["kind"],
        "openstack"
    );

    let second = ws
        .run(&["catalog", "import", root, "--ns", "catalog", "--output", "json"])
        .await;
    let second: Value = serde_json::from_slice(&second.stdout).unwrap();
    for item in ["base/v1", "web/v1", "vm/v1", "site/v1", "cloud"] {
        assert_eq!(
            result_of(&second, item).as_deref(),
            Some("unchanged"),
            "{item}: {second}"
        );
    }
    // A changed script is updated, and only that.
    write(dir.path(), "recipes/web/v1/recipe.sh", "#!/bin/bash\necho web 2\n");
    let third = ws
        .run(&["catalog", "import", root, "--ns", "catalog", "--output", "json"])
        .await;
    let third: Value = serde_json::from_slice(&third.stdout).unwrap();
    assert_eq!(result_of(&third, "web/v1").as_deref(), Some("updated"));
    assert_eq!(result_of(&third, "base/v1").as_deref(), Some("unchanged"));
    ws.server.stop().await;
}

/// Terraform for the demo run, as the other end-to-end tests find it.
fn terraform_available() -> bool {
    let found = std::env::var("GOT_TERRAFORM_BIN")
        .ok()
        .filter(|path| Path::new(path).exists())
        .is_some();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide Terraform (GOT_TERRAFORM_BIN)"
        );
        eprintln!("skipped: no Terraform binary (set GOT_TERRAFORM_BIN)");
    }
    found
}

#[tokio::test]
async fn the_local_demo_runs_with_wait_and_is_destroyed() {
    if !terraform_available() {
        return;
    }
    let ws = Workstation::start().await;
    ws.login().await;
    let vms = ws.server.data_dir.path().join("vms");
    let admin = goterra_client::Client::new(&ws.server.url)
        .unwrap()
        .with_token(ws.server.token_for("admin", true));
    let demo = goterra_deploy::demo::load(&admin, &vms).await.unwrap();

    let started = ws
        .run(&[
            "run",
            "start",
            "cluster",
            "--ns",
            "demo",
            "--endpoint",
            "local",
            "-i",
            "workers=1",
            "--wait",
        ])
        .await;
    assert_eq!(started.status.code(), Some(0), "{}", describe(&started));
    let printed = text(&started.stdout);
    assert!(printed.contains(" = "), "outputs are printed: {printed}");

    let runs = ws.json(&["run", "list", "--ns", "demo"]).await;
    let run_id = runs.as_array().unwrap()[0]["id"].as_str().unwrap().to_string();
    let shown = ws.json(&["run", "show", &run_id]).await;
    assert_eq!(shown["run"]["status"], "deploy_success");
    assert_eq!(shown["run"]["namespace"], demo.namespace.as_str());
    let logs = ws.ok(&["run", "logs", &run_id]).await;
    assert!(!logs.is_empty());

    // The run's store deployment, with the user's credentials: the master publishes its token
    // once its boot script runs (after the apply), so `get` waits for it; `dump` then shows it.
    let token = ws.ok(&["store", "get", "master_token", "--run", &run_id]).await;
    let keys = ws.json(&["store", "dump", "--run", &run_id]).await;
    assert_eq!(keys["master_token"].as_str(), Some(token.trim()));
    ws.ok(&["store", "put", "note", "from the workstation", "--run", &run_id])
        .await;
    let watched = ws
        .ok(&["store", "watch", "--run", &run_id, "--filter", "note", "--timeout", "0"])
        .await;
    assert_eq!(watched.trim(), "note = from the workstation");

    let destroyed = ws.run(&["run", "destroy", &run_id, "--wait"]).await;
    assert_eq!(destroyed.status.code(), Some(0), "{}", describe(&destroyed));
    assert_eq!(
        ws.json(&["run", "show", &run_id, "--ns", "demo"]).await["run"]["status"],
        "destroy_success"
    );
    ws.server.stop().await;
}

#[tokio::test]
async fn completions_and_help_need_no_server() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let output = std::process::Command::new(CLI)
            .args(["completions", shell])
            .env_clear()
            .env("HOME", home.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{shell}");
        assert!(text(&output.stdout).contains("goterra-cli"), "{shell}");
    }
    let help = std::process::Command::new(CLI)
        .args(["run", "start", "--help"])
        .output()
        .unwrap();
    assert!(text(&help.stdout).contains("Examples:"));
}
