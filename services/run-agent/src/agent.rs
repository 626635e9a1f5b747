//! The agent loop: takes run jobs from the queue with bounded concurrency, fetches each run's
//! spec from deploy, runs Terraform, streams the log, sends heartbeats, reports the result, and
//! acknowledges the job only once the result is reported.

use crate::executor::{self, ExecutorConfig, LogSink};
use async_trait::async_trait;
use goterra_bus::{Backoff, QueuedJob, RunQueue};
use goterra_core::runs::{AgentAnswer, RunAction, RunReport, RunSpec, RunStatus};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// How the agent talks to deploy about a run. Answers may ask the agent to cancel the run.
#[async_trait]
pub trait RunControl: Send + Sync {
    /// The spec for `action`; `None` when there is nothing to do any more (the run is gone, or
    /// no longer waits for this action: a job delivered again after its result was reported).
    async fn spec(&self, id: &str, action: RunAction) -> anyhow::Result<Option<RunSpec>>;
    /// Claims the action; `None` when it is not this job's to run (another agent runs it, or it
    /// ended meanwhile).
    async fn started(&self, id: &str) -> anyhow::Result<Option<AgentAnswer>>;
    async fn log(&self, id: &str, lines: Vec<String>) -> anyhow::Result<AgentAnswer>;
    async fn heartbeat(&self, id: &str) -> anyhow::Result<AgentAnswer>;
    async fn finished(&self, id: &str, report: &RunReport) -> anyhow::Result<()>;
}

#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// `GOT_AGENT_CONCURRENCY`: runs executed at once (and the queue prefetch).
    pub concurrency: u16,
    /// `GOT_AGENT_HEARTBEAT_SECS`: how often deploy hears that a run is alive.
    pub heartbeat: Duration,
    /// How often buffered log lines are sent.
    pub log_flush: Duration,
    /// Pause before a job is put back after deploy could not be reached.
    pub retry_pause: Duration,
    /// How long `finished` is retried before the job is put back (and run again).
    pub report_patience: Duration,
    pub executor: ExecutorConfig,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            concurrency: 2,
            heartbeat: Duration::from_secs(15),
            log_flush: Duration::from_millis(500),
            retry_pause: Duration::from_secs(5),
            report_patience: Duration::from_secs(120),
            executor: ExecutorConfig::default(),
        }
    }
}

impl AgentOptions {
    pub fn from_env() -> anyhow::Result<Self> {
        let mut options = Self {
            executor: ExecutorConfig::from_env()?,
            ..Self::default()
        };
        if let Some(value) = executor::non_empty_env("GOT_AGENT_CONCURRENCY") {
            options.concurrency = value
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| anyhow::anyhow!("GOT_AGENT_CONCURRENCY must be a positive number, got {value:?}"))?;
        }
        if let Some(value) = executor::non_empty_env("GOT_AGENT_HEARTBEAT_SECS") {
            let secs: u64 =
                value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    anyhow::anyhow!("GOT_AGENT_HEARTBEAT_SECS must be a positive number, got {value:?}")
                })?;
            options.heartbeat = Duration::from_secs(secs);
        }
        Ok(options)
    }
}

pub use goterra_client::run_agent::RunningRun;

pub struct Agent {
    queue: Arc<dyn RunQueue>,
    control: Arc<dyn RunControl>,
    options: AgentOptions,
    running: Mutex<BTreeMap<String, RunningRun>>,
}

