//! The executor with the real Terraform and the null provider, against an in-test state server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use goterra_core::runs::{RunAction, RunStatus};
use goterra_run_agent::executor::{ExecutorConfig, execute};
use serde_json::json;
use std::sync::Arc;
use support::{Lines, alive, executor_config, spec, state_server, wait_for_file};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "pw-Very$ecret-7731";

const NULL_TEMPLATE: &str = r#"
resource "null_resource" "vm" {
  count    = var.vm_count
  triggers = { name = var.name }
}

output "deployment_id" { value = "dep-${var.name}" }
output "vms" { value = length(null_resource.vm) }
output "secret_out" {
  value     = var.password
  sensitive = true
}
"#;

/// No run directory is left in the work dir (the cache of initialised directories stays).
fn no_run_dir(path: &std::path::Path) -> bool {
    std::fs::read_dir(path)
        .unwrap()
        .all(|entry| !entry.unwrap().file_name().to_string_lossy().starts_with("goterra-run-"))
}

#[tokio::test]
async fn apply_reports_outputs_keeps_state_in_the_backend_and_destroy_removes_it() {
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let config = executor_config(work.path());
    let mut deploy = spec(
        &server,
        RunAction::Deploy,
        NULL_TEMPLATE,
        json!({"name": "demo", "vm_count": 2}),
        &[("password", SECRET)],
    );
    let log = Arc::new(Lines::default());
    let report = execute(&config, &deploy, log.clone(), CancellationToken::new()).await;
    let text = log.text();
    assert_eq!(report.status, RunStatus::DeploySuccess, "{}\n{text}", report.error);
    assert_eq!(report.outputs["vms"]["value"], json!(2));
    assert_eq!(report.outputs["secret_out"]["value"], json!("***"));
    assert_eq!(report.deployment_id.as_deref(), Some("dep-demo"));
    assert!(report.duration > 0.0);
    assert!(text.contains("Apply complete"), "{text}");
    assert!(!text.contains(SECRET));
    assert_eq!(
        server.store.resources(&deploy.run).len(),
        1,
        "one null_resource block with count 2"
    );
    assert_eq!(
        server.store.resources(&deploy.run)[0]["instances"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        server.store.locks.lock().unwrap().is_empty(),
        "the state lock is released"
    );
    assert_eq!(*server.store.bad_auth.lock().unwrap(), 0);
    assert!(no_run_dir(work.path()), "the run directory is removed");

    // Any agent can destroy: a fresh directory, the state comes from the backend.
    deploy.action = RunAction::Destroy;
    let log = Arc::new(Lines::default());
    let report = execute(&config, &deploy, log.clone(), CancellationToken::new()).await;
    assert_eq!(
        report.status,
        RunStatus::DestroySuccess,
        "{}\n{}",
        report.error,
        log.text()
    );
    assert_eq!(report.outputs, json!({}));
    assert!(log.text().contains("Destroy complete"));
    assert!(server.store.resources(&deploy.run).is_empty());
    assert!(no_run_dir(work.path()));
}

/// The destroy after a deploy of the same template skips `terraform init`: it reuses the
/// directory the deploy initialised. One that Terraform finds out of date (here a lock file
/// that no longer matches the provider) is initialised again, and the action still succeeds.
#[tokio::test]
async fn an_initialised_directory_is_reused_and_initialised_again_when_out_of_date() {
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let config = executor_config(work.path());
    let mut run = spec(
        &server,
        RunAction::Deploy,
        NULL_TEMPLATE,
        json!({"name": "cached", "vm_count": 1}),
        &[("password", SECRET)],
    );
    let execute_logged = |run: goterra_core::runs::RunSpec| {
        let config = config.clone();
        async move {
            let log = Arc::new(Lines::default());
            let report = execute(&config, &run, log.clone(), CancellationToken::new()).await;
            (report, log.text())
        }
    };
    const REUSED: &str = "reusing the initialised directory";
    let (report, text) = execute_logged(run.clone()).await;
    assert_eq!(report.status, RunStatus::DeploySuccess, "{}\n{text}", report.error);
    assert!(text.contains("Terraform has been successfully initialized"), "{text}");
    assert!(!text.contains(REUSED), "{text}");

    run.action = RunAction::Destroy;
    let (report, text) = execute_logged(run.clone()).await;
    assert_eq!(report.status, RunStatus::DestroySuccess, "{}\n{text}", report.error);
    assert!(text.contains(REUSED), "{text}");
    assert!(!text.contains("Terraform has been successfully initialized"), "{text}");
    assert!(server.store.resources(&run.run).is_empty());

    // Every kept lock file now pins another provider package.
    let cache = work.path().join("goterra-init-cache");
    for entry in std::fs::read_dir(&cache).unwrap() {
        let lock = entry.unwrap().path().join(".terraform.lock.hcl");
        let text = std::fs::read_to_string(&lock).unwrap();
        let start = text.find("\"h1:").unwrap() + 1;
        let end = start + text[start..].find('"').unwrap();
        let forged = format!("h1:{}=", "A".repeat(43));
        std::fs::write(&lock, format!("{}{forged}{}", &text[..start], &text[end..])).unwrap();
    }
    run.action = RunAction::Deploy;
    let (report, text) = execute_logged(run.clone()).await;
    assert_eq!(report.status, RunStatus::DeploySuccess, "{}\n{text}", report.error);
    assert!(text.contains("out of date: running terraform init"), "{text}");
    assert!(text.contains("Terraform has been successfully initialized"), "{text}");
    assert_eq!(server.store.resources(&run.run).len(), 1);
    assert!(
        server.store.locks.lock().unwrap().is_empty(),
        "the state lock is released"
    );
    assert!(no_run_dir(work.path()));
}

#[tokio::test]
async fn a_hostile_value_reaches_local_exec_verbatim_and_executes_nothing() {
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let marker = out.path().join("pwned");
    let hostile = format!(
        "a\"b'c \\\" ${{var.name}} %{{ if true }}x%{{ endif }} $(touch {m}) `touch {m}`\nsecond line\" }}\nresource \"x\" {{",
        m = marker.display()
    );
    let template = r#"
resource "null_resource" "echo" {
  provisioner "local-exec" {
    command     = "printf '%s' \"$VALUE\" > \"$OUT\""
    environment = {
      VALUE = var.hostile
      OUT   = var.out_file
    }
  }
}
"#;
    let deploy = spec(
        &server,
        RunAction::Deploy,
        template,
        json!({"hostile": hostile, "out_file": out.path().join("value.txt"), "name": "n"}),
        &[],
    );
    let log = Arc::new(Lines::default());
    let report = execute(
        &executor_config(work.path()),
        &deploy,
        log.clone(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        report.status,
        RunStatus::DeploySuccess,
        "{}\n{}",
        report.error,
        log.text()
    );
    let written = std::fs::read_to_string(out.path().join("value.txt")).unwrap();
    assert_eq!(written, hostile);
    assert!(!marker.exists(), "nothing in the value was executed");
}

#[tokio::test]
async fn secrets_and_the_agent_environment_stay_out_of_the_log() {
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    // The child prints its whole environment and its directory's mode: Terraform passes
    // TF_VAR_password on, so the agent must redact it; nothing of the test process's own
    // environment (CARGO_*) may be there.
    let template = r#"
resource "null_resource" "show" {
  provisioner "local-exec" {
    command = "stat -c 'dir-mode=%a' . ; env | sort ; echo \"the password is $TF_VAR_password!\""
  }
}
"#;
    let deploy = spec(
        &server,
        RunAction::Deploy,
        template,
        json!({"name": "n"}),
        &[("password", SECRET)],
    );
    let log = Arc::new(Lines::default());
    let report = execute(
        &executor_config(work.path()),
        &deploy,
        log.clone(),
        CancellationToken::new(),
    )
    .await;
    let text = log.text();
    assert_eq!(report.status, RunStatus::DeploySuccess, "{}\n{text}", report.error);
    assert!(text.contains("the password is ***!"), "{text}");
    assert!(text.contains("TF_HTTP_PASSWORD=***"), "{text}");
    assert!(text.contains("TF_IN_AUTOMATION=1"), "{text}");
    assert!(text.contains("dir-mode=700"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains(support::STATE_PASSWORD), "{text}");
    assert!(!text.contains("CARGO_PKG_NAME"), "{text}");
}

/// A template whose apply starts a long child (writing its pid) and waits for it.
const SLOW_TEMPLATE: &str = r#"
resource "null_resource" "slow" {
  provisioner "local-exec" {
    command = "sleep 600 & echo $! > \"$PID_FILE\"; wait"
    environment = { PID_FILE = var.pid_file }
  }
}
"#;

#[tokio::test]
async fn a_timeout_stops_terraform_and_its_children() {
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let pid_file = out.path().join("child.pid");
    let mut deploy = spec(
        &server,
        RunAction::Deploy,
        SLOW_TEMPLATE,
        json!({"pid_file": pid_file}),
        &[],
    );
    // The spec allows 300 s; the agent's own cap (GOT_RUN_TIMEOUT) is shorter and wins.
    deploy.timeout_secs = 300;
    let config = ExecutorConfig {
        max_timeout: Some(std::time::Duration::from_secs(20)),
        ..executor_config(work.path())
    };
    let log = Arc::new(Lines::default());
    let report = execute(&config, &deploy, log.clone(), CancellationToken::new()).await;
    assert_eq!(report.status, RunStatus::DeployFailure, "{}", log.text());
    assert!(report.error.contains("timed out after 20 s"), "{}", report.error);
    let child: u32 = wait_for_file(&pid_file).await.parse().unwrap();
    assert!(!alive(child), "the local-exec child must be stopped too");
    assert!(log.text().contains("goterra: timeout: stopping terraform"));
    assert!(no_run_dir(work.path()));
}

#[tokio::test]
async fn cancel_stops_terraform_and_its_children() {
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let pid_file = out.path().join("child.pid");
    let deploy = spec(
        &server,
        RunAction::Deploy,
        SLOW_TEMPLATE,
        json!({"pid_file": pid_file}),
        &[],
    );
    let config = executor_config(work.path());
    let cancel = CancellationToken::new();
    let log = Arc::new(Lines::default());
    let running = {
        let (config, deploy, log, cancel) = (config.clone(), deploy.clone(), log.clone(), cancel.clone());
        tokio::spawn(async move { execute(&config, &deploy, log, cancel).await })
    };
    let child: u32 = wait_for_file(&pid_file).await.parse().unwrap();
    assert!(alive(child));
    cancel.cancel();
    let report = running.await.unwrap();
    assert_eq!(report.status, RunStatus::Canceled, "{}", log.text());
    assert!(!alive(child), "the local-exec child must be stopped too");
    assert!(
        server.store.locks.lock().unwrap().is_empty(),
        "Terraform stopped cleanly and unlocked"
    );
}

#[tokio::test]
async fn a_missing_binary_is_a_clear_failure() {
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let config = ExecutorConfig {
        terraform_bin: "/nonexistent/terraform".into(),
        work_dir: Some(work.path().to_path_buf()),
        ..ExecutorConfig::default()
    };
    let deploy = spec(&server, RunAction::Deploy, NULL_TEMPLATE, json!({}), &[]);
    let report = execute(&config, &deploy, Arc::new(Lines::default()), CancellationToken::new()).await;
    assert_eq!(report.status, RunStatus::DeployFailure);
    assert!(
        report.error.contains("/nonexistent/terraform was not found"),
        "{}",
        report.error
    );
    assert!(no_run_dir(work.path()));
}

#[tokio::test]
async fn an_invalid_variable_name_is_refused_before_terraform_runs() {
    let server = state_server().await;
    let work = tempfile::tempdir().unwrap();
    let deploy = spec(
        &server,
        RunAction::Destroy,
        NULL_TEMPLATE,
        json!({"x\" {}\nresource \"null_resource\" \"y": 1}),
        &[],
    );
    let log = Arc::new(Lines::default());
    let report = execute(
        &executor_config(work.path()),
        &deploy,
        log.clone(),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(report.status, RunStatus::DestroyFailure);
    assert!(
        report.error.contains("invalid Terraform variable name"),
        "{}",
        report.error
    );
    assert!(log.text().is_empty());
}
