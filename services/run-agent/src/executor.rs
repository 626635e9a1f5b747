//! Runs Terraform for one action of a run, in a private temporary directory.
//!
//! The directory (0700, removed afterwards) holds:
//! - `app.tf`: the application's template, as given;
//! - `goterra_variables.tf`: a declaration for every variable the spec fills (sensitive ones
//!   with `sensitive = true`), so templates never declare the platform's variables;
//! - `terraform.tfvars.json`: the plain values, as JSON (values are data, never pasted into HCL);
//! - `backend_override.tf`: an `http` backend on deploy's state endpoint.
//!
//! Sensitive values reach Terraform only as `TF_VAR_<name>` and the state credential only as
//! `TF_HTTP_USERNAME`/`TF_HTTP_PASSWORD`, in an environment built from scratch (the agent's own
//! secrets never reach Terraform or its `local-exec` children). Every output line goes through
//! a [`LogSink`] with every secret value replaced by `***`.
//!
//! Timeout and cancellation send SIGTERM to Terraform's whole process group (Terraform stops
//! cleanly and releases the state lock), then SIGKILL after a grace period.

mod files;
mod init_cache;
pub(crate) mod process;
mod redact;

pub use redact::Redactor;

use goterra_core::runs::{RunAction, RunReport, RunSpec, RunStatus};
use init_cache::{Entry, InitCache};
use process::{CommandOutcome, Stop, TerraformCommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Receives Terraform's output, one redacted line at a time.
pub trait LogSink: Send + Sync {
    fn line(&self, line: String);
}

/// How the agent runs Terraform.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// `GOT_TERRAFORM_BIN`: the binary (OpenTofu works too); default `terraform` on `PATH`.
    pub terraform_bin: PathBuf,
    /// `GOT_TERRAFORM_PLUGIN_DIR`: providers for an offline `terraform init -plugin-dir=...`.
    pub plugin_dir: Option<PathBuf>,
    /// `GOT_KILL_GRACE_SECS`: time between SIGTERM and SIGKILL on timeout or cancel.
    pub kill_grace: Duration,
    /// `agent.work_dir` (`GOT_AGENT_WORK_DIR`): where run directories are created; default the
    /// system temp dir.
    pub work_dir: Option<PathBuf>,
    /// `PATH` given to Terraform (the agent's own).
    pub path: String,
    /// `run.timeout_secs` (`GOT_RUN_TIMEOUT`): the longest an action may take on this agent,
    /// whatever the spec asks.
    pub max_timeout: Option<Duration>,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            terraform_bin: PathBuf::from("terraform"),
            plugin_dir: None,
            kill_grace: Duration::from_secs(30),
            work_dir: None,
            path: std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            max_timeout: None,
        }
    }
}

impl ExecutorConfig {
    /// Reads Terraform's `GOT_*` variables above; a bad number is an error naming the variable.
    /// (The work directory and the timeout come from the platform configuration: see
    /// `AgentOptions::from_config`.)
    pub fn from_env() -> anyhow::Result<Self> {
        let mut config = Self::default();
        if let Some(bin) = non_empty_env("GOT_TERRAFORM_BIN") {
            config.terraform_bin = PathBuf::from(bin);
        }
        config.plugin_dir = non_empty_env("GOT_TERRAFORM_PLUGIN_DIR").map(PathBuf::from);
        if let Some(grace) = non_empty_env("GOT_KILL_GRACE_SECS") {
            let secs: u64 = grace
                .parse()
                .map_err(|_| anyhow::anyhow!("GOT_KILL_GRACE_SECS must be a number of seconds, got {grace:?}"))?;
            config.kill_grace = Duration::from_secs(secs);
        }
        Ok(config)
    }
}

pub(crate) fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// Why an action stopped before its end.
enum Stopped {
    Failed(String),
    TimedOut(Duration),
    Canceled,
}

