#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Boot scripts and the shell goterra-cli run by real bash and curl against a real store.

use goterra_boot::{BootScript, Recipe, SHELL_CLI, render};
use goterra_core::Sensitive;
use goterra_db::Engine;
use goterra_testing::TestServer;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

struct Deployment {
    server: TestServer,
    id: String,
    token: String,
    dir: tempfile::TempDir,
}

impl Deployment {
    async fn new() -> Self {
        let server = TestServer::start(Engine::Sqlite, &[goterra_store::spec()])
            .await
            .unwrap();
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/store", server.url))
            .bearer_auth(server.token_for("alice", false))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("goterra-cli"), SHELL_CLI).unwrap();
        Self {
            id: answer["id"].as_str().unwrap().to_string(),
            token: answer["token"].as_str().unwrap().to_string(),
            server,
            dir,
        }
    }

    fn cli(&self) -> Command {
        let mut command = Command::new("bash");
        command
            .arg(self.dir.path().join("goterra-cli"))
            .env("GOT_URL", format!("{}/", self.server.url))
            .env("GOT_DEPLOYMENT", &self.id)
            .env("GOT_TOKEN", &self.token);
        command
    }

    async fn cli_output(&self, args: &[&str]) -> Output {
        let mut command = self.cli();
        command.args(args);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }

    async fn values(&self) -> Value {
        let answer: Value = reqwest::Client::new()
            .get(format!("{}/store/{}", self.server.url, self.id))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["deployment"].clone()
    }
}

#[tokio::test]
async fn shell_cli_round_trips_text_and_binary_exactly() {
    let dep = Deployment::new().await;
    let tricky = "quote \" backslash \\ tab \t unicode é ✓ $(not run) `nor this`";
    let put = dep.cli_output(&["put", "k1", tricky]).await;
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let get = dep.cli_output(&["get", "k1"]).await;
    assert!(get.status.success());
    assert_eq!(String::from_utf8(get.stdout).unwrap(), format!("{tricky}\n"));

    let text_file = dep.dir.path().join("text");
    std::fs::write(&text_file, "line 1\nline \"2\"\n\nend\n").unwrap();
    let binary_file = dep.dir.path().join("binary");
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 10, 13]).collect();
    std::fs::write(&binary_file, &binary).unwrap();
    for (key, file) in [("text", &text_file), ("binary", &binary_file)] {
        let put = dep.cli_output(&["put", key, &format!("@{}", file.display())]).await;
        assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    }
    let values = dep.values().await;
    assert_eq!(values["text"], "line 1\nline \"2\"\n\nend\n", "text is stored readable");
    assert!(values["binary"].as_str().unwrap().starts_with("base64:"));
    let get = dep.cli_output(&["get", "binary"]).await;
    assert_eq!(get.stdout, binary, "binary comes back byte for byte");
    let get = dep.cli_output(&["--timeout", "0", "get", "text"]).await;
    assert_eq!(String::from_utf8(get.stdout).unwrap(), "line 1\nline \"2\"\n\nend\n\n");
}

