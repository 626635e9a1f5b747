//! The agent loop: takes run jobs from the queue with bounded concurrency, fetches each run's
//! spec from deploy, runs Terraform, streams the log, sends heartbeats, reports the result, and
//! acknowledges the job only once the result is reported.
//!
//! Stopping (the process's SIGTERM): the agent takes no new job; each run in progress may go on
//! for the shutdown grace period; one still running then has its Terraform stopped (SIGTERM,
//! SIGKILL after the kill grace), is handed back to deploy (pending again, its state lock
//! released) and its job put back in the queue, for another agent to run.

use crate::executor::{self, ExecutorConfig, LogSink};
use async_trait::async_trait;
use goterra_bus::{Backoff, JobConsumer, QueuedJob, RunQueue};
use goterra_client::RunId;
use goterra_core::runs::{AgentAnswer, RunAction, RunReport, RunSpec, RunStatus};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How the agent talks to deploy about a run. Answers may ask the agent to cancel the run.
#[async_trait]
pub trait RunControl: Send + Sync {
    /// The spec for `action`; `None` when there is nothing to do any more (the run is gone, or
    /// no longer waits for this action: a job delivered again after its result was reported).
    async fn spec(&self, id: &RunId, action: RunAction) -> anyhow::Result<Option<RunSpec>>;
    /// Claims the action; `None` when it is not this job's to run (another agent runs it, or it
    /// ended meanwhile).
    async fn started(&self, id: &RunId) -> anyhow::Result<Option<AgentAnswer>>;
    async fn log(&self, id: &RunId, lines: Vec<String>) -> anyhow::Result<AgentAnswer>;
    async fn heartbeat(&self, id: &RunId) -> anyhow::Result<AgentAnswer>;
    async fn finished(&self, id: &RunId, report: &RunReport) -> anyhow::Result<()>;
    /// Hands the action in progress back (this agent stops): deploy makes it pending again.
    async fn release(&self, id: &RunId) -> anyhow::Result<()>;
}

#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// `agent.concurrency` (`GOT_AGENT_CONCURRENCY`): runs executed at once (and the queue prefetch).
    pub concurrency: u16,
    /// `agent.heartbeat_secs` (`GOT_AGENT_HEARTBEAT_SECS`): how often deploy hears that a run is alive.
    pub heartbeat: Duration,
    /// How often buffered log lines are sent.
    pub log_flush: Duration,
    /// Pause before a job is put back after deploy could not be reached.
    pub retry_pause: Duration,
    /// How long `finished` is retried before the job is put back (and run again).
    pub report_patience: Duration,
    /// `agent.shutdown_grace_secs`: once the agent is stopping, how long a run in progress may
    /// go on before it is handed back.
    pub shutdown_grace: Duration,
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
            shutdown_grace: Duration::from_secs(60),
            executor: ExecutorConfig::default(),
        }
    }
}

impl AgentOptions {
    /// The agent's settings from the platform configuration (`agent.*`, `run.timeout_secs`),
    /// and Terraform's from the environment (see [`ExecutorConfig::from_env`]).
    pub fn from_config(config: &goterra_core::Config) -> anyhow::Result<Self> {
        let mut executor = ExecutorConfig::from_env()?;
        executor.work_dir = config.agent.work_dir.clone();
        executor.max_timeout = config.run.timeout_secs.map(Duration::from_secs);
        Ok(Self {
            concurrency: config.agent.concurrency,
            heartbeat: Duration::from_secs(config.agent.heartbeat_secs),
            shutdown_grace: Duration::from_secs(config.agent.shutdown_grace_secs),
            executor,
            ..Self::default()
        })
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

    /// Consumes jobs until `shutdown`; then takes no new job and returns once the runs in
    /// progress ended or were handed back (see the module's comment). A job whose process ends
    /// before its report is delivered again all the same.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let runs = TaskTracker::new();
        let mut consumer = self.clone().consume(&shutdown, &runs).await;
        if let Some(consumer) = consumer.as_mut() {
            consumer.stop().await;
        }
        runs.close();
        if !runs.is_empty() {
            tracing::info!(
                runs = runs.len(),
                grace = ?self.options.shutdown_grace,
                "agent stopping: waiting for the runs in progress, or handing them back"
            );
        }
        runs.wait().await;
        // Only now: the runs' jobs were acked or put back through the consumer's connection.
        drop(consumer);
        tracing::info!("agent stopped");
    }