/// Runs the spec's action to its end and reports the result; never panics on Terraform's
/// behaviour, and always reports the time spent.
pub async fn execute(
    config: &ExecutorConfig,
    spec: &RunSpec,
    sink: Arc<dyn LogSink>,
    cancel: CancellationToken,
) -> RunReport {
    let started = Instant::now();
    let mut timeout = Duration::from_secs(spec.timeout_secs.max(1));
    if let Some(max) = config.max_timeout {
        timeout = timeout.min(max);
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let redactor = Arc::new(Redactor::for_spec(spec));
    let result = match create_run_dir(config, spec).await {
        Ok(dir) => {
            let result = run_action(
                dir.path(),
                config,
                spec,
                sink,
                redactor.clone(),
                Limit { deadline, timeout },
                &cancel,
            )
            .await;
            remove_run_dir(dir).await;
            result
        }
        Err(stopped) => Err(stopped),
    };
    let duration = started.elapsed().as_secs_f64();
    match result {
        Ok((outputs, deployment_id)) => RunReport {
            status: RunStatus::success(spec.action),
            outputs,
            duration,
            error: String::new(),
            deployment_id,
        },
        Err(stopped) => {
            let (status, error) = match stopped {
                Stopped::Failed(error) => (RunStatus::failure(spec.action), error),
                Stopped::TimedOut(after) => (
                    RunStatus::failure(spec.action),
                    format!("{} timed out after {} s and was stopped", spec.action, after.as_secs()),
                ),
                Stopped::Canceled => (RunStatus::Canceled, format!("{} canceled", spec.action)),
            };
            RunReport {
                status,
                outputs: serde_json::json!({}),
                duration,
                error: redactor.redact(&error),
                deployment_id: None,
            }
        }
    }
}

/// Writes the run directory off the async runtime (many small writes).
async fn create_run_dir(config: &ExecutorConfig, spec: &RunSpec) -> Result<tempfile::TempDir, Stopped> {
    let work_dir = config.work_dir.clone();
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || files::write_run_dir(work_dir.as_deref(), &spec))
        .await
        .map_err(|err| Stopped::Failed(format!("cannot write the run directory: {err}")))?
        .map_err(|err| Stopped::Failed(format!("{err:#}")))
}

/// Removes the run directory (it holds the tfvars file) off the async runtime, as soon as
/// Terraform is done with it.
async fn remove_run_dir(dir: tempfile::TempDir) {
    match tokio::task::spawn_blocking(move || dir.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(%err, "cannot remove a run directory"),
        Err(err) => tracing::warn!(%err, "cannot remove a run directory"),
    }
}

/// When an action must end, and the timeout it was given (for the message).
#[derive(Clone, Copy)]
struct Limit {
    deadline: tokio::time::Instant,
    timeout: Duration,
}

/// Runs Terraform's commands for the action in the run directory `dir`: `init` — or the
/// initialised directory of an earlier run of the same template (see [`init_cache`]) — then
/// the action.
async fn run_action(
    dir: &std::path::Path,
    config: &ExecutorConfig,
    spec: &RunSpec,
    sink: Arc<dyn LogSink>,
    redactor: Arc<Redactor>,
    limit: Limit,
    cancel: &CancellationToken,
) -> Result<(serde_json::Value, Option<String>), Stopped> {
    let terraform = Terraform {
        dir,
        config,
        env: files::environment(config, spec, dir),
        sink: sink.clone(),
        redactor,
        limit,
        cancel,
    };
    let cached = open_init_cache(config, spec, dir).await;
    if let Some((cache, entry)) = &cached
        && blocking(cache, entry, dir, InitCache::restore).await == Some(true)
    {
        sink.line("goterra: reusing the initialised directory of an earlier run of this template".into());
        match terraform.action(spec.action).await {
            Err(Stopped::Failed(error)) if error.contains("run \"terraform init\"") => {
                // Out of date (see the cache's documentation); nothing was changed yet.
                sink.line("goterra: the reused directory is out of date: running terraform init".into());
                blocking(cache, entry, dir, InitCache::forget).await;
            }
            done => return done,
        }
    }
    terraform.init().await?;
    if let Some((cache, entry)) = &cached {
        blocking(cache, entry, dir, InitCache::store).await;
    }
    terraform.action(spec.action).await
}

/// The cache of initialised directories and this template's entry, when the cache is usable.
async fn open_init_cache(config: &ExecutorConfig, spec: &RunSpec, dir: &std::path::Path) -> Option<(InitCache, Entry)> {
    let base = config.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let (config, template, dir) = (config.clone(), spec.template.clone(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let cache = InitCache::open(&base, &dir)?;
        let entry = cache.entry(&config, &template);
        Some((cache, entry))
    })
    .await
    .ok()
    .flatten()
}

/// Runs a cache operation off the async runtime (it walks and copies directories).
async fn blocking<T: Send + 'static>(
    cache: &InitCache,
    entry: &Entry,
    dir: &std::path::Path,
    operation: fn(&InitCache, &Entry, &std::path::Path) -> T,
) -> Option<T> {
    let (cache, entry, dir) = (cache.clone(), entry.clone(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || operation(&cache, &entry, &dir))
        .await
        .ok()
}

/// Terraform's commands in one run directory, with the run's environment and limits.
struct Terraform<'a> {
    dir: &'a std::path::Path,
    config: &'a ExecutorConfig,
    env: std::collections::BTreeMap<String, String>,
    sink: Arc<dyn LogSink>,
    redactor: Arc<Redactor>,
    limit: Limit,
    cancel: &'a CancellationToken,
}