#[tokio::test]
async fn shell_cli_waits_on_the_server_and_reports_failures_with_exit_codes() {
    let dep = Deployment::new().await;
    let mut waiting = dep.cli();
    waiting.args(["--timeout", "1", "get", "late"]);
    let waiter = tokio::task::spawn_blocking(move || waiting.output().unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let put = dep.cli_output(&["put", "late", "arrived"]).await;
    assert!(put.status.success());
    let got = waiter.await.unwrap();
    assert!(got.status.success());
    assert_eq!(String::from_utf8(got.stdout).unwrap(), "arrived\n");

    let missing = dep.cli_output(&["--timeout", "0", "get", "never"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(missing.stdout.is_empty(), "diagnostics go to stderr only");

    let mut bad_token = dep.cli();
    bad_token.env("GOT_TOKEN", "not-a-token").args(["get", "late"]);
    let refused = tokio::task::spawn_blocking(move || bad_token.output().unwrap())
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(3), "auth failures fail at once");

    for args in [&["get"][..], &["put", "k"][..], &[][..], &["get", "bad key"][..]] {
        let usage = dep.cli_output(args).await;
        assert_eq!(usage.status.code(), Some(2), "{args:?}");
    }
}

/// Runs a boot script off the runtime thread, which serves the store meanwhile.
async fn run_script(script: &str, home: &Path) -> Output {
    let path = home.join("boot.sh");
    std::fs::write(&path, script).unwrap();
    let mut command = Command::new("bash");
    command
        .arg(&path)
        .env("GOT_HOME", home.join("got"))
        .env("GOT_SSH_ROOT", home.join("sshroot"));
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn boot_script_runs_recipes_in_order_once_with_inputs_verbatim() {
    let dep = Deployment::new().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("sshroot/root")).unwrap();
    let witness = home.path().join("pwned");
    let hostile = format!(
        "it's \"quoted\" ${{HOME}} $(touch {w}) `touch {w}`\nsecond line",
        w = witness.display()
    );
    let out = home.path().join("out");
    let recipes = vec![
        Recipe {
            id: "r-base".into(),
            name: "base".into(),
            script: format!("echo base >> {}\n", out.display()),
        },
        Recipe {
            id: "r-app".into(),
            name: "app".into(),
            script: format!(
                "printf '%s' \"$message\" > {o}.message\necho app >> {o}\n\"$GOT_HOME/goterra-cli\" put from_recipe \"${{GOT_DEP}}\"\n",
                o = out.display()
            ),
        },
    ];
    let token = Sensitive::new(dep.token.clone());
    let inputs = BTreeMap::from([("message".to_string(), hostile.clone())]);
    let script = render(&BootScript {
        app_id: "app1",
        name: "cluster-master",
        store_url: &dep.server.url,
        deployment: &dep.id,
        token: &token,
        recipes: &recipes,
        inputs: &inputs,
        ssh_pub_key: Some("ssh-ed25519 AAAAC3 alice@example.org"),
    })
    .unwrap();

    let run = run_script(&script, home.path()).await;
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "base\napp\n");
    assert_eq!(
        std::fs::read_to_string(format!("{}.message", out.display())).unwrap(),
        hostile
    );
    assert!(!witness.exists(), "nothing in an input is executed");
    let keys = std::fs::read_to_string(home.path().join("sshroot/root/.ssh/authorized_keys")).unwrap();
    assert_eq!(keys, "ssh-ed25519 AAAAC3 alice@example.org\n");

    let values = dep.values().await;
    let host_key = |prefix: &str| {
        values
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {prefix}* key in {values}"))
    };
    assert_eq!(host_key("status_app_cluster-master_"), "over");
    assert!(host_key("ts_start_cluster-master_").parse::<u64>().is_ok());
    assert!(host_key("ts_end_cluster-master_").parse::<u64>().is_ok());
    assert!(host_key("_log_app_cluster-master_").contains("running recipe app"));
    assert_eq!(values["from_recipe"], dep.id.as_str(), "placeholders are substituted");

    // A second boot does not run the recipes again.
    let again = run_script(&script, home.path()).await;
    assert!(again.status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "base\napp\n");
}

#[tokio::test]
async fn a_failing_recipe_reports_failed_with_its_log() {
    let dep = Deployment::new().await;
    let home = tempfile::tempdir().unwrap();
    let recipes = vec![Recipe {
        id: "r1".into(),
        name: "broken".into(),
        // Recipes keep their own error handling, as in the original: the exit status counts.
        script: "echo about to fail\nexit 3\necho never\n".into(),
    }];
    let token = Sensitive::new(dep.token.clone());
    let script = render(&BootScript {
        app_id: "app1",
        name: "worker",
        store_url: &dep.server.url,
        deployment: &dep.id,
        token: &token,
        recipes: &recipes,
        inputs: &BTreeMap::new(),
        ssh_pub_key: None,
    })
    .unwrap();
    let run = run_script(&script, home.path()).await;
    assert!(!run.status.success());
    let values = dep.values().await;
    let object = values.as_object().unwrap();
    let status = object
        .iter()
        .find(|(k, _)| k.starts_with("status_app_worker_"))
        .unwrap()
        .1;
    assert_eq!(status, "failed");
    let log = object
        .iter()
        .find(|(k, _)| k.starts_with("_log_app_worker_"))
        .unwrap()
        .1;
    assert!(log.as_str().unwrap().contains("about to fail"));
    assert!(!log.as_str().unwrap().contains("never"));
}