impl Agent {
    pub fn new(queue: Arc<dyn RunQueue>, control: Arc<dyn RunControl>, options: AgentOptions) -> Arc<Self> {
        Arc::new(Self {
            queue,
            control,
            options,
            running: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn capacity(&self) -> u16 {
        self.options.concurrency
    }

    pub fn running(&self) -> Vec<RunningRun> {
        self.running
            .lock()
            .map(|running| running.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Consumes jobs until `shutdown`; then stops taking jobs (runs in progress go on while the
    /// process lives; a job whose process ends before its report is delivered again).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        let mut consumer = loop {
            let attempt = tokio::select! {
                consumer = self.queue.consumer(self.options.concurrency) => consumer,
                () = shutdown.cancelled() => return,
            };
            match attempt {
                Ok(consumer) => break consumer,
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{err:#}"), retry_in = ?delay, "cannot consume the run queue");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        };
        tracing::info!(queue = %self.queue.describe(), concurrency = self.options.concurrency, "run agent consuming");
        let slots = Arc::new(Semaphore::new(usize::from(self.options.concurrency)));
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => return,
                },
                () = shutdown.cancelled() => return,
            };
            let next = tokio::select! {
                next = consumer.next() => next,
                () = shutdown.cancelled() => return,
            };
            match next {
                Ok(job) => {
                    let agent = self.clone();
                    tokio::spawn(async move {
                        agent.handle(job).await;
                        drop(slot);
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "run queue unavailable");
                    // The consumer reconnects by itself; this pause keeps a failing database
                    // from turning the loop into a busy one.
                    drop(slot);
                    tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    async fn handle(&self, job: Box<dyn QueuedJob>) {
        let id = job.job().id.clone();
        let action = job.job().action;
        let spec = match self.control.spec(&id, action).await {
            Ok(Some(spec)) => spec,
            Ok(None) => {
                tracing::info!(run = %id, %action, "nothing to do for this run job; dropping it");
                finish_job(job.ack().await, &id);
                return;
            }
            Err(err) => {
                tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot fetch the run spec; job put back");
                self.put_back(job, &id).await;
                return;
            }
        };
        if spec.action != action || spec.run != id {
            tracing::error!(run = %id, %action, "deploy answered a spec for another run or action; dropping the job");
            finish_job(job.ack().await, &id);
            return;
        }
        let answer = match self.control.started(&id).await {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                tracing::info!(run = %id, %action, "another agent runs this action; dropping the job");
                finish_job(job.ack().await, &id);
                return;
            }
            Err(err) => {
                tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot report the start of a run; job put back");
                self.put_back(job, &id).await;
                return;
            }
        };
        self.track(&id, action);
        let report = if answer.cancel {
            RunReport {
                status: RunStatus::Canceled,
                outputs: serde_json::json!({}),
                duration: 0.0,
                error: format!("{action} canceled before it started"),
                deployment_id: None,
            }
        } else {
            self.execute(&spec).await
        };
        tracing::info!(run = %id, %action, status = %report.status, duration = report.duration, "run action ended");
        let reported = self.report(&id, &report).await;
        self.untrack(&id);
        if reported {
            finish_job(job.ack().await, &id);
        } else {
            tracing::error!(run = %id, "cannot report the result of a run; job put back");
            self.put_back(job, &id).await;
        }
    }

    /// Runs Terraform while streaming the log and sending heartbeats; either can carry a
    /// cancel request from deploy.
    async fn execute(&self, spec: &RunSpec) -> RunReport {
        let cancel = CancellationToken::new();
        let (lines, receiver) = mpsc::unbounded_channel();
        let forwarder = tokio::spawn(forward_log(
            self.control.clone(),
            spec.run.clone(),
            receiver,
            self.options.log_flush,
            cancel.clone(),
        ));
        let heartbeat_done = CancellationToken::new();
        let heartbeat = tokio::spawn(send_heartbeats(
            self.control.clone(),
            spec.run.clone(),
            self.options.heartbeat,
            cancel.clone(),
            heartbeat_done.clone(),
        ));
        let sink: Arc<dyn LogSink> = Arc::new(ChannelSink(lines));
        let report = executor::execute(&self.options.executor, spec, sink, cancel).await;
        heartbeat_done.cancel();
        let _ = heartbeat.await;
        // The sink (the only sender) is gone: the forwarder sends what is left and stops.
        let _ = forwarder.await;
        report
    }

    async fn report(&self, id: &str, report: &RunReport) -> bool {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
        let deadline = tokio::time::Instant::now() + self.options.report_patience;
        loop {
            match self.control.finished(id, report).await {
                Ok(()) => return true,
                Err(err) => {
                    tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot report a run result; retrying");
                    let delay = backoff.next_delay();
                    if tokio::time::Instant::now() + delay > deadline {
                        return false;
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn put_back(&self, job: Box<dyn QueuedJob>, id: &str) {
        // A pause, so that an unreachable deploy is not hammered by the same job.
        tokio::time::sleep(self.options.retry_pause).await;
        if let Err(err) = job.requeue().await {
            tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot put a run job back");
        }
    }

    fn track(&self, id: &str, action: RunAction) {
        if let Ok(mut running) = self.running.lock() {
            running.insert(
                id.to_string(),
                RunningRun {
                    id: id.to_string(),
                    action,
                    since: goterra_core::token::unix_now(),
                },
            );
        }
    }

    fn untrack(&self, id: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(id);
        }
    }
}

fn finish_job(result: anyhow::Result<()>, id: &str) {
    if let Err(err) = result {
        tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot acknowledge a run job");
    }
}

struct ChannelSink(mpsc::UnboundedSender<String>);

impl LogSink for ChannelSink {
    fn line(&self, line: String) {
        let _ = self.0.send(line);
    }
}

/// Lines per request at most.
const LOG_BATCH: usize = 200;

async fn forward_log(
    control: Arc<dyn RunControl>,
    id: String,
    mut lines: mpsc::UnboundedReceiver<String>,
    flush_every: Duration,
    cancel: CancellationToken,
) {
    let mut batch = Vec::new();
    let mut open = true;
    while open {
        // Gather what arrives within one flush period.
        let period = tokio::time::sleep(flush_every);
        tokio::pin!(period);
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(line) => {
                        batch.push(line);
                        if batch.len() >= LOG_BATCH {
                            break;
                        }
                    }
                    None => {
                        open = false;
                        break;
                    }
                },
                () = &mut period => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        match control.log(&id, std::mem::take(&mut batch)).await {
            Ok(answer) if answer.cancel => cancel.cancel(),
            Ok(_) => {}
            // The log is best effort; the result report is what matters.
            Err(err) => tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot send run log lines"),
        }
    }
}

async fn send_heartbeats(
    control: Arc<dyn RunControl>,
    id: String,
    every: Duration,
    cancel: CancellationToken,
    done: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = done.cancelled() => return,
        }
        match control.heartbeat(&id).await {
            Ok(answer) if answer.cancel => {
                tracing::info!(run = %id, "deploy asked to cancel the run");
                cancel.cancel();
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot send a heartbeat"),
        }
    }
}