    /// Hands jobs to `runs` until `shutdown`; returns the consumer, if one was opened.
    async fn consume(
        self: Arc<Self>,
        shutdown: &CancellationToken,
        runs: &TaskTracker,
    ) -> Option<Box<dyn JobConsumer>> {
        let mut backoff = Backoff::default();
        let mut consumer = loop {
            let attempt = tokio::select! {
                consumer = self.queue.consumer(self.options.concurrency) => consumer,
                () = shutdown.cancelled() => return None,
            };
            match attempt {
                Ok(consumer) => break consumer,
                Err(err) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %format!("{err:#}"), retry_in = ?delay, "cannot consume the run queue");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => return None,
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
                    Err(_) => return Some(consumer),
                },
                () = shutdown.cancelled() => return Some(consumer),
            };
            let next = tokio::select! {
                next = consumer.next() => next,
                () = shutdown.cancelled() => return Some(consumer),
            };
            match next {
                Ok(job) => {
                    let agent = self.clone();
                    let shutdown = shutdown.clone();
                    runs.spawn(async move {
                        agent.handle(job, &shutdown).await;
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
                        () = shutdown.cancelled() => return Some(consumer),
                    }
                }
            }
        }
    }

    async fn handle(&self, job: Box<dyn QueuedJob>, shutdown: &CancellationToken) {
        let id = RunId::from_trusted(job.job().id.clone());
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
        if spec.action != action || spec.run != id.as_str() {
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
            match self.execute(&spec, shutdown).await {
                Executed::Ended(report) => report,
                Executed::Interrupted => {
                    self.hand_back(job, &id).await;
                    self.untrack(&id);
                    return;
                }
            }
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
    /// cancel request from deploy. Once `shutdown` fires, Terraform has the shutdown grace to
    /// end before it is stopped (the run is then [`Executed::Interrupted`]).
    async fn execute(&self, spec: &RunSpec, shutdown: &CancellationToken) -> Executed {
        let cancel = CancellationToken::new();
        let interrupted = CancellationToken::new();
        let grace = self.options.shutdown_grace;
        let watcher = {
            let (shutdown, cancel, interrupted) = (shutdown.clone(), cancel.clone(), interrupted.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                        tracing::warn!(grace = ?grace, "the run did not end within the shutdown grace: stopping it, to hand it back");
                        interrupted.cancel();
                        cancel.cancel();
                    }
                    // A cancel from deploy, or the end of the run.
                    () = cancel.cancelled() => {}
                }
            })
        };
        let (lines, receiver) = mpsc::unbounded_channel();
        let forwarder = tokio::spawn(forward_log(
            self.control.clone(),
            RunId::from_trusted(spec.run.clone()),
            receiver,
            self.options.log_flush,
            cancel.clone(),
        ));
        let heartbeat_done = CancellationToken::new();
        let heartbeat = tokio::spawn(send_heartbeats(
            self.control.clone(),
            RunId::from_trusted(spec.run.clone()),
            self.options.heartbeat,
            cancel.clone(),
            heartbeat_done.clone(),
        ));
        let sink: Arc<dyn LogSink> = Arc::new(ChannelSink(lines));
        let report = executor::execute(&self.options.executor, spec, sink, cancel.clone()).await;
        watcher.abort();
        heartbeat_done.cancel();
        let _ = heartbeat.await;
        // The sink (the only sender) is gone: the forwarder sends what is left and stops.
        let _ = forwarder.await;
        // Terraform may have ended by itself just as it was being stopped: then its result
        // stands.
        if interrupted.is_cancelled() && report.status == RunStatus::Canceled {
            Executed::Interrupted
        } else {
            Executed::Ended(report)
        }
    }

    /// Gives an interrupted run back: deploy makes it pending again, and its job goes back in
    /// the queue at once. When deploy cannot be told, the run looks like one whose agent went
    /// silent: deploy's sweep re-queues it after the heartbeat timeout.
    async fn hand_back(&self, job: Box<dyn QueuedJob>, id: &RunId) {
        match self.control.release(id).await {
            Ok(()) => tracing::info!(run = %id, "run handed back to the queue"),
            Err(err) => tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot hand the run back to deploy"),
        }
        if let Err(err) = job.requeue().await {
            tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot put a run job back");
        }
    }

    async fn report(&self, id: &RunId, report: &RunReport) -> bool {
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

    async fn put_back(&self, job: Box<dyn QueuedJob>, id: &RunId) {
        // A pause, so that an unreachable deploy is not hammered by the same job.
        tokio::time::sleep(self.options.retry_pause).await;
        if let Err(err) = job.requeue().await {
            tracing::warn!(run = %id, error = %format!("{err:#}"), "cannot put a run job back");
        }
    }

    fn track(&self, id: &RunId, action: RunAction) {
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

    fn untrack(&self, id: &RunId) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(id.as_str());
        }
    }
}

/// How [`Agent::execute`] ended.
enum Executed {
    /// Terraform ended (or was canceled by deploy): the report to send.
    Ended(RunReport),
    /// The agent is stopping and the run outlived the shutdown grace: Terraform was stopped.
    Interrupted,
}

fn finish_job(result: anyhow::Result<()>, id: &RunId) {
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
    id: RunId,
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
    id: RunId,
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
