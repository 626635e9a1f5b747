//! How run events reach acct, and the catch-up that makes sure none is missed.
//!
//! - With RabbitMQ (`GOT_AMQP`): acct's own durable queue (`acct.queue`, default `gotacct`)
//!   bound to the `gotevent` exchange; an event is acknowledged once accounted, so one that
//!   arrives while acct is down waits in the queue, and one whose handling failed is
//!   redelivered.
//! - In `goterra up` without a broker: the in-process bus.
//! - Always: a resync at startup, then every `acct.resync_seconds` (and at once when the
//!   in-process bus overflowed), accounts every run whose status changed since the last one,
//!   from deploy's run history. It covers events lost in a crash, a restart, a full buffer.
//!
//! Accounting a run is idempotent (see [`crate::ledger`]), so an event handled twice, or by the
//! bus and a resync, never counts twice.

use crate::config::AcctConfig;
use crate::ledger::Accountant;
use async_trait::async_trait;
use goterra_bus::{Backoff, DEFAULT_EVENT_EXCHANGE, EventHandler, RabbitEventQueue};
use goterra_core::Platform;
use goterra_core::events::{EVENTS_MISSED, Event};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// The bus side of the [`Accountant`].
pub struct AccountingHandler(pub Arc<Accountant>);

#[async_trait]
impl EventHandler for AccountingHandler {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.0.handle_event(event).await?;
        Ok(())
    }
}

/// Starts the listeners of `platform` for `accountant`; they stop with `shutdown`.
pub fn start(platform: &Platform, accountant: Arc<Accountant>, config: &AcctConfig, shutdown: CancellationToken) {
    let resync_now = Arc::new(Notify::new());
    if let Some(url) = &platform.config.amqp {
        let queue = RabbitEventQueue::new(url.clone(), DEFAULT_EVENT_EXCHANGE, config.queue.clone(), 1);
        let handler: Arc<dyn EventHandler> = Arc::new(AccountingHandler(accountant.clone()));
        let stop = shutdown.clone();
        tokio::spawn(async move { queue.consume(handler, stop).await });
    } else if let Some(receiver) = platform.events.subscribe() {
        tokio::spawn(in_process(
            receiver,
            accountant.clone(),
            resync_now.clone(),
            shutdown.clone(),
        ));
    } else {
        tracing::warn!("no event bus reaches acct (set GOT_AMQP): runs are accounted by the periodic resync only");
    }
    let every = (config.resync_seconds > 0).then(|| Duration::from_secs(config.resync_seconds));
    tokio::spawn(resync_loop(accountant, every, resync_now, shutdown));
}

/// Accounts the events of the in-process bus, one at a time.
pub async fn in_process(
    mut receiver: broadcast::Receiver<Event>,
    accountant: Arc<Accountant>,
    resync_now: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            received = receiver.recv() => received,
        };
        match received {
            // A bus that may have lost events says so; catch up as after a lag.
            Ok(event) if event.action == EVENTS_MISSED => resync_now.notify_one(),
            Ok(event) => handle_with_retries(&accountant, &event, &resync_now, &shutdown).await,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "acct fell behind the event bus; catching up from deploy's run history"
                );
                resync_now.notify_one();
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Attempts before an event is left to the resync.
const EVENT_ATTEMPTS: usize = 5;

async fn handle_with_retries(
    accountant: &Accountant,
    event: &Event,
    resync_now: &Notify,
    shutdown: &CancellationToken,
) {
    let mut backoff = Backoff::default();
    for _ in 0..EVENT_ATTEMPTS {
        match accountant.handle_event(event).await {
            Ok(_) => return,
            Err(err) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %err, action = %event.action, run = %event.data, retry_in = ?delay, "cannot account a run event");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    resync_now.notify_one();
}

/// Resyncs at startup (retrying until deploy answers), then every `every` and when woken.
pub async fn resync_loop(
    accountant: Arc<Accountant>,
    every: Option<Duration>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut failures = 0;
    loop {
        match accountant.resync().await {
            Ok(runs) => {
                tracing::info!(runs, "acct caught up with deploy's run history");
                break;
            }
            Err(err) => {
                failures += 1;
                // Deploy may not listen yet when acct starts in the same process.
                if failures > 3 {
                    tracing::warn!(error = %err, "acct cannot catch up with deploy yet");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
            }
        }
    }
    loop {
        let wait = async {
            match every {
                Some(every) => tokio::time::sleep(every).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = wake.notified() => {}
            () = wait => {}
        }
        if let Err(err) = accountant.resync().await {
            tracing::warn!(error = %err, "acct resync failed; trying again later");
        }
    }
}