impl Terraform<'_> {
    async fn run(&self, name: &'static str, args: Vec<String>, stream_stdout: bool) -> Result<CommandOutcome, Stopped> {
        let command = TerraformCommand {
            name,
            bin: self.config.terraform_bin.clone(),
            args,
            dir: self.dir.to_path_buf(),
            env: self.env.clone(),
            sink: self.sink.clone(),
            redactor: self.redactor.clone(),
            stream_stdout,
            deadline: self.limit.deadline,
            cancel: self.cancel.clone(),
            kill_grace: self.config.kill_grace,
        };
        check(command.run().await, self.limit.timeout)
    }

    async fn init(&self) -> Result<(), Stopped> {
        let mut init = strings(&["init", "-input=false", "-no-color"]);
        if let Some(plugins) = &self.config.plugin_dir {
            init.push(format!("-plugin-dir={}", plugins.display()));
        }
        self.run("init", init, true).await.map(drop)
    }

    /// The action in an initialised directory: its outputs and deployment id.
    async fn action(&self, action: RunAction) -> Result<(serde_json::Value, Option<String>), Stopped> {
        match action {
            RunAction::Deploy => {
                self.run(
                    "apply",
                    strings(&["apply", "-auto-approve", "-input=false", "-no-color"]),
                    true,
                )
                .await?;
                let output = self
                    .run("output", strings(&["output", "-json", "-no-color"]), false)
                    .await?;
                let outputs = parse_outputs(&output.stdout).map_err(Stopped::Failed)?;
                let deployment_id = deployment_id(&outputs);
                Ok((redact_sensitive_outputs(outputs, &self.redactor), deployment_id))
            }
            RunAction::Destroy => {
                self.run(
                    "destroy",
                    strings(&["destroy", "-auto-approve", "-input=false", "-no-color"]),
                    true,
                )
                .await?;
                Ok((serde_json::json!({}), None))
            }
        }
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_string()).collect()
}

fn check(outcome: Result<CommandOutcome, Stop>, timeout: Duration) -> Result<CommandOutcome, Stopped> {
    match outcome {
        Ok(outcome) => Ok(outcome),
        Err(Stop::Failed(error)) => Err(Stopped::Failed(error)),
        Err(Stop::TimedOut) => Err(Stopped::TimedOut(timeout)),
        Err(Stop::Canceled) => Err(Stopped::Canceled),
    }
}

fn parse_outputs(stdout: &str) -> Result<serde_json::Value, String> {
    if stdout.trim().is_empty() {
        return Ok(serde_json::json!({}));
    }
    serde_json::from_str(stdout)
        .map_err(|err| format!("terraform output -json printed something that is not JSON: {err}"))
}

/// The template's `deployment_id` output; any JSON value is accepted (the original crashed on
/// a non-string one).
fn deployment_id(outputs: &serde_json::Value) -> Option<String> {
    match outputs.get("deployment_id")?.get("value")? {
        serde_json::Value::String(id) => Some(id.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Outputs marked sensitive keep their entry but lose their value; known secret values are
/// redacted in the others too.
fn redact_sensitive_outputs(mut outputs: serde_json::Value, redactor: &Redactor) -> serde_json::Value {
    if let Some(map) = outputs.as_object_mut() {
        for output in map.values_mut() {
            let sensitive = output.get("sensitive").and_then(serde_json::Value::as_bool) == Some(true);
            if let Some(value) = output.get_mut("value") {
                if sensitive {
                    *value = serde_json::Value::String(redact::MASK.into());
                } else {
                    redactor.redact_json(value);
                }
            }
        }
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_id_accepts_any_value() {
        assert_eq!(
            deployment_id(&json!({"deployment_id": {"value": "d1"}})),
            Some("d1".into())
        );
        assert_eq!(
            deployment_id(&json!({"deployment_id": {"value": 42}})),
            Some("42".into())
        );
        assert_eq!(deployment_id(&json!({"other": {"value": "x"}})), None);
    }

    #[test]
    fn sensitive_outputs_lose_their_value() {
        let redactor = Redactor::new(["hunter2".to_string()]);
        let outputs = redact_sensitive_outputs(
            json!({
                "token": {"sensitive": true, "type": "string", "value": "abc"},
                "echo": {"sensitive": false, "type": "string", "value": "pw=hunter2"},
            }),
            &redactor,
        );
        assert_eq!(outputs["token"]["value"], json!("***"));
        assert_eq!(outputs["echo"]["value"], json!("pw=***"));
    }
}
