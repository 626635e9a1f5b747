//! acct on RabbitMQ: its durable queue bound to the event exchange keeps events published
//! while acct is stopped, and a redelivered event (handling failed before the ack) is
//! accounted once. Real RabbitMQ (`GOT_TEST_AMQP`, default the local broker), own exchange and
//! queue names per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use async_trait::async_trait;
use common::{Env, state};
use goterra_acct::config::AcctConfig;
use goterra_acct::deploy::{HttpDeploy, RunSource};
use goterra_acct::ledger::Accountant;
use goterra_acct::listen::AccountingHandler;
use goterra_acct::store::AcctStore;
use goterra_bus::{EventHandler, RabbitEventBus, RabbitEventQueue};
use goterra_core::{Event, EventBus, Sensitive};
use goterra_db::Engine;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn amqp_url() -> Sensitive<String> {
    Sensitive::new(std::env::var("GOT_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()))
}

/// Fails the first `failures` events after accounting them, as if the ack was lost.
struct LosesAcks {
    inner: AccountingHandler,
    failures: AtomicUsize,
    handled: AtomicUsize,
}

#[async_trait]
impl EventHandler for LosesAcks {
    async fn handle(&self, event: &Event) -> anyhow::Result<()> {
        self.inner.handle(event).await?;
        self.handled.fetch_add(1, Ordering::SeqCst);
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
            .is_ok()
        {
            anyhow::bail!("connection lost before the ack");
        }
        Ok(())
    }
}

#[tokio::test]
async fn events_published_while_acct_is_stopped_wait_and_redeliveries_count_once() {
    let env = Env::start(Engine::Sqlite).await;
    let config = AcctConfig::from_value(serde_yaml::from_str(&env.acct_yaml()).unwrap()).unwrap();
    let source: Arc<dyn RunSource> =
        Arc::new(HttpDeploy::new(&env.server.url, env.server.platform.tokens.clone()).unwrap());
    let accountant = Arc::new(Accountant::new(
        AcctStore::new(env.server.platform.db.clone()),
        source,
        Arc::new(config),
    ));
    let suffix = goterra_core::new_id();
    let exchange = format!("gotevent-test-{suffix}");
    let queue = RabbitEventQueue::new(amqp_url(), exchange.clone(), format!("gotacct-test-{suffix}"), 1);
    // acct ran once (its queue exists) and is stopped now.
    queue.declare().await.unwrap();

    let run = env.new_run("alice").await;
    env.deploy(&run, state(2, "small", 0)).await;
    let bus = RabbitEventBus::start(amqp_url(), exchange.clone());
    let event = Event::new("run_deploy_success", "alice", run.clone());
    bus.publish(event.clone()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.interval_rows().await, 0, "acct is stopped");

    // acct starts; its first handling "loses" the ack, so the broker redelivers the event.
    let handler = Arc::new(LosesAcks {
        inner: AccountingHandler(accountant.clone()),
        failures: AtomicUsize::new(1),
        handled: AtomicUsize::new(0),
    });
    let shutdown = CancellationToken::new();
    let consumer = {
        let queue = queue.clone();
        let handler: Arc<dyn EventHandler> = handler.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { queue.consume(handler, shutdown).await })
    };
    for _ in 0..300 {
        if handler.handled.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(handler.handled.load(Ordering::SeqCst), 2, "handled, then redelivered");
    assert_eq!(env.interval_rows().await, 3, "counted once");

    // The same event published again (a replay) changes nothing either.
    bus.publish(event).await;
    for _ in 0..300 {
        if handler.handled.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(handler.handled.load(Ordering::SeqCst), 3);
    assert_eq!(env.interval_rows().await, 3);

    shutdown.cancel();
    consumer.await.unwrap();
    queue.delete().await.unwrap();
    env.server.stop().await;
}
