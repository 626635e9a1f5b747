//! One Terraform command: a private process group, a scrubbed environment, redacted streaming
//! output, and a deadline/cancel that stops the whole group (SIGTERM, then SIGKILL).

use super::{LogSink, Redactor};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio_util::sync::CancellationToken;

/// Lines of output kept for the error message of a failed command.
const TAIL_LINES: usize = 40;
/// Longest log line kept; the rest of a longer line is cut (after redaction, so a cut never
/// reveals part of a secret).
const MAX_LINE: usize = 8192;
/// How long to wait for the last output lines once Terraform has exited. A background
/// process that kept the pipe open must not hold the run forever.
const DRAIN: Duration = Duration::from_secs(5);

pub struct TerraformCommand {
    pub name: &'static str,
    pub bin: PathBuf,
    pub args: Vec<String>,
    pub dir: PathBuf,
    pub env: BTreeMap<String, String>,
    pub sink: Arc<dyn LogSink>,
    pub redactor: Arc<Redactor>,
    /// `false` for `output -json`, whose stdout is captured rather than logged.
    pub stream_stdout: bool,
    pub deadline: tokio::time::Instant,
    pub cancel: CancellationToken,
    pub kill_grace: Duration,
}

pub struct CommandOutcome {
    pub stdout: String,
}

pub enum Stop {
    Failed(String),
    TimedOut,
    Canceled,
}

type Tail = Arc<Mutex<VecDeque<String>>>;

/// Counts a Terraform process in the `goterra_agent_terraform_processes` gauge while it lives
/// (until its stop, its exit or a cancel: the guard is dropped on every path out of `run`).
pub(crate) struct RunningTerraform;

impl RunningTerraform {
    const METRIC: &str = "goterra_agent_terraform_processes";

    /// Shows the gauge at 0 before the first run.
    pub(crate) fn register() {
        metrics::gauge!(Self::METRIC).increment(0.0);
    }

    fn started() -> Self {
        metrics::gauge!(Self::METRIC).increment(1.0);
        Self
    }
}

impl Drop for RunningTerraform {
    fn drop(&mut self) {
        metrics::gauge!(Self::METRIC).decrement(1.0);
    }
}

impl TerraformCommand {
    pub async fn run(self) -> Result<CommandOutcome, Stop> {
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .args(&self.args)
            .current_dir(&self.dir)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that a stop reaches `local-exec` children too.
            .process_group(0)
            .kill_on_drop(true);
        self.sink.line(format!("$ terraform {}", self.args.join(" ")));
        let mut child = command.spawn().map_err(|err| Stop::Failed(self.spawn_error(&err)))?;
        let _running = RunningTerraform::started();
        let group = child.id().and_then(|pid| i32::try_from(pid).ok()).map(Pid::from_raw);
        let tail: Tail = Arc::new(Mutex::new(VecDeque::new()));
        let stdout = child.stdout.take().map(|out| {
            tokio::spawn(read_lines(
                out,
                self.sink.clone(),
                self.redactor.clone(),
                tail.clone(),
                self.stream_stdout,
            ))
        });
        let stderr = child.stderr.take().map(|err| {
            tokio::spawn(read_lines(
                err,
                self.sink.clone(),
                self.redactor.clone(),
                tail.clone(),
                true,
            ))
        });

        let stopped = tokio::select! {
            status = child.wait() => Ok(status),
            () = tokio::time::sleep_until(self.deadline) => Err(Stop::TimedOut),
            () = self.cancel.cancelled() => Err(Stop::Canceled),
        };
        let status = match stopped {
            Ok(status) => status,
            Err(stop) => {
                let why = if matches!(stop, Stop::TimedOut) {
                    "timeout"
                } else {
                    "cancel"
                };
                self.sink
                    .line(format!("goterra: {why}: stopping terraform {}", self.name));
                self.stop(&mut child, group).await;
                drain(stdout).await;
                drain(stderr).await;
                return Err(stop);
            }
        };
        let captured = drain(stdout).await;
        drain(stderr).await;
        match status {
            Ok(status) if status.success() => Ok(CommandOutcome { stdout: captured }),
            Ok(status) => {
                let tail = tail
                    .lock()
                    .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                Err(Stop::Failed(format!(
                    "terraform {} failed ({status}):\n{tail}",
                    self.name
                )))
            }
            Err(err) => Err(Stop::Failed(format!("cannot wait for terraform {}: {err}", self.name))),
        }
    }

