//! The RabbitMQ event bus against the real broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::StreamExt;
use goterra_bus::RabbitEventBus;
use goterra_core::Sensitive;
use goterra_core::events::{Event, EventBus};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;

fn amqp_url() -> String {
    std::env::var("GOT_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

#[tokio::test]
async fn events_reach_a_queue_bound_to_the_exchange_in_the_original_shape() {
    let exchange = format!("test-events-{}", uuid::Uuid::new_v4().simple());
    // A listener (acct, say) binds its own queue to the fanout exchange.
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut deliveries = channel
        .basic_consume(
            queue.name().clone(),
            "listener".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let bus = RabbitEventBus::start(Sensitive::new(amqp_url()), exchange.clone());
    bus.publish(Event::new("run_deploy", "alice", "run-1")).await;
    bus.publish(Event::new("run_destroy", "alice", "run-1")).await;

    let mut received = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(Duration::from_secs(15), deliveries.next())
            .await
            .expect("the event should arrive")
            .unwrap()
            .unwrap();
        received.push(serde_json::from_slice::<serde_json::Value>(&delivery.data).unwrap());
        delivery.acker.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert_eq!(
        received,
        [
            serde_json::json!({"Action": "run_deploy", "UID": "alice", "Data": "run-1"}),
            serde_json::json!({"Action": "run_destroy", "UID": "alice", "Data": "run-1"}),
        ]
    );
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn publishing_never_fails_or_blocks_when_the_broker_is_unreachable() {
    let bus = RabbitEventBus::start(
        Sensitive::new("amqp://guest:guest@127.0.0.1:1/%2f".into()),
        "gotevent-none",
    );
    // Far more events than the buffer holds: every call returns at once.
    let all = async {
        for n in 0..3000 {
            bus.publish(Event::new("user_create", format!("u{n}"), "")).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .expect("publish must not block");
}