    fn spawn_error(&self, err: &std::io::Error) -> String {
        if err.kind() == std::io::ErrorKind::NotFound {
            format!(
                "the Terraform binary {} was not found (set GOT_TERRAFORM_BIN or install terraform on the agent's PATH)",
                self.bin.display()
            )
        } else {
            format!("cannot start {} {}: {err}", self.bin.display(), self.name)
        }
    }

    /// SIGTERM to the group (Terraform stops cleanly and unlocks the state), SIGKILL to the
    /// group after the grace period, and SIGKILL again once Terraform is gone so that no
    /// `local-exec` child outlives a stopped run.
    async fn stop(&self, child: &mut tokio::process::Child, group: Option<Pid>) {
        let Some(group) = group else {
            let _ = child.kill().await;
            return;
        };
        let _ = killpg(group, Signal::SIGTERM);
        if tokio::time::timeout(self.kill_grace, child.wait()).await.is_err() {
            self.sink.line(format!(
                "goterra: terraform {} did not stop within {} s: killing it",
                self.name,
                self.kill_grace.as_secs()
            ));
            let _ = killpg(group, Signal::SIGKILL);
            let _ = child.wait().await;
        }
        let _ = killpg(group, Signal::SIGKILL);
    }
}

async fn drain(reader: Option<tokio::task::JoinHandle<String>>) -> String {
    let Some(reader) = reader else { return String::new() };
    let abort = reader.abort_handle();
    match tokio::time::timeout(DRAIN, reader).await {
        Ok(Ok(text)) => text,
        Ok(Err(_)) => String::new(),
        Err(_) => {
            abort.abort();
            String::new()
        }
    }
}

/// Streams redacted lines to the sink (and the tail), or captures the whole stream when
/// `stream` is false.
async fn read_lines(
    pipe: impl AsyncRead + Unpin,
    sink: Arc<dyn LogSink>,
    redactor: Arc<Redactor>,
    tail: Tail,
    stream: bool,
) -> String {
    let mut reader = BufReader::new(pipe);
    let mut captured = String::new();
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                if !stream {
                    captured.push_str(&line);
                    continue;
                }
                let line = line.trim_end_matches(['\n', '\r']);
                if is_state_backend_chatter(line) {
                    continue;
                }
                let line = truncate(redactor.redact(line));
                if let Ok(mut tail) = tail.lock() {
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line.clone());
                }
                sink.line(line);
            }
        }
    }
    captured
}

/// Terraform's `http` backend logs each of its requests on stderr whatever `TF_LOG` says
/// (`2026/12/02 01:14:38 [DEBUG] LOCK http://…/state`): noise in a user's run log. Its errors
/// (`[ERR]`) and everything else are kept.
fn is_state_backend_chatter(line: &str) -> bool {
    let Some((stamp, rest)) = line.split_at_checked(19) else {
        return false;
    };
    let is_stamp = stamp.bytes().enumerate().all(|(index, byte)| match index {
        4 | 7 => byte == b'/',
        10 => byte == b' ',
        13 | 16 => byte == b':',
        _ => byte.is_ascii_digit(),
    });
    let Some(request) = rest.strip_prefix(" [DEBUG] ") else {
        return false;
    };
    is_stamp
        && request.split_once(' ').is_some_and(|(method, url)| {
            matches!(method, "GET" | "POST" | "LOCK" | "UNLOCK" | "DELETE") && url.starts_with("http")
        })
}

fn truncate(mut line: String) -> String {
    if line.len() > MAX_LINE {
        let mut end = MAX_LINE;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str(" [...]");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_backends_request_lines_are_not_logged() {
        for noise in [
            "2026/12/02 01:14:38 [DEBUG] LOCK http://127.0.0.1:8080/deploy/agent/run/0ea7/state",
            "2026/12/02 01:14:38 [DEBUG] POST https://goterra.example.org/deploy/agent/run/0ea7/state?ID=2b9b",
        ] {
            assert!(is_state_backend_chatter(noise), "{noise}");
        }
        for kept in [
            "2026/12/02 01:14:38 [ERR] POST http://127.0.0.1:8080/deploy/agent/run/0ea7/state request failed",
            "2026/12/02 01:14:38 [DEBUG] something else",
            "null_resource.vm[\"master-0\"]: Creation complete after 0s",
            "GET http://example.org",
            "",
            "é2026/12/02 01:14:38 [DEBUG] GET http://x",
        ] {
            assert!(!is_state_backend_chatter(kept), "{kept}");
        }
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let line = "é".repeat(MAX_LINE);
        let cut = truncate(line);
        assert!(cut.ends_with(" [...]"));
        assert!(cut.len() <= MAX_LINE + 6);
        assert_eq!(truncate("short".into()), "short");
    }
}
